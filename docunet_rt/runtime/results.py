"""What extraction returns: triples per document, and error records for input it rejects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data.document import Document


@dataclass
class EntityRef:
    index: int  # position in the document's entity list (vertexSet / entities)
    name: str
    type: str
    id: str | None = None  # the input's entity id (e.g. a MeSH id), when it gave one
    # [start, end) character spans of the entity's mentions, for plain-text input
    spans: list[list[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "name": self.name, "type": self.type}
        if self.id is not None:
            d["id"] = self.id
        if self.spans is not None:
            d["spans"] = self.spans
        return d


@dataclass
class Triple:
    head: EntityRef
    tail: EntityRef
    relation: str  # id
    relation_name: str
    score: float  # sigmoid(logit), rounded to 4 decimals

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": self.head.to_dict(),
            "tail": self.tail.to_dict(),
            "relation": {"id": self.relation, "name": self.relation_name},
            "score": self.score,
        }


@dataclass
class DocumentResult:
    id: str
    triples: list[Triple] = field(default_factory=list)
    meta: Any = None  # the input record's ``meta``, copied unchanged

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "triples": [t.to_dict() for t in self.triples]}
        if self.meta is not None:
            d["meta"] = self.meta
        return d


@dataclass
class ErrorRecord:
    """An input record that was rejected: its 1-based line, its id when it could be read, and
    the reason (naming the field)."""

    line: int
    id: str | None
    error: str
    # "input": rejected before the model (bad record, over a bound); "model": the document
    # parsed but the model failed on it (its id then counts as seen for duplicates). Not
    # written: the record's schema is {line, id, error}.
    stage: str = "input"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.id, "error": self.error}


@dataclass(frozen=True)
class Failure:
    """A document the runtime failed on by itself (an allocation failure, say)."""

    reason: str


def entity_ref(doc: Document, i: int) -> EntityRef:
    e = doc.entities[i]
    spans = [[m.span[0], m.span[1]] for m in e.mentions if m.span is not None]
    return EntityRef(
        index=i,
        name=e.name or (e.mentions[0].name if e.mentions else ""),
        type=e.type,
        id=e.id,
        spans=spans or None,
    )
