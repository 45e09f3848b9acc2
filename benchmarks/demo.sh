#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded MiniLM encoder, on this machine's CPU.
# synthetic corpus -> train (a few minutes) -> export ONNX -> extract JSONL -> triples + throughput.
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

echo "== 1/4 synthetic corpus ($DOCS documents)"
$BIN/docunet-rt synth -o "$OUT/data" --docs "$DOCS" --seed 7

echo "== 2/4 train DocuNet (embedded MiniLM encoder, $EPOCHS epochs)"
$BIN/docunet-rt train --train "$OUT/data/train.json" --dev "$OUT/data/dev.json" \
  --test "$OUT/data/test.json" --relations "$OUT/data/relations.json" --out "$OUT/ckpt" \
  --epochs "$EPOCHS" --batch-size 4 --lr-encoder 5e-5 --unet-base 64 --seed 7

echo "== 3/4 export ONNX (fp32 + int8)"
$BIN/docunet-rt export "$OUT/ckpt" -o "$OUT/model" --precision fp32,int8

echo "== 4/4 extract triples from $OUT/data/corpus.jsonl (ONNX Runtime, int8, CPU)"
$BIN/docunet-rt extract "$OUT/data/corpus.jsonl" -o "$OUT/triples.jsonl" --model "$OUT/model" \
  --precision int8 --device cpu --summary "$OUT/triples.jsonl.summary.json" || [ $? -eq 3 ]

$BIN/python benchmarks/demo_summary.py "$OUT" "$start"
