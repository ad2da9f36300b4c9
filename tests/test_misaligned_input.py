"""Misaligned arrays (as Dask and other unpicklers can hand over) train and predict."""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from fastbp import MLPClassifier, MLPRegressor  # noqa: E402


def misaligned(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``array`` whose data starts one byte off alignment."""
    raw = np.zeros(array.nbytes + 1, np.uint8)
    copy = raw[1:].view(array.dtype).reshape(array.shape)
    copy[...] = array
    assert not copy.flags.aligned and copy.flags.c_contiguous
    return copy


# max_iter=5 keeps the fits short: the test compares their bits, not convergence
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_classifier_fits_misaligned_rows_as_aligned_ones(solver):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] > 0).astype(int)
    weights = rng.uniform(0.5, 1.5, size=60)
    params = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=5, random_state=0)
    aligned = MLPClassifier(**params).fit(X, y, sample_weight=weights)
    shifted = MLPClassifier(**params).fit(misaligned(X), y, sample_weight=misaligned(weights))
    np.testing.assert_array_equal(shifted.coefs_[0], aligned.coefs_[0])
    np.testing.assert_array_equal(shifted.predict_proba(misaligned(X)), aligned.predict_proba(X))


def test_partial_fit_takes_misaligned_rows_and_targets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5]
    aligned = MLPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, y)
    shifted = MLPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(misaligned(X), misaligned(y))
    np.testing.assert_array_equal(shifted.coefs_[0], aligned.coefs_[0])
