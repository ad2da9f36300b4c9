"""fastbp.LBFGS in Network.fit: the estimators' lbfgs driver, step for step."""
import threading

import numpy as np
import pytest
import scipy.sparse
from helpers import assert_close

import fastbp
from fastbp.losses import HuberLoss


def classification(seed=0, m=60):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 4))
    y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(m, 3)), axis=1)
    return X, y


def test_lbfgs_in_fit_is_the_estimators_run_bit_for_bit():
    pytest.importorskip("sklearn")
    X, y = classification()
    clf = fastbp.MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", solver="lbfgs",
                               alpha=0.01, max_iter=3, random_state=0, n_threads=1,
                               warm_start=True)
    with pytest.warns(Warning):  # 3 iterations do not converge
        clf.fit(X, y)
    net = fastbp.Network([4, 6, 3], "tanh", "softmax")
    net.set_weights(clf.coefs_, clf.intercepts_)
    clf.set_params(max_iter=25)
    with pytest.warns(Warning):
        clf.fit(X, y)  # a warm start: a new L-BFGS run from the weights above
    history = net.fit(X, y, optimizer=fastbp.LBFGS(), epochs=25, l2=0.01, n_threads=1)
    for got, want in zip(net.weights + net.biases, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(got, want)
    assert len(history["loss"]) == clf.n_iter_ == 25
    assert_close(history["loss"][-1], clf.loss_)
    assert np.all(np.diff(history["loss"]) < 0)  # the line search's sufficient decrease
    assert_close(np.array(history["data_loss"]) + history["penalty"], history["loss"])
    assert history["lr"] == [1.0] * 25


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lbfgs_learns_in_both_dtypes_on_any_threads_and_sparse_x(dtype):
    X, y = classification(1, m=80)
    net = fastbp.Network([4, 8, 3], "tanh", "softmax", dtype=dtype, seed=0)
    runs = []
    for threads in (1, 2):
        copy = net.copy()
        history = copy.fit(X, y, optimizer=fastbp.LBFGS(), epochs=15, n_threads=threads,
                           l2=0.1)
        runs.append((copy.params, history["loss"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    losses = runs[0][1]
    assert len(losses) == 15 and losses[-1] < 0.5 * net.loss(X, y)
    sparse = net.copy()
    sparse.fit(scipy.sparse.csr_matrix(X), y, optimizer=fastbp.LBFGS(), epochs=3, l2=0.1)
    dense = net.copy()
    dense.fit(X, y, optimizer=fastbp.LBFGS(), epochs=3, l2=0.1)
    assert_close(sparse.params, dense.params, dtype, rtol=1e-9 if dtype == "float64" else 1e-4)


def test_lbfgs_honours_l2_and_sample_weights_and_losses():
    X, y = classification(2)
    net = fastbp.Network([4, 5, 3], "tanh", "softmax", seed=1)
    plain, decayed, weighted = net.copy(), net.copy(), net.copy()
    plain.fit(X, y, optimizer=fastbp.LBFGS(), epochs=30)
    decayed.fit(X, y, optimizer=fastbp.LBFGS(), epochs=30, l2=5.0)
    assert np.linalg.norm(decayed.weights[0]) < np.linalg.norm(plain.weights[0])
    weights = np.where(y == 0, 3.0, 1.0)
    weighted.fit(X, y, optimizer=fastbp.LBFGS(), epochs=30, sample_weight=weights)
    assert (weighted.params != plain.params).any()
    # the gradient at the end is small: an L-BFGS minimum of the weighted J
    regressor = fastbp.Network([4, 5, 1], "tanh", "identity", seed=1)
    target = X[:, :1] * 2.0
    regressor.fit(X, target, loss=HuberLoss(0.1), optimizer=fastbp.LBFGS(tol=1e-8), epochs=200)
    assert np.abs(regressor.objective(X, target, loss=HuberLoss(0.1))[1]).max() < 1e-3


def test_lbfgs_stops_when_it_converges_and_by_callbacks_and_early_stopping():
    X, y = classification(3)
    net = fastbp.Network([4, 3], "identity", "softmax", seed=0)
    history = net.fit(X, y, optimizer=fastbp.LBFGS(tol=1e-3), epochs=500, l2=1.0)
    assert 1 < len(history["loss"]) < 500
    assert np.abs(net.objective(X, y, l2=1.0)[1]).max() <= 1e-3

    calls = []
    net = fastbp.Network([4, 6, 3], "tanh", "softmax", seed=0)
    history = net.fit(X, y, optimizer=fastbp.LBFGS(), epochs=50,
                      callbacks=[lambda epoch, history, network: calls.append(epoch) or epoch == 2],
                      validation_data=(X[:10], y[:10]))
    assert calls == [0, 1, 2] and len(history["val_loss"]) == 3
    assert history["val_loss"][-1] == net.loss(X[:10], y[:10])

    # a small net overfits 10 rows of 3 classes: the validation loss turns up
    stopping = fastbp.EarlyStopping(patience=2, monitor="val_loss")
    net = fastbp.Network([4, 16, 3], "tanh", "softmax", seed=0)
    history = net.fit(X[:10], y[:10], optimizer=fastbp.LBFGS(), epochs=300,
                      validation_data=(X[10:], y[10:]), early_stopping=stopping)
    epochs = len(history["val_loss"])
    assert epochs < 300 and stopping.best_epoch == epochs - 3
    # the best iteration's weights came back
    assert net.loss(X[10:], y[10:]) == min(history["val_loss"]) == stopping.best


def test_lbfgs_cleans_up_after_an_interrupt():
    X, y = classification(4)
    net = fastbp.Network([4, 6, 3], "tanh", "softmax", seed=0)
    published = []

    def interrupt(epoch, history, network):
        published.append(network.params.copy())
        if epoch == 1:
            raise KeyboardInterrupt
    threads = threading.active_count()
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, y, optimizer=fastbp.LBFGS(), epochs=20, callbacks=[interrupt])
    assert threading.active_count() == threads
    assert len(info.value.history["loss"]) == 2
    np.testing.assert_array_equal(net.params, published[-1])
    net.fit(X, y, optimizer=fastbp.LBFGS(), epochs=2)  # the network is free again


def test_lbfgs_refuses_chunks_and_bad_parameters():
    X, y = classification()
    net = fastbp.Network([4, 3], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match="not chunks"):
        net.fit([(X, y)], None, optimizer=fastbp.LBFGS())
    with pytest.raises(ValueError, match="tol"):
        fastbp.LBFGS(tol=-1.0)
    with pytest.raises(ValueError, match="max_fun"):
        fastbp.LBFGS(max_fun=0)
    assert fastbp.LBFGS is fastbp.optim.LBFGS
    assert repr(fastbp.LBFGS()) == "LBFGS(tol=0.0001, max_fun=15000)"
