"""Mentions → entities, for text whose entities the toolkit finds itself (stdlib only).

Two ways, one per domain (``ner.recognize.Recognizer`` feeds the tagger's mentions here):

* **Concept ids** (biomedical): a :class:`Lexicon` built from training annotations maps a
  normalised surface form (case, Unicode, hyphen/space, plural) and type to a concept id (MeSH
  for CDR); an abbreviation defined in the document ("long form (SHORT)") links SHORT to the
  long form's id; optionally a spelling variant or the nearest lexicon form (character trigrams)
  links a form the lexicon lacks (``Lexicon.link``). Mentions with the same id are one entity;
  unlinked mentions group by their normalised surface form (an abbreviation by its long form's).
* **General text**: coreference by name (:func:`group_by_name`): a mention joins an earlier
  entity of the same type when their normalised names are equal, when it is the acronym of the
  entity's name or its defined abbreviation, or (persons) when it is the surname or the first
  name of a full name mentioned before.

Mentions are ``(text, type)`` in document order (character spans are the caller's business).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .ner.scoring import prf

PERSON_TYPES = frozenset({"PER", "PERSON"})
_DASHES = re.compile(r"[\u002d\u2010-\u2015\u2212_/]+")
_SPACE = re.compile(r"\s+")
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_ABBREV = re.compile(r"\(\s*([^()]{1,12}?)\s*\)")


def normalize(text: str) -> str:
    """NFKC, case-folded, hyphens/dashes/slashes as spaces, one space between words, no
    punctuation at the ends, and a plural last word made singular (…ies → …y, …es/…s)."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _SPACE.sub(" ", _DASHES.sub(" ", t)).strip()
    t = _EDGE.sub("", t)
    words = t.split(" ")
    last = words[-1]
    if len(last) > 4 and last.endswith("ies"):
        last = last[:-3] + "y"
    elif len(last) > 4 and last.endswith(("sses", "xes", "zes", "ches", "shes")):
        last = last[:-2]
    elif len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
        last = last[:-1]
    return " ".join([*words[:-1], last])


def initials(name: str) -> str:
    """Upper-case initials of a name's words ("Food and Drug Administration" → "FDA"; small
    words count when they are capitalised)."""
    words = re.findall(r"[A-Za-z][\w']*", name)
    return "".join(w[0] for w in words if w[0].isupper() or len(words) <= 2).upper()


def abbreviations(text: str) -> dict[str, str]:
    """SHORT → long form for every "long form (SHORT)" in ``text``: the letters of SHORT matched
    right to left against the starts of the words before the parenthesis (a simplified
    Schwartz-Hearst)."""
    out: dict[str, str] = {}
    for m in _ABBREV.finditer(text):
        short = m.group(1).strip()
        letters = [c.lower() for c in short if c.isalnum()]
        if not 2 <= len(letters) <= 10 or not any(c.isalpha() for c in short) or " " in short:
            continue
        words = re.findall(r"[\w'-]+", text[: m.start()])[-(len(letters) + 3) :]
        long = _match_long_form(letters, words)
        if long:
            out.setdefault(short, long)
    return out


def _match_long_form(letters: list[str], words: list[str]) -> str | None:
    """The shortest run of trailing ``words`` whose word starts spell ``letters`` in order
    (other words, like "and" or "of", may sit between); the last word must start the match."""
    i = len(letters) - 1
    for j in range(len(words) - 1, -1, -1):
        if words[j][0].lower() == letters[i]:
            i -= 1
            if i < 0:
                return " ".join(words[j:])
        elif j == len(words) - 1:
            return None
    return None


LINKINGS = ("exact", "variants", "fuzzy")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# British spellings of medical words: haem-, anaemia, ischaemia; oedema, oestradiol, oesophagus,
# diarrhoea, dyspnoea, foetal, coeliac (an "oe" elsewhere, as in angioedema, stays)
_DIGRAPHS = re.compile(r"(?<=[a-z])ae|\boe|(?<=rrh|.pn)oe|(?<=\bf)oe(?=t)|(?<=\bc)oe(?=l)")


def variant(form: str) -> str:
    """A coarser key of a normalised form for spelling variants: no spaces, hyphens or other
    punctuation, and the British ``ae``/``oe`` of medical words as ``e`` ("angio-oedema" and
    "angioedema", "ethinyl oestradiol" and "ethinylestradiol" share one)."""
    return _NOT_ALNUM.sub("", _DIGRAPHS.sub("e", form))


@dataclass
class Lexicon:
    """Normalised surface form and type → concept id, from annotated training mentions.

    Three ways to link a surface form (``link``), each a superset of the one before:
    ``exact`` (its normalised form is a lexicon form), ``variants`` (its :func:`variant` key is
    one; the most frequent id of the forms sharing the key) and ``fuzzy`` (else the lexicon form
    of the same type nearest in character-trigram TF-IDF cosine, when at least ``similarity``).
    The variant and trigram indexes are built on first use."""

    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _variants: dict[tuple[str, str], str] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _trigrams: dict[str, _TrigramIndex] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def build(cls, mentions: Iterable[tuple[str, str, str]]) -> Lexicon:
        """From ``(surface, type, id)``; a form seen with several ids keeps the most frequent."""
        counts: dict[tuple[str, str], Counter[str]] = {}
        for surface, etype, cid in mentions:
            if cid and cid != "-1":
                counts.setdefault((etype, normalize(surface)), Counter())[cid] += 1
        return cls({k: c.most_common(1)[0][0] for k, c in counts.items()})

    def add(self, entries: dict[tuple[str, str], str]) -> None:
        """Add ``(type, normalised form) → id`` entries (the indexes are rebuilt on next use)."""
        self.ids.update(entries)
        self._variants = self._trigrams = None

    def lookup(self, surface: str, etype: str) -> str | None:
        return self.ids.get((etype, normalize(surface)))

    def link(
        self, surface: str, etype: str, linking: str = "exact", similarity: float = 1.0
    ) -> str | None:
        """The concept id of ``surface`` (see the class docstring for ``linking``), or None."""
        form = normalize(surface)
        cid = self.ids.get((etype, form))
        if cid is not None or linking == "exact" or not form:
            return cid
        if self._variants is None:
            by_key: dict[tuple[str, str], Counter[str]] = {}
            for (t, f), i in self.ids.items():
                by_key.setdefault((t, variant(f)), Counter())[i] += 1
            self._variants = {k: c.most_common(1)[0][0] for k, c in by_key.items()}
        cid = self._variants.get((etype, variant(form)))
        if cid is not None or linking == "variants":
            return cid
        if self._trigrams is None:
            forms: dict[str, list[tuple[str, str]]] = {}
            for (t, f), i in self.ids.items():
                forms.setdefault(t, []).append((variant(f), i))
            self._trigrams = {t: _TrigramIndex(rows) for t, rows in forms.items()}
        index = self._trigrams.get(etype)
        hit = index.nearest(variant(form)) if index else None
        return hit[0] if hit and hit[1] >= similarity else None

    def __len__(self) -> int:
        return len(self.ids)


_CACHE_SIZE = 100_000


class _TrigramIndex:
    """Nearest key by cosine of TF-IDF-weighted character trigrams (``#`` marks the ends), over
    an inverted index: a query touches only the keys that share a trigram with it."""

    def __init__(self, rows: Sequence[tuple[str, str]]) -> None:
        self.ids = [cid for _, cid in rows]
        grams = [_trigrams(key) for key, _ in rows]
        df: Counter[str] = Counter(g for c in grams for g in c)
        self.idf = {g: math.log(len(rows) / n) + 1.0 for g, n in df.items()}
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for row, counts in enumerate(grams):
            for g, w in self._unit(counts).items():
                self.postings.setdefault(g, []).append((row, w))
        self._cache: dict[str, tuple[str, float] | None] = {}

    def _unit(self, counts: Counter[str]) -> dict[str, float]:
        v = {g: c * self.idf.get(g, 0.0) for g, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        return {g: x / norm for g, x in v.items() if x} if norm else {}

    def nearest(self, key: str) -> tuple[str, float] | None:
        if key in self._cache:
            return self._cache[key]
        if len(self._cache) >= _CACHE_SIZE:  # a corpus repeats its forms; bounded all the same
            self._cache.clear()
        hit = self._cache[key] = self._search(key)
        return hit

    def _search(self, key: str) -> tuple[str, float] | None:
        scores: dict[int, float] = {}
        for g, w in self._unit(_trigrams(key)).items():
            for row, x in self.postings.get(g, ()):
                scores[row] = scores.get(row, 0.0) + w * x
        if not scores:
            return None
        row = max(scores, key=lambda r: (scores[r], -r))
        return self.ids[row], scores[row]


def _trigrams(key: str) -> Counter[str]:
    s = f"#{key}#"
    return Counter(s[i : i + 3] for i in range(len(s) - 2))


@dataclass
class Group:
    """One entity: indices of its mentions (document order), its type, name and concept id."""

    mentions: list[int]
    type: str
    name: str
    id: str | None = None


def group_by_concept(
    mentions: Sequence[tuple[str, str]],
    text: str,
    lexicon: Lexicon,
    linking: str = "exact",
    similarity: float = 1.0,
) -> list[Group]:
    """Link each mention to a concept id (``Lexicon.link``: the mention, else a defined
    abbreviation's long form; an exact match of either before a variant or fuzzy one) and
    group: one entity per (type, id), unlinked mentions by normalised form."""
    abbrev = abbreviations(text)
    groups: dict[tuple[str, str], Group] = {}
    for i, (surface, etype) in enumerate(mentions):
        long = abbrev.get(surface.strip())
        cid = lexicon.lookup(surface, etype) or (lexicon.lookup(long, etype) if long else None)
        if cid is None and linking != "exact":
            cid = lexicon.link(long or surface, etype, linking, similarity)
        key = (etype, f"id:{cid}" if cid else f"form:{normalize(long or surface)}")
        g = groups.setdefault(key, Group([], etype, surface, cid))
        g.mentions.append(i)
    return list(groups.values())


def group_by_name(mentions: Sequence[tuple[str, str]], text: str = "") -> list[Group]:
    """Coreference by name for general text (see the module docstring)."""
    abbrev = {s: normalize(long) for s, long in abbreviations(text).items()}
    groups: list[Group] = []
    forms: list[set[str]] = []  # per group: every normalised name and alias it answers to
    for i, (surface, etype) in enumerate(mentions):
        n = normalize(surface)
        keys = {n, abbrev.get(surface.strip(), n)}
        hit = next(
            (k for k in range(len(groups) - 1, -1, -1)
             if groups[k].type == etype and (keys & forms[k] or _alias(surface, groups[k], etype))),
            None,
        )  # fmt: skip
        if hit is None:
            groups.append(Group([i], etype, surface))
            forms.append(set(keys))
        else:
            groups[hit].mentions.append(i)
            forms[hit] |= keys
    return groups


def _alias(surface: str, g: Group, etype: str) -> bool:
    s = surface.strip()
    name_words = g.name.split()
    if len(name_words) > 1 and s.isupper() and len(s) >= 2 and initials(g.name) == s:
        return True  # acronym of the name
    if etype in PERSON_TYPES and len(name_words) > 1 and " " not in s:
        return normalize(s) in (normalize(name_words[-1]), normalize(name_words[0]))
    return False


def cluster_scores(
    predicted: Sequence[Sequence[int]], gold: Sequence[Sequence[int]]
) -> dict[str, float]:
    """Exact-cluster P/R/F1 (a predicted entity counts when its mention set equals a gold one)
    and B-cubed P/R/F1, over the mentions of one or more documents (indices must be global)."""
    exact = prf({frozenset(c) for c in predicted}, {frozenset(c) for c in gold})
    of_p = {m: frozenset(c) for c in predicted for m in c}
    of_g = {m: frozenset(c) for c in gold for m in c}
    ms = list(of_g)
    bp = sum(len(of_p[m] & of_g[m]) / len(of_p[m]) for m in ms) / max(1, len(ms))
    br = sum(len(of_p[m] & of_g[m]) / len(of_g[m]) for m in ms) / max(1, len(ms))
    b3 = 2 * bp * br / (bp + br) if bp + br else 0.0
    return {**{f"exact_{k}": v for k, v in exact.items()}, "b3_precision": bp, "b3_recall": br,
            "b3_f1": b3}  # fmt: skip
