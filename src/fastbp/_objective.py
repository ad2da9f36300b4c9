"""lbfgs's objective: the weighted loss and gradient over all rows, summed
chunk by chunk so memory stays O(chunk × width + weights), whatever the
rows (one machine's X, or one Dask worker's partitions)."""
from __future__ import annotations

import numpy as np

from . import _kernels

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


def weight_mask(network) -> np.ndarray:
    """True at the parameters that are weights (biases are not penalised)."""
    is_weight = np.zeros(network._params.size, bool)
    for W, _ in network._layer_views(is_weight):
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
