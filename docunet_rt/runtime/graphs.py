"""The ONNX Runtime backend: encoder graph → window merge → head graph, one batch at a time.

``OrtGraphs.run_batch`` is what ``Extractor`` runs for every batch on ONNX Runtime (the PyTorch
backend, ``model.TorchBackend``, has the same methods). Stage times accumulate in ``timings``.

The window merge runs either in numpy on the host (``merge="numpy"``) or as the MODEL_DIR's
merge graph (``merge="graph"``): then the three sessions are chained with ONNX Runtime IO
binding, so the encoder's outputs and the merged tensors stay on the session's device (the GPU,
on CUDA) and only the logits come back. ``"auto"`` takes the graph on a GPU provider and numpy
on the CPU (measured faster there: benchmarks/results/merge_cpu.json).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DocuNetConfig
from ..features import Batch, DocFeatures, ShapeBuckets, TokenizerInfo, collate
from ..grouping import Lexicon
from ..ner.recognize import Recognizer, load_lexicon
from ..ner.tagging import TaggerConfig
from .merge import merge_windows
from .model_dir import (
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    HEAD_OUTPUTS,
    MERGE_INPUTS,
    TAGGER_OUTPUTS,
    ModelSpec,
)
from .sessions import CPU, CUDA, TENSORRT, SessionConfig, make_session

# TensorRT engines are built for the profile shapes in model.json (batches of <= 8 documents)
TENSORRT_MAX_BATCH_DOCS = 8
MERGES = ("auto", "numpy", "graph")


class OrtGraphs:
    """The graphs of one precision variant (encoder, head, and the merge graph when it is
    used), on the provider ``sessions`` picks."""

    def __init__(
        self,
        encoder: str | os.PathLike,
        head: str | os.PathLike,
        tok: TokenizerInfo,
        config: DocuNetConfig,
        sessions: SessionConfig | None = None,
        *,
        merge_graph: str | os.PathLike | None = None,
        merge: str = "auto",
        buckets: ShapeBuckets | None | str = "auto",
        profile_prefix: str | None = None,
    ) -> None:
        from ..options import check_choice

        check_choice("merge", merge, MERGES)
        sessions = sessions or SessionConfig()
        self.tok, self.config = tok, config
        prefix = {g: f"{profile_prefix}_{g}" if profile_prefix else None for g in ("enc", "head")}
        self.encoder = make_session(Path(encoder), sessions, profile_prefix=prefix["enc"])
        self.head = make_session(Path(head), sessions, profile_prefix=prefix["head"])
        self.provider: str = self.encoder.get_providers()[0]
        if (head_on := self.head.get_providers()[0]) != self.provider:
            raise ValueError(
                f"the encoder runs on {self.provider} but the head on {head_on}; "
                f"--device {sessions.device} cannot run this model as a whole"
            )
        self.max_batch_docs = TENSORRT_MAX_BATCH_DOCS if self.provider == TENSORRT else None
        self.timings = {"encoder": 0.0, "merge": 0.0, "head": 0.0}
        if merge == "auto":
            merge = "graph" if self.provider != CPU and merge_graph is not None else "numpy"
        if merge == "graph" and merge_graph is None:
            raise ValueError("merge='graph' needs the MODEL_DIR's merge.onnx (re-export the model)")
        self.merge_mode = merge
        self.merge = None
        if merge == "graph":  # scatter-adds: CUDA runs them; TensorRT would need profiles
            on = replace(sessions, device="cuda") if self.provider == TENSORRT else sessions
            self.merge = make_session(Path(merge_graph), on)  # type: ignore[arg-type]
        self.device = "cuda" if self.provider in (CUDA, TENSORRT) else "cpu"
        self.device_id = int(dict(sessions.cuda_options).get("device_id", 0))
        if buckets == "auto":  # a GPU tunes kernels per shape; the CPU would only pad
            buckets = ShapeBuckets() if self.device == "cuda" else None
        self.buckets: ShapeBuckets | None = buckets  # type: ignore[assignment]

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
        if self.merge is not None:
            return self._run_bound(batch, max_tokens)
        t0 = time.perf_counter()
        hidden, rows = self.encode(batch, max_tokens)
        t1 = time.perf_counter()
        feed = self.head_feed(batch, hidden, rows)
        t2 = time.perf_counter()
        (logits,) = self.head.run(list(HEAD_OUTPUTS), feed)
        t3 = time.perf_counter()
        self._time(t0, t1, t2, t3)
        return logits

    @staticmethod
    def head_feed(batch: Batch, hidden: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The head graph's inputs: the encoder's window outputs merged per document (numpy)
        and the batch's index arrays. Export calibrates the int8 convolutions on these."""
        doc_hidden, mention_att = merge_windows(batch, hidden, rows)
        return {"hidden": doc_hidden, "mention_att": mention_att, **batch.head_inputs()}

    def _time(self, t0: float, t1: float, t2: float, t3: float) -> None:
        self.timings["encoder"] += t1 - t0
        self.timings["merge"] += t2 - t1
        self.timings["head"] += t3 - t2

    def _run_bound(self, batch: Batch, max_tokens: int | None) -> np.ndarray:
        """encoder → merge graph → head with IO binding: the tensors between the graphs stay
        on ``self.device``; index arrays go up, only the logits come back."""
        t0 = time.perf_counter()
        W, L = batch.input_ids.shape
        io = self.encoder.io_binding()
        if max_tokens is None or W <= max(1, max_tokens // L):
            for n in ENCODER_INPUTS:
                io.bind_cpu_input(n, getattr(batch, n))
            for n in ENCODER_OUTPUTS:
                io.bind_output(n, self.device, self.device_id)
            self.encoder.run_with_iobinding(io)
            hidden, rows = io.get_outputs()  # OrtValues on the device
        else:  # one document over the encoder budget: chunks joined on the host (rare)
            hidden, rows = (self._ortvalue(x) for x in self.encode(batch, max_tokens))
        t1 = time.perf_counter()
        mio = self.merge.io_binding()  # type: ignore[union-attr]
        mio.bind_ortvalue_input("hidden", hidden)
        mio.bind_ortvalue_input("attention_rows", rows)
        for n in MERGE_INPUTS[2:]:
            mio.bind_cpu_input(n, getattr(batch, n))
        mio.bind_output("doc_hidden", self.device, self.device_id)
        mio.bind_output("mention_att", self.device, self.device_id)
        self.merge.run_with_iobinding(mio)  # type: ignore[union-attr]
        doc_hidden, mention_att = mio.get_outputs()
        t2 = time.perf_counter()
        hio = self.head.io_binding()
        hio.bind_ortvalue_input("hidden", doc_hidden)
        hio.bind_ortvalue_input("mention_att", mention_att)
        for n, v in batch.head_inputs().items():
            hio.bind_cpu_input(n, v)
        hio.bind_output("logits", "cpu")
        self.head.run_with_iobinding(hio)
        (logits,) = hio.copy_outputs_to_cpu()
        t3 = time.perf_counter()
        self._time(t0, t1, t2, t3)
        return logits

    def _ortvalue(self, x: np.ndarray) -> Any:
        from .sessions import import_ort

        return import_ort().OrtValue.ortvalue_from_numpy(x, self.device, self.device_id)

    def run_batch(
        self, feats: Sequence[DocFeatures], max_tokens: int | None = None
    ) -> list[np.ndarray]:
        """Pair logits (Q_i, R) for each document of one batch (encoder windows at most
        ``max_tokens`` padded tokens at a time)."""
        batch = collate(feats, self.tok, self.config, buckets=self.buckets)
        return batch.per_document(self.run_collated(batch, max_tokens))

    def end_profiling(self) -> dict[str, Any]:
        """Profile trace file of the encoder and the head (sessions made with
        ``profile_prefix``; the merge graph is not profiled)."""
        return {"encoder": self.encoder.end_profiling(), "head": self.head.end_profiling()}


class OrtTagFn:
    """The entity tagger graph (``tagger.<precision>.onnx``) as the tag function of
    ``ner.recognize.Recognizer``: windows (W, L) → tag logits (W, L, tags)."""

    def __init__(self, path: str | os.PathLike, sessions: SessionConfig) -> None:
        self.session = make_session(path, sessions)
        self.seconds = 0.0  # time spent in the graph, accumulated (threads add up)
        self._lock = threading.Lock()

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        # One run at a time: the parse workers call this concurrently, and every concurrent run
        # holds its own activations (the session's intra-op threads already use the cores).
        with self._lock:
            t0 = time.perf_counter()
            out = self.session.run(list(TAGGER_OUTPUTS), feed)[0]
            self.seconds += time.perf_counter() - t0
        return out


def load_recognizer(
    spec: ModelSpec,
    precision: str,
    sessions: SessionConfig,
    *,
    max_tokens: int,
    max_wordpieces: int | None,
) -> Recognizer:
    """The MODEL_DIR's entity tagger (graph, tokenizer, lexicon) as a ``Recognizer``;
    ``ModelDirError`` naming the commands that make one when it has none."""
    from tokenizers import Tokenizer

    path = spec.tagger_file(precision)
    t = spec.tagger or {}
    tok_file = spec.path / t.get("tokenizer", "tokenizer.json")
    tok = TokenizerInfo.from_tokenizer(Tokenizer.from_file(str(tok_file))).for_threads()
    lexicon = load_lexicon(spec.path / t["lexicon"]) if t.get("lexicon") else Lexicon()
    return Recognizer(
        OrtTagFn(path, sessions), tok, TaggerConfig.from_dict(t["config"]), lexicon,
        max_tokens=max_tokens, max_wordpieces=max_wordpieces,
    )  # fmt: skip
