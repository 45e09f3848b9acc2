"""Runtime benchmark: PyTorch eager vs ONNX Runtime fp32/int8, and on a GPU ONNX Runtime
CUDA/TensorRT against PyTorch CUDA (fp32, bf16), each only when it really runs there.

=============  ================================================================================
``runtimes``   what each runtime is: device, precision, the provider its name promises, its
               PyTorch baseline, its roofline peak (stdlib only; ``ALL_RUNTIMES``)
``harness``    ``run_bench``: corpus sample, one batch plan, one worker process per runtime,
               alternating passes, accuracy, targets → the result dict
``worker``     one runtime in its own process (``python -m docunet_rt.bench.worker SPEC``)
``peaks``      measured dense matmul peaks of the CPU and the GPU (the rooflines' ceilings)
``flops``      the analytic FLOP model (roofline) and its formula
``envelope``   command, date, git commit, versions and machine of a result file
``report``     the result's files: NAME.json, NAME.md and NAME.png
=============  ================================================================================

Importing this package imports only the stdlib modules ``options`` and ``runtimes`` (the CLI
validates ``--runtimes`` without numpy); every other name loads its module on first use
(numpy and the feature code; ONNX Runtime and torch load only in the worker processes).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..options import CPU_RUNTIMES, GPU_RUNTIMES, RUNTIMES
from .runtimes import (
    ALL_RUNTIMES,
    EXPECTED_PROVIDER,
    RUNTIME_TABLE,
    TORCH_CUDA_RUNTIMES,
    Runtime,
    provider_mismatch,
    roofline_peak,
)

# name → the module that defines it (imported on first use)
_LAZY = {
    **dict.fromkeys(("FORMULA", "EncoderDims", "conv3", "document_flops", "encoder_dims",
                     "encoder_flops", "head_flops", "unet_flops"), "flops"),
    **dict.fromkeys(("GRID", "STAGES", "TARGETS", "BenchOptions", "compare_to_baselines",
                     "evaluate_targets", "run_bench", "summarize_runtimes"), "harness"),
    **dict.fromkeys(("measure_gpu_matmul_peak", "measure_matmul_peak"), "peaks"),
    **dict.fromkeys(("HEADLINE", "gpu_notes", "headline_row", "headline_table", "markdown_table",
                     "providers_line", "render_markdown", "speedup_cell", "write_outputs",
                     "write_plots"), "report"),
}  # fmt: skip
_SUBMODULES = ("envelope", "flops", "harness", "peaks", "report", "worker")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


__all__ = [
    "ALL_RUNTIMES",
    "CPU_RUNTIMES",
    "EXPECTED_PROVIDER",
    "GPU_RUNTIMES",
    "RUNTIMES",
    "RUNTIME_TABLE",
    "TORCH_CUDA_RUNTIMES",
    "Runtime",
    "provider_mismatch",
    "roofline_peak",
    *sorted(_LAZY),
]
