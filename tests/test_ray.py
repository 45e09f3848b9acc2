"""``docunet-rt extract --engine ray`` (docunet_rt.distributed) and ``docunet-rt merge``.

The ``ray``-marked tests start one local Ray cluster (2 CPUs) for the module and compare a Ray
run, merged, with the local ``extract`` byte for byte: a messy corpus (BOM, CRLF, blank lines,
bad JSON, a bad record, a duplicate id, a line over the byte cap), several files of a folder
(gzip, a JSON list, hidden files), an actor killed mid-run, and the CLI on a real exported
tiny model. The other tests need only pyarrow (merge) or nothing (options, install hint).
"""

from __future__ import annotations

import gzip
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _extract_fixtures import StubExtractor, corpus_records  # noqa: E402

from docunet_rt.cli.main import app  # noqa: E402
from docunet_rt.extract import run_extraction  # noqa: E402
from docunet_rt.options import ExtractOptions  # noqa: E402

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
OPTIONS = ExtractOptions(batch_size=4, max_record_bytes=4096)
NO_RAY = "Ray is not installed: pip install 'docunet-rt[ray]'"


def messy_corpus(n: int = 48, seed: int = 5) -> bytes:
    """JSONL with a BOM, CRLF and LF line ends, blank lines, bad JSON, a record without its
    entities, a duplicate id and a line over OPTIONS.max_record_bytes."""
    recs = corpus_records(n, seed=seed)
    lines = [orjson.dumps(r) for r in recs]
    lines[4] = b"{broken"
    lines[10] = orjson.dumps({"text": "no entities key", "id": "bad"})
    lines[15] = lines[3]  # a duplicate id
    lines[22] = orjson.dumps({**recs[22], "meta": "x" * 5000})  # over the byte cap
    lines.insert(30, b"   ")
    lines.insert(31, b"")
    return b"\xef\xbb\xbf" + b"\n".join(lines[:20]) + b"\r\n" + b"\r\n".join(lines[20:]) + b"\n\n"


def local_run(corpus: Path, d: Path, options: ExtractOptions = OPTIONS) -> tuple[bytes, bytes]:
    """(OUT, errors) of the local job with the stub extractor."""
    out, err = d / "local.jsonl", d / "local.errors.jsonl"
    run_extraction(corpus, out, StubExtractor(), options, errors_path=err, workers=0)
    return out.read_bytes(), err.read_bytes() if err.exists() else b""


def merged(out_dir: Path, d: Path, **kw) -> tuple[bytes, bytes, object]:
    from docunet_rt.cli.merge_cmd import merge_ray_output

    out, err = d / "merged.jsonl", d / "merged.errors.jsonl"
    s = merge_ray_output(str(out_dir), out, err, **kw)
    return out.read_bytes(), err.read_bytes() if err.exists() else b"", s


# ------------------------------------------------------------------------------------------------
# Without a cluster: options, the install hint, reading and merging
# ------------------------------------------------------------------------------------------------


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.mark.parametrize(
    "args, message",
    [
        (["--engine", "ray", "--resume"], "--resume: not with --engine ray"),
        (["--engine", "ray", "--strict", "--workers", "2"], "--strict, --workers: not with"),
        (["--engine", "ray", "-o", "-"], "writes a directory, not -"),
        (["--actors", "2"], "--actors need --engine ray"),
        (["--gpus-per-actor", "1", "--address", "auto"], "--address, --gpus-per-actor need"),
        (["extra.jsonl"], "the local engine reads one corpus"),
    ],
)
def test_engine_options_are_checked(tmp_path, args, message):
    c = tmp_path / "c.jsonl"
    c.write_bytes(messy_corpus(32))
    out = ["-o", str(tmp_path / "o")] if "-o" not in args else []
    r = invoke("extract", c, *out, "--model", tmp_path / "m", *args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())


def test_missing_ray_gives_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    c = tmp_path / "c.jsonl"
    c.write_bytes(messy_corpus(32))
    r = invoke("extract", c, "-o", tmp_path / "o", "--model", tmp_path / "m", "--engine", "ray")
    assert r.exit_code == 1
    errors = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "pip install 'docunet-rt[ray]'" in errors[0]
    assert not (tmp_path / "o").exists()


def test_inputs_resolve_in_order(tmp_path):
    from docunet_rt.distributed import resolve_inputs

    d = tmp_path / "in"
    for name in ("b.jsonl", "a.jsonl", "sub/c.jsonl.gz", ".hidden.jsonl", "_SUCCESS", ".git/x"):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b"{}\n")
    (tmp_path / "z.txt").write_bytes(b"{}\n")
    got = resolve_inputs([tmp_path / "z.txt", d])  # arguments in order, a folder sorted
    assert got == [str(tmp_path / "z.txt")] + [str(d / x) for x in ("a.jsonl", "b.jsonl")] + [
        str(d / "sub" / "c.jsonl.gz")
    ]
    assert resolve_inputs(str(d / "*.jsonl")) == [str(d / "a.jsonl"), str(d / "b.jsonl")]
    with pytest.raises(ValueError, match="given twice"):
        resolve_inputs([d / "a.jsonl", str(d)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_inputs([d / "nope.jsonl"])
    with pytest.raises(ValueError, match="not stdin"):
        resolve_inputs("-")


def test_actor_pools_must_leave_a_cpu_to_reads_and_writes():
    from docunet_rt.distributed import check_fits, default_actors

    assert default_actors({"CPU": 64.0}, 1, None) == 63
    assert default_actors({"CPU": 64.0, "GPU": 8.0}, 1, 0.5) == 16
    check_fits({"CPU": 2.0}, 2, 0.5, None)
    with pytest.raises(ValueError, match="use --actors 1 or fewer"):
        check_fits({"CPU": 2.0}, 2, 1, None)
    with pytest.raises(ValueError, match="need 2 GPUs"):
        check_fits({"CPU": 8.0, "GPU": 1.0}, 2, 1, 1)


def fake_run(out_dir: Path, names: list[str], tables: list) -> None:
    """What a Ray run leaves in OUT_DIR, written without Ray: the rows and the manifest."""
    import pyarrow.parquet as pq

    from docunet_rt.distributed import FORMAT_VERSION, MANIFEST, RESULTS

    (out_dir / RESULTS).mkdir(parents=True)
    for i, t in enumerate(tables):
        pq.write_table(t, out_dir / RESULTS / f"part-{i}.parquet")
    manifest = {"version": FORMAT_VERSION, "complete": True, "files": names}
    (out_dir / MANIFEST).write_bytes(orjson.dumps(manifest))


def rows_without_ray(paths: list[Path], options: ExtractOptions = OPTIONS):
    """The rows a Ray run writes, computed in this process (read_lines → extract_rows)."""
    import pyarrow as pa

    from docunet_rt.distributed import extract_rows, read_lines

    ex = StubExtractor()
    tables = []
    for i, p in enumerate(paths):
        with open(p, "rb") as fh:
            for block in read_lines(fh, i, str(p), options.max_record_bytes):
                tables.append(extract_rows(ex, options, block))
    return pa.concat_tables(tables)


def test_rows_merge_into_the_local_output_in_any_order(tmp_path):
    pytest.importorskip("pyarrow", reason=NO_RAY)
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(messy_corpus())
    want_out, want_err = local_run(corpus, tmp_path)
    assert b"duplicate id" in want_err and b"record too large" in want_err
    rows = rows_without_ray([corpus])
    assert sorted(rows.column("kind").to_pylist()).count("eof") == 1
    # Ray writes rows in any order, in many files: reversed, in five files, sorted in runs
    rev = rows.take(list(range(rows.num_rows - 1, -1, -1)))
    parts = [rev.slice(k, 11) for k in range(0, rev.num_rows, 11)]
    fake_run(tmp_path / "run", [str(corpus)], parts)
    out, err, s = merged(tmp_path / "run", tmp_path, memory_mb=1e-6)  # a run per file
    assert (out, err) == (want_out, want_err)
    assert (s.duplicate_ids, s.replayed_rows, s.lines) == (1, 0, want_out.count(b"\n") + s.errors)


def test_merge_refuses_lost_or_conflicting_rows_and_drops_replays(tmp_path):
    pytest.importorskip("pyarrow", reason=NO_RAY)
    import pyarrow as pa

    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(messy_corpus(32))
    want_out, _ = local_run(corpus, tmp_path)
    rows = rows_without_ray([corpus])
    first = rows.slice(0, 1)
    cases = {
        "replayed": [rows, first],  # an identical row twice: dropped
        "lost": [rows.slice(1)],  # a line without its row
        "conflict": [rows, first.set_column(3, "json", pa.array([b"{}"], pa.binary()))],
    }
    for name, tables in cases.items():
        fake_run(tmp_path / name, [str(corpus)], tables)
    out, _, s = merged(tmp_path / "replayed", tmp_path)
    assert out == want_out and s.replayed_rows == 1
    with pytest.raises(ValueError, match="lost output"):
        merged(tmp_path / "lost", tmp_path)
    with pytest.raises(ValueError, match="two different rows"):
        merged(tmp_path / "conflict", tmp_path)
    r = invoke("merge", tmp_path / "lost", "-o", tmp_path / "m.jsonl")
    assert r.exit_code == 1 and "lost output" in r.output
    assert not (tmp_path / "m.jsonl").exists()  # nothing half-written
    r = invoke("merge", tmp_path, "-o", tmp_path / "m.jsonl")
    assert r.exit_code == 1 and "not written by docunet-rt extract --engine ray" in r.output


# ------------------------------------------------------------------------------------------------
# On a local Ray cluster
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason=NO_RAY)
    pytest.importorskip("ray.data", reason=NO_RAY)
    path = os.pathsep.join([str(TESTS), str(REPO)])  # the stub factories live in tests/
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 << 20,
        runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}},
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_ray_run_merges_into_the_local_output_byte_for_byte(ray_cluster, tmp_path):
    from docunet_rt.distributed import run_ray_extraction

    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(messy_corpus())
    want_out, want_err = local_run(corpus, tmp_path)
    s = run_ray_extraction(corpus, str(tmp_path / "run"), StubExtractor, OPTIONS, batch_docs=8)
    lines = sum(1 for x in corpus.read_bytes().splitlines() if x.strip())
    assert (s.lines, s.files, s.actors) == (lines, 1, 1)  # one row per non-blank line
    out, err, m = merged(tmp_path / "run", tmp_path)
    assert (out, err) == (want_out, want_err)
    assert m.docs == want_out.count(b"\n") and m.errors == want_err.count(b"\n")
    assert (m.duplicate_ids, m.replayed_rows) == (1, 0)
    with pytest.raises(ValueError, match="not empty"):  # never mixed with an earlier run
        run_ray_extraction(corpus, str(tmp_path / "run"), StubExtractor, OPTIONS)
    with pytest.raises(ValueError, match="use --actors 1 or fewer"):  # would wait forever
        run_ray_extraction(corpus, str(tmp_path / "run2"), StubExtractor, OPTIONS, actors=2)
    assert not (tmp_path / "run2").exists()


@pytest.mark.ray
def test_ray_run_over_a_folder_keeps_files_and_line_numbers(ray_cluster, tmp_path):
    from docunet_rt.distributed import run_ray_extraction

    recs = corpus_records(40, seed=9)
    for i, r in enumerate(recs):
        r["id"] = f"doc{i}"
    raw = [orjson.dumps(r) for r in recs]
    raw[6], raw[25] = b"{broken", raw[2]  # a bad line in a.jsonl, a duplicate id in d.json
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(b"\n".join(raw[:10]) + b"\n")
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(b"\n\n".join(raw[10:20])))
    (folder / "d.json").write_bytes(b"[" + b",".join(raw[20:30]) + b"]")  # a JSON list
    (folder / "sub" / "c.jsonl").write_bytes(b"\r\n".join(raw[30:]) + b"\r\n")
    (folder / ".hidden.jsonl").write_bytes(raw[0])
    (folder / "_SUCCESS").write_bytes(b"")
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\n".join(raw) + b"\n")
    want_out, want_err = local_run(whole, tmp_path)
    s = run_ray_extraction([folder], str(tmp_path / "run"), StubExtractor, OPTIONS, batch_docs=8)
    assert (s.files, s.lines) == (4, 40)
    out, err, m = merged(tmp_path / "run", tmp_path)
    assert out == want_out  # results in (file, line) order: a, b.gz, d.json, sub/c
    got = [orjson.loads(x) for x in err.splitlines()]
    want = [orjson.loads(x) for x in want_err.splitlines()]
    assert [(g["id"], g["error"]) for g in got] == [(w["id"], w["error"]) for w in want]
    assert [(Path(g["file"]).name, g["line"]) for g in got] == [("a.jsonl", 7), ("d.json", 6)]
    assert m.files == 4


@dataclass(frozen=True)
class PidLoggingStub:
    """A StubExtractor whose batches are slow and log the actor's pid (for the kill test)."""

    log: str
    delay: float = 0.15

    def __call__(self):
        ex = StubExtractor(delay=self.delay)
        run = ex.backend.run_batch

        def logged(feats, max_tokens=None):
            with open(self.log, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            return run(feats, max_tokens)

        ex.backend.run_batch = logged
        return ex


def pids(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


@pytest.mark.ray
def test_an_actor_killed_mid_run_loses_and_duplicates_nothing(ray_cluster, tmp_path):
    from docunet_rt.distributed import run_ray_extraction

    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(messy_corpus(96, seed=11))
    want_out, want_err = local_run(corpus, tmp_path)
    log = tmp_path / "pids.log"
    killed: list[int] = []
    finished = threading.Event()

    def killer() -> None:  # SIGKILL the process of an actor in the middle of a batch
        # no deadline: actors may take long to start on a loaded machine; the run ending first
        # (12 batches of 0.15 s, polled every 20 ms) fails the test below
        while not finished.is_set() and len(seen := pids(log)) < 4:
            time.sleep(0.02)
        if len(seen) >= 4:
            os.kill(seen[-1], signal.SIGKILL)
            killed.append(seen[-1])

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        run_ray_extraction(
            corpus, str(tmp_path / "run"), PidLoggingStub(str(log)), OPTIONS,
            actors=2, num_cpus=0.5, batch_docs=8,
        )  # fmt: skip
    finally:
        finished.set()
    t.join()
    assert killed, "the run ended before an actor could be killed"
    after = pids(log)[pids(log).index(killed[0]) + 1 :]
    assert set(after) - {killed[0]}, "no batch ran after the kill"
    out, err, m = merged(tmp_path / "run", tmp_path)
    assert (out, err) == (want_out, want_err)
    assert m.replayed_rows == 0


@pytest.mark.ray
def test_cli_on_an_exported_model_matches_the_local_extract(ray_cluster, tmp_path):
    pytest.importorskip("torch", reason="exporting the tiny model needs the [train] extra")
    from _extract_fixtures import build_model_dir

    model = build_model_dir(tmp_path, precisions="fp32")
    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(messy_corpus(32, seed=3))
    common = ["--model", model, "--device", "cpu", "--max-record-bytes", 4096]
    r = invoke("extract", corpus, "-o", tmp_path / "local.jsonl", *common, "--threads", 1)
    assert r.exit_code == 3, r.output
    r = invoke("extract", corpus, "-o", tmp_path / "run", *common, "--engine", "ray",
               "--actors", 1, "--batch-docs", 8)  # fmt: skip
    assert r.exit_code == 3, r.output  # some lines rejected, as the local run
    assert "docunet-rt merge" in r.output
    r = invoke("merge", tmp_path / "run", "-o", tmp_path / "ray.jsonl")
    assert r.exit_code == 3, r.output
    for name in ("", ".errors.jsonl"):
        assert (tmp_path / f"ray.jsonl{name}").read_bytes() == (
            tmp_path / f"local.jsonl{name}"
        ).read_bytes()
    assert b'"triples":[{' in (tmp_path / "ray.jsonl").read_bytes()  # not all empty
    r = invoke("extract", corpus, "-o", tmp_path / "run2", *common, "--engine", "ray",
               "--relations", "P1,P99")  # fmt: skip
    assert r.exit_code == 1 and "unknown relation id(s) P99" in r.output
    assert not (tmp_path / "run2").exists()  # checked before anything is written
    (tmp_path / "pub.txt").write_bytes(b"123|t|A title\n")  # PubTator: a read task fails
    r = invoke("extract", tmp_path / "pub.txt", "-o", tmp_path / "run3", *common, "--engine", "ray")
    errors = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert r.exit_code == 1 and len(errors) == 1, r.output
    assert "the Ray run failed: DataError:" in errors[0] and "docunet-rt convert" in errors[0]


def test_merge_never_writes_over_an_input_or_into_the_run(tmp_path):
    pytest.importorskip("pyarrow", reason=NO_RAY)
    from docunet_rt.cli.merge_cmd import merge_ray_output

    corpus = tmp_path / "c.jsonl"
    corpus.write_bytes(messy_corpus(32))
    before = corpus.read_bytes()
    fake_run(tmp_path / "run", [str(corpus)], [rows_without_ray([corpus])])
    for out, errors in ((corpus, None), (tmp_path / "o.jsonl", corpus)):
        with pytest.raises(ValueError, match="is an input of the run; refusing to overwrite it"):
            merge_ray_output(str(tmp_path / "run"), out, errors)
    with pytest.raises(ValueError, match="inside the run directory"):
        merge_ray_output(str(tmp_path / "run"), tmp_path / "run" / "docunet_ray.json", None)
    assert corpus.read_bytes() == before
