"""Fixtures for the ONNX export tests: a tiny random-weight checkpoint built offline and its
exported MODEL_DIR (fp32, int8, fp16), both built once per session.

The encoder, tokenizer and config are conftest.py's tiny ones; the encoder keeps BERT's pooler
layer so that the seeded head weights (and so the reference logits) stay as they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_model


def build_tiny_checkpoint(out: Path, seed: int = 0) -> Path:
    """CKPT_DIR with a 2-layer BERT (H=32, 4 heads, 64 positions) and a small DocuNet head
    (max_length 32 so documents over 30 wordpieces use several windows). The classifier is
    scaled so that roughly a third of the relation logits are positive (meaningful triples)."""
    import torch

    from docunet_rt.checkpoint import save_checkpoint

    model, tok = tiny_model(seed, pooler=True, encoder="tiny-random-bert")
    assert model.config.max_length == 32  # min(max_length, max_position_embeddings)
    with torch.no_grad():
        lin = model.head.bilinear.linear
        lin.weight.mul_(20.0)
        lin.bias.zero_()
        lin.bias[1:] = -4.0
    save_checkpoint(
        out,
        model,
        tok,
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
    from docunet_rt.synth import synthetic_documents

    model, tok = source_model
    return synthetic_documents(tok, model.config.max_length)
