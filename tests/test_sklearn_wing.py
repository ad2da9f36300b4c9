"""The scikit-learn wing's seams (issue #27): the parameters' rules declared
once, the one path for X, the public names the wing reads (Network's
layer_params, the estimators' network_), and fit on rows that workers hold
(fastbp.dask's way in), here with the rows in this process."""
import copy
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

import fastbp  # noqa: E402
from fastbp import MLPClassifier, MLPRegressor  # noqa: E402
from fastbp._mlp_solvers import DistributedRows  # noqa: E402
from fastbp._objective import weighted_sums  # noqa: E402
from fastbp._validation import as_matrix  # noqa: E402


def test_layer_params_are_writable_views_that_a_replacement_leaves_behind():
    net = fastbp.Network([3, 4, 2], activation="tanh", output_activation="identity", seed=0)
    (W0, b0), (W1, b1) = net.layer_params()
    assert (W0.shape, b0.shape, W1.shape, b1.shape) == ((3, 4), (4,), (4, 2), (2,))
    W1[2, 1] = 7.5
    b0[3] = -2.0
    assert net.weights[1][2, 1] == 7.5 and net.biases[0][3] == -2.0
    net.replace_params(np.zeros(net.n_params))
    assert W1[2, 1] == 7.5  # the old array, left as it was
    assert not np.any(net.weights[1]) and not np.any(net.biases[0])


def test_network_is_the_fitted_network_holding_assigned_coefs():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    model = MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=5, random_state=0)
    assert not hasattr(model, "network_")
    with pytest.raises(NotFittedError):
        model.network_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    W = np.full((3, 5), 0.25)
    model.coefs_[0] = W  # an assigned item is copied in before the network is used
    network = model.network_
    assert isinstance(network, fastbp.Network) and list(network.sizes) == [3, 5, 1]
    np.testing.assert_array_equal(network.weights[0], W)
    np.testing.assert_array_equal(network.predict(X).ravel(), model.predict_proba(X)[:, 1])


def test_an_empty_partition_passes_only_where_allowed():
    with pytest.raises(ValueError, match=r"X is empty: shape \(0, 3\)"):
        as_matrix(np.empty((0, 3), np.float32), np.dtype(np.float64), "X")
    empty = as_matrix(np.empty((0, 3), np.float32), np.dtype(np.float64), "X", allow_empty=True)
    assert empty.shape == (0, 3) and empty.dtype == np.float64 and empty.flags.c_contiguous
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        as_matrix(np.array([1.0, np.nan]), np.dtype(np.float64), "y", allow_vector=True,
                  allow_empty=True)


def test_the_dask_estimators_check_the_local_rules_before_any_work():
    dask = pytest.importorskip("fastbp.dask")
    for dask_class, local_class in ((dask.DaskMLPClassifier, MLPClassifier),
                                    (dask.DaskMLPRegressor, MLPRegressor)):
        rules = dict(dask_class._parameter_constraints)
        assert rules.pop("client") == rules.pop("timeout") == "no_validation"
        local = {name: rule for name, rule in local_class._parameter_constraints.items()
                 if name != "loss"}  # the Dask regressor fits the squared error only
        assert rules == local
        # no cluster is asked anything: the client given is no client at all
        with pytest.raises(InvalidParameterError, match="'alpha' parameter of " +
                           dask_class.__name__):
            dask_class(alpha=-1.0, client=object()).fit(None, None)
        with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
            dask_class(hidden_layer_sizes=(4, 0), client=object()).fit(None, None)


def in_process_rows(parts, target_of, n_outputs, binarizer=None):
    """DistributedRows over ``parts`` (lists of (X, y) in this process),
    converted by ``target_of`` when placed."""
    placed = []

    def place(dtype, join):
        placed[:] = [(np.ascontiguousarray(X, dtype), target_of(y).astype(dtype))
                     for X, y in parts]
        return len(placed)

    def summed(params, sizes, acts, code):
        sums = [weighted_sums(X, Y, None, params, sizes, acts, code) for X, Y in placed]
        return tuple(sum(values) for values in zip(*sums))

    def run_round(epoch, seed_base, batch_size):
        results = []
        for i, (X, Y) in enumerate(placed):
            # a copy of the bound method, as a worker's (pickled) copy of the estimator
            result = copy.deepcopy(epoch)(X, Y, None, seed_base + i, batch_size, 1)
            result.update(rows=X.shape[0], weight_sum=float(X.shape[0]))
            results.append(result)
        return results

    X_all = np.concatenate([X for X, _ in parts])
    return DistributedRows(n_features=X_all.shape[1], n_outputs=n_outputs,
                           n_rows=X_all.shape[0], dtype=np.dtype(np.float64),
                           binarizer=binarizer, place=place, weighted_sums=summed,
                           run_round=run_round)


def test_lbfgs_on_rows_held_in_parts_is_the_fit_on_all_rows():
    from sklearn.preprocessing import LabelBinarizer
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    params = dict(hidden_layer_sizes=(7,), solver="lbfgs", max_iter=15, random_state=0)
    binarizer = LabelBinarizer().fit(y)
    rows = in_process_rows([(X[:120], y[:120]), (X[120:], y[120:])], binarizer.transform, 3,
                           binarizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        parted = MLPClassifier(**params).fit(rows)
        whole = MLPClassifier(**params).fit(X, y)
    assert parted.n_iter_ == whole.n_iter_ == 15
    np.testing.assert_array_equal(parted.classes_, whole.classes_)
    for ours, theirs in zip(parted.coefs_ + parted.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(parted.predict(X), whole.predict(X))


def test_averaged_epochs_of_one_part_are_the_epochs_of_its_rows():
    # one part: the average of one result is that result, so each round is
    # the estimator's own epoch over the rows in the round's order
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 5))
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=200)
    params = dict(hidden_layer_sizes=(6,), solver="adam", max_iter=4, random_state=1,
                  shuffle=False, batch_size=32)
    rows = in_process_rows([(X, y)], lambda t: t.reshape(-1, 1), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        averaged = MLPRegressor(**params).fit(rows)
        local = MLPRegressor(**params).fit(X, y)
    assert averaged.n_iter_ == local.n_iter_ == 4 and averaged.t_ == local.t_ == 800
    np.testing.assert_allclose(averaged.loss_curve_, local.loss_curve_, rtol=1e-12)
    for ours, theirs in zip(averaged.coefs_ + averaged.intercepts_,
                            local.coefs_ + local.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_averaged_epochs_stop_by_scikit_learns_rule_as_the_local_fit():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 4))
    y = X[:, 0] - X[:, 1]
    params = dict(hidden_layer_sizes=(5,), solver="sgd", learning_rate="adaptive", max_iter=60,
                  random_state=2, shuffle=False, batch_size=40, tol=10.0, n_iter_no_change=2)
    rows = in_process_rows([(X, y)], lambda t: t.reshape(-1, 1), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopped, so neither warns
        averaged = MLPRegressor(**params).fit(rows)
        local = MLPRegressor(**params).fit(X, y)
    # the adaptive rate divides by 5 on each plateau until it falls below 1e-6
    assert averaged.n_iter_ == local.n_iter_ < 60
    np.testing.assert_allclose(averaged.loss_curve_, local.loss_curve_, rtol=1e-12)
