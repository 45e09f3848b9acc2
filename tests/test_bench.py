"""Benchmark reports: a --quick run on a tiny exported model (one process per runtime), the
analytic FLOP counter (by hand and against torch's FlopCounterMode), make_tables and the CLI."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from conftest import random_document
from typer.testing import CliRunner

from docunet_rt import bench, options
from docunet_rt.cli import bench_cmd

REPO = Path(__file__).resolve().parents[1]
RUNTIMES = ["torch", "ort-fp32", "ort-int8", "ort-cuda-fp32"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny random checkpoint, its fp32+int8 export and a labelled 12-document corpus."""
    # imported here, not at module level: test_export registers the module as a pytest plugin,
    # and importing it first makes pytest warn that it cannot rewrite its asserts
    from _export_fixtures import build_tiny_checkpoint

    from docunet_rt.data import write_docred
    from docunet_rt.export import export_model

    root = tmp_path_factory.mktemp("bench")
    ckpt = build_tiny_checkpoint(root / "ckpt")
    export_model(ckpt, root / "model", precisions="fp32,int8")
    rng = np.random.default_rng(3)
    docs = [
        random_document(rng, int(rng.integers(20, 90)), int(rng.integers(2, 9)), f"d{i}")
        for i in range(12)
    ]
    write_docred(docs, root / "corpus.json", jsonl=False)
    return {"root": root, "ckpt": ckpt, "model": root / "model", "corpus": root / "corpus.json"}


@pytest.fixture(scope="module")
def quick_run(tiny) -> tuple[dict, dict]:
    opts = bench.BenchOptions(
        model=str(tiny["model"]), checkpoint=str(tiny["ckpt"]), corpus=str(tiny["corpus"]),
        labelled=str(tiny["corpus"]), train_facts=str(tiny["corpus"]), quick=True,
        runtimes=RUNTIMES, name="tiny_quick", command="pytest tests/test_bench.py",
    )  # fmt: skip
    result = bench.run_bench(opts)
    files = bench.write_outputs(result, tiny["root"] / "results", "tiny_quick")
    return result, files


def test_quick_run_writes_sane_json(quick_run):
    result, files = quick_run
    data = json.loads(Path(files["json"]).read_text())
    assert data["kind"] == "bench" and data["command"] == "pytest tests/test_bench.py"
    assert (
        data["versions"].get("onnxruntime") or data["versions"].get("onnxruntime-gpu")
    ) and data["machine"]["cores"] >= 1
    assert data["threads"]["ort_intra_op"] >= 1 and data["options"]["quick"]
    assert data["corpus"]["documents"] == 8 and data["corpus"]["batches"] >= 1
    rts = data["runtimes"]
    assert list(rts) == RUNTIMES
    for name in ("torch", "ort-fp32", "ort-int8"):
        r = rts[name]
        assert r["status"] == "ok", r
        positive = ("docs_per_s", "entity_pairs_per_s", "wordpieces_per_s", "peak_rss_mb")
        positive += ("time_to_first_result_s", "batch_latency_p50_s", "roofline_fraction")
        for key in positive:
            assert r[key] > 0, (name, key)
        assert r["docs_per_s_min"] <= r["docs_per_s"] <= r["docs_per_s_max"]
        assert r["batch_latency_p50_s"] <= r["batch_latency_p95_s"]
        assert set(r["time_split"]) == set(bench.STAGES)
        assert r["speedup_vs_torch"] > 0 and 0.0 <= r["agreement_vs_torch"]["jaccard"] <= 1.0
        assert 0.0 <= r["f1"] <= 1.0 and r["ign_f1"] is not None
        assert r["torch_imported"] == (name == "torch")
    assert rts["torch"]["speedup_vs_torch"] == pytest.approx(1.0)
    assert rts["ort-fp32"]["agreement_vs_torch"]["jaccard"] > 0.95  # fp32: same triples
    assert rts["ort-fp32"]["f1_change_vs_fp32"] == 0.0 and "f1_change_vs_fp32" in rts["ort-int8"]
    if not any(Path("/dev").glob("nvidia[0-9]*")):
        assert rts["ort-cuda-fp32"]["status"] == "skipped" and rts["ort-cuda-fp32"]["note"]
    assert data["peak_matmul"]["peak_gflops"] > 0
    assert data["flops"]["per_doc_mean"]["total"] > 0 and "layers" in data["flops"]["formula"]
    targets = data["targets"]
    assert len(targets) == len(bench.TARGETS)
    for t in targets:
        assert {"name", "value", "threshold", "met"} <= set(t) and isinstance(t["met"], bool)
        assert t["met"] is False or t["measured"]
    assert {r["sweep"] for r in data["scaling"]} == {"entities", "length"}
    assert all(r["docs_per_s"] > 0 and r["flops_per_doc"] > 0 for r in data["scaling"])
    assert data["profile"]["encoder"]["ops"] and data["profile"]["head"]["total_ms"] > 0


def test_markdown_report(quick_run):
    _, files = quick_run
    md = Path(files["markdown"]).read_text()
    assert "| ort-int8 |" in md and "## Targets" in md and "pytest tests/test_bench.py" in md
    assert "skipped" in md and "## ORT op profile" in md
    missed = [t for t in quick_run[0]["targets"] if not t["met"]]
    for t in missed:  # a missed target is said plainly
        assert f"**{t['name']}: " in md


def test_flops_by_hand():
    dims = bench.EncoderDims(layers=2, hidden=4, intermediate=8)
    # per window: 2·L·4·(16 + 16) + 4·L²·4 = 256 L + 16 L²; L = 3 → 912, L = 5 → 1680
    assert bench.encoder_flops([3, 5], dims) == 2 * (912 + 1680)
    # n = 4, C = 1, b = 2, out = 2; conv3(a, b, m) = 18·a·b·m²:
    # down 576 + 1152 + 576 + 1152 + 2·288 = 4032; up1 128 + 1152 + 288; up2 128 + 1152 + 288;
    # 1×1: 2·1·2·16 = 64
    assert bench.unet_flops(4, 1, 2, 2) == 4032 + 1568 + 1568 + 64
    assert bench.unet_flops(4, 1, 2, 2, use_unet=False) == 2 * 16 * (1 * 2 + 2 * 1 + 1 * 2)


def test_flops_match_torch_flop_counter(tiny):
    """The analytic count equals torch's own matmul/conv count (encoder: but for the unused
    BERT pooler, 2·H² per window, which the exported graph drops)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from docunet_rt.checkpoint import load_checkpoint
    from docunet_rt.features import build_features, collate
    from docunet_rt.model import Encoder, batch_to_tensors

    model, tok = load_checkpoint(tiny["ckpt"])
    dims = bench.encoder_dims(tiny["ckpt"])
    rng = np.random.default_rng(5)
    for n_tokens, n_ents in ((20, 3), (70, 9)):
        f = build_features(random_document(rng, n_tokens, n_ents), tok, model.config)
        t = batch_to_tensors(collate([f], tok, model.config))
        with torch.no_grad(), FlopCounterMode(display=False) as enc:
            Encoder(model.encoder)(t["input_ids"], t["attention_mask"], t["win_rows"])
        with torch.no_grad(), FlopCounterMode(display=False) as full:
            model(t)
        ours = bench.document_flops(f, model.config, dims)
        pooler = len(f.windows) * 2 * dims.hidden**2
        assert enc.get_total_flops() - pooler == ours["encoder"]
        assert full.get_total_flops() - enc.get_total_flops() == ours["head"]


def test_make_tables_renders_and_rewrites_readme(quick_run, tmp_path):
    results = Path(quick_run[1]["json"]).parent
    training = {
        "kind": "training", "command": "docunet-rt train ...", "selected_epoch": 3,
        "epochs_done": 8, "dev": {"f1": 0.61, "ign_f1": 0.59}, "test": {"f1": 0.6, "ign_f1": 0.58},
        "mean_train_seconds_per_epoch": 100.0, "mean_train_docs_per_s": 4.0,
    }  # fmt: skip
    (results / "cdr_train.json").write_text(json.dumps(training))
    parity = [{"precision": "fp32", "documents": 10, "max_abs_diff": 1e-5, "mean_abs_diff": 1e-6,
               "triple_agreement": 1.0, "ok": True}]  # fmt: skip
    (results / "parity.json").write_text(json.dumps(parity))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\nafter\n")
    script = REPO / "benchmarks" / "make_tables.py"
    args = [sys.executable, str(script), "--results", str(results)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert "| ort-fp32 |" in out and "| cdr_train | 3 / 8 | 0.6100" in out and "1.00e-05" in out
    subprocess.run([*args, "--readme", str(readme)], check=True, capture_output=True)
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- results:end -->\n\nafter\n")
    assert "Targets met:" in text and "| fp32 | 10 |" in text


def test_cli_rejects_unknown_runtime(tiny):
    app = typer.Typer()
    bench_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `bench` a named subcommand
    args = ["bench", "--model", str(tiny["model"]), "--checkpoint", str(tiny["ckpt"])]
    res = CliRunner().invoke(app, [*args, "--corpus", str(tiny["corpus"]), "--runtimes", "tvm"])
    assert res.exit_code == 2 and "unknown runtime" in res.output
    # the valid choices listed are options.RUNTIMES, the one tuple the library also checks
    assert f"valid choices: {', '.join(options.RUNTIMES)}" in " ".join(
        res.output.replace("│", " ").split()
    )


def test_runtime_choices_come_from_options():
    """The CLI, the harness and the package all use options.RUNTIMES (no mirrored copy)."""
    assert bench_cmd.RUNTIMES is options.RUNTIMES
    assert bench.RUNTIMES is options.RUNTIMES
    assert bench.CPU_RUNTIMES is options.CPU_RUNTIMES
    assert bench.GPU_RUNTIMES is options.GPU_RUNTIMES
    default = inspect.signature(bench_cmd.bench).parameters["runtimes"].default.default
    assert default == ",".join(options.RUNTIMES)
    assert tuple(bench.BenchOptions(model="m", checkpoint="c", corpus="x").runtimes) == (
        options.RUNTIMES
    )
    with pytest.raises(ValueError, match="valid choices: " + ", ".join(options.RUNTIMES)):
        bench.BenchOptions(model="m", checkpoint="c", corpus="x", runtimes=["tvm"]).resolved()


def test_envelope_and_formula(tmp_path, monkeypatch):
    """The envelope comes from docunet_rt.bench.envelope (benchmarks/common.py re-exports it;
    tests/test_architecture.py checks that the package never reaches into benchmarks/)."""
    env = bench.harness.envelope("cmd", kind="x")
    assert env["command"] == "cmd" and env["kind"] == "x" and env["machine"]["cores"] >= 1
    assert env["git_commit"] == bench.envelope.git_commit()  # the source tree's repository
    monkeypatch.setattr(bench.envelope, "SOURCE_ROOT", tmp_path)  # no repository around it
    assert bench.envelope.git_commit() is None
    assert bench.FORMULA.startswith("(multiply-add = 2)") and "layers" in bench.FORMULA
