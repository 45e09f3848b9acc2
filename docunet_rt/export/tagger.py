"""NER_CKPT → the tagger graphs and lexicon of a MODEL_DIR (``tagger.<precision>.onnx``).

One graph per precision variant, like the RE graphs: fp32 (traced), int8 (dynamic int8 weight
MatMuls, the RE encoder's settings), fp16 (``keep_io_types``). Inputs/outputs are the
``tagger`` entry of ``runtime.model_dir.GRAPH_IO``. The fp32 graph must match PyTorch on a
tracing batch to 1e-3; every variant is run once on ONNX Runtime CPU (fp16 may not run there).
The description returned goes into model.json's ``tagger`` section.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..ner.tagging import TaggerConfig
from ..runtime.model_dir import (
    GRAPH_IO,
    LEXICON_FILE,
    TAGGER_GRAPH,
    TAGGER_INPUTS,
    TAGGER_OUTPUTS,
    dynamic_axes,
    file_sha256,
    graph_file,
)
from .quantize import convert_fp16, quantize_int8
from .tracing import ExportError

logger = logging.getLogger("docunet_rt")
TAGGER_TOKENIZER = "tagger.tokenizer.json"  # only when it differs from the RE tokenizer


def _tracing_inputs(tok: Any, config: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two windows of different lengths (every dynamic axis ≥ 2, padding present)."""
    rng = np.random.default_rng(0)
    vocab = int(tok.tokenizer.get_vocab_size())  # type: ignore[attr-defined]
    length = min(24, config.max_length)
    ids = rng.integers(5, max(6, vocab), size=(2, length)).astype(np.int64)
    mask = np.ones_like(ids)
    ids[:, 0], ids[0, -1], ids[1, length - 6] = tok.cls_id, tok.sep_id, tok.sep_id
    ids[1, length - 5 :], mask[1, length - 5 :] = tok.pad_id, 0
    return ids, mask


def export_tagger(
    ner_ckpt: str | Path,
    out: Path,
    precisions: Sequence[str],
    *,
    opset: int,
    re_tokenizer: Path,
    per_channel: bool = True,
    reduce_range: bool = True,
    weight_type: str = "qint8",
    dictionary_min_chars: int | None = None,
    linking: str = "exact",
    link_similarity: float = 0.75,
) -> dict[str, Any]:
    """Write the tagger variants (and lexicon) into ``out``; return model.json's section.
    ``dictionary_min_chars``: turn on lexicon matching (``TaggerConfig.dictionary_min_chars``);
    ``linking``/``link_similarity``: ``TaggerConfig.linking`` (concept grouping only)."""
    import torch

    from ..ner.model import TorchTagFn
    from ..ner.train import LEXICON_JSON, load_tagger
    from ..runtime.sessions import SessionConfig, make_session

    src = Path(ner_ckpt)
    model, tok, blob = load_tagger(src)
    model.eval()
    ids, mask = _tracing_inputs(tok, model.config)
    ref = TorchTagFn(model)(ids, mask)
    plain = out / "tagger.plain.onnx.tmp"
    axes = dynamic_axes(TAGGER_GRAPH)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; the fp32 graph is checked below
        torch.onnx.export(
            model, (torch.from_numpy(ids), torch.from_numpy(mask)), str(plain), dynamo=False,
            opset_version=opset, input_names=list(TAGGER_INPUTS),
            output_names=list(TAGGER_OUTPUTS), dynamic_axes=axes, do_constant_folding=True,
        )  # fmt: skip
    graphs: dict[str, str] = {}
    runnable: dict[str, bool | str] = {}
    for prec in precisions:
        path = out / graph_file(TAGGER_GRAPH, prec)
        if prec == "fp32":
            shutil.copyfile(plain, path)
        elif prec == "int8":
            quantize_int8(plain, path, per_channel=per_channel, reduce_range=reduce_range,
                          weight_type=weight_type)  # fmt: skip
        else:
            convert_fp16(plain, path)
        graphs[prec] = path.name
        try:
            sess = make_session(path, SessionConfig(device="cpu", threads=1))
            got = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        except Exception as e:  # noqa: BLE001 - only fp16 may fail on the CPU
            if prec != "fp16":
                raise ExportError(
                    f"the {prec} tagger does not run on ONNX Runtime CPU: {e}"
                ) from None
            runnable[prec] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
            continue
        diff = float(np.abs((got - ref) * mask[..., None]).max())
        logger.info("tagger %s: max |Δlogit| vs PyTorch on the tracing batch %.2e", prec, diff)
        if prec == "fp32" and diff > 1e-3:
            raise ExportError(f"the fp32 tagger disagrees with PyTorch (max |Δ| {diff:.2e})")
        runnable[prec] = True
    plain.unlink()

    tokenizer = "tokenizer.json"
    if (src / "tokenizer.json").read_bytes() != re_tokenizer.read_bytes():
        tokenizer = TAGGER_TOKENIZER
        shutil.copyfile(src / "tokenizer.json", out / tokenizer)
    lexicon = None
    if (src / LEXICON_JSON).is_file():
        lexicon = LEXICON_FILE
        shutil.copyfile(src / LEXICON_JSON, out / lexicon)
    files = [*graphs.values(), *([lexicon] if lexicon else []), tokenizer]
    config = model.config.to_dict()
    if dictionary_min_chars is not None:
        if lexicon is None:
            raise ExportError("--tagger-dictionary needs a lexicon in the tagger checkpoint")
        config["dictionary_min_chars"] = dictionary_min_chars
    if config["grouping"] == "concept":
        config.update(linking=linking, link_similarity=link_similarity)
        TaggerConfig.from_dict(config)  # validated once, before model.json is written
    return {
        "config": config,
        "labels": model.config.labels,
        "graphs": graphs,
        "lexicon": lexicon,
        "tokenizer": tokenizer,
        "special_tokens": {"cls_id": tok.cls_id, "sep_id": tok.sep_id, "pad_id": tok.pad_id},
        "cpu_runnable": runnable,
        "sha256": {f: file_sha256(out / f) for f in files},
        "io": {n: {"dtype": d, "shape": s.split()} for n, (d, s) in GRAPH_IO[TAGGER_GRAPH].items()},
        "source_checkpoint": {"path": str(src.resolve()), "best": blob.get("best", {})},
    }
