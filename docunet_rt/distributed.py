"""Extraction on Ray Data (``docunet-rt extract --engine ray``): the local job's pipeline and
output, spread over a cluster; ``docunet-rt merge`` (``cli/merge_cmd.py``) turns what it wrote
back into the local job's OUT and error file, byte for byte.

    input files ──_LinesDatasource──▶ rows (file, line, kind, raw, size)     Ray read tasks
      (paths, dirs, globs, URIs)      corpus.LineReader: the local job's line numbers, BOM,
                                      CRLF, blank lines, gzip, JSON lists, over-long lines
                ──map_batches(_ExtractActor, ActorPoolStrategy(size=N))──▶  one Extractor per
                                      actor, ``Extractor.extract_records``: the runtime's
                                      records-level entry point, as the local job
                ──write_parquet──▶ OUT_DIR/results/*.parquet  rows (file, line, kind, json, n);
                                      OUT_DIR/docunet_ray.json: the input files in order, the
                                      options, the counts, ``complete``
    merge:      rows sorted by (file, line) (an external merge sort: bounded memory)
                ──▶ the duplicate-id rule ──▶ OUT (results) and the errors file

``file`` is the input's index in the manifest's ``files``; ``line`` its 1-based line number as
the local job counts it. ``kind``: ``result`` (``json`` is the line the local job writes,
without its newline; ``n`` its triples), ``error`` (an error record ``{"line", "id",
"error"}``), ``failed`` (the error record of a document that parsed but that the model failed
on: its id counts as seen, as in the local job) and ``eof`` (line 0 of each file: ``{"records":
N}``, the non-blank lines read from it, which lets ``merge`` prove that every line has exactly
one row).

Duplicate ids are rejected by ``merge``, which sees the whole ordered stream, as the local job
rejects them. Fault tolerance is Ray's: read and write tasks are retried, and the actor pool
restarts a dead actor (``max_restarts=-1``) and retries its in-flight batch
(``max_task_retries=-1``: Ray Data's defaults for actor pools); a batch's rows are written only
once its task has returned, and ``merge`` drops identical rows of a replayed task and refuses
two different rows for one line.

Ray and pyarrow are imported lazily: without them this module imports, and what needs them
raises ImportError with the install command.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import io
import logging
import os
import posixpath
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

import orjson

from .corpus import LineReader, TooLarge, as_jsonl, is_dash, open_corpus
from .options import ExtractOptions
from .runtime.results import ErrorRecord

__all__ = [
    "MANIFEST",
    "RAY_INSTALL",
    "ModelFactory",
    "RaySummary",
    "extract_rows",
    "import_ray",
    "pyarrow_module",
    "read_run",
    "resolve_inputs",
    "run_ray_extraction",
]

logger = logging.getLogger("docunet_rt")

RAY_INSTALL = "pip install 'docunet-rt[ray]'"
MANIFEST = "docunet_ray.json"  # in OUT_DIR, next to results/
RESULTS = "results"
FORMAT_VERSION = 1
BLOCK_LINES = 1024  # lines per block read
BLOCK_BYTES = 8 << 20  # ... or fewer, once their bytes reach this
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?\[]")
_Path = str | os.PathLike


def import_ray() -> Any:
    """``ray`` with Ray Data, or ImportError with the install command."""
    try:
        import ray
        import ray.data  # noqa: F401 - ray without the [data] extra has no pyarrow
    except ImportError as e:
        raise ImportError(f"the Ray engine needs Ray Data ({e}); install it: {RAY_INSTALL}") from e
    return ray


def error_message(e: BaseException) -> str:
    """One line for the error behind a Ray failure: the original exception of a task or of an
    actor's constructor, without the traceback and the notes Ray adds to its message."""
    seen = set()
    while id(e) not in seen:
        seen.add(id(e))
        inner = [getattr(e, "cause", None), *getattr(e, "args", ()), e.__cause__]
        nxt = next((x for x in inner if isinstance(x, BaseException)), None)
        if nxt is None:
            break
        e = nxt
    lines = [x for x in str(e).strip().splitlines() if x.strip()]
    if type(e).__module__.startswith("ray.") and lines:  # a traceback: its last line
        return lines[-1].strip()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def pyarrow_module() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.fs  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as e:
        raise ImportError(f"reading Ray output needs pyarrow ({e}); install: {RAY_INSTALL}") from e
    return pa


# ------------------------------------------------------------------------------------------------
# Inputs and output directories
# ------------------------------------------------------------------------------------------------


def _is_uri(path: str) -> bool:
    return bool(_SCHEME.match(path))


def _fs(path: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path in it) for a local path or a URI (s3://, gs://, file://, …)."""
    pa = pyarrow_module()
    if _is_uri(path):
        return pa.fs.FileSystem.from_uri(path)
    return pa.fs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def _visible(rel: str) -> bool:
    """No hidden or ``_``-prefixed part (``.git``, ``_SUCCESS``…), as Ray Data lists folders."""
    return not any(part.startswith((".", "_")) for part in rel.split("/") if part)


def resolve_inputs(corpus: _Path | Sequence[_Path]) -> list[str]:
    """The input files, in input order: each argument in turn; a directory gives its files
    (recursively, hidden and ``_`` files skipped) and a glob its matches, in sorted path order.
    Local paths become absolute; URIs (``s3://``, ``gs://``, ``file://``…) are listed through
    pyarrow's filesystems, as Ray Data reads them."""
    items = [corpus] if isinstance(corpus, str | os.PathLike) else list(corpus)
    if not items:
        raise ValueError("no input given")
    files: list[str] = []
    for item in map(os.fspath, items):
        if is_dash(item):
            raise ValueError("--engine ray reads files, not stdin (-): give the corpus path(s)")
        found = _expand_uri(item) if _is_uri(item) else _expand_local(item)
        if not found:
            raise FileNotFoundError(f"no input file matches {item}")
        files += found
    seen: set[str] = set()
    for f in files:
        if f in seen:
            raise ValueError(f"input file {f} is given twice (its lines would be read twice)")
        seen.add(f)
    return files


def _expand_local(item: str) -> list[str]:
    path = os.path.expanduser(item)
    if _GLOB.search(path):
        found = [os.path.abspath(p) for p in glob.glob(path, recursive=True)]
        return sorted(p for p in found if os.path.isfile(p))
    if os.path.isdir(path):
        out = []
        for root, dirs, names in os.walk(path):
            dirs[:] = [d for d in dirs if _visible(d)]
            out += [os.path.join(root, n) for n in names if _visible(n)]
        return sorted(os.path.abspath(p) for p in out)
    if not os.path.exists(path):
        raise FileNotFoundError(f"corpus {item} does not exist")
    return [os.path.abspath(path)]


def _expand_uri(item: str) -> list[str]:
    """A file, a folder (its files) or a glob in the last parts of a URI."""
    pa = pyarrow_module()
    glob_at = _GLOB.search(item)
    root_uri = item if glob_at is None else item[: item.rfind("/", 0, glob_at.start())]
    fs, root = pa.fs.FileSystem.from_uri(root_uri)
    info = fs.get_file_info(root)
    if glob_at is None and info.type == pa.fs.FileType.File:
        return [item]
    if info.type != pa.fs.FileType.Directory:
        raise FileNotFoundError(f"corpus {item} does not exist")
    found = []
    for i in fs.get_file_info(pa.fs.FileSelector(root, recursive=True)):
        rel = i.path[len(root) :]  # "/a/b.jsonl" below the root
        if i.type != pa.fs.FileType.File or not _visible(rel):
            continue
        if glob_at is None or fnmatch.fnmatchcase(rel, item[len(root_uri) :]):
            found.append(root_uri.rstrip("/") + "/" + rel.lstrip("/"))
    return sorted(found)


def _key(path: str) -> str:
    """A file's path as Ray Data reports it: no scheme, normalized."""
    return posixpath.normpath(_SCHEME.sub("", path).replace(os.sep, "/")).lstrip("/")


def _prepare_out_dir(out_dir: str) -> tuple[Any, str]:
    """(filesystem, path) of OUT_DIR, created; ValueError when it is not empty (a second run
    would add its rows to the first one's)."""
    pa = pyarrow_module()
    fs, path = _fs(out_dir)
    info = fs.get_file_info(path)
    if info.type == pa.fs.FileType.File:
        raise ValueError(f"OUT_DIR {out_dir} is a file; --engine ray writes a directory")
    if info.type == pa.fs.FileType.Directory:
        if fs.get_file_info(pa.fs.FileSelector(path, recursive=False)):
            raise ValueError(
                f"OUT_DIR {out_dir} is not empty; choose a new directory (or remove it): a Ray "
                "run writes a dataset of many files there"
            )
    fs.create_dir(path, recursive=True)
    return fs, path


def _write_json(fs: Any, path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    fs.move(tmp, path)


def read_run(out_dir: str) -> tuple[Any, list[str], dict[str, Any]]:
    """(filesystem, result files, manifest) of a finished Ray run's OUT_DIR; ValueError when it
    is not one or did not finish."""
    fs, path = _fs(out_dir)
    try:
        with fs.open_input_stream(posixpath.join(path, MANIFEST)) as fh:
            manifest = orjson.loads(fh.read())
    except (FileNotFoundError, OSError, orjson.JSONDecodeError) as e:
        raise ValueError(
            f"{out_dir} has no readable {MANIFEST} ({e}): not written by docunet-rt extract "
            "--engine ray"
        ) from None
    if manifest.get("version") != FORMAT_VERSION:
        raise ValueError(f"{out_dir}: unsupported {MANIFEST} version {manifest.get('version')!r}")
    if not manifest.get("complete"):
        raise ValueError(f"{out_dir}: the Ray run did not finish (see {MANIFEST}); rerun it")
    return fs, _parquet_files(fs, posixpath.join(path, RESULTS)), manifest


# ------------------------------------------------------------------------------------------------
# Reading: lines with their numbers, as the local job reads them
# ------------------------------------------------------------------------------------------------


class _ArrowRaw(io.RawIOBase):
    """A pyarrow input stream as a raw Python stream (for BufferedReader, gzip, LineReader)."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.f.read(len(b))
        b[: len(data)] = data
        return len(data)


def _input_table(rows: dict[str, list[Any]]) -> Any:
    pa = pyarrow_module()
    return pa.table(
        {
            "file": pa.array(rows["file"], pa.int32()),
            "line": pa.array(rows["line"], pa.int64()),
            "kind": pa.array(rows["kind"], pa.string()),
            "raw": pa.array(rows["raw"], pa.binary()),
            "size": pa.array(rows["size"], pa.int64()),
        }
    )


def read_lines(fh: IO[bytes], file: int, source: str, max_bytes: int | None) -> Iterator[Any]:
    """Blocks (pyarrow tables) of ``(file, line, kind, raw, size)`` rows of one input stream:
    ``corpus.LineReader``'s lines (kind ``line``, or ``too_large`` with its size), then one
    ``eof`` row (line 0, size = the number of lines). The blocks are the same on every read."""
    reader = LineReader(as_jsonl(open_corpus(fh), source), source, max_bytes)
    rows: dict[str, list[Any]] = {k: [] for k in ("file", "line", "kind", "raw", "size")}
    n = held = 0

    def add(line: int, kind: str, raw: bytes, size: int) -> None:
        for k, v in zip(rows, (file, line, kind, raw, size), strict=True):
            rows[k].append(v)

    for line, raw in reader:
        n += 1
        if isinstance(raw, TooLarge):
            add(line, "too_large", b"", int(raw))
        else:
            add(line, "line", raw, len(raw))
            held += len(raw)
        if len(rows["line"]) >= BLOCK_LINES or held >= BLOCK_BYTES:
            yield _input_table(rows)
            rows = {k: [] for k in rows}
            held = 0
    add(0, "eof", b"", n)
    yield _input_table(rows)


@functools.cache
def _datasource_class() -> type:
    from ray.data.datasource import FileBasedDatasource

    class _LinesDatasource(FileBasedDatasource):
        """Each input file streamed through ``read_lines`` (one file per read, never split)."""

        def __init__(self, files: list[str], max_bytes: int | None, **kw: Any) -> None:
            super().__init__(files, **kw)
            self._names = list(files)
            self._index = {_key(f): i for i, f in enumerate(files)}
            self._max_bytes = max_bytes

        def _file_index(self, path: str) -> int:
            k = _key(path)
            if k in self._index:
                return self._index[k]
            near = [i for kk, i in self._index.items() if kk.endswith(k) or k.endswith(kk)]
            if len(near) != 1:
                raise ValueError(f"Ray read {path}, which is not one of the input files")
            return near[0]

        def _read_stream(self, f: Any, path: str) -> Iterator[Any]:
            i = self._file_index(path)
            fh = io.BufferedReader(_ArrowRaw(f), 1 << 20)
            yield from read_lines(fh, i, self._names[i], self._max_bytes)  # type: ignore[arg-type]

    return _LinesDatasource


# ------------------------------------------------------------------------------------------------
# Extraction: the runtime's records-level entry point, one Extractor per actor
# ------------------------------------------------------------------------------------------------


def extract_rows(extractor: Any, options: ExtractOptions, batch: Any) -> Any:
    """Output rows ``(file, line, kind, json, n)`` of a batch of input rows (a pyarrow table)
    through ``extractor.extract_records``: ``json`` is the line the local job writes for it
    (without the newline); ``n`` the triples of a result, the lines read for an ``eof`` row."""
    pa = pyarrow_module()
    cols = batch.select(["file", "line", "kind", "raw", "size"]).to_pydict()
    kinds: list[str] = list(cols["kind"])
    data: list[bytes] = [b""] * len(kinds)
    n = [0] * len(kinds)
    records, where = [], []
    for i, kind in enumerate(kinds):
        if kind == "eof":
            n[i] = cols["size"][i]
            data[i] = orjson.dumps({"records": n[i]})
            continue
        raw = TooLarge(cols["size"][i]) if kind == "too_large" else cols["raw"][i]
        records.append((cols["line"][i], raw))
        where.append(i)
    results = extractor.extract_records(records, options)
    for i, res in zip(where, results, strict=True):
        data[i] = orjson.dumps(res.to_dict())
        if isinstance(res, ErrorRecord):
            kinds[i] = "failed" if res.stage == "model" else "error"
        else:
            kinds[i], n[i] = "result", len(res.triples)
    return pa.table(
        {
            "file": pa.array(cols["file"], pa.int32()),
            "line": pa.array(cols["line"], pa.int64()),
            "kind": pa.array(kinds, pa.string()),
            "json": pa.array(data, pa.binary()),
            "n": pa.array(n, pa.int64()),
        }
    )


class _ExtractActor:
    """One Extractor per Ray actor, built by a picklable factory (model loaded once)."""

    def __init__(self, factory: Callable[[], Any], options: ExtractOptions) -> None:
        self.extractor = factory()
        self.options = options
        self.extractor.decoder(options)  # unknown relation ids fail here, not per batch

    def __call__(self, batch: Any) -> Any:
        return extract_rows(self.extractor, self.options, batch)


@dataclass(frozen=True)
class ModelFactory:
    """Builds the runtime ``Extractor`` of an exported MODEL_DIR in each actor (picklable).
    MODEL_DIR must be readable at this path on every node."""

    model_dir: str
    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = 1

    def __call__(self) -> Any:
        from .runtime import Extractor

        return Extractor(
            self.model_dir, device=self.device, precision=self.precision, threads=self.threads
        )

    def check(self, options: ExtractOptions) -> ExtractOptions:
        """What can be checked without loading the graphs, on the driver: the MODEL_DIR, the
        precision variant and the relation ids (the runtime's own checks and messages).
        Returns ``options`` resolved against the model (min_score: the model's threshold)."""
        from .runtime import Extractor, ModelSpec

        spec = ModelSpec.load(self.model_dir)
        spec.graph_files(self.precision)
        # an Extractor holding only the config: decoder() and resolve_options() read nothing else
        ex = Extractor.from_backend(None, spec.config, None)  # type: ignore[arg-type]
        ex.decoder(options)
        return ex.resolve_options(options)


@dataclass
class RaySummary:
    out_dir: str
    files: int = 0  # input files
    lines: int = 0  # non-blank input lines (one output row each)
    docs: int = 0  # result rows (before merge's duplicate-id rule)
    triples: int = 0
    errors: int = 0  # error rows (before merge's duplicate-id rule)
    actors: int = 0
    seconds: float = 0.0  # the dataset's execution (actor start-up included), not ray.init
    docs_per_s: float = 0.0


def default_actors(resources: dict[str, float], cpus: float, gpus: float | None) -> int:
    """Actors that fit the cluster: one per ``gpus`` GPUs, else one per ``cpus`` CPUs with one
    CPU left to the read and write tasks."""
    if gpus:
        return max(1, int(resources.get("GPU", 0) // gpus))
    return max(1, int((resources.get("CPU", 1) - 1) // cpus))


def check_fits(resources: dict[str, float], actors: int, cpus: float, gpus: float | None) -> None:
    """ValueError when the actor pool cannot start on the cluster, or would take the CPU that
    Ray Data's read and write tasks need (either way the run would wait forever)."""
    have_cpu, have_gpu = resources.get("CPU", 0), resources.get("GPU", 0)
    if actors * cpus > have_cpu - 1:
        fit = int((have_cpu - 1) // cpus) if cpus else 0
        raise ValueError(
            f"{actors} actor(s) x {cpus:g} CPU do not fit this Ray cluster's {have_cpu:g} CPUs "
            f"with one left for reading and writing: use --actors {fit} or fewer, or fewer "
            "--threads per actor"
        )
    if gpus and actors * gpus > have_gpu:
        raise ValueError(
            f"{actors} actor(s) x {gpus:g} GPU need {actors * gpus:g} GPUs; this Ray cluster "
            f"has {have_gpu:g}"
        )


def run_ray_extraction(
    corpus: _Path | Sequence[_Path],
    out_dir: str,
    factory: Callable[[], Any],
    options: ExtractOptions | None = None,
    *,
    actors: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    batch_docs: int | None = None,
    address: str | None = None,
    ray_init: dict[str, Any] | None = None,
) -> RaySummary:
    """Extract every line of ``corpus`` (files, directories, globs or URIs) on Ray Data into
    ``out_dir`` (a new or empty directory); ``cli.merge_cmd.merge_ray_output`` turns that into
    the local job's OUT and error file. ``factory()`` builds the extractor in each actor
    (``ModelFactory``, or any picklable callable); ``actors``: the pool size (default: what
    the cluster fits); ``num_cpus``/``num_gpus``: per actor (default 1 CPU); ``batch_docs``:
    lines per actor call (default ``options.sort_window``). Uses the running Ray instance,
    else ``ray.init(address, **ray_init)``, shut down at the end."""
    options = options or ExtractOptions()
    cpus = 1.0 if num_cpus is None else num_cpus
    for name, v in (("actors", actors), ("batch_docs", batch_docs)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if cpus < 0 or (num_gpus is not None and num_gpus <= 0):
        raise ValueError(f"num_cpus must be >= 0 and num_gpus > 0, got {num_cpus}, {num_gpus}")
    ray = import_ray()
    files = resolve_inputs(corpus)
    if callable(check := getattr(factory, "check", None)):
        # the model and relation ids, before anything is written; options as they will run
        options = check(options) or options
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, **(ray_init or {}))
    try:
        resources = ray.cluster_resources()
        n = actors or default_actors(resources, cpus, num_gpus)
        check_fits(resources, n, cpus, num_gpus)
        fs, path = _prepare_out_dir(out_dir)
        manifest: dict[str, Any] = {
            "version": FORMAT_VERSION, "complete": False, "files": files,
            "options": options.to_dict(), "factory": repr(factory),
        }  # fmt: skip
        _write_json(fs, posixpath.join(path, MANIFEST), manifest)
        logger.info("Ray: %d input file(s), %d actor(s) -> %s", len(files), n, out_dir)
        ds = ray.data.read_datasource(_datasource_class()(files, options.max_record_bytes))
        ds = ds.map_batches(
            _ExtractActor,
            fn_constructor_args=(factory, options),
            compute=ray.data.ActorPoolStrategy(size=n),
            batch_size=batch_docs or options.sort_window,
            batch_format="pyarrow",
            num_cpus=cpus,
            num_gpus=num_gpus,
        )
        t0 = time.perf_counter()
        ds.write_parquet(posixpath.join(out_dir if _is_uri(out_dir) else path, RESULTS))
        seconds = time.perf_counter() - t0
    finally:
        if started:
            ray.shutdown()
    s = _count(fs, posixpath.join(path, RESULTS), out_dir)
    s.actors, s.files, s.seconds = n, len(files), seconds
    s.docs_per_s = s.docs / max(seconds, 1e-9)
    manifest.update(complete=True, summary=asdict(s))
    _write_json(fs, posixpath.join(path, MANIFEST), manifest)
    return s


def _count(fs: Any, results: str, out_dir: str) -> RaySummary:
    """The counts of what was written, and a check that every line read has its row."""
    pa = pyarrow_module()
    s = RaySummary(out_dir)
    records = 0
    tables = [pa.parquet.read_table(f, columns=["file", "line", "kind", "n"], filesystem=fs)
              for f in _parquet_files(fs, results)]  # fmt: skip
    if tables:  # a retried batch may have written its rows twice: count each line once
        rows = pa.concat_tables(tables).group_by(["file", "line", "kind"]).aggregate([("n", "max")])
        tables = [pa.table({"kind": rows["kind"], "n": rows["n_max"]})]
    for t in tables:
        for row in t.group_by("kind").aggregate([("n", "sum"), ("n", "count")]).to_pylist():
            kind, total, count = row["kind"], row["n_sum"] or 0, row["n_count"]
            if kind == "eof":
                records += total
                continue
            s.lines += count
            if kind == "result":
                s.docs, s.triples = s.docs + count, s.triples + total
            else:
                s.errors += count
    if records != s.lines:
        raise ValueError(f"{out_dir}: {records} lines were read but {s.lines} rows written")
    return s


def _parquet_files(fs: Any, results: str) -> list[str]:
    pa = pyarrow_module()
    listing = fs.get_file_info(pa.fs.FileSelector(results, recursive=True, allow_not_found=True))
    return sorted(
        i.path for i in listing if i.path.endswith(".parquet") and _visible(i.path[len(results) :])
    )
