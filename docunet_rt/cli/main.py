"""`docunet-rt` command line: thin Typer layer over the library.

Exit codes (every command): 0 success; 1 fatal error (missing model/data, corrupt files, bad
training record); 2 usage error; 3 (extract) some input lines were rejected.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console

from .. import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="DocuNet document-level relation extraction: train, evaluate, export, extract.",
)
console = Console(stderr=True)
EXIT_FATAL, EXIT_USAGE, EXIT_REJECTED = 1, 2, 3


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    log = logging.getLogger("docunet_rt")
    if not log.handlers:
        log.addHandler(RichHandler(console=console, show_path=False, show_time=False))
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def fail(message: str, code: int = EXIT_FATAL) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_guarded(fn, *args, **kwargs):
    """Turn the library's expected errors into one-line messages and exit codes."""
    from ..data import DataError

    try:
        return fn(*args, **kwargs)
    except (DataError, FileNotFoundError, FileExistsError, ValueError, ImportError) as e:
        fail(str(e))


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"docunet-rt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """docunet-rt command line."""


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------


@app.command()
def train(
    train: Path = typer.Option(
        ..., "--train", help="Training file (DocRED JSON/JSONL, CDR .data, PubTator)."
    ),
    dev: Path = typer.Option(..., "--dev", help="Dev file: the best epoch is selected on it."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint directory to write."),
    test: Path | None = typer.Option(
        None, "--test", help="Test file, scored at each new best epoch (never used to select)."
    ),
    format: str = typer.Option("auto", "--format", help="auto|docred|jsonl|cdr|pubtator"),
    relations: Path | None = typer.Option(
        None,
        "--relations",
        help="JSON relation map pinning the label set (e.g. DocRED rel_info.json).",
    ),
    encoder: str | None = typer.Option(
        None, "--encoder", help="Local Hugging Face encoder directory (default: embedded MiniLM)."
    ),
    epochs: int = typer.Option(8, "--epochs", min=1),
    max_steps: int | None = typer.Option(
        None, "--max-steps", min=1, help="Stop after this many optimizer steps."
    ),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1),
    lr_encoder: float = typer.Option(3e-5, "--lr-encoder"),
    lr_head: float = typer.Option(1e-4, "--lr-head", help="Classifier learning rate."),
    lr_unet: float = typer.Option(
        4e-4, "--lr-unet", help="Feature-map projection and U-Net learning rate."
    ),
    markers: str = typer.Option("star", "--markers", help="star|typed"),
    feature_map: str = typer.Option("context", "--feature-map", help="context|similarity"),
    similarity: str = typer.Option(
        "elementwise",
        "--similarity",
        help="elementwise|cosine|bilinear (with --feature-map similarity)",
    ),
    unet_base: int = typer.Option(
        256, "--unet-base", min=4, help="Width of the first U-Net block."
    ),
    max_length: int | None = typer.Option(
        None,
        "--max-length",
        min=16,
        help="Truncate documents to N wordpieces (default: never; long documents are windowed).",
    ),
    seed: int = typer.Option(66, "--seed"),
    no_unet: bool = typer.Option(
        False, "--no-unet", help="Ablation: feed-forward instead of the U-Net."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its last epoch."
    ),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Skip and count bad records instead of stopping."
    ),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda"),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train DocuNet; the checkpoint of the best dev epoch is written to --out."""
    setup_logging(verbose)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..train import TrainOptions
    from ..train import train as run_train

    opts = TrainOptions(
        train=str(train), dev=str(dev), out=str(out), test=str(test) if test else None,
        format=format, relations=str(relations) if relations else None, encoder=encoder,
        epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
        lr_encoder=lr_encoder, lr_head=lr_head, lr_unet=lr_unet, markers=markers,
        feature_map=feature_map, similarity=similarity, unet_base=unet_base,
        max_length=max_length, seed=seed, no_unet=no_unet, resume=resume, skip_bad=skip_bad,
        device=device, threads=threads,
    )  # fmt: skip
    bar = Progress(
        TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[dps]:.1f} docs/s"),
        TimeRemainingColumn(), console=console, disable=not console.is_terminal,
    )  # fmt: skip
    task = bar.add_task("train", total=None, epoch=0, loss=0.0, dps=0.0)

    def on_progress(ev: dict) -> None:
        if ev.get("event") == "epoch":
            d = ev["dev"]
            console.print(
                f"epoch {ev['epoch']}: loss {ev['train_loss']:.4f}  dev F1 {d['f1']:.4f}"
                + (f"  Ign F1 {d['ign_f1']:.4f}" if d.get("ign_f1") is not None else "")
                + ("  [green]best[/]" if ev.get("best") else "")
                + (f"  test F1 {ev['test']['f1']:.4f}" if "test" in ev else "")
                + f"  ({ev['epoch_seconds']:.0f}s)"
            )
            return
        bar.update(task, total=ev["total_steps"], completed=ev["step"], epoch=ev["epoch"], loss=ev["loss"], dps=ev["docs_per_s"])  # fmt: skip

    with bar:
        summary = run_guarded(run_train, opts, on_progress)
    test_msg = f", test F1 {summary['test']['f1']:.4f}" if summary.get("test") else ""
    console.print(
        f"best epoch {summary.get('best_epoch')} (dev F1 {summary.get('best_dev_f1', 0):.4f}"
        f"{test_msg}); checkpoint in {out}"
    )


# ------------------------------------------------------------------------------------------------
# evaluate / predict
# ------------------------------------------------------------------------------------------------


@app.command()
def evaluate(
    model_dir: Path = typer.Argument(..., help="Checkpoint (CKPT_DIR) or exported MODEL_DIR."),
    data: Path = typer.Option(..., "--data", help="Labelled file to score."),
    train_facts: Path | None = typer.Option(
        None, "--train-facts", help="Training file for Ign F1."
    ),
    format: str = typer.Option("auto", "--format", help="auto|docred|jsonl|cdr|pubtator"),
    precision: str = typer.Option(
        "fp32", "--precision", help="fp32|int8|fp16 (exported MODEL_DIR only)"
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the scores as JSON here."),
    threads: int | None = typer.Option(None, "--threads", min=1),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Score a checkpoint or an exported model (DocRED P/R/F1/Ign F1, or CDR/GDA candidate F1)."""
    setup_logging(verbose)
    import json

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


@app.command()
def predict(
    model_dir: Path = typer.Argument(..., help="Checkpoint (CKPT_DIR) or exported MODEL_DIR."),
    data: Path = typer.Option(..., "--data", help="Documents to predict (DocRED JSON/JSONL)."),
    out: Path = typer.Option(..., "--out", "-o", help="Result file (DocRED official format)."),
    format: str = typer.Option("auto", "--format"),
    precision: str = typer.Option("fp32", "--precision"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Write predictions in the DocRED official result format (title, h_idx, t_idx, r)."""
    setup_logging(verbose)
    from ..evaluate import predict_path

    n = run_guarded(predict_path, model_dir, data, out, fmt=format, precision=precision)
    console.print(f"wrote {n} predicted relations to {out}")


# Subcommands that live in their own modules (they import this module's helpers, so they are
# registered after those are defined).
from .bench_cmd import register as _register_bench  # noqa: E402
from .export_cmd import register as _register_export  # noqa: E402
from .extract_cmd import register as _register_extract  # noqa: E402
from .tools_cmd import register as _register_tools  # noqa: E402

_register_export(app)
_register_extract(app)
_register_bench(app)
_register_tools(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
