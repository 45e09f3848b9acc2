"""Measured dense matmul peaks: the ceilings of the benchmark's rooflines.

``measure_matmul_peak`` is the CPU's (fp32, an ORT MatMul session with the benchmark's
threads); ``measure_gpu_matmul_peak`` a GPU's, measured in its own worker process before the
runtimes start: fp32, fp16 and bf16 ``torch.matmul`` on the device (synchronized before each
clock read), or, with a CPU-only torch, ONNX Runtime MatMul sessions on CUDA (made by
``runtime.sessions.make_session``, inputs and output bound on the device). The fp32 figure is
the faster of strict fp32 and TF32 (``fp32_strict_gflops`` keeps the strict one): ONNX Runtime's
CUDA provider and cuDNN's convolutions may use TF32 for fp32 graphs, and a ceiling must not be
below what a runtime can reach. Without a GPU the result says why (``available: False``), and
GPU runtimes get no roofline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger("docunet_rt")

GPU_SIZES = {False: [4096, 8192], True: [4096]}  # by quick


def _matmul_model(elem_type: int) -> bytes:
    from onnx import helper

    vi = [helper.make_tensor_value_info(x, elem_type, ["n", "n"]) for x in "abc"]
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", vi[:2], vi[2:])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    return m.SerializeToString()


def measure_matmul_peak(threads: int, sizes: Sequence[int] = (1024,), reps: int = 5) -> dict:
    """Dense fp32 matmul GFLOP/s, best of ``reps``: an ORT MatMul session with ``threads``
    intra-op threads (numpy's BLAS, threads from the environment, without the onnx package)."""
    source, fn = "numpy", lambda a, b: a @ b
    try:
        from onnx import TensorProto

        from ..runtime.sessions import SessionConfig, make_session

        sess = make_session(_matmul_model(TensorProto.FLOAT), SessionConfig("cpu", threads))
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


def ort_matmul_gflops(
    device: str, dtype: str, sizes: Sequence[int], reps: int = 5, threads: int | None = None
) -> float:
    """Best GFLOP/s of an ORT MatMul session on ``device`` ("cpu" or "cuda"; ``dtype`` "fp32" or
    "fp16"), inputs and output bound on the device, so no host copy is timed."""
    from onnx import TensorProto

    from ..runtime.sessions import SessionConfig, import_ort, make_session

    ort = import_ort()
    elem, np_dtype = {"fp32": (TensorProto.FLOAT, np.float32),
                      "fp16": (TensorProto.FLOAT16, np.float16)}[dtype]  # fmt: skip
    sess = make_session(_matmul_model(elem), SessionConfig(device, threads))
    best = 0.0
    for n in sizes:
        a, b = np.random.default_rng(0).standard_normal((2, n, n)).astype(np_dtype)
        binding = sess.io_binding()
        for name, x in (("a", a), ("b", b)):
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, device, 0))
        binding.bind_output("c", device)
        for i in range(reps + 1):  # the first run warms up
            t = time.perf_counter()
            sess.run_with_iobinding(binding)
            binding.synchronize_outputs()
            if i:
                best = max(best, 2.0 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def _torch_gpu_peak(sizes: Sequence[int], reps: int, inner: int = 10) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    flags, figures = torch.backends.cuda.matmul, {}
    saved = flags.allow_tf32
    cases = (("fp32_strict", torch.float32, False), ("tf32", torch.float32, True),
             ("fp16", torch.float16, False), ("bf16", torch.bfloat16, False))  # fmt: skip
    try:
        for key, dtype, tf32 in cases:
            flags.allow_tf32, best = tf32, 0.0
            for n in sizes:
                a, b, c = torch.randn(3, n, n, device="cuda", dtype=dtype).unbind(0)
                for i in range(reps + 1):  # the first round warms up
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                    for _ in range(inner):
                        torch.matmul(a, b, out=c)
                    torch.cuda.synchronize()
                    if i:
                        best = max(best, inner * 2.0 * n**3 / (time.perf_counter() - t) / 1e9)
                del a, b, c
            figures[key] = best
    finally:
        flags.allow_tf32 = saved
    fp32 = max(figures["fp32_strict"], figures["tf32"])
    return {"available": True, "source": "torch.cuda matmul",
            "device": torch.cuda.get_device_name(0),
            "peak_gflops": {"fp32": fp32, "fp16": figures["fp16"], "bf16": figures["bf16"]},
            "fp32_strict_gflops": figures["fp32_strict"]}  # fmt: skip


def _ort_gpu_peak(sizes: Sequence[int], reps: int) -> dict[str, Any]:
    figures = {k: ort_matmul_gflops("cuda", k, sizes, reps) for k in ("fp32", "fp16")}
    return {"available": True, "source": "ort MatMul (CUDAExecutionProvider)", "device": "cuda",
            "peak_gflops": {**figures, "bf16": None}, "fp32_strict_gflops": None}  # fmt: skip


def measure_gpu_matmul_peak(sizes: Sequence[int] = GPU_SIZES[False], reps: int = 5) -> dict:
    """The GPU's dense matmul GFLOP/s per precision (``peak_gflops``: fp32, fp16, bf16; see the
    module docstring), or ``{"available": False, "reason": ...}`` where neither torch nor ONNX
    Runtime can run a matmul on a GPU here."""
    reasons = []
    for source, measure in (("torch", _torch_gpu_peak), ("ONNX Runtime", _ort_gpu_peak)):
        try:
            res = measure(sizes, reps)
        except Exception as e:  # no matmul on a GPU here: no GPU roofline, not a failed run
            reasons.append(f"{source}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        return {**res, "sizes": list(sizes), "best_of": reps}
    return {"available": False, "reason": "; ".join(reasons)}
