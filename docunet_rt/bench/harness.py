"""The benchmark harness: PyTorch eager vs ONNX Runtime fp32/int8 (and the GPU providers when
they work) on the same documents, the same trained model and exactly the same batches.

The parent samples the corpus, plans length-sorted token-budget batches once
(``features.plan_batches``, as ``Extractor`` does) and starts one ``worker`` process per runtime,
so imports and peak RSS (the worker's VmHWM) are per runtime; ONNX Runtime workers never import
torch (checked). Time to first result is the wall time from spawning a worker to its first
document's result (interpreter, imports, model load, features, inference, decoding). After a
warm-up batch, end-to-end passes (features, batches, decoding) alternate A B C A B C …; figures
are medians with min/max. ``run_bench`` returns the result dict (FLOPs as in ``flops``);
``report.write_outputs`` writes it as JSON, a Markdown report and plots.

What a runtime is (device, precision, promised provider, PyTorch baseline, roofline peak) is
``runtimes.RUNTIME_TABLE``, and its rules hold here: a runtime that ran on another provider than
its name promises is skipped ("ran on <actual>, not <expected>"), speedups are against the
PyTorch baseline of the same device and precision family, and a GPU runtime's roofline is the
measured GPU peak (``peaks``) or None, never the CPU's.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..features import plan_batches
from ..options import DEFAULT_MAX_TOKENS, RUNTIMES
from .envelope import envelope
from .flops import FORMULA, document_flops, encoder_dims
from .peaks import GPU_SIZES
from .runtimes import (
    ALL_RUNTIMES,
    RUNTIME_TABLE,
    provider_mismatch,
    roofline_peak,
    unknown_runtimes,
)

logger = logging.getLogger("docunet_rt")

STAGES = ("features", "collate", "encoder", "merge", "head", "decode")
# The issues' targets: (name, runtime, metric, threshold, comparison). The speed ratios are
# issue 14's (they were 1.5x and 3x before it; older result files record those).
TARGETS = (
    ("ort-fp32 docs/s >= 2x torch", "ort-fp32", "speedup_vs_torch", 2.0, ">="),
    ("ort-int8 docs/s >= 3.5x torch", "ort-int8", "speedup_vs_torch", 3.5, ">="),
    ("int8 F1 change vs fp32 <= 0.5 points", "ort-int8", "f1_change_vs_fp32", 0.5, "abs<="),
    ("ort-fp32 >= 40% of measured matmul roofline", "ort-fp32", "roofline_fraction", 0.4, ">="),
    ("peak RSS <= 1.5 GB (ort-fp32)", "ort-fp32", "peak_rss_mb", 1500.0, "<="),
    ("peak RSS <= 1.5 GB (ort-int8)", "ort-int8", "peak_rss_mb", 1500.0, "<="),
    ("time to first output <= 3 s (ort-fp32)", "ort-fp32", "time_to_first_result_s", 3.0, "<="),
    ("time to first output <= 3 s (ort-int8)", "ort-int8", "time_to_first_result_s", 3.0, "<="),
)
# scaling grid, by quick: entity counts at a fixed length, lengths (wordpieces) at a fixed
# entity count
GRID = {False: ((5, 10, 20, 42, 80), 384, (128, 256, 512, 1024, 2048), 20),
        True: ((5, 20), 256, (128, 512), 10)}  # fmt: skip


@dataclass
class BenchOptions:
    model: str  # exported MODEL_DIR
    checkpoint: str  # the CKPT_DIR it was exported from (torch baseline, encoder dimensions)
    corpus: str  # throughput corpus (any format read_documents reads)
    labelled: str | None = None  # labelled file: F1 / Ign F1 / agreement per runtime
    train_facts: str | None = None  # training file, for Ign F1
    docs: int | None = None  # corpus sample (default 200, quick 8; 0 = all)
    labelled_docs: int | None = None  # first N labelled documents (default = docs; 0 = all)
    name: str | None = None
    quick: bool = False
    threads: int | None = None  # ORT intra-op threads = torch threads (default: usable cores)
    repeats: int | None = None  # alternating passes (default 3, quick 1)
    runtimes: Sequence[str] = RUNTIMES  # any of ALL_RUNTIMES (these + the torch-cuda baselines)
    # the batch plan's padded-token budget (as ExtractOptions.max_tokens)
    max_tokens: int = DEFAULT_MAX_TOKENS
    warmup_batches: int = 1
    seed: int = 0  # corpus sample
    scaling: bool = True
    scaling_torch: bool = False  # the scaling grid on torch too (slow)
    command: str | None = None  # recorded in the result (default: sys.argv)

    def resolved(self) -> BenchOptions:
        d = asdict(self)
        d["docs"] = (8 if self.quick else 200) if self.docs is None else self.docs
        d["labelled_docs"] = d["docs"] if self.labelled_docs is None else self.labelled_docs
        d["repeats"] = self.repeats or (1 if self.quick else 3)
        d["threads"] = self.threads or len(os.sched_getaffinity(0))
        d["runtimes"] = list(self.runtimes)
        unknown = unknown_runtimes(self.runtimes)
        if unknown:
            raise ValueError(
                f"unknown runtime(s) {', '.join(unknown)}; valid choices: {', '.join(ALL_RUNTIMES)}"
            )
        return BenchOptions(**d)


class _Proc:
    """A ``worker`` process (``python -m docunet_rt.bench.worker SPEC``) and its pipes."""

    def __init__(self, name: str, spec: dict[str, Any], tmp: Path) -> None:
        (tmp / f"{name}.json").write_text(json.dumps(spec))
        self.name, self.log = name, tmp / f"{name}.log"
        env = dict(os.environ)
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(spec["threads"])
        cmd = [sys.executable, "-m", "docunet_rt.bench.worker", str(tmp / f"{name}.json")]
        self.t0 = time.perf_counter()
        with self.log.open("w") as err:
            self.p = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env
            )

    def recv(self) -> dict[str, Any]:
        line = self.p.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"bench worker {self.name} died:\n{self.log.read_text()[-3000:]}")
        return json.loads(line)

    def ask(self, cmd: str) -> dict[str, Any]:
        self.p.stdin.write(json.dumps({"cmd": cmd}) + "\n")  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]
        return self.recv()


def _agreement(a: list[Any], b: list[Any]) -> dict[str, float]:
    """Predicted triples of two runtimes: micro Jaccard and per-document exact-match rate."""
    pairs = [({tuple(x) for x in u}, {tuple(x) for x in v}) for u, v in zip(a, b, strict=True)]
    inter, union = sum(len(x & y) for x, y in pairs), sum(len(x | y) for x, y in pairs)
    exact = sum(x == y for x, y in pairs) / max(1, len(pairs))
    return {"jaccard": 1.0 if union == 0 else inter / union, "exact_match_rate": exact}


def _summarize(
    runs: list[dict], n: int, pairs: int, wps: int, flops: float, peak: float | None
) -> dict:
    """Medians [min, max] over passes of one runtime; roofline fractions of ``peak`` GFLOP/s
    (None without a peak)."""

    def stat(xs: list[float]) -> list[float]:
        return [float(np.median(xs)), float(min(xs)), float(max(xs))]

    med = float(np.median([r["seconds"] for r in runs]))
    dps = stat([n / r["seconds"] for r in runs])
    p50 = stat([float(np.percentile(r["latencies"], 50)) for r in runs])
    p95 = stat([float(np.percentile(r["latencies"], 95)) for r in runs])
    split = {k: float(np.median([r[k] for r in runs])) for k in STAGES}
    infer = split["encoder"] + split["merge"] + split["head"]
    achieved, achieved_infer = flops / med / 1e9, flops / infer / 1e9
    return {
        "docs_per_s": dps[0], "docs_per_s_min": dps[1], "docs_per_s_max": dps[2],
        "entity_pairs_per_s": pairs / med, "wordpieces_per_s": wps / med,
        "batch_latency_p50_s": p50[0], "batch_latency_p95_s": p95[0],
        "spread": {"batch_latency_p50_s": p50[1:], "batch_latency_p95_s": p95[1:]},
        "seconds_per_pass": med, "passes": len(runs), "peak_rss_mb": max(r["rss_mb"] for r in runs),
        "time_split_s": split, "time_split": {k: v / med for k, v in split.items()},
        "achieved_gflops": achieved,
        "roofline_fraction": achieved / peak if peak else None,
        "roofline_fraction_inference": achieved_infer / peak if peak else None,
    }  # fmt: skip


def summarize_runtimes(
    results: dict[str, dict[str, Any]],
    sizes: tuple[int, int, int, float],
    cpu_peak: dict[str, Any],
    gpu_peak: dict[str, Any] | None,
) -> None:
    """Replace each ok runtime's ``runs`` by its summary; its roofline is set against
    ``runtimes.roofline_peak`` (recorded as ``roofline_peak``): the CPU peak for a CPU runtime,
    the GPU peak of its precision for a GPU runtime, or None when no GPU peak was measured.
    ``sizes``: documents, entity pairs, wordpieces and FLOPs of the sample."""
    for name, res in results.items():
        if res["status"] == "ok":
            pk = roofline_peak(name, cpu_peak, gpu_peak)
            res.update(_summarize(res.pop("runs"), *sizes, pk["gflops"]), roofline_peak=pk)


def compare_to_baselines(
    results: dict[str, dict[str, Any]],
    facts: dict[str, list[Any]],
    lfacts: dict[str, list[Any]] | None = None,
) -> None:
    """``torch_baseline`` of each ok runtime (``runtimes.Runtime.baseline``: CPU runtimes
    ``torch``, GPU runtimes the torch-cuda runtime of their precision family) and, when that
    baseline ran too, ``speedup_vs_torch``, ``agreement_vs_torch`` and (labelled documents)
    ``labelled_agreement_vs_torch`` against it."""
    ok = {n for n, r in results.items() if r["status"] == "ok"}
    for name in ok:
        res, base = results[name], RUNTIME_TABLE[name].baseline
        res["torch_baseline"] = base
        if base not in ok:
            continue
        res["speedup_vs_torch"] = res["docs_per_s"] / results[base]["docs_per_s"]
        if name in facts and base in facts:
            res["agreement_vs_torch"] = _agreement(facts[name], facts[base])
        if lfacts and name in lfacts and base in lfacts:
            res["labelled_agreement_vs_torch"] = _agreement(lfacts[name], lfacts[base])


def evaluate_targets(runtimes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, rt, metric, thr, cmp in TARGETS:
        v = runtimes.get(rt, {}).get(metric)
        met = v is not None and {">=": v >= thr, "<=": v <= thr, "abs<=": abs(v) <= thr}[cmp]
        out.append({"name": name, "runtime": rt, "metric": metric, "value": v, "threshold": thr,
                    "comparison": cmp, "measured": v is not None, "met": bool(met)})  # fmt: skip
    return out


def _start(name: str, base: dict[str, Any], tmp: Path) -> tuple[dict, _Proc | None]:
    """Start a runtime's worker and wait for its first result (or learn why it cannot run: the
    worker says so, and a worker on another provider than the name promises is skipped too)."""
    p = _Proc(name, {**base, **RUNTIME_TABLE[name].to_spec()}, tmp)
    msg = p.recv()
    if msg["event"] == "ready" and (why := provider_mismatch(name, msg.get("provider"))):
        p.p.kill()  # the worker checks this itself; a second check costs nothing
        msg = {"event": "unavailable", "reason": why, "provider": msg.get("provider")}
    if msg["event"] != "ready":
        p.p.wait()
        logger.info("%s skipped: %s", name, msg["reason"])
        return {"status": "skipped", "note": msg["reason"], "provider": msg.get("provider")}, None
    ttfr = time.perf_counter() - p.t0
    p.ask("warmup")
    logger.info("%s: first result after %.2fs on %s", name, ttfr, msg["provider"])
    res = {"status": "ok", "provider": msg["provider"], "time_to_first_result_s": ttfr,
           "load_s": msg["load_s"], "first_doc_s": msg["first_doc_s"],
           "rss_at_first_result_mb": msg["rss_mb"]}  # fmt: skip
    return res, p


def _gpu_peak(o: BenchOptions, base: dict[str, Any], tmp: Path) -> dict[str, Any] | None:
    """The GPU's matmul peaks (``peaks.measure_gpu_matmul_peak``, in a worker, before the
    runtimes hold the device) when a GPU runtime was asked for; None otherwise."""
    if not any(RUNTIME_TABLE[n].gpu for n in o.runtimes):
        return None
    from ..runtime.sessions import cuda_driver_present

    if not cuda_driver_present():
        return {"available": False, "reason": "no NVIDIA driver (libcuda.so.1 does not load)"}
    proc = _Proc("gpu-peak", {**base, "runtime": "gpu-peak", "sizes": GPU_SIZES[o.quick]}, tmp)
    try:
        peak = proc.recv()
    except RuntimeError as e:  # no GPU roofline is no reason to lose the run
        logger.warning("%s", e)
        peak = {"available": False, "reason": "the GPU peak worker died (see the log above)"}
    proc.p.wait()
    return peak


def _measure(o: BenchOptions, base: dict, tmp: Path, procs: dict[str, _Proc], n_docs: int):
    """Peak matmul, workers started one after another (time to first result uncontended), then
    passes A B C A B C …, labelled predictions, scaling + profile; ``procs`` fills as they
    start."""
    sizes = [1024] if o.quick else [1024, 2048]
    peak_proc = _Proc("peak", {**base, "runtime": "peak", "sizes": sizes}, tmp)
    peak = peak_proc.recv()
    peak_proc.p.wait()
    gpu_peak = _gpu_peak(o, base, tmp)
    results = {}
    for name in o.runtimes:
        results[name], p = _start(name, base, tmp)
        if p is not None:
            procs[name], results[name]["runs"] = p, []
    for r in range(o.repeats):
        for name, p in procs.items():
            time.sleep(0.25)  # let the previous runtime's spinning threads park
            results[name]["runs"].append(p.ask("run"))
            dps = n_docs / results[name]["runs"][-1]["seconds"]
            logger.info("pass %d/%d %s: %.2f docs/s", r + 1, o.repeats, name, dps)
    lfacts = {n: p.ask("labelled")["facts"] for n, p in procs.items()} if o.labelled else {}
    scaling, profile = [], None
    for name in [n for n in ("ort-fp32", "torch") if o.scaling and n in procs]:
        if name == "ort-fp32" or o.scaling_torch:
            msg = procs[name].ask("scaling")
            scaling += [{"runtime": name, **row} for row in msg["rows"]]
            profile = profile or msg["profile"]
    facts = {}
    for name, p in procs.items():
        fin = p.ask("finish")
        p.p.wait()
        facts[name], own_plan = fin["facts"], results[name]["runs"][0]["own_plan"]
        results[name].update(torch_imported=fin["torch_imported"], own_plan=own_plan)
    return (peak, gpu_peak), results, facts, lfacts, scaling, profile


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run the benchmark → result dict (plain field names; see the module docstring)."""
    from ..data import read_documents
    from ..features import TokenizerInfo, build_features
    from ..metrics import score, train_facts
    from ..runtime import ModelSpec

    o, t_start = options.resolved(), time.perf_counter()
    spec = ModelSpec.load(o.model)
    tok, cfg, dims = TokenizerInfo.from_dir(spec.path), spec.config, encoder_dims(o.checkpoint)
    all_docs = read_documents(o.corpus)
    idx = range(len(all_docs))
    if o.docs and o.docs < len(all_docs):
        idx = sorted(np.random.default_rng(o.seed).choice(len(all_docs), o.docs, replace=False))
    docs = [all_docs[int(i)] for i in idx]
    feats = [build_features(d, tok, cfg) for d in docs]
    plan = plan_batches(feats, cfg.max_length, o.max_tokens)
    fl = [document_flops(f, cfg, dims) for f in feats]
    n_pairs, n_wps = sum(len(f.pairs) for f in feats), sum(f.seq_len for f in feats)
    flops = sum(x["total"] for x in fl)
    ldocs = read_documents(o.labelled) if o.labelled else []
    ldocs = ldocs[: o.labelled_docs] if o.labelled_docs else ldocs
    tmp = Path(tempfile.mkdtemp(prefix="docunet_bench_"))
    # documents go to the workers as pickles in this private directory (see worker's docstring)
    for key, obj in (("docs", docs), ("first_doc", docs[0]), ("labelled", ldocs)):
        (tmp / f"{key}.pkl").write_bytes(pickle.dumps(obj))
    base = {
        **{k: str(tmp / f"{k}.pkl") for k in ("docs", "first_doc", "labelled")},
        "model": str(spec.path), "checkpoint": str(o.checkpoint), "threads": o.threads,
        "plan": plan, "seq_lens": [f.seq_len for f in feats], "max_tokens": o.max_tokens,
        "warmup_batches": o.warmup_batches, "quick": o.quick, "dims": asdict(dims),
        "grid": GRID[o.quick], "tmp": str(tmp), "scaling_docs": 1 if o.quick else 2,
        "scaling_repeats": 1 if o.quick else 2,
    }  # fmt: skip
    logger.info("bench: %d docs in %d batches, %d threads", len(docs), len(plan), o.threads)
    procs: dict[str, _Proc] = {}
    try:
        peaks, results, facts, lfacts, scaling, profile = _measure(o, base, tmp, procs, len(docs))
    finally:  # a failed run leaves no workers and no temporary files behind
        for p in procs.values():
            if p.p.poll() is None:
                p.p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    (peak, gpu_peak), sizes = peaks, (len(docs), n_pairs, n_wps, flops)
    summarize_runtimes(results, sizes, peak, gpu_peak)
    compare_to_baselines(results, facts, lfacts if ldocs else None)
    train = train_facts(read_documents(o.train_facts)) if o.train_facts else None
    for name, res in ((n, results[n]) for n in procs if ldocs):
        s = score(ldocs, [{tuple(x) for x in d} for d in lfacts[name]], train)
        res.update(f1=s.f1, ign_f1=s.ign_f1, precision=s.precision, recall=s.recall)
    for res in (results[n] for n in procs if ldocs and "ort-fp32" in procs):
        res["f1_change_vs_fp32"] = 100 * (res["f1"] - results["ort-fp32"]["f1"])
    return envelope(
        o.command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        kind="bench", name=o.name, options={k: v for k, v in asdict(o).items() if k != "command"},
        threads={"ort_intra_op": o.threads, "ort_inter_op": 1, "torch": o.threads},
        corpus={"path": o.corpus, "documents_in_file": len(all_docs), "documents": len(docs),
                "sample_seed": o.seed, "entity_pairs": n_pairs, "wordpieces": n_wps,
                "windows": sum(len(f.windows) for f in feats), "batches": len(plan),
                "max_tokens": o.max_tokens},
        labelled={"path": o.labelled, "documents": len(ldocs), "train_facts": o.train_facts}
        if ldocs else None,
        peak_matmul=peak, peak_matmul_gpu=gpu_peak, runtimes=results, scaling=scaling,
        profile=profile,
        flops={"sample_total": flops, "formula": FORMULA,
               "per_doc_mean": {k: float(np.mean([x[k] for x in fl])) for k in fl[0]}},
        targets=evaluate_targets(results), wall_seconds=time.perf_counter() - t_start,
    )  # fmt: skip
