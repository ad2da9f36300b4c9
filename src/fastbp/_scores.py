"""Scores of predictions against targets: accuracy and R²."""
from __future__ import annotations

import numpy as np


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
