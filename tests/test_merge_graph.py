"""The window merge as an ONNX graph: it matches the numpy merge, and the IO-binding chain
encoder → merge graph → head (the GPU path) gives the same logits and triples on the CPU."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from docunet_rt.decode import decode
from docunet_rt.features import build_features, collate
from docunet_rt.options import ExtractOptions
from docunet_rt.runtime import Extractor
from docunet_rt.runtime.merge import merge_windows
from docunet_rt.runtime.model_dir import GRAPH_SIGNATURE, ModelSpec
from docunet_rt.runtime.sessions import make_session
from docunet_rt.synth import synthetic_document, vocabulary_words

pytest.importorskip("torch")
pytest_plugins = ["_export_fixtures"]


def docs_for(tok, specs, seed=0):
    words = vocabulary_words(tok)
    return [
        synthetic_document(words, n, e, seed=seed + i, doc_id=f"d{i}")
        for i, (n, e) in enumerate(specs)
    ]


def test_the_merge_graph_matches_the_numpy_merge(exported, source_model):
    model_dir, _ = exported
    spec = ModelSpec.load(model_dir)
    assert spec.merge_path is not None and spec.meta["merge"] == "merge.onnx"
    assert spec.sha256["merge.onnx"]  # verified like the other graphs
    sess = make_session(spec.merge_path)
    model, tok = source_model
    cfg = model.config
    rng = np.random.default_rng(1)
    # batches unlike the tracing one: many windows (max_length 32), 1..40 entities, B = 1..4
    for specs in ([(300, 40)], [(20, 1), (250, 12)], [(5, 2), (90, 7), (130, 3), (400, 25)]):
        feats = [build_features(d, tok, cfg) for d in docs_for(tok, specs, seed=len(specs))]
        b = collate(feats, tok, cfg)
        W, L = b.input_ids.shape
        assert W > len(specs)  # documents over several windows
        hidden = rng.standard_normal((W, L, cfg.hidden_size), dtype=np.float32)
        rows = rng.random((W, cfg.num_heads, b.win_rows.shape[1], L), dtype=np.float32)
        feed = {"hidden": hidden, "attention_rows": rows}
        feed |= {n: getattr(b, n) for n in GRAPH_SIGNATURE["merge"][0][2:]}
        got = sess.run(list(GRAPH_SIGNATURE["merge"][1]), feed)
        want = merge_windows(b, hidden, rows)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            assert float(np.abs(g - w).max()) < 1e-5


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_io_binding_chain_gives_the_same_results_on_the_cpu(exported, source_model, precision):
    model_dir, _ = exported
    model, tok = source_model
    docs = docs_for(tok, [(300, 19), (40, 3), (120, 8), (12, 2), (500, 43)], seed=7)
    graph = Extractor(model_dir, device="cpu", precision=precision, merge="graph", threads=1)
    host = Extractor(model_dir, device="cpu", precision=precision, merge="numpy", threads=1)
    assert graph.backend.merge_mode == "graph" and host.backend.merge_mode == "numpy"
    # a small budget: the 500-wordpiece document's encoder windows run in chunks
    opts = ExtractOptions(max_tokens=64)
    feats = [graph.features(d) for d in docs]
    a, b = graph.logits(feats, opts), host.logits(feats, opts)
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape and float(np.abs(x - y).max()) < 1e-4
        assert [r[:2] for r in decode(x)] == [r[:2] for r in decode(y)]
    assert graph.timings["merge"] > 0 and graph.timings["encoder"] > 0
    r1 = [r.to_dict() for r in graph.extract(docs, opts)]
    r2 = [r.to_dict() for r in host.extract(docs, opts)]
    assert [d["triples"] and [t["relation"] for t in d["triples"]] for d in r1] == [
        d["triples"] and [t["relation"] for t in d["triples"]] for d in r2
    ]


def test_auto_merges_on_the_host_on_cpu_and_an_old_model_dir_still_runs(exported, tmp_path):
    model_dir, _ = exported
    assert Extractor(model_dir, device="cpu").backend.merge_mode == "numpy"
    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    meta = json.loads((old / "model.json").read_text())
    meta.pop("merge")
    (old / "model.json").write_text(json.dumps(meta))
    (old / "merge.onnx").unlink()
    assert Extractor(old, device="cpu").backend.merge_mode == "numpy"
    with pytest.raises(ValueError, match="merge='graph' needs the MODEL_DIR's merge.onnx"):
        Extractor(old, device="cpu", merge="graph")
    with pytest.raises(ValueError, match="unknown merge 'gpu'; valid choices: auto, numpy, graph"):
        Extractor(model_dir, device="cpu", merge="gpu")


def test_shape_buckets_pad_without_changing_a_logit(exported, source_model):
    from docunet_rt.features import ShapeBuckets

    model_dir, _ = exported
    model, tok = source_model
    docs = docs_for(tok, [(300, 19), (40, 3), (120, 9), (12, 2), (200, 43)], seed=11)
    feats = [build_features(d, tok, model.config) for d in docs]
    b = collate(feats, tok, model.config, buckets=ShapeBuckets())
    assert b.entity_mentions.shape[1] == 64 and b.doc_mask.shape[1] % 256 == 0  # 43 → 64
    assert ShapeBuckets().pad_entities(300) == 512
    plain = Extractor(model_dir, device="cpu", shape_buckets=False, threads=1)
    for merge in ("numpy", "graph"):
        bucketed = Extractor(model_dir, device="cpu", shape_buckets=True, merge=merge, threads=1)
        for x, y in zip(bucketed.logits(feats), plain.logits(feats), strict=True):
            assert float(np.abs(x - y).max()) < 1e-5
            assert [r[:2] for r in decode(x)] == [r[:2] for r in decode(y)]


def test_the_default_token_budget_depends_on_the_device(exported):
    from _extract_fixtures import StubBackend, make_tokenizer, stub_config

    from docunet_rt.features import TokenizerInfo

    model_dir, _ = exported
    cpu = Extractor(model_dir, device="cpu")
    assert cpu.budget(ExtractOptions()) == 4096
    assert cpu.budget(ExtractOptions(max_tokens=999)) == 999
    gpu = StubBackend()
    gpu.provider = "CUDAExecutionProvider"
    tok = TokenizerInfo.from_tokenizer(make_tokenizer())
    assert Extractor.from_backend(gpu, stub_config(), tok).budget(ExtractOptions()) == 32768
