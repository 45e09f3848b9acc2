"""Checkpoint averaging: `train --keep-epochs` keeps every epoch, `average` makes one checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import random_document
from safetensors.torch import load_file
from typer.testing import CliRunner

from docunet_rt.checkpoint import average_checkpoint, kept_epochs, load_checkpoint
from docunet_rt.cli.main import app
from docunet_rt.data import document_to_docred
from docunet_rt.features import build_features, collate
from docunet_rt.model import batch_to_tensors
from docunet_rt.train import TrainOptions, train


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_encoder_dir):
    """Three epochs of a tiny model, every epoch kept, the last epoch as the checkpoint."""
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("avg")
    data = root / "train.json"
    docs = [random_document(rng, 36, 4, doc_id=f"doc{i}") for i in range(4)]
    data.write_text(json.dumps([document_to_docred(d) for d in docs]))
    out = root / "run"
    train(
        TrainOptions(
            train=str(data),
            dev=str(data),
            out=str(out),
            encoder=str(tiny_encoder_dir),
            epochs=3,
            batch_size=1,
            lr_encoder=2e-3,
            lr_head=3e-3,
            lr_unet=3e-3,
            unet_base=8,
            warmup=0.0,
            seed=1,
            select="last",
            keep_epochs=True,
        )  # fmt: skip
    )
    return out


def logits(ckpt, rng_seed=3):
    model, tok = load_checkpoint(ckpt)
    doc = random_document(np.random.default_rng(rng_seed), 50, 6)
    batch = collate([build_features(doc, tok, model.config)], tok, model.config)
    with torch.no_grad():
        return model(batch_to_tensors(batch))


def test_every_epoch_is_kept_and_the_last_is_the_checkpoint(run, tmp_path):
    assert kept_epochs(run) == [1, 2, 3]
    average_checkpoint(run, [3], tmp_path / "e3")  # "averaging" one epoch: that epoch
    assert torch.equal(logits(tmp_path / "e3"), logits(run))


def test_the_average_is_the_mean_of_the_epochs_weights(run, tmp_path):
    record = average_checkpoint(run, [2, 3], tmp_path / "avg")
    assert record["epochs"] == [2, 3]
    e2, e3 = (load_file(str(run / "epochs" / f"epoch_00{e}.safetensors")) for e in (2, 3))
    avg = load_file(str(tmp_path / "avg" / "model.safetensors"))
    assert avg.keys() == e2.keys()
    moved = 0
    for k, v in avg.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (e2[k] + e3[k]) / 2)
            moved += not torch.equal(e2[k], e3[k])
        else:
            assert torch.equal(v, e3[k])
    assert moved > 0  # the two epochs differ, so the mean is a new model
    meta = json.loads((tmp_path / "avg" / "config.json").read_text())
    assert meta["best"]["averaged"]["epochs"] == [2, 3]
    assert logits(tmp_path / "avg").shape == logits(run).shape  # loads like any checkpoint


def test_averaging_errors_say_what_to_do(run, tmp_path, tiny_checkpoint):
    with pytest.raises(FileNotFoundError, match="train with --keep-epochs"):
        average_checkpoint(tiny_checkpoint, [1], tmp_path / "x")
    with pytest.raises(ValueError, match="epoch.s. 4 not kept .*kept epochs: 1, 2, 3"):
        average_checkpoint(run, [2, 4], tmp_path / "x")
    average_checkpoint(run, [1], tmp_path / "done")
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        average_checkpoint(run, [2], tmp_path / "done")
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        average_checkpoint(run, [2], run)
    assert not (tmp_path / "x").exists()


def test_average_command(run, tmp_path):
    cli = CliRunner()
    r = cli.invoke(app, ["average", str(run), "--last", "2", "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "averaged epochs 2, 3" in r.output
    r = cli.invoke(app, ["average", str(run), "--epochs", "1-2,3", "-o", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b" / "config.json").read_text())["best"]["averaged"][
        "epochs"
    ] == [1, 2, 3]
    r = cli.invoke(app, ["average", str(run), "--epochs", "2-x", "-o", str(tmp_path / "c")])
    assert r.exit_code == 2 and "expected epoch numbers like 6,7,8 or 6-8" in r.output
    r = cli.invoke(
        app, ["average", str(run), "--epochs", "2", "--last", "2", "-o", str(tmp_path / "c")]
    )
    assert r.exit_code == 2 and "not both" in r.output
    r = cli.invoke(app, ["average", str(run), "--epochs", "9", "-o", str(tmp_path / "c")])
    assert r.exit_code == 1 and "kept epochs: 1, 2, 3" in r.output
