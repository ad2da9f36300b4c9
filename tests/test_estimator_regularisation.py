"""The estimators' dropout, weight_decay and clip_norm (fastbp's own parameters)."""
import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fastbp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def digits(scaled_digits):
    X, y = scaled_digits
    return X[:300], y[:300]


def params_of(estimator):
    return np.concatenate([W.ravel() for W in estimator.coefs_ + estimator.intercepts_])


def test_dropout_is_drawn_from_random_state(digits):
    X, y = digits
    kwargs = dict(hidden_layer_sizes=(32,), max_iter=5, dropout=0.3)
    one = MLPClassifier(random_state=0, **kwargs).fit(X, y)
    again = MLPClassifier(random_state=0, **kwargs).fit(X, y)
    other = MLPClassifier(random_state=1, **kwargs).fit(X, y)
    plain = MLPClassifier(random_state=0, hidden_layer_sizes=(32,), max_iter=5).fit(X, y)
    np.testing.assert_array_equal(params_of(one), params_of(again))
    assert not np.array_equal(params_of(one), params_of(plain))
    assert not np.array_equal(params_of(one), params_of(other))
    assert one.network_.dropout is not None and plain.network_.dropout is None
    # predict never drops: the same outputs twice, from the network's plain pass
    np.testing.assert_array_equal(one.predict_proba(X), one.network_.predict(X))


def test_weight_decay_is_the_optimisers(digits):
    X, y = digits
    kwargs = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, solver="adamw")
    default = MLPClassifier(**kwargs).fit(X, y)
    explicit = MLPClassifier(weight_decay=1e-2, **kwargs).fit(X, y)  # AdamW's own default
    np.testing.assert_array_equal(params_of(default), params_of(explicit))
    sgd = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, solver="sgd",
               learning_rate_init=0.1)
    decayed = MLPClassifier(weight_decay=0.5, **sgd).fit(X, y)
    free = MLPClassifier(**sgd).fit(X, y)
    assert np.linalg.norm(decayed.coefs_[0]) < 0.9 * np.linalg.norm(free.coefs_[0])


def test_clip_norm_bounds_one_full_batch_step(digits):
    X, y = digits
    lr, clip_norm = 0.1, 1e-3
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", momentum=0.0, batch_size=len(X),
                        learning_rate_init=lr, clip_norm=clip_norm, max_iter=1, random_state=0,
                        warm_start=True).fit(X, y)
    before = params_of(clf)
    step = params_of(clf.fit(X, y)) - before  # one step on all rows
    # torch's rule, g * clip_norm / (||g|| + 1e-6), active here (||g|| >> 1e-3): the step's
    # norm is lr * clip_norm * ||g|| / (||g|| + 1e-6), just under lr * clip_norm
    assert lr * clip_norm * (1 - 1e-5) < np.linalg.norm(step) <= lr * clip_norm


@pytest.mark.parametrize("settings, match", [
    (dict(solver="adam", weight_decay=0.1), "weight_decay applies to solver sgd or adamw"),
    (dict(solver="lbfgs", dropout=0.2), "lbfgs"),
    (dict(solver="lbfgs", clip_norm=1.0), "lbfgs"),
    (dict(dropout=1.0), "dropout"),
    (dict(clip_norm=0.0), "clip_norm"),
])
def test_bad_settings_are_named(digits, settings, match):
    X, y = digits
    with pytest.raises(InvalidParameterError, match=match):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, **settings).fit(X, y)


def test_regressor_takes_them_too(digits):
    X, _ = digits
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0, dropout=0.2,
                       clip_norm=5.0).fit(X, X[:, 20])
    assert reg.network_.dropout is not None and np.isfinite(reg.loss_curve_).all()
