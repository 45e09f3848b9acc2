"""The torch-free half of the tagger: words, BIO labels, windows, logit merge and decoding.

A document is a list of *words*: for raw text the ``\\w+`` runs and single punctuation characters
of ``data.text.tokenize_with_offsets`` (with character offsets), for DocRED-style records the
given tokens. The tagger labels each word from its first wordpiece: ``O``, ``B-type``, ``I-type``.
Long documents are cut into the same overlapping windows as the RE encoder
(``features.plan_windows``); a wordpiece's logits are the mean over the windows that hold it, so a
document that fits one window is tagged exactly as without windowing.

Overlapping (nested) gold mentions cannot all be written in BIO: training keeps the longest of
overlapping mentions (ties: the first) and drops the others; those are counted as misses by the
scorers, never hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ..data.document import Document
from ..features import TokenizerInfo, plan_windows
from ..grouping import LINKINGS

OUTSIDE = "O"
GROUPINGS = ("name", "concept")

# A mention over words: [start, end) word indices and its type.
Span = tuple[int, int, str]


@dataclass
class TaggerConfig:
    # Entity types in label order: label 0 is O, then B-type, I-type for each type.
    types: list[str] = field(default_factory=list)
    # Where the encoder came from (for the record; the weights travel with the tagger).
    encoder: str = ""
    hidden_size: int = 384
    # Encoder windows in wordpieces incl. [CLS]/[SEP], and their overlap: as the RE model's.
    max_length: int = 512
    window_overlap: int = 128
    # How predicted mentions become entities: "concept" (lexicon of concept ids from training
    # annotations + abbreviations, e.g. MeSH for CDR) or "name" (coreference by name/aliases).
    grouping: str = "name"
    # Add lexicon matches (word n-grams whose normalised form is a lexicon form of one type and
    # at least this many characters) where the tagger found nothing; None = off. Chosen on dev
    # (benchmarks/ner_dictionary.py) and set at export (export --tagger-dictionary N).
    dictionary_min_chars: int | None = None
    # How a mention's form finds its concept id under "concept" grouping (grouping.Lexicon.link):
    # "exact" (normalised form in the lexicon; what MODEL_DIRs made before this field had),
    # "variants" (also spelling variants: hyphens/spaces, British ae/oe) or "fuzzy" (also the
    # nearest lexicon form of the type by character-trigram cosine ≥ link_similarity). Chosen on
    # dev (benchmarks/linking_eval.py) and set at export (export --linking).
    linking: str = "exact"
    link_similarity: float = 0.75

    def __post_init__(self) -> None:
        if self.linking not in LINKINGS:
            raise ValueError(f"linking must be one of {'|'.join(LINKINGS)}, got {self.linking!r}")
        if not 0.0 < self.link_similarity <= 1.0:
            raise ValueError(f"link_similarity must be in (0, 1], got {self.link_similarity}")
        if self.grouping not in GROUPINGS:
            raise ValueError(
                f"grouping must be one of {'|'.join(GROUPINGS)}, got {self.grouping!r}"
            )
        if not 0 <= self.window_overlap < self.max_length - 2:
            raise ValueError(
                f"window_overlap must be in [0, {self.max_length - 2}), got {self.window_overlap}"
            )

    @property
    def labels(self) -> list[str]:
        return [OUTSIDE] + [f"{p}-{t}" for t in self.types for p in ("B", "I")]

    @property
    def num_labels(self) -> int:
        return 1 + 2 * len(self.types)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaggerConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TagFeatures:
    wordpieces: np.ndarray  # (n,) int64 wordpiece ids of the document, no [CLS]/[SEP]
    first_wp: np.ndarray  # (num_words,) int64 index of each word's first wordpiece; -1: none
    windows: np.ndarray  # (W, 2) int64 [a, b) spans over ``wordpieces``
    word_labels: np.ndarray | None = None  # (num_words,) int64 gold label ids (training)

    @property
    def num_words(self) -> int:
        return int(self.first_wp.shape[0])


def document_words(doc: Document) -> tuple[list[str], list[tuple[int, int]]]:
    """A document's tokens in order, and (sentence, token) of each."""
    words: list[str] = []
    where: list[tuple[int, int]] = []
    for si, sent in enumerate(doc.sentences):
        for ti, w in enumerate(sent):
            words.append(w)
            where.append((si, ti))
    return words, where


def gold_spans(doc: Document) -> list[Span]:
    """Every gold mention of ``doc`` as a word span, deduplicated, in document order."""
    offset = [0]
    for sent in doc.sentences:
        offset.append(offset[-1] + len(sent))
    spans = {
        (offset[m.sent_id] + m.start, offset[m.sent_id] + m.end, ent.type)
        for ent in doc.entities
        for m in ent.mentions
    }
    return sorted(spans)


def bio_labels(num_words: int, spans: Sequence[Span], config: TaggerConfig) -> np.ndarray:
    """Label ids per word; of overlapping spans the longest is kept (see the module doc)."""
    type_id = {t: i for i, t in enumerate(config.types)}
    labels = np.zeros(num_words, dtype=np.int64)
    taken = np.zeros(num_words, dtype=bool)
    for a, b, t in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):
        if t not in type_id or taken[a:b].any():
            continue
        labels[a] = 1 + 2 * type_id[t]
        labels[a + 1 : b] = 2 + 2 * type_id[t]
        taken[a:b] = True
    return labels


def tag_features(
    words: Sequence[str],
    tok: TokenizerInfo,
    config: TaggerConfig,
    spans: Sequence[Span] | None = None,
    max_wordpieces: int | None = None,
) -> TagFeatures:
    """Wordpieces and windows of one document (``spans``: gold mentions, for training).
    ``max_wordpieces`` truncates; words past it have no wordpiece (tagged O)."""
    if words:
        enc = tok.tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)  # type: ignore[attr-defined]
        ids = np.asarray(enc.ids, dtype=np.int64)
        word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
    else:
        ids = np.zeros(0, dtype=np.int64)
        word_ids = ids
    first_wp = np.full(len(words), -1, dtype=np.int64)
    if len(word_ids):
        uniq, first = np.unique(word_ids, return_index=True)
        keep = uniq >= 0
        first_wp[uniq[keep]] = first[keep]
    if max_wordpieces is not None and len(ids) > max_wordpieces:
        ids = ids[:max_wordpieces]
        first_wp[first_wp >= max_wordpieces] = -1
    labels = bio_labels(len(words), spans, config) if spans is not None else None
    return TagFeatures(
        wordpieces=ids,
        first_wp=first_wp,
        # no wordpiece at all: one empty window ([CLS] [SEP]), whose words read as O
        windows=plan_windows(len(ids), config.max_length, config.window_overlap),
        word_labels=labels,
    )


@dataclass
class WindowBatch:
    input_ids: np.ndarray  # (W, L) int64: [CLS] window [SEP] [PAD]...
    attention_mask: np.ndarray  # (W, L) int64
    doc: np.ndarray  # (W,) int64 document of each window (index into the batch)
    start: np.ndarray  # (W,) int64 first wordpiece of each window
    length: np.ndarray  # (W,) int64 wordpieces in each window


def window_batch(feats: Sequence[TagFeatures], tok: TokenizerInfo) -> WindowBatch:
    rows = [(d, int(a), int(b)) for d, f in enumerate(feats) for a, b in f.windows]
    width = max((b - a for _, a, b in rows), default=0) + 2
    ids = np.full((len(rows), width), tok.pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for w, (d, a, b) in enumerate(rows):
        n = b - a
        ids[w, 0] = tok.cls_id
        ids[w, 1 : n + 1] = feats[d].wordpieces[a:b]
        ids[w, n + 1] = tok.sep_id
        mask[w, : n + 2] = 1
    return WindowBatch(
        ids,
        mask,
        np.asarray([r[0] for r in rows], dtype=np.int64),
        np.asarray([r[1] for r in rows], dtype=np.int64),
        np.asarray([r[2] - r[1] for r in rows], dtype=np.int64),
    )


def word_logits(
    logits: np.ndarray, batch: WindowBatch, feats: Sequence[TagFeatures]
) -> list[np.ndarray]:
    """Window logits (W, L, C) → per document (num_words, C): each wordpiece's mean over the
    windows holding it, read at each word's first wordpiece (zeros where a word has none)."""
    c = logits.shape[-1]
    sums = [np.zeros((max(len(f.wordpieces), 1), c), dtype=np.float32) for f in feats]
    counts = [np.zeros(max(len(f.wordpieces), 1), dtype=np.float32) for f in feats]
    for w in range(logits.shape[0]):
        d, a, n = int(batch.doc[w]), int(batch.start[w]), int(batch.length[w])
        sums[d][a : a + n] += logits[w, 1 : n + 1]
        counts[d][a : a + n] += 1.0
    out = []
    for f, s, k in zip(feats, sums, counts, strict=True):
        mean = s / np.maximum(k, 1.0)[:, None]
        rows = np.zeros((f.num_words, c), dtype=np.float32)
        has = f.first_wp >= 0
        rows[has] = mean[f.first_wp[has]]
        out.append(rows)
    return out


def decode_bio(label_ids: Sequence[int] | np.ndarray, config: TaggerConfig) -> list[Span]:
    """Word label ids → spans. An ``I-t`` that does not continue a ``t`` span starts one (the
    usual lenient reading); a ``B-t`` always starts one, so adjacent mentions stay apart."""
    spans: list[Span] = []
    cur: list[Any] | None = None
    for i, lab in enumerate(int(x) for x in label_ids):
        if lab <= 0 or lab >= config.num_labels:
            if cur:
                spans.append((cur[0], cur[1], cur[2]))
            cur = None
            continue
        t = config.types[(lab - 1) // 2]
        begin = (lab - 1) % 2 == 0
        if begin or cur is None or cur[2] != t:
            if cur:
                spans.append((cur[0], cur[1], cur[2]))
            cur = [i, i + 1, t]
        else:
            cur[1] = i + 1
    if cur:
        spans.append((cur[0], cur[1], cur[2]))
    return spans


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def trim_punctuation(words: Sequence[str], spans: Sequence[Span]) -> list[Span]:
    """Spans without leading/trailing punctuation words ("kainic acid -" → "kainic acid",
    "SKF-82958 (" → "SKF-82958"); a bracket stays when the span holds its partner. A span
    without a word character is dropped. Measured on CDR dev ("untrimmed" against
    "tagger_only" in benchmarks/results/ner_dictionary_cdr_dev.json)."""

    def word_char(w: str) -> bool:
        return any(c.isalnum() for c in w)

    out: list[Span] = []
    for a, b, t in spans:
        while b > a and not word_char(words[b - 1]):
            w = words[b - 1]
            opener = next((o for o, c in _PAIRS.items() if c == w), None)
            if opener and words[a:b].count(opener) >= words[a:b].count(w):
                break
            b -= 1
        while a < b and not word_char(words[a]):
            w = words[a]
            if w in _PAIRS and words[a:b].count(_PAIRS[w]) >= words[a:b].count(w):
                break
            a += 1
        if any(word_char(w) for w in words[a:b]):  # "( )" alone is no mention either
            out.append((a, b, t))
    return out


def decode_logits(rows: np.ndarray, config: TaggerConfig) -> list[Span]:
    """Per-word logits (num_words, C) → spans (argmax per word; words without a wordpiece
    have all-zero rows and read as O)."""
    if rows.shape[0] == 0:
        return []
    lab = rows.argmax(-1)
    lab[~rows.any(-1)] = 0
    return decode_bio(lab, config)
