"""`docunet-rt export` and `docunet-rt parity`: checkpoint → ONNX MODEL_DIR, and its check.

``register(app)`` adds both commands to the main Typer app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..grouping import LINKINGS
from ..options import EXPORTERS, FORMATS, INT8_WEIGHT_TYPES, TRAIN_INSTALL
from .common import EXIT_FATAL, EXIT_USAGE, choice, console, fail, flag, run_guarded, setup_logging

T = TypeVar("T")
EXPORT_MODULES = ("torch", "transformers", "safetensors", "onnx", "onnxscript")


def usage_checked(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` for an option check: a bad value is a usage error (exit 2) listing the
    valid choices."""
    try:
        return fn(*args)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)


def needs_extra(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(...)``, with a missing export dependency said as one line naming pip (wrap it in
    ``run_guarded`` for the other expected errors)."""
    try:
        return fn(*args, **kwargs)
    except ImportError as e:
        name = (e.name or "").split(".")[0]
        if name not in EXPORT_MODULES:
            raise
        fail(f"export needs the Python package {name!r}, which is not installed: {TRAIN_INSTALL}")


def export(
    ckpt_dir: Path = typer.Argument(..., help="Training checkpoint (CKPT_DIR) to export."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="MODEL_DIR to write (new, empty, or a previous export)."
    ),
    precision: str = typer.Option(
        "fp32,int8", "--precision", help="Comma-separated variants: fp32, int8, fp16."
    ),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (14-20 with the default exporter)."),
    optimize: bool = flag(
        False,
        "--optimize",
        help="ORT transformer fusions for the CPU variants (attention fusion off). Measured slower on a "
        "2-core CPU (benchmarks/results/extract_optimize_docred200.json), hence off.",
    ),
    per_channel: bool = flag(
        True, "--per-channel/--per-tensor", help="int8: one weight scale per output column."
    ),
    reduce_range: bool = flag(
        True,
        "--reduce-range/--full-range",
        help="int8: 7-bit weights (AVX2 without VNNI saturation guard).",
    ),
    weight_type: str = typer.Option(
        "qint8",
        "--int8-weights",
        callback=choice("int8 weight type", INT8_WEIGHT_TYPES),
        help="int8 weight type: " + "|".join(INT8_WEIGHT_TYPES) + ".",
    ),
    calibration: str = typer.Option(
        "auto",
        "--calibration",
        help="int8: documents (DocRED/CDR/PubTator/JSONL file) that calibrate the head's "
        "convolutions, statically quantised; auto = the checkpoint's dev file when it is here; "
        "none = convolutions stay fp32.",
    ),
    pair_types: str = typer.Option(
        "auto",
        "--pair-types",
        help="Entity-type pairs scored where a document lists no candidates (raw text): auto = "
        "what training recorded from its candidate pairs; all; or HEAD:TAIL,... "
        "(e.g. Chemical:Disease).",
    ),
    exporter: str = typer.Option(
        "torchscript",
        "--exporter",
        callback=choice("exporter", EXPORTERS),
        help="|".join(EXPORTERS) + " (both pass parity; torchscript is faster).",
    ),
    tagger: Path | None = typer.Option(
        None,
        "--tagger",
        help="Entity tagger checkpoint (docunet-rt train-ner) to add, so the MODEL_DIR also "
        "extracts from raw text (extract --entities predict|auto).",
    ),
    tagger_dictionary: int | None = typer.Option(
        None,
        "--tagger-dictionary",
        min=1,
        help="With --tagger: also take lexicon forms of at least N characters found in the text "
        "where the tagger found nothing (choose N on dev: benchmarks/ner_dictionary.py).",
    ),
    linking: str = typer.Option(
        "fuzzy",
        "--linking",
        callback=choice("linking", LINKINGS),
        help="With --tagger (concept grouping): how mentions find concept ids: "
        + "|".join(LINKINGS)
        + " (exact form; also spelling variants; also the nearest lexicon form by character "
        "trigrams, chosen on CDR dev: benchmarks/linking_eval.py).",
    ),
    link_similarity: float = typer.Option(
        0.75,
        "--link-similarity",
        min=0.01,
        max=1.0,
        help="With --linking fuzzy: the least trigram cosine that links a mention.",
    ),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Export a checkpoint to a self-contained ONNX model directory (graphs, tokenizer, model.json)."""
    setup_logging(verbose)
    from ..export.onnx import check_opset, export_model, parse_precisions

    # cheap argument checks first: a bad --precision/--opset is a usage error (exit 2), before
    # torch is imported
    usage_checked(parse_precisions, precision)
    usage_checked(check_opset, opset, exporter)
    result = run_guarded(
        needs_extra, export_model, ckpt_dir, out, precisions=precision, opset=opset,
        optimize=optimize, exporter=exporter, per_channel=per_channel, reduce_range=reduce_range,
        weight_type=weight_type, tagger=tagger, tagger_dictionary=tagger_dictionary,
        tagger_linking=linking, link_similarity=link_similarity, calibration=calibration,
        pair_types=pair_types,
    )  # fmt: skip
    for prec in result.precisions:
        files = result.files[prec]
        size = sum((out / f).stat().st_size for f in files.values()) / 2**20
        ok = result.cpu_runnable[prec]
        state = "runs on ORT CPU" if ok is True else f"checker ok, not runnable on ORT CPU ({ok})"
        console.print(f"  {prec}: {files['encoder']} + {files['head']} ({size:.1f} MiB), {state}")
    if tagger is not None:
        console.print(f"  tagger: {tagger} (entity recognition for raw text)")
    console.print(f"exported {ckpt_dir} to {out} in {result.seconds:.1f}s")


def parity(
    ckpt_dir: Path = typer.Argument(..., help="Source checkpoint (CKPT_DIR)."),
    model_dir: Path = typer.Argument(..., help="Exported MODEL_DIR."),
    data: Path | None = typer.Option(
        None, "--data", help="Documents to compare on (any supported format)."
    ),
    format: str = typer.Option(
        "auto", "--format", callback=choice("format", FORMATS), help="|".join(FORMATS)
    ),
    synthetic: bool = flag(
        False,
        "--synthetic",
        help="Add synthetic documents (1, 2, 19, 43, 100 entities; short and > 2 windows).",
    ),
    precision: str = typer.Option(
        "fp32", "--precision", help="Comma-separated variants to check: fp32, int8, fp16."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Use the first N documents of --data."
    ),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Documents per batch."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads."),
    device: str = typer.Option(
        "cpu",
        "--device",
        callback=choice("parity device", ("cpu", "cuda")),
        help="cpu|cuda: where both sides run (cuda: PyTorch on CUDA, the CUDA provider).",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the reports as JSON here."),
    verbose: bool = flag(False, "--verbose", "-v", help="Log more."),
) -> None:
    """Compare an exported model (ONNX Runtime) with its checkpoint (PyTorch): max |Δlogit|
    and predicted-triple agreement. Exit 1 when fp32 exceeds 1e-3 or its triples differ."""
    setup_logging(verbose)
    if data is None and not synthetic:
        fail("nothing to compare: pass --data FILE and/or --synthetic", EXIT_USAGE)
    from ..export.onnx import parse_precisions
    from ..export.parity import check_parity_path

    precs = usage_checked(parse_precisions, precision)
    reports = run_guarded(
        needs_extra, check_parity_path, ckpt_dir, model_dir, data, precisions=precs, fmt=format,
        synthetic=synthetic, limit=limit, batch_size=batch_size, threads=threads, device=device,
    )  # fmt: skip
    for r in reports:
        mark = "[green]ok[/]" if r.ok else "[bold red]FAILED[/]"
        bound = f" (bound {r.tolerance:g})" if r.tolerance is not None else " (reported only)"
        console.print(f"{mark} {r.summary()}{bound}", highlight=False)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([r.to_dict() for r in reports], indent=2))
    failed = [r.precision for r in reports if not r.ok]
    if failed:
        fail(f"parity failed for {', '.join(failed)}", EXIT_FATAL)


def register(app: typer.Typer) -> None:
    """Add the ``export`` and ``parity`` commands to ``app``."""
    app.command("export")(export)
    app.command("parity")(parity)
