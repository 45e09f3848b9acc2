"""The PyTorch baselines on a GPU (``torch-cuda-fp32``, ``torch-cuda-bf16``): imported by the
benchmark worker only, for those runtimes (it imports torch).

``TimedTorchBackend`` is ``model.TorchBackend`` (eval, ``no_grad``, the same stages: encoder
windows, window merge, head) with two differences that only matter on a GPU: each stage timer is
read after ``torch.cuda.synchronize()`` (CUDA kernels run asynchronously, so without it a stage's
GPU time lands in whichever later stage first waits for the device), and a bf16 batch runs under
``torch.autocast(device, bfloat16)``. On the CPU in fp32 it computes exactly what
``TorchBackend`` does (a test pins the logits).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..features import Batch, TokenizerInfo
from ..model import DocuNet, Encoder, TorchBackend, batch_to_tensors, merge_windows

TORCH_PRECISIONS = ("fp32", "bf16")


class TimedTorchBackend(TorchBackend):
    """``TorchBackend`` with device-synchronized stage timers and optional bf16 autocast."""

    def __init__(
        self,
        model: DocuNet,
        tok: TokenizerInfo,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> None:
        if precision not in TORCH_PRECISIONS:
            raise ValueError(f"precision {precision!r}: one of {', '.join(TORCH_PRECISIONS)}")
        super().__init__(model, tok, device)
        self.precision = precision

    def clock(self) -> float:
        """``time.perf_counter()`` once the device has finished the work queued so far
        (synchronizes only on CUDA)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @torch.no_grad()
    def run_collated(self, batch: Batch, max_tokens: int | None = None) -> np.ndarray:
        """Pair logits (Q, R) of one collated batch, as ``TorchBackend.run_collated``."""
        m = self.model
        m.eval()
        bf16 = self.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            t = batch_to_tensors(batch, self.device)
            t0 = self.clock()
            enc, (W, L) = Encoder(m.encoder), t["input_ids"].shape
            step = W if max_tokens is None else max(1, max_tokens // L)
            parts = [
                enc(
                    t["input_ids"][a : a + step],
                    t["attention_mask"][a : a + step],
                    t["win_rows"][a : a + step],
                )
                for a in range(0, W, step)
            ]
            hidden = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
            rows = torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
            t1 = self.clock()
            h, att = merge_windows(t, hidden, rows)
            t2 = self.clock()
            keys = ("mention_pos", "entity_mentions", "entity_mention_mask", "num_entities")
            logits = m.head(h, att, *(t[k] for k in keys), t["pair_index"]).float().cpu().numpy()
            t3 = self.clock()
        self.timings["encoder"] += t1 - t0
        self.timings["merge"] += t2 - t1
        self.timings["head"] += t3 - t2
        return logits
