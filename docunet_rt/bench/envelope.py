"""The envelope of every result file: command, date, git commit, versions and machine.

Stdlib only. ``benchmarks/common.py`` re-exports these for the benchmark scripts; the library
(``run_bench``) uses them directly.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

# The directory holding the docunet_rt package: the repository root in a source checkout.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


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
    """The short commit of the source tree's repository; None for an installed package (or
    without git)."""
    if {"site-packages", "dist-packages"} & set(SOURCE_ROOT.parts):
        return None  # an installed package: a repository around the environment is not ours
    try:
        return subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=SOURCE_ROOT,
            text=True,
            stderr=subprocess.DEVNULL,
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def envelope(command: list[str] | str, **fields: Any) -> dict[str, Any]:
    """command, date, git_commit, versions, machine, then ``fields``."""
    cmd = command if isinstance(command, str) else shlex.join(command)
    return {
        "command": cmd,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "versions": versions(),
        "machine": machine(),
        **fields,
    }
