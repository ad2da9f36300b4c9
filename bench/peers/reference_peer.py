"""``fastbp.reference``: the pure-Python, per-neuron transcription of backprop.

It is slow on purpose, so it only runs on small networks and few rows, and
only in float64 (Python floats are doubles: a float32 run would time the same
thing again).
"""
from __future__ import annotations

import numpy as np

from . import train_with

NAME = "reference"
MATH = "mse"
#: rows it is given at most; its check runs on the same rows
max_rows = 300
#: weights of the largest network it runs, 64-32-10
MAX_WEIGHTS = 64 * 32 + 32 * 10


def availability():
    """``None`` when ``fastbp.reference`` imports, else the reason."""
    try:
        import fastbp.reference  # noqa: F401
    except ImportError as error:
        return f"fastbp.reference does not import ({error})"
    return None


def version():
    """The version of the fastbp that ships the reference."""
    import fastbp
    return fastbp.__version__


def limitation(sizes, n_rows, batch_size, dtype):
    """Why a case is out of scope (pure Python: small float64 cases only), or ``None``."""
    n_weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    if n_weights > MAX_WEIGHTS:
        return "pure Python: only networks up to 64-32-10"
    if np.dtype(dtype) != np.float64:
        return "pure Python computes in float64 only"
    return None


class Trainer:
    """Pure-Python minibatch SGD; see :class:`peers.numpy_peer.Trainer` for the parameters."""

    def __init__(self, X, Y, sizes, batch_size, lr, dtype):
        import fastbp.reference

        self._fit = fastbp.reference.fit
        self.X = np.asarray(X, dtype=np.float64).tolist()
        self.Y = np.asarray(Y, dtype=np.float64).tolist()
        self.activations = ["sigmoid"] * (len(sizes) - 1)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weights, self.biases = [], []

    def load(self, weights, biases):
        """Start from copies of ``weights`` and ``biases`` as nested lists (untimed)."""
        self.weights = [np.asarray(W, dtype=np.float64).tolist() for W in weights]
        self.biases = [np.asarray(b, dtype=np.float64).tolist() for b in biases]

    def epoch(self, epochs=1):
        """Train ``epochs`` passes over the rows, in order (the timed part)."""
        self._fit(self.weights, self.biases, self.activations, self.X, self.Y, "mse",
                  lr=self.lr, epochs=epochs, batch_size=self.batch_size)

    def parameters(self):
        """The current (weights, biases) as float64 arrays."""
        return [np.array(W) for W in self.weights], [np.array(b) for b in self.biases]


def train(X, Y, weights, biases, batch_size, lr, dtype, epochs=1):
    """Train with ``fastbp.reference.fit`` (mse, sigmoid layers) from the given parameters.

    Parameters and return value as in :func:`peers.train_with`.
    """
    return train_with(Trainer, X, Y, weights, biases, batch_size, lr, dtype, epochs)
