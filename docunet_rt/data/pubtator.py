"""The PubTator format of the BioCreative V CDR release.

A document is ``PMID|t|title``, ``PMID|a|abstract``, then tab-separated lines: mentions
``PMID start end text type concept-id[ extra]`` (character offsets into ``title + ' ' + abstract``)
and relations ``PMID CID chemical-id disease-id``; documents are separated by blank lines.

Decisions (the shipped CDR files: 500 documents per split, no offset/text mismatches):

* Entities are concepts: mentions grouped by concept id, in order of first mention. A composite
  id ``D1|D2`` (e.g. "ocular and auditory toxicity", 74-100 mentions per split, the 7th field
  holding the parts' texts) belongs to *each* of its concepts, the mention being shared, exactly
  as the EoG ``.data`` files split them. A ``-1`` part of a composite is dropped; a mention whose
  id is only ``-1`` (unnormalised, 59-91 per split) is an entity of its own with ``id=None``.
* Ids are kept verbatim (``D003000f`` in train stays a concept apart, as in the ``.data`` files).
* Candidates: every Chemical (or Gene) × Disease entity pair, head the Chemical; ``cross`` when
  no sentence holds mentions of both. Title and abstract are always separate sentences.
* Labels: one per distinct relation line; a relation naming a concept without mentions is a
  :class:`DataError`.

Against the ``.data`` files: per document the same concepts (the ``-1`` entities aside) and the
same gold pairs; entities 3509/3430/3513, candidates 5653/5401/5619 (the ``.data`` files drop
``-1`` mentions and hypernym-filtered pairs); ``cross`` agrees on 99.7% of the shared pairs (the
EoG files used another sentence splitter).

Writing: :func:`format_pubtator` / :func:`write_pubtator` produce the same layout from a
:class:`PubtatorDoc` (e.g. predicted mentions and CID pairs for the BioCreative V evaluation).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from .document import Candidate, DataError, Document, Label, ReadStats, skip_or_raise
from .io import read_bytes
from .text import text_to_document

__all__ = ["PubtatorDoc", "format_pubtator", "read_pubtator", "write_pubtator"]

logger = logging.getLogger("docunet_rt")

_HEAD_TYPES = frozenset({"Chemical", "Gene"})
_TAIL_TYPE = "Disease"


def _is_number(x: str) -> bool:
    return x.strip().lstrip("-").isdigit()


def _parse_block(block: list[tuple[int, str]], source: str) -> Document:
    first_ln, first = block[0]
    pmid = first.split("|", 1)[0].strip()

    def err(reason: str, ln: int, field: str | None = None) -> DataError:
        return DataError(reason, source=source, line=ln, doc=pmid or None, field=field)

    if "|t|" not in first or not pmid:
        raise err("a document must start with a 'PMID|t|title' line", first_ln, "title")
    title = first.split("|t|", 1)[1]
    rest = block[1:]
    abstract = ""
    if rest and "|a|" in rest[0][1] and "\t" not in rest[0][1].split("|a|", 1)[0]:
        ln, a_line = rest[0]
        a_pmid, abstract = a_line.split("|a|", 1)
        if a_pmid.strip() != pmid:
            raise err(f"abstract line has PMID {a_pmid.strip()!r}", ln, "abstract")
        rest = rest[1:]
    text = title + " " + abstract

    keys: dict[Any, int] = {}  # concept id (or a fresh object for '-1') -> entity index
    ents: list[dict[str, Any]] = []
    relations: list[tuple[int, str, str, str]] = []
    for ln, row in rest:
        f = row.split("\t")
        if f[0].strip() != pmid:
            raise err(f"line belongs to PMID {f[0].strip()!r}, not {pmid}", ln, "pmid")
        if len(f) == 4 or (len(f) > 4 and not any(map(_is_number, f[1:3]))):  # a relation
            relations.append((ln, f[1].strip(), f[2].strip(), f[3].strip()))
            continue
        if len(f) < 5:
            raise err(
                f"expected a mention (PMID start end text type id) or a relation line, "
                f"got {len(f)} fields",
                ln,
            )
        try:
            s, e = int(f[1]), int(f[2])
        except ValueError:
            raise err(f"offsets must be integers, got {f[1]!r} {f[2]!r}", ln, "start") from None
        if not 0 <= s < e <= len(text):
            raise err(f"span [{s}, {e}) out of range (text of {len(text)} chars)", ln, "end")
        if text[s:e] != f[3]:
            raise err(f"mention text {f[3]!r} differs from text[{s}:{e}] {text[s:e]!r}", ln, "text")
        etype = f[4].strip()
        parts = [x.strip() for x in f[5].split("|")] if len(f) > 5 else []
        ids = [x for x in parts if x and x != "-1"]
        owners: list[Any] = list(dict.fromkeys(ids)) if ids else [object()]
        for key in owners:
            i = keys.get(key)
            if i is None:
                i = keys[key] = len(ents)
                ents.append(
                    {
                        "mentions": [],
                        "type": etype,
                        "id": key if isinstance(key, str) else None,
                    }
                )
            ents[i]["mentions"].append({"start": s, "end": e})

    labels: list[Label] = []
    for ln, rel, id1, id2 in relations:
        idx = []
        for k, cid in ((1, id1), (2, id2)):
            if cid not in keys:
                raise err(f"relation names concept {cid!r}, which has no mention", ln, f"id{k}")
            idx.append(keys[cid])
        h, t = idx
        if ents[h]["type"] not in _HEAD_TYPES and ents[t]["type"] in _HEAD_TYPES:
            h, t = t, h
        lab = Label(h, t, rel)
        if lab not in labels:
            labels.append(lab)

    doc = text_to_document(
        pmid, text, ents, source=source, line=first_ln, sentence_starts=[len(title) + 1]
    )
    doc.title = title
    sent_sets = [{m.sent_id for m in ent.mentions} for ent in doc.entities]
    heads = [i for i, ent in enumerate(doc.entities) if ent.type in _HEAD_TYPES]
    tails = [i for i, ent in enumerate(doc.entities) if ent.type == _TAIL_TYPE]
    doc.candidates = [
        Candidate(h, t, cross=not (sent_sets[h] & sent_sets[t])) for h in heads for t in tails
    ]
    doc.labels = labels
    return doc


def read_pubtator(
    path: str | PathLike[str],
    *,
    skip_bad: bool = False,
    stats: ReadStats | None = None,
) -> list[Document]:
    """Read a PubTator file (CDR release), plain or gzip-compressed: one :class:`Document` per
    abstract."""
    src = str(path)
    docs: list[Document] = []

    def flush(block: list[tuple[int, str]]) -> None:
        if not block:
            return
        try:
            doc = _parse_block(block, src)
        except DataError as e:
            skip_or_raise(e, skip_bad, stats)
            return
        docs.append(doc)
        if stats is not None:
            stats.read += 1

    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        ln = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"not UTF-8 text: {e}", source=src, line=ln) from None
    block: list[tuple[int, str]] = []
    for ln, raw in enumerate(text.split("\n"), 1):
        row = raw.rstrip("\r")
        if not row.strip():
            flush(block)
            block = []
            continue
        if block and "|t|" in row and "\t" not in row.split("|t|", 1)[0]:
            flush(block)  # a new title without a blank line before it
            block = []
        block.append((ln, row))
    flush(block)
    return docs


# Characters that end a line for some reader (str.splitlines) plus the field separator: each is
# one code point, so replacing it by one space keeps every character offset valid.
_BREAKERS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_TO_SPACE = str.maketrans(dict.fromkeys(_BREAKERS, " "))


@dataclass
class PubtatorDoc:
    """One document to write in the PubTator format."""

    pmid: str
    title: str
    abstract: str
    # (start, end, text, type, concept id or "-1"): character offsets into title + " " + abstract
    mentions: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    # (relation e.g. "CID", id1, id2)
    relations: list[tuple[str, str, str]] = field(default_factory=list)


def _field(value: str, what: str, pmid: str) -> str:
    """An identifier field: it cannot be repaired, so a tab or line break in it is an error."""
    if value != value.translate(_TO_SPACE):
        raise ValueError(f"PMID {pmid}: {what} {value!r} contains a tab or line break")
    return value


def format_pubtator(doc: PubtatorDoc) -> str:
    """``doc`` as one PubTator block: ``PMID|t|title``, ``PMID|a|abstract``, one line
    ``PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>id`` per mention (sorted by start, then end;
    ties keep their order), one line ``PMID<TAB>relation<TAB>id1<TAB>id2`` per relation (in the
    given order), then the blank line that ends a document.

    A tab or a line break (anything :meth:`str.splitlines` splits on, ``\\r`` included) in the
    title, the abstract or a mention's text is replaced by one space: the length is unchanged,
    so the offsets stay valid, and a mention's text is compared with the text slice after that
    replacement. A concept id of ``None`` is written ``-1``.

    Raises ValueError (naming the PMID and the mention) when a mention's span is not
    ``0 <= start < end <= len(text)`` or its text differs from ``text[start:end]``, and when the
    PMID (which may not hold ``|`` either), a type, an id or a relation field holds a tab or a
    line break, which no replacement could make harmless.
    """
    pmid = _field(str(doc.pmid), "PMID", str(doc.pmid))
    if not pmid or "|" in pmid:
        raise ValueError(f"PMID {pmid!r} must be non-empty and may not contain '|'")
    title = doc.title.translate(_TO_SPACE)
    abstract = doc.abstract.translate(_TO_SPACE)
    text = title + " " + abstract
    rows: list[tuple[int, int, str]] = []
    for m in doc.mentions:
        start, end, mtext, mtype, cid = m
        what = f"PMID {pmid}: mention {m!r}"
        try:
            start, end = operator.index(start), operator.index(end)
        except TypeError:
            raise ValueError(f"{what}: offsets must be integers") from None
        if not 0 <= start < end <= len(text):
            raise ValueError(f"{what}: span must satisfy 0 <= start < end <= {len(text)}")
        mtext = mtext.translate(_TO_SPACE)
        if text[start:end] != mtext:
            raise ValueError(f"{what}: text differs from text[{start}:{end}] {text[start:end]!r}")
        mtype = _field(mtype, "mention type", pmid)
        cid = "-1" if cid is None else _field(cid, "concept id", pmid)
        rows.append((start, end, f"{pmid}\t{start}\t{end}\t{mtext}\t{mtype}\t{cid}"))
    rows.sort(key=lambda r: r[:2])  # stable: ties keep their order
    lines = [f"{pmid}|t|{title}", f"{pmid}|a|{abstract}"] + [r[2] for r in rows]
    for rel in doc.relations:
        name, id1, id2 = (_field(x, "relation field", pmid) for x in rel)
        lines.append(f"{pmid}\t{name}\t{id1}\t{id2}")
    return "\n".join(lines) + "\n\n"


def write_pubtator(docs: Iterable[PubtatorDoc], path: str | PathLike[str]) -> None:
    """Write ``docs`` to ``path`` as a plain UTF-8 PubTator file (see :func:`format_pubtator`);
    every document, the last included, ends with a blank line, as in the CDR release files.
    Every document is formatted before the file is opened, so a ValueError leaves no partial
    file behind."""
    text = "".join(format_pubtator(doc) for doc in docs)
    Path(path).write_bytes(text.encode("utf-8"))
