"""Choices, defaults and the extraction options: the one place they are written (stdlib only).

The CLI, the runtime, the streaming job, evaluation and the benchmark all import these, so a
choice list or a default can never disagree between them, and importing the CLI stays free of
numpy. ``ExtractOptions`` is validated once, when it is built; what can only be checked against
a model (relation ids) is checked once per run by ``Extractor.decoder``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

# --- runtime ----------------------------------------------------------------------------------
PRECISIONS = ("fp32", "fp16", "int8")  # ONNX graph variants in a MODEL_DIR
DEVICES = ("auto", "cpu", "cuda", "tensorrt")  # ONNX Runtime execution providers
POOLS = ("thread", "process")  # parse/featurize workers of the streaming job
# Where a record's entities come from: "given" (the input's entities/vertexSet), "predict" (the
# MODEL_DIR's tagger, always), "auto" (predict where the record gives none).
ENTITY_MODES = ("given", "predict", "auto")
OUTPUT_FORMATS = ("jsonl", "pubtator")  # what `extract` writes (pubtator: BioCreative V format)
# Padded encoder tokens per batch (windows × window length), for extraction, evaluation and the
# benchmarks alike: 4096 measured faster and smaller than 8192 or 16384 on a 2-core CPU
# (benchmarks/results/extract_batch_budget_docred200.json).
DEFAULT_MAX_TOKENS = 4096
# On a GPU larger batches pay: PyTorch on an H200 ran 675 docs/s at 4096 and 1,260 at 32,768
# (issue 12's measurements); the ONNX Runtime GPU path takes the same default.
GPU_DEFAULT_MAX_TOKENS = 32768
# The entity tagger's batch on the CPU (padded tokens per run, i.e. one 512-wordpiece window):
# its activations stay in ONNX Runtime's arena; on 100 DocRED documents the peak RSS was 1.05 /
# 1.11 / 1.54 GB at 512 / 1024 / 4096 with the same output, and the times were within this
# shared machine's noise (benchmarks/results/raw_memory_bounds.json, "tagger_budget").
TAGGER_CPU_MAX_TOKENS = 512
DEFAULT_SORT_WINDOW = 256  # documents read ahead and sorted by length before batching
# Per-document bounds, so that one huge record cannot take a run down (it becomes an error
# record instead). Measured: benchmarks/results/extract_memory_bounds.json.
DEFAULT_MAX_RECORD_BYTES = 2 << 20  # a corpus line over 2 MiB is rejected before it is parsed
DEFAULT_MAX_DOC_TOKENS = 8192  # wordpieces incl. markers (DocRED's longest is about 1,000)
DEFAULT_MAX_ENTITIES = 256
# Estimated working memory of the head for one batch (pair map over the document, merged
# attention rows); batches are split to stay under it and a document over it is rejected.
DEFAULT_MAX_HEAD_MB = 512

# --- data and model ---------------------------------------------------------------------------
FORMATS = ("auto", "docred", "jsonl", "cdr", "pubtator")  # input formats of read_documents
MARKERS = ("star", "typed")  # entity marker schemes (see DocuNetConfig.markers)
FEATURE_MAPS = ("context", "similarity")
SELECTIONS = ("dev", "last")  # which epoch training keeps (TrainOptions.select)
ENTITY_ORDERS = ("given", "position", "type")  # entity order on the pair map (DocuNetConfig)
THRESHOLD_CLASSES = ("fixed", "adaptive")  # the decision threshold (DocuNetConfig.threshold_class)
SIMILARITIES = ("elementwise", "cosine", "bilinear")
TRAIN_DEVICES = ("auto", "cpu", "cuda")  # PyTorch devices for training and evaluation

# --- export -----------------------------------------------------------------------------------
EXPORTERS = ("torchscript", "dynamo")  # torch.onnx exporters (see export/onnx.py)
INT8_WEIGHT_TYPES = ("qint8", "quint8")  # int8 weight quantisation types (export/quantize.py)

# --- install hints (the extras of pyproject.toml) --------------------------------------------------
TRAIN_INSTALL = "pip install 'docunet-rt[train]'"  # torch, transformers, onnx: train, export

# --- benchmark ----------------------------------------------------------------------------------
CPU_RUNTIMES = ("torch", "ort-fp32", "ort-int8")
GPU_RUNTIMES = {"ort-cuda-fp32": "cuda", "ort-cuda-fp16": "cuda", "tensorrt-fp16": "tensorrt"}
TORCH_CUDA_RUNTIMES = ("torch-cuda-fp32", "torch-cuda-bf16")  # PyTorch baselines on a GPU
RUNTIMES = (*CPU_RUNTIMES, *GPU_RUNTIMES, *TORCH_CUDA_RUNTIMES)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else ValueError listing them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(choices)}")
    return value


def parse_list(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"a, b,c"`` or ``["a", "b"]`` → ``("a", "b", "c")``; None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(x.strip() for x in items if x.strip())


BOUNDS = ("max_record_bytes", "max_doc_tokens", "max_entities", "max_head_mb")


def _at_least_one(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class ExtractOptions:
    """What decides the triples and the batching of an extraction (validated when built).

    The same options drive ``Extractor.extract`` (documents in Python), the streaming
    ``run_extraction`` job (``docunet-rt extract``) and evaluation; a test pins that.
    """

    # Keep triples whose score sigmoid(logit) is above this, 0 < min_score < 1; None: the
    # model's decision threshold (DocuNetConfig.decision_threshold: 0.5 = logit 0 unless it was
    # tuned on dev), resolved by Extractor.resolve_options.
    min_score: float | None = None
    top_k: int | None = None  # at most k relations per entity pair (highest scores)
    # Keep only these relation ids (checked against the model's label set once per run).
    relations: tuple[str, ...] | None = None
    # padded encoder tokens per batch; None: the device's default (DEFAULT_MAX_TOKENS on the
    # CPU, GPU_DEFAULT_MAX_TOKENS on a GPU)
    max_tokens: int | None = None
    batch_size: int | None = None  # fixed documents per batch instead of the token budget
    sort_window: int = DEFAULT_SORT_WINDOW  # documents sorted by length together
    # Bounds per record/document (None: unbounded); what exceeds them is an error record.
    max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES
    max_doc_tokens: int | None = DEFAULT_MAX_DOC_TOKENS
    max_entities: int | None = DEFAULT_MAX_ENTITIES
    max_head_mb: int | None = DEFAULT_MAX_HEAD_MB
    entities: str = "given"  # one of ENTITY_MODES
    # padded tokens per entity-tagger run; None: the device's default (TAGGER_CPU_MAX_TOKENS on
    # the CPU, the batch budget on a GPU)
    tagger_max_tokens: int | None = None

    def __post_init__(self) -> None:
        check_choice("entities mode", self.entities, ENTITY_MODES)
        ms = self.min_score
        if ms is not None and (
            isinstance(ms, bool) or not isinstance(ms, int | float) or not 0.0 < ms < 1.0
        ):
            raise ValueError(f"min_score must be between 0 and 1 (exclusive), got {ms!r}")
        for name in ("top_k", "max_tokens", "tagger_max_tokens", "batch_size", "sort_window",
                     *BOUNDS):  # fmt: skip
            _at_least_one(name, getattr(self, name))
        if self.relations is not None:
            rels = parse_list(self.relations)
            if not rels:
                raise ValueError("relations: no relation ids given (None keeps every relation)")
            object.__setattr__(self, "relations", rels)

    @property
    def threshold(self) -> float | None:
        """The logit threshold equivalent to ``sigmoid(logit) > min_score`` (None: the
        model's)."""
        if self.min_score is None:
            return None
        return math.log(self.min_score / (1.0 - self.min_score))

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["relations"] = list(self.relations) if self.relations is not None else None
        return d


EXTRACT_OPTION_NAMES = tuple(f.name for f in fields(ExtractOptions))
