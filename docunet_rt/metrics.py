"""Evaluation: DocRED official semantics (P/R/F1, Ign F1) and CDR/GDA binary F1 over candidates.

numpy-free and torch-free: predictions are sets of (head, tail, relation id) per document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .data.document import Document

Fact = tuple[int, int, str]


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def train_facts(docs: Iterable[Document]) -> set[tuple[str, str, str]]:
    """Facts seen in training, as the official scorer builds them: every (head mention name,
    tail mention name, relation) combination of every labelled triple."""
    facts: set[tuple[str, str, str]] = set()
    for d in docs:
        for lab in d.labels or []:
            for mh in d.entities[lab.head].mentions:
                for mt in d.entities[lab.tail].mentions:
                    facts.add((mh.name, mt.name, lab.relation))
    return facts


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    ign_f1: float | None = None
    predicted: int = 0
    gold: int = 0
    correct: int = 0
    per_relation: dict[str, dict[str, float]] = field(default_factory=dict)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    return {"precision": p, "recall": r, "f1": f1(p, r), "predicted": predicted, "gold": gold}


def docred_scores(
    docs: Sequence[Document],
    predictions: Sequence[set[Fact]],
    train: set[tuple[str, str, str]] | None = None,
) -> Scores:
    """DocRED official P/R/F1 and Ign F1 (precision ignoring correct facts seen in training;
    recall unchanged, as in the official script)."""
    if len(docs) != len(predictions):
        raise ValueError(f"{len(docs)} documents but {len(predictions)} prediction sets")
    correct = predicted = gold = in_train = 0
    per_rel_c: Counter[str] = Counter()
    per_rel_p: Counter[str] = Counter()
    per_rel_g: Counter[str] = Counter()
    for d, pred in zip(docs, predictions, strict=True):
        gold_set = {(lab.head, lab.tail, lab.relation) for lab in d.labels or []}
        gold += len(gold_set)
        predicted += len(pred)
        for _, _, r in gold_set:
            per_rel_g[r] += 1
        for h, t, r in pred:
            per_rel_p[r] += 1
            if (h, t, r) in gold_set:
                correct += 1
                per_rel_c[r] += 1
                if train is not None and any(
                    (mh.name, mt.name, r) in train
                    for mh in d.entities[h].mentions
                    for mt in d.entities[t].mentions
                ):
                    in_train += 1
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    ign = None
    if train is not None:
        denom = predicted - in_train
        p_ign = (correct - in_train) / denom if denom > 0 else 0.0
        ign = f1(p_ign, r)
    rels = sorted(set(per_rel_g) | set(per_rel_p))
    return Scores(
        precision=p,
        recall=r,
        f1=f1(p, r),
        ign_f1=ign,
        predicted=predicted,
        gold=gold,
        correct=correct,
        per_relation={x: _prf(per_rel_c[x], per_rel_p[x], per_rel_g[x]) for x in rels},
    )


def candidate_scores(
    docs: Sequence[Document], predictions: Sequence[set[Fact]], positive: str | None = None
) -> Scores:
    """CDR/GDA protocol: F1 of the positive class over the candidate pairs listed in the data,
    with an intra-/inter-sentence breakdown (the .data CROSS / NON-CROSS field)."""
    if len(docs) != len(predictions):
        raise ValueError(f"{len(docs)} documents but {len(predictions)} prediction sets")
    c = Counter()
    for d, pred in zip(docs, predictions, strict=True):
        gold = {(lab.head, lab.tail) for lab in d.labels or [] if positive in (None, lab.relation)}
        hit = {(h, t) for h, t, r in pred if positive in (None, r)}
        cands = d.candidates
        if cands is None:
            raise ValueError(f"document {d.id!r} lists no candidate pairs")
        for cand in cands:
            key = (cand.head, cand.tail)
            kind = "inter" if cand.cross else "intra"
            for k in ("all", kind):
                c[k, "gold"] += key in gold
                c[k, "pred"] += key in hit
                c[k, "correct"] += key in gold and key in hit
    overall = _prf(c["all", "correct"], c["all", "pred"], c["all", "gold"])
    return Scores(
        precision=overall["precision"],
        recall=overall["recall"],
        f1=overall["f1"],
        predicted=c["all", "pred"],
        gold=c["all", "gold"],
        correct=c["all", "correct"],
        breakdown={
            k: _prf(c[k, "correct"], c[k, "pred"], c[k, "gold"]) for k in ("intra", "inter")
        },
    )


def score(docs: Sequence[Document], predictions: Sequence[set[Fact]], train=None) -> Scores:
    """Candidate-pair F1 when the documents list candidates (CDR/GDA), else DocRED scores."""
    if docs and all(d.candidates is not None for d in docs):
        return candidate_scores(docs, predictions)
    return docred_scores(docs, predictions, train)
