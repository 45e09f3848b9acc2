"""``Extractor``: the one inference core every path goes through.

    records / documents ──prepare──▶ (document, features) ──infer──▶ DocumentResult
                                     (parse + featurize)     (batch plan → backend → decode)

* ``prepare`` (``prepare_lines`` / ``prepare_records``) parses records and builds features; it is
  thread- and process-safe, so the streaming job runs it in its worker pool.
* ``infer`` plans length-sorted batches (``features.plan_batches``), runs each through the
  backend (``Backend.run_batch``: ONNX Runtime graphs here, the PyTorch model in
  ``model.TorchBackend``) and decodes triples with options validated once (``decoder``).

``extract`` (documents in Python), ``extract_records`` (records in, results or error records
out: the records-level entry point), the streaming ``extract.run_extraction`` job, evaluation,
parity and the benchmark all call these. This module imports numpy, tokenizers and (through
the ONNX backend) onnxruntime only: never torch.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from ..config import DocuNetConfig
from ..data import DataError, Document
from ..decode import decode, sigmoid
from ..features import (
    DocFeatures,
    ShapeBuckets,
    TokenizerInfo,
    build_features,
    plan_batches,
)
from ..ner.recognize import Recognizer
from ..options import (
    DEFAULT_MAX_TOKENS,
    GPU_DEFAULT_MAX_TOKENS,
    PRECISIONS,
    TAGGER_CPU_MAX_TOKENS,
    ExtractOptions,
    check_choice,
)
from .graphs import OrtGraphs
from .model_dir import ModelSpec
from .prepare import (
    NO_TAGGER,
    Prepared,
    Record,
    parse_entities,
    prepare_lines,
    prepare_records,
    size_error,
)
from .results import DocumentResult, ErrorRecord, Failure, Triple, document_result, entity_ref
from .sessions import CUDA, TENSORRT, SessionConfig

logger = logging.getLogger("docunet_rt")


class Backend(Protocol):
    """Runs one batch of documents through a model (the seam between the core and an engine)."""

    provider: str  # what actually runs the batches (an ONNX Runtime provider, "torch-cpu" …)
    max_batch_docs: int | None  # a cap on documents per batch (TensorRT profiles), or None
    timings: dict[str, float]  # seconds spent per stage (encoder, merge, head), accumulated

    def run_batch(
        self, feats: Sequence[DocFeatures], max_tokens: int | None = None
    ) -> list[np.ndarray]:
        """Pair logits (Q_i, R) for each document of the batch; the encoder runs at most
        ``max_tokens`` padded tokens at a time (None: all windows together)."""
        ...


@dataclass(frozen=True)
class Decoder:
    """Decoding settings resolved against one model: validated once per run, not per document."""

    threshold: float  # logit threshold (min_score's, else the model's decision_threshold)
    top_k: int | None
    allowed: np.ndarray | None  # boolean mask over logit columns (relation filter)


class Extractor:
    """Run DocuNet on documents: an exported MODEL_DIR on ONNX Runtime, or any ``Backend``.

    >>> ex = Extractor("model_dir", device="cpu", precision="int8", threads=2)

    ``merge``: where the window merge between the graphs runs: ``"numpy"`` (host),
    ``"graph"`` (the MODEL_DIR's merge graph, chained with IO binding: nothing goes back to the
    host between the graphs) or ``"auto"`` (graph on a GPU, numpy on the CPU).
    ``shape_buckets``: pad entities and positions to a few sizes (None: on a GPU only);
    ``cuda_options``: extra CUDA provider options (``{"prefer_nhwc": "1"}`` …).
    >>> for result in ex.extract(docs):  # Documents or JSONL-style dicts; lazily, in order
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
        merge: str = "auto",
        shape_buckets: bool | None = None,
        cuda_options: dict[str, str] | None = None,
    ) -> None:
        check_choice("precision", precision, PRECISIONS)
        cuda = tuple(sorted((cuda_options or {}).items()))
        sessions = SessionConfig(device, threads, precision, trt_cache_dir, verbose, cuda)
        self.spec: ModelSpec | None = ModelSpec.load(model_dir)
        self._sessions = sessions
        enc_path, head_path = self.spec.graph_files(precision)
        if verify:
            self.spec.verify(precision)
        tok = TokenizerInfo.from_dir(self.spec.path)
        backend = OrtGraphs(
            enc_path, head_path, tok, self.spec.config, sessions,
            merge_graph=self.spec.merge_path, merge=merge,
            buckets="auto" if shape_buckets is None else (ShapeBuckets() if shape_buckets else None),
        )  # fmt: skip
        self._setup(backend, self.spec.config, tok, precision)

    @classmethod
    def from_backend(
        cls,
        backend: Backend,
        config: DocuNetConfig,
        tok: TokenizerInfo,
        *,
        precision: str = "fp32",
        recognizer: Recognizer | None = None,
    ) -> Extractor:
        """An Extractor over another backend (the PyTorch model, a test stub): everything but
        the batch runner is the same code. ``recognizer``: the entity tagger, if any."""
        ex = cls.__new__(cls)
        ex.spec = None
        ex._setup(backend, config, tok, precision)
        ex._recognizer = recognizer
        return ex

    def _setup(
        self, backend: Backend, config: DocuNetConfig, tok: TokenizerInfo, precision: str
    ) -> None:
        self.backend, self.config, self.tok, self.precision = backend, config, tok, precision
        self._recognizer: Recognizer | None = None
        self._recognizer_lock = threading.Lock()
        self.relations = list(config.relations)
        self.relation_names = dict(config.relation_names)
        self._order = {r: i for i, r in enumerate(self.relations)}

    def fingerprint(self, options: ExtractOptions | None = None) -> dict[str, Any]:
        """What identifies the model's output besides the options: the graphs' sha256 (from
        model.json) and precision, or the backend and label set for another backend; when
        ``options`` predict entities, also the tagger (its files' sha256 and config)."""
        fp: dict[str, Any] = {"precision": self.precision, "relations": self.relations}
        if self.spec is not None:
            files = self.spec.graphs.get(self.precision, {})
            fp["graphs"] = {g: self.spec.sha256.get(f) for g, f in sorted(files.items())}
        else:
            fp["backend"] = type(self.backend).__name__
        if options is not None and options.entities != "given":
            t = self.spec.tagger if self.spec is not None else None
            if t is not None:
                fp["tagger"] = {"sha256": t.get("sha256"), "config": t.get("config")}
            elif self._recognizer is not None:
                fp["tagger"] = type(self._recognizer.tag_fn).__name__
        return fp

    def run_settings(self, options: ExtractOptions) -> dict[str, Any]:
        """What decides the batches and the arithmetic besides the model and the options: the
        provider, the resolved token budget, where the merge runs, the shape buckets."""
        buckets = self.buckets
        return {
            "provider": self.provider,
            "max_tokens": self.budget(options),
            "merge": getattr(self.backend, "merge_mode", None),
            "buckets": None if buckets is None else [list(buckets.entities), buckets.positions],
        }

    @property
    def provider(self) -> str:
        return self.backend.provider

    @property
    def buckets(self) -> ShapeBuckets | None:
        """The backend's shape padding (GPU), which the memory estimates must count."""
        return getattr(self.backend, "buckets", None)

    @property
    def max_batch_docs(self) -> int | None:
        return self.backend.max_batch_docs

    @property
    def timings(self) -> dict[str, float]:
        return self.backend.timings

    # -- stages ----------------------------------------------------------------------------------

    def features(self, doc: Document) -> DocFeatures:
        return build_features(doc, self.tok, self.config)

    def preparer(
        self, options: ExtractOptions, pool: str = "thread"
    ) -> Callable[[Sequence[tuple[int, bytes]]], list[Prepared]]:
        """``prepare_lines`` bound to this model and ``options``, for a worker pool: picklable,
        and with a GIL-releasing tokenizer for ``pool="thread"``."""
        tok = self.tok.for_threads() if pool == "thread" else self.tok
        recognizer = self.recognizer(options)
        return functools.partial(
            prepare_lines, tok=tok, config=self.config, options=options, buckets=self.buckets,
            recognizer=recognizer,
        )  # fmt: skip

    def recognizer(self, options: ExtractOptions) -> Recognizer | None:
        """The entity tagger ``options.entities`` needs (its session made on first use), or
        None (``given``; ``auto`` without a tagger). ``predict`` without a tagger is a
        ``ModelDirError`` naming the commands that make one."""
        if options.entities == "given":
            return None
        with self._recognizer_lock:
            if self._recognizer is None and self.spec is not None:
                if self.spec.tagger is None and options.entities == "auto":
                    return None
                self._recognizer = self._load_recognizer(options)
            if self._recognizer is None:
                if options.entities == "predict":
                    raise ValueError(NO_TAGGER)
                return None
            # the same session, with this run's batch budget and document bound
            return self._recognizer.with_limits(self.tagger_budget(options), options.max_doc_tokens)

    def tagger_budget(self, options: ExtractOptions) -> int:
        """Padded tokens per tagger run: the option, else the batch budget, capped on the CPU
        (where a bigger batch is no faster and its activations stay in ONNX Runtime's arena)."""
        if options.tagger_max_tokens is not None:
            return options.tagger_max_tokens
        budget = self.budget(options)
        on_gpu = self.provider in (CUDA, TENSORRT, "torch-cuda")
        return budget if on_gpu else min(budget, TAGGER_CPU_MAX_TOKENS)

    def _load_recognizer(self, options: ExtractOptions) -> Recognizer:
        from .graphs import load_recognizer

        assert self.spec is not None
        return load_recognizer(
            self.spec, self.precision, self._sessions,
            max_tokens=self.tagger_budget(options), max_wordpieces=options.max_doc_tokens,
        )  # fmt: skip

    def budget(self, options: ExtractOptions) -> int:
        """Padded encoder tokens per batch: the option, else the device's default."""
        if options.max_tokens is not None:
            return options.max_tokens
        on_gpu = self.provider in (CUDA, TENSORRT, "torch-cuda")
        return GPU_DEFAULT_MAX_TOKENS if on_gpu else DEFAULT_MAX_TOKENS

    def run_batch(
        self, feats: Sequence[DocFeatures], max_tokens: int | None = None
    ) -> list[np.ndarray]:
        """Pair logits (Q_i, R) for each document of one batch (encoder windows at most
        ``max_tokens`` padded tokens at a time; None: the device's budget)."""
        budget = max_tokens if max_tokens is not None else self.budget(ExtractOptions())
        return self.backend.run_batch(feats, budget)

    def plan_batches(
        self, feats: Sequence[DocFeatures], options: ExtractOptions
    ) -> list[list[int]]:
        """Length-sorted batches by token budget (or fixed size); indices into ``feats``."""
        head = options.max_head_mb * 2**20 if options.max_head_mb is not None else None
        return plan_batches(
            feats,
            self.config.max_length,
            self.budget(options),
            batch_size=options.batch_size,
            max_docs=self.max_batch_docs,
            max_head_bytes=head,
            config=self.config,
            buckets=self.buckets,
        )

    def logits(
        self,
        feats: Sequence[DocFeatures],
        options: ExtractOptions | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[np.ndarray]:
        """Pair logits per document, in input order; ``progress(done, total)`` after each
        batch."""
        out: list[np.ndarray | None] = [None] * len(feats)
        options = options or ExtractOptions()
        done = 0
        for idx in self.plan_batches(feats, options):
            logits = self.run_batch([feats[i] for i in idx], self.budget(options))
            for i, lg in zip(idx, logits, strict=True):
                out[i] = lg
            done += len(idx)
            if progress:
                progress(done, len(feats))
        return out  # type: ignore[return-value]

    def resolve_options(self, options: ExtractOptions) -> ExtractOptions:
        """``options`` with ``min_score`` filled in from this model's decision threshold when
        the caller left it to the model (what an extract job records and pins on resume)."""
        if options.min_score is not None:
            return options
        return replace(options, min_score=sigmoid(self.config.decision_threshold))

    def decoder(self, options: ExtractOptions) -> Decoder:
        """Options resolved against this model's label set (unknown relation ids are an error
        listing the valid ones)."""
        allowed = None
        if options.relations is not None:
            unknown = [r for r in options.relations if r not in self._order]
            if unknown:
                raise ValueError(
                    f"unknown relation id(s) {', '.join(unknown)}; valid choices: "
                    f"{', '.join(self.relations)}"
                )
            allowed = np.zeros(len(self.relations) + 1, dtype=bool)
            for r in options.relations:
                allowed[self._order[r] + 1] = True
        threshold = self.resolve_options(options).threshold
        assert threshold is not None  # resolved: min_score is set
        return Decoder(threshold, options.top_k, allowed)

    def decode(
        self, doc: Document, feats: DocFeatures, logits: np.ndarray, decoder: Decoder
    ) -> DocumentResult:
        triples = []
        for q, r, logit in decode(
            logits, threshold=decoder.threshold, top_k=decoder.top_k, allowed=decoder.allowed
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
        triples.sort(key=lambda x: (x.head.index, x.tail.index, self._order[x.relation]))
        return document_result(doc, triples)

    def infer(
        self,
        docs: Sequence[Document],
        feats: Sequence[DocFeatures],
        options: ExtractOptions,
        decoder: Decoder | None = None,
    ) -> Iterator[list[tuple[int, DocumentResult | Failure]]]:
        """Results of ``docs`` as (index, result), one list per finished batch: documents with
        no entity pair first (nothing to run), then the batches, the one holding the earliest
        document first, so that ordered output can start as early as possible. A batch the
        backend fails on (e.g. an allocation failure) is retried one document at a time; a
        document that fails alone gets a :class:`Failure` and the others go on."""
        decoder = decoder or self.decoder(options)
        empty = [i for i, f in enumerate(feats) if len(f.pairs) == 0]
        if empty:
            yield [(i, document_result(docs[i], [])) for i in empty]
        todo = [i for i, f in enumerate(feats) if len(f.pairs)]
        if not todo:
            return
        sub = [feats[i] for i in todo]
        for b in sorted(self.plan_batches(sub, options), key=min):
            done: list[tuple[int, DocumentResult | Failure]] = []
            for part, logits in self._run_or_split([todo[j] for j in b], feats, options):
                for i, lg in zip(part, logits, strict=True):
                    res = (
                        lg
                        if isinstance(lg, Failure)
                        else self.decode(docs[i], feats[i], lg, decoder)
                    )
                    done.append((i, res))
            yield done

    def _run_or_split(
        self, idx: list[int], feats: Sequence[DocFeatures], options: ExtractOptions
    ) -> Iterator[tuple[list[int], Sequence[np.ndarray | Failure]]]:
        try:
            yield idx, self.run_batch([feats[i] for i in idx], self.budget(options))
            return
        except Exception as e:  # noqa: BLE001 - the runtime's own error types vary by provider
            if len(idx) == 1:
                logger.warning("the model failed on one document: %s", e)
                why = f"the model failed on this document: {type(e).__name__}: {str(e)[:300]}"
                yield idx, [Failure(why)]
                return
            logger.warning("a batch of %d documents failed (%s); retrying one by one", len(idx), e)
        for i in idx:
            yield from self._run_or_split([i], feats, options)

    # -- whole documents -------------------------------------------------------------------------

    def extract(
        self,
        docs: Iterable[Document | Mapping[str, Any]],
        options: ExtractOptions | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[DocumentResult]:
        """Results lazily and in input order; documents are read ``sort_window`` at a time and
        sorted by length into batches. Dicts are parsed like JSONL records (a bad one raises
        ``DataError`` naming the record and field)."""
        options = options or ExtractOptions()
        decoder = self.decoder(options)
        recognizer = self.recognizer(options)
        chunk: list[Document] = []
        for n, d in enumerate(docs, 1):
            if not isinstance(d, Document):
                d = parse_entities(d, n, options.entities, recognizer)
            chunk.append(d)
            if len(chunk) >= options.sort_window:
                yield from self._extract_chunk(chunk, options, decoder, progress)
                chunk = []
        if chunk:
            yield from self._extract_chunk(chunk, options, decoder, progress)

    def _extract_chunk(self, docs, options, decoder, progress) -> Iterator[DocumentResult]:
        feats = [self.features(d) for d in docs]
        for d, f in zip(docs, feats, strict=True):
            if (why := size_error(f, self.config, options, self.buckets)) is not None:
                raise DataError(why, doc=d.id)
        results: list[DocumentResult | None] = [None] * len(docs)
        for done in self.infer(docs, feats, options, decoder):
            for i, r in done:
                if isinstance(r, Failure):
                    raise DataError(r.reason, doc=docs[i].id)
                results[i] = r
        yield from results  # type: ignore[misc]
        if progress:
            progress(len(docs))

    def extract_records(
        self, records: Iterable[Record], options: ExtractOptions | None = None
    ) -> Iterator[DocumentResult | ErrorRecord]:
        """The records-level entry point: one result or one error record per record, in input
        order. Records are ``(line, raw JSON bytes/str or dict)``; bad ones become
        ``ErrorRecord(line, id, reason)`` and the rest go on."""
        options = options or ExtractOptions()
        decoder = self.decoder(options)
        recognizer = self.recognizer(options)
        chunk: list[Record] = []
        for rec in records:
            chunk.append(rec)
            if len(chunk) >= options.sort_window:
                yield from self._records_chunk(chunk, options, decoder, recognizer)
                chunk = []
        if chunk:
            yield from self._records_chunk(chunk, options, decoder, recognizer)

    def _records_chunk(
        self, chunk, options, decoder, recognizer
    ) -> Iterator[DocumentResult | ErrorRecord]:
        items = prepare_records(chunk, self.tok, self.config, options, self.buckets, recognizer)
        good = [k for k, p in enumerate(items) if p.error is None]
        out: list[DocumentResult | ErrorRecord | None] = [
            ErrorRecord(p.line, p.id, p.error) if p.error is not None else None for p in items
        ]
        docs = [items[k].doc for k in good]
        feats = [items[k].feats for k in good]
        for done in self.infer(docs, feats, options, decoder):  # type: ignore[arg-type]
            for i, r in done:
                p = items[good[i]]
                failed = isinstance(r, Failure)
                out[good[i]] = ErrorRecord(p.line, p.id, r.reason, "model") if failed else r
        yield from out  # type: ignore[misc]
