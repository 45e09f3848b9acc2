"""``docunet-rt evaluate`` and ``predict``: score or run a checkpoint or MODEL_DIR."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..options import FORMATS, PRECISIONS
from .common import choice, console, fail, flag, run_guarded, setup_logging

T = TypeVar("T")


def needs_extra(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(...)``, with a missing dependency (torch for a checkpoint) said as one line naming
    the pip command (wrap it in ``run_guarded`` for the other expected errors)."""
    try:
        return fn(*args, **kwargs)
    except ImportError as e:
        fail(str(e))


@contextmanager
def progress_bar(what: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a Rich bar of documents done; on a terminal
    only (the bar is removed when the run ends)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("documents"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        disable=not console.is_terminal, transient=True,
    )  # fmt: skip
    task = bar.add_task(what, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def evaluate(
    model_dir: Path = typer.Argument(..., help="Checkpoint (CKPT_DIR) or exported MODEL_DIR."),
    data: Path = typer.Option(
        ..., "--data", help="Labelled file to score (any supported format, plain or gzip)."
    ),
    train_facts: Path | None = typer.Option(
        None, "--train-facts", help="Training file for Ign F1."
    ),
    format: str = typer.Option(
        "auto", "--format", callback=choice("format", FORMATS), help="|".join(FORMATS)
    ),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        callback=choice("precision", PRECISIONS),
        help="|".join(PRECISIONS) + " (exported MODEL_DIR only)",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the scores as JSON here."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads."),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Score a checkpoint or an exported model (DocRED P/R/F1/Ign F1, or CDR/GDA candidate F1).

    The data's relation ids must all be in the model's label set (exit 1 otherwise).
    """
    setup_logging(verbose)
    import json

    from rich.console import Console
    from rich.table import Table

    from ..evaluate import evaluate_path

    with progress_bar("evaluate") as on_progress:
        result = run_guarded(
            needs_extra, evaluate_path, model_dir, data, train_file=train_facts, fmt=format,
            precision=precision, threads=threads, progress=on_progress,
        )  # fmt: skip
    title = f"{data.name} — {model_dir}"
    if result.get("decision_threshold"):
        title += f" (decision threshold {result['decision_threshold']:+.1f}, tuned on dev)"
    table = Table(title=title)
    for col in ("", "precision", "recall", "F1", "Ign F1", "pred", "gold"):
        table.add_column(col, justify="right")
    s = result["scores"]
    ign = f"{s['ign_f1']:.4f}" if s.get("ign_f1") is not None else "-"
    table.add_row("all", f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}", ign, str(s["predicted"]), str(s["gold"]))  # fmt: skip
    for name, b in (s.get("breakdown") or {}).items():
        table.add_row(name, f"{b['precision']:.4f}", f"{b['recall']:.4f}", f"{b['f1']:.4f}", "-", str(b["predicted"]), str(b["gold"]))  # fmt: skip
    Console().print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2))


def predict(
    model_dir: Path = typer.Argument(..., help="Checkpoint (CKPT_DIR) or exported MODEL_DIR."),
    data: Path = typer.Option(
        ...,
        "--data",
        help="Documents to predict (DocRED JSON/JSONL, CDR .data, PubTator; plain or gzip).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Result file to write: a JSON list of {title, h_idx, t_idx, r, evidence} "
        "(the DocRED official result format).",
    ),
    format: str = typer.Option(
        "auto",
        "--format",
        callback=choice("format", FORMATS),
        help="Input format: " + "|".join(FORMATS) + " (auto: detected from the content).",
    ),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        callback=choice("precision", PRECISIONS),
        help="Graph variant: " + "|".join(PRECISIONS) + " (exported MODEL_DIR only).",
    ),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Write predictions in the DocRED official result format (title, h_idx, t_idx, r)."""
    setup_logging(verbose)
    from ..evaluate import predict_path

    with progress_bar("predict") as on_progress:
        n = run_guarded(
            needs_extra, predict_path, model_dir, data, out, fmt=format, precision=precision,
            progress=on_progress,
        )  # fmt: skip
    console.print(f"wrote {n} predicted relations to {out}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``predict`` to the ``docunet-rt`` app."""
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
