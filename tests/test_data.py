"""Data readers: real files (read in place from DOCUNET_DATA) and hand-made bad records."""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from docunet_rt.data import (
    DataError,
    Document,
    Mention,
    ReadStats,
    check_relations,
    detect_format,
    document_to_docred,
    load_relations,
    parse_docred_record,
    read_cdr,
    read_docred,
    read_documents,
    read_pubtator,
    text_to_document,
    tokenize_with_offsets,
    write_docred,
    write_result,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DOCUNET_DATA", REPO.parent / "shared" / "data"))
SPLITS = {"train": "Training", "dev": "Development", "test": "Test"}


def data_file(rel: str) -> Path:
    p = DATA / rel
    if not p.is_file():
        pytest.skip(f"data file {rel} not found at {p}; set DOCUNET_DATA")
    return p


def small_record(**over):
    rec = {
        "title": "T",
        "sents": [["Alice", "met", "Bob", "."], ["Bob", "left", "."]],
        "vertexSet": [
            [{"name": "Alice", "sent_id": 0, "pos": [0, 1], "type": "PER"}],
            [
                {"name": "Bob", "sent_id": 0, "pos": [2, 3], "type": "PER"},
                {"name": "Bob", "sent_id": 1, "pos": [0, 1], "type": "PER"},
            ],
        ],
        "labels": [{"h": 0, "t": 1, "r": "P26", "evidence": [0]}],
    }
    rec.update(over)
    return rec


# ------------------------------------------------------------------------------------------------
# DocRED / Re-DocRED
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redocred() -> list[Document]:
    return read_documents(data_file("redocred/dev_revised.json"))


def test_redocred_round_trip(redocred):
    assert len(redocred) == 500
    assert sum(len(d.labels) for d in redocred) == 17284
    assert all(d.id == d.title and d.candidates is None for d in redocred)
    back = [parse_docred_record(document_to_docred(d), index=i) for i, d in enumerate(redocred)]
    assert back == redocred


def test_redocred_write_read(redocred, tmp_path):
    docs = redocred[:20]
    for jsonl in (False, True):
        out = tmp_path / f"x.{'jsonl' if jsonl else 'json'}"
        write_docred(docs, out, jsonl=jsonl)
        assert detect_format(out) == ("jsonl" if jsonl else "docred")
        assert read_documents(out) == docs


def test_docred_test_unlabelled():
    path = data_file("docred/test.json")
    docs = read_docred(path)
    assert len(docs) == 1000
    assert all(d.labels is None for d in docs)
    raw = json.loads(path.read_text())
    assert sum(len(d.entities) for d in docs) == sum(len(x["vertexSet"]) for x in raw)
    assert "labels" not in document_to_docred(docs[0])


def test_relations_real(redocred):
    rels = load_relations(data_file("docred/rel_info.json"))
    assert len(rels) == 96 and rels["P17"] == "country"
    assert check_relations(redocred, rels) == redocred
    # The 16-document sample (Indonesian Wikipedia titles) uses ids outside DocRED's 96.
    docs = read_docred(data_file("docred/train_annotated_sample16.json"))
    assert len(docs) == 16
    with pytest.raises(DataError, match=r"field labels\[\d+\]\.r: unknown relation id 'P"):
        check_relations(docs, rels)
    stats = ReadStats()
    kept = check_relations(docs, rels, skip_bad=True, stats=stats)
    assert len(kept) + stats.skipped == 16 and stats.skipped == 9


def test_parse_record_ids_and_meta():
    d = parse_docred_record(small_record(id=7, meta={"k": [1]}))
    assert d.id == "7" and d.meta == {"k": [1]} and d.title == "T"
    assert d.entities[1].name == "Bob" and d.entities[1].type == "PER"
    assert d.labels[0].evidence == (0,)
    assert parse_docred_record(document_to_docred(d)) == d
    rec = small_record()
    del rec["title"], rec["labels"]
    assert parse_docred_record(rec, line=4).id == "4"
    assert parse_docred_record(rec, index=2).id == "2"
    assert parse_docred_record(rec).labels is None
    with pytest.raises(DataError, match=r"line 2: a document must be a JSON object"):
        parse_docred_record([1], source="f.jsonl", line=2)


def test_docred_entity_kb_id_round_trip():
    rec = small_record()
    for m in rec["vertexSet"][1]:
        m["id"] = "Q42"
    d = parse_docred_record(rec)
    assert [e.id for e in d.entities] == [None, "Q42"]
    back = document_to_docred(d)
    assert [m.get("id") for m in back["vertexSet"][1]] == ["Q42", "Q42"]
    assert "id" not in back["vertexSet"][0][0]
    assert parse_docred_record(back) == d
    # an id on only some mentions is the entity's id; mentions that disagree are an error
    del rec["vertexSet"][1][0]["id"]
    assert parse_docred_record(rec).entities[1].id == "Q42"
    rec["vertexSet"][1][0]["id"] = "Q7"
    msg = "field vertexSet[1][1].id: id 'Q42' differs from 'Q7' on another mention of the entity"
    with pytest.raises(DataError, match=re.escape(msg)):
        parse_docred_record(rec, source="f.json", index=0)


def _edit(rec: dict, path: str, value: object) -> None:
    """Set ``value`` at a dotted path of ``rec`` (``DEL`` deletes, a final ``+`` appends)."""
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in parents:
        rec = rec[k]
    if last == "+":
        rec.append(value)
    elif value is DEL:
        del rec[last]
    else:
        rec[last] = value


DEL = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("vertexSet.0.0.pos", [0, 9], "vertexSet[0][0].pos: span [0, 9) out of range"),
        ("vertexSet.1.1.sent_id", 5, "vertexSet[1][1].sent_id: sent_id 5 out of range"),
        ("vertexSet.0.0.pos", [0], "vertexSet[0][0].pos: pos must be two integers"),
        ("vertexSet.0.0.pos", [0, True], "vertexSet[0][0].pos: pos must be two integers"),
        ("vertexSet.0.0.pos", DEL, "vertexSet[0][0].pos: missing key 'pos'"),
        ("vertexSet.+", [], "vertexSet[2]: entity has no mentions"),
        ("sents", DEL, "sents: missing key 'sents'"),
        ("vertexSet", DEL, "vertexSet: missing key 'vertexSet'"),
        ("sents.0.1", 1, "sents[0][1]: a token must be a string"),
        ("sents", "abc", "sents: sents must be a list"),
        ("sents", [], "sents: document has no sentences"),
        ("labels.+", {"h": 0, "t": 5, "r": "P1"}, "labels[1].t: entity index 5 out of range"),
        ("labels.+", {"h": 0, "t": 1, "r": 3}, "labels[1].r: r must be a relation id"),
        ("labels.+", {"h": 0, "t": 1}, "labels[1].r: missing key 'r'"),
        ("labels.0.evidence", [4], "labels[0].evidence: evidence sentence 4"),
        ("title", 3, "title: title must be a string"),
        ("vertexSet.1.1.id", [5], "vertexSet[1][1].id: id must be a string"),
    ],
)
def test_parse_record_errors(path, value, message):
    rec = small_record()
    _edit(rec, path, value)
    with pytest.raises(DataError, match="^f.json, document .*, field " + re.escape(message)):
        parse_docred_record(rec, source="f.json", index=3)


def test_json_list_names_index_and_title(tmp_path):
    bad = small_record(title="Second")
    bad["vertexSet"][0][0]["pos"] = [3, 1]
    p = tmp_path / "d.json"
    p.write_text(json.dumps([small_record(), bad]))
    msg = "d.json, document '#1 (Second)', field vertexSet[0][0].pos"
    with pytest.raises(DataError, match=re.escape(msg)):
        read_docred(p)
    stats = ReadStats()
    docs = read_documents(p, "docred", skip_bad=True, stats=stats)
    assert len(docs) == 1 and (stats.read, stats.skipped) == (1, 1)
    assert stats.errors[0].doc == "#1 (Second)"


def test_jsonl_bad_line_and_skip(tmp_path):
    p = tmp_path / "d.jsonl"
    good = json.dumps(small_record())
    no_sents = small_record(title="X")
    del no_sents["sents"]
    p.write_text("\n".join([good, "", '{"title": "broken",', good, json.dumps(no_sents), ""]))
    assert detect_format(p) == "jsonl"
    with pytest.raises(DataError, match=r"d\.jsonl, line 3: invalid JSON"):
        read_docred(p)
    stats = ReadStats()
    docs = read_docred(p, skip_bad=True, stats=stats)
    assert len(docs) == 2 and (stats.read, stats.skipped) == (2, 2)
    assert [e.line for e in stats.errors] == [3, 5]
    assert stats.errors[1].field == "sents" and stats.errors[1].doc == "X"


def test_json_whole_file_errors(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('[{"title": "a"},\n oops]')
    with pytest.raises(DataError, match=r"d\.json, line 2: invalid JSON"):
        read_docred(p)
    p.write_text(json.dumps(small_record(), indent=2))  # one pretty-printed object
    assert len(read_docred(p)) == 1


def test_check_relations_unknown(tmp_path):
    rels = {"P17": "country", "P26": "spouse"}
    doc = parse_docred_record(
        small_record(labels=[{"h": 0, "t": 1, "r": "P26"}, {"h": 1, "t": 0, "r": "P999"}])
    )
    msg = "document 'T', field labels[1].r: unknown relation id 'P999'; valid ids: P17, P26"
    with pytest.raises(DataError, match=re.escape(msg)):
        check_relations([doc], rels, source="x.json")
    stats = ReadStats()
    assert check_relations([doc], rels, skip_bad=True, stats=stats) == []
    assert stats.skipped == 1


def test_load_relations_forms(tmp_path):
    p = tmp_path / "r.json"
    p.write_text('["P1", "P2"]')
    assert load_relations(p) == {"P1": "P1", "P2": "P2"}
    p.write_text("3")
    with pytest.raises(DataError, match="JSON object .* or a JSON list"):
        load_relations(p)
    p.write_text('{"P1": 2}')
    with pytest.raises(DataError, match="field P1: relation name must be a string"):
        load_relations(p)


def test_write_result(tmp_path):
    p = tmp_path / "result.json"
    write_result([("Doc A", 0, 2, "P17"), ("Doc B", 1, 0, "P26")], p)
    row = json.loads(p.read_text())[1]
    assert row == dict(title="Doc B", h_idx=1, t_idx=0, r="P26", evidence=[])
    with pytest.raises(DataError, match="h and t must be entity indices"):
        write_result([("Doc A", "x", 2, "P17")], p)


def test_read_documents_errors(tmp_path):
    with pytest.raises(ValueError, match="auto, docred, jsonl, cdr, pubtator"):
        read_documents(tmp_path / "x.json", format="conll")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_documents(tmp_path / "nope.json")
    p = tmp_path / "x.txt"
    p.write_text("just some words\n")
    with pytest.raises(DataError, match="valid formats: docred .* jsonl .* cdr .* pubtator"):
        read_documents(p)


# ------------------------------------------------------------------------------------------------
# CDR (EoG .data)
# ------------------------------------------------------------------------------------------------


def raw_cdr_counts(path: Path) -> Counter:
    """Counts computed straight from the raw lines, independently of the reader."""
    c: Counter = Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        f = line.split("\t")
        groups = [f[i : i + 17] for i in range(2, len(f), 17)]
        c["docs"] += 1
        c["groups"] += len(groups)
        c["not_include"] += sum(g[0] == "not_include" for g in groups)
        c["cid"] += sum(g[0] == "1:CID:2" for g in groups)
        c["entities"] += len({g[5] for g in groups} | {g[11] for g in groups})
        kept = [g for g in groups if g[0] != "not_include"]
        c["entities_kept"] += len({g[5] for g in kept} | {g[11] for g in kept})
        c["cross"] += sum(g[2] == "CROSS" for g in kept)
    return c


@pytest.fixture(scope="module")
def cdr() -> dict[str, list[Document]]:
    return {s: read_cdr(data_file(f"cdr/{s}_filter.data")) for s in SPLITS}


@pytest.mark.parametrize(
    ("split", "expected"),
    [("train", (3433, 5242, 1038)), ("dev", (3371, 5087, 1012)), ("test", (3422, 5204, 1066))],
)
def test_cdr_counts(cdr, split, expected):
    path = data_file(f"cdr/{split}_filter.data")
    docs = cdr[split]
    raw = raw_cdr_counts(path)
    assert detect_format(path) == "cdr"
    assert len(docs) == raw["docs"] == 500
    n_ent = sum(len(d.entities) for d in docs)
    n_cand = sum(len(d.candidates) for d in docs)
    n_lab = sum(len(d.labels) for d in docs)
    assert (n_ent, n_lab) == (raw["entities"], raw["cid"])
    assert n_cand == raw["groups"] - raw["not_include"]
    assert (n_ent, n_cand, n_lab) == expected  # pinned: the files are fixed
    assert sum(c.cross for d in docs for c in d.candidates) == raw["cross"]
    dropped = read_cdr(path, drop_filtered=True)
    assert sum(len(d.entities) for d in dropped) == raw["entities_kept"]
    assert sum(len(d.candidates) for d in dropped) == n_cand
    for d in docs:
        assert d.labels is not None
        cands = set(d.pairs())
        assert len(cands) == len(d.candidates)
        for c in d.candidates:
            assert d.entities[c.head].type == "Chemical" and d.entities[c.tail].type == "Disease"
            sents = [{m.sent_id for m in d.entities[i].mentions} for i in (c.head, c.tail)]
            assert c.cross == (not sents[0] & sents[1])
        assert all((lab.head, lab.tail) in cands and lab.relation == "CID" for lab in d.labels)


def test_cdr_oddities(cdr):
    doc = next(d for d in cdr["train"] if d.id == "227508")
    ids = [e.id for e in doc.entities]
    assert "D003000" in ids and "D003000f" in ids  # the release's typo id stays its own entity
    assert doc.sentences[0][:3] == ["Naloxone", "reverses", "the"]
    m = doc.entities[ids.index("D008750")].mentions[0]
    assert doc.sentences[m.sent_id][m.start : m.end] == ["alpha", "-", "methyldopa"]
    assert len(doc.labels) == 1
    lab = doc.labels[0]
    assert (doc.entities[lab.head].id, doc.entities[lab.tail].id) == ("D008750", "D007022")
    # A span listed three times for one entity is kept once.
    assert all(len(set(e.mentions)) == len(e.mentions) for d in cdr["train"] for e in d.entities)


def cdr_line(groups: list[list[str]], text: str = "Aspirin causes asthma .|Really .") -> str:
    return "\t".join(["123", text] + [x for g in groups for x in g])


GOOD = "1:CID:2 L2R NON-CROSS 0-1 2-3 D1 Aspirin Chemical 0 1 0 D2 asthma Disease 2 3 0".split()


def test_cdr_small_and_direction(tmp_path):
    r2l = GOOD[:]
    r2l[1] = "R2L"
    r2l[5:17] = GOOD[11:17] + GOOD[5:11]  # Disease as arg1: head still the Chemical
    dup = GOOD[:]
    dup[0] = "1:NR:2"
    p = tmp_path / "x.data"
    p.write_text(cdr_line([r2l, dup]) + "\n\n")
    (doc,) = read_cdr(p)
    assert [e.id for e in doc.entities] == ["D1", "D2"]
    assert [(c.head, c.tail, c.cross) for c in doc.candidates] == [(0, 1, False)]
    assert [(lab.head, lab.tail, lab.relation) for lab in doc.labels] == [(0, 1, "CID")]
    assert doc.sentences == [["Aspirin", "causes", "asthma", "."], ["Really", "."]]


def test_cdr_entity_order_does_not_depend_on_the_labels(tmp_path):
    """The files list CID groups first: in pair order the related entities would come first
    (a label leak); entities are ordered by first mention instead."""
    text = "Aspirin and ibuprofen cause asthma .|Really ."
    nr = "1:NR:2 L2R NON-CROSS 0-1 4-5 D1 Aspirin Chemical 0 1 0 D2 asthma Disease 4 5 0".split()
    cid = "1:CID:2 L2R NON-CROSS 2-3 4-5 D3 ibuprofen Chemical 2 3 0 D2 asthma Disease 4 5 0"
    p = tmp_path / "x.data"
    p.write_text(cdr_line([cid.split(), nr], text) + "\n")
    (doc,) = read_cdr(p)
    assert [e.id for e in doc.entities] == ["D1", "D3", "D2"]  # document order
    assert [(doc.entities[la.head].id, doc.entities[la.tail].id) for la in doc.labels] == [
        ("D3", "D2")]  # fmt: skip
    assert {(doc.entities[c.head].id, doc.entities[c.tail].id) for c in doc.candidates} == {
        ("D1", "D2"), ("D3", "D2")}  # fmt: skip
    (atlop,) = read_cdr(p, entity_order="pairs")
    assert [e.id for e in atlop.entities] == ["D3", "D2", "D1"]  # the CID pair's entities first


@pytest.mark.parametrize(
    ("index", "value", "pattern"),
    [
        (8, "x", r"groups\[0\]\.starts1: expected ':'-joined integers"),
        (16, "1", r"groups\[0\]\.starts2: mention \[2, 3\) is not inside sentence 1"),
        (16, "7", r"groups\[0\]\.sent_ids2: sent_id 7 out of range"),
        (9, "1:2", r"groups\[0\]\.starts1: 1 starts, 2 ends"),
        (0, "CID", r"groups\[0\]\.relation"),
        (1, "UP", r"groups\[0\]\.direction"),
        (13, "Chemical", r"groups\[0\]\.type1: a pair must be Chemical/Gene × Disease"),
    ],
)
def test_cdr_bad_fields(tmp_path, index, value, pattern):
    bad = GOOD[:]
    bad[index] = value
    p = tmp_path / "x.data"
    p.write_text(cdr_line([GOOD]) + "\n" + cdr_line([bad]).replace("123", "124", 1) + "\n")
    with pytest.raises(DataError, match=r"x\.data, line 2, document '124', field " + pattern):
        read_cdr(p)
    stats = ReadStats()
    assert len(read_cdr(p, skip_bad=True, stats=stats)) == 1
    assert (stats.read, stats.skipped) == (1, 1)


def test_cdr_field_count(tmp_path):
    p = tmp_path / "x.data"
    p.write_text(cdr_line([GOOD[:-1]]) + "\n")
    with pytest.raises(DataError, match=r"line 1, document '123', field groups: 16 fields"):
        read_cdr(p)


# ------------------------------------------------------------------------------------------------
# PubTator
# ------------------------------------------------------------------------------------------------


def _ids(doc: Document, pair) -> tuple:
    return doc.entities[pair.head].id, doc.entities[pair.tail].id


@pytest.mark.parametrize("split", list(SPLITS))
def test_pubtator_real(cdr, split):
    path = data_file(f"cdr/CDR_{SPLITS[split]}Set.PubTator.txt")
    assert detect_format(path) == "pubtator"
    docs = read_pubtator(path)
    assert len(docs) == 500
    raw_texts: dict[str, set[str]] = {}
    n_rel = 0
    for line in path.read_text().splitlines():
        f = line.split("\t")
        if len(f) >= 6:
            raw_texts.setdefault(f[0], set()).add(re.sub(r"\s", "", f[3]))
        elif len(f) == 4:
            n_rel += 1
    assert sum(len(d.labels) for d in docs) == n_rel
    for d in docs:
        got = {
            "".join(d.sentences[m.sent_id][m.start : m.end]) for e in d.entities for m in e.mentions
        }
        assert got == raw_texts.get(d.id, set())
        assert d.title and d.sentences
    # Same concepts and gold pairs as the EoG file; cross flags nearly agree (other splitter).
    agree = total = 0
    for a, b in zip(cdr[split], docs, strict=True):
        assert a.id == b.id
        assert {e.id for e in a.entities} == {e.id for e in b.entities if e.id is not None}
        assert {_ids(a, x) for x in a.labels} == {_ids(b, x) for x in b.labels}
        cross_b = {_ids(b, c): c.cross for c in b.candidates}
        for c in a.candidates:
            total += 1
            agree += cross_b[_ids(a, c)] == c.cross
    assert agree / total > 0.99


PT = "9|t|Aspirin and asthma.\n9|a|Aspirin-induced asthma is bad.\n{m}9\tCID\tD1\tD2\n"


def test_pubtator_small(tmp_path):
    m = (
        "9\t0\t7\tAspirin\tChemical\tD1\n9\t12\t18\tasthma\tDisease\tD2\n"
        "9\t20\t27\tAspirin\tChemical\tD1\n9\t28\t35\tinduced\tDisease\t-1\n"
        "9\t36\t42\tasthma\tDisease\tD2|D3\n"
    )
    p = tmp_path / "x.txt"
    p.write_text(PT.format(m=m) + "\n" + PT.format(m=m).replace("9", "8"))
    docs = read_pubtator(p)
    assert [d.id for d in docs] == ["9", "8"]
    d = docs[0]
    assert [" ".join(s) for s in d.sentences] == [
        "Aspirin and asthma .",
        "Aspirin - induced asthma is bad .",
    ]
    assert [(e.id, len(e.mentions)) for e in d.entities] == [
        ("D1", 2),
        ("D2", 2),
        (None, 1),
        ("D3", 1),
    ]
    assert [e.type for e in d.entities] == ["Chemical", "Disease", "Disease", "Disease"]
    assert d.entities[1].mentions[1] == d.entities[3].mentions[0]  # composite id: shared mention
    assert [(c.head, c.tail, c.cross) for c in d.candidates] == [(0, t, False) for t in (1, 2, 3)]
    assert [(lab.head, lab.tail, lab.relation) for lab in d.labels] == [(0, 1, "CID")]


@pytest.mark.parametrize(
    ("mention", "pattern"),
    [
        ("9\t0\t7\tAspirim\tChemical\tD1\n", r"3, .*field text: mention text 'Aspirim'"),
        ("9\t0\t99\tAspirin\tChemical\tD1\n", r"3, .*field end: span \[0, 99\) out of"),
        ("9\tx\t7\tAspirin\tChemical\tD1\n", r"3, .*field start: offsets must be integ"),
        ("9\t0\t7\tAspirin\tChemical\tD1\n", r"4, .*field id2: relation names concept 'D2'"),
    ],
)
def test_pubtator_errors(tmp_path, mention, pattern):
    p = tmp_path / "x.txt"
    p.write_text(PT.format(m=mention))
    with pytest.raises(DataError, match=r"x\.txt, line " + pattern):
        read_pubtator(p)
    stats = ReadStats()
    assert read_pubtator(p, skip_bad=True, stats=stats) == [] and stats.skipped == 1


# ------------------------------------------------------------------------------------------------
# Raw text
# ------------------------------------------------------------------------------------------------


def test_tokenize_with_offsets():
    text = "Hi, U.S.A!"
    toks = tokenize_with_offsets(text)
    assert [t for t, _, _ in toks] == "Hi , U . S . A !".split()
    assert all(text[s:e] == t for t, s, e in toks) and toks[2] == ("U", 4, 5)


def test_text_mention_inside_word_and_sentences():
    text = "Paracetamol-induced liver damage at 2.5 mg doses. The patient recovered! 12 days later"
    ents = [
        {"mentions": [{"start": 0, "end": 4}], "type": "Chemical"},  # "Para", inside a word
        {"mentions": [{"start": 20, "end": 32}, {"start": 20, "end": 32}], "name": "LD"},
    ]
    d = text_to_document(5, text, ents, meta={"a": 1})
    assert d.id == "5" and d.meta == {"a": 1} and d.labels is None
    assert [" ".join(s) for s in d.sentences] == [
        "Para cetamol - induced liver damage at 2 . 5 mg doses .",
        "The patient recovered !",
        "12 days later",
    ]
    e0, e1 = d.entities
    assert (e0.mentions, e0.name, e0.type) == ([Mention(0, 0, 1, "Para")], "Para", "Chemical")
    assert (e1.mentions, e1.name, e1.type) == ([Mention(0, 4, 6, "liver damage")], "LD", "")


def test_text_no_split_inside_mention_and_forced_start():
    text = "Dr. Smith met Mr. Jones. End"
    d = text_to_document("x", text, [{"mentions": [{"start": 0, "end": 9}]}])
    assert [" ".join(s) for s in d.sentences] == ["Dr . Smith met Mr .", "Jones .", "End"]
    d = text_to_document("x", "A title without stop the abstract", [], sentence_starts=[16])
    assert d.sentences == [["A", "title", "without"], ["stop", "the", "abstract"]]
    d = text_to_document("x", "Heading\n\nbody text", [])
    assert d.sentences == [["Heading"], ["body", "text"]]


def _ents(*spans: tuple[object, object]) -> list[dict]:
    return [{"mentions": [{"start": s, "end": e}]} for s, e in spans]


@pytest.mark.parametrize(
    ("text", "entities", "message"),
    [
        ("abc def", _ents(("0", 3)), "entities[0].mentions[0].start: start must be an integer"),
        ("abc def", _ents((0, 3.0)), "entities[0].mentions[0].end: end must be an integer"),
        ("abc def", _ents((0, 3), (3, 3)), "entities[1].mentions[0].end: empty span"),
        ("abc def", _ents((4, 99)), "entities[0].mentions[0].end: end 99 is past the end"),
        ("abc def", _ents((-1, 2)), "entities[0].mentions[0].start: start -1 is negative"),
        ("abc  def", _ents((3, 5)), "entities[0].mentions[0]: span [3, 5) covers only whitespace"),
        ("abc def", [{"mentions": []}], "entities[0].mentions: entity has no mentions"),
        ("abc def", [{"type": "X"}], "entities[0].mentions: missing key 'mentions'"),
        ("abc def", {"mentions": []}, "entities: entities must be a list"),
        (b"abc", [], "text: text must be a string"),
        ("   ", [], "text: text has no tokens"),
    ],
)
def test_text_errors(text, entities, message):
    prefix = "src.jsonl, line 7, document 'd1', field "
    with pytest.raises(DataError, match=re.escape(prefix + message)):
        text_to_document("d1", text, entities, source="src.jsonl", line=7)


# ------------------------------------------------------------------------------------------------
# gzip-compressed input (every format, told by the magic bytes, not the name)
# ------------------------------------------------------------------------------------------------

GZ_PUBTATOR = PT.format(m="9\t0\t7\tAspirin\tChemical\tD1\n9\t12\t18\tasthma\tDisease\tD2\n")
GZ_CDR = cdr_line([GOOD]) + "\n"


@pytest.mark.parametrize(
    ("name", "fmt", "text"),
    [
        ("x.json", "docred", json.dumps([small_record(), small_record(title="U")])),
        ("x.jsonl", "jsonl", json.dumps(small_record()) + "\n" + json.dumps(small_record(id=2))),
        ("x.data", "cdr", GZ_CDR),
        ("x.PubTator.txt", "pubtator", GZ_PUBTATOR),
    ],
)
def test_gzip_input_reads_like_plain(tmp_path, name, fmt, text):
    plain = tmp_path / name
    plain.write_text(text)
    expected = read_documents(plain)
    assert len(expected) >= 1
    # by magic bytes: a .gz name, and a compressed file whose name does not say so
    for gz in (tmp_path / f"{name}.gz", tmp_path / f"renamed_{name}"):
        gz.write_bytes(gzip.compress(text.encode()))
        assert detect_format(gz) == fmt
        assert read_documents(gz) == expected
        assert read_documents(gz, fmt) == expected


def test_gzip_errors_name_the_file(tmp_path):
    p = tmp_path / "d.jsonl.gz"
    good = json.dumps(small_record())
    p.write_bytes(gzip.compress(f"{good}\n{{oops\n".encode()))
    with pytest.raises(DataError, match=r"d\.jsonl\.gz, line 2: invalid JSON"):
        read_documents(p)
    for name, text in (("t.json.gz", json.dumps([small_record()] * 50)), ("c.data.gz", GZ_CDR * 9)):
        p = tmp_path / name
        p.write_bytes(gzip.compress(text.encode())[:-12])  # truncated
        with pytest.raises(DataError, match=re.escape(name) + ".*corrupt or truncated gzip"):
            read_documents(p, "cdr" if name.startswith("c") else "auto")


def test_a_numeric_mention_id_is_read_as_text():
    from docunet_rt.data import parse_record

    rec = {"sents": [["a", "b"]], "vertexSet": [[{"sent_id": 0, "pos": [0, 1], "id": 12}]]}
    assert parse_record(rec, line=1).entities[0].id == "12"
