"""Shared helpers for benchmark scripts: data location and result files; the machine, version
and command envelope comes from ``docunet_rt.bench.envelope`` (re-exported here)."""

from __future__ import annotations

import json
import os
import sys
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
