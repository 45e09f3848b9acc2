"""The benchmark's FLOP model: analytic multiply-add counts per document, for the roofline.

FLOPs (multiply-add = 2) per document on its own shapes (batch padding is waste, not work):
  encoder, per window of L tokens: layers · [2·L·H·(4H + 2I) + 4·L²·H]  (QKV/out/FFN; QKᵀ, AV)
  head, n = entities padded to a multiple of 4, T positions, P mentions, Q pairs, C = D':
    entity attention 2·n·P·heads·T; context map 2·T·n²·heads + 2·n²·T·H, projection 2·n²·H·C;
    U-Net with conv3(a, b, m) = 2·a·b·9·m²: conv3(C,b,n) + conv3(b,b,n) + conv3(b,2b,n/2)
      + conv3(2b,2b,n/2) + 2·conv3(2b,2b,n/4) + up1 [transposed 2·2b·2b·(n/2)²
      + conv3(4b,b,n/2) + conv3(b,b,n/2)] + up2 [2·b·b·n² + conv3(2b,b/2,n) + conv3(b/2,b/2,n)]
      + 1×1 2·(b/2)·out·n²;
    classifier: extractors 2 · 2·Q·(H + out)·E, grouped bilinear 2·Q·E·k·R (k = block size).
  Not counted: embeddings, norms, softmax, activations, gathers, the unused BERT pooler (2·H²).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What run_bench records under flops.formula: the docstring after "FLOPs " (from "(multiply-add").
FORMULA = (__doc__ or "").partition("\nFLOPs ")[2].strip()


@dataclass
class EncoderDims:
    layers: int
    hidden: int
    intermediate: int


def encoder_dims(checkpoint: str | os.PathLike) -> EncoderDims:
    """Encoder depth and widths from CKPT_DIR/config.json (no torch)."""
    enc = json.loads((Path(checkpoint) / "config.json").read_text())["encoder_config"]
    return EncoderDims(enc["num_hidden_layers"], enc["hidden_size"], enc["intermediate_size"])


def encoder_flops(window_lengths: Sequence[int], d: EncoderDims) -> float:
    H, inter = d.hidden, d.intermediate
    per = [2 * L * H * (4 * H + 2 * inter) + 4 * L * L * H for L in window_lengths]
    return float(d.layers * sum(per))


def conv3(c_in: int, c_out: int, m: int) -> float:
    return 2.0 * c_in * c_out * 9 * m * m


def unet_flops(n: int, c_in: int, b: int, c_out: int, use_unet: bool = True) -> float:
    if not use_unet:  # FeedForwardMap: three 1×1 convolutions
        return 2.0 * n * n * (c_in * b + b * (b // 2) + (b // 2) * c_out)
    h, q = n // 2, n // 4
    down = conv3(c_in, b, n) + conv3(b, b, n) + conv3(b, 2 * b, h) + conv3(2 * b, 2 * b, h)
    down += 2 * conv3(2 * b, 2 * b, q)
    up1 = 2.0 * (2 * b) ** 2 * h * h + conv3(4 * b, b, h) + conv3(b, b, h)
    up2 = 2.0 * b * b * n * n + conv3(2 * b, b // 2, n) + conv3(b // 2, b // 2, n)
    return down + up1 + up2 + 2.0 * (b // 2) * c_out * n * n


def head_flops(T: int, n_entities: int, P: int, Q: int, c: Any) -> float:
    """DocuNet head FLOPs for one document; ``c`` is its DocuNetConfig."""
    n = max(1, -(-n_entities // c.entity_pad_multiple)) * c.entity_pad_multiple
    H, C, heads, E = c.hidden_size, c.unet_in_channels, c.num_heads, c.emb_size
    f = 2.0 * n * P * heads * T  # entity attention: mean over mentions
    if c.feature_map == "context":
        f += 2.0 * T * n * n * heads + 2.0 * n * n * T * H + 2.0 * n * n * H * C
    elif c.similarity == "elementwise":
        f += 2.0 * n * n * H * C
    elif c.similarity == "cosine":
        f += 2.0 * n * n * (H + C)
    else:  # bilinear
        f += 2.0 * C * n * H * H + 2.0 * C * n * n * H
    f += unet_flops(n, C, c.unet_base, c.unet_out, c.use_unet)
    return f + 4.0 * Q * (H + c.unet_out) * E + 2.0 * Q * E * c.block_size * c.num_labels


def document_flops(feats: Any, config: Any, dims: EncoderDims) -> dict[str, float]:
    """Model FLOPs of one document (its DocFeatures): encoder, head, total."""
    enc = encoder_flops([int(b - a) + 2 for a, b in feats.windows], dims)
    P, Q = len(feats.mention_pos), len(feats.pairs)
    head = head_flops(feats.seq_len, feats.num_entities, P, Q, config)
    return {"encoder": enc, "head": head, "total": enc + head}
