"""fastbp: ``Network.set_weights`` then one ``Network.fit`` call per run, with
``fastbp.SGD`` (or another optimiser, ``compare.py --optimizers``); in bfloat16
cases (``compare.py --compute bfloat16``) the network has
``compute_dtype="bfloat16"``."""
from __future__ import annotations

import inspect

import numpy as np

from . import train_with
from .optimizers import NAMES, SGD, fastbp_optimizer

NAME = "fastbp"
MATH = "mse"
max_rows = None
#: the optimisers it runs (``compare.py --optimizers``)
OPTIMIZERS = NAMES
#: mixed precision it runs (``compare.py --compute``)
COMPUTE = ("bfloat16",)
#: threads passed to ``fit(n_threads=...)`` where fit has that option; see set_threads
n_threads = None


def availability():
    """``None`` when fastbp imports, else the reason."""
    try:
        import fastbp  # noqa: F401
    except ImportError as error:
        return f"fastbp does not import ({error}); run with PYTHONPATH=src or install it"
    return None


def version():
    """fastbp's version and where it was imported from."""
    import fastbp
    return f"{fastbp.__version__} ({fastbp.__file__})"


def set_threads(threads):
    """Have every ``fit`` call ask for ``threads`` BLAS threads (if fit takes ``n_threads``)."""
    global n_threads
    n_threads = int(threads)


def limitation(sizes, n_rows, batch_size, dtype):
    """Every case is in scope: return ``None``."""
    return None


class Trainer:
    """fastbp minibatch SGD; see :class:`peers.numpy_peer.Trainer` for the parameters."""

    def __init__(self, X, Y, sizes, batch_size, lr, dtype, optimizer=SGD, compute=None):
        import fastbp

        self._fastbp = fastbp
        # converted once, so fit() finds its dtype and layout and copies nothing
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.Y = np.ascontiguousarray(Y, dtype=dtype)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.optimizer = optimizer
        # float32 compute is the default: older fastbp, without compute_dtype, runs it too
        precision = {} if compute is None else {"compute_dtype": compute}
        self.network = fastbp.Network(list(sizes), activation="sigmoid",
                                      output_activation="sigmoid", dtype=dtype, seed=0,
                                      **precision)
        # older fastbp has no n_threads: the benchmark's global thread limit then applies alone
        self.thread_option = ({"n_threads": n_threads} if n_threads is not None and
                              "n_threads" in inspect.signature(self.network.fit).parameters else {})

    def load(self, weights, biases):
        """Start from copies of ``weights`` and ``biases`` (untimed)."""
        self.network.set_weights(weights, biases)

    def epoch(self, epochs=1):
        """Train ``epochs`` passes over the rows, in order (the timed part)."""
        # fresh: no momentum or moment state to carry
        optimizer = (self._fastbp.SGD(lr=self.lr) if self.optimizer == SGD
                     else fastbp_optimizer(self.optimizer, self.lr))
        self.network.fit(self.X, self.Y, loss="mse", optimizer=optimizer, epochs=epochs,
                         batch_size=self.batch_size, shuffle=False, **self.thread_option)

    def parameters(self):
        """Copies of the current (weights, biases)."""
        return self.network.weights, self.network.biases


def train(X, Y, weights, biases, batch_size, lr, dtype, epochs=1):
    """Train with ``fastbp.Network.fit`` (mse, sigmoid layers) from the given parameters.

    Parameters and return value as in :func:`peers.train_with`.
    """
    return train_with(Trainer, X, Y, weights, biases, batch_size, lr, dtype, epochs)
