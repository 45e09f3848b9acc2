"""The one in-memory document type shared by training, evaluation and extraction.

Numpy-free and torch-free: plain dataclasses. Token offsets are per sentence, end exclusive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("docunet_rt")


class DataError(ValueError):
    """A record that cannot be used, with the place it came from.

    ``source`` is the file name, ``line`` the 1-based line (JSONL, .data, PubTator) or ``None``,
    ``doc`` the document index/id within the file when there is no line, ``field`` the offending
    key path (e.g. ``vertexSet[3][0].pos``).
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str | None = None,
        line: int | None = None,
        doc: str | int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.doc = doc
        self.field = field
        super().__init__(self.describe())

    def describe(self) -> str:
        where = []
        if self.source is not None:
            where.append(str(self.source))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.doc is not None:
            where.append(f"document {self.doc!r}")
        if self.field is not None:
            where.append(f"field {self.field}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


@dataclass(frozen=True)
class Mention:
    sent_id: int
    start: int  # first token, index within the sentence
    end: int  # one past the last token
    name: str = ""
    # [start, end) character offsets in the source text, where the input gave them (plain-text
    # records); carried to the output triples. Not part of equality.
    span: tuple[int, int] | None = field(default=None, compare=False)


@dataclass
class Entity:
    mentions: list[Mention]
    type: str = ""
    name: str = ""  # display name (first mention's text unless the source gives one)
    id: str | None = None  # a knowledge-base id where the source has one (e.g. MeSH for CDR)


@dataclass(frozen=True)
class Label:
    head: int  # entity index
    tail: int  # entity index
    relation: str  # relation id, e.g. "P17" or "CID"
    evidence: tuple[int, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """A (head, tail) pair that a benchmark scores (CDR/GDA list them); ``cross`` = inter-sentence."""

    head: int
    tail: int
    cross: bool = False


@dataclass
class Document:
    id: str
    sentences: list[list[str]]
    entities: list[Entity]
    labels: list[Label] | None = None  # None = unlabelled
    candidates: list[Candidate] | None = None  # None = every ordered pair of distinct entities
    meta: Any = None  # copied through extraction untouched
    title: str = ""
    # the raw text of a plain-text record (character spans index it); not part of equality
    text: str | None = field(default=None, compare=False, repr=False)
    # True when the entities were predicted by the tagger (``--entities predict|auto``), so the
    # result lists them; False when the input gave them.
    predicted_entities: bool = field(default=False, compare=False)

    @property
    def num_tokens(self) -> int:
        return sum(len(s) for s in self.sentences)

    def pairs(self) -> list[tuple[int, int]]:
        """The ordered entity pairs this document is scored on."""
        if self.candidates is not None:
            return [(c.head, c.tail) for c in self.candidates]
        n = len(self.entities)
        return [(h, t) for h in range(n) for t in range(n) if h != t]

    def validate(self, *, source: str | None = None, line: int | None = None) -> None:
        """Raise :class:`DataError` naming the field if the document is inconsistent."""

        def err(reason: str, field: str) -> DataError:
            return DataError(reason, source=source, line=line, doc=self.id, field=field)

        if not self.sentences:
            raise err("document has no sentences", "sents")
        for si, sent in enumerate(self.sentences):
            if not isinstance(sent, list) or not all(isinstance(t, str) for t in sent):
                raise err("a sentence must be a list of token strings", f"sents[{si}]")
        for ei, ent in enumerate(self.entities):
            if not ent.mentions:
                raise err("entity has no mentions", f"vertexSet[{ei}]")
            for mi, m in enumerate(ent.mentions):
                f = f"vertexSet[{ei}][{mi}]"
                if not 0 <= m.sent_id < len(self.sentences):
                    raise err(
                        f"sent_id {m.sent_id} out of range (document has "
                        f"{len(self.sentences)} sentences)",
                        f + ".sent_id",
                    )
                n = len(self.sentences[m.sent_id])
                if not (0 <= m.start < m.end <= n):
                    raise err(
                        f"span [{m.start}, {m.end}) out of range for sentence {m.sent_id} "
                        f"of {n} tokens",
                        f + ".pos",
                    )
        n_ent = len(self.entities)
        for li, lab in enumerate(self.labels or []):
            for key, idx in (("h", lab.head), ("t", lab.tail)):
                if not 0 <= idx < n_ent:
                    raise err(
                        f"entity index {idx} out of range ({n_ent} entities)", f"labels[{li}].{key}"
                    )
        for ci, c in enumerate(self.candidates or []):
            if not (0 <= c.head < n_ent and 0 <= c.tail < n_ent):
                raise err(f"candidate pair ({c.head}, {c.tail}) out of range", f"candidates[{ci}]")


@dataclass
class ReadStats:
    """What a reader did: documents read, and bad records skipped (with ``skip_bad``)."""

    read: int = 0
    skipped: int = 0
    errors: list[DataError] = field(default_factory=list)


def skip_or_raise(e: DataError, skip_bad: bool, stats: ReadStats | None) -> None:
    """Raise ``e``, or (with ``skip_bad``) log it, count it in ``stats`` and carry on."""
    if not skip_bad:
        raise e
    logger.warning("skipping bad record: %s", e)
    if stats is not None:
        stats.skipped += 1
        stats.errors.append(e)
