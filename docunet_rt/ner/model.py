"""The PyTorch tagger: the encoder's last hidden states → one logit per BIO label.

    input_ids, attention_mask (W, L) ──encoder──▶ hidden (W, L, H) ──dropout, linear──▶ (W, L, C)

Windows are encoded independently; ``tagging.word_logits`` merges overlapping windows (numpy, so
the ONNX runtime and this model share it). Training scores every word's first wordpiece in every
window that holds it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .tagging import TaggerConfig

IGNORE = -100  # label of positions the loss skips ([CLS], [SEP], padding, later wordpieces)


class Tagger(nn.Module):
    def __init__(self, config: TaggerConfig, encoder: nn.Module, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]  # (W, L, H)
        return self.classifier(self.dropout(hidden))  # (W, L, C)


def window_labels(batch, feats) -> np.ndarray:
    """(W, L) gold label per window position: a word's label at its first wordpiece, IGNORE
    elsewhere (``batch``: ``tagging.WindowBatch`` of ``feats``)."""
    out = np.full(batch.input_ids.shape, IGNORE, dtype=np.int64)
    for w in range(len(batch.doc)):
        f = feats[int(batch.doc[w])]
        a, n = int(batch.start[w]), int(batch.length[w])
        has = (f.first_wp >= a) & (f.first_wp < a + n)
        out[w, f.first_wp[has] - a + 1] = f.word_labels[has]
    return out


class TorchTagFn:
    """The tag function of ``recognize.Recognizer`` over the PyTorch tagger (for dev scoring)."""

    def __init__(self, model: Tagger, device: torch.device | str = "cpu") -> None:
        self.model, self.device = model, torch.device(device)

    @torch.no_grad()
    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        was = self.model.training
        self.model.eval()
        try:
            out = self.model(
                torch.from_numpy(input_ids).to(self.device),
                torch.from_numpy(attention_mask).to(self.device),
            )
        finally:
            self.model.train(was)
        return out.float().cpu().numpy()
