"""``docunet-rt train-ner``: train the entity tagger (BIO over the encoder), selecting the best
epoch on dev mention F1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ..options import FORMATS, TRAIN_DEVICES
from .common import EXIT_INTERRUPTED, choice, console, fail, flag, run_guarded, setup_logging
from .train_cmd import missing_extra, report_interrupt

# How predicted mentions become entities (``ner.tagging.GROUPINGS`` plus "auto"; written out
# here so that importing the CLI stays free of numpy).
GROUPINGS = ("auto", "name", "concept")


def best_record(out: Path) -> dict[str, Any]:
    """The dev-selected epoch's record saved with the tagger ({} when there is none)."""
    try:
        return json.loads((out / "tagger.json").read_text()).get("best") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def print_summary(out: Path, summary: dict[str, Any]) -> None:
    from rich.table import Table

    best = best_record(out)
    dev = best.get("dev") or {}
    table = Table(title="entity tagger", show_header=False, box=None)
    table.add_row("best epoch", str(best.get("epoch", summary.get("best_epoch"))))
    for key in ("precision", "recall", "f1"):
        value = dev.get(key, summary.get("best_dev_f1") if key == "f1" else None)
        table.add_row(f"dev mention {key}", "-" if value is None else f"{value:.4f}")
    if dev:
        table.add_row("dev mentions", f"{dev.get('correct')} of {dev.get('gold')} found, "
                      f"{dev.get('predicted')} predicted")  # fmt: skip
    table.add_row("checkpoint", str(out))
    console.print(table)


def train_ner(
    ctx: typer.Context,
    train: list[Path] = typer.Option(
        ...,
        "--train",
        metavar="PATH",
        help="Training file with typed entity mentions; repeat the option for several files.",
    ),
    dev: Path = typer.Option(
        ..., "--dev", help="Dev file: the best epoch is selected on its mention F1."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Tagger checkpoint directory to write."),
    format: str = typer.Option(
        "auto", "--format", callback=choice("format", FORMATS), help="|".join(FORMATS)
    ),
    encoder: str | None = typer.Option(
        None, "--encoder", help="Local Hugging Face encoder directory (default: embedded MiniLM)."
    ),
    epochs: int = typer.Option(
        10, "--epochs", min=1, help="Train at most N epochs (or --max-steps, whichever is first)."
    ),
    max_steps: int | None = typer.Option(
        None,
        "--max-steps",
        min=1,
        help="Stop after this many optimizer steps (or --epochs, whichever is first).",
    ),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Documents per optimizer step."),
    lr_encoder: float = typer.Option(5e-5, "--lr-encoder", min=0.0, help="Encoder learning rate."),
    lr_head: float = typer.Option(1e-3, "--lr-head", min=0.0, help="Classifier learning rate."),
    grouping: str = typer.Option(
        "auto",
        "--grouping",
        callback=choice("grouping", GROUPINGS),
        help="How predicted mentions become entities: "
        + "|".join(GROUPINGS)
        + " (auto: concept when the training entities carry ids, else name).",
    ),
    seed: int = typer.Option(66, "--seed", help="Random seed (shuffling, initialisation)."),
    resume: bool = flag(False, "--resume", help="Continue the run in --out from its last epoch."),
    skip_bad: bool = flag(
        False, "--skip-bad", help="Skip and count bad records instead of stopping."
    ),
    device: str = typer.Option(
        "auto", "--device", callback=choice("device", TRAIN_DEVICES), help="|".join(TRAIN_DEVICES)
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Train the entity tagger that finds mentions in raw text; the epoch with the best dev
    mention F1 is written to --out.

    The tagger labels every word O / B-type / I-type (BIO) from the encoder's last layer and
    learns the entity types of the training data. Training data: any file with typed entity
    mentions: DocRED-style JSON/JSONL (typed mentions in vertexSet), {"text", "entities"} JSONL,
    PubTator or CDR .data. With concept ids on the training entities (e.g. MeSH) a lexicon is
    saved for grouping mentions into entities by concept.

    Never train on documents you evaluate on: --dev selects the epoch, so report on a third set.
    Ctrl-C stops the run and prints the command that resumes it from its last finished epoch
    (exit 130).
    """
    setup_logging(verbose)
    try:  # torch is imported with the training module: say how to install it
        from ..ner import train as ner_train
    except ImportError as e:
        fail(missing_extra(e) or f"cannot import the training code: {e}")

    opts = ner_train.NerTrainOptions(
        train=[str(p) for p in train], dev=str(dev), out=str(out), format=format, encoder=encoder,
        epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr_encoder=lr_encoder,
        lr_head=lr_head, grouping=grouping, seed=seed, resume=resume, skip_bad=skip_bad,
        device=device, threads=threads,
    )  # fmt: skip

    def on_progress(ev: dict[str, Any]) -> None:
        if ev.get("event") != "epoch":
            return
        d = ev["dev"]
        console.print(
            f"epoch {ev['epoch']}: loss {ev['train_loss']:.4f}  dev mention "
            f"P {d['precision']:.4f} R {d['recall']:.4f} F1 {d['f1']:.4f}"
            + ("  [green]best[/]" if ev.get("best") else "")
            + f"  ({ev['train_seconds']:.0f}s)"
        )

    try:
        summary = run_guarded(_train_or_explain, ner_train.train_ner, opts, on_progress)
    except KeyboardInterrupt:
        report_interrupt(ctx, out)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if summary.get("already_finished"):
        console.print(
            f"the run in {out} already finished (epoch {summary.get('epoch')}); nothing to train "
            "(train longer with a new --out)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    print_summary(out, summary)


def _train_or_explain(run_train: Any, opts: Any, on_progress: Any) -> dict[str, Any]:
    """``run_train``, with a missing training dependency said as one line naming pip."""
    try:
        return run_train(opts, on_progress)
    except ImportError as e:
        fail(missing_extra(e) or str(e))


def register(app: typer.Typer) -> None:
    """Add ``train-ner`` to the ``docunet-rt`` app."""
    app.command("train-ner")(train_ner)
