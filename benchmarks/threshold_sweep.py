"""Decision threshold chosen on dev: does moving the balanced-softmax threshold away from the
model's own (logit 0) help on held-out data?

For each checkpoint (or MODEL_DIR), the pair logits of the dev and test files are computed once;
relations are then decoded at every logit threshold of a grid (``decode.decode``, the runtime's
decoder) and scored (``metrics.score``, the training/evaluation scorer). The threshold with the
best dev F1 is applied to test and compared with test F1 at 0, so test is never used for the
choice. A global threshold is the cheap form of "adaptive-threshold decoding": it needs no
retraining. (``--min-score`` of ``extract`` applies a chosen threshold: min_score =
sigmoid(threshold).)

    python benchmarks/threshold_sweep.py --model /work/runs/redocred_docunet_e15_s66 \\
        --dev SPLIT/dev.json --test SPLIT/test.json --train-facts SPLIT/train.json \\
        --threads 1 --name threshold_redocred_e15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from common import envelope, write_result

from docunet_rt.data import read_documents
from docunet_rt.decode import decode, sigmoid
from docunet_rt.evaluate import pair_logits
from docunet_rt.metrics import score, train_facts

GRID = [round(float(t), 2) for t in np.arange(-2.0, 2.001, 0.1)]


def facts_at(pairs: list, logits: list, relations: list[str], threshold: float) -> list[set]:
    return [
        {
            (int(p[q, 0]), int(p[q, 1]), relations[r - 1])
            for q, r, _ in decode(lg, threshold=threshold)
        }
        for p, lg in zip(pairs, logits, strict=True)
    ]


def sweep(model: str, split: str, train: set | None, threads: int) -> dict[float, dict]:
    docs = read_documents(split)
    pairs, logits, relations = pair_logits(model, docs, threads=threads)
    out = {}
    for t in GRID:
        s = score(docs, facts_at(pairs, logits, relations, t), train).to_dict()
        out[t] = {k: s[k] for k in ("precision", "recall", "f1", "ign_f1") if k in s}
    return out


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
        dev, test = (sweep(m, f, train, args.threads) for f in (args.dev, args.test))
        best = max(GRID, key=lambda t: (dev[t]["f1"], -abs(t)))  # ties: nearest to 0
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
        grid=GRID,
        mean_test_f1_change=statistics.mean(changes),
        models=models,
        seconds=time.perf_counter() - t0,
    )
    print(f"wrote {write_result(args.name, payload)}")


if __name__ == "__main__":
    main()
