"""Class labels for classification outputs: encoding targets and decoding outputs.

A network with softmax or sigmoid outputs may be fitted on a 1-D array of
labels (integers, strings, booleans, or floats that are all whole numbers,
as scikit-learn takes them) instead of one-hot rows. Its classes are
remembered, so outputs decode back to labels.
"""
from __future__ import annotations

import numpy as np

#: outputs whose targets can be class labels
CLASSIFIER_OUTPUTS = ("softmax", "sigmoid")


def is_label_vector(Y) -> bool:
    """Whether ``Y`` looks like 1-D class labels rather than numeric targets:
    a 1-D array of integers, booleans, strings or objects."""
    Y = np.asarray(Y) if not hasattr(Y, "dtype") else Y
    return getattr(Y, "ndim", 0) == 1 and Y.dtype.kind in "biuUSO"


def is_whole_float_vector(Y) -> bool:
    """Whether ``Y`` is a 1-D float array of finite whole numbers (0.0, 1.0,
    ...): class labels for a softmax or sigmoid output, as scikit-learn's
    classifiers take them, rather than targets."""
    if getattr(Y, "ndim", 0) != 1 or Y.dtype.kind != "f" or Y.shape[0] == 0:
        return False
    y = np.asarray(Y)
    return bool(np.isfinite(y).all() and (y == np.floor(y)).all())


def first_fraction(y: np.ndarray) -> str:
    """Where a 1-D float array first holds a value that is no whole number
    (or not finite), for an error message; "" when it holds none."""
    y = np.asarray(y)
    bad = np.flatnonzero(~np.isfinite(y) | (y != np.floor(y)))
    return f"{y[bad[0]].item()!r} at row {bad[0]}" if bad.size else ""


def infer_classes(y: np.ndarray, n_outputs: int, output_activation: str) -> np.ndarray:
    """The classes an output layer of ``n_outputs`` units stands for.

    All distinct labels when there are as many as units (or two for one
    sigmoid unit); integer labels in ``range(n_outputs)`` otherwise, so a
    class missing from this data keeps its unit.

    Raises
    ------
    ValueError
        When the labels cannot be mapped onto the output units.
    """
    if output_activation not in CLASSIFIER_OUTPUTS:
        raise ValueError(
            f"Y holds class labels ({y.dtype}), but the output activation is "
            f"{output_activation!r}: use output_activation='softmax' (or 'sigmoid') to "
            "classify, or pass numeric targets as a float array of shape (n, outputs)")
    try:
        classes = np.unique(y)
    except TypeError as exc:
        raise TypeError(f"class labels must be of one sortable type: {exc}") from None
    wanted = 2 if n_outputs == 1 else n_outputs
    if len(classes) == wanted:
        return classes
    # whole numbers (float labels are, see is_whole_float_vector) may stand
    # for unit indices
    numbered = classes.dtype.kind in "biuf"
    if numbered and classes.min() >= 0 and classes.max() < wanted:
        return np.arange(wanted, dtype=classes.dtype)
    if len(classes) == 1 and n_outputs == 1 and numbered:
        return np.array([0, 1], dtype=classes.dtype)
    raise ValueError(
        f"Y has {len(classes)} distinct labels but the output layer has {n_outputs} "
        f"unit{'s' if n_outputs > 1 else ''}: build the network with "
        f"{len(classes) if len(classes) > 2 else 1} output unit(s) for these labels, "
        "or pass targets of shape (n, outputs)")


def encode(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The index of each label of ``y`` in ``classes``.

    Raises
    ------
    ValueError
        On labels that are not among ``classes``.
    """
    index = np.searchsorted(classes, y)
    index = np.minimum(index, len(classes) - 1)
    unknown = classes[index] != y
    if np.any(unknown):
        raise ValueError(f"Y has labels the network was not fitted with: "
                         f"{np.unique(y[unknown])[:5].tolist()}; its classes are "
                         f"{classes.tolist()}")
    return index


def targets(y: np.ndarray, classes: np.ndarray, n_outputs: int, dtype) -> np.ndarray:
    """The (n, n_outputs) target matrix of labels ``y``."""
    index = encode(y, classes)
    if n_outputs == 1:
        return index.astype(dtype).reshape(-1, 1)
    Y = np.zeros((y.shape[0], n_outputs), dtype)
    Y[np.arange(y.shape[0]), index] = 1
    return Y


def decode(outputs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Labels for network outputs: the largest unit, or one unit above 0.5."""
    if outputs.shape[1] == 1:
        return classes[(outputs[:, 0] > 0.5).astype(np.intp)]
    return classes[outputs.argmax(axis=1)]
