"""The decision threshold chosen on dev (numpy only).

The balanced softmax decides at logit 0. A model that trained slowly, or a label set where
recall and precision are out of balance, can do better on held-out data at another logit;
:func:`tune_threshold` finds the best one on a labelled dev set (the same decoder and scorer
as evaluation), and ``DocuNetConfig.decision_threshold`` carries it into the checkpoint and the
MODEL_DIR, where every runtime uses it unless ``--min-score`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .data import Document
from .decode import to_facts
from .metrics import score

# logits -2.0, -1.9, … 2.0: wide enough for every model measured (benchmarks/threshold_sweep.py
# chose -0.8 … +0.1), fine enough that neighbouring points differ by a few triples
THRESHOLD_GRID = tuple(round(-2.0 + 0.1 * i, 1) for i in range(41))


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float  # the logit with the best dev F1 (ties: the one nearest 0)
    f1: float  # dev F1 at it
    f1_at_zero: float  # dev F1 at the model's own decision (logit 0)
    documents: int
    curve: tuple[tuple[float, float, float, float], ...]  # (threshold, precision, recall, F1)

    def to_dict(self) -> dict:
        """JSON-ready (the curve as lists, as it reads back from config.json)."""
        return {**asdict(self), "curve": [list(row) for row in self.curve]}


def tune_threshold(
    docs: Sequence[Document],
    pairs: Sequence[np.ndarray],
    logits: Sequence[np.ndarray],
    relations: Sequence[str],
    *,
    train: set | None = None,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> ThresholdChoice:
    """The logit threshold of ``grid`` with the best F1 on the labelled ``docs`` (whose pair
    logits are given, in document order); ``train`` facts make it DocRED's F1 with Ign F1 beside
    it. The grid must contain 0 (the reference)."""
    if 0.0 not in grid:
        raise ValueError("the threshold grid must contain 0 (the model's own decision)")
    if not any(d.labels for d in docs):
        raise ValueError("tuning the decision threshold needs labelled documents")
    curve = []
    for t in grid:
        s = score(docs, to_facts(pairs, logits, relations, threshold=t), train)
        curve.append((float(t), s.precision, s.recall, s.f1))
    best = max(curve, key=lambda row: (row[3], -abs(row[0])))
    at_zero = next(row for row in curve if row[0] == 0.0)
    return ThresholdChoice(best[0], best[3], at_zero[3], len(docs), tuple(curve))
