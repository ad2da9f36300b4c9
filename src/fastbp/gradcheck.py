"""Check the compiled gradients four ways: against the per-neuron reference,
the computational-graph engine, and central finite differences.

Each comparison is judged against a tolerance that scales with what it
compares (see :class:`GradcheckResult`): the compiled gradient's rounding
scales with the magnitude of the terms it sums, and the finite differences'
error with the loss's rounding divided by the step, plus their truncation.
A trained network, whose gradient is a near-cancelling sum of large terms,
therefore passes where a fixed relative tolerance would fail it.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from . import reference
from ._objective import flat_gradient
from ._validation import check_float, check_int
from .losses import REQUIRED_OUTPUT, check_loss, resolve_loss
from .network import CHUNK_ROWS, check_X, check_XY

#: the compiled gradient may differ from an exact one by this fraction of the
#: magnitude of the terms it sums (about 1e6 float64 and 1.7e3 float32 units of
#: rounding: sums over rows and fan-ins, a blocked BLAS order, float32 products)
RELATIVE_TOLERANCE = {"float64": 1e-10, "float32": 1e-4}
#: the float64 unit of rounding (the oracles and finite differences run in float64)
_U64 = float(np.finfo(np.float64).eps) / 2


class _Errors(NamedTuple):
    reference: float
    finite_differences: float
    graph: float
    reference_vs_graph: float


class GradcheckResult(_Errors):
    """Worst relative errors between the gradients of four derivations, and their tolerances.

    Each error is ``max_k |g_k − o_k| / max_k |o_k|``: the largest deviation
    from the oracle o, relative to the oracle's largest entry (so tiny entries
    do not blow up the ratio).

    Each tolerance (``tolerances``, in the same units) scales with what is
    compared. The compiled gradient may be off by ``RELATIVE_TOLERANCE[dtype]``
    times the magnitude of the terms it sums (the gradient recomputed with
    every term in absolute value, in float64): near a minimum those terms
    cancel, and the gradient is far smaller than its rounding scale. The
    finite differences add their step error: the rounding of the loss
    (bounded from the same magnitudes) over ε, plus their truncation, taken
    from the change when the step doubles. ``failed`` lists the comparisons
    over their tolerance, ``loosest`` names the oracle allowed the most and
    ``reasons`` says why, for each.
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

    # what a result rebuilt by _make or _replace (which skip __new__) reads: nothing judged
    tolerances = MappingProxyType({})
    reasons = MappingProxyType({})

    def __new__(cls, reference, finite_differences, graph, reference_vs_graph,
                tolerances=None, reasons=None):
        self = super().__new__(cls, reference, finite_differences, graph, reference_vs_graph)
        #: the largest error each comparison allows, in the units of the errors
        #: (a dict keyed by the field names); empty when not computed
        self.tolerances = dict(tolerances or {})
        #: why each tolerance is what it is, in words (keyed like tolerances)
        self.reasons = dict(reasons or {})
        return self

    @property
    def failed(self) -> list:
        """The comparisons over their tolerance (field names); empty when all pass."""
        return [name for name, tolerance in self.tolerances.items()
                if not getattr(self, name) <= tolerance]

    @property
    def loosest(self) -> str:
        """The oracle with the widest tolerance against the compiled gradients: a field name."""
        return max(("reference", "graph", "finite_differences"),
                   key=lambda name: self.tolerances.get(name, 0.0))


def _relative_error(value: np.ndarray, oracle: np.ndarray) -> float:
    scale = float(np.max(np.abs(oracle))) if oracle.size else 0.0
    worst = float(np.max(np.abs(value - oracle))) if oracle.size else 0.0
    return worst / scale if scale > 0 else worst


def _relative(absolute: float, oracle: np.ndarray) -> float:
    """``absolute`` in the units of :func:`_relative_error` against ``oracle``."""
    scale = float(np.max(np.abs(oracle))) if oracle.size else 0.0
    return absolute / scale if scale > 0 else absolute


def _flatten(dW, db) -> np.ndarray:
    """One vector in the network's parameter order: W_0, b_0, W_1, b_1, ..."""
    return np.concatenate([np.concatenate([np.ravel(W), np.ravel(b)]) for W, b in zip(dW, db)])


#: smooth activations with |f''| <= 2|f'|: a's rounding moves f' in proportion to it
_CURVED = ("sigmoid", "tanh", "elu", "softplus", "softsign", "elliot")
#: smooth ones whose f' crosses 0 where f'' does not, with |f''| <= 1 (GELU's
#: is at most 0.8, SiLU's 0.5): a's rounding moves f' by at most itself
_BENDING = ("gelu", "silu")


def _derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """|f'(a)| of an activation, through its output z (or its pre-activation
    a, as the reference's f' takes it; a layer-wise f, softmax: its
    Jacobian's diagonal, z (1 − z))."""
    if name in reference.LAYER_ACTIVATIONS:
        return z * (1 - z)
    f_prime = np.vectorize(lambda a_k, z_k: reference.derivative(name, a_k, z_k),
                           otypes=[np.float64])
    return np.abs(f_prime(a, z)) if z.size else np.zeros_like(z)


def _forward(weights, biases, activations, X) -> tuple:
    """(outputs z of every layer, X first; A = |z|·|W| + |b| of every layer;
    pre-activations a of every layer, None first: a_out last).

    The forward pass is the reference's, in float64. A pre-activation a is
    rounded in proportion to its A (each term of its sum is), so A carries
    every layer's rounding.
    """
    passes = [reference.forward([W.tolist() for W in weights], [b.tolist() for b in biases],
                                activations, x) for x in X.tolist()]
    values = [np.array([z[l] for _, z in passes], dtype=np.float64).reshape(len(X), -1)
              for l in range(len(weights) + 1)]
    scales = [np.abs(z) @ np.abs(W) + np.abs(b) for z, W, b in zip(values, weights, biases)]
    pres = [None] + [np.array([a[l] for a, _ in passes], dtype=np.float64).reshape(len(X), -1)
                     for l in range(1, len(weights) + 1)]
    return values, scales, pres


def _backward(delta, weights, activations, values, scales, pres, carry: bool) -> list:
    """|δ| of every layer from the output's, backpropagated with |W| and |f'|.

    With ``carry``, f'(a) of a smooth f is widened by its own rounding: a's
    error moves f' by |f''| · (a's error), and |f''| <= 2|f'| for tanh, the
    sigmoid and the others of _CURVED, |f''| <= 1 for those of _BENDING.
    """
    deltas = [delta]
    for l in range(len(weights) - 1, 0, -1):
        name = activations[l - 1]
        f_prime = _derivative(name, values[l], pres[l])
        if carry and name in _CURVED:
            f_prime = f_prime * (1 + 2 * scales[l - 1])
        elif carry and name in _BENDING:
            f_prime = f_prime + scales[l - 1]
        deltas.insert(0, f_prime * (deltas[0] @ np.abs(weights[l]).T))
    return deltas


def _magnitudes(weights, biases, activations, X, Y, loss: str, l2: float) -> tuple:
    """(gradient magnitudes, bound on the rounding of the loss), both in float64.

    The magnitudes are backpropagation with every term in absolute value and
    every value widened by what carries its rounding, so a gradient computed
    with unit roundoff u is within a modest multiple of u times them. The
    loss's rounding is its first-order bound: Σ over units and rows of
    |∂J/∂a| times a's rounding ((fan-in + 2) u A), plus the loss's own sums.
    """
    m = X.shape[0]
    values, scales, pres = _forward(weights, biases, activations, X)
    a_out = pres[-1]
    y, t, A_out, name = values[-1], Y, scales[-1], activations[-1]
    both = np.abs(y) + np.abs(t)
    f_prime = _derivative(name, y, a_out)
    if name == "softmax":  # a_k's rounding moves y_k by y_k (δa_k − Σ_j y_j δa_j)
        carrier = both + y * (A_out + (y * A_out).sum(axis=1, keepdims=True))
    else:
        carrier = both + f_prime * A_out
    # δ_out = ∂J/∂a_out: (y − t)/m for a loss written for its output (bce with
    # sigmoid, cross-entropy with softmax), else through f'
    if REQUIRED_OUTPUT[loss] is not None:
        sensitivity, magnitude = np.abs(y - t) / m, carrier / m
    elif name == "softmax":  # mse through the softmax's Jacobian y_j (1[j=k] − y_k)
        def through(g):
            return g * y + y * (g * y).sum(axis=1, keepdims=True)
        sensitivity, magnitude = through(np.abs(y - t)) / m, through(carrier) / m
    else:
        sensitivity = f_prime * np.abs(y - t) / m
        smooth, bending = name in _CURVED, name in _BENDING
        magnitude = (f_prime * (carrier + 2 * smooth * both * A_out)
                     + bending * both * A_out) / m
    deltas = _backward(magnitude, weights, activations, values, scales, pres, carry=True)
    dW, db = [], []
    for l, (W, delta) in enumerate(zip(weights, deltas)):
        inputs = np.abs(X) if l == 0 else (
            np.abs(values[l]) + _derivative(activations[l - 1], values[l], pres[l])
            * scales[l - 1])
        dW.append(inputs.T @ delta + l2 / m * np.abs(W))
        db.append(delta.sum(axis=0))

    sensitivities = _backward(sensitivity, weights, activations, values, scales, pres,
                              carry=False)
    units = sum((W.shape[0] + 2) * float(np.sum(s * A))
                for W, s, A in zip(weights, sensitivities, scales))
    per_row = np.array([reference.sample_loss(loss, a_row, y_row, t_row) for a_row, y_row, t_row
                        in zip(a_out.tolist(), y.tolist(), np.asarray(t).tolist())])
    n_out = Y.shape[1]
    # log-sum-exp and softplus round in proportion to |a|, the mean over rows to m J
    loss_sums = ((n_out + 3) * float(np.mean(((A_out + 1) * (1 + np.abs(t))).sum(axis=1)))
                 + (m + 2) * float(per_row.mean()))
    penalty = l2 / (2 * m) * sum(float(np.sum(W * W)) for W in weights)
    n_weights = sum(W.size for W in weights)
    return _flatten(dW, db), _U64 * (units + loss_sums + (n_weights + 2) * penalty)


def gradcheck(net, X, Y, loss: str | None = None, l2: float = 0.0, eps: float = 1e-6,
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
    loss : {"mse", "bce", "cross_entropy", "huber", "absolute_error"} or None, default=None
        A name only: the oracles know each loss at its default parameter.
        None: the output's default loss, as in :meth:`Network.fit`
        (``"cross_entropy"`` for a softmax output, ``"mse"`` for any other).
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
        differences at random weights; for float32 about 1e-6 and 1e-4
        (float32 rounding). The two oracles agree to about 1e-15 whatever the
        network's dtype. ``result.tolerances`` holds what each comparison
        allows (scaled to the gradients, see :class:`GradcheckResult`),
        ``result.failed`` the comparisons over it and ``result.loosest`` the
        oracle allowed the most, with the reason in ``result.reasons``.

    Examples
    --------
    >>> import fastbp, numpy as np
    >>> net = fastbp.Network([3, 4, 2], activation="tanh", seed=0)
    >>> X, Y = np.ones((5, 3)), np.zeros((5, 2))
    >>> result = fastbp.gradcheck(net, X, Y)
    >>> max(result.reference, result.graph) < 1e-12, result.finite_differences < 1e-6
    (True, True)
    >>> result.failed
    []
    """
    loss = resolve_loss(loss, net.output_activation)
    if not isinstance(loss, str):
        raise TypeError(f"gradcheck takes a loss by name (its default parameter), got {loss!r}")
    check_loss(loss, net.output_activation)
    l2 = check_float(l2, "l2", minimum=0.0)
    eps = check_float(eps, "eps", minimum=0.0, strict=True)
    if max_params is not None:
        max_params = check_int(max_params, "max_params", 1)
    net = net.copy()  # one snapshot of the weights, even if another thread trains net
    dW, db = net.gradients(X, Y, loss=loss, l2=l2)
    compiled = _flatten(dW, db)

    # the oracles see exactly the numbers the kernels saw, widened to float64
    X64 = check_X(net, X).astype(np.float64)
    Y64 = np.asarray(check_XY(net, X, Y, loss)[1], dtype=np.float64)
    activations = list(net.activations) + [net.output_activation]
    weights = [W.astype(np.float64) for W in net.weights]
    biases = [b.astype(np.float64) for b in net.biases]
    as_lists = ([W.tolist() for W in weights], [b.tolist() for b in biases], activations,
                X64.tolist(), Y64.tolist(), loss, l2)
    ref = _flatten(*reference.gradients(*as_lists))
    graph = _flatten(*reference.graph_gradients(*as_lists))

    net64 = net.astype("float64")
    code = check_loss(loss, net.output_activation)
    theta = net64.params.copy()  # perturbed in place below
    layout = net64.kernel_layout
    indices = np.arange(theta.size)
    if max_params is not None and theta.size > max_params:
        indices = np.sort(np.random.default_rng(seed).choice(theta.size, max_params, replace=False))

    def central_difference(k: int, step: float) -> float:
        saved = theta[k]
        theta[k] = saved + step
        plus = flat_gradient(X64, Y64, theta, *layout, code, l2, CHUNK_ROWS)[0]
        theta[k] = saved - step
        minus = flat_gradient(X64, Y64, theta, *layout, code, l2, CHUNK_ROWS)[0]
        theta[k] = saved
        return (plus - minus) / (2 * step)

    numeric = np.array([central_difference(k, eps) for k in indices])
    # doubling the step changes the result by about three times its truncation error
    doubled = np.array([central_difference(k, 2 * eps) for k in indices])
    scale = float(np.max(np.abs(compiled))) or 1.0
    fd_error = float(np.max(np.abs(compiled[indices] - numeric))) / scale

    magnitudes, loss_rounding = _magnitudes(weights, biases, activations, X64, Y64, loss, l2)
    magnitude = float(np.max(magnitudes))
    rtol = RELATIVE_TOLERANCE[net.dtype.name]
    rounding = rtol * magnitude
    truncation = float(np.max(np.abs(doubled - numeric)))
    # the loss's rounding over the step, and θ ± ε itself rounded
    step_rounding = loss_rounding / eps + _U64 * float(np.max(np.abs(theta))) / eps * magnitude
    step_error = step_rounding + truncation
    tolerances = {"reference": _relative(rounding, ref), "graph": _relative(rounding, graph),
                  "finite_differences": (rounding + step_error) / scale,
                  "reference_vs_graph": _relative(RELATIVE_TOLERANCE["float64"] * magnitude,
                                                  ref)}
    precision = (f"{net.dtype.name} rounding {rounding:.1e} ({rtol:g} x the gradient terms' "
                 f"magnitude {magnitude:.1e})")
    step = (f"the step's error {step_error:.1e} (the loss's rounding over ε = {eps:g}: "
            f"{step_rounding:.1e}, truncation {truncation:.1e})")
    # the larger part first: it is why finite differences are the loosest
    parts = (step, precision) if step_error >= rounding else (precision, step)
    reasons = {"reference": precision, "graph": precision,
               "finite_differences": (f"{parts[0]}, above {parts[1]}; the largest gradient is "
                                      f"{scale:.1e}"),
               "reference_vs_graph": (f"float64 rounding ({RELATIVE_TOLERANCE['float64']:g} x "
                                      f"the gradient terms' magnitude {magnitude:.1e})")}
    return GradcheckResult(_relative_error(compiled, ref), fd_error,
                           _relative_error(compiled, graph), _relative_error(graph, ref),
                           tolerances, reasons)
