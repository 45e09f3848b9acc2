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


def test_an_average_decides_at_logit_0(run, tmp_path):
    """A threshold tuned for the run's kept epoch does not describe an average of epochs."""
    import shutil

    tuned = tmp_path / "tuned"
    shutil.copytree(run, tuned)
    meta = json.loads((tuned / "config.json").read_text())
    meta["model"]["decision_threshold"] = 0.7
    meta["format"] = "docunet-rt-checkpoint/2"
    (tuned / "config.json").write_text(json.dumps(meta))
    average_checkpoint(tuned, [2, 3], tmp_path / "avg")
    avg = json.loads((tmp_path / "avg" / "config.json").read_text())
    assert avg["model"]["decision_threshold"] == 0.0
    assert avg["format"] == "docunet-rt-checkpoint/1"


def test_averaging_errors_say_what_to_do(run, tmp_path, tiny_checkpoint):
    with pytest.raises(FileNotFoundError, match="train with --keep-epochs"):
        average_checkpoint(tiny_checkpoint, [1], tmp_path / "x")
    with pytest.raises(ValueError, match="epoch.s. 4 not kept .*kept epochs: 1, 2, 3"):
        average_checkpoint(run, [2, 4], tmp_path / "x")
    average_checkpoint(run, [1], tmp_path / "done")
    resume_weights = (run / "last" / "model.safetensors").read_bytes()
    for taken in (tmp_path / "done", run, run / "last"):  # never written over
        with pytest.raises(FileExistsError, match="exists and is not empty"):
            average_checkpoint(run, [2], taken)
    assert (run / "last" / "model.safetensors").read_bytes() == resume_weights
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
    r = cli.invoke(app, ["average", str(run), "--epochs", "3-", "-o", str(tmp_path / "c")])
    assert r.exit_code == 2 and "expected epoch numbers" in r.output
    r = cli.invoke(app, ["average", str(run), "--epochs", "9", "-o", str(tmp_path / "c")])
    assert r.exit_code == 1 and "kept epochs: 1, 2, 3" in r.output
    r = cli.invoke(app, ["average", str(run), "--last", "5", "-o", str(tmp_path / "c")])
    assert r.exit_code == 1 and "kept only 3 epoch(s) (1, 2, 3)" in r.output
    r = cli.invoke(app, ["average", str(run), "-o", str(tmp_path / "d")])  # default: last 3
    assert r.exit_code == 0 and "averaged epochs 1, 2, 3" in r.output
    assert not (tmp_path / "c").exists()


def test_epochs_of_another_run_are_refused(run, tmp_path, tiny_encoder_dir):
    """Weights of a different shape under the same epochs/ folder: an error, not a traceback."""
    import shutil

    from safetensors.torch import save_file

    mixed = tmp_path / "mixed"
    shutil.copytree(run, mixed)
    state = load_file(str(mixed / "epochs" / "epoch_002.safetensors"))
    k = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 2)
    state[k] = torch.zeros(state[k].shape[0] + 1, state[k].shape[1])
    save_file(state, str(mixed / "epochs" / "epoch_002.safetensors"))
    with pytest.raises(ValueError, match="the epochs come from different runs"):
        average_checkpoint(mixed, [1, 2], tmp_path / "avg")


def test_a_resumed_run_keeps_epochs_as_it_started(run, tmp_path, tiny_encoder_dir):
    """--keep-epochs is part of the run: resuming without it is refused (the kept epochs would
    silently stop, and `average --last` would then average old ones)."""

    class Stop(Exception):
        pass

    def stop_after_epoch_1(ev):
        if ev.get("event") == "epoch":
            raise Stop

    data = str(run.parent / "train.json")
    kw = dict(train=data, dev=data, out=str(tmp_path / "r"), encoder=str(tiny_encoder_dir),
              epochs=3, batch_size=2, unet_base=8, seed=1)  # fmt: skip
    with pytest.raises(Stop):
        train(TrainOptions(**kw, keep_epochs=True), stop_after_epoch_1)
    assert kept_epochs(tmp_path / "r") == [1]
    with pytest.raises(ValueError, match="keep_epochs: True → False"):
        train(TrainOptions(**kw, resume=True))
    train(TrainOptions(**kw, resume=True, keep_epochs=True))
    assert kept_epochs(tmp_path / "r") == [1, 2, 3]


def test_a_run_started_again_drops_the_epochs_it_kept(run, tmp_path, tiny_encoder_dir):
    """Killed after an epoch's weights were kept but before its resume state: the run starts
    over, and the stale epoch does not stay behind to be averaged with the new ones."""
    out = tmp_path / "r"
    (out / "epochs").mkdir(parents=True)
    (out / "epochs" / "epoch_001.safetensors").write_bytes(b"stale")
    (out / "metrics.jsonl").write_text("")
    data = str(run.parent / "train.json")
    train(TrainOptions(train=data, dev=data, out=str(out), encoder=str(tiny_encoder_dir),
                       epochs=1, batch_size=2, unet_base=8, seed=1))  # fmt: skip
    assert kept_epochs(out) == []
