"""Check the compiled gradients four ways: against the per-neuron reference,
the computational-graph engine, and central finite differences."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import reference
from ._validation import check_float, check_int
from .losses import check_loss


class GradcheckResult(NamedTuple):
    """Worst relative errors between the gradients of four derivations.

    Each is ``max_k |g_k − o_k| / max_k |o_k|``: the largest deviation from the
    oracle o, relative to the oracle's largest entry (so tiny entries do not
    blow up the ratio).
    """

    reference: float
    """compiled kernels against :func:`fastbp.reference.gradients` (per-neuron δ, pure Python)"""
    finite_differences: float
    """compiled kernels against central differences of the loss, in float64"""
    graph: float
    """compiled kernels against :func:`fastbp.reference.graph_gradients` (reverse mode on a
    scalar computational graph, pure Python)"""
    reference_vs_graph: float
    """the two pure-Python oracles against each other, both in float64"""


def _relative_error(value: np.ndarray, oracle: np.ndarray) -> float:
    scale = float(np.max(np.abs(oracle))) if oracle.size else 0.0
    worst = float(np.max(np.abs(value - oracle))) if oracle.size else 0.0
    return worst / scale if scale > 0 else worst


def _flatten(dW, db) -> np.ndarray:
    """One vector in the network's parameter order: W_0, b_0, W_1, b_1, ..."""
    return np.concatenate([np.concatenate([np.ravel(W), np.ravel(b)]) for W, b in zip(dW, db)])


def gradcheck(net, X, Y, loss: str = "mse", l2: float = 0.0, eps: float = 1e-6,
              max_params: int | None = 2000, seed: int = 0) -> GradcheckResult:
    """Compare a network's compiled gradients with three independent oracles.

    The oracles are the lectures' two derivations of backpropagation, both in
    pure Python and float64 — per-neuron δ equations
    (:func:`fastbp.reference.gradients`) and reverse mode on a computational
    graph (:func:`fastbp.reference.graph_gradients`) — and central finite
    differences of the loss.

    Parameters
    ----------
    net : fastbp.Network
    X, Y : array_like
        A (small) batch; the pure-Python oracles cost O(rows × weights)
        Python operations, the graph engine about ten times more.
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
        ``(reference, finite_differences, graph, reference_vs_graph)``. For
        float64 networks expect about 1e-13 for the oracles and 1e-8 for finite
        differences; for float32 about 1e-6 and 1e-4 (float32 rounding). The
        two oracles agree to about 1e-15 whatever the network's dtype.

    Examples
    --------
    >>> import fastbp, numpy as np
    >>> net = fastbp.Network([3, 4, 2], activation="tanh", seed=0)
    >>> X, Y = np.ones((5, 3)), np.zeros((5, 2))
    >>> result = fastbp.gradcheck(net, X, Y)
    >>> max(result.reference, result.graph) < 1e-12, result.finite_differences < 1e-6
    (True, True)
    """
    check_loss(loss, net.output_activation)
    l2 = check_float(l2, "l2", minimum=0.0)
    eps = check_float(eps, "eps", minimum=0.0, strict=True)
    if max_params is not None:
        max_params = check_int(max_params, "max_params", 1)
    net = net.copy()  # one snapshot of the weights, even if another thread trains net
    dW, db = net.gradients(X, Y, loss=loss, l2=l2)
    compiled = _flatten(dW, db)

    # the oracles see exactly the numbers the kernels saw, widened to float64
    X64 = net._check_X(X).astype(np.float64)
    Y64 = np.asarray(net._check_XY(X, Y, loss)[1], dtype=np.float64)
    activations = list(net.activations) + [net.output_activation]
    weights = [W.astype(np.float64).tolist() for W in net.weights]
    biases = [b.astype(np.float64).tolist() for b in net.biases]
    ref = _flatten(*reference.gradients(weights, biases, activations, X64.tolist(),
                                        Y64.tolist(), loss, l2))
    graph = _flatten(*reference.graph_gradients(weights, biases, activations, X64.tolist(),
                                                Y64.tolist(), loss, l2))

    net64 = net.astype("float64")
    code = check_loss(loss, net.output_activation)
    theta = net64._params
    indices = np.arange(theta.size)
    if max_params is not None and theta.size > max_params:
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
    return GradcheckResult(_relative_error(compiled, ref), fd_error,
                           _relative_error(compiled, graph), _relative_error(graph, ref))
