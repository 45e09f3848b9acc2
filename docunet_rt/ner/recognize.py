"""``Recognizer``: words → mentions (tagging) → entities (grouping), torch-free.

It runs over any *tag function* ``(input_ids, attention_mask) (W, L) int64 → logits (W, L, C)``:
the MODEL_DIR's ``tagger.<precision>.onnx`` on ONNX Runtime (``runtime.Extractor``), or the PyTorch
tagger while training (``model.TorchTagFn``). ``annotate`` / ``annotate_many`` turn a record without entities into one
with them (``entities`` with character offsets for ``{"text"}`` records, ``vertexSet`` for
DocRED-style ``{"sents"}`` records), so the rest of the pipeline is the gold-entity pipeline.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.document import DataError, Document
from ..data.text import tokenize_with_offsets
from ..features import TokenizerInfo
from ..grouping import Group, Lexicon, group_by_concept, group_by_name, normalize
from .tagging import (
    Span,
    TagFeatures,
    TaggerConfig,
    decode_logits,
    tag_features,
    trim_punctuation,
    window_batch,
    word_logits,
)

logger = logging.getLogger("docunet_rt")

TagFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
LEXICON_FORMAT = "docunet-rt-lexicon/1"


def build_lexicon(docs: Iterable[Document]) -> Lexicon:
    """Surface form → concept id from the annotated mentions of ``docs`` (entities with ids)."""
    return Lexicon.build(
        (m.name, e.type, e.id) for d in docs for e in d.entities if e.id for m in e.mentions
    )


def read_terms(path: str | Path) -> tuple[list[tuple[str, str, str]], list[DataError]]:
    """A vocabulary file (e.g. a MeSH export): one ``term<TAB>type<TAB>id`` per line, ``#``
    comments and blank lines skipped. Returns the good ``(term, type, id)`` rows and a
    ``DataError`` (file, line, field) for each bad line."""
    rows: list[tuple[str, str, str]] = []
    bad: list[DataError] = []
    src = str(path)
    with open(path, encoding="utf-8-sig", errors="replace") as fh:  # a BOM is not a term
        for ln, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                bad.append(DataError(f"expected term<TAB>type<TAB>id, got {len(parts)} field(s)",
                                     source=src, line=ln, field="columns"))  # fmt: skip
                continue
            for name, value in zip(("term", "type", "id"), parts, strict=True):
                if not value.strip():
                    bad.append(DataError(f"empty {name}", source=src, line=ln, field=name))
                    break
            else:
                rows.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
    return rows, bad


def add_terms(lexicon: Lexicon, rows: Iterable[tuple[str, str, str]]) -> int:
    """Add vocabulary ``(term, type, id)`` rows where the lexicon has no entry for the
    normalised form (annotations keep their ids: they follow the corpus' linking conventions).
    Returns the number of forms added."""
    extra = Lexicon.build(rows)
    new = {k: v for k, v in extra.ids.items() if k not in lexicon.ids}
    lexicon.add(new)
    return len(new)


def save_lexicon(lexicon: Lexicon, path: str | Path) -> None:
    rows = sorted([t, form, cid] for (t, form), cid in lexicon.ids.items())
    Path(path).write_text(json.dumps({"format": LEXICON_FORMAT, "entries": rows}))


def load_lexicon(path: str | Path) -> Lexicon:
    blob = json.loads(Path(path).read_text())
    if blob.get("format") != LEXICON_FORMAT:
        raise ValueError(f"{path}: not a docunet-rt lexicon (format {blob.get('format')!r})")
    return Lexicon({(t, form): cid for t, form, cid in blob["entries"]})


def dictionary_forms(lexicon: Lexicon, min_chars: int = 3) -> dict[str, str]:
    """Normalised form → type, for the lexicon's forms of one type and ``min_chars`` or more."""
    types: dict[str, set[str]] = {}
    for etype, form in lexicon.ids:
        if len(form) >= min_chars:
            types.setdefault(form, set()).add(etype)
    return {f: next(iter(t)) for f, t in types.items() if len(t) == 1}


def dictionary_spans(
    text: str,
    words: Sequence[tuple[str, int, int]],
    spans: Sequence[Span],
    forms: Mapping[str, str],
    max_words: int = 6,
) -> list[Span]:
    """``spans`` plus the word n-grams (longest first, left to right, starting and ending on a
    word character) whose normalised text is a dictionary form, where no span is."""
    taken = [False] * len(words)
    for a, b, _ in spans:
        taken[a:b] = [True] * (b - a)
    found: list[Span] = []
    i, n = 0, len(words)
    while i < n:
        hit = None
        if not taken[i] and words[i][0][:1].isalnum():
            for j in range(min(n, i + max_words), i, -1):
                if any(taken[i:j]) or not words[j - 1][0][-1:].isalnum():
                    continue
                etype = forms.get(normalize(text[words[i][1] : words[j - 1][2]]))
                if etype is not None:
                    hit = (i, j, etype)
                    break
        if hit:
            found.append(hit)
            i = hit[1]
        else:
            i += 1
    return sorted([*spans, *found])


class Recognizer:
    """Tag words, group mentions, fill records. ``max_tokens``: padded window tokens per call of
    the tag function (a long document's windows go in several calls)."""

    def __init__(
        self,
        tag_fn: TagFn,
        tok: TokenizerInfo,
        config: TaggerConfig,
        lexicon: Lexicon | None = None,
        max_tokens: int = 4096,
        max_wordpieces: int | None = None,
    ) -> None:
        self.tag_fn, self.tok, self.config = tag_fn, tok, config
        self.lexicon = lexicon if lexicon is not None else Lexicon()
        self.max_tokens = max_tokens
        self.max_wordpieces = max_wordpieces
        m = config.dictionary_min_chars
        self.forms = dictionary_forms(self.lexicon, m) if m is not None else None

    def with_limits(self, max_tokens: int, max_wordpieces: int | None) -> Recognizer:
        """This recognizer (same tag function, lexicon) with other batch/document limits."""
        if (max_tokens, max_wordpieces) == (self.max_tokens, self.max_wordpieces):
            return self
        other = copy.copy(self)  # shares the tag function, lexicon and dictionary forms
        other.max_tokens, other.max_wordpieces = max_tokens, max_wordpieces
        return other

    # -- tagging ---------------------------------------------------------------------------------
    def tag(self, documents: Sequence[Sequence[str]]) -> list[list[Span]]:
        """Mentions (word spans) of each document's words."""
        feats = [
            tag_features(w, self.tok, self.config, max_wordpieces=self.max_wordpieces)
            for w in documents
        ]
        return [
            trim_punctuation(w, decode_logits(rows, self.config))
            for w, rows in zip(documents, self.word_logits(feats), strict=True)
        ]

    def word_logits(self, feats: Sequence[TagFeatures]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        start = 0
        while start < len(feats):  # documents in groups of about max_tokens padded tokens
            end, tokens = start, 0
            while end < len(feats):
                t = sum(int(b - a) + 2 for a, b in feats[end].windows)
                if end > start and tokens + t > self.max_tokens:
                    break
                tokens += t
                end += 1
            group = feats[start:end]
            batch = window_batch(group, self.tok)
            out += word_logits(self._run(batch.input_ids, batch.attention_mask), batch, group)
            start = end
        return out

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rows = max(1, self.max_tokens // max(1, ids.shape[1]))
        parts = [
            self.tag_fn(ids[i : i + rows], mask[i : i + rows]) for i in range(0, len(ids), rows)
        ]
        return np.concatenate(parts, 0) if parts else np.zeros((0, ids.shape[1], 1), np.float32)

    # -- grouping --------------------------------------------------------------------------------
    def group(self, mentions: Sequence[tuple[str, str]], text: str) -> list[Group]:
        if self.config.grouping == "concept":
            c = self.config
            return group_by_concept(mentions, text, self.lexicon, c.linking, c.link_similarity)
        return group_by_name(mentions, text)

    def _text_entities(
        self, text: str, words: Sequence[tuple[str, int, int]], spans: Sequence[Span]
    ) -> list[dict[str, Any]]:
        chars = [(words[a][1], words[b - 1][2], t) for a, b, t in spans]
        groups = self.group([(text[s:e], t) for s, e, t in chars], text)
        ents = []
        for g in groups:
            ent: dict[str, Any] = {
                "mentions": [{"start": chars[i][0], "end": chars[i][1]} for i in g.mentions],
                "type": g.type,
                "name": g.name,
            }
            if g.id:
                ent["id"] = g.id
            ents.append(ent)
        return ents

    def _sentence_entities(
        self, sents: Sequence[Sequence[str]], spans: Sequence[Span]
    ) -> list[list[dict[str, Any]]]:
        words, where = [], []
        for si, sent in enumerate(sents):
            for ti, w in enumerate(sent):
                words.append(w)
                where.append((si, ti))
        cut = []
        for a, b, t in spans:
            si = where[a][0]
            while b > a + 1 and where[b - 1][0] != si:
                b -= 1
            cut.append((a, b, t))
        text = " ".join(words)
        groups = self.group([(" ".join(words[a:b]), t) for a, b, t in cut], text)
        return [
            [
                {
                    "name": " ".join(words[cut[i][0] : cut[i][1]]),
                    "sent_id": where[cut[i][0]][0],
                    "pos": [where[cut[i][0]][1], where[cut[i][1] - 1][1] + 1],
                    "type": g.type,
                    **({"id": g.id} if g.id else {}),
                }
                for i in g.mentions
            ]
            for g in groups
        ]

    # -- records ---------------------------------------------------------------------------------
    def annotate(self, obj: Any, *, line: int | None = None, source: str | None = None) -> Any:
        """``obj`` with predicted entities (a new dict), or ``obj`` unchanged when it is not a
        record this can fill (the parser then says what is wrong with it); ``DataError`` naming
        the field for a record whose text cannot be tagged."""
        (res,) = self.annotate_many([(obj, line)], source=source)
        if isinstance(res, DataError):
            raise res
        return res

    def annotate_many(
        self, items: Sequence[tuple[Any, int | None]], *, source: str | None = None
    ) -> list[Any]:
        """:meth:`annotate` for ``(record, line)`` items, tagging all their words together
        (documents sorted by length into batches of about ``max_tokens``): per item the filled
        record, the record unchanged, or the ``DataError`` that rejects it."""
        out: list[Any] = []
        words: list[list[str]] = []
        todo: list[tuple[int, Any, Any]] = []  # (item, record, text words | sentences)
        for obj, line in items:
            try:
                kind = self._check(obj, line, source)
            except DataError as e:
                out.append(e)
                continue
            out.append(obj)
            if kind == "text":
                toks = tokenize_with_offsets(obj["text"])
                todo.append((len(out) - 1, obj, toks))
                words.append([w for w, _, _ in toks])
            elif kind == "sents":
                todo.append((len(out) - 1, obj, obj["sents"]))
                words.append([w for sent in obj["sents"] for w in sent])
        order = sorted(range(len(words)), key=lambda i: len(words[i]))
        spans: list[list[Span]] = [[] for _ in words]
        for i, sp in zip(order, self.tag([words[i] for i in order]), strict=True):
            spans[i] = sp
        for (k, obj, src), sp in zip(todo, spans, strict=True):
            if self.forms:
                text, toks = (obj["text"], src) if "sents" not in obj else _joined(src)
                sp = dictionary_spans(text, toks, sp, self.forms)
            # gold indices and given entities no longer apply
            rest = {key: v for key, v in obj.items() if key not in ("labels", "vertexSet")}
            if "sents" in obj:
                out[k] = {**rest, "vertexSet": self._sentence_entities(src, sp)}
            else:
                out[k] = {**rest, "entities": self._text_entities(obj["text"], src, sp)}
        return out

    @staticmethod
    def _check(obj: Any, line: int | None, source: str | None) -> str | None:
        """Which words a record has ("text" or "sents"), None for one this cannot fill."""
        if not isinstance(obj, Mapping):
            return None
        doc = obj.get("id", obj.get("title"))
        doc = str(doc) if isinstance(doc, str | int) and not isinstance(doc, bool) else None

        def err(reason: str, field: str) -> DataError:
            return DataError(reason, source=source, line=line, doc=doc, field=field)

        if "text" in obj and "sents" not in obj:
            text = obj["text"]
            if not isinstance(text, str):
                raise err(f"text must be a string, got {type(text).__name__}", "text")
            if not text.strip():
                raise err("text is empty", "text")
            return "text"
        if "sents" in obj:
            sents = obj["sents"]
            if not isinstance(sents, list) or not all(
                isinstance(s, list) and all(isinstance(w, str) for w in s) for s in sents
            ):
                raise err("sents must be a list of lists of token strings", "sents")
            return "sents"
        return None


def _joined(sents: Sequence[Sequence[str]]) -> tuple[str, list[tuple[str, int, int]]]:
    """Tokenised sentences as one text (words joined by spaces) and each word's offsets."""
    toks, pos = [], 0
    for w in (w for sent in sents for w in sent):
        toks.append((w, pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(w for w, _, _ in toks), toks


def needs_entities(obj: Any, mode: str) -> bool:
    """Whether ``--entities mode`` predicts the entities of ``obj``."""
    if mode == "predict":
        return True
    if mode == "auto" and isinstance(obj, Mapping):
        return "entities" not in obj and "vertexSet" not in obj
    return False
