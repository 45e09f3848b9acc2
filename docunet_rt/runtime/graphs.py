"""The ONNX Runtime backend: encoder graph → window merge → head graph, one batch at a time.

``OrtGraphs.run_batch`` is what ``Extractor`` runs for every batch on ONNX Runtime (the PyTorch
backend, ``model.TorchBackend``, has the same methods). Stage times accumulate in ``timings``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DocuNetConfig
from ..features import Batch, DocFeatures, TokenizerInfo, collate
from .merge import merge_windows
from .model_dir import ENCODER_INPUTS, ENCODER_OUTPUTS, HEAD_OUTPUTS
from .sessions import TENSORRT, SessionConfig, make_session

# TensorRT engines are built for the profile shapes in model.json (batches of <= 8 documents)
TENSORRT_MAX_BATCH_DOCS = 8


class OrtGraphs:
    """Both graphs of one precision variant, on the provider ``sessions`` picks."""

    def __init__(
        self,
        encoder: str | os.PathLike,
        head: str | os.PathLike,
        tok: TokenizerInfo,
        config: DocuNetConfig,
        sessions: SessionConfig | None = None,
        *,
        profile_prefix: str | None = None,
    ) -> None:
        sessions = sessions or SessionConfig()
        self.tok, self.config = tok, config
        prefix = {g: f"{profile_prefix}_{g}" if profile_prefix else None for g in ("enc", "head")}
        self.encoder = make_session(Path(encoder), sessions, profile_prefix=prefix["enc"])
        self.head = make_session(Path(head), sessions, profile_prefix=prefix["head"])
        self.provider: str = self.encoder.get_providers()[0]
        self.max_batch_docs = TENSORRT_MAX_BATCH_DOCS if self.provider == TENSORRT else None
        self.timings = {"encoder": 0.0, "merge": 0.0, "head": 0.0}

    def encode(self, batch: Batch, max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Windows → hidden (W, L, H) and attention rows (W, heads, R, L), float32; run
        ``max_tokens // L`` windows at a time (one long document's windows can exceed the
        batch budget, and the encoder's attention grows with the windows run together)."""
        feed = {n: getattr(batch, n) for n in ENCODER_INPUTS}
        W, L = batch.input_ids.shape
        step = W if max_tokens is None else max(1, max_tokens // L)
        outs = [
            self.encoder.run(list(ENCODER_OUTPUTS), {n: v[a : a + step] for n, v in feed.items()})
            for a in range(0, W, step)
        ]
        hidden, rows = (
            np.concatenate([o[k] for o in outs]) if len(outs) > 1 else outs[0][k] for k in (0, 1)
        )
        return hidden.astype(np.float32), rows.astype(np.float32)

    def run_collated(self, batch: Batch, max_tokens: int | None = None) -> np.ndarray:
        """Pair logits (Q, R) of one collated batch."""
        t0 = time.perf_counter()
        hidden, rows = self.encode(batch, max_tokens)
        t1 = time.perf_counter()
        doc_hidden, mention_att = merge_windows(batch, hidden, rows)
        t2 = time.perf_counter()
        feed = {"hidden": doc_hidden, "mention_att": mention_att, **batch.head_inputs()}
        (logits,) = self.head.run(list(HEAD_OUTPUTS), feed)
        t3 = time.perf_counter()
        self.timings["encoder"] += t1 - t0
        self.timings["merge"] += t2 - t1
        self.timings["head"] += t3 - t2
        return logits

    def run_batch(
        self, feats: Sequence[DocFeatures], max_tokens: int | None = None
    ) -> list[np.ndarray]:
        """Pair logits (Q_i, R) for each document of one batch (encoder windows at most
        ``max_tokens`` padded tokens at a time)."""
        batch = collate(feats, self.tok, self.config)
        return batch.per_document(self.run_collated(batch, max_tokens))

    def end_profiling(self) -> dict[str, Any]:
        """Profile trace file of each graph (sessions made with ``profile_prefix``)."""
        return {"encoder": self.encoder.end_profiling(), "head": self.head.end_profiling()}
