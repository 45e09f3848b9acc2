"""Turning pair logits into relations (numpy only; shared by PyTorch evaluation and the runtime)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def score_to_logit(min_score: float) -> float:
    """The logit threshold equivalent to ``sigmoid(logit) > min_score``."""
    if not 0.0 < min_score < 1.0:
        raise ValueError(f"min_score must be in (0, 1), got {min_score}")
    return math.log(min_score / (1.0 - min_score))


def decode(
    logits: np.ndarray,
    *,
    threshold: float = 0.0,
    top_k: int | None = None,
    allowed: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """Threshold decoding: relation r (>= 1) of pair q is predicted when logit[q, r] > threshold.

    The threshold class is the constant 0 (balanced loss), so ``threshold=0`` is the model's own
    decision. ``top_k`` keeps at most k relations per pair (highest logits); ``allowed`` is an
    optional boolean mask over relation columns. Returns (pair row, relation column, logit),
    sorted by pair row then column.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be (pairs, labels), got shape {logits.shape}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    rel = logits[:, 1:]
    hit = rel > threshold
    if allowed is not None:
        hit &= allowed[None, 1:]
    if top_k is not None and rel.shape[1] > top_k:
        # the k-th largest logit per row; keep logits >= it (ties broken by column order below)
        order = np.argsort(-rel, axis=1, kind="stable")[:, :top_k]
        keep = np.zeros_like(hit)
        np.put_along_axis(keep, order, True, axis=1)
        hit &= keep
    q, r = np.nonzero(hit)
    return [(int(a), int(b) + 1, float(rel[a, b])) for a, b in zip(q, r, strict=True)]


def to_facts(
    pairs: Sequence[np.ndarray],
    logits: Sequence[np.ndarray],
    relations: Sequence[str],
    threshold: float = 0.0,
) -> list[set[tuple[int, int, str]]]:
    """Threshold-decoded (head, tail, relation id) facts per document."""
    return [
        {
            (int(p[q, 0]), int(p[q, 1]), relations[r - 1])
            for q, r, _ in decode(lg, threshold=threshold)
        }
        for p, lg in zip(pairs, logits, strict=True)
    ]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
