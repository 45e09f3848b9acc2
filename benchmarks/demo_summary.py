"""Print the demo's outcome: dev F1, a few documents' triples, throughput; write a summary JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    out, start = Path(sys.argv[1]), float(sys.argv[2])
    best = json.loads((out / "ckpt" / "config.json").read_text())["best"]
    lines = [json.loads(x) for x in (out / "triples.jsonl").read_text().splitlines()]
    print("\n== a few extracted documents")
    for rec in lines[:3]:
        print(f"- {rec['id']}:")
        for t in rec["triples"][:6]:
            print(
                f"    ({t['head']['name']}, {t['relation']['name']}, {t['tail']['name']})"
                f"  score {t['score']:.3f}"
            )
    summary_file = out / "triples.jsonl.summary.json"
    extract = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    summary = {
        "dev_f1": best["dev"]["f1"],
        "test_f1": (best.get("test") or {}).get("f1"),
        "best_epoch": best["epoch"],
        "documents_extracted": len(lines),
        "triples": sum(len(r["triples"]) for r in lines),
        "extract": extract,
        "demo_seconds": time.time() - start,
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    print("\n== summary")
    print(
        f"dev F1 {summary['dev_f1']:.3f} (epoch {summary['best_epoch']}), test F1 {summary['test_f1']}"
    )
    if extract:
        print(
            f"extraction: {extract.get('docs')} docs at {extract.get('docs_per_s', 0):.1f} docs/s"
        )
    print(f"whole demo: {summary['demo_seconds']:.0f} s; summary in {out / 'demo_summary.json'}")
    if summary["dev_f1"] < 0.8:
        sys.exit(f"dev F1 {summary['dev_f1']:.3f} < 0.8: the demo model did not learn enough")


if __name__ == "__main__":
    main()
