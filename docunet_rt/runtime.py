"""Torch-free extraction runtime over an exported MODEL_DIR (ONNX Runtime).

MODEL_DIR (written by ``docunet_rt.export``)::

    model.json                 self-description (see ModelSpec / MODEL_FORMAT_VERSION)
    tokenizer.json             the tokenizer the features are built with
    encoder.<precision>.onnx   windows → hidden (W, L, H), attention rows (W, heads, R, L)
    head.<precision>.onnx      merged document tensors → pair logits (Q, R)

Pipeline per batch: features (numpy) → encoder graph over all windows → numpy window merge →
head graph → threshold decoding. Everything here imports numpy, tokenizers, onnxruntime only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import DocuNetConfig
from .data.document import Document
from .decode import decode, score_to_logit, sigmoid
from .features import (
    DEFAULT_MAX_TOKENS,
    Batch,
    DocFeatures,
    TokenizerInfo,
    build_features,
    collate,
    merge_windows,
    plan_batches,
)

logger = logging.getLogger("docunet_rt")

MODEL_FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("auto", "cpu", "cuda", "tensorrt")
ENCODER_INPUTS = ("input_ids", "attention_mask", "win_rows")
ENCODER_OUTPUTS = ("hidden", "attention_rows")
HEAD_INPUTS = (
    "hidden",
    "mention_att",
    "mention_pos",
    "entity_mentions",
    "entity_mention_mask",
    "num_entities",
    "pair_index",
)
HEAD_OUTPUTS = ("logits",)
ORT_INSTALL = (
    "pip install onnxruntime-gpu  (or, on machines without CUDA wheels: pip install onnxruntime)"
)


class ModelDirError(ValueError):
    """A MODEL_DIR that cannot be used (missing, unsupported version, missing variant)."""


# ------------------------------------------------------------------------------------------------
# MODEL_DIR description
# ------------------------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    path: Path
    config: DocuNetConfig
    graphs: dict[str, dict[str, str]]  # precision -> {"encoder": file, "head": file}
    sha256: dict[str, str]  # file -> digest
    meta: dict[str, Any]

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> ModelSpec:
        p = Path(model_dir)
        f = p / "model.json"
        if not p.is_dir():
            raise ModelDirError(
                f"model directory {p} does not exist (create it with docunet-rt export)"
            )
        if not f.is_file():
            raise ModelDirError(
                f"{p} is not an exported model: no model.json (run docunet-rt export)"
            )
        try:
            meta = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise ModelDirError(f"{f} is corrupt: {e}") from e
        version = meta.get("format_version")
        if version not in SUPPORTED_FORMAT_VERSIONS:
            raise ModelDirError(
                f"{f}: format_version {version!r} is not supported by this docunet-rt "
                f"(supported: {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}); re-export the model"
            )
        return cls(
            path=p,
            config=DocuNetConfig.from_dict(meta["config"]),
            graphs=meta["graphs"],
            sha256=meta.get("sha256", {}),
            meta=meta,
        )

    def graph_files(self, precision: str) -> tuple[Path, Path]:
        if precision not in self.graphs:
            have = ", ".join(sorted(self.graphs)) or "none"
            raise ModelDirError(
                f"{self.path} has no {precision!r} variant; variants present: {have} "
                f"(export it with docunet-rt export --precision {precision})"
            )
        g = self.graphs[precision]
        enc, head = self.path / g["encoder"], self.path / g["head"]
        for x in (enc, head):
            if not x.is_file():
                raise ModelDirError(f"{x} is listed in model.json but missing")
        return enc, head

    def verify(self, precision: str) -> None:
        """Check the graphs' sha256 against model.json (a truncated copy fails loudly)."""
        for x in self.graph_files(precision):
            want = self.sha256.get(x.name)
            if want and file_sha256(x) != want:
                raise ModelDirError(f"{x} does not match the sha256 in model.json (corrupt copy?)")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# Sessions and providers
# ------------------------------------------------------------------------------------------------


def import_ort():
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - environment dependent
        raise ImportError(f"extraction needs ONNX Runtime: {ORT_INSTALL}") from e
    return ort


def provider_chain(
    device: str, *, cache_dir: str | None = None, trt_fp16: bool = False, precision: str = "fp32"
) -> list[tuple[str, dict[str, Any]]]:
    """Providers to try, best first, with their options (TensorRT > CUDA > CPU for auto).

    The int8 graphs use ONNX Runtime's dynamic-quantization ops, which TensorRT cannot run, so
    TensorRT is left out of the chain for them (``--device tensorrt --precision int8`` is refused).
    """
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; valid choices: {', '.join(DEVICES)}")
    if precision == "int8" and device == "tensorrt":
        raise ValueError(
            "--precision int8 cannot run on TensorRT (dynamic-quantization ops); "
            "use --precision fp16 or fp32 with --device tensorrt, or int8 with --device cpu"
        )
    cpu = ("CPUExecutionProvider", {})
    cuda = ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})
    trt_opts: dict[str, Any] = {
        "trt_fp16_enable": trt_fp16,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": cache_dir
        or os.path.join(os.path.expanduser("~"), ".cache", "docunet_rt", "trt"),
        "trt_timing_cache_enable": True,
    }
    trt = ("TensorrtExecutionProvider", trt_opts)
    chains = {
        "cpu": [cpu],
        "cuda": [cuda, cpu],
        "tensorrt": [trt, cuda, cpu],
        "auto": [cuda, cpu] if precision == "int8" else [trt, cuda, cpu],
    }
    return chains[device]


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


def cuda_driver_present() -> bool:
    """Whether the NVIDIA driver library can be loaded (no driver, no GPU)."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def make_session(path: Path, device: str, threads: int | None, *, verbose: bool = False, **kw):
    """An InferenceSession on the best provider that really works; an explicit GPU device that
    ends up on the CPU is an error (onnxruntime-gpu lists CUDA/TensorRT even without a GPU)."""
    ort = import_ort()
    so = ort.SessionOptions()
    so.log_severity_level = 0 if verbose else 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    available = set(ort.get_available_providers())
    if device == "auto" and not cuda_driver_present():
        # onnxruntime-gpu lists CUDA/TensorRT even where there is no GPU; trying them only
        # produces loud fall-back errors, so auto goes straight to the CPU there
        available &= {"CPUExecutionProvider"}
    chain = [(n, o) for n, o in provider_chain(device, **kw) if n in available]
    if device in ("cuda", "tensorrt") and chain[0][0] == "CPUExecutionProvider":
        raise ValueError(
            f"--device {device}: this onnxruntime has no {device.upper()} provider "
            f"(available: {', '.join(sorted(available))}); install onnxruntime-gpu or use --device cpu"
        )
    with stdout_to_stderr():
        sess = ort.InferenceSession(
            str(path),
            sess_options=so,
            providers=[n for n, _ in chain],
            provider_options=[o for _, o in chain],
        )
    used = sess.get_providers()[0]
    if device in ("cuda", "tensorrt") and used == "CPUExecutionProvider":
        raise ValueError(f"--device {device}: no usable GPU (the session fell back to the CPU)")
    return sess


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


@dataclass
class ExtractOptions:
    min_score: float = 0.5  # sigmoid(logit); 0.5 is the model's own decision boundary
    top_k: int | None = None  # at most k relations per entity pair
    relations: Sequence[str] | None = None  # keep only these relation ids
    max_tokens: int = DEFAULT_MAX_TOKENS  # padded encoder tokens per batch (see features)
    batch_size: int | None = None  # fixed documents per batch instead of the token budget
    sort_window: int = 256  # documents read ahead and sorted by length before batching


@dataclass
class EntityRef:
    index: int
    name: str
    type: str


@dataclass
class Triple:
    head: EntityRef
    tail: EntityRef
    relation: str  # id
    relation_name: str
    score: float  # sigmoid(logit), rounded to 4 decimals

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": vars(self.head),
            "tail": vars(self.tail),
            "relation": {"id": self.relation, "name": self.relation_name},
            "score": self.score,
        }


@dataclass
class DocumentResult:
    id: str
    triples: list[Triple] = field(default_factory=list)
    meta: Any = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "triples": [t.to_dict() for t in self.triples]}
        if self.meta is not None:
            d["meta"] = self.meta
        return d


# ------------------------------------------------------------------------------------------------
# Extractor
# ------------------------------------------------------------------------------------------------


class Extractor:
    """Run an exported DocuNet on documents.

    >>> ex = Extractor("model_dir", device="cpu", precision="int8", threads=2)
    >>> for result in ex.extract(docs):  # lazily, in input order
    ...     print(result.id, len(result.triples))
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        device: str = "auto",
        precision: str = "fp32",
        threads: int | None = None,
        verify: bool = True,
        trt_cache_dir: str | None = None,
        verbose: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r}; valid choices: {', '.join(PRECISIONS)}"
            )
        self.spec = ModelSpec.load(model_dir)
        self.config = self.spec.config
        self.precision = precision
        enc_path, head_path = self.spec.graph_files(precision)
        if verify:
            self.spec.verify(precision)
        self.tok = TokenizerInfo.from_dir(self.spec.path)
        kw = {"cache_dir": trt_cache_dir, "trt_fp16": precision == "fp16", "precision": precision}
        self.encoder = make_session(enc_path, device, threads, verbose=verbose, **kw)
        self.head = make_session(head_path, device, threads, verbose=verbose, **kw)
        self.provider = self.encoder.get_providers()[0]
        # TensorRT engines are built for the profile shapes in model.json (batches of <= 8 docs)
        self.max_batch_docs = 8 if self.provider == "TensorrtExecutionProvider" else None
        self.relations = list(self.config.relations)
        self.relation_names = dict(self.config.relation_names)
        self.timings = {"encoder": 0.0, "merge": 0.0, "head": 0.0}

    # -- stages ----------------------------------------------------------------------------------

    def features(self, doc: Document) -> DocFeatures:
        return build_features(doc, self.tok, self.config)

    def run_batch(self, feats: Sequence[DocFeatures]) -> list[np.ndarray]:
        """Pair logits (Q_i, R) for each document of one batch."""
        import time

        batch: Batch = collate(feats, self.tok, self.config)
        t0 = time.perf_counter()
        hidden, rows = self.encoder.run(
            list(ENCODER_OUTPUTS),
            {
                "input_ids": batch.input_ids,
                "attention_mask": batch.attention_mask,
                "win_rows": batch.win_rows,
            },
        )
        t1 = time.perf_counter()
        doc_hidden, mention_att = merge_windows(
            batch, hidden.astype(np.float32), rows.astype(np.float32)
        )
        t2 = time.perf_counter()
        feed = {"hidden": doc_hidden, "mention_att": mention_att, **batch.head_inputs()}
        (logits,) = self.head.run(list(HEAD_OUTPUTS), feed)
        t3 = time.perf_counter()
        self.timings["encoder"] += t1 - t0
        self.timings["merge"] += t2 - t1
        self.timings["head"] += t3 - t2
        off = batch.pair_doc_offsets
        return [logits[off[i] : off[i + 1]].astype(np.float32) for i in range(len(feats))]

    def plan_batches(
        self, feats: Sequence[DocFeatures], options: ExtractOptions
    ) -> list[list[int]]:
        """Length-sorted batches by token budget (or fixed size); indices into ``feats``."""
        return plan_batches(
            feats,
            self.config.max_length,
            options.max_tokens,
            batch_size=options.batch_size,
            max_docs=self.max_batch_docs,
        )

    def logits(
        self, feats: Sequence[DocFeatures], options: ExtractOptions | None = None
    ) -> list[np.ndarray]:
        options = options or ExtractOptions()
        out: list[np.ndarray | None] = [None] * len(feats)
        for idx in self.plan_batches(feats, options):
            for i, lg in zip(idx, self.run_batch([feats[i] for i in idx]), strict=True):
                out[i] = lg
        return out  # type: ignore[return-value]

    def decode(
        self, doc: Document, feats: DocFeatures, logits: np.ndarray, options: ExtractOptions
    ) -> DocumentResult:
        allowed = None
        if options.relations is not None:
            unknown = [r for r in options.relations if r not in self.relations]
            if unknown:
                raise ValueError(
                    f"unknown relation id(s) {', '.join(unknown)}; the model knows: "
                    f"{', '.join(self.relations[:20])}{' …' if len(self.relations) > 20 else ''}"
                )
            allowed = np.zeros(len(self.relations) + 1, dtype=bool)
            for r in options.relations:
                allowed[self.relations.index(r) + 1] = True
        threshold = score_to_logit(options.min_score)
        triples = []
        for q, r, logit in decode(
            logits, threshold=threshold, top_k=options.top_k, allowed=allowed
        ):
            h, t = int(feats.pairs[q, 0]), int(feats.pairs[q, 1])
            rid = self.relations[r - 1]
            triples.append(
                Triple(
                    head=entity_ref(doc, h),
                    tail=entity_ref(doc, t),
                    relation=rid,
                    relation_name=self.relation_names.get(rid, rid),
                    score=round(sigmoid(logit), 4),
                )
            )
        triples.sort(key=lambda x: (x.head.index, x.tail.index, self.relations.index(x.relation)))
        return DocumentResult(id=doc.id, triples=triples, meta=doc.meta)

    # -- whole documents -------------------------------------------------------------------------

    def extract(
        self,
        docs: Iterable[Document],
        options: ExtractOptions | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[DocumentResult]:
        """Results lazily and in input order; documents are read ``sort_window`` at a time,
        sorted by length into batches, and restored to input order."""
        options = options or ExtractOptions()
        chunk: list[Document] = []
        for doc in docs:
            chunk.append(doc)
            if len(chunk) >= options.sort_window:
                yield from self._extract_chunk(chunk, options, progress)
                chunk = []
        if chunk:
            yield from self._extract_chunk(chunk, options, progress)

    def _extract_chunk(self, docs, options, progress) -> Iterator[DocumentResult]:
        feats = [self.features(d) for d in docs]
        logits = self.logits(feats, options)
        for d, f, lg in zip(docs, feats, logits, strict=True):
            yield self.decode(d, f, lg, options)
        if progress:
            progress(len(docs))


def entity_ref(doc: Document, i: int) -> EntityRef:
    e = doc.entities[i]
    return EntityRef(
        index=i, name=e.name or (e.mentions[0].name if e.mentions else ""), type=e.type
    )
