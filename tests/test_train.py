"""Training end to end on a tiny encoder: overfitting, checkpoints, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import random_document

from docunet_rt.checkpoint import load_checkpoint, read_checkpoint_config
from docunet_rt.data import document_to_docred
from docunet_rt.features import build_features, collate
from docunet_rt.model import batch_to_tensors
from docunet_rt.train import TrainOptions, train


@pytest.fixture(scope="module")
def encoder_dir(tiny_encoder_dir):
    return tiny_encoder_dir


def write_docs(path, docs):
    path.write_text(json.dumps([document_to_docred(d) for d in docs]))
    return str(path)


@pytest.fixture(scope="module")
def four_docs(tmp_path_factory):
    rng = np.random.default_rng(7)
    docs = [random_document(rng, 36, 4, doc_id=f"doc{i}") for i in range(4)]
    return write_docs(tmp_path_factory.mktemp("data") / "train.json", docs)


def opts(tmp_path, encoder_dir, data, **kw):
    base = dict(
        train=data, dev=data, out=str(tmp_path / "ckpt"), encoder=str(encoder_dir), epochs=40,
        batch_size=1, lr_encoder=2e-3, lr_head=3e-3, lr_unet=3e-3, unet_base=8, warmup=0.0,
        seed=1,
    )  # fmt: skip
    base.update(kw)
    return TrainOptions(**base)


def test_tiny_model_overfits_four_documents(tmp_path, encoder_dir, four_docs):
    summary = train(opts(tmp_path, encoder_dir, four_docs))
    assert summary["best_dev_f1"] == pytest.approx(1.0)
    lines = (tmp_path / "ckpt" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 40 and json.loads(lines[0])["epoch"] == 1
    meta = read_checkpoint_config(tmp_path / "ckpt")
    assert meta["model"]["relations"] == ["r1", "r2", "r3"]
    assert meta["best"]["dev"]["f1"] == pytest.approx(1.0)


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, encoder_dir, four_docs, rng):
    train(opts(tmp_path, encoder_dir, four_docs, epochs=2))
    model, tok = load_checkpoint(tmp_path / "ckpt")
    again, _ = load_checkpoint(tmp_path / "ckpt")
    docs = [random_document(rng, 50, 6)]
    batch = collate([build_features(d, tok, model.config) for d in docs], tok, model.config)
    with torch.no_grad():
        a = model(batch_to_tensors(batch))
        b = again(batch_to_tensors(batch))
    assert torch.equal(a, b)
    assert not any(p.suffix in (".bin", ".pkl") for p in (tmp_path / "ckpt").iterdir())


class Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_result(tmp_path, encoder_dir, four_docs):
    kw = dict(epochs=4, batch_size=2)
    full = tmp_path / "full"
    train(opts(tmp_path, encoder_dir, four_docs, out=str(full), **kw))

    def stop_after_epoch_2(ev):
        if ev.get("event") == "epoch" and ev["epoch"] == 2:
            raise Stop

    part = tmp_path / "part"
    with pytest.raises(Stop):
        train(opts(tmp_path, encoder_dir, four_docs, out=str(part), **kw), stop_after_epoch_2)
    assert json.loads((part / "last" / "state.json").read_text())["epoch"] == 2
    train(opts(tmp_path, encoder_dir, four_docs, out=str(part), resume=True, **kw))
    a = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b, strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-5)
        assert x["dev"]["f1"] == y["dev"]["f1"]


def test_existing_run_needs_resume(tmp_path, encoder_dir, four_docs):
    train(opts(tmp_path, encoder_dir, four_docs, epochs=1))
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(opts(tmp_path, encoder_dir, four_docs, epochs=1))


def test_missing_encoder_says_what_to_do(tmp_path, four_docs):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        train(opts(tmp_path, tmp_path / "nope", four_docs))


def test_load_missing_or_corrupt_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is corrupt"):
        load_checkpoint(tmp_path / "bad")
