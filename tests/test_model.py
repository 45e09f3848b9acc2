"""Features, window merge, model shapes, batch invariance, loss and decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_document, tiny_config, tiny_encoder, tiny_model

from docunet_rt.data import Document, Entity, Label, Mention
from docunet_rt.decode import decode, score_to_logit
from docunet_rt.features import build_features, collate, plan_windows
from docunet_rt.model import (
    Encoder,
    UNet,
    balanced_loss,
    batch_to_tensors,
)
from docunet_rt.model import (
    merge_windows as t_merge,
)
from docunet_rt.runtime.merge import merge_windows

INDEX = {"r1": 1, "r2": 2, "r3": 3}


def logits_for(model, tok, docs):
    feats = [build_features(d, tok, model.config, INDEX) for d in docs]
    batch = collate(feats, tok, model.config)
    with torch.no_grad():
        lg = model(batch_to_tensors(batch)).numpy()
    off = batch.pair_doc_offsets
    return [lg[off[i] : off[i + 1]] for i in range(len(docs))]


def test_markers_and_mention_positions():
    _, tok = tiny_model()
    doc = Document(
        "d",
        [["w1", "w2", "w3"], ["w4", "w5"]],
        [Entity([Mention(0, 1, 3), Mention(1, 0, 1)], "PER"), Entity([Mention(1, 1, 2)], "LOC")],
    )
    f = build_features(doc, tok, tiny_config(markers="star"), INDEX)
    toks = [tok.tokenizer.id_to_token(int(i)) for i in f.wordpieces]
    assert toks == ["w1", "*", "w2", "w3", "*", "*", "w4", "*", "*", "w5", "*"]
    # global positions are after [CLS]: start markers at wordpiece 1, 5, 8
    assert f.mention_pos.tolist() == [2, 6, 9]
    assert [m.tolist() for m in f.entity_mentions] == [[0, 1], [2]]
    typed = build_features(doc, tok, tiny_config(markers="typed"), INDEX)
    ttoks = [tok.tokenizer.id_to_token(int(i)) for i in typed.wordpieces]
    assert ttoks[1:5] == ["@", "*", "[UNK]", "*"]  # "@ * per * w2 w3 @" (per is not in vocab)
    assert typed.wordpieces.shape[0] == 5 + 3 * 5  # 5 words, 3 mentions × 5 marker tokens


def test_plan_windows_cover_everything_with_overlap():
    assert plan_windows(10, 32, 8).tolist() == [[0, 10]]
    for n in (31, 100, 2000):
        w = plan_windows(n, 32, 8)
        assert w[0, 0] == 0 and w[-1, 1] == n
        assert ((w[:, 1] - w[:, 0]) <= 30).all()
        assert (w[1:, 0] <= w[:-1, 1] - 8).all()  # consecutive windows overlap by >= 8


@pytest.mark.parametrize("n_tokens", [20, 2000])
def test_window_merge_numpy_equals_torch(rng, n_tokens):
    model, tok = tiny_model()
    docs = [random_document(rng, n_tokens, 5), random_document(rng, 40, 3)]
    feats = [build_features(d, tok, model.config, INDEX) for d in docs]
    batch = collate(feats, tok, model.config)
    t = batch_to_tensors(batch)
    with torch.no_grad():
        hid, rows = Encoder(model.encoder)(t["input_ids"], t["attention_mask"], t["win_rows"])
        h1, a1 = t_merge(t, hid, rows)
    h2, a2 = merge_windows(batch, hid.numpy(), rows.numpy())
    np.testing.assert_allclose(h1.numpy(), h2, atol=1e-6)
    np.testing.assert_allclose(a1.numpy(), a2, atol=1e-6)
    # every real mention row is a distribution over the document's own positions
    for b, f in enumerate(feats):
        sums = a2[b, : len(f.mention_pos)].sum(-1)
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)
        assert np.abs(a2[b, :, :, f.seq_len :]).sum() == 0


def test_short_document_merge_equals_plain_encoding(rng):
    model, tok = tiny_model()
    doc = random_document(rng, 20, 4)
    f = build_features(doc, tok, model.config, INDEX)
    assert len(f.windows) == 1
    batch = collate([f], tok, model.config)
    t = batch_to_tensors(batch)
    with torch.no_grad():
        out = model.encoder(
            input_ids=t["input_ids"], attention_mask=t["attention_mask"], output_attentions=True
        )
        h, a = model.encode(t)
    np.testing.assert_allclose(h[0].numpy(), out.last_hidden_state[0].numpy(), atol=1e-6)
    rows = out.attentions[-1][0][:, f.mention_pos, :].permute(1, 0, 2)  # (P, heads, T)
    np.testing.assert_allclose(a[0].numpy(), rows.numpy(), atol=1e-6)


def test_long_document_uses_many_windows(rng):
    model, tok = tiny_model()
    doc = random_document(rng, 2000, 12)
    [lg] = logits_for(model, tok, [doc])
    f = build_features(doc, tok, model.config, INDEX)
    assert len(f.windows) > 50 and f.seq_len > 2000
    assert lg.shape == (12 * 11, 4) and np.isfinite(lg).all()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 43, 100])
def test_unet_shapes(n):
    net = UNet(3, 8, 6).eval()
    N = -(-n // 4) * 4
    x = torch.randn(2, 3, N, N)
    mask = torch.zeros(2, 1, N, N)
    mask[:, :, :n, :n] = 1
    y = net(x, mask)
    assert y.shape == (2, 6, N, N)
    assert y[:, :, n:, :].abs().sum() == 0 and y[:, :, :, n:].abs().sum() == 0


@pytest.mark.parametrize("n_entities", [1, 2, 43, 100])
def test_entity_counts(rng, n_entities):
    model, tok = tiny_model()
    doc = random_document(rng, 60 if n_entities < 50 else 120, n_entities)
    [lg] = logits_for(model, tok, [doc])
    assert lg.shape == (n_entities * (n_entities - 1), 4)


def test_logits_do_not_depend_on_batch_neighbours(rng):
    model, tok = tiny_model(seed=3)
    small = random_document(rng, 30, 5)
    big = random_document(rng, 300, 60)
    [alone] = logits_for(model, tok, [small])
    beside = logits_for(model, tok, [big, small])[1]
    assert np.abs(alone - beside).max() <= 1e-5


def _permuted(doc: Document, perm: list[int]) -> Document:
    """The same document with its entities listed in ``perm`` order (labels follow)."""
    where = {old: new for new, old in enumerate(perm)}
    labels = [Label(where[x.head], where[x.tail], x.relation) for x in doc.labels or []]
    return Document(doc.id, doc.sentences, [doc.entities[i] for i in perm], labels)


def _by_pair(doc: Document, lg: np.ndarray, perm: list[int] | None = None) -> dict:
    back = perm or list(range(len(doc.entities)))  # input index -> original entity
    return {(back[h], back[t]): row for (h, t), row in zip(doc.pairs(), lg, strict=True)}


@pytest.mark.parametrize("order", ["position", "type"])
def test_entity_order_makes_logits_independent_of_the_input_order(rng, order):
    """With entity_order position/type the U-Net sees one canonical layout, so listing the
    entities in another order gives every pair the same logits; with "given" it does not."""
    doc = random_document(rng, 60, 9)
    perm = [int(i) for i in rng.permutation(9)]
    shuffled = _permuted(doc, perm)
    for cfg, invariant in ((order, True), ("given", False)):
        model, tok = tiny_model(seed=5, entity_order=cfg)
        [a], [b] = logits_for(model, tok, [doc]), logits_for(model, tok, [shuffled])
        pa, pb = _by_pair(doc, a), _by_pair(shuffled, b, perm)
        diff = max(np.abs(pa[k] - pb[k]).max() for k in pa)
        assert (diff <= 1e-5) == invariant, (cfg, diff)


def test_type_order_puts_each_type_in_one_block():
    from docunet_rt.features import map_order

    ents = [
        Entity([Mention(0, 5, 6)], type="Disease"),
        Entity([Mention(0, 1, 2)], type="Chemical"),
        Entity([Mention(0, 0, 1), Mention(1, 0, 1)], type="Disease"),
        Entity([Mention(1, 3, 4)], type="Chemical"),
    ]
    doc = Document("d", [["w"] * 8, ["w"] * 8], ents)
    assert map_order(doc, "type") == [1, 3, 2, 0]
    assert map_order(doc, "position") == [2, 1, 0, 3]


def test_pair_types_score_only_those_pairs_where_no_candidates_are_given():
    from docunet_rt.data import Candidate
    from docunet_rt.features import candidate_pair_types, scored_pairs

    ents = [
        Entity([Mention(0, 0, 1)], type="Chemical"),
        Entity([Mention(0, 2, 3)], type="Disease"),
        Entity([Mention(0, 4, 5)], type="Chemical"),
    ]
    raw = Document("d", [["w"] * 6], ents)
    cfg = tiny_config(pair_types=[["Chemical", "Disease"]])
    assert scored_pairs(raw, cfg) == [(0, 1), (2, 1)]
    assert len(scored_pairs(raw, tiny_config())) == 6  # None: every ordered pair
    given = Document("d", [["w"] * 6], ents, candidates=[Candidate(0, 2)])
    assert scored_pairs(given, cfg) == [(0, 2)]  # candidates in the input win
    model, tok = tiny_model(pair_types=[["Chemical", "Disease"]])
    feats = build_features(raw, tok, model.config)
    assert feats.pairs.tolist() == [[0, 1], [2, 1]]
    # training records the candidates' type pairs, only when every document lists candidates
    cdr = Document("c", [["w"] * 6], ents, candidates=[Candidate(0, 1), Candidate(2, 1)])
    assert candidate_pair_types([cdr, given]) == [["Chemical", "Chemical"], ["Chemical", "Disease"]]
    assert candidate_pair_types([cdr, raw]) is None
    with pytest.raises(ValueError, match="pair_types must be"):
        tiny_config(pair_types=[["Chemical"]])


def test_masked_batchnorm_training_ignores_padding(rng):
    """In training mode too, padded cells do not move the batch statistics."""
    torch.manual_seed(0)
    net = UNet(3, 8, 6).train()
    x = torch.randn(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[:, :, :5, :5] = 1
    y1 = net(x * mask, mask)
    x2 = x.clone()
    x2[:, :, 5:, :] = 100.0  # garbage in padded cells
    y2 = net(x2, mask)
    assert torch.allclose(y1, y2, atol=1e-5)


def test_balanced_loss_matches_hand_computation():
    logits = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.3, -0.2]])
    labels = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    # row 1: negatives {0.5, -1.0}, positives {2.0}; row 2: negatives {0.3, -0.2}, positive {1.0}
    r1 = np.log(1 + np.exp(0.5) + np.exp(-1.0)) + np.log(1 + np.exp(-2.0))
    r2 = np.log(1 + np.exp(0.3) + np.exp(-0.2)) + np.log(1 + np.exp(-1.0))
    assert balanced_loss(logits, labels).item() == pytest.approx((r1 + r2) / 2, abs=1e-6)


def test_adaptive_balanced_loss_leaves_the_threshold_class_out():
    # logits already relative to the pair's threshold (column 0 is 0)
    logits = torch.tensor([[0.0, -1.0, 2.0], [0.0, 0.3, -0.2]])
    labels = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    # row 1: negative {-1.0}, positive {2.0}; row 2 (NA): negatives {0.3, -0.2}, no positive
    r1 = np.log(1 + np.exp(-1.0)) + np.log(1 + np.exp(-2.0))
    r2 = np.log(1 + np.exp(0.3) + np.exp(-0.2))
    got = balanced_loss(logits, labels, adaptive=True).item()
    assert got == pytest.approx((r1 + r2) / 2, abs=1e-6)


def test_adaptive_threshold_class_makes_logits_relative_to_it(rng):
    fixed, tok = tiny_model(3)
    adaptive, _ = tiny_model(3, threshold_class="adaptive")
    adaptive.load_state_dict(fixed.state_dict())  # the same weights, only the threshold differs
    docs = [random_document(rng, 50, 6), random_document(rng, 30, 4)]
    t = batch_to_tensors(
        collate([build_features(d, tok, fixed.config) for d in docs], tok, fixed.config)
    )
    with torch.no_grad():
        a, b = fixed(t), adaptive(t)
    assert torch.equal(b[:, 0], torch.zeros_like(b[:, 0]))
    torch.testing.assert_close(b, a - a[:, :1])
    with pytest.raises(
        ValueError, match="unknown threshold class 'learned'; valid choices: fixed, adaptive"
    ):
        tiny_config(threshold_class="learned")


def test_decode_threshold_top_k_and_allowed():
    lg = np.array([[5.0, 1.0, -1.0, 3.0], [0.0, -0.5, -0.1, -2.0]])
    assert decode(lg) == [(0, 1, 1.0), (0, 3, 3.0)]
    assert decode(lg, top_k=1) == [(0, 3, 3.0)]
    assert decode(lg, threshold=score_to_logit(0.9)) == [(0, 3, 3.0)]
    assert decode(lg, allowed=np.array([True, True, True, False])) == [(0, 1, 1.0)]
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        decode(lg, top_k=0)
    with pytest.raises(ValueError, match=r"min_score must be in \(0, 1\)"):
        score_to_logit(1.5)


def test_labels_become_multi_hot_with_na_column():
    _, tok = tiny_model()
    doc = Document(
        "d",
        [["w1", "w2", "w3", "w4"]],
        [Entity([Mention(0, 0, 1)]), Entity([Mention(0, 2, 3)]), Entity([Mention(0, 3, 4)])],
        [Label(0, 1, "r2"), Label(0, 1, "r3"), Label(2, 0, "r1")],
    )
    f = build_features(doc, tok, tiny_config(), INDEX)
    rows = {tuple(p): f.pair_labels[i].tolist() for i, p in enumerate(f.pairs.tolist())}
    assert rows[(0, 1)] == [0, 0, 1, 1]
    assert rows[(2, 0)] == [0, 1, 0, 0]
    assert rows[(1, 2)] == [1, 0, 0, 0]


def test_config_errors_list_choices():
    with pytest.raises(ValueError, match="valid choices: star, typed"):
        tiny_config(markers="brackets")
    with pytest.raises(ValueError, match="valid choices: context, similarity"):
        tiny_config(feature_map="graph")
    with pytest.raises(ValueError, match="valid choices: given, position, type"):
        tiny_config(entity_order="random")


@pytest.mark.parametrize("sim", ["elementwise", "cosine", "bilinear"])
def test_similarity_feature_maps_run(rng, sim):
    model, tok = tiny_model(feature_map="similarity", similarity=sim)
    [lg] = logits_for(model, tok, [random_document(rng, 40, 6)])
    assert lg.shape == (30, 4) and np.isfinite(lg).all()


def test_no_unet_ablation_runs(rng):
    model, tok = tiny_model(use_unet=False)
    [lg] = logits_for(model, tok, [random_document(rng, 40, 6)])
    assert lg.shape == (30, 4)


def test_build_model_fits_a_copy_of_the_config_to_the_encoder():
    from docunet_rt.checkpoint import build_model
    from docunet_rt.config import DocuNetConfig

    given = tiny_config(max_length=512, window_overlap=128, hidden_size=7, num_heads=1)
    before = DocuNetConfig.from_dict(given.to_dict())
    model = build_model(given, tiny_encoder(0, max_positions=64))
    assert given == before  # the caller's config is not changed
    c = model.config
    assert (c.hidden_size, c.num_heads, c.max_length) == (32, 4, 64)  # from the encoder
    assert c.window_overlap == (64 - 2) // 4  # 128 does not fit a 64-position window
