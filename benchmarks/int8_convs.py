"""int8 with and without the statically quantised U-Net convolutions (issue 14): one checkpoint
exported three times (``--calibration none``; ``--calibration FILE``; the same with 8-bit
``--full-range`` weights, the setting for CPUs with VNNI), F1 of ORT fp32 and each int8 variant
on labelled files, and docs/s of every variant measured
side by side, alternating passes over the same documents with the same threads.

    python benchmarks/int8_convs.py --checkpoint /work/runs/redocred_docunet_e15_s66 \
        --calibration /tmp/docunet_scratch/redocred/dev.json \
        --labelled /tmp/docunet_scratch/redocred/test.json \
        --corpus ../shared/data/docred/test.json --docs 200 --threads 2 --name int8_convs_redocred
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import envelope, side_by_side, write_result

from docunet_rt.data import read_documents
from docunet_rt.evaluate import evaluate_path
from docunet_rt.export import export_model
from docunet_rt.runtime import Extractor

VARIANTS = {  # name: (MODEL_DIR key, precision)
    "ort_fp32": ("plain", "fp32"),
    "ort_int8_matmuls": ("plain", "int8"),
    "ort_int8_matmuls_convs": ("convs", "int8"),
    "ort_int8_matmuls_convs_full_range": ("convs_full", "int8"),  # 8-bit weights (VNNI CPUs)
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--calibration", required=True, help="documents that calibrate the convs")
    ap.add_argument("--labelled", action="append", required=True, help="labelled file (repeat)")
    ap.add_argument("--corpus", required=True, help="documents for the speed passes")
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/docunet_scratch/int8_convs"))
    ap.add_argument("--name", required=True)
    args = ap.parse_args()

    dirs = {k: args.scratch / k for k in ("plain", "convs", "convs_full")}
    export_model(args.checkpoint, dirs["plain"], precisions="fp32,int8", calibration="none")
    export_model(args.checkpoint, dirs["convs"], precisions="int8", calibration=args.calibration)
    export_model(
        args.checkpoint, dirs["convs_full"], precisions="int8", calibration=args.calibration,
        reduce_range=False,
    )  # fmt: skip
    convs = json.loads((dirs["convs"] / "model.json").read_text())["variants"]["int8"]

    f1: dict[str, dict] = {}
    for path in args.labelled:
        f1[path] = {}
        for name, (d, prec) in VARIANTS.items():
            s = evaluate_path(dirs[d], path, precision=prec, threads=args.threads)["scores"]
            f1[path][name] = {k: s.get(k) for k in ("precision", "recall", "f1")}
            print(f"{Path(path).name} {name}: F1 {s['f1']:.4f}", flush=True)
        base = f1[path]["ort_fp32"]["f1"]
        f1[path]["f1_change_vs_fp32_points"] = {
            n: 100 * (f1[path][n]["f1"] - base) for n in VARIANTS if n != "ort_fp32"
        }

    docs = read_documents(args.corpus)[: args.docs]
    ex = {
        n: Extractor(dirs[d], precision=p, threads=args.threads) for n, (d, p) in VARIANTS.items()
    }
    speed = side_by_side(ex, docs, args.repeats)
    base = speed["ort_int8_matmuls"]["docs_per_s"]
    out = {
        "checkpoint": args.checkpoint,
        "calibration": args.calibration,
        "int8_convolutions": convs.get("convolutions"),
        "threads": args.threads,
        "speed_docs": len(docs),
        "corpus": args.corpus,
        "f1": f1,
        "speed": speed,
        "int8_convs_vs_int8_matmuls": speed["ort_int8_matmuls_convs"]["docs_per_s"] / base,
    }
    print(write_result(args.name, envelope(sys.argv, kind="int8_convs", **out)))


if __name__ == "__main__":
    main()
