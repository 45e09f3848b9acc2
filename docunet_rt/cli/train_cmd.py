"""``docunet-rt train``: train DocuNet, selecting the best epoch on dev; ``docunet-rt average``:
average the weights of several of its epochs into one checkpoint."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer

from ..options import (
    ENTITY_ORDERS,
    FEATURE_MAPS,
    FORMATS,
    MARKERS,
    SELECTIONS,
    SIMILARITIES,
    THRESHOLD_CLASSES,
    TRAIN_DEVICES,
    TRAIN_INSTALL,
)
from .common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    choice,
    console,
    fail,
    flag,
    run_guarded,
    setup_logging,
)

TRAIN_MODULES = ("torch", "transformers", "safetensors")  # what the train extra installs


def missing_extra(e: ImportError) -> str | None:
    """One line for a training dependency that is not installed, naming the pip command (None
    when ``e`` is about another module)."""
    name = (e.name or "").split(".")[0]
    if name not in TRAIN_MODULES:
        return None
    return f"training needs the Python package {name!r}, which is not installed: {TRAIN_INSTALL}"


def command_line(ctx: typer.Context, resume: bool) -> str:
    """This invocation (``docunet-rt train`` or ``train-ner``: ``ctx``'s command) as a shell
    command (the options given on the command line, quoted; a repeated option once per value),
    with ``--resume`` when ``resume``."""
    words = ["docunet-rt", ctx.info_name or "train"]
    for param in ctx.command.params:
        if param.param_type_name != "option" or param.name in (None, "resume"):
            continue
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name == "DEFAULT":
            continue
        value: Any = ctx.params.get(param.name)
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if getattr(param, "is_flag", False):
            if value:
                words.append(flag)
        elif isinstance(value, list | tuple):
            for v in value:
                words += [flag, str(v)]
        elif value is not None:
            words += [flag, str(value)]
    if resume:
        words.append("--resume")
    return shlex.join(words)


def report_interrupt(ctx: typer.Context, out: Path) -> None:
    """After Ctrl-C: one line saying how far the run got and the command that continues it."""
    from ..rundir import last_finished_epoch

    state = last_finished_epoch(out)
    if state is None:
        msg = (
            "interrupted before the first epoch finished (nothing to resume); start again with: "
            + command_line(ctx, resume=False)
        )
    else:
        of = f" of {state['epochs']}" if state.get("epochs") else ""
        msg = (
            f"interrupted (last finished epoch: {state['epoch']}{of}, saved in {out}); "
            f"resume with: {command_line(ctx, resume=True)}"
        )
    console.print(msg, markup=False, highlight=False, soft_wrap=True)


def train(
    ctx: typer.Context,
    train: Path = typer.Option(
        ..., "--train", help="Training file (DocRED JSON/JSONL, CDR .data, PubTator)."
    ),
    dev: Path = typer.Option(
        ...,
        "--dev",
        help="Dev file: scored every epoch; the best epoch is kept (unless --select last).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint directory to write."),
    test: Path | None = typer.Option(
        None,
        "--test",
        help="Test file, scored once after training with the kept epoch (never used to select).",
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
    epochs: int = typer.Option(
        8, "--epochs", min=1, help="Train at most N epochs (or --max-steps, whichever is first)."
    ),
    max_steps: int | None = typer.Option(
        None,
        "--max-steps",
        min=1,
        help="Stop after this many optimizer steps (or --epochs, whichever is first).",
    ),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Documents per batch."),
    grad_accum: int = typer.Option(
        1, "--grad-accum", min=1, help="Batches accumulated per optimizer step."
    ),
    lr_encoder: float = typer.Option(3e-5, "--lr-encoder", min=0.0, help="Encoder learning rate."),
    lr_head: float = typer.Option(1e-4, "--lr-head", min=0.0, help="Classifier learning rate."),
    lr_unet: float = typer.Option(
        4e-4, "--lr-unet", min=0.0, help="Feature-map projection and U-Net learning rate."
    ),
    markers: str = typer.Option(
        "star", "--markers", callback=choice("marker scheme", MARKERS), help="|".join(MARKERS)
    ),
    select: str = typer.Option(
        "dev",
        "--select",
        callback=choice("epoch selection", SELECTIONS),
        help="Epoch the checkpoint keeps: "
        + "|".join(SELECTIONS)
        + " (dev: best dev F1; last: the final epoch, for training on train + dev with an "
        "epoch count chosen on dev beforehand).",
    ),
    threshold_class: str = typer.Option(
        "fixed",
        "--threshold-class",
        callback=choice("threshold class", THRESHOLD_CLASSES),
        help="Decision threshold: "
        + "|".join(THRESHOLD_CLASSES)
        + " (fixed: logit 0, DocuNet's balanced softmax; adaptive: a learned per-pair "
        "threshold class, as ATLOP).",
    ),
    entity_order: str = typer.Option(
        "given",
        "--entity-order",
        callback=choice("entity order", ENTITY_ORDERS),
        help="Entity order on the pair map the U-Net sees: "
        + "|".join(ENTITY_ORDERS)
        + " (position: by first mention; type: by type, then first mention).",
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
    unet_in_channels: int = typer.Option(
        3,
        "--unet-in-channels",
        min=1,
        help="Channels the pair feature map is projected to before the U-Net (the paper: 3).",
    ),
    max_doc_tokens: int | None = typer.Option(
        None,
        "--max-doc-tokens",
        "--max-length",
        min=16,
        help="Truncate documents to N wordpieces (default: never; long documents are "
        "windowed). --max-length is its old name.",
    ),
    seed: int = typer.Option(66, "--seed", help="Random seed (shuffling, initialisation)."),
    tune_threshold: bool = flag(
        False,
        "--tune-threshold",
        help="After training, choose the decision threshold with the best dev F1 and record "
        "it in the checkpoint (every runtime then decides at it; test is scored at it and at 0).",
    ),
    keep_epochs: bool = flag(
        False,
        "--keep-epochs",
        help="Also save every epoch's weights in --out/epochs/ (for docunet-rt average).",
    ),
    no_unet: bool = flag(False, "--no-unet", help="Ablation: feed-forward instead of the U-Net."),
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
    """Train DocuNet; the checkpoint of the best dev epoch is written to --out.

    Training stops after --epochs or --max-steps, whichever comes first. Ctrl-C stops it and
    prints the command that resumes it from its last finished epoch (exit 130).
    """
    setup_logging(verbose)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    try:  # torch is imported with the training module: say how to install it
        from .. import train as train_module
    except ImportError as e:
        fail(missing_extra(e) or f"cannot import the training code: {e}")
    TrainOptions, run_train = train_module.TrainOptions, train_module.train

    opts = TrainOptions(
        train=str(train), dev=str(dev), out=str(out), test=str(test) if test else None,
        format=format, relations=str(relations) if relations else None, encoder=encoder,
        epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
        lr_encoder=lr_encoder, lr_head=lr_head, lr_unet=lr_unet, markers=markers,
        entity_order=entity_order,
        select=select, keep_epochs=keep_epochs, threshold_class=threshold_class,
        tune_threshold=tune_threshold,
        feature_map=feature_map, similarity=similarity, unet_base=unet_base,
        unet_in_channels=unet_in_channels,
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

    try:
        with bar:
            summary = run_guarded(_train_or_explain, run_train, opts, on_progress)
    except KeyboardInterrupt:
        report_interrupt(ctx, out)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    test = summary.get("test")
    test_msg = f", test F1 {test['f1']:.4f}" if test else ""
    if th := summary.get("threshold"):
        test_msg += (
            f"; decision threshold {th['threshold']:+.1f} chosen on dev "
            f"(dev F1 {th['f1_at_zero']:.4f} at 0 → {th['f1']:.4f})"
        )
    kept = "last" if opts.select == "last" else "best"
    best = f"{kept} epoch {summary.get('best_epoch')} (dev F1 {summary.get('best_dev_f1') or 0:.4f}"
    if summary.get("already_finished"):
        console.print(
            f"the run in {out} already finished (epoch {summary.get('epoch')}); {best}{test_msg}); "
            "nothing to train (train longer with a new --out)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(f"{best}{test_msg}); checkpoint in {out}")


def _train_or_explain(run_train: Any, opts: Any, on_progress: Any) -> dict[str, Any]:
    """``run_train``, with a missing training dependency said as one line naming pip."""
    try:
        return run_train(opts, on_progress)
    except ImportError as e:
        fail(missing_extra(e) or str(e))


AVERAGE_HELP = (
    "Average the weights of several epochs of one run (trained with --keep-epochs) into a new "
    "checkpoint.\n\nThe result is an ordinary checkpoint: evaluate it on dev to choose the "
    "epochs, export it like any other (model.json records which epochs were averaged).\n\n"
    "Example: docunet-rt average runs/cdr --last 3 -o runs/cdr_avg3"
)


def parse_epochs(spec: str) -> list[int]:
    """``"6,7,8"`` or ``"6-8"`` (or a mix) → [6, 7, 8]; ValueError on anything else."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or (hi and int(hi) < int(lo)):
            raise ValueError(f"--epochs {spec!r}: expected epoch numbers like 6,7,8 or 6-8")
        out.extend(range(int(lo), int(hi or lo) + 1))
    if not out:
        raise ValueError(f"--epochs {spec!r}: no epoch given")
    return out


def average(
    run: Path = typer.Argument(..., help="Training run directory (trained with --keep-epochs)."),
    out: Path = typer.Option(..., "--out", "-o", help="New checkpoint directory to write."),
    epochs: str | None = typer.Option(
        None, "--epochs", help="Epochs to average: 6,7,8 or 6-8 (default: see --last)."
    ),
    last: int | None = typer.Option(
        None, "--last", min=1, help="Average the last K kept epochs (default 3 without --epochs)."
    ),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Average the weights of several epochs of one run into a new checkpoint (help:
    AVERAGE_HELP)."""
    setup_logging(verbose)
    if epochs is not None and last is not None:
        fail("give --epochs or --last, not both", EXIT_USAGE)
    try:
        from ..checkpoint import average_checkpoint, kept_epochs
    except ImportError as e:
        fail(missing_extra(e) or f"cannot import the training code: {e}")
    if epochs is not None:
        try:
            chosen = parse_epochs(epochs)
        except ValueError as e:
            fail(str(e), EXIT_USAGE)
    else:
        kept, k = kept_epochs(run), last or 3
        if kept and len(kept) < k:
            fail(f"--last {k}: {run} kept only {len(kept)} epoch(s) ({', '.join(map(str, kept))})")
        chosen = kept[-k:]
    record = run_guarded(average_checkpoint, run, chosen, out)
    console.print(
        f"averaged epochs {', '.join(map(str, record['epochs']))} of {run} into {out}",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``average`` to the ``docunet-rt`` app."""
    app.command("train")(train)
    app.command("average", help=AVERAGE_HELP)(average)
