"""fastbp on a Dask cluster: the Dask estimators against single-machine fits,
predictions as dask arrays, a worker killed mid-fit, and the searches.

One LocalCluster for the module (2 worker processes of 1 thread on
127.0.0.1, no dashboard); every wait has a timeout.
"""
import os
import pickle
import signal
import time
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fastbp import MLPClassifier, MLPRegressor  # noqa: E402
from helpers import local_dask_client  # noqa: E402
from fastbp.dask import (DaskFitError, DaskMLPClassifier, DaskMLPRegressor,  # noqa: E402
                         hyperband_compatible)

#: seconds any single wait of these tests may take
WAIT = 60


@pytest.fixture(scope="module")
def client():
    yield from local_dask_client(WAIT)


@pytest.fixture(autouse=True)
def no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def three_classes(rows=3000, features=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    return X, y


def relative_difference(first, second) -> float:
    """Largest |a - b| / max |b| over the layers' weights and biases."""
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
               for a, b in zip(first.coefs_ + first.intercepts_,
                               second.coefs_ + second.intercepts_))


# -- lbfgs: the single-machine fit to rounding -------------------------------------

def test_lbfgs_classifier_equals_the_single_machine_fit(client):
    X, y = three_classes()
    # 30 iterations: rounding differences (another summation order of the
    # rows) grow with the iterations, ~1e-13 here after 30, ~1e-9 after 60
    params = dict(hidden_layer_sizes=(16, 8), solver="lbfgs", alpha=1e-3, max_iter=30,
                  random_state=0)
    single = MLPClassifier(**params).fit(X, y)
    distributed_fit = DaskMLPClassifier(client=client, timeout=WAIT, **params).fit(
        da.from_array(X, chunks=700), da.from_array(y, chunks=700))
    assert distributed_fit.n_iter_ == single.n_iter_ == 30
    assert relative_difference(distributed_fit, single) < 1e-10
    assert distributed_fit.loss_ == pytest.approx(single.loss_, rel=1e-10)


def test_lbfgs_regressor_on_a_dataframe_with_weights_equals_the_single_machine_fit(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1200, 6))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
    weights = rng.uniform(0.5, 2.0, size=X.shape[0])
    params = dict(hidden_layer_sizes=(12,), activation="tanh", solver="lbfgs", max_iter=40,
                  random_state=3)
    single = MLPRegressor(**params).fit(X, Y, sample_weight=weights)
    frame = dd.from_pandas(pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]),
                           npartitions=3)
    distributed_fit = DaskMLPRegressor(client=client, timeout=WAIT, **params).fit(
        frame, da.from_array(Y, chunks=(400, 2)), sample_weight=da.from_array(weights, 400))
    assert relative_difference(distributed_fit, single) < 1e-10
    assert distributed_fit.score(frame, da.from_array(Y, chunks=(400, 2))) == pytest.approx(
        single.score(X, Y), abs=1e-9)


def test_lbfgs_balanced_class_weights_equal_the_single_machine_fit(client):
    X, y = three_classes(rows=1000, seed=2)
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=1,
                  class_weight="balanced")
    single = MLPClassifier(**params).fit(X, y)
    distributed_fit = DaskMLPClassifier(client=client, timeout=WAIT, **params).fit(
        da.from_array(X, chunks=300), da.from_array(y, chunks=300))
    assert relative_difference(distributed_fit, single) < 1e-10


# -- adam and sgd: local epochs, averaged ------------------------------------------

def overlapping_blobs(rows, seed):
    """Three Gaussian classes in 20 dimensions that overlap (best accuracy ~0.92)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    centers = rng.normal(size=(3, 20)) * 0.6
    return rng.normal(size=(rows, 20)) + centers[y], y


@pytest.mark.parametrize("solver, learning_rate_init, epochs",
                         [("adam", 0.001, 40), ("sgd", 0.1, 20)])
def test_minibatch_held_out_accuracy_is_that_of_a_single_machine_fit(client, solver,
                                                                     learning_rate_init, epochs):
    X, y = overlapping_blobs(rows=24000, seed=4)
    train, test = slice(0, 4000), slice(4000, None)
    params = dict(hidden_layer_sizes=(32,), solver=solver, learning_rate_init=learning_rate_init,
                  max_iter=epochs, random_state=0)
    single = MLPClassifier(**params).fit(X[train], y[train])
    distributed_fit = DaskMLPClassifier(client=client, timeout=WAIT, **params).fit(
        da.from_array(X[train], chunks=1000), da.from_array(y[train], chunks=1000))
    single_accuracy = single.score(X[test], y[test])
    distributed_accuracy = distributed_fit.to_local().score(X[test], y[test])
    assert single_accuracy > 0.9
    assert abs(distributed_accuracy - single_accuracy) <= 0.01
    assert len(distributed_fit.loss_curve_) == distributed_fit.n_iter_ == epochs


# -- prediction, the local model, parameters -----------------------------------------

def test_predictions_are_dask_arrays_of_the_local_model(client):
    X, y = three_classes(rows=900, seed=5)
    model = DaskMLPClassifier((8,), solver="lbfgs", max_iter=20, random_state=0, client=client,
                              timeout=WAIT).fit(da.from_array(X, chunks=300),
                                                da.from_array(y, chunks=300))
    local = model.to_local()
    assert type(local) is MLPClassifier
    labels = model.predict(da.from_array(X, chunks=250))
    probabilities = model.predict_proba(da.from_array(X, chunks=250))
    assert isinstance(labels, da.Array) and isinstance(probabilities, da.Array)
    np.testing.assert_array_equal(labels.compute(), local.predict(X))
    np.testing.assert_allclose(probabilities.compute(), local.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(local.classes_, [0, 1, 2])
    assert model.score(da.from_array(X, chunks=250), da.from_array(y, chunks=250)) == \
        pytest.approx(local.score(X, y))


def test_clone_shares_the_client_and_pickling_drops_it(client):
    model = DaskMLPClassifier((4,), client=client, alpha=0.5)
    copied = clone(model)
    assert copied.client is client and copied.alpha == 0.5
    assert pickle.loads(pickle.dumps(model)).client is None


def test_parameters_are_the_local_estimators_plus_client_and_timeout():
    import inspect

    def described(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    extras = [("client", inspect.Parameter.KEYWORD_ONLY, None),
              ("timeout", inspect.Parameter.KEYWORD_ONLY, 300.0)]
    assert described(DaskMLPClassifier) == described(MLPClassifier) + extras
    # the Dask regressor has no loss: it fits the squared error
    assert described(DaskMLPRegressor) == described(MLPRegressor)[1:] + extras
    model = DaskMLPRegressor((3,), "tanh", alpha=0.5, timeout=7.0)
    assert (model.hidden_layer_sizes, model.activation, model.alpha, model.timeout,
            model.client, model.solver) == ((3,), "tanh", 0.5, 7.0, None, "adam")
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(TypeError, match="DaskMLPRegressor: got an unexpected keyword argument "
                                        "'loss'"):
        DaskMLPRegressor(loss="poisson")
    with pytest.raises(TypeError, match="DaskMLPClassifier: too many positional arguments"):
        DaskMLPClassifier((3,), "tanh", "adam")


def test_in_memory_input_is_refused_with_its_type(client):
    model = DaskMLPClassifier((4,), client=client)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        model.fit(np.zeros((4, 2)), da.zeros(4, chunks=2))
    with pytest.raises(TypeError, match="list"):
        model.fit(da.zeros((4, 2), chunks=2), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="rows"):
        model.fit(da.zeros((4, 2), chunks=2), da.zeros(5, chunks=2))


# -- search on the cluster -------------------------------------------------------------

def test_grid_search_under_joblib_dask_backend(client):
    joblib = pytest.importorskip("joblib")
    from sklearn.model_selection import GridSearchCV
    X, y = three_classes(rows=600, seed=6)
    grid = {"hidden_layer_sizes": [(8,), (8, 8)], "alpha": [1e-4, 1e-1]}
    search = GridSearchCV(MLPClassifier(solver="lbfgs", max_iter=30, random_state=0), grid, cv=2)
    with joblib.parallel_backend("dask", wait_for_workers_timeout=WAIT):
        search.fit(X, y)
    local = GridSearchCV(MLPClassifier(solver="lbfgs", max_iter=30, random_state=0), grid, cv=2)
    local.fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], atol=1e-12)


def test_incremental_streams_blocks_through_partial_fit(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = overlapping_blobs(rows=3000, seed=7)
    model = wrappers.Incremental(MLPClassifier((16,), learning_rate_init=0.01, random_state=0),
                                 scoring="accuracy")
    Xd, yd = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    for _ in range(3):
        model.partial_fit(Xd, yd, classes=[0, 1, 2])
    assert model.estimator_.t_ == 3 * X.shape[0]
    assert model.score(Xd, yd) > 0.85


def test_hyperband_search_where_dask_ml_allows_it(client):
    model_selection = pytest.importorskip("dask_ml.model_selection")
    X, y = overlapping_blobs(rows=1500, seed=8)
    Xd, yd = da.from_array(X, chunks=300), da.from_array(y, chunks=300)

    def search(grid):
        return model_selection.HyperbandSearchCV(
            MLPClassifier(learning_rate_init=0.01, random_state=0), grid, max_iter=9,
            random_state=0)

    # grids of at least max_iter=9 candidates, the most a bracket draws: a smaller
    # one makes scikit-learn's sampler warn that it draws every candidate instead
    same_depth = {"hidden_layer_sizes": [(8,), (16,), (32,)], "alpha": [1e-4, 1e-3, 1e-2]}
    if not hyperband_compatible():
        # dask/dask-ml#1016: dask-ml 2025.1.0 calls dask.persist in its event loop
        with pytest.raises(RuntimeError, match="asynchronous Client in a synchronous context"):
            search(same_depth).fit(Xd, yd, classes=[0, 1, 2])
        return
    fitted = search(same_depth).fit(Xd, yd, classes=[0, 1, 2])
    assert fitted.best_score_ > 0.8
    # dask-ml 2025.1.0 builds cv_results_ with np.array over the values of a
    # parameter: tuples of different lengths are ragged, which NumPy >= 1.24 refuses
    mixed_depth = {"hidden_layer_sizes": [(8,), (8, 8), (16, 8, 4)], "alpha": [1e-4, 1e-3, 1e-2]}
    with pytest.raises(ValueError, match="inhomogeneous"):
        search(mixed_depth).fit(Xd, yd, classes=[0, 1, 2])


# -- a worker killed mid-fit -----------------------------------------------------------

class WorkerKillingClassifier(DaskMLPClassifier):
    """Kills one worker process at the given evaluation of the lbfgs loss."""

    kill_at_evaluation = 5

    def _with_retries(self, work, *args):
        self.evaluations_ = getattr(self, "evaluations_", 0) + 1
        if self.evaluations_ == self.kill_at_evaluation:
            pids = self.client.run(os.getpid)
            os.kill(sorted(pids.values())[0], signal.SIGKILL)
        return super()._with_retries(work, *args)


def test_a_worker_killed_mid_fit_ends_in_a_recovered_fit_or_a_clear_error(client):
    X, y = three_classes(rows=2000, seed=9)
    params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=25, random_state=0)
    started = time.monotonic()
    model = WorkerKillingClassifier(client=client, timeout=20, **params)
    try:
        model.fit(da.from_array(X, chunks=500), da.from_array(y, chunks=500))
        recovered = True
    except DaskFitError:
        recovered = False
    assert time.monotonic() - started < 60
    assert model.evaluations_ > model.kill_at_evaluation
    assert all(np.isfinite(W).all() for W in model.to_local().coefs_)
    print(f"killed a worker at evaluation {model.kill_at_evaluation}: "
          f"{'recovered' if recovered else 'DaskFitError'} after "
          f"{time.monotonic() - started:.1f} s, {model.evaluations_} evaluations")
    if recovered:  # the lost block was recomputed: still the same iterations
        single = MLPClassifier(**params).fit(X, y)
        assert relative_difference(model, single) < 1e-10
    client.wait_for_workers(2, timeout=WAIT)


class TimeoutShrinkingClassifier(DaskMLPClassifier):
    """Waits at most a microsecond from the given evaluation of the lbfgs loss on."""

    shrink_at_evaluation = 4

    def _with_retries(self, work, *args):
        self.evaluations_ = getattr(self, "evaluations_", 0) + 1
        if self.evaluations_ == self.shrink_at_evaluation:
            self.timeout = 1e-6
        return super()._with_retries(work, *args)


def test_a_timed_out_iteration_is_a_clear_error_keeping_finite_weights(client):
    X, y = three_classes(rows=600, seed=10)
    model = TimeoutShrinkingClassifier((8,), solver="lbfgs", max_iter=20, random_state=0,
                                       client=client, timeout=WAIT)
    with pytest.raises(DaskFitError, match=r"timeout 1e-06 s"):
        model.fit(da.from_array(X, chunks=200), da.from_array(y, chunks=200))
    local = model.to_local()
    assert all(np.isfinite(W).all() for W in local.coefs_)
    assert 0 < model.n_iter_ < 20
    assert np.isfinite(model.loss_)
