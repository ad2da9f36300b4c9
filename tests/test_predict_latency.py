"""Predict's short paths: a small call's one kernel call, the parameters on
cache lines, a kept workspace, and bfloat16's few-row calls on W's packs
when the network vouches that its parameters are unchanged."""
import pickle

import numpy as np
import pytest

import fastbp
from fastbp import _kernels
from helpers import products_independent_of_splits
from test_bfloat16 import bf16_path  # noqa: F401  (a fixture: each product path in turn)


@pytest.fixture
def rng():
    return np.random.default_rng(3232)


def bf16_net(sizes, seed=0):
    net = fastbp.Network(sizes, activation="relu", output_activation="softmax", dtype="float32",
                         compute_dtype="bfloat16", seed=seed)
    net.replace_params(np.random.default_rng(seed).normal(scale=0.3, size=net.n_params))
    return net


def rounding_path(net, X):
    """The outputs of a predictor that rounds W as it reads it (no packs)."""
    sizes, acts = net.kernel_layout
    model = _kernels.Predictor(sizes, acts, np.array(net.params), compute="bfloat16")
    assert not model.params_fixed
    out = np.empty((X.shape[0], sizes[-1]), np.float32)
    assert model.predict(X, out) == 1
    return out


@pytest.mark.parametrize("sizes", [[784, 256, 128, 10], [33, 65, 17, 3], [5, 3, 2],
                                   [130, 31, 47], [1, 1], [300, 129, 7]])
def test_bf16_few_rows_on_the_packs_keep_the_rounding_bits(bf16_path, rng, sizes):
    net = bf16_net(sizes)
    assert net._predictor().params_fixed
    for m in (1, 2, 3, 7, 8, 9, 130):  # 130: a last block of 2 rows
        X = rng.normal(size=(m, sizes[0])).astype(np.float32)
        with products_independent_of_splits():
            np.testing.assert_array_equal(net.predict(X), rounding_path(net, X), err_msg=str(m))


def test_bf16_one_row_sees_writes_through_layer_params(rng):
    net = bf16_net([40, 64, 32, 5], seed=1)
    X = rng.normal(size=(1, 40)).astype(np.float32)
    first = net.predict(X)  # makes and keeps W's forms
    W0, b0 = net.layer_params()[0]
    assert not net._predictor().params_fixed
    W0 *= -1
    b0 += 1
    after = net.predict(X)
    assert not np.array_equal(after, first)
    np.testing.assert_array_equal(after, rounding_path(net, X))
    W0[0] += 2  # and every later write, on a later one-row call
    np.testing.assert_array_equal(net.predict(X), rounding_path(net, X))
    # views taken before the first predict: its predictor never trusts the forms
    other = bf16_net([40, 64, 32, 5], seed=2)
    W, _ = other.layer_params()[1]
    assert not other._predictor().params_fixed
    W[...] = 0.5
    np.testing.assert_array_equal(other.predict(X), rounding_path(other, X))
    # a new parameter array has no views yet: trusted again
    net.set_weights(net.weights, net.biases)
    assert net._predictor().params_fixed
    np.testing.assert_array_equal(net.predict(X), rounding_path(net, X))


def test_bf16_an_array_published_again_is_read_again(rng):
    net = bf16_net([20, 48, 4])
    X = rng.normal(size=(1, 20)).astype(np.float32)
    own = np.array(net.params)
    with net.training_lease() as lease:
        lease.publish(own)
        before = net.predict(X)
        own *= 2  # against the lease's contract, but a publication makes it current
        lease.publish(own)
        after = net.predict(X)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, rounding_path(net, X))


def test_a_predictor_trusts_only_forms_made_after_the_flag(rng):
    net = bf16_net([64, 48, 10])
    sizes, acts = net.kernel_layout
    params = np.array(net.params)
    model = _kernels.Predictor(sizes, acts, params, compute="bfloat16")
    X = rng.normal(size=(100, 64)).astype(np.float32)
    out = np.empty((100, 10), np.float32)
    model.predict(X, out)  # forms of the first values
    params[:] = rng.normal(scale=0.3, size=params.size)
    model.params_fixed = True  # forms made before are dropped
    model.predict(X, out)
    net.replace_params(params)
    np.testing.assert_array_equal(out, net.predict(X))
    float32 = _kernels.Predictor(sizes, acts, params)
    float32.params_fixed = True
    assert not float32.params_fixed  # only bfloat16 keeps forms


@pytest.mark.parametrize("dtype, compute", [("float64", None), ("float32", None),
                                            ("float32", "bfloat16")])
def test_small_calls_refuse_non_finite_x(rng, dtype, compute):
    net = fastbp.Network([30, 20, 4], dtype=dtype, compute_dtype=compute, seed=0)
    X = rng.normal(size=(5, 30)).astype(dtype)
    want = net.predict(X)
    for value in (np.nan, np.inf):
        bad = X.copy()
        bad[3, 7] = value
        with pytest.raises(ValueError, match=r"first at \[3, 7\]"):
            net.predict(bad)
    np.testing.assert_array_equal(net.predict(X), want)
    sizes, acts = net.kernel_layout
    model = _kernels.Predictor(sizes, acts, np.array(net.params),
                               compute=compute or "float32")
    bad = X.copy()
    bad[0, 0] = np.nan
    assert model.predict(bad, np.empty((5, 4), dtype), None, 1, True) == -1
    assert model.predict(X, np.empty((5, 4), dtype), None, 1, True) == 1


def test_the_parameters_start_on_a_cache_line(rng):
    net = fastbp.Network([784, 128, 10], dtype="float32", seed=0)
    arrays = {"init": net}
    net2 = fastbp.Network([784, 128, 10], dtype="float32", seed=0)
    net2.set_weights(net.weights, net.biases)
    arrays["set_weights"] = net2
    net3 = fastbp.Network([784, 128, 10], dtype="float32", seed=0)
    net3.replace_params(rng.normal(size=net.n_params))
    arrays["replace_params"] = net3
    arrays["copy"] = net.copy()
    arrays["astype"] = net.astype("float64")
    arrays["pickle"] = pickle.loads(pickle.dumps(net))
    for name, each in arrays.items():
        assert each.params.ctypes.data % 64 == 0, name
    odd = np.empty(net.n_params + 1, np.float32)[1:]  # 4 bytes past numpy's alignment
    odd[...] = net.params
    assert odd.ctypes.data % 64 != 0
    aligned = _kernels.on_cache_lines(odd)
    assert aligned.ctypes.data % 64 == 0 and aligned.dtype == odd.dtype
    np.testing.assert_array_equal(aligned, odd)
    ready = _kernels.on_cache_lines(aligned)
    assert ready is aligned


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_kept_workspace_gives_the_same_bits(rng, dtype):
    net = fastbp.Network([200, 64, 10], activation="relu", output_activation="softmax",
                         dtype=dtype, seed=0)
    X = rng.normal(size=(12000, 200)).astype(dtype)
    for threads in (1, 2):
        fresh = fastbp.Network([200, 64, 10], activation="relu", output_activation="softmax",
                               dtype=dtype, seed=0)
        want = fresh.predict(X, n_threads=threads)
        part = fresh.copy().predict(X[:5000], n_threads=threads)
        for rows in (12000, 5000, 12000):  # a workspace kept from a bigger call, then a smaller
            got = net.predict(X[:rows], n_threads=threads)
            np.testing.assert_array_equal(got, want[:rows] if rows == 12000 else part)
        assert net._predictor().spare_work is not None


def test_the_threads_workspace_holds_a_block_not_a_share():
    sizes = np.array([784, 256, 128, 10], np.intc)
    one = _kernels.predict_workspace_share(sizes, 8192, 1)
    two = _kernels.predict_workspace_share(sizes, 8192, 2)
    assert one >= 8192 * (256 + 128 + 10 + 10)  # all rows at once
    assert 256 * (256 + 128 + 10 + 10) <= two < 300 * (256 + 128 + 10 + 10)  # a 256-row block
