"""Epoch-end rules for :meth:`fastbp.Network.fit`.

A callback is any callable ``callback(epoch, history, network)`` called
after every epoch; a true return value stops the fit. It may also have the
methods ``fit_starts(session)``, called once before the first epoch with the
fit's session, whose attributes ``network``, ``optimizer``, ``state`` (the
optimiser's state for the network), ``rng`` (the fit's generator or None),
``initial_epoch`` and ``resumed`` it may read, and ``after_epoch(epoch,
history, network)``, called at the end of each epoch once the stopping rule
and the schedule have run, when that state is the one the next epoch starts
from: :class:`ModelCheckpoint` saves it then.

:class:`EarlyStopping` is the stopping rule the training loop applies
itself, because on a plateau the optimiser's schedule decides whether to
stop or lower the rate, and at the end the best weights come back.
:class:`ModelCheckpoint` writes checkpoints a fit resumes from
(``fit(..., resume=path)``); :class:`CSVLogger` writes the history, a row
an epoch.
"""
from __future__ import annotations

import csv
import math
import os
import weakref

import numpy as np

from ._checkpoint import write_checkpoint
from ._validation import check_bool, check_choice, check_float, check_int
from .optim import check_monitor, monitor_key

__all__ = ["CSVLogger", "EarlyStopping", "ModelCheckpoint"]


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
        self.monitor = check_monitor(monitor)
        self.restore_best = check_bool(restore_best, "restore_best")
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
        return monitor_key(self.monitor, history)

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


class ModelCheckpoint:
    """Save the network with the state a fit resumes from, after an epoch.

    Each checkpoint is written atomically (a temporary file in the same
    folder, then :func:`os.replace`): a crash leaves the previous one
    whole. It is a model file that :func:`fastbp.load` reads, with the
    optimiser's buffers, step count, current rate and schedule state, the
    epochs completed and the fit's generator state, so that::

        net.fit(X, Y, optimizer=opt, epochs=6, seed=0, resume=path)

    (the same arguments as the fit that wrote it, ``epochs`` counting from
    its start) trains the epochs left and ends with the weights the
    uninterrupted fit would have had, bit for bit.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write; a str may hold ``{epoch}`` (counted from 1) and
        history keys as :meth:`str.format` fields, e.g.
        ``"net-{epoch:03d}-{val_loss:.3f}.npz"``.
    monitor : str, default="val_loss"
        The history key ``save_best_only`` watches ("auto": "val_loss"
        with validation rows, else "loss").
    save_best_only : bool, default=True
        Save only after an epoch whose monitored value is the best so far
        (lowest, or highest with ``mode="max"``; non-finite values never
        are); False saves after every epoch.
    mode : {"min", "max"}, default="min"

    Attributes
    ----------
    best : float
        The best monitored value so far, over fits (``reset`` forgets it).
        A resumed fit takes the checkpoint's when this one has none.
    best_epoch : int or None
        The epoch (from 0) of the last checkpoint written.

    Notes
    -----
    Callbacks' own state (EarlyStopping's count, CSVLogger's file) is not
    saved.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = True,
                 mode: str = "min"):
        self.path = os.fspath(path)
        self.monitor = check_monitor(monitor)
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self.mode = check_choice(mode, ("min", "max"), "mode")
        self._session = self._due = None
        self.reset()

    def __repr__(self) -> str:
        return (f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only!r}, mode={self.mode!r})")

    def reset(self) -> None:
        """Forget the best value."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None

    def fit_starts(self, session) -> None:
        """Hold the fit's session (weakly); take a resumed checkpoint's best value."""
        self._session = weakref.ref(session)
        resumed = session.resumed
        key = monitor_key(self.monitor, {"val_loss": ()} if session.validation is not None else {})
        if (resumed is not None and resumed.get("best") is not None
                and resumed.get("monitor") == key and self.best_epoch is None):
            self.best = resumed["best"]

    def __call__(self, epoch: int, history: dict, network) -> bool:
        """Whether this epoch is to be saved (written by :meth:`after_epoch`)."""
        self._due = None
        key = monitor_key(self.monitor, history)
        if self.save_best_only:
            if key not in history:
                raise ValueError(f"ModelCheckpoint monitors {key!r}, which the history does "
                                 f"not have (keys: {sorted(history)}); pass validation rows "
                                 "or monitor='loss'")
            value = float(history[key][-1])
            improved = value < self.best if self.mode == "min" else value > self.best
            if not improved:
                return False
            self.best = value
        self._due = (epoch, key if self.save_best_only else None)
        return False

    def after_epoch(self, epoch: int, history: dict, network) -> None:
        """Write the checkpoint of an epoch :meth:`__call__` chose, with the
        optimiser's state the next epoch starts from."""
        if self._due is None or self._due[0] != epoch:
            return
        session = self._session() if self._session is not None else None
        if session is None or session.network is not network:
            raise RuntimeError("ModelCheckpoint saves from inside Network.fit only "
                               "(pass it in callbacks=)")
        key = self._due[1]
        self._due = None
        path = self.path
        if "{" in path:
            path = path.format(epoch=epoch + 1, **{k: v[-1] for k, v in history.items() if v})
        write_checkpoint(path, session, epoch + 1, key, None if key is None else self.best)
        self.best_epoch = epoch


class CSVLogger:
    """Write the history to a CSV file, a row after each epoch.

    The columns are ``epoch`` (from 0; a resumed fit goes on from its
    checkpoint's) and the history's keys in its order: ``loss``,
    ``data_loss``, ``penalty``, ``lr``, ``seconds``, then ``val_loss``,
    ``accuracy`` and ``val_accuracy`` where the fit has them. Numbers are
    written with :func:`repr`, so they read back exactly. Each row is
    appended and the file closed at once: a crash loses no finished epoch.

    Parameters
    ----------
    path : str or os.PathLike
    separator : str, default=","
    append : bool, default=False
        Append to an existing file (whose header must name the same
        columns) instead of starting it afresh at each fit.
    """

    def __init__(self, path, separator: str = ",", append: bool = False):
        self.path = os.fspath(path)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        self.separator = separator
        self.append = check_bool(append, "append")
        self._fresh = False

    def __repr__(self) -> str:
        return f"CSVLogger({self.path!r}, separator={self.separator!r}, append={self.append!r})"

    def fit_starts(self, session) -> None:
        """Start the file afresh, unless appending."""
        self._fresh = not self.append

    def __call__(self, epoch: int, history: dict, network) -> bool:
        """Append the epoch's row (and the header to a new file)."""
        columns = ["epoch"] + list(history)
        mode = "w" if self._fresh else "a"
        if mode == "a" and os.path.exists(self.path) and os.path.getsize(self.path):
            with open(self.path, newline="") as handle:
                header = next(csv.reader(handle, delimiter=self.separator), [])
            if header != columns:
                raise ValueError(f"{self.path!r} has the columns {header}, this fit writes "
                                 f"{columns}: pass append=False or another file")
            columns_written = True
        else:
            columns_written = False
        with open(self.path, mode, newline="") as handle:
            writer = csv.writer(handle, delimiter=self.separator)
            if not columns_written:
                writer.writerow(columns)
            writer.writerow([epoch] + [repr(float(values[-1])) for values in history.values()])
        self._fresh = False
        return False
