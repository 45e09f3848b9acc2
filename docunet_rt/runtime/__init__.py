"""Torch-free extraction runtime: one inference core over an exported MODEL_DIR.

=================  ==============================================================================
``model_dir``      the MODEL_DIR contract: model.json, graph names/dtypes/axes, sha256 checks
``sessions``       the one place ONNX Runtime sessions are made (providers, options, stdout)
``merge``          window merge between the encoder and head graphs (numpy)
``graphs``         ONNX Runtime backend: encoder → merge → head for one batch
``results``        EntityRef, Triple, DocumentResult, ErrorRecord
``extractor``      ``Extractor``: prepare (parse + features) → infer (batches → backend → decode)
=================  ==============================================================================
"""

from __future__ import annotations

from ..options import DEVICES, PRECISIONS, ExtractOptions
from .extractor import Backend, Decoder, Extractor, Prepared, prepare_lines, prepare_records
from .model_dir import (
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    HEAD_INPUTS,
    HEAD_OUTPUTS,
    MODEL_FORMAT_VERSION,
    ModelDirError,
    ModelSpec,
    file_sha256,
)
from .results import DocumentResult, EntityRef, ErrorRecord, Triple
from .sessions import ORT_INSTALL, SessionConfig, make_session

__all__ = [
    "DEVICES",
    "ENCODER_INPUTS",
    "ENCODER_OUTPUTS",
    "HEAD_INPUTS",
    "HEAD_OUTPUTS",
    "MODEL_FORMAT_VERSION",
    "ORT_INSTALL",
    "PRECISIONS",
    "Backend",
    "Decoder",
    "DocumentResult",
    "EntityRef",
    "ErrorRecord",
    "ExtractOptions",
    "Extractor",
    "ModelDirError",
    "ModelSpec",
    "Prepared",
    "SessionConfig",
    "Triple",
    "file_sha256",
    "make_session",
    "prepare_lines",
    "prepare_records",
]
