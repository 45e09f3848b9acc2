"""Parity of an exported MODEL_DIR (ONNX Runtime) against its source checkpoint (PyTorch).

Both sides see exactly the same batches (same documents, same collation), so per-document
logits are comparable element by element; triples are decoded with the shared
``docunet_rt.decode.decode`` at the MODEL_DIR's decision threshold (logit 0 unless tuned on dev).

    >>> report = check_parity("ckpt", "model", docs, precision="fp32")
    >>> report.max_abs_diff, report.triples_identical
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..decode import decode
from ..evaluate import torch_extractor
from ..features import collate
from ..options import check_choice
from ..runtime.extractor import Extractor
from ..runtime.model_dir import ModelSpec
from ..synth import synthetic_documents
from .tracing import load_source

logger = logging.getLogger("docunet_rt")

# max |Δlogit| a variant must stay within (None: reported only). fp32 is the bound.
DEFAULT_TOLERANCE: dict[str, float | None] = {"fp32": 1e-3, "fp16": None, "int8": None}


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------


@dataclass
class ParityReport:
    precision: str
    documents: int
    pairs: int
    max_abs_diff: float  # max |logit_ort - logit_torch| over all pairs and labels
    mean_abs_diff: float
    max_abs_diff_hidden: float | None  # encoder outputs (None when stages=False)
    max_abs_diff_attention: float | None
    triples_torch: int
    triples_ort: int
    triples_only_torch: int
    triples_only_ort: int
    docs_with_triple_mismatch: list[str]
    tolerance: float | None
    seconds_torch: float
    seconds_ort: float
    ort_timings: dict[str, float]  # encoder / merge / head seconds (Extractor.timings)
    features_identical: bool  # tokenizer copy in MODEL_DIR gives the same wordpieces
    shapes: list[dict[str, int]] = field(default_factory=list)  # per batch: W, L, B, T, N, Q

    @property
    def triples_identical(self) -> bool:
        return not self.docs_with_triple_mismatch

    @property
    def triple_agreement(self) -> float:
        """|torch ∩ ort| / |torch ∪ ort| over all documents (1.0 when both are empty)."""
        union = self.triples_torch + self.triples_only_ort
        both = self.triples_torch - self.triples_only_torch
        return 1.0 if union == 0 else both / union

    @property
    def ok(self) -> bool:
        if not self.features_identical:
            return False
        if self.tolerance is None:
            return True
        return self.max_abs_diff <= self.tolerance and self.triples_identical

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d.update(
            triples_identical=self.triples_identical,
            triple_agreement=self.triple_agreement,
            ok=self.ok,
        )
        return d

    def summary(self) -> str:
        return (
            f"{self.precision}: {self.documents} docs, {self.pairs} pairs, max |Δlogit| "
            f"{self.max_abs_diff:.2e} (mean {self.mean_abs_diff:.2e}), triples torch/ort "
            f"{self.triples_torch}/{self.triples_ort}, agreement {self.triple_agreement:.4f}, "
            f"{len(self.docs_with_triple_mismatch)} docs differ"
        )


def _triples(pairs: np.ndarray, logits: np.ndarray, threshold: float) -> set[tuple[int, int, int]]:
    return {
        (int(pairs[q, 0]), int(pairs[q, 1]), r) for q, r, _ in decode(logits, threshold=threshold)
    }


def check_parity(
    ckpt_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    docs: Sequence[Any],
    *,
    precision: str = "fp32",
    batch_size: int = 4,
    threads: int | None = None,
    stages: bool = True,
    tolerance: float | None | str = "default",
    model: Any = None,
    tok: Any = None,
    device: str = "cpu",
) -> ParityReport:
    """Run ``docs`` through the checkpoint (PyTorch, fp32) and MODEL_DIR (ONNX Runtime,
    ``precision``) in identical batches of ``batch_size`` documents (input order) and compare.
    ``device="cuda"``: both on the GPU (PyTorch on CUDA, the CUDA provider).

    ``stages`` also compares the encoder outputs (costs one extra encoder run per batch).
    ``model``/``tok`` reuse an already loaded checkpoint (benchmarks call this repeatedly).
    Both sides score every ordered pair of documents without candidates (``pair_types`` set
    aside): parity compares the graphs' numbers, and pair types would leave synthetic
    documents, whose entities have no such type, with nothing to compare.
    """
    import torch

    if not docs:
        raise ValueError("parity needs at least one document")
    if model is None or tok is None:
        model, tok, _ = load_source(ckpt_dir)
    model.eval()
    if threads:
        torch.set_num_threads(threads)
    check_choice("parity device", device, ("cpu", "cuda"))
    ex = Extractor(model_dir, device=device, precision=precision, threads=threads)
    ref_ex = torch_extractor(model.to(device), tok, device)  # the same core, PyTorch backend
    for e in (ex, ref_ex):  # every pair on both sides (see above)
        e.config = replace(e.config, pair_types=None)
    tol = DEFAULT_TOLERANCE.get(precision) if tolerance == "default" else tolerance
    cfg = model.config
    th = ex.config.decision_threshold  # where the runtime decides (logit 0 unless tuned)

    same_features = True
    max_d = sum_d = 0.0
    n_vals = n_pairs = 0
    max_h: float | None = 0.0 if stages else None
    max_a: float | None = 0.0 if stages else None
    n_t = n_o = only_t = only_o = 0
    mismatched: list[str] = []
    t_torch = t_ort = 0.0
    shapes = []
    for start in range(0, len(docs), batch_size):
        chunk = list(docs[start : start + batch_size])
        feats = [ref_ex.features(d) for d in chunk]
        feats_o = [ex.features(d) for d in chunk]
        same_features &= all(
            np.array_equal(a.wordpieces, b.wordpieces) and np.array_equal(a.pairs, b.pairs)
            for a, b in zip(feats, feats_o, strict=True)
        )
        t0 = time.perf_counter()
        ref = ref_ex.run_batch(feats)  # per document (Q_i, R)
        t1 = time.perf_counter()
        got = ex.run_batch(feats_o)
        t_ort += time.perf_counter() - t1
        t_torch += t1 - t0
        batch = collate(feats, tok, cfg)
        if stages:
            h_ref, a_ref = ref_ex.backend.encode(batch)  # type: ignore[attr-defined]
            h, a = ex.backend.encode(batch)  # type: ignore[attr-defined]
            max_h = max(max_h or 0.0, float(np.abs(h - h_ref).max()))
            max_a = max(max_a or 0.0, float(np.abs(a - a_ref).max()))
        W, L = batch.input_ids.shape
        B, N, _ = batch.entity_mentions.shape
        shapes.append(
            {"W": W, "L": L, "B": B, "T": int(batch.seq_len.max()), "N": N,
             "Q": int(batch.pair_index.shape[0])}
        )  # fmt: skip
        for doc, f, lt, lo in zip(chunk, feats, ref, got, strict=True):
            if lt.shape != lo.shape:
                raise ValueError(
                    f"document {doc.id}: logits shape {lo.shape} (ORT) != {lt.shape} (torch)"
                )
            if lt.size:
                d = np.abs(lt - lo)
                max_d = max(max_d, float(d.max()))
                sum_d += float(d.sum())
                n_vals += d.size
            n_pairs += len(lt)
            st, so = _triples(f.pairs, lt, th), _triples(f.pairs, lo, th)
            n_t, n_o = n_t + len(st), n_o + len(so)
            only_t, only_o = only_t + len(st - so), only_o + len(so - st)
            if st != so:
                mismatched.append(str(doc.id))
    report = ParityReport(
        precision=precision, documents=len(docs), pairs=n_pairs, max_abs_diff=max_d,
        mean_abs_diff=sum_d / max(1, n_vals), max_abs_diff_hidden=max_h, max_abs_diff_attention=max_a,
        triples_torch=n_t, triples_ort=n_o, triples_only_torch=only_t, triples_only_ort=only_o,
        docs_with_triple_mismatch=mismatched, tolerance=tol, seconds_torch=t_torch,
        seconds_ort=t_ort, ort_timings=dict(ex.timings), features_identical=same_features,
        shapes=shapes,
    )  # fmt: skip
    logger.info("parity %s", report.summary())
    return report


def check_parity_path(
    ckpt_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    precisions: Sequence[str] = ("fp32",),
    fmt: str = "auto",
    synthetic: bool = False,
    limit: int | None = None,
    **kw: Any,
) -> list[ParityReport]:
    """Parity on a data file (any format ``read_documents`` reads) and/or the synthetic grid,
    for each precision; loads the checkpoint once."""
    from ..data import read_documents

    spec = ModelSpec.load(model_dir)
    for p in precisions:
        spec.graph_files(p)  # fail early, listing the variants present
    model, tok, _ = load_source(ckpt_dir)
    docs: list[Any] = []
    if data is not None:
        docs.extend(
            read_documents(Path(data), fmt)[:limit] if limit else read_documents(Path(data), fmt)
        )
    if synthetic:
        docs.extend(synthetic_documents(tok, model.config.max_length))
    if not docs:
        raise ValueError("no documents to check: pass --data FILE and/or --synthetic")
    return [
        check_parity(ckpt_dir, model_dir, docs, precision=p, model=model, tok=tok, **kw)
        for p in precisions
    ]
