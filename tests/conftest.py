"""Shared fixtures: tiny random-weight encoders and checkpoints built offline (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "*", "@", ".", ","] + [f"w{i}" for i in range(100)]


def data_dir() -> Path:
    return Path(os.environ.get("DOCUNET_DATA", REPO.parent / "shared" / "data"))


def need_data(*parts: str) -> Path:
    p = data_dir().joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not found; set DOCUNET_DATA to the shared data folder")
    return p


def tiny_tokenizer(vocab: list[str] = VOCAB, pair: bool = False):
    """A WordPiece tokenizer over ``vocab`` with BERT-style [CLS] … [SEP] (and, with ``pair``,
    a [CLS] A [SEP] B [SEP] pair template)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    ids = {w: i for i, w in enumerate(vocab)}
    tk = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]" if pair else None,
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return tk


def tiny_encoder(
    seed: int = 0,
    max_positions: int = 64,
    dropout: float = 0.1,
    vocab_size: int = len(VOCAB),
    pooler: bool = False,
):
    """A 2-layer random BERT (H=32, 4 heads). ``pooler`` keeps BERT's (unused) pooler layer,
    which also draws from the seeded RNG, so it changes the weights of what is built next."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        attn_implementation="eager",
    )
    enc = BertModel(cfg, add_pooling_layer=pooler)
    enc.config._attn_implementation = "eager"
    return enc


def tiny_config(**kw):
    from docunet_rt.config import DocuNetConfig

    base = dict(
        relations=["r1", "r2", "r3"],
        relation_names={"r1": "one", "r2": "two", "r3": "three"},
        max_length=32,
        window_overlap=8,
        unet_base=8,
        unet_out=8,
        emb_size=16,
        block_size=4,
    )
    base.update(kw)
    return DocuNetConfig(**base)


def tiny_model(
    seed: int = 0, *, vocab: list[str] = VOCAB, pair: bool = False, pooler: bool = False, **kw
):
    """(DocuNet in eval mode, TokenizerInfo): a tiny_config(**kw) head on a tiny_encoder(seed)."""
    from docunet_rt.checkpoint import build_model
    from docunet_rt.features import TokenizerInfo

    model = build_model(tiny_config(**kw), tiny_encoder(seed, vocab_size=len(vocab), pooler=pooler))
    return model.eval(), TokenizerInfo.from_tokenizer(tiny_tokenizer(vocab, pair=pair))


def random_document(rng: np.random.Generator, n_tokens: int, n_entities: int, doc_id: str = "d"):
    """A random document over the tiny vocabulary with n_entities entities (1–3 mentions each)
    and a few labels."""
    from docunet_rt.data import Document, Entity, Label, Mention

    n_sent = max(1, n_tokens // 12)
    sents = [[f"w{rng.integers(100)}" for _ in range(12)] for _ in range(n_sent)]
    # distinct one-token mention slots while there are enough, so entities are distinguishable
    slots = [(s, t) for s in range(n_sent) for t in range(12)]
    order = rng.permutation(len(slots))
    ents = []
    k = 0
    for e in range(n_entities):
        ms = []
        for _ in range(int(rng.integers(1, 4))):
            s, st = slots[order[k % len(slots)]]
            k += 1
            ms.append(Mention(int(s), int(st), int(st) + 1))
        ents.append(Entity(ms, type=["PER", "ORG", "LOC"][e % 3], name=f"e{e}"))
    labels = []
    for _ in range(min(3, n_entities * (n_entities - 1))):
        h, t = rng.choice(n_entities, size=2, replace=False) if n_entities > 1 else (0, 0)
        if h != t:
            labels.append(Label(int(h), int(t), ["r1", "r2", "r3"][int(rng.integers(3))]))
    return Document(doc_id, sents, ents, labels)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A saved tiny random checkpoint (CKPT_DIR layout) with some positive logits."""
    import torch

    from docunet_rt.checkpoint import save_checkpoint

    model, tok = tiny_model(seed=1)
    with torch.no_grad():
        model.head.bilinear.linear.bias[1:] += 0.5
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(out, model, tok, training={"note": "random weights for tests"})
    return out


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT saved as a local Hugging Face directory (what --encoder takes)."""
    from transformers import PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("enc")
    tiny_encoder(seed=0, dropout=0.0).save_pretrained(d)
    PreTrainedTokenizerFast(
        tokenizer_object=tiny_tokenizer(),
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
    ).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def corpus300(tmp_path_factory) -> Path:
    """300 mixed records (DocRED and plain text) with two bad lines, shared by extract tests."""
    from _extract_fixtures import corpus_records, write_jsonl

    recs: list = corpus_records(300, seed=1)
    recs[17] = b"{broken"
    recs[120] = {"text": "no entities key"}
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "c300.jsonl", recs)


@pytest.fixture(scope="module")
def reference(corpus300, tmp_path_factory) -> tuple[bytes, bytes]:
    """(OUT, errors) of corpus300 run one document per batch, in the main thread."""
    from _extract_fixtures import StubExtractor

    from docunet_rt.extract import run_extraction
    from docunet_rt.options import ExtractOptions

    d = tmp_path_factory.mktemp("ref")
    run_extraction(
        corpus300,
        d / "o",
        StubExtractor(),
        ExtractOptions(batch_size=1),
        errors_path=d / "e",
        workers=0,
    )
    return (d / "o").read_bytes(), (d / "e").read_bytes()
