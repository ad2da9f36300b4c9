"""The loss and gradient over all rows, summed chunk by chunk so memory
stays O(chunk × width + weights), whatever the rows: lbfgs's weighted
objective (:meth:`fastbp.Network.objective`, one machine's X or one Dask
worker's partitions), and the sums behind ``Network.loss`` and
``Network.gradients``."""
from __future__ import annotations

import numpy as np

from . import _kernels
from ._validation import convert_rows, usable_as_is

#: rows a pass holds at once: large enough for full-speed products
OBJECTIVE_CHUNK_ROWS = 4096


def workspace_size(sizes, rows: int) -> int:
    """Items of the passes' workspace for chunks of up to ``rows`` rows."""
    return _kernels.pass_workspace_size(sizes, max(1, min(rows, OBJECTIVE_CHUNK_ROWS)))


def workspace_for(sizes, rows: int, dtype) -> np.ndarray:
    """The passes' workspace for chunks of up to ``rows`` rows."""
    return np.empty(workspace_size(sizes, rows), dtype)


def weighted_sums(X, Y, sample_weight, params, sizes, acts, loss_code, work=None):
    """(Σw·data term, Σw·gradient of the data term in float64, Σw) of the rows.

    X: dense rows or CSR rows; ``sample_weight``: None (all rows weigh 1) or
    one weight a row; ``work``: a workspace from :func:`workspace_for`.
    """
    m = X.shape[0]
    if work is None:
        work = workspace_for(sizes, m, params.dtype)
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
                                                  sizes, acts, loss_code, 0.0, work, grad)
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


def mean_loss(X, Y, params, sizes, acts, code: int, l2: float, chunk_rows: int) -> float:
    """Network's J on validated arrays (X possibly unconverted, see
    :func:`kernel_rows`), in chunks of ``chunk_rows`` rows."""
    m = X.shape[0]
    rows = min(m, chunk_rows)
    work = np.empty(_kernels.pass_workspace_size(sizes, rows), params.dtype)
    grad = np.empty_like(params)
    total = 0.0
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        total += (stop - start) * _kernels.network_loss(
            kernel_rows(X, start, stop, params.dtype), Y[start:stop], params, sizes, acts,
            code, 0.0, work, grad)
    penalty = sum(float(np.dot(W.ravel(), W.ravel())) for W, _ in layer_views(sizes, params))
    return total / m + 0.5 * l2 / m * penalty


def flat_gradient(X, Y, params, sizes, acts, code: int, l2: float, chunk_rows: int):
    """Network's (J, flat gradient) on validated arrays; in chunks of
    ``chunk_rows`` rows, each weighing its share of the rows, beyond that many."""
    m = X.shape[0]
    rows = min(m, chunk_rows)
    work = np.empty(_kernels.pass_workspace_size(sizes, rows), params.dtype)
    grad = np.empty_like(params)
    if m == rows:
        J = _kernels.network_loss(kernel_rows(X, 0, m, params.dtype), Y, params, sizes, acts,
                                  code, l2, work, grad)
        return J, grad
    total, J = np.zeros(params.shape, np.float64), 0.0
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        J += (stop - start) / m * _kernels.network_loss(
            kernel_rows(X, start, stop, params.dtype), Y[start:stop], params, sizes, acts,
            code, 0.0, work, grad)
        total += (stop - start) / m * grad
    # the L2 term once, over all m rows (biases are not penalised)
    for (W, _), (dW, _) in zip(layer_views(sizes, params), layer_views(sizes, total)):
        J += 0.5 * l2 / m * float(np.dot(W.ravel(), W.ravel()))
        dW += l2 / m * W
    return J, total.astype(params.dtype)
