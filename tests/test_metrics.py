"""DocRED and CDR metrics on hand-computed examples."""

from __future__ import annotations

import pytest

from docunet_rt.data import Candidate, Document, Entity, Label, Mention
from docunet_rt.metrics import candidate_scores, docred_scores, train_facts


def ent(name: str) -> Entity:
    return Entity([Mention(0, 0, 1, name)], name=name)


def test_docred_scores_and_ign_f1_by_hand():
    doc = Document(
        "d", [["a", "b", "c"]], [ent("A"), ent("B"), ent("C")],
        [Label(0, 1, "P1"), Label(1, 2, "P2"), Label(0, 2, "P1")],
    )  # fmt: skip
    train_doc = Document("t", [["a", "b"]], [ent("A"), ent("B")], [Label(0, 1, "P1")])
    pred = {(0, 1, "P1"), (1, 2, "P2"), (2, 0, "P1"), (1, 0, "P3")}
    s = docred_scores([doc], [pred], train_facts([train_doc]))
    # 2 correct of 4 predicted, 3 gold
    assert (s.correct, s.predicted, s.gold) == (2, 4, 3)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    # (A, B, P1) was seen in training: Ign precision = (2 - 1) / (4 - 1), recall unchanged
    p_ign = 1 / 3
    assert s.ign_f1 == pytest.approx(2 * p_ign * (2 / 3) / (p_ign + 2 / 3))
    assert s.per_relation["P2"]["f1"] == pytest.approx(1.0)
    assert s.per_relation["P3"]["precision"] == 0.0


def test_candidate_scores_intra_inter():
    doc = Document(
        "d", [["x"]], [ent("c1"), ent("d1"), ent("d2")],
        [Label(0, 1, "CID"), Label(0, 2, "CID")],
        candidates=[Candidate(0, 1, cross=False), Candidate(0, 2, cross=True)],
    )  # fmt: skip
    s = candidate_scores([doc], [{(0, 1, "CID"), (1, 0, "CID")}])
    # (1, 0) is not a candidate: ignored. 1 correct of 1 predicted; 2 gold
    assert (s.correct, s.predicted, s.gold) == (1, 1, 2)
    assert s.f1 == pytest.approx(2 / 3)
    assert s.breakdown["intra"]["f1"] == pytest.approx(1.0)
    assert s.breakdown["inter"]["recall"] == 0.0


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="1 documents but 0 prediction sets"):
        docred_scores([Document("d", [["x"]], [])], [])
