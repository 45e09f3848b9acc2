"""The GPU path's knobs, measured side by side on the same documents: where the window merge
runs (numpy on the host vs the merge graph chained with IO binding), shape buckets, cuDNN
algorithm search and NHWC convolutions, per precision. Docs/s (median of passes, after a warm-up
pass that also lets cuDNN tune), and triple agreement with the first variant.

    python benchmarks/gpu_variants.py --model MODEL_DIR --device cuda --name gpu_variants_h200

``--device cpu`` runs the same loop on the CPU (a dry run of the script; the GPU knobs do not
apply there and are reported as such).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from common import data_dir, envelope, need, write_result

from docunet_rt.data import read_documents
from docunet_rt.options import ExtractOptions
from docunet_rt.runtime import Extractor

VARIANTS = {  # name: Extractor keyword arguments
    "host_merge": {"merge": "numpy", "shape_buckets": False},
    "graph_merge": {"merge": "graph", "shape_buckets": False},
    "graph_merge+buckets": {"merge": "graph", "shape_buckets": True},
    "graph_merge+buckets+exhaustive": {
        "merge": "graph", "shape_buckets": True,
        "cuda_options": {"cudnn_conv_algo_search": "EXHAUSTIVE"},
    },
    "graph_merge+buckets+exhaustive+nhwc": {
        "merge": "graph", "shape_buckets": True,
        "cuda_options": {"cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "1"},
    },
}  # fmt: skip


def jaccard(a: list[set], b: list[set]) -> float:
    inter = sum(len(x & y) for x, y in zip(a, b, strict=True))
    union = sum(len(x | y) for x, y in zip(a, b, strict=True))
    return 1.0 if union == 0 else inter / union


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precisions", default="fp16,fp32")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=None, help="default: the device's")
    args = ap.parse_args()
    docs = read_documents(need(data_dir() / "docred" / "test.json"))[: args.docs]
    opts = ExtractOptions(max_tokens=args.max_tokens)
    runs: dict[str, dict] = {}
    for prec in args.precisions.split(","):
        base = None
        for name, kw in VARIANTS.items():
            key = f"{prec}/{name}"
            try:
                ex = Extractor(args.model, device=args.device, precision=prec, **kw)
                list(ex.extract(docs[:64], opts))  # warm-up (and cuDNN tuning)
                secs, facts = [], []
                for _ in range(args.passes):
                    t = time.perf_counter()
                    res = list(ex.extract(docs, opts))
                    secs.append(time.perf_counter() - t)
                facts = [{(x.head.index, x.tail.index, x.relation) for x in r.triples} for r in res]
            except Exception as e:  # noqa: BLE001 - a variant that cannot run is reported
                runs[key] = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:400]}
                print(f"{key}: failed ({e})")
                continue
            base = base or facts
            runs[key] = {
                "status": "ok", "provider": ex.provider, "merge": ex.backend.merge_mode,
                "buckets": ex.backend.buckets is not None,
                "docs_per_s": len(docs) / statistics.median(secs), "seconds": secs,
                "stage_seconds": dict(ex.timings), "triples": sum(len(f) for f in facts),
                "jaccard_vs_first": jaccard(facts, base), "budget": ex.budget(opts),
            }  # fmt: skip
            print(f"{key}: {runs[key]['docs_per_s']:.1f} docs/s on {ex.provider}")
    payload = envelope(
        sys.argv, kind="gpu_variants", model=args.model, device=args.device,
        documents=len(docs), passes=args.passes, runs=runs,
    )  # fmt: skip
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
