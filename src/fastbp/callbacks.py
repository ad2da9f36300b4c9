"""Epoch-end rules for :meth:`fastbp.Network.fit`.

A callback is any callable ``callback(epoch, history, network)`` called
after every epoch; a true return value stops the fit. :class:`EarlyStopping`
is the stopping rule the training loop applies itself, because on a plateau
the optimiser's schedule decides whether to stop or lower the rate, and at
the end the best weights come back.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_float, check_int


class EarlyStopping:
    """Stop when a monitored value stops improving; keep the best weights.

    An epoch improves when its value is at most ``best − min_delta``
    (lower is better; ``mode="max"`` flips the sign). After ``patience``
    epochs in a row without improvement the optimiser's schedule decides:
    lower the learning rate and go on (``Adaptive``) or stop. With
    ``restore_best`` the network ends the fit with the weights of the epoch
    whose value was lowest, exactly.

    Parameters
    ----------
    patience : int or float, default=10
        Epochs without improvement before stopping (``np.inf``: never).
    min_delta : float, default=0.0
        Least decrease that counts as an improvement.
    monitor : str, default="auto"
        A key of the history: "val_loss" when the fit has validation data,
        else "loss".
    restore_best : bool, default=True
    mode : {"min", "max"}, default="min"

    Notes
    -----
    This is scikit-learn's rule (``n_iter_no_change``, ``tol``) with
    ``patience = n_iter_no_change + 1`` and ``min_delta = tol``. Non-finite
    values never improve.
    """

    def __init__(self, patience=10, min_delta: float = 0.0, monitor: str = "auto",
                 restore_best: bool = True, mode: str = "min"):
        if patience != np.inf:
            patience = check_int(patience, "patience", 1)
        self.patience = patience
        self.min_delta = check_float(min_delta, "min_delta", minimum=0.0)
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a history key such as 'val_loss', got {monitor!r}")
        self.monitor = monitor
        if not isinstance(restore_best, (bool, np.bool_)):
            raise TypeError(f"restore_best must be True or False, got {restore_best!r}")
        self.restore_best = bool(restore_best)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.reset()

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience!r}, min_delta={self.min_delta!r}, "
                f"monitor={self.monitor!r}, restore_best={self.restore_best!r}, "
                f"mode={self.mode!r})")

    def reset(self) -> None:
        """Forget the best value, the best weights and the count."""
        self.best = np.inf
        self.best_epoch = None
        self.best_params = None
        self.wait = 0

    def key(self, history: dict) -> str:
        """The history key watched: ``monitor``, "auto" resolved."""
        if self.monitor != "auto":
            return self.monitor
        return "val_loss" if "val_loss" in history else "loss"

    def update(self, epoch: int, history: dict, network) -> bool:
        """Record this epoch's value; True when ``patience`` epochs in a row
        have not improved."""
        key = self.key(history)
        if key not in history:
            raise ValueError(f"early stopping monitors {key!r}, which the history does not "
                             f"have (keys: {sorted(history)})")
        value = float(history[key][-1])
        if self.mode == "max":
            value = -value
        if value <= self.best - self.min_delta:
            self.wait = 0
        else:
            self.wait += 1
        if value < self.best:
            self.best = value
            self.best_epoch = epoch
            if self.restore_best:
                self.best_params = network.params  # a view of a published array, never written again
        return self.wait >= self.patience

    def restore(self, network) -> None:
        """Give ``network`` the best epoch's weights (with ``restore_best``)."""
        if self.restore_best and self.best_params is not None:
            network.replace_params(self.best_params, check_finite=False)
