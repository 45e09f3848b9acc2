"""The runtime benchmark report, reproducibly: PyTorch eager vs ONNX Runtime fp32/int8 (GPU
providers when they really run, against PyTorch CUDA: add torch-cuda-fp32,torch-cuda-bf16 to
--runtimes) → benchmarks/results/NAME.json, NAME.md and NAME.png.

    python benchmarks/run_bench.py --model MODEL_DIR --checkpoint CKPT_DIR \\
        --corpus /work/shared/data/docred/test.json \\
        --labelled /tmp/docunet_scratch/redocred/test.json \\
        --train-facts /tmp/docunet_scratch/redocred/train.json --name docred_cpu

The exact command line is recorded in the JSON (with versions, CPU model and thread counts).
Run it on an otherwise idle machine: every runtime is timed in its own process, passes alternate
between runtimes, and the figures are medians over ``--repeats`` passes. Defaults take about ten
minutes on a 2-core CPU; ``--quick`` about one (a smoke test, not a result).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from common import RESULTS, data_dir

from docunet_rt.bench import ALL_RUNTIMES, BenchOptions, run_bench, write_outputs
from docunet_rt.options import DEFAULT_MAX_TOKENS, RUNTIMES


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="exported MODEL_DIR (fp32 + int8)")
    ap.add_argument("--checkpoint", required=True, help="the CKPT_DIR it was exported from")
    ap.add_argument("--corpus", default=str(data_dir() / "docred" / "test.json"))
    ap.add_argument("--labelled", default=None, help="labelled file for F1 / int8 F1 change")
    ap.add_argument("--train-facts", default=None, help="training file, for Ign F1")
    ap.add_argument("--name", required=True, help="result file stem in benchmarks/results/")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--docs", type=int, default=None, help="corpus sample (default 200; 0 = all)")
    ap.add_argument("--labelled-docs", type=int, default=None, help="default --docs; 0 = all")
    ap.add_argument("--threads", type=int, default=None, help="default: usable cores")
    ap.add_argument("--repeats", type=int, default=None, help="default 3")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES), help="|".join(ALL_RUNTIMES))
    ap.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--scaling-torch", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    opts = BenchOptions(
        model=args.model, checkpoint=args.checkpoint, corpus=args.corpus,
        labelled=args.labelled, train_facts=args.train_facts, docs=args.docs,
        labelled_docs=args.labelled_docs, name=args.name, quick=args.quick,
        threads=args.threads, repeats=args.repeats, runtimes=args.runtimes.split(","),
        max_tokens=args.max_tokens, scaling=not args.no_scaling,
        scaling_torch=args.scaling_torch, command=shlex.join(["python", *sys.argv]),
    )  # fmt: skip
    result = run_bench(opts)
    files = write_outputs(result, args.out, args.name)
    for name, r in result["runtimes"].items():
        if r["status"] == "ok":
            vs = r.get("speedup_vs_torch")
            vs = f"x{vs:.2f} vs {r['torch_baseline']}" if vs is not None else "no baseline"
            print(
                f"{name:>15}: {r['docs_per_s']:7.2f} docs/s  {vs}  on {r['provider']}"
                f"  first result {r['time_to_first_result_s']:.2f}s  RSS {r['peak_rss_mb']:.0f} MB"
            )
        else:
            print(f"{name:>15}: skipped ({r['note']})")
    for t in result["targets"]:
        state = "met   " if t["met"] else "MISSED" if t["measured"] else "n/a   "
        print(f"{state} {t['name']} (value {t['value']})")
    print(f"wrote {files['json']}, {files['markdown']}", *files["plots"])


if __name__ == "__main__":
    main()
