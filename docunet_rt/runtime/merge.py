"""Window merge: encoder outputs per window → document tensors for the head (numpy).

The model stage between the two graphs: each document position's hidden state is the mean over
the windows that contain it; a mention's attention row is summed over its windows and
renormalised. ``model.merge_windows`` is the PyTorch twin (training and the torch backend), and
a test pins the two together.
"""

from __future__ import annotations

import numpy as np

from ..features import Batch


def merge_windows(
    batch: Batch, win_hidden: np.ndarray, win_attention: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Window outputs → document states (B, T, H) and mention attention rows (B, P, heads, T).

    win_hidden: (W, L, H); win_attention: (W, heads, R, L) last-layer attention rows at
    ``batch.win_rows`` (what the encoder graph returns).
    """
    B, P = batch.mention_pos.shape
    T = batch.doc_mask.shape[1]  # the longest document, or more (shape buckets)
    W, L, H = win_hidden.shape
    heads = win_attention.shape[1]
    g = batch.win_global
    valid = g >= 0
    flat = (batch.win_doc[:, None] * T + g)[valid]  # (V,)
    hidden = np.zeros((B * T, H), dtype=np.float32)
    np.add.at(hidden, flat, win_hidden[valid])
    counts = np.bincount(flat, minlength=B * T).astype(np.float32)
    hidden /= np.maximum(counts, 1.0)[:, None]

    # every (incidence k, local column l) with a real column adds a row of heads values
    att = np.zeros((B * P * T, heads), dtype=np.float32)
    w, row, slot = batch.inc_win, batch.inc_row, batch.inc_slot
    if len(w):
        cols = g[w]  # (K, L)
        ok = cols >= 0
        target = (slot[:, None] * T + cols)[ok]  # (V,)
        values = win_attention[w, :, row, :].transpose(0, 2, 1)[ok]  # (V, heads)
        np.add.at(att, target, values)
    att = att.reshape(B * P, T, heads).transpose(0, 2, 1)  # (B*P, heads, T)
    att = att / (att.sum(-1, keepdims=True) + 1e-10)
    return hidden.reshape(B, T, H), np.ascontiguousarray(att.reshape(B, P, heads, T))
