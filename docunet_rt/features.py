"""Features: wordpieces with entity markers, window plans, batch collation and batch planning.

numpy + tokenizers only. Training (PyTorch) and extraction (ONNX Runtime) both build their inputs
here, so tokenization, markers and windows can never disagree between the two.

Sequence layout of one document with ``n`` wordpieces (markers included)::

    global:  [CLS] wp_0 ... wp_{n-1} [SEP]          T = n + 2 positions
    window:  [CLS] wp_a ... wp_{b-1} [SEP]          local i in 1..b-a  ->  global a + i

A window's [CLS]/[SEP] map to the global [CLS]/[SEP]. The window merge (``runtime/merge.py``,
and its torch twin in ``model.py``) averages each global position's states over the windows
that contain it and sums-then-renormalises attention rows, so a document that fits one window
is encoded exactly as without windowing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .config import DocuNetConfig
from .data.document import Document

logger = logging.getLogger("docunet_rt")


# ------------------------------------------------------------------------------------------------
# Tokenizer
# ------------------------------------------------------------------------------------------------


@dataclass
class TokenizerInfo:
    """The ``tokenizers.Tokenizer`` plus the special ids the features need."""

    tokenizer: object = field(repr=False)  # tokenizers.Tokenizer
    cls_id: int
    sep_id: int
    pad_id: int

    @classmethod
    def from_tokenizer(cls, tok: object) -> TokenizerInfo:
        tok.no_truncation()  # type: ignore[attr-defined]
        tok.no_padding()  # type: ignore[attr-defined]
        ids = tok.encode("", add_special_tokens=True).ids  # type: ignore[attr-defined]
        if len(ids) < 2:
            raise ValueError(
                "the tokenizer adds no [CLS]/[SEP] (or <s>/</s>) special tokens; "
                "a BERT- or RoBERTa-family tokenizer.json is required"
            )
        pad_id = None
        for name in ("[PAD]", "<pad>", "<PAD>"):
            pad_id = tok.token_to_id(name)  # type: ignore[attr-defined]
            if pad_id is not None:
                break
        return cls(tok, cls_id=int(ids[0]), sep_id=int(ids[-1]), pad_id=int(pad_id or 0))

    @classmethod
    def from_dir(cls, path: str | Path) -> TokenizerInfo:
        from tokenizers import Tokenizer

        f = Path(path) / "tokenizer.json"
        if not f.is_file():
            raise FileNotFoundError(f"no tokenizer.json in {path}")
        return cls.from_tokenizer(Tokenizer.from_file(str(f)))

    def for_threads(self) -> TokenizerInfo:
        """The same tokenizer, but encoding through ``encode_batch``, which releases the GIL
        (``encode`` holds it), so that featurizing threads run in parallel."""
        return replace(self, tokenizer=_GilFreeTokenizer(self.tokenizer))


@dataclass
class _GilFreeTokenizer:
    """A ``tokenizers.Tokenizer`` whose ``encode`` runs ``encode_batch``: the same encoding."""

    _tok: Any

    def encode(self, sequence: Any, pair: Any = None, **kw: Any) -> Any:
        if pair is not None:
            return self._tok.encode(sequence, pair, **kw)
        return self._tok.encode_batch([sequence], **kw)[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)


# ------------------------------------------------------------------------------------------------
# One document
# ------------------------------------------------------------------------------------------------


@dataclass
class DocFeatures:
    wordpieces: np.ndarray  # (n,) int64 ids of the marked-up document, without [CLS]/[SEP]
    windows: np.ndarray  # (W, 2) int64 [a, b) spans over ``wordpieces``
    mention_pos: np.ndarray  # (P,) int64 global positions (in 0..T-1) of mention start markers
    entity_mentions: list[np.ndarray]  # per entity: indices into mention_pos (may be empty)
    pairs: np.ndarray  # (Q, 2) int64 (head, tail) entity pairs to score
    pair_labels: np.ndarray | None  # (Q, R) float32 multi-hot, column 0 = NA; None unlabelled
    truncated: bool = False
    # (N,) int64 row of each input entity on the pair map (DocuNetConfig.entity_order); None =
    # the input order. ``entity_mentions`` is in map order, ``pairs`` in input indices.
    entity_slots: np.ndarray | None = None

    @property
    def map_pairs(self) -> np.ndarray:
        """``pairs`` as rows of the pair map."""
        return self.pairs if self.entity_slots is None else self.entity_slots[self.pairs]

    @property
    def seq_len(self) -> int:  # T
        return int(self.wordpieces.shape[0]) + 2

    @property
    def num_entities(self) -> int:
        return len(self.entity_mentions)


def marker_words(markers: str, etype: str) -> tuple[list[str], list[str]]:
    if markers == "star":
        return ["*"], ["*"]
    return ["@", "*", etype.lower() or "entity", "*"], ["@"]


def plan_windows(n: int, max_length: int, overlap: int) -> np.ndarray:
    """Spans [a, b) over n wordpieces, each at most max_length - 2 long, consecutive ones
    overlapping by at least ``overlap``; the last is aligned to the end."""
    c = max_length - 2
    if n <= c:
        return np.array([[0, n]], dtype=np.int64)
    stride = c - overlap
    spans = []
    a = 0
    while a + c < n:
        spans.append((a, a + c))
        a += stride
    spans.append((n - c, n))
    return np.array(spans, dtype=np.int64)


def build_features(
    doc: Document,
    tok: TokenizerInfo,
    config: DocuNetConfig,
    label_index: dict[str, int] | None = None,
) -> DocFeatures:
    """Mark up, tokenize and plan windows for one document.

    ``label_index`` maps relation id → logit column (1-based; 0 is NA). When given and the
    document has labels, ``pair_labels`` is filled; labels on pairs outside ``doc.pairs()`` are
    ignored (CDR scores only its candidate pairs).
    """
    # Where markers go: start markers before the first token of each mention, end markers after
    # its last token. Mentions sharing a start share one marker (and one start position).
    starts: dict[tuple[int, int], str] = {}
    ends: set[tuple[int, int]] = set()
    for ent in doc.entities:
        for m in ent.mentions:
            starts.setdefault((m.sent_id, m.start), ent.type)
            ends.add((m.sent_id, m.end - 1))

    words: list[str] = []
    start_word: dict[tuple[int, int], int] = {}  # (sent, token) -> index of its first marker word
    for si, sent in enumerate(doc.sentences):
        for ti, token in enumerate(sent):
            if (si, ti) in starts:
                start_word[(si, ti)] = len(words)
                words.extend(marker_words(config.markers, starts[(si, ti)])[0])
            words.append(token)
            if (si, ti) in ends:
                words.extend(marker_words(config.markers, "")[1])

    enc = tok.tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)  # type: ignore[attr-defined]
    ids = np.asarray(enc.ids, dtype=np.int64)
    # First wordpiece of every word (markers always produce at least one wordpiece).
    first_wp = np.full(len(words), -1, dtype=np.int64)
    word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
    if len(word_ids):
        uniq, first = np.unique(word_ids, return_index=True)
        keep = uniq >= 0
        first_wp[uniq[keep]] = first[keep]

    truncated = False
    if config.max_doc_tokens is not None and len(ids) > config.max_doc_tokens:
        ids = ids[: config.max_doc_tokens]
        truncated = True

    mention_pos: list[int] = []
    slot_of: dict[int, int] = {}
    entity_mentions: list[np.ndarray] = []
    for ent in doc.entities:
        slots = []
        for m in ent.mentions:
            p = int(first_wp[start_word[(m.sent_id, m.start)]])
            if p < 0 or p >= len(ids):  # truncated away
                continue
            g = p + 1  # global position (after [CLS])
            if g not in slot_of:
                slot_of[g] = len(mention_pos)
                mention_pos.append(g)
            if slot_of[g] not in slots:
                slots.append(slot_of[g])
        entity_mentions.append(np.asarray(slots, dtype=np.int64))

    slots = None
    if config.entity_order != "given" and len(doc.entities) > 1:
        order = map_order(doc, config.entity_order)
        entity_mentions = [entity_mentions[i] for i in order]
        slots = np.empty(len(order), dtype=np.int64)
        slots[order] = np.arange(len(order))

    pairs = np.asarray(scored_pairs(doc, config), dtype=np.int64).reshape(-1, 2)
    pair_labels = None
    if label_index is not None and doc.labels is not None:
        num_labels = max(label_index.values(), default=0) + 1
        pair_labels = np.zeros((len(pairs), num_labels), dtype=np.float32)
        row = {(int(h), int(t)): i for i, (h, t) in enumerate(pairs)}
        for lab in doc.labels:
            i = row.get((lab.head, lab.tail))
            if i is not None and lab.relation in label_index:
                pair_labels[i, label_index[lab.relation]] = 1.0
        pair_labels[:, 0] = pair_labels[:, 1:].sum(1) == 0

    return DocFeatures(
        wordpieces=ids,
        windows=plan_windows(len(ids), config.max_length, config.window_overlap),
        mention_pos=np.asarray(mention_pos, dtype=np.int64),
        entity_mentions=entity_mentions,
        pairs=pairs,
        pair_labels=pair_labels,
        truncated=truncated,
        entity_slots=slots,
    )


def scored_pairs(doc: Document, config: DocuNetConfig) -> list[tuple[int, int]]:
    """The (head, tail) entity pairs the model scores: the document's candidate pairs when it
    lists them, else every ordered pair whose types are in ``config.pair_types`` (all pairs
    when that is None)."""
    pairs = doc.pairs()
    if doc.candidates is not None or config.pair_types is None:
        return pairs
    allowed = {(h, t) for h, t in config.pair_types}
    types = [e.type for e in doc.entities]
    return [(h, t) for h, t in pairs if (types[h], types[t]) in allowed]


def candidate_pair_types(docs: Sequence[Document]) -> list[list[str]] | None:
    """The sorted [head type, tail type] pairs of the documents' candidate pairs, or None when
    some document lists no candidates (then every ordered pair is a training pair)."""
    if not docs or any(d.candidates is None for d in docs):
        return None
    found = {(d.entities[c.head].type, d.entities[c.tail].type) for d in docs for c in d.candidates}
    return [[h, t] for h, t in sorted(found)]


def map_order(doc: Document, order: str) -> list[int]:
    """Input entity indices in pair-map order: by first mention ("position"), or by type name
    and then first mention ("type"); ties keep the input order."""

    def key(i: int) -> tuple[str, tuple[int, int], int]:
        ent = doc.entities[i]
        first = min((m.sent_id, m.start) for m in ent.mentions)
        return ((ent.type or "") if order == "type" else "", first, i)

    return sorted(range(len(doc.entities)), key=key)


# ------------------------------------------------------------------------------------------------
# Batches
# ------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Padded arrays for a list of documents (all numpy; the model wraps them as tensors)."""

    # encoder windows
    input_ids: np.ndarray  # (W, L) int64
    attention_mask: np.ndarray  # (W, L) int64
    win_doc: np.ndarray  # (W,) int64 document of each window
    win_global: np.ndarray  # (W, L) int64 global position of each window token, -1 = padding
    # attention rows the encoder returns: local positions of the mention starts in each window
    win_rows: np.ndarray  # (W, R) int64 (0 where padded)
    # merge of attention rows: one entry per (window, mention slot) with the mention inside it
    inc_win: np.ndarray  # (K,) int64 window
    inc_row: np.ndarray  # (K,) int64 index into that window's win_rows
    inc_slot: np.ndarray  # (K,) int64 flat mention slot b * P + p
    # documents
    seq_len: np.ndarray  # (B,) int64 T of each document
    doc_mask: np.ndarray  # (B, T) int64 1 at each document's positions (T: the longest, or more)
    mention_pos: np.ndarray  # (B, P) int64 global positions (0 where padded)
    entity_mentions: np.ndarray  # (B, N, M) int64 indices into P (0 where padded)
    entity_mention_mask: np.ndarray  # (B, N, M) float32
    num_entities: np.ndarray  # (B,) int64 real entities per document
    pair_index: np.ndarray  # (Q, 3) int64 (b, head, tail) over the whole batch
    pair_labels: np.ndarray | None  # (Q, R) float32
    pair_doc_offsets: np.ndarray  # (B + 1,) int64 rows of pair_index belonging to each document

    @property
    def batch_size(self) -> int:
        return int(self.seq_len.shape[0])

    @property
    def max_entities(self) -> int:  # padded N
        return int(self.entity_mentions.shape[1])

    def per_document(self, logits: np.ndarray) -> list[np.ndarray]:
        """Split the batch's pair logits (Q, R) into one float32 (Q_i, R) array per document."""
        off = self.pair_doc_offsets
        return [logits[off[i] : off[i + 1]].astype(np.float32) for i in range(self.batch_size)]

    def head_inputs(self) -> dict[str, np.ndarray]:
        """The non-encoder inputs of the head graph, by name."""
        return {
            "mention_pos": self.mention_pos,
            "entity_mentions": self.entity_mentions,
            "entity_mention_mask": self.entity_mention_mask,
            "num_entities": self.num_entities,
            "pair_index": self.pair_index,
        }


def round_up(x: int, multiple: int) -> int:
    return max(multiple, -(-x // multiple) * multiple)


@dataclass(frozen=True)
class ShapeBuckets:
    """Pad N (entities) and T (document positions) up to a few sizes, so that a GPU sees few
    distinct head shapes and reuses the kernels it tuned for them. The padding is masked, so no
    logit changes (tested)."""

    entities: tuple[int, ...] = (8, 16, 32, 64, 128, 256)  # N up to the next of these
    positions: int = 256  # T up to a multiple of this

    def pad_entities(self, n: int) -> int:
        return next((b for b in self.entities if b >= n), round_up(n, self.entities[-1]))


def collate(
    feats: Sequence[DocFeatures],
    tok: TokenizerInfo,
    config: DocuNetConfig,
    *,
    min_entities: int = 0,
    min_mentions: int = 1,
    buckets: ShapeBuckets | None = None,
) -> Batch:
    """Pad a list of documents into one :class:`Batch`.

    ``min_entities``/``min_mentions`` pad N and M further (export uses them so that no axis is
    traced at size 1); ``buckets`` pads N and T to bucket sizes (GPU).
    """
    B = len(feats)
    L = max(int(w[1] - w[0]) for f in feats for w in f.windows) + 2
    P = max(1, max(len(f.mention_pos) for f in feats))
    N = round_up(max(min_entities, max(f.num_entities for f in feats)), config.entity_pad_multiple)
    if buckets is not None:
        N = buckets.pad_entities(N)
    M = max(min_mentions, max((len(m) for f in feats for m in f.entity_mentions), default=1))

    input_ids, attn, win_doc, win_global, rows = [], [], [], [], []
    inc_win, inc_row, inc_slot = [], [], []
    mention_pos = np.zeros((B, P), dtype=np.int64)
    ent_m = np.zeros((B, N, M), dtype=np.int64)
    ent_mask = np.zeros((B, N, M), dtype=np.float32)
    pair_rows, label_rows, offsets = [], [], [0]
    for b, f in enumerate(feats):
        T = f.seq_len
        mention_pos[b, : len(f.mention_pos)] = f.mention_pos
        for a, e in f.windows:
            w = len(input_ids)
            n = int(e - a)
            ids = np.full(L, tok.pad_id, dtype=np.int64)
            ids[0], ids[1 : n + 1], ids[n + 1] = tok.cls_id, f.wordpieces[a:e], tok.sep_id
            g = np.full(L, -1, dtype=np.int64)
            g[0], g[1 : n + 1], g[n + 1] = 0, np.arange(a + 1, e + 1), T - 1
            m = np.zeros(L, dtype=np.int64)
            m[: n + 2] = 1
            input_ids.append(ids)
            attn.append(m)
            win_doc.append(b)
            win_global.append(g)
            inside = np.nonzero((f.mention_pos >= a + 1) & (f.mention_pos <= e))[0]
            rows.append(f.mention_pos[inside] - a)
            for j, p in enumerate(inside):
                inc_win.append(w)
                inc_row.append(j)
                inc_slot.append(b * P + int(p))
        for i, slots in enumerate(f.entity_mentions):
            ent_m[b, i, : len(slots)] = slots
            ent_mask[b, i, : len(slots)] = 1.0
        pairs = f.map_pairs
        pair_rows.append(np.concatenate([np.full((len(pairs), 1), b, dtype=np.int64), pairs], 1))
        if f.pair_labels is not None:
            label_rows.append(f.pair_labels)
        offsets.append(offsets[-1] + len(pairs))

    T_max = max(f.seq_len for f in feats)
    if buckets is not None:
        T_max = round_up(T_max, buckets.positions)
    doc_mask = (np.arange(T_max)[None, :] < np.asarray([[f.seq_len] for f in feats])).astype(
        np.int64
    )
    R = max(1, max(len(r) for r in rows))
    win_rows = np.zeros((len(rows), R), dtype=np.int64)
    for w, r in enumerate(rows):
        win_rows[w, : len(r)] = r
    have_labels = all(f.pair_labels is not None for f in feats) and len(label_rows) > 0
    return Batch(
        input_ids=np.stack(input_ids),
        attention_mask=np.stack(attn),
        win_doc=np.asarray(win_doc, dtype=np.int64),
        win_global=np.stack(win_global),
        win_rows=win_rows,
        inc_win=np.asarray(inc_win, dtype=np.int64),
        inc_row=np.asarray(inc_row, dtype=np.int64),
        inc_slot=np.asarray(inc_slot, dtype=np.int64),
        seq_len=np.asarray([f.seq_len for f in feats], dtype=np.int64),
        doc_mask=doc_mask,
        mention_pos=mention_pos,
        entity_mentions=ent_m,
        entity_mention_mask=ent_mask,
        num_entities=np.asarray([f.num_entities for f in feats], dtype=np.int64),
        pair_index=np.concatenate(pair_rows, 0) if pair_rows else np.zeros((0, 3), np.int64),
        pair_labels=np.concatenate(label_rows, 0) if have_labels else None,
        pair_doc_offsets=np.asarray(offsets, dtype=np.int64),
    )


def head_bytes(
    seq_len: int,
    mentions: int,
    entities: int,
    config: DocuNetConfig,
    buckets: ShapeBuckets | None = None,
) -> int:
    """Estimated peak working memory (bytes, float32) of the window merge and the head for a
    batch row of ``seq_len`` positions, ``mentions`` mention slots and ``entities`` entities
    (padded as ``collate`` pads them, ``buckets`` included): merged attention rows P·heads·T
    (×3 for the merge's temporaries), the context map N²·T (×2), entity attention N·heads·T
    (×3) and the pair / U-Net maps N²·(2H + 4·base). The encoder is bounded separately, by the
    token budget."""
    T, P = seq_len, max(1, mentions)
    N = round_up(entities, config.entity_pad_multiple)
    if buckets is not None:
        T, N = round_up(T, buckets.positions), buckets.pad_entities(N)
    heads, H, base = config.num_heads, config.hidden_size, config.unet_base
    return 4 * (3 * P * heads * T + 2 * N * N * T + 3 * N * heads * T + N * N * (2 * H + 4 * base))


def plan_batches(
    feats: Sequence[DocFeatures],
    max_length: int,
    max_tokens: int,
    *,
    batch_size: int | None = None,
    max_docs: int | None = None,
    max_head_bytes: int | None = None,
    config: DocuNetConfig | None = None,
    buckets: ShapeBuckets | None = None,
) -> list[list[int]]:
    """Length-sorted batches (longest first; ties in input order), indices into ``feats``.

    A batch grows while its padded encoder tokens (windows × longest window) stay within
    ``max_tokens`` (or, with ``batch_size``, up to that many documents), it has fewer than
    ``max_docs`` documents, and (with ``max_head_bytes`` and ``config``) its estimated head
    memory (:func:`head_bytes` of its largest T, P and N, times its documents) stays within
    ``max_head_bytes``; a document alone always makes a batch. Every backend of
    ``runtime.Extractor`` (ONNX Runtime, PyTorch) batches with this, so benchmarks compare them
    on identical batches. Callers restore input order.
    """
    order = sorted(range(len(feats)), key=lambda i: (-feats[i].seq_len, i))
    batches: list[list[int]] = []
    cur: list[int] = []
    windows = width = P = N = 0
    for i in order:
        f = feats[i]
        w, wl = len(f.windows), min(max_length, f.seq_len)
        p, n = max(P, len(f.mention_pos)), max(N, f.num_entities)
        if batch_size:
            full = len(cur) >= batch_size
        else:
            full = (windows + w) * max(width, wl) > max_tokens
        full |= max_docs is not None and len(cur) >= max_docs
        if max_head_bytes is not None and config is not None:  # T: the batch's first (longest)
            t = feats[cur[0]].seq_len if cur else f.seq_len
            full |= (len(cur) + 1) * head_bytes(t, p, n, config, buckets) > max_head_bytes
        if cur and full:
            batches.append(cur)
            cur, windows, width, P, N = [], 0, 0, 0, 0
            p, n = len(f.mention_pos), f.num_entities
        cur.append(i)
        windows, width, P, N = windows + w, max(width, wl), p, n
    if cur:
        batches.append(cur)
    return batches
