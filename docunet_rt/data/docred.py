"""DocRED / Re-DocRED JSON (a list of documents) and JSONL (one document per line).

Record: ``{title, sents: [[token]], vertexSet: [[{name, sent_id, pos: [start, end), type, id?}]],
labels?: [{h, t, r, evidence}]}`` plus optional ``id`` and ``meta`` (copied through untouched).
A mention's optional ``id`` (a string) is its entity's knowledge-base id (``Entity.id``): the
mentions of one entity that carry it must agree, and the writer puts it on every mention.
Extra keys (e.g. Re-DocRED's ``global_pos``/``index``) are ignored.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import orjson

from .document import DataError, Document, Entity, Label, Mention, ReadStats, skip_or_raise
from .io import read_bytes
from .text import text_to_document

__all__ = [
    "document_to_docred",
    "parse_docred_record",
    "read_docred",
    "write_docred",
    "write_result",
]

logger = logging.getLogger("docunet_rt")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _tname(x: Any) -> str:
    return type(x).__name__


def parse_docred_record(
    obj: Any,
    *,
    source: str | None = None,
    line: int | None = None,
    index: int | None = None,
) -> Document:
    """One DocRED-style record → :class:`Document` (validated).

    ``id`` = the record's ``id`` (``str()`` of it), else its ``title``, else ``str(line)`` /
    ``str(index)``. ``labels`` absent → ``Document.labels is None``.
    """
    if not isinstance(obj, dict):
        raise DataError(
            f"a document must be a JSON object, got {_tname(obj)}",
            source=source,
            line=line,
            doc=index if line is None else None,
        )
    title = obj.get("title", "")
    if obj.get("id") is not None:
        doc_id = str(obj["id"])
    elif isinstance(title, str) and title:
        doc_id = title
    elif line is not None:
        doc_id = str(line)
    else:
        doc_id = str(index if index is not None else 0)
    # How errors name the document: by index (and id/title) in a JSON list, else by its id.
    ref: str | int = doc_id
    if line is None and index is not None:
        ref = index if doc_id == str(index) else f"#{index} ({doc_id})"

    def err(reason: str, field: str | None) -> DataError:
        return DataError(reason, source=source, line=line, doc=ref, field=field)

    if not isinstance(title, str):
        raise err(f"title must be a string, got {_tname(title)}", "title")
    for key in ("sents", "vertexSet"):
        if key not in obj:
            raise err(f"missing key '{key}'", key)

    sents = obj["sents"]
    if not isinstance(sents, list):
        raise err(f"sents must be a list of sentences, got {_tname(sents)}", "sents")
    if not sents:
        raise err("document has no sentences", "sents")
    for si, sent in enumerate(sents):
        if not isinstance(sent, list):
            raise err(f"a sentence must be a list of tokens, got {_tname(sent)}", f"sents[{si}]")
        for ti, tok in enumerate(sent):
            if not isinstance(tok, str):
                raise err(f"a token must be a string, got {_tname(tok)}", f"sents[{si}][{ti}]")

    vs = obj["vertexSet"]
    if not isinstance(vs, list):
        raise err(f"vertexSet must be a list of entities, got {_tname(vs)}", "vertexSet")
    entities: list[Entity] = []
    for ei, ent in enumerate(vs):
        f = f"vertexSet[{ei}]"
        if not isinstance(ent, list):
            raise err(f"an entity must be a list of mentions, got {_tname(ent)}", f)
        if not ent:
            raise err("entity has no mentions", f)
        mentions: list[Mention] = []
        etype = ""
        kb_id: str | None = None
        for mi, m in enumerate(ent):
            mf = f"{f}[{mi}]"
            if not isinstance(m, dict):
                raise err(f"a mention must be an object, got {_tname(m)}", mf)
            for key in ("sent_id", "pos"):
                if key not in m:
                    raise err(f"missing key '{key}'", f"{mf}.{key}")
            sid = m["sent_id"]
            if not _is_int(sid):
                raise err(f"sent_id must be an integer, got {sid!r}", mf + ".sent_id")
            pos = m["pos"]
            if not (isinstance(pos, list | tuple) and len(pos) == 2 and all(map(_is_int, pos))):
                raise err(f"pos must be two integers [start, end), got {pos!r}", mf + ".pos")
            if not 0 <= sid < len(sents):
                raise err(
                    f"sent_id {sid} out of range (document has {len(sents)} sentences)",
                    mf + ".sent_id",
                )
            s, e = pos
            if not 0 <= s < e <= len(sents[sid]):
                raise err(
                    f"span [{s}, {e}) out of range for sentence {sid} of {len(sents[sid])} tokens",
                    mf + ".pos",
                )
            name = m.get("name")
            if name is None:
                name = " ".join(sents[sid][s:e])
            elif not isinstance(name, str):
                raise err(f"name must be a string, got {_tname(name)}", mf + ".name")
            mtype = m.get("type", "")
            if not isinstance(mtype, str):
                raise err(f"type must be a string, got {_tname(mtype)}", mf + ".type")
            if mi == 0:
                etype = mtype
            mid = m.get("id")
            if isinstance(mid, int) and not isinstance(mid, bool):
                mid = str(mid)  # as record ids: a number is read as its text
            if mid is not None:
                if not isinstance(mid, str) or not mid:
                    raise err(f"id must be a string (a knowledge-base id), got {mid!r}", mf + ".id")
                if kb_id is not None and mid != kb_id:
                    why = f"id {mid!r} differs from {kb_id!r} on another mention of the entity"
                    raise err(why, mf + ".id")
                kb_id = mid
            mentions.append(Mention(sid, s, e, name))
        entities.append(Entity(mentions=mentions, type=etype, name=mentions[0].name, id=kb_id))

    labels: list[Label] | None = None
    if obj.get("labels") is not None:
        raw = obj["labels"]
        if not isinstance(raw, list):
            raise err(f"labels must be a list, got {_tname(raw)}", "labels")
        labels = []
        for li, lab in enumerate(raw):
            lf = f"labels[{li}]"
            if not isinstance(lab, dict):
                raise err(f"a label must be an object, got {_tname(lab)}", lf)
            for key in ("h", "t", "r"):
                if key not in lab:
                    raise err(f"missing key '{key}'", f"{lf}.{key}")
            for key in ("h", "t"):
                v = lab[key]
                if not _is_int(v):
                    raise err(f"{key} must be an entity index, got {v!r}", f"{lf}.{key}")
                if not 0 <= v < len(entities):
                    raise err(
                        f"entity index {v} out of range ({len(entities)} entities)", f"{lf}.{key}"
                    )
            r = lab["r"]
            if not isinstance(r, str) or not r:
                raise err(f"r must be a relation id string, got {r!r}", f"{lf}.r")
            ev = lab.get("evidence")
            ev = [] if ev is None else ev
            if not isinstance(ev, list) or not all(map(_is_int, ev)):
                raise err(f"evidence must be a list of sentence ids, got {ev!r}", f"{lf}.evidence")
            for x in ev:
                if not 0 <= x < len(sents):
                    raise err(f"evidence sentence {x} out of range", f"{lf}.evidence")
            labels.append(Label(lab["h"], lab["t"], r, tuple(ev)))

    doc = Document(
        id=doc_id,
        sentences=sents,
        entities=entities,
        labels=labels,
        meta=obj.get("meta"),
        title=title,
    )
    try:
        doc.validate(source=source, line=line)
    except DataError as e:  # re-raise naming the document as the reader does
        raise err(e.reason, e.field) from None
    return doc


def read_docred(
    path: str | PathLike[str],
    *,
    skip_bad: bool = False,
    stats: ReadStats | None = None,
) -> list[Document]:
    """Read a DocRED JSON list or a JSONL file (detected by the first non-space character),
    plain or gzip-compressed."""
    src = str(path)
    data = read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head = data.lstrip()[:1]
    docs: list[Document] = []

    if head == b"{":  # JSONL, unless the whole file is one (pretty-printed) object
        try:
            whole = orjson.loads(data)
        except orjson.JSONDecodeError:
            whole = None
        if not isinstance(whole, dict):
            return _read_jsonl(data, src, skip_bad, stats)
        try:  # one record (one line, or pretty-printed over several): read as line 1
            docs.append(parse_record(whole, source=src, line=1))
        except DataError as e:
            skip_or_raise(e, skip_bad, stats)
            return docs
        if stats is not None:
            stats.read += 1
        return docs
    else:
        try:
            records = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise DataError(f"invalid JSON: {e}", source=src, line=e.lineno) from None
        if not isinstance(records, list):
            raise DataError(
                f"expected a JSON list of documents (or JSONL), got {_tname(records)}", source=src
            )
    for i, rec in enumerate(records):
        try:
            docs.append(parse_docred_record(rec, source=src, index=i))
        except DataError as e:
            skip_or_raise(e, skip_bad, stats)
            continue
        if stats is not None:
            stats.read += 1
    return docs


def record_id(obj: dict[str, Any], line: int | None, *, source: str | None = None) -> str:
    """A record's id: ``id`` (a non-empty string or an integer), else ``title``, else its line."""
    v = obj.get("id")
    if v is not None:
        if isinstance(v, bool) or not isinstance(v, str | int) or v == "":
            why = f"id must be a non-empty string or an integer, got {v!r}"
            raise DataError(why, source=source, line=line, field="id")
        return str(v)
    title = obj.get("title")
    return title if isinstance(title, str) and title else str(line)


def parse_record(obj: Any, *, source: str | None = None, line: int | None = None) -> Document:
    """One JSONL record, auto-detected: DocRED-style (``sents`` + ``vertexSet``) or plain text
    with character-offset entities (``text`` + ``entities``). The one place that tells them
    apart, for reading, converting and extracting alike."""
    if not isinstance(obj, dict):
        raise DataError(
            f"a document must be a JSON object, got {type(obj).__name__}", source=source, line=line
        )
    doc_id = record_id(obj, line, source=source)
    if "sents" in obj or "vertexSet" in obj:
        return parse_docred_record(obj, source=source, line=line)
    if "text" in obj:
        if "entities" not in obj:
            raise DataError(
                "missing key 'entities'", source=source, line=line, doc=doc_id, field="entities"
            )
        title = obj.get("title", "")
        if not isinstance(title, str):
            raise DataError("title must be a string", source=source, line=line, field="title")
        text = obj["text"]
        # a title that starts the text is a sentence of its own (as in PubTator)
        starts = [len(title) + 1] if title and isinstance(text, str) and text.startswith(
            title + " "
        ) else []  # fmt: skip
        doc = text_to_document(
            doc_id, text, obj["entities"], source=source, line=line, meta=obj.get("meta"),
            sentence_starts=starts,
        )  # fmt: skip
        doc.title = title
        return doc
    why = "unrecognised record: expected DocRED keys 'sents' and 'vertexSet', or plain-text keys"
    raise DataError(f"{why} 'text' and 'entities'", source=source, line=line, doc=doc_id)


def parse_line(raw: bytes, line: int, *, source: str | None = None) -> Document:
    """One JSONL line (UTF-8 bytes) → :class:`Document` via :func:`parse_record`; a
    :class:`DataError` naming the line (and field) if it is bad."""
    return parse_record(load_line(raw, line, source=source), source=source, line=line)


def load_line(raw: bytes, line: int, *, source: str | None = None) -> Any:
    """One JSONL line (UTF-8 bytes) → its JSON value; a :class:`DataError` naming the line
    when it is not UTF-8 or not JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"not valid UTF-8 (byte {e.start} of the line)", source=source, line=line
        ) from None
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e}", source=source, line=line) from None
    return obj


def _read_jsonl(data: bytes, src: str, skip_bad: bool, stats: ReadStats | None) -> list[Document]:
    docs: list[Document] = []
    for ln, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise DataError(f"invalid JSON: {e}", source=src, line=ln) from None
            docs.append(parse_record(rec, source=src, line=ln))
        except DataError as e:
            skip_or_raise(e, skip_bad, stats)
            continue
        if stats is not None:
            stats.read += 1
    return docs


def document_to_docred(doc: Document) -> dict[str, Any]:
    """The inverse of :func:`parse_docred_record` (``id`` only when it differs from the title;
    an entity's knowledge-base id, when it has one, as ``id`` on each of its mentions)."""
    out: dict[str, Any] = {}
    if doc.id != doc.title:
        out["id"] = doc.id
    out["title"] = doc.title
    out["sents"] = doc.sentences
    out["vertexSet"] = [[_mention_record(m, ent) for m in ent.mentions] for ent in doc.entities]
    if doc.labels is not None:
        out["labels"] = [
            {"h": lab.head, "t": lab.tail, "r": lab.relation, "evidence": list(lab.evidence)}
            for lab in doc.labels
        ]
    if doc.meta is not None:
        out["meta"] = doc.meta
    return out


def _mention_record(m: Mention, ent: Entity) -> dict[str, Any]:
    rec: dict[str, Any] = {"name": m.name, "sent_id": m.sent_id, "pos": [m.start, m.end]}
    rec["type"] = ent.type
    if ent.id is not None:
        rec["id"] = ent.id
    return rec


def _dumps(obj: Any, doc: Document) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError as e:  # orjson.JSONEncodeError: e.g. a meta value JSON cannot hold
        raise DataError(f"cannot write as JSON: {e}", doc=doc.id, field="meta") from None


def write_docred(docs: Iterable[Document], path: str | PathLike[str], *, jsonl: bool) -> None:
    """Write documents as a DocRED JSON list, or as JSONL (one record per line)."""
    parts = [_dumps(document_to_docred(d), d) for d in docs]
    if jsonl:
        body = b"".join(p + b"\n" for p in parts)
    else:
        body = b"[" + b",\n".join(parts) + b"]\n"
    Path(path).write_bytes(body)


def write_result(predictions: Iterable[Sequence[Any]], path: str | PathLike[str]) -> None:
    """Write ``(title, h, t, r)`` predictions in the DocRED official result format."""
    out = []
    for i, p in enumerate(predictions):
        if len(p) != 4:
            raise DataError(f"a prediction must be (title, h, t, r), got {p!r}", doc=i)
        title, h, t, r = p
        try:
            h, t = operator.index(h), operator.index(t)
        except TypeError:
            raise DataError(f"h and t must be entity indices, got {h!r}, {t!r}", doc=i) from None
        out.append({"title": str(title), "h_idx": h, "t_idx": t, "r": str(r), "evidence": []})
    Path(path).write_bytes(orjson.dumps(out))
