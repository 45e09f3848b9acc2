"""The synthetic corpus (docunet_rt.synth), format conversion (docunet_rt.convert) and their CLI."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docunet_rt.convert import convert, read_any
from docunet_rt.data import (
    DataError,
    parse_docred_record,
    read_documents,
    text_to_document,
    write_docred,
)
from docunet_rt.synth import (
    RELATIONS,
    corpus_stats,
    generate,
    generate_documents,
    to_text_record,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DOCUNET_DATA", REPO.parent / "shared" / "data"))

PUBTATOR = (
    "101|t|Aspirin and headache.\n"
    "101|a|Aspirin caused headache in two patients. Nausea was not seen.\n"
    "101\t0\t7\tAspirin\tChemical\tD001241\n"
    "101\t12\t20\theadache\tDisease\tD006261\n"
    "101\t22\t29\tAspirin\tChemical\tD001241\n"
    "101\t37\t45\theadache\tDisease\tD006261\n"
    "101\t63\t69\tNausea\tDisease\tD009325\n"
    "101\tCID\tD001241\tD006261\n"
    "\n"
    "102|t|Lithium tremor.\n"
    "102|a|Tremor after lithium.\n"
    "102\t0\t7\tLithium\tChemical\tD008094\n"
    "102\t8\t14\ttremor\tDisease\tD014202\n"
    "102\t16\t22\tTremor\tDisease\tD014202\n"
    "102\t29\t36\tlithium\tChemical\tD008094\n"
    "102\tCID\tD008094\tD014202\n"
)
# EoG .data: PMID, sentences, then one 17-field group per Chemical x Disease pair.
CDR_LINE = (
    "123\tAspirin causes headache .|Headache is bad .\t"
    "1:CID:2\tL2R\tNON-CROSS\t0-1\t2-3\tD001241\tAspirin\tChemical\t0\t1\t0\t"
    "D006261\theadache|Headache\tDisease\t2:4\t3:5\t0:1\n"
)


@pytest.fixture(scope="module")
def docs():
    return generate_documents(120, seed=7)


def _sents(doc, i):
    return {m.sent_id for m in doc.entities[i].mentions}


# ------------------------------------------------------------------------------------------------
# synth
# ------------------------------------------------------------------------------------------------


def test_deterministic(docs):
    assert generate_documents(120, seed=7) == docs
    assert generate_documents(20, seed=7) == docs[:20]
    assert generate_documents(20, seed=8) != docs[:20]


def test_documents_valid(docs, tmp_path):
    assert len({d.id for d in docs}) == len(docs)
    for d in docs:
        d.validate()
        assert d.id == d.title and d.title
        assert 5 <= len(d.sentences) <= 10
        assert 5 <= len(d.entities) <= 12
        assert 60 <= d.num_tokens <= 220
        assert d.labels and {lab.relation for lab in d.labels} <= set(RELATIONS)
        assert len(set(d.labels)) == len(d.labels)
        assert {e.type for e in d.entities} <= {"PER", "ORG", "LOC", "TIME"}
        for lab in d.labels:
            assert lab.evidence and lab.head != lab.tail
    types = {e.type for d in docs for e in d.entities}
    assert types == {"PER", "ORG", "LOC", "TIME"}
    assert {lab.relation for d in docs for lab in d.labels} == set(RELATIONS)
    path = tmp_path / "d.json"
    write_docred(docs, path, jsonl=False)
    assert read_documents(path) == docs


def test_coreference_and_multi_hop(docs):
    # The main person reappears by surname only; every document has a P27 label whose evidence
    # is two sentences (birth city + its country) unless the country is given inline.
    for d in docs:
        (i,) = [i for i, e in enumerate(d.entities) if e.name == d.title]
        person = d.entities[i]
        assert person.type == "PER" and len(person.mentions) >= 2
        surname = person.name.split()[-1]
        assert all(m.name == surname for m in person.mentions[1:])
        assert sum(lab.relation == "P27" and lab.head == i for lab in d.labels) == 1
    cross = [(d, lab) for d in docs for lab in d.labels if not _sents(d, lab.head) & _sents(d, lab.tail)]  # fmt: skip
    assert {lab.relation for _, lab in cross} >= {"P27", "P17"}
    for _d, lab in cross:  # a cross-sentence label rests on 2 sentences or "the company"
        assert len(lab.evidence) == 2 or lab.relation in ("P159", "P571")
    stats = corpus_stats(docs)
    assert 0.1 < stats["cross"] < 0.5 and 0.1 < stats["multi_hop"] < 0.5
    assert 7 <= stats["entities"] <= 12 and 90 <= stats["tokens"] <= 160


def test_distractors_not_related(docs):
    # A person's country of citizenship is the country of the birth city only.
    for d in docs:
        rel = {(lab.head, lab.tail, lab.relation) for lab in d.labels}
        for h, c, r in rel:
            if r == "P19":
                (k,) = [t for hh, t, rr in rel if hh == h and rr == "P27"]
                assert (c, k, "P17") in rel
    unrelated = sum(
        1
        for d in docs
        for i in range(len(d.entities))
        if all(i not in (x.head, x.tail) for x in d.labels)  # fmt: skip
    )
    assert unrelated > len(docs) // 4  # distractor entities exist


def test_generate_files(tmp_path):
    out = tmp_path / "syn"
    counts = generate(out, docs=20, seed=3)
    assert counts == {"train": 14, "dev": 3, "test": 3, "text": 0}
    assert sorted(p.name for p in out.iterdir()) == [
        "corpus.jsonl", "dev.json", "relations.json", "test.json", "train.json",
    ]  # fmt: skip
    assert json.loads((out / "relations.json").read_text()) == RELATIONS
    all_docs = generate_documents(20, seed=3)
    parts = [read_documents(out / f"{n}.json") for n in ("train", "dev", "test")]
    assert parts[0] + parts[1] + parts[2] == all_docs
    raw = json.loads((out / "train.json").read_text())
    assert set(raw[0]) == {"title", "sents", "vertexSet", "labels"}
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    generate(out, docs=20, seed=3)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    generate(tmp_path / "other", docs=20, seed=4)
    assert (tmp_path / "other" / "train.json").read_bytes() != first["train.json"]


def test_corpus_lines_parse(tmp_path):
    counts = generate(tmp_path, docs=60, seed=5)
    test = read_documents(tmp_path / "test.json")
    lines = (tmp_path / "corpus.jsonl").read_text().splitlines()
    assert len(lines) == len(test) == counts["test"] == 9 and counts["text"] == 1
    kinds = set()
    for ln, raw in enumerate(lines, 1):
        rec = json.loads(raw)
        n = rec["meta"]["n"]
        assert rec["meta"] == {"split": "test", "n": ln - 1} and rec["id"] == test[n].id
        if "text" in rec:
            kinds.add("text")
            doc = text_to_document(rec["id"], rec["text"], rec["entities"], line=ln)
            assert [e.type for e in doc.entities] == [e.type for e in test[n].entities]
        else:
            kinds.add("docred")
            doc = parse_docred_record(rec, line=ln)
            assert doc.labels is None and doc.meta == rec["meta"]
        assert doc.sentences == test[n].sentences
        assert [e.mentions for e in doc.entities] == [e.mentions for e in test[n].entities]
    assert kinds == {"text", "docred"}
    # The whole corpus (both kinds of line) reads through convert's JSONL reader.
    assert [d.sentences for d in read_any(tmp_path / "corpus.jsonl")] == [d.sentences for d in test]


def test_text_record_offsets(docs):
    for d in docs[:30]:
        rec = to_text_record(d, {"k": 1})
        back = text_to_document(rec["id"], rec["text"], rec["entities"], meta=rec["meta"])
        assert back.sentences == d.sentences and back.meta == {"k": 1}
        assert [(e.mentions, e.type, e.name) for e in back.entities] == [
            (e.mentions, e.type, e.name) for e in d.entities
        ]


def test_generate_errors(tmp_path):
    with pytest.raises(ValueError, match="--docs must be at least 3"):
        generate(tmp_path, docs=2)
    with pytest.raises(ValueError, match="text_fraction must be between 0 and 1"):
        generate(tmp_path, docs=10, text_fraction=1.5)
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileExistsError, match="is not a directory"):
        generate(tmp_path / "f", docs=10)


# ------------------------------------------------------------------------------------------------
# convert
# ------------------------------------------------------------------------------------------------


def test_docred_jsonl_docred_round_trip(tmp_path):
    src = DATA / "docred" / "train_annotated_sample16.json"
    if not src.is_file():
        pytest.skip(f"data file docred/train_annotated_sample16.json not found at {src}; set DOCUNET_DATA")  # fmt: skip
    mid, back = tmp_path / "s.jsonl", tmp_path / "s.json"
    assert convert(src, mid) == 16
    lines = [json.loads(x) for x in mid.read_text().splitlines()]
    assert len(lines) == 16 and all(rec["id"] == rec["title"] for rec in lines)
    assert convert(mid, back, dst="docred") == 16
    raw = json.loads(src.read_text())
    for doc in raw:  # Re-DocRED's global_pos is the one key the reader does not keep
        for ent in doc["vertexSet"]:
            for m in ent:
                m.pop("global_pos", None)
    assert json.loads(back.read_text()) == raw
    assert read_documents(back) == read_documents(src) == read_documents(mid)


def test_pubtator_to_jsonl(tmp_path):
    src, out = tmp_path / "p.txt", tmp_path / "p.jsonl"
    src.write_text(PUBTATOR)
    assert convert(src, out) == 2
    docs = read_documents(out)
    assert [d.id for d in docs] == ["101", "102"]
    d = docs[0]
    assert [e.name for e in d.entities] == ["Aspirin", "headache", "Nausea"]
    assert [len(e.mentions) for e in d.entities] == [2, 2, 1]
    assert [(x.head, x.tail, x.relation) for x in d.labels] == [(0, 1, "CID")]
    assert d.title == "Aspirin and headache."
    # concept ids survive the conversion: an "id" on every mention, read back as Entity.id
    assert [e.id for e in d.entities] == ["D001241", "D006261", "D009325"]
    rec = json.loads(out.read_text().splitlines()[0])
    assert [m["id"] for m in rec["vertexSet"][0]] == ["D001241", "D001241"]
    assert "kb_id" not in rec["vertexSet"][0][0]
    orig = read_documents(src)
    assert [x.sentences for x in docs] == [x.sentences for x in orig]
    assert docs[1].labels == orig[1].labels
    assert convert(src, tmp_path / "p.json", dst="docred", src="pubtator") == 2
    assert read_documents(tmp_path / "p.json") == docs


def test_cdr_to_jsonl(tmp_path):
    src, out = tmp_path / "x.data", tmp_path / "x.jsonl"
    src.write_text(CDR_LINE)
    assert convert(src, out, src="cdr") == 1
    (d,) = read_documents(out)
    assert d.id == "123" and d.sentences == [["Aspirin", "causes", "headache", "."], ["Headache", "is", "bad", "."]]  # fmt: skip
    assert [(e.type, len(e.mentions)) for e in d.entities] == [("Chemical", 1), ("Disease", 2)]
    assert [(x.head, x.tail, x.relation) for x in d.labels] == [(0, 1, "CID")]
    assert d.candidates is None  # not representable in DocRED-style records
    assert [e.id for e in d.entities] == ["D001241", "D006261"]
    gz = tmp_path / "x.data.gz"  # a compressed source converts the same
    gz.write_bytes(gzip.compress(CDR_LINE.encode()))
    assert convert(gz, tmp_path / "y.jsonl") == 1
    assert (tmp_path / "y.jsonl").read_bytes() == out.read_bytes()


def test_text_record_entity_ids_round_trip(tmp_path):
    src, out = tmp_path / "t.jsonl", tmp_path / "t.json"
    rec = {"id": "d1", "text": "Bill Gates founded Microsoft.",
           "entities": [{"mentions": [{"start": 0, "end": 10}], "type": "PER", "id": "Q5284"},
                        {"mentions": [{"start": 19, "end": 28}], "type": "ORG"}]}  # fmt: skip
    src.write_text(json.dumps(rec) + "\n")
    assert convert(src, out, dst="docred") == 1
    assert [e.id for e in read_documents(out)[0].entities] == ["Q5284", None]
    assert read_documents(out) == read_documents(src)


def test_convert_errors(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text('{"id": 1, "text": "Bob ran.", "entities": []}\n{"id": 2, "sents": \n')
    out = tmp_path / "b.jsonl"
    with pytest.raises(ValueError, match=r"unknown source format 'xml'; valid: auto, docred, jsonl, cdr, pubtator"):  # fmt: skip
        convert(src, out, src="xml")
    with pytest.raises(ValueError, match=r"unknown target format 'csv'; valid: jsonl, docred"):
        convert(src, out, dst="csv")
    with pytest.raises(FileNotFoundError, match="no such file"):
        convert(tmp_path / "missing.json", out)
    with pytest.raises(ValueError, match="is the input file"):
        convert(src, src)
    with pytest.raises(ValueError, match="is a directory"):
        convert(src, tmp_path)
    with pytest.raises(DataError, match=r"a\.jsonl, line 2: invalid JSON"):
        convert(src, out)
    assert not out.exists()
    assert convert(src, out, skip_bad=True) == 1
    src.write_text('{"id": 1, "text": "Bob ran."}\n')
    with pytest.raises(
        DataError, match=r"line 1, document '1', field entities: missing key 'entities'"
    ):
        convert(src, out)
    src.write_text("hello\n")
    with pytest.raises(DataError, match="cannot tell the format"):
        convert(src, out)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli():
    from docunet_rt.cli.main import app

    if "synth" not in {c.name for c in app.registered_commands}:
        from docunet_rt.cli.tools_cmd import register

        register(app)
    return app


def test_cli_synth(cli, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["synth", "-o", str(tmp_path / "s"), "--docs", "20", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "wrote 14/3/3 train/dev/test documents" in res.output
    assert read_documents(tmp_path / "s" / "dev.json") == generate_documents(20, seed=3)[14:17]
    res = runner.invoke(cli, ["synth", "-o", str(tmp_path / "t"), "--docs", "2"])
    assert res.exit_code == 2 and "error: --docs must be at least 3" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(cli, ["synth", "--help"])
    assert res.exit_code == 0 and "relations.json" in res.output and "--seed" in res.output


def test_cli_convert(cli, tmp_path):
    runner = CliRunner()
    generate(tmp_path, docs=10, seed=1)
    res = runner.invoke(cli, ["convert", str(tmp_path / "test.json"), "-o", str(tmp_path / "t.jsonl")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "wrote 2 documents (jsonl)" in res.output
    # --to defaults to docred for a .json output
    res = runner.invoke(cli, ["convert", str(tmp_path / "t.jsonl"), "-o", str(tmp_path / "u.json")])  # fmt: skip
    assert res.exit_code == 0 and (tmp_path / "u.json").read_text().startswith("[")
    assert read_documents(tmp_path / "u.json") == read_documents(tmp_path / "test.json")
    res = runner.invoke(cli, ["convert", "x", "-o", "y", "--from", "bogus"])
    assert res.exit_code == 2
    assert "error: unknown --from format 'bogus'; valid: auto, docred, jsonl, cdr, pubtator" in res.output  # fmt: skip
    res = runner.invoke(cli, ["convert", "x", "-o", "y", "--to", "csv"])
    assert res.exit_code == 2 and "valid: jsonl, docred" in res.output
    res = runner.invoke(cli, ["convert", str(tmp_path / "nope.json"), "-o", str(tmp_path / "n")])
    assert res.exit_code == 1 and "error: no such file" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(cli, ["convert", "--help"])
    assert res.exit_code == 0 and "pubtator" in res.output and "--to" in res.output
