"""End-to-end scorers ("raw text in, triples out"): pure Python, torch-free.

Every scorer returns a dict with ``precision``, ``recall``, ``f1`` (floats) and the counts
``predicted``, ``gold``, ``correct``. Scores are micro-averaged over all documents, and every
count is over a *set*, so an item given twice counts once. Empty inputs give 0.0 (never a
division by zero): precision is 0.0 without predictions, recall 0.0 without gold items.

* BioCreative V CDR: :func:`mention_scores` (exact span + type), :func:`concept_scores` (the
  normalisation "id" protocol) and :func:`cid_scores` (the chemical-induced-disease relations).
* Re-DocRED end to end: :func:`cluster_scores_e2e` (exact entity clusters) and
  :func:`relation_scores_e2e` (``strict``: exact head and tail clusters; ``relaxed``: head and
  tail each share a mention with the gold ones).
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence, Set
from typing import Any

__all__ = [
    "RELATION_MODES",
    "cid_scores",
    "cluster_scores_e2e",
    "concept_scores",
    "mention_scores",
    "prf",
    "relation_scores_e2e",
]

RELATION_MODES = ("strict", "relaxed")
_NO_ID = ("-1", None)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _scores(correct_pred: int, predicted: int, correct_gold: int, gold: int) -> dict[str, Any]:
    p = _ratio(correct_pred, predicted)
    r = _ratio(correct_gold, gold)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": p,
        "recall": r,
        "f1": f1,
        "predicted": predicted,
        "gold": gold,
        "correct": correct_pred,
    }


def prf(pred: Iterable[Hashable], gold: Iterable[Hashable]) -> dict[str, Any]:
    """Exact-match precision, recall and F1 of the set ``pred`` against the set ``gold``:
    ``correct = |pred ∩ gold|``, precision ``correct / |pred|``, recall ``correct / |gold|``
    (0.0 when the denominator is 0), F1 their harmonic mean (0.0 when both are 0)."""
    p, g = set(pred), set(gold)
    c = len(p & g)
    return _scores(c, len(p), c, len(g))


def mention_scores(
    pred: Iterable[tuple[Hashable, int, int, str]],
    gold: Iterable[tuple[Hashable, int, int, str]],
) -> dict[str, Any]:
    """Mention recognition (BioCreative V CDR NER protocol): items ``(doc_id, start, end,
    type)``; a predicted mention is correct only when a gold mention has the exact same span
    *and* type (a right span with the wrong type is both a false positive and a false
    negative). ``per_type`` maps every type seen on either side to its own :func:`prf` dict."""
    p, g = set(pred), set(gold)
    out = prf(p, g)
    types = sorted({m[3] for m in p | g}, key=str)
    out["per_type"] = {
        t: prf({m for m in p if m[3] == t}, {m for m in g if m[3] == t}) for t in types
    }
    return out


def concept_scores(
    pred: Iterable[tuple[Hashable, str, str | None]],
    gold: Iterable[tuple[Hashable, str, str | None]],
) -> dict[str, Any]:
    """Concept normalisation (the BioCreative V "id" protocol): items ``(doc_id, type,
    concept_id)``, i.e. the set of concepts each document mentions, however often and wherever
    they occur. Items whose id is ``"-1"`` or ``None`` (mentions left unnormalised) are dropped
    from both sides before scoring. Ids are compared verbatim: split composite ids
    (``"D1|D2"``) into their parts before calling if they should count separately."""
    return prf(
        (x for x in pred if x[2] not in _NO_ID),
        (x for x in gold if x[2] not in _NO_ID),
    )


def cid_scores(
    pred: Iterable[tuple[Hashable, str, str]],
    gold: Iterable[tuple[Hashable, str, str]],
) -> dict[str, Any]:
    """Chemical-induced-disease relations (the BioCreative V CDR relation protocol): items
    ``(doc_id, chemical_id, disease_id)`` at the document level (concept pairs, not mention
    pairs); a prediction is correct when the gold set holds the same pair for the same
    document, the order of the ids mattering (chemical first)."""
    return prf(pred, gold)


Clusters = Mapping[Hashable, Sequence[Set[Hashable]]]
Triples = Mapping[Hashable, Iterable[tuple[int, Hashable, int]]]


def cluster_scores_e2e(pred_entities: Clusters, gold_entities: Clusters) -> dict[str, Any]:
    """Entity clusters (Re-DocRED end to end): each document's entities are mention-span sets
    (a span is any hashable, e.g. ``(sent_id, start, end)``). A predicted entity is correct
    when its mention set *equals* that of a gold entity of the same document; a cluster that
    misses or adds a single mention is wrong. Identical clusters in one document count once;
    a document missing from one side has no entities there."""

    def clusters(ents: Clusters) -> set[tuple[Hashable, frozenset[Hashable]]]:
        return {(doc, frozenset(e)) for doc, es in ents.items() for e in es}

    return prf(clusters(pred_entities), clusters(gold_entities))


def _resolve(
    triples: Triples, entities: Clusters, side: str
) -> dict[Hashable, set[tuple[frozenset[Hashable], Hashable, frozenset[Hashable]]]]:
    """doc -> {(head mention set, relation, tail mention set)}."""
    out: dict[Hashable, set[tuple[frozenset[Hashable], Hashable, frozenset[Hashable]]]] = {}
    for doc, ts in triples.items():
        ts = list(ts)
        if not ts:
            continue
        if doc not in entities:
            raise ValueError(f"{side} triples for document {doc!r}, which has no {side} entities")
        ents = [frozenset(e) for e in entities[doc]]
        rows = out.setdefault(doc, set())
        for tri in ts:
            h, rel, t = tri
            try:
                h, t = operator.index(h), operator.index(t)
            except TypeError:
                h = t = -1
            if not (0 <= h < len(ents) and 0 <= t < len(ents)):
                raise ValueError(
                    f"{side} triple {tri!r} of document {doc!r}: entity index not an integer in range "
                    f"(the document has {len(ents)} {side} entities)"
                )
            rows.add((ents[h], rel, ents[t]))
    return out


def relation_scores_e2e(
    pred_triples: Triples,
    gold_triples: Triples,
    pred_entities: Clusters,
    gold_entities: Clusters,
    mode: str = "strict",
) -> dict[str, Any]:
    """Relation triples (Re-DocRED end to end). Triples are ``doc -> {(head_index, relation,
    tail_index)}``, the indices pointing into that document's entity list (``*_entities``, as in
    :func:`cluster_scores_e2e`); each triple is first resolved to (head mention set, relation,
    tail mention set), and counting is over those resolved sets (two predicted entities with
    the same mentions give one triple).

    * ``strict``: a predicted triple matches a gold triple of the same document when the
      relation is the same and the head and tail mention sets are *equal* to the gold ones.
    * ``relaxed``: the relation is the same, the predicted head shares at least one mention span
      with the gold head, and the predicted tail at least one with the gold tail.

    Precision = predicted triples matching some gold triple / predicted triples; recall = gold
    triples matched by some predicted triple / gold triples (in relaxed mode one prediction may
    match several gold triples and the reverse, so the two counts can differ). The dict also
    holds ``correct_predicted`` and ``correct_gold``; ``correct`` is ``correct_predicted``.

    Raises ValueError for an unknown ``mode``, for a triple whose document has no entity list,
    and for an entity index not an integer in range.
    """
    if mode not in RELATION_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid choices: {', '.join(RELATION_MODES)}")
    pred = _resolve(pred_triples, pred_entities, "predicted")
    gold = _resolve(gold_triples, gold_entities, "gold")
    n_pred = sum(map(len, pred.values()))
    n_gold = sum(map(len, gold.values()))
    correct_pred = correct_gold = 0
    for doc in pred.keys() | gold.keys():
        p, g = pred.get(doc, set()), gold.get(doc, set())
        if mode == "strict":
            c = len(p & g)
            correct_pred += c
            correct_gold += c
            continue
        gold_by_rel: dict[Hashable, list[tuple[frozenset[Hashable], frozenset[Hashable]]]]
        gold_by_rel = defaultdict(list)
        for gh, rel, gt in g:
            gold_by_rel[rel].append((gh, gt))
        matched_gold: set[tuple[frozenset[Hashable], Hashable, frozenset[Hashable]]] = set()
        for ph, rel, pt in p:
            hit = False
            for gh, gt in gold_by_rel.get(rel, ()):
                if not ph.isdisjoint(gh) and not pt.isdisjoint(gt):
                    hit = True
                    matched_gold.add((gh, rel, gt))
            correct_pred += hit
        correct_gold += len(matched_gold)
    out = _scores(correct_pred, n_pred, correct_gold, n_gold)
    out["correct_predicted"] = correct_pred
    out["correct_gold"] = correct_gold
    return out
