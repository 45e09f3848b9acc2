"""Should the MODEL_DIR add lexicon matches where the tagger found nothing? Measured on dev only
(the choice of ``export --tagger-dictionary N``): mention P/R/F1 (exact character span + type) of
the tagger alone and with dictionary matching at several minimum form lengths, the lexicon built
from the training annotations only (dev's own annotations would leak into the dev score).

    python benchmarks/ner_dictionary.py --tagger NER_CKPT --dev CDR_DevelopmentSet.PubTator.txt \\
        --lexicon-from CDR_TrainingSet.PubTator.txt --name ner_dictionary_cdr_dev
"""

from __future__ import annotations

import argparse
import json
import sys

from common import envelope, write_result

from docunet_rt.data import read_documents
from docunet_rt.data.text import tokenize_with_offsets
from docunet_rt.ner.model import TorchTagFn
from docunet_rt.ner.recognize import (
    Recognizer,
    build_lexicon,
    dictionary_forms,
    dictionary_spans,
)
from docunet_rt.ner.scoring import mention_scores
from docunet_rt.ner.tagging import decode_logits, tag_features, trim_punctuation
from docunet_rt.ner.train import load_tagger


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tagger", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--lexicon-from", nargs="+", required=True)
    ap.add_argument("--min-chars", default="2,3,4,5,6")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model, tok, blob = load_tagger(args.tagger)
    lexicon = build_lexicon(d for f in args.lexicon_from for d in read_documents(f))
    rec = Recognizer(TorchTagFn(model), tok, model.config)
    docs = read_documents(args.dev)
    gold = {(d.id, *m.span, e.type) for d in docs for e in d.entities for m in e.mentions}
    words = [tokenize_with_offsets(d.text) for d in docs]
    plain = [[w for w, _, _ in ws] for ws in words]
    logits = rec.word_logits([tag_features(w, tok, model.config) for w in plain])
    untrimmed = [decode_logits(rows, model.config) for rows in logits]
    spans = [trim_punctuation(w, sp) for w, sp in zip(plain, untrimmed, strict=True)]  # = rec.tag

    def score(all_spans) -> dict:
        pred = {(d.id, ws[a][1], ws[b - 1][2], t)
                for d, ws, sp in zip(docs, words, all_spans, strict=True) for a, b, t in sp}  # fmt: skip
        return mention_scores(pred, gold)

    res = {"tagger_only": score(spans)}
    untrimmed_score = score(untrimmed)  # spans ending on "-" or "(" kept: before trim_punctuation
    for m in map(int, args.min_chars.split(",")):
        forms = dictionary_forms(lexicon, m)
        res[f"dictionary_min_chars_{m}"] = score(
            [
                dictionary_spans(d.text, ws, sp, forms)
                for d, ws, sp in zip(docs, words, spans, strict=True)
            ]
        )
    best = max(res, key=lambda k: res[k]["f1"])
    for k, v in {"untrimmed": untrimmed_score, **res}.items():
        print(f"{k:28s} P {v['precision']:.4f} R {v['recall']:.4f} F1 {v['f1']:.4f}")
    print(write_result(args.name, envelope(
        sys.argv, kind="ner_dictionary", dev=args.dev, lexicon_from=args.lexicon_from,
        lexicon_entries=len(lexicon), tagger_best=blob.get("best"), results=res, best=best,
        untrimmed=untrimmed_score,
    )))  # fmt: skip
    print(json.dumps({"best": best}))


if __name__ == "__main__":
    main()
