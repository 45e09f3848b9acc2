"""Everything issue 12 asks to measure on a GPU, in one run (about 8 minutes on one H100/H200):

  1. train a few epochs of Re-DocRED (the seeded 400/50/50 split) with --device cuda
  2. export fp32 and fp16 (with the merge graph)
  3. parity on the GPU: PyTorch CUDA vs the CUDA provider (fp32 bound 1e-3, identical triples)
  4. bench: torch-cuda-fp32/bf16 against ort-cuda-fp32/fp16 and tensorrt-fp16 (where TensorRT
     loads), same documents and batches, F1 on the split's test documents
  5. `docunet-rt extract` on the 1,000 DocRED test documents, fp16 and fp32
  6. the GPU knobs side by side (benchmarks/gpu_variants.py)
then benchmarks/results/gpu_check_<device>.json with each step's command, time, exit code and
key figures, and the issue's targets. Every step writes its own result file too.

    python benchmarks/gpu_check.py                    # on the GPU machine
    python benchmarks/gpu_check.py --dry-run          # on a CPU: tiny sizes, CPU stand-ins

A step that fails is recorded (exit code, output tail) and the next one still runs.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, data_dir, envelope, need, write_result

PY = sys.executable


def device_name(dry: bool) -> str:
    if dry:
        return "cpu-dry-run"
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return "no-cuda"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dry-run", action="store_true", help="CPU stand-ins, tiny sizes")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/docunet_gpu_check"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    dry = args.dry_run
    dev = "cpu" if dry else "cuda"
    name = device_name(dry)
    tag = slug(name)
    runs, scratch = args.runs, args.runs / "split"
    shutil.rmtree(runs, ignore_errors=True)  # a fresh run every time (train refuses an old --out)
    runs.mkdir(parents=True)
    data = data_dir()
    rel_info = need(data / "docred" / "rel_info.json")
    ckpt, model = runs / "ckpt", runs / "model"
    train = [PY, "-m", "docunet_rt", "train", "--train", str(scratch / "train.json"),
             "--dev", str(scratch / "dev.json"), "--test", str(scratch / "test.json"),
             "--relations", str(rel_info), "--out", str(ckpt), "--batch-size", "4",
             "--lr-encoder", "5e-5", "--seed", "66", "--device", dev]  # fmt: skip
    train += ["--epochs", "1", "--max-steps", "2", "--threads", "2"] if dry else [
        "--epochs", str(args.epochs)]  # fmt: skip
    gpu_rt = "torch-cuda-fp32,torch-cuda-bf16,ort-cuda-fp32,ort-cuda-fp16,tensorrt-fp16"
    bench = [PY, "benchmarks/run_bench.py", "--model", str(model), "--checkpoint", str(ckpt),
             "--labelled", str(scratch / "test.json"), "--train-facts", str(scratch / "train.json"),
             "--labelled-docs", "0", "--no-scaling", "--name", f"gpu_bench_{tag}"]  # fmt: skip
    bench += (["--runtimes", "torch,ort-fp32", "--quick", "--threads", "2"] if dry else
              ["--runtimes", gpu_rt, "--docs", "0", "--repeats", "2", "--max-tokens", "32768",
               "--threads", str(args.threads)])  # fmt: skip
    extract = [PY, "benchmarks/extract_corpus.py", "--model", str(model), "--device", dev,
               "--name", f"gpu_extract_{tag}", "--precisions", "fp16,fp32",
               "--scratch", str(runs / "extract")]  # fmt: skip
    extract += ["--limit", "40", "--threads", "2"] if dry else ["--threads", str(args.threads)]
    variants = [PY, "benchmarks/gpu_variants.py", "--model", str(model), "--device", dev,
                "--name", f"gpu_variants_{tag}"]  # fmt: skip
    variants += ["--docs", "40", "--passes", "1", "--precisions", "fp32"] if dry else []
    steps: list[tuple[str, list[str], int]] = [
        ("split", [PY, "benchmarks/redocred_split.py", "--out", str(scratch)], 60),
        ("train", train, 240),
        ("export", [PY, "-m", "docunet_rt", "export", str(ckpt), "-o", str(model),
                    "--precision", "fp32,fp16"], 180),
        ("parity", [PY, "-m", "docunet_rt", "parity", str(ckpt), str(model),
                    "--data", str(scratch / "test.json"), "--precision", "fp32,fp16",
                    "--device", dev, "--json", str(runs / "parity.json"),
                    *(["--limit", "6"] if dry else [])], 180),
        ("bench", bench, 600),
        ("extract", extract, 300),
        ("variants", variants, 400),
    ]  # fmt: skip
    report: dict[str, Any] = {"device": name, "dry_run": dry, "steps": {}}
    for step, cmd, limit in steps:
        t = time.perf_counter()
        try:
            p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=limit)
            code, tail = p.returncode, (p.stdout + p.stderr)[-2000:]
        except subprocess.TimeoutExpired as e:
            code, tail = 124, f"timed out after {limit}s; {str(e.output or '')[-1500:]}"
        report["steps"][step] = {"command": shlex.join(cmd), "seconds": time.perf_counter() - t,
                                 "exit_code": code, "output_tail": tail}  # fmt: skip
        print(f"{step}: exit {code} in {report['steps'][step]['seconds']:.0f}s", flush=True)
    report["results"] = collect(runs, tag)
    report["targets"] = targets(report["results"])
    print(write_result(f"gpu_check_{tag}", envelope(sys.argv, kind="gpu_check", **report)))


def load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect(runs: Path, tag: str) -> dict[str, Any]:
    """Key figures from each step's own result file (None where a step did not produce one)."""
    out: dict[str, Any] = {}
    par = load(runs / "parity.json") or []
    out["parity"] = {r["precision"]: {k: r[k] for k in ("max_abs_diff", "triples_identical", "ok")}
                     for r in par}  # fmt: skip
    bench = load(RESULTS / f"gpu_bench_{tag}.json") or {}
    out["bench"] = {
        k: {f: v.get(f) for f in ("status", "note", "provider", "docs_per_s", "f1",
                                  "speedup_vs_torch", "torch_baseline", "roofline_fraction")}
        for k, v in (bench.get("runtimes") or {}).items()
    }  # fmt: skip
    ext = load(RESULTS / f"gpu_extract_{tag}.json") or {}
    out["extract"] = {k: {f: v.get(f) for f in ("docs_per_s", "time_to_first_output",
                                                "peak_rss_mb", "provider", "docs")}
                      for k, v in (ext.get("runs") or {}).items()}  # fmt: skip
    var = load(RESULTS / f"gpu_variants_{tag}.json") or {}
    out["variants"] = {k: {f: v.get(f) for f in ("status", "docs_per_s", "jaccard_vs_first")}
                       for k, v in (var.get("runs") or {}).items()}  # fmt: skip
    return out


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 12's targets from the collected figures (None: not measured in this run)."""
    b, e, p = r["bench"], r["extract"], r["parity"]
    fp16, bf16 = b.get("ort-cuda-fp16", {}), b.get("torch-cuda-bf16", {})
    ratio = None
    if fp16.get("docs_per_s") and bf16.get("docs_per_s"):
        ratio = fp16["docs_per_s"] / bf16["docs_per_s"]
    f1 = [b.get(k, {}).get("f1") for k in ("ort-cuda-fp16", "ort-cuda-fp32")]
    rows = [
        ("ORT CUDA fp16 >= 1.5x PyTorch bf16 docs/s (bench, same batches)", ratio, ">=", 1.5),
        ("extract fp16 docs/s end to end >= 5000", (e.get("fp16") or {}).get("docs_per_s"),
         ">=", 5000.0),
        ("parity fp32 max |dlogit| <= 1e-3", (p.get("fp32") or {}).get("max_abs_diff"), "<=", 1e-3),
        ("parity fp32 triples identical", (p.get("fp32") or {}).get("triples_identical"), "==", True),
        ("fp16 F1 within 0.3 points of fp32", None if None in f1 else abs(f1[0] - f1[1]) * 100,
         "<=", 0.3),
        ("extract first output <= 2 s (fp16)", (e.get("fp16") or {}).get("time_to_first_output"),
         "<=", 2.0),
    ]  # fmt: skip
    ops = {">=": lambda v, t: v >= t, "<=": lambda v, t: v <= t, "==": lambda v, t: v == t}
    return [{"target": n, "value": v, "threshold": f"{c} {t}", "measured": v is not None,
             "met": v is not None and bool(ops[c](v, t))} for n, v, c, t in rows]  # fmt: skip


if __name__ == "__main__":
    main()
