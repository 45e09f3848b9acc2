"""The extract command as a user runs it, on the whole DocRED test corpus (1000 documents):
docs/s, time to first output and peak RSS (GNU time) per precision.

    python benchmarks/extract_corpus.py --model MODEL_DIR --name extract_docred_cpu --threads 2
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from common import REPO, data_dir, envelope, need, write_result

from docunet_rt.options import DEFAULT_MAX_TOKENS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--corpus", type=Path, default=None, help="default: DocRED test.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="auto|cpu|cuda|tensorrt")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument(
        "--max-tokens",
        default="",
        help=f"comma-separated batch budgets to compare (default: the device's; {DEFAULT_MAX_TOKENS} on the CPU)",
    )
    ap.add_argument("--limit", type=int, default=None, help="first N documents only")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/docunet_scratch/extract"))
    args = ap.parse_args()
    src = args.corpus or need(data_dir() / "docred" / "test.json")
    args.scratch.mkdir(parents=True, exist_ok=True)
    corpus = args.scratch / "corpus.jsonl"
    convert = [sys.executable, "-m", "docunet_rt", "convert", str(src), "-o", str(corpus)]
    subprocess.run(convert, check=True, cwd=REPO)
    if args.limit:
        lines = corpus.read_bytes().splitlines(keepends=True)[: args.limit]
        corpus.write_bytes(b"".join(lines))
    runs = {}
    budgets = [int(m) for m in args.max_tokens.split(",") if m] or [None]
    for prec, mt in [(p, m) for m in budgets for p in args.precisions.split(",")]:
        key = prec if len(budgets) == 1 else f"{prec}@{mt}"
        out = args.scratch / f"triples.{key}.jsonl"
        for f in (out, Path(f"{out}.progress"), Path(f"{out}.errors.jsonl")):
            f.unlink(missing_ok=True)
        summary = args.scratch / f"summary.{key}.json"
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "docunet_rt", "extract",
               str(corpus), "-o", str(out), "--model", args.model, "--device", args.device,
               "--precision", prec, "--threads", str(args.threads), "--summary", str(summary)]  # fmt: skip
        cmd += ["--max-tokens", str(mt)] if mt else []
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if p.returncode not in (0, 3):
            sys.exit(p.stderr)
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
        wall = re.search(r"Elapsed \(wall clock\) time.*: (.+)", p.stderr).group(1)
        s = json.loads(summary.read_text())
        runs[key] = {
            "max_tokens": mt,
            **s,
            "peak_rss_mb": rss_kb / 1024,
            "process_wall": wall,
            "output_lines": sum(1 for _ in out.open()),
            "command": " ".join(cmd[2:]),
        }
        print(f"{key}: {s['docs_per_s']:.2f} docs/s, first output {s['time_to_first_output']:.2f}s, "
              f"peak RSS {rss_kb / 1024:.0f} MB")  # fmt: skip
    payload = envelope(sys.argv, kind="extract", corpus=str(src), threads=args.threads,
                       device=args.device, documents_limit=args.limit, runs=runs)  # fmt: skip
    print(write_result(args.name, payload))


if __name__ == "__main__":
    main()
