"""What export traces with: the source checkpoint (loaded with one-line errors) and a
synthetic batch whose every dynamic dimension is at least 2, so no axis is specialised."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import DocuNetConfig
from ..features import Batch, TokenizerInfo, build_features, collate
from ..synth import synthetic_document, vocabulary_words

logger = logging.getLogger("docunet_rt")


class ExportError(ValueError):
    """An export that cannot proceed (bad arguments, unreadable checkpoint, failed check)."""


def load_source(ckpt_dir: str | os.PathLike) -> tuple[Any, TokenizerInfo, dict[str, Any]]:
    """(DocuNet in eval mode, tokenizer, checkpoint config.json) with one-line errors."""
    from ..checkpoint import load_checkpoint, read_checkpoint_config

    p = Path(ckpt_dir)
    what = "a checkpoint directory written by docunet-rt train (config.json, model.safetensors, tokenizer.json)"
    if not p.is_dir():
        raise FileNotFoundError(f"checkpoint {p} does not exist; expected {what}")
    try:
        meta = read_checkpoint_config(p)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}; expected {what}") from None
    except ValueError as e:
        raise ExportError(f"corrupt checkpoint: {e}") from None
    for name in ("model.safetensors", "tokenizer.json"):
        if not (p / name).is_file():
            raise FileNotFoundError(f"checkpoint {p} has no {name}; expected {what}")
    try:
        model, tok = load_checkpoint(p)
    except Exception as e:  # safetensors/transformers raise their own types on corrupt files
        raise ExportError(
            f"corrupt checkpoint {p}: cannot rebuild the model ({type(e).__name__}: {e})"
        ) from None
    return model, tok, meta


# ------------------------------------------------------------------------------------------------
# Tracing batch (export)
# ------------------------------------------------------------------------------------------------


def trace_batch(config: DocuNetConfig, tok: TokenizerInfo) -> Batch:
    """Two synthetic documents — one spanning ≥ 3 windows, one shorter — collated with
    N ≥ 8 and M ≥ 2, so every dynamic dimension is ≥ 2 at trace time."""
    words = vocabulary_words(tok)
    c = config.max_length - 2
    docs = [
        synthetic_document(words, int(2.2 * c), 6, seed=11, doc_id="trace0"),
        synthetic_document(words, max(8, c // 3), 3, seed=12, doc_id="trace1"),
    ]
    every_pair = replace(config, pair_types=None)  # shapes only: score all pairs, Q >= 2
    feats = [build_features(d, tok, every_pair) for d in docs]
    batch = collate(feats, tok, config, min_entities=8, min_mentions=2)
    dims = trace_dims(batch)
    small = [k for k, v in dims.items() if v < 2]
    if small:  # pragma: no cover - guarded by construction
        raise ValueError(f"tracing batch has size-1 dynamic dimension(s) {small}: {dims}")
    logger.debug("tracing shapes: %s", dims)
    return batch


def trace_dims(batch: Batch) -> dict[str, int]:
    W, L = batch.input_ids.shape
    B, N, M = batch.entity_mentions.shape
    return {
        "W": W, "L": L, "R": batch.win_rows.shape[1], "B": B, "T": int(batch.seq_len.max()),
        "P": batch.mention_pos.shape[1], "N": N, "M": M, "Q": batch.pair_index.shape[0],
        "K": batch.inc_win.shape[0],
    }  # fmt: skip
