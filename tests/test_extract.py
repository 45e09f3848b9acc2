"""Batch extraction pipeline (docunet_rt.extract) and the ``docunet-rt extract`` command.

Most tests run a stub extractor (real features/batching/decoding, fake logits that depend only on
the document), so they need no exported model; the end-to-end tests export a tiny checkpoint.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from docunet_rt.cli import extract_cmd
from docunet_rt.data import DataError
from docunet_rt.extract import (
    ExtractSummary,
    RejectedLine,
    parse_line,
    read_corpus_lines,
    run_extraction,
)
from docunet_rt.runtime import ExtractOptions

sys.path.insert(0, str(Path(__file__).parent))
from _extract_fixtures import (  # noqa: E402
    StubExtractor,
    corpus_records,
    docred_record,
    write_jsonl,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "_extract_fixtures.py"

DOCRED = {
    "title": "T1",
    "sents": [["alice", "was", "born", "in", "paris", "."], ["bob", "founded", "acme", "."]],
    "vertexSet": [
        [{"name": "alice", "sent_id": 0, "pos": [0, 1], "type": "PER"}],
        [{"name": "paris", "sent_id": 0, "pos": [4, 5], "type": "LOC"}],
        [{"sent_id": 1, "pos": [0, 1], "type": "PER"}],
        [{"sent_id": 1, "pos": [2, 3], "type": "ORG"}],
    ],
}
TEXT = {
    "id": "x1",
    "text": "Alice was born in Paris. Bob founded Acme.",
    "entities": [
        {"mentions": [{"start": 0, "end": 5}], "type": "PER"},
        {"mentions": [{"start": 18, "end": 23}], "type": "LOC", "name": "Paris, France"},
        {"mentions": [{"start": 25, "end": 28}], "type": "PER"},
    ],
    "meta": {"source": "unit", "k": [1, 2.5, None]},
}


def lines_of(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def run(tmp_path: Path, records: list, name: str = "c", **kw) -> tuple[ExtractSummary, Path, Path]:
    corpus = write_jsonl(tmp_path / f"{name}.jsonl", records)
    out, err = tmp_path / f"{name}.out.jsonl", tmp_path / f"{name}.err.jsonl"
    options = kw.pop("options", ExtractOptions(batch_size=4))
    ex = kw.pop("extractor", None) or StubExtractor()
    s = run_extraction(corpus, out, ex, options, errors_path=err, **kw)
    return s, out, err


# ------------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------------


def test_auto_detects_docred_and_text_records(tmp_path):
    s, out, err = run(tmp_path, [DOCRED, TEXT])
    assert (s.docs, s.errors) == (2, 0)
    a, b = lines_of(out)
    assert a["id"] == "T1" and b["id"] == "x1"
    assert "meta" not in a and b["meta"] == TEXT["meta"]
    assert a["triples"] and b["triples"]
    t = b["triples"][0]
    assert set(t) == {"head", "tail", "relation", "score"}
    # plain text: the mentions' character spans come back; DocRED style: no spans to give
    assert set(t["head"]) == {"index", "name", "type", "spans"}
    assert set(a["triples"][0]["head"]) == {"index", "name", "type"}
    assert set(t["relation"]) == {"id", "name"}
    names = {x["tail"]["name"] for x in b["triples"]} | {x["head"]["name"] for x in b["triples"]}
    assert "Paris, France" in names  # the given name wins over the mention text
    assert not err.exists()  # no bad line, no error file


def test_ids_come_from_id_then_title_then_line_number():
    untitled = {k: v for k, v in DOCRED.items() if k != "title"}
    assert parse_line(orjson.dumps({**DOCRED, "id": 7}), 3).id == "7"
    assert parse_line(orjson.dumps(DOCRED), 3).id == "T1"
    assert parse_line(orjson.dumps(untitled), 3).id == "3"
    text = {k: v for k, v in TEXT.items() if k != "id"}
    assert parse_line(orjson.dumps(text), 9).id == "9"
    assert parse_line(orjson.dumps({**text, "title": "tt"}), 9).id == "tt"


def test_meta_is_copied_unchanged_for_both_formats(tmp_path):
    meta = {"a": [1, {"b": None}], "c": "ü", "d": 1.25, "e": True}
    s, out, _ = run(
        tmp_path, [{**DOCRED, "meta": meta}, {**TEXT, "meta": meta}, {**TEXT, "id": "n", "meta": 5}]
    )
    assert [x.get("meta") for x in lines_of(out)] == [meta, meta, 5]


def test_zero_and_one_entity_documents_give_empty_triples(tmp_path):
    zero = {"id": "z", "text": "nothing here", "entities": []}
    one = {**DOCRED, "title": "one", "vertexSet": DOCRED["vertexSet"][:1]}
    s, out, _ = run(tmp_path, [zero, one, {**DOCRED, "vertexSet": []}])
    assert [(x["id"], x["triples"]) for x in lines_of(out)] == [("z", []), ("one", []), ("T1", [])]
    assert s.triples == 0


BAD_LINES = [
    (b"{not json", "invalid JSON", None),
    (b"\xff\xfe{}", "not valid UTF-8", None),
    (b"[1, 2]", "a document must be a JSON object, got list", None),
    (orjson.dumps({"id": "u", "foo": 1}), "unrecognised record", "u"),
    (
        orjson.dumps({**TEXT, "id": [1]}),
        "id must be a non-empty string or an integer, got \\[1\\]",
        None,
    ),
    (
        orjson.dumps({**DOCRED, "vertexSet": [[{"sent_id": 0, "pos": [4, 9]}]]}),
        r"vertexSet\[0\]\[0\]\.pos: span \[4, 9\) out of range for sentence 0 of 6 tokens",
        "T1",
    ),
    (
        orjson.dumps({**DOCRED, "vertexSet": [[{"sent_id": 5, "pos": [0, 1]}]]}),
        "sent_id 5 out of range",
        "T1",
    ),
    (orjson.dumps({**DOCRED, "vertexSet": [[]]}), r"vertexSet\[0\]: entity has no mentions", "T1"),
    (
        orjson.dumps(
            {"id": "s", "text": "abc", "entities": [{"mentions": [{"start": 1, "end": 9}]}]}
        ),
        r"entities\[0\]\.mentions\[0\]\.end: end 9 is past the end of the text \(3 characters\)",
        "s",
    ),
    (
        orjson.dumps({"id": "m", "text": "abc", "entities": [{"mentions": [], "type": "X"}]}),
        r"entities\[0\]\.mentions: entity has no mentions",
        "m",
    ),
    (orjson.dumps({"id": "k", "text": "abc"}), "entities: missing key 'entities'", "k"),
    (orjson.dumps({**TEXT, "id": "x1"}), "duplicate id 'x1'", "x1"),
]


@pytest.mark.parametrize(("raw", "reason", "doc_id"), BAD_LINES, ids=[r for _, r, _ in BAD_LINES])
def test_bad_line_becomes_an_error_record_and_the_run_goes_on(tmp_path, raw, reason, doc_id):
    s, out, err = run(tmp_path, [TEXT, raw, DOCRED])
    assert (s.docs, s.errors, s.lines) == (2, 1, 3)
    assert [x["id"] for x in lines_of(out)] == ["x1", "T1"]
    (rec,) = lines_of(err)
    assert rec["line"] == 2 and rec["id"] == doc_id and set(rec) == {"line", "id", "error"}
    import re

    assert re.search(reason, rec["error"]), rec["error"]


def test_parse_line_raises_data_error_naming_the_field():
    with pytest.raises(DataError, match=r"line 4.*field entities\[0\]\.mentions"):
        parse_line(orjson.dumps({"text": "a", "entities": [{"mentions": []}]}), 4)


def test_blank_lines_bom_crlf_and_gzip(tmp_path):
    body = b"\xef\xbb\xbf" + orjson.dumps(TEXT) + b"\r\n\n   \n" + orjson.dumps(DOCRED) + b"\r\n"
    (tmp_path / "a.jsonl").write_bytes(body)
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(body))
    want = [(1, orjson.dumps(TEXT)), (4, orjson.dumps(DOCRED))]
    assert list(read_corpus_lines(tmp_path / "a.jsonl")) == want
    assert list(read_corpus_lines(tmp_path / "a.jsonl.gz")) == want
    assert list(read_corpus_lines(io.BytesIO(gzip.compress(body)))) == want
    run_extraction(tmp_path / "a.jsonl", tmp_path / "p", StubExtractor())
    run_extraction(tmp_path / "a.jsonl.gz", tmp_path / "g", StubExtractor())
    assert (tmp_path / "p").read_bytes() == (tmp_path / "g").read_bytes()
    assert [x["id"] for x in lines_of(tmp_path / "g")] == ["x1", "T1"]


def test_truncated_gzip_is_a_data_error_after_flushing_what_was_read(tmp_path):
    data = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in corpus_records(60)))
    (tmp_path / "t.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read the corpus"):
        run_extraction(tmp_path / "t.jsonl.gz", tmp_path / "o", StubExtractor(), workers=0)


# ------------------------------------------------------------------------------------------------
# Order, determinism, streaming
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "kw"),
    [
        (ExtractOptions(batch_size=7), {"workers": 2}),
        (ExtractOptions(max_tokens=64), {"workers": 1}),
        (ExtractOptions(max_tokens=100000, sort_window=1000), {"workers": 0}),
        (ExtractOptions(max_tokens=300, sort_window=5), {"workers": 3}),
        (ExtractOptions(batch_size=3), {"workers": 2, "pool": "process"}),
    ],
    ids=["batch7-threads2", "budget64", "one-big-window", "window5-threads3", "processes"],
)
def test_output_is_in_input_order_and_byte_identical(tmp_path, corpus300, reference, options, kw):
    ex = StubExtractor()
    s = run_extraction(corpus300, tmp_path / "o", ex, options, errors_path=tmp_path / "e", **kw)
    assert (tmp_path / "o").read_bytes() == reference[0]
    assert (tmp_path / "e").read_bytes() == reference[1]
    assert (s.docs, s.errors, s.lines) == (298, 2, 300)
    if kw.get("pool") != "process":
        assert max(ex.backend.batches) > 1  # really batched


def test_output_follows_input_order_not_length_order(tmp_path, reference):
    ids = [x["id"] for x in map(orjson.loads, reference[0].splitlines())]
    recs = corpus_records(300, seed=1)
    want = []
    for i, r in enumerate(recs, 1):
        if i in (18, 121):
            continue
        want.append(str(r.get("id") or r.get("title") or i))
    assert ids == want


def test_reads_ahead_a_bounded_window_and_flushes_per_batch(tmp_path):
    recs = corpus_records(1500, seed=3)
    data = b"".join(orjson.dumps(r) + b"\n" for r in recs)

    class Counting(io.BytesIO):
        read_lines = 0

        def __iter__(self):
            for line in iter(self.readline, b""):
                Counting.read_lines += 1
                yield line

    out = tmp_path / "o"
    seen: list[tuple[int, int, int]] = []

    def progress(s: ExtractSummary) -> None:
        on_disk = out.read_bytes().count(b"\n")
        seen.append((Counting.read_lines, s.lines, on_disk))

    opts = ExtractOptions(batch_size=8, sort_window=64)
    s = run_extraction(Counting(data), out, StubExtractor(), opts, workers=1, progress=progress)
    assert s.docs == 1500 and s.time_to_first_output is not None
    assert len(seen) > 1500 // 64  # flushed at least once per batch group
    assert all(on_disk == done for _, done, on_disk in seen)  # flushed before progress reports
    assert max(r - done for r, done, _ in seen) <= 5 * 64  # read-ahead stays bounded
    assert seen[0][0] < 200  # the first output did not wait for the whole corpus


def test_stream_in_and_out(tmp_path, reference, corpus300):
    out, err = io.BytesIO(), io.BytesIO()
    s = run_extraction(io.BytesIO(corpus300.read_bytes()), out, StubExtractor(), errors_path=err)
    assert out.getvalue() == reference[0] and err.getvalue() == reference[1]
    assert s.errors == 2
    assert not list(tmp_path.iterdir())  # no state file for streams


# ------------------------------------------------------------------------------------------------
# Options and errors
# ------------------------------------------------------------------------------------------------


def test_relations_min_score_and_top_k_filter(tmp_path, corpus300):
    def triples(opts):
        run_extraction(corpus300, tmp_path / "o", StubExtractor(), opts, workers=0)
        return [{**t, "doc": x["id"]} for x in lines_of(tmp_path / "o") for t in x["triples"]]

    every = triples(ExtractOptions())
    only = triples(ExtractOptions(relations=["P2", "P4"]))
    assert {t["relation"]["id"] for t in only} == {"P2", "P4"}
    assert len(only) == sum(t["relation"]["id"] in ("P2", "P4") for t in every)
    high = triples(ExtractOptions(min_score=0.9))
    assert high and all(t["score"] > 0.9 for t in high) and len(high) < len(every)
    top1 = triples(ExtractOptions(top_k=1))
    assert len(top1) < len(every)
    pairs = [(t["doc"], t["head"]["index"], t["tail"]["index"]) for t in top1]
    assert len(set(pairs)) == len(pairs)  # at most one relation per entity pair
    names = {"P1": "one", "P2": "two", "P3": "three", "P4": "four"}
    assert all(t["relation"]["name"] == names[t["relation"]["id"]] for t in every)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            {"options": ExtractOptions(relations=["P1", "Q9"])},
            r"unknown relation id\(s\) Q9; valid choices: P1, P2, P3, P4",
        ),
        ({"pool": "fork"}, "unknown pool 'fork'; valid choices: thread, process"),
        ({"workers": -1}, "workers must be >= 0"),
    ],
)
def test_bad_options_raise_listing_valid_choices(tmp_path, kw, match):
    (tmp_path / "o").write_bytes(b"keep")
    with pytest.raises(ValueError, match=match):
        run(tmp_path, [TEXT], **kw)
    assert (tmp_path / "o").read_bytes() == b"keep"  # refused before OUT is opened


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"relations": []}, "relations: no relation ids given"),
        ({"relations": " , "}, "relations: no relation ids given"),
        ({"min_score": 1.5}, r"min_score must be between 0 and 1 \(exclusive\), got 1.5"),
        ({"min_score": 0.0}, r"min_score must be between 0 and 1"),
        ({"top_k": 0}, "top_k must be an integer >= 1, got 0"),
        ({"max_tokens": -5}, "max_tokens must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"sort_window": 0}, "sort_window must be an integer >= 1"),
    ],
)
def test_extract_options_are_validated_when_built(kw, match):
    with pytest.raises(ValueError, match=match):
        ExtractOptions(**kw)


def test_extract_options_normalise_relations():
    assert ExtractOptions(relations=["P1", " P2"]).relations == ("P1", "P2")
    assert ExtractOptions(relations="P1, P2").relations == ("P1", "P2")
    assert ExtractOptions().threshold is None  # the model's decision threshold
    assert ExtractOptions(min_score=0.5).threshold == 0.0


def test_missing_corpus_fails_before_touching_out(tmp_path):
    (tmp_path / "o").write_bytes(b"keep")
    with pytest.raises(FileNotFoundError, match="corpus .* does not exist"):
        run_extraction(tmp_path / "missing.jsonl", tmp_path / "o", StubExtractor())
    assert (tmp_path / "o").read_bytes() == b"keep"


def test_strict_stops_at_the_first_bad_line_and_a_rerun_stops_there_again(tmp_path):
    recs = [TEXT, DOCRED, b"oops", {**TEXT, "id": "after"}]
    with pytest.raises(RejectedLine, match="line 3") as ei:
        run(tmp_path, recs, strict=True)
    assert ei.value.record == {"line": 3, "id": None, "error": ei.value.record["error"]}
    out, err = tmp_path / "c.out.jsonl", tmp_path / "c.err.jsonl"
    assert [x["id"] for x in lines_of(out)] == ["x1", "T1"]
    assert len(lines_of(err)) == 1
    with pytest.raises(RejectedLine):
        run(tmp_path, recs, strict=True, resume=True)
    assert [x["id"] for x in lines_of(out)] == ["x1", "T1"]
    assert len(lines_of(err)) == 1  # not duplicated by the rerun


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(extract_cmd, "load_extractor", lambda *a: StubExtractor())
    app = typer.Typer()
    app.callback()(lambda: None)
    extract_cmd.register(app)
    runner = CliRunner()
    return lambda args, **kw: runner.invoke(app, ["extract", *map(str, args)], **kw)


def test_cli_exit_0_when_every_line_is_good(cli, tmp_path):
    c = write_jsonl(tmp_path / "c.jsonl", [TEXT, DOCRED])
    r = cli([c, "-o", tmp_path / "o.jsonl", "--model", "m", "--batch-size", "1"])
    assert r.exit_code == 0, r.output
    assert [x["id"] for x in lines_of(tmp_path / "o.jsonl")] == ["x1", "T1"]
    assert "2 docs" in r.stderr and "0 errors" in r.stderr and "docs/s" in r.stderr
    assert not (tmp_path / "o.jsonl.errors.jsonl").exists()


def test_cli_exit_3_with_default_error_file(cli, tmp_path):
    c = write_jsonl(tmp_path / "c.jsonl", [TEXT, b"nope", DOCRED])
    r = cli([c, "-o", tmp_path / "o.jsonl", "--model", "m"])
    assert r.exit_code == 3, r.output
    assert [x["line"] for x in lines_of(tmp_path / "o.jsonl.errors.jsonl")] == [2]
    assert len(lines_of(tmp_path / "o.jsonl")) == 2
    assert "1 errors" in r.stderr
    r = cli(
        [
            c,
            "-o",
            tmp_path / "s.jsonl",
            "--model",
            "m",
            "--strict",
            "--errors",
            tmp_path / "x.jsonl",
        ]
    )
    assert r.exit_code == 3 and "line 2" in r.stderr
    assert len(lines_of(tmp_path / "s.jsonl")) == 1 and len(lines_of(tmp_path / "x.jsonl")) == 1


def test_cli_stdin_to_stdout_with_errors_on_stderr(cli, tmp_path):
    body = orjson.dumps(TEXT) + b"\n[]\n" + orjson.dumps(DOCRED) + b"\n"
    r = cli(["-", "-o", "-", "--model", "m", "--top-k", "1", "--min-score", "0.6"], input=body)
    assert r.exit_code == 3
    assert [orjson.loads(x)["id"] for x in r.stdout.splitlines()] == ["x1", "T1"]
    assert '{"line":2,"id":null,"error":"a document must be a JSON object, got list"}' in r.stderr
    r2 = cli(
        [
            "-",
            "-o",
            "-",
            "--model",
            "m",
            "--top-k",
            "1",
            "--min-score",
            "0.6",
            "--relations",
            "P1, P2,P3,P4",
        ],
        input=body,
    )
    assert r2.stdout == r.stdout


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--max-tokens", "100", "--batch-size", "2"], "either --max-tokens or --batch-size"),
        (["--device", "gpu"], "valid choices: auto, cpu, cuda, tensorrt"),
        (["--precision", "bf16"], "valid choices: fp32, fp16, int8"),
        (["--min-score", "1"], "between 0 and 1"),
        (["--top-k", "0"], "top-k"),
    ],
)
def test_cli_usage_errors_exit_2(cli, tmp_path, args, match):
    c = write_jsonl(tmp_path / "c.jsonl", [TEXT])
    r = cli([c, "-o", tmp_path / "o", "--model", "m", *args])
    assert r.exit_code == 2
    assert match in " ".join(r.output.replace("│", " ").split())
    r = cli([c, "-o", "-", "--model", "m", "--resume"])
    assert r.exit_code == 2


def test_cli_fatal_errors_exit_1_with_one_line(cli, tmp_path, monkeypatch):
    c = write_jsonl(tmp_path / "c.jsonl", [TEXT])
    r = cli([tmp_path / "nope.jsonl", "-o", tmp_path / "o", "--model", "m"])
    assert r.exit_code == 1 and "cannot read corpus" in r.stderr and "does not exist" in r.stderr
    r = cli([c, "-o", tmp_path / "o", "--model", "m", "--relations", "P1,Q7"])
    assert (
        r.exit_code == 1 and "unknown relation id(s) Q7; valid choices: P1, P2, P3, P4" in r.stderr
    )
    monkeypatch.undo()  # the real loader
    app = typer.Typer()
    app.callback()(lambda: None)
    extract_cmd.register(app)
    r = CliRunner().invoke(
        app, ["extract", str(c), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "nomodel")]
    )
    assert r.exit_code == 1 and "does not exist" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_no_torch_on_the_extraction_path(tmp_path):
    c = write_jsonl(
        tmp_path / "c.jsonl", [TEXT, DOCRED, docred_record(__import__("random").Random(0), 1, 3)]
    )
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "import docunet_rt.cli.main, docunet_rt.cli.extract_cmd, docunet_rt.extract, docunet_rt.runtime;"
        "from _extract_fixtures import main;"
        f"main([{str(c)!r}, {str(tmp_path / 'o')!r}, '--workers', '2']);"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env={**os.environ}
    )
    assert r.returncode == 0, r.stderr
    assert '"has_torch":false' in r.stdout


def test_cli_progress_on_a_terminal(cli, tmp_path, monkeypatch):
    from rich.console import Console

    con = Console(stderr=True, force_terminal=True, width=120)
    monkeypatch.setattr(extract_cmd, "console", con)
    c = write_jsonl(tmp_path / "c.jsonl", corpus_records(40))
    assert extract_cmd.count_lines(str(c)) == 40
    assert extract_cmd.count_lines("-") is None
    r = cli([c, "-o", tmp_path / "o.jsonl", "--model", "m"])
    assert r.exit_code == 0, r.output
    assert "40/40 lines" in r.stderr and "docs/s" in r.stderr and "triples/s" in r.stderr
