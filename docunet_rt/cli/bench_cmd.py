"""``docunet-rt bench``: PyTorch vs ONNX Runtime side by side (throughput, latency, memory, time
to first result, roofline, accuracy, scaling) and the run's report files: NAME.json, a Markdown
report NAME.md and NAME.png (with matplotlib). ``benchmarks/run_bench.py`` writes the same files
through :func:`write_outputs`.

Importing this module imports typer only; the benchmark (numpy, ONNX Runtime, torch in its own
worker process) loads when the command runs.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from ..options import DEFAULT_MAX_TOKENS
from .common import EXIT_USAGE, console, fail, run_guarded, setup_logging

logger = logging.getLogger("docunet_rt")
# Mirror of docunet_rt.bench.CPU_RUNTIMES + GPU_RUNTIMES (importing the CLI stays numpy-free).
RUNTIMES = ("torch", "ort-fp32", "ort-int8", "ort-cuda-fp32", "ort-cuda-fp16", "tensorrt-fp16")
HEADLINE = (
    "runtime", "docs/s [min–max]", "vs torch", "pairs/s", "wordpieces/s", "batch p50 / p95 s",
    "first result s", "peak RSS MB", "encoder / merge / head", "roofline", "F1", "Ign F1",
    "triples vs torch (Jaccard)",
)  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Report files
# ------------------------------------------------------------------------------------------------


def _f(v: Any, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table (also used by benchmarks/make_tables.py for the README)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def headline_row(name: str, r: dict[str, Any]) -> list[str]:
    """One runtime's cells of the headline table (``HEADLINE``)."""
    if r["status"] != "ok":
        return [name, f"skipped: {r['note']}"] + [""] * (len(HEADLINE) - 2)
    split = " / ".join(f"{r['time_split'][k]:.0%}" for k in ("encoder", "merge", "head"))
    return [
        name, f"{r['docs_per_s']:.2f} [{r['docs_per_s_min']:.2f}–{r['docs_per_s_max']:.2f}]",
        f"{_f(r.get('speedup_vs_torch'))}×", f"{r['entity_pairs_per_s']:.0f}",
        f"{r['wordpieces_per_s']:.0f}",
        f"{r['batch_latency_p50_s']:.2f} / {r['batch_latency_p95_s']:.2f}",
        f"{r['time_to_first_result_s']:.2f}", f"{r['peak_rss_mb']:.0f}", split,
        f"{r['roofline_fraction']:.1%}", _f(r.get("f1"), ".4f"), _f(r.get("ign_f1"), ".4f"),
        _f((r.get("agreement_vs_torch") or {}).get("jaccard"), ".4f"),
    ]  # fmt: skip


def headline_table(res: dict[str, Any]) -> list[str]:
    return markdown_table(HEADLINE, [headline_row(k, v) for k, v in res["runtimes"].items()])


def render_markdown(res: dict[str, Any], plots: Sequence[str] = ()) -> str:
    """The Markdown report of one ``docunet_rt.bench.run_bench`` result."""
    m, c, pk = res.get("machine", {}), res["corpus"], res["peak_matmul"]
    fl = {k: v / 1e9 for k, v in res["flops"]["per_doc_mean"].items()}
    vers = ", ".join(f"{k} {v}" for k, v in res.get("versions", {}).items())
    lines = [
        f"# Runtime benchmark: {res.get('name') or 'bench'}", "", f"`{res['command']}`", "",
        f"{res['date']} · {m.get('cpu', '?')} ({m.get('cores', '?')} cores) · "
        f"{res['threads']['ort_intra_op']} threads · {vers}", "",
        f"{c['documents']} of {c['documents_in_file']} documents of `{c['path']}` (seed "
        f"{c['sample_seed']}): {c['entity_pairs']} entity pairs, {c['wordpieces']} wordpieces, "
        f"{c['batches']} batches of ≤ {c['max_tokens']} padded tokens; medians of "
        f"{res['options']['repeats']} alternating end-to-end passes [min–max].", "",
        *headline_table(res), "",
        f"Roofline: measured dense fp32 matmul peak {pk['peak_gflops']:.1f} GFLOP/s "
        f"({pk['source']}, {pk['threads']} threads, n = {pk['sizes']}, best of {pk['best_of']}); "
        f"the model does {fl['total']:.2f} GFLOP per document (encoder {fl['encoder']:.2f}, head "
        f"{fl['head']:.2f}; formula in `docunet_rt/bench.py`); int8 is set against the same peak.",
    ]  # fmt: skip
    if res.get("labelled"):
        lab = res["labelled"]
        ign = f"; Ign F1 against `{lab['train_facts']}`" if lab["train_facts"] else ""
        lines.append(f"F1 on the first {lab['documents']} documents of `{lab['path']}`{ign}.")
    rows = [
        [t["name"], _f(t["value"], ".3f"), f"{t['comparison']} {t['threshold']:g}",
         "yes" if t["met"] else ("**NO**" if t["measured"] else "not measured")]
        for t in res["targets"]
    ]  # fmt: skip
    lines += ["", "## Targets", "", *markdown_table(["target", "value", "threshold", "met"], rows)]
    where = "the ORT op profile below" if res.get("profile") else "a run with scaling (op profile)"
    for t in (t for t in res["targets"] if not t["met"]):
        why = "NOT MEASURED in this run"
        if t["measured"]:
            why = f"MISSED: {t['value']:.3f}, needs {t['comparison']} {t['threshold']:g}"
        lines.append(f"\n**{t['name']}: {why}.** See {where} for where the time goes.")
    if res.get("scaling"):
        head = ["runtime", "sweep", "entities", "wordpieces", "pairs", "docs/s", "encoder s",
                "head s", "GFLOP/doc", "GFLOP/s"]  # fmt: skip
        rows = [
            [r["runtime"], r["sweep"], r["entities"], f"{r['wordpieces']:.0f}", f"{r['pairs']:.0f}",
             f"{r['docs_per_s']:.2f}", f"{r['encoder_s']:.3f}", f"{r['head_s']:.3f}",
             f"{r['flops_per_doc'] / 1e9:.2f}", f"{r['flops_per_doc'] * r['docs_per_s'] / 1e9:.1f}"]
            for r in res["scaling"]
        ]  # fmt: skip
        lines += [
            "",
            "## Scaling on synthetic documents (best pass)",
            "",
            *markdown_table(head, rows),
        ]
    if res.get("profile"):
        p, cf = res["profile"], res["profile"]["config"]
        title = f"{cf['entities']} entities, {cf['wordpieces']:.0f} wordpieces"
        lines += [
            "",
            f"## ORT op profile: ort-fp32 on the slowest scaling grid point ({title})",
            "",
        ]
        for g in ("encoder", "head"):
            ops = p[g]["ops"][:8]
            top = ", ".join(f"{x['op']} {x['ms']:.1f} ms ({x['share']:.0%})" for x in ops)
            lines.append(f"- {g}, {p[g]['total_ms']:.0f} ms in kernels: {top}")
    lines += [""] + [f"![{Path(x).stem}]({Path(x).name})" for x in plots]
    return "\n".join(lines) + "\n"


def write_plots(res: dict[str, Any], out: Path, name: str) -> list[str]:
    """``NAME.png``: docs/s per runtime (min–max bars) and the two scaling sweeps with the
    encoder's share of the time; none (a logged note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no plots (pip install 'docunet-rt[plot]')")
        return []
    ok = {k: v for k, v in res["runtimes"].items() if v["status"] == "ok"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    med = [v["docs_per_s"] for v in ok.values()]
    err = [[m - v["docs_per_s_min"] for m, v in zip(med, ok.values(), strict=True)],
           [v["docs_per_s_max"] - m for m, v in zip(med, ok.values(), strict=True)]]  # fmt: skip
    axes[0].bar(list(ok), med, yerr=err, capsize=4)
    axes[0].set(ylabel="documents / s", title=f"{res['corpus']['documents']} documents")
    axes[0].tick_params(axis="x", labelrotation=20)
    for ax, sweep, x in ((axes[1], "entities", "entities"), (axes[2], "length", "wordpieces")):
        share_ax = ax.twinx()
        for rt in dict.fromkeys(r["runtime"] for r in res.get("scaling") or []):
            rows = [r for r in res["scaling"] if r["sweep"] == sweep and r["runtime"] == rt]
            xs = [r[x] for r in rows]
            ax.plot(xs, [r["docs_per_s"] for r in rows], "o-", label=f"{rt} docs/s")
            share = [r["encoder_s"] / r["seconds"] for r in rows]
            share_ax.plot(xs, share, "s:", color="gray", label=f"{rt} encoder share")
        ax.set(xscale="log", yscale="log", xlabel=x, ylabel="documents / s", title=sweep)
        share_ax.set(ylim=(0, 1), ylabel="encoder share of the time")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)
    return [str(out / f"{name}.png")]


def write_outputs(res: dict[str, Any], out: str | os.PathLike, name: str) -> dict[str, Any]:
    """``OUT/NAME.json``, ``OUT/NAME.md`` and ``OUT/NAME.png`` (with matplotlib)."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    res["name"], plots = name, write_plots(res, d, name)
    res["files"] = {"json": f"{d}/{name}.json", "markdown": f"{d}/{name}.md", "plots": plots}
    Path(res["files"]["markdown"]).write_text(render_markdown(res, plots))
    Path(res["files"]["json"]).write_text(json.dumps(res, indent=2) + "\n")
    return res["files"]


# ------------------------------------------------------------------------------------------------
# Command
# ------------------------------------------------------------------------------------------------


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
    quick: bool = typer.Option(
        False, "--quick", help="8 documents, one pass, a small scaling grid (about a minute)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="ORT intra-op = torch threads (default: usable cores)."
    ),
    repeats: int | None = typer.Option(
        None, "--repeats", min=1, help="Alternating passes per runtime (default 3, --quick 1)."
    ),
    runtimes: str = typer.Option(",".join(RUNTIMES), "--runtimes", help="Comma-separated."),
    max_tokens: int = typer.Option(
        DEFAULT_MAX_TOKENS, "--max-tokens", min=64, help="Batch token budget."
    ),
    no_scaling: bool = typer.Option(False, "--no-scaling", help="Skip the scaling grid."),
    scaling_torch: bool = typer.Option(
        False, "--scaling-torch", help="Run the scaling grid on PyTorch too (slow)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Benchmark PyTorch eager against ONNX Runtime fp32/int8 on the same documents and batches.

    Each runtime runs in its own process (imports and peak RSS per runtime); passes alternate between runtimes after a warm-up. Writes OUT/NAME.json, OUT/NAME.md and OUT/NAME.png (the plot needs matplotlib, the "plot" extra).
    """
    setup_logging(verbose)
    chosen = [r.strip() for r in runtimes.split(",") if r.strip()]
    bad = [r for r in chosen if r not in RUNTIMES]
    if bad or not chosen:
        fail(f"unknown runtime(s) {', '.join(bad)}; valid: {', '.join(RUNTIMES)}", EXIT_USAGE)
    from ..bench import BenchOptions, run_bench

    stem = name or f"bench_{corpus.stem}" + ("_quick" if quick else "")
    opts = BenchOptions(
        model=str(model), checkpoint=str(checkpoint), corpus=str(corpus),
        labelled=str(labelled) if labelled else None,
        train_facts=str(train_facts) if train_facts else None, docs=docs,
        labelled_docs=labelled_docs, name=stem, quick=quick, threads=threads, repeats=repeats,
        runtimes=chosen, max_tokens=max_tokens, scaling=not no_scaling,
        scaling_torch=scaling_torch, command=shlex.join(["docunet-rt", *sys.argv[1:]]),
    )  # fmt: skip
    result = run_guarded(run_bench, opts)
    files = write_outputs(result, out, stem)
    for r, v in result["runtimes"].items():
        if v["status"] != "ok":
            console.print(f"  {r}: skipped ({v['note']})", highlight=False)
            continue
        vs = f" ({v['speedup_vs_torch']:.2f}x torch)" if "speedup_vs_torch" in v else ""
        console.print(
            f"  {r}: {v['docs_per_s']:.2f} docs/s{vs}, first result "
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
