"""Streaming batch extraction: a JSONL corpus in, one JSON line of triples per document out.

Input lines (``.jsonl``, ``.jsonl.gz`` or ``-`` for stdin) are auto-detected per line:

* DocRED style: ``{"sents": [[token]], "vertexSet": [[mention]], "title"?, "id"?, "meta"?}``
* plain text:   ``{"text": str, "entities": [{"mentions": [{"start", "end"}], "type", "name"?}],
  "id"?, "meta"?}`` (character offsets, end exclusive)

A document's id is its ``id``, else its ``title``, else its 1-based line number; ``meta`` is
copied to its output line. A bad line becomes an error record ``{"line", "id", "error"}`` and
the run goes on (``strict`` stops at the first one).

This module is corpus I/O only: reading lines, the worker pool, the ordered writer and resume.
The pipeline itself is the runtime's (``runtime.Extractor``): a worker pool (threads by default)
runs ``Extractor.preparer`` (parse + featurize) on the next windows of lines while the main thread
runs ``Extractor.infer`` (length-sorted batches → model → decoding) on the current one. Results
are written in input order as soon as every earlier line is done, and flushed after every batch.

Resume: ``OUT.progress`` (JSON, replaced atomically after a flush, at most every STATE_INTERVAL
seconds) records the input lines fully handled and the byte sizes of OUT and the error file at
that moment. Bytes past those sizes were written by a run that died before recording them, so
``resume`` truncates both files to the recorded sizes and skips the recorded number of lines.
numpy, tokenizers, orjson and (through the extractor) onnxruntime only: never torch.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import multiprocessing
import os
import queue
import re
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from .data import DataError, Document, parse_line
from .options import POOLS, ExtractOptions, check_choice
from .runtime.extractor import Decoder, Extractor, Prepared
from .runtime.results import ErrorRecord

__all__ = [
    "ExtractSummary",
    "RejectedLine",
    "open_corpus",
    "parse_line",
    "progress_path",
    "read_corpus_lines",
    "run_extraction",
]

logger = logging.getLogger("docunet_rt")

STATE_VERSION = 1
CHUNK_LINES = 16  # lines per worker task
FIRST_WINDOW = 16  # windows ramp up 16, 32, 64 ... sort_window lines: early first output
PREFETCH = 2  # windows queued ahead of the one being inferred (memory: ~4 windows of lines)
STATE_INTERVAL = 0.25  # seconds between OUT.progress updates (an update costs ~1-3 ms on ext4)
_Path = str | os.PathLike
_ID_PREFIX = re.compile(rb'\{"id":("(?:[^"\\]|\\.)*")')  # an output line's id, as JSON


class RejectedLine(DataError):
    """``strict``: the first bad line; its error record has been written."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        super().__init__(record["error"], line=record["line"], doc=record["id"])


@dataclass
class ExtractSummary:
    docs: int = 0  # documents written (whole job, including those before a resume)
    triples: int = 0
    errors: int = 0  # rejected lines
    seconds: float = 0.0  # this run
    docs_per_s: float = 0.0  # documents extracted by this run per second
    triples_per_s: float = 0.0  # triples extracted by this run per second
    time_to_first_output: float | None = None  # seconds until the first result line was flushed
    lines: int = 0  # input lines fully handled (the line number of the last one)
    resumed_docs: int = 0  # documents already in OUT when a resumed run started


def _is_dash(x: Any) -> bool:
    return isinstance(x, str | os.PathLike) and os.fspath(x) == "-"


def open_corpus(corpus: _Path | IO[bytes]) -> IO[bytes]:
    """A binary line stream over a file, ``-`` (stdin) or a binary file object; gzip is detected
    from the magic bytes. Raises ``FileNotFoundError``/``OSError`` for an unreadable file."""
    if _is_dash(corpus):
        raw: IO[bytes] = sys.stdin.buffer
    elif hasattr(corpus, "read"):
        raw = corpus  # type: ignore[assignment]
    else:
        p = Path(corpus)  # type: ignore[arg-type]
        if not p.exists():
            raise FileNotFoundError(f"corpus {p} does not exist")
        if p.is_dir():
            raise IsADirectoryError(f"corpus {p} is a directory, not a .jsonl or .jsonl.gz file")
        raw = open(p, "rb")  # noqa: SIM115 - closed by the caller
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if not hasattr(raw, "peek") and raw.seekable():
        pos, head = raw.tell(), raw.read(2)
        raw.seek(pos)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _iter_lines(fh: IO[bytes], source: str) -> Iterator[tuple[int, bytes]]:
    n = 0
    try:
        for n, raw in enumerate(fh, 1):  # noqa: B007 - n is read in the except clause
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                yield n, raw
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"cannot read the corpus: {e}", source=source, line=n + 1) from None


def read_corpus_lines(corpus: _Path | IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Lazily ``(line_no, raw bytes)`` of each non-blank line of a .jsonl[.gz] file or ``-``."""
    fh = open_corpus(corpus)
    try:
        yield from _iter_lines(fh, _source_name(corpus))
    finally:
        if fh is not corpus and not _is_dash(corpus):
            fh.close()


def _source_name(corpus: Any) -> str:
    return "<stdin>" if _is_dash(corpus) else str(getattr(corpus, "name", corpus))


_Lines = list[tuple[int, bytes]]
_Prepare = Callable[[_Lines], list[Prepared]]

_WORKER_PREPARE: _Prepare | None = None


def _init_worker(prepare: _Prepare) -> None:
    global _WORKER_PREPARE
    _WORKER_PREPARE = prepare


def _prepare_in_worker(chunk: _Lines) -> list[Prepared]:
    return _WORKER_PREPARE(chunk)  # type: ignore[misc]


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def progress_path(out: _Path) -> Path:
    """The resume state file of OUT: ``OUT.progress``."""
    return Path(os.fspath(out) + ".progress")


@dataclass(slots=True)
class _Slot:
    line: int
    error: bytes | None  # the error record of a bad line
    data: bytes | None = None  # the output line once extracted
    triples: int = 0
    done = property(lambda sl: sl.data is not None or sl.error is not None)


def _error_line(line: int, doc_id: str | None, reason: str) -> bytes:
    return orjson.dumps(ErrorRecord(line, doc_id, reason).to_dict()) + b"\n"


class _Job:
    """The ordered writer: results and error records in input order, the resume state."""

    def __init__(
        self,
        out: _Path | IO[bytes],
        extractor: Extractor,
        options: ExtractOptions,
        errors: _Path | IO[bytes] | None,
        strict: bool,
        resume: bool,
        progress: Callable[[ExtractSummary], None] | None,
    ) -> None:
        self.ex, self.options, self.strict, self.progress = extractor, options, strict, progress
        self.decoder: Decoder = extractor.decoder(options)  # relation ids checked once
        self.t0, self.s, self.seen = time.perf_counter(), ExtractSummary(), set[str]()
        self.skip = self.out_bytes = self.err_bytes = self.resumed_triples = 0
        self.complete, self.last_commit, self.committed_lines = False, 0.0, 0
        # what decides the output bytes besides the input (checked on resume)
        rels = list(options.relations) if options.relations is not None else None
        self.settings = dict(min_score=options.min_score, top_k=options.top_k, relations=rels)
        self.settings["precision"] = extractor.precision
        self.own: list[IO[bytes]] = []  # files this job opened (and closes)
        self.state_path: Path | None = None
        self.err_key: str | None = None
        out_is_path = not hasattr(out, "write") and not _is_dash(out)
        if resume and not out_is_path:
            raise ValueError("resume needs OUT to be a file (not - or a stream)")
        err_is_path = errors is not None and not hasattr(errors, "write")
        if err_is_path and out_is_path and Path(errors).resolve() == Path(out).resolve():
            raise ValueError("the error file must differ from OUT")
        self.errors_path = Path(errors) if err_is_path else None
        self.err_fh: IO[bytes] | None = None if err_is_path else errors
        if not out_is_path:
            self.out_fh: IO[bytes] = sys.stdout.buffer if _is_dash(out) else out
            return
        out = Path(out)
        self.state_path = progress_path(out)
        self.err_key = str(self.errors_path.resolve()) if self.errors_path else None
        if resume and self._load_state(out):
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        self.commit()  # first, so that a kill at any later point leaves a resumable state
        self.out_fh = self._open(out, "wb")
        if self.errors_path is not None:
            self.errors_path.unlink(missing_ok=True)

    def _open(self, path: Path, mode: str) -> IO[bytes]:
        fh = open(path, mode)  # noqa: SIM115
        self.own.append(fh)
        return fh

    def _load_state(self, out: Path) -> bool:
        """Resume from OUT.progress; False if there is none (a fresh start)."""
        sp = self.state_path
        assert sp is not None
        if not sp.exists():
            if out.exists() and out.stat().st_size > 0:
                why = f"{out} exists but {sp} does not (not written by docunet-rt extract?)"
                raise ValueError(f"cannot resume: {why}; rerun without --resume to start over")
            logger.info("nothing to resume in %s; starting from the first line", out)
            return False
        try:
            st = orjson.loads(sp.read_bytes())
            lines, ob, eb = int(st["lines"]), int(st["out_bytes"]), int(st["err_bytes"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            why = f"{sp} is corrupt ({e})"
            raise ValueError(f"cannot resume: {why}; rerun without --resume") from None
        sizes = [p.stat().st_size if p and p.exists() else 0 for p in (out, self.errors_path)]
        for bad, why in (
            (st.get("version") != STATE_VERSION, f"{sp} has unsupported version {st.get('version')!r}"),
            (st.get("settings") != self.settings, f"{out} was started with {st.get('settings')}, this run has {self.settings}; use the same options or rerun without --resume"),
            (st.get("errors_path") != self.err_key, f"the first run wrote error records to {st.get('errors_path')}, this run would write them to {self.err_key}"),
            (sizes[0] < ob, f"{out} is shorter than {sp} records ({sizes[0]} < {ob})"),
            (self.errors_path is not None and sizes[1] < eb, f"{self.errors_path} is shorter than {sp} records ({sizes[1]} < {eb})"),
        ):  # fmt: skip
            if bad:
                raise ValueError(f"cannot resume: {why}")
        os.truncate(out, ob)  # drop what a killed run wrote after its last recorded state
        if self.errors_path is not None and self.errors_path.exists():
            os.truncate(self.errors_path, eb)
        with open(out, "rb") as fh:  # the ids already written, for duplicate detection
            for raw in fh:
                m = _ID_PREFIX.match(raw)
                self.seen.add(orjson.loads(m[1]) if m else str(orjson.loads(raw)["id"]))
        s = self.s
        s.docs, s.triples, s.errors = (int(st[k]) for k in ("docs", "triples", "errors"))
        s.lines, s.resumed_docs, self.resumed_triples = lines, s.docs, s.triples
        self.skip, self.out_bytes, self.err_bytes = lines, ob, eb
        self.complete = bool(st.get("complete"))
        logger.info("resuming %s after line %d (%d documents done)", out, lines, s.docs)
        self.out_fh = self._open(out, "ab")
        return True

    def commit(self) -> None:
        if self.state_path is None:
            return
        self.last_commit, self.committed_lines = time.perf_counter(), self.s.lines
        state = {k: getattr(self.s, k) for k in ("lines", "docs", "triples", "errors")}
        state.update(version=STATE_VERSION, out_bytes=self.out_bytes, err_bytes=self.err_bytes)
        state.update(complete=self.complete, errors_path=self.err_key, settings=self.settings)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(state))
        os.replace(tmp, self.state_path)  # atomic: readers see the old state or the new one

    def _write_error(self, data: bytes) -> None:
        if self.err_fh is None and self.errors_path is not None:
            self.errors_path.parent.mkdir(parents=True, exist_ok=True)
            self.err_fh = self._open(self.errors_path, "ab")
        if self.err_fh is not None:
            self.err_fh.write(data)
        self.err_bytes += len(data)
        self.s.errors += 1

    def flush_files(self) -> None:
        self.out_fh.flush()
        if self.err_fh is not None:
            self.err_fh.flush()

    def flush(self, force: bool = False) -> None:
        """Push OUT, then the errors, to the OS, then (at most every STATE_INTERVAL seconds) record
        the state: it never counts bytes that are not in the files (a write to the OS survives
        kill -9); what was flushed after the last record is redone by a resumed run."""
        self.flush_files()
        if force or time.perf_counter() - self.last_commit >= STATE_INTERVAL:
            self.commit()
        if self.progress is not None:
            self.progress(self.summary())

    def summary(self) -> ExtractSummary:
        s = self.s
        s.seconds = time.perf_counter() - self.t0
        s.docs_per_s = (s.docs - s.resumed_docs) / max(s.seconds, 1e-9)
        s.triples_per_s = (s.triples - self.resumed_triples) / max(s.seconds, 1e-9)
        return ExtractSummary(**asdict(s))

    def window(self, items: Sequence[Prepared]) -> None:
        """Write one window of prepared lines: errors at once, results batch by batch."""
        slots: list[_Slot] = []
        docs: list[Document] = []
        feats: list[Any] = []
        where: list[int] = []  # slot of each good document
        for p in items:
            reason = p.error
            if reason is None and p.doc.id in self.seen:  # type: ignore[union-attr]
                reason = f"duplicate id {p.id!r} (an earlier line has it)"
            if reason is not None:
                slots.append(_Slot(p.line, _error_line(p.line, p.id, reason)))
                if self.strict:
                    break
                continue
            self.seen.add(p.doc.id)  # type: ignore[union-attr]
            where.append(len(slots))
            slots.append(_Slot(p.line, None))
            docs.append(p.doc)  # type: ignore[arg-type]
            feats.append(p.feats)
        cursor = self.emit(slots, 0)
        for done in self.ex.infer(docs, feats, self.options, self.decoder):
            for i, res in done:
                sl = slots[where[i]]
                sl.data = orjson.dumps(res.to_dict()) + b"\n"
                sl.triples = len(res.triples)
            cursor = self.emit(slots, cursor)

    def emit(self, slots: list[_Slot], cursor: int) -> int:
        """Write every finished slot from ``cursor`` on up to the first unfinished one."""
        start = cursor
        while cursor < len(slots) and slots[cursor].done:
            sl = slots[cursor]
            if sl.data is not None:
                self.out_fh.write(sl.data)
                self.out_bytes += len(sl.data)
                self.s.docs += 1
                self.s.triples += sl.triples
            else:
                if self.strict:  # recorded as not handled: a rerun stops here again
                    self.out_fh.flush()
                    self.commit()
                    self._write_error(sl.error)
                    self.flush_files()
                    raise RejectedLine(orjson.loads(sl.error))
                self._write_error(sl.error)
            self.s.lines = sl.line
            cursor += 1
        if cursor > start:
            if self.s.time_to_first_output is None and self.s.docs > self.s.resumed_docs:
                self.s.time_to_first_output = time.perf_counter() - self.t0
            self.flush()
        return cursor

    def finish(self) -> ExtractSummary:
        self.complete = True
        self.flush(force=True)
        return self.summary()

    def close(self) -> None:
        for fh in self.own:
            fh.close()


def _windows(lines: Iterable[tuple[int, bytes]], size: int) -> Iterator[_Lines]:
    cap, win = min(FIRST_WINDOW, size), []
    for x in lines:
        win.append(x)
        if len(win) >= cap:
            yield win
            win, cap = [], min(size, cap * 2)
    if win:
        yield win


def _make_pool(pool: str, workers: int, prepare: _Prepare) -> Executor:
    if pool == "thread":
        return ThreadPoolExecutor(workers, thread_name_prefix="docunet-prepare")
    ctx = multiprocessing.get_context(
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    )  # never fork: the parent holds ORT and tokenizers thread pools
    return ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=(prepare,))


def run_extraction(
    corpus: _Path | IO[bytes],
    out: _Path | IO[bytes],
    extractor: Extractor,
    options: ExtractOptions | None = None,
    *,
    errors_path: _Path | IO[bytes] | None = None,
    strict: bool = False,
    resume: bool = False,
    workers: int | None = None,
    pool: str = "thread",
    progress: Callable[[ExtractSummary], None] | None = None,
) -> ExtractSummary:
    """Extract triples from every line of ``corpus`` into ``out`` (one JSON line per document, in
    input order); bad lines go to ``errors_path`` as ``{"line", "id", "error"}`` records.

    ``corpus``: a ``.jsonl``/``.jsonl.gz`` path, ``"-"`` (stdin) or a binary file object.
    ``out``/``errors_path``: a path, ``"-"`` (``out`` only: stdout) or a binary file object;
    ``errors_path=None`` only counts bad lines. ``extractor``: a :class:`runtime.Extractor` (any
    backend); ``options``: the same :class:`ExtractOptions` as ``Extractor.extract``. ``workers``: parse/featurize workers (0 = in the main thread); ``pool``:
    ``"thread"`` or ``"process"``. ``strict``: raise :class:`RejectedLine` at the first bad line
    (after writing everything before it and its error record). ``resume``: continue an
    interrupted run from ``OUT.progress``. ``progress`` is called after every flush.
    """
    options = options or ExtractOptions()
    extractor.decoder(options)  # unknown relation ids fail before anything is opened
    check_choice("pool", pool, POOLS)
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    source = _source_name(corpus)
    fh = open_corpus(corpus)  # an unreadable corpus fails before OUT is touched
    job: _Job | None = None
    executor: Executor | None = None
    reader: threading.Thread | None = None
    stop = threading.Event()
    try:
        job = _Job(out, extractor, options, errors_path, strict, resume, progress)
        if job.complete:
            logger.info("%s is already complete; nothing to do", out)
            return job.summary()
        lines: Iterable[tuple[int, bytes]] = _iter_lines(fh, source)
        if job.skip:
            lines = (x for x in lines if x[0] > job.skip)
        windows = _windows(lines, options.sort_window)
        prepare = extractor.preparer(pool if workers else "process")
        if workers:
            executor = _make_pool(pool, workers, prepare)
        task = _prepare_in_worker if pool == "process" else prepare

        def submit(win: _Lines) -> Callable[[], list[Prepared]]:
            chunks = [win[i : i + CHUNK_LINES] for i in range(0, len(win), CHUNK_LINES)]
            if executor is None:
                return lambda: prepare(win)
            futs = [executor.submit(task, c) for c in chunks]
            return lambda: [x for f in futs for x in f.result()]

        ahead: queue.Queue[Any] = queue.Queue(PREFETCH)  # bounded read-ahead
        reader = threading.Thread(target=_read_ahead, args=(windows, submit, ahead, stop))
        reader.daemon = True  # it may be blocked reading stdin when we are done
        reader.start()
        # the workers prepare the next windows while this one is inferred
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            job.window(item())
            if job.s.lines != job.committed_lines:  # before waiting for more input
                job.commit()
        return job.finish()
    finally:
        stop.set()
        if reader is not None:
            reader.join(timeout=1)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if job is not None:
            job.close()
        if fh is not corpus and not _is_dash(corpus):
            fh.close()


def _read_ahead(windows: Iterator[_Lines], submit: Callable, ahead: queue.Queue, stop) -> None:
    """Reader thread: submit each window, queue its result getter (then None, or the error)."""

    def put(x: Any) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                return ahead.put(x, timeout=0.1)

    try:
        for win in windows:
            put(submit(win))
        put(None)
    except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
        put(e)
