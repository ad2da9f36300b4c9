"""Predict in bfloat16 mixed precision (csrc/predict_bf16.pxi) against a NumPy emulation.

The emulation rounds X, every W and every hidden z to bfloat16 (nearest,
ties to even) and multiplies in float64. The kernel sums in float32, so its
outputs differ from the emulation by float32 rounding, which the checks
bound layer by layer: (k + 2) u (|z|.|W| + |b|) for a product of k terms,
carried through each activation by its slope. A hidden z whose bound reaches
a bfloat16 rounding boundary may round to the neighbouring bfloat16 value in
the kernel: only there is one bfloat16 step allowed. Each layer's path
(packs on AMX or AVX512-BF16, float32 products of rounded values, operands
rounded as read) is forced in turn through the tuning knobs and the product
path through _kernels.set_bf16_path."""
import numpy as np
import pytest
import scipy.sparse

import fastbp
from fastbp import _kernels
from helpers import products_independent_of_splits
from test_bfloat16 import bf16_path  # noqa: F401  (a fixture: each product path in turn)

U = 2.0 ** -24  # float32's unit roundoff
SLOPE = {"identity": 1.0, "relu": 1.0, "tanh": 1.0, "sigmoid": 0.25}


@pytest.fixture
def rng():
    return np.random.default_rng(2929)


# the knobs (block rows, rounding rows, narrowest packed side) that put
# every layer on one path: the default mix, packs everywhere (where the
# product path is not the emulated one), rounded float32 products
# everywhere, operands rounded as read everywhere
LAYER_PATHS = {"default": (-1, -1, -1), "packed": (-1, -1, 1), "float": (-1, -1, 10**6),
               "rounding": (-1, 10**6, -1)}


@pytest.fixture(params=list(LAYER_PATHS))
def layer_path(request):
    old = _kernels.set_bf16_predict_tuning(*LAYER_PATHS[request.param])
    try:
        yield request.param
    finally:
        _kernels.set_bf16_predict_tuning(*old)


def to_bf16(x):
    """x (float64 values) rounded to bfloat16, by choosing between the two
    bfloat16 neighbours of x's float32 value in float64, ties to even."""
    x32 = np.asarray(x, np.float32)
    assert np.isfinite(x32).all()
    low = x32.view(np.uint32) & np.uint32(0xFFFF0000)  # toward zero
    high = low + np.uint32(0x10000)
    v_low = low.view(np.float32).astype(np.float64)
    v_high = high.view(np.float32).astype(np.float64)
    xd = x32.astype(np.float64)  # a float32 value first, as the kernel's
    d_low, d_high = np.abs(xd - v_low), np.abs(v_high - xd)
    pick_high = (d_high < d_low) | ((d_high == d_low) & ((low >> 16) % 2 == 1))
    return np.where(pick_high, v_high, v_low)


def bf16_steps(r):
    """The bfloat16 steps above and below |r| (r a bfloat16 value)."""
    mag = np.abs(np.asarray(r, np.float32)).view(np.uint32)
    up = (mag + np.uint32(0x10000)).view(np.float32).astype(np.float64) - np.abs(r)
    below = (np.maximum(mag, np.uint32(0x10000)) - np.uint32(0x10000)).view(np.float32)
    down = np.where(mag >= 0x10000, np.abs(r) - below, up)
    return up, down


def emulate(net, X):
    """(outputs, bound): the emulation's outputs in float64 and the most the
    kernel's may differ from them."""
    z = to_bf16(X)
    dz = np.zeros_like(z)  # how far the kernel's rounded input may be from z
    n_layers = len(net.sizes) - 1
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        Wr, b = to_bf16(W), b.astype(np.float64)
        a = z @ Wr + b
        k = W.shape[0]
        da = dz @ np.abs(Wr) + (k + 2) * U * ((np.abs(z) + dz) @ np.abs(Wr) + np.abs(b))
        name = net.activations[l] if l < n_layers - 1 else net.output_activation
        if name == "softmax":
            e = np.exp(a - a.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
            spread = 2 * da.max(axis=1, keepdims=True)
            bound = out * np.expm1(spread) + 4e-6 * out + 1e-7
        else:
            out = {"identity": lambda v: v, "relu": lambda v: np.maximum(v, 0),
                   "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[name](a)
            bound = SLOPE[name] * da + (0 if name in ("identity", "relu")
                                         else 4e-6 * np.abs(out) + 1e-7)
        if l == n_layers - 1:
            return out, bound
        z = to_bf16(out)
        up, down = bf16_steps(z)
        margin = np.minimum(np.abs(z) + up / 2 - np.abs(out), np.abs(out) - (np.abs(z) - down / 2))
        near_tie = bound >= margin  # the kernel's z may round to a neighbour
        dz = np.where(near_tie, bound + np.maximum(up, down), 0.0)
    raise AssertionError("not reached")


def check(net, X, got):
    want, bound = emulate(net, X)
    assert got.dtype == np.float32 and got.shape == want.shape
    excess = np.abs(got.astype(np.float64) - want) - bound
    assert (excess <= 0).all(), f"worst {np.max(excess):.3g} past the bound"


def bf16_net(sizes, activation="relu", output_activation="identity", seed=0,
             compute_dtype="bfloat16"):
    net = fastbp.Network(sizes, activation=activation, output_activation=output_activation,
                         dtype="float32", seed=seed, compute_dtype=compute_dtype)
    rng = np.random.default_rng(seed)
    net.replace_params(rng.normal(scale=0.3, size=net.n_params))  # biases too
    return net


SHAPES = [  # ragged widths, a few units, the benchmark's; rows below, at and past a block
    ([784, 256, 128, 10], 300), ([784, 128, 10], 37), ([5, 3, 2], 40), ([1, 1], 9),
    ([33, 65, 17, 3], 513), ([20, 40, 16, 12], 8), ([64, 64], 256), ([130, 31, 47], 1),
    ([784, 256, 128, 10], 3),
]


@pytest.mark.parametrize("sizes, m", SHAPES)
@pytest.mark.parametrize("output", ["identity", "sigmoid", "tanh", "relu", "softmax"])
def test_predict_equals_the_emulation(layer_path, rng, sizes, m, output):
    net = bf16_net(sizes, activation="tanh" if output == "relu" else "relu",
                   output_activation=output)
    X = rng.normal(size=(m, sizes[0])).astype(np.float32)
    check(net, X, net.predict(X, n_threads=1))


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "identity"])
def test_hidden_activations(layer_path, rng, hidden):
    net = bf16_net([50, 40, 30, 4], activation=hidden, output_activation="softmax")
    X = rng.normal(size=(70, 50)).astype(np.float32)
    check(net, X, net.predict(X))


@pytest.mark.parametrize("sizes, m", [([784, 256, 128, 10], 300), ([33, 65, 17, 3], 64),
                                      ([20, 40, 16, 12], 9)])
def test_every_product_path(bf16_path, layer_path, rng, sizes, m):
    net = bf16_net(sizes, output_activation="softmax")
    X = rng.normal(size=(m, sizes[0])).astype(np.float32)
    check(net, X, net.predict(X))


def test_the_paths_agree_to_float32_rounding(rng):
    net = bf16_net([784, 256, 128, 10], output_activation="sigmoid")
    X = rng.normal(size=(260, 784)).astype(np.float32)
    outputs = {}
    try:
        for path in _kernels.bf16_paths():
            _kernels.set_bf16_path(path)
            outputs[path] = net.predict(X)
    finally:
        _kernels.set_bf16_path("auto")
    want, bound = emulate(net, X)
    for path, got in outputs.items():
        np.testing.assert_array_less(np.abs(got - outputs["emulated"]), 2 * bound + 1e-30,
                                     err_msg=path)


@pytest.mark.parametrize("sizes", [[16, 8], [24, 16, 6], [64, 32]])
def test_the_bound_tells_bfloat16_from_float32(rng, sizes):
    # the same network computed in float32 fails the check: it has teeth.
    # (Over k = 784 terms the worst case of float32 sums, k u, is as large
    # as the effect of rounding the operands, ~2^-9 / sqrt(k): small k here.)
    X = rng.normal(size=(50, sizes[0])).astype(np.float32)
    check(bf16_net(sizes), X, bf16_net(sizes).predict(X))
    net32 = bf16_net(sizes, compute_dtype="float32")
    with pytest.raises(AssertionError, match="past the bound"):
        check(net32, X, net32.predict(X))


@pytest.mark.parametrize("sizes, m", [([784, 256, 128, 10], 1000), ([33, 65, 17, 3], 700),
                                      ([5, 3, 2], 3000)])
def test_thread_counts_give_the_same_bits(rng, sizes, m):
    with products_independent_of_splits():
        thread_counts_give_the_same_bits(rng, sizes, m)


def thread_counts_give_the_same_bits(rng, sizes, m):
    net = bf16_net(sizes, output_activation="softmax")
    X = rng.normal(size=(m, sizes[0])).astype(np.float32)
    one = net.predict(X, n_threads=1)
    for threads in (2, 3, 4):
        np.testing.assert_array_equal(net.predict(X, n_threads=threads), one)
    sizes_arr, acts = net.kernel_layout
    model = _kernels.Predictor(sizes_arr, acts, np.array(net.params), compute="bfloat16")
    for threads in (1, 2, 3):
        out = np.empty_like(one)
        assert model.predict(X, out, n_threads=threads) >= 1
        np.testing.assert_array_equal(out, one)
    check(net, X, one)


def test_predict_after_new_weights_uses_them(rng):
    net = bf16_net([40, 64, 32, 5], output_activation="softmax", seed=1)
    X = rng.normal(size=(300, 40)).astype(np.float32)
    first = net.predict(X)
    # fit, replace_params, set_weights and writes into layer_params' views
    net.fit(X, rng.normal(size=(300, 5)).argmax(axis=1), epochs=2, seed=0)
    check(net, X, net.predict(X))
    net.replace_params(rng.normal(scale=0.3, size=net.n_params))
    check(net, X, net.predict(X))
    net.set_weights([W * 2 for W in net.weights], net.biases)
    check(net, X, net.predict(X))
    W0, b0 = net.layer_params()[0]
    W0 *= -1
    b0 += 1
    after = net.predict(X)
    check(net, X, after)
    assert not np.array_equal(after, first)


def test_a_predictor_notices_its_params_changing_in_place(rng):
    net = bf16_net([64, 48, 10], output_activation="identity")
    sizes, acts = net.kernel_layout
    params = np.array(net.params)
    model = _kernels.Predictor(sizes, acts, params, compute="bfloat16")
    X = rng.normal(size=(100, 64)).astype(np.float32)
    out = np.empty((100, 10), np.float32)
    model.predict(X, out)
    before = out.copy()
    params[:] = rng.normal(scale=0.3, size=params.size)  # in place: same array
    model.predict(X, out)
    net.replace_params(params)
    check(net, X, out)
    assert not np.allclose(out, before)
    one_row = np.empty((1, 10), np.float32)
    model.predict(X[:1], one_row)  # the rounding path reads params as they are
    np.testing.assert_allclose(one_row, out[:1], rtol=1e-5, atol=1e-6)


def test_float32_compute_keeps_its_bits(rng):
    with products_independent_of_splits():
        float32_compute_keeps_its_bits(rng)


def float32_compute_keeps_its_bits(rng):
    sizes = [30, 50, 20, 4]
    default = fastbp.Network(sizes, activation="relu", output_activation="softmax",
                             dtype="float32", seed=3)
    explicit = fastbp.Network(sizes, activation="relu", output_activation="softmax",
                              dtype="float32", seed=3, compute_dtype="float32")
    X = rng.normal(size=(5000, 30)).astype(np.float32)
    np.testing.assert_array_equal(explicit.predict(X), default.predict(X))
    s, acts = default.kernel_layout
    params = np.array(default.params)
    plain = _kernels.Predictor(s, acts, params)
    named = _kernels.Predictor(s, acts, params, compute="float32")
    assert plain.compute == named.compute == "float32"
    a, b = np.empty((5000, 4), np.float32), np.empty((5000, 4), np.float32)
    plain.predict(X, a, n_threads=2)
    named.predict(X, b, n_threads=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, default.predict(X, n_threads=2))
    # and bfloat16 differs from it: the rounding is there
    bf = bf16_net(sizes, output_activation="softmax", compute_dtype="bfloat16")
    f32 = bf16_net(sizes, output_activation="softmax", compute_dtype="float32")
    assert not np.array_equal(bf.predict(X), f32.predict(X))


def test_inputs_of_other_layouts_and_sparse_rows(rng):
    net = bf16_net([40, 64, 6], output_activation="sigmoid")
    X = rng.normal(size=(600, 40))
    X[X < 0.5] = 0
    want = net.predict(X.astype(np.float32))
    check(net, X.astype(np.float32), want)
    np.testing.assert_array_equal(net.predict(X), want)                      # float64
    np.testing.assert_array_equal(net.predict(np.asfortranarray(X)), want)   # Fortran order
    np.testing.assert_array_equal(net.predict(scipy.sparse.csr_matrix(X)), want)


def test_non_finite_x_is_refused(rng):
    net = bf16_net([40, 64, 6])
    X = rng.normal(size=(3000, 40)).astype(np.float32)
    X[2500, 3] = np.nan
    for threads in (1, 2):
        with pytest.raises(ValueError, match="finite|NaN"):
            net.predict(X, n_threads=threads)
    sizes, acts = net.kernel_layout
    model = _kernels.Predictor(sizes, acts, np.array(net.params), compute="bfloat16")
    out = np.empty((3000, 6), np.float32)
    assert model.predict(X, out, n_threads=2, check_finite=True) == -1


def test_bad_settings_raise():
    sizes = np.array([3, 2], np.intc)
    acts = np.array([0], np.intc)
    with pytest.raises(ValueError, match="compute must be"):
        _kernels.Predictor(sizes, acts, np.zeros(8, np.float32), compute="float16")
    with pytest.raises(ValueError, match="needs float32 params"):
        _kernels.Predictor(sizes, acts, np.zeros(8), compute="bfloat16")
    model = _kernels.Predictor(sizes, acts, np.zeros(8, np.float32), compute="bfloat16")
    with pytest.raises(ValueError, match="work must be None"):
        model.predict(np.zeros((2, 3), np.float32), np.empty((2, 2), np.float32),
                      np.empty(100, np.float32))
    with pytest.raises(ValueError, match="out must have"):
        model.predict(np.zeros((2, 3), np.float32), np.empty((3, 2), np.float32))
    with pytest.raises(ValueError, match="unknown compute_dtype"):
        fastbp.Network([3, 2], dtype="float32", compute_dtype="bf16")
    with pytest.raises(ValueError, match="needs dtype='float32'"):
        fastbp.Network([3, 2], dtype="float64", compute_dtype="bfloat16")
    with pytest.raises(ValueError, match="knobs"):
        _kernels.set_bf16_predict_tuning(0)


def test_no_rows():
    net = bf16_net([3, 4, 2])
    sizes, acts = net.kernel_layout
    model = _kernels.Predictor(sizes, acts, np.array(net.params), compute="bfloat16")
    out = np.empty((0, 2), np.float32)
    assert model.predict(np.zeros((0, 3), np.float32), out, n_threads=2) == 1
