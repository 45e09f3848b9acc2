"""``train_ner``: train the entity tagger, select the epoch on dev mention F1, resume.

NER_CKPT layout (safetensors + JSON, like the RE checkpoint)::

    tagger.json        {"format", "tagger": TaggerConfig, "training": {...}, "best": {...}}
    model.safetensors  encoder.* and classifier.* weights of the dev-selected epoch
    tokenizer.json     the tokenizer the wordpieces were built with
    lexicon.json       surface form → concept id (when the training entities carry ids)
    metrics.jsonl      one line per epoch
    last/              resume state (the RE trainer's format)
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..checkpoint import load_encoder, load_weights, replace_atomically, save_weights
from ..data.document import Document
from ..features import TokenizerInfo
from ..rundir import (
    append_metrics,
    check_run_dir,
    check_same_run,
    mark_finished,
    resume_state,
    run_identity,
    save_resume_state,
)
from ..train import (
    linear_warmup,
    load_split,
    pick_device,
    require_training_extras,
    seed_everything,
)
from .model import IGNORE, Tagger, TorchTagFn, window_labels
from .recognize import Recognizer, build_lexicon, save_lexicon
from .scoring import prf
from .tagging import TaggerConfig, document_words, gold_spans, tag_features, window_batch

logger = logging.getLogger("docunet_rt")
NER_FORMAT = "docunet-rt-tagger/1"
TAGGER_JSON = "tagger.json"
LEXICON_JSON = "lexicon.json"


@dataclass
class NerTrainOptions:
    train: list[str]  # one or more training files (any format `read_documents` reads)
    dev: str  # selects the epoch (mention F1); never a file you report on
    out: str
    format: str = "auto"
    encoder: str | None = None  # local HF directory; None = the embedded MiniLM
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 4  # documents per optimizer step
    lr_encoder: float = 5e-5
    lr_head: float = 1e-3
    warmup: float = 0.1
    clip: float = 1.0
    grouping: str = "auto"  # auto: "concept" when training entities carry ids, else "name"
    seed: int = 66
    resume: bool = False
    skip_bad: bool = False
    device: str = "auto"
    threads: int | None = None
    log_every: int = 50
    extra: dict[str, Any] = field(default_factory=dict)


RUN_IDENTITY = ("train", "dev", "format", "encoder", "epochs", "max_steps", "batch_size",
                "lr_encoder", "lr_head", "warmup", "clip", "grouping", "seed")  # fmt: skip


def entity_types(docs: Sequence[Document]) -> list[str]:
    types = sorted({e.type for d in docs for e in d.entities if e.type})
    if not types:
        raise ValueError("the training data has no typed entity mentions; nothing to learn")
    return types


def score_mentions(recognizer: Recognizer, docs: Sequence[Document]) -> dict[str, float]:
    """Mention P/R/F1 (exact word span and type) of ``recognizer`` on gold ``docs``."""
    pred = recognizer.tag([document_words(d)[0] for d in docs])
    return prf(
        {(i, *s) for i, spans in enumerate(pred) for s in spans},
        {(i, *s) for i, d in enumerate(docs) for s in gold_spans(d)},
    )


def save_tagger(out: Path, model: Tagger, tok: TokenizerInfo, meta: dict[str, Any]) -> None:
    save_weights(model, out / "model.safetensors")
    tok.tokenizer.save(str(out / "tokenizer.json"))  # type: ignore[attr-defined]
    blob = {"format": NER_FORMAT, "version": __version__, "tagger": model.config.to_dict(),
            "encoder_config": model.encoder.config.to_dict(), **meta}  # fmt: skip
    replace_atomically(out / TAGGER_JSON, lambda t: t.write_text(json.dumps(blob, indent=1)))


def load_tagger(ckpt: str | Path, device: str = "cpu") -> tuple[Tagger, TokenizerInfo, dict]:
    """A trained tagger from NER_CKPT (weights loaded from safetensors; no pickle)."""
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModel

    ckpt = Path(ckpt)
    if not (ckpt / TAGGER_JSON).is_file():
        raise FileNotFoundError(
            f"{ckpt} is not a tagger checkpoint (no {TAGGER_JSON}); make one with "
            "`docunet-rt train-ner --train FILE --dev FILE --out NER_CKPT`"
        )
    blob = json.loads((ckpt / TAGGER_JSON).read_text())
    enc_cfg = AutoConfig.for_model(**blob["encoder_config"])
    enc_cfg._attn_implementation = "eager"
    model = Tagger(TaggerConfig.from_dict(blob["tagger"]), AutoModel.from_config(enc_cfg))
    load_weights(model, ckpt / "model.safetensors")
    tok = TokenizerInfo.from_tokenizer(Tokenizer.from_file(str(ckpt / "tokenizer.json")))
    return model.to(device).eval(), tok, blob


def train_ner(
    opts: NerTrainOptions, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    out, last = Path(opts.out), Path(opts.out) / "last"
    resumed = check_run_dir(out, opts.resume)
    if resumed is not None and resumed.get("finished"):
        return {"already_finished": True, **{k: resumed.get(k) for k in ("epoch", "best_f1")},
                "best_epoch": resumed.get("best_epoch"), "best_dev_f1": resumed.get("best_f1")}  # fmt: skip
    require_training_extras()
    device = pick_device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    seed_everything(opts.seed)

    train_docs = [d for path in opts.train for d in load_split(path, opts.format, opts.skip_bad)[0]]
    dev_docs = load_split(opts.dev, opts.format, opts.skip_bad)[0]
    if not train_docs:
        raise ValueError(f"{', '.join(opts.train)}: no usable training documents")
    lexicon = build_lexicon(train_docs)
    grouping = opts.grouping if opts.grouping != "auto" else ("concept" if lexicon else "name")
    encoder, tok, enc_path = load_encoder(opts.encoder, attention_dropout=None)
    enc_cfg = encoder.config
    max_length = min(512, int(getattr(enc_cfg, "max_position_embeddings", 512)))
    config = TaggerConfig(
        types=entity_types(train_docs), encoder=str(enc_path), hidden_size=int(enc_cfg.hidden_size),
        max_length=max_length, window_overlap=min(128, (max_length - 2) // 4), grouping=grouping,
    )  # fmt: skip
    model = Tagger(config, encoder).to(device)
    feats = [tag_features(document_words(d)[0], tok, config, gold_spans(d)) for d in train_docs]

    steps_per_epoch = math.ceil(len(feats) / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    if opts.max_steps:
        total = min(total, opts.max_steps)
    epochs = math.ceil(total / steps_per_epoch)
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    optimizer = torch.optim.AdamW(
        [{"params": enc, "lr": opts.lr_encoder}, {"params": head, "lr": opts.lr_head}],
        eps=1e-6, weight_decay=0.01,
    )  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup(total, opts.warmup))
    identity = run_identity(opts, RUN_IDENTITY)
    state: dict[str, Any] = {"epoch": 0, "step": 0, "best_f1": -1.0, "best_epoch": None}
    if resumed is not None:
        check_same_run(resumed, opts, RUN_IDENTITY)
        state = {**state, **resume_state(last, model, optimizer, scheduler)}
    state.update(epochs=epochs, total_steps=total, run=identity)
    out.mkdir(parents=True, exist_ok=True)
    if lexicon and not (resumed is not None and (out / LEXICON_JSON).exists()):
        save_lexicon(lexicon, out / LEXICON_JSON)  # (a resumed run keeps a rebuilt lexicon)
    meta = {"training": {**asdict(opts), "total_steps": total, "train_docs": len(feats),
                         "dev_docs": len(dev_docs), "lexicon_entries": len(lexicon)}}  # fmt: skip
    recognizer = Recognizer(TorchTagFn(model, device), tok, config)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    rng = np.random.default_rng(opts.seed)
    for _ in range(state["epoch"]):
        rng.permutation(len(feats))
    record: dict[str, Any] = {}
    for epoch in range(state["epoch"] + 1, epochs + 1):
        if state["step"] >= total:
            break
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(feats))
        losses = []
        for i in range(0, len(order), opts.batch_size):
            group = [feats[j] for j in order[i : i + opts.batch_size]]
            batch = window_batch(group, tok)
            labels = torch.from_numpy(window_labels(batch, group)).to(device)
            logits = model(
                torch.from_numpy(batch.input_ids).to(device),
                torch.from_numpy(batch.attention_mask).to(device),
            )
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            state["step"] += 1
            if opts.log_every and state["step"] % opts.log_every == 0:
                logger.info("epoch %d step %d/%d loss %.4f", epoch, state["step"], total,
                            float(np.mean(losses[-opts.log_every:])))  # fmt: skip
            if state["step"] >= total:
                break
        train_seconds = time.perf_counter() - t0
        model.eval()
        dev = score_mentions(recognizer, dev_docs)
        record = {"epoch": epoch, "step": state["step"], "train_loss": float(np.mean(losses)),
                  "train_seconds": train_seconds, "dev": dev}  # fmt: skip
        if dev["f1"] > state["best_f1"]:
            state["best_f1"], state["best_epoch"] = dev["f1"], epoch
            record["best"] = True
            save_tagger(out, model, tok, {**meta, "best": record})
        save_resume_state(last, model, optimizer, scheduler, {**state, "epoch": epoch})
        append_metrics(out, record)
        state["epoch"] = epoch
        logger.info("epoch %d: loss %.4f, dev mention F1 %.4f (best %.4f at epoch %s), %.0fs",
                    epoch, record["train_loss"], dev["f1"], state["best_f1"], state["best_epoch"],
                    time.perf_counter() - t0)  # fmt: skip
        if progress:
            progress({"event": "epoch", **record})
    mark_finished(last, state)
    return {"best_epoch": state["best_epoch"], "best_dev_f1": state["best_f1"], **record}
