"""ONNX export: onnxruntime runs the exported graph and gets what predict gets."""
import warnings

import numpy as np
import pytest

import fastbp

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = {np.float64: 1e-12, np.float32: 1e-6}
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def run(model_proto, X):
    session = ort.InferenceSession(model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})


def assert_close(got, expected, dtype):
    expected = np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert got.dtype == expected.dtype
    assert float(np.max(np.abs(got - expected))) <= TOL[dtype] * scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("output", ["identity", "sigmoid", "tanh", "relu", "softmax"])
def test_network_graph_predicts_as_predict(dtype, hidden, output):
    net = fastbp.Network([5, 7, 6, 3], activation=[hidden, "relu"], output_activation=output,
                         dtype=dtype, seed=1)
    X = np.random.default_rng(2).normal(size=(11, 5)).astype(dtype)
    (out,) = run(fastbp.to_onnx(net), X)
    assert out.shape == (11, 3)
    assert_close(out, net.predict(X), dtype)


def test_export_saves_to_a_path(tmp_path):
    net = fastbp.Network([3, 2], output_activation="identity", seed=0)
    path = tmp_path / "net.onnx"
    returned = fastbp.to_onnx(net, path)
    loaded = onnx.load(path)
    assert loaded.SerializeToString() == returned.SerializeToString()
    X = np.ones((2, 3))
    assert_close(run(loaded, X)[0], net.predict(X), np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("labels", [
    lambda y: y % 2,                                   # binary: one sigmoid unit
    lambda y: y % 4,                                   # multiclass: softmax
    lambda y: np.array(["cat", "dog", "eel"])[y % 3],  # string classes
    lambda y: np.stack([y % 2, y // 2 % 2, y % 3 == 0], axis=1).astype(int),  # multilabel
])
def test_classifier_graph_gives_labels_and_probabilities(dtype, labels):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 6)).astype(dtype)
    y = labels(rng.integers(0, 12, 80))
    clf = fastbp.MLPClassifier((9,), activation="tanh", max_iter=30, random_state=0).fit(X, y)
    label, probabilities = run(fastbp.to_onnx(clf), X)
    np.testing.assert_array_equal(label, clf.predict(X))
    assert_close(probabilities, clf.predict_proba(X), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_graph_predicts_as_predict(dtype, n_outputs, loss):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 4)).astype(dtype)
    y = rng.poisson(2.0, size=(50, n_outputs)).astype(dtype)
    reg = fastbp.MLPRegressor(loss, hidden_layer_sizes=(8, 5), activation=["logistic", "relu"],
                              max_iter=20, random_state=0).fit(
                                  X, y.ravel() if n_outputs == 1 else y)
    (out,) = run(fastbp.to_onnx(reg), X)
    assert_close(out.reshape(reg.predict(X).shape), reg.predict(X), dtype)


def test_pipelines_holding_fastbp_estimators_convert_with_skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    fastbp.register_skl2onnx()
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(60, 4)) * 10 + 3).astype(np.float32)
    y = rng.integers(0, 3, 60)
    for estimator, options in ((fastbp.MLPClassifier((6,), max_iter=40, random_state=0),
                                {"zipmap": False}),
                               (fastbp.MLPRegressor(hidden_layer_sizes=(6,), max_iter=40, random_state=0), None)):
        target = y if options else X[:, 0] * 0.1
        pipeline = make_pipeline(StandardScaler(), estimator).fit(X, target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model = skl2onnx.to_onnx(pipeline, X[:1],
                                     options={id(estimator): options} if options else None)
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        outputs = session.run(None, {session.get_inputs()[0].name: X})
        if options:
            np.testing.assert_array_equal(outputs[0], pipeline.predict(X))
            # the scaler runs in float32 in the graph, in float64 in scikit-learn
            np.testing.assert_allclose(outputs[1], pipeline.predict_proba(X), atol=1e-5)
        else:
            np.testing.assert_allclose(outputs[0].ravel(), pipeline.predict(X), atol=1e-5)


def test_export_refuses_what_it_cannot_export():
    with pytest.raises(TypeError, match="takes a fastbp.Network, MLPClassifier or MLPRegressor"):
        fastbp.to_onnx(object())
    with pytest.raises(ValueError, match="not fitted yet"):
        fastbp.to_onnx(fastbp.MLPClassifier())
