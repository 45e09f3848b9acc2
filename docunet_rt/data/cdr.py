"""CDR / GDA in the EoG ``.data`` format (one abstract per line), as ATLOP/DocuNet read it.

Line: ``PMID <tab> sentences ('|'-joined, tokens ' '-joined) <tab>`` then 17-field groups
``relation direction CROSS|NON-CROSS span1 span2 id1 names1 type1 starts1 ends1 sent_ids1 id2 names2
type2 starts2 ends2 sent_ids2``; starts/ends are document-level token offsets (end exclusive),
':'-joined over mentions, names '|'-joined.

What the shipped CDR files (``{train,dev,test}_filter.data``, 500 lines each) really hold:

* The groups of a line are exactly every Chemical × Disease pair of its entities, once each: no
  duplicate pairs, no duplicate PMIDs (both would be merged / dropped here, as ATLOP does).
  arg1 is always the Chemical and arg2 the Disease. ``direction`` is only the textual order of
  the two spans (L2R iff span1 starts before span2); it is *not* head/tail. ATLOP's ``read_cdr``
  swaps head and tail on R2L (2311/2253/2093 groups are Disease → Chemical there); here head is
  always the Chemical (GDA: Gene) and tail the Disease, decided by the type fields.
* **Entity order leaks the labels.** Every line lists its ``1:CID:2`` groups first, then the NR
  ones. ATLOP's entity order (first appearance in the pair groups, in the L2R/R2L order of the
  pair) therefore puts the entities of gold relations first, and DocuNet's U-Net over the N×N
  grid learns that layout: a model trained in that order scored test F1 0.785 in that order,
  and 0.451 with the same entities in document order
  (``benchmarks/results/cdr_entity_order.json``). Entities are ordered by first mention here
  (``entity_order="document"``); ``"pairs"`` gives ATLOP's order, for measuring it.
* Entities (distinct ids): 3433/3371/3422. ``CROSS`` holds exactly when the two entities share
  no sentence.
* ``relation``: ``1:CID:2`` (train/dev/test 1038/1012/1066 groups, the official CID counts),
  ``1:NR:2`` (4204/4075/4138) and ``not_include`` (192/174/201): pairs dropped by EoG's hypernym
  filter. Published code skips ``not_include`` groups, so they are no candidates:
  5242/5087/5204 candidates. 60/44/50 lines have entities (74/52/62 in all) that occur only in
  ``not_include`` groups; ATLOP drops those entities (but still marks their mentions); here they
  are kept, so every annotated mention stays marked (``drop_filtered=True``
  gives ATLOP's entity list).
* Ids ending in a letter: only ``D003000f`` (PMID 227508, train; the PubTator release has it
  too), a second "clonidine" entity beside ``D003000``. Ids are kept verbatim, so it stays a
  separate entity with 2 NR candidates, as in ATLOP/EoG.
* Overlapping mentions: no partial overlaps, but composite PubTator mentions (``D1|D2``) appear
  as the same span in two or more entities; they stay shared. One entity (train, line 139,
  ``D020258``) lists one span three times; duplicate spans within an entity are dropped.
* An id always reappears with identical mentions in these files; if it did not, the first
  occurrence would win (as in ATLOP), and a different type is an error.
"""

from __future__ import annotations

import logging
from os import PathLike
from typing import Any

from .document import (
    Candidate,
    DataError,
    Document,
    Entity,
    Label,
    Mention,
    ReadStats,
    skip_or_raise,
)
from .io import iter_lines

__all__ = ["read_cdr"]

logger = logging.getLogger("docunet_rt")

_GROUP = 17
_HEAD_TYPES = frozenset({"Chemical", "Gene"})
_TAIL_TYPE = "Disease"
_ARG_FIELDS = ("id", "names", "type", "starts", "ends", "sent_ids")


class _Arg:
    __slots__ = ("id", "type", "name", "mentions")

    def __init__(self, kb_id: str, etype: str, name: str, mentions: list[Mention]) -> None:
        self.id = kb_id
        self.type = etype
        self.name = name
        self.mentions = mentions


def _parse_arg(
    f: list[str], k: int, g: int, sents: list[list[str]], offs: list[int], err: Any
) -> _Arg:
    """One argument (``k`` = 1 or 2) of group ``g``: fields id names type starts ends sent_ids."""
    kb_id, names, etype, starts, ends, sids = f
    fname = [f"groups[{g}].{x}{k}" for x in _ARG_FIELDS]
    if not kb_id:
        raise err("empty entity id", fname[0])
    if not etype:
        raise err("empty entity type", fname[2])
    cols = []
    for text, name in ((starts, fname[3]), (ends, fname[4]), (sids, fname[5])):
        try:
            cols.append([int(x) for x in text.split(":")])
        except ValueError:
            raise err(f"expected ':'-joined integers, got {text!r}", name) from None
    if not len(cols[0]) == len(cols[1]) == len(cols[2]):
        raise err(
            f"{len(cols[0])} starts, {len(cols[1])} ends and {len(cols[2])} sent_ids differ",
            fname[3],
        )
    name_list = names.split("|")
    use_names = len(name_list) == len(cols[0])
    mentions: list[Mention] = []
    seen: set[tuple[int, int, int]] = set()
    for j, (s, e, sid) in enumerate(zip(*cols, strict=True)):
        if not 0 <= sid < len(sents):
            raise err(f"sent_id {sid} out of range ({len(sents)} sentences)", fname[5])
        a, b = offs[sid], offs[sid + 1]
        if not a <= s < e <= b:
            raise err(
                f"mention [{s}, {e}) is not inside sentence {sid} (tokens [{a}, {b}))", fname[3]
            )
        key = (sid, s - a, e - a)
        if key in seen:
            continue
        seen.add(key)
        text = name_list[j] if use_names else " ".join(sents[sid][s - a : e - a])
        mentions.append(Mention(sid, s - a, e - a, text))
    if not mentions:
        raise err("entity has no mentions", fname[3])
    return _Arg(kb_id, etype, name_list[0], mentions)


def _parse_line(
    text_line: str,
    *,
    source: str | None,
    line: int,
    drop_filtered: bool,
    entity_order: str = "document",
) -> Document:
    fields = text_line.split("\t")
    pmid = fields[0].strip()

    def err(reason: str, field: str) -> DataError:
        return DataError(reason, source=source, line=line, doc=pmid or None, field=field)

    if not pmid:
        raise err("empty PMID", "id")
    if len(fields) < 2 or not fields[1].strip():
        raise err("no text (expected PMID <tab> sentences <tab> pair groups)", "sents")
    rest = fields[2:]
    if len(rest) % _GROUP == 1 and rest[-1] == "":  # a trailing tab
        rest.pop()
    if len(rest) % _GROUP:
        raise err(f"{len(rest)} fields after the text is not a multiple of {_GROUP}", "groups")

    sents = [s.split(" ") for s in fields[1].split("|")]
    offs = [0]
    for s in sents:
        offs.append(offs[-1] + len(s))

    # (head arg, tail arg, relation or None, cross, included, registration order)
    groups: list[tuple[_Arg, _Arg, str | None, bool, bool, tuple[_Arg, _Arg]]] = []
    for g in range(len(rest) // _GROUP):
        p = rest[g * _GROUP : (g + 1) * _GROUP]
        rel, direction, cross = p[0], p[1], p[2]
        if direction not in ("L2R", "R2L"):
            raise err(f"direction must be L2R or R2L, got {direction!r}", f"groups[{g}].direction")
        if cross not in ("CROSS", "NON-CROSS"):
            raise err(f"expected CROSS or NON-CROSS, got {cross!r}", f"groups[{g}].cross")
        included = rel != "not_include"
        relation: str | None = None
        if included:
            parts = rel.split(":")
            if len(parts) != 3 or not parts[1]:
                raise err(
                    f"relation must look like 1:CID:2, 1:NR:2 or not_include, got {rel!r}",
                    f"groups[{g}].relation",
                )
            relation = None if parts[1] == "NR" else parts[1]
        a1 = _parse_arg(p[5:11], 1, g, sents, offs, err)
        a2 = _parse_arg(p[11:17], 2, g, sents, offs, err)
        if a1.type in _HEAD_TYPES and a2.type == _TAIL_TYPE:
            head, tail = a1, a2
        elif a2.type in _HEAD_TYPES and a1.type == _TAIL_TYPE:
            head, tail = a2, a1
        else:
            raise err(
                f"a pair must be Chemical/Gene × Disease, got {a1.type} × {a2.type}",
                f"groups[{g}].type1",
            )
        order = (a1, a2) if direction == "L2R" else (a2, a1)
        groups.append((head, tail, relation, cross == "CROSS", included, order))

    index: dict[str, int] = {}
    entities: list[Entity] = []

    def register(a: _Arg) -> None:
        i = index.get(a.id)
        if i is None:
            index[a.id] = len(entities)
            entities.append(Entity(mentions=a.mentions, type=a.type, name=a.name, id=a.id))
            return
        ent = entities[i]
        if ent.type != a.type:
            raise err(f"entity {a.id} is typed {ent.type} and {a.type}", "groups")
        if ent.mentions != a.mentions:
            logger.debug("%s line %d: entity %s reappears with other mentions", source, line, a.id)

    for _h, _t, _r, _c, included, order in groups:
        if included:
            register(order[0])
            register(order[1])
    if not drop_filtered:
        for _h, _t, _r, _c, included, order in groups:
            if not included:
                register(order[0])
                register(order[1])
    if entity_order == "document":  # by first mention: the order carries no label
        first = [min(offs[m.sent_id] + m.start for m in e.mentions) for e in entities]
        perm = sorted(range(len(entities)), key=lambda i: (first[i], i))
        entities = [entities[i] for i in perm]
        index = {e.id: k for k, e in enumerate(entities)}  # type: ignore[misc]

    candidates: list[Candidate] = []
    labels: list[Label] = []
    pair_at: dict[tuple[int, int], int] = {}
    for head, tail, relation, cross, included, _o in groups:
        if not included:
            continue
        h, t = index[head.id], index[tail.id]
        if (h, t) in pair_at:
            logger.debug("%s line %d: duplicate pair %s-%s merged", source, line, head.id, tail.id)
        else:
            pair_at[(h, t)] = len(candidates)
            candidates.append(Candidate(h, t, cross))
        if relation is not None:
            lab = Label(h, t, relation)
            if lab not in labels:
                labels.append(lab)

    doc = Document(
        id=pmid, sentences=sents, entities=entities, labels=labels, candidates=candidates
    )
    doc.validate(source=source, line=line)
    return doc


def read_cdr(
    path: str | PathLike[str],
    *,
    skip_bad: bool = False,
    stats: ReadStats | None = None,
    drop_filtered: bool = False,
    entity_order: str = "document",
) -> list[Document]:
    """Read an EoG-format CDR/GDA ``.data`` file: one :class:`Document` per line.

    Every pair group except ``not_include`` becomes a :class:`Candidate` (head = Chemical/Gene,
    tail = Disease); ``1:CID:2`` / ``1:GDA:2`` groups also a :class:`Label` ("CID" / "GDA").
    ``drop_filtered`` drops entities that occur only in ``not_include`` groups (as ATLOP does).
    ``entity_order``: ``"document"`` (by first mention, the default) or ``"pairs"`` (first
    appearance in the pair groups, ATLOP's order, which leaks the labels: the files list the CID
    groups first; see the module docstring).
    A repeated PMID is dropped with a warning (as ATLOP does). A gzip-compressed file is read
    the same way.
    """
    src = str(path)
    docs: list[Document] = []
    seen: set[str] = set()
    for ln, raw in enumerate(iter_lines(path), 1):
        if not raw.strip():
            continue
        try:
            try:
                text_line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataError(f"not UTF-8 text: {e}", source=src, line=ln) from None
            pmid = text_line.split("\t", 1)[0].strip()
            if pmid and pmid in seen:
                logger.warning("%s line %d: PMID %s repeats; line dropped", src, ln, pmid)
                continue
            doc = _parse_line(
                text_line, source=src, line=ln, drop_filtered=drop_filtered,
                entity_order=entity_order,
            )  # fmt: skip
        except DataError as e:
            skip_or_raise(e, skip_bad, stats)
            continue
        seen.add(pmid)
        docs.append(doc)
        if stats is not None:
            stats.read += 1
    return docs
