#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded MiniLM encoder, on this machine's CPU.
# synthetic corpus -> train (a few minutes) -> export ONNX -> extract JSONL -> triples + throughput,
# then raw text: train the entity tagger -> export it into the MODEL_DIR -> extract from plain text.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${DEMO_OUT:-demo_out}
EPOCHS=${DEMO_EPOCHS:-4}
DOCS=${DEMO_DOCS:-400}
export HF_HUB_OFFLINE=1
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)

echo "== 1/5 synthetic corpus ($DOCS documents)"
$BIN/docunet-rt synth -o "$OUT/data" --docs "$DOCS" --seed 7

echo "== 2/5 train DocuNet (embedded MiniLM encoder, $EPOCHS epochs)"
$BIN/docunet-rt train --train "$OUT/data/train.json" --dev "$OUT/data/dev.json" \
  --test "$OUT/data/test.json" --relations "$OUT/data/relations.json" --out "$OUT/ckpt" \
  --epochs "$EPOCHS" --batch-size 4 --lr-encoder 5e-5 --unet-base 64 --seed 7

echo "== 3/5 export ONNX (fp32 + int8)"
$BIN/docunet-rt export "$OUT/ckpt" -o "$OUT/model" --precision fp32,int8

echo "== 4/5 extract triples from $OUT/data/corpus.jsonl (ONNX Runtime, int8, CPU)"
$BIN/docunet-rt extract "$OUT/data/corpus.jsonl" -o "$OUT/triples.jsonl" --model "$OUT/model" \
  --precision int8 --device cpu --summary "$OUT/triples.jsonl.summary.json" || [ $? -eq 3 ]

echo "== 5/5 raw text: entity tagger (${NER_EPOCHS:-2} epochs), exported with the model, on plain text"
$BIN/docunet-rt train-ner --train "$OUT/data/train.json" --dev "$OUT/data/dev.json" \
  --out "$OUT/ner" --epochs "${NER_EPOCHS:-2}" --seed 7
$BIN/docunet-rt export "$OUT/ckpt" -o "$OUT/model_raw" --precision int8 --tagger "$OUT/ner"
$BIN/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
with open(f"{out}/data/corpus.jsonl") as src, open(f"{out}/raw.jsonl", "w") as dst:
    for line in src:  # the test documents as plain text, without their entities
        r = json.loads(line)
        text = r.get("text") or " ".join(" ".join(s) for s in r["sents"])
        dst.write(json.dumps({"id": r["id"], "text": text}) + "\n")
PY
$BIN/docunet-rt extract "$OUT/raw.jsonl" -o "$OUT/raw_triples.jsonl" --model "$OUT/model_raw" \
  --precision int8 --device cpu --entities predict || [ $? -eq 3 ]
$BIN/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
text = {json.loads(x)["id"]: json.loads(x)["text"] for x in open(f"{out}/raw.jsonl")}
for line in list(open(f"{out}/raw_triples.jsonl"))[:3]:
    r = json.loads(line)
    print(f"{r['id']}: {text[r['id']][:100]}...")
    print("  entities:", ", ".join(f"{e['name']} ({e['type']})" for e in r["entities"][:6]))
    for t in r["triples"][:3]:
        print(f"  {t['head']['name']} --{t['relation']['name']}--> {t['tail']['name']} {t['score']}")
PY

$BIN/python benchmarks/demo_summary.py "$OUT" "$start"
