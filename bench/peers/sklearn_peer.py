"""scikit-learn's ``MLPClassifier`` with ``solver="sgd"`` on multilabel (0/1) targets.

scikit-learn cannot run the benchmark's exact math, sigmoid output with mse:

- ``MLPRegressor`` has an identity output and the squared loss; its gradient
  is δ_out = (y − t)/m with y = a (no sigmoid), while the loss it reports is
  ½·mean over rows *and* outputs, i.e. divided by the output count as well.
- ``MLPClassifier`` with a 0/1 indicator matrix (or one 0/1 column) has a
  logistic output, as wanted, but the binary log-loss
  −1/m·Σ[t log y + (1 − t) log(1 − y)], so δ_out = (y − t)/m: the output
  derivative σ'(a) of the mse gradient is missing.

The classifier is used because it computes the same layers (sigmoid at the
output too) and does the same GEMMs; the only difference in work is one
elementwise multiply by σ'(a) on the (m, outputs) output block per batch.
Its same-work check is against NumPy running that same log-loss rule
(``MATH = "bce"``), and the contender is tabulated as "sklearn (log-loss)".

The initial weights are set through ``warm_start``: one untimed full-batch
``fit`` creates ``coefs_``/``intercepts_``, which are then overwritten before
every timed ``fit``. SGD with ``momentum=0`` updates them in place
(W += 0·v − lr·g), with the constant learning rate and no L2 (``alpha=0``).
"""
from __future__ import annotations

import warnings

import numpy as np

from . import train_with

NAME = "sklearn"
MATH = "bce"
max_rows = None


def availability():
    """``None`` when scikit-learn imports, else the reason."""
    try:
        import sklearn.neural_network  # noqa: F401
    except ImportError as error:
        return f"scikit-learn is not installed ({error})"
    return None


def version():
    """scikit-learn's version."""
    import sklearn
    return sklearn.__version__


def limitation(sizes, n_rows, batch_size, dtype):
    """Why a case is out of scope (MLPClassifier needs a hidden layer), or ``None``."""
    if len(sizes) < 3:
        return "MLPClassifier needs at least one hidden layer"
    return None


class Trainer:
    """scikit-learn SGD; see :class:`peers.numpy_peer.Trainer` for the parameters."""

    def __init__(self, X, Y, sizes, batch_size, lr, dtype):
        from sklearn.neural_network import MLPClassifier

        self.X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y, dtype=dtype)
        # one column would be taken as a column vector, with a warning: pass it 1-D
        self.Y = Y.ravel() if Y.shape[1] == 1 else Y
        self.batch_size = int(batch_size)
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(sizes[1:-1]), activation="logistic", solver="sgd",
            alpha=0.0, batch_size=self.X.shape[0], learning_rate="constant",
            learning_rate_init=float(lr), max_iter=1, shuffle=False, momentum=0.0,
            nesterovs_momentum=False, early_stopping=False, warm_start=True, tol=0.0,
            random_state=0)
        # one cheap full-batch epoch allocates coefs_/intercepts_ and the label binarizer
        self._fit()
        self.model.set_params(batch_size=self.batch_size)

    def _fit(self):
        with warnings.catch_warnings():
            # max_iter=1 always "did not converge"
            warnings.simplefilter("ignore")
            self.model.fit(self.X, self.Y)

    def load(self, weights, biases):
        """Start from copies of ``weights`` and ``biases`` (untimed)."""
        dtype = self.X.dtype
        self.model.coefs_ = [np.array(W, dtype=dtype) for W in weights]
        self.model.intercepts_ = [np.array(b, dtype=dtype) for b in biases]

    def epoch(self, epochs=1):
        """Train ``epochs`` passes over the rows, in order (the timed part)."""
        for _ in range(epochs):  # warm_start: each fit continues from the current weights
            self._fit()

    def parameters(self):
        """Copies of the current (weights, biases)."""
        return ([W.copy() for W in self.model.coefs_],
                [b.copy() for b in self.model.intercepts_])


def train(X, Y, weights, biases, batch_size, lr, dtype, epochs=1):
    """Train with scikit-learn's MLPClassifier SGD (log-loss, sigmoid layers).

    Parameters and return value as in :func:`peers.train_with`.
    """
    return train_with(Trainer, X, Y, weights, biases, batch_size, lr, dtype, epochs)
