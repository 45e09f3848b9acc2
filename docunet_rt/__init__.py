"""docunet-rt: DocuNet document-level relation extraction — training, ONNX export, extraction.

``import docunet_rt`` never imports torch: training names (``DocuNet``, ``train``,
``load_checkpoint``…) load lazily on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .config import DocuNetConfig  # noqa: E402
from .data import DataError, Document, Entity, Label, Mention, read_documents  # noqa: E402

_LAZY = {
    "DocuNet": "docunet_rt.model",
    "load_checkpoint": "docunet_rt.checkpoint",
    "train": "docunet_rt.train",
    "TrainOptions": "docunet_rt.train",
    "Extractor": "docunet_rt.runtime",
    "ExtractOptions": "docunet_rt.runtime",
    "Triple": "docunet_rt.runtime",
    "DocumentResult": "docunet_rt.runtime",
}

__all__ = [
    "__version__",
    "DocuNetConfig",
    "DataError",
    "Document",
    "Entity",
    "Label",
    "Mention",
    "read_documents",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'docunet_rt' has no attribute {name!r}")
