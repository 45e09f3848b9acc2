"""What export calibrates the int8 head's convolutions with: head-graph inputs computed by the
fp32 graphs from real documents (a file of the training data's kind; by default the dev file
the checkpoint was selected on), batched the way the runtime batches them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DocuNetConfig
from ..data import Document, read_documents
from ..features import TokenizerInfo, build_features, collate, plan_batches, scored_pairs
from ..runtime.graphs import OrtGraphs
from .tracing import ExportError

logger = logging.getLogger("docunet_rt")

CALIBRATION_DOCS = 64  # documents spread over the file; ranges are min/max, so more add little
CALIBRATION_TOKENS = 4096  # padded encoder tokens per batch, the runtime's CPU default


def calibration_source(choice: str | os.PathLike | None, meta: dict[str, Any]) -> Path | None:
    """The calibration file: ``None``/"none" → none; "auto" → the checkpoint's dev file (its
    config.json "training.dev") when it exists here, else none; anything else → that file."""
    if choice is None or str(choice) == "none":
        return None
    if str(choice) == "auto":
        dev = (meta.get("training") or {}).get("dev")
        if dev and Path(dev).is_file():
            return Path(dev)
        logger.warning(
            "int8: the checkpoint's dev file %s is not here; the head's convolutions stay fp32 "
            "(pass --calibration FILE to quantise them)", dev or "(none recorded)",
        )  # fmt: skip
        return None
    p = Path(choice)
    if not p.is_file():
        raise ExportError(
            f"--calibration {p}: no such file (a DocRED/CDR/PubTator/JSONL file, auto or none)"
        )
    return p


def pick_documents(
    docs: list[Document], config: DocuNetConfig, n: int = CALIBRATION_DOCS
) -> list[Document]:
    """Up to ``n`` documents with a pair the model scores, evenly spread over ``docs``."""
    usable = [d for d in docs if scored_pairs(d, config)]
    step = max(1, len(usable) // n)
    return usable[::step][:n]


def calibration_feeds(
    path: str | os.PathLike,
    encoder: str | os.PathLike,
    head: str | os.PathLike,
    tok: TokenizerInfo,
    config: DocuNetConfig,
    *,
    docs: int = CALIBRATION_DOCS,
) -> Iterator[dict[str, np.ndarray]]:
    """Head-graph feeds, one per batch, for ``docs`` documents of ``path`` run through the fp32
    ``encoder`` graph and the numpy window merge (``OrtGraphs.head_feed``)."""
    picked = pick_documents(read_documents(path, skip_bad=True), config, docs)
    if not picked:
        raise ExportError(f"--calibration {path}: no document with an entity pair to score")
    feats = [build_features(d, tok, config) for d in picked]
    graphs = OrtGraphs(encoder, head, tok, config)
    batches = plan_batches(feats, config.max_length, CALIBRATION_TOKENS, config=config)
    logger.info("int8: calibrating on %d documents of %s", len(picked), path)
    for idx in batches:
        batch = collate([feats[i] for i in idx], tok, config)
        hidden, rows = graphs.encode(batch, CALIBRATION_TOKENS)
        yield OrtGraphs.head_feed(batch, hidden, rows)
