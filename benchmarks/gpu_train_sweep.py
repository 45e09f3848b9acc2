"""Issue 14's training runs on one GPU, in one command: the Re-DocRED recipe over three seeds,
its fixed-threshold comparator over the same seeds, and the head sweep (U-Net widths, projected
channels) on Re-DocRED and CDR. On the CPU each run takes about 1.5-2.5 hours (the epoch times in
the training results); issue 14 puts 10 epochs of 400 documents at about a minute on an H200.

    python benchmarks/gpu_train_sweep.py --results OUT_DIR                 # on the GPU machine
    python benchmarks/gpu_train_sweep.py --results OUT_DIR --dry-run       # CPU: 2 steps, 4 docs

Runs start in the order of JOBS (the most wanted first), --parallel at a time; none starts after
--start-by seconds and every one still running at --stop-by is stopped and recorded as such, so
the command ends inside a device lease. Each finished run becomes a training result JSON in
OUT_DIR (what ``collect_training.py`` writes, named ``training_<job>_gpu_seed<N>``), and
OUT_DIR/gpu_train_sweep.json lists every job: command, seconds, exit code, output tail.
``--encoder-fp16 DIR`` takes an encoder whose weights travelled as fp16 safetensors and casts
them back to fp32 before training (the runs train in fp32 weights with AMP, as any other).

On a lent device machine (its Python has torch and transformers, not orjson; only the
repository travels), prepare an ignored folder ``.gpu/`` (in .git/info/exclude) beside the
sources: ``minilm16/`` (the embedded MiniLM directory with its safetensors cast to fp16, 45 MB),
``site/`` (the cp312 orjson wheel, unzipped) and ``data/`` (cdr/*_filter.data,
redocred/dev_revised.json, docred/rel_info.json: 8 MB), then run in one call, carrying ``.gpu``:

    export PYTHONPATH=$PWD:$PWD/.gpu/site DOCUNET_DATA=$PWD/.gpu/data HF_HUB_OFFLINE=1
    python3 benchmarks/gpu_train_sweep.py --results $OUT/r --encoder-fp16 .gpu/minilm16 \
        --commit SHA --parallel 8; tar czf $OUT/r.tgz -C $OUT r && rm -r $OUT/r

and unpack r.tgz's JSONs into benchmarks/results/ here.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from collect_training import summarize
from common import REPO, data_dir, envelope, need
from gpu_check import device_name

PY = sys.executable

# (job name, dataset, seed, extra train options); the recipe first, then its comparator, then
# the head sweep. The recipe: ATLOP's adaptive threshold, a dev-tuned decision logit, 15 epochs
# (training_redocred_adaptive_seed66 and training_redocred_docunet_e15_seed66 on the CPU).
RECIPE = ["--epochs", "15", "--threshold-class", "adaptive", "--tune-threshold"]
JOBS: list[tuple[str, str, int, list[str]]] = [
    *[("redocred_adaptive_e15", "redocred", s, RECIPE) for s in (66, 67, 68)],
    *[("redocred_docunet_e15", "redocred", s, ["--epochs", "15"]) for s in (66, 67, 68)],
    ("redocred_adaptive_e15_w128", "redocred", 66, [*RECIPE, "--unet-base", "128"]),
    ("redocred_adaptive_e15_w64", "redocred", 66, [*RECIPE, "--unet-base", "64"]),
    ("redocred_adaptive_e15_c6", "redocred", 66, [*RECIPE, "--unet-in-channels", "6"]),
    ("redocred_adaptive_e15_c12", "redocred", 66, [*RECIPE, "--unet-in-channels", "12"]),
    ("cdr_docunet_typeorder", "cdr", 66, []),
    ("cdr_docunet_typeorder_w128", "cdr", 66, ["--unet-base", "128"]),
    ("cdr_docunet_typeorder_w64", "cdr", 66, ["--unet-base", "64"]),
]


def data_files(split: Path, scratch: Path, dry: bool) -> dict[str, dict[str, Path]]:
    """Train/dev/test files per dataset; a dry run takes the first 4 documents of each."""
    cdr = data_dir() / "cdr"
    files = {
        "redocred": {p: split / f"{p}.json" for p in ("train", "dev", "test")},
        "cdr": {p: need(cdr / f"{p}_filter.data") for p in ("train", "dev", "test")},
    }
    if dry:
        scratch.mkdir(parents=True, exist_ok=True)
        for dataset, parts in files.items():
            for part, f in parts.items():
                small = scratch / f"{dataset}_{part}{f.suffix}"
                if f.suffix == ".json":
                    small.write_text(json.dumps(json.loads(f.read_text())[:4]))
                else:
                    small.write_text("".join(f.read_text().splitlines(keepends=True)[:4]))
                parts[part] = small
    return files


def train_command(dataset: str, seed: int, extra: list[str], out: Path,
                  files: dict[str, dict[str, Path]], encoder: Path | None, dry: bool) -> list[str]:  # fmt: skip
    """The command of benchmarks/train_runs.sh's redocred / cdr_type function, on the GPU."""
    cmd = [x for part, f in files[dataset].items() for x in (f"--{part}", str(f))]
    if dataset == "redocred":
        rel_info = need(data_dir() / "docred" / "rel_info.json")
        cmd += ["--relations", str(rel_info), "--epochs", "10", "--lr-encoder", "5e-5"]
    else:
        cmd += ["--epochs", "8", "--entity-order", "type"]
    cmd += ["--out", str(out), "--batch-size", "4", "--seed", str(seed), *extra]
    cmd += ["--encoder", str(encoder)] if encoder else []
    # dry run: the same commands for two steps on the CPU (the later --epochs wins)
    # (on the GPU, 2 CPU threads each: eight runs side by side share the machine's 16 cores)
    cmd += ["--device", "cpu", "--epochs", "1", "--max-steps", "2", "--threads", "1"] if dry else [
        "--device", "cuda", "--threads", "2"]  # fmt: skip
    return [PY, "-m", "docunet_rt", "train", *cmd]


def fp32_encoder(src: Path, dst: Path) -> Path:
    """A copy of the encoder directory ``src`` with its fp16 safetensors cast back to fp32."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    for f in dst.glob("*.safetensors"):
        weights = load_file(f)
        save_file({k: v.float() if v.dtype == torch.float16 else v for k, v in weights.items()},
                  f, metadata={"format": "pt"})  # fmt: skip
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--results", type=Path, required=True, help="folder for the result JSONs")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/docunet_gpu_sweep"))
    ap.add_argument("--encoder", type=Path, help="local HF encoder directory (default: MiniLM)")
    ap.add_argument("--encoder-fp16", type=Path, help="the same, with fp16 weights to cast back")
    ap.add_argument("--jobs", help="comma-separated job names (default: all, in order)")
    ap.add_argument("--parallel", type=int, default=6)
    ap.add_argument("--start-by", type=float, default=300.0, help="no job starts after this (s)")
    ap.add_argument("--stop-by", type=float, default=500.0, help="running jobs stop here (s)")
    ap.add_argument("--commit", help="the git commit of the tree (a copy without .git)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, 2 steps, 4 documents per file")
    args = ap.parse_args()
    start = time.perf_counter()
    shutil.rmtree(args.runs, ignore_errors=True)
    args.runs.mkdir(parents=True)
    args.results.mkdir(parents=True, exist_ok=True)
    encoder = args.encoder
    if args.encoder_fp16:
        encoder = fp32_encoder(args.encoder_fp16, args.runs / "encoder")
    split = args.runs / "split"
    subprocess.run([PY, "benchmarks/redocred_split.py", "--out", str(split)], cwd=REPO, check=True)
    files = data_files(split, args.runs / "dry_data", args.dry_run)
    wanted = args.jobs.split(",") if args.jobs else None
    known = sorted({j[0] for j in JOBS})
    if wanted and (bad := [w for w in wanted if w not in known]):
        sys.exit(f"unknown job(s) {', '.join(bad)}; valid choices: {', '.join(known)}")
    queue = [j for j in JOBS if wanted is None or j[0] in wanted]
    running: dict[str, tuple[subprocess.Popen, float, list[str], Path]] = {}
    report: dict[str, dict[str, Any]] = {}
    while queue or running:
        now = time.perf_counter() - start
        while queue and len(running) < args.parallel and now < args.start_by:
            name, dataset, seed, extra = queue.pop(0)
            key, out = f"{name}_gpu_seed{seed}", args.runs / f"{name}_s{seed}"
            cmd = train_command(dataset, seed, extra, out, files, encoder, args.dry_run)
            with (args.runs / f"{key}.log").open("w") as log:
                proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            running[key] = (proc, time.perf_counter(), cmd, out)
        for key, (proc, t0, cmd, out) in list(running.items()):
            stop = time.perf_counter() - start > args.stop_by
            if proc.poll() is None and not stop:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            tail = (args.runs / f"{key}.log").read_text(errors="replace")[-1500:]
            report[key] = {"command": shlex.join(cmd), "seconds": time.perf_counter() - t0,
                           "exit_code": proc.returncode, "stopped": stop, "output_tail": tail}  # fmt: skip
            if proc.returncode == 0:
                payload = envelope(shlex.join(cmd), kind="training", **summarize(out))
                payload["git_commit"] = args.commit or payload.get("git_commit")
                payload["note"] = "trained on a GPU by benchmarks/gpu_train_sweep.py"
                payload["gpu"] = device_name(args.dry_run)
                (args.results / f"training_{key}.json").write_text(json.dumps(payload, indent=2))
            print(f"{key}: exit {proc.returncode} in {report[key]['seconds']:.0f}s", flush=True)
            del running[key]
        if queue and time.perf_counter() - start >= args.start_by:
            for name, _, seed, _ in queue:
                report[f"{name}_gpu_seed{seed}"] = {"skipped": "not started by --start-by"}
            queue = []
        time.sleep(2)
    summary = envelope(sys.argv, kind="gpu_train_sweep", gpu=device_name(args.dry_run), dry_run=args.dry_run,
                       jobs=report, seconds=time.perf_counter() - start)  # fmt: skip
    summary["git_commit"] = args.commit or summary.get("git_commit")
    (args.results / "gpu_train_sweep.json").write_text(json.dumps(summary, indent=2))
    print(args.results / "gpu_train_sweep.json")


if __name__ == "__main__":
    main()
