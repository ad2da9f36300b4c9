"""Sparse X: every entry point agrees with the same X made dense, to rounding.

The dense path is itself checked against the pure-Python reference, finite
differences and PyTorch elsewhere; here it is the oracle for the CSR products
(csrc/inputs.pxi), on random sparsity patterns with empty rows and columns.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

import fastbp
from fastbp import LOSSES, _kernels, _runtime
from fastbp._sparse import CsrRows, as_csr_rows

# short fits on purpose: the estimators' ConvergenceWarning is expected
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TOL = {np.float64: 1e-12, np.float32: 1e-5}
FORMATS = ["csr_matrix", "csr_array", "csc_matrix", "csc_array", "coo_array"]


def random_sparse(n, d, density, seed, empty_rows=(0, 3), empty_columns=(1, 4)):
    """A CSR matrix with the given rows and columns empty, duplicates summed."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, random_state=rng, format="lil",
                  data_rvs=lambda k: rng.normal(size=k))
    for r in empty_rows:
        X[r, :] = 0
    for c in empty_columns:
        X[:, c] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def as_format(X, name):
    kind = name.split("_")[0]
    return getattr(sp, f"{kind}_array" if name.endswith("array") else f"{kind}_matrix")(X)


def close(a, b, dtype):
    scale = max(1.0, float(np.max(np.abs(b))))
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) \
        <= TOL[dtype] * scale * 10


@pytest.fixture
def threads_everywhere(monkeypatch):
    """fastbp's own threads even for these small calls."""
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    monkeypatch.setattr(_runtime, "PREDICT_THREADS_MIN_FLOPS", 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fmt", FORMATS)
def test_predict_loss_gradients_match_dense(dtype, fmt):
    X = random_sparse(60, 30, 0.15, seed=1)
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(60, 4))
    net = fastbp.Network([30, 7, 5, 4], activation=["tanh", "relu"],
                         output_activation="identity", dtype=dtype, seed=3)
    Xs, Xd = as_format(X, fmt), X.toarray()
    assert close(net.predict(Xs), net.predict(Xd), dtype)
    for l2 in (0.0, 0.3):
        assert abs(net.loss(Xs, Y, l2=l2) - net.loss(Xd, Y, l2=l2)) <= TOL[dtype] * 10
        for sparse_grads, dense_grads in zip(net.gradients(Xs, Y, l2=l2),
                                             net.gradients(Xd, Y, l2=l2)):
            for g_s, g_d in zip(sparse_grads, dense_grads):
                assert g_s.dtype == dtype
                assert close(g_s, g_d, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer, batch_size", [
    (lambda: fastbp.SGD(lr=0.05), 1),              # per-sample: the minibatch loop at m = 1
    (lambda: fastbp.SGD(lr=0.05), 8),              # the update folded into the products
    (lambda: fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True), 8),
    (lambda: fastbp.Adam(lr=0.01), 13),            # a short last batch
    (lambda: fastbp.Adam(lr=0.01), 100),           # full batch
])
@pytest.mark.parametrize("threads", [1, 2])
def test_fit_matches_dense(dtype, optimizer, batch_size, threads, threads_everywhere):
    X = random_sparse(100, 40, 0.1, seed=4)
    labels = np.random.default_rng(5).integers(0, 3, 100)
    weights = np.random.default_rng(6).uniform(0.5, 2, 100)
    nets = [fastbp.Network([40, 6, 3], activation="tanh", output_activation="softmax",
                           dtype=dtype, seed=7) for _ in range(2)]
    histories = [net.fit(data, labels, loss="cross_entropy", optimizer=optimizer(),
                         epochs=3, batch_size=batch_size, l2=0.1, seed=8,
                         sample_weight=weights, n_threads=threads)
                 for net, data in zip(nets, (X, X.toarray()))]
    assert np.allclose(histories[0]["loss"], histories[1]["loss"], rtol=TOL[dtype] * 100,
                       atol=0)
    for W_s, W_d in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        assert close(W_s, W_d, dtype)


def test_fit_on_threads_of_its_own_matches_one_thread():
    """The threaded minibatch loop (each thread its rows of W_0) against one
    thread, called on the Trainer so the thread count is not a heuristic's."""
    X = CsrRows(*_csr_arrays(random_sparse(64, 50, 0.2, seed=9)), 50)
    T = np.random.default_rng(10).normal(size=(64, 2))
    sizes, acts = np.array([50, 9, 2], np.intc), np.array([3, 0], np.intc)
    params = {}
    for threads in (1, 2, 3):
        p = np.random.default_rng(11).normal(size=(50 + 1) * 9 + (9 + 1) * 2)
        trainer = _kernels.Trainer(sizes, acts, LOSSES["mse"], 0.05, 16, n_threads=threads)
        trainer.set_params(p)
        trainer.set_data(X, T)
        trainer.set_optimizer("adam", 0.01, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
                              {"first_moment": np.zeros_like(p), "second_moment": np.zeros_like(p)})
        status, *_ = trainer.run(0, 64)
        assert status == 0
        params[threads] = p
    assert trainer.n_threads == 3
    assert np.allclose(params[2], params[1], rtol=0, atol=1e-12)
    assert np.allclose(params[3], params[1], rtol=0, atol=1e-12)


def _csr_arrays(X):
    return (X.data.astype(np.float64), X.indices.astype(np.int32), X.indptr.astype(np.int64))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 12), density=st.floats(0, 1),
       seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float64, np.float32]))
def test_any_sparsity_pattern_predicts_and_differentiates_as_dense(n, d, density, seed, dtype):
    X = sp.random(n, d, density=density, random_state=seed, format="csr")
    Y = np.random.default_rng(seed).normal(size=(n, 2))
    net = fastbp.Network([d, 3, 2], activation="sigmoid", output_activation="identity",
                         dtype=dtype, seed=seed)
    assert close(net.predict(X), net.predict(X.toarray()), dtype)
    for g_s, g_d in zip(net.gradients(X, Y)[0], net.gradients(X.toarray(), Y)[0]):
        assert close(g_s, g_d, dtype)


def test_predict_in_chunks_and_threads_matches_dense(monkeypatch, threads_everywhere):
    from fastbp import _objective, network
    monkeypatch.setattr(network, "CHUNK_ROWS", 7)  # several chunks: indptr views
    monkeypatch.setattr(_objective, "OBJECTIVE_CHUNK_ROWS", 7)  # the loss's too
    X = random_sparse(50, 20, 0.3, seed=12)
    net = fastbp.Network([20, 5, 3], activation="relu", output_activation="softmax", seed=1)
    expected = net.predict(X.toarray(), n_threads=1)
    for threads in (1, 2):
        assert close(net.predict(X, n_threads=threads), expected, np.float64)
    Y = np.random.default_rng(0).integers(0, 3, 50)
    assert abs(net.loss(X, Y, "cross_entropy") - net.loss(X.toarray(), Y, "cross_entropy")) \
        < 1e-12


def test_validation_split_and_data_take_sparse_rows():
    X = random_sparse(80, 15, 0.3, seed=13)
    labels = np.random.default_rng(14).integers(0, 2, 80)
    nets = [fastbp.Network([15, 4, 2], activation="tanh", output_activation="softmax", seed=2)
            for _ in range(2)]
    results = [net.fit(data, labels, loss="cross_entropy", epochs=2, batch_size=10,
                       validation_split=0.25, seed=3)
               for net, data in zip(nets, (X, X.toarray()))]
    assert np.allclose(results[0]["val_loss"], results[1]["val_loss"], rtol=1e-12, atol=0)
    nets[0].fit(X[:60], labels[:60], loss="cross_entropy", validation_data=(X[60:], labels[60:]))


def test_csr_rows_slices_and_gathers_like_scipy():
    X = random_sparse(20, 9, 0.4, seed=15)
    rows = as_csr_rows(X, np.float64, "X")
    assert rows.shape == (20, 9) and rows.nnz == X.nnz
    view = rows[5:12]
    assert view.values is rows.values  # a slice shares the arrays: only indptr is sliced
    np.testing.assert_array_equal(view.to_scipy().toarray(), X[5:12].toarray())
    picked = np.array([3, 0, 3, 19])
    np.testing.assert_array_equal(rows[picked].to_scipy().toarray(), X[picked].toarray())
    mask = np.arange(20) % 3 == 0
    np.testing.assert_array_equal(rows[mask].to_scipy().toarray(), X[mask].toarray())
    assert rows[4:4].shape == (0, 9)


def test_conversion_copies_only_what_it_must():
    X = random_sparse(10, 6, 0.5, seed=16)
    X.indptr = X.indptr.astype(np.int64)
    rows = as_csr_rows(X, np.float64, "X")
    assert np.shares_memory(rows.values, X.data) and np.shares_memory(rows.indptr, X.indptr)
    rows32 = as_csr_rows(X, np.float32, "X")
    assert rows32.dtype == np.float32 and not np.shares_memory(rows32.values, X.data)


@pytest.mark.parametrize("bad, message", [
    (np.nan, r"X contains 1 NaN or infinite value\(s\), first at \[2, 5\]"),
    (np.inf, r"X contains 1 NaN or infinite value\(s\), first at \[2, 5\]"),
])
def test_non_finite_values_are_named_by_row_and_column(bad, message):
    X = sp.lil_matrix((4, 7))
    X[1, 1] = 1.0
    X[2, 5] = bad
    net = fastbp.Network([7, 2, 1], seed=0)
    for call in (lambda: net.predict(X), lambda: net.fit(X, np.zeros(4)),
                 lambda: net.loss(X, np.zeros(4)), lambda: net.gradients(X, np.zeros(4))):
        with pytest.raises(ValueError, match=message):
            call()


def test_values_that_overflow_float32_are_named():
    X = sp.csr_matrix(np.array([[0, 0, 1e300], [1, 0, 0]]))
    net = fastbp.Network([3, 2, 1], dtype="float32", seed=0)
    with pytest.raises(ValueError, match=r"X\[0, 2\] = 1e\+300 overflows float32"):
        net.predict(X)


def test_bad_sparse_input_is_refused_clearly():
    net = fastbp.Network([3, 2, 1], seed=0)
    with pytest.raises(ValueError, match="X has 4 columns, the network expects 3"):
        net.predict(sp.csr_matrix((2, 4)))
    with pytest.raises(ValueError, match=r"X is empty: shape \(0, 3\)"):
        net.predict(sp.csr_matrix((0, 3)))
    with pytest.raises(TypeError, match="X must hold real numbers"):
        net.predict(sp.csr_matrix(np.ones((2, 3), complex)))
    sizes, acts = np.array([3, 1], np.intc), np.array([0], np.intc)
    work, out = np.empty(64), np.empty((2, 1))
    params = np.zeros(4)
    good = (np.ones(2), np.array([0, 2], np.int32), np.array([0, 1, 2], np.int64))
    for values, indices, indptr, message in [
            (good[0], np.array([0, 3], np.int32), good[2], "column 3 outside"),
            (good[0], np.array([0, -1], np.int32), good[2], "column -1 outside"),
            (good[0], good[1], np.array([0, 2, 1], np.int64), "indptr decreases"),
            (good[0], good[1], np.array([0, 1, 3], np.int64), "outside its 2 values"),
            (good[0], good[1].astype(np.int64), good[2], "indices must be a C-contiguous"),
            (good[0].astype(np.float32), good[1], good[2], "values must be a C-contiguous")]:
        with pytest.raises((ValueError, TypeError), match=message):
            _kernels.Predictor(sizes, acts, params).predict(CsrRows(values, indices, indptr, 3),
                                                            out, work)


def test_sparse_targets_and_weights_are_densified():
    X = random_sparse(12, 5, 0.5, seed=17, empty_rows=(), empty_columns=())
    Y = np.random.default_rng(1).normal(size=(12, 2))
    net = fastbp.Network([5, 3, 2], output_activation="identity", seed=0)
    assert net.loss(X, sp.csr_matrix(Y)) == net.loss(X, Y)


@pytest.mark.parametrize("solver, early_stopping", [
    ("adam", False), ("adam", True), ("sgd", False), ("lbfgs", False)])
@pytest.mark.parametrize("fmt", ["csr_matrix", "csc_array"])
def test_estimators_fit_sparse_to_the_dense_weights(solver, early_stopping, fmt):
    X = random_sparse(120, 25, 0.2, seed=18)
    y = np.random.default_rng(19).integers(0, 3, 120)
    target = np.asarray(X.sum(axis=1)).ravel()
    for estimator, labels in ((fastbp.MLPClassifier, y), (fastbp.MLPRegressor, target)):
        fits = [estimator(hidden_layer_sizes=(6,), solver=solver, early_stopping=early_stopping, max_iter=8,
                          random_state=0).fit(data, labels)
                for data in (as_format(X, fmt), X.toarray())]
        for W_s, W_d in zip(fits[0].coefs_ + fits[0].intercepts_,
                            fits[1].coefs_ + fits[1].intercepts_):
            assert close(W_s, W_d, np.float64)
        assert close(fits[0].predict(as_format(X, fmt)), fits[1].predict(X.toarray()),
                     np.float64)
        assert fits[0].n_features_in_ == 25


def test_partial_fit_and_float32_take_sparse():
    X = random_sparse(90, 12, 0.3, seed=20).astype(np.float32)
    y = np.random.default_rng(21).integers(0, 2, 90)
    models = [fastbp.MLPClassifier((4,), random_state=0) for _ in range(2)]
    for model, data in zip(models, (X, X.toarray())):
        model.partial_fit(data[:40], y[:40], classes=[0, 1])
        model.partial_fit(data[40:], y[40:])
    assert models[0].coefs_[0].dtype == np.float32
    assert close(models[0].predict_proba(X), models[1].predict_proba(X.toarray()), np.float32)


def test_estimator_on_sparse_matches_scikit_learn():
    from sklearn.neural_network import MLPClassifier
    X = random_sparse(150, 30, 0.15, seed=22)
    y = np.random.default_rng(23).integers(0, 3, 150)
    ours = fastbp.MLPClassifier((8,), max_iter=5, random_state=1).fit(X, y)
    theirs = MLPClassifier((8,), max_iter=5, random_state=1).fit(X, y)
    for W_ours, W_theirs in zip(ours.coefs_, theirs.coefs_):
        assert close(W_ours, W_theirs, np.float64)


def test_a_diverged_sparse_adam_batch_leaves_the_trainer_as_new():
    """Adam on a sparse X marks the rows of W_0 a batch reaches (csrc
    fastbp_optim.h); a batch that stops on a non-finite loss must unmark
    them, or the next run would read stale gradient rows."""
    X = CsrRows(*_csr_arrays(random_sparse(40, 30, 0.2, seed=24)), 30)
    T = np.random.default_rng(25).normal(size=(40, 2))
    sizes, acts = np.array([30, 5, 2], np.intc), np.array([1, 0], np.intc)
    start = np.random.default_rng(26).normal(size=(30 + 1) * 5 + (5 + 1) * 2)

    def trainer(params):
        t = _kernels.Trainer(sizes, acts, LOSSES["mse"], 0.01, 8)
        t.set_params(params)
        t.set_data(X, T)
        t.set_optimizer("adam", 0.01, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
                        {"first_moment": np.zeros_like(params),
                         "second_moment": np.zeros_like(params)})
        return t

    used = trainer(p_used := start.copy())
    T[0, 0] = np.inf  # the first batch's loss is not finite
    assert used.run(0, 40)[0] == 1
    T[0, 0] = 0.0
    fresh = trainer(p_fresh := start.copy())
    # same start (the failed batch changed nothing), same steps from here
    np.testing.assert_array_equal(p_used, start)
    assert used.run(0, 40)[0] == 0 and fresh.run(0, 40)[0] == 0
    np.testing.assert_array_equal(p_used, p_fresh)
