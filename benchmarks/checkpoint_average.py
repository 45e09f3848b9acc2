"""Checkpoint averaging against single epochs, on one run trained with ``train --keep-epochs``.

Candidates: each single kept epoch near the end and the average of the last K kept epochs
(K = 2 … --max-k), every one written by ``checkpoint.average_checkpoint`` (what ``docunet-rt
average`` runs) into a scratch folder and scored as ``evaluate`` scores (``pair_logits``,
``decode.to_facts``, ``metrics.score``). Dev F1 chooses; test is scored for every candidate but
only reported (never used for a choice): the rows to compare are the run's own dev-selected
epoch and the dev-chosen average.

    python benchmarks/checkpoint_average.py --run /work/runs/redocred_adaptive_s66 \\
        --dev SPLIT/dev.json --test SPLIT/test.json --train-facts SPLIT/train.json \\
        --threads 1 --name checkpoint_average_redocred
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from common import envelope, write_result

from docunet_rt.checkpoint import average_checkpoint, kept_epochs, read_checkpoint_config
from docunet_rt.data import read_documents
from docunet_rt.decode import to_facts
from docunet_rt.evaluate import pair_logits
from docunet_rt.metrics import score, train_facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="run directory trained with --keep-epochs")
    ap.add_argument("--dev", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--train-facts", help="training file, for Ign F1 (DocRED)")
    ap.add_argument("--max-k", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scratch", default="/tmp/docunet_scratch/checkpoint_average")
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    run, scratch = Path(args.run), Path(args.scratch)
    have = kept_epochs(run)
    if not have:
        sys.exit(f"{run}: no per-epoch weights (train with --keep-epochs)")
    best = read_checkpoint_config(run)["best"]["epoch"]  # the epoch the run kept (dev-selected)
    candidates = {f"epoch {e}": [e] for e in sorted({best, *have[-args.max_k :]})}
    for k in range(2, min(args.max_k, len(have)) + 1):
        candidates[f"last {k}"] = have[-k:]
    splits = {s: read_documents(getattr(args, s)) for s in ("dev", "test")}
    train = train_facts(read_documents(args.train_facts)) if args.train_facts else None
    t0 = time.perf_counter()
    rows = []
    for label, epochs in candidates.items():
        ckpt = scratch / label.replace(" ", "_")
        shutil.rmtree(ckpt, ignore_errors=True)
        average_checkpoint(run, epochs, ckpt)
        scores = {}
        for split, docs in splits.items():
            pairs, logits, relations = pair_logits(ckpt, docs, threads=args.threads)
            r = score(docs, to_facts(pairs, logits, relations), train).to_dict()
            scores[split] = {k: r.get(k) for k in ("precision", "recall", "f1", "ign_f1")}
        rows.append({"candidate": label, "epochs": epochs, **scores})
        print(f"{label}: dev F1 {scores['dev']['f1']:.4f}  test F1 {scores['test']['f1']:.4f}")
        shutil.rmtree(ckpt, ignore_errors=True)
    single = next(r for r in rows if r["candidate"] == f"epoch {best}")
    averages = [r for r in rows if r["candidate"].startswith("last ")]
    chosen = max(averages, key=lambda r: r["dev"]["f1"], default=None)
    out = {
        "run": str(run.resolve()),
        "kept_epochs": have,
        "dev_selected_epoch": best,
        "dev_selected": single,
        "dev_chosen_average": chosen,
        "test_f1_change": chosen["test"]["f1"] - single["test"]["f1"] if chosen else None,
        "candidates": rows,
        "seconds": time.perf_counter() - t0,
    }
    print(write_result(args.name, envelope(sys.argv, kind="checkpoint_average", **out)))


if __name__ == "__main__":
    main()
