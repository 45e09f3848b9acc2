"""``docunet-rt train``: train DocuNet, selecting the best epoch on dev."""

from __future__ import annotations

from pathlib import Path

import typer

from ..options import FEATURE_MAPS, FORMATS, MARKERS, SIMILARITIES, TRAIN_DEVICES
from .common import choice, console, run_guarded, setup_logging


def train(
    train: Path = typer.Option(
        ..., "--train", help="Training file (DocRED JSON/JSONL, CDR .data, PubTator)."
    ),
    dev: Path = typer.Option(..., "--dev", help="Dev file: the best epoch is selected on it."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint directory to write."),
    test: Path | None = typer.Option(
        None, "--test", help="Test file, scored at each new best epoch (never used to select)."
    ),
    format: str = typer.Option(
        "auto", "--format", callback=choice("format", FORMATS), help="|".join(FORMATS)
    ),
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
    markers: str = typer.Option(
        "star", "--markers", callback=choice("marker scheme", MARKERS), help="|".join(MARKERS)
    ),
    feature_map: str = typer.Option(
        "context",
        "--feature-map",
        callback=choice("feature map", FEATURE_MAPS),
        help="|".join(FEATURE_MAPS),
    ),
    similarity: str = typer.Option(
        "elementwise",
        "--similarity",
        callback=choice("similarity", SIMILARITIES),
        help="|".join(SIMILARITIES) + " (with --feature-map similarity)",
    ),
    unet_base: int = typer.Option(
        256, "--unet-base", min=4, help="Width of the first U-Net block."
    ),
    max_doc_tokens: int | None = typer.Option(
        None,
        "--max-doc-tokens",
        "--max-length",
        min=16,
        help="Truncate documents to N wordpieces (default: never; long documents are "
        "windowed). --max-length is its old name.",
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
    device: str = typer.Option(
        "auto", "--device", callback=choice("device", TRAIN_DEVICES), help="|".join(TRAIN_DEVICES)
    ),
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
        max_doc_tokens=max_doc_tokens, seed=seed, no_unet=no_unet, resume=resume, skip_bad=skip_bad,
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


def register(app: typer.Typer) -> None:
    """Add ``train`` to the ``docunet-rt`` app."""
    app.command("train")(train)
