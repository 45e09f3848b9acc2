"""Checkpoint → self-contained ONNX MODEL_DIR (the directory ``docunet_rt.runtime`` runs).

Two graphs per precision variant (``encoder.<p>.onnx``: windows → hidden states and attention
rows; ``head.<p>.onnx``: merged document tensors → pair logits), so a benchmark can time encoder
and head separately; their names, dtypes and dynamic axes, and model.json, are the MODEL_DIR
contract in ``runtime/model_dir.py``. The window merge between them is ``runtime/merge.py``.
Graphs are traced on a synthetic batch whose every dynamic dimension is ≥ 2, so no axis is
specialised. The TorchScript exporter is the default: it matches PyTorch to ~2e-7 at untraced
shapes, exports in about a second, and emits a smaller op set than the dynamo exporter
(which matches equally well but takes ~20× longer and adds GatherND); ``exporter="dynamo"``
remains available.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..config import DocuNetConfig
from ..features import Batch
from ..grouping import LINKINGS
from ..options import EXPORTERS, PRECISIONS
from ..runtime.graphs import OrtGraphs
from ..runtime.model_dir import (
    GRAPH_NAMES,
    GRAPH_SIGNATURE,
    HEAD_INPUTS,
    LEXICON_FILE,
    MERGE_FILE,
    describe,
    dynamic_axes,
    graph_file,
    graph_shape,
    io_description,
    write_model_json,
)
from .calibration import calibration_feeds, calibration_source
from .quantize import (
    TENSORRT_OPS,
    WEIGHT_TYPES,
    convert_fp16,
    optimize_fp32,
    quantize_int8,
    tensorrt_profiles,
)
from .tracing import ExportError, load_source, trace_batch, trace_dims

logger = logging.getLogger("docunet_rt")

# Inclusive opset ranges per exporter. 17 is the first with LayerNormalization (one node per
# norm for ORT and TensorRT); below it the norm is decomposed. The TorchScript exporter stops
# at 20; the dynamo exporter starts at 18. 20 is also what current TensorRT parsers accept.
OPSET_RANGES = {"torchscript": (14, 20), "dynamo": (18, 20)}
DEFAULT_OPSET = 17
DEFAULT_PRECISIONS = ("fp32", "int8")


def parse_precisions(value: str | Sequence[str]) -> list[str]:
    """``"fp32,int8"`` or a list → validated, de-duplicated precisions in the given order."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in items:
        p = raw.strip().lower()
        if not p:
            continue
        if p not in PRECISIONS:
            raise ExportError(
                f"unknown precision {raw.strip()!r}; valid choices: {', '.join(PRECISIONS)} "
                "(comma-separated, e.g. fp32,int8)"
            )
        if p not in out:
            out.append(p)
    if not out:
        raise ExportError(f"no precision given; valid choices: {', '.join(PRECISIONS)}")
    return out


def parse_pair_types(value: str | None, recorded: list[list[str]] | None) -> list[list[str]] | None:
    """``--pair-types``: "auto"/None → ``recorded`` (what training found in its candidate
    pairs), "all" → every ordered pair, "HEAD:TAIL,..." → those entity-type pairs."""
    if value is None or value == "auto":
        return recorded
    if value == "all":
        return None
    out = []
    for item in value.split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ExportError(
                f"--pair-types: {item.strip()!r} is not HEAD_TYPE:TAIL_TYPE; valid: auto, all, "
                "or comma-separated type pairs such as Chemical:Disease"
            )
        out.append([parts[0].strip(), parts[1].strip()])
    return out


def check_tagger_types(tagger: Path, pair_types: list[list[str]] | None) -> None:
    """ExportError when the tagger cannot find a type the pair types need (raw text would
    then never give such a pair)."""
    import json

    tagged = set(json.loads((tagger / "tagger.json").read_text())["tagger"].get("types", []))
    missing = sorted({t for p in pair_types or [] for t in p} - tagged)
    if missing:
        raise ExportError(
            f"the tagger finds {', '.join(sorted(tagged)) or 'no type'} but the pair types need "
            f"{', '.join(missing)}: raw text would give no such pair (--pair-types all, or a "
            "tagger trained on those types)"
        )


def check_opset(opset: int, exporter: str = "torchscript") -> int:
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; valid choices: {', '.join(EXPORTERS)}")
    lo, hi = OPSET_RANGES[exporter]
    if not isinstance(opset, int) or not lo <= opset <= hi:
        raise ExportError(
            f"unsupported opset {opset!r} for the {exporter} exporter; "
            f"valid opsets: {lo}-{hi} (default {DEFAULT_OPSET})"
        )
    return opset


def check_output_dir(model_dir: Path, ckpt_dir: Path) -> None:
    """MODEL_DIR must be new, empty, or hold only export files (never the checkpoint itself)."""
    if model_dir.resolve() == ckpt_dir.resolve():
        raise ExportError(
            f"the output directory {model_dir} is the checkpoint itself; choose another"
        )
    if model_dir.exists() and not model_dir.is_dir():
        raise FileExistsError(f"{model_dir} exists and is not a directory")
    if model_dir.is_dir() and not (model_dir / "model.json").is_file():
        ours = ("model.json", "tokenizer.json", LEXICON_FILE, ".onnx", ".tmp")
        foreign = sorted(p.name for p in model_dir.iterdir() if not p.name.endswith(ours))
        if foreign:
            raise FileExistsError(
                f"{model_dir} exists and is not an exported model directory (it holds "
                f"{', '.join(foreign[:3])}); choose a new or empty directory"
            )


# ------------------------------------------------------------------------------------------------
# Graph export
# ------------------------------------------------------------------------------------------------


def _export_one(
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    axes: dict[str, dict[int, str]],
    opset: int,
    exporter: str,
) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer/deprecation chatter; parity is checked instead
        if exporter == "torchscript":
            torch.onnx.export(
                module, args, str(path), dynamo=False, opset_version=opset,
                input_names=list(input_names), output_names=list(output_names),
                dynamic_axes={k: dict(v) for k, v in axes.items()}, do_constant_folding=True,
            )  # fmt: skip
        else:
            dims = {d: torch.export.Dim(d) for v in axes.values() for d in v.values()}
            shapes = tuple({i: dims[d] for i, d in axes[n].items()} for n in input_names)
            prog = torch.onnx.export(
                module, args, dynamo=True, opset_version=opset, external_data=False,
                input_names=list(input_names), output_names=list(output_names),
                dynamic_shapes=shapes, verbose=False,
            )  # fmt: skip
            prog.save(str(path), external_data=False)  # type: ignore[union-attr]


def _fix_io_shapes(path: Path, graph: str, config: DocuNetConfig) -> None:
    """Name the dynamic dims and pin the static ones on every graph input/output, so the
    signature reads e.g. attention_rows [W, 12, R, L] instead of exporter-generated names."""
    import onnx

    m = onnx.load(str(path))
    for vi in list(m.graph.input) + list(m.graph.output):
        want = graph_shape(graph, vi.name, config)
        dims = vi.type.tensor_type.shape.dim
        while len(dims) < len(want):
            dims.add()
        for d, w in zip(dims, want, strict=False):
            d.Clear()
            if isinstance(w, str):
                d.dim_param = w
            else:
                d.dim_value = w
    onnx.save(m, str(path))


def export_graphs(
    model: Any,
    batch: Batch,
    enc_path: Path,
    head_path: Path,
    *,
    opset: int,
    exporter: str,
    merge_path: Path | None = None,
) -> np.ndarray:
    """Trace ``Encoder(model.encoder)``, ``model.head`` and (with ``merge_path``) the window
    merge on ``batch``; write the graphs. Returns the PyTorch logits (Q, R) on ``batch``."""
    import torch

    from ..model import Encoder, WindowMerge, batch_to_tensors

    t = batch_to_tensors(batch)
    enc = Encoder(model.encoder).eval()
    with torch.no_grad():
        enc_args = (t["input_ids"], t["attention_mask"], t["win_rows"])
        win_hidden, win_rows = enc(*enc_args)  # (W, L, H), (W, heads, R, L)
        merge_args = (win_hidden, win_rows) + tuple(t[n] for n in WindowMerge.INPUTS)
        doc_hidden, mention_att = WindowMerge()(*merge_args)  # (B, T, H), (B, P, heads, T)
        head_args = (doc_hidden, mention_att) + tuple(t[n] for n in HEAD_INPUTS[2:])
        logits = model.head(*head_args)  # (Q, R)
    t0 = time.perf_counter()
    jobs = [("encoder", enc, enc_args, enc_path), ("head", model.head, head_args, head_path)]
    if merge_path is not None:
        jobs.append(("merge", WindowMerge(), merge_args, merge_path))
    for graph, module, args, path in jobs:
        names_in, names_out = GRAPH_SIGNATURE[graph]
        axes = dynamic_axes(graph)
        _export_one(module, args, path, names_in, names_out, axes, opset, exporter)
        _fix_io_shapes(path, graph, model.config)
    logger.info(
        "exported %s graphs (%s, opset %d) in %.1fs",
        ", ".join(j[0] for j in jobs),
        exporter,
        opset,
        time.perf_counter() - t0,
    )
    return logits.numpy()


def check_merge_graph(path: Path, batch: Batch, tok: Any, config: Any) -> float:
    """Max |Δ| of the merge graph (ORT CPU) against the numpy merge on ``batch``'s encoder
    outputs (random values of the right shapes: the merge has no weights)."""
    from ..runtime.merge import merge_windows
    from ..runtime.sessions import make_session

    rng = np.random.default_rng(0)
    W, L = batch.input_ids.shape
    hidden = rng.standard_normal((W, L, config.hidden_size), dtype=np.float32)
    rows = rng.random((W, config.num_heads, batch.win_rows.shape[1], L), dtype=np.float32)
    feed = {"hidden": hidden, "attention_rows": rows}
    feed |= {n: getattr(batch, n) for n in GRAPH_SIGNATURE["merge"][0][2:]}
    got = make_session(path).run(list(GRAPH_SIGNATURE["merge"][1]), feed)
    want = merge_windows(batch, hidden, rows)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True))
    if diff > 1e-5:
        raise ExportError(f"the merge graph disagrees with the numpy merge (max |Δ| {diff:.2e})")
    return diff


def check_graph(path: Path) -> list[str]:
    """onnx.checker (full check with shape inference) → sorted op types of the graph."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:
        raise ExportError(f"{path.name} fails the ONNX checker: {e}") from None
    m = onnx.load(str(path), load_external_data=False)
    return sorted(
        {
            f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
            for n in m.graph.node
        }
    )


def _versions(exporter: str) -> dict[str, str]:
    import importlib

    names = ["torch", "transformers", "onnx", "onnxruntime"]
    names += ["onnxscript"] if exporter == "dynamo" else []
    return {"docunet_rt": __version__} | {
        n: str(importlib.import_module(n).__version__) for n in names
    }


@dataclass
class ExportResult:
    model_dir: Path
    precisions: list[str]
    files: dict[str, dict[str, str]]  # precision -> {"encoder": file, "head": file}
    ops: dict[str, dict[str, list[str]]]  # precision -> graph -> op types
    cpu_runnable: dict[str, bool | str]  # precision -> True or the reason it does not run
    trace_dims: dict[str, int]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = vars(self).copy()
        d["model_dir"] = str(self.model_dir)
        return d


def export_model(
    ckpt_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    *,
    precisions: str | Sequence[str] = DEFAULT_PRECISIONS,
    opset: int = DEFAULT_OPSET,
    optimize: bool = False,
    exporter: str = "torchscript",
    per_channel: bool = True,
    reduce_range: bool = True,
    weight_type: str = "qint8",
    max_tokens: int = 16384,
    tagger: str | os.PathLike | None = None,
    tagger_dictionary: int | None = None,
    tagger_linking: str = "fuzzy",
    link_similarity: float = 0.75,
    calibration: str | os.PathLike | None = "auto",
    pair_types: str | None = "auto",
) -> ExportResult:
    """Export CKPT_DIR to MODEL_DIR with every requested precision variant.

    ``per_channel``/``reduce_range``/``weight_type`` set the int8 weight quantisation (see
    :func:`~docunet_rt.export.quantize.quantize_int8`); ``optimize`` applies the ORT transformer
    fusions that keep the attention output (:func:`~docunet_rt.export.quantize.optimize_fp32`)
    to the CPU variants fp32 and int8. ``max_tokens`` sizes the suggested TensorRT profiles.
    ``tagger``: an entity-tagger checkpoint (``docunet-rt train-ner``) to add, with its lexicon,
    so that the MODEL_DIR also runs on raw text (``export/tagger.py``); ``tagger_dictionary``:
    also add lexicon matches of at least that many characters where the tagger found nothing;
    ``tagger_linking``/``link_similarity``: how a concept-grouping tagger links mentions to ids
    (``TaggerConfig.linking``; the defaults were chosen on CDR dev, benchmarks/linking_eval.py).
    ``calibration``: documents whose head inputs calibrate the int8 variant's convolutions
    (``export/calibration.py``: a file, "auto" = the checkpoint's dev file when present, or
    None/"none" = convolutions stay fp32). ``pair_types``: the entity-type pairs scored where a
    document lists no candidates (``parse_pair_types``: "auto" = what training recorded).
    Every variant is checked with ``onnx.checker`` and run once on ORT CPU (fp32 must match
    PyTorch on the tracing batch to 1e-3).
    """
    t_start = time.perf_counter()
    precs = parse_precisions(precisions)
    check_opset(opset, exporter)
    if weight_type not in WEIGHT_TYPES:
        raise ExportError(
            f"unknown int8 weight type {weight_type!r}; valid: {', '.join(WEIGHT_TYPES)}"
        )
    src, out = Path(ckpt_dir), Path(model_dir)
    check_output_dir(out, src)
    if tagger_dictionary is not None and tagger is None:
        raise ExportError("--tagger-dictionary needs --tagger NER_CKPT")
    if tagger_linking not in LINKINGS:
        raise ExportError(f"unknown --linking {tagger_linking!r}; valid: {', '.join(LINKINGS)}")
    if not 0.0 < link_similarity <= 1.0:
        raise ExportError(f"--link-similarity must be in (0, 1], got {link_similarity}")
    if tagger is not None and not (Path(tagger) / "tagger.json").is_file():
        raise ExportError(
            f"--tagger {tagger} is not a tagger checkpoint (no tagger.json); make one with "
            "`docunet-rt train-ner --train FILE --dev FILE --out NER_CKPT`"
        )
    model, tok, meta = load_source(src)
    config: DocuNetConfig = model.config
    recorded = config.pair_types
    config.pair_types = parse_pair_types(pair_types, recorded)
    unknown = sorted(
        {t for p in config.pair_types or [] for t in p} - {t for p in recorded or [] for t in p}
    )
    if recorded and unknown:  # free strings: a typo would silently score no pair
        logger.warning(
            "--pair-types names %s, which training never paired (it recorded %s)",
            ", ".join(unknown), ", ".join(f"{h}:{t}" for h, t in recorded),
        )  # fmt: skip
    if tagger is not None:
        check_tagger_types(Path(tagger), config.pair_types)
    if "int8" not in precs and calibration not in (None, "auto", "none"):
        logger.warning(
            "--calibration %s is unused: it calibrates the int8 variant only", calibration
        )
    calib = calibration_source(calibration, meta) if "int8" in precs else None

    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").unlink(missing_ok=True)  # a crash must not leave a stale description
    for old in [*out.glob("*.onnx"), *out.glob("*.onnx.tmp"), out / LEXICON_FILE]:
        old.unlink(missing_ok=True)
    batch = trace_batch(config, tok)
    # Every variant derives from the plain fp32 graphs; fp16 (CUDA/TensorRT) never gets the
    # CPU-only contrib-op fusions of ``optimize``.
    plain = {g: out / f"{g}.plain.onnx.tmp" for g in GRAPH_NAMES}
    ref = export_graphs(
        model, batch, plain["encoder"], plain["head"], opset=opset, exporter=exporter,
        merge_path=out / MERGE_FILE,
    )  # fmt: skip
    merge_diff = check_merge_graph(out / MERGE_FILE, batch, tok, config)
    logger.info("merge graph: max |Δ| vs the numpy merge %.1e", merge_diff)
    cpu, notes = dict(plain), []
    if optimize:
        cpu = {g: out / f"{g}.opt.onnx.tmp" for g in GRAPH_NAMES}
        notes = [optimize_fp32(plain[g], cpu[g], config=config, graph=g) for g in GRAPH_NAMES]

    files: dict[str, dict[str, str]] = {}
    conv_info: dict[str, Any] | None = None
    ops: dict[str, dict[str, list[str]]] = {}
    runnable: dict[str, bool | str] = {}
    for prec in precs:
        paths = {g: out / graph_file(g, prec) for g in GRAPH_NAMES}
        for g, path in paths.items():
            if prec == "fp32":
                shutil.copyfile(cpu[g], path)
            elif prec == "int8":
                feeds = None
                if g == "head" and calib is not None:
                    feeds = calibration_feeds(calib, plain["encoder"], plain["head"], tok, config)
                info = quantize_int8(
                    cpu[g], path, per_channel=per_channel, reduce_range=reduce_range,
                    weight_type=weight_type, calibration=feeds,
                )  # fmt: skip
                if g == "head":
                    conv_info = info.get("convolutions")
            else:
                convert_fp16(plain[g], path)
        ops[prec] = {g: check_graph(path) for g, path in paths.items()}
        files[prec] = {g: path.name for g, path in paths.items()}
        runnable[prec] = _try_variant(prec, paths, batch, ref, tok, config)
    for tmp in out.glob("*.onnx.tmp"):
        tmp.unlink()
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    tagger_section = None
    if tagger is not None:
        from .tagger import export_tagger

        tagger_section = export_tagger(
            tagger, out, precs, opset=opset, re_tokenizer=out / "tokenizer.json",
            per_channel=per_channel, reduce_range=reduce_range, weight_type=weight_type,
            dictionary_min_chars=tagger_dictionary, linking=tagger_linking,
            link_similarity=link_similarity,
        )  # fmt: skip

    # TensorRT targets: fp16 and the plain fp32 graphs (int8 and --optimize graphs are CPU-only)
    trt = [p for p in precs if p == "fp16" or (p == "fp32" and not optimize)]
    outside = sorted({o for p in trt for g in ops[p].values() for o in g} - TENSORRT_OPS)
    if outside:
        logger.warning("ops outside the TensorRT parser list: %s", ", ".join(outside))
    io = io_description(config)
    variants = {
        p: {"ops": ops[p], "cpu_runnable": runnable[p], "optimized": optimize and p != "fp16"}
        for p in precs
    }
    if "int8" in variants:
        variants["int8"].update(
            per_channel=per_channel, reduce_range=reduce_range, weight_type=weight_type,
            convolutions=(
                {**conv_info, "calibration_file": str(calib)} if conv_info
                else "fp32 (no calibration data: export --calibration FILE)"
            ),
        )  # fmt: skip
    special = {"cls_id": tok.cls_id, "sep_id": tok.sep_id, "pad_id": tok.pad_id}
    description = describe(
        out, config, files, special, merge=[MERGE_FILE],
        opset=opset,
        exporter=exporter,
        trace_dims=trace_dims(batch),
        variants=variants,
        notes=notes,
        versions=_versions(exporter),
        source_checkpoint={
            "path": str(src.resolve()),
            "best": meta.get("best", {}),
            "version": meta.get("version"),
        },
        tensorrt={**tensorrt_profiles(config, io, max_tokens), "ops_outside_parser_list": outside},
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        tagger=tagger_section,
    )  # fmt: skip
    if tagger_section is not None:
        description["sha256"].update(tagger_section["sha256"])
    write_model_json(out, description)
    seconds = time.perf_counter() - t_start
    logger.info("wrote %s (%s) in %.1fs", out, ", ".join(precs), seconds)
    return ExportResult(out, precs, files, ops, runnable, trace_dims(batch), seconds, notes)


def _try_variant(
    prec: str, paths: dict[str, Path], batch: Batch, ref: np.ndarray, tok: Any, config: Any
) -> bool | str:
    """Run a variant once on ORT CPU: True, or (fp16 only) the reason it cannot run there."""
    try:
        got = OrtGraphs(paths["encoder"], paths["head"], tok, config).run_collated(batch)
    except Exception as e:
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        if prec != "fp16":
            raise ExportError(
                f"the {prec} graphs do not run on ONNX Runtime CPU: {reason}"
            ) from None
        logger.warning("fp16 graphs pass the ONNX checker but do not run on ORT CPU (%s)", reason)
        return reason
    diff = float(np.abs(got - ref).max()) if ref.size else 0.0
    logger.info(
        "%s: runs on ORT CPU; max |Δlogit| vs PyTorch on the tracing batch %.2e", prec, diff
    )
    if prec == "fp32" and diff > 1e-3:
        raise ExportError(
            f"fp32 graphs disagree with PyTorch on the tracing batch (max |Δ| {diff:.2e})"
        )
    return True
