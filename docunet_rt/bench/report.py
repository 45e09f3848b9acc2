"""Report files of one ``run_bench`` result: NAME.json, a Markdown report NAME.md and NAME.png
(with matplotlib). ``docunet-rt bench`` and ``benchmarks/run_bench.py`` write them through
:func:`write_outputs`; ``benchmarks/make_tables.py`` builds the README tables from
:func:`headline_table` and :func:`markdown_table`.

Stdlib only at import (matplotlib loads when a plot is drawn).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runtimes import RUNTIME_TABLE

logger = logging.getLogger("docunet_rt")
HEADLINE = (
    "runtime", "docs/s [min–max]", "vs torch", "pairs/s", "wordpieces/s", "batch p50 / p95 s",
    "first result s", "peak RSS MB", "encoder / merge / head", "roofline", "F1", "Ign F1",
    "triples vs torch (Jaccard)",
)  # fmt: skip


def _f(v: Any, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table (also used by benchmarks/make_tables.py for the README)."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def speedup_cell(r: dict[str, Any]) -> str:
    """``1.52×`` against CPU torch, ``1.52× vs torch-cuda-bf16`` against another baseline,
    ``- (torch-cuda-bf16 did not run)`` without one."""
    base, x = r.get("torch_baseline", "torch"), r.get("speedup_vs_torch")
    if x is None:
        return "-" if base == "torch" else f"- ({base} did not run)"
    return f"{x:.2f}×" if base == "torch" else f"{x:.2f}× vs {base}"


def headline_row(name: str, r: dict[str, Any]) -> list[str]:
    """One runtime's cells of the headline table (``HEADLINE``)."""
    if r["status"] != "ok":
        return [name, f"skipped: {r['note']}"] + [""] * (len(HEADLINE) - 2)
    split = " / ".join(f"{r['time_split'][k]:.0%}" for k in ("encoder", "merge", "head"))
    return [
        name, f"{r['docs_per_s']:.2f} [{r['docs_per_s_min']:.2f}–{r['docs_per_s_max']:.2f}]",
        speedup_cell(r), f"{r['entity_pairs_per_s']:.0f}",
        f"{r['wordpieces_per_s']:.0f}",
        f"{r['batch_latency_p50_s']:.2f} / {r['batch_latency_p95_s']:.2f}",
        f"{r['time_to_first_result_s']:.2f}", f"{r['peak_rss_mb']:.0f}", split,
        _f(r.get("roofline_fraction"), ".1%"), _f(r.get("f1"), ".4f"), _f(r.get("ign_f1"), ".4f"),
        _f((r.get("agreement_vs_torch") or {}).get("jaccard"), ".4f"),
    ]  # fmt: skip


def headline_table(res: dict[str, Any]) -> list[str]:
    return markdown_table(HEADLINE, [headline_row(k, v) for k, v in res["runtimes"].items()])


def gpu_notes(res: dict[str, Any]) -> list[str]:
    """What the GPU runtimes' figures are set against: their PyTorch baselines and the GPU
    matmul peak (or why there is none). Nothing when no GPU runtime ran (a skipped one says
    why in its row)."""
    gpu = [n for n, r in res["runtimes"].items()
           if r["status"] == "ok" and n in RUNTIME_TABLE and RUNTIME_TABLE[n].gpu]  # fmt: skip
    if not gpu:
        return []
    pk = res.get("peak_matmul_gpu") or {"available": False, "reason": "not measured"}
    if pk.get("available"):
        fig = ", ".join(f"{k} {_f(v, '.0f')}" for k, v in pk["peak_gflops"].items())
        strict = pk.get("fp32_strict_gflops")
        tf32 = (
            "TF32 allowed"
            if strict is None
            else f"the faster of strict fp32 ({strict:.0f}) and TF32"
        )
        roof = (
            f"GPU roofline: measured dense matmul peak on {pk['device']} ({pk['source']}, "
            f"n = {pk['sizes']}, best of {pk['best_of']}): {fig} GFLOP/s (fp32: {tf32}); each "
            "GPU runtime is set against the peak of its precision."
        )
    else:
        roof = f"GPU roofline: none ({pk['reason']}), so GPU runtimes show '-', never the CPU peak."
    return [
        "",
        "GPU speedups and triple agreement are against the PyTorch CUDA baseline of the same "
        "precision family (fp32 runtimes vs `torch-cuda-fp32`, fp16/bf16 runtimes vs "
        "`torch-cuda-bf16`; '-' where it did not run), CPU runtimes' against `torch` on the CPU. "
        "A runtime that ran on another provider than its name promises is skipped, never "
        "reported under its name.",
        "",
        roof,
    ]


def providers_line(res: dict[str, Any]) -> list[str]:
    """``Providers: torch torch-cpu, ort-fp32 CPUExecutionProvider, …`` (what really ran)."""
    ran = [f"{k} {v['provider']}" for k, v in res["runtimes"].items()
           if v["status"] == "ok" and v.get("provider")]  # fmt: skip
    return [f"Providers actually used: {', '.join(ran)}.", ""] if ran else []


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
        *providers_line(res),
        f"Roofline (CPU runtimes): measured dense fp32 matmul peak {pk['peak_gflops']:.1f} GFLOP/s "
        f"({pk['source']}, {pk['threads']} threads, n = {pk['sizes']}, best of {pk['best_of']}); "
        f"the model does {fl['total']:.2f} GFLOP per document (encoder {fl['encoder']:.2f}, head "
        f"{fl['head']:.2f}; formula in `docunet_rt/bench/flops.py`); int8 is set against the "
        "same peak.",
        *gpu_notes(res),
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
