"""How many gold mentions can the concept lexicon link at all? Gold mentions (with concept ids)
of an evaluation file, looked up in a lexicon built from training annotations only: linked to
the right id, to another id, or not linked (the concept's form never occurs in training, the
ceiling of end-to-end concept recall without an external vocabulary: ``lexicon --terms``).

    python benchmarks/lexicon_coverage.py --train CDR_TrainingSet.PubTator.txt \\
        --eval CDR_DevelopmentSet.PubTator.txt --name lexicon_coverage_cdr_dev
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from common import envelope, write_result

from docunet_rt.data import read_documents
from docunet_rt.grouping import abbreviations
from docunet_rt.ner.recognize import build_lexicon


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    lexicon = build_lexicon(d for f in args.train for d in read_documents(f))
    counts: Counter[str] = Counter()
    for d in read_documents(args.eval):
        abbrev = abbreviations(d.text)
        for e in d.entities:
            if not e.id or e.id == "-1":
                continue
            for m in e.mentions:
                s = d.text[m.span[0] : m.span[1]]
                long = abbrev.get(s.strip())
                cid = lexicon.lookup(s, e.type) or (lexicon.lookup(long, e.type) if long else None)
                counts["unlinked" if cid is None else
                       "right_id" if cid in e.id.split("|") else "other_id"] += 1  # fmt: skip
    total = sum(counts.values())
    out = {"mentions": total, **counts, "unlinked_share": counts["unlinked"] / total}
    print(out)
    print(write_result(args.name, envelope(
        sys.argv, kind="lexicon_coverage", train=args.train, eval=args.eval,
        lexicon_entries=len(lexicon), **out,
    )))  # fmt: skip


if __name__ == "__main__":
    main()
