"""End-to-end evaluation pieces: the PubTator writer and the scorers of docunet_rt.ner.scoring
(hand-computed examples)."""

from __future__ import annotations

import pytest
from conftest import need_data

from docunet_rt.data.pubtator import PubtatorDoc, format_pubtator, read_pubtator, write_pubtator
from docunet_rt.ner.scoring import (
    cid_scores,
    cluster_scores_e2e,
    concept_scores,
    mention_scores,
    prf,
    relation_scores_e2e,
)

KEYS = {"precision", "recall", "f1", "predicted", "gold", "correct"}


def check(s: dict, p: float, r: float, f1: float, predicted: int, gold: int, correct: int):
    assert KEYS <= s.keys()
    assert (s["predicted"], s["gold"], s["correct"]) == (predicted, gold, correct)
    assert s["precision"] == pytest.approx(p)
    assert s["recall"] == pytest.approx(r)
    assert s["f1"] == pytest.approx(f1)


# ----------------------------------------------------------------------------------- scorers


def test_prf_hand_computed():
    # correct {b, c}: P 2/3, R 2/4, F1 = 2 * (2/3) * (1/2) / (2/3 + 1/2) = 4/7
    check(prf({"a", "b", "c"}, {"b", "c", "d", "e"}), 2 / 3, 0.5, 4 / 7, 3, 4, 2)


def test_prf_duplicates_count_once():
    check(prf(["a", "a", "b"], ["a", "a"]), 0.5, 1.0, 2 / 3, 2, 1, 1)


def test_prf_empty_inputs_are_zero():
    check(prf(set(), set()), 0.0, 0.0, 0.0, 0, 0, 0)
    check(prf({"a"}, set()), 0.0, 0.0, 0.0, 1, 0, 0)
    check(prf(set(), {"a"}), 0.0, 0.0, 0.0, 0, 1, 0)
    check(prf({"a"}, {"b"}), 0.0, 0.0, 0.0, 1, 1, 0)


def test_mention_scores_exact_span_and_type_with_per_type():
    pred = {
        ("d1", 0, 5, "Chemical"),  # right
        ("d1", 10, 15, "Disease"),  # right span, wrong type
        ("d1", 20, 26, "Chemical"),  # span off by one
        ("d2", 30, 35, "Chemical"),  # right span and type, wrong document
    }
    gold = {
        ("d1", 0, 5, "Chemical"),
        ("d1", 10, 15, "Chemical"),
        ("d1", 20, 25, "Chemical"),
        ("d1", 30, 35, "Chemical"),
    }
    s = mention_scores(pred, gold)
    check(s, 1 / 4, 1 / 4, 1 / 4, 4, 4, 1)
    assert set(s["per_type"]) == {"Chemical", "Disease"}
    check(s["per_type"]["Chemical"], 1 / 3, 1 / 4, 2 / 7, 3, 4, 1)
    check(s["per_type"]["Disease"], 0.0, 0.0, 0.0, 1, 0, 0)


def test_mention_scores_duplicates_and_empty():
    m = ("d", 0, 3, "Disease")
    check(mention_scores([m, m], [m]), 1.0, 1.0, 1.0, 1, 1, 1)
    s = mention_scores(set(), set())
    check(s, 0.0, 0.0, 0.0, 0, 0, 0)
    assert s["per_type"] == {}


def test_concept_scores_drop_unnormalised_ids_on_both_sides():
    pred = {
        ("d", "Disease", "D1"),
        ("d", "Disease", "-1"),
        ("d", "Disease", None),
        ("d", "Chemical", "D1"),  # same id, other type: a different concept item
    }
    gold = {("d", "Disease", "D1"), ("d", "Disease", "-1"), ("d", "Disease", "D2")}
    # after dropping: pred {Disease D1, Chemical D1}, gold {Disease D1, Disease D2}
    check(concept_scores(pred, gold), 0.5, 0.5, 0.5, 2, 2, 1)
    # nothing but unnormalised ids: nothing to score
    check(concept_scores({("d", "Disease", "-1")}, {("d", "Disease", "-1")}), 0, 0, 0, 0, 0, 0)


def test_concept_scores_document_level():
    # a concept mentioned three times is one item; the document matters
    pred = [("d", "Disease", "D1")] * 3 + [("e", "Disease", "D2")]
    gold = [("d", "Disease", "D1"), ("d", "Disease", "D2")]
    check(concept_scores(pred, gold), 0.5, 0.5, 0.5, 2, 2, 1)


def test_cid_scores():
    pred = [
        ("d", "C1", "D1"),
        ("d", "C1", "D1"),  # duplicate
        ("d", "D2", "C2"),  # reversed pair is not the gold pair
        ("e", "C3", "D3"),
    ]
    gold = {("d", "C1", "D1"), ("d", "C2", "D2"), ("f", "C3", "D3")}
    check(cid_scores(pred, gold), 1 / 3, 1 / 3, 1 / 3, 3, 3, 1)
    check(cid_scores([], []), 0.0, 0.0, 0.0, 0, 0, 0)


def fs(*spans) -> frozenset:
    return frozenset(spans)


A, B, C, D, E = ((0, i, i + 1) for i in range(5))  # (sent_id, start, end) spans


def test_cluster_scores_exact_mention_sets():
    gold = {"d": [fs(A, B), fs(C), fs(D)]}
    pred = {
        "d": [fs(A, B), fs(C, D), fs(B, A)],  # {A,B} twice (one item); {C, D} merges two
        "x": [fs(E)],  # a document without gold entities
    }
    # pred {AB, CD, x:E} = 3, gold 3, correct 1
    check(cluster_scores_e2e(pred, gold), 1 / 3, 1 / 3, 1 / 3, 3, 3, 1)
    # a gold cluster predicted in another document does not count
    check(cluster_scores_e2e({"e": [fs(C)]}, {"d": [fs(C)]}), 0, 0, 0, 1, 1, 0)
    check(cluster_scores_e2e({}, {}), 0.0, 0.0, 0.0, 0, 0, 0)


GOLD_ENTS = {"d": [fs(A, B), fs(C), fs(D, E)]}
GOLD_TRIPLES = {"d": {(0, "P17", 1), (2, "P17", 1)}}
PRED_ENTS = {"d": [fs(A), fs(C), fs(D, E), fs(B, D)]}
PRED_TRIPLES = {"d": {(0, "P17", 1), (2, "P17", 1), (2, "P6", 1), (3, "P17", 1)}}


def test_relation_scores_strict():
    s = relation_scores_e2e(PRED_TRIPLES, GOLD_TRIPLES, PRED_ENTS, GOLD_ENTS, mode="strict")
    # only ({D,E}, P17, {C}) has exactly the gold head and tail: P 1/4, R 1/2, F1 1/3
    check(s, 1 / 4, 1 / 2, 1 / 3, 4, 2, 1)
    assert (s["correct_predicted"], s["correct_gold"]) == (1, 1)


def test_relation_scores_relaxed_differs_from_strict():
    s = relation_scores_e2e(PRED_TRIPLES, GOLD_TRIPLES, PRED_ENTS, GOLD_ENTS, mode="relaxed")
    # ({A}, P17, {C}) overlaps gold 0; ({D,E}, P17, {C}) is gold 1; ({B,D}, P17, {C}) overlaps
    # both; the P6 triple has no gold relation -> 3 of 4 predictions right, both gold found
    check(s, 3 / 4, 1.0, 6 / 7, 4, 2, 3)
    assert (s["correct_predicted"], s["correct_gold"]) == (3, 2)


def test_relation_scores_relaxed_needs_both_head_and_tail_overlap():
    gold_e = {"d": [fs(A), fs(B)]}
    gold_t = {"d": {(0, "r", 1)}}
    pred_e = {"d": [fs(A), fs(C), fs(B)]}
    pred_t = {"d": {(0, "r", 1), (1, "r", 2), (2, "r", 0)}}  # tail wrong, head wrong, swapped
    s = relation_scores_e2e(pred_t, gold_t, pred_e, gold_e, mode="relaxed")
    check(s, 0.0, 0.0, 0.0, 3, 1, 0)


def test_relation_scores_duplicate_entities_and_triples_count_once():
    gold_e = {"d": [fs(A), fs(B)]}
    gold_t = {"d": [(0, "r", 1), (0, "r", 1)]}
    pred_e = {"d": [fs(A), fs(A), fs(B)]}  # the same cluster predicted twice
    pred_t = {"d": [(0, "r", 2), (1, "r", 2)]}  # so these two are one triple
    for mode in ("strict", "relaxed"):
        s = relation_scores_e2e(pred_t, gold_t, pred_e, gold_e, mode=mode)
        check(s, 1.0, 1.0, 1.0, 1, 1, 1)
        assert (s["correct_predicted"], s["correct_gold"]) == (1, 1)


def test_relation_scores_document_matters():
    ents = {"d": [fs(A), fs(B)], "e": [fs(A), fs(B)]}
    s = relation_scores_e2e({"e": {(0, "r", 1)}}, {"d": {(0, "r", 1)}}, ents, ents, "relaxed")
    check(s, 0.0, 0.0, 0.0, 1, 1, 0)


def test_relation_scores_empty_inputs():
    for mode in ("strict", "relaxed"):
        s = relation_scores_e2e({}, {}, {}, {}, mode=mode)
        check(s, 0.0, 0.0, 0.0, 0, 0, 0)
        assert (s["correct_predicted"], s["correct_gold"]) == (0, 0)
        s = relation_scores_e2e({"d": set()}, GOLD_TRIPLES, PRED_ENTS, GOLD_ENTS, mode=mode)
        check(s, 0.0, 0.0, 0.0, 0, 2, 0)


def test_relation_scores_unknown_mode():
    with pytest.raises(ValueError, match="valid choices: strict, relaxed") as e:
        relation_scores_e2e({}, {}, {}, {}, mode="fuzzy")
    assert "fuzzy" in str(e.value)


def test_relation_scores_bad_entity_index():
    with pytest.raises(ValueError, match="out of range|in range"):
        relation_scores_e2e({"d": {(0, "r", 5)}}, {}, {"d": [fs(A)]}, {}, mode="strict")


# ------------------------------------------------------------------------ PubTator writer

TITLE = "Lithium and tremor."
ABSTRACT = "Tremor after lithium was seen."
# text = TITLE + " " + ABSTRACT; "Tremor" at 20, "lithium" at 33
MENTIONS = [
    (33, 40, "lithium", "Chemical", "D008094"),
    (0, 7, "Lithium", "Chemical", "D008094"),
    (12, 18, "tremor", "Disease", "D014202"),
    (20, 26, "Tremor", "Disease", "D014202"),
]


def example_doc() -> PubtatorDoc:
    return PubtatorDoc("123", TITLE, ABSTRACT, list(MENTIONS), [("CID", "D008094", "D014202")])


def test_format_pubtator_layout():
    assert format_pubtator(example_doc()) == (
        "123|t|Lithium and tremor.\n"
        "123|a|Tremor after lithium was seen.\n"
        "123\t0\t7\tLithium\tChemical\tD008094\n"
        "123\t12\t18\ttremor\tDisease\tD014202\n"
        "123\t20\t26\tTremor\tDisease\tD014202\n"
        "123\t33\t40\tlithium\tChemical\tD008094\n"
        "123\tCID\tD008094\tD014202\n"
        "\n"
    )


def test_pubtator_round_trip(tmp_path):
    path = tmp_path / "out.PubTator.txt"
    write_pubtator([example_doc()], path)
    assert path.read_bytes() == format_pubtator(example_doc()).encode("utf-8")
    (doc,) = read_pubtator(path)
    assert doc.id == "123"
    assert doc.title == TITLE
    assert [(e.type, e.id) for e in doc.entities] == [
        ("Chemical", "D008094"),
        ("Disease", "D014202"),
    ]
    assert [[m.span for m in e.mentions] for e in doc.entities] == [
        [(0, 7), (33, 40)],
        [(12, 18), (20, 26)],
    ]
    text = TITLE + " " + ABSTRACT
    assert [text[s:e] for s, e in (m.span for m in doc.entities[0].mentions)] == [
        "Lithium",
        "lithium",
    ]
    assert [(lab.head, lab.tail, lab.relation) for lab in doc.labels] == [(0, 1, "CID")]


def test_write_pubtator_several_documents(tmp_path):
    second = PubtatorDoc("456", "Aspirin.", "", [(0, 7, "Aspirin", "Chemical", "-1")], [])
    path = tmp_path / "two.txt"
    write_pubtator(iter([example_doc(), second]), path)
    assert path.read_text(encoding="utf-8").endswith(
        "\n456|t|Aspirin.\n456|a|\n456\t0\t7\tAspirin\tChemical\t-1\n\n"
    )
    docs = read_pubtator(path)
    assert [d.id for d in docs] == ["123", "456"]
    assert [(e.type, e.id) for e in docs[1].entities] == [("Chemical", None)]


def test_pubtator_tabs_and_newlines_become_spaces(tmp_path):
    title = "Lithium\tand\ntremor."
    abstract = "Tremor\r\nafter\u2028lithium."
    text = title + " " + abstract
    m = (20, 35, "Tremor\r\nafter\u2028l", "Disease", "D1")  # the raw text slice
    assert text[20:35] == m[2]
    doc = PubtatorDoc("9", title, abstract, [(0, 7, "Lithium", "Chemical", "C1"), m], [])
    out = format_pubtator(doc)
    lines = out.split("\n")
    assert len(lines) == 6 and lines[-2:] == ["", ""]  # title, abstract, 2 mentions, blank
    assert lines[0] == "9|t|Lithium and tremor."
    assert lines[1] == "9|a|Tremor  after lithium."
    assert lines[3] == "9\t20\t35\tTremor  after l\tDisease\tD1"
    assert "\r" not in out and "\u2028" not in out
    path = tmp_path / "ws.txt"
    write_pubtator([doc], path)
    (back,) = read_pubtator(path)
    clean = "Lithium and tremor. Tremor  after lithium."
    assert len(clean) == len(text)
    assert [clean[s:e] for ent in back.entities for s, e in (x.span for x in ent.mentions)] == [
        "Lithium",
        "Tremor  after l",
    ]


def test_pubtator_mention_text_must_match():
    bad = PubtatorDoc("777", TITLE, ABSTRACT, [(0, 7, "Lithia", "Chemical", "D1")], [])
    with pytest.raises(ValueError, match="777") as e:
        format_pubtator(bad)
    assert "Lithia" in str(e.value)


def test_pubtator_span_out_of_range(tmp_path):
    n = len(TITLE) + 1 + len(ABSTRACT)
    for s, e in ((n - 2, n + 1), (-1, 3), (5, 5)):
        bad = PubtatorDoc("778", TITLE, ABSTRACT, [(s, e, "x", "Chemical", "D1")], [])
        with pytest.raises(ValueError, match="778"):
            format_pubtator(bad)
    path = tmp_path / "none.txt"
    with pytest.raises(ValueError):
        write_pubtator([example_doc(), bad], path)
    assert not path.exists()


def _parse_block(block: str) -> PubtatorDoc:
    """A minimal PubTator parser, independent of read_pubtator (6-field mentions only)."""
    lines = block.split("\n")
    pmid, title = lines[0].split("|t|", 1)
    a_pmid, abstract = lines[1].split("|a|", 1)
    assert a_pmid == pmid
    mentions, relations = [], []
    for line in lines[2:]:
        f = line.split("\t")
        assert f[0] == pmid
        if len(f) == 4:
            relations.append((f[1], f[2], f[3]))
        else:
            assert len(f) == 6, line
            mentions.append((int(f[1]), int(f[2]), f[3], f[4], f[5]))
    return PubtatorDoc(pmid, title, abstract, mentions, relations)


def test_cdr_test_set_blocks_written_back_byte_identical(tmp_path):
    src = need_data("cdr", "CDR_TestSet.PubTator.txt")
    raw = src.read_bytes()
    blocks = raw.decode("utf-8").split("\n\n")[:3]
    docs = [_parse_block(b) for b in blocks]
    assert sum(len(d.mentions) for d in docs) > 30 and all(d.relations for d in docs)
    original = "".join(b + "\n\n" for b in blocks).encode("utf-8")
    assert raw.startswith(original)
    for d, b in zip(docs, blocks, strict=True):
        assert format_pubtator(d) == b + "\n\n"
    out = tmp_path / "first3.txt"
    write_pubtator(docs, out)
    assert out.read_bytes() == original
