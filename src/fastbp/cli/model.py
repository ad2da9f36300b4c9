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

from ..io import read_npz_checked, save
from ..losses import LOSS_FOR_OUTPUT, REQUIRED_OUTPUT
from .errors import UsageError

META_KEY = "fastbp_cli"
#: 3: ``loss_param`` (written only when set: a model without it is written as
#: 2, which older versions read); 2: several targets, feature encoders
#: (one-hot, fill values); 1 is still read
META_VERSION = 3
#: the output activation each loss is trained with (mse: by task)
OUTPUT_FOR_LOSS = {loss: output for loss, output in REQUIRED_OUTPUT.items() if output}
#: the losses that need classes (a sigmoid or softmax output)
CLASS_LOSSES = tuple(LOSS_FOR_OUTPUT.values())
#: the losses that need numbers (an identity output: huber, absolute_error)
REGRESSION_LOSSES = tuple(loss for loss, output in OUTPUT_FOR_LOSS.items()
                          if output == "identity")
TASKS = ("classification", "multilabel", "regression")


@dataclass(kw_only=True)
class ModelMeta:
    """What ``fastbp train --save`` stores beside the network (field names are the JSON keys)."""

    version: int = META_VERSION
    #: the target columns; "classification" (one target, one-hot), "multilabel"
    #: (two-class targets, one sigmoid output each) or "regression"
    targets: list
    task: str
    loss: str
    #: the feature encoders in the order of the network's inputs (see
    #: ``fastbp.cli.features``): {"name", "kind": "number", "width", "fill"}
    #: or {"name", "kind": "category", "categories", "fill"}
    features: list
    #: classification: the labels in the order of the outputs; multilabel: the
    #: two labels of each target; regression: None
    classes: list | None
    #: inputs are (X - x_mean) / x_scale; outputs y * y_scale + y_mean
    x_mean: list
    x_scale: list
    y_mean: list
    y_scale: list
    #: --impute: "mean", "median", "drop" or None
    impute: str | None = None
    #: the loss's parameter (huber's delta, cross_entropy's label_smoothing),
    #: None for its default
    loss_param: float | None = None

    def loss_function(self):
        """The loss as ``Network.fit`` and ``Network.loss`` take it: the name,
        or a :class:`fastbp.HuberLoss` / :class:`fastbp.CrossEntropyLoss`
        carrying ``loss_param``."""
        return loss_function(self.loss, self.loss_param)

    def inputs(self, X: np.ndarray) -> np.ndarray:
        """Features scaled as in training."""
        return standardize(X, self.x_mean, self.x_scale)

    def targets_scaled(self, Y: np.ndarray) -> np.ndarray:
        """Targets scaled as in training (classes are unchanged: mean 0, scale 1)."""
        return standardize(Y, self.y_mean, self.y_scale)

    def outputs(self, out: np.ndarray) -> np.ndarray:
        """Network outputs in the target's own units."""
        return out * np.asarray(self.y_scale) + np.asarray(self.y_mean)

    def describe_targets(self) -> str:
        """The targets for messages: 'y' or 'a', 'b'."""
        return ", ".join(repr(t) for t in self.targets)


def loss_function(loss: str, param: float | None):
    """``loss`` as the library takes it: the name when ``param`` is None, else
    the :class:`fastbp.losses.Loss` of that name carrying ``param``.

    Raises
    ------
    ValueError
        If ``loss`` takes no parameter but one is given.
    """
    if param is None:
        return loss
    from ..losses import Loss

    for kind in Loss.__subclasses__():
        if kind.name == loss:
            return kind(**{kind.param_name: param})
    raise ValueError(f"the loss {loss!r} takes no parameter, got {param!r}")


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
    fields = asdict(meta)
    if fields["loss_param"] is None:
        # as version 2 wrote it, so that older versions read it
        del fields["loss_param"]
        fields["version"] = 2
    save(net, path, extra={META_KEY: np.array(json.dumps(fields))})


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
        damaged, newer than this version reads or does not fit the network.
    ValueError
        From ``fastbp.load``, if the network itself is damaged.
    """
    from ..io import load

    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, not a model file")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a fastbp model (not an .npz archive)")
    net = load(path)
    entry = read_npz_checked(path, [META_KEY]).get(META_KEY)
    if entry is None:
        return net, None
    if entry.dtype.kind != "U" or entry.ndim != 0:
        raise UsageError(f"{path}: damaged {META_KEY} entry: {entry.dtype} of shape {entry.shape}")
    return net, _parse_meta(str(entry), path, net)


def _parse_meta(text: str, path: str, net) -> ModelMeta:
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: damaged {META_KEY} entry: {str(exc)[:200]}") from None
    if not isinstance(fields, dict):
        raise UsageError(f"{path}: damaged {META_KEY} entry: not a JSON object")
    version = fields.get("version", 0)
    if not isinstance(version, int):
        raise UsageError(f"{path}: damaged {META_KEY} entry: version {version!r}")
    if version > META_VERSION:
        raise UsageError(f"{path}: written by a newer fastbp (CLI format {version})")
    if version == 1 and isinstance(fields.get("features"), list) and "target" in fields:
        fields = _from_version_1(fields)
    elif version == 2:
        fields["version"] = META_VERSION  # version 3 without a loss parameter
    try:
        meta = ModelMeta(**fields)
        _check_meta(meta, net)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise UsageError(f"{path}: damaged {META_KEY} entry: {str(exc)[:200]}") from None
    return meta


def _from_version_1(fields: dict) -> dict:
    """A version-1 entry (one target, numeric features only) as version 2."""
    fields = dict(fields, version=META_VERSION, targets=[fields.pop("target")])
    fields["features"] = [{"name": name, "kind": "number", "width": width, "fill": None}
                          for name, width in fields["features"]]
    return fields


def _check_meta(meta: ModelMeta, net) -> None:
    """Raise ValueError unless the entry fits the network it was saved with."""
    if meta.task not in TASKS:
        raise ValueError(f"unknown task {meta.task!r}")
    meta.loss_function()  # a loss parameter the loss takes, in its range
    if not (isinstance(meta.targets, list) and meta.targets
            and all(isinstance(t, str) for t in meta.targets)):
        raise ValueError("targets must be a list of column names")
    width = 0
    for spec in meta.features:
        if not isinstance(spec.get("name"), str):
            raise ValueError(f"a feature without a name: {spec!r}")
        if spec.get("kind") == "number":
            width += int(spec["width"])
        elif spec.get("kind") == "category" and isinstance(spec.get("categories"), list):
            width += len(spec["categories"])
        else:
            raise ValueError(f"feature {spec['name']!r}: unknown kind {spec.get('kind')!r}")
    n_in, n_out = net.sizes[0], net.sizes[-1]
    if width != n_in:
        raise ValueError(f"the features encode {width} inputs for a network of {n_in}")
    for name, values, n in (("x_mean", meta.x_mean, n_in),
                            ("x_scale", meta.x_scale, n_in), ("y_mean", meta.y_mean, n_out),
                            ("y_scale", meta.y_scale, n_out)):
        if not isinstance(values, list) or len(values) != n:
            raise ValueError(f"{name} has {len(values) if isinstance(values, list) else 0} "
                             f"values for a network of {n}")
    if meta.task == "classification" and (not isinstance(meta.classes, list)
                                          or len(meta.classes) != max(n_out, 2)):
        raise ValueError(f"classes do not match the {n_out} outputs")
    if meta.task == "multilabel" and (not isinstance(meta.classes, list)
                                      or len(meta.classes) != n_out or len(meta.targets) != n_out):
        raise ValueError(f"multilabel classes do not match the {n_out} outputs")
