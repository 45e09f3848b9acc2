"""Shared helpers for benchmark scripts: data location and result files; the machine, version
and command envelope comes from ``docunet_rt.bench.envelope`` (re-exported here)."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from docunet_rt.bench.envelope import cpu_model, envelope, git_commit, machine, versions

__all__ = [
    "REPO",
    "RESULTS",
    "cpu_model",
    "data_dir",
    "envelope",
    "git_commit",
    "machine",
    "need",
    "side_by_side",
    "versions",
    "write_result",
]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def data_dir() -> Path:
    return Path(os.environ.get("DOCUNET_DATA", REPO.parent / "shared" / "data"))


def need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"{path} not found; set DOCUNET_DATA to the shared data folder")
    return path


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def side_by_side(extractors: dict[str, Any], docs: list, repeats: int) -> dict[str, dict]:
    """docs/s of each ``runtime.Extractor`` over the same documents, passes alternating between
    them ``repeats`` times after one warm-up pass of 8 documents each; per extractor the median,
    every pass and the median seconds spent in the head."""
    for e in extractors.values():  # warm-up: sessions built, first kernels run
        list(e.extract(docs[:8]))
    runs: dict[str, list[float]] = {k: [] for k in extractors}
    head: dict[str, list[float]] = {k: [] for k in extractors}
    for _ in range(repeats):
        for k, e in extractors.items():
            before = dict(e.timings)
            t0 = time.perf_counter()
            list(e.extract(docs))
            runs[k].append(len(docs) / (time.perf_counter() - t0))
            head[k].append(e.timings["head"] - before.get("head", 0.0))
            print(f"{k}: {runs[k][-1]:.2f} docs/s (head {head[k][-1]:.1f}s)", flush=True)
    return {
        k: {"docs_per_s": statistics.median(v), "runs": v,
            "head_seconds_median": statistics.median(head[k])}
        for k, v in runs.items()
    }  # fmt: skip
