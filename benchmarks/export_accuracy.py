"""Export a trained checkpoint and measure what issue 3 asks: export time, graph sizes, ORT vs
PyTorch parity (real + synthetic documents, > 512 wordpieces, 1-100 entities) and the F1 of
fp32 / int8 (several quantization settings) against PyTorch on a labelled file.

    python benchmarks/export_accuracy.py --checkpoint /work/runs/cdr_docunet_s66 \
        --data ../shared/data/cdr/test_filter.data --name export_cdr --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import envelope, write_result

from docunet_rt.data import read_documents
from docunet_rt.evaluate import evaluate_path
from docunet_rt.export import export_model
from docunet_rt.export.onnx import load_source
from docunet_rt.export.parity import check_parity
from docunet_rt.synth import synthetic_documents

DEFAULT_INT8 = "per_channel_reduce_range"  # what `docunet-rt export` writes by default
INT8_SETTINGS = {
    "per_channel": dict(per_channel=True, reduce_range=False),
    "per_channel_reduce_range": dict(per_channel=True, reduce_range=True),
    "per_tensor": dict(per_channel=False, reduce_range=False),
}


def sizes(model_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(model_dir.glob("*.onnx"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True, help="labelled file (F1 and parity)")
    ap.add_argument("--train-facts", default=None, help="training file for Ign F1")
    ap.add_argument("--name", required=True)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/docunet_scratch/export"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--settings", default=",".join(INT8_SETTINGS))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    out: dict = {"checkpoint": args.checkpoint, "data": args.data, "threads": args.threads}
    main_dir = args.scratch / args.name / "main"
    t0 = time.perf_counter()
    res = export_model(
        args.checkpoint, main_dir, precisions="fp32,int8", **INT8_SETTINGS[DEFAULT_INT8]
    )
    out["export_seconds"] = time.perf_counter() - t0
    out["int8_default_setting"] = DEFAULT_INT8  # the int8 graph behind the parity figures
    out["export_seconds_reported"] = res.seconds
    out["graph_bytes"] = sizes(main_dir)
    out["ops"] = res.ops

    model, tok, _ = load_source(args.checkpoint)
    docs = read_documents(args.data)
    synth = synthetic_documents(tok, model.config.max_length)
    parity = {}
    for label, dset in (("data", docs), ("synthetic", synth)):
        for prec in ("fp32", "int8"):
            rep = check_parity(args.checkpoint, main_dir, dset, precision=prec, model=model, tok=tok,
                               threads=args.threads, stages=False, tolerance=None)  # fmt: skip
            d = rep.to_dict()
            d.pop("shapes", None)
            d["triple_agreement"] = rep.triple_agreement
            d["triples_identical"] = rep.triples_identical
            parity[f"{label}_{prec}"] = d
            print(
                f"parity {label} {prec}: max|d| {rep.max_abs_diff:.2e} agreement {rep.triple_agreement:.4f}"
            )
    out["parity"] = parity
    out["synthetic_documents"] = {
        "count": len(synth),
        "max_wordpieces": max(d.num_tokens for d in synth),
        "entity_counts": sorted({len(d.entities) for d in synth}),
    }

    f1 = {
        "torch_fp32": evaluate_path(
            args.checkpoint, args.data, train_file=args.train_facts, threads=args.threads
        )["scores"]
    }
    f1["ort_fp32"] = evaluate_path(
        main_dir, args.data, train_file=args.train_facts, threads=args.threads
    )["scores"]
    for name in args.settings.split(","):
        d = main_dir if name == DEFAULT_INT8 else args.scratch / args.name / name
        if name != DEFAULT_INT8:
            export_model(args.checkpoint, d, precisions="int8", **INT8_SETTINGS[name])
        f1[f"ort_int8_{name}"] = evaluate_path(
            d, args.data, train_file=args.train_facts, precision="int8", threads=args.threads
        )["scores"]
    base = f1["ort_fp32"]["f1"]
    out["f1"] = {
        k: {kk: v.get(kk) for kk in ("precision", "recall", "f1", "ign_f1")} for k, v in f1.items()
    }
    out["int8_f1_change_vs_fp32_points"] = {
        k: 100 * (v["f1"] - base) for k, v in f1.items() if k.startswith("ort_int8")
    }
    out["targets"] = [
        {"name": "fp32 parity max |dlogit| <= 1e-3", "value": max(parity["data_fp32"]["max_abs_diff"], parity["synthetic_fp32"]["max_abs_diff"]), "threshold": 1e-3,
         "met": max(parity["data_fp32"]["max_abs_diff"], parity["synthetic_fp32"]["max_abs_diff"]) <= 1e-3},
        {"name": "fp32 identical triples", "value": parity["data_fp32"]["triples_identical"] and parity["synthetic_fp32"]["triples_identical"], "threshold": True,
         "met": parity["data_fp32"]["triples_identical"] and parity["synthetic_fp32"]["triples_identical"]},
        {"name": f"int8 ({DEFAULT_INT8}, the default) F1 change <= 0.5 points", "value": out["int8_f1_change_vs_fp32_points"][f"ort_int8_{DEFAULT_INT8}"], "threshold": -0.5,
         "met": abs(out["int8_f1_change_vs_fp32_points"][f"ort_int8_{DEFAULT_INT8}"]) <= 0.5},
    ]  # fmt: skip
    print(write_result(args.name, envelope(sys.argv, kind="export", **out)))


if __name__ == "__main__":
    main()
