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
    δ_out = (p − t)/m. Computed with log-sum-exp. ``CrossEntropyLoss(label_smoothing=ε)``
    replaces t by (1 − ε)·t + ε/K (K outputs) in both, as
    ``torch.nn.CrossEntropyLoss(label_smoothing=ε)`` does.
``"huber"``
    J = 1/m · Σ_i Σ_k h_δ(y_ik − t_ik), h_δ(r) = r²/2 where abs(r) < δ, else
    δ·(abs(r) − δ/2); identity outputs only; δ = 1 (``HuberLoss(delta=δ)`` for
    another). δ_out = clip(y − t, −δ, δ)/m. Like "mse" (whose ½r² it is near
    0), it sums over the outputs: J = K · ``torch.nn.HuberLoss(delta=δ)`` of
    the same rows (which averages over all m·K elements).
``"absolute_error"``
    J = 1/m · Σ_i Σ_k abs(y_ik − t_ik), identity outputs only;
    δ_out = sign(y − t)/m (0 where y = t, as PyTorch's subgradient).
    J = K · ``torch.nn.L1Loss()`` of the same rows.

A loss with a parameter is named by a string (its default parameter) or by an
object carrying it: :class:`~fastbp.HuberLoss` and
:class:`~fastbp.CrossEntropyLoss`, as PyTorch's ``nn.HuberLoss(delta=...)``
and ``nn.CrossEntropyLoss(label_smoothing=...)`` and Keras's
``losses.Huber(delta=...)`` and
``losses.CategoricalCrossentropy(label_smoothing=...)`` carry theirs.

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
from ._validation import check_choice, check_float

#: every loss the kernels know -> its code: the rows of csrc/fastbp_loss_table.h,
#: in code order
KERNEL_LOSSES = {name: code for code, (name, _) in enumerate(_kernels.loss_table())}

#: the losses Network.fit offers -> kernel code (poisson serves MLPRegressor only)
LOSSES = {name: code for name, code in KERNEL_LOSSES.items() if name != "poisson"}

#: the output activation each loss needs (None: any), from the loss table: the
#: only statement of the pairing, which Network, the estimators and the CLI read
REQUIRED_OUTPUT = {name: output for name, output in _kernels.loss_table() if name in LOSSES}

#: each loss's parameter default, from the loss table (0.0: the loss has none)
LOSS_PARAM_DEFAULTS = dict(zip(KERNEL_LOSSES, _kernels.loss_param_defaults()))

#: the loss made for a classifier's output activation: the log-loss whose delta
#: is written for it (softmax: cross_entropy, sigmoid: bce). The regression
#: losses written for identity outputs (huber, absolute_error) are choices,
#: not an identity output's loss: its default stays "mse"
LOSS_FOR_OUTPUT = {output: name for name, output in REQUIRED_OUTPUT.items()
                   if output in ("sigmoid", "softmax")}


class Loss:
    """Base of the losses named with a parameter (:class:`~fastbp.HuberLoss`,
    :class:`~fastbp.CrossEntropyLoss`): ``name`` is the loss's row, ``param`` the value
    the kernels read."""

    #: the loss's name in :data:`LOSSES`
    name: str = ""
    #: the name of the parameter, as PyTorch spells it
    param_name: str = ""

    @property
    def param(self) -> float:
        """The loss's parameter, as the kernels read it."""
        return getattr(self, self.param_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.param_name}={self.param!r})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.param == other.param

    def __hash__(self) -> int:
        return hash((type(self), self.param))


class HuberLoss(Loss):
    """Huber's loss with threshold ``delta``, for regression on identity outputs.

    J = 1/m · Σ_i Σ_k h(y_ik − t_ik), h(r) = r²/2 where abs(r) < δ and
    δ·(abs(r) − δ/2) beyond: squared near 0 like "mse", linear in the tails.
    ``loss="huber"`` is ``HuberLoss(delta=1.0)``.

    Parameters
    ----------
    delta : float, default=1.0
        The threshold δ > 0 between the squared and the linear part.

    Notes
    -----
    J sums over the K outputs as "mse" does, so J = K · ``torch.nn.HuberLoss(delta=δ)``
    (mean over the m·K elements) on the same rows, and so are the gradients.

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> net = fastbp.Network([2, 1], output_activation="identity", seed=0)
    >>> X, Y = np.zeros((2, 2)), np.array([[3.0], [0.25]])
    >>> net.set_weights([np.zeros((2, 1))], [np.zeros(1)])
    >>> float(net.loss(X, Y, loss=fastbp.HuberLoss(delta=1.0)))  # (2.5 + 0.03125) / 2
    1.265625
    """

    name = "huber"
    param_name = "delta"

    def __init__(self, delta: float = 1.0):
        self.delta = check_float(delta, "delta", minimum=0.0, strict=True)


class CrossEntropyLoss(Loss):
    """Cross-entropy of softmax outputs, with optional label smoothing.

    The targets t become (1 − ε)·t + ε/K (K outputs) before
    J = −1/m · Σ_i Σ_k t_ik · log softmax(a_i)_k, as
    ``torch.nn.CrossEntropyLoss(label_smoothing=ε)`` and Keras's
    ``CategoricalCrossentropy(label_smoothing=ε)`` do. ``loss="cross_entropy"``
    is ``CrossEntropyLoss(label_smoothing=0.0)``.

    Parameters
    ----------
    label_smoothing : float, default=0.0
        ε in [0, 1].

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> net = fastbp.Network([2, 2], output_activation="softmax", seed=0)
    >>> net.set_weights([np.zeros((2, 2))], [np.zeros(2)])
    >>> X, Y = np.zeros((1, 2)), np.array([[1.0, 0.0]])
    >>> round(float(net.loss(X, Y, loss=fastbp.CrossEntropyLoss(label_smoothing=0.2))), 6)
    0.693147
    """

    name = "cross_entropy"
    param_name = "label_smoothing"

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", minimum=0.0,
                                           maximum=1.0)


class LossCode(int):
    """A loss's kernel code (an int: code that passes or compares codes takes
    it as one) that carries its parameter, ``param``, to the kernels."""

    def __new__(cls, code: int, param: float):
        self = super().__new__(cls, code)
        self.param = param
        return self


def loss_param(code: int):
    """The parameter a loss code carries (:class:`LossCode`), or None, the
    kernels' default, for a plain code."""
    return getattr(code, "param", None)


def loss_name(loss) -> str:
    """The name of a loss given by name or as a :class:`Loss`."""
    return loss.name if isinstance(loss, Loss) else loss


#: the loss an output gets when none is named: softmax outputs are
#: probabilities, made for cross-entropy; the rest keep "mse", which takes any
#: target (a sigmoid output may regress on values in (0, 1), which "bce"
#: would read as probabilities of classes)
DEFAULT_LOSS = {"softmax": "cross_entropy"}


def resolve_loss(loss, output_activation: str):
    """The loss to use: ``loss``, or the output's default name when it is None.

    Parameters
    ----------
    loss : str, Loss or None
    output_activation : str
        The network's output activation.

    Returns
    -------
    str or Loss
        ``loss`` itself when given; otherwise ``"cross_entropy"`` for a
        softmax output and ``"mse"`` for any other.
    """
    if loss is None:
        return DEFAULT_LOSS.get(output_activation, "mse")
    return loss


def check_loss(loss, output_activation: str) -> LossCode:
    """Validate a loss against the network's output; return its code.

    Parameters
    ----------
    loss : {"mse", "bce", "cross_entropy", "huber", "absolute_error"} or Loss
        A name (its parameter's default) or a :class:`~fastbp.HuberLoss` or
        :class:`~fastbp.CrossEntropyLoss` carrying its parameter.
    output_activation : str
        The network's output activation.

    Returns
    -------
    LossCode
        The loss's kernel code, ``LOSSES[name]``, carrying its parameter.

    Raises
    ------
    ValueError
        On an unknown loss, or one that needs another output activation.
    """
    if type(loss) is str:
        code = _NAMED_CODES.get((loss, output_activation))
        if code is not None:  # checked before: every fit names its loss
            return code
    if isinstance(loss, Loss):
        name, param = loss.name, loss.param
    else:
        check_choice(loss, LOSSES, "loss")
        name, param = loss, LOSS_PARAM_DEFAULTS[loss]
    required = REQUIRED_OUTPUT[name]
    if required is not None and output_activation != required:
        raise ValueError(
            f"loss {name!r} needs output_activation={required!r}, "
            f"but this network's output activation is {output_activation!r}"
        )
    code = LossCode(LOSSES[name], param)
    if type(loss) is str:
        _NAMED_CODES[loss, output_activation] = code
    return code


#: check_loss's answers for loss names, by (name, output activation)
_NAMED_CODES: dict = {}


#: the end of a target error of a default loss: a user who named no loss
#: learns which loss refused the targets and how to choose another
_DEFAULT_HINT = {loss: f" ({loss} is the default loss of a {output} output; pass loss='mse' "
                 "to fit other targets)"
                 for output, loss in DEFAULT_LOSS.items()}

#: rows of Y checked at a time
TARGET_BLOCK_ROWS = 65536


#: the losses whose targets :func:`check_targets` checks (the others take any finite value)
TARGET_CHECKED = ("bce", "cross_entropy")


def check_targets(Y: np.ndarray, loss) -> None:
    """Raise ``ValueError`` if the targets do not suit the loss (a name or a :class:`Loss`)."""
    loss = loss.name if isinstance(loss, Loss) else loss  # loss_name's, one call fewer
    if loss in TARGET_CHECKED:
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
