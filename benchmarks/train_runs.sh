#!/usr/bin/env bash
# The long training runs behind benchmarks/results/*training*.json, exactly as run.
# Each takes about an hour or more on the 2-core CPU: run in the background, e.g.
#   nohup bash benchmarks/train_runs.sh cdr > runs/cdr.log 2>&1 &
# and resume an interrupted one with RESUME=--resume. Results are collected with
#   python benchmarks/collect_training.py RUN_DIR --name NAME --command "..."
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DATA=${DOCUNET_DATA:-../shared/data}
RUNS=${RUNS:-/work/runs}
SCRATCH=${SCRATCH:-/tmp/docunet_scratch/redocred}
SCRATCH_CDR=${SCRATCH_CDR:-/tmp/docunet_scratch/cdr}
RESUME=${RESUME:-}
export HF_HUB_OFFLINE=1

cdr() {  # CDR, DocuNet (U-Net), public-code hyperparameters; selected on dev, test scored once
  $BIN/docunet-rt train --train "$DATA/cdr/train_filter.data" --dev "$DATA/cdr/dev_filter.data" \
    --test "$DATA/cdr/test_filter.data" --out "$RUNS/cdr_docunet_s${SEED:-66}" --epochs 8 \
    --batch-size 4 --seed "${SEED:-66}" $RESUME "$@"
}
cdr_type() {  # the CDR recipe since the reader fix: entities on the map by type, then position
  # (dev 59.7 against 48.6 for document order, seed 66: training_cdr_docunet_*order_seed66);
  # WIDTH=64|128 for the U-Net width sweep (run dir cdr_typeorder_w64_s66)
  $BIN/docunet-rt train --train "$DATA/cdr/train_filter.data" --dev "$DATA/cdr/dev_filter.data" \
    --test "$DATA/cdr/test_filter.data" --out "$RUNS/cdr_typeorder${WIDTH:+_w$WIDTH}_s${SEED:-66}" \
    --epochs 8 --batch-size 4 --seed "${SEED:-66}" --entity-order type \
    --unet-base "${WIDTH:-256}" $RESUME "$@"
}
cdr_type_traindev() {  # the train+dev protocol (EoG/ATLOP): train on train + dev for EPOCHS
  # epochs (chosen from the dev-selected runs' best epochs), keep the last epoch, score test once;
  # dev is still scored each epoch but it is training data here (not a held-out figure)
  mkdir -p "$SCRATCH_CDR"
  cat "$DATA/cdr/train_filter.data" "$DATA/cdr/dev_filter.data" > "$SCRATCH_CDR/train_dev.data"
  $BIN/docunet-rt train --train "$SCRATCH_CDR/train_dev.data" --dev "$DATA/cdr/dev_filter.data" \
    --test "$DATA/cdr/test_filter.data" --out "$RUNS/cdr_typeorder_traindev_s${SEED:-66}" \
    --epochs "${EPOCHS:?EPOCHS: the epoch count chosen on dev}" --select last --batch-size 4 \
    --seed "${SEED:-66}" --entity-order type $RESUME "$@"
}
cdr_nounet() {  # the same run with the feed-forward ablation
  $BIN/docunet-rt train --train "$DATA/cdr/train_filter.data" --dev "$DATA/cdr/dev_filter.data" \
    --test "$DATA/cdr/test_filter.data" --out "$RUNS/cdr_nounet_s${SEED:-66}" --epochs 8 \
    --batch-size 4 --seed "${SEED:-66}" --no-unet $RESUME "$@"
}
redocred() {  # Re-DocRED 400/50/50 split of dev_revised.json (written to a scratch folder)
  [ -f "$SCRATCH/train.json" ] || $BIN/python benchmarks/redocred_split.py --out "$SCRATCH"
  $BIN/docunet-rt train --train "$SCRATCH/train.json" --dev "$SCRATCH/dev.json" \
    --test "$SCRATCH/test.json" --relations "$DATA/docred/rel_info.json" \
    --out "$RUNS/redocred_${NAME_SUFFIX:-docunet}_s${SEED:-66}" --epochs 10 --batch-size 4 \
    --lr-encoder 5e-5 --seed "${SEED:-66}" $RESUME "$@"
}
redocred_nounet() { NAME_SUFFIX=nounet redocred --no-unet "$@"; }
ner_cdr() {  # entity tagger for CDR raw text (issue 11): PubTator train, selected on dev
  $BIN/docunet-rt train-ner --train "$DATA/cdr/CDR_TrainingSet.PubTator.txt" \
    --dev "$DATA/cdr/CDR_DevelopmentSet.PubTator.txt" --out "$RUNS/ner_cdr" --epochs 8 \
    --batch-size 4 --seed "${SEED:-66}" $RESUME "$@"
  # the concept lexicon from train + dev annotations (never test)
  $BIN/docunet-rt lexicon "$DATA/cdr/CDR_TrainingSet.PubTator.txt" \
    "$DATA/cdr/CDR_DevelopmentSet.PubTator.txt" -o "$RUNS/ner_cdr/lexicon.json"
}
ner_docred() {  # entity tagger for DocRED-style text: DocRED test.json (gold mentions, no
  # relation labels) + the 400 training documents of the Re-DocRED split; selected on its dev 50
  [ -f "$SCRATCH/train.json" ] || $BIN/python benchmarks/redocred_split.py --out "$SCRATCH"
  $BIN/docunet-rt train-ner --train "$DATA/docred/test.json" --train "$SCRATCH/train.json" \
    --dev "$SCRATCH/dev.json" --out "$RUNS/ner_docred" --epochs 3 --batch-size 4 \
    --seed "${SEED:-66}" $RESUME "$@"
}

"${1:?usage: train_runs.sh cdr|cdr_type|cdr_type_traindev|cdr_nounet|redocred|redocred_nounet|ner_cdr|ner_docred [extra train options]}" "${@:2}"
