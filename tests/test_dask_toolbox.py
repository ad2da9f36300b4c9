"""The Dask estimators' dropout, clip_norm and ema (the minibatch solvers'
averaged local epochs): the local estimator's steps on one part, the
moving average over rounds against a NumPy recurrence, clipped rounds,
reproducible masks, and lbfgs's refusal.

One LocalCluster for the module (2 worker processes of 1 thread on
127.0.0.1, no dashboard); every wait has a timeout.
"""
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
pytest.importorskip("sklearn")

from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from fastbp import MLPClassifier  # noqa: E402
from fastbp.dask import DaskMLPClassifier  # noqa: E402
from helpers import local_dask_client  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
WAIT = 60  # seconds any single wait may take


@pytest.fixture(scope="module")
def client():
    yield from local_dask_client(WAIT)


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    return X, y


def in_parts(X, y, parts):
    rows = X.shape[0] // parts
    return da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)


def params_of(estimator):
    return np.concatenate([W.ravel() for W in estimator.coefs_ + estimator.intercepts_])


@pytest.mark.parametrize("settings", [dict(ema=0.9), dict(clip_norm=0.05),
                                      dict(solver="sgd", ema=0.9, clip_norm=0.05,
                                           weight_decay=0.01)])
def test_one_part_takes_the_local_estimators_steps(client, rows, settings):
    # one worker's block, unshuffled: each round is an epoch of the local
    # fit, from its weights, optimiser state and average, bit for bit
    X, y = rows
    params = dict(hidden_layer_sizes=(8,), shuffle=False, batch_size=40, max_iter=4, tol=0.0,
                  random_state=0, n_threads=1, learning_rate_init=0.01, **settings)
    local = MLPClassifier(**params).fit(X, y)
    remote = DaskMLPClassifier(client=client, timeout=WAIT, **params).fit(*in_parts(X, y, 1))
    np.testing.assert_array_equal(params_of(remote), params_of(local))
    np.testing.assert_array_equal(remote.loss_curve_, local.loss_curve_)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_the_average_over_rounds_of_one_step_is_the_recurrence_over_the_rounds(client, rows,
                                                                             solver):
    # a full batch a worker: each round is one step on each worker, from the
    # averaged raw weights; the workers' averages, averaged, are then the
    # moving average of the rounds' raw weights, which the fits without ema
    # give round by round: e_1 = W_1, e_r = d e_(r-1) + (1 - d) W_r
    X, y = rows
    data = in_parts(X, y, 2)
    params = dict(hidden_layer_sizes=(8,), solver=solver, batch_size=200, random_state=0,
                  learning_rate_init=0.05)
    raw = [params_of(DaskMLPClassifier(client=client, timeout=WAIT, max_iter=r,
                                       **params).fit(*data)) for r in range(1, 5)]
    averaged = DaskMLPClassifier(client=client, timeout=WAIT, max_iter=4, ema=0.7,
                                 **params).fit(*data)
    expected = raw[0]
    for W in raw[1:]:
        expected = 0.7 * expected + 0.3 * W
    np.testing.assert_allclose(params_of(averaged), expected, rtol=1e-12, atol=1e-15)
    assert not np.allclose(params_of(averaged), raw[-1])
    # to_local() carries the average on, as partial_fit does
    local = averaged.to_local()
    assert local.ema == 0.7 and local._average is not None


def test_a_clipped_round_moves_at_most_lr_times_clip_norm(client, rows):
    # plain SGD, one full-batch step a worker: each worker's step is at most
    # lr * clip_norm long, and so is their average
    X, y = rows
    data = in_parts(X, y, 2)
    lr, clip_norm = 0.1, 1e-3
    steps = {}
    for clip in (None, clip_norm):
        model = DaskMLPClassifier((8,), solver="sgd", momentum=0.0, batch_size=200, max_iter=1,
                                  random_state=0, learning_rate_init=lr, clip_norm=clip,
                                  warm_start=True, client=client, timeout=WAIT)
        before = params_of(model.fit(*data))
        steps[clip] = np.linalg.norm(params_of(model.fit(*data)) - before)
    assert steps[None] > 100 * lr * clip_norm  # the clip is active
    # two halves of one problem: their gradients point nearly the same way
    assert 0.5 * lr * clip_norm < steps[clip_norm] <= lr * clip_norm


def test_dropout_masks_are_drawn_from_random_state(client, rows):
    # the same random_state and parts: the same masks, shuffles and weights
    X, y = rows
    data = in_parts(X, y, 2)
    fits = {}
    for name, dropout, seed in (("one", 0.3, 0), ("again", 0.3, 0), ("plain", 0.0, 0)):
        model = DaskMLPClassifier((8,), max_iter=3, random_state=seed, dropout=dropout,
                                  client=client, timeout=WAIT).fit(*data)
        fits[name] = model
    np.testing.assert_array_equal(params_of(fits["one"]), params_of(fits["again"]))
    assert not np.allclose(params_of(fits["one"]), params_of(fits["plain"]))
    local = fits["one"].to_local()
    assert local.network_.dropout is not None
    # predict never drops: the network's plain pass
    np.testing.assert_array_equal(local.predict_proba(X), local.network_.predict(X))


@pytest.mark.parametrize("settings", [dict(ema=0.9), dict(dropout=0.2), dict(clip_norm=1.0)])
def test_lbfgs_refuses_them(client, rows, settings):
    X, y = rows
    model = DaskMLPClassifier((4,), solver="lbfgs", client=client, timeout=WAIT, **settings)
    with pytest.raises(InvalidParameterError, match="solver='lbfgs' takes none"):
        model.fit(*in_parts(X, y, 2))
