"""Check the compiled gradients against the pure-Python reference and against
central finite differences."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import reference
from ._validation import check_float, check_int
from .losses import check_loss


class GradcheckResult(NamedTuple):
    """Worst relative errors of the compiled gradient.

    Each is max_k |g_k − o_k| / max_k |o_k|: the largest deviation from the
    oracle o, relative to the oracle's largest entry (so tiny entries do not
    blow up the ratio).
    """

    reference: float
    """against :func:`fastbp.reference.gradients` (per-neuron, pure Python)"""
    finite_differences: float
    """against central differences of the loss, in float64"""


def _relative_error(value: np.ndarray, oracle: np.ndarray) -> float:
    scale = float(np.max(np.abs(oracle))) if oracle.size else 0.0
    worst = float(np.max(np.abs(value - oracle))) if oracle.size else 0.0
    return worst / scale if scale > 0 else worst


def gradcheck(net, X, Y, loss: str = "mse", l2: float = 0.0, eps: float = 1e-6,
              max_params: int | None = 2000, seed: int = 0) -> GradcheckResult:
    """Compare a network's compiled gradients with two independent oracles.

    Parameters
    ----------
    net : fastbp.Network
    X, Y : array_like
        A (small) batch; the reference is pure Python and costs
        O(rows × weights) Python operations.
    loss : {"mse", "bce", "cross_entropy"}
    l2 : float
    eps : float, default=1e-6
        Step of the central differences (J(θ+ε) − J(θ−ε)) / 2ε.
    max_params : int or None, default=2000
        Check at most this many parameters, chosen at random, by finite
        differences; None checks all of them.
    seed : int
        Seed of that choice.

    Returns
    -------
    GradcheckResult
        ``(reference, finite_differences)``. For float64 networks expect about
        1e-13 and 1e-8; for float32 about 1e-6 and 1e-4 (float32 rounding).
    """
    check_loss(loss, net.output_activation)
    l2 = check_float(l2, "l2", minimum=0.0)
    eps = check_float(eps, "eps", minimum=0.0, strict=True)
    dW, db = net.gradients(X, Y, loss=loss, l2=l2)
    compiled = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(dW, db)])

    X64 = net._check_X(X).astype(np.float64)
    Y64 = np.asarray(net._check_XY(X, Y, loss)[1], dtype=np.float64)
    activations = list(net.activations) + [net.output_activation]
    ref_dW, ref_db = reference.gradients(
        [W.astype(np.float64).tolist() for W in net.weights],
        [b.astype(np.float64).tolist() for b in net.biases],
        activations, X64.tolist(), Y64.tolist(), loss, l2)
    ref = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in zip(ref_dW, ref_db)])

    net64 = net.astype("float64")
    code = check_loss(loss, net.output_activation)
    theta = net64._params
    indices = np.arange(theta.size)
    if max_params is not None and theta.size > check_int(max_params, "max_params", 1):
        indices = np.sort(np.random.default_rng(seed).choice(theta.size, max_params, replace=False))
    numeric = np.empty(indices.size)
    for n, k in enumerate(indices):
        saved = theta[k]
        theta[k] = saved + eps
        plus = net64._flat_gradient(X64, Y64, code, l2)[0]
        theta[k] = saved - eps
        minus = net64._flat_gradient(X64, Y64, code, l2)[0]
        theta[k] = saved
        numeric[n] = (plus - minus) / (2 * eps)
    scale = float(np.max(np.abs(compiled))) or 1.0
    fd_error = float(np.max(np.abs(compiled[indices] - numeric))) / scale
    return GradcheckResult(_relative_error(compiled, ref), fd_error)
