"""How well mentions are grouped into entities, from gold mentions (the grouping step of the
raw-text front end, measured on its own):

* Re-DocRED (all 500 documents of dev_revised.json: the grouping has nothing to train): the gold
  mentions in document order, grouped by ``grouping.group_by_name``, against the gold vertexSet
  clusters (exact-cluster and B-cubed P/R/F1), beside a baseline that groups only identical
  normalised names of the same type.
* CDR test (PubTator): the gold mention spans linked to MeSH ids by ``group_by_concept`` with a
  lexicon built from the CDR training set annotations (train only; and train + dev, never test), scored as the
  BioCreative V normalisation protocol does: the set of (PMID, type, id) per document.

    python benchmarks/grouping_eval.py --name grouping_gold_mentions
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from common import data_dir, envelope, need, write_result

from docunet_rt.grouping import Lexicon, cluster_scores, group_by_concept, group_by_name, normalize


def redocred(path) -> dict:
    docs = json.loads(path.read_text())
    pred_ours, pred_base, gold = [], [], []
    offset = 0
    for d in docs:
        ms = sorted(
            ((m["sent_id"], m["pos"][0], e, m) for e, vs in enumerate(d["vertexSet"]) for m in vs),
            key=lambda x: (x[0], x[1]),
        )
        mentions = [(m["name"], m["type"]) for *_, m in ms]
        text = " ".join(" ".join(s) for s in d["sents"])
        by_gold: dict[int, list[int]] = defaultdict(list)
        for i, (_, _, e, _) in enumerate(ms):
            by_gold[e].append(offset + i)
        gold += list(by_gold.values())
        pred_ours += [[offset + i for i in g.mentions] for g in group_by_name(mentions, text)]
        base: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, (name, etype) in enumerate(mentions):
            base[(etype, normalize(name))].append(offset + i)
        pred_base += list(base.values())
        offset += len(ms)
    return {
        "documents": len(docs),
        "mentions": offset,
        "gold_entities": len(gold),
        "group_by_name": cluster_scores(pred_ours, gold),
        "baseline_same_normalised_name": cluster_scores(pred_base, gold),
    }


def pubtator(path):
    """(pmid, text, [(start, end, surface, type, ids)]) per document of a PubTator file."""
    docs, cur = [], None
    for line in path.read_text().splitlines():
        if "|t|" in line[:20] and line.split("|", 2)[1] == "t":
            pmid, _, title = line.split("|", 2)
            cur = [pmid, title, []]
            docs.append(cur)
        elif "|a|" in line[:20] and cur is not None:
            cur[1] += " " + line.split("|", 2)[2]
        elif line.count("\t") >= 5 and cur is not None:
            f = line.split("\t")
            if f[1] != "CID":
                cur[2].append((int(f[1]), int(f[2]), f[3], f[4], f[5].split("|")))
    return docs


def cdr(train_path, test_path, *more) -> dict:
    lex = Lexicon.build(
        (surface, etype, ids[0])
        for path in (train_path, *more) for _, _, ms in pubtator(path)
        for *_, surface, etype, ids in ms
    )  # fmt: skip
    tp = n_pred = n_gold = linked = total = 0
    for pmid, text, ms in pubtator(test_path):
        gold = {(pmid, t, i) for *_, t, ids in ms for i in ids if i != "-1"}
        groups = group_by_concept([(s, t) for _, _, s, t, _ in ms], text, lex)
        pred = {(pmid, g.type, g.id) for g in groups if g.id}
        linked += sum(len(g.mentions) for g in groups if g.id)
        total += len(ms)
        tp, n_pred, n_gold = tp + len(pred & gold), n_pred + len(pred), n_gold + len(gold)
    p, r = tp / max(1, n_pred), tp / max(1, n_gold)
    return {
        "lexicon_entries": len(lex), "test_mentions": total,
        "mentions_linked": linked / max(1, total),
        "concept_precision": p, "concept_recall": r,
        "concept_f1": 2 * p * r / (p + r) if p + r else 0.0,
        "protocol": "set of (PMID, type, MeSH id) per document, from gold mention spans",
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    d = data_dir()
    re_docred = redocred(need(d / "redocred" / "dev_revised.json"))
    train, dev = need(d / "cdr" / "CDR_TrainingSet.PubTator.txt"), need(
        d / "cdr" / "CDR_DevelopmentSet.PubTator.txt")  # fmt: skip
    test = need(d / "cdr" / "CDR_TestSet.PubTator.txt")
    cdr_res = cdr(train, test)
    cdr_res["lexicon_from"] = "CDR training set"
    cdr_res["with_dev_lexicon"] = {**cdr(train, test, dev), "lexicon_from": "training + dev sets"}
    print(json.dumps({"redocred": re_docred, "cdr": cdr_res}, indent=1))
    print(write_result(args.name, envelope(sys.argv, kind="grouping", redocred=re_docred,
                                           cdr=cdr_res)))  # fmt: skip


if __name__ == "__main__":
    main()
