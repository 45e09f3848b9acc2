"""Synthetic documents, seeded: a DocRED-style corpus for demos and tests (standard library),
and random probe documents over any tokenizer's vocabulary for parity, tracing and benchmark
scaling grids (numpy, imported when they are made).

Short biographies from project-written templates: a person born on a date in a city, the city
in a country, an employer headquartered in a city, maybe a spouse born elsewhere, and distractors
(a city visited, a branch office, a rival company, an acquaintance, a country moved to) that
mention entities without relating them. Persons reappear by surname, companies often by their
short name or as "the company", so the facts about an entity are spread over sentences.

Relations (DocRED ids): stated in one sentence: P19 place of birth, P569 date of birth, P108
employer, P159 headquarters location, P571 inception, P26 spouse (both directions), P17 country
of a city. Inferred over two facts (multi-hop): P27 country of citizenship = the country of the
birth city; P17 country of a company = the country of its headquarters city (never of a branch
office's or a visited city's). A label's ``evidence`` lists the sentences of its facts.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from .data.docred import document_to_docred, write_docred
from .data.document import Document, Entity, Label, Mention

__all__ = [
    "RELATIONS",
    "SYNTHETIC_ENTITY_COUNTS",
    "corpus_stats",
    "generate",
    "generate_documents",
    "synthetic_document",
    "synthetic_documents",
    "to_text_record",
    "vocabulary_words",
]
SYNTHETIC_ENTITY_COUNTS = (1, 2, 19, 43, 100)  # the parity grid: entity counts per document

logger = logging.getLogger("docunet_rt")

# fmt: off
RELATIONS = {
    "P17": "country", "P19": "place of birth", "P26": "spouse", "P27": "country of citizenship",
    "P108": "employer", "P159": "headquarters location", "P569": "date of birth", "P571": "inception",
}
GAZETTEER = {  # country -> cities
    "France": "Lyon,Marseille,Toulouse,Nantes,Bordeaux", "Italy": "Milan,Turin,Naples,Florence,Bologna",
    "Germany": "Hamburg,Munich,Cologne,Leipzig,Dresden", "Norway": "Oslo,Bergen,Trondheim,Stavanger",
    "Spain": "Seville,Valencia,Bilbao,Malaga,Zaragoza", "Portugal": "Porto,Lisbon,Braga,Coimbra",
    "Sweden": "Stockholm,Gothenburg,Malmo,Uppsala", "Poland": "Warsaw,Krakow,Gdansk,Poznan,Wroclaw",
    "Japan": "Osaka,Kyoto,Sapporo,Nagoya,Kobe", "Kenya": "Nairobi,Mombasa,Kisumu,Nakuru",
    "Brazil": "Recife,Curitiba,Fortaleza,Manaus,Belo Horizonte", "Egypt": "Cairo,Alexandria,Luxor,Aswan",
    "Canada": "Toronto,Montreal,Calgary,Winnipeg,Halifax", "South Korea": "Seoul,Busan,Incheon,Daegu",
    "Chile": "Valparaiso,Concepcion,Antofagasta,Temuco",
    "New Zealand": "Auckland,Wellington,Christchurch,Dunedin",
}
# fmt: on

FIRST = (
    "Anna Bruno Carla David Elena Felix Greta Hugo Irene Jonas Karin Lukas Maria Nils Olga Pablo "
    "Rosa Stefan Tara Victor Wanda Yusuf Zoe Adrian Bianca Colin Daria Emil Fiona Gustav Helga "
    "Ivan Julia Kevin Lena Marco Nora Oscar Paula Quentin Rita Simon Tomas Ursula Vera Walter"
).split()
SURNAMES = (
    "Abbott Baranov Castell Dufresne Eriksen Falk Gallo Hartmann Ibsen Jansen Keller Lindqvist "
    "Moreau Novak Okafor Petrov Quist Rinaldi Sandoval Takeda Ulrich Varga Weber Yilmaz Zeller "
    "Almeida Becker Costa Delgado Engel Ferreira Grimaldi Holm Ivanova Jovanovic Kowalski Larsen "
    "Marchetti Nakamura Olsen Pereira Romero Schulz Tanaka Vidal Wagner Brandt Moretti Haddad Mensah"
).split()
CITIES = {city: country for country, cs in GAZETTEER.items() for city in cs.split(",")}
ORG_PREFIX = (
    "Northwind Bluepeak Redstone Silverline Greenfield Ironbridge Suncrest Stormgate Oakhurst "
    "Brightwater Clearview Highmoor Lakeshore Goldleaf Westbrook Eastwood Starling Copperfield "
    "Riverton Pinecrest Blackrock Whitehall Amberline Frostvale Kingsford Maplewood Stonebridge"
).split()
ORG_SUFFIX = (
    "Systems Media Group Bank Motors Press Labs Foods Energy Airlines Pharma Robotics Textiles "
    "Insurance Shipping"
).split()
# fmt: off
FILLERS = {
    "job": "engineer chemist lawyer architect journalist economist designer pilot accountant "
    "physician teacher translator geologist photographer",
    "subject": "physics law history chemistry economics architecture music mathematics biology",
    "adj": "busy quiet historic coastal large small", "dir": "north south east west",
    "product": "solar panels|medical devices|school books|electric buses|river ferries|frozen meals",
    "market": "software energy banking publishing transport food",
    "work": "bridge designs|investigative reports|a popular textbook|research on rivers|new vaccines",
    "hobby": "hiking|sailing|chess|painting|gardening|playing the piano",
    "size": "half a million|two million|ninety thousand|one million",
}
# fmt: on
MONTHS = (
    "January February March April May June July August September October November December"
).split()
_CHOICES = {k: v.split("|") if "|" in v else v.split() for k, v in FILLERS.items()}
_SLOT = re.compile(r"(\{\w+\})")
_FILL = re.compile(r"<(\w+)>")
_AN = re.compile(r"\ba ([aeiou])")
MAX_SENTS, MAX_ENTS = 10, 12

# Sentence templates: ``{slot}`` = an entity, ``<filler>`` = a word from FILLERS, ``PLACE`` = a
# birth city, optionally followed by its country. Alternatives are separated by ``|``.
# fmt: off
T = {
    "birth": "{p} ( born {d} in PLACE ) is a <job> known for <work> and for teaching young <job>s .|"
    "{p} was born on {d} in PLACE , where the family ran a small shop near the station .|"
    "{p} is a <job> who was born in PLACE on {d} and grew up with three siblings .|"
    "Born in PLACE on {d} , {p} became a <job> after studying <subject> at a large university .",
    "intro": "{p} , born on {d} , is a <job> known for <work> and for a long public career .|"
    "{p} is a <job> born on {d} who studied <subject> at a public university .",
    "birthplace": "{p} was born in {c} and later studied <subject> at a local college .|"
    "The birthplace of {p} is {c} , where the family still lives in an old house .|"
    "{p} is a native of {c} and moved away after finishing school .",
    "located": "{c} is a <adj> city in {k} with a long history of trade .|"
    "{c} is located in {k} and has a well known university .|{c} is a <adj> city in the <dir> of {k} .|"
    "The city of {c} lies in {k} , not far from the mountains .|"
    "{c} , a city in {k} , is home to about <size> people .",
    "employer": "{p} works for {o} as a <job> and travels often for work .|"
    "{p} has been a senior <job> at {o} for many years .|"
    "{o} employs {p} as a <job> in its main research team .|"
    "Today {p} works at {o} , leading a small team of <job>s .",
    "hq_founded": "{o} was founded in {y} and is headquartered in {c} , where most staff work .|"
    "Founded in {y} , {o} has its headquarters in {c} and makes <product> .",
    "hq": "{o} is headquartered in {c} and makes <product> for customers across the region .|"
    "{o} has its headquarters in {c} and employs several hundred people .|"
    "The headquarters of {o} are located in {c} , near the old harbour .",
    "founded": "{o} was founded in {y} by a group of young <job>s .|"
    "{o} was established in {y} and grew quickly in the following decades .",
    "wed_year": "In {y} , {p} married {s} in a small ceremony .|"
    "{p} and {s} have been married since {y} and live near the river .",
    "wed": "{p} is married to {s} , a <job> with a passion for <hobby> .|"
    "{s} , the spouse of {p} , works as a <job> .",
    "s_birth": "{s} was born in PLACE and trained as a <job> .|"
    "{s} is a native of PLACE and speaks several languages .",
    "visit": "{p} once spent a summer in {c} working on <work> .|"
    "{p} travelled to {c} for a conference on <subject> .|{p} gave a lecture on <subject> in {c} last spring .",
    "office": "{o} also runs a small office in {c} with a dozen employees .|"
    "{o} opened a sales office in {c} to sell <product> .",
    "rival": "{o} competes with {x} in the <market> market .|{x} is the main rival of {o} in the <market> market .",
    "colleague": "{q} , a colleague of {p} , also works for {o} .|"
    "{p} shares an office with {q} , who also works for {o} .",
    "met": "{p} met the <job> {q} at a meeting on <subject> .|"
    "{p} once wrote a short book on <subject> together with {q} .",
    "moved": "{p} later moved to {k} to work on <work> .|In later years {p} moved to {k} for a new project .",
    "hobby": "In free time {p} enjoys <hobby> with old friends .|{p} is also known for a love of <hobby> .",
}
# fmt: on
_T = {k: v.split("|") for k, v in T.items()}


class _Fact:
    """One sentence: a template with ``{slot}`` entity placeholders (fillers already chosen)."""

    __slots__ = ("tpl", "slots", "sid")

    def __init__(self, tpl: str, slots: dict[str, str]) -> None:
        self.tpl, self.slots, self.sid = tpl, slots, -1


class _Ent:
    __slots__ = ("type", "full", "short", "mentions")

    def __init__(self, etype: str, full: str, short: str | None = None) -> None:
        self.type, self.full, self.short = etype, full, short
        self.mentions: list[Mention] = []


class _Builder:
    """Builds one document: entities by key, groups of facts, labels tied to their facts."""

    def __init__(self, rng: random.Random, used_names: set[str]) -> None:
        self.rng = rng
        self.used_names = used_names  # main persons' full names across the corpus (titles)
        self.ents: dict[str, _Ent] = {}
        self.words: set[str] = set()  # first names, surnames, org prefixes used in this doc
        self.groups: list[list[_Fact]] = []
        self.pending: list[tuple[str, _Fact]] = []  # (city key, located fact) to place
        self.located: dict[str, list[_Fact]] = {}  # city key -> evidence of its country
        self.country: dict[str, str] = {}  # city key -> country key
        self.labels: list[tuple[str, str, str, list[_Fact]]] = []

    # -- entities --------------------------------------------------------------------------------
    def person(self, key: str, main: bool = False) -> str:
        rng = self.rng
        for _ in range(200):
            first, last = rng.choice(FIRST), rng.choice(SURNAMES)
            full = f"{first} {last}"
            if first not in self.words and last not in self.words:
                if not (main and full in self.used_names):
                    break
        if main:
            self.used_names.add(full)
        self.words |= {first, last}
        self.ents[key] = _Ent("PER", full, last)
        return key

    def org(self, key: str) -> str:
        prefix = self.rng.choice([p for p in ORG_PREFIX if p not in self.words])
        self.words.add(prefix)
        self.ents[key] = _Ent("ORG", f"{prefix} {self.rng.choice(ORG_SUFFIX)}", prefix)
        return key

    def date(self, key: str) -> str:
        r = self.rng
        day, month, year = r.randint(1, 28), r.choice(MONTHS), r.randint(1940, 1995)
        self.ents[key] = _Ent("TIME", f"{day} {month} {year}")
        return key

    def year(self, key: str, lo: int, hi: int) -> str:
        used = {e.full for e in self.ents.values() if e.type == "TIME"}
        y = str(self.rng.choice([y for y in range(lo, hi) if str(y) not in used]))
        self.ents[key] = _Ent("TIME", y)
        return key

    def city(self, reuse: float = 0.0) -> str:
        """A city key (its country entity made too); an already used city with prob ``reuse``."""
        rng = self.rng
        have = [k for k in self.ents if k.startswith("c:")]
        if have and rng.random() < reuse:
            return rng.choice(have)
        countries = [k[2:] for k in self.ents if k.startswith("k:")]
        country = rng.choice(countries if countries and rng.random() < 0.3 else list(GAZETTEER))
        free = [c for c in GAZETTEER[country].split(",") if f"c:{c}" not in self.ents]
        name = rng.choice(free or [c for c in CITIES if f"c:{c}" not in self.ents])
        key, kkey = f"c:{name}", f"k:{CITIES[name]}"
        self.ents[key] = _Ent("LOC", name)
        self.ents.setdefault(kkey, _Ent("LOC", CITIES[name]))
        self.country[key] = kkey
        return key

    # -- facts and labels ------------------------------------------------------------------------
    def fact(self, kind: str, place: str = "{c}", anaphor: bool = False, **slots: str) -> _Fact:
        """A sentence of template ``kind``; ``anaphor``: "the company" stands for ``{o}``."""
        tpl = self.rng.choice(_T[kind]).replace("PLACE", place)
        tpl = _AN.sub(r"an \1", _FILL.sub(lambda m: self.rng.choice(_CHOICES[m.group(1)]), tpl))
        if anaphor:
            tpl = tpl.replace("{o}", "the company")
            tpl = tpl[0].upper() + tpl[1:]
            slots.pop("o")
        return _Fact(tpl, slots)

    def label(self, h: str, t: str, r: str, *facts: _Fact) -> None:
        self.labels.append((h, t, r, list(facts)))

    def locate(self, c: str, inline: _Fact | None = None) -> list[_Fact]:
        """Evidence that city ``c`` lies in its country: ``inline`` or a (pending) sentence."""
        if c not in self.located:
            f = inline or self.fact("located", c=c, k=self.country[c])
            if inline is None:
                self.pending.append((c, f))
            self.located[c] = [f]
            self.label(c, self.country[c], "P17", f)
        return self.located[c]

    def place(self, c: str, prob: float) -> tuple[str, dict[str, str]]:
        """How a birth city is written: ``{c}`` or, for a new city with ``prob``, ``{c} , {k}``."""
        if c not in self.located and self.rng.random() < prob:
            return "{c} , {k}", {"c": c, "k": self.country[c]}
        return "{c}", {"c": c}

    def n_sents(self) -> int:
        return sum(map(len, self.groups)) + len(self.pending)

    # -- rendering -------------------------------------------------------------------------------
    def render(self, title: str) -> Document:
        rng = self.rng
        rest = self.groups[1:]
        rng.shuffle(rest)
        order = [f for g in [self.groups[0], *rest] for f in g]
        for c, f in self.pending:  # after the city's first mention, anywhere later
            first = next(i for i, x in enumerate(order) if c in x.slots.values())
            order.insert(rng.randint(first + 1, len(order)), f)
        sentences: list[list[str]] = []
        seen: set[str] = set()
        for sid, f in enumerate(order):
            f.sid = sid
            toks: list[str] = []
            for piece in _SLOT.split(f.tpl):
                if not (piece.startswith("{") and piece.endswith("}")):
                    toks.extend(piece.split())
                    continue
                key = f.slots[piece[1:-1]]
                e = self.ents[key]
                # Persons: surname after the first mention; companies: short name 60% of the time.
                short = e.short is not None and key in seen
                text = e.short if short and (e.type == "PER" or rng.random() < 0.6) else e.full
                assert text is not None
                words = text.split()
                e.mentions.append(Mention(sid, len(toks), len(toks) + len(words), text))
                toks.extend(words)
                seen.add(key)
            sentences.append(toks)
        keys = [k for k in self.ents if self.ents[k].mentions]
        keys.sort(key=lambda k: (self.ents[k].mentions[0].sent_id, self.ents[k].mentions[0].start))
        index = {k: i for i, k in enumerate(keys)}
        entities = [Entity(e.mentions, e.type, e.full) for e in (self.ents[k] for k in keys)]
        labels = {Label(index[h], index[t], r, tuple(sorted({f.sid for f in fs}))) for h, t, r, fs in self.labels}  # fmt: skip
        labs = sorted(labels, key=lambda x: (x.head, x.tail, x.relation))
        doc = Document(id=title, sentences=sentences, entities=entities, labels=labs, title=title)
        doc.validate()
        return doc


def _core(b: _Builder) -> None:
    rng = b.rng
    p, d, c = b.person("A", main=True), b.date("A.d"), b.city()
    k = b.country[c]
    if rng.random() < 0.6:  # date and place of birth in one sentence
        place, slots = b.place(c, 0.3)
        intro = birth = b.fact("birth", place, p=p, d=d, **slots)
        b.groups.append([intro])
    else:
        intro, birth = b.fact("intro", p=p, d=d), b.fact("birthplace", p=p, c=c)
        b.groups += [[intro], [birth]]
    b.locate(c, birth if "k" in birth.slots else None)
    b.label(p, d, "P569", intro)
    b.label(p, c, "P19", birth)
    b.label(p, k, "P27", birth, *b.located[c])

    o = b.org("O")
    hq_city = c if rng.random() < 0.15 else b.city()
    y = b.year("O.y", 1850, 2010) if rng.random() < 0.6 else None
    kinds = ["employer", "hq_founded" if y and rng.random() < 0.5 else "hq"]
    if y and kinds[1] == "hq":
        kinds.append("founded")
    rng.shuffle(kinds)
    group = []
    for i, kind in enumerate(kinds):  # after the first, "the company" may stand for {o}
        ana = i > 0 and kind != "employer" and rng.random() < 0.35
        if kind == "employer":
            f = b.fact(kind, p=p, o=o)
            b.label(p, o, "P108", f)
        elif kind == "founded":
            f = b.fact(kind, anaphor=ana, o=o, y=y)
            b.label(o, y, "P571", f)
        else:
            f = b.fact(kind, anaphor=ana, o=o, c=hq_city, **({"y": y} if "founded" in kind else {}))
            b.label(o, hq_city, "P159", f)
            b.label(o, b.country[hq_city], "P17", f, *b.locate(hq_city))
            if kind == "hq_founded":
                b.label(o, y, "P571", f)
        group.append(f)
    b.groups.append(group)


def _spouse(b: _Builder) -> None:
    room = len(b.ents) + 4 <= MAX_ENTS  # for a wedding year besides spouse, city and country
    s = b.person("S")
    if room and b.rng.random() < 0.4:
        wed = b.fact("wed_year", p="A", s=s, y=b.year("S.y", 1965, 2020))
    else:
        wed = b.fact("wed", p="A", s=s)
    b.label("A", s, "P26", wed)
    b.label(s, "A", "P26", wed)
    c = b.city(reuse=0.2)
    place, slots = b.place(c, 0.3)
    birth = b.fact("s_birth", place, s=s, **slots)
    b.label(s, c, "P19", birth)
    b.label(s, b.country[c], "P27", birth, *b.locate(c, birth if "k" in slots else None))
    b.groups.append([wed, birth])


def _elsewhere(b: _Builder, kind: str) -> None:
    """A city the person visited or where the company has an office: located, else unrelated."""
    c = b.city()
    b.groups.append([b.fact(kind, p="A", o="O", c=c)])
    b.locate(c)


def _acquaintance(b: _Builder) -> None:
    q = b.person("Q")
    if b.rng.random() < 0.5:  # a colleague: a P108 label of its own
        f = b.fact("colleague", q=q, p="A", o="O")
        b.label(q, "O", "P108", f)
    else:
        f = b.fact("met", p="A", q=q)
    b.groups.append([f])


def _moved(b: _Builder) -> None:
    name = b.rng.choice([k for k in GAZETTEER if f"k:{k}" not in b.ents])
    b.ents[f"k:{name}"] = _Ent("LOC", name)
    b.groups.append([b.fact("moved", p="A", k=f"k:{name}")])


# (builder, worst-case new entities, worst-case new sentences)
_OPTIONAL = [
    (lambda b: _elsewhere(b, "visit"), 2, 2),
    (lambda b: _elsewhere(b, "office"), 2, 2),
    (lambda b: b.groups.append([b.fact("rival", o="O", x=b.org("O2"))]), 1, 1),
    (_acquaintance, 1, 1),
    (_moved, 1, 1),
]


def _document(rng: random.Random, used_names: set[str], i: int) -> Document:
    b = _Builder(rng, used_names)
    _core(b)
    target = rng.randint(8, MAX_ENTS)
    opts = list(_OPTIONAL)
    rng.shuffle(opts)
    if rng.random() < 0.5:  # a spouse first, where it fits (about a quarter of documents)
        opts.insert(0, (_spouse, 3, 3))
    for fn, n_ent, n_sent in opts:
        if len(b.ents) + n_ent <= target and b.n_sents() + n_sent <= MAX_SENTS:
            fn(b)
    while b.n_sents() < 5:
        b.groups.append([b.fact("hobby", p="A")])
    title = b.ents["A"].full
    return b.render(title if len(used_names) > i else f"{title} ({i})")  # names ran out


def generate_documents(n: int, seed: int = 13) -> list[Document]:
    """``n`` labelled documents, the same for the same ``seed``; titles (= ids) are distinct."""
    if n < 0:
        raise ValueError(f"the number of documents must be >= 0, got {n}")
    rng, used = random.Random(seed), set()
    return [_document(rng, used, i) for i in range(n)]


def to_text_record(doc: Document, meta: Any = None) -> dict[str, Any]:
    """``doc`` as a plain-text extract input line: ``{id, text, entities, meta?}`` with character
    offsets (no space before ``. , )`` or after ``(``); ``text_to_document`` gives ``doc`` back."""
    text, spans, prev = "", [], ""
    for sent in doc.sentences:
        row = []
        for tok in sent:
            text += " " if text and tok not in ".,)" and prev != "(" else ""
            row.append((len(text), len(text) + len(tok)))
            text, prev = text + tok, tok
        spans.append(row)

    def offsets(m: Mention) -> dict[str, int]:
        return {"start": spans[m.sent_id][m.start][0], "end": spans[m.sent_id][m.end - 1][1]}

    ents = [{"mentions": [offsets(m) for m in e.mentions], "type": e.type, "name": e.name} for e in doc.entities]  # fmt: skip
    rec: dict[str, Any] = {"id": doc.id, "text": text, "entities": ents}
    return rec if meta is None else {**rec, "meta": meta}


def generate(
    out_dir: str | PathLike[str],
    *,
    docs: int = 500,
    seed: int = 13,
    dev_fraction: float = 0.15,
    test_fraction: float = 0.15,
    text_fraction: float = 0.2,
) -> dict[str, int]:
    """Write ``train.json``, ``dev.json``, ``test.json`` (DocRED), ``relations.json`` and
    ``corpus.jsonl`` (the test documents as extract input, ``meta = {"split": "test", "n": i}``;
    a ``text_fraction`` of them as plain text with character offsets) into ``out_dir``.

    Returns the counts: ``train``, ``dev``, ``test``, ``text`` (plain-text lines in the corpus).
    """
    if docs < 3:
        raise ValueError(f"--docs must be at least 3 (one document per split), got {docs}")
    fracs = {"dev_fraction": dev_fraction, "test_fraction": test_fraction}
    for name, x in {**fracs, "text_fraction": text_fraction}.items():
        if not 0 <= x <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {x}")
    n_dev, n_test = (max(1, round(docs * x)) for x in fracs.values())
    n_train = docs - n_dev - n_test
    if n_train < 1:
        raise ValueError("dev_fraction + test_fraction leave no training documents")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    all_docs = generate_documents(docs, seed)
    train, dev, test = all_docs[:n_train], all_docs[n_train : n_train + n_dev], all_docs[-n_test:]
    for name, part in (("train", train), ("dev", dev), ("test", test)):
        write_docred(part, out / f"{name}.json", jsonl=False)
    (out / "relations.json").write_text(json.dumps(RELATIONS, indent=2) + "\n")
    lines, n_text = [], 0
    for i, doc in enumerate(test):  # every 1/text_fraction-th document as plain text
        meta = {"split": "test", "n": i}
        if int((i + 1) * text_fraction) > int(i * text_fraction):
            rec, n_text = to_text_record(doc, meta), n_text + 1
        else:
            rec = {"id": doc.id, **document_to_docred(doc), "meta": meta}
            del rec["labels"]  # extract input
        lines.append(json.dumps(rec, ensure_ascii=False))
    (out / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    logger.debug("wrote %d/%d/%d train/dev/test documents to %s", n_train, n_dev, n_test, out)
    return {"train": n_train, "dev": n_dev, "test": n_test, "text": n_text}


def corpus_stats(docs: list[Document]) -> dict[str, float]:
    """Means per document (``tokens``, ``sentences``, ``entities``, ``labels``) and fractions of
    labels: ``cross`` (head and tail share no sentence), ``multi_hop`` (evidence 2+ sentences)."""
    tot = {"tokens": 0, "sentences": 0, "entities": 0, "labels": 0, "cross": 0, "multi_hop": 0}
    for d in docs:
        tot["tokens"] += d.num_tokens
        tot["sentences"] += len(d.sentences)
        tot["entities"] += len(d.entities)
        sents = [{m.sent_id for m in e.mentions} for e in d.entities]
        for x in d.labels or []:
            tot["labels"] += 1
            tot["cross"] += not (sents[x.head] & sents[x.tail])
            tot["multi_hop"] += len(x.evidence) >= 2
    n, m = max(1, len(docs)), max(1, tot["labels"])
    return {"docs": len(docs), **{k: v / (m if k in ("cross", "multi_hop") else n) for k, v in tot.items()}}  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Random probe documents (parity, tracing, benchmark scaling grids): any tokenizer's vocabulary
# ------------------------------------------------------------------------------------------------


def vocabulary_words(tok: Any, n: int = 200) -> list[str]:
    """Plain alphabetic vocabulary entries of a TokenizerInfo's tokenizer (one wordpiece each)."""
    vocab = tok.tokenizer.get_vocab()
    words = sorted(w for w in vocab if w.isalpha() and w.isascii() and len(w) > 1)
    if not words:
        words = sorted(w for w in vocab if w.isalnum() and not w.startswith("##")) or ["x"]
    step = max(1, len(words) // n)
    return words[::step][:n]


def synthetic_document(
    words: Sequence[str],
    n_tokens: int,
    n_entities: int,
    *,
    seed: int = 0,
    doc_id: str = "synthetic",
    max_mentions: int = 3,
) -> Document:
    """A random Document of ~n_tokens words (12-word sentences) with n_entities entities of
    1..max_mentions mentions each, spread over the whole text."""
    import numpy as np  # the probe documents have always come from numpy's generator

    rng = np.random.default_rng(seed)
    sent_len = 12
    n_sent = max(1, -(-n_tokens // sent_len))
    sents = [
        [str(words[int(i)]) for i in rng.integers(len(words), size=sent_len)] for _ in range(n_sent)
    ]
    ents = []
    for e in range(n_entities):
        ms = set()
        for _ in range(int(rng.integers(1, max_mentions + 1))):
            s, st = int(rng.integers(n_sent)), int(rng.integers(sent_len - 1))
            ms.add(Mention(s, st, st + int(rng.integers(1, 3))))
        ents.append(Entity(sorted(ms, key=lambda m: (m.sent_id, m.start)), type="T", name=f"e{e}"))
    return Document(id=doc_id, sentences=sents, entities=ents)


def synthetic_documents(
    tok: Any,
    max_length: int,
    *,
    entity_counts: Sequence[int] = SYNTHETIC_ENTITY_COUNTS,
    seed: int = 0,
) -> list[Document]:
    """Documents covering the parity grid: for every entity count a short one (one window) and a
    long one (about 2.5 windows of ``max_length``, i.e. > 512 wordpieces for a 512 encoder)."""
    words = vocabulary_words(tok)
    docs = []
    for i, n in enumerate(entity_counts):
        short = max(8, min(max_length // 2, 4 * n))
        long = int(2.5 * max_length) + 3 * n
        for j, length in enumerate((short, long)):
            docs.append(
                synthetic_document(
                    words, length, n, seed=seed + 2 * i + j, doc_id=f"syn-e{n}-{length}"
                )
            )
    return docs
