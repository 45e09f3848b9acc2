"""What each benchmark runtime is: backend, device, precision, the provider its name promises,
its PyTorch baseline and the matmul peak its roofline is set against (stdlib only).

The names come from ``options`` (``CPU_RUNTIMES``, ``GPU_RUNTIMES``, ``TORCH_CUDA_RUNTIMES``:
``RUNTIMES``, which the CLI validates ``--runtimes`` against). Rules, applied to every run:

- a runtime is reported under its name only when it really ran on the provider that name
  promises (``Extractor.provider``; ``torch-<device type>`` for PyTorch): an ONNX Runtime that
  fell back from TensorRT to CUDA is "skipped: ran on CUDAExecutionProvider, not
  TensorrtExecutionProvider", never a tensorrt-fp16 figure;
- ``speedup_vs_torch`` (and triple agreement) is against the PyTorch baseline of the same
  device and precision family: CPU runtimes against ``torch`` (CPU fp32), fp32 GPU runtimes
  against ``torch-cuda-fp32``, fp16/bf16 GPU runtimes against ``torch-cuda-bf16``; none when that
  baseline did not run (a GPU runtime is never compared with CPU PyTorch);
- the roofline of a CPU runtime is the measured CPU fp32 matmul peak (int8 too); a GPU
  runtime's is the measured device matmul peak of its precision, or None (no GPU figure), never
  the CPU peak.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..options import CPU_RUNTIMES, GPU_RUNTIMES, RUNTIMES, TORCH_CUDA_RUNTIMES

# ONNX Runtime's provider names (the same strings as runtime.sessions.CPU/CUDA/TENSORRT; a test
# pins that; importing runtime.sessions here would import numpy into the CLI)
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
ORT_PROVIDERS = {"cpu": CPU_PROVIDER, "cuda": CUDA_PROVIDER, "tensorrt": TENSORRT_PROVIDER}

ALL_RUNTIMES = RUNTIMES
# PyTorch baselines: CPU, and on the GPU one per precision family
TORCH_BASELINES = {"cpu": "torch", "fp32": "torch-cuda-fp32", "half": "torch-cuda-bf16"}


@dataclass(frozen=True)
class Runtime:
    """One benchmark runtime, as the harness hands it to its worker."""

    name: str
    backend: str  # "ort" (an exported MODEL_DIR) or "torch" (the checkpoint)
    device: str  # ORT: options.DEVICES ("cpu", "cuda", "tensorrt"); torch: "cpu" or "cuda"
    precision: str  # fp32, int8, fp16 (ORT graphs) or bf16 (torch autocast)

    @property
    def gpu(self) -> bool:
        return self.device != "cpu"

    @property
    def provider(self) -> str:
        """The provider the name promises (what ``Extractor.provider`` must say)."""
        return f"torch-{self.device}" if self.backend == "torch" else ORT_PROVIDERS[self.device]

    @property
    def family(self) -> str:
        """``cpu``, or on a GPU the precision family: ``fp32`` or ``half`` (fp16, bf16)."""
        if not self.gpu:
            return "cpu"
        return "fp32" if self.precision == "fp32" else "half"

    @property
    def baseline(self) -> str:
        """The PyTorch runtime its speedup and triple agreement are measured against."""
        return TORCH_BASELINES[self.family]

    @property
    def peak_key(self) -> str:
        """Which measured matmul peak is its roofline: ``cpu`` (fp32; int8 is set against the
        same peak) or the GPU peak of its precision (``fp32``, ``fp16``, ``bf16``)."""
        return self.precision if self.gpu else "cpu"

    def to_spec(self) -> dict[str, str]:
        return {"runtime": self.name, "backend": self.backend, "device": self.device,
                "precision": self.precision, "provider": self.provider}  # fmt: skip


def _ort(name: str, device: str) -> Runtime:
    return Runtime(name, "ort", device, name.rsplit("-", 1)[1])


RUNTIME_TABLE: dict[str, Runtime] = {
    "torch": Runtime("torch", "torch", "cpu", "fp32"),
    **{n: _ort(n, "cpu") for n in CPU_RUNTIMES if n != "torch"},
    **{n: _ort(n, device) for n, device in GPU_RUNTIMES.items()},
    **{n: Runtime(n, "torch", "cuda", n.rsplit("-", 1)[1]) for n in TORCH_CUDA_RUNTIMES},
}
assert tuple(RUNTIME_TABLE) == ALL_RUNTIMES, "every runtime name has exactly one table entry"
# The provider each runtime's name promises, e.g. tensorrt-fp16 → TensorrtExecutionProvider.
EXPECTED_PROVIDER = {n: rt.provider for n, rt in RUNTIME_TABLE.items()}


def unknown_runtimes(names: Iterable[str]) -> list[str]:
    """The names that are not benchmark runtimes."""
    return [n for n in names if n not in RUNTIME_TABLE]


def mismatch_reason(actual: str | None, expected: str) -> str | None:
    """``"ran on <actual>, not <expected>"``, or None when they are the same provider."""
    return None if actual == expected else f"ran on {actual}, not {expected}"


def provider_mismatch(name: str, provider: str | None) -> str | None:
    """Why runtime ``name`` must not be reported under its name when it ran on ``provider``,
    or None when that is the provider its name promises."""
    return mismatch_reason(provider, RUNTIME_TABLE[name].provider)


def roofline_peak(
    name: str, cpu_peak: Mapping[str, Any], gpu_peak: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The matmul peak a runtime's roofline is set against: ``{"device", "precision",
    "gflops"}``; ``gflops`` None for a GPU runtime without a measured device peak."""
    rt = RUNTIME_TABLE[name]
    if not rt.gpu:
        return {"device": "cpu", "precision": "fp32", "gflops": cpu_peak["peak_gflops"]}
    figures = (gpu_peak or {}).get("peak_gflops") or {}
    return {"device": "gpu", "precision": rt.peak_key, "gflops": figures.get(rt.peak_key)}
