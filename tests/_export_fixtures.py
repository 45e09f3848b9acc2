"""Fixtures for the ONNX export tests: a tiny random-weight checkpoint built offline and its
exported MODEL_DIR (fp32, int8, fp16), both built once per session.

Self-contained on purpose (conftest.py belongs to other tests). The encoder keeps BERT's pooler
layer, as ``AutoModel.from_config`` in ``checkpoint.load_checkpoint`` expects it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "*", "@", ".", ","] + [f"w{i}" for i in range(100)]
RELATIONS = ["r1", "r2", "r3"]


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tk = Tokenizer(models.WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tk


def build_tiny_checkpoint(out: Path, seed: int = 0) -> Path:
    """CKPT_DIR with a 2-layer BERT (H=32, 4 heads, 64 positions) and a small DocuNet head
    (max_length 32 so documents over 30 wordpieces use several windows). The classifier is
    scaled so that roughly a third of the relation logits are positive (meaningful triples)."""
    import torch
    from transformers import BertConfig, BertModel

    from docunet_rt.checkpoint import build_model, save_checkpoint
    from docunet_rt.config import DocuNetConfig
    from docunet_rt.features import TokenizerInfo

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    cfg._attn_implementation = "eager"
    encoder = BertModel(cfg)
    config = DocuNetConfig(
        relations=RELATIONS,
        relation_names={"r1": "one", "r2": "two", "r3": "three"},
        encoder="tiny-random-bert",
        max_length=32,
        window_overlap=8,
        unet_base=8,
        unet_out=8,
        emb_size=16,
        block_size=4,
    )
    model = build_model(config, encoder).eval()
    assert model.config.max_length == 32  # min(max_length, max_position_embeddings)
    with torch.no_grad():
        lin = model.head.bilinear.linear
        lin.weight.mul_(20.0)
        lin.bias.zero_()
        lin.bias[1:] = -4.0
    save_checkpoint(
        out,
        model,
        TokenizerInfo.from_tokenizer(tiny_tokenizer()),
        training={"note": "random weights for export tests"},
        best={"epoch": 3, "dev_f1": 0.4242},
    )
    return out


@pytest.fixture(scope="session")
def export_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("export") / "ckpt")


@pytest.fixture(scope="session")
def exported(export_checkpoint, tmp_path_factory):
    """(MODEL_DIR, ExportResult) with fp32, int8 and fp16 variants."""
    from docunet_rt.export import export_model

    out = tmp_path_factory.mktemp("export") / "model"
    result = export_model(export_checkpoint, out, precisions="fp32,int8,fp16")
    return out, result


@pytest.fixture(scope="session")
def source_model(export_checkpoint):
    """The checkpoint loaded once: (DocuNet, TokenizerInfo)."""
    from docunet_rt.checkpoint import load_checkpoint

    return load_checkpoint(export_checkpoint)


@pytest.fixture(scope="session")
def parity_docs(source_model):
    """The parity grid: entity counts 1, 2, 19, 43, 100, each short and multi-window."""
    from docunet_rt.export.parity import synthetic_documents

    model, tok = source_model
    return synthetic_documents(tok, model.config.max_length)
