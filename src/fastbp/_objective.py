"""The loss and gradient over all rows, summed chunk by chunk so memory
stays O(chunk × width + weights), whatever the rows: lbfgs's weighted
objective (:meth:`fastbp.Network.objective`, one machine's X or one Dask
worker's partitions), and the sums behind ``Network.loss`` and
``Network.gradients``; and :class:`ObjectiveMixin`, which gives
:class:`fastbp.Network` those three methods through its public surface."""
from __future__ import annotations

import numpy as np

from . import _kernels
from ._inputs import check_objective_args
from ._runtime import aligned_empty
from ._validation import check_sample_weight, convert_rows, usable_as_is
from .losses import loss_param

#: rows a pass holds at once: large enough for full-speed products
OBJECTIVE_CHUNK_ROWS = 4096


def workspace_size(sizes, rows: int, acts=None) -> int:
    """Items of the passes' workspace for chunks of up to ``rows`` rows of a
    network with the activation codes ``acts``; None makes room for any (each
    hidden layer's a kept, as GELU's needs: np.empty leaves the unused part
    untouched)."""
    rows = max(1, min(rows, OBJECTIVE_CHUNK_ROWS))
    if acts is not None:
        return _kernels.pass_workspace_size(sizes, rows, acts)
    return _kernels.pass_workspace_size(sizes, rows) + rows * int(np.sum(sizes[1:-1]))


def workspace_for(sizes, rows: int, dtype, acts=None) -> np.ndarray:
    """The passes' workspace for chunks of up to ``rows`` rows (``acts`` as
    :func:`workspace_size` takes them)."""
    return np.empty(workspace_size(sizes, rows, acts), dtype)


def weighted_sums(X, Y, sample_weight, params, sizes, acts, loss_code, work=None):
    """(Σw·data term, Σw·gradient of the data term in float64, Σw) of the rows.

    X: dense rows or CSR rows; ``sample_weight``: None (all rows weigh 1) or
    one weight a row; ``work``: a workspace from :func:`workspace_for`.
    """
    m = X.shape[0]
    if work is None:
        work = workspace_for(sizes, m, params.dtype, acts)
    grad = np.empty_like(params)
    grad_sum = np.zeros(params.shape, np.float64)
    data_sum = weight_sum = 0.0
    no_weights = np.empty(0, params.dtype)
    for start in range(0, m, OBJECTIVE_CHUNK_ROWS):
        stop = min(start + OBJECTIVE_CHUNK_ROWS, m)
        weights = no_weights if sample_weight is None else sample_weight[start:stop]
        weight = float(stop - start) if sample_weight is None else float(
            weights.sum(dtype=np.float64))
        if weight == 0.0:
            continue  # rows of weight 0 add nothing (and would divide by 0)
        data, _ = _kernels.weighted_loss_gradient(X[start:stop], Y[start:stop], weights, params,
                                                  sizes, acts, loss_code, 0.0, work, grad,
                                                  loss_param(loss_code))
        data_sum += weight * data
        grad_sum += weight * grad
        weight_sum += weight
    return data_sum, grad_sum, weight_sum


def objective(X, Y, sample_weight, params, sizes, acts, loss_code, l2: float, is_weight,
              work=None) -> tuple:
    """(J, float64 gradient) of all the rows: :func:`weighted_sums` then
    :func:`mean_objective`; ``is_weight`` from :func:`weight_mask`."""
    sums = weighted_sums(X, Y, sample_weight, params, sizes, acts, loss_code, work)
    return mean_objective(sums, params, is_weight, l2)


def weight_mask(network) -> np.ndarray:
    """True at the parameters that are weights (biases are not penalised)."""
    is_weight = np.zeros(network.n_params, bool)
    for W, _ in layer_views(network.sizes, is_weight):
        W[...] = True
    return is_weight


def mean_objective(sums, params, is_weight, l2: float) -> tuple:
    """(J, float64 gradient) from :func:`weighted_sums`' totals, with the L2
    term as the kernels add it: l2/(2·Σw)·Σ‖W‖²."""
    data_sum, grad_sum, weight = sums
    weights = params[is_weight].astype(np.float64)
    J = data_sum / weight + 0.5 * (l2 / weight) * float(np.dot(weights, weights))
    grad = grad_sum / weight
    grad[is_weight] += (l2 / weight) * weights
    return J, grad


def layer_views(sizes, flat: np.ndarray) -> list:
    """(W, b) views of each layer inside a flat parameter-shaped vector."""
    views, offset = [], 0
    sizes = [int(size) for size in sizes]  # C ints would overflow in the products
    for n_in, n_out in zip(sizes, sizes[1:]):
        W = flat[offset:offset + n_in * n_out].reshape(n_in, n_out)
        offset += n_in * n_out
        b = flat[offset:offset + n_out]
        offset += n_out
        views.append((W, b))
    return views


def kernel_rows(X, start: int, stop: int, dtype) -> np.ndarray:
    """Rows [start, stop) of a checked X as the kernels read them."""
    if usable_as_is(X, dtype):
        return X[start:stop]
    return convert_rows(X, start, stop, dtype, "X")


def pass_buffers(sizes, acts, rows: int, dtype) -> tuple:
    """``(work, grad)`` for the passes of ``_kernels.network_loss`` over up to
    ``rows`` rows, on cache lines. A validation set's loss each epoch keeps
    one pair: fresh megabytes each call cost page faults, which with the
    BLAS's threads running measured 3x the pass itself (1597 rows of
    64-128-128-10: 12 ms a call against 4 ms)."""
    return (aligned_empty(_kernels.pass_workspace_size(sizes, rows, acts), dtype),
            aligned_empty(sum(a * b + b for a, b in zip(sizes, sizes[1:])), dtype))


def mean_loss(X, Y, params, sizes, acts, code: int, l2: float, chunk_rows: int,
              buffers=None) -> float:
    """Network's J on validated arrays (X possibly unconverted, see
    :func:`kernel_rows`), in chunks of ``chunk_rows`` rows; ``buffers``: a
    :func:`pass_buffers` pair for at least that many rows, else made here."""
    m = X.shape[0]
    rows = min(m, chunk_rows)
    work, grad = buffers if buffers is not None else pass_buffers(sizes, acts, rows,
                                                                  params.dtype)
    total = 0.0
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        total += (stop - start) * _kernels.network_loss(
            kernel_rows(X, start, stop, params.dtype), Y[start:stop], params, sizes, acts,
            code, 0.0, work, grad, loss_param(code))
    if l2 == 0:
        # no NumPy BLAS call: with scipy's BLAS threads just run by the pass,
        # waking NumPy's own pool cost ~2-8 ms a call on 2 cores (each
        # pool's threads spin on the core the other needs)
        return total / m
    penalty = sum(float(np.dot(W.ravel(), W.ravel())) for W, _ in layer_views(sizes, params))
    return total / m + 0.5 * l2 / m * penalty


def flat_gradient(X, Y, params, sizes, acts, code: int, l2: float, chunk_rows: int):
    """Network's (J, flat gradient) on validated arrays; in chunks of
    ``chunk_rows`` rows, each weighing its share of the rows, beyond that many."""
    m = X.shape[0]
    rows = min(m, chunk_rows)
    work, grad = pass_buffers(sizes, acts, rows, params.dtype)
    if m == rows:
        J = _kernels.network_loss(kernel_rows(X, 0, m, params.dtype), Y, params, sizes, acts,
                                  code, l2, work, grad, loss_param(code))
        return J, grad
    total, J = np.zeros(params.shape, np.float64), 0.0
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        J += (stop - start) / m * _kernels.network_loss(
            kernel_rows(X, start, stop, params.dtype), Y[start:stop], params, sizes, acts,
            code, 0.0, work, grad, loss_param(code))
        total += (stop - start) / m * grad
    # the L2 term once, over all m rows (biases are not penalised)
    for (W, _), (dW, _) in zip(layer_views(sizes, params), layer_views(sizes, total)):
        J += 0.5 * l2 / m * float(np.dot(W.ravel(), W.ravel()))
        dW += l2 / m * W
    return J, total.astype(params.dtype)


class ObjectiveMixin:
    """:meth:`loss`, :meth:`gradients` and :meth:`objective` of :class:`fastbp.Network`."""

    def loss(self, X, Y, loss: str | None = None, l2: float = 0.0) -> float:
        """The objective J on (X, Y); see :mod:`fastbp.losses` for the formulas.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])
        Y : array_like of shape (m, sizes[-1]) or (m,)
            Targets, or class labels as in :meth:`fit`.
        loss : str, Loss or None, default=None
            As in :meth:`fit` (a name, or a :class:`fastbp.HuberLoss` or
            :class:`fastbp.CrossEntropyLoss` with its parameter). None is
            the output's default: ``"cross_entropy"`` for a softmax output,
            ``"mse"`` for any other.
        l2 : float, default=0.0
            λ of the penalty λ/(2m)·Σ‖W‖² (biases are not penalised).

        Returns
        -------
        float
        """
        X, Y, code, l2 = check_objective_args(self, X, Y, loss, l2, lazy=True)
        return mean_loss(X, Y, self.params, *self.kernel_layout, code, l2, OBJECTIVE_CHUNK_ROWS)

    def gradients(self, X, Y, loss: str | None = None, l2: float = 0.0) -> tuple:
        """Gradients of :meth:`loss` with respect to the weights and biases.

        Parameters
        ----------
        X, Y, loss, l2
            As in :meth:`loss` (``loss=None``: the output's default).

        Returns
        -------
        dW : list of ndarray, shaped like :attr:`weights`
        db : list of ndarray, shaped like :attr:`biases`
        """
        X, Y, code, l2 = check_objective_args(self, X, Y, loss, l2, lazy=True)
        grad = self._flat_gradient(X, Y, code, l2)[1]
        views = layer_views(self.sizes, grad)
        return [W for W, _ in views], [b for _, b in views]

    def objective(self, X, Y, sample_weight=None, l2: float = 0.0, *,
                  loss: str | None = None) -> tuple:
        """The weighted loss and its gradient as one flat vector, for optimisers.

        J = Σ w·J_row / Σ w + l2/(2·Σ w)·Σ‖W‖² (biases are not penalised),
        summed 4096 rows at a time (memory O(4096 × width + weights)) as the
        estimators' ``solver="lbfgs"`` sums it. For
        :func:`scipy.optimize.minimize` with ``jac=True``; set its result
        with :meth:`replace_params`.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])
        Y : array_like of shape (m, sizes[-1]) or (m,)
            Targets, or class labels as in :meth:`fit`.
        sample_weight : array_like of shape (m,), optional
            Non-negative weights of the rows; None weighs each row 1.
        l2 : float, default=0.0
            λ of the penalty.
        loss : str, Loss or None, default=None
            As in :meth:`loss`; None is the output's default.

        Returns
        -------
        loss : float
            J at the current parameters.
        gradient : ndarray of shape (n_params,), float64
            dJ/dθ in the layout of :meth:`replace_params`.

        Examples
        --------
        >>> import numpy as np, scipy.optimize, fastbp
        >>> net = fastbp.Network([2, 8, 1], "tanh", "identity", seed=0)
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> Y = X[:, :1] * X[:, 1:]
        >>> def loss_and_gradient(theta):
        ...     net.replace_params(theta)
        ...     return net.objective(X, Y)
        >>> result = scipy.optimize.minimize(loss_and_gradient, net.params, jac=True,
        ...                                  method="L-BFGS-B", options={"maxiter": 50})
        >>> net.replace_params(result.x)
        >>> round(net.loss(X, Y), 2)  # from 0.47
        0.0
        """
        X, Y, code, l2 = check_objective_args(self, X, Y, loss, l2)
        sample_weight = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        params = self.params  # one snapshot, whatever other threads do
        return objective(X, Y, sample_weight, params, *self.kernel_layout, code, l2,
                         weight_mask(self))

    def _flat_gradient(self, X: np.ndarray, Y: np.ndarray, code: int, l2: float):
        """(J, flat gradient) on validated arrays; see :func:`_objective.flat_gradient`."""
        return flat_gradient(X, Y, self.params, *self.kernel_layout, code, l2,
                             OBJECTIVE_CHUNK_ROWS)
