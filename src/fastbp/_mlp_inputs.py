"""The estimators' data: X and y checked as scikit-learn checks them, then
handed to the kernels through :func:`fastbp._validation.as_matrix` (the one
function that turns X into what the kernels read, also for fastbp.dask's
partitions); row weights, the early-stopping split and the random stream."""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._validation import as_matrix, is_ready_matrix

#: as scikit-learn's MLP; validate_data converts other formats to the first
SPARSE_FORMATS = ("csr", "csc")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: the initial state of RandomState(seed), for the seeds fits used lately
_SEEDED_STATES: dict = {}


def are_chunks(X) -> bool:
    """Whether fit's X (with y=None) is chunks of (X, y) rather than an array."""
    if hasattr(X, "shape") or hasattr(X, "__array__") or isinstance(X, (str, bytes)):
        return False
    if isinstance(X, (list, tuple)):  # rows of numbers, or (X, y) tuples of arrays
        first = X[0] if len(X) else None
        return (isinstance(first, (tuple, list)) and len(first) in (2, 3)
                and len(getattr(first[0], "shape", ())) == 2)
    return callable(X) or hasattr(X, "__iter__")


class ValidationRows(NamedTuple):
    """The rows validation scores: X in the network's dtype, y as the score
    reads it (class labels for a classifier), Y as the loss reads it (the
    network's encoded targets) and the row weights (or None)."""
    X: object
    y: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray | None


class MLPInputs:
    """X, y and row weights of the estimators' fits and predictions."""

    def _is_ready(self, X) -> bool:
        """Whether ``validate_data(self, X, reset=False)`` would return X
        itself and do nothing else: a ready float32/float64 matrix of the fitted
        width (:func:`fastbp._validation.is_ready_matrix`), for an estimator
        fitted without feature names. Such calls (predict, partial_fit in a
        loop) skip scikit-learn's generic checks, ~100 µs a call; anything else
        takes the full path, with its messages and warnings."""
        n_features = getattr(self, "n_features_in_", None)
        return (n_features is not None and not hasattr(self, "feature_names_in_")
                and is_ready_matrix(X, n_features, FLOAT_DTYPES))

    def _checked_X(self, X):
        """X for prediction, checked against the fitted width and names."""
        if self._is_ready(X):
            return X
        return validate_data(self, X, accept_sparse=SPARSE_FORMATS,
                             dtype=(np.float64, np.float32), reset=False)

    def _sample_weight(self, X, y_raw, sample_weight):
        """Per-row weights from sample_weight and class_weight, or None."""
        class_weight = getattr(self, "class_weight", None)
        if sample_weight is None and class_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if class_weight is not None:
            weights = weights * compute_sample_weight(class_weight, y_raw).astype(X.dtype)
        if np.any(weights < 0):
            raise ValueError("sample weights must be non-negative")
        return np.ascontiguousarray(weights, dtype=X.dtype)

    def _validation_split(self, X, y, sample_weight):
        """scikit-learn's early-stopping split: stratified for single-output
        classification, drawn from the estimator's random state."""
        # on the 0/1 indicator columns as booleans, as scikit-learn (whose
        # "too few members" error then names the class 'True')
        stratify = y.astype(bool) if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = [X, y] + ([sample_weight] if sample_weight is not None else [])
        split = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        X, X_val, y, Y_val = split[:4]
        sample_weight, sw_val = (split[4], split[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase validation_fraction "
                             "or the number of samples.")
        y_val = self._label_binarizer.inverse_transform(Y_val) if is_classifier(self) else Y_val
        if isinstance(X, np.ndarray):  # CSR rows come out of the split compact already
            X = np.ascontiguousarray(X)
        validation = ValidationRows(X_val, y_val, np.ascontiguousarray(Y_val), sw_val)
        return X, np.ascontiguousarray(y), sample_weight, validation

    def _given_validation(self, validation_data, dtype) -> ValidationRows:
        """fit's ``validation_data``, ``(X_val, y_val)`` or ``(X_val, y_val,
        sample_weight_val)``, checked as partial_fit checks its rows: the
        fitted width, and for a classifier labels among ``classes_``."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
                            f"sample_weight_val), got {type(validation_data).__name__}")
        X_val, y_val = validation_data[:2]
        weights = validation_data[2] if len(validation_data) == 3 else None
        try:  # chunk=True: the validation rows may hold some of the classes only
            X_val, Y_val, y_val = self._validate_input(X_val, y_val, incremental=True,
                                                       reset=False, chunk=True)
        except ValueError as error:
            raise ValueError(f"validation_data: {error}") from error
        if X_val.shape[0] < 1:
            raise ValueError("validation_data holds no rows")
        weights = self._sample_weight(X_val, y_val, weights)
        if weights is not None:
            weights = np.require(weights, dtype=dtype, requirements="CA")
        return ValidationRows(as_matrix(X_val, dtype, "X_val", accept_sparse=True), y_val,
                              np.require(Y_val, dtype=dtype, requirements="CA"), weights)

    def _restarted_random_state(self):
        """``check_random_state(self.random_state)``: every fit call restarts
        the stream, as in scikit-learn. For an int seed, the generator this
        method built for the estimator before is rewound instead of built
        anew: ``RandomState(seed)`` costs ~190 µs, more than half of a 32-row
        ``partial_fit``, and ``set_state`` ~50 µs. A generator the user passed
        is never touched."""
        seed = self.random_state
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            return check_random_state(seed)
        initial = _SEEDED_STATES.get(int(seed))
        own = getattr(self, "_seeded_generator", None)
        if initial is None or own is None:
            own = check_random_state(seed)
            if len(_SEEDED_STATES) >= 64:
                _SEEDED_STATES.clear()
            _SEEDED_STATES.setdefault(int(seed), own.get_state())
            self._seeded_generator = own
            return own
        own.set_state(initial)
        return own
