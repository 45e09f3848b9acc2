"""Shared helpers for the extraction tests: a tiny tokenizer, a torch-free stub extractor with
deterministic fake logits, synthetic corpora, and a command-line runner for subprocess tests.

Run as a script: ``python tests/_extract_fixtures.py CORPUS OUT [--resume] [--delay S]``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import random
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "tests"):  # script use (docunet_rt, conftest)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from conftest import tiny_model, tiny_tokenizer  # noqa: E402

from docunet_rt.config import DocuNetConfig  # noqa: E402
from docunet_rt.features import TokenizerInfo  # noqa: E402
from docunet_rt.runtime import ExtractOptions, Extractor  # noqa: E402

RELATIONS = ["P1", "P2", "P3", "P4"]
RELATION_NAMES = {"P1": "one", "P2": "two", "P3": "three", "P4": "four"}
WORDS = (
    "the a of and in to was is born city country river company founded by located near "
    "alice bob carol dave paris london berlin acme globex initech rhine thames"
).split()


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "*", "@", ".", ","] + WORDS


def make_tokenizer():
    """A WordPiece tokenizer over WORDS + punctuation with BERT-style [CLS] … [SEP]."""
    return tiny_tokenizer(VOCAB, pair=True)


class StubBackend:
    """Fake logits that depend only on the document (not on its batch), after an optional delay;
    records the batch sizes it ran."""

    provider = "stub"
    max_batch_docs = None  # as a CPU session

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.timings = {"encoder": 0.0, "merge": 0.0, "head": 0.0}

    def run_batch(self, feats, max_tokens=None):
        if self.delay:
            time.sleep(self.delay)
        self.batches.append(len(feats))
        out = []
        for f in feats:
            rng = np.random.default_rng(zlib.crc32(f.wordpieces.tobytes()))
            out.append((rng.normal(size=(len(f.pairs), len(RELATIONS) + 1)) * 2).astype(np.float32))
        return out


def stub_config(decision_threshold: float = 0.0) -> DocuNetConfig:
    return DocuNetConfig(
        relations=list(RELATIONS),
        relation_names=dict(RELATION_NAMES),
        max_length=32,
        window_overlap=8,
        decision_threshold=decision_threshold,
    )


def StubExtractor(delay: float = 0.0, decision_threshold: float = 0.0) -> Extractor:  # noqa: N802
    """The real runtime Extractor (features, batching, decoding) over a StubBackend; its model
    decides at ``decision_threshold`` (as if tuned on dev)."""
    tok = TokenizerInfo.from_tokenizer(make_tokenizer())
    return Extractor.from_backend(StubBackend(delay), stub_config(decision_threshold), tok)


def build_model_dir(tmp: Path, precisions: str = "fp32,int8") -> Path:
    """A tiny random checkpoint (2-layer BERT, H=32; max_length 32 so longer documents use several
    windows) exported to ``tmp/model``. Needs torch + transformers (the training extras)."""
    import torch

    from docunet_rt.checkpoint import save_checkpoint
    from docunet_rt.export import export_model

    model, tok = tiny_model(
        0,
        vocab=VOCAB,
        pair=True,
        pooler=True,
        relations=list(RELATIONS),
        relation_names=dict(RELATION_NAMES),
    )
    with torch.no_grad():  # a fair share of positive logits, so that there are triples
        model.head.bilinear.linear.weight.mul_(20.0)
        model.head.bilinear.linear.bias.fill_(-3.0)
    save_checkpoint(tmp / "ckpt", model, tok, training={"note": "random weights"})
    export_model(tmp / "ckpt", tmp / "model", precisions=precisions)
    return tmp / "model"


def cli_app():
    """``docunet-rt``'s app if it has ``extract``, else an app with just ``extract``."""
    import typer

    cli_main = importlib.import_module("docunet_rt.cli.main")
    from docunet_rt.cli.extract_cmd import register

    names = {c.name or c.callback.__name__ for c in cli_main.app.registered_commands}
    if "extract" in names:
        return cli_main.app
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


# ------------------------------------------------------------------------------------------------
# Corpora
# ------------------------------------------------------------------------------------------------


def docred_record(
    rng: random.Random, i: int, n_ent: int | None = None, words: list[str] = WORDS
) -> dict[str, Any]:
    n_sent = rng.randint(1, 6)
    sents = [[rng.choice(words) for _ in range(rng.randint(3, 14))] for _ in range(n_sent)]
    n_ent = rng.randint(0, 5) if n_ent is None else n_ent
    vs = []
    for _ in range(n_ent):
        ms = []
        for _ in range(rng.randint(1, 2)):
            s = rng.randrange(n_sent)
            a = rng.randrange(len(sents[s]))
            b = min(len(sents[s]), a + rng.randint(1, 2))
            ms.append({"sent_id": s, "pos": [a, b], "type": rng.choice(["PER", "LOC", "ORG"])})
        vs.append(ms)
    rec: dict[str, Any] = {"title": f"doc {i}", "sents": sents, "vertexSet": vs}
    if i % 3 == 0:
        rec["id"] = f"d{i}"
    if i % 4 == 0:
        rec["meta"] = {"n": i, "tags": ["x", {"y": None}], "f": 1.5}
    return rec


def text_record(rng: random.Random, i: int, words: list[str] = WORDS) -> dict[str, Any]:
    words = [rng.choice(words) for _ in range(rng.randint(4, 40))]
    text = ""
    spans = []
    for w in words:
        if text:
            text += " " if rng.random() > 0.1 else ". "
        spans.append((len(text), len(text) + len(w)))
        text += w
    ents = []
    for _ in range(rng.randint(0, 4)):
        s, e = rng.choice(spans)
        ents.append({"mentions": [{"start": s, "end": e}], "type": "T", "name": text[s:e]})
    rec: dict[str, Any] = {"text": text, "entities": ents}
    if i % 2 == 0:
        rec["id"] = f"t{i}"
    if i % 5 == 0:
        rec["meta"] = [i, "m"]
    return rec


def corpus_records(n: int, seed: int = 0, words: list[str] = WORDS) -> list[dict[str, Any]]:
    """A mix of DocRED (60%) and plain-text records with 0–5 entities, some ids and metas."""
    rng = random.Random(seed)
    return [
        docred_record(rng, i, words=words) if rng.random() < 0.6 else text_record(rng, i, words)
        for i in range(n)
    ]


def write_jsonl(path: Path, lines: list[Any], gz: bool = False) -> Path:
    data = b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the stub pipeline (``CORPUS OUT [options]``) or the CLI (``cli extract ...``)."""
    from docunet_rt.extract import run_extraction

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cli"]:
        cli_app()(argv[1:], prog_name="docunet-rt")
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--errors")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args(argv)
    s = run_extraction(
        a.corpus,
        a.out,
        StubExtractor(delay=a.delay),
        ExtractOptions(batch_size=a.batch_size),
        errors_path=a.errors,
        resume=a.resume,
        workers=a.workers,
    )
    print(
        orjson.dumps(
            {"docs": s.docs, "errors": s.errors, "has_torch": "torch" in sys.modules}
        ).decode()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
