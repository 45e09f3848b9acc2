"""A training run's directory: ``--out``/``--resume`` checks, the atomic ``last/`` resume state,
the run identity a resumed run must share, and ``metrics.jsonl``. Shared by both trainers
(``train`` and ``ner.train``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import torch

from .checkpoint import EPOCHS_DIR, load_weights, replace_atomically, save_weights

logger = logging.getLogger("docunet_rt")

RESUME_FILES = ("state.json", "model.safetensors", "optimizer.pt")


def _recover_last(last: Path) -> None:
    """Finish a swap of ``last/`` that was interrupted (see :func:`save_resume_state`)."""
    new, old = last.with_name("last.new"), last.with_name("last.old")
    if not last.exists():  # stopped after last.new was complete, before it was renamed
        if (new / "state.json").is_file():  # written last, atomically: last.new is complete
            os.replace(new, last)
        elif old.exists():
            os.replace(old, last)
    shutil.rmtree(old, ignore_errors=True)


def check_run_dir(out: Path, resume: bool) -> dict[str, Any] | None:
    """Check ``--out``/``--resume`` before anything is loaded: the saved resume state with
    ``resume``, None for a new run; an error when the directory does not fit the request."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a directory")
    if not resume:
        last = out / "last"
        _recover_last(last)
        if (last / "state.json").is_file():
            raise FileExistsError(
                f"{out} already holds a training run; pass --resume or a new --out"
            )
        if (out / "metrics.jsonl").exists():  # no epoch finished: nothing to resume
            logger.warning("%s: no finished epoch to resume; starting the run again", out)
            (out / "metrics.jsonl").unlink()
            shutil.rmtree(out / EPOCHS_DIR, ignore_errors=True)  # kept by the run started again
        return None
    last = out / "last"
    _recover_last(last)
    missing = [f for f in RESUME_FILES if not (last / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"--resume: no resume state in {last} (missing {', '.join(missing)}); "
            "start the run without --resume"
        )
    try:
        state = json.loads((last / "state.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--resume: {last / 'state.json'} is corrupt: {e}") from None
    if not isinstance(state, dict) or not all(k in state for k in ("epoch", "step")):
        raise ValueError(f"--resume: {last / 'state.json'} has no epoch and step")
    return state


def last_finished_epoch(out: str | os.PathLike) -> dict[str, Any] | None:
    """The resume state of the run in ``out`` (``epoch`` = the last finished epoch, ``epochs``
    = the planned number), or None when no epoch has finished."""
    last = Path(out) / "last"
    try:
        _recover_last(last)
        return json.loads((last / "state.json").read_text())
    except (OSError, ValueError):
        return None


def finished_summary(out: Path, state: dict[str, Any]) -> dict[str, Any]:
    """What a finished run reports (its best epoch, dev F1 and test score), from the
    checkpoint's config.json, else from metrics.jsonl and the resume state."""
    best: dict[str, Any] = {}
    try:
        best = json.loads((out / "config.json").read_text()).get("best") or {}
    except (OSError, ValueError):
        pass
    if "epoch" not in best:
        try:
            lines = (out / "metrics.jsonl").read_text().splitlines()
            epochs = [r for r in map(json.loads, filter(None, lines)) if "dev" in r]
            best = max(epochs, key=lambda r: r["dev"]["f1"], default={})
        except (OSError, ValueError, KeyError, TypeError):
            best = {}
    return {
        "already_finished": True,
        "epoch": state.get("epoch"),
        "step": state.get("step"),
        "best_epoch": best.get("epoch", state.get("best_epoch")),
        "best_dev_f1": (best.get("dev") or {}).get("f1", state.get("best_f1")),
        "test": best.get("test"),
        "threshold": best.get("threshold"),  # train --tune-threshold's choice, if any
    }


def mark_finished(last: Path, state: dict[str, Any]) -> None:
    """Record in the resume state that the run is complete (``--resume`` then trains nothing)."""
    if (last / "state.json").is_file():
        write_atomic(last / "state.json", json.dumps({**state, "finished": True}).encode())


def write_atomic(path: Path, data: bytes) -> None:
    replace_atomically(path, lambda tmp: tmp.write_bytes(data))


PATH_FIELDS = ("train", "dev", "test", "encoder", "relations")  # compared as the files named


def as_path(v: Any, *, absolute_only: bool = False) -> Any:
    """A path option as the file it names (absolute, links resolved); lists element-wise;
    anything else (None, an encoder name that is not a directory here, with ``absolute_only``
    a relative path) unchanged."""
    if isinstance(v, (list, tuple)):
        return [as_path(x, absolute_only=absolute_only) for x in v]
    if not isinstance(v, str) or not os.path.exists(v) or (absolute_only and not os.path.isabs(v)):
        return v
    return os.path.realpath(v)


def run_identity(opts: Any, fields: Sequence[str]) -> dict[str, Any]:
    """The options ``fields`` of ``opts`` that a resumed run must share, paths absolute."""
    return {k: as_path(getattr(opts, k)) if k in PATH_FIELDS else getattr(opts, k) for k in fields}


def check_same_run(state: dict[str, Any], opts: Any, fields: Sequence[str]) -> None:
    """ValueError naming the options that differ from the run being resumed (runs saved
    before this check existed carry no identity and are not checked). Paths count as the same
    when they name the same file (``data/x.json`` and ``/abs/data/x.json``)."""
    saved = state.get("run")
    if not saved:
        return
    ours = run_identity(opts, fields)
    defaults = {f.name: f.default for f in dataclass_fields(opts)}

    def same(k: str) -> bool:
        # an option added after the run started is not in its record: the run used its default
        v = saved.get(k, defaults.get(k))
        if k not in PATH_FIELDS:
            return v == ours[k]
        # the same string, or an absolute recorded path naming the same file (a relative one
        # in an old record cannot be resolved: its working directory is not known)
        return v == getattr(opts, k) or as_path(v, absolute_only=True) == ours[k]

    diff = [f"{k}: {saved.get(k)!r} → {ours[k]!r}" for k in ours if not same(k)]
    if diff:
        raise ValueError(
            "--resume with other options than the run it continues ("
            + "; ".join(diff)
            + "); use the same options, or a new --out"
        )


def append_metrics(out: Path, record: dict[str, Any]) -> None:
    """Add an epoch's line to metrics.jsonl, replacing a line of the same epoch (written by a
    run interrupted after it and resumed from the state before it)."""
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    keep = [x for x in lines if x.strip() and json.loads(x).get("epoch") != record["epoch"]]
    if len(keep) == len(lines):
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        return
    write_atomic(path, ("\n".join([*keep, json.dumps(record)]) + "\n").encode())


def save_resume_state(last: Path, model, optimizer, scheduler, state: dict[str, Any]) -> None:
    """Write the resume state to ``last.new/``, then swap it in for ``last/``: an interrupt
    (Ctrl-C, kill) at any moment leaves one complete state, the old or the new."""
    new, old = last.with_name("last.new"), last.with_name("last.old")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    save_weights(model, new / "model.safetensors")
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        new / "optimizer.pt",
    )
    write_atomic(new / "state.json", json.dumps(state).encode())  # last: marks it complete
    if last.exists():
        os.replace(last, old)
    os.replace(new, last)
    shutil.rmtree(old, ignore_errors=True)


def resume_state(last: Path, model, optimizer, scheduler) -> dict[str, Any]:
    """Load the state ``check_run_dir`` has already found complete."""
    load_weights(model, last / "model.safetensors")
    blob = torch.load(last / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["torch_rng"])
    return json.loads((last / "state.json").read_text())
