"""Markdown tables for the README from benchmarks/results/*.json.

    python benchmarks/make_tables.py                     # print the tables
    python benchmarks/make_tables.py --readme README.md  # rewrite its results section

Tables: the headline runtime comparison of every benchmark run (``"kind": "bench"``, written by
``run_bench.py`` / ``docunet-rt bench``; ``--quick`` smoke runs only when there is nothing else),
training results (``"kind": "training"``, written by ``collect_training.py``; recipes named
``<recipe>_seed<N>`` with two or more seeds also get mean ± s.d. over seeds) and export parity
(``"kind": "parity"`` with a ``"reports"`` list, or the list ``docunet-rt parity --json`` writes).
The README section between ``<!-- results:start -->`` and ``<!-- results:end -->`` is replaced;
it shows the plot of the first run with scaling curves.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from common import RESULTS

from docunet_rt.bench import gpu_notes, headline_table, markdown_table

START, END = "<!-- results:start -->", "<!-- results:end -->"


def load_results(folder: Path) -> dict[str, list[tuple[str, Any]]]:
    """Result files by kind: bench, training, parity (others are ignored)."""
    kinds: dict[str, list[tuple[str, Any]]] = {
        "bench": [],
        "training": [],
        "parity": [],
        "extract": [],
        "export": [],
        "demo": [],
        "e2e": [],
        "int8_convs": [],
    }
    for f in sorted(folder.glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError:
            print(f"skipping {f}: not JSON", file=sys.stderr)
            continue
        if isinstance(data, list) and data and "max_abs_diff" in data[0]:
            kinds["parity"].append((f.stem, {"reports": data}))
        elif isinstance(data, dict) and data.get("kind") in kinds:
            kinds[data["kind"]].append((f.stem, data))
    full = [x for x in kinds["bench"] if not x[1].get("options", {}).get("quick")]
    kinds["bench"] = full or kinds["bench"]
    return kinds


def _f(v: Any, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def bench_section(name: str, r: dict[str, Any]) -> list[str]:
    c, m = r["corpus"], r.get("machine", {})
    missed = [t["name"] for t in r["targets"] if not t["met"]]
    lines = [
        f"**{name}**: {c['documents']} documents of `{Path(c['path']).name}`, "
        f"{m.get('cpu', '?')} ({r['threads']['ort_intra_op']} threads), {r.get('date', '')[:10]}"
        + (" — quick smoke run, not a measurement" if r["options"].get("quick") else ""),
        "",
        *headline_table(r),
        *gpu_notes(r),  # baselines and roofline of GPU runtimes (nothing for a CPU-only run)
        "",
        f"Targets met: {sum(t['met'] for t in r['targets'])} of {len(r['targets'])}"
        + (f"; missed or not measured: {'; '.join(missed)}" if missed else "")
        + f". Details: `benchmarks/results/{name}.md`.",
    ]
    return lines


def _dev_at_decision(r: dict[str, Any]) -> float | None:
    """Dev F1 at the run's decision logit: the tuned one (train --tune-threshold), else 0."""
    tuned = r.get("threshold_choice")
    return tuned["f1"] if tuned else (r.get("dev") or {}).get("f1")


def training_table(rows: list[tuple[str, Any]]) -> list[str]:
    header = ["run", "epoch (dev-selected) / done", "dev F1", "dev Ign F1", "test F1",
              "test Ign F1", "decision logit (dev F1 / test F1 at 0)",
              "train s / epoch (mean; fastest)", "train docs/s (mean; fastest)"]  # fmt: skip
    cells = []
    for name, r in rows:
        dev, test = r.get("dev") or {}, r.get("test") or {}
        decision, dev_ign = "0 (untuned)", dev.get("ign_f1")
        if tuned := r.get("threshold_choice"):
            # train --tune-threshold: dev and test F1 are at the dev-chosen logit, those at 0
            # beside it (dev Ign F1 is recorded at 0 only, so it is not shown)
            at0 = (r.get("test_at_logit_0") or {}).get("f1")
            if at0 is None and tuned["threshold"] == 0:
                at0 = test.get("f1")
            decision = f"{tuned['threshold']:+.1f} ({_f(tuned['f1_at_zero'])} / {_f(at0)})"
            dev_ign = None
        cells.append([
            name, f"{r.get('selected_epoch')} / {r.get('epochs_done')}", _f(_dev_at_decision(r)),
            _f(dev_ign), _f(test.get("f1")), _f(test.get("ign_f1")), decision,
            f"{_f(r.get('mean_train_seconds_per_epoch'), '.0f')}; "
            f"{_f(r.get('min_train_seconds_per_epoch'), '.0f')}",
            f"{_f(r.get('mean_train_docs_per_s'), '.2f')}; {_f(r.get('max_train_docs_per_s'), '.2f')}",
        ])  # fmt: skip
    return markdown_table(header, cells)


def _spread(values: list[float | None]) -> str:
    """Mean ± sample standard deviation, in F1 points ("-" if any value is missing)."""
    if not values or any(v is None for v in values):
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def seeds_table(rows: list[tuple[str, Any]]) -> list[str]:
    """One row per recipe run with two or more seeds (result names ``<recipe>_seed<N>``)."""
    groups: dict[str, list[tuple[int, Any]]] = {}
    for name, r in rows:
        m = re.fullmatch(r"(.+)_seed(\d+)", name)
        if m:
            groups.setdefault(m[1], []).append((int(m[2]), r))
    header = ["recipe", "seeds", "dev F1", "test F1", "test F1 at logit 0 (tuned runs)"]
    cells = []
    for recipe, runs in groups.items():
        if len(runs) < 2:
            continue
        runs.sort(key=lambda x: x[0])
        tuned = [r.get("threshold_choice") for _, r in runs]
        # dev and test at each run's decision logit; a column with a run missing its value, or
        # mixing tuned and untuned runs, shows "-" rather than a partial mean
        dev = [_dev_at_decision(r) for _, r in runs]
        test = [(r.get("test") or {}).get("f1") for _, r in runs]
        at0 = [(r.get("test_at_logit_0") or {}).get("f1") for _, r in runs]
        mixed = any(tuned) and not all(tuned)
        cells.append([
            recipe, "/".join(str(s) for s, _ in runs),
            "-" if mixed else _spread(dev), "-" if mixed else _spread(test),
            _spread(at0) if all(tuned) else "-",
        ])  # fmt: skip
    return markdown_table(header, cells) if cells else []


def parity_table(rows: list[tuple[str, Any]]) -> list[str]:
    header = ["file", "precision", "documents", "max abs Δlogit", "mean abs Δlogit",
              "triple agreement", "ok"]  # fmt: skip
    cells = [
        [name, p["precision"], p["documents"], f"{p['max_abs_diff']:.2e}",
         f"{p['mean_abs_diff']:.2e}", _f(p.get("triple_agreement")), p.get("ok")]
        for name, r in rows for p in r["reports"]
    ]  # fmt: skip
    return markdown_table(header, cells)


def extract_table(rows: list[tuple[str, Any]]) -> list[str]:
    header = ["run", "precision", "documents", "docs/s", "triples/s", "first output s",
              "peak RSS MB", "threads"]  # fmt: skip
    cells = [
        [name, prec, x["docs"], _f(x["docs_per_s"], ".2f"), _f(x["triples_per_s"], ".1f"),
         _f(x["time_to_first_output"], ".2f"), _f(x["peak_rss_mb"], ".0f"), r.get("threads")]
        for name, r in rows for prec, x in r["runs"].items()
    ]  # fmt: skip
    return markdown_table(header, cells)


def e2e_table(rows: list[tuple[str, Any]]) -> list[str]:
    """Raw text in, triples out (benchmarks/e2e_eval.py): F1 of each stage, and speed."""
    header = ["run", "task", "docs", "mention F1", "concept / cluster F1", "relation F1 e2e",
              "relation F1 gold entities", "e2e / gold", "raw-text docs/s / gold docs/s"]  # fmt: skip
    cells = []
    for name, r in rows:
        sp = r["speed"]
        if r["task"] == "cdr":
            mid, e2e, gold = r["concepts"], r["cid_end_to_end"], r["cid_gold_entities"]
            e2e_s = f"CID {_f(e2e['f1'] * 100, '.1f')}"
        else:
            mid, e2e, gold = (
                r["entity_clusters"],
                r["relations_strict"],
                r["relations_gold_entities"],
            )
            e2e_s = (f"strict {_f(e2e['f1'] * 100, '.1f')}, relaxed "
                     f"{_f(r['relations_relaxed']['f1'] * 100, '.1f')}")  # fmt: skip
        ratio = e2e["f1"] / gold["f1"] if gold["f1"] else None
        speed = (f"{_f(sp['raw_over_gold'], '.2f')} ({_f(sp['raw_text_docs_per_s'], '.2f')} / "
                 f"{_f(sp['gold_entities_docs_per_s'], '.2f')})")  # fmt: skip
        cells.append([name, r["task"], r["documents"], _f(r["mentions"]["f1"] * 100, ".1f"),
                      _f(mid["f1"] * 100, ".1f"), e2e_s, _f(gold["f1"] * 100, ".1f"),
                      _f(ratio, ".2f"), speed])  # fmt: skip
    return markdown_table(header, cells)


def export_table(rows: list[tuple[str, Any]]) -> list[str]:
    header = ["run", "documents", "fp32 max abs Δlogit (data / synthetic)",
              "fp32 triples identical", "int8 triple agreement", "F1 torch / ORT fp32 / ORT int8",
              "int8 F1 change (points)", "export s"]  # fmt: skip
    cells = []
    for name, r in rows:
        par, f1 = r["parity"], r["f1"]
        # the int8 graph behind the parity figures (files written before the field: per_channel)
        setting = r.get("int8_default_setting", "per_channel")
        changes = ", ".join(
            f"{k.removeprefix('ort_int8_')}: {v:+.2f}"
            for k, v in r["int8_f1_change_vs_fp32_points"].items()
        )
        cells.append([
            name, par["data_fp32"]["documents"],
            f"{par['data_fp32']['max_abs_diff']:.1e} / {par['synthetic_fp32']['max_abs_diff']:.1e}",
            par["data_fp32"]["triples_identical"] and par["synthetic_fp32"]["triples_identical"],
            f"{_f(par['data_int8']['triple_agreement'])} ({setting})",
            f"{_f(f1['torch_fp32']['f1'])} / {_f(f1['ort_fp32']['f1'])} "
            f"/ {_f(f1[f'ort_int8_{setting}']['f1'])} ({setting})",
            changes, _f(r["export_seconds"], ".0f"),
        ])  # fmt: skip
    return markdown_table(header, cells)


def int8_convs_table(rows: list[tuple[str, Any]]) -> list[str]:
    """int8 variants (benchmarks/int8_convs.py): F1 change vs ORT fp32 and docs/s, one run."""
    header = ["run", "variant", "F1 change vs fp32 (points)", "docs/s", "vs int8 (MatMuls only)",
              "head s"]  # fmt: skip
    cells = []
    for name, r in rows:
        base = r["speed"]["ort_int8_matmuls"]["docs_per_s"]
        for v, sp in r["speed"].items():
            changes = " / ".join(
                f"{f1['f1_change_vs_fp32_points'][v]:+.2f}" if v != "ort_fp32" else "0"
                for f1 in r["f1"].values()
            )
            cells.append([name, v.removeprefix("ort_"), changes, _f(sp["docs_per_s"], ".2f"),
                          f"{sp['docs_per_s'] / base:.2f}×", _f(sp["head_seconds_median"], ".1f")])  # fmt: skip
    return markdown_table(header, cells)


def demo_table(rows: list[tuple[str, Any]]) -> list[str]:
    header = ["run", "wall time (incl. install)", "dev F1", "test F1", "extracted docs",
              "docs/s (int8)"]  # fmt: skip
    cells = [
        [name, f"{r['make_demo_wall_seconds'] / 60:.1f} min", _f(r["dev_f1"], ".3f"),
         _f(r["test_f1"], ".3f"), r["documents_extracted"], _f(r["extract"].get("docs_per_s"), ".1f")]
        for name, r in rows
    ]  # fmt: skip
    return markdown_table(header, cells)


def render(
    kinds: dict[str, list[tuple[str, Any]]], results: Path = RESULTS, base: Path | None = None
) -> str:
    """The results section; the plot path is relative to ``base`` (the README's folder)."""
    lines: list[str] = []
    if kinds["bench"]:
        lines += ["### Runtimes (CPU unless stated)", ""]
        for name, r in kinds["bench"]:
            lines += [*bench_section(name, r), ""]
        # the plot of the run with scaling curves (the headline), else the first run's
        shown = [n for n, r in kinds["bench"] if r.get("scaling")] or [kinds["bench"][0][0]]
        png = results / f"{shown[0]}.png"
        if png.exists():
            rel = os.path.relpath(png.resolve(), (base or Path.cwd()).resolve())
            lines += [f"![runtime benchmark: docs/s per runtime and scaling]({rel})", ""]
    if kinds["demo"]:
        lines += ["### `make demo` (fresh clone, synthetic corpus, embedded MiniLM)", ""]
        lines += [*demo_table(kinds["demo"]), ""]
    if kinds["extract"]:
        lines += ["### `docunet-rt extract` runs (precision@batch budget where compared)", ""]
        lines += [*extract_table(kinds["extract"]), ""]
    if kinds["training"]:
        lines += ["### Training", "", *training_table(kinds["training"]), ""]
        if seeds := seeds_table(kinds["training"]):
            lines += ["Over seeds (F1 points, mean ± sample s.d.):", "", *seeds, ""]
    if kinds["e2e"]:
        lines += ["### Raw text in, triples out (entities predicted; F1 in points)", ""]
        lines += [*e2e_table(kinds["e2e"]), ""]
    if kinds["int8_convs"]:
        lines += ["### int8: quantised U-Net convolutions (F1 change per labelled file)", ""]
        lines += [*int8_convs_table(kinds["int8_convs"]), ""]
    if kinds["export"]:
        lines += ["### Export: parity and int8 accuracy", ""]
        lines += [*export_table(kinds["export"]), ""]
    if kinds["parity"]:
        lines += ["### Export parity (ONNX Runtime vs PyTorch)", ""]
        lines += [*parity_table(kinds["parity"]), ""]
    return "\n".join(lines).strip() + "\n" if lines else "(no results yet)\n"


def rewrite_readme(readme: Path, section: str) -> None:
    text = readme.read_text()
    if START not in text or END not in text or text.index(START) > text.index(END):
        sys.exit(f"{readme} has no '{START}' … '{END}' section to rewrite")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{section}{END}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--readme", type=Path, default=None, help="rewrite this README's section")
    args = ap.parse_args()
    kinds = load_results(args.results)
    section = render(kinds, args.results, args.readme.parent if args.readme else None)
    if args.readme:
        rewrite_readme(args.readme, section)
        print(f"rewrote the results section of {args.readme}")
    else:
        print(section, end="")


if __name__ == "__main__":
    main()
