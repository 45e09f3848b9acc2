"""Raw text + character-offset entities → :class:`Document`.

Tokens are ``\\w+`` runs and single punctuation characters (regex ``\\w+|[^\\w\\s]``); a token
that a mention boundary falls inside is split there, so every mention is a whole token span.

Sentences end after a ``.``/``!``/``?`` token that is followed by whitespace and then a token
starting with an uppercase letter or a digit (the whitespace requirement keeps ``0.2`` and
``U.S.`` in one sentence), and at a blank line (paragraph break). A boundary that would fall
inside a mention is dropped, i.e. the two sentences are merged.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from .document import DataError, Document, Entity, Mention

__all__ = ["text_to_document", "tokenize_with_offsets"]

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_SENT_END = frozenset(".!?")


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """``(token, start, end)`` for every word / punctuation token of ``text`` (end exclusive)."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_entities(
    text: str, entities: Any, err: Any
) -> list[tuple[list[tuple[int, int]], str, str | None, str | None]]:
    """Validate ``entities``; return (spans, type, name, id) per entity."""
    if not isinstance(entities, list):
        raise err(f"entities must be a list, got {type(entities).__name__}", "entities")
    n = len(text)
    out = []
    for ei, ent in enumerate(entities):
        f = f"entities[{ei}]"
        if not isinstance(ent, dict):
            raise err(f"an entity must be an object, got {type(ent).__name__}", f)
        mentions = ent.get("mentions")
        if mentions is None:
            raise err("missing key 'mentions'", f + ".mentions")
        if not isinstance(mentions, list):
            raise err("mentions must be a list", f + ".mentions")
        if not mentions:
            raise err("entity has no mentions", f + ".mentions")
        etype = ent.get("type", "")
        if not isinstance(etype, str):
            raise err("type must be a string", f + ".type")
        name = ent.get("name")
        if name is not None and not isinstance(name, str):
            raise err("name must be a string", f + ".name")
        kb_id = ent.get("id")
        if kb_id is not None and not isinstance(kb_id, str):
            raise err("id must be a string", f + ".id")
        spans = []
        for mi, m in enumerate(mentions):
            mf = f"{f}.mentions[{mi}]"
            if not isinstance(m, dict):
                raise err(f"a mention must be an object, got {type(m).__name__}", mf)
            for key in ("start", "end"):
                if key not in m:
                    raise err(f"missing key '{key}'", f"{mf}.{key}")
                if not _is_int(m[key]):
                    raise err(f"{key} must be an integer, got {m[key]!r}", f"{mf}.{key}")
            s, e = m["start"], m["end"]
            if s >= e:
                raise err(f"empty span: start {s} >= end {e}", mf + ".end")
            if s < 0:
                raise err(f"start {s} is negative", mf + ".start")
            if e > n:
                raise err(f"end {e} is past the end of the text ({n} characters)", mf + ".end")
            if text[s:e].isspace():
                raise err(f"span [{s}, {e}) covers only whitespace", mf)
            spans.append((s, e))
        out.append((spans, etype, name, kb_id))
    return out


def _split_tokens(
    tokens: list[tuple[str, int, int]], bounds: list[int]
) -> tuple[list[str], list[int], list[int]]:
    """Split tokens at the (sorted) character boundaries that fall strictly inside them."""
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    k = 0
    nb = len(bounds)
    for tok, s, e in tokens:
        while k < nb and bounds[k] <= s:
            k += 1
        if k < nb and bounds[k] < e:
            cur = s
            while k < nb and bounds[k] < e:
                b = bounds[k]
                words.append(tok[cur - s : b - s])
                starts.append(cur)
                ends.append(b)
                cur = b
                k += 1
            words.append(tok[cur - s :])
            starts.append(cur)
            ends.append(e)
        else:
            words.append(tok)
            starts.append(s)
            ends.append(e)
    return words, starts, ends


def text_to_document(
    doc_id: str,
    text: str,
    entities: list[dict[str, Any]],
    *,
    source: str | None = None,
    line: int | None = None,
    meta: Any = None,
    sentence_starts: Iterable[int] = (),
) -> Document:
    """Tokenize ``text``, split it into sentences and map character-offset mentions to tokens.

    ``entities``: ``[{"mentions": [{"start", "end"}], "type"?, "name"?, "id"?}]`` with Python
    slice offsets into ``text``. ``sentence_starts``: character offsets where a sentence must
    begin (e.g. the abstract after a title), unless that falls inside a mention.
    Raises :class:`DataError` naming the field (e.g. ``entities[2].mentions[0].end``).
    """
    doc_id = str(doc_id)

    def err(reason: str, field: str) -> DataError:
        return DataError(reason, source=source, line=line, doc=doc_id, field=field)

    if not isinstance(text, str):
        raise err(f"text must be a string, got {type(text).__name__}", "text")
    checked = _check_entities(text, entities, err)
    bounds = sorted({x for spans, *_ in checked for se in spans for x in se})
    words, tstarts, tends = _split_tokens(tokenize_with_offsets(text), bounds)
    n = len(words)
    if n == 0:
        raise err("text has no tokens", "text")

    # Token span of every mention (tokens never straddle a mention boundary after the split).
    tok_spans: list[list[tuple[int, int]]] = []
    for ei, (spans, *_rest) in enumerate(checked):
        row = []
        for mi, (s, e) in enumerate(spans):
            a = bisect_left(tstarts, s)
            b = bisect_left(tstarts, e)
            if a >= b:  # only reachable for spans of characters outside any token
                raise err(f"span [{s}, {e}) covers no token", f"entities[{ei}].mentions[{mi}]")
            row.append((a, b))
        tok_spans.append(row)

    # Sentence boundaries: ``cut[i]`` = a sentence ends after token i.
    cut = [False] * n
    for i in range(n - 1):
        gap_start, gap_end = tends[i], tstarts[i + 1]
        if gap_end == gap_start:
            continue
        if words[i] in _SENT_END:
            c = words[i + 1][0]
            if c.isupper() or c.isdigit():
                cut[i] = True
                continue
        if text.count("\n", gap_start, gap_end) >= 2:
            cut[i] = True
    forced = sorted(set(sentence_starts))
    for off in forced:
        j = bisect_left(tstarts, off)
        if 0 < j < n:
            cut[j - 1] = True
    for row in tok_spans:
        for a, b in row:
            for i in range(a, b - 1):
                cut[i] = False
    cut[n - 1] = True

    sentences: list[list[str]] = []
    sent_of = [0] * n
    pos_of = [0] * n
    cur: list[str] = []
    for i, w in enumerate(words):
        sent_of[i] = len(sentences)
        pos_of[i] = len(cur)
        cur.append(w)
        if cut[i]:
            sentences.append(cur)
            cur = []

    ents: list[Entity] = []
    for (spans, etype, name, kb_id), row in zip(checked, tok_spans, strict=True):
        mentions: list[Mention] = []
        seen: set[tuple[int, int]] = set()
        for (s, e), (a, b) in zip(spans, row, strict=True):
            if (a, b) in seen:
                continue
            seen.add((a, b))
            sid = sent_of[a]
            mentions.append(
                Mention(sid, pos_of[a], pos_of[b - 1] + 1, text[s:e].strip(), span=(s, e))
            )
        ents.append(
            Entity(
                mentions=mentions,
                type=etype,
                name=name if name is not None else mentions[0].name,
                id=kb_id,
            )
        )
    doc = Document(id=doc_id, sentences=sentences, entities=ents, meta=meta, text=text)
    doc.validate(source=source, line=line)
    return doc
