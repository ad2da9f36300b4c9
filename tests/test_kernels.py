"""Each compiled kernel's Python twin against fastbp.reference on random shapes."""
import numpy as np
import pytest
from helpers import HIDDEN, as_lists, assert_close, targets

import fastbp
from fastbp import ACTIVATIONS, LOSSES, _kernels, reference
from fastbp.losses import KERNEL_LOSSES

DTYPES = [np.float64, np.float32]
# the wider shapes cover the AVX-512 tiles (12 or 4 rows, 2 vectors wide) with
# every leftover row count 1-3 and leftover columns for BLAS, and products of
# 1-3 rows over 8-vector-wide blocks (150, 290 and 131 columns)
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 4, 9), (13, 33, 17), (64, 40, 70), (19, 50, 35),
          (1, 9, 150), (2, 20, 290), (3, 6, 131)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n_in,n_out", SHAPES)
def test_dense_forward(gemm_path, rng, dtype, m, n_in, n_out):
    z_prev = rng.normal(size=(m, n_in)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    a = np.empty((m, n_out), dtype)
    _kernels.dense_forward(z_prev, W, b, a)
    expected = [reference.neuron_inputs(W.tolist(), b.tolist(), row) for row in z_prev.tolist()]
    assert_close(a, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_matches_reference(rng, dtype, name):
    a = (rng.normal(size=(6, 5)) * 4).astype(dtype)
    a[0, :3] = [0.0, 30.0, -30.0]
    z = np.empty_like(a)
    _kernels.activate(a, z, ACTIVATIONS[name])
    assert_close(z, [reference.activate(name, row) for row in a.tolist()], dtype)


def test_float64_sigmoid_is_within_2_5_ulp_of_the_exact_value():
    # the float64 exp's series is evaluated by Estrin's scheme (csrc/fastbp_math.h),
    # which must not lose accuracy: the oracle is x87 long double, rounded once
    if np.finfo(np.longdouble).nmant < 63:
        pytest.skip("long double is no wider than double here")
    a = np.concatenate([np.linspace(-708.0, 40.0, 700001), [0.0, -0.0, 1e-8, -1e-8]])
    z = np.empty_like(a)
    _kernels.activate(a.reshape(1, -1), z.reshape(1, -1), ACTIVATIONS["sigmoid"])
    x = a.astype(np.longdouble)
    e = np.exp(-np.abs(x))
    exact = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    ulps = np.abs(z - exact) / np.spacing(exact.astype(np.float64))
    assert ulps.max() <= 2.5


def test_float32_sigmoid_is_within_3_ulp_of_the_exact_value():
    # float32 layers take a float exp of their own (csrc/fastbp_math.h);
    # the oracle is NumPy's float64 exp, rounded once
    a = np.concatenate([np.linspace(-87.0, 88.0, 350001), [0.0, -0.0, 1e-8, -1e-8]])
    a = a.astype(np.float32)
    z = np.empty_like(a)
    _kernels.activate(a.reshape(1, -1), z.reshape(1, -1), ACTIVATIONS["sigmoid"])
    x = a.astype(np.float64)
    e = np.exp(-np.abs(x))
    exact = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    ulps = np.abs(z - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 3
    # far below, where e^x is under float's smallest normal, it is 0
    _kernels.activate(np.float32([[-88.0, -1e30]]), z[:2].reshape(1, -1), ACTIVATIONS["sigmoid"])
    np.testing.assert_array_equal(z[:2], [0.0, 0.0])


@pytest.mark.parametrize("dtype,big", [(np.float64, 1e300), (np.float32, 3e38)])
def test_sigmoid_and_softmax_never_overflow(dtype, big):
    a = np.array([[big, -big, 0.0, 800.0, -800.0]], dtype)
    z = np.empty_like(a)
    with np.errstate(all="raise"):
        _kernels.activate(a, z, ACTIVATIONS["sigmoid"])
    assert np.all(np.isfinite(z))
    np.testing.assert_array_equal(z[0, [0, 1, 2]], [1.0, 0.0, 0.5])
    _kernels.activate(a, z, ACTIVATIONS["softmax"])
    assert np.all(np.isfinite(z)) and abs(z.sum() - 1) < 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", HIDDEN)
def test_activation_derivative_from_outputs(rng, dtype, name):
    a = rng.normal(size=(7, 3)).astype(dtype)
    z = np.empty_like(a)
    _kernels.activate(a, z, ACTIVATIONS[name])
    out = np.empty_like(z)
    _kernels.activation_derivative(z, out, ACTIVATIONS[name])
    assert_close(out, [[reference.DERIVATIVES[name](v) for v in row] for row in z.tolist()], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,output", [("mse", o) for o in ACTIVATIONS]
                         + [("bce", "sigmoid"), ("cross_entropy", "softmax")])
def test_loss_and_output_delta(rng, dtype, loss, output):
    m, n = 9, 4
    a = (rng.normal(size=(m, n)) * 3).astype(dtype)
    z = np.empty_like(a)
    _kernels.activate(a, z, ACTIVATIONS[output])
    T = targets(rng, loss, m, n, dtype)
    delta = np.empty_like(a)
    J = _kernels.loss_output_delta(a, z, T, delta, LOSSES[loss], ACTIVATIONS[output])
    # the reference takes z computed by itself from a
    z_ref = [reference.activate(output, row) for row in a.tolist()]
    J_ref = sum(reference.sample_loss(loss, a_row, z_row, t_row)
                for a_row, z_row, t_row in zip(a.tolist(), z_ref, T.tolist())) / m
    delta_ref = [reference.output_delta(loss, output, z_row, t_row, m, a_row)
                 for a_row, z_row, t_row in zip(a.tolist(), z_ref, T.tolist())]
    assert_close(J, J_ref, dtype)
    assert_close(delta, delta_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_loss_and_output_delta(rng, dtype):
    # scikit-learn's half Poisson deviance of the mean exp(a), summed over
    # the outputs and averaged over the rows; zero targets included
    m, n = 9, 3
    a = rng.normal(size=(m, n)).astype(dtype)
    T = rng.poisson(2.0, size=(m, n)).astype(dtype)
    T[0] = 0
    delta = np.empty_like(a)
    J = _kernels.loss_output_delta(a, a, T, delta, KERNEL_LOSSES["poisson"],
                                   ACTIVATIONS["identity"])
    mean, t = np.exp(a.astype(np.float64)), T.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        deviance = np.where(t > 0, t * np.log(t / mean), 0.0) - t + mean
    assert_close(J, deviance.sum(axis=1).mean(), dtype)
    assert_close(delta, (mean - t) / m, dtype)


@pytest.mark.parametrize("loss,output", [("bce", "sigmoid"), ("cross_entropy", "softmax")])
def test_log_losses_are_finite_at_huge_preactivations(loss, output):
    a = np.array([[1e300, -1e300, 0.0], [-1e300, 1e300, 5.0]])
    z = np.empty_like(a)
    _kernels.activate(a, z, ACTIVATIONS[output])
    T = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    delta = np.empty_like(a)
    J = _kernels.loss_output_delta(a, z, T, delta, LOSSES[loss], ACTIVATIONS[output])
    assert np.isfinite(J) and np.all(np.isfinite(delta))
    # the second row is confidently wrong by 2e300: the loss says so
    assert J > 1e299


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,n_next", SHAPES)
@pytest.mark.parametrize("name", HIDDEN)
def test_backprop_delta(gemm_path, rng, dtype, m, n, n_next, name):
    delta_next = rng.normal(size=(m, n_next)).astype(dtype)
    W_next = rng.normal(size=(n, n_next)).astype(dtype)
    a = rng.normal(size=(m, n)).astype(dtype)
    z = np.empty_like(a)
    _kernels.activate(a, z, ACTIVATIONS[name])
    delta = np.empty((m, n), dtype)
    _kernels.backprop_delta(delta_next, W_next, z, ACTIVATIONS[name], delta)
    expected = [reference.backprop(W_next.tolist(), d, zr, name)
                for d, zr in zip(delta_next.tolist(), z.tolist())]
    assert_close(delta, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n_in,n_out", SHAPES)
@pytest.mark.parametrize("l2", [0.0, 0.7])
def test_layer_gradients(gemm_path, rng, dtype, m, n_in, n_out, l2):
    z_prev = rng.normal(size=(m, n_in)).astype(dtype)
    delta = rng.normal(size=(m, n_out)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    dW = np.empty_like(W)
    db = np.empty(n_out, dtype)
    _kernels.layer_gradients(z_prev, delta, W, l2 / m, dW, db)
    dW_ref, db_ref = reference.layer_gradient(z_prev.tolist(), delta.tolist(), W.tolist(), l2, m)
    assert_close(dW, dW_ref, dtype)
    assert_close(db, db_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiled_products_write_only_inside_the_result(rng, dtype):
    # a guard band of NaN around dW and a (as the workspace sits between other
    # buffers in training): the tiles must leave it untouched
    if not _kernels.set_tiled_gemm(True):
        pytest.skip("the CPU has no AVX-512")
    m, n_in, n_out, guard = 19, 50, 35, 64
    z_prev = rng.normal(size=(m, n_in)).astype(dtype)
    delta = rng.normal(size=(m, n_out)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    band = np.full(2 * guard + n_in * n_out, np.nan, dtype)
    dW = band[guard:guard + n_in * n_out].reshape(n_in, n_out)
    db = np.empty(n_out, dtype)
    _kernels.layer_gradients(z_prev, delta, W, 0.0, dW, db)
    band_a = np.full(2 * guard + m * n_out, np.nan, dtype)
    a = band_a[guard:guard + m * n_out].reshape(m, n_out)
    _kernels.dense_forward(z_prev, W, np.zeros(n_out, dtype), a)
    for outer in (band, band_a):
        assert np.isnan(outer[:guard]).all() and np.isnan(outer[-guard:]).all()
    assert_close(dW, z_prev.T.astype(np.float64) @ delta, dtype)
    assert_close(a, z_prev.astype(np.float64) @ W, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2, 3])
def test_few_row_products_give_the_bits_of_the_same_rows_in_a_larger_tile(rng, dtype, m):
    # 1-3 rows go row by row over 8-vector blocks; each sum runs over the inner
    # dimension in the order of the 4-row tile, so the rows come out the same.
    # 160 columns: whole tiles in float32 and float64, nothing left to BLAS
    if not _kernels.set_tiled_gemm(True):
        pytest.skip("the CPU has no AVX-512")
    n_in, n_out, guard = 37, 160, 64
    z_prev = rng.normal(size=(4, n_in)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    four = np.empty((4, n_out), dtype)
    _kernels.dense_forward(z_prev, W, b, four)
    band = np.full(2 * guard + m * n_out, np.nan, dtype)
    few = band[guard:guard + m * n_out].reshape(m, n_out)
    _kernels.dense_forward(z_prev[:m].copy(), W, b, few)
    assert np.isnan(band[:guard]).all() and np.isnan(band[-guard:]).all()
    np.testing.assert_array_equal(few, four[:m])
    assert_close(few, z_prev[:m].astype(np.float64) @ W + b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_out", [32, 64, 96, 100, 160])
def test_every_tile_shape_gives_a_row_the_same_bits(rng, dtype, n_out):
    # panels of 4 vectors (6 x 4 tiles, then 4 x 4 and 1-3 rows) and of 2
    # (12 x 2, ...), and the one-row path: each sums over the inner dimension
    # in the same order, so a row's outputs do not depend on which tile took
    # it. 1..25 rows meet every remainder; a NaN band checks the edges.
    if not _kernels.set_tiled_gemm(True):
        pytest.skip("the CPU has no AVX-512")
    n_in, guard, most = 150, 64, 25
    z_prev = rng.normal(size=(most, n_in)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    every_row = np.empty((most, n_out), dtype)
    _kernels.dense_forward(z_prev, W, b, every_row)
    assert_close(every_row, z_prev.astype(np.float64) @ W + b, dtype)
    for m in range(1, most):
        band = np.full(2 * guard + m * n_out, np.nan, dtype)
        few = band[guard:guard + m * n_out].reshape(m, n_out)
        _kernels.dense_forward(z_prev[:m].copy(), W, b, few)
        assert np.isnan(band[:guard]).all() and np.isnan(band[-guard:]).all()
        np.testing.assert_array_equal(few, every_row[:m])
    # the weight gradient: rows of dW are tile rows, columns panels
    delta = rng.normal(size=(most, n_out)).astype(dtype)
    band = np.full(2 * guard + n_in * n_out, np.nan, dtype)
    dW = band[guard:guard + n_in * n_out].reshape(n_in, n_out)
    db = np.empty(n_out, dtype)
    _kernels.layer_gradients(z_prev, delta, W, 0.0, dW, db)
    assert np.isnan(band[:guard]).all() and np.isnan(band[-guard:]).all()
    assert_close(dW, z_prev.T.astype(np.float64) @ delta, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_products_of_rows_4_kib_apart_match_numpy(rng, dtype):
    # rows of W 1024 float32 (4 KiB) apart: in float32 the copied 4-vector
    # panels take the product when they cover every column and two row tiles
    # or more read them, BLAS otherwise (and in float64); every path must
    # give the product, and the tiles write nothing outside it
    if not _kernels.set_tiled_gemm(True):
        pytest.skip("the CPU has no AVX-512")
    n_in, n_out, guard = 40, 1024, 64
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    b = rng.normal(size=n_out).astype(dtype)
    for m in (5, 12, 13, 30):
        z_prev = rng.normal(size=(m, n_in)).astype(dtype)
        band = np.full(2 * guard + m * n_out, np.nan, dtype)
        a = band[guard:guard + m * n_out].reshape(m, n_out)
        _kernels.dense_forward(z_prev, W, b, a)
        assert np.isnan(band[:guard]).all() and np.isnan(band[-guard:]).all()
        assert_close(a, z_prev.astype(np.float64) @ W + b, dtype)
    # rows of A 4 KiB apart (1024 inputs) and 1000 columns, not a multiple of
    # the 4-vector panel: BLAS takes all of them
    z_wide = rng.normal(size=(30, 1024)).astype(dtype)
    W_edge = rng.normal(size=(1024, 1000)).astype(dtype)
    a_edge = np.empty((30, 1000), dtype)
    _kernels.dense_forward(z_wide, W_edge, b[:1000].copy(), a_edge)
    assert_close(a_edge, z_wide.astype(np.float64) @ W_edge + b[:1000], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update(rng, dtype, momentum, nesterov):
    params = rng.normal(size=23).astype(dtype)
    grad = rng.normal(size=23).astype(dtype)
    velocity = rng.normal(size=23).astype(dtype)
    P, G, V = [params.tolist()], [grad.tolist()], [velocity.tolist()]
    for _ in range(3):  # several steps, so the velocity carries over
        _kernels.optimizer_update("sgd", params, grad, 0.05,
                                  {"momentum": momentum, "nesterov": nesterov},
                                  {"velocity": velocity})
        # the reference steps one "layer" whose matrix is P (no biases)
        V = reference.sgd_step([P], [], [G], [], 0.05, momentum, nesterov, [V])
        V = V[0]
    assert_close(params, P[0], dtype)
    if momentum:
        assert_close(velocity, V[0], dtype)


def test_the_environment_switches_the_tiled_products_off():
    import os
    import subprocess
    import sys
    probe = "import fastbp; from fastbp import _kernels; print(_kernels.tiled_gemm_in_use())"
    env = {k: v for k, v in os.environ.items() if k != "FASTBP_TILED_GEMM"}
    default = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
    off = subprocess.run([sys.executable, "-c", probe], env={**env, "FASTBP_TILED_GEMM": "0"},
                         capture_output=True, text=True, check=True).stdout.strip()
    available = _kernels.set_tiled_gemm(True)  # this process: on where the CPU allows
    assert default == str(available)
    assert off == "False"


def test_kernels_flush_denormals_and_leave_the_process_mode_alone():
    """Inside a kernel call denormals are zero (FTZ/DAZ: an operation on one
    costs ~100 cycles on x86); after it, the rest of the process still
    computes them (the mode is restored)."""
    import platform
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("FTZ/DAZ are set on x86 only")
    tiny = np.finfo(np.float64).tiny
    net = fastbp.Network([1, 1], activation="identity", output_activation="identity", seed=0)
    net.set_weights([np.array([[tiny / 8]])], [np.array([0.0])])
    X = np.array([[1.0]])
    assert net.predict(X)[0, 0] == 0.0                 # the denormal weight reads as zero
    assert np.float64(tiny) / 8 != 0.0                 # NumPy still makes denormals
    with np.errstate(under="ignore"):
        assert (np.array([tiny]) * np.array([0.125]))[0] != 0.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rows", [1, 3, 50])
def test_predictor_sizes_its_own_workspace_when_given_none(rng, dtype, rows):
    net = fastbp.Network([6, 9, 4, 3], activation="tanh", output_activation="softmax",
                         dtype=dtype, seed=2)
    X = rng.normal(size=(rows, 6)).astype(dtype)
    share = _kernels.predict_workspace_share(net._sizes, rows, 1)
    given, own = np.empty((rows, 3), dtype), np.empty((rows, 3), dtype)
    model = _kernels.Predictor(net._sizes, net._acts, net._params)
    assert model.predict(X, given, np.empty(share, dtype)) == 1
    assert model.predict(X, own) == 1
    np.testing.assert_array_equal(own, given)
    W_ref, b_ref, acts = as_lists(net)
    assert_close(own, reference.predict(W_ref, b_ref, acts, X.astype(np.float64).tolist()),
                 np.dtype(dtype))
    with pytest.raises(ValueError, match="work is smaller"):
        model.predict(X, own, np.empty(share - 1, dtype))
    # the threads (here checking X) size theirs too
    threaded = np.full((rows, 3), np.nan, dtype)
    assert model.predict(X, threaded, None, 2, True) in (1, 2)
    assert_close(threaded, own, np.dtype(dtype))


def test_layer_specs_point_at_each_layers_weights_biases_and_outputs():
    # the offsets the kernels walk (fbp_layers_init) against Network's own
    # views of the flat parameters, and z_1..z_L back to back in a row
    net = fastbp.Network([5, 7, 3, 2], activation=["tanh", "relu"], output_activation="softmax",
                         seed=3)
    specs, n_params = _kernels.layer_specs(net._sizes, net._acts)
    assert n_params == net._params.size
    assert [spec["z"] for spec in specs] == [0, 7, 10]
    for spec, W, b, code in zip(specs, net.weights, net.biases, net._acts):
        assert (spec["n_in"], spec["n_out"]) == W.shape
        np.testing.assert_array_equal(net._params[spec["W"]:spec["b"]].reshape(W.shape), W)
        np.testing.assert_array_equal(net._params[spec["b"]:spec["b"] + b.size], b)
        assert (spec["activation"], spec["train_op"]) == (code, 0)  # FBP_OP_NONE
    with pytest.raises(ValueError, match="acts one code per layer"):
        _kernels.layer_specs(net._sizes, net._acts[:2])


def test_predictor_checks_its_description():
    sizes, acts = np.array([3, 4, 2], np.intc), np.array([1, 4], np.intc)
    params = np.zeros(3 * 4 + 4 + 4 * 2 + 2)
    with pytest.raises(TypeError, match="sizes must be a C-contiguous 1-D np.intc array"):
        _kernels.Predictor([3, 4, 2], acts, params)
    with pytest.raises(ValueError, match="sizes needs 2 to 64 layer widths, got 65"):
        _kernels.Predictor(np.ones(65, np.intc), np.ones(64, np.intc), params)
    with pytest.raises(ValueError, match="every layer width must be >= 1"):
        _kernels.Predictor(np.array([3, 0, 2], np.intc), acts, params)
    with pytest.raises(ValueError, match=r"acts needs one code per layer after the input \(2\)"):
        _kernels.Predictor(sizes, acts[:1], params)
    with pytest.raises(ValueError, match="unknown activation code"):
        _kernels.Predictor(sizes, np.array([1, 99], np.intc), params)
    with pytest.raises(TypeError, match="params must be float32 or float64, got int64"):
        _kernels.Predictor(sizes, acts, np.zeros(26, np.int64))
    with pytest.raises(ValueError, match="params has 25 elements; sizes .* need 26"):
        _kernels.Predictor(sizes, acts, params[:25])
    with pytest.raises(ValueError, match="params must be C-contiguous"):
        _kernels.Predictor(sizes, acts, np.zeros(52)[::2])
    model = _kernels.Predictor(sizes, acts, params)
    assert model.params is params  # referenced, not copied
    np.testing.assert_array_equal(model.sizes, sizes)
    sizes[1] = 5  # the predictor keeps its own copy of the description
    assert model.sizes.tolist() == [3, 4, 2] and not model.sizes.flags.writeable


def test_network_builds_its_predictor_once_per_parameter_array(rng):
    import copy
    import pickle
    net = fastbp.Network([4, 6, 3], activation="tanh", output_activation="softmax", seed=1)
    X = rng.normal(size=(9, 4))
    first = net.predict(X)
    model = net._compiled_predictor
    assert model.params is net._params
    np.testing.assert_array_equal(net.predict(X[:2]), first[:2])
    assert net._compiled_predictor is model  # built once for this array
    weights = net.weights
    weights[0] *= 2
    net.set_weights(weights, net.biases)  # a new parameter array: a new predictor
    doubled = net.predict(X)
    assert net._compiled_predictor is not model and net._compiled_predictor.params is net._params
    assert not np.array_equal(doubled, first)
    W_ref, b_ref, acts = as_lists(net)
    assert_close(doubled, reference.predict(W_ref, b_ref, acts, X.tolist()), np.float64)
    # a Predictor does not pickle; a network that has one does, and predicts alike
    for restored in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), net.copy()):
        assert "_compiled_predictor" not in vars(restored)
        np.testing.assert_array_equal(restored.predict(X), doubled)
