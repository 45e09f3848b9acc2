"""U-Net width: speed and F1 of checkpoints that differ in ``--unet-base`` (issue 14). Each
checkpoint is exported (fp32 and int8 with calibrated convolutions, as ``export`` does by
default); F1 of both variants on each labelled file; docs/s of PyTorch eager and both ORT variants
of every checkpoint measured side by side, alternating passes over the same documents with the
same threads, ``--repeats`` times (medians), with the head's share of the time.

Checkpoints trained for a handful of steps (``train --max-steps``) serve for speed alone: the
graphs' cost depends on their shapes, not on their weights; give no ``--labelled`` file then.

    python benchmarks/unet_width.py --checkpoint 256=/work/runs/cdr_typeorder_s66 \\
        --checkpoint 64=/work/runs/cdr_typeorder_w64_s66 \\
        --labelled ../shared/data/cdr/test_filter.data \\
        --corpus ../shared/data/cdr/test_filter.data --docs 200 --threads 2 --name unet_width_cdr
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import envelope, side_by_side, write_result

from docunet_rt.data import read_documents
from docunet_rt.evaluate import evaluate_path
from docunet_rt.export import export_model
from docunet_rt.runtime import Extractor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", action="append", required=True, help="NAME=CKPT (repeat)")
    ap.add_argument("--labelled", action="append", default=[], help="labelled file (repeat)")
    ap.add_argument("--corpus", required=True, help="documents for the speed passes")
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/docunet_scratch/unet_width"))
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    import torch

    from docunet_rt.checkpoint import load_checkpoint, read_checkpoint_config
    from docunet_rt.model import TorchBackend

    torch.set_num_threads(args.threads)
    ckpts = dict(c.split("=", 1) for c in args.checkpoint)
    dirs = {n: args.scratch / n for n in ckpts}
    width = {}
    for n, c in ckpts.items():
        export_model(c, dirs[n], precisions="fp32,int8")

    f1: dict[str, dict] = {}
    for path in args.labelled:
        f1[path] = {}
        for n in ckpts:
            for prec in ("fp32", "int8"):
                s = evaluate_path(dirs[n], path, precision=prec, threads=args.threads)["scores"]
                f1[path][f"{n}/ort_{prec}"] = {k: s.get(k) for k in ("precision", "recall", "f1")}
                print(f"{Path(path).name} {n} {prec}: F1 {s['f1']:.4f}", flush=True)

    docs = read_documents(args.corpus)[: args.docs]
    ex = {}
    for n, c in ckpts.items():
        model, tok = load_checkpoint(c)
        cfg = read_checkpoint_config(c)["model"]
        width[n] = cfg["unet_base"] if cfg.get("use_unet", True) else 0
        ex[f"{n}/torch"] = Extractor.from_backend(
            TorchBackend(model.eval(), tok), model.config, tok
        )
        for prec in ("fp32", "int8"):
            ex[f"{n}/ort_{prec}"] = Extractor(dirs[n], precision=prec, threads=args.threads)
    speed = side_by_side(ex, docs, args.repeats)
    for n in ckpts:
        t = speed[f"{n}/torch"]["docs_per_s"]
        for prec in ("fp32", "int8"):
            speed[f"{n}/ort_{prec}"]["vs_torch_same_width"] = (
                speed[f"{n}/ort_{prec}"]["docs_per_s"] / t
            )
    out = {
        "checkpoints": ckpts,
        "unet_base": width,
        "threads": args.threads,
        "speed_docs": len(docs),
        "corpus": args.corpus,
        "f1": f1,
        "speed": speed,
    }
    print(write_result(args.name, envelope(sys.argv, kind="unet_width", **out)))


if __name__ == "__main__":
    main()
