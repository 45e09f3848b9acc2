"""Resume of the streaming job: every crash point, duplicates across runs, what it refuses,
and kill -9 of a real process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from test_extract import DOCRED, FIXTURES, TEXT, lines_of, run

from docunet_rt.extract import progress_path, run_extraction
from docunet_rt.runtime import ExtractOptions

sys.path.insert(0, str(Path(__file__).parent))
from _extract_fixtures import StubExtractor, write_jsonl  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Resume
# ------------------------------------------------------------------------------------------------


def corpus_state(corpus: Path, lines: int) -> dict:
    """The corpus fingerprint a run records after ``lines`` lines."""
    from docunet_rt.corpus import LineReader

    with open(corpus, "rb") as fh:
        reader = LineReader(fh, str(corpus))
        for n, _ in reader:
            if n >= lines:
                break
        size, sha = reader.mark(lines)
    return {"corpus_bytes": size, "corpus_sha256": sha}


def test_resume_from_every_crash_point(tmp_path, corpus300, reference, monkeypatch):
    """Replay every state a killed run can leave: the state file of some flush, with OUT and the
    error file holding anything from exactly that much to more (partial or whole later lines)."""
    out, err = tmp_path / "o", tmp_path / "e"
    snaps: list[bytes] = []
    opts = ExtractOptions(batch_size=5, sort_window=40)
    run_extraction(
        corpus300,
        out,
        StubExtractor(),
        opts,
        errors_path=err,
        progress=lambda s: snaps.append(progress_path(out).read_bytes()),
    )
    assert out.read_bytes() == reference[0]
    full_out, full_err = reference
    snaps = list(dict.fromkeys(snaps))  # the states recorded at window boundaries
    assert len(snaps) >= 8
    for k, snap in enumerate(snaps[:-1]):
        st = orjson.loads(snap)
        extra_out = [0, 1, 57, 10**6][k % 4]
        extra_err = [0, 500, 3][k % 3]
        out.write_bytes(full_out[: st["out_bytes"] + extra_out])
        err.write_bytes(full_err[: st["err_bytes"] + extra_err])
        progress_path(out).write_bytes(snap)
        s = run_extraction(corpus300, out, StubExtractor(), opts, errors_path=err, resume=True)
        assert out.read_bytes() == full_out, k
        assert err.read_bytes() == full_err, k
        assert (s.docs, s.errors, s.lines, s.resumed_docs) == (298, 2, 300, st["docs"])
    # a finished job: nothing to do
    s = run_extraction(corpus300, out, StubExtractor(), opts, errors_path=err, resume=True)
    assert s.docs == 298 and out.read_bytes() == full_out


@pytest.mark.parametrize("doc_id", ["x1", 'q"\\\u2028é', '","triples":[]}'])
def test_resume_keeps_rejecting_duplicates_of_ids_written_before(tmp_path, doc_id):
    first = {**TEXT, "id": doc_id}
    recs = [first, *({**DOCRED, "title": f"t{i}"} for i in range(20)), first]
    s, out, err = run(tmp_path, recs)
    want_out, want_err = out.read_bytes(), err.read_bytes()
    assert orjson.loads(want_err)["error"].startswith(f"duplicate id {doc_id!r}")
    # a state recorded after 5 lines, with more bytes in OUT than it records
    head = want_out.splitlines(keepends=True)[:5]
    triples = sum(len(orjson.loads(x)["triples"]) for x in head)
    st = orjson.loads(progress_path(out).read_bytes())
    st.update(lines=5, docs=5, triples=triples, errors=0, err_bytes=0, complete=False)
    st.update(corpus_state(tmp_path / "c.jsonl", 5), windows=0)
    progress_path(out).write_bytes(orjson.dumps({**st, "out_bytes": len(b"".join(head))}))
    err.unlink()
    s, out, err = run(tmp_path, recs, resume=True)
    assert (out.read_bytes(), err.read_bytes()) == (want_out, want_err)
    assert (s.docs, s.errors, s.resumed_docs) == (21, 1, 5)


def test_resume_without_an_error_file(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", [TEXT, b"bad", DOCRED, b"bad2", {**TEXT, "id": "z"}])
    out = tmp_path / "o"
    run_extraction(corpus, out, StubExtractor(), workers=0)
    want = out.read_bytes()
    st = orjson.loads(progress_path(out).read_bytes())
    assert st["err_bytes"] > 0 and st["errors_path"] is None
    first = want.splitlines(keepends=True)[0]
    progress_path(out).write_bytes(
        orjson.dumps(
            {
                **st,
                "lines": 2,
                "out_bytes": len(first),
                "docs": 1,
                "errors": 1,
                "err_bytes": 60,
                "complete": False,
                "windows": 0,
                **corpus_state(corpus, 2),
            }
        )
    )
    s = run_extraction(corpus, out, StubExtractor(), workers=0, resume=True)
    assert out.read_bytes() == want and (s.docs, s.errors) == (3, 2)


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    s, out, err = run(tmp_path, [TEXT, DOCRED])
    with pytest.raises(ValueError, match="cannot resume: .* was started with .*min_score"):
        run(tmp_path, [TEXT, DOCRED], resume=True, options=ExtractOptions(min_score=0.7))
    st = orjson.loads(progress_path(out).read_bytes())
    progress_path(out).write_bytes(orjson.dumps({**st, "out_bytes": 10**9, "complete": False}))
    with pytest.raises(ValueError, match="is shorter than"):
        run(tmp_path, [TEXT, DOCRED], resume=True)
    progress_path(out).write_bytes(b"{")
    with pytest.raises(ValueError, match="is corrupt"):
        run(tmp_path, [TEXT, DOCRED], resume=True)
    progress_path(out).unlink()
    with pytest.raises(ValueError, match="exists but .*progress does not"):
        run(tmp_path, [TEXT, DOCRED], resume=True)
    with pytest.raises(ValueError, match="resume needs OUT to be a file"):
        run_extraction(tmp_path / "c.jsonl", "-", StubExtractor(), resume=True)


def test_resume_with_nothing_there_starts_fresh(tmp_path):
    s, out, _ = run(tmp_path, [TEXT, DOCRED], resume=True)
    assert s.docs == 2 and len(lines_of(out)) == 2


def _wait_for(cond, timeout: float = 30.0) -> None:
    t = time.monotonic()
    while not cond():
        if time.monotonic() - t > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path, corpus300, reference):
    out, err = tmp_path / "o.jsonl", tmp_path / "e.jsonl"
    cmd = [sys.executable, str(FIXTURES), str(corpus300), str(out), "--errors", str(err)]
    proc = subprocess.Popen(
        [*cmd, "--delay", "0.02"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def flushed() -> bool:
        p = progress_path(out)
        return p.exists() and orjson.loads(p.read_bytes())["docs"] > 0 or proc.poll() is not None

    _wait_for(flushed)
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "finished before it could be killed"
    done = orjson.loads(progress_path(out).read_bytes())
    assert 0 < done["lines"] < 300
    res = subprocess.run([*cmd, "--resume"], capture_output=True, check=True)
    assert orjson.loads(res.stdout) == {"docs": 298, "errors": 2, "has_torch": False}
    assert out.read_bytes() == reference[0]
    assert err.read_bytes() == reference[1]
