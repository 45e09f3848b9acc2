"""Evaluate or predict with a checkpoint (PyTorch) or an exported MODEL_DIR (ONNX Runtime).

Both run through the same ``runtime.Extractor`` (features, batching, decoding), with the
PyTorch model as its backend for a checkpoint, so int8/fp16 accuracy is measured by the same
code as the PyTorch model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import DataError, Document, read_documents, write_result
from .decode import to_facts
from .metrics import score, train_facts
from .options import TRAIN_INSTALL
from .runtime.extractor import Extractor

# Called with (documents done, documents in all) before the first batch and after each one.
Progress = Callable[[int, int], None]


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
    try:
        import torch

        from .checkpoint import load_checkpoint
    except ImportError as e:
        name = (e.name or "torch").split(".")[0]
        raise ImportError(
            f"running a checkpoint needs the Python package {name!r}, which is not installed: "
            f"{TRAIN_INSTALL} (or export the checkpoint and use the MODEL_DIR)"
        ) from e

    if threads:
        torch.set_num_threads(threads)
    model, tok = load_checkpoint(path)
    return torch_extractor(model, tok)


def _logits(
    ex: Extractor, docs: Sequence[Document], progress: Progress | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(pairs, logits) per document, in input order (``Extractor.logits``)."""
    feats = [ex.features(d) for d in docs]
    if progress:
        progress(0, len(feats))
    return [f.pairs for f in feats], ex.logits(feats, progress=progress)


def pair_logits(
    path: str | os.PathLike,
    docs: Sequence[Document],
    *,
    precision: str = "fp32",
    threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(pairs per doc, logits per doc, relation ids) from a checkpoint or a MODEL_DIR (the
    logits themselves: decide at the model's ``config.decision_threshold``)."""
    ex = load_extractor(path, precision=precision, threads=threads)
    pairs, logits = _logits(ex, docs, progress)
    return pairs, logits, list(ex.relations)


def check_label_space(
    docs: Sequence[Document], relations: Sequence[str], *, source: str | None = None
) -> None:
    """A :class:`DataError` when the documents' labels use relation ids that the model does not
    have (scores against labels a model cannot predict mean nothing)."""
    known = set(relations)
    unknown = sorted({lab.relation for d in docs for lab in d.labels or []} - known)
    if not unknown:
        return

    def few(ids: Sequence[str]) -> str:
        more = f", ... ({len(ids)} in all)" if len(ids) > 5 else ""
        return ", ".join(ids[:5]) + more

    raise DataError(
        f"the data is labelled with relations the model does not have: unknown relation id(s) "
        f"{few(unknown)}; the model's relations: {few(list(relations))}; evaluate a model "
        "trained on this label set",
        source=source,
    )


def evaluate_path(
    path: str | os.PathLike,
    data: str | os.PathLike,
    *,
    train_file: str | os.PathLike | None = None,
    fmt: str = "auto",
    precision: str = "fp32",
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score a checkpoint or MODEL_DIR on labelled ``data``; ``progress(done, total)`` is
    called as documents are scored. Labels outside the model's label set are an error."""
    docs = read_documents(data, fmt)
    if not any(d.labels for d in docs):
        raise ValueError(f"{data} has no labels to score against")
    ex = load_extractor(path, precision=precision, threads=threads)
    check_label_space(docs, ex.relations, source=str(data))
    train = train_facts(read_documents(train_file)) if train_file else None
    t0 = time.perf_counter()
    pairs, logits = _logits(ex, docs, progress)
    seconds = time.perf_counter() - t0
    threshold = ex.config.decision_threshold  # the model's decision (0 unless tuned on dev)
    scores = score(docs, to_facts(pairs, logits, list(ex.relations), threshold), train)
    return {
        "model": str(path),
        "data": str(data),
        "precision": precision,
        "decision_threshold": threshold,
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
    progress: Progress | None = None,
) -> int:
    """Write the predictions for ``data`` in the DocRED result format; ``progress(done, total)``
    is called as documents are run. Returns the number of predicted relations."""
    docs = read_documents(data, fmt)
    ex = load_extractor(path, precision=precision)
    pairs, logits = _logits(ex, docs, progress)
    facts = to_facts(pairs, logits, list(ex.relations), ex.config.decision_threshold)
    rows = [
        (d.title or d.id, h, t, r)
        for d, fs in zip(docs, facts, strict=True)
        for h, t, r in sorted(fs)
    ]
    write_result(rows, out)
    return len(rows)
