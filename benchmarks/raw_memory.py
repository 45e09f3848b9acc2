"""Peak RSS of `docunet-rt extract --entities predict` (raw text: tagging → grouping → DocuNet)
on long inputs, at the default per-document bounds. Each case is a fresh process; the peak is
GNU time's maximum RSS, and for the streams also the RSS sampled every 0.5 s (first and last
tenth of the run, to show it does not grow with the stream).

  normal      the first N DocRED test documents as plain text (also with tagger batches of
              512 / 1024 / 4096 padded tokens: "tagger_budget")
  long_20k    a 20,000-word plain-text document (DocRED texts glued together) among them:
              tagged up to max_doc_tokens wordpieces, then rejected (max_doc_tokens)
  long_20k_in the same document with the bounds raised (--max-doc-tokens 32768
              --max-entities 4096 --max-head-mb 4096): extracted or rejected by the head bound
  stream_S    S short raw-text documents (S = --stream, then 10× it): peak and RSS over time

    python benchmarks/raw_memory.py --model MODEL_DIR --name raw_memory --threads 2
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from common import data_dir, envelope, need, write_result

SHORT = [
    "Alice Smith was born in Paris and works for Acme Corporation in London.",
    "The Rhine flows through Germany and the Netherlands into the North Sea.",
    "Barack Obama served as president of the United States from 2009 to 2017.",
    "Nokia is a Finnish company founded in 1865 in Tampere.",
]


def texts(n: int) -> list[str]:
    docs = json.loads(need(data_dir() / "docred" / "test.json").read_text())[:n]
    return [" ".join(" ".join(s) for s in d["sents"]) for d in docs]


def run_case(args, corpus: Path, extra: list[str], sample: bool = False) -> dict:
    out = corpus.with_suffix(".out.jsonl")
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "docunet_rt", "extract", str(corpus),
           "-o", str(out), "--model", args.model, "--threads", str(args.threads),
           "--entities", "predict", "--precision", args.precision, *extra]  # fmt: skip
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    if sample:

        def watch() -> None:
            while p.poll() is None:
                kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True)
                for pid in kids.stdout.split():
                    try:
                        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4096
                        samples.append((time.perf_counter() - t0, rss))
                    except (OSError, IndexError, ValueError):
                        pass
                time.sleep(0.5)

        th = threading.Thread(target=watch, daemon=True)
        th.start()
    _, err = p.communicate()
    seconds = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    errors = Path(str(out) + ".errors.jsonl")
    res = {
        "exit_code": p.returncode,
        "peak_rss_mb": int(m.group(1)) / 1024 if m else None,
        "seconds": seconds,
        "docs_out": sum(1 for _ in out.open("rb")) if out.exists() else 0,
        "error_records": [orjson.loads(x)["error"][:160] for x in errors.read_bytes().splitlines()]
        if errors.exists() else [],
        "summary_line": [x for x in err.splitlines() if " docs, " in x][-1:],
    }  # fmt: skip
    if sample and samples:
        tenth = max(1, len(samples) // 10)
        res["rss_mb_first_tenth_max"] = max(s for _, s in samples[:tenth]) / 2**20
        res["rss_mb_last_tenth_max"] = max(s for _, s in samples[-tenth:]) / 2**20
        res["rss_samples"] = len(samples)
    out.unlink(missing_ok=True)
    errors.unlink(missing_ok=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--normal", type=int, default=100)
    ap.add_argument("--stream", type=int, default=10000, help="short documents (then 10×)")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/docunet_scratch/raw_memory"))
    args = ap.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    normal = texts(args.normal)
    pool = texts(1000)
    words, parts = 0, []
    for t in pool:
        parts.append(t)
        words += len(t.split())
        if words >= 20000:
            break
    long_text = " ".join(parts)
    n_long = len(long_text.split())

    def write(name: str, items: list[str]) -> Path:
        p = args.scratch / f"{name}.jsonl"
        with p.open("wb") as fh:
            for i, t in enumerate(items):
                fh.write(orjson.dumps({"id": f"{name}{i}", "text": t}) + b"\n")
        return p

    cases = {}
    normal_file = write("normal", normal)
    cases["normal"] = run_case(args, normal_file, [])
    # the tagger's batch on the CPU (options.TAGGER_CPU_MAX_TOKENS): memory and time per budget
    budgets = {t: run_case(args, normal_file, ["--tagger-max-tokens", str(t)])
               for t in (512, 1024, 4096)}  # fmt: skip
    mixed = write("long", normal[:50] + [long_text] + normal[50:])
    cases["long_20k"] = run_case(args, mixed, [])
    raised = ["--max-doc-tokens", "32768", "--max-entities", "4096", "--max-head-mb", "4096"]
    cases["long_20k_raised_bounds"] = run_case(args, mixed, raised)
    for s in (args.stream, args.stream * 10):
        items = [SHORT[i % len(SHORT)] for i in range(s)]
        cases[f"stream_{s}"] = run_case(args, write(f"stream{s}", items), [], sample=True)
        print(json.dumps(cases[f"stream_{s}"]), flush=True)
    for f in args.scratch.glob("*.jsonl"):
        f.unlink()
    print(json.dumps(cases, indent=1))
    print(write_result(args.name, envelope(
        sys.argv, kind="raw_memory", long_document_words=n_long, threads=args.threads,
        precision=args.precision, cases=cases, tagger_budget=budgets,
    )))  # fmt: skip


if __name__ == "__main__":
    main()
