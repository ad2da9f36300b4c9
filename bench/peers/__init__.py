"""Contenders of the benchmark: one module per library, all with the same interface.

Every ``*_peer`` module defines

- ``NAME``: the label used in tables and plots;
- ``MATH``: which update rule it actually runs (a key of
  :data:`peers.numpy_peer.VARIANTS`); the same-work check compares the
  contender against a NumPy run of exactly that rule;
- ``availability()``: ``None`` when the library can be used, else the reason;
- ``version()``: the library's version, for the report;
- optionally ``set_threads(n)``, for a library that threadpoolctl does not pin;
- optionally ``OPTIMIZERS``, the names of :data:`peers.optimizers.NAMES` it
  runs (its ``Trainer`` then takes ``optimizer=name``); without it, plain SGD
  only;
- ``limitation(sizes, n_rows, batch_size, dtype)``: ``None`` when the case is
  in scope, else why it is skipped (e.g. FANN trains per sample only);
- ``max_rows``: rows the contender is given at most (``None``: all);
- a ``Trainer(X, Y, sizes, batch_size, lr, dtype)`` class whose ``load``,
  ``epoch`` and ``parameters`` methods split one training run into the
  untimed weight reset, the timed epochs and the untimed read-back;
- ``train(X, Y, weights, biases, batch_size, lr, dtype, epochs=1)``, the
  one-call form of the same.

All of them run plain SGD (no momentum, no L2) on a network with sigmoid hidden
and output layers, visiting the rows in order; the last batch may be smaller
and its gradient is the mean over its own rows. fastbp, NumPy and PyTorch also
run the optimisers of :mod:`peers.optimizers` on the same networks.

Heavy libraries (torch, scikit-learn, libfann) are imported only when a
contender is used, so a missing one skips that contender and nothing else.
"""
from __future__ import annotations

import importlib

#: module names, in the order contenders are run and tabulated
PEER_MODULES = ("fastbp_peer", "numpy_peer", "torch_peer", "sklearn_peer", "fann_peer",
                "reference_peer")


def load_peer(module_name: str):
    """Import one contender module of this package by name.

    Parameters
    ----------
    module_name : str
        One of :data:`PEER_MODULES`.

    Returns
    -------
    module
    """
    return importlib.import_module(f"{__name__}.{module_name}")


def train_with(trainer_class, X, Y, weights, biases, batch_size, lr, dtype, epochs=1):
    """Run ``trainer_class`` once from the given parameters: the body of every ``train``.

    Parameters
    ----------
    trainer_class : type
        A contender's ``Trainer``.
    X, Y : ndarray
        Inputs (n, sizes[0]) and targets (n, sizes[-1]).
    weights, biases : list of ndarray
        Initial parameters, ``weights[l].shape == (sizes[l], sizes[l+1])``.
    batch_size : int
    lr : float
    dtype : {"float32", "float64"}
    epochs : int, default=1

    Returns
    -------
    weights, biases : list of ndarray
        The parameters after training, in the same layout.
    """
    sizes = [weights[0].shape[0]] + [W.shape[1] for W in weights]
    trainer = trainer_class(X, Y, sizes, batch_size, lr, dtype)
    trainer.load(weights, biases)
    trainer.epoch(epochs)
    return trainer.parameters()
