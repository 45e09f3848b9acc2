"""Benchmark reports: a --quick run on a tiny exported model (one process per runtime), the
analytic FLOP counter (by hand and against torch's FlopCounterMode), make_tables and the CLI."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import typer
from conftest import random_document
from typer.testing import CliRunner

from docunet_rt import bench, options
from docunet_rt.cli import bench_cmd

REPO = Path(__file__).resolve().parents[1]
RUNTIMES = ["torch", "ort-fp32", "ort-int8", "ort-cuda-fp32"]
CUDA, TRT = "CUDAExecutionProvider", "TensorrtExecutionProvider"


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
    choice = {"threshold": -0.4, "f1": 0.63, "f1_at_zero": 0.61}  # train --tune-threshold
    tuned = {**training, "threshold_choice": choice, "test_at_logit_0": {"f1": 0.57}}
    (results / "cdr_tuned.json").write_text(json.dumps(tuned))
    for seed, f1 in ((66, 0.60), (67, 0.62)):  # a recipe over two seeds; a lone seed gets no row
        run = {**training, "test": {"f1": f1}, "dev": {"f1": 0.5}}
        (results / f"rdr_seed{seed}.json").write_text(json.dumps(run))
    (results / "lone_seed66.json").write_text(json.dumps(training))
    (results / "mix_seed66.json").write_text(json.dumps(tuned))  # tuned beside untuned: no mean
    (results / "mix_seed67.json").write_text(json.dumps(training))
    parity = [{"precision": "fp32", "documents": 10, "max_abs_diff": 1e-5, "mean_abs_diff": 1e-6,
               "triple_agreement": 1.0, "ok": True}]  # fmt: skip
    (results / "parity.json").write_text(json.dumps(parity))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\nafter\n")
    script = REPO / "benchmarks" / "make_tables.py"
    args = [sys.executable, str(script), "--results", str(results)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert "| ort-fp32 |" in out and "| cdr_train | 3 / 8 | 0.6100" in out and "1.00e-05" in out
    # a tuned run: dev F1 at its decision logit, and dev / test F1 at the model's own 0 beside
    assert "| cdr_tuned | 3 / 8 | 0.6300 | - | 0.6000 | 0.5800 | -0.4 (0.6100 / 0.5700) |" in out
    assert "| cdr_train | 3 / 8 | 0.6100 | 0.5900 | 0.6000 | 0.5800 | 0 (untuned) |" in out
    assert "| rdr | 66/67 | 50.0 ± 0.0 | 61.0 ± 1.4 | - |" in out and "| lone |" not in out
    assert "| mix | 66/67 | - | - | - |" in out
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


# ------------------------------------------------------------------------------------------------
# GPU honesty, tested on the CPU: the provider a runtime promises, its roofline peak and its
# PyTorch baseline (bench.runtimes), faked fall-backs, and the torch-cuda runtimes as skips
# ------------------------------------------------------------------------------------------------

NO_CUDA = "torch sees no CUDA device"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_runtime_table_promises_one_provider_per_name():
    from docunet_rt.runtime import sessions

    assert bench.ALL_RUNTIMES == options.RUNTIMES
    assert options.RUNTIMES[-2:] == ("torch-cuda-fp32", "torch-cuda-bf16")
    assert bench.EXPECTED_PROVIDER == {
        "torch": "torch-cpu",
        "ort-fp32": sessions.CPU,
        "ort-int8": sessions.CPU,
        "ort-cuda-fp32": sessions.CUDA,
        "ort-cuda-fp16": sessions.CUDA,
        "tensorrt-fp16": sessions.TENSORRT,
        "torch-cuda-fp32": "torch-cuda",
        "torch-cuda-bf16": "torch-cuda",
    }
    # every GPU runtime of options is a GPU runtime here, on the device options gives it
    for name, device in options.GPU_RUNTIMES.items():
        assert bench.RUNTIME_TABLE[name].gpu and bench.RUNTIME_TABLE[name].device == device
    baselines = {n: rt.baseline for n, rt in bench.RUNTIME_TABLE.items()}
    assert baselines == {
        "torch": "torch", "ort-fp32": "torch", "ort-int8": "torch",
        "ort-cuda-fp32": "torch-cuda-fp32", "ort-cuda-fp16": "torch-cuda-bf16",
        "tensorrt-fp16": "torch-cuda-bf16", "torch-cuda-fp32": "torch-cuda-fp32",
        "torch-cuda-bf16": "torch-cuda-bf16",
    }  # fmt: skip
    assert bench.provider_mismatch("tensorrt-fp16", sessions.CUDA) == (
        "ran on CUDAExecutionProvider, not TensorrtExecutionProvider"
    )
    assert (
        bench.provider_mismatch("torch-cuda-bf16", "torch-cpu")
        == "ran on torch-cpu, not torch-cuda"
    )
    assert all(bench.provider_mismatch(n, p) is None for n, p in bench.EXPECTED_PROVIDER.items())


def test_worker_refuses_a_runtime_on_another_provider(monkeypatch):
    """ONNX Runtime fell back from TensorRT to CUDA: the worker does not run it as TensorRT."""
    from docunet_rt.bench import worker

    monkeypatch.setattr(worker, "load_extractor", lambda spec: SimpleNamespace(provider=CUDA))
    spec = bench.RUNTIME_TABLE["tensorrt-fp16"].to_spec()
    with pytest.raises(worker.ProviderMismatch, match=f"^ran on {CUDA}, not {TRT}$") as e:
        worker.open_runtime(spec)
    assert e.value.provider == CUDA
    monkeypatch.setattr(worker, "load_extractor", lambda spec: SimpleNamespace(provider=TRT))
    assert worker.open_runtime(spec).provider == TRT


class _ReadyProc:
    """A worker that says it is ready on ``provider`` (harness._start's view of a worker)."""

    def __init__(self, provider: str) -> None:
        self.provider, self.p, self.t0 = provider, SimpleNamespace(kill=list, wait=list), 0.0

    def recv(self) -> dict:
        return {"event": "ready", "provider": self.provider, "load_s": 1.0, "first_doc_s": 1.0,
                "rss_mb": 1.0}  # fmt: skip

    def ask(self, cmd: str) -> dict:
        raise AssertionError(f"a mislabelled runtime must not be run ({cmd})")


def test_harness_skips_a_ready_worker_on_another_provider(monkeypatch, tmp_path):
    monkeypatch.setattr(bench.harness, "_Proc", lambda name, spec, tmp: _ReadyProc(CUDA))
    res, proc = bench.harness._start("tensorrt-fp16", {}, tmp_path)
    assert proc is None and res["status"] == "skipped" and res["provider"] == CUDA
    assert res["note"] == f"ran on {CUDA}, not {TRT}"


@pytest.fixture(scope="module")
def fallback_run(tiny) -> dict:
    """A run where ONNX Runtime "falls back": the ort-cuda-fp32 worker is handed the CPU device
    (its spec still promises CUDAExecutionProvider), plus the torch-cuda runtimes."""
    real = bench.harness._Proc

    def proc(name, spec, tmp):
        return real(name, {**spec, "device": "cpu"} if name == "ort-cuda-fp32" else spec, tmp)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench.harness, "_Proc", proc)
        opts = bench.BenchOptions(
            model=str(tiny["model"]), checkpoint=str(tiny["ckpt"]), corpus=str(tiny["corpus"]),
            docs=3, quick=True, scaling=False, name="fallback", command="pytest fallback",
            runtimes=["ort-fp32", "ort-cuda-fp32", "torch-cuda-fp32", "torch-cuda-bf16"],
        )  # fmt: skip
        return bench.run_bench(opts)


def test_a_fallback_is_skipped_never_reported_under_its_name(fallback_run):
    rts = fallback_run["runtimes"]
    cuda = rts["ort-cuda-fp32"]
    assert cuda["status"] == "skipped" and cuda["provider"] == "CPUExecutionProvider"
    assert re.fullmatch(r"ran on CPUExecutionProvider, not CUDAExecutionProvider", cuda["note"])
    assert "docs_per_s" not in cuda and "speedup_vs_torch" not in cuda
    assert rts["ort-fp32"]["status"] == "ok"
    assert rts["ort-fp32"]["provider"] == "CPUExecutionProvider"
    row = bench.headline_row("ort-cuda-fp32", cuda)
    assert row[1] == "skipped: ran on CPUExecutionProvider, not CUDAExecutionProvider"
    md = bench.render_markdown(fallback_run)
    assert "Providers actually used: ort-fp32 CPUExecutionProvider." in md


def test_torch_cuda_runtimes_without_cuda_are_skipped(fallback_run):
    rts = fallback_run["runtimes"]
    if _cuda():
        pytest.skip("this machine has CUDA: the torch-cuda runtimes ran (see the GPU tests)")
    for name in ("torch-cuda-fp32", "torch-cuda-bf16"):
        assert rts[name]["status"] == "skipped"
        assert re.fullmatch(NO_CUDA, rts[name]["note"]), rts[name]
    # the CPU runtime keeps CPU torch as its baseline, which did not run: no ratio at all
    assert (
        rts["ort-fp32"]["torch_baseline"] == "torch" and "speedup_vs_torch" not in rts["ort-fp32"]
    )
    gpu_peak = fallback_run["peak_matmul_gpu"]
    assert gpu_peak["available"] is False and gpu_peak["reason"]


def _runs(seconds: float) -> list[dict]:
    split = {"features": 0.1, "collate": 0.1, "encoder": 0.4, "merge": 0.1, "head": 0.2,
             "decode": 0.1}  # fmt: skip
    return [{"seconds": seconds, "latencies": [seconds / 2] * 2, "rss_mb": 100.0, **split}]


def _fabricated(gpu_peak: dict | None) -> dict:
    """A result as run_bench builds it, from fabricated passes: 10 documents, 1e12 FLOPs."""
    results = {
        "torch": {"status": "ok", "runs": _runs(10.0)},
        "ort-fp32": {"status": "ok", "runs": _runs(5.0)},
        "ort-cuda-fp32": {"status": "ok", "runs": _runs(0.5)},
        "ort-cuda-fp16": {"status": "ok", "runs": _runs(0.25)},
        "tensorrt-fp16": {"status": "ok", "runs": _runs(0.2)},
        "torch-cuda-bf16": {"status": "ok", "runs": _runs(0.4)},
        "torch-cuda-fp32": {"status": "skipped", "note": NO_CUDA},
    }
    for r in results.values():
        r.update(provider="fabricated", time_to_first_result_s=1.0)
    cpu_peak = {"peak_gflops": 100.0, "source": "ort MatMul", "threads": 2, "sizes": [1024],
                "best_of": 5}  # fmt: skip
    bench.summarize_runtimes(results, (10, 100, 1000, 1e12), cpu_peak, gpu_peak)
    facts = {n: [[[0, 1, "P1"]]] * 10 for n, r in results.items() if r["status"] == "ok"}
    bench.compare_to_baselines(results, facts)
    return {
        "command": "fabricated", "date": "2025-01-01", "options": {"repeats": 1},
        "threads": {"ort_intra_op": 2}, "corpus": {"documents": 10, "documents_in_file": 10,
        "path": "x", "sample_seed": 0, "entity_pairs": 100, "wordpieces": 1000, "batches": 1,
        "max_tokens": 4096}, "peak_matmul": cpu_peak, "peak_matmul_gpu": gpu_peak,
        "flops": {"per_doc_mean": {"total": 1e11, "encoder": 6e10, "head": 4e10}},
        "runtimes": results, "targets": bench.evaluate_targets(results),
    }  # fmt: skip


GPU_PEAK = {"available": True, "source": "torch.cuda matmul", "device": "fake H200",
            "peak_gflops": {"fp32": 50_000.0, "fp16": 400_000.0, "bf16": 380_000.0},
            "fp32_strict_gflops": 40_000.0, "sizes": [4096], "best_of": 5}  # fmt: skip


@pytest.mark.parametrize("gpu_peak", [None, {"available": False, "reason": "no NVIDIA driver"}])
def test_gpu_roofline_without_a_gpu_peak_is_none_never_the_cpu_peak(gpu_peak):
    res = _fabricated(gpu_peak)
    rts = res["runtimes"]
    # CPU runtimes: 1e12 FLOPs in 5 s = 200 GFLOP/s against the 100 GFLOP/s CPU peak
    assert rts["ort-fp32"]["roofline_fraction"] == pytest.approx(2.0)
    assert rts["ort-fp32"]["roofline_peak"] == {
        "device": "cpu",
        "precision": "fp32",
        "gflops": 100.0,
    }
    for name in ("ort-cuda-fp32", "ort-cuda-fp16", "tensorrt-fp16", "torch-cuda-bf16"):
        assert (
            rts[name]["roofline_fraction"] is None
            and rts[name]["roofline_fraction_inference"] is None
        )
        assert rts[name]["roofline_peak"]["gflops"] is None
        assert bench.headline_row(name, rts[name])[9] == "-"
    assert bench.headline_row("ort-fp32", rts["ort-fp32"])[9] == "200.0%"
    md = bench.render_markdown(res)
    assert "GPU roofline: none (" in md and "never the CPU peak" in md


def test_gpu_roofline_uses_the_gpu_peak_of_its_precision():
    rts = _fabricated(GPU_PEAK)["runtimes"]
    # 1e12 FLOPs: ort-cuda-fp32 in 0.5 s = 2000 GFLOP/s of the 50 000 fp32 (TF32) peak
    assert rts["ort-cuda-fp32"]["roofline_fraction"] == pytest.approx(2000 / 50_000)
    assert rts["ort-cuda-fp16"]["roofline_fraction"] == pytest.approx(4000 / 400_000)
    assert rts["tensorrt-fp16"]["roofline_fraction"] == pytest.approx(5000 / 400_000)
    assert rts["torch-cuda-bf16"]["roofline_fraction"] == pytest.approx(2500 / 380_000)
    assert rts["ort-fp32"]["roofline_fraction"] == pytest.approx(2.0)  # still the CPU peak
    assert rts["tensorrt-fp16"]["roofline_peak"] == {"device": "gpu", "precision": "fp16",
                                                     "gflops": 400_000.0}  # fmt: skip


def test_speedups_are_against_the_torch_baseline_of_the_same_family():
    res = _fabricated(GPU_PEAK)
    rts = res["runtimes"]
    assert rts["ort-fp32"]["speedup_vs_torch"] == pytest.approx(2.0)  # vs CPU torch
    assert rts["ort-fp32"]["torch_baseline"] == "torch"
    # fp16 runtimes vs torch-cuda-bf16 (0.4 s a pass), never vs CPU torch (10 s)
    assert rts["ort-cuda-fp16"]["speedup_vs_torch"] == pytest.approx(0.4 / 0.25)
    assert rts["tensorrt-fp16"]["speedup_vs_torch"] == pytest.approx(0.4 / 0.2)
    assert rts["tensorrt-fp16"]["torch_baseline"] == "torch-cuda-bf16"
    assert rts["tensorrt-fp16"]["agreement_vs_torch"]["jaccard"] == 1.0
    assert rts["torch-cuda-bf16"]["speedup_vs_torch"] == pytest.approx(1.0)
    # torch-cuda-fp32 was skipped: ort-cuda-fp32 has no ratio (not one against CPU torch)
    assert rts["ort-cuda-fp32"]["torch_baseline"] == "torch-cuda-fp32"
    assert "speedup_vs_torch" not in rts["ort-cuda-fp32"]
    assert "agreement_vs_torch" not in rts["ort-cuda-fp32"]
    cells = {n: bench.headline_row(n, r)[2] for n, r in rts.items() if r["status"] == "ok"}
    assert cells["ort-fp32"] == "2.00×" and cells["tensorrt-fp16"] == "2.00× vs torch-cuda-bf16"
    assert cells["ort-cuda-fp32"] == "- (torch-cuda-fp32 did not run)"
    md = bench.render_markdown(res)
    assert "fp32 runtimes vs `torch-cuda-fp32`, fp16/bf16 runtimes vs `torch-cuda-bf16`" in md
    assert "GPU roofline: measured dense matmul peak on fake H200" in md
    assert bench.evaluate_targets(rts)[0]["value"] == pytest.approx(2.0)  # CPU targets as before


def test_cli_and_options_accept_the_torch_cuda_runtimes(tiny):
    chosen = bench_cmd._runtimes("ort-cuda-fp16,torch-cuda-bf16, torch-cuda-fp32")
    assert chosen == ("ort-cuda-fp16", "torch-cuda-bf16", "torch-cuda-fp32")
    opts = bench.BenchOptions(model="m", checkpoint="c", corpus="x", runtimes=chosen).resolved()
    assert opts.runtimes == list(chosen)
    with pytest.raises(
        typer.BadParameter, match="valid choices: .*torch-cuda-fp32, torch-cuda-bf16"
    ):
        bench_cmd._runtimes("torch-cuda-fp16")
    # importing the CLI command (and the runtime table) stays free of numpy
    code = "import sys, docunet_rt.cli.bench_cmd; assert 'numpy' not in sys.modules, 'numpy'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gpu_matmul_peak_says_why_there_is_none():
    if _cuda():
        pytest.skip("this machine has CUDA (test_gpu_matmul_peak_on_cuda measures it)")
    peak = bench.measure_gpu_matmul_peak([64], reps=1)
    assert peak["available"] is False
    assert re.match(rf"torch: {NO_CUDA}; ONNX Runtime: ", peak["reason"]), peak


def test_ort_matmul_peak_binds_on_the_device():
    """The ONNX Runtime GPU fall-back of the peak (io binding, no host copies), on the CPU."""
    assert bench.peaks.ort_matmul_gflops("cpu", "fp32", [128], reps=2, threads=1) > 0


def _tiny_batch(tiny, device: str):
    from docunet_rt.checkpoint import load_checkpoint
    from docunet_rt.features import build_features, collate

    model, tok = load_checkpoint(tiny["ckpt"], device=device)
    rng = np.random.default_rng(11)
    feats = [build_features(random_document(rng, n, 5, f"b{n}"), tok, model.config)
             for n in (30, 70)]  # fmt: skip
    return model, tok, collate(feats, tok, model.config)


def test_timed_torch_backend_matches_torch_backend_on_the_cpu(tiny, monkeypatch):
    """The torch-cuda runtimes' backend computes what TorchBackend does; it synchronizes the
    device before each timer only on CUDA (on the CPU a synchronize would be a failure)."""
    import torch

    from docunet_rt.model import TorchBackend
    from docunet_rt.model import TorchBackend as TimedTorchBackend

    model, tok, batch = _tiny_batch(tiny, "cpu")
    calls: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.append(a))
    ref = TorchBackend(model, tok).run_collated(batch, max_tokens=64)
    timed = TimedTorchBackend(model, tok, "cpu", "fp32")
    np.testing.assert_array_equal(timed.run_collated(batch, max_tokens=64), ref)
    assert calls == [] and timed.provider == "torch-cpu"
    assert all(v > 0 for v in timed.timings.values())
    bf16 = TimedTorchBackend(model, tok, "cpu", "bf16").run_collated(batch, 64)  # CPU autocast
    assert bf16.dtype == np.float32 and np.abs(bf16 - ref).max() < 0.5
    timed.device = torch.device("cuda")  # only what clock() looks at
    timed.clock()
    assert calls == [(torch.device("cuda"),)]
    with pytest.raises(ValueError, match="precision 'fp16'"):
        TimedTorchBackend(model, tok, "cpu", "fp16")


@pytest.mark.skipif(not any(Path("/dev").glob("nvidia[0-9]*")), reason="needs an NVIDIA GPU")
def test_gpu_matmul_peak_on_cuda():
    if not _cuda():
        pytest.skip(NO_CUDA + " (CPU-only torch): the peak comes from ONNX Runtime")
    peak = bench.measure_gpu_matmul_peak([1024], reps=2)
    assert peak["available"] and peak["source"] == "torch.cuda matmul"
    assert all(v > 0 for v in peak["peak_gflops"].values())
    assert peak["peak_gflops"]["fp32"] >= peak["fp32_strict_gflops"]


@pytest.mark.skipif(not any(Path("/dev").glob("nvidia[0-9]*")), reason="needs an NVIDIA GPU")
def test_timed_torch_backend_on_cuda(tiny):
    if not _cuda():
        pytest.skip(NO_CUDA)
    from docunet_rt.model import TorchBackend
    from docunet_rt.model import TorchBackend as TimedTorchBackend

    model, tok, batch = _tiny_batch(tiny, "cpu")
    ref = TorchBackend(model, tok).run_collated(batch)
    model_gpu, _, _ = _tiny_batch(tiny, "cuda")
    for precision, tol in (("fp32", 1e-3), ("bf16", 0.5)):
        be = TimedTorchBackend(model_gpu, tok, "cuda", precision)
        assert be.provider == "torch-cuda"
        assert np.abs(be.run_collated(batch) - ref).max() < tol
