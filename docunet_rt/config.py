"""DocuNet configuration: a torch-free dataclass shared by the model, checkpoints and MODEL_DIR."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .options import (
    ENTITY_ORDERS,
    FEATURE_MAPS,
    MARKERS,
    SIMILARITIES,
    THRESHOLD_CLASSES,
    check_choice,
)

NA_LABEL = "NA"


@dataclass
class DocuNetConfig:
    # --- label space -------------------------------------------------------------------------
    # Relation ids in logit order; logit 0 is the NA/threshold class (trained by the balanced
    # loss), so the classifier has len(relations) + 1 outputs.
    relations: list[str] = field(default_factory=list)
    # Human-readable names for relation ids (e.g. P17 -> country), written into every artefact.
    relation_names: dict[str, str] = field(default_factory=dict)

    # --- encoder and input ---------------------------------------------------------------------
    # Where the encoder came from (path or package), for the record; weights travel with the model.
    encoder: str = ""
    hidden_size: int = 384  # encoder hidden width H (read from the encoder config)
    num_heads: int = 12  # encoder attention heads (last layer's attention feeds the pair map)
    # "star": `* mention *` (DocuNet/ATLOP); "typed": `@ * type * mention @` (punctuation typed
    # markers — no new vocabulary, so BERT and RoBERTa tokenizers both work unchanged).
    markers: str = "star"
    # Encoder window in wordpieces including [CLS]/[SEP]; longer documents are split into
    # overlapping windows whose token states are averaged (attention summed and renormalised).
    max_length: int = 512
    window_overlap: int = 128  # wordpieces shared by consecutive windows
    # Optional hard cap on document wordpieces (None = never truncate; truncations are counted).
    max_doc_tokens: int | None = None

    # --- entity-pair feature map ---------------------------------------------------------------
    feature_map: str = "context"  # "context" (attention-pooled context, the paper's default)
    similarity: str = "elementwise"  # used when feature_map == "similarity"
    # D': channels the N×N×H map is projected to before the U-Net (the paper uses 3, like RGB).
    unet_in_channels: int = 3
    unet_base: int = 256  # width of the first U-Net block; each down-sampling doubles it
    unet_out: int = 256  # channels of Y, the U-Net output per entity pair
    use_unet: bool = True  # False = feed-forward (1×1 convolutions) ablation
    # N is padded per batch to a multiple of this so two 2×2 poolings divide it exactly.
    entity_pad_multiple: int = 4
    # Row/column order of the entities on the N×N map. The U-Net's convolutions see positions,
    # so this order must carry no label and be the same in training and inference: "given"
    # (the input's order, as the public code does), "position" (by first mention), "type" (by
    # type name, then first mention: CDR's Chemicals form one block, its Diseases another).
    # Outputs always refer to the input's entity indices.
    entity_order: str = "given"
    # [head type, tail type] pairs scored in documents that list no candidate pairs (raw text,
    # DocRED-style input); None = every ordered pair. Training records the types of its
    # candidate pairs when every training document lists candidates (CDR: Chemical → Disease),
    # so the model scores on new text only the kinds of pairs it was trained on.
    pair_types: list[list[str]] | None = None

    # --- classifier ------------------------------------------------------------------------------
    emb_size: int = 768  # width of z_s / z_o
    block_size: int = 64  # grouped bilinear: emb_size / block_size groups of block×block
    # The decision threshold of relation logits. "fixed": a constant 0 (DocuNet's balanced
    # softmax; logit 0 is trained as an NA class but decides nothing). "adaptive": logit 0 is a
    # learned per-pair threshold class (ATLOP): the head outputs every logit minus it, so a
    # relation is predicted when it scores above its pair's threshold, and every decoder still
    # compares with 0 (an exported MODEL_DIR carries the subtraction in its head graph, so any
    # runtime version runs it right; checkpoints get format 2, which older packages refuse).
    threshold_class: str = "fixed"
    # The logit above which a relation is predicted: 0 is the model's own decision; `train
    # --tune-threshold` sets the value with the best dev F1 (calibrate.tune_threshold). Every
    # runtime decides at it unless the caller gives min_score.
    decision_threshold: float = 0.0

    @property
    def num_labels(self) -> int:
        return len(self.relations) + 1

    def __post_init__(self) -> None:
        check_choice("marker scheme", self.markers, MARKERS)
        check_choice("feature map", self.feature_map, FEATURE_MAPS)
        check_choice("similarity", self.similarity, SIMILARITIES)
        check_choice("entity order", self.entity_order, ENTITY_ORDERS)
        check_choice("threshold class", self.threshold_class, THRESHOLD_CLASSES)
        t = self.decision_threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not abs(t) <= 30.0:
            raise ValueError(f"decision_threshold must be a logit in [-30, 30], got {t!r}")
        self.decision_threshold = float(t)
        if self.pair_types is not None:
            bad = [p for p in self.pair_types if not (isinstance(p, (list, tuple)) and len(p) == 2)]
            if bad:
                raise ValueError(f"pair_types must be [head type, tail type] pairs, got {bad[0]!r}")
            self.pair_types = [[str(h), str(t)] for h, t in self.pair_types]
        if self.emb_size % self.block_size:
            raise ValueError(
                f"emb_size ({self.emb_size}) must be a multiple of block_size ({self.block_size})"
            )
        if self.max_length < 16:
            raise ValueError(f"max_length must be at least 16, got {self.max_length}")
        if not 0 <= self.window_overlap < self.max_length - 2:
            raise ValueError(
                f"window_overlap must be in [0, {self.max_length - 2}), got {self.window_overlap}"
            )
        if self.entity_pad_multiple % 4:
            raise ValueError("entity_pad_multiple must be a multiple of 4 (two 2x2 poolings)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DocuNetConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
