"""``docunet-rt extract``: batch relation extraction over a JSONL corpus (ONNX Runtime, no torch).

Importing this module imports typer/click only; the runtime loads when the command runs.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ..options import (
    DEFAULT_MAX_DOC_TOKENS,
    DEFAULT_MAX_ENTITIES,
    DEFAULT_MAX_HEAD_MB,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_TOKENS,
    DEVICES,
    ENTITY_MODES,
    GPU_DEFAULT_MAX_TOKENS,
    OUTPUT_FORMATS,
    PRECISIONS,
    ExtractOptions,
    parse_list,
)
from .common import (
    EXIT_FATAL,
    EXIT_INTERRUPTED,
    EXIT_REJECTED,
    EXIT_USAGE,
    choice,
    console,
    fail,
    flag,
    setup_logging,
)


def count_lines(corpus: str) -> int | None:
    """Lines in a plain (uncompressed) corpus file, for an ETA; None for stdin or gzip."""
    if corpus == "-":
        return None
    try:
        with open(corpus, "rb") as fh:
            if fh.read(2) == b"\x1f\x8b":
                return None
            fh.seek(0)
            n, last = 0, b"\n"
            for block in iter(lambda: fh.read(1 << 20), b""):
                n, last = n + block.count(b"\n"), block[-1:]
            return n + (last != b"\n")
    except OSError:
        return None


def load_extractor(model: Path, device: str, precision: str, threads: int | None) -> Any:
    """The runtime Extractor for MODEL_DIR (tests replace this to run the command on a stub)."""
    from ..runtime import Extractor

    return Extractor(model, device=device, precision=precision, threads=threads)


ENGINES = ("local", "ray")


def ray_factory(model: Path, device: str, precision: str, threads: int | None) -> Callable[[], Any]:
    """The picklable extractor factory each Ray actor calls (tests replace this with a stub)."""
    from ..distributed import ModelFactory

    return ModelFactory(str(Path(model).resolve()), device, precision, threads)


def extract(
    corpora: list[str] = typer.Argument(
        ...,
        metavar="CORPUS",
        help="Input: .jsonl, .jsonl.gz, or - for stdin. --engine ray: one or more files, "
        "directories or globs (or URIs: s3://…).",
    ),
    out: str = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output JSONL, one line per document (- for stdout); --engine ray: a new "
        "directory (then: docunet-rt merge OUT_DIR -o triples.jsonl).",
    ),
    model: Path = typer.Option(..., "--model", help="Exported MODEL_DIR (docunet-rt export)."),
    device: str = typer.Option(
        "auto", "--device", callback=choice("device", DEVICES), help="|".join(DEVICES)
    ),
    precision: str = typer.Option(
        "fp32", "--precision", callback=choice("precision", PRECISIONS), help="|".join(PRECISIONS)
    ),
    max_tokens: int | None = typer.Option(
        None,
        "--max-tokens",
        min=1,
        help=f"Padded encoder tokens per batch (default {DEFAULT_MAX_TOKENS} on the CPU, "
        f"{GPU_DEFAULT_MAX_TOKENS} on a GPU).",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Fixed documents per batch instead of a token budget."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="ONNX Runtime intra-op threads."
    ),
    min_score: float | None = typer.Option(
        None,
        "--min-score",
        help="Keep triples with score > X, 0 < X < 1 (default: the model's decision threshold, "
        "0.5 unless train --tune-threshold chose another on dev; model.json records it).",
    ),
    top_k: int | None = typer.Option(
        None, "--top-k", min=1, help="At most K relations per entity pair."
    ),
    relations: str | None = typer.Option(
        None, "--relations", help="Keep only these relation ids: ID,ID,..."
    ),
    max_record_bytes: int | None = typer.Option(
        None,
        "--max-record-bytes",
        min=1,
        help=f"A line over N bytes is an error record, not parsed (default {DEFAULT_MAX_RECORD_BYTES}).",
    ),
    max_doc_tokens: int | None = typer.Option(
        None,
        "--max-doc-tokens",
        min=1,
        help=f"A document over N wordpieces is an error record (default {DEFAULT_MAX_DOC_TOKENS}).",
    ),
    max_entities: int | None = typer.Option(
        None,
        "--max-entities",
        min=1,
        help=f"A document with more entities is an error record (default {DEFAULT_MAX_ENTITIES}).",
    ),
    max_head_mb: int | None = typer.Option(
        None,
        "--max-head-mb",
        min=1,
        help="Estimated head memory per batch; batches are split to fit and a document over it "
        f"is an error record (default {DEFAULT_MAX_HEAD_MB}).",
    ),
    entities: str = typer.Option(
        "given",
        "--entities",
        callback=choice("entities mode", ENTITY_MODES),
        help="Where entities come from: given (the input's), predict (the MODEL_DIR's tagger "
        "finds them in the text), auto (predict where a record gives none).",
    ),
    tagger_max_tokens: int | None = typer.Option(
        None,
        "--tagger-max-tokens",
        min=1,
        help="Padded tokens per entity-tagger run (default: one 512-wordpiece window on the CPU, "
        "the batch budget on a GPU).",
    ),
    output_format: str = typer.Option(
        "jsonl",
        "--output-format",
        callback=choice("output format", OUTPUT_FORMATS),
        help="jsonl (one result per line), or pubtator (BioCreative V format: title/abstract, "
        "mentions with offsets and ids, CID lines; plain-text records).",
    ),
    resume: bool = flag(
        False, "--resume", help="Continue an interrupted run into OUT (uses OUT.progress)."
    ),
    errors: Path | None = typer.Option(
        None,
        "--errors",
        help="Error records file (default OUT.errors.jsonl; stderr when OUT is -).",
    ),
    strict: bool = flag(False, "--strict", help="Stop at the first bad line (exit 3)."),
    workers: int | None = typer.Option(
        None, "--workers", min=0, help="Parse/featurize worker threads (0 = none)."
    ),
    summary: Path | None = typer.Option(
        None,
        "--summary",
        help="Also write the run summary (docs, triples, errors, docs/s, "
        "time to first output) to this JSON file.",
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        callback=choice("engine", ENGINES),
        help="local: this process; ray: Ray Data actors (pip install 'docunet-rt[ray]').",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="--engine ray: the cluster to join (auto, ray://HOST:10001); default: a local one.",
    ),
    actors: int | None = typer.Option(
        None,
        "--actors",
        min=1,
        help="--engine ray: extractor actors (default: one per --threads CPUs, less one CPU; "
        "with --gpus-per-actor: the cluster's GPUs / X).",
    ),
    gpus_per_actor: float | None = typer.Option(
        None, "--gpus-per-actor", min=0.01, help="--engine ray: GPUs reserved by each actor."
    ),
    batch_docs: int | None = typer.Option(
        None,
        "--batch-docs",
        min=1,
        help="--engine ray: lines per actor call (default: the sort window, 256).",
    ),
    verbose: bool = flag(False, "--verbose", "-v"),
) -> None:
    """Extract relation triples from every document of CORPUS into OUT (input order kept).

    --engine ray: the same pipeline on Ray Data actors, into the directory OUT;
    then docunet-rt merge OUT -o FILE writes what the local engine writes.

    Exit codes: 0 all lines extracted; 3 some lines rejected (see the error records); 2 usage
    error; 1 fatal error (model, corpus, relation ids, device).
    """
    if max_tokens is not None and batch_size is not None:
        raise typer.BadParameter(
            "use either --max-tokens or --batch-size, not both", param_hint="--max-tokens"
        )
    if resume and out == "-":
        raise typer.BadParameter("--resume needs OUT to be a file, not -", param_hint="--resume")
    ray_opts = {"--address": address, "--actors": actors, "--gpus-per-actor": gpus_per_actor,
                "--batch-docs": batch_docs}  # fmt: skip
    local_opts = {"--resume": resume or None, "--strict": strict or None, "--errors": errors,
                  "--workers": workers,
                  "--output-format": None if output_format == "jsonl" else output_format}  # fmt: skip
    if engine == "ray":
        if bad := [k for k, v in local_opts.items() if v is not None]:
            raise typer.BadParameter(
                f"{', '.join(bad)}: not with --engine ray (a Ray run writes a new OUT_DIR: rerun "
                "into a new one; errors go to docunet-rt merge OUT_DIR -o OUT --errors FILE)",
                param_hint="--engine",
            )
        if out == "-":
            raise typer.BadParameter("--engine ray writes a directory, not -", param_hint="--out")
    else:
        if bad := [k for k, v in ray_opts.items() if v is not None]:
            raise typer.BadParameter(f"{', '.join(bad)} need --engine ray", param_hint="--engine")
        if len(corpora) != 1:
            raise typer.BadParameter(
                "the local engine reads one corpus (a file or -); several files, directories or "
                "globs need --engine ray",
                param_hint="CORPUS",
            )
    corpus = corpora[0]
    given = dict(min_score=min_score, top_k=top_k, relations=parse_list(relations),
                 max_tokens=max_tokens, batch_size=batch_size, max_record_bytes=max_record_bytes,
                 max_doc_tokens=max_doc_tokens, max_entities=max_entities,
                 max_head_mb=max_head_mb, entities=entities,
                 tagger_max_tokens=tagger_max_tokens)  # fmt: skip
    try:  # the one validation of the options (ExtractOptions.__post_init__)
        options = ExtractOptions(**{k: v for k, v in given.items() if v is not None})
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    setup_logging(verbose)
    if engine == "ray":
        factory = ray_factory(model, device, precision, threads or 1)
        _extract_ray(corpora, out, factory, options, address=address, actors=actors,
                     cpus=threads or 1, gpus=gpus_per_actor, batch_docs=batch_docs,
                     summary=summary)  # fmt: skip
        return
    if corpus != "-" and not Path(corpus).is_file():
        what = "is not a file" if Path(corpus).exists() else "does not exist"
        fail(f"cannot read corpus {corpus}: it {what}")

    from ..data import DataError
    from ..extract import RejectedLine, run_extraction

    try:  # onnxruntime prints provider fallbacks to stdout, which may be OUT
        with contextlib.redirect_stdout(sys.stderr):
            ex = load_extractor(model, device, precision, threads)
    except (DataError, ValueError, OSError, ImportError) as e:
        fail(str(e))
    err_dest: Any = errors
    if errors is None:
        err_dest = sys.stderr.buffer if out == "-" else Path(out + ".errors.jsonl")
    out_dest: Any = sys.stdout.buffer if out == "-" else out

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    # a live bar on the terminal, unless OUT goes to that terminal too
    tty = console.is_terminal and not (out == "-" and sys.stdout.isatty())
    total = count_lines(corpus) if tty else None
    bar = Progress(
        TextColumn("extract"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} lines" if total else "{task.completed} lines"),
        TextColumn("{task.fields[dps]:.1f} docs/s  {task.fields[tps]:.1f} triples/s"),
        TimeRemainingColumn(),
        console=console,
        disable=not tty,
    )
    task = bar.add_task("extract", total=total, dps=0.0, tps=0.0)

    last: list[Any] = []

    def on_progress(s) -> None:
        last[:] = [s]
        bar.update(task, completed=s.lines, dps=s.docs_per_s, tps=s.triples_per_s)

    try:
        with bar:
            s = run_extraction(
                corpus, out_dest, ex, options, errors_path=err_dest, strict=strict,
                resume=resume, workers=workers, progress=on_progress,
                output_format=output_format,
            )  # fmt: skip
    except KeyboardInterrupt:
        done = f"after line {last[0].lines} ({last[0].docs} documents written)" if last else ""
        if out == "-":
            console.print(f"interrupted {done}; output went to stdout, so it cannot be resumed")
        else:
            argv = [a for a in sys.argv[1:] if a != "--resume"]
            again = shlex.join(["docunet-rt", *argv, "--resume"])
            console.print(
                f"interrupted {done}; what is on disk is kept. Resume with: {again}",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except RejectedLine as e:
        console.print(
            f"[bold red]rejected:[/] line {e.line}: {e.reason} (--strict: stopped)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_REJECTED) from None
    except (DataError, ValueError, OSError) as e:
        fail(str(e))
    where = f" (records in {err_dest})" if s.errors and isinstance(err_dest, Path) else ""
    console.print(
        f"{s.docs} docs, {s.triples} triples, {s.errors} errors{where} in {s.seconds:.1f}s "
        f"({s.docs_per_s:.1f} docs/s) on {ex.provider}, {precision}",
        highlight=False,
        soft_wrap=True,
    )
    if summary is not None:
        import dataclasses
        import json

        summary.write_text(json.dumps({**dataclasses.asdict(s), "provider": ex.provider,
                                       "precision": precision}, indent=2))  # fmt: skip
    if s.errors:
        raise typer.Exit(EXIT_REJECTED)


def _extract_ray(
    corpora: list[str],
    out: str,
    factory: Callable[[], Any],
    options: ExtractOptions,
    *,
    address: str | None,
    actors: int | None,
    cpus: int,
    gpus: float | None,
    batch_docs: int | None,
    summary: Path | None,
) -> None:
    """``--engine ray``: the run into OUT_DIR (merge restores the local output from it)."""
    from ..data import DataError
    from ..distributed import error_message, import_ray, run_ray_extraction

    try:
        import_ray()  # the install command, before anything else
        s = run_ray_extraction(
            corpora, out, factory, options, actors=actors, num_cpus=cpus, num_gpus=gpus,
            batch_docs=batch_docs, address=address,
        )  # fmt: skip
    except KeyboardInterrupt:
        console.print(f"interrupted; {out} is incomplete: rerun into a new directory")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as e:  # noqa: BLE001
        if type(e).__module__.startswith("ray."):  # a task's or an actor's error: its cause
            fail(f"the Ray run failed: {error_message(e)}", EXIT_FATAL)
        if isinstance(e, DataError | ValueError | OSError | ImportError):
            fail(str(e))
        raise
    console.print(
        f"{s.lines} lines: {s.docs} docs, {s.triples} triples, {s.errors} errors in "
        f"{s.seconds:.1f}s ({s.docs_per_s:.1f} docs/s) on {s.actors} Ray actor(s) into {out}; "
        f"in input order: docunet-rt merge {shlex.quote(out)} -o triples.jsonl",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    if summary is not None:
        import dataclasses
        import json

        summary.write_text(json.dumps({**dataclasses.asdict(s), "engine": "ray"}, indent=2))
    if s.errors:
        raise typer.Exit(EXIT_REJECTED)


def register(app: typer.Typer) -> None:
    """Add ``extract`` to the ``docunet-rt`` app."""
    app.command("extract")(extract)
