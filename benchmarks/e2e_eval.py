"""End-to-end evaluation from raw text (issue 11): the MODEL_DIR's tagger finds the entities,
grouping links/clusters them, DocuNet extracts the relations; gold entities are never seen by the
model. Beside it, the same RE model with the gold entities, and the speed of both, measured in
one run with the same threads (alternating, ``--repeats`` times each).

* ``--task cdr`` (BioCreative V CDR test, PubTator): records ``{"id": PMID, "title", "text":
  title + " " + abstract}``. Mention P/R/F1 (exact character span + type), concept P/R/F1 (set of
  (PMID, type, MeSH id): the BioCreative V normalisation protocol), CID P/R/F1 over the set of
  (PMID, chemical id, disease id) (the BioCreative V CDR relation protocol: every annotated pair
  counts). A predicted CID triple counts only with a Chemical head, a Disease tail and concept
  ids for both (an unlinked entity cannot be written as an id; such triples are counted apart).
  The gold-entity upper bound: the same model on the PubTator gold entities (their Chemical ×
  Disease pairs), scored the same way.
* ``--task redocred`` (the 50 test documents of the seeded Re-DocRED split): records
  ``{"id", "sents"}`` (tokens given, entities not). Mention F1 (sentence, token span, type),
  exact entity-cluster F1, relation F1 strict (both arguments' mention sets equal the gold ones),
  strict with types, and relaxed (each argument shares a mention with the gold one); beside the
  gold-entity F1 of the same RE model on the same documents and scorer.
Both runs go through ``Extractor.extract_records`` with dict records (parsing timed alike).

    python benchmarks/e2e_eval.py --task cdr --model MODEL_DIR --name e2e_cdr
    python benchmarks/e2e_eval.py --task redocred --model MODEL_DIR --test SPLIT/test.json \\
        --name e2e_redocred
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import data_dir, envelope, need, write_result

from docunet_rt.data.pubtator import read_pubtator
from docunet_rt.ner.scoring import (
    cid_scores,
    cluster_scores_e2e,
    concept_scores,
    mention_scores,
    relation_scores_e2e,
)
from docunet_rt.options import ExtractOptions
from docunet_rt.runtime import Extractor


def timed(fn):
    t0 = time.perf_counter()
    out = list(fn())
    return out, time.perf_counter() - t0


def run_both(ex: Extractor, gold_input, raw_input, repeats: int, options: dict):
    """Gold-entity and raw-text extraction, alternating; the results of the last repeat and
    the docs/s of each repeat."""
    gold_opts = ExtractOptions(**options)
    raw_opts = ExtractOptions(entities="predict", **options)
    speeds: dict[str, list[float]] = {"gold_entities": [], "raw_text": [], "tagger_seconds": []}
    tag_fn = ex.recognizer(raw_opts).tag_fn  # the session is made here, outside the timing
    gold_res = raw_res = None
    for _ in range(repeats):
        gold_res, s = timed(lambda: ex.extract_records(gold_input, gold_opts))
        speeds["gold_entities"].append(len(gold_res) / s)
        tag0 = tag_fn.seconds
        raw_res, s = timed(lambda: ex.extract_records(raw_input, raw_opts))
        speeds["raw_text"].append(len(raw_res) / s)
        speeds["tagger_seconds"].append(tag_fn.seconds - tag0)
    errors = [r for r in [*raw_res, *gold_res] if not hasattr(r, "triples")]
    if errors:
        raise SystemExit(f"extraction rejected records: {errors[:3]}")
    mean = {k: sum(v) / len(v) for k, v in speeds.items() if k != "tagger_seconds"}
    speed = {
        "docs_per_s_each_repeat": speeds,
        "gold_entities_docs_per_s": mean["gold_entities"],
        "raw_text_docs_per_s": mean["raw_text"],
        "raw_over_gold": mean["raw_text"] / mean["gold_entities"],
        "target_raw_over_gold": 0.60,
    }
    return gold_res, raw_res, speed


def cdr(args) -> dict:
    docs = read_pubtator(args.test)[: args.limit]
    records, gold_input = [], []
    gold_m, gold_c, gold_r = set(), set(), set()
    for d in docs:
        records.append((len(records) + 1, {"id": d.id, "title": d.title, "text": d.text}))
        ents = [{"mentions": [{"start": m.span[0], "end": m.span[1]} for m in e.mentions],
                 "type": e.type, **({"id": e.id} if e.id else {})} for e in d.entities]  # fmt: skip
        gold_input.append((len(gold_input) + 1, {**records[-1][1], "entities": ents}))
        for e in d.entities:
            for m in e.mentions:
                gold_m.add((d.id, m.span[0], m.span[1], e.type))
            if e.id:
                gold_c.add((d.id, e.type, e.id))
        for lab in d.labels or []:
            h, t = d.entities[lab.head], d.entities[lab.tail]
            gold_r.add((d.id, h.id, t.id))
    ex = Extractor(args.model, device="cpu", precision=args.precision, threads=args.threads)
    gold_res, raw_res, speed = run_both(ex, gold_input, records, args.repeats, {})

    def cid(results):
        pairs, unlinked = set(), 0
        for r in results:
            for t in r.triples:
                if t.relation != "CID" or t.head.type != "Chemical" or t.tail.type != "Disease":
                    continue
                if not (t.head.id and t.tail.id):
                    unlinked += 1
                    continue
                pairs.add((r.id, t.head.id, t.tail.id))
        return pairs, unlinked

    pred_m, pred_c = set(), set()
    for r in raw_res:
        for e in r.entities:
            for s, t in e.spans or []:
                pred_m.add((r.id, s, t, e.type))
            if e.id:
                pred_c.add((r.id, e.type, e.id))
    pred_r, unlinked = cid(raw_res)
    gold_pred_r, _ = cid(gold_res)
    return {
        "documents": len(docs),
        "mentions": mention_scores(pred_m, gold_m),
        "concepts": concept_scores(pred_c, gold_c),
        "cid_end_to_end": cid_scores(pred_r, gold_r),
        "cid_triples_dropped_unlinked": unlinked,
        "cid_gold_entities": cid_scores(gold_pred_r, gold_r),
        "targets": {"cid_f1": 0.571, "cid_f1_goal": 0.629, "mention_f1": 0.85},
        "speed": speed,
    }


def redocred(args) -> dict:
    docs = json.loads(Path(args.test).read_text())[: args.limit]
    gold_ents, gold_typed, gold_tri, gold_m, records, gold_input = {}, {}, {}, set(), [], []
    for i, d in enumerate(docs):
        did = str(i)
        gold_ents[did] = [frozenset((m["sent_id"], *m["pos"]) for m in v) for v in d["vertexSet"]]
        gold_typed[did] = [frozenset((m["sent_id"], *m["pos"], m["type"]) for m in v)
                           for v in d["vertexSet"]]  # fmt: skip
        gold_tri[did] = {(lab["h"], lab["r"], lab["t"]) for lab in d.get("labels", [])}
        gold_m |= {(did, m["sent_id"], *m["pos"], m["type"]) for v in d["vertexSet"] for m in v}
        records.append((i + 1, {"id": did, "sents": d["sents"]}))
        gold_input.append((i + 1, {"id": did, "sents": d["sents"], "vertexSet": d["vertexSet"]}))
    ex = Extractor(args.model, device="cpu", precision=args.precision, threads=args.threads)
    gold_res, raw_res, speed = run_both(ex, gold_input, records, args.repeats, {})
    pred_ents, pred_typed, pred_tri, pred_m = {}, {}, {}, set()
    for r in raw_res:
        pred_ents[r.id] = [frozenset(tuple(p) for p in e.positions or []) for e in r.entities]
        pred_typed[r.id] = [frozenset((*p, e.type) for p in e.positions or [])
                            for e in r.entities]  # fmt: skip
        pred_m |= {(r.id, *p, e.type) for e in r.entities for p in e.positions or []}
        pred_tri[r.id] = {(t.head.index, t.relation, t.tail.index) for t in r.triples}
    gold_pred = {r.id: {(t.head.index, t.relation, t.tail.index) for t in r.triples}
                 for r in gold_res}  # fmt: skip
    gold_f1 = relation_scores_e2e(gold_pred, gold_tri, gold_ents, gold_ents, mode="strict")
    strict = relation_scores_e2e(pred_tri, gold_tri, pred_ents, gold_ents, mode="strict")
    relaxed = relation_scores_e2e(pred_tri, gold_tri, pred_ents, gold_ents, mode="relaxed")
    typed = relation_scores_e2e(pred_tri, gold_tri, pred_typed, gold_typed, mode="strict")
    return {
        "documents": len(docs),
        "mentions": mention_scores(pred_m, gold_m),
        "entity_clusters": cluster_scores_e2e(pred_ents, gold_ents),
        "relations_strict": strict,
        "relations_relaxed": relaxed,
        "relations_strict_typed": typed,
        "entity_clusters_typed": cluster_scores_e2e(pred_typed, gold_typed),
        "definitions": {
            "strict": "both arguments' mention-span sets equal the gold entities' (type not "
            "compared; the JEREX 'relation' setting)",
            "strict_typed": "strict, and the entity types equal too (JEREX 'relation + type')",
            "relaxed": "each argument shares at least one mention span with its gold entity",
        },
        "relations_gold_entities": gold_f1,
        "strict_over_gold": strict["f1"] / gold_f1["f1"] if gold_f1["f1"] else None,
        "targets": {"strict_over_gold": 0.80},
        "speed": speed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=("cdr", "redocred"), required=True)
    ap.add_argument("--model", required=True, help="MODEL_DIR with a tagger (export --tagger)")
    ap.add_argument("--test", help="test file (default: CDR_TestSet.PubTator.txt for cdr)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--limit", type=int, help="first N documents only (a dry run)")
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    if args.task == "cdr":
        args.test = args.test or str(need(data_dir() / "cdr" / "CDR_TestSet.PubTator.txt"))
        res = cdr(args)
    else:
        if not args.test:
            sys.exit("--task redocred needs --test SPLIT/test.json (benchmarks/redocred_split.py)")
        res = redocred(args)
    model = json.loads((Path(args.model) / "model.json").read_text())
    res["model"] = {
        "dir": str(args.model), "precision": args.precision, "threads": args.threads,
        "re_checkpoint": model.get("source_checkpoint", {}).get("path"),
        "re_best": model.get("source_checkpoint", {}).get("best", {}).get("dev"),
        "tagger_checkpoint": (model.get("tagger") or {}).get("source_checkpoint", {}).get("path"),
        "tagger_best_dev": (model.get("tagger") or {}).get("source_checkpoint", {}).get("best"),
    }  # fmt: skip
    tagger_ckpt = res["model"]["tagger_checkpoint"]
    if tagger_ckpt and (Path(tagger_ckpt) / "tagger.json").is_file():
        res["model"]["tagger_training"] = json.loads(
            (Path(tagger_ckpt) / "tagger.json").read_text()
        ).get("training")
    res["model"]["tagger_dictionary_min_chars"] = (model.get("tagger") or {}).get(
        "config", {}).get("dictionary_min_chars")  # fmt: skip
    print(json.dumps({k: v for k, v in res.items() if k != "model"}, indent=1))
    print(write_result(args.name, envelope(sys.argv, kind="e2e", task=args.task, **res)))


if __name__ == "__main__":
    main()
