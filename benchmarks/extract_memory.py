"""Peak RSS of `docunet-rt extract` on hostile inputs, at the default per-document bounds.

Cases (each a fresh `docunet-rt extract` process, GNU time's maximum RSS):
  normal    the first N DocRED test documents
  huge_line a 10 MB plain-text line (rejected unparsed: max_record_bytes) among normal documents
  long_doc  a 55,000-word document (rejected: max_doc_tokens) among normal documents
  at_bounds documents as large as the defaults let through: DocRED documents concatenated to just
            under max_doc_tokens wordpieces, with as many entities as keep the head estimate under
            max_head_mb
The model's weights do not change memory; any MODEL_DIR with the real encoder dimensions does.

    python benchmarks/extract_memory.py --model MODEL_DIR --name extract_memory_bounds --threads 2
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import orjson
from common import REPO, data_dir, envelope, need, write_result

from docunet_rt.data import document_to_docred, read_documents
from docunet_rt.data.document import Document, Entity, Mention
from docunet_rt.features import TokenizerInfo, build_features, head_bytes
from docunet_rt.options import DEFAULT_MAX_DOC_TOKENS, DEFAULT_MAX_HEAD_MB
from docunet_rt.runtime.model_dir import ModelSpec


def concatenated(docs: list[Document], tok: TokenizerInfo, config, i: int) -> Document:
    """DocRED documents glued together up to the bounds (wordpieces, then head memory)."""
    sents: list[list[str]] = []
    ents: list[Entity] = []
    for d in docs:
        trial = Document(f"big{i}", sents + d.sentences, ents)
        if build_features(trial, tok, config).seq_len - 2 > DEFAULT_MAX_DOC_TOKENS * 0.97:
            break
        off = len(sents)
        sents = sents + d.sentences
        for e in d.entities:
            ms = [Mention(m.sent_id + off, m.start, m.end, m.name) for m in e.mentions]
            ents.append(Entity(ms, e.type, e.name))
    budget = DEFAULT_MAX_HEAD_MB * 2**20
    while ents:
        f = build_features(Document(f"big{i}", sents, ents), tok, config)
        if head_bytes(f.seq_len, len(f.mention_pos), f.num_entities, config) <= budget * 0.97:
            break
        ents = ents[:-1]
    return Document(f"big{i}", sents, ents)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--normal", type=int, default=200, help="normal documents per case")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/docunet_scratch/memory"))
    args = ap.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    docs = read_documents(need(data_dir() / "docred" / "test.json"))
    normal = [orjson.dumps(document_to_docred(d)) for d in docs[: args.normal]]
    few = normal[:20]
    spec = ModelSpec.load(args.model)
    tok = TokenizerInfo.from_dir(spec.path)
    words = " ".join(w for d in docs[:400] for s in d.sentences for w in s).split()
    huge_text = " ".join(words * (2 + 10 * 2**20 // (5 * len(words))))[: 10 * 2**20]
    assert len(huge_text) == 10 * 2**20
    huge = orjson.dumps({"id": "huge", "text": huge_text, "entities": []})
    long_text = " ".join((words * 10)[:55000])
    long = orjson.dumps(
        {"id": "long", "text": long_text,
         "entities": [{"mentions": [{"start": 0, "end": len(words[0])}], "type": "MISC"}]}
    )  # fmt: skip
    big = [
        orjson.dumps(document_to_docred(concatenated(docs[k * 60 :], tok, spec.config, k)))
        for k in range(3)
    ]
    cases = {
        "normal": normal,
        "huge_line": few[:10] + [huge] + few[10:],
        "long_doc": few[:10] + [long] + few[10:],
        "at_bounds": big + few[:5],
    }
    bin_dir = Path(sys.executable).parent
    runs: dict[str, dict] = {}
    for case, lines in cases.items():
        corpus = args.scratch / f"{case}.jsonl"
        corpus.write_bytes(b"\n".join(lines) + b"\n")
        for prec in args.precisions.split(","):
            key = f"{case}/{prec}"
            out = args.scratch / f"{case}.{prec}.out.jsonl"
            for f in (out, Path(f"{out}.progress"), Path(f"{out}.errors.jsonl")):
                f.unlink(missing_ok=True)
            summary = args.scratch / f"{case}.{prec}.summary.json"
            cmd = ["/usr/bin/time", "-v", str(bin_dir / "docunet-rt"), "extract", str(corpus),
                   "-o", str(out), "--model", args.model, "--device", "cpu", "--precision", prec,
                   "--threads", str(args.threads), "--summary", str(summary)]  # fmt: skip
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if p.returncode not in (0, 3):
                sys.exit(p.stderr[-3000:])
            rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)[1])
            s = json.loads(summary.read_text())
            errs = Path(f"{out}.errors.jsonl")
            reasons = (
                [orjson.loads(x)["error"][:120] for x in errs.read_bytes().splitlines()]
                if errs.exists()
                else []
            )
            runs[key] = {
                "lines": len(lines), "docs": s["docs"], "errors": s["errors"],
                "error_reasons": reasons, "exit_code": p.returncode,
                "peak_rss_mb": rss_kb / 1024, "seconds": s["seconds"],
                "largest_line_bytes": max(len(x) for x in lines),
                "command": " ".join(cmd[2:]),
            }  # fmt: skip
            print(f"{key}: {s['docs']} docs, {s['errors']} errors, peak RSS {rss_kb / 1024:.0f} MB")
    big_feats = [build_features(read_one(b), tok, spec.config) for b in big]
    payload = envelope(
        sys.argv, kind="extract_memory", model=args.model, threads=args.threads,
        defaults={"max_doc_tokens": DEFAULT_MAX_DOC_TOKENS, "max_head_mb": DEFAULT_MAX_HEAD_MB},
        at_bounds_docs=[{"wordpieces": f.seq_len - 2, "entities": f.num_entities,
                         "mentions": len(f.mention_pos),
                         "head_estimate_mb": head_bytes(f.seq_len, len(f.mention_pos),
                                                        f.num_entities, spec.config) / 2**20}
                        for f in big_feats],
        runs=runs,
        peak_rss_mb_max=max(r["peak_rss_mb"] for r in runs.values()),
    )  # fmt: skip
    print(write_result(args.name, payload))


def read_one(raw: bytes) -> Document:
    from docunet_rt.data import parse_record

    return parse_record(orjson.loads(raw))


if __name__ == "__main__":
    main()
