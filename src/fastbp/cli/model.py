"""A model as the command line saves it: the network plus what it was trained on.

Beside the network's own entries, the ``.npz`` holds ``META_KEY``: JSON (in a
0-d str array) with the feature columns, the target, the class names and the
standardization, so that ``predict`` reads a table exactly as ``train`` did.
``fastbp.load`` ignores the extra entry.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass

import numpy as np

from ..io import save
from .errors import UsageError

META_KEY = "fastbp_cli"
META_VERSION = 1
#: the output activation each loss is trained with (mse: by task)
OUTPUT_FOR_LOSS = {"bce": "sigmoid", "cross_entropy": "softmax"}


@dataclass(kw_only=True)
class ModelMeta:
    """What ``fastbp train --save`` stores beside the network (field names are the JSON keys)."""

    version: int = META_VERSION
    #: the target column, and "classification" or "regression"
    target: str
    task: str
    loss: str
    #: [name, width] of each feature column, in the order of the network's inputs
    features: list
    #: class labels in the order of the outputs; None for regression
    classes: list | None
    #: inputs are (X - x_mean) / x_scale; outputs y * y_scale + y_mean
    x_mean: list
    x_scale: list
    y_mean: list
    y_scale: list

    def inputs(self, X: np.ndarray) -> np.ndarray:
        """Features scaled as in training."""
        return standardize(X, self.x_mean, self.x_scale)

    def targets(self, Y: np.ndarray) -> np.ndarray:
        """Targets scaled as in training (classes are unchanged: mean 0, scale 1)."""
        return standardize(Y, self.y_mean, self.y_scale)

    def outputs(self, out: np.ndarray) -> np.ndarray:
        """Network outputs in the target's own units."""
        return out * np.asarray(self.y_scale) + np.asarray(self.y_mean)


def standardize(X: np.ndarray, mean, scale) -> np.ndarray:
    """``(X - mean) / scale``, column by column."""
    return (X - np.asarray(mean)) / np.asarray(scale)


def fit_scaler(X: np.ndarray) -> tuple:
    """Column means and standard deviations of ``X`` as lists (1 for constant columns).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_columns)

    Returns
    -------
    mean, scale : list of float
    """
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return mean.tolist(), scale.tolist()


def save_model(net, meta: ModelMeta, path: str) -> None:
    """Save ``net`` as ``fastbp.load`` reads it, plus ``meta``, atomically.

    Parameters
    ----------
    net : fastbp.Network
    meta : ModelMeta
    path : str
    """
    save(net, path, extra={META_KEY: np.array(json.dumps(asdict(meta)))})


def load_model(path: str) -> tuple:
    """Read a model file.

    Parameters
    ----------
    path : str

    Returns
    -------
    net : fastbp.Network
    meta : ModelMeta or None
        None for a network saved by ``fastbp.Network.save``.

    Raises
    ------
    UsageError
        If the file is missing, not an ``.npz`` archive, or its metadata is
        damaged or newer than this version reads.
    """
    from ..io import load

    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, not a model file")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a fastbp model (not an .npz archive)")
    net = load(path)
    with np.load(path, allow_pickle=False) as archive:
        if META_KEY not in archive.files:
            return net, None
        text = str(archive[META_KEY])
    return net, _parse_meta(text, path)


def _parse_meta(text: str, path: str) -> ModelMeta:
    try:
        fields = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: damaged {META_KEY} entry: {exc}") from None
    if not isinstance(fields, dict):
        raise UsageError(f"{path}: damaged {META_KEY} entry: not a JSON object")
    if fields.get("version", 0) > META_VERSION:
        raise UsageError(f"{path}: written by a newer fastbp (CLI format {fields['version']})")
    try:
        return ModelMeta(**fields)
    except TypeError as exc:
        raise UsageError(f"{path}: damaged {META_KEY} entry: {exc}") from None
