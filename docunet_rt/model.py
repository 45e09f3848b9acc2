"""DocuNet in PyTorch, bottom-up: masked U-Net blocks → U-Net → pair feature map → classifier
→ head → full model with encoder and window merge → ``TorchBackend``, the PyTorch engine of
``runtime.Extractor`` (evaluation, training-time scoring, the benchmark baseline, parity).

Shapes: B documents, T document positions, H encoder width, P mention slots, N entities (padded
to a multiple of 4), M mentions per entity, C channels, Q scored pairs, R labels (0 = NA).
Padded entities are masked after every layer, so a document's logits do not depend on what else
is in its batch. The forward pass is fully tensorized (no Python loops over entities or pairs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import DocuNetConfig
from .features import Batch, DocFeatures, TokenizerInfo, collate
from .runtime.model_dir import MERGE_INPUTS

NEG = -1e4  # "minus infinity" that stays finite in fp16


# ------------------------------------------------------------------------------------------------
# U-Net building blocks
# ------------------------------------------------------------------------------------------------


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics come from real (unpadded) cells only."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # x: (B, C, n, n), mask: (B, 1, n, n) in {0, 1}
        if not self.training:
            y = F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
            return y * mask
        count = mask.sum().clamp(min=1.0)
        mean = (x * mask).sum((0, 2, 3)) / count  # (C,)
        var = (((x - mean[None, :, None, None]) ** 2) * mask).sum((0, 2, 3)) / count
        with torch.no_grad():
            m = self.momentum if self.momentum is not None else 0.1
            unbiased = var * count / (count - 1).clamp(min=1.0)
            self.running_mean.mul_(1 - m).add_(m * mean)  # type: ignore[union-attr]
            self.running_var.mul_(1 - m).add_(m * unbiased)  # type: ignore[union-attr]
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
        y = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps)
        y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y * mask


class DoubleConv(nn.Module):
    """(3×3 conv → masked BN → ReLU) × 2; padded cells are zero on the way out."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn1 = MaskedBatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.bn2 = MaskedBatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x * mask), mask))  # (B, c_out, n, n)
        return F.relu(self.bn2(self.conv2(x), mask))


class Down(nn.Module):
    """2×2 max-pool (halves n) then DoubleConv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = DoubleConv(c_in, c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.conv(F.max_pool2d(x, 2), mask)  # (B, c_out, n/2, n/2)


class Up(nn.Module):
    """Transposed-convolution up-sampling (each output cell depends on one input cell, so no
    weights depend on the map size), skip concatenation, DoubleConv."""

    def __init__(self, c_low: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_low, c_low, kernel_size=2, stride=2)
        self.conv = DoubleConv(c_low + c_skip, c_out)

    def forward(self, low: torch.Tensor, skip: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.up(low) * mask  # (B, c_low, 2n, 2n)
        return self.conv(torch.cat([skip, x], dim=1), mask)


class UNet(nn.Module):
    """2 down-sampling blocks doubling channels, 2 up-sampling blocks with skip connections
    (DocuNet's channel plan: base, 2·base, 2·base → base → base/2 → out)."""

    def __init__(self, c_in: int, base: int, c_out: int) -> None:
        super().__init__()
        self.inc = DoubleConv(c_in, base)
        self.down1 = Down(base, 2 * base)
        self.down2 = Down(2 * base, 2 * base)
        self.up1 = Up(2 * base, 2 * base, base)
        self.up2 = Up(base, base, base // 2)
        self.outc = nn.Conv2d(base // 2, c_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, c_in, N, N), mask: (B, 1, N, N), N a multiple of 4
        m1 = F.max_pool2d(mask, 2)  # (B, 1, N/2, N/2): a cell is real if any child is
        m2 = F.max_pool2d(m1, 2)  # (B, 1, N/4, N/4)
        x0 = self.inc(x, mask)  # (B, base, N, N)
        x1 = self.down1(x0, m1)  # (B, 2base, N/2, N/2)
        x2 = self.down2(x1, m2)  # (B, 2base, N/4, N/4)
        y = self.up1(x2, x1, m1)  # (B, base, N/2, N/2)
        y = self.up2(y, x0, mask)  # (B, base/2, N, N)
        return self.outc(y) * mask  # (B, c_out, N, N)


class FeedForwardMap(nn.Module):
    """The --no-unet ablation: per-cell feed-forward network (1×1 convolutions), no context."""

    def __init__(self, c_in: int, base: int, c_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c_in, base, 1), nn.ReLU(), nn.Conv2d(base, base // 2, 1), nn.ReLU()
        )
        self.outc = nn.Conv2d(base // 2, c_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.outc(self.net(x * mask)) * mask  # (B, c_out, N, N)


# ------------------------------------------------------------------------------------------------
# Entity pooling, pair feature map, classifier
# ------------------------------------------------------------------------------------------------


def pool_entities(
    hidden: torch.Tensor,
    mention_att: torch.Tensor,
    mention_pos: torch.Tensor,
    entity_mentions: torch.Tensor,
    entity_mention_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Entity embeddings (logsumexp over mentions) and entity attention (mean over mentions).

    hidden (B, T, H), mention_att (B, P, heads, T), mention_pos (B, P),
    entity_mentions (B, N, M), entity_mention_mask (B, N, M)
    → emb (B, N, H), att (B, N, heads, T). Entities without mentions get zeros.
    """
    B, T, H = hidden.shape
    P, heads = mention_att.shape[1], mention_att.shape[2]
    N, M = entity_mentions.shape[1], entity_mentions.shape[2]
    mh = torch.gather(hidden, 1, mention_pos.unsqueeze(-1).expand(B, P, H))  # (B, P, H)
    idx = entity_mentions.reshape(B, N * M, 1).expand(B, N * M, H)
    em = torch.gather(mh, 1, idx).reshape(B, N, M, H)  # (B, N, M, H)
    mmask = entity_mention_mask.unsqueeze(-1)  # (B, N, M, 1)
    emb = torch.logsumexp(em * mmask + (1.0 - mmask) * NEG, dim=2)  # (B, N, H)
    has = (entity_mention_mask.sum(-1, keepdim=True) > 0).to(hidden.dtype)  # (B, N, 1)
    emb = emb * has

    onehot = (entity_mentions.unsqueeze(-1) == torch.arange(P, device=hidden.device)).to(
        hidden.dtype
    )  # (B, N, M, P)
    weights = (onehot * entity_mention_mask.unsqueeze(-1)).sum(2)  # (B, N, P)
    weights = weights / entity_mention_mask.sum(-1, keepdim=True).clamp(min=1.0)
    att = torch.bmm(weights, mention_att.reshape(B, P, heads * T)).reshape(B, N, heads, T)
    return emb, att


class PairFeatureMap(nn.Module):
    """F(s, o) for every entity pair, projected to D' channels: (B, N, N) image of D' channels."""

    def __init__(self, config: DocuNetConfig) -> None:
        super().__init__()
        self.kind = config.feature_map if config.feature_map == "context" else config.similarity
        H, C = config.hidden_size, config.unet_in_channels
        if self.kind == "bilinear":
            self.weight = nn.Parameter(torch.empty(C, H, H))
            nn.init.xavier_uniform_(self.weight)
        else:
            self.proj = nn.Linear(1 if self.kind == "cosine" else H, C)

    def forward(self, hidden: torch.Tensor, emb: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        # hidden (B, T, H), emb (B, N, H), att (B, N, heads, T) → (B, C, N, N)
        B, N, H = emb.shape
        if self.kind == "context":
            T, heads = att.shape[3], att.shape[2]
            a = att.permute(0, 3, 1, 2)  # (B, T, N, heads)
            ht = torch.matmul(a, a.transpose(-1, -2)) / heads  # (B, T, N, N) mean over heads
            ht = ht.reshape(B, T, N * N)
            ctx = torch.bmm(ht.transpose(1, 2), hidden)  # (B, N*N, H)
            ctx = ctx / (ht.sum(1).unsqueeze(-1) + 1e-5)  # attention normalised over T
            feat = self.proj(ctx.reshape(B, N, N, H))  # (B, N, N, C)
        elif self.kind == "elementwise":
            feat = self.proj(emb.unsqueeze(2) * emb.unsqueeze(1))  # (B, N, N, C)
        elif self.kind == "cosine":
            e = F.normalize(emb, dim=-1)
            feat = self.proj(torch.bmm(e, e.transpose(1, 2)).unsqueeze(-1))  # (B, N, N, C)
        else:  # bilinear: F_c(s, o) = e_s^T W_c e_o
            u = torch.einsum("bnh,chk->bcnk", emb, self.weight)  # (B, C, N, H)
            return torch.matmul(u, emb.transpose(1, 2).unsqueeze(1))  # (B, C, N, N)
        return feat.permute(0, 3, 1, 2)  # (B, C, N, N)


class GroupedBilinear(nn.Module):
    """logits = W [z_s ⊗ z_o per group] + b with emb_size/block_size groups of block×block."""

    def __init__(self, emb_size: int, block_size: int, num_labels: int) -> None:
        super().__init__()
        self.groups, self.block = emb_size // block_size, block_size
        self.linear = nn.Linear(emb_size * block_size, num_labels)

    def forward(self, zs: torch.Tensor, zo: torch.Tensor) -> torch.Tensor:
        # zs, zo (Q, E) → (Q, R); one group at a time keeps memory at Q·block² (not Q·E·block)
        Q, g, k = zs.shape[0], self.groups, self.block
        zs, zo = zs.reshape(Q, g, k), zo.reshape(Q, g, k)
        w = self.linear.weight.reshape(-1, g, k * k)  # (R, g, k*k)
        out = self.linear.bias
        for i in range(g):  # static count: unrolled in ONNX
            outer = (zs[:, i, :, None] * zo[:, i, None, :]).reshape(Q, k * k)  # (Q, k*k)
            out = out + outer @ w[:, i, :].t()
        return out  # (Q, R)


class DocuNetHead(nn.Module):
    """Everything after the encoder: pooling, pair map, U-Net, classifier. Exported as one graph."""

    def __init__(self, config: DocuNetConfig) -> None:
        super().__init__()
        H, E = config.hidden_size, config.emb_size
        self.feature_map = PairFeatureMap(config)
        seg = UNet if config.use_unet else FeedForwardMap
        self.segmentation = seg(config.unet_in_channels, config.unet_base, config.unet_out)
        self.head_extractor = nn.Linear(H + config.unet_out, E)
        self.tail_extractor = nn.Linear(H + config.unet_out, E)
        self.bilinear = GroupedBilinear(E, config.block_size, config.num_labels)
        self.adaptive = config.threshold_class == "adaptive"

    def forward(
        self,
        hidden: torch.Tensor,  # (B, T, H)
        mention_att: torch.Tensor,  # (B, P, heads, T)
        mention_pos: torch.Tensor,  # (B, P)
        entity_mentions: torch.Tensor,  # (B, N, M)
        entity_mention_mask: torch.Tensor,  # (B, N, M)
        num_entities: torch.Tensor,  # (B,)
        pair_index: torch.Tensor,  # (Q, 3) (b, head, tail)
    ) -> torch.Tensor:
        B, N = entity_mentions.shape[0], entity_mentions.shape[1]
        emb, att = pool_entities(
            hidden, mention_att, mention_pos, entity_mentions, entity_mention_mask
        )
        real = (torch.arange(N, device=hidden.device)[None, :] < num_entities[:, None]).to(
            hidden.dtype
        )  # (B, N)
        mask = (real[:, :, None] * real[:, None, :]).unsqueeze(1)  # (B, 1, N, N)
        x = self.feature_map(hidden, emb, att) * mask  # (B, C_in, N, N)
        y = self.segmentation(x, mask)  # (B, C_out, N, N)
        y = y.permute(0, 2, 3, 1).reshape(B * N * N, -1)  # (B*N*N, C_out)

        b, s, o = pair_index[:, 0], pair_index[:, 1], pair_index[:, 2]
        y_so = y[b * N * N + s * N + o]  # (Q, C_out)
        flat = emb.reshape(B * N, -1)
        e_s, e_o = flat[b * N + s], flat[b * N + o]  # (Q, H)
        zs = torch.tanh(self.head_extractor(torch.cat([e_s, y_so], dim=-1)))  # (Q, E)
        zo = torch.tanh(self.tail_extractor(torch.cat([e_o, y_so], dim=-1)))  # (Q, E)
        logits = self.bilinear(zs, zo)  # (Q, R)
        if self.adaptive:  # relative to the pair's learned threshold (column 0, now 0)
            logits = logits - logits[:, :1]
        return logits


# ------------------------------------------------------------------------------------------------
# Loss
# ------------------------------------------------------------------------------------------------


def balanced_loss(
    logits: torch.Tensor, labels: torch.Tensor, adaptive: bool = False
) -> torch.Tensor:
    """Balanced softmax (DocuNet eq. 11) with a threshold logit fixed at 0:

    L = log(1 + Σ_{neg} e^{s_i}) + log(1 + Σ_{pos} e^{-s_j}), averaged over pairs.
    logits, labels: (Q, R) with labels multi-hot (column 0 = NA, trained like any class).
    ``adaptive``: the logits are already relative to the learned threshold class (column 0,
    see ``DocuNetHead``), which then takes no part: positives are pushed above the pair's
    threshold and negatives below it (an NA pair has no positives).
    """
    if adaptive:
        logits, labels = logits[:, 1:], labels[:, 1:]
    s = (1 - 2 * labels) * logits  # positives flipped
    neg = s - labels * 1e12  # keep negatives only
    pos = s - (1 - labels) * 1e12  # keep positives only
    zeros = torch.zeros_like(s[:, :1])
    loss = torch.logsumexp(torch.cat([neg, zeros], -1), -1) + torch.logsumexp(
        torch.cat([pos, zeros], -1), -1
    )
    return loss.mean()


# ------------------------------------------------------------------------------------------------
# Full model
# ------------------------------------------------------------------------------------------------


def batch_to_tensors(batch: Batch, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    out = {}
    for name, value in vars(batch).items():
        if value is not None:
            out[name] = torch.from_numpy(value).to(device)
    return out


def merge_windows(
    t: dict[str, torch.Tensor], win_hidden: torch.Tensor, win_att: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch twin of runtime/merge.merge_windows: windows → (B, T, H) states, (B, P, heads, T) rows.

    win_hidden (W, L, H); win_att (W, heads, R, L): attention rows at t["win_rows"]. T is the
    width of t["doc_mask"] (B, T), a shape, so that the exported merge graph keeps it dynamic.
    """
    B, P = t["mention_pos"].shape
    T = t["doc_mask"].shape[1]
    H, heads = win_hidden.shape[-1], win_att.shape[1]
    g = t["win_global"]  # (W, L)
    valid = g >= 0
    flat = torch.where(valid, t["win_doc"][:, None] * T + g, torch.full_like(g, B * T))
    flat = flat.reshape(-1)  # (W*L,) document position of each window token; B*T = padding
    # scatter_add, not index_add: the ONNX exporter turns index_add into a plain (overwriting)
    # ScatterElements, while scatter_add keeps reduction="add"
    hidden = win_hidden.new_zeros(B * T + 1, H).scatter_add(
        0, flat[:, None].expand(flat.shape[0], H), win_hidden.reshape(-1, H)
    )
    counts = win_hidden.new_zeros(B * T + 1).scatter_add(
        0, flat, valid.reshape(-1).to(win_hidden.dtype)
    )
    hidden = (hidden[:-1] / counts[:-1].clamp(min=1.0)[:, None]).reshape(B, T, H)

    rows = win_att[t["inc_win"], :, t["inc_row"], :]  # (K, heads, L)
    cols = g[t["inc_win"]]  # (K, L)
    cols = torch.where(cols >= 0, cols, torch.full_like(cols, T))
    K = rows.shape[0]
    scattered = rows.new_zeros(K, heads, T + 1).scatter_add(
        2, cols[:, None, :].expand(K, heads, cols.shape[1]), rows
    )[..., :T]
    slot = t["inc_slot"][:, None, None].expand(K, heads, scattered.shape[2])
    att = rows.new_zeros(B * P, heads, T).scatter_add(0, slot, scattered)
    att = att / (att.sum(-1, keepdim=True) + 1e-10)
    return hidden, att.reshape(B, P, heads, T)


def gather_rows(att: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(W, heads, L, L) attention → (W, heads, R, L) rows at local positions rows (W, R)."""
    W, heads, _, L = att.shape
    idx = rows[:, None, :, None].expand(W, heads, rows.shape[1], L)
    return torch.gather(att, 2, idx)


class Encoder(nn.Module):
    """The HF encoder as exported: windows → hidden states and last-layer attention rows."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, win_rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_attentions=True
        )
        # transformers 5: read the last layer's attention by name (outputs[-1] is not it)
        return out.last_hidden_state, gather_rows(out.attentions[-1], win_rows)


class WindowMerge(nn.Module):
    """The window merge as a module of its own (exported as the merge graph, no weights):
    window outputs and the batch's index arrays → (B, T, H) states, (B, P, heads, T) rows."""

    INPUTS = MERGE_INPUTS[2:]  # after the two window outputs: the batch's index arrays

    def forward(
        self,
        hidden: torch.Tensor,  # (W, L, H)
        attention_rows: torch.Tensor,  # (W, heads, R, L)
        win_doc: torch.Tensor,  # (W,)
        win_global: torch.Tensor,  # (W, L)
        inc_win: torch.Tensor,  # (K,)
        inc_row: torch.Tensor,  # (K,)
        inc_slot: torch.Tensor,  # (K,)
        mention_pos: torch.Tensor,  # (B, P)
        doc_mask: torch.Tensor,  # (B, T)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        args = (win_doc, win_global, inc_win, inc_row, inc_slot, mention_pos, doc_mask)
        return merge_windows(dict(zip(self.INPUTS, args, strict=True)), hidden, attention_rows)


class DocuNet(nn.Module):
    def __init__(self, config: DocuNetConfig, encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.head = DocuNetHead(config)

    def encode(self, t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, rows = Encoder(self.encoder)(t["input_ids"], t["attention_mask"], t["win_rows"])
        return merge_windows(t, hidden, rows)

    def forward(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden, mention_att = self.encode(t)
        return self.head(
            hidden,
            mention_att,
            t["mention_pos"],
            t["entity_mentions"],
            t["entity_mention_mask"],
            t["num_entities"],
            t["pair_index"],
        )  # (Q, R)


# ------------------------------------------------------------------------------------------------
# Inference backend (the same interface as the ONNX Runtime graphs in runtime/graphs.py)
# ------------------------------------------------------------------------------------------------


TORCH_PRECISIONS = ("fp32", "bf16")


class TorchBackend:
    """The model in eval mode under ``no_grad``, one batch at a time: what ``runtime.Extractor``
    runs for PyTorch (``Extractor.from_backend(TorchBackend(model, tok), model.config, tok)``).
    Stage times (encoder, window merge, head) accumulate in ``timings``; on CUDA each timer is
    read after ``torch.cuda.synchronize()`` (kernels run asynchronously), and ``precision="bf16"``
    runs under ``torch.autocast``."""

    max_batch_docs = None

    def __init__(
        self,
        model: DocuNet,
        tok: TokenizerInfo,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> None:
        if precision not in TORCH_PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r}; valid choices: {', '.join(TORCH_PRECISIONS)}"
            )
        self.model, self.tok, self.device = model, tok, torch.device(device)
        self.precision = precision
        self.provider = f"torch-{self.device.type}"
        self.timings = {"encoder": 0.0, "merge": 0.0, "head": 0.0}

    def clock(self) -> float:
        """``time.perf_counter()`` once the device has finished the work queued so far."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @torch.no_grad()
    def encode(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Windows → hidden (W, L, H) and attention rows (W, heads, R, L), as the encoder graph."""
        self.model.eval()
        t = batch_to_tensors(batch, self.device)
        hidden, rows = Encoder(self.model.encoder)(
            t["input_ids"], t["attention_mask"], t["win_rows"]
        )
        return hidden.float().cpu().numpy(), rows.float().cpu().numpy()

    @torch.no_grad()
    def run_collated(self, batch: Batch, max_tokens: int | None = None) -> np.ndarray:
        """Pair logits (Q, R) of one collated batch (encoder windows at most ``max_tokens``
        padded tokens at a time, as the ONNX Runtime backend)."""
        m = self.model
        m.eval()
        bf16 = self.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            t = batch_to_tensors(batch, self.device)
            t0 = self.clock()
            enc, (W, L) = Encoder(m.encoder), t["input_ids"].shape
            step = W if max_tokens is None else max(1, max_tokens // L)
            parts = [
                enc(
                    t["input_ids"][a : a + step],
                    t["attention_mask"][a : a + step],
                    t["win_rows"][a : a + step],
                )
                for a in range(0, W, step)
            ]
            hidden = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
            rows = torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
            t1 = self.clock()
            h, att = merge_windows(t, hidden, rows)
            t2 = self.clock()
            keys = ("mention_pos", "entity_mentions", "entity_mention_mask", "num_entities")
            logits = m.head(h, att, *(t[k] for k in keys), t["pair_index"])
            logits = logits.float().cpu().numpy()
            t3 = self.clock()
        self.timings["encoder"] += t1 - t0
        self.timings["merge"] += t2 - t1
        self.timings["head"] += t3 - t2
        return logits

    def run_batch(
        self, feats: Sequence[DocFeatures], max_tokens: int | None = None
    ) -> list[np.ndarray]:
        """Pair logits (Q_i, R) for each document of one batch."""
        batch = collate(feats, self.tok, self.model.config)
        return batch.per_document(self.run_collated(batch, max_tokens))
