"""The MODEL_DIR contract: what ``docunet-rt export`` writes and the runtime reads (stdlib only).

MODEL_DIR::

    model.json                 self-description (format_version, config, graphs, io, sha256, …)
    tokenizer.json             the tokenizer the features are built with
    encoder.<precision>.onnx   windows → hidden (W, L, H), attention rows (W, heads, R, L)
    merge.onnx                 window outputs → document tensors (no weights; every precision)
    head.<precision>.onnx      merged document tensors → pair logits (Q, labels)
    tagger.<precision>.onnx    (optional) windows → BIO tag logits (W, L, tags), for raw text
    lexicon.json               (optional) surface form → concept id, for the tagger's mentions

Graph names, dtypes and dynamic axes (``GRAPH_IO``) are defined here once: the exporter traces
with them, ``model.json`` records them, the runtime feeds and reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DocuNetConfig

MODEL_FORMAT_VERSION = 1
# 2: the config uses entity_order or pair_types, which a runtime reading version 1 would drop
# silently (it would run the model on the input's entity order, or score every pair)
# 3: the config has a decision_threshold tuned on dev, which a runtime reading 1 or 2 would drop
# silently (it would decide at logit 0)
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3)


def format_version(config: DocuNetConfig) -> int:
    """The lowest format version that describes ``config`` fully."""
    if config.decision_threshold != 0.0:
        return 3
    return 2 if config.entity_order != "given" or config.pair_types is not None else 1


MODEL_JSON = "model.json"
TOKENIZER_JSON = "tokenizer.json"
GRAPH_NAMES = ("encoder", "head")  # one file per precision variant
MERGE_FILE = "merge.onnx"  # one file for every variant (float32 in and out, no weights)

# Every graph input/output: dtype and shape; upper-case letters are dynamic dimensions (see
# DIM_MEANING), lower-case names are fixed by the model config (see graph_shape).
GRAPH_IO: dict[str, dict[str, tuple[str, str]]] = {
    "encoder": {
        "input_ids": ("int64", "W L"),
        "attention_mask": ("int64", "W L"),
        "win_rows": ("int64", "W R"),
        "hidden": ("float32", "W L hidden"),
        "attention_rows": ("float32", "W heads R L"),
    },
    "merge": {
        "hidden": ("float32", "W L hidden"),
        "attention_rows": ("float32", "W heads R L"),
        "win_doc": ("int64", "W"),
        "win_global": ("int64", "W L"),
        "inc_win": ("int64", "K"),
        "inc_row": ("int64", "K"),
        "inc_slot": ("int64", "K"),
        "mention_pos": ("int64", "B P"),
        "doc_mask": ("int64", "B T"),
        "doc_hidden": ("float32", "B T hidden"),
        "mention_att": ("float32", "B P heads T"),
    },
    "tagger": {
        "input_ids": ("int64", "W L"),
        "attention_mask": ("int64", "W L"),
        "tag_logits": ("float32", "W L tags"),
    },
    "head": {
        "hidden": ("float32", "B T hidden"),
        "mention_att": ("float32", "B P heads T"),
        "mention_pos": ("int64", "B P"),
        "entity_mentions": ("int64", "B N M"),
        "entity_mention_mask": ("float32", "B N M"),
        "num_entities": ("int64", "B"),
        "pair_index": ("int64", "Q 3"),
        "logits": ("float32", "Q labels"),
    },
}
ENCODER_INPUTS = ("input_ids", "attention_mask", "win_rows")
ENCODER_OUTPUTS = ("hidden", "attention_rows")
MERGE_INPUTS = (
    "hidden",
    "attention_rows",
    "win_doc",
    "win_global",
    "inc_win",
    "inc_row",
    "inc_slot",
    "mention_pos",
    "doc_mask",
)
MERGE_OUTPUTS = ("doc_hidden", "mention_att")  # the head's "hidden" and "mention_att"
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
TAGGER_INPUTS = ("input_ids", "attention_mask")
TAGGER_OUTPUTS = ("tag_logits",)
TAGGER_GRAPH = "tagger"  # tagger.<precision>.onnx, described in model.json's "tagger" section
LEXICON_FILE = "lexicon.json"
GRAPH_SIGNATURE = {
    "encoder": (ENCODER_INPUTS, ENCODER_OUTPUTS),
    "merge": (MERGE_INPUTS, MERGE_OUTPUTS),
    "head": (HEAD_INPUTS, HEAD_OUTPUTS),
}
DIM_MEANING = {
    "W": "encoder windows in the batch",
    "L": "window length in wordpieces incl. [CLS]/[SEP] (<= config.max_length)",
    "R": "attention rows per window (mention starts inside the window, padded)",
    "B": "documents in the batch",
    "T": "longest document in wordpieces incl. [CLS]/[SEP] (or more: GPU shape buckets)",
    "P": "mention slots per document (padded)",
    "N": "entities per document (padded to a multiple of entity_pad_multiple)",
    "M": "mentions per entity (padded)",
    "Q": "scored entity pairs in the batch",
    "K": "(window, mention) incidences: a mention start inside a window",
    "tags": "tagger labels: O, then B-type and I-type per entity type (model.json tagger.labels)",
}


class ModelDirError(ValueError):
    """A MODEL_DIR that cannot be used (missing, unsupported version, missing variant)."""


def graph_file(graph: str, precision: str) -> str:
    """File name of one graph variant, e.g. ``encoder.int8.onnx``."""
    return f"{graph}.{precision}.onnx"


def graph_shape(graph: str, name: str, config: DocuNetConfig) -> list[str | int]:
    """Symbolic shape of one graph input/output, e.g. attention_rows → ["W", 12, "R", "L"]."""
    fixed = {"hidden": config.hidden_size, "heads": config.num_heads, "labels": config.num_labels}
    dims = GRAPH_IO[graph][name][1].split()
    return [int(d) if d.isdigit() else fixed.get(d, d) for d in dims]  # type: ignore[misc]


def dynamic_axes(graph: str) -> dict[str, dict[int, str]]:
    """torch.onnx ``dynamic_axes`` of one graph: {name: {axis: dimension name}}."""
    return {
        n: {i: d for i, d in enumerate(shape.split()) if d.isupper()}
        for n, (_, shape) in GRAPH_IO[graph].items()
    }


def io_description(config: DocuNetConfig) -> dict[str, Any]:
    """Names, dtypes, shapes and dynamic axes of both graphs, for model.json."""
    out: dict[str, Any] = {}
    for graph, (names_in, names_out) in GRAPH_SIGNATURE.items():
        axes = dynamic_axes(graph)
        desc = {
            n: {
                "dtype": GRAPH_IO[graph][n][0],
                "shape": graph_shape(graph, n, config),
                "dynamic_axes": {str(k): v for k, v in axes[n].items()},
            }
            for n in (*names_in, *names_out)
        }
        out[graph] = {
            "inputs": {n: desc[n] for n in names_in},
            "outputs": {n: desc[n] for n in names_out},
        }
    out["dims"] = DIM_MEANING
    out["note"] = "inputs/outputs stay float32/int64 in every precision variant"
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(
    model_dir: Path,
    config: DocuNetConfig,
    files: dict[str, dict[str, str]],
    special_tokens: dict[str, int],
    *,
    merge: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The model.json of a MODEL_DIR whose graphs (``files``: precision → graph → file name)
    and tokenizer.json are already written: the fields the runtime needs, then ``extra``
    (provenance: exporter, versions, variants …)."""
    return {
        "format_version": format_version(config),
        "config": config.to_dict(),
        "labels": ["NA", *config.relations],
        "relation_names": dict(config.relation_names),
        "markers": config.markers,
        "windows": {
            "max_length": config.max_length,
            "overlap": config.window_overlap,
            "stride": config.max_length - 2 - config.window_overlap,
        },
        "graphs": files,
        "merge": merge[0] if merge else None,
        "sha256": {
            f: file_sha256(model_dir / f)
            for f in [*(f for g in files.values() for f in g.values()), *merge]
        },
        "special_tokens": dict(special_tokens),
        "tokenizer": TOKENIZER_JSON,
        "io": io_description(config),
        **extra,
    }


def write_model_json(model_dir: Path, description: dict[str, Any]) -> Path:
    """Write model.json atomically (a reader sees no file or the whole file)."""
    tmp = model_dir / (MODEL_JSON + ".tmp")
    tmp.write_text(json.dumps(description, indent=2, default=str))
    return tmp.replace(model_dir / MODEL_JSON)


@dataclass
class ModelSpec:
    """A MODEL_DIR as read from its model.json."""

    path: Path
    config: DocuNetConfig
    graphs: dict[str, dict[str, str]]  # precision -> {"encoder": file, "head": file}
    sha256: dict[str, str]  # file -> digest
    meta: dict[str, Any]

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> ModelSpec:
        p = Path(model_dir)
        f = p / MODEL_JSON
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

    @property
    def tokenizer_path(self) -> Path:
        return self.path / self.meta.get("tokenizer", TOKENIZER_JSON)

    @property
    def merge_path(self) -> Path | None:
        """The merge graph, or None (a MODEL_DIR exported before it existed: numpy merges)."""
        name = self.meta.get("merge")
        return self.path / name if name and (self.path / name).is_file() else None

    @property
    def tagger(self) -> dict[str, Any] | None:
        """model.json's "tagger" section (config, labels, graphs, lexicon), or None."""
        return self.meta.get("tagger") or None

    def tagger_file(self, precision: str) -> Path:
        """The tagger graph of one precision variant; ModelDirError with the command that
        makes one when the MODEL_DIR has no tagger."""
        t = self.tagger
        if t is None:
            raise ModelDirError(
                f"{self.path} has no entity tagger, so it cannot find entities in raw text; "
                "train one with `docunet-rt train-ner --train FILE --dev FILE --out NER_CKPT` "
                "and export both with `docunet-rt export CKPT -o MODEL_DIR --tagger NER_CKPT` "
                "(or give the entities and use --entities given)"
            )
        if precision not in t["graphs"]:
            have = ", ".join(sorted(t["graphs"])) or "none"
            raise ModelDirError(
                f"{self.path} has no {precision!r} tagger; tagger variants present: {have}"
            )
        f = self.path / t["graphs"][precision]
        if not f.is_file():
            raise ModelDirError(f"{f} is listed in model.json but missing")
        return f

    def graph_files(self, precision: str) -> tuple[Path, Path]:
        """(encoder, head) files of one precision variant; ModelDirError naming the variants
        present when it is missing."""
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
        merge = [self.merge_path] if self.merge_path else []
        t = self.tagger
        tagger = [self.tagger_file(precision)] if t and precision in t["graphs"] else []
        for x in [*self.graph_files(precision), *merge, *tagger]:
            want = self.sha256.get(x.name)
            if want and file_sha256(x) != want:
                raise ModelDirError(f"{x} does not match the sha256 in model.json (corrupt copy?)")
