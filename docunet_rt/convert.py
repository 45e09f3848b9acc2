"""Convert between the supported document formats.

Sources: DocRED JSON (a list), JSONL (DocRED-style records, one per line; plain-text records
``{id, text, entities}`` with character offsets are accepted too), CDR/GDA ``.data`` (EoG) and
PubTator (entities grouped by concept id), each plain or gzip-compressed. Targets: JSONL (every
record with an ``id``, the form the extract command reads) and DocRED JSON (``id`` only where it
differs from the title).

Concept (knowledge-base) ids are kept as an ``id`` key on every mention, which the readers take
back as the entity's id. What DocRED-style records cannot hold is dropped, with a warning:
CDR/PubTator candidate pairs (a reader of the output scores every ordered entity pair, not only
Chemical × Disease).
"""

from __future__ import annotations

import logging
import os
from os import PathLike
from pathlib import Path
from typing import Any

import orjson

from .data import (
    DataError,
    Document,
    ReadStats,
    detect_format,
    document_to_docred,
    read_documents,
)
from .options import FORMATS

__all__ = ["SOURCES", "TARGETS", "convert", "document_record", "read_any"]

logger = logging.getLogger("docunet_rt")

SOURCES = FORMATS  # auto, docred, jsonl, cdr, pubtator: what read_documents reads
TARGETS = ("jsonl", "docred")


def read_any(
    path: str | PathLike[str],
    src: str = "auto",
    *,
    skip_bad: bool = False,
    stats: ReadStats | None = None,
) -> list[Document]:
    """Read ``path`` as ``src`` (one of :data:`SOURCES`); JSONL may mix DocRED-style and
    plain-text records."""
    if src not in SOURCES:
        raise ValueError(f"unknown source format {src!r}; valid: {', '.join(SOURCES)}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    fmt = detect_format(p) if src == "auto" else src
    return read_documents(p, fmt, skip_bad=skip_bad, stats=stats)


def document_record(doc: Document, *, with_id: bool) -> dict[str, Any]:
    """``doc`` as a DocRED-style record; ``with_id`` puts ``id`` first even when it equals the
    title (JSONL). A mention of an entity with a knowledge-base id carries it as ``id``."""
    rec = document_to_docred(doc)
    if with_id:
        rec = {"id": doc.id, **rec}
    return rec


def convert(
    in_path: str | PathLike[str],
    out_path: str | PathLike[str],
    *,
    src: str = "auto",
    dst: str = "jsonl",
    skip_bad: bool = False,
) -> int:
    """Convert ``in_path`` (``src``: one of :data:`SOURCES`) to ``out_path`` (``dst``: ``jsonl``
    or ``docred``); returns the number of documents written. The output is written to a
    temporary file first and replaces ``out_path`` only when complete.
    """
    if src not in SOURCES:
        raise ValueError(f"unknown source format {src!r}; valid: {', '.join(SOURCES)}")
    if dst not in TARGETS:
        raise ValueError(f"unknown target format {dst!r}; valid: {', '.join(TARGETS)}")
    inp, out = Path(in_path), Path(out_path)
    if not inp.is_file():
        raise FileNotFoundError(f"no such file: {inp}")
    if out.is_dir():
        raise ValueError(f"output {out} is a directory; give a file name")
    if out.exists() and out.resolve() == inp.resolve():
        raise ValueError(f"output {out} is the input file; choose another name")
    fmt = detect_format(inp) if src == "auto" else src
    stats = ReadStats()
    docs = read_any(inp, fmt, skip_bad=skip_bad, stats=stats)
    if stats.skipped:
        logger.warning("%s: skipped %d bad records", inp, stats.skipped)
    if any(d.candidates is not None for d in docs):
        logger.warning(
            "%s: candidate pairs (%s) cannot be written in DocRED-style records; readers of %s "
            "will score every ordered entity pair",
            inp, fmt, out,
        )  # fmt: skip
    parts = []
    for d in docs:
        try:
            parts.append(orjson.dumps(document_record(d, with_id=dst == "jsonl")))
        except TypeError as e:  # orjson.JSONEncodeError: a meta value JSON cannot hold
            raise DataError(f"cannot write as JSON: {e}", doc=d.id, field="meta") from None
    if dst == "jsonl":
        body = b"".join(p + b"\n" for p in parts)
    else:
        body = b"[" + b",\n".join(parts) + b"]\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(body)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    logger.debug("wrote %d documents (%s) to %s", len(docs), dst, out)
    return len(docs)
