"""The public contract for bad input, equivalent input layouts and divergence.

Every bad input must raise ValueError or TypeError with a message naming the
problem; every accepted layout must give exactly the answer of a C-contiguous
float64 array.
"""
import math
import re
import warnings

import numpy as np
import pytest

import fastbp
from fastbp.optim import Constant, Optimizer

N_IN, N_HIDDEN, N_OUT = 3, 4, 2


def make_net(sizes=(N_IN, N_HIDDEN, N_OUT), **kwargs):
    kwargs.setdefault("seed", 0)
    return fastbp.Network(list(sizes), **kwargs)


def make_data(n=6, n_in=N_IN, n_out=N_OUT, seed=0):
    """Integer-valued float64 data, so integer and float layouts are interchangeable."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, n_in)).astype(np.float64)
    Y = rng.integers(0, 2, size=(n, n_out)).astype(np.float64)
    return X, Y


def call(net, method, X, Y=None, **kwargs):
    """Run one public entry point of ``net`` on (X, Y)."""
    if method == "predict":
        return net.predict(X)
    if method == "fit":
        kwargs.setdefault("epochs", 1)
        kwargs.setdefault("batch_size", 2)
        kwargs.setdefault("shuffle", False)
        return net.fit(X, Y, **kwargs)
    return getattr(net, method)(X, Y, **kwargs)


def params_of(net):
    return [w.copy() for w in net.weights] + [b.copy() for b in net.biases]


def assert_params_equal(before, after):
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


METHODS = ["predict", "loss", "gradients", "fit"]
METHODS_WITH_Y = ["loss", "gradients", "fit"]


# ---------------------------------------------------------------------------
# NaN, inf and overflow
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method,where", [(m, "X") for m in METHODS]
                         + [(m, "Y") for m in METHODS_WITH_Y])
def test_non_finite_input_is_rejected(method, where, value, dtype):
    net = make_net(dtype=dtype)
    X, Y = make_data()
    target = X if where == "X" else Y
    target[4, 1] = value
    before = params_of(net)
    with pytest.raises(ValueError, match=rf"{where} contains 1 NaN or infinite value\(s\), "
                                         r"first at \[4, 1\]"):
        call(net, method, X, Y)
    assert_params_equal(before, params_of(net))


@pytest.mark.parametrize("method,where", [(m, "X") for m in METHODS]
                         + [(m, "Y") for m in METHODS_WITH_Y])
def test_value_overflowing_float32_is_rejected(method, where):
    net = make_net(dtype="float32")
    X, Y = make_data()
    target = X if where == "X" else Y
    target[2, 0] = 1e300
    before = params_of(net)
    with pytest.raises(ValueError, match=rf"{where}\[2, 0\] = .*1e\+300.* overflows float32"):
        call(net, method, X, Y)
    assert_params_equal(before, params_of(net))


@pytest.mark.parametrize("dtype,huge", [("float32", 1e30), ("float64", 1e200)])
def test_huge_finite_values_are_accepted_and_a_nan_among_them_is_found(dtype, huge):
    # their squares overflow: the check must not mistake that for a non-finite value
    from fastbp._validation import _check_finite
    X = np.full((50, 40), huge, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_finite(X, "X")
    X[31, 7] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN or infinite value\(s\), "
                                         r"first at \[31, 7\]"):
        _check_finite(X, "X")


def test_value_overflowing_float32_in_a_list_is_rejected():
    net = make_net(dtype="float32")
    X = [[1.0, 2.0, 3.0], [4.0, -1e300, 6.0]]
    with pytest.raises(ValueError, match=r"X\[1, 1\] = .* overflows float32"):
        net.predict(X)


def test_long_double_overflowing_float64_is_rejected():
    net = make_net(dtype="float64")
    X = np.ones((2, N_IN), dtype=np.longdouble)
    X[1, 2] = np.longdouble("1e4000")
    if not np.isfinite(X[1, 2]):
        pytest.skip("long double has no wider range than double on this platform")
    with pytest.raises(ValueError, match=r"X\[1, 2\] = .* overflows float64"):
        net.predict(X)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_int_too_large_for_a_float_is_rejected(dtype):
    # 10**400 does not fit any float: a Python list holding it must be refused
    # with ValueError like any other overflow, not leak OverflowError.
    net = make_net(dtype=dtype)
    X = [[1, 2, 3], [10 ** 400, 5, 6]]
    with pytest.raises(ValueError, match=r"X"):
        net.predict(X)


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------

SHAPE_CASES = {
    # name: (X shape, Y shape, regex)
    "X wrong columns": ((6, 2), (6, N_OUT), r"X has 2 columns, the network expects 3"),
    "Y wrong columns": ((6, N_IN), (6, 3), r"Y has 3 columns, the network expects 2"),
    "row mismatch": ((6, N_IN), (5, N_OUT), r"X has 6 rows but Y has 5"),
    "X 3-D": ((6, N_IN, 1), (6, N_OUT), r"X must be a 2-D array, got 3-D"),
    "Y 3-D": ((6, N_IN), (6, N_OUT, 1), r"Y must be a 2-D array, got 3-D"),
    "X 1-D": ((N_IN,), (1, N_OUT), r"X must be a 2-D array, got 1-D.*reshape"),
    "Y 1-D with 2 outputs": ((6, N_IN), (6,), r"Y is 1-D but the network has 2 outputs"),
    "X 0-D": ((), (1, N_OUT), r"X must be a 2-D array, got 0-D"),
    "X no rows": ((0, N_IN), (0, N_OUT), r"X is empty: shape \(0, 3\)"),
    "X no columns": ((6, 0), (6, N_OUT), r"X is empty: shape \(6, 0\)"),
    "Y no rows": ((6, N_IN), (0, N_OUT), r"Y is empty: shape \(0, 2\)"),
    "Y no columns": ((6, N_IN), (6, 0), r"Y is empty: shape \(6, 0\)"),
}


@pytest.mark.parametrize("case,method", [
    (case, method) for case in sorted(SHAPE_CASES) for method in METHODS
    if method != "predict" or case.startswith("X")  # predict takes no Y
])
def test_bad_shapes_are_rejected(case, method):
    x_shape, y_shape, pattern = SHAPE_CASES[case]
    net = make_net()
    X = np.ones(x_shape)
    Y = np.full(y_shape, 0.5)
    before = params_of(net)
    with pytest.raises(ValueError, match=pattern):
        call(net, method, X, Y)
    assert_params_equal(before, params_of(net))


def test_one_dimensional_X_rejected_even_for_one_input():
    net = make_net(sizes=(1, 2, 1))
    with pytest.raises(ValueError, match=r"X must be a 2-D array, got 1-D"):
        net.predict(np.arange(4.0))


# ---------------------------------------------------------------------------
# Non-numeric data
# ---------------------------------------------------------------------------

NON_NUMERIC = {
    "list of strings": ([["a", "b", "c"]] * 2, r"X must hold numbers, got dtype <U1"),
    "numeric strings": (np.array([["1", "2", "3"]] * 2), r"X must hold numbers, got dtype <U1"),
    "bytes": (np.array([[b"1", b"2", b"3"]] * 2), r"X must hold numbers, got dtype \|S1"),
    "object strings": (np.array([["a", "b", "c"]] * 2, dtype=object), r"X holds non-numeric values"),
    "object numeric strings": (np.array([["1", "2", "3"]] * 2, dtype=object), r"X"),
    "object mixed": (np.array([[1.0, "x", 2.0]] * 2, dtype=object), r"X holds non-numeric values"),
    "object complex": (np.array([[1.0, 2j, 3.0]] * 2, dtype=object), r"X holds non-numeric values"),
    "complex": (np.ones((2, 3), dtype=complex), r"X must hold numbers, got dtype complex128.*complex"),
    "datetime": (np.zeros((2, 3), dtype="datetime64[s]"), r"X must hold numbers, got dtype datetime64"),
    "ragged list": ([[1.0, 2.0, 3.0], [1.0, 2.0]], r"X could not be read as a numeric array"),
    "dict": ({"a": 1}, r"X"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(NON_NUMERIC))
def test_non_numeric_X_is_rejected(case, method):
    X, pattern = NON_NUMERIC[case]
    net = make_net()
    _, Y = make_data(n=2)
    before = params_of(net)
    with pytest.raises((TypeError, ValueError), match=pattern):
        call(net, method, X, Y)
    assert_params_equal(before, params_of(net))


@pytest.mark.parametrize("method", METHODS_WITH_Y)
@pytest.mark.parametrize("Y,pattern", [
    (np.array([["0", "1"]] * 6), r"Y must hold numbers"),
    (np.array([["a", "b"]] * 6, dtype=object), r"Y holds non-numeric values"),
    (np.ones((6, 2), dtype=np.complex64), r"Y must hold numbers, got dtype complex64"),
], ids=["strings", "object strings", "complex"])
def test_non_numeric_Y_is_rejected(method, Y, pattern):
    net = make_net()
    X, _ = make_data()
    with pytest.raises((TypeError, ValueError), match=pattern):
        call(net, method, X, Y)


# ---------------------------------------------------------------------------
# Architecture: names, sizes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,pattern", [
    ({"activation": "swish"}, r"unknown hidden activation 'swish'"),
    ({"activation": "softmax"}, r"unknown hidden activation 'softmax'"),
    ({"activation": "Sigmoid"}, r"unknown hidden activation 'Sigmoid'"),
    ({"activation": ["relu", "softmax"], "sizes": (3, 4, 4, 2)}, r"unknown hidden activation 'softmax'"),
    ({"activation": ["relu", "selu"], "sizes": (3, 4, 4, 2)}, r"unknown hidden activation 'selu'"),
    ({"activation": ["relu"], "sizes": (3, 4, 4, 2)}, r"activation lists 1 names but the network has 2 hidden"),
    ({"activation": ["relu", "tanh", "relu"], "sizes": (3, 4, 4, 2)}, r"activation lists 3 names .* 2 hidden"),
    ({"activation": ["relu"], "sizes": (3, 2)}, r"activation lists 1 names but the network has 0 hidden"),
    ({"activation": [None]}, r"unknown hidden activation None"),
    ({"output_activation": "swish"}, r"unknown output activation 'swish'"),
    ({"output_activation": None}, r"unknown output activation None"),
    ({"dtype": "float16"}, r"unknown dtype 'float16'"),
    ({"dtype": "int32"}, r"unknown dtype 'int32'"),
    ({"dtype": "banana"}, r"unknown dtype 'banana'"),
    ({"dtype": np.complex128}, r"unknown dtype"),
    ({"dtype": True}, r"unknown dtype True"),
])
def test_bad_names_are_rejected(kwargs, pattern):
    sizes = kwargs.pop("sizes", (N_IN, N_HIDDEN, N_OUT))
    with pytest.raises(ValueError, match=pattern):
        fastbp.Network(list(sizes), **kwargs)


@pytest.mark.parametrize("method", ["loss", "gradients", "fit"])
def test_unknown_loss_name_is_rejected(method):
    net = make_net()
    X, Y = make_data()
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'"):
        call(net, method, X, Y, loss="hinge")


SIZE_CASES = [
    ([3, 0, 2], ValueError, r"sizes\[1\] must be >= 1, got 0"),
    ([0, 2], ValueError, r"sizes\[0\] must be >= 1, got 0"),
    ([3, 2, 0], ValueError, r"sizes\[2\] must be >= 1, got 0"),
    ([3, -4, 2], ValueError, r"sizes\[1\] must be >= 1, got -4"),
    ([3], ValueError, r"at least an input and an output"),
    ([], ValueError, r"at least an input and an output"),
    ([3, 2.5], TypeError, r"sizes\[1\] must be an integer, got 2.5"),
    ([3, 2.0], TypeError, r"sizes\[1\] must be an integer, got 2.0"),
    ([True, 2], TypeError, r"sizes\[0\] must be an integer, got True"),
    ([3, "4", 2], TypeError, r"sizes\[1\] must be an integer"),
    ([3, None], TypeError, r"sizes\[1\] must be an integer"),
    ("32", TypeError, r"sizes must be a sequence"),
    (5, TypeError, r"sizes must be a sequence"),
    ([2] * 65, ValueError, r"at most 63 layers"),
    # beyond the C int the kernels index with: must be refused, not overflow
    ([3, 2 ** 40], ValueError, r"sizes"),
]


@pytest.mark.parametrize("sizes,exc,pattern", SIZE_CASES, ids=[repr(c[0])[:24] for c in SIZE_CASES])
def test_bad_sizes_are_rejected(sizes, exc, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern) as info:
        fastbp.Network(sizes)
    assert isinstance(info.value, exc)


def test_numpy_integer_sizes_are_accepted():
    net = fastbp.Network(np.array([3, 4, 2]), seed=0)
    assert net.sizes == (3, 4, 2)
    assert [w.shape for w in net.weights] == [(3, 4), (4, 2)]


# ---------------------------------------------------------------------------
# Optimiser and fit arguments
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,pattern", [
    ({"lr": 0}, ValueError, r"lr must be > 0"),
    ({"lr": 0.0}, ValueError, r"lr must be > 0"),
    ({"lr": -0.1}, ValueError, r"lr must be > 0"),
    ({"lr": math.nan}, ValueError, r"lr must be finite"),
    ({"lr": np.float32("nan")}, ValueError, r"lr must be finite"),
    ({"lr": math.inf}, ValueError, r"lr must be finite"),
    ({"lr": "0.1"}, TypeError, r"lr must be a real number"),
    ({"lr": True}, TypeError, r"lr must be a real number"),
    ({"lr": None}, TypeError, r"lr must be a real number"),
    ({"momentum": 1.0}, ValueError, r"momentum must be < 1"),
    ({"momentum": 1.5}, ValueError, r"momentum must be < 1"),
    ({"momentum": -0.1}, ValueError, r"momentum must be >= 0"),
    ({"momentum": math.nan}, ValueError, r"momentum must be finite"),
    ({"nesterov": True}, ValueError, r"nesterov=True needs momentum > 0"),
    ({"nesterov": True, "momentum": 0.0}, ValueError, r"nesterov=True needs momentum > 0"),
    ({"nesterov": "yes", "momentum": 0.9}, TypeError, r"nesterov must be True or False"),
])
def test_bad_optimizer_is_rejected_at_construction(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastbp.SGD(**kwargs)


def test_good_optimizer_values_are_kept():
    opt = fastbp.SGD(lr=np.float32(0.5), momentum=0.9, nesterov=np.True_)
    assert (opt.lr, opt.momentum, opt.nesterov) == (0.5, pytest.approx(0.9), True)
    assert type(opt.lr) is float and type(opt.nesterov) is bool


@pytest.mark.parametrize("kwargs,exc,pattern", [
    ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
    ({"batch_size": -3}, ValueError, r"batch_size must be >= 1, got -3"),
    ({"batch_size": 2.0}, TypeError, r"batch_size must be an integer, got 2.0"),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be an integer"),
    ({"batch_size": True}, TypeError, r"batch_size must be an integer, got True"),
    ({"batch_size": None}, TypeError, r"batch_size must be an integer"),
    ({"epochs": 0}, ValueError, r"epochs must be >= 1, got 0"),
    ({"epochs": -1}, ValueError, r"epochs must be >= 1"),
    ({"epochs": 1.5}, TypeError, r"epochs must be an integer"),
    ({"shuffle": "yes"}, TypeError, r"shuffle must be True or False"),
    ({"optimizer": "sgd"}, TypeError,
     r"optimizer must be one of fastbp's optimisers \(fastbp\.SGD, fastbp\.Adam, .+\), got str"),
    ({"seed": -1}, ValueError, r"seed must be >= 0"),
])
def test_bad_fit_arguments_are_rejected(kwargs, exc, pattern):
    net = make_net()
    X, Y = make_data()
    before = params_of(net)
    with pytest.raises(exc, match=pattern):
        call(net, "fit", X, Y, **kwargs)
    assert_params_equal(before, params_of(net))


@pytest.mark.parametrize("optimizer", ["adamw", Optimizer, Constant()])
def test_a_wrong_optimizer_is_told_every_optimiser(optimizer):
    net = make_net()
    X, Y = make_data()
    with pytest.raises(TypeError) as caught:
        net.fit(X, Y, optimizer=optimizer)
    message = str(caught.value)
    assert message.endswith(f"got {type(optimizer).__name__}")
    named = set(re.findall(r"fastbp\.(\w+)", message))
    assert {"SGD", "Adam", "AdamW", "NAdam", "RMSprop", "Adagrad", "Rprop", "LBFGS"} <= named
    # every optimiser class that fastbp exports, and nothing else
    exported = {name for name, value in vars(fastbp).items() if isinstance(value, type)
                and issubclass(value, Optimizer) and value is not Optimizer}
    assert named == exported


def test_numpy_integer_fit_arguments_are_accepted():
    net = make_net()
    X, Y = make_data()
    history = net.fit(X, Y, epochs=np.int64(3), batch_size=np.int32(4), seed=0)
    assert len(history["loss"]) == 3 and len(history["seconds"]) == 3


# ---------------------------------------------------------------------------
# Losses: output pairing, targets, l2
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS_WITH_Y)
@pytest.mark.parametrize("loss,output,required", [
    ("bce", "identity", "sigmoid"),
    ("bce", "softmax", "sigmoid"),
    ("bce", "tanh", "sigmoid"),
    ("cross_entropy", "sigmoid", "softmax"),
    ("cross_entropy", "identity", "softmax"),
])
def test_loss_needs_matching_output_activation(method, loss, output, required):
    net = make_net(output_activation=output)
    X, Y = make_data()
    Y[:, 0] = 1 - Y[:, 1]  # valid probability rows, so only the pairing is wrong
    with pytest.raises(ValueError, match=rf"loss '{loss}' needs output_activation='{required}'.*'{output}'"):
        call(net, method, X, Y, loss=loss)


@pytest.mark.parametrize("method", METHODS_WITH_Y)
@pytest.mark.parametrize("loss,output,bad,pattern", [
    ("bce", "sigmoid", [[1.5, 0.0]], r"bce targets must lie in \[0, 1\]; found values from 0.0 to 1.5"),
    ("bce", "sigmoid", [[-0.5, 1.0]], r"bce targets must lie in \[0, 1\]"),
    ("cross_entropy", "softmax", [[1.5, -0.5]], r"cross_entropy targets must lie in \[0, 1\]"),
    ("cross_entropy", "softmax", [[0.5, 0.4]], r"summing to 1.*row 3 sums to 0.9"),
    ("cross_entropy", "softmax", [[1.0, 1.0]], r"summing to 1.*row 3 sums to 2"),
    ("cross_entropy", "softmax", [[0.0, 0.0]], r"summing to 1.*row 3 sums to 0"),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_targets_outside_the_loss_range_are_rejected(method, loss, output, bad, pattern, dtype):
    net = make_net(output_activation=output, dtype=dtype)
    X, Y = make_data()
    Y[:, 0] = 1 - Y[:, 1]
    Y[3] = bad[0]
    before = params_of(net)
    with pytest.raises(ValueError, match=pattern):
        call(net, method, X, Y, loss=loss)
    assert_params_equal(before, params_of(net))


def test_probability_rows_are_checked_in_blocks_and_all_bad_rows_counted(monkeypatch):
    from fastbp import losses
    monkeypatch.setattr(losses, "TARGET_BLOCK_ROWS", 2)
    net = make_net(output_activation="softmax")
    X, Y = make_data(n=10)
    Y[:, 0] = 1 - Y[:, 1]
    assert np.isfinite(net.loss(X, Y, loss="cross_entropy"))  # every block passes
    Y[5], Y[7] = [0.5, 0.4], [1.0, 1.0]  # in the third and fourth blocks
    with pytest.raises(ValueError, match=r"row 5 sums to 0.9.*\(2 such rows\)"):
        net.loss(X, Y, loss="cross_entropy")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_valid_soft_targets_are_accepted(dtype):
    X, _ = make_data()
    soft = np.tile([0.3, 0.7], (X.shape[0], 1))
    thirds = np.full((X.shape[0], 3), 1 / 3)
    bce = make_net(output_activation="sigmoid", dtype=dtype)
    ce = make_net(sizes=(N_IN, N_HIDDEN, 3), output_activation="softmax", dtype=dtype)
    assert np.isfinite(bce.loss(X, soft, loss="bce"))
    assert np.isfinite(ce.loss(X, thirds, loss="cross_entropy"))
    assert np.isfinite(ce.fit(X, thirds, loss="cross_entropy", epochs=1)["loss"]).all()


@pytest.mark.parametrize("method", ["loss", "gradients"])
@pytest.mark.parametrize("l2,exc,pattern", [
    (-0.1, ValueError, r"l2 must be >= 0"),
    (-1e-300, ValueError, r"l2 must be >= 0"),
    (math.nan, ValueError, r"l2 must be finite"),
    (math.inf, ValueError, r"l2 must be finite"),
    ("0.1", TypeError, r"l2 must be a real number"),
    (None, TypeError, r"l2 must be a real number"),
])
def test_bad_l2_is_rejected(method, l2, exc, pattern):
    net = make_net()
    X, Y = make_data()
    with pytest.raises(exc, match=pattern):
        call(net, method, X, Y, l2=l2)


# ---------------------------------------------------------------------------
# set_weights: validated and all-or-nothing
# ---------------------------------------------------------------------------

def _bad_weights(case, net):
    W, b = net.weights, net.biases
    if case == "too few weights":
        return W[:1], b, r"expected 2 weight matrices and bias vectors, got 1 and 2"
    if case == "too many biases":
        return W, b + [b[-1]], r"expected 2 weight matrices and bias vectors, got 2 and 3"
    if case == "no layers":
        return [], [], r"expected 2 weight matrices and bias vectors, got 0 and 0"
    if case == "transposed last W":
        W[1] = W[1].T
        return W, b, r"weights\[1\] has shape \(2, 4\), expected \(4, 2\)"
    if case == "flat last W":
        W[1] = W[1].ravel()
        return W, b, r"weights\[1\] has shape \(8,\), expected \(4, 2\)"
    if case == "2-D last bias":
        b[1] = b[1].reshape(1, -1)
        return W, b, r"biases\[1\] has shape \(1, 2\), expected \(2,\)"
    if case == "short last bias":
        b[1] = b[1][:1]
        return W, b, r"biases\[1\] has shape \(1,\), expected \(2,\)"
    if case == "NaN in last W":
        W[1][3, 1] = np.nan
        return W, b, r"weights\[1\] contains 1 NaN or infinite"
    if case == "inf in last W":
        W[1][0, 0] = -np.inf
        return W, b, r"weights\[1\] contains 1 NaN or infinite"
    if case == "NaN in last bias":
        b[1][1] = np.nan
        return W, b, r"biases\[1\] contains 1 NaN or infinite"
    if case == "inf in first bias":
        b[0][0] = np.inf
        return W, b, r"biases\[0\] contains 1 NaN or infinite"
    if case == "overflow float32":
        W[1] = W[1].astype(np.float64)
        W[1][2, 0] = 1e300
        return W, b, r"weights\[1\].* overflows float32|weights\[1\] contains"
    if case == "strings in last W":
        W[1] = W[1].astype(str)
        return W, b, r"weights\[1\] must hold numbers"
    raise AssertionError(case)


SET_WEIGHTS_CASES = ["too few weights", "too many biases", "no layers", "transposed last W",
                     "flat last W", "2-D last bias", "short last bias", "NaN in last W",
                     "inf in last W", "NaN in last bias", "inf in first bias", "overflow float32",
                     "strings in last W"]


@pytest.mark.parametrize("case,dtype", [
    (case, dtype) for case in SET_WEIGHTS_CASES for dtype in ("float32", "float64")
    if case != "overflow float32" or dtype == "float32"  # 1e300 fits float64
])
def test_failed_set_weights_changes_nothing(case, dtype):
    net = make_net(dtype=dtype)
    X, _ = make_data()
    # give the biases non-zero values so a partial overwrite would show
    net.set_weights(net.weights, [np.arange(4.0) / 10, np.array([0.3, -0.2])])
    before = params_of(net)
    prediction = net.predict(X)
    W, b, pattern = _bad_weights(case, net)
    # the first layer (valid in every case) carries new values, which must not leak in
    W = list(W)
    if W:
        W[0] = W[0] + 1.0
    with pytest.raises((ValueError, TypeError), match=pattern):
        net.set_weights(W, b)
    assert_params_equal(before, params_of(net))
    np.testing.assert_array_equal(net.predict(X), prediction)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_set_weights_accepts_any_layout_and_copies(dtype):
    net = make_net(dtype=dtype)
    W = [np.asfortranarray(np.arange(12).reshape(3, 4)),          # int, Fortran order
         (np.arange(16.0).reshape(4, 4) / 10)[:, ::2]]               # strided float view
    b = [[1, 2, 3, 4], np.array([0.5, -0.5])]                        # list, float
    W[1].flags.writeable = False
    net.set_weights(W, b)
    for got, want in zip(net.weights, W):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, np.asarray(want, dtype=dtype))
    for got, want in zip(net.biases, b):
        np.testing.assert_array_equal(got, np.asarray(want, dtype=dtype))
    b[1][0] = 99.0  # the network holds copies
    assert net.biases[1][0] == np.asarray(0.5, dtype=dtype)
    weights = net.weights
    weights[0][...] = 0  # and hands out copies
    assert net.weights[0][0, 1] == 1


# ---------------------------------------------------------------------------
# Accepted layouts give exactly the answer of a C-contiguous float64 array
# ---------------------------------------------------------------------------

def _readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def _row_strided(a):
    big = np.full((2 * a.shape[0], a.shape[1]), 7.0)
    big[::2] = a
    return big[::2]


def _column_slice(a):
    big = np.full((a.shape[0], a.shape[1] + 3), 7.0)
    big[:, 1:-2] = a
    return big[:, 1:-2]


def _reversed(a):
    return np.ascontiguousarray(a[::-1])[::-1]


LAYOUTS = {
    "fortran": np.asfortranarray,
    "row strided": _row_strided,
    "column slice": _column_slice,
    "negative strides": _reversed,
    "read-only": _readonly,
    "read-only fortran": lambda a: _readonly(np.asfortranarray(a)),
    "int64": lambda a: a.astype(np.int64),
    "int32 fortran": lambda a: np.asfortranarray(a.astype(np.int32)),
    "uint8": lambda a: a.astype(np.uint8) if (a >= 0).all() else a.astype(np.int8),
    "float32": lambda a: a.astype(np.float32),
    "big-endian": lambda a: a.astype(">f8"),
    "list": lambda a: a.tolist(),
    "list of ints": lambda a: a.astype(int).tolist(),
    "tuple of tuples": lambda a: tuple(map(tuple, a.tolist())),
}


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_give_the_same_predictions(layout, dtype):
    X, _ = make_data(n=9)
    net = make_net(dtype=dtype)
    expected = net.predict(X)
    got = net.predict(LAYOUTS[layout](X))
    assert got.dtype == np.dtype(dtype) and got.shape == (9, N_OUT)
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_layouts_give_the_same_loss_and_gradients(layout, dtype, l2):
    X, Y = make_data(n=9)
    net = make_net(dtype=dtype)
    convert = LAYOUTS[layout]
    expected_loss = net.loss(X, Y, l2=l2)
    expected_dW, expected_db = net.gradients(X, Y, l2=l2)
    assert net.loss(convert(X), convert(Y), l2=l2) == expected_loss
    dW, db = net.gradients(convert(X), convert(Y), l2=l2)
    for got, want in zip(dW + db, expected_dW + expected_db):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("shuffle", [False, True])
def test_layouts_give_the_same_fit(layout, dtype, shuffle):
    X, Y = make_data(n=10)
    reference, other = make_net(dtype=dtype, seed=3), make_net(dtype=dtype, seed=3)
    kwargs = dict(epochs=3, batch_size=4, shuffle=shuffle, seed=5,
                  optimizer=fastbp.SGD(lr=0.5, momentum=0.5))
    expected = reference.fit(X, Y, **kwargs)
    kwargs["optimizer"] = fastbp.SGD(lr=0.5, momentum=0.5)
    got = other.fit(LAYOUTS[layout](X), LAYOUTS[layout](Y), **kwargs)
    assert got["loss"] == expected["loss"]
    assert len(got["loss"]) == 3 and np.isfinite(got["loss"]).all()
    assert_params_equal(params_of(reference), params_of(other))
    # training moved the weights at all
    assert not np.array_equal(params_of(other)[0], params_of(make_net(dtype=dtype, seed=3))[0])


def test_fit_does_not_modify_its_input():
    X, Y = make_data(n=10)
    X0, Y0 = X.copy(), Y.copy()
    make_net().fit(X, Y, epochs=2, batch_size=3, seed=0)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)


@pytest.mark.parametrize("as_vector", [np.asarray, lambda y: y.tolist(), lambda y: y.astype(int),
                                       lambda y: np.repeat(y, 2)[::2]],
                         ids=["array", "list", "int", "strided"])
def test_one_dimensional_Y_for_a_single_output(as_vector, dtype):
    X, Y = make_data(n=8, n_out=1)
    y = Y[:, 0]
    column, vector = make_net(sizes=(N_IN, 4, 1), dtype=dtype), make_net(sizes=(N_IN, 4, 1), dtype=dtype)
    assert vector.loss(X, as_vector(y), loss="bce") == column.loss(X, Y, loss="bce")
    dW, db = vector.gradients(X, as_vector(y))
    eW, eb = column.gradients(X, Y)
    for got, want in zip(dW + db, eW + eb):
        np.testing.assert_array_equal(got, want)
    h1 = vector.fit(X, as_vector(y), epochs=2, batch_size=3, shuffle=False)
    h2 = column.fit(X, Y, epochs=2, batch_size=3, shuffle=False)
    assert h1["loss"] == h2["loss"]
    assert_params_equal(params_of(column), params_of(vector))


def test_one_dimensional_Y_row_mismatch_is_still_caught():
    X, Y = make_data(n=8, n_out=1)
    with pytest.raises(ValueError, match=r"X has 8 rows but Y has 7"):
        make_net(sizes=(N_IN, 4, 1)).loss(X, Y[:7, 0])


# ---------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------

def _diverging_fit(dtype, batch_size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)) * 1e3
    Y = rng.normal(size=(64, 1))
    net = fastbp.Network([2, 4, 1], activation="identity", output_activation="identity",
                         dtype=dtype, seed=0)
    with pytest.raises(fastbp.TrainingDiverged, match=r"training diverged in epoch \d+") as info:
        net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=1e10), epochs=5,
                batch_size=batch_size, shuffle=False)
    return net, X, Y, info.value


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_divergence_raises_and_keeps_finite_weights(dtype, batch_size):
    net, X, _, error = _diverging_fit(dtype, batch_size)
    assert isinstance(error, ValueError)
    assert isinstance(error.history, dict) and set(error.history) >= {"loss", "seconds"}
    assert np.isfinite(error.history["loss"]).all()
    for array in net.weights + net.biases:
        assert array.dtype == np.dtype(dtype)
        assert np.isfinite(array).all()
    out = net.predict(X)
    assert out.shape == (64, 1) and out.dtype == np.dtype(dtype)


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_network_is_usable_after_divergence(dtype, batch_size):
    # "keeps the last finite weights": the kept weights must give a finite
    # model again, not weights so large that predict and loss are NaN.
    net, X, Y, _ = _diverging_fit(dtype, batch_size)
    with np.errstate(all="ignore"):
        out = net.predict(X)
        loss = net.loss(X, Y)
    largest = max(float(np.abs(w).max()) for w in net.weights)
    assert bool(np.isfinite(out).all()), (
        f"predict returns non-finite values after TrainingDiverged (largest |w| = {largest:.3g})")
    assert bool(np.isfinite(loss)), f"loss is {loss} at the weights kept after TrainingDiverged"


def test_training_diverged_is_exported_as_value_error():
    assert issubclass(fastbp.TrainingDiverged, ValueError)
