"""One runtime of the benchmark in its own process: ``python -m docunet_rt.bench.worker SPEC``.

``harness._Proc`` starts one per runtime, so imports and peak RSS (VmHWM) are per runtime, and
ONNX Runtime workers never import torch (checked when they finish). Every runtime is a
``runtime.Extractor``: an exported MODEL_DIR on ONNX Runtime, or the checkpoint on PyTorch
(``evaluate.torch_extractor``, fp32, eval, no_grad; on CUDA ``model.TorchBackend`` with its device:
stage timers read after ``torch.cuda.synchronize()``, bf16 under autocast); features, batches
and decoding are the extraction code, and the encoder / merge / head times are the backend's
``timings``.

Protocol: SPEC is a JSON file written by the harness (the runtime's backend, device, precision
and the provider its name promises: ``runtimes.Runtime.to_spec``). The worker loads the runtime,
checks that it runs on the promised provider (``Extractor.provider``), runs one document (the
time to first result) and says ``{"event": "ready", "provider": ..., ...}``, or
``"unavailable"`` with the reason: a GPU provider without a GPU, torch without CUDA, or a
runtime that ran on another provider ("ran on CUDAExecutionProvider, not
TensorrtExecutionProvider"). Then it answers one JSON line per command read from stdin:
``warmup``, ``run`` (one end-to-end pass), ``labelled`` (predicted facts), ``scaling`` (the
synthetic grid and, on ONNX Runtime, an op profile); anything else finishes it. Documents come
as pickle files in the harness's private temporary directory: process-to-process hand-over only
(DocRED JSON would drop candidate pairs and entity ids, which change the features).

The ``peak`` and ``gpu-peak`` runtimes measure the dense matmul peak of the CPU or the GPU
(``peaks``) instead.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..options import ExtractOptions
from .flops import EncoderDims, document_flops
from .runtimes import mismatch_reason

logger = logging.getLogger("docunet_rt")


def load_extractor(spec: dict[str, Any]) -> Any:
    """The runtime of ``spec`` (backend, device, precision) as an ``Extractor`` with
    ``spec["threads"]``; ValueError/RuntimeError/ImportError when it cannot run here."""
    device, precision, threads = spec["device"], spec["precision"], spec["threads"]
    from ..runtime import Extractor

    if spec["backend"] == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        from ..checkpoint import load_checkpoint
        from ..evaluate import torch_extractor

        model, tok = load_checkpoint(spec["checkpoint"], device=device)
        if device == "cpu" and precision == "fp32":
            return torch_extractor(model, tok)  # the library's own PyTorch path, unchanged
        from ..model import TorchBackend

        backend = TorchBackend(model, tok, device, precision)
        return Extractor.from_backend(backend, model.config, tok)
    return Extractor(spec["model"], device=device, precision=precision, threads=threads)


class ProviderMismatch(ValueError):
    """The runtime runs, but on another provider than its name promises."""

    def __init__(self, reason: str, provider: str) -> None:
        super().__init__(reason)
        self.provider = provider


def open_runtime(spec: dict[str, Any]) -> Any:
    """``load_extractor``, then ValueError unless it runs on the provider ``spec["provider"]``
    its name promises (an ONNX Runtime that fell back from TensorRT to CUDA is not TensorRT)."""
    ex = load_extractor(spec)
    why = mismatch_reason(ex.provider, spec["provider"])
    if why:
        raise ProviderMismatch(why, ex.provider)
    return ex


def _run_pass(
    ex: Any, docs: Sequence[Any], plan: list[list[int]], lens: list[int] | None = None
) -> tuple[dict[str, Any], list[list[Any]]]:
    """One end-to-end pass (features, batches, decoding) → (timings, facts per document)."""
    t0 = time.perf_counter()
    feats = [ex.features(d) for d in docs]
    t1 = time.perf_counter()
    if lens is not None and [f.seq_len for f in feats] != lens:
        raise RuntimeError("this runtime's features differ from the planned ones (tokenizer?)")
    logits: list[Any] = [None] * len(docs)
    lat, before = [], dict(ex.timings)
    for idx in plan:
        tb = time.perf_counter()
        out = ex.run_batch([feats[i] for i in idx])
        lat.append(time.perf_counter() - tb)
        for i, lg in zip(idx, out, strict=True):
            logits[i] = lg
    t2 = time.perf_counter()
    stages = {k: v - before[k] for k, v in ex.timings.items()}  # encoder, merge, head
    decoder = ex.decoder(ExtractOptions())
    facts = []
    for d, f, lg in zip(docs, feats, logits, strict=True):
        res = ex.decode(d, f, lg, decoder)
        facts.append(sorted([t.head.index, t.tail.index, t.relation] for t in res.triples))
    t3 = time.perf_counter()
    timing = {"seconds": t3 - t0, "features": t1 - t0, "decode": t3 - t2, "latencies": lat}
    return {**timing, **stages, "collate": (t2 - t1) - sum(stages.values())}, facts


def _rss_mb() -> float:
    """Peak resident memory of this process image in MB: VmHWM, not ``ru_maxrss``, which Linux
    carries over from the parent through fork/exec (a worker would report at least the
    harness's own peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def _synthetic(tok: Any, cfg: dict[str, Any], n_docs: int) -> list[Any]:
    from ..synth import synthetic_document, vocabulary_words

    e, n, words = cfg["entities"], cfg["target_wordpieces"], vocabulary_words(tok)
    size = max(24, n - 2 - 4 * e)  # ~2 mentions per entity, each with two marker wordpieces
    return [
        synthetic_document(words, size, e, seed=e * n + s, doc_id=f"{s}") for s in range(n_docs)
    ]


def _scaling(ex: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The synthetic grid ``spec["grid"]``: entity counts at a fixed length, then lengths at a
    fixed entity count; the best of ``scaling_repeats`` passes per point."""
    ents, fixed_len, lens, fixed_ents = spec["grid"]
    grid = [{"sweep": "entities", "entities": e, "target_wordpieces": fixed_len} for e in ents]
    grid += [{"sweep": "length", "entities": fixed_ents, "target_wordpieces": n} for n in lens]
    rows, dims = [], EncoderDims(**spec["dims"])
    opts = ExtractOptions(max_tokens=spec["max_tokens"])
    for cfg in grid:
        docs = _synthetic(ex.tok, cfg, spec["scaling_docs"])
        feats = [ex.features(d) for d in docs]
        _run_pass(ex, docs[:1], [[0]])  # warm-up on this shape
        plan = ex.plan_batches(feats, opts)
        runs = [_run_pass(ex, docs, plan)[0] for _ in range(spec["scaling_repeats"])]
        best = min(runs, key=lambda r: r["seconds"])
        fl = [document_flops(f, ex.config, dims) for f in feats]
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


def _profile(ex: Any, spec: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """A scaling configuration on profiling CPU sessions of the same graphs → kernel time per op
    type (two passes; the first warms up and is not counted)."""
    from ..runtime import Extractor, SessionConfig
    from ..runtime.graphs import OrtGraphs

    enc, head = ex.spec.graph_files(ex.precision)
    sessions = SessionConfig("cpu", spec["threads"], ex.precision)
    prefix = str(Path(spec["tmp"]) / "profile")
    graphs = OrtGraphs(enc, head, ex.tok, ex.config, sessions, profile_prefix=prefix)
    prof = Extractor.from_backend(graphs, ex.config, ex.tok, precision=ex.precision)
    docs = _synthetic(prof.tok, cfg, spec["scaling_docs"])
    opts = ExtractOptions(max_tokens=spec["max_tokens"])
    plan = prof.plan_batches([prof.features(d) for d in docs], opts)
    for _ in range(2):
        _run_pass(prof, docs, plan)
    out: dict[str, Any] = {"config": cfg}
    for g, trace_file in graphs.end_profiling().items():
        trace, ops = Path(trace_file), {}
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
        out[g] = {
            "total_ms": total,
            "ops": [{"op": k, "ms": v, "share": v / total} for k, v in ranked],
        }
    return out


def main(spec_file: str) -> None:
    """Serve one runtime: JSON commands on stdin, one JSON reply per line on stdout."""
    spec = json.loads(Path(spec_file).read_text())
    proto = os.fdopen(os.dup(1), "w", buffering=1)  # replies only; stray prints go to the log
    os.dup2(2, 1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    def send(**msg: Any) -> None:
        proto.write(json.dumps(msg) + "\n")

    if spec["runtime"] == "peak":
        from .peaks import measure_matmul_peak

        return send(**measure_matmul_peak(spec["threads"], spec["sizes"]))
    if spec["runtime"] == "gpu-peak":
        from .peaks import measure_gpu_matmul_peak

        return send(**measure_gpu_matmul_peak(spec["sizes"]))
    is_ort = spec["backend"] == "ort"
    t0 = time.perf_counter()
    try:  # a runtime that cannot start or run here (a GPU provider without a GPU) is skipped
        ex = open_runtime(spec)
        t1 = time.perf_counter()
        _run_pass(ex, [pickle.loads(Path(spec["first_doc"]).read_bytes())], [[0]])
    except ProviderMismatch as e:
        return send(event="unavailable", reason=str(e), provider=e.provider)
    except (ValueError, ImportError, RuntimeError) as e:
        return send(event="unavailable", reason=str(e).splitlines()[0])
    send(event="ready", provider=ex.provider, load_s=t1 - t0,
         first_doc_s=time.perf_counter() - t1, rss_mb=_rss_mb())  # fmt: skip
    docs, plan = pickle.loads(Path(spec["docs"]).read_bytes()), spec["plan"]
    opts, cap = ExtractOptions(max_tokens=spec["max_tokens"]), ex.max_batch_docs
    if cap:  # TensorRT: batches capped at its profile size, so its own plan
        plan = ex.plan_batches([ex.features(d) for d in docs], opts)
    facts: list[Any] = []
    for line in sys.stdin:
        cmd = json.loads(line)["cmd"]
        if cmd == "warmup":  # the first (largest) batches of the plan
            for b in plan[: spec["warmup_batches"]]:
                _run_pass(ex, [docs[i] for i in b], [list(range(len(b)))])
            send(event="ok")
        elif cmd == "run":
            timing, facts = _run_pass(ex, docs, plan, None if cap else spec["seq_lens"])
            send(**timing, rss_mb=_rss_mb(), own_plan=bool(cap))
        elif cmd == "labelled":
            ld = pickle.loads(Path(spec["labelled"]).read_bytes())
            lplan = ex.plan_batches([ex.features(d) for d in ld], opts)
            send(facts=_run_pass(ex, ld, lplan)[1])
        elif cmd == "scaling":
            rows = _scaling(ex, spec)
            slowest = min(rows, key=lambda r: r["docs_per_s"])
            send(rows=rows, profile=_profile(ex, spec, slowest) if is_ort else None)
        else:
            break
    if is_ort and "torch" in sys.modules:
        raise SystemExit(f"the {spec['runtime']} worker imported torch")
    send(facts=facts, torch_imported="torch" in sys.modules)


if __name__ == "__main__":
    main(sys.argv[1])
