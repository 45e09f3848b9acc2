"""Evaluate or predict with a checkpoint (PyTorch) or an exported MODEL_DIR (ONNX Runtime).

Both run through the same ``runtime.Extractor`` (features, batching, decoding), with the
PyTorch model as its backend for a checkpoint, so int8/fp16 accuracy is measured by the same
code as the PyTorch model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import Document, read_documents, write_result
from .decode import to_facts
from .metrics import score, train_facts
from .runtime.extractor import Extractor


def is_model_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "model.json").is_file()


def torch_extractor(model: Any, tok: Any, device: Any = "cpu") -> Extractor:
    """The runtime's Extractor over a PyTorch model (``model.TorchBackend``)."""
    from .model import TorchBackend

    return Extractor.from_backend(TorchBackend(model, tok, device), model.config, tok)


def load_extractor(
    path: str | os.PathLike, *, precision: str = "fp32", threads: int | None = None
) -> Extractor:
    """An Extractor over an exported MODEL_DIR (ONNX Runtime CPU) or a checkpoint (PyTorch)."""
    if is_model_dir(path):
        return Extractor(path, device="cpu", precision=precision, threads=threads)
    if precision != "fp32":
        raise ValueError(
            f"--precision {precision} needs an exported MODEL_DIR; a checkpoint runs in fp32"
        )
    import torch

    from .checkpoint import load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    model, tok = load_checkpoint(path)
    return torch_extractor(model, tok)


def pair_logits(
    path: str | os.PathLike,
    docs: Sequence[Document],
    *,
    precision: str = "fp32",
    threads: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(pairs per doc, logits per doc, relation ids) from a checkpoint or a MODEL_DIR."""
    ex = load_extractor(path, precision=precision, threads=threads)
    feats = [ex.features(d) for d in docs]
    return [f.pairs for f in feats], ex.logits(feats), list(ex.relations)


def evaluate_path(
    path: str | os.PathLike,
    data: str | os.PathLike,
    *,
    train_file: str | os.PathLike | None = None,
    fmt: str = "auto",
    precision: str = "fp32",
    threads: int | None = None,
) -> dict[str, Any]:
    docs = read_documents(data, fmt)
    if not any(d.labels for d in docs):
        raise ValueError(f"{data} has no labels to score against")
    train = train_facts(read_documents(train_file)) if train_file else None
    t0 = time.perf_counter()
    pairs, logits, relations = pair_logits(path, docs, precision=precision, threads=threads)
    seconds = time.perf_counter() - t0
    scores = score(docs, to_facts(pairs, logits, relations), train)
    return {
        "model": str(path),
        "data": str(data),
        "precision": precision,
        "documents": len(docs),
        "seconds": seconds,
        "scores": scores.to_dict(),
    }


def predict_path(
    path: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fmt: str = "auto",
    precision: str = "fp32",
) -> int:
    docs = read_documents(data, fmt)
    pairs, logits, relations = pair_logits(path, docs, precision=precision)
    facts = to_facts(pairs, logits, relations)
    rows = [
        (d.title or d.id, h, t, r)
        for d, fs in zip(docs, facts, strict=True)
        for h, t, r in sorted(fs)
    ]
    write_result(rows, out)
    return len(rows)
