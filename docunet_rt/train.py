"""Training loop: AdamW with per-part learning rates, linear warm-up, clipping, accumulation,
dev-selected best checkpoint, per-epoch JSONL log, exact resume."""

from __future__ import annotations

import importlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .calibrate import tune_threshold
from .checkpoint import (
    EPOCHS_DIR,
    build_model,
    checkpoint_format,
    epoch_weights,
    load_encoder,
    load_weights,
    save_checkpoint,
    save_weights,
)
from .config import FEATURE_MAPS, MARKERS, SIMILARITIES, DocuNetConfig, check_choice
from .data import Document, ReadStats, check_relations, load_relations, read_documents
from .decode import to_facts
from .evaluate import torch_extractor
from .features import DocFeatures, TokenizerInfo, build_features, candidate_pair_types, collate
from .metrics import Scores, score, train_facts
from .model import DocuNet, balanced_loss, batch_to_tensors
from .options import (
    DEFAULT_MAX_TOKENS,
    ENTITY_ORDERS,
    SELECTIONS,
    THRESHOLD_CLASSES,
    TRAIN_INSTALL,
    ExtractOptions,
)
from .rundir import (
    PATH_FIELDS,
    append_metrics,
    as_path,
    check_run_dir,
    check_same_run,
    finished_summary,
    mark_finished,
    resume_state,
    run_identity,
    save_resume_state,
    write_atomic,
)

logger = logging.getLogger("docunet_rt")
Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainOptions:
    train: str
    dev: str
    out: str
    test: str | None = None
    format: str = "auto"
    relations: str | None = None  # JSON file pinning the label set (e.g. DocRED rel_info.json)
    encoder: str | None = None  # local HF directory; None = embedded MiniLM
    epochs: int = 8
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 1
    lr_encoder: float = 3e-5
    lr_head: float = 1e-4  # classifier: head/tail extractors and grouped bilinear
    lr_unet: float = 4e-4  # feature-map projection and U-Net
    warmup: float = 0.06
    clip: float = 1.0
    markers: str = "star"
    entity_order: str = "given"  # DocuNetConfig.entity_order
    feature_map: str = "context"
    similarity: str = "elementwise"
    # cap on document wordpieces (None = never truncate: long documents use several windows);
    # not the encoder window, which is DocuNetConfig.max_length
    max_doc_tokens: int | None = None
    seed: int = 66
    no_unet: bool = False
    unet_base: int = 256
    unet_in_channels: int = 3
    resume: bool = False
    skip_bad: bool = False
    device: str = "auto"
    threads: int | None = None  # torch intra-op threads (None = torch's default)
    log_every: int = 25  # log a progress line every N optimizer steps
    # The epoch the checkpoint keeps: "dev" (best dev F1) or "last" (the final epoch: the
    # train+dev protocol, where the epoch count was chosen on dev beforehand and dev is trained on)
    select: str = "dev"
    threshold_class: str = "fixed"  # DocuNetConfig.threshold_class
    # After training, choose the decision threshold of the kept epoch on dev (not with
    # select="last": dev is training data there) and record it in the checkpoint
    tune_threshold: bool = False
    # Also save every epoch's weights as epochs/epoch_NNN.safetensors (for `docunet-rt average`)
    keep_epochs: bool = False


# What a resumed run must share with the run it continues (data, schedule, shuffle, model).
RUN_IDENTITY = (
    "train", "dev", "test", "format", "relations", "encoder", "epochs", "max_steps", "batch_size",
    "grad_accum", "lr_encoder", "lr_head", "lr_unet", "warmup", "clip", "markers", "feature_map",
    "similarity", "max_doc_tokens", "seed", "no_unet", "unet_base", "unet_in_channels",
    "entity_order", "select", "threshold_class", "keep_epochs",
)  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Data preparation
# ------------------------------------------------------------------------------------------------


def load_split(path: str, fmt: str, skip_bad: bool) -> tuple[list[Document], ReadStats]:
    stats = ReadStats()
    docs = read_documents(path, fmt, skip_bad=skip_bad, stats=stats)
    if stats.skipped:
        logger.warning("%s: skipped %d bad record(s)", path, stats.skipped)
    return docs, stats


def label_space(
    train_docs: Sequence[Document], relations_file: str | None
) -> tuple[list[str], dict[str, str]]:
    if relations_file:
        names = load_relations(relations_file)
        return list(names), names
    ids = sorted({lab.relation for d in train_docs for lab in d.labels or []})
    if not ids:
        raise ValueError("the training data has no labelled relations; nothing to learn")
    return ids, {r: r for r in ids}


def featurize(
    docs: Sequence[Document], tok: TokenizerInfo, config: DocuNetConfig, index: dict[str, int]
) -> list[DocFeatures]:
    feats = [build_features(d, tok, config, index) for d in docs]
    n_trunc = sum(f.truncated for f in feats)
    if n_trunc:
        logger.warning(
            "%d of %d documents truncated to %d wordpieces (--max-doc-tokens)",
            n_trunc,
            len(feats),
            config.max_doc_tokens,
        )
    return feats


# ------------------------------------------------------------------------------------------------
# Scoring (the runtime's Extractor over the PyTorch model)
# ------------------------------------------------------------------------------------------------


def model_logits(
    model: DocuNet, feats: Sequence[DocFeatures], tok: TokenizerInfo, device: Any
) -> list[np.ndarray]:
    """Pair logits per document through the runtime's Extractor over the PyTorch model."""
    return torch_extractor(model, tok, device).logits(
        feats, ExtractOptions(max_tokens=DEFAULT_MAX_TOKENS)
    )


def evaluate_model(
    model: DocuNet,
    docs: Sequence[Document],
    feats: Sequence[DocFeatures],
    tok: TokenizerInfo,
    *,
    train: set | None = None,
    device: str | torch.device = "cpu",
    thresholds: Sequence[float] | None = None,
) -> list[Scores]:
    """Scores at each logit threshold (default: the model's decision threshold only), from one
    run of the model."""
    logits = model_logits(model, feats, tok, device)
    pairs, rels = [f.pairs for f in feats], model.config.relations
    return [
        score(docs, to_facts(pairs, logits, rels, t), train)
        for t in (thresholds or [model.config.decision_threshold])
    ]


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------


def param_groups(model: DocuNet, opts: TrainOptions) -> list[dict[str, Any]]:
    head = model.head
    classifier = [
        *head.head_extractor.parameters(),
        *head.tail_extractor.parameters(),
        *head.bilinear.parameters(),
    ]
    ids = {id(p) for p in classifier}
    rest = [p for p in head.parameters() if id(p) not in ids]
    return [
        {"params": list(model.encoder.parameters()), "lr": opts.lr_encoder},
        {"params": classifier, "lr": opts.lr_head},
        {"params": rest, "lr": opts.lr_unet},
    ]


def linear_warmup(total: int, warmup: float) -> Callable[[int], float]:
    w = max(1, int(total * warmup))

    def f(step: int) -> float:
        if step < w:
            return (step + 1) / w
        return max(0.0, (total - step) / max(1, total - w))

    return f


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; valid choices: auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but torch sees no CUDA device")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(opts: TrainOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Train, selecting the best epoch on dev; returns a summary dict (also in metrics.jsonl).

    Training stops at ``opts.epochs`` epochs or ``opts.max_steps`` optimizer steps, whichever
    comes first. ``--out``/``--resume`` are checked before anything is loaded; resuming a run
    that already finished trains nothing and returns its summary with ``already_finished``.
    """
    check_choice("marker scheme", opts.markers, MARKERS)  # option errors before any loading
    check_choice("feature map", opts.feature_map, FEATURE_MAPS)
    check_choice("entity order", opts.entity_order, ENTITY_ORDERS)
    check_choice("similarity", opts.similarity, SIMILARITIES)
    check_choice("epoch selection", opts.select, SELECTIONS)
    check_choice("threshold class", opts.threshold_class, THRESHOLD_CLASSES)
    if opts.tune_threshold and opts.select == "last":
        raise ValueError(
            "--tune-threshold chooses on dev, but --select last trains on it (the train + dev "
            "protocol); tune on a dev-selected run and pass its threshold with --min-score"
        )
    out = Path(opts.out)
    last = out / "last"
    resumed = check_run_dir(out, opts.resume)
    # a finished run trains nothing; with --tune-threshold, one not tuned yet is tuned
    untuned = (
        opts.tune_threshold
        and resumed is not None
        and (finished_summary(out, resumed).get("threshold") is None)
    )
    if resumed is not None and resumed.get("finished") and not untuned:
        return finished_summary(out, resumed)
    require_training_extras()
    device = pick_device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    seed_everything(opts.seed)

    train_docs, train_stats = load_split(opts.train, opts.format, opts.skip_bad)
    relations, names = label_space(train_docs, opts.relations)
    index = {r: i + 1 for i, r in enumerate(relations)}
    dev_docs, _ = load_split(opts.dev, opts.format, opts.skip_bad)
    test_docs = load_split(opts.test, opts.format, opts.skip_bad)[0] if opts.test else None
    for path, docs in ((opts.train, train_docs), (opts.dev, dev_docs), (opts.test, test_docs)):
        if docs is not None:
            docs[:] = check_relations(docs, names, source=path, skip_bad=opts.skip_bad)
    if not train_docs:
        raise ValueError(f"{opts.train}: no usable training documents")

    # Whichever limit comes first: the epochs or the optimizer steps.
    steps_per_epoch = math.ceil(math.ceil(len(train_docs) / opts.batch_size) / opts.grad_accum)
    total = steps_per_epoch * opts.epochs
    if opts.max_steps:
        total = min(total, opts.max_steps)
    epochs = math.ceil(total / steps_per_epoch)
    if resumed is not None and (resumed["step"] >= total or resumed["epoch"] >= epochs):
        # every epoch is done (a run written before runs were marked finished): only the
        # threshold and the test score may be missing, if the run was killed before them
        scored = not test_docs or finished_summary(out, resumed).get("test") is not None
        if scored and not untuned:
            mark_finished(last, resumed)
            return finished_summary(out, resumed)

    encoder, tok, enc_path = load_encoder(opts.encoder)
    config = DocuNetConfig(
        relations=relations,
        relation_names=names,
        encoder=str(enc_path),
        markers=opts.markers,
        entity_order=opts.entity_order,
        pair_types=candidate_pair_types(train_docs),
        feature_map=opts.feature_map,
        similarity=opts.similarity,
        use_unet=not opts.no_unet,
        unet_base=opts.unet_base,
        unet_in_channels=opts.unet_in_channels,
        max_doc_tokens=opts.max_doc_tokens,
        threshold_class=opts.threshold_class,
    )
    model = build_model(config, encoder).to(device)
    config = model.config  # fitted to the encoder (hidden width, heads, window)
    train_feats = featurize(train_docs, tok, config, index)
    dev_feats = featurize(dev_docs, tok, config, index)
    test_feats = featurize(test_docs, tok, config, index) if test_docs else None
    facts = train_facts(train_docs)

    optimizer = torch.optim.AdamW(param_groups(model, opts), eps=1e-6, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup(total, opts.warmup))

    # data paths recorded as the files they name (export --calibration auto reads "dev")
    files = {k: as_path(getattr(opts, k)) for k in PATH_FIELDS if k != "encoder"}
    training_meta = {
        **asdict(opts),
        **files,
        "relations_count": len(relations),
        "total_steps": total,
    }
    state: dict[str, Any] = {"epoch": 0, "step": 0, "best_f1": -1.0, "best_epoch": None}
    if resumed is not None:
        check_same_run(resumed, opts, RUN_IDENTITY)
        state = {**state, **resume_state(last, model, optimizer, scheduler)}
        logger.info("resuming after epoch %d (step %d)", state["epoch"], state["step"])
    state.update(epochs=epochs, total_steps=total, run=run_identity(opts, RUN_IDENTITY))
    out.mkdir(parents=True, exist_ok=True)

    use_amp = device.type == "cuda"
    adaptive = config.threshold_class == "adaptive"
    rng = np.random.default_rng(opts.seed)
    for _ in range(state["epoch"]):  # replay the shuffles of finished epochs
        rng.permutation(len(train_feats))
    record: dict[str, Any] = {}
    for epoch in range(state["epoch"] + 1, epochs + 1):
        if state["step"] >= total:
            break
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(len(train_feats))
        batches = [order[i : i + opts.batch_size] for i in range(0, len(order), opts.batch_size)]
        losses, docs_seen = [], 0
        for bi, idx in enumerate(batches):
            batch = collate([train_feats[i] for i in idx], tok, config)
            t = batch_to_tensors(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(t)
            loss = balanced_loss(logits.float(), t["pair_labels"], adaptive) / opts.grad_accum
            loss.backward()
            losses.append(loss.item() * opts.grad_accum)
            docs_seen += len(idx)
            if (bi + 1) % opts.grad_accum == 0 or bi + 1 == len(batches):
                torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["step"] += 1
                if opts.log_every and state["step"] % opts.log_every == 0:
                    logger.info(
                        "epoch %d step %d/%d loss %.4f %.2f docs/s",
                        epoch,
                        state["step"],
                        total,
                        float(np.mean(losses[-opts.log_every :])),
                        docs_seen / (time.perf_counter() - t0),
                    )
                if progress:
                    progress(
                        {
                            "epoch": epoch,
                            "epochs": epochs,
                            "step": state["step"],
                            "total_steps": total,
                            "loss": float(np.mean(losses[-20:])),
                            "docs_per_s": docs_seen / (time.perf_counter() - t0),
                        }
                    )
                if state["step"] >= total:
                    break
        train_seconds = time.perf_counter() - t0
        [dev_scores] = evaluate_model(model, dev_docs, dev_feats, tok, train=facts, device=device)
        record = {
            "epoch": epoch,
            "step": state["step"],
            "train_loss": float(np.mean(losses)) if losses else None,
            "train_seconds": train_seconds,
            "train_docs_per_s": docs_seen / train_seconds,
            "dev": dev_scores.to_dict(),
        }
        if opts.select == "last" or dev_scores.f1 > state["best_f1"]:
            state["best_f1"], state["best_epoch"] = dev_scores.f1, epoch
            record["best"] = True
            save_checkpoint(
                out, model, tok, training=training_meta, best={k: record[k] for k in record}
            )
        if opts.keep_epochs:
            (out / EPOCHS_DIR).mkdir(exist_ok=True)
            save_weights(model, epoch_weights(out, epoch))
        record["epoch_seconds"] = time.perf_counter() - t0
        # the resume state first: an interrupt between the two never leaves a metrics line
        # without a state to resume from (a resumed run rewrites the epoch's line)
        save_resume_state(last, model, optimizer, scheduler, {**state, "epoch": epoch})
        append_metrics(out, record)
        state["epoch"] = epoch
        logger.info(
            "epoch %d: loss %.4f, dev F1 %.4f (best %.4f at epoch %s), %.0fs",
            epoch,
            record["train_loss"] or float("nan"),
            dev_scores.f1,
            state["best_f1"],
            state["best_epoch"],
            record["epoch_seconds"],
        )
        if progress:
            progress({"event": "epoch", **record})
    summary: dict[str, Any] = {
        "best_epoch": state["best_epoch"],
        "best_dev_f1": state["best_f1"],
        **record,
    }
    if opts.tune_threshold and state["best_epoch"] is not None:
        summary["threshold"] = tune_saved_threshold(
            out, model, dev_docs, dev_feats, tok, facts, device
        )
    if test_docs and state["best_epoch"] is not None:
        summary["test"] = score_test(out, model, test_docs, test_feats, tok, facts, device)
    mark_finished(last, state)
    summary["skipped_train_records"] = train_stats.skipped
    return summary


def tune_saved_threshold(out: Path, model, docs, feats, tok, facts, device) -> dict[str, Any]:
    """``--tune-threshold``: the decision threshold of the kept checkpoint with the best dev F1
    (``calibrate.tune_threshold``), written into its config.json; the model decides at it from
    then on (test included)."""
    load_weights(model, out / "model.safetensors")
    logits = model_logits(model, feats, tok, device)
    pairs = [f.pairs for f in feats]
    choice = tune_threshold(docs, pairs, logits, model.config.relations, train=facts)
    model.config.decision_threshold = choice.threshold
    meta_file = out / "config.json"
    meta = json.loads(meta_file.read_text())
    meta["model"]["decision_threshold"] = choice.threshold
    meta["format"] = checkpoint_format(model.config)
    meta["best"]["threshold"] = choice.to_dict()
    write_atomic(meta_file, json.dumps(meta, indent=2, default=str).encode())
    logger.info(
        "decision threshold %+.1f chosen on dev: F1 %.4f (at 0: %.4f)",
        choice.threshold,
        choice.f1,
        choice.f1_at_zero,
    )
    return choice.to_dict()


def score_test(out: Path, model, docs, feats, tok, facts, device) -> dict[str, Any]:
    """Score the selected checkpoint on test once, after training (never used to select), at
    its decision threshold (and at 0 beside it when that was tuned); the result goes into
    metrics.jsonl and the checkpoint's config.json."""
    load_weights(model, out / "model.safetensors")
    meta_file = out / "config.json"
    meta = json.loads(meta_file.read_text())
    model.config.decision_threshold = meta["model"].get("decision_threshold", 0.0)
    tuned = model.config.decision_threshold != 0.0
    thresholds = [model.config.decision_threshold] + ([0.0] if tuned else [])
    found = evaluate_model(
        model, docs, feats, tok, train=facts, device=device, thresholds=thresholds
    )
    scores = found[0].to_dict()
    if tuned:
        meta["best"]["test_at_logit_0"] = found[1].to_dict()
    meta["best"]["test"] = scores
    write_atomic(meta_file, json.dumps(meta, indent=2, default=str).encode())
    event = {"event": "test", "epoch": meta["best"]["epoch"], "test": scores}
    if tuned:  # test at the tuned threshold, and at the model's own beside it
        event.update(decision_threshold=model.config.decision_threshold,
                     test_at_logit_0=meta["best"]["test_at_logit_0"])  # fmt: skip
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(event) + "\n")
    logger.info("test F1 %.4f at the selected epoch %s", scores["f1"], meta["best"]["epoch"])
    return scores


# ------------------------------------------------------------------------------------------------
# Dependencies
# ------------------------------------------------------------------------------------------------


def require_training_extras() -> None:
    """ImportError naming the pip command when a training dependency is missing (torch itself
    is imported with this module; the CLI reports it the same way)."""
    for name in ("transformers", "safetensors"):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ImportError(
                f"training needs the Python package {name!r}, which is not installed: {TRAIN_INSTALL}"
            ) from e
