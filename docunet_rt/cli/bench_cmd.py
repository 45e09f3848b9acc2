"""``docunet-rt bench``: PyTorch vs ONNX Runtime side by side (throughput, latency, memory, time
to first result, roofline, accuracy, scaling) and the run's report files: NAME.json, a Markdown
report NAME.md and NAME.png (with matplotlib).

Importing this module imports typer and the stdlib runtime table (``docunet_rt.bench.runtimes``)
only; the benchmark (numpy, ONNX Runtime, torch in its own worker process) loads when the command
runs.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from ..bench.runtimes import ALL_RUNTIMES, unknown_runtimes
from ..options import DEFAULT_MAX_TOKENS, RUNTIMES, parse_list
from .common import console, flag, run_guarded, setup_logging


def _runtimes(value: str) -> tuple[str, ...]:
    """``--runtimes``: a comma-separated subset of ``bench.ALL_RUNTIMES`` (``options.RUNTIMES``
    and the PyTorch CUDA baselines; a usage error listing them otherwise)."""
    chosen = parse_list(value) or ()
    bad = unknown_runtimes(chosen)
    if bad or not chosen:
        raise typer.BadParameter(
            f"unknown runtime(s) {', '.join(bad) or '(none given)'}; "
            f"valid choices: {', '.join(ALL_RUNTIMES)}"
        )
    return chosen


def bench(
    model: Path = typer.Option(..., "--model", help="Exported MODEL_DIR (fp32 + int8 variants)."),
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="The CKPT_DIR it was exported from (the PyTorch baseline)."
    ),
    corpus: Path = typer.Option(..., "--corpus", help="Throughput corpus (any supported format)."),
    labelled: Path | None = typer.Option(
        None, "--labelled", help="Labelled file: F1 / Ign F1 per runtime, int8 F1 change."
    ),
    train_facts: Path | None = typer.Option(
        None, "--train-facts", help="Training file, for Ign F1 on --labelled."
    ),
    docs: int | None = typer.Option(
        None, "--docs", min=0, help="Corpus sample size (default 200, --quick 8; 0 = all)."
    ),
    labelled_docs: int | None = typer.Option(
        None, "--labelled-docs", min=0, help="First N labelled documents (default --docs; 0 = all)."
    ),
    out: Path = typer.Option(Path("benchmarks/results"), "--out", "-o", help="Output directory."),
    name: str | None = typer.Option(
        None, "--name", help="File stem (default bench_<corpus>[_quick])."
    ),
    quick: bool = flag(
        False, "--quick", help="8 documents, one pass, a small scaling grid (about a minute)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="ORT intra-op = torch threads (default: usable cores)."
    ),
    repeats: int | None = typer.Option(
        None, "--repeats", min=1, help="Alternating passes per runtime (default 3, --quick 1)."
    ),
    runtimes: str = typer.Option(
        ",".join(RUNTIMES),
        "--runtimes",
        callback=_runtimes,
        help=f"Comma-separated, from: {', '.join(ALL_RUNTIMES)}. A GPU runtime runs only on the "
        "provider its name promises (else it is skipped) and is compared with the torch-cuda "
        "baseline of its precision.",
    ),
    max_tokens: int = typer.Option(
        DEFAULT_MAX_TOKENS, "--max-tokens", min=64, help="Batch token budget."
    ),
    no_scaling: bool = flag(False, "--no-scaling", help="Skip the scaling grid."),
    scaling_torch: bool = flag(
        False, "--scaling-torch", help="Run the scaling grid on PyTorch too (slow)."
    ),
    verbose: bool = flag(False, "--verbose", "-v"),
) -> None:
    """Benchmark PyTorch eager against ONNX Runtime fp32/int8 (and, on a GPU, CUDA/TensorRT against PyTorch CUDA) on the same documents and batches.

    Each runtime runs in its own process (imports and peak RSS per runtime); passes alternate between runtimes after a warm-up. Writes OUT/NAME.json, OUT/NAME.md and OUT/NAME.png (the plot needs matplotlib, the "plot" extra).
    """
    setup_logging(verbose)
    from ..bench import BenchOptions, run_bench, write_outputs

    stem = name or f"bench_{corpus.stem}" + ("_quick" if quick else "")
    opts = BenchOptions(
        model=str(model), checkpoint=str(checkpoint), corpus=str(corpus),
        labelled=str(labelled) if labelled else None,
        train_facts=str(train_facts) if train_facts else None, docs=docs,
        labelled_docs=labelled_docs, name=stem, quick=quick, threads=threads, repeats=repeats,
        runtimes=list(runtimes), max_tokens=max_tokens, scaling=not no_scaling,
        scaling_torch=scaling_torch, command=shlex.join(["docunet-rt", *sys.argv[1:]]),
    )  # fmt: skip
    result = run_guarded(run_bench, opts)
    files = write_outputs(result, out, stem)
    for r, v in result["runtimes"].items():
        if v["status"] != "ok":
            console.print(f"  {r}: skipped ({v['note']})", highlight=False)
            continue
        base = v.get("torch_baseline", "torch")
        vs = f" ({v['speedup_vs_torch']:.2f}x {base})" if "speedup_vs_torch" in v else ""
        console.print(
            f"  {r} on {v.get('provider', '?')}: {v['docs_per_s']:.2f} docs/s{vs}, first result "
            f"{v['time_to_first_result_s']:.2f}s, peak RSS {v['peak_rss_mb']:.0f} MB"
        )
    for t in result["targets"]:
        mark = "[green]met[/]" if t["met"] else "[bold red]missed[/]"
        mark = mark if t["measured"] else "[yellow]not measured[/]"
        console.print(f"  target {t['name']}: {mark}", highlight=False)
    console.print(f"wrote {files['json']} and {files['markdown']}")


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to ``app``."""
    app.command("bench")(bench)
