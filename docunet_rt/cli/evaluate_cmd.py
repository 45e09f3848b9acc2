"""``docunet-rt evaluate`` and ``predict``: score or run a checkpoint or MODEL_DIR."""

from __future__ import annotations

from pathlib import Path

import typer

from ..options import FORMATS, PRECISIONS
from .common import choice, console, run_guarded, setup_logging


def evaluate(
    model_dir: Path = typer.Argument(..., help="Checkpoint (CKPT_DIR) or exported MODEL_DIR."),
    data: Path = typer.Option(..., "--data", help="Labelled file to score."),
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
    threads: int | None = typer.Option(None, "--threads", min=1),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Score a checkpoint or an exported model (DocRED P/R/F1/Ign F1, or CDR/GDA candidate F1)."""
    setup_logging(verbose)
    import json

    from rich.console import Console
    from rich.table import Table

    from ..evaluate import evaluate_path

    result = run_guarded(
        evaluate_path, model_dir, data, train_file=train_facts, fmt=format, precision=precision,
        threads=threads,
    )  # fmt: skip
    table = Table(title=f"{data.name} — {model_dir}")
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
    data: Path = typer.Option(..., "--data", help="Documents to predict (DocRED JSON/JSONL)."),
    out: Path = typer.Option(..., "--out", "-o", help="Result file (DocRED official format)."),
    format: str = typer.Option(
        "auto", "--format", callback=choice("format", FORMATS), help="|".join(FORMATS)
    ),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        callback=choice("precision", PRECISIONS),
        help="|".join(PRECISIONS) + " (exported MODEL_DIR only)",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Write predictions in the DocRED official result format (title, h_idx, t_idx, r)."""
    setup_logging(verbose)
    from ..evaluate import predict_path

    n = run_guarded(predict_path, model_dir, data, out, fmt=format, precision=precision)
    console.print(f"wrote {n} predicted relations to {out}")


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``predict`` to the ``docunet-rt`` app."""
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
