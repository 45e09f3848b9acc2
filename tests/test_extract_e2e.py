"""End to end: a tiny random checkpoint exported to a MODEL_DIR, run through the real runtime
and the `extract` command (fp32 and int8), with kill -9 and resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from test_extract import FIXTURES, REPO, lines_of
from test_extract_resume import _wait_for
from typer.testing import CliRunner

from docunet_rt.extract import parse_line, progress_path, read_corpus_lines, run_extraction
from docunet_rt.runtime import ExtractOptions

sys.path.insert(0, str(Path(__file__).parent))
from _extract_fixtures import corpus_records, write_jsonl  # noqa: E402

# ------------------------------------------------------------------------------------------------
# End to end: a tiny random checkpoint exported to a MODEL_DIR
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from _extract_fixtures import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="module")
def e2e_corpus(tmp_path_factory) -> Path:
    recs: list = corpus_records(150, seed=5)
    recs[9] = b'{"text": "w", "entities": [{"mentions": [{"start": 0, "end": 4}]}]}'
    return write_jsonl(tmp_path_factory.mktemp("e2e_corpus") / "c.jsonl", recs)


def invoke(args: list) -> object:
    from _extract_fixtures import cli_app

    return CliRunner().invoke(cli_app(), ["extract", *map(str, args)])


def test_e2e_cli_matches_the_runtime_whatever_the_batching(model_dir, e2e_corpus, tmp_path):
    from docunet_rt.runtime import Extractor

    outs = []
    for i, extra in enumerate(
        [["--batch-size", "1", "--workers", "0"], ["--max-tokens", "200", "--workers", "2"], []]
    ):
        out = tmp_path / f"o{i}.jsonl"
        r = invoke([e2e_corpus, "-o", out, "--model", model_dir, "--device", "cpu", *extra])
        assert r.exit_code == 3, r.output  # line 10 is bad
        assert "149 docs" in r.stderr and "1 errors" in r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    (err,) = lines_of(tmp_path / "o0.jsonl.errors.jsonl")
    assert err["line"] == 10 and "past the end of the text" in err["error"]
    # the runtime's own (in-process, unpipelined) extraction gives the same lines
    docs = [parse_line(raw, n) for n, raw in read_corpus_lines(e2e_corpus) if n != 10]
    ex = Extractor(model_dir, device="cpu")
    want = b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in ex.extract(docs))
    assert outs[0] == want
    # the process pool (a picklable featurizer for the real Extractor) gives the same bytes too
    opts = ExtractOptions(max_tokens=300)
    run_extraction(e2e_corpus, tmp_path / "p", ex, opts, workers=2, pool="process")
    assert (tmp_path / "p").read_bytes() == want
    got = [orjson.loads(x) for x in want.splitlines()]
    assert sum(len(x["triples"]) for x in got) > 50  # the random model does predict
    assert any(len(ex.features(d).windows) > 1 for d in docs)  # multi-window documents too


def test_e2e_int8_filters_and_stdout(model_dir, e2e_corpus, tmp_path):
    args = ["--model", model_dir, "--precision", "int8", "--relations", "P1,P3", "--top-k", "1"]
    r = invoke([e2e_corpus, "-o", "-", *args, "--min-score", "0.6", "--threads", "1"])
    assert r.exit_code == 3
    res = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert len(res) == 149
    ts = [t for x in res for t in x["triples"]]
    assert ts and {t["relation"]["id"] for t in ts} <= {"P1", "P3"}
    assert all(t["score"] > 0.6 for t in ts)
    assert len(
        {(x["id"], t["head"]["index"], t["tail"]["index"]) for x in res for t in x["triples"]}
    ) == len(ts)


def test_e2e_fatal_model_errors_exit_1(model_dir, e2e_corpus, tmp_path):
    base = [e2e_corpus, "-o", tmp_path / "o", "--model"]
    r = invoke([*base, model_dir, "--precision", "fp16"])
    assert r.exit_code == 1 and "no 'fp16' variant; variants present: fp32, int8" in r.stderr
    r = invoke([*base, tmp_path])
    assert r.exit_code == 1 and "no model.json" in r.stderr
    r = invoke([*base, model_dir, "--relations", "P1,XX"])
    assert (
        r.exit_code == 1 and "unknown relation id(s) XX; valid choices: P1, P2, P3, P4" in r.stderr
    )
    if not Path("/dev/nvidia0").exists():  # an explicit GPU device that is not there
        for dev in ("cuda", "tensorrt"):
            r = invoke([*base, model_dir, "--device", dev])
            assert (
                r.exit_code == 1 and f"--device {dev}: no usable GPU: the NVIDIA driver" in r.stderr
            )
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr  # one line, no ORT log
    assert not (tmp_path / "o").exists()


def test_e2e_kill_9_of_the_cli_then_resume(model_dir, e2e_corpus, tmp_path):
    """The real command reading stdin, killed while it waits for input after its first flush;
    --resume on the same corpus then completes it exactly as an uninterrupted run."""
    invoke([e2e_corpus, "-o", tmp_path / "ref.jsonl", "--model", model_dir, "--batch-size", "3"])
    out = tmp_path / "o.jsonl"
    cmd = [sys.executable, str(FIXTURES), "cli", "extract"]
    args = ["-o", str(out), "--model", str(model_dir), "--batch-size", "3"]
    proc = subprocess.Popen([*cmd, "-", *args], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = e2e_corpus.read_bytes().splitlines(keepends=True)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(lines[:60]))
    proc.stdin.flush()
    _wait_for(
        lambda: (
            progress_path(out).exists()
            and orjson.loads(progress_path(out).read_bytes())["docs"] > 0
        )
    )
    proc.kill()
    proc.wait()
    st = orjson.loads(progress_path(out).read_bytes())
    assert 0 < st["lines"] < 60 and not st["complete"]
    r = subprocess.run([*cmd, str(e2e_corpus), *args, "--resume"], capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert (tmp_path / "o.jsonl.errors.jsonl").read_bytes() == (
        tmp_path / "ref.jsonl.errors.jsonl"
    ).read_bytes()


def test_e2e_no_torch_in_a_real_extraction(model_dir, e2e_corpus, tmp_path):
    code = (
        "import sys, runpy; sys.argv = ['x', 'cli', 'extract', *sys.argv[1:]];"
        "import atexit; atexit.register(lambda: print('TORCH' if 'torch' in sys.modules else 'NOTORCH'));"
        f"runpy.run_path({str(FIXTURES)!r}, run_name='__main__')"
    )
    args = [str(e2e_corpus), "-o", str(tmp_path / "o"), "--model", str(model_dir), "--workers", "2"]
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    assert "NOTORCH" in r.stdout and "149 docs" in r.stderr


def test_the_readme_python_example_runs_as_written(model_dir, capsys):
    text = (REPO / "README.md").read_text()
    block = text.split("Python API (the same core")[1].split("```python\n")[1].split("```")[0]
    ns: dict = {}
    exec(compile(block.replace('"model_dir"', repr(str(model_dir))), "README", "exec"), ns)
    assert ns["result"].id == "doc2"  # the dict record went through
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(ns["result"].triples)
    assert all(x.startswith("doc2 Bill Gates ") for x in lines)


def test_e2e_int8_resume_is_byte_identical_and_batching_is_deterministic(
    model_dir, e2e_corpus, tmp_path
):
    """int8 scores may depend on the batch (dynamic quantisation), so the guarantee is weaker
    than fp32's: the same run twice gives the same bytes, and a resume after any window gives
    the bytes of a run that never stopped."""
    from docunet_rt.runtime import Extractor

    opts = ExtractOptions(max_tokens=256, sort_window=32)
    ex = Extractor(model_dir, device="cpu", precision="int8", threads=1)
    ref, again = tmp_path / "ref.jsonl", tmp_path / "again.jsonl"
    run_extraction(e2e_corpus, ref, ex, opts, errors_path=tmp_path / "e1")
    snaps: list[bytes] = []
    run_extraction(
        e2e_corpus, again, ex, opts, errors_path=tmp_path / "e2",
        progress=lambda s: snaps.append(progress_path(again).read_bytes()),
    )  # fmt: skip
    assert again.read_bytes() == ref.read_bytes()
    snaps = list(dict.fromkeys(snaps))[:-1]
    assert len(snaps) >= 3
    for snap in snaps[1::2]:
        st = orjson.loads(snap)
        again.write_bytes(ref.read_bytes()[: st["out_bytes"] + 50])  # killed mid-window
        progress_path(again).write_bytes(snap)
        run_extraction(e2e_corpus, again, ex, opts, errors_path=tmp_path / "e2", resume=True)
        assert again.read_bytes() == ref.read_bytes(), st["lines"]
