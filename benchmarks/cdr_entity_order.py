"""Does the entity order of the CDR ``.data`` files carry the labels? A MODEL_DIR scored on the
same test documents with two entity orders, nothing else changed (EoG protocol: F1 of CID over
the files' candidate pairs):

* ``pairs``: first appearance in the pair groups (ATLOP's reader, and this project's before the
  fix): the files list every ``1:CID:2`` group before the NR ones, so related entities come first;
* ``document``: by first mention (``read_cdr``'s default now).

    python benchmarks/cdr_entity_order.py --model MODEL_DIR --name cdr_entity_order
"""

from __future__ import annotations

import argparse
import sys

from common import data_dir, envelope, need, write_result

from docunet_rt.data.cdr import read_cdr
from docunet_rt.ner.scoring import prf
from docunet_rt.runtime import Extractor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    path = need(data_dir() / "cdr" / f"{args.split}_filter.data")
    ex = Extractor(args.model, device="cpu", threads=args.threads)
    res = {}
    for order in ("pairs", "document"):
        docs = read_cdr(path, entity_order=order)
        gold = {(d.id, d.entities[lab.head].id, d.entities[lab.tail].id)
                for d in docs for lab in d.labels or []}  # fmt: skip
        pred = {(r.id, t.head.id, t.tail.id) for r in ex.extract(docs) for t in r.triples}
        res[order] = prf(pred, gold)
        print(order, {k: round(v, 4) if isinstance(v, float) else v for k, v in res[order].items()})
    print(write_result(args.name, envelope(
        sys.argv, kind="cdr_entity_order", split=args.split, results=res,
        model_checkpoint=__import__("json").loads(
            (__import__("pathlib").Path(args.model) / "model.json").read_text()
        ).get("source_checkpoint", {}).get("path"),
    )))  # fmt: skip


if __name__ == "__main__":
    main()
