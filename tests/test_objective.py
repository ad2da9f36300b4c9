"""lbfgs's objective summed chunk by chunk (fastbp._objective)."""
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import fastbp
from fastbp import LOSSES, _kernels
from fastbp._objective import (OBJECTIVE_CHUNK_ROWS, mean_objective, weight_mask,
                               weighted_sums)
from fastbp._sparse import as_csr_rows

ROWS = 2 * OBJECTIVE_CHUNK_ROWS + 123  # three chunks, the last one short


def problem(dtype, sparse=False):
    rng = np.random.default_rng(0)
    net = fastbp.Network([12, 9, 4], activation="tanh", output_activation="softmax", seed=1,
                         dtype=dtype)
    X = rng.normal(size=(ROWS, 12)) * (rng.random((ROWS, 12)) < 0.3)
    Y = np.eye(4)[rng.integers(0, 4, ROWS)].astype(dtype)
    weights = rng.uniform(0, 2, ROWS).astype(dtype)
    weights[OBJECTIVE_CHUNK_ROWS:2 * OBJECTIVE_CHUNK_ROWS] = 0  # a chunk of weight 0
    X = as_csr_rows(sp.csr_matrix(X), dtype, "X") if sparse else X.astype(dtype)
    return net, X, Y, weights


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_chunked_sums_equal_one_pass_over_all_rows(dtype, rtol, sparse):
    net, X, Y, weights = problem(dtype, sparse)
    code = LOSSES["cross_entropy"]
    l2 = 0.3
    for sw in (None, weights):
        sums = weighted_sums(X, Y, sw, net._params, net._sizes, net._acts, code)
        J, grad = mean_objective(sums, net._params, weight_mask(net), l2)
        # the oracle: one kernel call over every row, L2 term included
        work = np.empty(_kernels.pass_workspace_size(net._sizes, ROWS), net.dtype)
        whole = np.empty_like(net._params)
        data, penalty = _kernels.weighted_loss_gradient(
            X, Y, sw if sw is not None else np.empty(0, net.dtype), net._params, net._sizes,
            net._acts, code, l2, work, whole)
        assert sums[2] == pytest.approx(ROWS if sw is None else weights.sum(dtype=np.float64), rel=1e-12)
        assert J == pytest.approx(data + penalty, rel=rtol)
        np.testing.assert_allclose(grad, whole, rtol=rtol, atol=rtol * np.abs(whole).max())


def test_memory_is_one_chunk_not_all_rows():
    net, X, Y, _ = problem("float64")
    code = LOSSES["cross_entropy"]
    tracemalloc.start()
    weighted_sums(X, Y, None, net._params, net._sizes, net._acts, code)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    all_rows = _kernels.pass_workspace_size(net._sizes, ROWS) * 8
    one_chunk = _kernels.pass_workspace_size(net._sizes, OBJECTIVE_CHUNK_ROWS) * 8
    assert peak < one_chunk + 64 * 1024 < all_rows


def test_an_lbfgs_fit_on_many_rows_matches_the_network_gradient():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(ROWS, 5))
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=ROWS)
    est = fastbp.MLPRegressor(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=200,
                              random_state=0).fit(X, y)
    # the fitted gradient is near zero by Network.gradients' independent chunked sum
    net = est._net
    dW, db = net.gradients(X, y.reshape(-1, 1), loss="mse", l2=est.alpha)
    assert max(np.abs(g).max() for g in dW + db) < 1e-2
    assert est.score(X, y) > 0.99
