"""Metrics as ``train`` and ``evaluate`` print them, each figure with its unit."""
from __future__ import annotations

import numpy as np

from .model import ModelMeta


#: what a row's figure of each error loss measures
_ERROR_UNITS = {"mse": "½ squared error a row", "huber": "Huber loss a row",
                "absolute_error": "absolute error a row"}


def standardised_targets(meta: ModelMeta) -> bool:
    """Whether the network's regression targets are standardised (not as given)."""
    return meta.task == "regression" and (any(s != 1 for s in meta.y_scale)
                                          or any(m != 0 for m in meta.y_mean))


def loss_unit(meta: ModelMeta) -> str:
    """What one loss figure measures, e.g. "½ squared error a row, standardised targets"."""
    if meta.loss in _ERROR_UNITS:
        unit = _ERROR_UNITS[meta.loss]
        if meta.loss == "huber" and meta.loss_param is not None:
            unit += f" (delta {meta.loss_param:g})"
        if meta.task == "regression":
            unit += (", standardised targets" if standardised_targets(meta)
                     else ", targets as given")
        return unit
    if meta.loss == "bce":
        return "nats a row, summed over the outputs"
    if meta.loss_param is not None:  # cross_entropy's label smoothing
        return f"nats a row, targets smoothed by {meta.loss_param:g}"
    return "nats a row"


def metrics_lines(net, meta: ModelMeta, X: np.ndarray, Y: np.ndarray, name: str) -> list:
    """The lines reporting the model on one set of rows.

    Parameters
    ----------
    net : fastbp.Network
    meta : ModelMeta
    X, Y : ndarray
        Scaled as the network was trained (``meta.inputs``, ``meta.targets_scaled``).
    name : str
        The set, e.g. "test ", printed first.

    Returns
    -------
    list of str
        One line; regression with several targets adds one per target.
    """
    n = len(X)
    loss = f"{meta.loss} loss {net.loss(X, Y, loss=meta.loss_function()):.5g}"
    out = net.predict(X).astype(np.float64)
    if meta.task == "classification":
        right = int(np.sum(out.argmax(1) == Y.argmax(1))) if out.shape[1] > 1 else \
            int(np.sum((out[:, 0] > 0.5) == (Y[:, 0] > 0.5)))
        return [f"{name} {loss} ({loss_unit(meta)})  accuracy {right / n:.4f} "
                f"({right}/{n} rows right)"]
    if meta.task == "multilabel":
        right = ((out > 0.5) == (Y > 0.5))
        each = "  ".join(f"{t} {r:.4f}" for t, r in zip(meta.targets, right.mean(axis=0)))
        return [f"{name} {loss} ({loss_unit(meta)})  accuracy per target (fraction right): "
                f"{each}  all targets right {right.all(axis=1).mean():.4f}"]
    # rmse in standardised units times the scale: squaring target units could overflow
    scale = np.asarray(meta.y_scale)
    rmse = np.sqrt(np.mean((out - Y) ** 2, axis=0)) * scale
    spread = np.mean((Y - Y.mean(axis=0)) ** 2, axis=0)
    error = np.mean((out - Y) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(spread > 0, 1 - error / np.where(spread > 0, spread, 1), np.nan)
    names = _output_names(meta)
    first = f"{name} {loss} ({loss_unit(meta)})"
    if len(names) == 1:
        return [f"{first}  rmse {rmse[0]:.5g} (target units)  r2 {r2[0]:.4f}"]
    return [first] + [f"{name}   {t}: rmse {e:.5g} (its units)  r2 {r:.4f}"
                      for t, e, r in zip(names, rmse, r2)]


def _output_names(meta: ModelMeta) -> list:
    if len(meta.targets) == len(meta.y_scale):
        return list(meta.targets)
    return [f"y{k}" for k in range(len(meta.y_scale))]
