"""``docunet-rt extract``: batch relation extraction over a JSONL corpus (ONNX Runtime, no torch).

Importing this module imports typer/click only; the runtime loads when the command runs.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from ..options import (
    DEFAULT_MAX_DOC_TOKENS,
    DEFAULT_MAX_ENTITIES,
    DEFAULT_MAX_HEAD_MB,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MIN_SCORE,
    DEVICES,
    GPU_DEFAULT_MAX_TOKENS,
    PRECISIONS,
    ExtractOptions,
    parse_list,
)
from .common import (
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


def extract(
    corpus: str = typer.Argument(..., help="Input: .jsonl, .jsonl.gz, or - for stdin."),
    out: str = typer.Option(
        ..., "--out", "-o", help="Output JSONL, one line per document (- for stdout)."
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
    min_score: float = typer.Option(
        DEFAULT_MIN_SCORE, "--min-score", help="Keep triples with score > X, 0 < X < 1."
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
    verbose: bool = flag(False, "--verbose", "-v"),
) -> None:
    """Extract relation triples from every document of CORPUS into OUT (input order kept).

    Exit codes: 0 all lines extracted; 3 some lines rejected (see the error records); 2 usage
    error; 1 fatal error (model, corpus, relation ids, device).
    """
    if max_tokens is not None and batch_size is not None:
        raise typer.BadParameter(
            "use either --max-tokens or --batch-size, not both", param_hint="--max-tokens"
        )
    if resume and out == "-":
        raise typer.BadParameter("--resume needs OUT to be a file, not -", param_hint="--resume")
    given = dict(min_score=min_score, top_k=top_k, relations=parse_list(relations),
                 max_tokens=max_tokens, batch_size=batch_size, max_record_bytes=max_record_bytes,
                 max_doc_tokens=max_doc_tokens, max_entities=max_entities,
                 max_head_mb=max_head_mb)  # fmt: skip
    try:  # the one validation of the options (ExtractOptions.__post_init__)
        options = ExtractOptions(**{k: v for k, v in given.items() if v is not None})
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    setup_logging(verbose)
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


def register(app: typer.Typer) -> None:
    """Add ``extract`` to the ``docunet-rt`` app."""
    app.command("extract")(extract)
