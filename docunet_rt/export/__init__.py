"""ONNX export: checkpoint → MODEL_DIR (graphs, tokenizer, model.json), precision variants and
parity checks against PyTorch. Needs the training extras (torch, transformers, onnx).

``tracing`` (source checkpoint, tracing batch) → ``onnx`` (graphs, model.json through the
MODEL_DIR contract in ``runtime/model_dir.py``) and ``quantize`` (int8/fp16/optimised
variants); ``parity`` compares a MODEL_DIR with its checkpoint through ``runtime.Extractor``.
"""

from __future__ import annotations

from ..synth import synthetic_documents
from .onnx import (
    DEFAULT_OPSET,
    DEFAULT_PRECISIONS,
    EXPORTERS,
    OPSET_RANGES,
    ExportResult,
    check_opset,
    export_model,
    parse_precisions,
)
from .parity import ParityReport, check_parity, check_parity_path
from .quantize import convert_fp16, optimize_fp32, quantize_int8
from .tracing import ExportError, load_source

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_PRECISIONS",
    "EXPORTERS",
    "OPSET_RANGES",
    "ExportError",
    "ExportResult",
    "ParityReport",
    "check_opset",
    "check_parity",
    "check_parity_path",
    "convert_fp16",
    "export_model",
    "load_source",
    "optimize_fp32",
    "parse_precisions",
    "quantize_int8",
    "synthetic_documents",
]
