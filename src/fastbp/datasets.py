"""Small real datasets shipped inside the package (no download)."""
from __future__ import annotations

import gzip
from importlib import resources

import numpy as np


def load_digits(one_hot: bool = True, dtype="float64"):
    """The UCI optical handwritten digits (1797 images of 8×8 pixels).

    The copy is the one scikit-learn bundles (CC BY 4.0, E. Alpaydin and
    C. Kaynak, UCI Machine Learning Repository).

    Parameters
    ----------
    one_hot : bool, default=True
        Return the labels one-hot encoded, shape (1797, 10); else as
        integers 0..9, shape (1797,).
    dtype : str, default="float64"
        dtype of X.

    Returns
    -------
    X : ndarray of shape (1797, 64)
        Pixel intensities scaled from 0..16 to [0, 1].
    y : ndarray
        The labels.
    """
    raw = resources.files("fastbp").joinpath("data", "digits.csv.gz").read_bytes()
    table = np.loadtxt(gzip.decompress(raw).decode().splitlines(), delimiter=",")
    X = (table[:, :-1] / 16.0).astype(dtype)
    labels = table[:, -1].astype(np.int64)
    if not one_hot:
        return X, labels
    return X, np.eye(10, dtype=dtype)[labels]
