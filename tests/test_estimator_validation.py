"""The estimators' ``fit(..., validation_data=...)`` and ``validation_loss_curve_``.

The validation loss is checked against scikit-learn's own metrics on the
estimator's outputs (an oracle outside fastbp's kernels)."""
import numpy as np
import pytest
from sklearn.metrics import log_loss

from fastbp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def digits(scaled_digits):
    return tuple(part[:600] for part in scaled_digits)


def test_no_validation_rows_no_curve(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(X, y)
    assert clf.validation_loss_curve_ is None and clf.validation_scores_ is None


def test_early_stopping_split_records_one_loss_an_epoch(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, early_stopping=True,
                        random_state=0).fit(X, y)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_
    assert np.all(np.isfinite(clf.validation_loss_curve_))
    # the split's loss falls as the training loss does, early on
    assert clf.validation_loss_curve_[-1] < clf.validation_loss_curve_[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_validation_loss_is_the_log_loss_of_the_outputs(digits, dtype):
    X, y = digits
    X = X.astype(dtype)
    X_val, y_val = X[500:], y[500:]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=4, alpha=0.0, random_state=0)
    clf.fit(X[:500], y[:500], validation_data=(X_val, y_val))
    expected = log_loss(y_val, clf.predict_proba(X_val).astype(np.float64), labels=clf.classes_)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(clf.validation_loss_curve_[-1], expected, rtol=rtol)
    assert clf.validation_scores_[-1] == clf.score(X_val, y_val)
    assert len(clf.validation_loss_curve_) == 4


def test_weighted_validation_loss(digits):
    X, y = digits
    X_val, y_val = X[500:], y[500:]
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y_val))
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, alpha=0.0, random_state=0)
    clf.fit(X[:500], y[:500], validation_data=(X_val, y_val, weights))
    expected = log_loss(y_val, clf.predict_proba(X_val), sample_weight=weights,
                        labels=clf.classes_)
    np.testing.assert_allclose(clf.validation_loss_curve_[-1], expected, rtol=1e-12)
    np.testing.assert_allclose(clf.validation_scores_[-1],
                               clf.score(X_val, y_val, sample_weight=weights), rtol=1e-15)


def test_regressor_validation_loss_is_half_the_mean_squared_error(digits):
    X, _ = digits
    Y = np.column_stack([X[:, 10], X[:, 20] * X[:, 30]])
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=3, alpha=0.0, random_state=0)
    reg.fit(X[:500], Y[:500], validation_data=(X[500:], Y[500:]))
    expected = np.mean((reg.predict(X[500:]) - Y[500:]) ** 2) / 2  # scikit-learn's squared loss
    np.testing.assert_allclose(reg.validation_loss_curve_[-1], expected, rtol=1e-12)


def test_given_rows_hold_none_of_X_out(digits):
    X, y = digits
    kwargs = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, n_iter_no_change=50)
    given = MLPClassifier(early_stopping=True, **kwargs)
    given.fit(X[:500], y[:500], validation_data=(X[500:], y[500:]))
    assert given.t_ == given.n_iter_ * 500  # every row of X trained, every epoch
    split = MLPClassifier(early_stopping=True, **kwargs).fit(X[:500], y[:500])
    assert split.t_ == split.n_iter_ * 450  # validation_fraction=0.1 held out


def test_early_stopping_on_given_rows_stops_and_keeps_the_best(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, early_stopping=True,
                        n_iter_no_change=3, random_state=0, learning_rate_init=0.01)
    clf.fit(X[:400], y[:400], validation_data=(X[400:], y[400:]))
    assert clf.n_iter_ < 300
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the weights of the best epoch are restored
    assert clf.score(X[400:], y[400:]) == clf.best_validation_score_


def test_monitoring_without_early_stopping_trains_the_same_weights(digits):
    X, y = digits
    kwargs = dict(hidden_layer_sizes=(16,), max_iter=4, random_state=0)
    plain = MLPClassifier(**kwargs).fit(X[:500], y[:500])
    watched = MLPClassifier(**kwargs).fit(X[:500], y[:500], validation_data=(X[500:], y[500:]))
    for W, V in zip(plain.coefs_ + plain.intercepts_, watched.coefs_ + watched.intercepts_):
        np.testing.assert_array_equal(W, V)
    assert plain.loss_curve_ == watched.loss_curve_
    assert len(watched.validation_scores_) == 4 and watched.best_loss_ == min(watched.loss_curve_)


def test_chunks_stop_early_on_given_rows(digits):
    X, y = digits
    chunks = [(X[i:i + 100], y[i:i + 100]) for i in range(0, 500, 100)]
    kwargs = dict(hidden_layer_sizes=(16,), max_iter=200, early_stopping=True,
                  n_iter_no_change=2, random_state=0, learning_rate_init=0.02)
    with pytest.raises(ValueError, match="validation_data"):
        MLPClassifier(**kwargs).fit(chunks, classes=np.arange(10))
    clf = MLPClassifier(**kwargs).fit(chunks, classes=np.arange(10),
                                      validation_data=(X[500:], y[500:]))
    assert clf.n_iter_ < 200 and len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.score(X[500:], y[500:]) == clf.best_validation_score_


@pytest.mark.parametrize("validation_data, error, match", [
    ("rows", TypeError, "validation_data must be a tuple"),
    ((np.zeros((3, 64)),), TypeError, "validation_data must be a tuple"),
    ((np.zeros((3, 5)), np.zeros(3)), ValueError, "validation_data: X has 5 features"),
    ((np.zeros((3, 64)), np.array([0, 1, 11])), ValueError, "validation_data: .*not in"),
    ((np.full((3, 64), np.nan), np.zeros(3)), ValueError, "validation_data: .*NaN"),
])
def test_bad_validation_data_is_named(digits, validation_data, error, match):
    X, y = digits
    with pytest.raises(error, match=match):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X, y,
                                                                validation_data=validation_data)


def test_lbfgs_has_no_epochs_to_validate(digits):
    X, y = digits
    with pytest.raises(ValueError, match="solver='lbfgs' has no epochs"):
        MLPClassifier(solver="lbfgs").fit(X, y, validation_data=(X, y))
