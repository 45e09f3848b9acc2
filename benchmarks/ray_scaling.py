"""The Ray engine against the local ``extract`` on the DocRED test documents: docs/s of the local
job with 1 and 2 ONNX Runtime threads and of a local Ray cluster with 1 and 2 single-thread
actors, the Ray overhead at one actor, the scaling from 1 to 2 actors, a check that the merged
Ray output has the same triples (and bytes) as the local run, and a PROJECTION (not a
measurement) for a 64-core node and an 8-GPU node from the measured per-actor rate.

    python benchmarks/ray_scaling.py --model MODEL_DIR --name ray_scaling_docred1000
    python benchmarks/ray_scaling.py --model MODEL_DIR --docs 60 --name ray_scaling_dryrun

Each local run is its own ``docunet-rt extract`` process (docs/s from its summary: model load
excluded). Each Ray run is timed from the start of the dataset's execution to the end of its
write (actor start-up, i.e. process start and model load in every actor, included; ``ray.init``
excluded and reported apart), then merged with ``docunet-rt merge``'s function.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from common import REPO, data_dir, envelope, need, write_result

from docunet_rt.cli.merge_cmd import merge_ray_output
from docunet_rt.corpus import read_corpus_lines
from docunet_rt.distributed import ModelFactory, run_ray_extraction
from docunet_rt.options import ExtractOptions

CPU_NODE_CORES = 64
GPU_NODE_GPUS = 8


def triples(path: Path) -> set[tuple[Any, ...]]:
    out = set()
    for raw in path.read_bytes().splitlines():
        d = orjson.loads(raw)
        for t in d["triples"]:
            out.add((d["id"], t["head"]["index"], t["tail"]["index"], t["relation"]["id"]))
    return out


def local_run(args: argparse.Namespace, corpus: Path, threads: int) -> dict[str, Any]:
    out = args.scratch / f"local.t{threads}.jsonl"
    summary = args.scratch / f"local.t{threads}.summary.json"
    for f in (out, Path(f"{out}.progress"), Path(f"{out}.errors.jsonl"), summary):
        f.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "docunet_rt", "extract", str(corpus), "-o", str(out),
           "--model", args.model, "--device", "cpu", "--precision", args.precision,
           "--threads", str(threads), "--summary", str(summary)]  # fmt: skip
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 3):
        sys.exit(p.stderr)
    s = orjson.loads(summary.read_bytes())
    print(f"local, {threads} thread(s): {s['docs_per_s']:.2f} docs/s ({wall:.1f}s process)")
    return {"threads": threads, **s, "process_wall_s": wall, "out": str(out),
            "command": " ".join(cmd[2:])}  # fmt: skip


def ray_run(args: argparse.Namespace, corpus: Path, actors: int) -> dict[str, Any]:
    import shutil

    out_dir = args.scratch / f"ray.a{actors}"
    shutil.rmtree(out_dir, ignore_errors=True)
    factory = ModelFactory(str(Path(args.model).resolve()), "cpu", args.precision, threads=1)
    s = run_ray_extraction(
        corpus, str(out_dir), factory, ExtractOptions(), actors=actors, num_cpus=1,
        batch_docs=args.batch_docs,
    )  # fmt: skip
    merged = args.scratch / f"ray.a{actors}.jsonl"
    t0 = time.perf_counter()
    m = merge_ray_output(str(out_dir), merged, Path(f"{merged}.errors.jsonl"))
    merge_s = time.perf_counter() - t0
    print(
        f"ray, {actors} actor(s): {s.docs_per_s:.2f} docs/s ({s.seconds:.1f}s), merge {merge_s:.1f}s"
    )
    return {"actors": actors, "threads_per_actor": 1, "docs": s.docs, "errors": s.errors,
            "triples": s.triples, "seconds": s.seconds, "docs_per_s": s.docs_per_s,
            "per_actor_docs_per_s": s.docs_per_s / actors, "merge_s": merge_s,
            "merged_docs": m.docs, "out": str(merged)}  # fmt: skip


def featurize_rate(args: argparse.Namespace, corpus: Path) -> float:
    """Docs/s of parse + featurize alone on one core: what a GPU actor does on its CPU before
    each batch (``extract_records`` runs it in the actor, not overlapped with inference)."""
    from docunet_rt.features import TokenizerInfo
    from docunet_rt.runtime import ModelSpec, prepare_records

    spec = ModelSpec.load(args.model)
    tok = TokenizerInfo.from_dir(spec.path)
    lines = list(read_corpus_lines(corpus))
    t0 = time.perf_counter()
    prepare_records(lines, tok, spec.config, ExtractOptions())
    return len(lines) / (time.perf_counter() - t0)


def projection(ray1: dict[str, Any], ray2: dict[str, Any], feat: float, gpu: float | None):
    per_actor = ray1["docs_per_s"]
    cpu_actors = CPU_NODE_CORES - 1  # one core left to Ray's read and write tasks
    rows = [
        {"node": f"{CPU_NODE_CORES}-core CPU node", "actors": cpu_actors,
         "per_actor_docs_per_s": per_actor, "source": "measured: Ray, 1 actor, 1 thread, here",
         "projected_docs_per_s": per_actor * cpu_actors,
         "assumes": "linear scaling over cores of this CPU's speed; measured 1->2 actor "
                    f"efficiency here: {ray2['docs_per_s'] / (2 * per_actor):.2f}"},
    ]  # fmt: skip
    gpu_rate = min(gpu, feat) if gpu else feat
    rows.append(
        {"node": f"{GPU_NODE_GPUS}-GPU node", "actors": GPU_NODE_GPUS,
         "per_actor_docs_per_s": gpu_rate,
         "source": (f"min(given single-GPU rate {gpu}, " if gpu else "upper bound: ")
                   + f"parse+featurize on one core, measured here {feat:.1f} docs/s"
                   + (")" if gpu else "; the GPU rate itself is not measured here"),
         "projected_docs_per_s": gpu_rate * GPU_NODE_GPUS,
         "assumes": "one actor per GPU; an actor featurizes then infers (not overlapped): "
                    "use --gpus-per-actor 0.5 (two actors per GPU) to overlap them"}
    )  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", default="ray_scaling_docred1000")
    ap.add_argument("--corpus", type=Path, default=None, help="default: DocRED test.json")
    ap.add_argument("--docs", type=int, default=None, help="first N documents only")
    ap.add_argument("--precision", default="fp32", help="fp32: output independent of batching")
    ap.add_argument("--batch-docs", type=int, default=64, help="lines per actor call")
    ap.add_argument("--gpu-docs-per-s", type=float, default=None,
                    help="a measured single-GPU rate, for the 8-GPU projection")  # fmt: skip
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/docunet_scratch/ray_scaling"))
    args = ap.parse_args()
    src = args.corpus or need(data_dir() / "docred" / "test.json")
    args.scratch.mkdir(parents=True, exist_ok=True)
    corpus = args.scratch / "corpus.jsonl"
    lines = [raw for _, raw in read_corpus_lines(src)][: args.docs]
    corpus.write_bytes(b"".join(raw + b"\n" for raw in lines))

    local = {t: local_run(args, corpus, t) for t in (1, 2)}
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)  # 2 actors + reads/writes
    init_s = time.perf_counter() - t0
    try:
        rays = {a: ray_run(args, corpus, a) for a in (1, 2)}
    finally:
        ray.shutdown()
    ref = Path(local[1]["out"])
    same = {
        f"ray_{a}_actors": {
            "identical_bytes": Path(r["out"]).read_bytes() == ref.read_bytes(),
            "same_triples": triples(Path(r["out"])) == triples(ref),
        }
        for a, r in rays.items()
    }
    same["local_2_threads"] = {"same_triples": triples(Path(local[2]["out"])) == triples(ref)}
    feat = featurize_rate(args, corpus)
    summary = {
        "ray_init_s": init_s,
        "ray_overhead_at_1_actor": 1 - rays[1]["docs_per_s"] / local[1]["docs_per_s"],
        "ray_scaling_1_to_2_actors": rays[2]["docs_per_s"] / rays[1]["docs_per_s"],
        "local_scaling_1_to_2_threads": local[2]["docs_per_s"] / local[1]["docs_per_s"],
        "featurize_docs_per_s_1_core": feat,
    }
    proj = projection(rays[1], rays[2], feat, args.gpu_docs_per_s)
    for k, v in summary.items():
        print(f"{k}: {v:.3f}")
    print("same output:", same)
    print("PROJECTION (not measured):")
    for row in proj:
        print(f"  {row['node']}: {row['actors']} actors x {row['per_actor_docs_per_s']:.1f} "
              f"= {row['projected_docs_per_s']:.0f} docs/s ({row['source']})")  # fmt: skip
    payload = envelope(
        sys.argv, kind="ray_scaling", corpus=str(src), documents=len(lines),
        precision=args.precision, batch_docs=args.batch_docs, local=list(local.values()),
        ray=list(rays.values()), summary=summary, same_output=same,
        projection={"note": "PROJECTION from the measured per-actor rate, not a measurement",
                    "rows": proj},
        caveats="2-core shared machine (a training job may run beside it): 2 actors and 2 "
                "threads compete with it; Ray docs/s include actor start-up (model load).",
    )  # fmt: skip
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
