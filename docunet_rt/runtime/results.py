"""What extraction returns: triples per document, and error records for input it rejects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data.document import Document
from ..data.pubtator import PubtatorDoc, format_pubtator


@dataclass
class EntityRef:
    index: int  # position in the document's entity list (vertexSet / entities)
    name: str
    type: str
    id: str | None = None  # the input's entity id (e.g. a MeSH id), when it gave one
    # [start, end) character spans of the entity's mentions, for plain-text input
    spans: list[list[int]] | None = None
    # [sent_id, start, end) token positions of the mentions, for predicted entities of
    # DocRED-style input (which has no character offsets)
    positions: list[list[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "name": self.name, "type": self.type}
        if self.id is not None:
            d["id"] = self.id
        if self.spans is not None:
            d["spans"] = self.spans
        if self.positions is not None:
            d["positions"] = self.positions
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
    # Every entity of the document; written as "entities" only when the tagger predicted them
    # (``entities_predicted``), so that entities in no triple are seen too.
    entities: list[EntityRef] | None = None
    entities_predicted: bool = False
    # The plain-text input and its title (not written to JSONL; the PubTator writer uses them)
    text: str | None = field(default=None, repr=False)
    title: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "triples": [t.to_dict() for t in self.triples]}
        if self.entities is not None and self.entities_predicted:
            d["entities"] = [e.to_dict() for e in self.entities]
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


def entity_ref(doc: Document, i: int, positions: bool = False) -> EntityRef:
    """Entity ``i`` of ``doc`` as output; ``positions``: add token positions when the
    mentions have no character spans."""
    e = doc.entities[i]
    spans = [[m.span[0], m.span[1]] for m in e.mentions if m.span is not None]
    pos = [[m.sent_id, m.start, m.end] for m in e.mentions] if positions and not spans else None
    return EntityRef(
        index=i,
        name=e.name or (e.mentions[0].name if e.mentions else ""),
        type=e.type,
        id=e.id,
        spans=spans or None,
        positions=pos,
    )


def document_result(doc: Document, triples: list[Triple]) -> DocumentResult:
    """The result of ``doc``: its triples and entities (written when they were predicted)."""
    ents = [entity_ref(doc, i, positions=True) for i in range(len(doc.entities))]
    return DocumentResult(
        doc.id, triples, doc.meta, ents, doc.predicted_entities, doc.text, doc.title
    )


def _pubtator_pair(t: Triple) -> bool:
    """A ``CID`` line reads "chemical-id disease-id": a CID triple is written only with a
    Chemical head and a Disease tail (the CDR model scores every ordered pair of predicted
    entities, but learned only Chemical → Disease); other relations are written as they are."""
    return t.relation != "CID" or (t.head.type == "Chemical" and t.tail.type == "Disease")


def pubtator_block(res: DocumentResult) -> bytes:
    """``res`` in the PubTator format of the BioCreative V CDR task: title and abstract lines,
    a line per mention (offsets, text, type, concept id or -1) and per relation between two
    entities with concept ids (``PMID CID chemical-id disease-id``; see ``_pubtator_pair``).
    The record's ``title``
    is the title line (the text after it the abstract when the text starts with it; otherwise
    the whole text is the abstract). ValueError for a result without text (tokenised input)."""
    if res.text is None:
        raise ValueError(
            '--output-format pubtator needs plain-text records ({"id", "text"}); this '
            "record has tokenised sentences"
        )
    text, title = res.text, res.title
    if title and text.startswith(title + " "):
        shift, abstract = 0, text[len(title) + 1 :]
    else:  # the text is the abstract; offsets index title + " " + abstract
        shift, abstract = len(title) + 1, text
    mentions = [
        (s + shift, e + shift, text[s:e], ent.type, ent.id or "-1")
        for ent in res.entities or []
        for s, e in ent.spans or []
    ]
    rels = list(dict.fromkeys(
        (t.relation, t.head.id, t.tail.id) for t in res.triples
        if t.head.id and t.tail.id and _pubtator_pair(t)
    ))  # fmt: skip
    doc = PubtatorDoc(res.id, title, abstract, sorted(mentions), rels)
    return format_pubtator(doc).encode("utf-8")
