"""A network's input checked: X, and targets Y (class labels encoded), for
predict, loss, gradients, objective, score and fit."""
from __future__ import annotations

import numpy as np

from . import _kernels, _labels
from ._validation import as_matrix, check_float, check_rows_match
from .losses import TARGET_CHECKED, check_loss, check_targets, resolve_loss


def check_X(network, X, lazy: bool = False) -> np.ndarray:
    """``network``'s X checked; with ``lazy``, left unconverted where it needs
    a copy, for :func:`fastbp._objective.kernel_rows` to convert a chunk at a time."""
    return as_matrix(X, network.dtype, "X", n_columns=network.sizes[0], lazy=lazy,
                     accept_sparse=True)


def check_objective_args(network, X, Y, loss, l2, lazy: bool = False) -> tuple:
    """``(X, Y, loss code, l2)`` of a loss or gradient call on ``network``,
    checked; ``loss=None`` is the output's default loss."""
    loss = resolve_loss(loss, network.output_activation)
    code = check_loss(loss, network.output_activation)
    l2 = check_float(l2, "l2", minimum=0.0)
    X, Y = check_XY(network, X, Y, loss, lazy=lazy)
    return X, Y, code, l2


def check_XY(network, X, Y, loss: str, encode_labels: bool = False, lazy: bool = False) -> tuple:
    """``network``'s X and targets checked for ``loss`` (see :func:`check_X`)."""
    sizes = network.sizes
    if _kernels.ready_rows(X, Y, sizes[0], sizes[-1], network.dtype):
        # arrays the checks below would take as they are (finite values
        # too), found in one C call: they cost a small fit ~4 µs; the
        # targets' check acts on bce and cross_entropy only (a call fewer)
        if type(loss) is not str or loss in TARGET_CHECKED:
            check_targets(Y, loss)
        return X, Y
    X = check_X(network, X, lazy)
    Y = network_targets(network, Y, encode_labels)
    check_rows_match(X, Y)
    check_targets(Y, loss)
    return X, Y


def network_targets(network, Y, encode_labels: bool) -> np.ndarray:
    """``network``'s targets as a matrix; class labels become one-hot rows (or a 0/1
    column) for softmax/sigmoid outputs, with ``encode_labels`` fixing the
    classes when the network has none yet."""
    n_outputs = network.sizes[-1]
    if not hasattr(Y, "dtype"):
        Y = np.asarray(Y)
    if getattr(Y, "ndim", None) == 1:  # labels, or one column of targets
        classifier = network.output_activation in _labels.CLASSIFIER_OUTPUTS
        # whole-number floats are labels for a classifier output only: for
        # the others (identity, tanh, relu) a 1-D float array is a target
        if (_labels.is_label_vector(Y) and (classifier or Y.dtype.kind in "USO")) or (
                classifier and _labels.is_whole_float_vector(Y)):
            classes = getattr(network, "classes_", None)
            if classes is None:
                classes = _labels.infer_classes(Y, n_outputs, network.output_activation)
                if encode_labels:
                    network.classes_ = classes
            return _labels.targets(Y, classes, n_outputs, network.dtype)
        if n_outputs > 1:
            fraction = (_labels.first_fraction(Y)
                        if classifier and Y.dtype.kind == "f" else "")
            raise ValueError(
                f"Y is 1-D but the network has {n_outputs} outputs: pass class labels "
                "(integers, strings, or floats that are all whole numbers) for a softmax or "
                f"sigmoid output, or targets of shape (n, {n_outputs})"
                + (f"; Y holds {fraction}, which is no class label" if fraction else ""))
    return as_matrix(Y, network.dtype, "Y", n_columns=n_outputs, allow_vector=True)
