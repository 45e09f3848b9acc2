"""Mentions → entities: normalisation, abbreviations, the concept lexicon, coreference by name,
and the cluster scores, on hand-made cases."""

from __future__ import annotations

import pytest

from docunet_rt.grouping import (
    Lexicon,
    abbreviations,
    cluster_scores,
    group_by_concept,
    group_by_name,
    initials,
    normalize,
    variant,
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Beta-Blockers", "beta blocker"),
        ("beta blocker", "beta blocker"),
        ("ﬁbrosis", "fibrosis"),  # NFKC ligature
        ("Diseases", "disease"),
        ("arrhythmias", "arrhythmia"),
        ("classes", "class"),
        ("hepatitis", "hepatitis"),
        ("  (cocaine) ", "cocaine"),
        ("non\u2013steroidal", "non steroidal"),  # en dash
    ],
)
def test_normalize(text, want):
    assert normalize(text) == want


def test_abbreviations_defined_in_the_text():
    text = (
        "The Food and Drug Administration (FDA) approved it; blood pressure (BP) rose, "
        "nitric oxide (NO) fell (p < 0.05) (see Table 2)."
    )
    assert abbreviations(text) == {
        "FDA": "Food and Drug Administration",
        "BP": "blood pressure",
        "NO": "nitric oxide",
    }
    assert initials("Food and Drug Administration") == "FDA"


def test_concept_grouping_links_by_lexicon_and_abbreviation():
    lex = Lexicon.build(
        [("cocaine", "Chemical", "D003042"), ("Cocaine", "Chemical", "D003042"),
         ("myocardial infarction", "Disease", "D009203"), ("MI", "Disease", "D999999"),
         ("seizures", "Disease", "D012640"), ("x", "Disease", "-1")]
    )  # fmt: skip
    text = "Cocaine-induced myocardial infarction (MI) and seizures; MI recurred. Cocaine again."
    mentions = [("Cocaine", "Chemical"), ("myocardial infarction", "Disease"), ("MI", "Disease"),
                ("seizure", "Disease"), ("MI", "Disease"), ("cocaine", "Chemical"),
                ("tremor", "Disease"), ("Tremors", "Disease")]  # fmt: skip
    groups = {(g.type, g.id): g.mentions for g in group_by_concept(mentions, text, lex)}
    assert groups[("Chemical", "D003042")] == [0, 5]
    # the lexicon knows "MI" under another id, but the lexicon comes first: the form wins
    assert groups[("Disease", "D009203")] == [1]
    assert groups[("Disease", "D999999")] == [2, 4]
    assert groups[("Disease", "D012640")] == [3]  # plural/singular normalised
    assert groups[("Disease", None)] == [6, 7]  # unlinked: grouped by normalised form
    assert len(lex) == 4  # "-1" ids are not concepts


def test_an_abbreviation_unknown_to_the_lexicon_takes_its_long_forms_id():
    lex = Lexicon.build([("nitric oxide", "Chemical", "D009569")])
    text = "Nitric oxide (NO) synthase; NO levels."
    [g] = group_by_concept([("Nitric oxide", "Chemical"), ("NO", "Chemical")], text, lex)
    assert (g.id, g.mentions) == ("D009569", [0, 1])


def test_spelling_variants_share_a_key():
    assert variant(normalize("Angio-oedema")) == variant(normalize("angioedema")) == "angioedema"
    assert variant(normalize("ethinyl oestradiol")) == variant("ethinylestradiol")
    assert variant(normalize("haemorrhages")) == variant("hemorrhage")
    assert variant("diarrhoea") == "diarrhea" and variant("foetal") == "fetal"
    assert variant("angioedema") == "angioedema" and variant("shoe") == "shoe"
    assert variant("aerosol") == "aerosol"  # a word-initial ae stays (oe does not: oedema)


LEX = [("angioedema", "Disease", "D000799"), ("heroin", "Chemical", "D003932"),
       ("rifampin", "Chemical", "D012293"), ("ischemia", "Disease", "D007511"),
       ("cocaine", "Chemical", "D003042")]  # fmt: skip


@pytest.mark.parametrize(
    ("surface", "etype", "linking", "want"),
    [
        ("Angio-oedema", "Disease", "exact", None),
        ("Angio-oedema", "Disease", "variants", "D000799"),
        ("heroine", "Chemical", "variants", None),
        ("heroine", "Chemical", "fuzzy", "D003932"),
        ("rifampicin", "Chemical", "fuzzy", "D012293"),
        ("ischemic", "Disease", "fuzzy", "D007511"),
        ("ischemic", "Chemical", "fuzzy", None),  # only forms of the mention's type
        ("thrombosis", "Disease", "fuzzy", None),  # nothing near enough
        ("cocaine", "Chemical", "exact", "D003042"),
    ],
)
def test_link_modes_are_nested(surface, etype, linking, want):
    lex = Lexicon.build(LEX)
    assert lex.link(surface, etype, linking, 0.75) == want


def test_fuzzy_similarity_is_a_threshold_and_indexes_follow_additions():
    lex = Lexicon.build(LEX)
    assert lex.link("rifampicin", "Chemical", "fuzzy", 0.99) is None
    assert lex.link("rifampicine", "Chemical", "fuzzy", 0.75) == "D012293"
    lex.add({("Chemical", "rifampicine"): "D000001"})  # built indexes must see later entries
    assert lex.link("rifampicines", "Chemical", "fuzzy", 0.75) == "D000001"


def test_concept_grouping_links_variants_only_when_asked():
    lex = Lexicon.build(LEX)
    text = "Angio-oedema after cocaine; ischemic changes."
    mentions = [("Angio-oedema", "Disease"), ("cocaine", "Chemical"), ("ischemic", "Disease")]
    exact = {g.name: g.id for g in group_by_concept(mentions, text, lex)}
    assert exact == {"Angio-oedema": None, "cocaine": "D003042", "ischemic": None}
    fuzzy = {g.name: g.id for g in group_by_concept(mentions, text, lex, "fuzzy", 0.75)}
    assert fuzzy == {"Angio-oedema": "D000799", "cocaine": "D003042", "ischemic": "D007511"}


def test_coreference_by_name_acronym_surname_and_type():
    mentions = [("Barack Obama", "PER"), ("United Nations", "ORG"), ("Obama", "PER"),
                ("UN", "ORG"), ("Michelle Obama", "PER"), ("Obama", "PER"),
                ("Paris", "LOC"), ("Paris", "PER"), ("U.N.", "ORG"), ("Barack", "PER")]  # fmt: skip
    got = [g.mentions for g in group_by_name(mentions)]
    # "Obama" after "Michelle Obama" goes to the nearest full name; "Paris" the person is not
    # "Paris" the city; "U.N." normalises to "u.n" and is not an acronym match (kept apart)
    assert got == [[0, 2, 9], [1, 3], [4, 5], [6], [7], [8]]


def test_cluster_scores_by_hand():
    gold = [[0, 1], [2], [3, 4, 5]]
    pred = [[0, 1], [2, 3], [4, 5]]
    s = cluster_scores(pred, gold)
    assert s["exact_precision"] == pytest.approx(1 / 3) and s["exact_recall"] == pytest.approx(
        1 / 3
    )
    # B-cubed precision: mentions 0,1: 1; 2: 1/2; 3: 1/2; 4,5: 1 → 5/6
    assert s["b3_precision"] == pytest.approx(5 / 6)
    # recall: 0,1: 1; 2: 1; 3: 1/3; 4,5: 2/3 → (1+1+1+1/3+2/3+2/3)/6
    assert s["b3_recall"] == pytest.approx((3 + 1 / 3 + 2 / 3 + 2 / 3) / 6)
    assert cluster_scores(gold, gold)["exact_f1"] == 1.0 == cluster_scores(gold, gold)["b3_f1"]
