"""Prepare: records → (document, features), the first stage of the inference core.

Parses each record (JSON bytes/str or dict, format auto-detected), predicts its entities where
``options.entities`` says so (``ner.recognize.Recognizer``: the records of a chunk are tagged
together), builds features and applies the per-document bounds; a bad record becomes a
``Prepared`` with the reason (naming the field), never an exception. Thread- and process-safe
(without a recognizer, picklable with ``functools.partial``): the streaming job runs it in its
worker pool.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import DocuNetConfig
from ..corpus import TooLarge
from ..data import DataError, Document, load_line, parse_line, parse_record
from ..features import DocFeatures, ShapeBuckets, TokenizerInfo, build_features, head_bytes
from ..ner.recognize import Recognizer, needs_entities
from ..options import ExtractOptions

logger = logging.getLogger("docunet_rt")

# A record: (1-based line number, raw JSON bytes / str, or an already parsed dict)
Record = tuple[int, bytes | str | Mapping[str, Any]]


@dataclass(slots=True)
class Prepared:
    """One record after parsing and featurizing: a document with its features, or an error."""

    line: int
    doc: Document | None
    feats: DocFeatures | None
    id: str | None
    error: str | None  # why the record was rejected (naming the field), None when good


def size_error(
    feats: DocFeatures,
    config: DocuNetConfig,
    options: ExtractOptions,
    buckets: ShapeBuckets | None = None,
) -> str | None:
    """Why a document is over the per-document bounds of ``options``, or None (the head
    estimate with the backend's shape padding, ``buckets``)."""
    n_wp, n_ent = feats.seq_len - 2, feats.num_entities
    if options.max_doc_tokens is not None and n_wp > options.max_doc_tokens:
        return (
            f"document too long: {n_wp} wordpieces (with entity markers) > max_doc_tokens "
            f"{options.max_doc_tokens}; split it, or raise --max-doc-tokens"
        )
    if options.max_entities is not None and n_ent > options.max_entities:
        return (
            f"too many entities: {n_ent} > max_entities {options.max_entities}; split the "
            "document, or raise --max-entities"
        )
    if options.max_head_mb is not None:
        mb = head_bytes(feats.seq_len, len(feats.mention_pos), n_ent, config, buckets) / 2**20
        if mb > options.max_head_mb:
            return (
                f"document too large: its pair map needs about {mb:.0f} MB > max_head_mb "
                f"{options.max_head_mb} ({n_wp} wordpieces, {n_ent} entities, "
                f"{len(feats.mention_pos)} mentions); split it, or raise --max-head-mb"
            )
    return None


NO_TAGGER = (
    "no entities given, and the model has no entity tagger to find them (train one with "
    "docunet-rt train-ner, export it with docunet-rt export --tagger), or give entities"
)


def parse_entities(
    rec: bytes | Mapping[str, Any],
    line: int,
    mode: str = "given",
    recognizer: Recognizer | None = None,
) -> Document:
    """One record (JSON bytes or a dict) → :class:`Document`, its entities predicted by
    ``recognizer`` where ``mode`` (``options.ENTITY_MODES``) says so."""
    return _parse_ready(*_annotate([(line, rec)], mode, recognizer)[0], line)


def _annotate(
    records: Sequence[tuple[int, Any]], mode: str, recognizer: Recognizer | None
) -> list[tuple[Any, bool]]:
    """(record or the DataError rejecting it, entities predicted?) per ``(line, JSON bytes |
    dict)``; the records that need entities are tagged together (``annotate_many``)."""
    objs: list[Any] = []
    for line, rec in records:
        try:
            objs.append(rec if isinstance(rec, Mapping) else load_line(rec, line))
        except DataError as e:
            objs.append(e)
    out = [(o, False) for o in objs]
    need = [
        i for i, o in enumerate(objs) if not isinstance(o, DataError) and needs_entities(o, mode)
    ]
    if recognizer is None:
        for i in need:
            out[i] = (DataError(NO_TAGGER, line=records[i][0], field="entities"), False)
    elif need:
        items = [(objs[i], records[i][0]) for i in need]
        try:
            done = recognizer.annotate_many(items)
        except Exception as e:  # noqa: BLE001 - the runtime's own error types vary by provider
            # the tagger failed on the chunk (an allocation failure, say): one record at a time,
            # so that only the records it fails on alone become error records
            logger.warning(
                "the tagger failed on %d records (%s); retrying one by one", len(items), e
            )
            done = [_annotate_one(recognizer, item) for item in items]
        for i, res in zip(need, done, strict=True):
            out[i] = (res, True)
    return out


def _annotate_one(recognizer: Recognizer, item: tuple[Any, int]) -> Any:
    try:
        return recognizer.annotate_many([item])[0]
    except Exception as e:  # noqa: BLE001
        why = f"the entity tagger failed on this document: {type(e).__name__}: {str(e)[:300]}"
        obj = item[0]
        doc = obj.get("id", obj.get("title")) if isinstance(obj, Mapping) else None
        return DataError(why, line=item[1], doc=str(doc) if doc is not None else None)


def _parse_ready(item: Any, predicted: bool, line: int) -> Document:
    if isinstance(item, DataError):
        raise item
    doc = parse_record(item, line=line)
    doc.predicted_entities = predicted
    return doc


def _prepare_one(
    line: int,
    parse: Callable[[], Document],
    tok: TokenizerInfo,
    config: DocuNetConfig,
    options: ExtractOptions,
    buckets: ShapeBuckets | None,
) -> Prepared:
    try:
        doc = parse()
    except DataError as e:
        why = f"{e.field}: {e.reason}" if e.field else e.reason
        return Prepared(line, None, None, e.doc if isinstance(e.doc, str) else None, why)
    try:
        feats = build_features(doc, tok, config)
    except Exception as e:  # a document the featurizer cannot handle must not stop the run
        logger.debug("featurizing line %d failed", line, exc_info=True)
        return Prepared(line, None, None, doc.id, f"cannot build features: {e}")
    if (why := size_error(feats, config, options, buckets)) is not None:
        return Prepared(line, None, None, doc.id, why)
    return Prepared(line, doc, feats, doc.id, None)


def _too_big(line: int, size: int, options: ExtractOptions) -> Prepared:
    return Prepared(
        line, None, None, None,
        f"record too large: {size} bytes > max_record_bytes {options.max_record_bytes} "
        "(not parsed); split the document, or raise --max-record-bytes",
    )  # fmt: skip


def prepare_records(
    records: Iterable[Record],
    tok: TokenizerInfo,
    config: DocuNetConfig,
    options: ExtractOptions | None = None,
    buckets: ShapeBuckets | None = None,
    recognizer: Recognizer | None = None,
) -> list[Prepared]:
    """Parse (JSON bytes/str or dict, format auto-detected) and featurize each record; records
    over the bounds of ``options`` become errors, unparsed when their bytes are too many.
    ``recognizer`` finds the entities of records that ``options.entities`` says to."""
    options = options or ExtractOptions()
    cap = options.max_record_bytes
    out: list[Prepared | None] = []
    todo: list[tuple[int, Any]] = []  # (line, dict or JSON bytes) to parse
    for line, rec in records:
        if isinstance(rec, TooLarge):  # a corpus line the reader did not keep
            out.append(_too_big(line, int(rec), options))
            continue
        if not isinstance(rec, Mapping):
            rec = rec.encode("utf-8") if isinstance(rec, str) else rec
            if cap is not None and len(rec) > cap:
                out.append(_too_big(line, len(rec), options))
                continue
        out.append(None)
        todo.append((line, rec))
    if options.entities == "given":
        parses = [
            functools.partial(parse_record, rec, line=line)
            if isinstance(rec, Mapping)
            else functools.partial(parse_line, rec, line)
            for line, rec in todo
        ]
    else:  # tag the records that need entities together
        ready = _annotate(todo, options.entities, recognizer)
        parses = [
            functools.partial(_parse_ready, item, predicted, line)
            for (line, _), (item, predicted) in zip(todo, ready, strict=True)
        ]
    it = iter(zip(todo, parses, strict=True))
    for k, p in enumerate(out):
        if p is None:
            (line, _), parse = next(it)
            out[k] = _prepare_one(line, parse, tok, config, options, buckets)
    return out  # type: ignore[return-value]


def prepare_lines(
    chunk: Sequence[tuple[int, bytes]],
    tok: TokenizerInfo,
    config: DocuNetConfig,
    options: ExtractOptions | None = None,
    buckets: ShapeBuckets | None = None,
    recognizer: Recognizer | None = None,
) -> list[Prepared]:
    """``prepare_records`` for raw corpus lines (picklable with ``functools.partial`` when
    ``recognizer`` is None: entity prediction runs in threads, not processes)."""
    return prepare_records(chunk, tok, config, options, buckets, recognizer)
