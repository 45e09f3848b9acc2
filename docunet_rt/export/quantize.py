"""Precision variants and graph rewrites of the exported fp32 graphs, and TensorRT target notes.

* int8: ONNX Runtime dynamic quantisation of *weight* MatMuls (MatMul nodes whose B input
  is a 2-D initializer; Gemm nodes with a constant weight are first rewritten to MatMul + Add so
  the head's linear layers are quantised too). Attention's activation × activation MatMuls stay
  fp32 — their softmax output is the ``attention_rows`` output the head consumes. With
  calibration inputs, the head's U-Net convolutions are first quantised statically (QDQ,
  activation ranges from real documents; ``quantize_convs``): ORT runs them as QLinearConv.
* fp16: ``onnxruntime.transformers.float16`` with fp32 inputs/outputs (for CUDA/TensorRT).
* optimize: ORT transformer-optimizer fusions for the CPU variants with attention fusion off
  (a fused Attention node does not expose the attention probabilities).
* TensorRT: the parser op allowlist checked at export and suggested min/opt/max profiles.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DocuNetConfig
from ..options import INT8_WEIGHT_TYPES

logger = logging.getLogger("docunet_rt")

WEIGHT_TYPES = INT8_WEIGHT_TYPES


class _Quiet:
    """Silence INFO/WARNING records of third-party loggers (ORT tools) until close(). A
    NullHandler on the root logger keeps their module-level ``logging.warning(...)`` calls from
    installing a root handler via ``basicConfig`` (which would echo our own log records)."""

    def __init__(self) -> None:
        self.previous = logging.root.manager.disable
        self.null = logging.NullHandler()
        logging.root.addHandler(self.null)
        logging.disable(logging.WARNING)

    def close(self) -> None:
        logging.disable(self.previous)
        logging.root.removeHandler(self.null)


def _load(path: str | os.PathLike) -> Any:
    import onnx

    return onnx.load(str(path))


def gemm_to_matmul(model: Any) -> int:
    """Rewrite ``Gemm(A, B_const, C)`` (alpha = beta = 1, transA = 0) as ``MatMul(A, B') + C``
    in place, B' = Bᵀ when transB. Returns the number of rewritten nodes."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    nodes = []
    changed = 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = (
            node.op_type == "Gemm"
            and node.domain in ("", "ai.onnx")
            and len(node.input) >= 2
            and node.input[1] in inits
            and attrs.get("alpha", 1.0) == 1.0
            and attrs.get("beta", 1.0) == 1.0
            and not attrs.get("transA", 0)
        )
        if not ok:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        w_name = f"{node.input[1]}_matmul_{changed}"
        model.graph.initializer.append(numpy_helper.from_array(w, w_name))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(
            helper.make_node(
                "MatMul", [node.input[0], w_name], [mm_out], name=f"{node.name}_MatMul"
            )
        )
        if has_bias:
            nodes.append(
                helper.make_node(
                    "Add", [mm_out, node.input[2]], [node.output[0]], name=f"{node.name}_Add"
                )
            )
        changed += 1
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        used = {i for n in model.graph.node for i in n.input}
        keep = [i for i in model.graph.initializer if i.name in used]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)
    return changed


def weight_matmuls(model: Any) -> list[str]:
    """Names of MatMul nodes whose second input is a 2-D float initializer (a weight)."""
    from onnx import TensorProto

    inits = {
        i.name
        for i in model.graph.initializer
        if len(i.dims) == 2 and i.data_type == TensorProto.FLOAT
    }
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def quantize_int8(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    per_channel: bool = True,
    reduce_range: bool = True,
    weight_type: str = "qint8",
    exclude: Sequence[str] = (),
    calibration: Sequence[dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Dynamic int8 quantisation of the weight MatMuls of ``src`` → ``dst``; with
    ``calibration`` (input feeds of ``src``), its Conv nodes are first quantised statically
    (:func:`quantize_convs`, same ``per_channel``/``reduce_range``).

    ``per_channel`` uses one weight scale per output column; ``reduce_range`` quantises weights
    to 7 bits (guards against the u8×s8 int16 saturation of AVX2 CPUs without VNNI; measured
    on a VNNI CPU against 8-bit weights in benchmarks/results/int8_convs_*.json);
    ``weight_type`` is qint8 (u8×s8 kernels) or quint8 (u8×u8); MatMul nodes whose name
    contains one of ``exclude`` stay fp32. Measured on the MiniLM encoder (CDR dev text, relative
    L2 error of the last hidden state vs fp32): per-tensor 0.36, per-tensor + reduce_range 0.62,
    per-channel 0.15, per-channel + reduce_range 0.16, per-channel quint8 0.15. End to end
    (``benchmarks/results/export_*.json``, int8 F1 change vs ORT fp32 in points) per-channel
    gave -0.13 / +0.01 / -0.82 on CDR test / CDR dev / Re-DocRED held-out 50, per-channel +
    reduce_range +0.20 / +0.11 / +0.41: the only setting within 0.5 points on all three, hence
    the defaults (per-channel, reduce_range). Returns {"quantized": n, "total_matmuls": m, ...}.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if weight_type not in WEIGHT_TYPES:
        raise ValueError(
            f"unknown weight type {weight_type!r}; valid choices: {', '.join(WEIGHT_TYPES)}"
        )
    model = _load(src)
    convs = None
    if calibration is not None and any(n.op_type == "Conv" for n in model.graph.node):
        with tempfile.TemporaryDirectory() as tmp:
            conv_q = Path(tmp) / "convs.onnx"
            convs = quantize_convs(
                src, conv_q, calibration, per_channel=per_channel, reduce_range=reduce_range
            )
            model = _load(conv_q)
    n_gemm = gemm_to_matmul(model)
    names = [n for n in weight_matmuls(model) if not any(x in n for x in exclude)]
    n_matmul = sum(n.op_type == "MatMul" for n in model.graph.node)
    info = {
        "quantized": len(names),
        "total_matmuls": n_matmul,
        "gemm_rewritten": n_gemm,
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "weight_type": weight_type,
        **({"convolutions": convs} if convs is not None else {}),
    }
    if not names:
        logger.warning("%s has no weight MatMul to quantise; writing it unchanged", Path(src).name)
        onnx.save(model, str(dst))
        return info
    quiet = _Quiet()  # the quantizer logs a pre-processing hint through the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pre = Path(tmp) / "pre.onnx"
            onnx.save(model, str(pre))
            quantize_dynamic(
                pre,
                Path(dst),
                op_types_to_quantize=["MatMul"],
                nodes_to_quantize=names,
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8 if weight_type == "qint8" else QuantType.QUInt8,
                extra_options={
                    "MatMulConstBOnly": True,
                    "DefaultTensorType": onnx.TensorProto.FLOAT,
                },
            )
    finally:
        quiet.close()
    logger.info(
        "int8 %s: %d of %d MatMuls quantised (per_channel=%s, reduce_range=%s)",
        Path(dst).name, len(names), n_matmul, per_channel, reduce_range,
    )  # fmt: skip
    return info


def quantize_convs(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    calibration: Sequence[dict[str, np.ndarray]],
    *,
    per_channel: bool = True,
    reduce_range: bool = True,
) -> dict[str, Any]:
    """Static int8 quantisation (QDQ) of the Conv nodes of ``src`` → ``dst``: s8 weights (per
    output channel with ``per_channel``, 7-bit with ``reduce_range``), u8 activations whose
    ranges are the min/max over ``calibration`` (feeds of ``src``'s inputs). ONNX Runtime fuses
    each DequantizeLinear → Conv → QuantizeLinear into a QLinearConv. Measured side by side
    (benchmarks/results/int8_convs_redocred.json, 200 DocRED documents, 2 threads): int8 head
    time 7.4 s → 5.0 s, Re-DocRED test F1 -0.17 points against fp32.
    Returns {"quantized": n convolutions, "calibration_batches": k, "method": "minmax"}."""
    import itertools

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    feeds = iter(calibration)
    first = next(feeds, None)
    if first is None:
        raise ValueError("quantize_convs needs at least one calibration feed")
    n_conv = sum(n.op_type == "Conv" for n in _load(src).graph.node)

    class _Reader(CalibrationDataReader):  # feeds are made lazily, one batch at a time
        def __init__(self) -> None:
            self.it, self.count = itertools.chain([first], feeds), 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed = next(self.it, None)
            self.count += feed is not None
            return feed

    reader = _Reader()

    quiet = _Quiet()
    try:
        quantize_static(
            Path(src), Path(dst), reader, quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"], per_channel=per_channel, reduce_range=reduce_range,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"CalibMaxIntermediateOutputs": 2},  # ranges merged every 2 batches
        )  # fmt: skip
    finally:
        quiet.close()
    logger.info(
        "int8 %s: %d convolutions quantised statically (%d calibration batches)",
        Path(dst).name, n_conv, reader.count,
    )  # fmt: skip
    return {"quantized": n_conv, "calibration_batches": reader.count, "method": "minmax"}


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """fp16 weights and compute with fp32 graph inputs/outputs (``keep_io_types=True``)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(_load(src), keep_io_types=True)
    toposort(model)  # the converter appends its input Casts after their consumers
    onnx.save(model, str(dst))


def toposort(model: Any) -> None:
    """Sort the main graph's nodes topologically, in place (stable: keeps the original order
    where it is already valid)."""
    g = model.graph
    ready = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    pending = list(g.node)
    ordered = []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or undefined inputs near node {rest[0].name!r}")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)


def optimize_fp32(
    src: str | os.PathLike, dst: str | os.PathLike, *, config: DocuNetConfig, graph: str
) -> str:
    """ORT transformer-optimizer fusions (LayerNorm/SkipLayerNorm/Gelu/BiasGelu) with attention
    and embedding fusion disabled, so the attention probabilities stay a plain Softmax output.
    The head has no transformer pattern; it is only constant-folded. Returns a one-line note."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    if graph != "encoder":
        onnx.save(_load(src), str(dst))
        return "head: unchanged by --optimize (no transformer pattern)"
    opts = FusionOptions("bert")
    opts.enable_attention = False
    opts.enable_rotary_embeddings = False
    opts.enable_embed_layer_norm = False  # would drop the token-type/position inputs' semantics
    opts.enable_packed_qkv = False
    quiet = _Quiet()
    try:
        opt = optimize_model(
            str(src), model_type="bert", num_heads=config.num_heads, hidden_size=config.hidden_size,
            optimization_options=opts, opt_level=0, use_gpu=False,
        )  # fmt: skip
        stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        opt.save_model_to_file(str(dst))
    finally:
        quiet.close()
    return f"encoder: fused {stats or 'nothing'}"


# ------------------------------------------------------------------------------------------------
# TensorRT target notes
# ------------------------------------------------------------------------------------------------

# Op types the TensorRT ONNX parser (TensorRT 8.6/10.x, onnx-tensorrt operators.md) accepts
# that can occur in these graphs; anything else is reported as a TensorRT risk.
TENSORRT_OPS = frozenset(
    "Abs Add And ArgMax Cast Ceil Clip Concat Constant ConstantOfShape Conv ConvTranspose Div "
    "Einsum Equal Erf Exp Expand Flatten Floor Gather GatherElements GatherND Gelu Gemm Greater "
    "GreaterOrEqual Identity LayerNormalization Less LessOrEqual Log MatMul Max MaxPool Min Mul "
    "Neg Not Or Pow Range Reciprocal ReduceL2 ReduceLogSumExp ReduceMax ReduceMean ReduceSum "
    "Relu Reshape ScatterElements ScatterND Shape Sigmoid Slice Softmax Split Sqrt Squeeze Sub "
    "Tanh Tile TopK Transpose Unsqueeze Where Xor".split()
)


def tensorrt_profiles(
    config: DocuNetConfig, io: dict[str, Any], max_tokens: int = 16384
) -> dict[str, Any]:
    """Suggested TensorRT optimisation profiles (min/opt/max per dynamic input of each graph in
    ``io``, the model.json io description) and engine-cache notes.

    Encoder shapes follow the runtime's batching (windows × window length ≤ max_tokens). The
    head's maxima are sized for GPU memory (B × N² U-Net maps, B × P × heads × T attention), so
    run TensorRT with at most 8 documents per batch (``ExtractOptions.batch_size=8``); shapes
    outside a profile make the TensorRT EP build a new engine (slow).
    """
    L, H, heads = config.max_length, config.hidden_size, config.num_heads
    w_max = max(2, max_tokens // L)
    dims = {
        "W": (1, min(8, w_max), w_max), "L": (3, L, L), "R": (1, 16, 128),
        "B": (1, 4, 8), "T": (3, L, 8 * L), "P": (1, 32, 256),
        "N": (config.entity_pad_multiple, 24, 128), "M": (1, 4, 32), "Q": (1, 1024, 32768),
    }  # fmt: skip
    static = {"H": H, "heads": heads}
    profiles: dict[str, dict[str, Any]] = {}
    provider: dict[str, dict[str, str]] = {}
    for graph in ("encoder", "head"):
        profiles[graph] = {}
        parts: dict[str, list[str]] = {"min": [], "opt": [], "max": []}
        for name, d in io[graph]["inputs"].items():
            shape = d["shape"]
            entry = {}
            for i, key in enumerate(("min", "opt", "max")):
                s = [dims[x][i] if isinstance(x, str) else x for x in shape]
                entry[key] = s
                parts[key].append(f"{name}:{'x'.join(map(str, s))}")
            profiles[graph][name] = entry
        provider[graph] = {f"trt_profile_{k}_shapes": ",".join(v) for k, v in parts.items()}
    return {
        "verified": False,
        "status": "unverified: the CUDA/TensorRT providers cannot be run on the export machine",
        "dims": {k: {"min": v[0], "opt": v[1], "max": v[2]} for k, v in dims.items()},
        "static": static,
        "profiles": profiles,
        "provider_options": provider,
        "engine_cache": {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": "~/.cache/docunet_rt/trt (runtime default; --trt-cache-dir)",
            "trt_timing_cache_enable": True,
            "notes": [
                "engines are specific to GPU model, TensorRT version, precision and profile; "
                "the cache key includes the graph, so re-exporting invalidates it",
                "the first run per profile builds the engine (minutes for the encoder); later runs "
                "load it from the cache",
                "for TensorRT fp16 prefer the fp32 graphs with trt_fp16_enable=True; the fp16 "
                "variant is mainly for the CUDA provider",
                "the int8 variant uses DynamicQuantizeLinear/MatMulInteger (CPU kernels); "
                "TensorRT does not run it",
                "head profiles assume at most 8 documents per batch (ExtractOptions.batch_size=8)",
            ],
        },
    }
