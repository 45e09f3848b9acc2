"""The entity tagger (``docunet_rt.ner``): BIO labels and decoding, wordpieces and windows, the
recognizer's records and grouping, training (overfit, resume) and ``train-ner``. Tiny random
models only."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import typer
from conftest import tiny_tokenizer
from safetensors.numpy import load_file
from typer.testing import CliRunner

import docunet_rt.ner.train as ner_train
from docunet_rt.cli.main import app
from docunet_rt.cli.ner_cmd import GROUPINGS as CLI_GROUPINGS
from docunet_rt.data import DataError, Document, Entity, Mention, read_documents
from docunet_rt.data.text import text_to_document
from docunet_rt.features import TokenizerInfo, plan_windows
from docunet_rt.grouping import Lexicon
from docunet_rt.ner.model import IGNORE, TorchTagFn, window_labels
from docunet_rt.ner.recognize import Recognizer, load_lexicon, needs_entities, save_lexicon
from docunet_rt.ner.tagging import (
    GROUPINGS,
    TaggerConfig,
    bio_labels,
    decode_bio,
    decode_logits,
    document_words,
    gold_spans,
    tag_features,
    trim_punctuation,
    window_batch,
    word_logits,
)

TYPES = ["PER", "ORG"]
OUT, B_PER, I_PER, B_ORG, I_ORG = range(5)  # label ids of TaggerConfig(types=TYPES)


@pytest.fixture(scope="module")
def tok() -> TokenizerInfo:
    return TokenizerInfo.from_tokenizer(tiny_tokenizer())


def config(**kw) -> TaggerConfig:
    return TaggerConfig(**{"types": TYPES, "hidden_size": 32, **kw})


class IdTagger:
    """A fake tag function: the logits at each position depend only on the input id there
    (``labels``: word of the tiny vocabulary → label id; anything else is O)."""

    def __init__(self, tok: TokenizerInfo, labels: dict[str, int], num_labels: int = 5) -> None:
        self.table = np.zeros((200, num_labels), dtype=np.float32)
        self.table[:, OUT] = 1.0
        for word, lab in labels.items():
            i = tok.tokenizer.token_to_id(word)
            self.table[i] = 0.0
            self.table[i, lab] = 5.0
        self.calls: list[tuple[int, int]] = []

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        assert input_ids.shape == attention_mask.shape and input_ids.dtype == np.int64
        self.calls.append(input_ids.shape)
        return self.table[input_ids]


# --- BIO labels and decoding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "spans"),
    [
        ([B_PER, B_PER], [(0, 1, "PER"), (1, 2, "PER")]),  # adjacent mentions stay apart
        ([B_PER, I_PER, B_ORG], [(0, 2, "PER"), (2, 3, "ORG")]),
        ([B_PER, I_PER, B_PER, I_PER], [(0, 2, "PER"), (2, 4, "PER")]),
        ([OUT, I_PER, I_PER, OUT], [(1, 3, "PER")]),  # an I- after O starts a span
        ([I_ORG], [(0, 1, "ORG")]),
        ([B_PER, I_PER, I_ORG, I_ORG], [(0, 2, "PER"), (2, 4, "ORG")]),  # type switch inside I-
        ([OUT, OUT, B_ORG, I_ORG], [(2, 4, "ORG")]),  # a span at the end
        ([OUT, OUT], []),
        ([], []),
        ([B_PER, 99, I_PER], [(0, 1, "PER"), (2, 3, "PER")]),  # out-of-range ids read as O
    ],
)
def test_decode_bio(labels, spans):
    assert decode_bio(labels, config()) == spans
    assert decode_bio(np.asarray(labels, dtype=np.int64), config()) == spans


def test_decode_logits_reads_words_without_a_wordpiece_as_o():
    rows = np.zeros((3, 5), dtype=np.float32)
    rows[0, B_ORG] = 2.0
    rows[2, I_ORG] = 2.0  # row 1 is all zeros (no wordpiece): O, so row 2 starts a new span
    assert decode_logits(rows, config()) == [(0, 1, "ORG"), (2, 3, "ORG")]
    assert decode_logits(np.zeros((0, 5), dtype=np.float32), config()) == []


@pytest.mark.parametrize(
    "words, span, expected",
    [
        (["kainic", "acid", "-", "induced"], (0, 3), (0, 2)),  # dangling hyphen
        (["SKF", "-", "82958", "(", "x"], (0, 4), (0, 3)),  # unclosed bracket at the end
        (["(", "LDL", ")"], (0, 3), (0, 3)),  # balanced brackets stay
        (["IL", "(", "6", ")"], (0, 4), (0, 4)),
        ([",", "aspirin", "."], (0, 3), (1, 2)),  # both ends
        (["-", "("], (0, 2), None),  # punctuation only: dropped
        (["(", ")"], (0, 2), None),
    ],
)
def test_trim_punctuation(words, span, expected):
    got = trim_punctuation(words, [(*span, "Chemical")])
    assert got == ([(*expected, "Chemical")] if expected else [])


def test_bio_labels_keep_the_longest_of_overlapping_spans():
    spans = [(1, 2, "ORG"), (0, 3, "PER"), (2, 5, "ORG"), (4, 6, "ORG"), (7, 8, "LOC")]
    # (0,3) and (2,5) are equally long: the first is kept; (1,2) is nested in it; (4,6) only
    # overlapped the dropped (2,5); LOC is not a tagger type
    labels = bio_labels(8, spans, config())
    assert labels.tolist() == [B_PER, I_PER, I_PER, OUT, B_ORG, I_ORG, OUT, OUT]
    assert decode_bio(labels, config()) == [(0, 3, "PER"), (4, 6, "ORG")]
    assert bio_labels(3, [(0, 1, "PER"), (1, 3, "PER")], config()).tolist() == [B_PER, B_PER, I_PER]


def test_gold_spans_and_words_of_a_document():
    doc = Document("d", [["w1", "w2", "w3"], ["w4", "w5"]], [
        Entity([Mention(1, 0, 2, "w4 w5"), Mention(0, 0, 1, "w1")], type="PER"),
        Entity([Mention(0, 1, 3, "w2 w3"), Mention(0, 1, 3, "w2 w3")], type="ORG"),
    ])  # fmt: skip
    assert gold_spans(doc) == [(0, 1, "PER"), (1, 3, "ORG"), (3, 5, "PER")]
    words, where = document_words(doc)
    assert words == ["w1", "w2", "w3", "w4", "w5"]
    assert where == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]


def test_tagger_config_validates_and_round_trips():
    cfg = config(grouping="concept", max_length=16, window_overlap=4)
    assert cfg.labels == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"] and cfg.num_labels == 5
    assert TaggerConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg
    with pytest.raises(ValueError, match="grouping must be one of name|concept"):
        config(grouping="cluster")
    with pytest.raises(ValueError, match="window_overlap"):
        config(max_length=16, window_overlap=14)
    with pytest.raises(ValueError, match="linking must be one of exact|variants|fuzzy, got 'near'"):
        config(linking="near")
    with pytest.raises(ValueError, match=r"link_similarity must be in \(0, 1\]"):
        config(link_similarity=0.0)
    assert TaggerConfig.from_dict({"types": ["PER"]}).linking == "exact"  # older model.json


# --- Wordpieces and windows -----------------------------------------------------------------------

# "w2.w3" and "w5,w6,w7" are one word each but three and five wordpieces
SPLIT_WORDS = ["w1", "w2.w3", "W4", "w5,w6,w7", "w8"]


def test_words_are_labelled_at_their_first_wordpiece(tok):
    cfg = config(max_length=8, window_overlap=2)
    f = tag_features(SPLIT_WORDS, tok, cfg, spans=[(1, 3, "PER"), (3, 4, "ORG")])
    assert len(f.wordpieces) == 11 and f.num_words == 5 and f.first_wp.tolist() == [0, 1, 4, 5, 10]
    assert f.word_labels.tolist() == [OUT, B_PER, I_PER, B_ORG, OUT]
    assert f.windows.tolist() == [[0, 6], [4, 10], [5, 11]]
    assert tag_features(SPLIT_WORDS, tok, cfg).word_labels is None
    cut = tag_features(SPLIT_WORDS, tok, cfg, max_wordpieces=5)  # later words: no wordpiece
    assert len(cut.wordpieces) == 5 and cut.first_wp.tolist() == [0, 1, 4, -1, -1]

    batch = window_batch([f], tok)
    assert batch.start.tolist() == [0, 4, 5] and batch.length.tolist() == [6, 6, 6]
    assert batch.input_ids[:, 0].tolist() == [tok.cls_id] * 3
    assert batch.input_ids[:, 7].tolist() == [tok.sep_id] * 3
    got = window_labels(batch, [f])
    x = IGNORE
    assert got.tolist() == [
        [x, OUT, B_PER, x, x, I_PER, B_ORG, x],  # [CLS] w1 w2 . w3 W4 w5 [SEP]  (wordpieces 0-5)
        [x, I_PER, B_ORG, x, x, x, x, x],  # [CLS] W4 w5 , w6 , w7 [SEP]  (wordpieces 4-9)
        [x, B_ORG, x, x, x, x, OUT, x],  # [CLS] w5 , w6 , w7 w8 [SEP]  (wordpieces 5-10)
    ]


def test_a_multi_wordpiece_word_is_tagged_from_its_first_wordpiece(tok):
    fake = IdTagger(tok, {"w2": B_PER, "w3": B_ORG, "w6": B_ORG})
    rec = Recognizer(fake, tok, config())
    # "w2.w3": first piece w2 → PER; "w3.w2": first piece w3 → ORG; "w5,w6": w5 → O
    assert rec.tag([["w2.w3", "w3.w2", "w5,w6", "w6"]]) == [
        [(0, 1, "PER"), (1, 2, "ORG"), (3, 4, "ORG")]
    ]


def test_word_logits_average_the_windows_holding_each_wordpiece(tok):
    cfg = config(max_length=16, window_overlap=4)
    long_words = [f"w{i % 100}" for i in range(41)] + ["w1.w2"]  # 44 wordpieces
    short_words = ["w3", "w4,w5", "w6"]
    feats = [tag_features(long_words, tok, cfg), tag_features(short_words, tok, cfg)]
    assert feats[0].windows.tolist() == plan_windows(44, 16, 4).tolist()
    assert len(feats[0].windows) == 4 and len(feats[1].windows) == 1
    batch = window_batch(feats, tok)
    n_win, width = batch.input_ids.shape
    # window w, position p, class c: a value that tells all three apart
    w_, p_, c_ = np.meshgrid(np.arange(n_win), np.arange(width), np.arange(5), indexing="ij")
    logits = (1000.0 * w_ + p_ + 0.01 * c_).astype(np.float32)
    got = word_logits(logits, batch, feats)

    for d, f in enumerate(feats):
        rows = np.flatnonzero(batch.doc == d)
        expect = np.zeros((f.num_words, 5), dtype=np.float32)
        for word, wp in enumerate(f.first_wp):
            held = [logits[r, wp - batch.start[r] + 1] for r in rows
                    if batch.start[r] <= wp < batch.start[r] + batch.length[r]]  # fmt: skip
            assert held, "every wordpiece is in some window"
            expect[word] = np.mean(held, axis=0)
        np.testing.assert_allclose(got[d], expect, rtol=0, atol=1e-3)
    # the overlap really is averaged: word 12 (wordpiece 12) is in windows 0 and 1
    assert got[0][12, 0] == pytest.approx((1000 * 0 + 13 + 1000 * 1 + 3) / 2)
    # a document in one window gets exactly that window's logits at its first wordpieces
    (one,) = np.flatnonzero(batch.doc == 1)
    np.testing.assert_array_equal(got[1], logits[one, feats[1].first_wp + 1])


def test_a_document_with_no_wordpiece_reads_as_all_o(tok):
    # U+0301 is a token of the raw-text tokenizer, but the normalizer strips it: no wordpiece
    f = tag_features(["\u0301"], tok, config())
    assert len(f.wordpieces) == 0 and f.first_wp.tolist() == [-1]
    batch = window_batch([f], tok)
    assert batch.input_ids.tolist() == [[tok.cls_id, tok.sep_id]]
    rec = Recognizer(IdTagger(tok, {}), tok, config())
    assert rec.tag([["\u0301"], [], ["w1"]]) == [[], [], []]


def test_max_tokens_changes_the_calls_not_the_spans(tok):
    labels = {"w1": B_PER, "w2": I_PER, "w3": B_ORG, "w4": I_ORG, "w5": I_PER}
    rng = np.random.default_rng(3)
    docs = [[f"w{int(i)}" for i in rng.integers(0, 8, size=n)] for n in (40, 7, 25, 1, 60)]
    cfg = config(max_length=16, window_overlap=4)
    big, small = IdTagger(tok, labels), IdTagger(tok, labels)
    want = Recognizer(big, tok, cfg, max_tokens=4096).tag(docs)
    got = Recognizer(small, tok, cfg, max_tokens=20).tag(docs)
    assert got == want
    assert len(big.calls) == 1 and len(small.calls) > len(docs)
    assert all(rows * width <= 20 or rows == 1 for rows, width in small.calls)
    for words, spans in zip(docs, want, strict=True):
        assert spans == decode_bio([labels.get(w, OUT) for w in words], cfg)
    assert any(spans for spans in want)


# --- Records --------------------------------------------------------------------------------------

NAME_TAGS = {"w1": B_PER, "w2": I_PER, "w3": B_ORG, "w4": B_ORG}


def test_annotate_a_text_record_gives_character_spans(tok):
    rec = Recognizer(IdTagger(tok, NAME_TAGS), tok, config())
    text = "W1 w2 met w3, then w1  w2 left w9."
    out = rec.annotate({"id": "a", "text": text, "labels": [{"h": 0, "t": 1, "r": "x"}]})
    assert "labels" not in out and out["id"] == "a" and out["text"] == text
    ents = out["entities"]
    assert [(e["type"], e["name"]) for e in ents] == [("PER", "W1 w2"), ("ORG", "w3")]
    per, org = ents
    assert [text[m["start"] : m["end"]] for m in per["mentions"]] == ["W1 w2", "w1  w2"]
    assert [text[m["start"] : m["end"]] for m in org["mentions"]] == ["w3"]
    assert "id" not in per  # name grouping gives no concept ids
    # the result is a valid plain-text record of the gold-entity pipeline
    doc = text_to_document("a", text, ents)
    assert [len(e.mentions) for e in doc.entities] == [2, 1]


def test_annotate_a_sentence_record_gives_a_vertex_set(tok):
    rec = Recognizer(IdTagger(tok, NAME_TAGS), tok, config())
    sents = [["w3", "w9", "w1"], ["w2", "w9", "w1", "w2"], ["w3"]]
    out = rec.annotate({"title": "t", "sents": sents, "labels": [], "vertexSet": []})
    assert "labels" not in out and out["sents"] == sents
    # "w1 | w2" continues across the sentence end: the mention is cut at it
    assert out["vertexSet"] == [
        [{"name": "w3", "sent_id": 0, "pos": [0, 1], "type": "ORG"},
         {"name": "w3", "sent_id": 2, "pos": [0, 1], "type": "ORG"}],
        [{"name": "w1", "sent_id": 0, "pos": [2, 3], "type": "PER"}],
        [{"name": "w1 w2", "sent_id": 1, "pos": [2, 4], "type": "PER"}],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"id": "x", "text": ""}, "text is empty"),
        ({"id": "x", "text": " \n\t"}, "text is empty"),
        ({"id": "x", "text": 5}, "text must be a string, got int"),
        ({"id": "x", "text": None}, "text must be a string, got NoneType"),
    ],
)
def test_annotate_rejects_bad_text(tok, record, reason):
    rec = Recognizer(IdTagger(tok, NAME_TAGS), tok, config())
    with pytest.raises(DataError) as e:
        rec.annotate(record, line=3, source="in.jsonl")
    assert e.value.field == "text" and e.value.reason == reason
    assert e.value.line == 3 and e.value.doc == "x" and "field text" in str(e.value)


def test_annotate_rejects_bad_sentences_and_passes_other_things_through(tok):
    rec = Recognizer(IdTagger(tok, NAME_TAGS), tok, config())
    with pytest.raises(DataError) as e:
        rec.annotate({"sents": [["w1", 2]]})
    assert e.value.field == "sents"
    for obj in (["w1"], "w1", None, {"title": "no text"}):
        assert rec.annotate(obj) is obj


def test_text_with_nothing_recognisable_has_no_entities(tok):
    rec = Recognizer(IdTagger(tok, NAME_TAGS), tok, config())
    assert rec.annotate({"text": "nothing to see here, w9."})["entities"] == []
    assert rec.annotate({"text": "\u0301"})["entities"] == []  # no wordpiece at all
    assert rec.annotate({"sents": [["w9"], []]})["vertexSet"] == []


def test_needs_entities():
    text, sents = {"text": "a"}, {"sents": [["a"]]}
    given = [{"text": "a", "entities": []}, {"sents": [["a"]], "vertexSet": []}]
    assert not any(needs_entities(r, "given") for r in [text, sents, *given])
    assert all(needs_entities(r, "predict") for r in [text, sents, *given, "x"])
    assert needs_entities(text, "auto") and needs_entities(sents, "auto")
    assert not any(needs_entities(r, "auto") for r in [*given, "x", None])


# --- Lexicon and concept grouping -----------------------------------------------------------------


def lexicon() -> Lexicon:
    return Lexicon.build([("W1 w2", "PER", "D001"), ("w1 w2", "PER", "D001"), ("w3", "ORG", "D002")])  # fmt: skip


def test_lexicon_round_trip(tmp_path):
    lex = lexicon()
    save_lexicon(lex, tmp_path / "lexicon.json")
    back = load_lexicon(tmp_path / "lexicon.json")
    assert back == lex and back.lookup("w1 W2", "PER") == "D001" and len(back) == 2
    save_lexicon(Lexicon(), tmp_path / "empty.json")
    assert load_lexicon(tmp_path / "empty.json") == Lexicon()
    (tmp_path / "other.json").write_text(json.dumps({"format": "x", "entries": []}))
    with pytest.raises(ValueError, match="not a docunet-rt lexicon"):
        load_lexicon(tmp_path / "other.json")


def test_concept_grouping_gives_entity_ids(tok):
    rec = Recognizer(IdTagger(tok, NAME_TAGS), tok, config(grouping="concept"), lexicon())
    text = "W1 w2 saw w3. Later w1 w2 left w3 and w4."
    ents = rec.annotate({"text": text})["entities"]
    assert [(e["type"], e.get("id"), len(e["mentions"])) for e in ents] == [
        ("PER", "D001", 2), ("ORG", "D002", 2), ("ORG", None, 1)]  # fmt: skip
    assert "id" not in ents[2]  # w4 is not in the lexicon: grouped by its form, no id


def test_concept_grouping_gives_ids_to_sentence_records(tok):
    rec = Recognizer(IdTagger(tok, NAME_TAGS), tok, config(grouping="concept"), lexicon())
    vs = rec.annotate({"sents": [["w1", "w2", "w9"], ["w3"]]})["vertexSet"]
    assert [[m.get("id") for m in ent] for ent in vs] == [["D001"], ["D002"]]


def test_concept_grouping_links_as_the_config_says(tok):
    """The Recognizer links with the config's mode: "w1 w2" is not a lexicon form, its
    spelling variant "w1w2" is."""
    lex = Lexicon.build([("w1w2", "PER", "D009")])
    text = "W1 w2 saw w3."
    for linking, want in (("exact", None), ("variants", "D009"), ("fuzzy", "D009")):
        cfg = config(grouping="concept", linking=linking)
        [per, _] = Recognizer(IdTagger(tok, NAME_TAGS), tok, cfg, lex).annotate({"text": text})[
            "entities"
        ]
        assert per.get("id") == want, linking


# --- Training -------------------------------------------------------------------------------------

MENTION_WORDS = {"PER": [["w1", "w2"], ["w3"]], "ORG": [["w10"], ["w11", "w12"]]}


def synthetic_docs(seed: int = 0) -> list[dict]:
    """4 DocRED-style documents of 3 to 9 sentences (the longest needs several 64-wordpiece
    windows) with PER and ORG mentions of one or two words, sometimes adjacent."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(4):
        sents: list[list[str]] = []
        ents: dict[tuple[str, int], list[dict]] = {}
        for s in range(3 + 2 * i):
            sent: list[str] = []
            for _ in range(3):
                sent += [f"w{rng.integers(30, 100)}" for _ in range(int(rng.integers(0, 4)))]
                t = TYPES[int(rng.integers(2))]
                k = int(rng.integers(2))
                m = MENTION_WORDS[t][k]
                pos = [len(sent), len(sent) + len(m)]
                ents.setdefault((t, k), []).append(
                    {"name": " ".join(m), "sent_id": s, "pos": pos, "type": t}
                )
                sent += m
            sents.append([*sent, "."])
        docs.append({"title": f"doc{i}", "sents": sents, "vertexSet": list(ents.values()),
                     "labels": []})  # fmt: skip
    return docs


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ner-data") / "train.json"
    path.write_text(json.dumps(synthetic_docs()))
    return str(path)


def ner_opts(out, encoder_dir, data, **kw):
    base = dict(train=[data], dev=data, out=str(out), encoder=str(encoder_dir), epochs=10,
                batch_size=1, lr_encoder=2e-3, lr_head=3e-3, warmup=0.0, seed=1)  # fmt: skip
    return ner_train.NerTrainOptions(**{**base, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder_dir, train_file):
    out = tmp_path_factory.mktemp("ner") / "tagger"
    return out, ner_train.train_ner(ner_opts(out, tiny_encoder_dir, train_file))


def one_doc(path, change) -> str:
    """The first synthetic document, with ``change(mention)`` applied to every mention."""
    docs = synthetic_docs()[:1]
    for m in (m for ent in docs[0]["vertexSet"] for m in ent):
        change(m)
    path.write_text(json.dumps(docs))
    return str(path)


def metrics(out, timeless: bool = False) -> list[dict]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    drop = {"train_seconds"} if timeless else set()
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def stop_after_epoch_1(ev: dict) -> None:
    if ev.get("event") == "epoch" and ev["epoch"] == 1:
        raise KeyboardInterrupt  # as Ctrl-C right after epoch 1 is saved


def test_tagger_overfits_four_documents(trained, train_file):
    out, summary = trained
    assert summary["best_dev_f1"] == 1.0 and summary["epoch"] == 10
    assert [r["epoch"] for r in metrics(out)] == list(range(1, 11))
    assert {p.name for p in out.iterdir()} >= {"tagger.json", "model.safetensors",
                                               "tokenizer.json", "metrics.jsonl", "last"}  # fmt: skip
    assert not (out / "lexicon.json").exists()  # no concept ids in the data

    model, tok, blob = ner_train.load_tagger(out)
    assert blob["best"]["epoch"] == summary["best_epoch"] and blob["best"]["dev"]["f1"] == 1.0
    cfg = model.config
    assert cfg.types == sorted(TYPES) and cfg.grouping == "name" and cfg.max_length == 64
    docs = read_documents(train_file)
    assert max(len(tag_features(document_words(d)[0], tok, cfg).windows) for d in docs) > 1
    rec = Recognizer(TorchTagFn(model), tok, cfg)
    assert rec.tag([document_words(d)[0] for d in docs]) == [gold_spans(d) for d in docs]
    # and through the record path: every gold mention comes back, grouped by name
    out_rec = rec.annotate({"sents": docs[0].sentences})
    got = sorted((m["sent_id"], *m["pos"], m["type"]) for ent in out_rec["vertexSet"] for m in ent)
    want = sorted((m.sent_id, m.start, m.end, e.type) for e in docs[0].entities for m in e.mentions)
    assert got == want and len(out_rec["vertexSet"]) == len(docs[0].entities)


def test_training_ids_give_a_lexicon_and_concept_grouping(tmp_path, tiny_encoder_dir):
    data = one_doc(tmp_path / "ids.json", lambda m: m.update(id="C-" + m["name"]))
    out = tmp_path / "tagger"
    ner_train.train_ner(ner_opts(out, tiny_encoder_dir, data, epochs=1))
    lex = load_lexicon(out / "lexicon.json")
    assert lex.lookup("w1 w2", "PER") == "C-w1 w2" and lex.lookup("w10", "ORG") == "C-w10"
    assert ner_train.load_tagger(out)[0].config.grouping == "concept"
    with pytest.raises(FileNotFoundError, match="not a tagger checkpoint.*train-ner"):
        ner_train.load_tagger(tmp_path)


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, tiny_encoder_dir, train_file):
    whole = ner_train.train_ner(
        ner_opts(tmp_path / "whole", tiny_encoder_dir, train_file, epochs=3)
    )

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        ner_train.train_ner(
            ner_opts(out, tiny_encoder_dir, train_file, epochs=3), stop_after_epoch_1
        )
    assert [r["epoch"] for r in metrics(out)] == [1]
    with pytest.raises(FileExistsError, match="pass --resume or a new --out"):
        ner_train.train_ner(ner_opts(out, tiny_encoder_dir, train_file, epochs=3))
    with pytest.raises(ValueError, match="--resume with other options"):
        ner_train.train_ner(ner_opts(out, tiny_encoder_dir, train_file, epochs=4, resume=True))
    resumed = ner_train.train_ner(
        ner_opts(out, tiny_encoder_dir, train_file, epochs=3, resume=True)
    )
    assert [r["epoch"] for r in metrics(out)] == [1, 2, 3]
    assert metrics(out, timeless=True) == metrics(tmp_path / "whole", timeless=True)
    best = (whole["best_epoch"], whole["best_dev_f1"])
    assert (resumed["best_epoch"], resumed["best_dev_f1"]) == best
    a = load_file(str(tmp_path / "whole" / "last" / "model.safetensors"))
    b = load_file(str(out / "last" / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    # a finished run trains nothing more, whatever the options
    for epochs in (3, 5):
        again = ner_train.train_ner(
            ner_opts(out, tiny_encoder_dir, train_file, epochs=epochs, resume=True)
        )
        assert again["already_finished"] is True and again["epoch"] == 3
        assert (again["best_epoch"], again["best_dev_f1"]) == best
    assert len(metrics(out)) == 3


def test_max_steps_stops_within_an_epoch(tmp_path, tiny_encoder_dir, train_file):
    out = tmp_path / "t"
    summary = ner_train.train_ner(
        ner_opts(out, tiny_encoder_dir, train_file, epochs=5, max_steps=6)
    )
    assert [(r["epoch"], r["step"]) for r in metrics(out)] == [(1, 4), (2, 6)]
    assert summary["step"] == 6


def test_training_data_without_types_is_refused(tmp_path, tiny_encoder_dir):
    data = one_doc(tmp_path / "untyped.json", lambda m: m.update(type=""))
    with pytest.raises(ValueError, match="no typed entity mentions"):
        ner_train.train_ner(ner_opts(tmp_path / "o", tiny_encoder_dir, data, epochs=1))


# --- docunet-rt train-ner -------------------------------------------------------------------------


def flat(output: str) -> str:
    for ch in "│╭╮╰╯─":
        output = output.replace(ch, " ")
    return " ".join(output.split())


NER_OPTIONS = ["--train", "--dev", "--out", "--format", "--encoder", "--epochs", "--max-steps",
               "--batch-size", "--lr-encoder", "--lr-head", "--grouping", "--seed", "--resume",
               "--skip-bad", "--device", "--threads", "--verbose"]  # fmt: skip


def test_train_ner_help_lists_the_options():
    r = CliRunner().invoke(app, ["train-ner", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    text = flat(r.output)
    for option in NER_OPTIONS:
        assert option in text, option
    assert "PubTator" in text and "vertexSet" in text
    assert "Never train on documents you evaluate on" in text
    assert not [x for x in r.output.splitlines() if "<bool>" in x and "--help" not in x]
    command = typer.main.get_command(app).commands["train-ner"]
    assert not [p.name for p in command.params if not getattr(p, "help", None)]
    assert CLI_GROUPINGS == ("auto", *GROUPINGS)
    assert "train-ner" in flat(CliRunner().invoke(app, ["--help"]).output)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--grouping", "cluster"],
            "unknown grouping 'cluster'; valid choices: auto, name, concept",
        ),
        (["--format", "xml"], "valid choices: auto, docred"),
        (["--device", "tpu"], "valid choices: auto, cpu, cuda"),
        (["--epochs", "0"], "greater than or equal to 1"),
    ],  # fmt: skip
)
def test_train_ner_bad_option_values_are_usage_errors(tmp_path, monkeypatch, extra, expected):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train-ner", "--train", "a", "--dev", "b", "-o", "o", *extra])
    assert r.exit_code == 2, r.output
    assert expected in flat(r.output)
    assert not any(tmp_path.iterdir())


def test_train_ner_missing_data_is_one_line(tmp_path, tiny_encoder_dir):
    args = ["train-ner", "--train", str(tmp_path / "none.json"), "--dev", str(tmp_path / "x"),
            "-o", str(tmp_path / "o"), "--encoder", str(tiny_encoder_dir)]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1, r.output
    assert [x for x in r.output.splitlines() if x.startswith("error:")] != []
    assert "Traceback" not in r.output


def test_train_ner_cli_run_interrupt_and_resume(tmp_path, tiny_encoder_dir, train_file, monkeypatch):  # fmt: skip
    out = tmp_path / "run dir"  # a space: the printed command must quote it
    args = ["train-ner", "--train", train_file, "--train", train_file, "--dev", train_file,
            "-o", str(out), "--encoder", str(tiny_encoder_dir), "--epochs", "2",
            "--batch-size", "2", "--lr-encoder", "2e-3", "--lr-head", "3e-3"]  # fmt: skip
    real = ner_train.train_ner
    both = lambda progress: lambda ev: (progress(ev), stop_after_epoch_1(ev))  # noqa: E731
    monkeypatch.setattr(ner_train, "train_ner", lambda opts, progress: real(opts, both(progress)))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 130, r.output
    lines = [x for x in r.output.splitlines() if "interrupted" in x]
    assert len(lines) == 1 and "last finished epoch: 1 of 2" in lines[0]
    resume = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert resume[:2] == ["docunet-rt", "train-ner"] and resume[-1] == "--resume"
    assert resume.count("--train") == 2 and str(out) in resume
    monkeypatch.undo()

    r = CliRunner().invoke(app, resume[1:])
    assert r.exit_code == 0, r.output
    assert (out / "tagger.json").is_file() and [x["epoch"] for x in metrics(out)] == [1, 2]
    blob = json.loads((out / "tagger.json").read_text())
    assert blob["training"]["train"] == [train_file, train_file]
    assert blob["training"]["train_docs"] == 8
    text = flat(r.output)
    assert "best epoch" in text and "dev mention f1" in text and "dev mention precision" in text

    r = CliRunner().invoke(app, resume[1:])
    assert r.exit_code == 0, r.output
    assert "already finished" in flat(r.output) and "best epoch" in flat(r.output)


def test_train_ner_cli_one_epoch(tmp_path, tiny_encoder_dir, train_file):
    out = tmp_path / "ner"
    args = ["train-ner", "--train", train_file, "--dev", train_file, "-o", str(out),
            "--encoder", str(tiny_encoder_dir), "--epochs", "1", "--grouping", "concept",
            "--device", "cpu", "--seed", "3"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    blob = json.loads((out / "tagger.json").read_text())
    assert blob["format"] == "docunet-rt-tagger/1" and blob["tagger"]["grouping"] == "concept"
    assert blob["best"]["epoch"] == 1 and "epoch 1: loss" in r.output
    r = CliRunner().invoke(app, args)  # the same --out again, without --resume
    assert r.exit_code == 1 and "pass --resume or a new --out" in flat(r.output)
