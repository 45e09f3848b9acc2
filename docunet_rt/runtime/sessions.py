"""ONNX Runtime sessions: the one place an ``InferenceSession`` is created.

Providers are chosen here (TensorRT > CUDA > CPU for ``auto``), with explicit
``SessionOptions`` (threads, optimisation level, log level, profiling), ONNX Runtime imported
lazily with the install command when it is missing, and its provider fall-back messages kept
off the process's stdout (which may be ``extract -o -``). A GPU device that silently ends up on
the CPU is an error, never a mislabelled run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..options import DEVICES, check_choice

logger = logging.getLogger("docunet_rt")

ORT_INSTALL = (
    "pip install onnxruntime-gpu  (or, on machines without CUDA wheels: pip install onnxruntime)"
)
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


def import_ort() -> Any:
    """``onnxruntime``, or ImportError naming the pip command."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - environment dependent
        raise ImportError(f"extraction needs ONNX Runtime: {ORT_INSTALL}") from e
    return ort


@dataclass(frozen=True)
class SessionConfig:
    """How sessions are made: device, threads and provider options (validated once)."""

    device: str = "cpu"  # one of options.DEVICES
    threads: int | None = None  # intra-op threads (None: ONNX Runtime's default)
    precision: str = "fp32"  # int8 graphs cannot run on TensorRT; fp16 enables TensorRT fp16
    trt_cache_dir: str | None = None
    verbose: bool = False  # ONNX Runtime's own log
    # CUDA provider options on top of the defaults below, e.g. {"prefer_nhwc": "1"} or
    # {"cudnn_conv_algo_search": "EXHAUSTIVE"} (tuned convolutions; pays off with shape buckets)
    cuda_options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES)
        if self.precision == "int8" and self.device == "tensorrt":
            raise ValueError(
                "--precision int8 cannot run on TensorRT (dynamic-quantization ops); "
                "use --precision fp16 or fp32 with --device tensorrt, or int8 with --device cpu"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


def provider_chain(config: SessionConfig) -> list[tuple[str, dict[str, Any]]]:
    """Providers to try, best first, with their options. The int8 graphs use ONNX Runtime's
    dynamic-quantization ops, which TensorRT cannot run, so ``auto`` leaves TensorRT out."""
    cpu = (CPU, {})
    cuda = (CUDA, {"cudnn_conv_algo_search": "HEURISTIC", **dict(config.cuda_options)})
    cache = config.trt_cache_dir or os.path.join(
        os.path.expanduser("~"), ".cache", "docunet_rt", "trt"
    )
    trt_opts: dict[str, Any] = {
        "trt_fp16_enable": config.precision == "fp16",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": True,
    }
    trt = (TENSORRT, trt_opts)
    chains = {
        "cpu": [cpu],
        "cuda": [cuda, cpu],
        "tensorrt": [trt, cuda, cpu],
        "auto": [cuda, cpu] if config.precision == "int8" else [trt, cuda, cpu],
    }
    return chains[config.device]


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """ONNX Runtime prints provider fall-back messages ("EP Error …") on the process's stdout,
    which would corrupt ``extract -o -``; send fd 1 to fd 2 while sessions are created."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (e.g. captured by a test runner)
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _loads(library: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def cuda_driver_present() -> bool:
    """Whether the NVIDIA driver library can be loaded (no driver, no GPU)."""
    return _loads("libcuda.so.1")


def tensorrt_present() -> bool:
    """Whether the TensorRT runtime library that ONNX Runtime's TensorRT provider needs loads."""
    return _loads("libnvinfer.so.10")


def check_device(device: str) -> None:
    """One clear line, before ONNX Runtime tries (and logs its own errors), when an explicit GPU
    device cannot work on this machine."""
    if device in ("cuda", "tensorrt") and not cuda_driver_present():
        raise ValueError(
            f"--device {device}: no usable GPU: the NVIDIA driver (libcuda.so.1) does not load on "
            "this machine; use --device cpu (or auto)"
        )
    if device == "tensorrt" and not tensorrt_present():
        raise ValueError(
            "--device tensorrt: the TensorRT libraries (libnvinfer.so.10) do not load; install "
            "them (pip install tensorrt) or use --device cuda"
        )


def session_options(
    threads: int | None, *, verbose: bool = False, profile_prefix: str | None = None
) -> Any:
    """Explicit ``SessionOptions``: full graph optimisation, ``threads`` intra-op threads and one
    inter-op thread, ONNX Runtime's log at errors only unless ``verbose``."""
    ort = import_ort()
    so = ort.SessionOptions()
    so.log_severity_level = 0 if verbose else 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return so


def make_session(
    model: str | os.PathLike | bytes,
    config: SessionConfig | None = None,
    *,
    profile_prefix: str | None = None,
) -> Any:
    """An ``InferenceSession`` over a graph file (or serialized model bytes) on the best
    provider of ``config`` that really works; an explicit GPU device that ends up on the CPU is
    an error (onnxruntime-gpu lists CUDA/TensorRT even without a GPU)."""
    config = config or SessionConfig()
    ort = import_ort()
    check_device(config.device)
    so = session_options(config.threads, verbose=config.verbose, profile_prefix=profile_prefix)
    available = set(ort.get_available_providers())
    if config.device == "auto" and not cuda_driver_present():
        # onnxruntime-gpu lists CUDA/TensorRT even where there is no GPU; trying them only
        # produces loud fall-back errors, so auto goes straight to the CPU there
        available &= {CPU}
    chain = [(n, o) for n, o in provider_chain(config) if n in available]
    device = config.device
    if device in ("cuda", "tensorrt") and chain[0][0] == CPU:
        raise ValueError(
            f"--device {device}: this onnxruntime has no {device.upper()} provider "
            f"(available: {', '.join(sorted(available))}); install onnxruntime-gpu or use --device cpu"
        )
    source = model if isinstance(model, bytes) else str(Path(model))
    with stdout_to_stderr():
        sess = ort.InferenceSession(
            source,
            sess_options=so,
            providers=[n for n, _ in chain],
            provider_options=[o for _, o in chain],
        )
    used = sess.get_providers()[0]
    if device in ("cuda", "tensorrt") and used == CPU:
        raise ValueError(f"--device {device}: no usable GPU (the session fell back to the CPU)")
    return sess
