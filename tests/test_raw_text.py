"""Raw text in, triples out: a tiny tagger trained on synthetic documents and a tiny RE model,
exported into one MODEL_DIR and run by the torch-free runtime (`extract --entities …`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _extract_fixtures import VOCAB  # noqa: E402

PEOPLE, CITIES, FIRMS = ["alice", "bob", "carol", "dave"], ["paris", "london", "berlin"], [
    "acme", "globex", "initech"
]  # fmt: skip
TEXT = "alice was born in paris . bob founded acme near london ."
EXPECTED = {("alice", "PER"), ("paris", "LOC"), ("bob", "PER"), ("acme", "ORG"), ("london", "LOC")}


def _doc(i: int) -> dict:
    p, q = PEOPLE[i % 4], PEOPLE[(i + 1) % 4]
    c, f, d = CITIES[i % 3], FIRMS[i % 3], CITIES[(i + 1) % 3]
    sents = [
        [p, "was", "born", "in", c, "."],
        [q, "founded", f, "near", d, "."],
        [p, "is", "in", c],
    ]
    vs = [
        [{"name": p, "sent_id": 0, "pos": [0, 1], "type": "PER"},
         {"name": p, "sent_id": 2, "pos": [0, 1], "type": "PER"}],
        [{"name": c, "sent_id": 0, "pos": [4, 5], "type": "LOC"},
         {"name": c, "sent_id": 2, "pos": [3, 4], "type": "LOC"}],
        [{"name": q, "sent_id": 1, "pos": [0, 1], "type": "PER"}],
        [{"name": f, "sent_id": 1, "pos": [2, 3], "type": "ORG"}],
        [{"name": d, "sent_id": 1, "pos": [4, 5], "type": "LOC"}],
    ]  # fmt: skip
    return {"title": f"t{i}", "sents": sents, "vertexSet": vs, "labels": []}


@pytest.fixture(scope="module")
def raw_model(tmp_path_factory) -> Path:
    """MODEL_DIR = tiny random RE model + a tiny tagger overfitted on synthetic documents."""
    pytest.importorskip("transformers")
    from _extract_fixtures import build_model_dir
    from conftest import tiny_encoder, tiny_tokenizer
    from transformers import PreTrainedTokenizerFast

    from docunet_rt.export import export_model
    from docunet_rt.ner.train import NerTrainOptions, train_ner

    tmp = tmp_path_factory.mktemp("raw")
    enc = tmp / "enc"
    tiny_encoder(seed=3, dropout=0.0, vocab_size=len(VOCAB)).save_pretrained(enc)
    PreTrainedTokenizerFast(
        tokenizer_object=tiny_tokenizer(VOCAB, pair=True), cls_token="[CLS]", sep_token="[SEP]",
        pad_token="[PAD]", unk_token="[UNK]",
    ).save_pretrained(enc)  # fmt: skip
    data = tmp / "train.json"
    empty = {
        "title": "e",
        "sents": [["the", "city", "was", "near", "the", "river", "."], ["the", "the", "the", "."]],
        "vertexSet": [],
        "labels": [],
    }
    data.write_text(json.dumps([_doc(i) for i in range(6)] + [empty]))
    res = train_ner(NerTrainOptions(
        train=[str(data)], dev=str(data), out=str(tmp / "ner"), encoder=str(enc), epochs=40,
        batch_size=2, lr_encoder=2e-3, lr_head=2e-2, warmup=0.05, threads=1,
    ))  # fmt: skip
    assert res["best_dev_f1"] == 1.0, res
    build_model_dir(tmp)  # tmp/ckpt (RE) and tmp/model (without a tagger)
    export_model(tmp / "ckpt", tmp / "model_raw", precisions="fp32,int8", tagger=tmp / "ner")
    return tmp / "model_raw"


def _extract(model: Path, records: list, tmp: Path, *args: str):
    from _extract_fixtures import cli_app

    corpus = tmp / "c.jsonl"
    corpus.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    out = tmp / "o.txt"
    r = CliRunner().invoke(
        cli_app(), ["extract", str(corpus), "-o", str(out), "--model", str(model), *args]
    )
    return r, out


def test_model_json_describes_the_tagger(raw_model):
    meta = json.loads((raw_model / "model.json").read_text())
    t = meta["tagger"]
    assert t["labels"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert set(t["graphs"]) == {"fp32", "int8"} and t["cpu_runnable"]["int8"] is True
    assert t["io"]["tag_logits"]["shape"] == ["W", "L", "tags"]
    for f in t["graphs"].values():
        assert meta["sha256"][f] == t["sha256"][f]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_raw_text_in_triples_out(raw_model, tmp_path, precision):
    recs = [{"id": "x", "text": TEXT}, {"id": "y", "text": "the the the ."}]
    r, out = _extract(raw_model, recs, tmp_path, "--entities", "predict", "--precision", precision)
    assert r.exit_code == 0, r.output
    x, y = (orjson.loads(line) for line in out.read_bytes().splitlines())
    found = {(TEXT[s:e], ent["type"]) for ent in x["entities"] for s, e in ent["spans"]}
    assert found == EXPECTED
    assert y == {"id": "y", "triples": [], "entities": []}  # nothing recognisable: no error
    for t in x["triples"]:  # triples name predicted entities, with their character spans
        for arg in (t["head"], t["tail"]):
            assert arg == x["entities"][arg["index"]]


def test_tokenised_records_get_positions(raw_model):
    from docunet_rt.options import ExtractOptions
    from docunet_rt.runtime import Extractor

    ex = Extractor(raw_model, device="cpu")
    doc = _doc(0)
    rec = {"id": "z", "sents": doc["sents"], "labels": [{"h": 0, "t": 1, "r": "P1"}]}
    (res,) = ex.extract_records([(1, rec)], ExtractOptions(entities="predict"))
    got = sorted((tuple(p), e.type) for e in res.entities for p in e.positions)
    want = sorted((m["sent_id"], *m["pos"]) and ((m["sent_id"], *m["pos"]), m["type"])
                  for v in doc["vertexSet"] for m in v)  # fmt: skip
    assert got == want
    # entities grouped by name: alice's two mentions are one entity
    assert sorted(len(e.positions) for e in res.entities) == [1, 1, 1, 2, 2]


def test_auto_predicts_only_where_no_entities_are_given(raw_model, tmp_path):
    given = {"id": "g", "text": TEXT, "entities": [{"mentions": [{"start": 0, "end": 5}],
                                                   "type": "PER"}]}  # fmt: skip
    r, out = _extract(raw_model, [given, {"id": "p", "text": TEXT}], tmp_path, "--entities", "auto")
    assert r.exit_code == 0, r.output
    g, p = (orjson.loads(line) for line in out.read_bytes().splitlines())
    assert "entities" not in g  # the input's entities, not written back
    assert len(p["entities"]) == 5


def test_bad_records_are_error_records_and_the_run_goes_on(raw_model, tmp_path):
    recs = [{"id": "a", "text": ""}, {"id": "b", "text": 7}, {"id": "c", "text": TEXT}]
    r, out = _extract(raw_model, recs, tmp_path, "--entities", "predict")
    assert r.exit_code == 3, r.output
    errs = [orjson.loads(x) for x in (tmp_path / "o.txt.errors.jsonl").read_bytes().splitlines()]
    assert [(e["line"], e["id"]) for e in errs] == [(1, "a"), (2, "b")]
    assert all(e["error"].startswith("text:") for e in errs)
    assert [orjson.loads(x)["id"] for x in out.read_bytes().splitlines()] == ["c"]


def test_invalid_utf8_is_an_error_record(raw_model, tmp_path):
    from _extract_fixtures import cli_app

    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(
        b'{"id": "a", "text": "caf\xe9"}\n' + orjson.dumps({"id": "b", "text": TEXT})
    )
    out = tmp_path / "o.jsonl"
    r = CliRunner().invoke(cli_app(), ["extract", str(corpus), "-o", str(out), "--model",
                                       str(raw_model), "--entities", "predict"])  # fmt: skip
    assert r.exit_code == 3
    (err,) = [orjson.loads(x) for x in Path(str(out) + ".errors.jsonl").read_bytes().splitlines()]
    assert err["line"] == 1 and "UTF-8" in err["error"]


def test_a_model_without_tagger_fails_at_start_with_the_commands(raw_model, tmp_path):
    plain = raw_model.parent / "model"
    r, out = _extract(plain, [{"id": "a", "text": TEXT}], tmp_path, "--entities", "predict")
    assert r.exit_code == 1
    assert "docunet-rt train-ner" in r.stderr and "--tagger" in r.stderr
    assert not out.exists()
    # auto without a tagger: records without entities are error records naming the way out
    r, out = _extract(plain, [{"id": "a", "text": TEXT}], tmp_path, "--entities", "auto")
    assert r.exit_code == 3
    assert "train-ner" in (tmp_path / "o.txt.errors.jsonl").read_text()


def test_pubtator_output_round_trips_through_the_reader(raw_model, tmp_path):
    from docunet_rt.data.pubtator import read_pubtator

    recs = [{"id": "123", "title": "alice was born in paris .", "text": TEXT}]
    r, out = _extract(raw_model, recs, tmp_path, "--entities", "predict", "--output-format",
                      "pubtator")  # fmt: skip
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith("123|t|alice was born in paris .\n123|a|bob founded")
    (doc,) = read_pubtator(out)
    got = {(m.name, e.type) for e in doc.entities for m in e.mentions}
    assert got == EXPECTED
    assert all(m.span is not None for e in doc.entities for m in e.mentions)


def test_raw_text_extraction_never_imports_torch(raw_model, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(orjson.dumps({"id": "x", "text": TEXT}) + b"\n")
    code = (
        "import sys; from docunet_rt.runtime import Extractor, ExtractOptions;"
        f"ex = Extractor({str(raw_model)!r}, device='cpu');"
        "res = list(ex.extract([{'id': 'x', 'text': " + repr(TEXT) + "}],"
        " ExtractOptions(entities='predict')));"
        "print(len(res[0].entities), 'torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["5", "False"]


def test_pubtator_block_writes_cid_lines_chemical_to_disease_only():
    from docunet_rt.data.pubtator import read_pubtator
    from docunet_rt.runtime.results import DocumentResult, EntityRef, Triple, pubtator_block

    text = "Aspirin caused bleeding. Bleeding and aspirin."
    chem = EntityRef(0, "Aspirin", "Chemical", "D001241", [[0, 7], [38, 45]])
    dis = EntityRef(1, "bleeding", "Disease", "D006470", [[15, 23], [25, 33]])
    odd = EntityRef(2, "caused", "Disease", None, [[8, 14]])
    triples = [Triple(chem, dis, "CID", "CID", 0.9), Triple(dis, chem, "CID", "CID", 0.8),
               Triple(chem, odd, "CID", "CID", 0.7)]  # fmt: skip
    res = DocumentResult(
        "9", triples, None, [chem, dis, odd], True, text, "Aspirin caused bleeding."
    )
    block = pubtator_block(res).decode()
    cid = [x for x in block.splitlines() if "\tCID\t" in x]
    assert cid == ["9\tCID\tD001241\tD006470"]  # the reversed and the unlinked pair are left out
    assert "9\t8\t14\tcaused\tDisease\t-1" in block
    path = Path(__import__("tempfile").mkdtemp()) / "p.txt"
    path.write_text(block)
    (doc,) = read_pubtator(path)
    assert doc.title == "Aspirin caused bleeding." and len(doc.labels) == 1
    no_title = DocumentResult("9", [], None, [chem], True, text, "")
    assert (
        pubtator_block(no_title).decode().splitlines()[2] == "9\t1\t8\tAspirin\tChemical\tD001241"
    )


def test_lexicon_command_builds_from_annotated_files(tmp_path):
    from _extract_fixtures import cli_app

    from docunet_rt.ner.recognize import load_lexicon

    pub = tmp_path / "a.txt"
    pub.write_text(
        "1|t|Aspirin caused bleeding.\n1|a|Bleedings stopped.\n"
        "1\t0\t7\tAspirin\tChemical\tD001241\n1\t15\t23\tbleeding\tDisease\tD006470\n"
        "1\t25\t34\tBleedings\tDisease\tD006470\n1\tCID\tD001241\tD006470\n\n"
    )
    out = tmp_path / "lex.json"
    r = CliRunner().invoke(cli_app(), ["lexicon", str(pub), "-o", str(out)])
    assert r.exit_code == 0, r.output
    lex = load_lexicon(out)
    assert lex.lookup("ASPIRIN", "Chemical") == "D001241"
    assert lex.lookup("bleeding", "Disease") == "D006470" and len(lex) == 2
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps([_doc(0)]))  # no concept ids
    r = CliRunner().invoke(cli_app(), ["lexicon", str(empty), "-o", str(tmp_path / "x.json")])
    assert r.exit_code == 1 and "no entity with a concept id" in r.stderr


def test_lexicon_terms_add_a_vocabulary_and_report_bad_lines(tmp_path):
    """--terms: vocabulary rows fill forms the annotations lack (annotated ids win); a bad line
    is reported with its file and line, the good ones are used, exit code 3."""
    from _extract_fixtures import cli_app

    from docunet_rt.ner.recognize import load_lexicon

    pub = tmp_path / "a.txt"
    pub.write_text("1|t|Aspirin helps.\n1|a|x\n1\t0\t7\tAspirin\tChemical\tD001241\n\n")
    voc = tmp_path / "mesh.tsv"
    voc.write_text(
        "# MeSH entry terms\nAcetylsalicylic Acid\tChemical\tD001241\n"
        "Aspirin\tChemical\tD999999\nHeart Attack\tDisease\tD009203\n"
    )
    out = tmp_path / "lex.json"
    r = CliRunner().invoke(cli_app(), ["lexicon", str(pub), "--terms", str(voc), "-o", str(out)])
    assert r.exit_code == 0, r.output
    lex = load_lexicon(out)
    assert lex.lookup("acetylsalicylic acid", "Chemical") == "D001241"
    assert lex.lookup("heart attacks", "Disease") == "D009203"
    assert lex.lookup("aspirin", "Chemical") == "D001241"  # the annotation's id stays
    voc.write_text("Heart Attack\tDisease\tD009203\nbroken line\nX\t\tD1\n")
    r = CliRunner().invoke(cli_app(), ["lexicon", "--terms", str(voc), "-o", str(out)])
    assert r.exit_code == 3, r.output
    assert f"{voc}" in r.stderr and "line 2" in r.stderr and "line 3" in r.stderr
    assert load_lexicon(out).lookup("heart attack", "Disease") == "D009203"


def test_pubtator_title_not_starting_the_text_is_kept_and_offsets_shift():
    from docunet_rt.runtime.results import DocumentResult, EntityRef, pubtator_block

    chem = EntityRef(0, "Aspirin", "Chemical", "D001241", [[0, 7]])
    res = DocumentResult("9", [], None, [chem], True, "Aspirin works.", "A title")
    lines = pubtator_block(res).decode().splitlines()
    assert lines[:3] == [
        "9|t|A title",
        "9|a|Aspirin works.",
        "9\t8\t15\tAspirin\tChemical\tD001241",
    ]


def test_a_title_starting_the_text_is_its_own_sentence():
    from docunet_rt.data import parse_record

    rec = {"id": "1", "title": "Cocaine and the heart", "text": "Cocaine and the heart is a study.",
           "entities": []}  # fmt: skip
    doc = parse_record(rec)
    assert doc.sentences[0] == ["Cocaine", "and", "the", "heart"]


def test_pubtator_output_resumes(raw_model, tmp_path):
    from docunet_rt.extract import run_extraction
    from docunet_rt.options import ExtractOptions
    from docunet_rt.runtime import Extractor

    ex = Extractor(raw_model, device="cpu")
    opts = ExtractOptions(entities="predict", sort_window=2)
    recs = [{"id": f"d{i}", "text": TEXT} for i in range(5)]
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs[:3]))
    out, ref = tmp_path / "o.txt", tmp_path / "ref.txt"
    err = tmp_path / "e.jsonl"
    run_extraction(corpus, out, ex, opts, output_format="pubtator", errors_path=err)
    run_extraction(corpus, out, ex, opts, output_format="pubtator", resume=True, errors_path=err)
    corpus.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs + [recs[0]]))
    s = run_extraction(
        corpus, out, ex, opts, output_format="pubtator", resume=True, errors_path=err
    )
    assert s.errors == 1  # the repeated id d0 is still known after the resume
    run_extraction(corpus, ref, ex, opts, output_format="pubtator", errors_path=tmp_path / "f")
    assert out.read_bytes() == ref.read_bytes()
    with pytest.raises(ValueError, match="written as pubtator"):
        run_extraction(corpus, out, ex, opts, resume=True, errors_path=err)


def test_resume_fingerprint_covers_the_tagger_files(raw_model, tmp_path):
    import shutil

    from docunet_rt.options import ExtractOptions
    from docunet_rt.runtime import Extractor

    copy = tmp_path / "m"
    shutil.copytree(raw_model, copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["tagger"]["sha256"]["lexicon.json"] = "0" * 64  # as after a rebuilt lexicon
    (copy / "model.json").write_text(json.dumps(meta))
    opts = ExtractOptions(entities="predict")
    a, b = Extractor(raw_model, device="cpu"), Extractor(copy, device="cpu")
    assert a.fingerprint(opts) != b.fingerprint(opts)
    assert a.fingerprint(ExtractOptions()) == b.fingerprint(ExtractOptions())


def test_a_record_the_tagger_fails_on_alone_is_an_error_record(raw_model):
    from docunet_rt.options import ExtractOptions
    from docunet_rt.runtime import Extractor

    ex = Extractor(raw_model, device="cpu")
    opts = ExtractOptions(entities="predict")
    rec = ex.recognizer(opts)
    bad_id = rec.tok.tokenizer.token_to_id("berlin")
    good = rec.tag_fn

    def flaky(ids, mask):
        if (ids == bad_id).any():
            raise RuntimeError("allocation failed")
        return good(ids, mask)

    rec.tag_fn = flaky
    recs = [(1, {"id": "a", "text": TEXT}), (2, {"id": "b", "text": "bob was in berlin ."}),
            (3, {"id": "c", "text": TEXT})]  # fmt: skip
    out = list(ex.extract_records(recs, opts))
    assert [getattr(r, "id", None) for r in out] == ["a", "b", "c"]
    assert "entity tagger failed" in out[1].error and len(out[2].entities) == 5


def test_dictionary_spans_add_lexicon_forms_where_the_tagger_found_nothing():
    from docunet_rt.data.text import tokenize_with_offsets
    from docunet_rt.grouping import Lexicon
    from docunet_rt.ner.recognize import dictionary_forms, dictionary_spans

    lex = Lexicon.build([("myocardial infarction", "Disease", "D1"), ("cocaine", "Chemical", "C1"),
                         ("MI", "Disease", "D1"), ("cold", "Disease", "D2"),
                         ("cold", "Chemical", "C2")])  # fmt: skip
    forms = dictionary_forms(lex, 3)
    assert "mi" not in forms and "cold" not in forms  # too short; ambiguous between types
    text = "Cocaine-induced myocardial infarctions and cocaine, MI and a cold."
    words = tokenize_with_offsets(text)
    tagged = [(0, 1, "Chemical")]  # the tagger found the first "Cocaine" only
    got = dictionary_spans(text, words, tagged, forms)
    assert [(text[words[a][1] : words[b - 1][2]], t) for a, b, t in got] == [
        ("Cocaine", "Chemical"),
        ("myocardial infarctions", "Disease"),
        ("cocaine", "Chemical"),
    ]
    overlapping = dictionary_spans(text, words, [(3, 4, "Disease")], forms)  # "myocardial"
    assert (3, 5, "Disease") not in overlapping and (3, 4, "Disease") in overlapping


def test_export_tagger_dictionary_needs_a_tagger(tmp_path):
    from docunet_rt.export import export_model

    with pytest.raises(Exception, match="--tagger-dictionary needs --tagger"):
        export_model(tmp_path / "ckpt", tmp_path / "m", tagger_dictionary=3)
    with pytest.raises(Exception, match="unknown --linking 'near'; valid: exact, variants, fuzzy"):
        export_model(tmp_path / "ckpt", tmp_path / "m", tagger_linking="near")


def test_pair_types_limit_raw_text_to_the_trained_kinds_of_pairs(raw_model, tmp_path):
    """export --pair-types PER:LOC: raw text gets only PER → LOC pairs scored (candidates given
    in the input still count as given); types the tagger cannot find are refused at export."""
    from docunet_rt.export import ExportError, export_model
    from docunet_rt.options import ExtractOptions
    from docunet_rt.runtime import Extractor

    tmp = raw_model.parent
    limited = tmp_path / "limited"
    export_model(tmp / "ckpt", limited, precisions="fp32", tagger=tmp / "ner", pair_types="PER:LOC")
    meta = json.loads((limited / "model.json").read_text())
    assert meta["config"]["pair_types"] == [["PER", "LOC"]]
    assert meta["format_version"] == 2  # a runtime that only reads 1 would drop pair_types
    opts = ExtractOptions(entities="predict", min_score=1e-12)  # every scored pair: a triple
    rec = [(1, {"id": "x", "text": TEXT})]
    [everything] = Extractor(raw_model).extract_records(rec, opts)
    [only] = Extractor(limited).extract_records(rec, opts)
    kinds = {(t.head.type, t.tail.type) for t in everything.triples}
    assert ("PER", "LOC") in kinds and len(kinds) > 1
    assert {(t.head.type, t.tail.type) for t in only.triples} == {("PER", "LOC")}
    # parity compares the graphs on every pair, pair types set aside (synthetic entities
    # have none of the recorded types)
    from docunet_rt.export import check_parity
    from docunet_rt.export.tracing import load_source
    from docunet_rt.synth import synthetic_documents

    model, tok, _ = load_source(tmp / "ckpt")
    synth = synthetic_documents(tok, model.config.max_length)[:3]
    report = check_parity(tmp / "ckpt", limited, synth, model=model, tok=tok)
    assert report.pairs > 0 and report.max_abs_diff <= 1e-3, report.summary()
    with pytest.raises(ExportError, match="pair types need Chemical, Disease"):
        export_model(
            tmp / "ckpt", tmp_path / "x", tagger=tmp / "ner", pair_types="Chemical:Disease"
        )
    with pytest.raises(ExportError, match="valid: auto, all, or comma-separated"):
        export_model(tmp / "ckpt", tmp_path / "y", pair_types="PER-LOC")


def test_export_warns_on_pair_types_training_never_saw(raw_model, tmp_path, caplog):
    import shutil

    from docunet_rt.export import export_model

    ckpt = tmp_path / "ckpt"
    shutil.copytree(raw_model.parent / "ckpt", ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["model"]["pair_types"] = [["PER", "LOC"]]  # as training on candidates records it
    (ckpt / "config.json").write_text(json.dumps(cfg))
    export_model(ckpt, tmp_path / "ok", precisions="fp32")
    assert json.loads((tmp_path / "ok" / "model.json").read_text())["config"]["pair_types"] == [
        ["PER", "LOC"]
    ]
    assert "never paired" not in caplog.text
    export_model(ckpt, tmp_path / "typo", precisions="fp32", pair_types="PER:LCO")
    assert (
        "--pair-types names LCO, which training never paired (it recorded PER:LOC)" in caplog.text
    )


def test_export_records_how_a_concept_tagger_links(raw_model, tmp_path):
    """A tagger trained on concept ids gets ``linking`` in model.json (fuzzy by default, as
    chosen on CDR dev); the runtime's recognizer uses what model.json says."""
    from docunet_rt.export import export_model
    from docunet_rt.ner.train import NerTrainOptions, train_ner
    from docunet_rt.options import ExtractOptions
    from docunet_rt.runtime import Extractor

    tmp = raw_model.parent
    docs = [_doc(i) for i in range(2)]
    for d in docs:
        for ent in d["vertexSet"]:
            for m in ent:
                m["id"] = "C-" + m["name"]
    data = tmp_path / "ids.json"
    data.write_text(json.dumps(docs))
    ner = tmp_path / "ner"
    train_ner(NerTrainOptions(train=[str(data)], dev=str(data), out=str(ner),
                              encoder=str(tmp / "enc"), epochs=1, batch_size=2, threads=1))  # fmt: skip
    for args, want in (({}, ("fuzzy", 0.75)), ({"tagger_linking": "exact"}, ("exact", 0.75)),
                       ({"link_similarity": 0.9}, ("fuzzy", 0.9))):  # fmt: skip
        out = tmp_path / f"m{len(args)}{want}"
        export_model(tmp / "ckpt", out, precisions="fp32", tagger=ner, **args)
        cfg = json.loads((out / "model.json").read_text())["tagger"]["config"]
        assert (cfg["grouping"], cfg["linking"], cfg["link_similarity"]) == ("concept", *want)
        rec = Extractor(out).recognizer(ExtractOptions(entities="predict"))
        assert (rec.config.linking, rec.config.link_similarity) == want
    # a name-grouping tagger (the fixture's) links nothing: its config keeps the default
    assert json.loads((raw_model / "model.json").read_text())["tagger"]["config"]["linking"] == (
        "exact"
    )
