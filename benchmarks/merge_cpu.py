"""Where the window merge should run on the CPU: numpy on the host, or the MODEL_DIR's merge
graph chained with IO binding (the GPU path). Same documents, same batches, passes alternating
A B A B …; docs/s, merge seconds and whether the triples are identical.

    python benchmarks/merge_cpu.py --model MODEL_DIR --name merge_cpu --docs 200 --threads 2
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    docs = read_documents(need(data_dir() / "docred" / "test.json"))[: args.docs]
    opts = ExtractOptions()
    runs = {}
    for prec in args.precisions.split(","):
        exs = {
            m: Extractor(args.model, device="cpu", precision=prec, threads=args.threads, merge=m)
            for m in ("numpy", "graph")
        }
        feats = [exs["numpy"].features(d) for d in docs]
        for ex in exs.values():  # warm-up
            ex.logits(feats[:8], opts)
        secs: dict[str, list[float]] = {m: [] for m in exs}
        merge_s: dict[str, list[float]] = {m: [] for m in exs}
        triples = {}
        for _ in range(args.passes):
            for m, ex in exs.items():
                before = ex.timings["merge"]
                t = time.perf_counter()
                res = list(ex.extract(docs, opts))
                secs[m].append(time.perf_counter() - t)
                merge_s[m].append(ex.timings["merge"] - before)
                triples[m] = [[t.to_dict() for t in r.triples] for r in res]
        row = {
            m: {
                "docs_per_s": len(docs) / statistics.median(secs[m]),
                "seconds": secs[m],
                "merge_seconds": statistics.median(merge_s[m]),
            }
            for m in exs
        }
        row["graph_vs_numpy"] = row["graph"]["docs_per_s"] / row["numpy"]["docs_per_s"]
        row["triples_identical"] = triples["graph"] == triples["numpy"]
        runs[prec] = row
        print(
            f"{prec}: numpy {row['numpy']['docs_per_s']:.2f} docs/s (merge "
            f"{row['numpy']['merge_seconds']:.2f}s), graph {row['graph']['docs_per_s']:.2f} "
            f"(merge {row['graph']['merge_seconds']:.2f}s), ratio {row['graph_vs_numpy']:.3f}, "
            f"triples identical {row['triples_identical']}"
        )
    payload = envelope(
        sys.argv, kind="merge_cpu", model=args.model, documents=len(docs), threads=args.threads,
        passes=args.passes, runs=runs,
    )  # fmt: skip
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
