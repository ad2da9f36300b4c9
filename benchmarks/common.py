"""Data and parameter grids shared by the benchmark modules.

The benchmarks use fastbp's public API only, so that they run against any
commit whose API they name. Data is built once per process and cached: asv
re-runs ``setup`` before every timed call, and the data must not be rebuilt
each time.
"""
import functools

import numpy as np

import fastbp

DTYPES = ["float32", "float64"]
#: 1 pins one thread; None is fastbp's default (the cores this process may
#: use), as a user runs it. Both are kept so that a change of the default does
#: not read as a change of speed.
THREADS = [1, None]


@functools.cache
def digits(dtype: str) -> tuple:
    """The 1797 digits (64 features) and their labels 0..9."""
    return fastbp.load_digits(one_hot=False, dtype=dtype)


@functools.cache
def teacher_rows(n_rows: int, n_features: int, n_classes: int, dtype: str) -> tuple:
    """Gaussian rows labelled by a random linear teacher.

    Learnable, unlike random labels, so the loss after one epoch shows
    whether the epoch trained.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_rows, n_features))
    y = np.argmax(X @ rng.standard_normal((n_features, n_classes)), axis=1)
    return X.astype(dtype), y
