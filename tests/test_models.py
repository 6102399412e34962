"""The model zoo (deploy.models): every model builds deterministically into the cache, runs under
onnxruntime with its documented contract, and names and user files resolve.

The zoo is built once per module into a temporary cache; tests of the cache itself use their own.
Each model's single-inference latency (batch 1, one thread) is printed, not asserted (``-s``).
"""
from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from deploy.models import (ZOO, ModelFile, TensorSpec, build_model, cache_dir, list_models,  # noqa: E402
                           metadata, resolve_model, sample_input)
from deploy.models import zoo as zoo_module  # noqa: E402
from deploy.models.graph import model_stats  # noqa: E402
from deploy.models.minilm import WeightsUnavailable  # noqa: E402
from sim.errors import ServesimError  # noqa: E402

NAMES = ["mobilenetv2", "cifar10-cnn", "price-mlp", "lstm-forecaster", "mf-recommender", "minilm"]
EXTRA_MODULES = {"price-mlp": ("sklearn", "skl2onnx"), "minilm": ("tokenizers", "safetensors")}


@pytest.fixture(scope="module")
def zoo_cache(tmp_path_factory):
    """SERVESIM_CACHE → a temporary folder shared by this module's tests of built models."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SERVESIM_CACHE", str(tmp_path_factory.mktemp("servesim-cache")))
        yield cache_dir()


def built(name: str) -> ModelFile:
    """The zoo model, built on first use; skipped where its extra or its weights are unavailable."""
    for module in EXTRA_MODULES.get(name, ()):
        pytest.importorskip(module, reason=f"{name} needs the '{ZOO[name].extra}' extra")
    try:
        return build_model(name)
    except WeightsUnavailable as exc:
        pytest.skip(f"{name}: weights unavailable here ({exc})")


def session(path) -> "ort.InferenceSession":
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_zoo_lists_every_model():
    assert list(ZOO) == NAMES
    infos = list_models()
    assert [i.name for i in infos] == NAMES
    for info in infos:
        assert info.inputs and info.outputs and info.description
        assert all(s.dtype in ("float32", "int64") for s in info.inputs + info.outputs)


@pytest.mark.parametrize("name", NAMES)
def test_model_runs_on_its_sample_input_as_documented(zoo_cache, name):
    mf = built(name)
    assert mf.info == ZOO[name].info
    assert mf.path == zoo_cache / "models" / f"{name}.onnx"
    meta = metadata(mf)
    assert meta["sha256"] == mf.sha256 == sha256(mf.path)
    assert meta["inputs"] == [s.to_dict() for s in mf.info.inputs] and "numpy" in meta["versions"]

    sess = session(mf.path)
    assert [i.name for i in sess.get_inputs()] == [s.name for s in mf.info.inputs]
    assert [o.name for o in sess.get_outputs()] == [s.name for s in mf.info.outputs]
    for batch in (1, 3):
        feeds = sample_input(mf, np.random.default_rng(batch), batch)
        again = sample_input(mf, np.random.default_rng(batch), batch)
        assert feeds.keys() == again.keys() and all(np.array_equal(feeds[k], again[k]) for k in feeds)
        for spec in mf.info.inputs:
            assert spec.matches(feeds[spec.name].shape, feeds[spec.name].dtype), spec
            assert feeds[spec.name].shape[0] == batch
        outs = sess.run(None, feeds)
        for spec, out in zip(mf.info.outputs, outs):
            assert spec.matches(out.shape, out.dtype), (spec, out.shape, out.dtype)
            assert out.shape[0] == batch and np.isfinite(out).all()
        for a, b in zip(outs, sess.run(None, feeds)):
            np.testing.assert_array_equal(a, b)  # same input → same output

    one = sample_input(mf, np.random.default_rng(0), 1)
    sess.run(None, one)
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        sess.run(None, one)
        times.append(time.perf_counter() - t0)
    print(f"\n{name}: one inference (batch 1, 1 thread, onnxruntime {ort.__version__}) "
          f"median {1e3 * np.median(times):.2f} ms, inputs {({k: v.shape for k, v in one.items()})}")


@pytest.mark.parametrize("name", NAMES)
def test_a_build_gives_the_same_bytes_every_time(zoo_cache, tmp_path, name):
    cached = built(name)
    again = tmp_path / f"{name}.onnx"
    ZOO[name].build(again)
    assert sha256(again) == cached.sha256


def test_mobilenetv2_has_the_size_of_the_paper(zoo_cache):
    """Sandler et al. (2018), Table 4: MobileNetV2 1.0 at 224 has 300 M multiply-adds and 3.4 M
    parameters (torchvision: 3.50 M with unfolded batch norm; folding it leaves 3.49 M)."""
    proto = onnx.load(str(built("mobilenetv2").path))
    stats = model_stats(proto)
    assert stats.macs == pytest.approx(300e6, rel=0.02)
    assert stats.params == pytest.approx(3.5e6, rel=0.03)
    ops = [n.op_type for n in proto.graph.node]
    depthwise = [n for n in proto.graph.node if n.op_type == "Conv" and
                 helper.get_attribute_value(next(a for a in n.attribute if a.name == "group")) > 1]
    assert len(depthwise) == 17          # one per inverted residual block
    assert ops.count("Add") == 10        # residuals where stride 1 and width unchanged
    assert ops.count("Clip") == 35       # ReLU6: stem, 16 expansions, 17 depthwise, last conv
    assert "BatchNormalization" not in ops and ops[-1] == "Softmax"


def test_price_mlp_learns_the_synthetic_market(zoo_cache):
    from deploy.models.tabular import synthetic_devices, true_price_usd

    mf = built("price-mlp")
    x, y = synthetic_devices(np.random.default_rng(2024), 2000)  # held out: not the training stream
    pred = session(mf.path).run(None, {"features": x})[0][:, 0]

    def r2(truth, p):
        return 1.0 - np.sum((truth - p) ** 2) / np.sum((truth - truth.mean()) ** 2)

    assert r2(y, pred) > 0.8
    assert r2(true_price_usd(x), pred) > 0.8


def test_recommender_top_k_is_the_argsort_of_its_scores(zoo_cache):
    mf = built("mf-recommender")
    proto = onnx.load(str(mf.path))
    w = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    users = next(v for k, v in w.items() if k.startswith("user_embeddings"))
    items_t = next(v for k, v in w.items() if k.startswith("item_embeddings_t"))
    bias = next(v for k, v in w.items() if k.startswith("item_bias"))

    ids = np.random.default_rng(5).integers(0, users.shape[0], 16).astype(np.int64)
    scores, top_items, top_scores = session(mf.path).run(None, {"user_id": ids})
    np.testing.assert_allclose(scores, users[ids] @ items_t + bias, rtol=1e-5, atol=1e-6)
    k = top_items.shape[1]
    np.testing.assert_array_equal(top_items, np.argsort(-scores, axis=1, kind="stable")[:, :k])
    np.testing.assert_array_equal(top_scores, np.take_along_axis(scores, top_items, axis=1))


def test_lstm_forecasts_a_horizon_per_window(zoo_cache):
    from deploy.models.lstm import HORIZON

    mf = built("lstm-forecaster")
    feeds = sample_input(mf, np.random.default_rng(1), 5)
    forecast = session(mf.path).run(None, feeds)[0]
    assert forecast.shape == (5, HORIZON)
    assert np.ptp(forecast, axis=0).max() > 0  # depends on the window


def test_minilm_embeds_like_sentence_transformers(zoo_cache):
    """Reference: sentence-transformers' all-MiniLM-L6-v2 embedding of "hello world", first five
    components, as pinned by qdrant/fastembed's tests (CANONICAL_VECTOR_VALUES)."""
    mf = built("minilm")
    from deploy.models.minilm import load_tokenizer, tokenize

    tok = load_tokenizer()
    sess = session(mf.path)

    def embed(texts):
        return sess.run(None, tokenize(texts, tok))[0]

    e = embed(["hello world", "A man is eating food.", "A man is eating a piece of bread.",
               "The stock market fell sharply after the central bank raised interest rates."])
    np.testing.assert_allclose(e[0, :5], [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    related, unrelated = e[1] @ e[2], e[1] @ e[3]
    assert related > 0.6 and related > unrelated + 0.4
    # Padding is masked out: a short text padded in a batch embeds as it does alone.
    np.testing.assert_allclose(embed(["hello world"])[0], e[0], atol=1e-5)


def test_a_zoo_name_is_built_on_first_use_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVESIM_CACHE", str(tmp_path))
    path = tmp_path / "models" / "cifar10-cnn.onnx"
    assert not path.exists()
    mf = resolve_model("cifar10-cnn")
    assert mf.path == path and path.is_file() and (tmp_path / "models" / "cifar10-cnn.json").is_file()
    assert not list(path.parent.glob(".*.tmp"))  # the temporary files were renamed into place
    stamp = path.stat().st_mtime_ns
    assert resolve_model("cifar10-cnn") == mf and path.stat().st_mtime_ns == stamp  # reused
    path.write_bytes(path.read_bytes()[:-1])  # a damaged file is rebuilt
    assert resolve_model("cifar10-cnn").sha256 == mf.sha256 == sha256(path)


def tiny_onnx(path):
    """y = relu(x @ w) with x float32 [N, 4] and w an initializer also listed as an input
    (as old exporters do); ids int64 [None, 2] passes through."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Relu", ["xw"], ["y"]),
         helper.make_node("Identity", ["ids"], ["ids_out"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("ids_out", TensorProto.INT64, [None, 2])],
        initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                              producer_name="test")
    path.write_bytes(model.SerializeToString())
    return path


def test_a_user_onnx_file_gives_its_contract_and_sample_input(tmp_path):
    path = tiny_onnx(tmp_path / "tiny.onnx")
    for arg in (str(path), path):
        mf = resolve_model(arg)
        assert mf.name == "tiny.onnx" and mf.path == path.resolve() and mf.sha256 == sha256(path)
        assert mf.info.inputs == (TensorSpec("x", "float32", ("N", 4)), TensorSpec("ids", "int64", (None, 2)))
        assert mf.info.outputs == (TensorSpec("y", "float32", ("N", 3)), TensorSpec("ids_out", "int64", (None, 2)))
    feeds = sample_input(mf, np.random.default_rng(0), batch=3)
    assert feeds["x"].shape == (3, 4) and feeds["x"].dtype == np.float32
    assert feeds["ids"].shape == (3, 2) and feeds["ids"].dtype == np.int64
    y, ids = session(path).run(None, feeds)
    assert y.shape == (3, 3) and np.array_equal(ids, feeds["ids"])


def test_an_unknown_name_lists_the_zoo():
    with pytest.raises(ServesimError) as err:
        resolve_model("mobilenet")
    msg = str(err.value)
    assert all(n in msg for n in NAMES) and "did you mean 'mobilenetv2'" in msg
    with pytest.raises(ServesimError):
        build_model("resnet50")


def test_a_missing_or_bad_file_is_named(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ServesimError, match="nope.onnx"):
        resolve_model(missing)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(ServesimError, match="bad.onnx"):
        resolve_model(str(bad))


def test_a_model_whose_extra_is_missing_is_listed_but_not_built(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVESIM_CACHE", str(tmp_path))
    monkeypatch.setattr(zoo_module, "_installed", lambda dist: dist not in ("tokenizers", "scikit-learn"))
    with pytest.raises(ServesimError, match=r"tokenizers.*servesim\[minilm\]"):
        build_model("minilm")
    with pytest.raises(ServesimError, match=r"scikit-learn.*servesim\[tabular\]"):
        resolve_model("price-mlp")
    notes = {i.name: i.notes for i in list_models()}
    assert "unavailable here" in notes["minilm"] and "unavailable here" in notes["price-mlp"]
    assert "unavailable" not in notes["mobilenetv2"]
    assert not (tmp_path / "models").exists()
