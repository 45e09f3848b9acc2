"""Decision threshold chosen on dev: does moving the balanced-softmax threshold away from the
model's own (logit 0) help on held-out data?

For each checkpoint (or MODEL_DIR), the pair logits of the dev and test files are computed once;
``calibrate.tune_threshold`` (what ``train --tune-threshold`` runs) decodes them at every logit of
its grid with the runtime's decoder and scores them with the evaluation scorer. The threshold
with the best dev F1 is applied to test and compared with test F1 at 0, so test is never used
for the choice. A global threshold is the cheap form of "adaptive-threshold decoding": it needs
no retraining.

    python benchmarks/threshold_sweep.py --model /work/runs/redocred_docunet_e15_s66 \\
        --dev SPLIT/dev.json --test SPLIT/test.json --train-facts SPLIT/train.json \\
        --threads 1 --name threshold_redocred_e15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from common import envelope, write_result

from docunet_rt.calibrate import THRESHOLD_GRID, tune_threshold
from docunet_rt.data import read_documents
from docunet_rt.decode import sigmoid
from docunet_rt.evaluate import pair_logits
from docunet_rt.metrics import train_facts


def sweep(model: str, split: str, train: set | None, threads: int) -> tuple[float, dict]:
    """(the threshold this split would choose, {threshold: P/R/F1})."""
    docs = read_documents(split)
    pairs, logits, relations = pair_logits(model, docs, threads=threads)
    choice = tune_threshold(docs, pairs, logits, relations, train=train)
    return choice.threshold, {
        t: {"precision": p, "recall": r, "f1": f} for t, p, r, f in choice.curve
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", required=True, help="checkpoints or MODEL_DIRs")
    ap.add_argument("--dev", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--train-facts", help="training file, for Ign F1 (DocRED)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    train = train_facts(read_documents(args.train_facts)) if args.train_facts else None
    t0 = time.perf_counter()
    models = []
    for m in args.model:
        (best, dev), (_, test) = (sweep(m, f, train, args.threads) for f in (args.dev, args.test))
        row = {
            "model": m,
            "chosen_threshold": best,
            "chosen_min_score": sigmoid(best),
            "dev_f1_at_0": dev[0.0]["f1"],
            "dev_f1_at_chosen": dev[best]["f1"],
            "test_at_0": test[0.0],
            "test_at_chosen": test[best],
            "test_f1_change": test[best]["f1"] - test[0.0]["f1"],
            "dev_curve": dev,
            "test_curve": test,
        }
        print(
            f"{m}: threshold {best:+.1f} (dev F1 {row['dev_f1_at_0']:.4f} → "
            f"{row['dev_f1_at_chosen']:.4f}); test F1 {test[0.0]['f1']:.4f} → "
            f"{test[best]['f1']:.4f}",
            flush=True,
        )
        models.append(row)
    changes = [r["test_f1_change"] for r in models]
    payload = envelope(
        sys.argv,
        kind="threshold_sweep",
        dev=args.dev,
        test=args.test,
        grid=list(THRESHOLD_GRID),
        mean_test_f1_change=statistics.mean(changes),
        models=models,
        seconds=time.perf_counter() - t0,
    )
    print(f"wrote {write_result(args.name, payload)}")


if __name__ == "__main__":
    main()
