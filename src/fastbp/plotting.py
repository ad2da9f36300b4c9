"""Plots of training histories (needs matplotlib: ``pip install "fastbp[plot]"``)."""
from __future__ import annotations

import math
import numbers
import os

#: y-axis label per loss name; every loss is a mean over the samples
LOSS_LABELS = {
    "mse": "loss: ½‖y − t‖², mean per sample",
    "bce": "loss: binary cross-entropy, nats per sample",
    "cross_entropy": "loss: cross-entropy, nats per sample",
}

#: history keys that hold the validation curve, first match wins
VALIDATION_KEYS = ("val_loss", "validation_loss", "test_loss")


def _curve(values, what: str) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{what} must be a sequence of numbers, got {type(values).__name__}")
    curve = []
    for epoch, value in enumerate(values, 1):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{what}[{epoch - 1}] is not a number: {value!r}")
        curve.append(float(value))
    if not curve:
        raise ValueError(f"{what} is empty: there is nothing to plot")
    return curve


def _curves(history) -> tuple:
    """(train loss, validation loss or None, validation scores or None) from a
    history dict, an estimator or a list."""
    scores = None
    if isinstance(history, dict):
        if "loss" not in history:
            raise ValueError(f"history has no 'loss' entry (keys: {sorted(history)})")
        train = _curve(history["loss"], "history['loss']")
        key = next((k for k in VALIDATION_KEYS if k in history), None)
        validation = None if key is None else _curve(history[key], f"history[{key!r}]")
    elif hasattr(history, "loss_curve_"):
        train = _curve(history.loss_curve_, "loss_curve_")
        validation = getattr(history, "validation_loss_curve_", None)
        validation = None if validation is None else _curve(validation, "validation_loss_curve_")
        # scikit-learn's early stopping records scores (accuracy, R²), not losses
        scores = getattr(history, "validation_scores_", None)
        scores = None if not scores else _curve(scores, "validation_scores_")
    else:
        train, validation = _curve(history, "history"), None
    for name, curve in (("validation curve", validation), ("validation score curve", scores)):
        if curve is not None and len(curve) != len(train):
            raise ValueError(f"the {name} has {len(curve)} epochs, "
                             f"the training curve {len(train)}")
    return train, validation, scores


def plot_history(history, path=None, *, loss: str | None = None, title: str | None = None,
                 log_scale: bool | None = None,
                 validation_label: str = "validation (after the epoch)", ax=None):
    """Plot the training (and validation) loss per epoch.

    Parameters
    ----------
    history : dict, sequence of float, or object with ``loss_curve_``
        The dict returned by :meth:`fastbp.Network.fit` (its ``"loss"``, and
        ``"val_loss"`` when present); a plain list of per-epoch losses; or an
        estimator with a ``loss_curve_`` attribute, such as
        ``fastbp.MLPClassifier``. An estimator's ``validation_scores_``
        (early stopping: accuracy or R², higher is better) go on a second y
        axis at the right.
    path : str or os.PathLike, optional
        Save the figure there; the format follows the suffix (.png, .svg,
        .pdf, ...). PNGs are written at 150 dpi.
    loss : {"mse", "bce", "cross_entropy"}, optional
        Names the loss on the y axis; otherwise it reads "loss per sample".
    title : str, optional
        Figure title.
    log_scale : bool, optional
        Logarithmic y axis; by default on when the positive losses span more
        than a factor of 30.
    validation_label : str, default="validation (after the epoch)"
        Legend entry of the validation curve.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (not shown; the caller may ``savefig`` or show it).

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError, TypeError
        If the history holds no numbers, or curves of different lengths.

    Examples
    --------
    >>> history = net.fit(X, Y, epochs=20)                    # doctest: +SKIP
    >>> fastbp.plot_history(history, "loss.png", loss="mse")  # doctest: +SKIP
    """
    train, validation, scores = _curves(history)
    if loss is not None and loss not in LOSS_LABELS:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSS_LABELS)}")
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError('plot_history needs matplotlib: pip install "fastbp[plot]"') from None

    if ax is None:
        # a bare Figure needs no GUI backend and never pops up a window
        figure = Figure(figsize=(6.4, 4.0), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    epochs = range(1, len(train) + 1)
    marker = "o" if len(train) <= 30 else None
    ax.plot(epochs, train, marker=marker, markersize=3, label="training (mean over the epoch)")
    if validation is not None:
        ax.plot(epochs, validation, marker=marker, markersize=3, label=validation_label)
    values = [v for v in train + (validation or []) if math.isfinite(v)]
    positive = [v for v in values if v > 0]
    if log_scale is None:
        log_scale = len(positive) == len(values) and max(positive) > 30 * min(positive)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch (full passes over the training rows)")
    ax.set_ylabel(LOSS_LABELS.get(loss, "loss per sample"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if scores is not None:
        right = ax.twinx()
        kind = "accuracy" if hasattr(history, "classes_") else "R²"
        (line,) = right.plot(epochs, scores, color="tab:green", marker=marker, markersize=3,
                             linestyle="--", label=f"validation score ({kind})")
        right.set_ylabel(f"validation score: {kind} (higher is better)")
        handles, labels = handles + [line], labels + [line.get_label()]
        # one legend for both axes, drawn on top of the second one's lines
        right.legend(handles, labels, loc="center right", framealpha=0.9)
    else:
        ax.legend(handles, labels)
    if title:
        ax.set_title(title)
    if path is not None:
        figure.savefig(os.fspath(path), dpi=150)
    return figure
