"""Shared helpers for benchmark scripts: data location, machine and version info, result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def data_dir() -> Path:
    return Path(os.environ.get("DOCUNET_DATA", REPO.parent / "shared" / "data"))


def need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"{path} not found; set DOCUNET_DATA to the shared data folder")
    return path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """Installed distribution versions, read from package metadata (imports nothing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("docunet-rt", "torch", "transformers", "onnx", "onnxruntime-gpu", "onnxruntime",
                 "numpy", "tokenizers"):  # fmt: skip
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        info["memory_gb"] = round(int(mem) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
        info["avx512"] = "avx512f" in flags
        info["avx2"] = "avx2" in flags
        info["avx_vnni"] = "avx_vnni" in flags or "avx512_vnni" in flags
    except OSError:
        pass
    return info


def git_commit() -> str | None:
    try:
        return subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True, stderr=subprocess.DEVNULL
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def envelope(command: list[str] | str, **fields: Any) -> dict[str, Any]:
    cmd = command if isinstance(command, str) else shlex.join(command)
    return {
        "command": cmd,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "versions": versions(),
        "machine": machine(),
        **fields,
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
