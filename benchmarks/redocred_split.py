"""Seeded 400 / 50 / 50 split (train / dev / test) of Re-DocRED dev_revised.json.

Written to a scratch folder (never into the repository):

    python benchmarks/redocred_split.py --out /tmp/docunet_scratch/redocred [--seed 13]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from common import data_dir, need


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/docunet_scratch/redocred"))
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    src = need(data_dir() / "redocred" / "dev_revised.json")
    docs = json.loads(src.read_text())
    order = list(range(len(docs)))
    random.Random(args.seed).shuffle(order)
    parts = {"train": order[:400], "dev": order[400:450], "test": order[450:500]}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, idx in parts.items():
        (args.out / f"{name}.json").write_text(json.dumps([docs[i] for i in sorted(idx)]))
    (args.out / "split.json").write_text(
        json.dumps({"source": str(src), "seed": args.seed, **parts})
    )
    print(f"wrote {', '.join(f'{k}={len(v)}' for k, v in parts.items())} to {args.out}")


if __name__ == "__main__":
    main()
