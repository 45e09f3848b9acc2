"""``docunet-rt merge``: the output of ``extract --engine ray`` (a directory) as the local
``extract`` writes it: one JSONL in input order, and the error records.

``merge_ray_output`` (also the Python API) reads the rows ``(file, line, kind, json)`` that the
Ray run wrote (``docunet_rt.distributed``), sorts them by (input file, line) with an external
merge sort (``memory_mb`` of rows sorted at a time, spilled to sorted runs beyond it), applies
the local job's duplicate-id rule, and checks that every line read has exactly one row.
Importing this module imports typer/click only; pyarrow loads when the command runs.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import typer

from .common import EXIT_REJECTED, console, fail, flag, setup_logging

logger = logging.getLogger("docunet_rt")
_ID_PREFIX = re.compile(rb'\{"id":("(?:[^"\\]|\\.)*")')  # a result line's id, as JSON
_Path = str | os.PathLike


def _pa() -> Any:
    from ..distributed import pyarrow_module  # pyarrow, or ImportError with the install command

    return pyarrow_module()


@dataclass
class MergeSummary:
    docs: int = 0
    errors: int = 0  # error records written (duplicate ids included)
    duplicate_ids: int = 0
    lines: int = 0
    files: int = 0
    replayed_rows: int = 0  # identical rows of one line written twice (dropped)


_COLUMNS = ("file", "line", "kind", "json")
_Row = tuple[int, int, str, bytes]


def _schema() -> Any:
    pa = _pa()
    return pa.schema(
        [("file", pa.int32()), ("line", pa.int64()), ("kind", pa.string()), ("json", pa.binary())]
    )


def _scan(fs: Any, files: Iterable[str]) -> Iterator[Any]:
    pa = _pa()
    schema = _schema()
    for f in files:
        with fs.open_input_file(f) as fh:
            for b in pa.parquet.ParquetFile(fh).iter_batches(8192, columns=list(_COLUMNS)):
                yield pa.Table.from_batches([b]).cast(schema)


def _rows(table: Any) -> Iterator[_Row]:
    for b in table.to_batches(max_chunksize=4096):
        yield from zip(*(b.column(c).to_pylist() for c in _COLUMNS), strict=True)


def _sorted_rows(tables: Iterable[Any], budget: int, tmp: str) -> Iterator[_Row]:
    """All rows by (file, line): tables are sorted in memory up to ``budget`` bytes at a time,
    spilled to sorted runs when there is more, and the runs merged."""
    pa = _pa()
    runs: list[str] = []
    pending: list[Any] = []
    size = 0

    def sort(ts: list[Any]) -> Any:
        t = pa.concat_tables(ts) if ts else _schema().empty_table()
        return t.sort_by([("file", "ascending"), ("line", "ascending")])

    def spill(t: Any) -> None:
        runs.append(os.path.join(tmp, f"run{len(runs):05d}.parquet"))
        pa.parquet.write_table(t, runs[-1])

    for t in tables:
        pending.append(t)
        size += t.nbytes
        if size >= budget:
            spill(sort(pending))
            pending, size = [], 0
    last = sort(pending)
    if not runs:
        yield from _rows(last)
        return
    if last.num_rows:
        spill(last)
    logger.info("merge: sorting in %d runs of about %d MB", len(runs), budget >> 20)
    local = pa.fs.LocalFileSystem()
    yield from heapq.merge(*(_rows_of(local, r) for r in runs))


def _rows_of(fs: Any, path: str) -> Iterator[_Row]:
    pa = _pa()
    with fs.open_input_file(path) as fh:
        for b in pa.parquet.ParquetFile(fh).iter_batches(512, columns=list(_COLUMNS)):
            yield from zip(*(b.column(c).to_pylist() for c in _COLUMNS), strict=True)


def _doc_id(kind: str, data: bytes) -> str:
    if kind == "result" and (m := _ID_PREFIX.match(data)):
        return orjson.loads(m[1])
    return str(orjson.loads(data)["id"])


class _Output:
    """A file written under a temporary name and renamed at the end (a failed merge leaves
    nothing half-written), or a given stream; a path is only created by its first write."""

    def __init__(self, dest: _Path | IO[bytes] | None) -> None:
        self.stream = dest if dest is not None and hasattr(dest, "write") else None
        self.path = None if dest is None or self.stream is not None else Path(dest)  # type: ignore[arg-type]
        self.fh: IO[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self.fh is None and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(self.path.with_name(self.path.name + ".tmp"), "wb")  # noqa: SIM115
        fh = self.fh or self.stream
        if fh is not None:
            fh.write(data)

    def finish(self, keep_empty: bool) -> None:
        if self.path is None:
            if self.stream is not None:
                self.stream.flush()
            return
        if self.fh is None:
            self.path.unlink(missing_ok=True)  # as the local job: no errors, no error file
            if keep_empty:
                self.path.write_bytes(b"")
            return
        self.fh.close()
        os.replace(self.fh.name, self.path)

    def abort(self) -> None:
        if self.fh is not None:
            self.fh.close()
            with contextlib.suppress(OSError):
                os.unlink(self.fh.name)


def merge_ray_output(
    out_dir: str,
    out: _Path | IO[bytes],
    errors: _Path | IO[bytes] | None = None,
    *,
    memory_mb: float = 512,
) -> MergeSummary:
    """Write the output of a Ray run (``out_dir``) as the local ``extract`` would have: results
    in input order to ``out`` (a path, ``-`` or a binary stream), error records to ``errors``
    (None: only counted); a later line whose id an earlier line has is rejected with the local
    job's reason. With several input files, error records also name their ``file``.
    ValueError when the run is incomplete (a line without its row, a file not read to its end)
    or two different rows claim one line. Files are written under a temporary name and
    renamed at the end: a failed merge leaves nothing half-written."""
    from ..corpus import is_dash
    from ..distributed import read_run

    fs, parts, manifest = read_run(out_dir)
    names: list[str] = manifest["files"]
    dests = [Path(d) for d in (out, errors) if d is not None and not hasattr(d, "write")]
    dests = [d for d in dests if not is_dash(d)]
    if len(dests) == 2 and dests[0].resolve() == dests[1].resolve():
        raise ValueError("the error file must differ from OUT")
    run_root = Path(out_dir).resolve() if "://" not in str(out_dir) else None
    inputs = [Path(n) for n in names if "://" not in n]
    for d in dests:  # never write over the corpus or into the run being merged
        r = d.resolve()
        if any(r == i.resolve() or (d.exists() and i.exists() and d.samefile(i)) for i in inputs):
            raise ValueError(f"{d} is an input of the run; refusing to overwrite it")
        if run_root is not None and (r == run_root or run_root in r.parents):
            raise ValueError(f"{d} is inside the run directory {out_dir}; write it elsewhere")
    s = MergeSummary(files=len(names))
    o, e = _Output(sys.stdout.buffer if is_dash(out) else out), _Output(errors)
    tmp = tempfile.mkdtemp(prefix="docunet-merge-")
    try:
        _merge_rows(_sorted_rows(_scan(fs, parts), int(memory_mb * 2**20), tmp), names, o, e, s)
        o.finish(keep_empty=True)
        e.finish(keep_empty=False)
    except BaseException:
        o.abort()
        e.abort()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return s


def _merge_rows(
    rows: Iterable[_Row], names: list[str], o: _Output, e: _Output, s: MergeSummary
) -> None:
    from ..runtime.results import ErrorRecord

    seen: set[str] = set()
    expected: dict[int, int] = {}  # file -> lines read (from its eof row)
    got: dict[int, int] = {}
    prev: _Row | None = None
    for row in rows:
        file, line, kind, data = row
        if prev is not None and prev[:2] == (file, line):
            if row != prev:
                raise ValueError(f"{names[file]} line {line}: two different rows in the output")
            s.replayed_rows += 1
            continue
        prev = row
        if not 0 <= file < len(names):
            raise ValueError(f"a row names input file #{file}, which the manifest does not list")
        if kind == "eof":
            expected[file] = orjson.loads(data)["records"]
            continue
        got[file] = got.get(file, 0) + 1
        s.lines += 1
        if kind in ("result", "failed"):  # parsed documents: the local job's duplicate rule
            doc_id = _doc_id(kind, data)
            if doc_id in seen:
                why = f"duplicate id {doc_id!r} (an earlier line has it)"
                kind, data = "error", orjson.dumps(ErrorRecord(line, doc_id, why).to_dict())
                s.duplicate_ids += 1
            else:
                seen.add(doc_id)
        if kind == "result":
            o.write(data + b"\n")
            s.docs += 1
            continue
        if len(names) > 1:
            data = orjson.dumps({**orjson.loads(data), "file": names[file]})
        e.write(data + b"\n")
        s.errors += 1
    for i, name in enumerate(names):
        if i not in expected:
            raise ValueError(f"{name}: the run has no end-of-file row for it (not read to its end)")
        if got.get(i, 0) != expected[i]:
            raise ValueError(
                f"{name}: {expected[i]} lines were read but {got.get(i, 0)} have a row (lost output)"
            )


def merge(
    out_dir: str = typer.Argument(
        ..., metavar="OUT_DIR", help="The output of docunet-rt extract --engine ray."
    ),
    out: str = typer.Option(
        ..., "--out", "-o", help="Output JSONL, one line per document (- for stdout)."
    ),
    errors: Path | None = typer.Option(
        None,
        "--errors",
        help="Error records file (default OUT.errors.jsonl; stderr when OUT is -).",
    ),
    memory_mb: int = typer.Option(
        512, "--memory-mb", min=16, help="Rows sorted in memory at a time; more spill to disk."
    ),
    verbose: bool = flag(False, "--verbose", "-v"),
) -> None:
    """Write the results in OUT_DIR in input order into OUT, as the local extract writes them.

    A later line with an id that an earlier line has becomes an error record, as there.

    Exit codes: 0 every line extracted; 3 some lines rejected (see the error records);
    1 the run is incomplete, or OUT_DIR is not the output of extract --engine ray.
    """
    setup_logging(verbose)
    err_dest: Any = errors
    if errors is None:
        err_dest = sys.stderr.buffer if out == "-" else Path(out + ".errors.jsonl")
    try:
        s = merge_ray_output(out_dir, out, err_dest, memory_mb=memory_mb)
    except (ValueError, OSError, ImportError) as e:
        fail(str(e))
    where = f" (records in {err_dest})" if s.errors and isinstance(err_dest, Path) else ""
    console.print(
        f"{s.docs} docs, {s.errors} errors{where} ({s.duplicate_ids} duplicate ids) from "
        f"{s.lines} lines of {s.files} file(s)",
        highlight=False,
        soft_wrap=True,
    )
    if s.errors:
        raise typer.Exit(EXIT_REJECTED)


def register(app: typer.Typer) -> None:
    """Add ``merge`` to the ``docunet-rt`` app."""
    app.command("merge")(merge)
