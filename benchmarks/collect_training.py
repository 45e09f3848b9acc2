"""Turn a finished (or running) training run into a committed result JSON.

    python benchmarks/collect_training.py RUN_DIR --name cdr_docunet_seed66 --command "docunet-rt train ..."

Reads RUN_DIR/metrics.jsonl (per-epoch dev scores; test scores at each new dev best) and
RUN_DIR/config.json; reports the dev-selected epoch (the last one for ``train --select last``)
and its test score, never a test-selected one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import envelope, write_result


def summarize(run: Path) -> dict:
    all_rows = [
        json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()
    ]
    rows = [r for r in all_rows if "event" not in r]
    final_test = [r for r in all_rows if r.get("event") == "test"]
    cfg = json.loads((run / "config.json").read_text())
    select = cfg["training"].get("select", "dev")
    best = max(rows, key=lambda r: r["dev"]["f1"])  # first epoch with the highest dev F1
    for r in rows:
        if r["dev"]["f1"] == best["dev"]["f1"]:
            best = r
            break
    if select == "last":  # train --select last (the train+dev protocol): the final epoch is kept
        best = rows[-1]
    epochs = [
        {
            "epoch": r["epoch"],
            "train_loss": r["train_loss"],
            "dev_f1": r["dev"]["f1"],
            "dev_ign_f1": r["dev"].get("ign_f1"),
            "test_f1": r.get("test", {}).get("f1"),
            "test_ign_f1": r.get("test", {}).get("ign_f1"),
            "train_seconds": r["train_seconds"],
            "epoch_seconds": r["epoch_seconds"],
            "train_docs_per_s": r["train_docs_per_s"],
        }
        for r in rows
    ]
    return {
        "run_dir": str(run),
        "epochs_done": len(rows),
        "epochs_scheduled": cfg["training"].get("epochs"),
        "selected_on": "last epoch" if select == "last" else "dev",
        "selected_epoch": best["epoch"],
        "dev": best["dev"],
        "test": final_test[-1]["test"] if final_test else best.get("test"),
        # train --tune-threshold: "test" is at this logit, and test_at_logit_0 at the model's own
        "decision_threshold": final_test[-1].get("decision_threshold", 0.0) if final_test else 0.0,
        "test_at_logit_0": final_test[-1].get("test_at_logit_0") if final_test else None,
        # the tuning record (chosen logit, dev F1 at it and at 0, the dev curve); None if untuned
        "threshold_choice": (cfg.get("best") or {}).get("threshold"),
        "per_epoch": epochs,
        "mean_train_seconds_per_epoch": sum(e["train_seconds"] for e in epochs) / len(epochs),
        # the fastest epoch is the one least disturbed by other jobs on the machine
        "min_train_seconds_per_epoch": min(e["train_seconds"] for e in epochs),
        "max_train_docs_per_s": max(e["train_docs_per_s"] for e in epochs),
        "mean_train_docs_per_s": sum(e["train_docs_per_s"] for e in epochs) / len(epochs),
        "model": {k: v for k, v in cfg["model"].items() if k not in ("relation_names",)},
        "training": cfg["training"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--command", required=True, help="The exact training command that was run.")
    ap.add_argument("--note", default=None)
    ap.add_argument(
        "--test-json",
        type=Path,
        default=None,
        help="`docunet-rt evaluate --json` of the dev-selected checkpoint on test, for a run that "
        "was stopped before it scored test itself",
    )
    args = ap.parse_args()
    summary = summarize(args.run)
    if args.test_json is not None and summary["test"] is None:
        summary["test"] = json.loads(args.test_json.read_text())["scores"]
        summary["test_scored_by"] = "docunet-rt evaluate (the run was stopped before the end)"
    payload = envelope(args.command, kind="training", **summary)
    if args.note:
        payload["note"] = args.note
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
