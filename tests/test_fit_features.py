"""Network.fit's user features: sample weights, validation data, early
stopping, callbacks, class labels and score."""
import numpy as np
import pytest

import fastbp
from fastbp import reference
from helpers import as_lists


def _params(net):
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in
                           zip(net.weights, net.biases)])


# -- sample weights -------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_integer_sample_weights_equal_repeated_rows(rng, dtype):
    # full batch: a weighted mean over rows equals the mean over rows repeated
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    counts = np.array([1, 3, 2, 1, 4, 1, 2])
    make = lambda: fastbp.Network([3, 5, 2], activation="tanh", output_activation="identity",
                                  dtype=dtype, seed=4)
    weighted, repeated = make(), make()
    hw = weighted.fit(X, Y, epochs=4, batch_size=7, shuffle=False, l2=0.1,
                      sample_weight=counts.astype(float), optimizer=fastbp.SGD(lr=0.05))
    hr = repeated.fit(np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0), epochs=4,
                      batch_size=counts.sum(), shuffle=False, l2=0.1,
                      optimizer=fastbp.SGD(lr=0.05))
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(_params(weighted), _params(repeated), rtol=rtol, atol=rtol)
    # the reported loss is per row (weights change each batch's mean, not the row count)
    assert np.all(np.isfinite(hw["loss"])) and len(hw["loss"]) == len(hr["loss"]) == 4


def test_sample_weights_equal_the_reference_gradient_step(rng):
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    w = np.array([0.5, 2.0, 1.0, 0.0, 3.0])
    net = fastbp.Network([2, 3, 1], activation="sigmoid", output_activation="identity", seed=1)
    W, b, acts = as_lists(net)
    # one full-batch step on weighted data: the same as the reference gradient of
    # rows scaled by their weight's share (J is linear in the per-row terms)
    rows = [i for i in range(5) for _ in range(int(w[i] * 2))]  # halves -> counts
    dW, db = reference.gradients(W, b, acts, X[rows].tolist(), Y[rows].tolist())
    net.fit(X, Y, epochs=1, batch_size=5, shuffle=False, sample_weight=w,
            optimizer=fastbp.SGD(lr=0.1))
    for got, W0, g in zip(net.weights, W, dW):
        np.testing.assert_allclose(got, np.array(W0) - 0.1 * np.array(g), rtol=1e-12)
    for got, b0, g in zip(net.biases, b, db):
        np.testing.assert_allclose(got, np.array(b0) - 0.1 * np.array(g), rtol=1e-12)


@pytest.mark.parametrize("weights,match", [
    (np.ones(4), r"one weight per row of X \(5\)"),
    (-np.ones(5), "non-negative"),
    (np.zeros(5), "all zeros"),
    (np.array([1, 1, np.nan, 1, 1.0]), "sample_weight"),
])
def test_bad_sample_weights_are_named(weights, match):
    net = fastbp.Network([2, 1], seed=0)
    before = _params(net)
    with pytest.raises(ValueError, match=match):
        net.fit(np.ones((5, 2)), np.zeros(5), sample_weight=weights)
    np.testing.assert_array_equal(_params(net), before)


# -- validation and early stopping --------------------------------------------------

def _noisy_regression(rng, n=120):
    X = rng.normal(size=(n, 4))
    Y = np.sin(X[:, :1] * 2) + 0.5 * rng.normal(size=(n, 1))
    return X, Y


def test_validation_data_is_scored_every_epoch(rng):
    X, Y = _noisy_regression(rng)
    net = fastbp.Network([4, 8, 1], activation="tanh", output_activation="identity", seed=0)
    seen = []
    history = net.fit(X[:80], Y[:80], epochs=5, validation_data=(X[80:], Y[80:]),
                      callbacks=[lambda epoch, h, network: seen.append(
                          network.loss(X[80:], Y[80:]))])
    assert len(history["val_loss"]) == 5
    # the recorded value is the loss of the weights at the end of that epoch
    np.testing.assert_allclose(history["val_loss"], seen, rtol=1e-12)


def test_validation_split_holds_rows_out(rng):
    X, Y = _noisy_regression(rng, 100)
    net = fastbp.Network([4, 3, 1], output_activation="identity", seed=0)
    rows = []
    history = net.fit(X, Y, epochs=2, batch_size=1, validation_split=0.2, seed=5,
                      optimizer=fastbp.SGD(lr=0.01),
                      callbacks=[lambda epoch, h, network: rows.append(h["seconds"][-1] >= 0)])
    assert len(history["val_loss"]) == 2 and rows == [True, True]
    with pytest.raises(ValueError, match="not both"):
        net.fit(X, Y, validation_split=0.2, validation_data=(X, Y))
    with pytest.raises(ValueError, match="validation_split"):
        net.fit(X[:3], Y[:3], validation_split=0.1)


def test_early_stopping_restores_the_best_epoch_exactly(rng):
    X, Y = _noisy_regression(rng, 60)
    net = fastbp.Network([4, 32, 1], activation="tanh", output_activation="identity", seed=0)
    snapshots = []
    stopper = fastbp.EarlyStopping(patience=3)
    history = net.fit(X[:30], Y[:30], epochs=300, batch_size=5, seed=0,
                      optimizer=fastbp.SGD(lr=0.2, momentum=0.9),
                      validation_data=(X[30:], Y[30:]), early_stopping=stopper,
                      callbacks=[lambda epoch, h, network: snapshots.append(_params(network))])
    ran = len(history["loss"])
    best = int(np.argmin(history["val_loss"]))
    assert ran < 300, "overfitting a 30-row set should trigger early stopping"
    assert ran == best + 1 + 3  # three epochs in a row without improvement
    assert stopper.best_epoch == best
    np.testing.assert_array_equal(_params(net), snapshots[best])
    assert net.loss(X[30:], Y[30:]) == pytest.approx(min(history["val_loss"]), rel=1e-12)


def test_early_stopping_without_validation_watches_the_training_loss(rng):
    X, Y = _noisy_regression(rng, 40)
    net = fastbp.Network([4, 1], output_activation="identity", seed=0)
    history = net.fit(X, Y, epochs=500, batch_size=40, optimizer=fastbp.SGD(lr=0.05),
                      early_stopping=fastbp.EarlyStopping(patience=2, min_delta=1e-3))
    assert "val_loss" not in history and len(history["loss"]) < 500
    gains = -np.diff(history["loss"])
    assert np.all(gains[-2:] < 1e-3)


def test_adaptive_schedule_lowers_the_rate_on_plateaus(rng):
    X, Y = _noisy_regression(rng, 40)
    net = fastbp.Network([4, 1], output_activation="identity", seed=0)
    history = net.fit(X, Y, epochs=400, batch_size=40,
                      optimizer=fastbp.SGD(lr=0.05, schedule=fastbp.optim.Adaptive(min_lr=1e-3)),
                      early_stopping=fastbp.EarlyStopping(patience=2, min_delta=1e-3))
    rates = sorted(set(history["lr"]), reverse=True)
    assert rates[:3] == pytest.approx([0.05, 0.01, 0.002])
    assert len(history["loss"]) < 400


def test_callbacks_can_stop_a_fit_and_see_each_epoch(rng):
    X, Y = _noisy_regression(rng, 30)
    net = fastbp.Network([4, 1], output_activation="identity", seed=0)
    calls = []

    def stop_after_three(epoch, history, network):
        calls.append((epoch, len(history["loss"]), network is net))
        return epoch == 2

    history = net.fit(X, Y, epochs=10, callbacks=[stop_after_three])
    assert calls == [(0, 1, True), (1, 2, True), (2, 3, True)]
    assert len(history["loss"]) == 3
    with pytest.raises(TypeError, match="callbacks must be callables"):
        net.fit(X, Y, callbacks=[1])
    with pytest.raises(TypeError, match="early_stopping must be"):
        net.fit(X, Y, early_stopping="yes")


# -- class labels ---------------------------------------------------------------------

@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"]), np.array([3, 7, 9])])
def test_class_labels_round_trip(rng, tmp_path, labels):
    X = rng.normal(size=(90, 4))
    y = labels[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)]
    net = fastbp.Network([4, 16, 3], activation="tanh", output_activation="softmax", seed=0)
    net.fit(X, y, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.02), epochs=60, seed=0)
    np.testing.assert_array_equal(net.classes_, labels)
    predicted = net.predict_labels(X)
    assert predicted.dtype == labels.dtype
    assert net.score(X, y) == np.mean(predicted == y) > 0.9
    # one-hot rows score the same
    onehot = (y[:, None] == labels[None, :]).astype(float)
    assert net.score(X, onehot) == net.score(X, y)
    net.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict_labels(X), predicted)


def test_binary_labels_on_one_sigmoid_unit(rng):
    X = rng.normal(size=(80, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    net = fastbp.Network([2, 1], output_activation="sigmoid", seed=0)
    net.fit(X, y, loss="bce", epochs=40, optimizer=fastbp.SGD(lr=0.5))
    np.testing.assert_array_equal(net.classes_, ["no", "yes"])
    assert net.score(X, y) > 0.9
    assert set(net.predict_labels(X)) <= {"no", "yes"}


def test_label_errors_say_what_to_pass(rng):
    X = rng.normal(size=(6, 2))
    with pytest.raises(ValueError, match="output_activation='softmax'"):
        fastbp.Network([2, 1], output_activation="identity").fit(X, np.array(list("abcabc")))
    with pytest.raises(ValueError, match="4 distinct labels but the output layer has 3 units"):
        fastbp.Network([2, 3], output_activation="softmax").fit(X, np.array([0, 1, 2, 5, 0, 1]))
    net = fastbp.Network([2, 3], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match="predict_labels|labels"):
        net.predict_labels(X)
    net.fit(X, np.array([0, 1, 2, 0, 1, 2]), loss="cross_entropy")
    with pytest.raises(ValueError, match="not fitted with: \\[9\\]"):
        net.fit(X, np.array([0, 1, 9, 0, 1, 2]), loss="cross_entropy")
    np.testing.assert_array_equal(net.classes_, [0, 1, 2])


def test_a_failed_fit_learns_no_classes(rng):
    net = fastbp.Network([2, 3], output_activation="softmax", seed=0)
    with pytest.raises(ValueError):
        net.fit(np.ones((4, 2)), np.array(["a", "b", "c", "a"]), loss="cross_entropy",
                sample_weight=np.ones(3))
    assert net.classes_ is None


def test_integer_labels_keep_units_for_classes_missing_from_the_data(rng):
    net = fastbp.Network([2, 5], output_activation="softmax", seed=0)
    net.fit(np.ones((3, 2)), np.array([0, 2, 4]), loss="cross_entropy")
    np.testing.assert_array_equal(net.classes_, np.arange(5))


def _fit_on(labels, X, output="softmax", units=None, **fit):
    net = fastbp.Network([X.shape[1], 6, units or 10], activation="tanh",
                         output_activation=output, seed=2)
    net.fit(X, labels, optimizer=fastbp.SGD(lr=0.2), epochs=3, batch_size=16, seed=3, **fit)
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_whole_number_float_labels_are_classes_as_in_scikit_learn(rng, tmp_path, dtype):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X = rng.normal(size=(120, 5))
    whole = rng.integers(0, 10, 120)
    labels = whole.astype(dtype)  # 0.0 .. 9.0, as scikit-learn's classifiers take them
    net = _fit_on(labels, X)
    expected = preprocessing.LabelEncoder().fit(labels).classes_
    np.testing.assert_array_equal(net.classes_, expected)
    assert net.classes_.dtype == expected.dtype == np.dtype(dtype)
    # the same training as on the integers: the floats are only their names
    assert np.array_equal(_params(net), _params(_fit_on(whole, X)))
    predicted = net.predict_labels(X)
    assert predicted.dtype == np.dtype(dtype)
    assert net.score(X, labels) == np.mean(predicted == labels)
    net.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    assert loaded.classes_.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.predict_labels(X), predicted)


def test_whole_number_floats_label_one_sigmoid_unit_and_chunks(rng):
    X = rng.normal(size=(60, 3))
    labels = (X[:, 0] > 0).astype(float)
    net = _fit_on(labels, X, output="sigmoid", units=1, loss="bce")
    np.testing.assert_array_equal(net.classes_, [0.0, 1.0])
    assert np.array_equal(_params(net), _params(_fit_on(labels[:, None], X, "sigmoid", 1,
                                                        loss="bce")))
    chunked = fastbp.Network([3, 6, 2], output_activation="softmax", seed=0)
    chunked.fit([(X[:30], labels[:30] + 3), (X[30:], labels[30:] + 3)], None, epochs=2)
    np.testing.assert_array_equal(chunked.classes_, [3.0, 4.0])


@pytest.mark.parametrize("output", ["identity", "tanh", "relu"])
def test_whole_number_floats_stay_targets_for_other_outputs(rng, output):
    X = rng.normal(size=(40, 3))
    y = rng.integers(0, 5, 40).astype(float)
    net = _fit_on(y, X, output=output, units=1)
    assert net.classes_ is None
    assert np.array_equal(_params(net), _params(_fit_on(y[:, None], X, output, 1)))


def test_fractional_floats_stay_targets_on_one_sigmoid_unit(rng):
    X = rng.normal(size=(40, 3))
    y = rng.uniform(0, 1, 40)  # soft targets, not classes
    net = _fit_on(y, X, output="sigmoid", units=1, loss="bce")
    assert net.classes_ is None
    assert np.array_equal(_params(net), _params(_fit_on(y[:, None], X, "sigmoid", 1,
                                                        loss="bce")))


@pytest.mark.parametrize("bad,shown", [(0.5, "0.5 at row 3"), (np.nan, "nan at row 3"),
                                       (np.inf, "inf at row 3"), (-2.25, "-2.25 at row 3")])
def test_float_labels_that_are_no_whole_numbers_are_refused(rng, bad, shown):
    X = rng.normal(size=(6, 2))
    labels = np.array([0.0, 1.0, 2.0, bad, 0.0, 1.0])
    net = fastbp.Network([2, 3], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match=r"floats that are all whole numbers.*"
                                         rf"Y holds {shown}, which is no class label"):
        net.fit(X, labels)
    assert net.classes_ is None


def test_score_is_r2_for_regression_outputs(rng):
    X = rng.normal(size=(50, 3))
    Y = X @ rng.normal(size=(3, 2))
    net = fastbp.Network([3, 2], output_activation="identity", seed=0)
    net.fit(X, Y, epochs=200, batch_size=50, optimizer=fastbp.SGD(lr=0.3))
    out = net.predict(X)
    r2 = 1 - ((Y - out) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    assert net.score(X, Y) == pytest.approx(r2.mean(), rel=1e-12)
    assert net.score(X, Y) > 0.99
