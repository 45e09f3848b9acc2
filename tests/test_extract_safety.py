"""Nothing lost, nothing silently wrong: the input is never overwritten, one huge or failing
document becomes an error record, and resume refuses what it cannot continue exactly."""

from __future__ import annotations

import os
import re
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import orjson
import pytest

from docunet_rt.corpus import LineReader, TooLarge
from docunet_rt.extract import progress_path, run_extraction
from docunet_rt.features import build_features, head_bytes, plan_batches
from docunet_rt.options import ExtractOptions
from docunet_rt.runtime import Extractor

sys.path.insert(0, str(Path(__file__).parent))
from _extract_fixtures import (  # noqa: E402
    RELATIONS,
    WORDS,
    StubBackend,
    StubExtractor,
    corpus_records,
    make_tokenizer,
    stub_config,
    write_jsonl,
)

TEXT = {
    "id": "t",
    "text": "alice was born in paris . bob founded acme .",
    "entities": [
        {"mentions": [{"start": 0, "end": 5}], "type": "PER"},
        {"mentions": [{"start": 18, "end": 23}], "type": "LOC"},
        {"mentions": [{"start": 26, "end": 29}], "type": "PER"},
    ],
}


def lines_of(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def stub_with(backend) -> Extractor:
    from docunet_rt.features import TokenizerInfo

    return Extractor.from_backend(
        backend, stub_config(), TokenizerInfo.from_tokenizer(make_tokenizer())
    )


# ------------------------------------------------------------------------------------------------
# The input is never an output
# ------------------------------------------------------------------------------------------------


def test_out_errors_or_progress_file_equal_to_the_corpus_is_refused(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records(30))
    before = corpus.read_bytes()
    os.link(corpus, tmp_path / "hard.jsonl")
    (tmp_path / "sym.jsonl").symlink_to(corpus)
    for out, errors in (
        (corpus, None),
        (tmp_path / "sub" / ".." / "c.jsonl", None),
        (tmp_path / "hard.jsonl", None),
        (tmp_path / "sym.jsonl", None),
        (tmp_path / "o.jsonl", corpus),
    ):
        with pytest.raises(ValueError, match="is the input corpus .*refusing to overwrite it"):
            run_extraction(corpus, out, StubExtractor(), errors_path=errors)
        assert corpus.read_bytes() == before
    weird = write_jsonl(tmp_path / "x.progress", corpus_records(3))  # OUT.progress == corpus
    with pytest.raises(ValueError, match="the progress file"):
        run_extraction(weird, tmp_path / "x", StubExtractor())


def test_cli_refuses_writing_over_the_corpus(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from docunet_rt.cli import extract_cmd
    from docunet_rt.cli.main import app

    monkeypatch.setattr(extract_cmd, "load_extractor", lambda *a: StubExtractor())
    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records(100))
    before = corpus.read_bytes()
    r = CliRunner().invoke(app, ["extract", str(corpus), "-o", str(corpus), "--model", "m"])
    assert r.exit_code == 1 and "is the input corpus" in r.stderr
    assert corpus.read_bytes() == before


# ------------------------------------------------------------------------------------------------
# Bounded memory per document
# ------------------------------------------------------------------------------------------------


def test_a_10_mb_line_is_an_error_record_and_is_never_held_in_memory(tmp_path):
    huge = {"id": "huge", "text": "alice " * (10 * 2**20 // 6), "entities": []}
    corpus = write_jsonl(tmp_path / "c.jsonl", [TEXT, huge, {**TEXT, "id": "after"}])
    tracemalloc.start()
    with open(corpus, "rb") as fh:
        got = [
            (n, raw if isinstance(raw, TooLarge) else len(raw))
            for n, raw in LineReader(fh, "c", 2 << 20)
        ]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert isinstance(got[1][1], TooLarge) and got[1][1] > 10 * 2**20 - 100
    assert peak < 8 * 2**20  # the 10 MB line was read in chunks, never held whole
    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    s = run_extraction(corpus, out, StubExtractor(), errors_path=err)
    assert [d["id"] for d in lines_of(out)] == ["t", "after"]
    [e] = lines_of(err)
    assert (
        e["line"] == 2
        and e["error"].startswith("record too large: 10485")
        and "max_record_bytes" in e["error"]
    )
    assert (s.docs, s.errors) == (2, 1)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            ExtractOptions(max_doc_tokens=40),
            "document too long: .* wordpieces .* > max_doc_tokens 40",
        ),
        (ExtractOptions(max_entities=2), "too many entities: 3 > max_entities 2"),
        (
            ExtractOptions(max_head_mb=1, max_doc_tokens=None),
            r"document too large: its pair map needs about \d+ MB > max_head_mb 1",
        ),
    ],
)
def test_documents_over_the_bounds_are_error_records(tmp_path, options, match):
    long = {**TEXT, "id": "long", "text": TEXT["text"] + " alice" * 40000}
    corpus = write_jsonl(tmp_path / "c.jsonl", [{**TEXT, "id": "a"}, long, {**TEXT, "id": "b"}])
    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    run_extraction(corpus, out, StubExtractor(), options, errors_path=err)
    bad = lines_of(err)
    assert bad and re.search(match, bad[0]["error"]), bad[0]["error"]
    assert len(lines_of(out)) + len(bad) == 3


def test_the_head_budget_splits_batches_and_estimates_grow_with_size():
    cfg, tok = stub_config(), make_tokenizer()
    from docunet_rt.features import TokenizerInfo

    info = TokenizerInfo.from_tokenizer(tok)
    from docunet_rt.data import parse_record

    docs = [parse_record({**TEXT, "id": str(i)}) for i in range(6)]
    feats = [build_features(d, info, cfg) for d in docs]
    one = head_bytes(feats[0].seq_len, len(feats[0].mention_pos), feats[0].num_entities, cfg)
    assert head_bytes(2 * feats[0].seq_len, 8, 8, cfg) > one > 0
    assert plan_batches(feats, 32, 10**6) == [[0, 1, 2, 3, 4, 5]]
    capped = plan_batches(feats, 32, 10**6, max_head_bytes=2 * one, config=cfg)
    assert capped == [[0, 1], [2, 3], [4, 5]]
    assert plan_batches(feats, 32, 10**6, max_head_bytes=1, config=cfg) == [[i] for i in range(6)]


class ExplodingBackend(StubBackend):
    """Fails on any batch holding a document that contains the word 'rhine'."""

    def run_batch(self, feats, max_tokens=None):
        rhine = make_tokenizer().token_to_id("rhine")
        if any(rhine in f.wordpieces for f in feats):
            raise RuntimeError("Failed to allocate memory for requested buffer of size 9e12")
        return super().run_batch(feats)


def test_a_document_the_model_fails_on_is_an_error_record_and_the_rest_go_on(tmp_path):
    recs = [{**TEXT, "id": f"d{i}"} for i in range(6)]
    recs[3] = {**TEXT, "id": "boom", "text": TEXT["text"].replace("paris", "rhine")}
    corpus = write_jsonl(tmp_path / "c.jsonl", recs)
    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    s = run_extraction(corpus, out, stub_with(ExplodingBackend()), errors_path=err, workers=0)
    assert [d["id"] for d in lines_of(out)] == ["d0", "d1", "d2", "d4", "d5"]
    [e] = lines_of(err)
    assert e["line"] == 4 and e["id"] == "boom"
    assert "the model failed on this document: RuntimeError: Failed to allocate" in e["error"]
    assert (s.docs, s.errors) == (5, 1)
    # the same through the records-level entry point
    lines = [(i + 1, orjson.dumps(r)) for i, r in enumerate(recs)]
    res = list(stub_with(ExplodingBackend()).extract_records(lines))
    assert [type(r).__name__ for r in res].count("ErrorRecord") == 1 and res[3].id == "boom"


# ------------------------------------------------------------------------------------------------
# Resume refuses what it cannot continue, and continues exactly
# ------------------------------------------------------------------------------------------------


class BatchDependentBackend(StubBackend):
    """Logits that depend on the batch a document is in (as int8's dynamic quantisation does)."""

    def run_batch(self, feats, max_tokens=None):
        shift = 0.3 * len(feats) + 0.01 * sum(len(f.wordpieces) for f in feats)
        return [lg + np.float32(shift % 1.7) for lg in super().run_batch(feats)]


def test_resume_is_exact_even_when_logits_depend_on_the_batch(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records(260, seed=4))
    opts = ExtractOptions(max_tokens=300, sort_window=64)
    ref = tmp_path / "ref.jsonl"
    run_extraction(corpus, ref, stub_with(BatchDependentBackend()), opts, workers=1)
    out, snaps = tmp_path / "o.jsonl", []
    run_extraction(
        corpus, out, stub_with(BatchDependentBackend()), opts,
        progress=lambda s: snaps.append(progress_path(out).read_bytes()),
    )  # fmt: skip
    assert out.read_bytes() == ref.read_bytes()
    snaps = list(dict.fromkeys(snaps))[:-1]
    assert len(snaps) >= 4
    for snap in snaps:  # a kill after each window, with half of the next window written
        st = orjson.loads(snap)
        out.write_bytes(ref.read_bytes()[: st["out_bytes"] + 100])
        progress_path(out).write_bytes(snap)
        run_extraction(corpus, out, stub_with(BatchDependentBackend()), opts, resume=True)
        assert out.read_bytes() == ref.read_bytes(), st["lines"]


def test_resume_refuses_another_corpus_a_shorter_one_or_another_model(tmp_path):
    recs = corpus_records(80, seed=2)
    corpus = write_jsonl(tmp_path / "c.jsonl", recs)
    out = tmp_path / "o.jsonl"
    run_extraction(corpus, out, StubExtractor())
    state = progress_path(out).read_bytes()
    st = orjson.loads(state)
    progress_path(out).write_bytes(orjson.dumps({**st, "complete": False, "lines": 48}))  # mid-run
    write_jsonl(corpus, corpus_records(80, seed=3))  # another corpus
    with pytest.raises(ValueError, match="the first 48 lines of the corpus are not the ones"):
        run_extraction(corpus, out, StubExtractor(), resume=True)
    write_jsonl(corpus, recs[:20])  # a shorter one
    with pytest.raises(
        ValueError, match="the corpus ends at line 20, but the run .* had handled 48"
    ):
        run_extraction(corpus, out, StubExtractor(), resume=True)
    write_jsonl(corpus, recs)
    progress_path(out).write_bytes(state)
    other = Extractor.from_backend(
        StubBackend(), stub_config(), StubExtractor().tok, precision="int8"
    )
    with pytest.raises(ValueError, match="written by another model or precision"):
        run_extraction(corpus, out, other, resume=True)
    with pytest.raises(ValueError, match="started with options"):
        run_extraction(corpus, out, StubExtractor(), ExtractOptions(max_entities=9), resume=True)


def test_a_finished_run_continues_with_lines_appended_since(tmp_path):
    recs = corpus_records(90, seed=6)
    corpus = write_jsonl(tmp_path / "c.jsonl", recs[:50])
    out = tmp_path / "o.jsonl"
    run_extraction(corpus, out, StubExtractor())
    s = run_extraction(corpus, out, StubExtractor(), resume=True)
    assert s.docs == 50 and s.resumed_docs == 50  # complete: nothing to do
    write_jsonl(corpus, recs)  # 40 more lines
    s = run_extraction(corpus, out, StubExtractor(), resume=True)
    whole = tmp_path / "whole.jsonl"
    run_extraction(corpus, whole, StubExtractor())
    assert out.read_bytes() == whole.read_bytes() and s.docs == 90


def test_stub_logits_are_deterministic():  # the fixtures the tests above rely on
    f = build_features(
        __import__("docunet_rt.data", fromlist=["parse_record"]).parse_record(TEXT),
        StubExtractor().tok,
        stub_config(),
    )
    a, b = StubBackend().run_batch([f])[0], StubBackend().run_batch([f])[0]
    assert np.array_equal(a, b) and a.shape == (6, len(RELATIONS) + 1)
    assert zlib.crc32(f.wordpieces.tobytes()) and WORDS


# ------------------------------------------------------------------------------------------------
# What the user gave comes out again
# ------------------------------------------------------------------------------------------------


def test_entity_ids_and_mention_spans_reach_the_output(tmp_path):
    rec = {
        "id": "ids",
        "text": "alice was born in paris . alice founded acme .",
        "entities": [
            {"mentions": [{"start": 0, "end": 5}, {"start": 26, "end": 31}], "type": "PER",
             "id": "Q1"},
            {"mentions": [{"start": 18, "end": 23}], "type": "LOC", "id": "Q90"},
            {"mentions": [{"start": 40, "end": 44}], "type": "ORG"},
        ],
    }  # fmt: skip
    corpus = write_jsonl(tmp_path / "c.jsonl", [rec])
    run_extraction(corpus, tmp_path / "o.jsonl", StubExtractor(), ExtractOptions(min_score=0.01))
    [doc] = lines_of(tmp_path / "o.jsonl")
    ents = {t[k]["index"]: t[k] for t in doc["triples"] for k in ("head", "tail")}
    assert len(ents) == 3
    assert ents[0] == {"index": 0, "name": "alice", "type": "PER", "id": "Q1",
                       "spans": [[0, 5], [26, 31]]}  # fmt: skip
    assert ents[1]["id"] == "Q90" and ents[1]["spans"] == [[18, 23]]
    assert "id" not in ents[2] and ents[2]["spans"] == [[40, 44]]


def test_a_json_list_and_a_pretty_printed_document_are_read_as_documents(tmp_path):
    import gzip
    import json

    recs = corpus_records(12, seed=9)
    jsonl = write_jsonl(tmp_path / "c.jsonl", recs)
    run_extraction(jsonl, tmp_path / "want.jsonl", StubExtractor())
    want = (tmp_path / "want.jsonl").read_bytes()
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(recs, indent=2))  # DocRED's test.json shape
    gz = tmp_path / "list.json.gz"
    gz.write_bytes(gzip.compress(as_list.read_bytes()))
    for src in (as_list, gz):
        run_extraction(src, tmp_path / "o.jsonl", StubExtractor())
        assert (tmp_path / "o.jsonl").read_bytes() == want
    one = tmp_path / "one.json"
    one.write_text("\ufeff" + json.dumps(recs[1], indent=4))  # one pretty-printed document
    s = run_extraction(one, tmp_path / "o1.jsonl", StubExtractor(), errors_path=tmp_path / "e")
    assert (s.docs, s.errors) == (1, 0)
    [got] = lines_of(tmp_path / "o1.jsonl")  # its id: its title, else its line number (1)
    assert got["triples"] == orjson.loads(want.splitlines()[1])["triples"]
    # JSONL whose first line is bad stays JSONL: one error record, the rest extracted
    bad_first = write_jsonl(tmp_path / "b.jsonl", [b"{oops", *recs[1:]])
    s = run_extraction(bad_first, tmp_path / "o2.jsonl", StubExtractor())
    assert (s.docs, s.errors) == (11, 1)


def test_pubtator_or_cdr_input_points_to_convert(tmp_path):
    from docunet_rt.data import DataError

    pub = tmp_path / "c.txt"
    pub.write_text("123|t|A title\n123|a|An abstract.\n123\t0\t1\tA\tChemical\tD1\n\n")
    with pytest.raises(DataError, match="docunet-rt convert CORPUS -o corpus.jsonl"):
        run_extraction(pub, tmp_path / "o.jsonl", StubExtractor())
    assert not (tmp_path / "o.jsonl").exists() or (tmp_path / "o.jsonl").read_bytes() == b""


def test_gpu_devices_that_cannot_work_fail_with_one_clear_reason(monkeypatch):
    from docunet_rt.runtime import sessions

    monkeypatch.setattr(sessions, "cuda_driver_present", lambda: False)
    for dev in ("cuda", "tensorrt"):
        with pytest.raises(ValueError, match=rf"--device {dev}: no usable GPU: the NVIDIA driver"):
            sessions.make_session(b"", sessions.SessionConfig(dev))
    monkeypatch.setattr(sessions, "cuda_driver_present", lambda: True)
    monkeypatch.setattr(sessions, "tensorrt_present", lambda: False)
    with pytest.raises(ValueError, match=r"--device tensorrt: the TensorRT libraries \(libnvinfer"):
        sessions.make_session(b"", sessions.SessionConfig("tensorrt"))
    with pytest.raises(ValueError, match="int8 cannot run on TensorRT"):
        sessions.SessionConfig("tensorrt", precision="int8")


def test_ctrl_c_says_how_far_extract_got_and_how_to_resume(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from docunet_rt import extract
    from docunet_rt.cli import extract_cmd
    from docunet_rt.cli.main import app

    def interrupted(*a, progress=None, **kw):
        progress(extract.ExtractSummary(lines=32, docs=30))
        raise KeyboardInterrupt

    monkeypatch.setattr(extract_cmd, "load_extractor", lambda *a: StubExtractor())
    monkeypatch.setattr(extract, "run_extraction", interrupted)
    monkeypatch.setattr(sys, "argv", ["docunet-rt", "extract", "c.jsonl", "-o", "o.jsonl"])
    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records(5))
    r = CliRunner().invoke(app, ["extract", str(corpus), "-o", str(tmp_path / "o"), "--model", "m"])
    assert r.exit_code == 130
    msg = " ".join(r.stderr.split())
    assert "interrupted after line 32 (30 documents written)" in msg
    assert "Resume with: docunet-rt extract c.jsonl -o o.jsonl --resume" in msg


def test_error_records_say_whether_the_model_or_the_input_failed():
    recs = [
        {**TEXT, "id": "ok"},
        {**TEXT, "id": "boom", "text": TEXT["text"].replace("paris", "rhine")},
    ]
    lines = [(i + 1, orjson.dumps(r)) for i, r in enumerate(recs)] + [(3, b"{bad")]
    res = list(stub_with(ExplodingBackend()).extract_records(lines))
    assert [getattr(r, "stage", None) for r in res] == [None, "model", "input"]
    assert res[1].to_dict().keys() == {"line", "id", "error"}  # the written schema is unchanged


# ------------------------------------------------------------------------------------------------
# Found in review: resume and reading edge cases
# ------------------------------------------------------------------------------------------------


def test_resume_refuses_another_device_budget(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records(40, seed=8))
    out = tmp_path / "o.jsonl"
    run_extraction(corpus, out, StubExtractor())
    st = orjson.loads(progress_path(out).read_bytes())
    assert st["settings"]["runtime"]["max_tokens"] == 4096
    progress_path(out).write_bytes(orjson.dumps({**st, "complete": False}))
    gpu = StubBackend()
    gpu.provider = "CUDAExecutionProvider"  # another device: another default budget
    with pytest.raises(ValueError, match="was started on .*this run would run on"):
        run_extraction(corpus, out, stub_with(gpu), resume=True)


def test_resume_point_turned_blank_is_a_clear_refusal(tmp_path):
    recs = corpus_records(40, seed=9)
    corpus = write_jsonl(tmp_path / "c.jsonl", recs)
    out = tmp_path / "o.jsonl"
    run_extraction(corpus, out, StubExtractor())
    st = orjson.loads(progress_path(out).read_bytes())
    progress_path(out).write_bytes(orjson.dumps({**st, "complete": False, "lines": 16}))
    lines = corpus.read_bytes().splitlines(keepends=True)
    corpus.write_bytes(b"".join(lines[:15]) + b"\n" + b"".join(lines[16:]))  # line 16 now blank
    with pytest.raises(ValueError, match="are not the ones the run"):
        run_extraction(corpus, out, StubExtractor(), resume=True)


def test_ids_of_documents_the_model_failed_on_stay_seen_after_a_resume(tmp_path):
    boom = {**TEXT, "id": "boom", "text": TEXT["text"].replace("paris", "rhine")}
    recs = [boom] + [{**TEXT, "id": f"d{i}"} for i in range(20)] + [{**TEXT, "id": "boom"}]
    corpus = write_jsonl(tmp_path / "c.jsonl", recs)
    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    snaps: list[bytes] = []
    opts = ExtractOptions(sort_window=16)
    run_extraction(
        corpus, out, stub_with(ExplodingBackend()), opts, errors_path=err,
        progress=lambda s: snaps.append(progress_path(out).read_bytes()),
    )  # fmt: skip
    want_out, want_err = out.read_bytes(), err.read_bytes()
    assert [e["id"] for e in lines_of(err)] == ["boom", "boom"]  # failed, then duplicate
    first = orjson.loads(next(x for x in snaps if orjson.loads(x)["lines"] == 16))
    assert first["failed_ids"] == ["boom"]
    out.write_bytes(want_out[: first["out_bytes"]])
    err.write_bytes(want_err[: first["err_bytes"]])
    progress_path(out).write_bytes(orjson.dumps(first))
    run_extraction(corpus, out, stub_with(ExplodingBackend()), opts, errors_path=err, resume=True)
    assert (out.read_bytes(), err.read_bytes()) == (want_out, want_err)


def test_a_leading_blank_line_and_a_bom_keep_line_numbers_and_the_byte_cap(tmp_path):
    rec = orjson.dumps({**TEXT, "id": None, "title": ""})
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(b"\n" + rec + b"\n")
    s = run_extraction(corpus, tmp_path / "o.jsonl", StubExtractor())
    assert s.docs == 1 and lines_of(tmp_path / "o.jsonl")[0]["id"] == "2"  # its line number
    bom = tmp_path / "b.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + rec + b"\r\n" + rec + b"\n")
    with open(bom, "rb") as fh:
        got = [(n, type(raw).__name__) for n, raw in LineReader(fh, "b", len(rec))]
    assert got == [(1, "bytes"), (2, "bytes")]  # exactly at the cap, BOM and CRLF aside
    with open(bom, "rb") as fh:
        small = [raw for _, raw in LineReader(fh, "b", len(rec) - 1)]
    assert small == [len(rec), len(rec)] and all(isinstance(x, TooLarge) for x in small)
