"""Plain NumPy minibatch SGD: the yardstick every other contender is checked against.

It also runs the other optimisers of ``compare.py --optimizers`` with their
NumPy steps (:mod:`peers.optimizers`).

One forward and one backward pass per batch, written with ``@``, in the
dtype of the case. :data:`VARIANTS` also holds the update rules of the
libraries that cannot run the benchmark's exact math (scikit-learn, FANN), so
that each of those can be checked against a NumPy run of what it really does.
"""
from __future__ import annotations

import numpy as np

from . import train_with
from .optimizers import NAMES, SGD, NumpyOptimizer

NAME = "numpy"
MATH = "mse"
max_rows = None
#: the optimisers it runs (``compare.py --optimizers``): all, as the yardstick
OPTIMIZERS = NAMES

# FANN clips the sigmoid output to [0.01f, 0.99f] (single-precision constants)
# before taking its derivative; see fann_peer.
FANN_CLIP = (float(np.float32(0.01)), float(np.float32(0.99)))

#: update rules: output loss and optional clipping inside the sigmoid derivative
VARIANTS = {
    # the benchmark's contract: J = 1/(2m)·Σ‖y − t‖², δ_out = σ'(a)·(y − t)/m
    "mse": {"loss": "mse", "derivative_clip": None,
            "description": "mse, δ_out = σ'(a)(y − t)/m"},
    # scikit-learn's MLPClassifier on multilabel targets: log-loss, δ_out = (y − t)/m
    "bce": {"loss": "bce", "derivative_clip": None,
            "description": "binary log-loss, δ_out = (y − t)/m"},
    # FANN: per-sample mse with σ'(a) = z(1 − z) taken on z clipped to [0.01, 0.99]
    "mse-fann-clip": {"loss": "mse", "derivative_clip": FANN_CLIP,
                      "description": "mse with σ' evaluated on z clipped to [0.01, 0.99]"},
    # mixed precision (compare.py --compute bfloat16): the mse rule in float32 with the
    # operands of every product (z, W, δ) rounded to bfloat16, sums in float32
    "mse-bf16": {"loss": "mse", "derivative_clip": None, "products": "bfloat16",
                 "description": "mse, products of bfloat16-rounded z, W and δ summed in float32"},
}


def availability():
    """NumPy is always there: return ``None``."""
    return None


def version():
    """NumPy's version."""
    return np.__version__


def limitation(sizes, n_rows, batch_size, dtype):
    """Every case is in scope: return ``None``."""
    return None


def sigmoid(a):
    """1 / (1 + e^-a) in a's dtype; e^-a may overflow to inf, which gives the right 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def sigmoid_slope(z, derivative_clip=None):
    """σ'(a) written through z = σ(a), optionally on z clipped like FANN does."""
    if derivative_clip is not None:
        z = np.clip(z, *derivative_clip)
    return z * (1.0 - z)


def round_to_bfloat16(x):
    """``x`` rounded to the nearest bfloat16 (ties to even), returned as float32.

    bfloat16 is float32's upper 16 bits, so rounding adds half of the dropped
    part (less one, plus the kept part's last bit for ties) and clears it.
    Finite inputs only, which is all the benchmark has.
    """
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) \
        & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


def bfloat16_product(A, B):
    """A @ B with both operands rounded to bfloat16 and float32 sums."""
    return round_to_bfloat16(A) @ round_to_bfloat16(B)


def mse_objective(weights, biases, X, Y):
    """J = 1/(2n)·Σ‖y − t‖² of a sigmoid network on all of (X, Y), in float64.

    Parameters
    ----------
    weights, biases : list of ndarray
        Parameters; cast to float64 so that every contender is scored alike.
    X, Y : ndarray
        Inputs and targets.

    Returns
    -------
    float
    """
    z = np.asarray(X, dtype=np.float64)
    for W, b in zip(weights, biases):
        z = sigmoid(z @ np.asarray(W, np.float64) + np.asarray(b, np.float64))
    diff = z - np.asarray(Y, dtype=np.float64)
    return 0.5 * float(np.einsum("ij,ij->", diff, diff)) / X.shape[0]


class Trainer:
    """Minibatch SGD with NumPy.

    Parameters
    ----------
    X, Y : ndarray
        Inputs (n, sizes[0]) and targets (n, sizes[-1]); converted to ``dtype`` once.
    sizes : sequence of int
        Layer widths, input first.
    batch_size : int
        Rows per update; the last batch of an epoch may be smaller.
    lr : float
        Learning rate.
    dtype : {"float32", "float64"}
    variant : str, default="mse"
        Update rule, a key of :data:`VARIANTS`.
    optimizer : str, default="sgd"
        Plain SGD, or a key of :data:`peers.optimizers.RULES`.
    """

    def __init__(self, X, Y, sizes, batch_size, lr, dtype, variant="mse", optimizer=SGD):
        self.dtype = np.dtype(dtype)
        self.X = np.ascontiguousarray(X, dtype=self.dtype)
        self.Y = np.ascontiguousarray(Y, dtype=self.dtype)
        self.sizes = tuple(sizes)
        self.batch_size = int(batch_size)
        self.lr = float(lr)  # a Python float keeps float32 arithmetic in float32
        rule = VARIANTS[variant]
        self.loss = rule["loss"]
        self.derivative_clip = rule["derivative_clip"]
        self.product = bfloat16_product if rule.get("products") == "bfloat16" else np.matmul
        self.optimizer = optimizer
        self.weights, self.biases = [], []

    def load(self, weights, biases):
        """Start from copies of ``weights`` and ``biases`` (untimed)."""
        self.weights = [np.array(W, dtype=self.dtype) for W in weights]
        self.biases = [np.array(b, dtype=self.dtype) for b in biases]

    def epoch(self, epochs=1):
        """Train ``epochs`` passes over the rows, in order (the timed part)."""
        n = self.X.shape[0]
        # a fresh state for each run, as the other contenders'
        optimizer = None if self.optimizer == SGD else NumpyOptimizer(self.optimizer, self.lr)
        for _ in range(epochs):
            for start in range(0, n, self.batch_size):
                stop = min(start + self.batch_size, n)
                self._step(self.X[start:stop], self.Y[start:stop], optimizer)

    def _step(self, X_batch, T_batch, optimizer):
        m = X_batch.shape[0]
        outputs = [X_batch]  # z of every layer, the input first
        for W, b in zip(self.weights, self.biases):
            outputs.append(sigmoid(self.product(outputs[-1], W) + b))
        y = outputs[-1]
        delta = (y - T_batch) / m
        if self.loss == "mse":
            delta *= sigmoid_slope(y, self.derivative_clip)
        n_layers = len(self.weights)
        grads_W, grads_b = [None] * n_layers, [None] * n_layers
        for layer in range(n_layers - 1, -1, -1):
            grads_W[layer] = self.product(outputs[layer].T, delta)
            grads_b[layer] = delta.sum(axis=0)
            if layer > 0:  # the δ below (every W is updated after the backward pass)
                delta = self.product(delta, self.weights[layer].T) * sigmoid_slope(outputs[layer],
                                                                        self.derivative_clip)
        if optimizer is None:  # plain SGD
            for W, b, grad_W, grad_b in zip(self.weights, self.biases, grads_W, grads_b):
                W -= self.lr * grad_W
                b -= self.lr * grad_b
        else:  # weight decay, where the optimiser has one, is for the weights only
            optimizer.step(self.weights + self.biases, grads_W + grads_b,
                           [True] * n_layers + [False] * n_layers)

    def parameters(self):
        """Copies of the current (weights, biases)."""
        return [W.copy() for W in self.weights], [b.copy() for b in self.biases]


def train(X, Y, weights, biases, batch_size, lr, dtype, epochs=1):
    """Train with NumPy minibatch SGD (mse, sigmoid layers) from the given parameters.

    Parameters and return value as in :func:`peers.train_with`.
    """
    return train_with(Trainer, X, Y, weights, biases, batch_size, lr, dtype, epochs)
