"""ONNX export: checkpoint → MODEL_DIR (graphs, tokenizer, model.json), precision variants and
parity checks against PyTorch. Needs the training extras (torch, transformers, onnx)."""

from __future__ import annotations

from .onnx import (
    DEFAULT_OPSET,
    DEFAULT_PRECISIONS,
    EXPORTERS,
    OPSET_RANGES,
    ExportError,
    ExportResult,
    check_opset,
    export_model,
    parse_precisions,
)
from .parity import ParityReport, check_parity, check_parity_path, synthetic_documents
from .quantize import convert_fp16, optimize_fp32, quantize_int8

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
    "optimize_fp32",
    "parse_precisions",
    "quantize_int8",
    "synthetic_documents",
]
