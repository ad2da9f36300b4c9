"""Loss functions: names, their output pairing and the checks on targets.

m is the number of rows in a batch, y = f(x) the network output, t the target.

``"mse"``
    J = 1/(2m) · Σ_i ‖y_i − t_i‖². Works with any output activation.
``"bce"``
    J = −1/m · Σ_i Σ_k [t log y + (1−t) log(1−y)], sigmoid outputs only,
    targets in [0, 1] (multi-label is fine). δ_out = (y − t)/m.
    Computed from the pre-activation a as softplus(a) − t·a, so it never
    overflows.
``"cross_entropy"``
    J = −1/m · Σ_i Σ_k t_ik · log softmax(a_i)_k, softmax outputs only,
    targets are probability rows (non-negative, summing to 1).
    δ_out = (p − t)/m. Computed with log-sum-exp.

When no loss is named (``loss=None``, the default of :meth:`Network.fit`,
:meth:`Network.loss` and :meth:`Network.gradients`), a softmax output gets
``"cross_entropy"`` and every other output ``"mse"``; see
:func:`resolve_loss`.

An ``l2=λ`` penalty adds λ/(2m) · Σ_l ‖W^(l)‖²_F; biases are not penalised.

The kernels know one more loss, ``KERNEL_LOSSES["poisson"]``: the half Poisson
deviance J = 1/m · Σ_i Σ_k [t log(t/μ) − t + μ] of the mean μ = exp(y) of an
identity output y, δ_out = (μ − t)/m. It serves
``MLPRegressor(loss="poisson")``, which applies the exp when it predicts;
:meth:`Network.fit` does not offer it, since its network would predict log μ.
"""
from __future__ import annotations

import numpy as np

from . import _kernels
from ._validation import check_choice

#: every loss the kernels know -> its code: the rows of csrc/fastbp_loss_table.h,
#: in code order
KERNEL_LOSSES = {name: code for code, (name, _) in enumerate(_kernels.loss_table())}

#: the losses Network.fit offers -> kernel code (poisson serves MLPRegressor only)
LOSSES = {name: code for name, code in KERNEL_LOSSES.items() if name != "poisson"}

#: the output activation each loss needs (None: any), from the loss table: the
#: only statement of the pairing, which Network, the estimators and the CLI read
REQUIRED_OUTPUT = {name: output for name, output in _kernels.loss_table() if name in LOSSES}

#: the loss made for an output activation: the one whose delta is written for it
#: (softmax: cross_entropy, sigmoid: bce)
LOSS_FOR_OUTPUT = {output: name for name, output in REQUIRED_OUTPUT.items()
                   if output is not None}


#: the loss an output gets when none is named: softmax outputs are
#: probabilities, made for cross-entropy; the rest keep "mse", which takes any
#: target (a sigmoid output may regress on values in (0, 1), which "bce"
#: would read as probabilities of classes)
DEFAULT_LOSS = {"softmax": "cross_entropy"}


def resolve_loss(loss: str | None, output_activation: str) -> str:
    """The loss name to use: ``loss``, or the output's default when it is None.

    Parameters
    ----------
    loss : {"mse", "bce", "cross_entropy"} or None
    output_activation : str
        The network's output activation.

    Returns
    -------
    str
        ``loss`` itself when given; otherwise ``"cross_entropy"`` for a
        softmax output and ``"mse"`` for any other.
    """
    if loss is None:
        return DEFAULT_LOSS.get(output_activation, "mse")
    return loss


def check_loss(loss: str, output_activation: str) -> int:
    """Validate a loss name against the network's output; return its code.

    Parameters
    ----------
    loss : {"mse", "bce", "cross_entropy"}
    output_activation : str
        The network's output activation.

    Returns
    -------
    int
        The loss's kernel code, ``LOSSES[loss]``.

    Raises
    ------
    ValueError
        On an unknown loss, or one that needs another output activation.
    """
    check_choice(loss, LOSSES, "loss")
    required = REQUIRED_OUTPUT[loss]
    if required is not None and output_activation != required:
        raise ValueError(
            f"loss {loss!r} needs output_activation={required!r}, "
            f"but this network's output activation is {output_activation!r}"
        )
    return LOSSES[loss]


#: the end of a target error of a default loss: a user who named no loss
#: learns which loss refused the targets and how to choose another
_DEFAULT_HINT = {loss: f" ({loss} is the default loss of a {output} output; pass loss='mse' "
                 "to fit other targets)"
                 for output, loss in DEFAULT_LOSS.items()}

#: rows of Y checked at a time
TARGET_BLOCK_ROWS = 65536


def check_targets(Y: np.ndarray, loss: str) -> None:
    """Raise ``ValueError`` if the targets do not suit the loss."""
    if loss in ("bce", "cross_entropy"):
        low, high = Y.min(), Y.max()
        if low < 0 or high > 1:
            raise ValueError(
                f"{loss} targets must lie in [0, 1]; found values from {low} to {high}"
                + _DEFAULT_HINT.get(loss, "")
            )
    if loss == "cross_entropy":
        tolerance = 100 * np.finfo(Y.dtype).eps * Y.shape[1]
        # in blocks of rows: the row sums of all of Y would be 8 bytes a row
        for start in range(0, Y.shape[0], TARGET_BLOCK_ROWS):
            block = Y[start:start + TARGET_BLOCK_ROWS].sum(axis=1, dtype=np.float64)
            if (np.abs(block - 1) > tolerance).any():
                break
        else:
            return
        sums = Y.sum(axis=1, dtype=np.float64)  # the error path counts them all
        bad = np.flatnonzero(np.abs(sums - 1) > tolerance)
        if bad.size:
            raise ValueError(
                "cross_entropy targets must be probability rows summing to 1 "
                f"(e.g. one-hot); row {bad[0]} sums to {sums[bad[0]]} "
                f"({bad.size} such rows)" + _DEFAULT_HINT[loss]
            )
