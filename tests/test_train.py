"""Training end to end on a tiny encoder: overfitting, checkpoints, resume, errors."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_document
from typer.testing import CliRunner

import docunet_rt.train as train_module
from docunet_rt.checkpoint import load_checkpoint, read_checkpoint_config
from docunet_rt.cli.main import app
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
    (tmp_path / "bad" / "config.json").write_text('{"format": "docunet-rt-checkpoint/9"}')
    with pytest.raises(ValueError, match="expected one of docunet-rt-checkpoint/1, docunet-rt-c"):
        load_checkpoint(tmp_path / "bad")


def metrics(out) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def cli_args(out, encoder_dir, data, *extra: str) -> list[str]:
    return ["train", "--train", data, "--dev", data, "--out", str(out), "--encoder",
            str(encoder_dir), "--batch-size", "2", "--unet-base", "8", "--seed", "1", *extra]  # fmt: skip


def test_epochs_and_max_steps_stop_at_whichever_comes_first(tmp_path, encoder_dir, four_docs):
    # 4 documents, batch size 1: 4 steps per epoch
    a, b = tmp_path / "a", tmp_path / "b"
    train(opts(tmp_path, encoder_dir, four_docs, out=str(a), epochs=1, max_steps=5))
    assert [(r["epoch"], r["step"]) for r in metrics(a)] == [(1, 4)]
    train(opts(tmp_path, encoder_dir, four_docs, out=str(b), epochs=3, max_steps=5))
    assert [(r["epoch"], r["step"]) for r in metrics(b)] == [(1, 4), (2, 5)]


def test_finished_run_resume_reports_it_and_trains_nothing(tmp_path, encoder_dir, four_docs):
    out = tmp_path / "ckpt"
    first = train(opts(tmp_path, encoder_dir, four_docs, epochs=2))
    before = (out / "metrics.jsonl").read_text()
    nope, missing = tmp_path / "no-encoder", str(tmp_path / "missing.json")
    # --out and --resume are checked before the encoder is loaded or any data is read
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(opts(tmp_path, nope, missing, epochs=2))
    with pytest.raises(FileNotFoundError, match="no resume state"):
        train(opts(tmp_path, nope, missing, out=str(tmp_path / "new"), resume=True))
    again = train(opts(tmp_path, nope, missing, epochs=2, resume=True))
    assert again["already_finished"] is True
    assert (again["best_epoch"], again["best_dev_f1"]) == (
        first["best_epoch"],
        first["best_dev_f1"],
    )
    assert (out / "metrics.jsonl").read_text() == before
    r = CliRunner().invoke(app, cli_args(out, nope, missing, "--epochs", "2", "--resume"))
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "already finished" in text and f"best epoch {first['best_epoch']}" in text
    assert f"dev F1 {first['best_dev_f1']:.4f}" in text


def test_run_finished_by_an_older_version_is_recognised(tmp_path, encoder_dir, four_docs):
    """Run directories written before runs were marked finished: the epochs are all done."""
    out = tmp_path / "ckpt"
    first = train(opts(tmp_path, encoder_dir, four_docs, epochs=1))
    state_file = out / "last" / "state.json"
    state = json.loads(state_file.read_text())
    state.pop("finished", None)
    state_file.write_text(json.dumps(state))
    again = train(opts(tmp_path, tmp_path / "no-encoder", four_docs, epochs=1, resume=True))
    assert again["already_finished"] is True and again["best_epoch"] == first["best_epoch"]
    assert len(metrics(out)) == 1


def test_ctrl_c_says_how_far_it_got_and_how_to_resume(
    tmp_path, encoder_dir, four_docs, monkeypatch
):
    real_train = train_module.train

    def ctrl_c_after_epoch_2(options, progress=None):
        def on_progress(ev):
            if progress:
                progress(ev)
            if ev.get("event") == "epoch" and ev["epoch"] == 2:
                raise KeyboardInterrupt

        return real_train(options, on_progress)

    monkeypatch.setattr(train_module, "train", ctrl_c_after_epoch_2)
    out = tmp_path / "run dir"  # a space: the printed command must quote it
    r = CliRunner().invoke(app, cli_args(out, encoder_dir, four_docs, "--epochs", "3"))
    assert r.exit_code == 130, r.output
    lines = [x for x in r.output.splitlines() if "interrupted" in x]
    assert len(lines) == 1 and "last finished epoch: 2 of 3" in lines[0]
    args = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert args[:2] == ["docunet-rt", "train"] and args[-1] == "--resume"
    monkeypatch.undo()
    r = CliRunner().invoke(app, args[1:])
    assert r.exit_code == 0, r.output
    assert [x["epoch"] for x in metrics(out)] == [1, 2, 3]


@pytest.mark.parametrize("module", ["torch", "transformers"])
def test_train_without_the_training_extras_names_the_pip_command(tmp_path, four_docs, module):
    args = ["train", "--train", four_docs, "--dev", four_docs, "--out", str(tmp_path / "o")]
    code = (
        f"import sys\nsys.modules[{module!r}] = None  # as if it were not installed\n"
        f"from docunet_rt.cli.main import app\napp({args!r}, prog_name='docunet-rt')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:") and module in lines[0]
    assert "pip install 'docunet-rt[train]'" in lines[0]


def test_an_aborted_first_epoch_does_not_lock_the_run_directory(tmp_path, encoder_dir, four_docs):
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n')  # written, then killed before last/
    summary = train(opts(tmp_path, encoder_dir, four_docs, epochs=1))
    assert summary["epoch"] == 1
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1]


def test_an_empty_test_file_is_not_scored(tmp_path, encoder_dir, four_docs):
    empty = write_docs(tmp_path / "empty.json", [])
    summary = train(opts(tmp_path, encoder_dir, four_docs, epochs=1, test=str(empty)))
    assert "test" not in summary


def test_resume_with_other_options_is_refused(tmp_path, encoder_dir, four_docs, monkeypatch):
    def stop(ev):
        if ev.get("event") == "epoch":
            raise Stop

    with pytest.raises(Stop):
        train(opts(tmp_path, encoder_dir, four_docs, epochs=3), stop)
    with pytest.raises(ValueError, match=r"other options .*seed: 1 → 2"):
        train(opts(tmp_path, encoder_dir, four_docs, epochs=3, seed=2, resume=True))
    # an option the record predates counts as its default: "given" order, not "type"
    state_file = tmp_path / "ckpt" / "last" / "state.json"
    state = json.loads(state_file.read_text())
    del state["run"]["entity_order"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"entity_order: None → 'type'"):
        train(opts(tmp_path, encoder_dir, four_docs, epochs=3, entity_order="type", resume=True))
    # the same files named another way (relative to the working directory) are the same run
    monkeypatch.chdir(Path(four_docs).parent)
    rel = Path(four_docs).name
    summary = train(opts(tmp_path, encoder_dir, rel, epochs=3, resume=True))
    assert summary["epoch"] == 3


def test_select_last_keeps_the_final_epoch(tmp_path, encoder_dir, four_docs):
    """--select last (the train+dev protocol) keeps the final epoch whatever dev says; the default
    keeps the best dev epoch. A dev file without relations scores F1 0 at every epoch, so dev
    selection keeps epoch 1."""
    from safetensors.numpy import load_file

    docs = json.loads(Path(four_docs).read_text())
    for d in docs:
        d["labels"] = []
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps(docs))
    kept = {}
    for select in ("dev", "last"):
        out = tmp_path / select
        summary = train(opts(tmp_path, encoder_dir, four_docs, dev=str(dev), out=str(out),
                             epochs=3, select=select))  # fmt: skip
        kept[select] = read_checkpoint_config(out)["best"]["epoch"]
        assert summary["best_epoch"] == kept[select]
        final = load_file(out / "last" / "model.safetensors")
        saved = load_file(out / "model.safetensors")
        same = all(np.array_equal(saved[k], final[k]) for k in saved)
        assert same == (select == "last")
    assert kept == {"dev": 1, "last": 3}
    with pytest.raises(ValueError, match="unknown epoch selection 'best'"):
        train(opts(tmp_path, encoder_dir, four_docs, out=str(tmp_path / "x"), select="best"))


def test_adaptive_threshold_class_trains_and_exports(tmp_path, encoder_dir, four_docs, monkeypatch):
    """--threshold-class adaptive (ATLOP's learned threshold) learns the four documents, and the
    exported graphs decide exactly as PyTorch does (the threshold is inside the graph)."""
    from docunet_rt.data import read_documents
    from docunet_rt.export import check_parity, export_model

    losses = []
    real_loss = train_module.balanced_loss

    def spy(logits, labels, adaptive=False):
        losses.append(adaptive)
        return real_loss(logits, labels, adaptive)

    monkeypatch.setattr(train_module, "balanced_loss", spy)
    summary = train(opts(tmp_path, encoder_dir, four_docs, threshold_class="adaptive"))
    assert summary["best_dev_f1"] == pytest.approx(1.0)
    assert losses and all(losses)  # trained with the adaptive loss throughout
    ckpt = tmp_path / "ckpt"
    meta = read_checkpoint_config(ckpt)
    assert meta["model"]["threshold_class"] == "adaptive"
    assert meta["format"] == "docunet-rt-checkpoint/2"  # older packages refuse, not misread
    export_model(ckpt, tmp_path / "md", precisions="fp32")
    report = check_parity(ckpt, tmp_path / "md", read_documents(four_docs))
    assert report.triples_torch > 0 and report.ok, report.summary()
    with pytest.raises(ValueError, match="unknown threshold class 'learned'"):
        train(opts(tmp_path, encoder_dir, four_docs, out=str(tmp_path / "x"),
                   threshold_class="learned"))  # fmt: skip


def test_cli_train_options_reach_the_checkpoint(tmp_path, encoder_dir, four_docs):
    """--keep-epochs, --threshold-class, --unet-in-channels and --tune-threshold from the
    command line."""
    out = tmp_path / "cli"
    extra = ["--epochs", "2", "--keep-epochs", "--threshold-class", "adaptive",
             "--unet-in-channels", "2", "--tune-threshold"]  # fmt: skip
    r = CliRunner().invoke(app, cli_args(out, encoder_dir, four_docs, *extra))
    assert r.exit_code == 0, r.output
    assert "chosen on dev" in " ".join(r.output.split())
    meta = read_checkpoint_config(out)
    assert "threshold" in meta["best"]
    assert (meta["model"]["threshold_class"], meta["model"]["unet_in_channels"]) == ("adaptive", 2)
    assert sorted(p.name for p in (out / "epochs").iterdir()) == [
        "epoch_001.safetensors",
        "epoch_002.safetensors",
    ]
    r = CliRunner().invoke(app, cli_args(tmp_path / "x", encoder_dir, four_docs,
                                         "--threshold-class", "learned"))  # fmt: skip
    assert r.exit_code == 2 and "valid choices: fixed, adaptive" in r.output


def test_tune_threshold_records_the_dev_choice(tmp_path, encoder_dir, four_docs):
    """--tune-threshold (here on a finished run, resumed with it): the kept checkpoint decides
    at the threshold with the best dev F1 (recomputed here from its own logits), evaluation and
    the test score use it, and the test score at 0 stays beside it. Refused with --select last
    (dev is training data there)."""
    from docunet_rt.calibrate import tune_threshold
    from docunet_rt.data import read_documents
    from docunet_rt.evaluate import evaluate_path, pair_logits

    out = tmp_path / "ckpt"
    untuned = train(opts(tmp_path, encoder_dir, four_docs, epochs=6, test=four_docs))
    assert untuned.get("threshold") is None
    summary = train(opts(tmp_path, encoder_dir, four_docs, epochs=6, tune_threshold=True,
                         test=four_docs, resume=True))  # fmt: skip
    assert not summary.get("already_finished")
    again = train(opts(tmp_path, encoder_dir, four_docs, epochs=6, tune_threshold=True,
                       test=four_docs, resume=True))  # fmt: skip
    assert again["already_finished"] and again["threshold"] == summary["threshold"]
    meta = read_checkpoint_config(out)
    th = meta["best"]["threshold"]
    assert (
        meta["model"]["decision_threshold"] == th["threshold"] == summary["threshold"]["threshold"]
    )
    assert th["threshold"] != 0.0  # this short run is better off elsewhere than logit 0
    assert meta["format"] == "docunet-rt-checkpoint/2"
    docs = read_documents(four_docs)
    pairs, logits, relations = pair_logits(out, docs)
    assert tune_threshold(docs, pairs, logits, relations).threshold == th["threshold"]
    scored = evaluate_path(out, four_docs)
    assert scored["decision_threshold"] == th["threshold"]
    assert scored["scores"]["f1"] == pytest.approx(th["f1"])
    assert meta["best"]["test"]["f1"] == pytest.approx(th["f1"])  # test = dev here
    assert meta["best"]["test_at_logit_0"]["f1"] == pytest.approx(th["f1_at_zero"])
    assert meta["best"]["test_at_logit_0"]["f1"] == pytest.approx(untuned["test"]["f1"])
    [event] = [r for r in metrics(out)[-1:] if r.get("event") == "test"]
    assert event["decision_threshold"] == th["threshold"]
    with pytest.raises(ValueError, match="--tune-threshold chooses on dev, but --select last"):
        train(opts(tmp_path, encoder_dir, four_docs, out=str(tmp_path / "x"), select="last",
                   tune_threshold=True))  # fmt: skip
