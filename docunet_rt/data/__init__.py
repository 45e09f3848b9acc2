"""Data readers and writers: DocRED/Re-DocRED JSON and JSONL, CDR/GDA (EoG ``.data``), PubTator,
and raw text with character-offset entities. All produce :class:`Document`; every reader also
reads gzip-compressed files (told by their magic bytes, see ``data/io.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path

import orjson

from ..options import FORMATS, check_choice
from .cdr import read_cdr
from .docred import (
    document_to_docred,
    load_line,
    parse_docred_record,
    parse_line,
    parse_record,
    read_docred,
    record_id,
    write_docred,
    write_result,
)
from .document import Candidate, DataError, Document, Entity, Label, Mention, ReadStats
from .io import is_gzip, iter_lines, open_binary, read_bytes
from .pubtator import read_pubtator
from .text import text_to_document, tokenize_with_offsets

__all__ = [
    "FORMATS",
    "Candidate",
    "DataError",
    "Document",
    "Entity",
    "Label",
    "Mention",
    "ReadStats",
    "check_relations",
    "detect_format",
    "document_to_docred",
    "is_gzip",
    "iter_lines",
    "load_relations",
    "open_binary",
    "parse_docred_record",
    "load_line",
    "parse_line",
    "parse_record",
    "record_id",
    "read_cdr",
    "read_docred",
    "read_documents",
    "read_bytes",
    "read_pubtator",
    "text_to_document",
    "tokenize_with_offsets",
    "write_docred",
    "write_result",
]


_PUBTATOR_TITLE = re.compile(r"^[^\t|]+\|t\|")
_CDR_RELATION = re.compile(r"^(\d+:[^:\t]+:\d+|not_include)$")


def _first_line(path: Path) -> str:
    for raw in iter_lines(path):  # decompressed when the file is gzip
        text = raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
        if text.strip():
            return text
    return ""


def detect_format(path: str | PathLike[str]) -> str:
    """``"docred"`` (a JSON list), ``"jsonl"``, ``"cdr"`` (EoG ``.data``) or ``"pubtator"``,
    from the file's content (decompressed first when it is gzip, whatever its name)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    first = _first_line(p)
    head = first.lstrip()[:1]
    if head == "[":
        return "docred"
    if head == "{":
        return "jsonl"
    if _PUBTATOR_TITLE.match(first):
        return "pubtator"
    fields = first.split("\t")
    if len(fields) >= 2 and fields[0].strip() and (len(fields) - 2) % 17 in (0, 1):
        if len(fields) < 19 or _CDR_RELATION.match(fields[2]):
            return "cdr"
    reason = "the file is empty" if not first else "the content matches no known format"
    raise DataError(
        f"cannot tell the format ({reason}); valid formats: docred (JSON list of DocRED "
        "documents), jsonl (one DocRED document per line), cdr (EoG .data, CDR/GDA), "
        "pubtator (PMID|t|title ...)",
        source=str(p),
    )


def read_documents(
    path: str | PathLike[str],
    format: str = "auto",
    *,
    skip_bad: bool = False,
    stats: ReadStats | None = None,
) -> list[Document]:
    """Read any supported file, plain or gzip-compressed; ``format`` is one of ``auto, docred,
    jsonl, cdr, pubtator``."""
    check_choice("format", format, FORMATS)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    fmt = detect_format(p) if format == "auto" else format
    if fmt in ("docred", "jsonl"):
        return read_docred(p, skip_bad=skip_bad, stats=stats)
    if fmt == "cdr":
        return read_cdr(p, skip_bad=skip_bad, stats=stats)
    return read_pubtator(p, skip_bad=skip_bad, stats=stats)


def load_relations(path: str | PathLike[str]) -> dict[str, str]:
    """A relation map: a JSON object id → name (DocRED ``rel_info.json``) or a JSON list of ids
    (each its own name)."""
    src = str(path)
    try:
        obj = orjson.loads(read_bytes(path))
    except orjson.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e}", source=src, line=e.lineno) from None
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(v, str):
                raise DataError(f"relation name must be a string, got {v!r}", source=src, field=k)
        rels = dict(obj)
    elif isinstance(obj, list):
        rels = {}
        for i, r in enumerate(obj):
            if not isinstance(r, str) or not r:
                raise DataError(
                    f"relation id must be a string, got {r!r}", source=src, field=f"[{i}]"
                )
            if r in rels:
                raise DataError(f"duplicate relation id {r!r}", source=src, field=f"[{i}]")
            rels[r] = r
    else:
        raise DataError(
            "a relation map must be a JSON object (id -> name) or a JSON list of ids, "
            f"got {type(obj).__name__}",
            source=src,
        )
    if not rels:
        raise DataError("the relation map is empty", source=src)
    return rels


def check_relations(
    docs: Iterable[Document],
    relations: Mapping[str, str],
    *,
    source: str | None = None,
    skip_bad: bool = False,
    stats: ReadStats | None = None,
) -> list[Document]:
    """Keep documents whose labels all use relation ids from ``relations``; a label with another
    id is a :class:`DataError` (or, with ``skip_bad``, its document is skipped and counted)."""
    few = ", ".join(list(relations)[:5])
    more = f", ... ({len(relations)} in all)" if len(relations) > 5 else ""
    kept: list[Document] = []
    for doc in docs:
        bad = next(
            ((i, lab) for i, lab in enumerate(doc.labels or []) if lab.relation not in relations),
            None,
        )
        if bad is None:
            kept.append(doc)
            continue
        i, lab = bad
        e = DataError(
            f"unknown relation id {lab.relation!r}; valid ids: {few}{more}",
            source=source,
            doc=doc.id,
            field=f"labels[{i}].r",
        )
        if not skip_bad:
            raise e
        if stats is not None:
            stats.skipped += 1
            stats.errors.append(e)
    return kept
