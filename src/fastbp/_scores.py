"""Scores of predictions against targets: accuracy and R², and
:class:`fastbp.Network`'s class labels and score (:class:`ScoreMixin`)."""
from __future__ import annotations

import numpy as np

from . import _labels
from ._inputs import check_X, network_targets
from ._validation import check_rows_match, check_sample_weight


def accuracy(outputs: np.ndarray, Y: np.ndarray, one_of_many: bool, weights=None) -> float:
    """The (weighted) share of rows predicted right.

    With ``one_of_many`` (softmax rows) the largest output must be the
    target's largest entry; otherwise every unit thresholded at 0.5 must
    match its 0/1 target.
    """
    if one_of_many and Y.shape[1] > 1:
        hit = outputs.argmax(axis=1) == Y.argmax(axis=1)
    else:
        hit = ((outputs > 0.5) == (Y > 0.5)).all(axis=1)
    return float(np.average(hit, weights=weights))


def r2_score(outputs: np.ndarray, Y: np.ndarray, weights=None) -> float:
    """The coefficient of determination, averaged over the outputs (as
    scikit-learn's regressors score): a constant target scores 1 when
    predicted exactly, else 0."""
    outputs, Y = outputs.astype(np.float64), Y.astype(np.float64)
    mean = np.average(Y, axis=0, weights=weights)
    residual = np.average((Y - outputs) ** 2, axis=0, weights=weights)
    total = np.average((Y - mean) ** 2, axis=0, weights=weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - residual / total, np.where(residual == 0, 1.0, 0.0))
    return float(r2.mean())


class ScoreMixin:
    """:meth:`predict_labels` and :meth:`score` of :class:`fastbp.Network`,
    through its public surface."""

    def predict_labels(self, X) -> np.ndarray:
        """Class labels for the rows of ``X``, for a network fitted on labels.

        The label of the largest output (softmax, several sigmoid units), or
        of the second class when a single sigmoid output exceeds 0.5.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])

        Returns
        -------
        ndarray of shape (m,), of the labels' type
        """
        classes = getattr(self, "classes_", None)
        if classes is None:
            raise ValueError("this network knows no class labels: fit it on a 1-D array of "
                             "labels (softmax or sigmoid output) first")
        return _labels.decode(self.predict(X), classes)

    def score(self, X, Y, sample_weight=None) -> float:
        """Accuracy for classification outputs, R² otherwise.

        Softmax and sigmoid outputs are scored by accuracy: ``Y`` may be
        labels (as in fit), one-hot rows (the largest output must match) or
        0/1 columns (every unit thresholded at 0.5 must match). Other outputs
        get the coefficient of determination R², averaged over the outputs,
        as scikit-learn's regressors.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])
        Y : array_like of shape (m,) or (m, sizes[-1])
        sample_weight : array_like of shape (m,), optional

        Returns
        -------
        float
        """
        X = check_X(self, X)
        Y = network_targets(self, Y, encode_labels=False)
        check_rows_match(X, Y)
        weights = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        if self.output_activation in _labels.CLASSIFIER_OUTPUTS:
            return accuracy(self.predict(X), Y, self.output_activation == "softmax", weights)
        return r2_score(self.predict(X), Y, weights)
