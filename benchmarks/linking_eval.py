"""Concept linking on gold mentions: how each ``linking`` mode of ``grouping.Lexicon`` (exact,
spelling variants, fuzzy at several trigram-cosine thresholds) links the gold mentions of an
evaluation file with a lexicon built from training annotations only. Mentions go through
``group_by_concept`` exactly as the raw-text front end sends them (abbreviations included), so
the concept scores are those of end-to-end extraction with a perfect tagger. Reported per
setting: mention links right / to another id / none, and concept P/R/F1 (the BioCreative V
normalisation protocol: the set of (document, type, id)). Choose on dev, report on test.

    python benchmarks/linking_eval.py --train CDR_TrainingSet.PubTator.txt \\
        --eval CDR_DevelopmentSet.PubTator.txt --name linking_cdr_dev
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from common import envelope, write_result

from docunet_rt.data import read_documents
from docunet_rt.grouping import group_by_concept
from docunet_rt.ner.recognize import build_lexicon
from docunet_rt.ner.scoring import concept_scores

THRESHOLDS = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    lexicon = build_lexicon(d for f in args.train for d in read_documents(f))
    docs = [d for d in read_documents(args.eval)]
    gold = {(d.id, e.type, i) for d in docs for e in d.entities if e.id for i in e.id.split("|")}
    settings = [("exact", 1.0), ("variants", 1.0)] + [("fuzzy", t) for t in THRESHOLDS]
    rows = []
    for linking, sim in settings:
        t0 = time.perf_counter()
        links: Counter[str] = Counter()
        pred = set()
        for d in docs:
            mentions, ids = [], []
            for e in d.entities:
                if not e.id or e.id == "-1":
                    continue
                for m in e.mentions:
                    mentions.append((d.text[m.span[0] : m.span[1]], e.type))
                    ids.append(e.id.split("|"))
            for g in group_by_concept(mentions, d.text, lexicon, linking, sim):
                for k in g.mentions:
                    links["none" if g.id is None else "right" if g.id in ids[k] else "other"] += 1
                if g.id:
                    pred.add((d.id, g.type, g.id))
        scores = concept_scores(pred, gold)
        row = {"linking": linking, "similarity": sim if linking == "fuzzy" else None,
               "mention_links": dict(links), "concepts": scores,
               "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
        rows.append(row)
        print(
            linking,
            sim,
            dict(links),
            {k: round(scores[k], 4) for k in ("precision", "recall", "f1")},
        )
    best = max(rows, key=lambda r: r["concepts"]["f1"])
    print(write_result(args.name, envelope(
        sys.argv, kind="linking_eval", train=args.train, eval=args.eval,
        lexicon_entries=len(lexicon), documents=len(docs), rows=rows,
        best={"linking": best["linking"], "similarity": best["similarity"],
              "concept_f1": best["concepts"]["f1"]},
    )))  # fmt: skip


if __name__ == "__main__":
    main()
