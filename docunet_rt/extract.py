"""Streaming batch extraction: a JSONL corpus in, one JSON line of triples per document out.

Input lines (``.jsonl``, ``.jsonl.gz`` or ``-`` for stdin) are auto-detected per line:

* DocRED style: ``{"sents": [[token]], "vertexSet": [[mention]], "title"?, "id"?, "meta"?}``
* plain text:   ``{"text": str, "entities": [{"mentions": [{"start", "end"}], "type", "name"?}],
  "id"?, "meta"?}`` (character offsets, end exclusive)

A document's id is its ``id``, else its ``title``, else its 1-based line number; ``meta`` is
copied to its output line. A bad line becomes an error record ``{"line", "id", "error"}`` and
the run goes on (``strict`` stops at the first one); so does a line or document over the bounds
of ``ExtractOptions`` (bytes, wordpieces, entities, head memory) and a document the model fails
on by itself.

This module is the job around the runtime: reading lines (``corpus.LineReader``), the worker
pool, the ordered writer and resume. The pipeline is the runtime's (``runtime.Extractor``): the
pool runs ``Extractor.preparer`` (parse + featurize) on the next windows of lines while the main
thread runs ``Extractor.infer`` (length-sorted batches → model → decoding) on the current one.
Results are written in input order as soon as every earlier line is done, flushed per batch.

Resume: lines are handled in windows (16, 32, 64 … ``sort_window`` lines). After each window
``OUT.progress`` (JSON, replaced atomically) records the lines handled, the byte sizes of OUT and
the error file, the fingerprint of the corpus bytes read so far (size + SHA-256), the model and
the options. ``resume`` refuses another corpus, model or options, truncates both files to the
recorded sizes (dropping what a killed run wrote after its last record), and goes on with the
same windows, hence the same batches: the output is the same bytes as a run that never stopped,
for every precision. A finished run whose corpus has grown since continues with the new lines.
numpy, tokenizers, orjson and (through the extractor) onnxruntime only: never torch.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from .corpus import LineReader, as_jsonl, is_dash, open_corpus, read_corpus_lines, source_name
from .data import DataError, Document, parse_line
from .options import OUTPUT_FORMATS, POOLS, ExtractOptions, check_choice
from .runtime.extractor import Decoder, Extractor, Prepared
from .runtime.results import DocumentResult, ErrorRecord, Failure, pubtator_block

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

STATE_VERSION = 2
CHUNK_LINES = 16  # lines per worker task
FIRST_WINDOW = 16  # windows ramp up 16, 32, 64 ... sort_window lines: early first output
PREFETCH = 2  # windows queued ahead of the one being inferred (memory: ~4 windows of lines)
_Path = str | os.PathLike
_ID_PREFIX = re.compile(rb'\{"id":("(?:[^"\\]|\\.)*")')  # an output line's id, as JSON
_PUBTATOR_TITLE = re.compile(rb"^([^|\t\r\n]+)\|t\|")
_COUNTS = ("lines", "docs", "triples", "errors")


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


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)
    return False


def refuse_overwriting_input(corpus: Any, out: Any, errors: Any) -> None:
    """ValueError when OUT, the error file or the progress file is the corpus itself (same path
    or same inode): checked before anything is opened for writing."""
    if is_dash(corpus) or hasattr(corpus, "read"):
        return
    src = Path(corpus)
    targets = []
    if not is_dash(out) and not hasattr(out, "write"):
        targets += [("OUT", Path(out)), ("the progress file", progress_path(out))]
    if errors is not None and not hasattr(errors, "write"):
        targets.append(("the error file", Path(errors)))
    for what, path in targets:
        if _same_file(path, src):
            raise ValueError(
                f"{what} {path} is the input corpus {src}; refusing to overwrite it "
                "(choose another output path)"
            )


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
    """The ordered writer: results and error records in input order, and the resume state."""

    def __init__(
        self,
        out: _Path | IO[bytes],
        extractor: Extractor,
        options: ExtractOptions,
        errors: _Path | IO[bytes] | None,
        strict: bool,
        progress: Callable[[ExtractSummary], None] | None,
        output_format: str = "jsonl",
    ) -> None:
        options = extractor.resolve_options(options)  # min_score as run, recorded and pinned
        self.ex, self.options, self.strict, self.progress = extractor, options, strict, progress
        self.output_format = check_choice("output format", output_format, OUTPUT_FORMATS)
        self.decoder: Decoder = extractor.decoder(options)  # relation ids checked once
        self.t0, self.s, self.seen = time.perf_counter(), ExtractSummary(), set[str]()
        self.out_bytes = self.err_bytes = self.resumed_triples = self.windows = 0
        self.complete = False
        # what decides the output bytes besides the input (checked on resume)
        self.settings = {
            "model": extractor.fingerprint(options),
            "options": options.to_dict(),
            "runtime": extractor.run_settings(options),  # provider, budget, merge, buckets
            "output_format": output_format,
        }
        self.state: dict[str, Any] | None = None  # the resume state read from OUT.progress
        # ids of documents the model failed on: "seen" (a later duplicate is rejected) though
        # not in OUT, so the resume state carries them
        self.failed_ids: list[str] = []
        self.mark: dict[str, Any] = {}  # the state at the last window boundary
        self.reader: LineReader | None = None
        self.own: list[IO[bytes]] = []  # files this job opened (and closes)
        self.out_path = None if is_dash(out) or hasattr(out, "write") else Path(out)  # type: ignore[arg-type]
        self.state_path = progress_path(self.out_path) if self.out_path else None
        err_is_path = errors is not None and not hasattr(errors, "write")
        if err_is_path and self.out_path and Path(errors).resolve() == self.out_path.resolve():  # type: ignore[arg-type]
            raise ValueError("the error file must differ from OUT")
        self.errors_path = Path(errors) if err_is_path else None  # type: ignore[arg-type]
        self.err_fh: IO[bytes] | None = None if err_is_path else errors  # type: ignore[assignment]
        self.err_key = str(self.errors_path.resolve()) if self.errors_path else None
        self.out_fh: IO[bytes] = sys.stdout.buffer if is_dash(out) else out  # type: ignore[assignment]

    # -- starting ----------------------------------------------------------------------------------

    def read_state(self) -> bool:
        """Load and check OUT.progress for a resume (nothing is written); False: start afresh."""
        out, sp = self.out_path, self.state_path
        if out is None or sp is None:
            raise ValueError("resume needs OUT to be a file (not - or a stream)")
        if not sp.exists():
            if out.exists() and out.stat().st_size > 0:
                why = f"{out} exists but {sp} does not (not written by docunet-rt extract?)"
                raise ValueError(f"cannot resume: {why}; rerun without --resume to start over")
            logger.info("nothing to resume in %s; starting from the first line", out)
            return False
        try:
            st = orjson.loads(sp.read_bytes())
            for k in (*_COUNTS, "out_bytes", "err_bytes", "windows", "corpus_bytes"):
                st[k] = int(st[k])
            str(st["corpus_sha256"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            why = f"{sp} is corrupt or from an older docunet-rt ({e})"
            raise ValueError(f"cannot resume: {why}; rerun without --resume") from None
        sizes = [p.stat().st_size if p and p.exists() else 0 for p in (out, self.errors_path)]
        theirs, ours = st.get("settings") or {}, self.settings
        for bad, why in (
            (st.get("version") != STATE_VERSION, f"{sp} has unsupported version {st.get('version')!r}"),
            (theirs.get("model") != ours["model"], f"{out} was written by another model or precision ({theirs.get('model')}); this run has {ours['model']}"),
            (theirs.get("options") != ours["options"], f"{out} was started with options {theirs.get('options')}; this run has {ours['options']}; use the same options or rerun without --resume"),
            (theirs.get("output_format", "jsonl") != ours["output_format"], f"{out} was written as {theirs.get('output_format', 'jsonl')}; this run writes {ours['output_format']}"),
            (theirs.get("runtime") != ours["runtime"], f"{out} was started on {theirs.get('runtime')}; this run would run on {ours['runtime']} (other batches or another device); use the same device or rerun without --resume"),
            (st.get("errors_path") != self.err_key, f"the first run wrote error records to {st.get('errors_path')}, this run would write them to {self.err_key}"),
            (sizes[0] < st["out_bytes"], f"{out} is shorter than {sp} records ({sizes[0]} < {st['out_bytes']})"),
            (self.errors_path is not None and sizes[1] < st["err_bytes"], f"{self.errors_path} is shorter than {sp} records ({sizes[1]} < {st['err_bytes']})"),
        ):  # fmt: skip
            if bad:
                raise ValueError(f"cannot resume: {why}")
        self.state = st
        return True

    def check_corpus(self, lines: Iterator[tuple[int, bytes]], reader: LineReader) -> None:
        """Read the corpus up to where the resumed run stopped and compare its fingerprint;
        ValueError if it is another corpus (or a changed or shorter one)."""
        st = self.state
        assert st is not None
        last = 0
        for n, _ in lines if st["lines"] else ():
            last = n
            reader.forget(n)  # the marks of lines before this one are never asked for
            if n >= st["lines"]:
                break
        if last < st["lines"]:
            raise ValueError(
                f"cannot resume: the corpus ends at line {last}, but the run in {self.out_path} "
                f"had handled {st['lines']} lines (another or a truncated corpus?)"
            )
        size, sha = reader.mark(last) if last == st["lines"] else (-1, "")
        if (size, sha) != (st["corpus_bytes"], st["corpus_sha256"]):
            raise ValueError(
                f"cannot resume: the first {st['lines']} lines of the corpus are not the ones the "
                f"run in {self.out_path} read (another corpus, or it changed); rerun without "
                "--resume to start over"
            )

    def open(self, resume: bool) -> None:
        """Open OUT (truncated to the resume point, or new) and record the first state."""
        if self.out_path is None:
            return
        out = self.out_path
        if self.state is None:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.out_fh = self._open(out, "wb")
            if self.errors_path is not None:
                self.errors_path.unlink(missing_ok=True)
            self.snapshot()
            self.commit()  # first, so that a kill at any later point leaves a resumable state
            return
        st = self.state
        os.truncate(out, st["out_bytes"])  # drop what a killed run wrote after its last record
        if self.errors_path is not None and self.errors_path.exists():
            os.truncate(self.errors_path, st["err_bytes"])
        with open(out, "rb") as fh:  # the ids already written, for duplicate detection
            for raw in fh:
                if self.output_format == "pubtator":  # a document starts with "PMID|t|title"
                    if m := _PUBTATOR_TITLE.match(raw):
                        self.seen.add(m[1].decode("utf-8"))
                    continue
                m = _ID_PREFIX.match(raw)
                self.seen.add(orjson.loads(m[1]) if m else str(orjson.loads(raw)["id"]))
        self.failed_ids = [str(x) for x in st.get("failed_ids", [])]
        self.seen.update(self.failed_ids)
        s = self.s
        s.lines, s.docs, s.triples, s.errors = (st[k] for k in _COUNTS)
        s.resumed_docs, self.resumed_triples = s.docs, s.triples
        self.out_bytes, self.err_bytes, self.windows = (
            st["out_bytes"],
            st["err_bytes"],
            st["windows"],
        )
        logger.info("resuming %s after line %d (%d documents done)", out, s.lines, s.docs)
        self.out_fh = self._open(out, "ab")
        self.snapshot()

    def _open(self, path: Path, mode: str) -> IO[bytes]:
        fh = open(path, mode)  # noqa: SIM115
        self.own.append(fh)
        return fh

    # -- state ---------------------------------------------------------------------------------

    def snapshot(self) -> None:
        """Remember the state at this window boundary (what ``commit`` records)."""
        size, sha = self.reader.mark(self.s.lines) if self.reader else (0, "")
        if self.reader:
            self.reader.forget(self.s.lines)
        self.mark = {k: getattr(self.s, k) for k in _COUNTS}
        self.mark.update(out_bytes=self.out_bytes, err_bytes=self.err_bytes, windows=self.windows)
        self.mark.update(corpus_bytes=size, corpus_sha256=sha, complete=self.complete)
        self.mark["failed_ids"] = list(self.failed_ids)

    def commit(self) -> None:
        """Record the last window boundary in OUT.progress (atomically)."""
        if self.state_path is None:
            return
        state = {"version": STATE_VERSION, **self.mark, "errors_path": self.err_key}
        state["settings"] = self.settings
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

    def flush(self) -> None:
        """Push OUT, then the errors, to the OS (a write to the OS survives kill -9)."""
        self.flush_files()
        if self.progress is not None:
            self.progress(self.summary())

    def summary(self) -> ExtractSummary:
        s = self.s
        s.seconds = time.perf_counter() - self.t0
        s.docs_per_s = (s.docs - s.resumed_docs) / max(s.seconds, 1e-9)
        s.triples_per_s = (s.triples - self.resumed_triples) / max(s.seconds, 1e-9)
        return ExtractSummary(**asdict(s))

    # -- writing -------------------------------------------------------------------------------

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
                if isinstance(res, Failure):
                    sl.error = _error_line(sl.line, docs[i].id, res.reason)
                    self.failed_ids.append(docs[i].id)
                    continue
                try:
                    sl.data = self.serialize(res)
                except ValueError as e:  # a record the output format cannot hold
                    sl.error = _error_line(sl.line, docs[i].id, str(e))
                    continue
                sl.triples = len(res.triples)
            cursor = self.emit(slots, cursor)

    def serialize(self, res: DocumentResult) -> bytes:
        if self.output_format == "pubtator":
            return pubtator_block(res)
        return orjson.dumps(res.to_dict()) + b"\n"

    def end_window(self) -> None:
        """A window is done: its lines are on disk, so record the boundary."""
        self.windows += 1
        self.snapshot()
        self.commit()

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
                if self.strict:  # not recorded as handled: a rerun stops here again
                    self._write_error(sl.error)  # type: ignore[arg-type]
                    self.flush_files()
                    raise RejectedLine(orjson.loads(sl.error))  # type: ignore[arg-type]
                self._write_error(sl.error)  # type: ignore[arg-type]
            self.s.lines = sl.line
            cursor += 1
        if cursor > start:
            if self.s.time_to_first_output is None and self.s.docs > self.s.resumed_docs:
                self.s.time_to_first_output = time.perf_counter() - self.t0
            self.flush()
        return cursor

    def finish(self) -> ExtractSummary:
        self.complete = True
        self.flush_files()
        self.snapshot()
        self.commit()
        return self.summary()

    def close(self) -> None:
        for fh in self.own:
            fh.close()


def _windows(lines: Iterable[tuple[int, bytes]], size: int, done: int = 0) -> Iterator[_Lines]:
    """Windows of 16, 32, 64 … ``size`` lines; ``done`` windows were handled before a resume
    (so a resumed run cuts the rest of the corpus exactly as a run that never stopped)."""
    cap, win = min(size, FIRST_WINDOW << min(done, 30)), []
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
    output_format: str = "jsonl",
) -> ExtractSummary:
    """Extract triples from every line of ``corpus`` into ``out`` (one JSON line per document, in
    input order); bad lines go to ``errors_path`` as ``{"line", "id", "error"}`` records.

    ``corpus``: a ``.jsonl``/``.jsonl.gz`` path, ``"-"`` (stdin) or a binary file object.
    ``out``/``errors_path``: a path, ``"-"`` (``out`` only: stdout) or a binary file object;
    ``errors_path=None`` only counts bad lines. ``extractor``: a :class:`runtime.Extractor` (any
    backend); ``options``: the same :class:`ExtractOptions` as ``Extractor.extract``.
    ``workers``: parse/featurize workers (0 = in the main thread); ``pool``: ``"thread"`` or
    ``"process"``. ``strict``: raise :class:`RejectedLine` at the first bad line (after writing
    everything before it and its error record). ``resume``: continue an interrupted run from
    ``OUT.progress``. ``progress`` is called after every flush.
    """
    options = options or ExtractOptions()
    check_choice("pool", pool, POOLS)
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if pool == "process" and workers and options.entities != "given":
        raise ValueError("entity prediction runs in thread workers: use pool='thread'")
    extractor.recognizer(options)  # no tagger for --entities predict: fail before OUT is touched
    refuse_overwriting_input(corpus, out, errors_path)
    fh = open_corpus(corpus)  # an unreadable corpus fails before OUT is touched
    job: _Job | None = None
    executor: Executor | None = None
    ahead_thread: threading.Thread | None = None
    stop = threading.Event()
    try:
        job = _Job(out, extractor, options, errors_path, strict, progress, output_format)
        resuming = resume and job.read_state()
        src = source_name(corpus)
        reader = LineReader(as_jsonl(fh, src), src, options.max_record_bytes)
        lines: Iterator[tuple[int, bytes]] = iter(reader)
        if resuming:
            job.check_corpus(lines, reader)
            try:
                first = next(lines)
            except StopIteration:
                if job.state and job.state.get("complete"):
                    logger.info("%s is already complete; nothing to do", out)
                    job.open(resume=True)
                    job.complete = True
                    return job.summary()
            else:
                lines = itertools.chain([first], lines)
                if job.state and job.state.get("complete"):
                    logger.info("%s was complete; the corpus has more lines now: continuing", out)
        job.reader = reader
        job.open(resuming)
        windows = _windows(lines, options.sort_window, job.windows)
        prepare = extractor.preparer(options, pool if workers else "process")
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
        ahead_thread = threading.Thread(target=_read_ahead, args=(windows, submit, ahead, stop))
        ahead_thread.daemon = True  # it may be blocked reading stdin when we are done
        ahead_thread.start()
        # the workers prepare the next windows while this one is inferred
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            job.window(item())
            job.end_window()  # before waiting for more input
        return job.finish()
    finally:
        stop.set()
        if ahead_thread is not None:
            ahead_thread.join(timeout=1)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if job is not None:
            job.close()
        if fh is not corpus and not is_dash(corpus):
            fh.close()


def _read_ahead(windows: Iterator[_Lines], submit: Callable, ahead: queue.Queue, stop) -> None:
    """Reader thread: submit each window, queue its result getter (then None, or the error)."""

    def put(x: Any) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                return ahead.put(x, timeout=0.1)

    try:
        for win in windows:
            if stop.is_set():  # the job ended (an error, strict): read no further
                return
            put(submit(win))
        put(None)
    except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
        put(e)
