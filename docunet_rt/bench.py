"""Runtime benchmark: PyTorch eager vs ONNX Runtime fp32/int8 (and the GPU providers when they
work) on the same documents, the same trained model and exactly the same batches.

The parent samples the corpus, plans length-sorted token-budget batches once
(``features.plan_batches``, as ``Extractor`` does) and starts one subprocess per runtime, so
imports and peak RSS (``ru_maxrss``) are per runtime; ONNX Runtime workers never import torch
(checked). Time to first result is the wall time from spawning a worker to its first document's
result (interpreter, imports, model load, features, inference, decoding). After a warm-up batch,
end-to-end passes (features, batches, decoding) alternate A B C A B C …; figures are medians with
min/max. ``run_bench`` returns the result dict; ``docunet_rt.cli.bench_cmd.write_outputs``
writes it as JSON, a Markdown report and plots.

FLOPs (multiply-add = 2) per document on its own shapes (batch padding is waste, not work):
  encoder, per window of L tokens: layers · [2·L·H·(4H + 2I) + 4·L²·H]  (QKV/out/FFN; QKᵀ, AV)
  head, n = entities padded to a multiple of 4, T positions, P mentions, Q pairs, C = D':
    entity attention 2·n·P·heads·T; context map 2·T·n²·heads + 2·n²·T·H, projection 2·n²·H·C;
    U-Net with conv3(a, b, m) = 2·a·b·9·m²: conv3(C,b,n) + conv3(b,b,n) + conv3(b,2b,n/2)
      + conv3(2b,2b,n/2) + 2·conv3(2b,2b,n/4) + up1 [transposed 2·2b·2b·(n/2)²
      + conv3(4b,b,n/2) + conv3(b,b,n/2)] + up2 [2·b·b·n² + conv3(2b,b/2,n) + conv3(b/2,b/2,n)]
      + 1×1 2·(b/2)·out·n²;
    classifier: extractors 2 · 2·Q·(H + out)·E, grouped bilinear 2·Q·E·k·R (k = block size).
  Not counted: embeddings, norms, softmax, activations, gathers, the unused BERT pooler (2·H²).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import resource
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

from .features import plan_batches
from .options import DEFAULT_MAX_TOKENS

logger = logging.getLogger("docunet_rt")

CPU_RUNTIMES = ("torch", "ort-fp32", "ort-int8")
GPU_RUNTIMES = {"ort-cuda-fp32": "cuda", "ort-cuda-fp16": "cuda", "tensorrt-fp16": "tensorrt"}
STAGES = ("features", "collate", "encoder", "merge", "head", "decode")
# The targets: (name, runtime, metric, threshold, comparison)
TARGETS = (
    ("ort-fp32 docs/s >= 1.5x torch", "ort-fp32", "speedup_vs_torch", 1.5, ">="),
    ("ort-int8 docs/s >= 3x torch", "ort-int8", "speedup_vs_torch", 3.0, ">="),
    ("int8 F1 change vs fp32 <= 0.5 points", "ort-int8", "f1_change_vs_fp32", 0.5, "abs<="),
    ("ort-fp32 >= 40% of measured matmul roofline", "ort-fp32", "roofline_fraction", 0.4, ">="),
    ("peak RSS <= 1.5 GB (ort-fp32)", "ort-fp32", "peak_rss_mb", 1500.0, "<="),
    ("peak RSS <= 1.5 GB (ort-int8)", "ort-int8", "peak_rss_mb", 1500.0, "<="),
    ("time to first output <= 3 s (ort-fp32)", "ort-fp32", "time_to_first_result_s", 3.0, "<="),
    ("time to first output <= 3 s (ort-int8)", "ort-int8", "time_to_first_result_s", 3.0, "<="),
)
# scaling grid: entity counts at a fixed length, lengths (wordpieces) at a fixed entity count
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
    runtimes: Sequence[str] = (*CPU_RUNTIMES, *GPU_RUNTIMES)
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
        unknown = set(self.runtimes) - {*CPU_RUNTIMES, *GPU_RUNTIMES}
        if unknown:
            raise ValueError(f"unknown runtime(s) {', '.join(sorted(unknown))}")
        return BenchOptions(**d)


@dataclass
class EncoderDims:
    layers: int
    hidden: int
    intermediate: int


def encoder_dims(checkpoint: str | os.PathLike) -> EncoderDims:
    """Encoder depth and widths from CKPT_DIR/config.json (no torch)."""
    enc = json.loads((Path(checkpoint) / "config.json").read_text())["encoder_config"]
    return EncoderDims(enc["num_hidden_layers"], enc["hidden_size"], enc["intermediate_size"])


def encoder_flops(window_lengths: Sequence[int], d: EncoderDims) -> float:
    H, inter = d.hidden, d.intermediate
    per = [2 * L * H * (4 * H + 2 * inter) + 4 * L * L * H for L in window_lengths]
    return float(d.layers * sum(per))


def conv3(c_in: int, c_out: int, m: int) -> float:
    return 2.0 * c_in * c_out * 9 * m * m


def unet_flops(n: int, c_in: int, b: int, c_out: int, use_unet: bool = True) -> float:
    if not use_unet:  # FeedForwardMap: three 1×1 convolutions
        return 2.0 * n * n * (c_in * b + b * (b // 2) + (b // 2) * c_out)
    h, q = n // 2, n // 4
    down = conv3(c_in, b, n) + conv3(b, b, n) + conv3(b, 2 * b, h) + conv3(2 * b, 2 * b, h)
    down += 2 * conv3(2 * b, 2 * b, q)
    up1 = 2.0 * (2 * b) ** 2 * h * h + conv3(4 * b, b, h) + conv3(b, b, h)
    up2 = 2.0 * b * b * n * n + conv3(2 * b, b // 2, n) + conv3(b // 2, b // 2, n)
    return down + up1 + up2 + 2.0 * (b // 2) * c_out * n * n


def head_flops(T: int, n_entities: int, P: int, Q: int, c: Any) -> float:
    """DocuNet head FLOPs for one document; ``c`` is its DocuNetConfig."""
    n = max(1, -(-n_entities // c.entity_pad_multiple)) * c.entity_pad_multiple
    H, C, heads, E = c.hidden_size, c.unet_in_channels, c.num_heads, c.emb_size
    f = 2.0 * n * P * heads * T  # entity attention: mean over mentions
    if c.feature_map == "context":
        f += 2.0 * T * n * n * heads + 2.0 * n * n * T * H + 2.0 * n * n * H * C
    elif c.similarity == "elementwise":
        f += 2.0 * n * n * H * C
    elif c.similarity == "cosine":
        f += 2.0 * n * n * (H + C)
    else:  # bilinear
        f += 2.0 * C * n * H * H + 2.0 * C * n * n * H
    f += unet_flops(n, C, c.unet_base, c.unet_out, c.use_unet)
    return f + 4.0 * Q * (H + c.unet_out) * E + 2.0 * Q * E * c.block_size * c.num_labels


def document_flops(feats: Any, config: Any, dims: EncoderDims) -> dict[str, float]:
    """Model FLOPs of one document (its DocFeatures): encoder, head, total."""
    enc = encoder_flops([int(b - a) + 2 for a, b in feats.windows], dims)
    P, Q = len(feats.mention_pos), len(feats.pairs)
    head = head_flops(feats.seq_len, feats.num_entities, P, Q, config)
    return {"encoder": enc, "head": head, "total": enc + head}


class _OrtRuntime:
    def __init__(self, spec: dict[str, Any]) -> None:
        from .runtime import Extractor

        name = spec["runtime"]
        device, prec = GPU_RUNTIMES.get(name, "cpu"), name.rsplit("-", 1)[1]
        self.ex = Extractor(spec["model"], device=device, precision=prec, threads=spec["threads"])
        self.config, self.tok, self.features = self.ex.config, self.ex.tok, self.ex.features

    def run_batch(self, feats: Sequence[Any]) -> tuple[list[np.ndarray], dict[str, float]]:
        before = dict(self.ex.timings)
        out = self.ex.run_batch(feats)
        return out, {k: v - before[k] for k, v in self.ex.timings.items()}


class _TorchRuntime:
    """PyTorch eager, fp32, eval, no_grad: ``collate`` + ``batch_to_tensors`` and the three calls
    ``DocuNet.forward`` makes (encoder, window merge, head), timed separately."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import torch

        torch.set_num_threads(spec["threads"])
        torch.set_num_interop_threads(1)
        from . import features, model
        from .checkpoint import load_checkpoint

        self.torch, self.F, self.M = torch, features, model
        self.model, self.tok = load_checkpoint(spec["checkpoint"])
        self.encoder, self.config = model.Encoder(self.model.encoder), self.model.config
        self.features = lambda doc: features.build_features(doc, self.tok, self.config)

    def run_batch(self, feats: Sequence[Any]) -> tuple[list[np.ndarray], dict[str, float]]:
        batch = self.F.collate(feats, self.tok, self.config)
        t = self.M.batch_to_tensors(batch)
        keys = ("mention_pos", "entity_mentions", "entity_mention_mask", "num_entities")
        with self.torch.no_grad():
            t0 = time.perf_counter()
            hidden, rows = self.encoder(t["input_ids"], t["attention_mask"], t["win_rows"])
            t1 = time.perf_counter()
            h, att = self.M.merge_windows(t, hidden, rows)
            t2 = time.perf_counter()
            logits = self.model.head(h, att, *(t[k] for k in keys), t["pair_index"]).numpy()
            t3 = time.perf_counter()
        off = batch.pair_doc_offsets
        out = [logits[off[i] : off[i + 1]] for i in range(len(feats))]
        return out, {"encoder": t1 - t0, "merge": t2 - t1, "head": t3 - t2}


def _run_pass(rt: Any, docs: Sequence[Any], plan: list[list[int]], lens: list[int] | None = None):
    """One end-to-end pass → (timings, facts per document)."""
    from .decode import decode

    t0 = time.perf_counter()
    feats = [rt.features(d) for d in docs]
    t1 = time.perf_counter()
    if lens is not None and [f.seq_len for f in feats] != lens:
        raise RuntimeError("this runtime's features differ from the planned ones (tokenizer?)")
    logits: list[Any] = [None] * len(docs)
    lat, st = [], dict.fromkeys(("encoder", "merge", "head"), 0.0)
    for idx in plan:
        tb = time.perf_counter()
        out, times = rt.run_batch([feats[i] for i in idx])
        lat.append(time.perf_counter() - tb)
        for i, lg in zip(idx, out, strict=True):
            logits[i] = lg
        st = {k: v + times[k] for k, v in st.items()}
    t2 = time.perf_counter()
    rel = rt.config.relations
    facts = [
        sorted([int(f.pairs[q, 0]), int(f.pairs[q, 1]), rel[r - 1]] for q, r, _ in decode(lg))
        for f, lg in zip(feats, logits, strict=True)
    ]
    t3 = time.perf_counter()
    timing = {"seconds": t3 - t0, "features": t1 - t0, "decode": t3 - t2, "latencies": lat}
    return {**timing, **st, "collate": (t2 - t1) - sum(st.values())}, facts


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def measure_matmul_peak(threads: int, sizes: Sequence[int] = (1024,), reps: int = 5) -> dict:
    """Dense fp32 matmul GFLOP/s, best of ``reps``: an ORT MatMul session with ``threads``
    intra-op threads (numpy's BLAS, threads from the environment, without the onnx package)."""
    source, fn = "numpy", lambda a, b: a @ b
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        vi = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["n", "n"]) for x in "abc"]
        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", vi[:2], vi[2:])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        source, fn = "ort MatMul", lambda a, b: sess.run(None, {"a": a, "b": b})
    except ImportError as e:
        logger.info("no ORT MatMul peak, numpy instead: %s", e)
    best = 0.0
    for n in sizes:
        a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
        for _ in range(reps + 1):  # the first call warms up
            t = time.perf_counter()
            fn(a, b)
            best = max(best, 2.0 * n**3 / (time.perf_counter() - t) / 1e9)
    return {"peak_gflops": best, "source": source, "sizes": list(sizes), "best_of": reps,
            "threads": threads}  # fmt: skip


def _synthetic(tok: Any, cfg: dict[str, Any], n_docs: int) -> list[Any]:
    from .export.parity import synthetic_document, vocabulary_words

    e, n, words = cfg["entities"], cfg["target_wordpieces"], vocabulary_words(tok)
    size = max(24, n - 2 - 4 * e)  # ~2 mentions per entity, each with two marker wordpieces
    return [
        synthetic_document(words, size, e, seed=e * n + s, doc_id=f"{s}") for s in range(n_docs)
    ]


def _scaling(rt: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    ents, fixed_len, lens, fixed_ents = GRID[spec["quick"]]
    grid = [{"sweep": "entities", "entities": e, "target_wordpieces": fixed_len} for e in ents]
    grid += [{"sweep": "length", "entities": fixed_ents, "target_wordpieces": n} for n in lens]
    rows, dims = [], EncoderDims(**spec["dims"])
    for cfg in grid:
        docs = _synthetic(rt.tok, cfg, spec["scaling_docs"])
        feats = [rt.features(d) for d in docs]
        _run_pass(rt, docs[:1], [[0]])  # warm-up on this shape
        plan = plan_batches(feats, rt.config.max_length, spec["max_tokens"])
        runs = [_run_pass(rt, docs, plan)[0] for _ in range(spec["scaling_repeats"])]
        best = min(runs, key=lambda r: r["seconds"])
        fl = [document_flops(f, rt.config, dims) for f in feats]
        rows.append({
            **cfg, "docs": len(docs), "seconds": best["seconds"],
            "docs_per_s": len(docs) / best["seconds"],
            "wordpieces": float(np.mean([f.seq_len for f in feats])),
            "pairs": float(np.mean([len(f.pairs) for f in feats])),
            **{f"{k}_s": best[k] for k in ("encoder", "merge", "head")},
            "flops_per_doc": float(np.mean([x["total"] for x in fl])),
            "encoder_flops_per_doc": float(np.mean([x["encoder"] for x in fl])),
        })  # fmt: skip
    return rows


def _profile(rt: Any, spec: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """A scaling configuration on profiling sessions → kernel time per op type (two passes;
    the first warms up and is not counted)."""
    import onnxruntime as ort

    ex, out = rt.ex, {"config": cfg}
    for g, path in zip(("encoder", "head"), ex.spec.graph_files(ex.precision), strict=True):
        so = ort.SessionOptions()
        so.log_severity_level, so.enable_profiling = 3, True
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads, so.inter_op_num_threads = spec["threads"], 1
        so.profile_file_prefix = str(Path(spec["tmp"]) / f"profile_{g}")
        setattr(ex, g, ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]))
    docs = _synthetic(ex.tok, cfg, spec["scaling_docs"])
    plan = plan_batches([ex.features(d) for d in docs], ex.config.max_length, spec["max_tokens"])
    for _ in range(2):
        _run_pass(rt, docs, plan)
    for g in ("encoder", "head"):
        trace, ops = Path(getattr(ex, g).end_profiling()), {}
        events = json.loads(trace.read_text())
        runs = sorted(ev["ts"] for ev in events if ev.get("name") == "model_run")
        cut = runs[len(runs) // 2] if runs else 0  # the second pass's first run
        for ev in events:
            if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time") and ev["ts"] >= cut:
                op = ev.get("args", {}).get("op_name", "?")
                ops[op] = ops.get(op, 0.0) + ev["dur"] / 1e3
        trace.unlink()
        total = sum(ops.values()) or 1.0
        ranked = sorted(ops.items(), key=lambda x: -x[1])
        top = [{"op": k, "ms": v, "share": v / total} for k, v in ranked]
        out[g] = {"total_ms": total, "ops": top}
    return out


def _worker(spec_file: str) -> None:
    """``python -m docunet_rt.bench --worker SPEC``: JSON commands on stdin, replies on stdout."""
    spec = json.loads(Path(spec_file).read_text())
    proto = os.fdopen(os.dup(1), "w", buffering=1)  # replies only; stray prints go to the log
    os.dup2(2, 1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    def send(**msg: Any) -> None:
        proto.write(json.dumps(msg) + "\n")

    if spec["runtime"] == "peak":
        return send(**measure_matmul_peak(spec["threads"], spec["sizes"]))
    is_ort = spec["runtime"] != "torch"
    t0 = time.perf_counter()
    try:  # a runtime that cannot start or run here (a GPU provider without a GPU) is skipped
        rt = _OrtRuntime(spec) if is_ort else _TorchRuntime(spec)
        t1 = time.perf_counter()
        _run_pass(rt, [pickle.loads(Path(spec["first_doc"]).read_bytes())], [[0]])
    except (ValueError, ImportError, RuntimeError) as e:
        return send(event="unavailable", reason=str(e).splitlines()[0])
    send(event="ready", load_s=t1 - t0, first_doc_s=time.perf_counter() - t1, rss_mb=_rss_mb())
    docs, plan = pickle.loads(Path(spec["docs"]).read_bytes()), spec["plan"]
    L = rt.config.max_length
    cap = getattr(getattr(rt, "ex", None), "max_batch_docs", None)
    if cap:  # TensorRT: batches capped at its profile size, so its own plan
        plan = plan_batches([rt.features(d) for d in docs], L, spec["max_tokens"], max_docs=cap)
    facts: list[Any] = []
    for line in sys.stdin:
        cmd = json.loads(line)["cmd"]
        if cmd == "warmup":  # the first (largest) batches of the plan
            for b in plan[: spec["warmup_batches"]]:
                _run_pass(rt, [docs[i] for i in b], [list(range(len(b)))])
            send(event="ok")
        elif cmd == "run":
            timing, facts = _run_pass(rt, docs, plan, None if cap else spec["seq_lens"])
            send(**timing, rss_mb=_rss_mb(), own_plan=bool(cap))
        elif cmd == "labelled":
            ld = pickle.loads(Path(spec["labelled"]).read_bytes())
            lplan = plan_batches([rt.features(d) for d in ld], L, spec["max_tokens"], max_docs=cap)
            send(facts=_run_pass(rt, ld, lplan)[1])
        elif cmd == "scaling":
            rows = _scaling(rt, spec)
            slowest = min(rows, key=lambda r: r["docs_per_s"])
            send(rows=rows, profile=_profile(rt, spec, slowest) if is_ort else None)
        else:
            break
    if is_ort and "torch" in sys.modules:
        raise SystemExit(f"the {spec['runtime']} worker imported torch")
    send(facts=facts, torch_imported="torch" in sys.modules)


class _Proc:
    def __init__(self, name: str, spec: dict[str, Any], tmp: Path) -> None:
        (tmp / f"{name}.json").write_text(json.dumps(spec))
        self.name, self.log = name, tmp / f"{name}.log"
        env = dict(os.environ)
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(spec["threads"])
        cmd = [sys.executable, "-m", "docunet_rt.bench", "--worker", str(tmp / f"{name}.json")]
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


def _summarize(runs: list[dict], n: int, pairs: int, wps: int, flops: float, peak: float) -> dict:
    """Medians [min, max] over passes of one runtime."""

    def stat(xs: list[float]) -> list[float]:
        return [float(np.median(xs)), float(min(xs)), float(max(xs))]

    med = float(np.median([r["seconds"] for r in runs]))
    dps = stat([n / r["seconds"] for r in runs])
    p50 = stat([float(np.percentile(r["latencies"], 50)) for r in runs])
    p95 = stat([float(np.percentile(r["latencies"], 95)) for r in runs])
    split = {k: float(np.median([r[k] for r in runs])) for k in STAGES}
    infer = split["encoder"] + split["merge"] + split["head"]
    return {
        "docs_per_s": dps[0], "docs_per_s_min": dps[1], "docs_per_s_max": dps[2],
        "entity_pairs_per_s": pairs / med, "wordpieces_per_s": wps / med,
        "batch_latency_p50_s": p50[0], "batch_latency_p95_s": p95[0],
        "spread": {"batch_latency_p50_s": p50[1:], "batch_latency_p95_s": p95[1:]},
        "seconds_per_pass": med, "passes": len(runs), "peak_rss_mb": max(r["rss_mb"] for r in runs),
        "time_split_s": split, "time_split": {k: v / med for k, v in split.items()},
        "achieved_gflops": flops / med / 1e9, "roofline_fraction": flops / med / 1e9 / peak,
        "roofline_fraction_inference": flops / infer / 1e9 / peak,
    }  # fmt: skip


def evaluate_targets(runtimes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, rt, metric, thr, cmp in TARGETS:
        v = runtimes.get(rt, {}).get(metric)
        met = v is not None and {">=": v >= thr, "<=": v <= thr, "abs<=": abs(v) <= thr}[cmp]
        out.append({"name": name, "runtime": rt, "metric": metric, "value": v, "threshold": thr,
                    "comparison": cmp, "measured": v is not None, "met": bool(met)})  # fmt: skip
    return out


def _envelope(command: str, **fields: Any) -> dict[str, Any]:
    """``benchmarks/common.envelope`` (command, date, versions, machine) of the source tree."""
    import importlib.util

    common = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"
    if not common.is_file():  # an installed package: command and fields only
        return {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields}
    spec = importlib.util.spec_from_file_location("_docunet_bench_common", common)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.envelope(command, **fields)


def _start(name: str, base: dict[str, Any], tmp: Path) -> tuple[dict, _Proc | None]:
    """Start a runtime's worker and wait for its first result (or learn why it cannot run)."""
    p = _Proc(name, {**base, "runtime": name}, tmp)
    msg = p.recv()
    if msg["event"] != "ready":
        p.p.wait()
        logger.info("%s skipped: %s", name, msg["reason"])
        return {"status": "skipped", "note": msg["reason"]}, None
    ttfr = time.perf_counter() - p.t0
    p.ask("warmup")
    logger.info("%s: first result after %.2fs", name, ttfr)
    res = {"status": "ok", "time_to_first_result_s": ttfr, "load_s": msg["load_s"],
           "first_doc_s": msg["first_doc_s"], "rss_at_first_result_mb": msg["rss_mb"]}  # fmt: skip
    return res, p


def _measure(o: BenchOptions, base: dict, tmp: Path, procs: dict[str, _Proc], n_docs: int):
    """Peak matmul, workers started one after another (time to first result uncontended), then
    passes A B C A B C …, labelled predictions, scaling + profile; ``procs`` fills as they start."""
    sizes = [1024] if o.quick else [1024, 2048]
    peak_proc = _Proc("peak", {**base, "runtime": "peak", "sizes": sizes}, tmp)
    peak = peak_proc.recv()
    peak_proc.p.wait()
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
    return peak, results, facts, lfacts, scaling, profile


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run the benchmark → result dict (plain field names; see the module docstring)."""
    from .data import read_documents
    from .features import TokenizerInfo, build_features
    from .metrics import score, train_facts
    from .runtime import ModelSpec

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
    for key, obj in (("docs", docs), ("first_doc", docs[0]), ("labelled", ldocs)):
        (tmp / f"{key}.pkl").write_bytes(pickle.dumps(obj))
    base = {
        **{k: str(tmp / f"{k}.pkl") for k in ("docs", "first_doc", "labelled")},
        "model": str(spec.path), "checkpoint": str(o.checkpoint), "threads": o.threads,
        "plan": plan, "seq_lens": [f.seq_len for f in feats], "max_tokens": o.max_tokens,
        "warmup_batches": o.warmup_batches, "quick": o.quick, "dims": asdict(dims),
        "tmp": str(tmp), "scaling_docs": 1 if o.quick else 2,
        "scaling_repeats": 1 if o.quick else 2,
    }  # fmt: skip
    logger.info("bench: %d docs in %d batches, %d threads", len(docs), len(plan), o.threads)
    procs: dict[str, _Proc] = {}
    try:
        peak, results, facts, lfacts, scaling, profile = _measure(o, base, tmp, procs, len(docs))
    finally:  # a failed run leaves no workers and no temporary files behind
        for p in procs.values():
            if p.p.poll() is None:
                p.p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = (len(docs), n_pairs, n_wps, flops, peak["peak_gflops"])
    for name in procs:
        results[name].update(_summarize(results[name].pop("runs"), *sizes))
    train = train_facts(read_documents(o.train_facts)) if o.train_facts else None
    for name, res in ((n, results[n]) for n in procs):
        if "torch" in procs:
            res["speedup_vs_torch"] = res["docs_per_s"] / results["torch"]["docs_per_s"]
            res["agreement_vs_torch"] = _agreement(facts[name], facts["torch"])
        if ldocs:
            s = score(ldocs, [{tuple(x) for x in d} for d in lfacts[name]], train)
            res.update(f1=s.f1, ign_f1=s.ign_f1, precision=s.precision, recall=s.recall)
        if ldocs and "torch" in procs:
            res["labelled_agreement_vs_torch"] = _agreement(lfacts[name], lfacts["torch"])
    for res in (results[n] for n in procs if ldocs and "ort-fp32" in procs):
        res["f1_change_vs_fp32"] = 100 * (res["f1"] - results["ort-fp32"]["f1"])
    return _envelope(
        o.command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        kind="bench", name=o.name, options={k: v for k, v in asdict(o).items() if k != "command"},
        threads={"ort_intra_op": o.threads, "ort_inter_op": 1, "torch": o.threads},
        corpus={"path": o.corpus, "documents_in_file": len(all_docs), "documents": len(docs),
                "sample_seed": o.seed, "entity_pairs": n_pairs, "wordpieces": n_wps,
                "windows": sum(len(f.windows) for f in feats), "batches": len(plan),
                "max_tokens": o.max_tokens},
        labelled={"path": o.labelled, "documents": len(ldocs), "train_facts": o.train_facts}
        if ldocs else None,
        peak_matmul=peak, runtimes=results, scaling=scaling, profile=profile,
        flops={"sample_total": flops, "formula": (__doc__ or "").partition("\nFLOPs ")[2].strip(),
               "per_doc_mean": {k: float(np.mean([x[k] for x in fl])) for k in fl[0]}},
        targets=evaluate_targets(results), wall_seconds=time.perf_counter() - t_start,
    )  # fmt: skip


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(sys.argv[2])
