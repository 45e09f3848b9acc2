"""Runtime benchmark: PyTorch eager vs ONNX Runtime fp32/int8 (GPU providers when they work).

=============  ================================================================================
``harness``    ``run_bench``: corpus sample, one batch plan, one worker process per runtime,
               alternating passes, accuracy, targets → the result dict
``worker``     one runtime in its own process (``python -m docunet_rt.bench.worker SPEC``)
``flops``      the analytic FLOP model (roofline) and its formula
``envelope``   command, date, git commit, versions and machine of a result file
``report``     the result's files: NAME.json, NAME.md and NAME.png
=============  ================================================================================

Importing this package imports numpy and the feature code; ONNX Runtime and torch load only in
the worker processes.
"""

from __future__ import annotations

from ..options import CPU_RUNTIMES, GPU_RUNTIMES, RUNTIMES
from .flops import (
    FORMULA,
    EncoderDims,
    conv3,
    document_flops,
    encoder_dims,
    encoder_flops,
    head_flops,
    unet_flops,
)
from .harness import (
    GRID,
    STAGES,
    TARGETS,
    BenchOptions,
    evaluate_targets,
    measure_matmul_peak,
    run_bench,
)
from .report import (
    HEADLINE,
    headline_row,
    headline_table,
    markdown_table,
    render_markdown,
    write_outputs,
    write_plots,
)

__all__ = [
    "CPU_RUNTIMES",
    "FORMULA",
    "GPU_RUNTIMES",
    "GRID",
    "HEADLINE",
    "RUNTIMES",
    "STAGES",
    "TARGETS",
    "BenchOptions",
    "EncoderDims",
    "conv3",
    "document_flops",
    "encoder_dims",
    "encoder_flops",
    "evaluate_targets",
    "head_flops",
    "headline_row",
    "headline_table",
    "markdown_table",
    "measure_matmul_peak",
    "render_markdown",
    "run_bench",
    "unet_flops",
    "write_outputs",
    "write_plots",
]
