"""Property tests (hypothesis): random networks against the reference, random bad
input against a clean twin, random damage to saved files."""
import contextlib
import math
import os
import re

import numpy as np
import pytest
from helpers import HIDDEN, LOSS_OUTPUTS, as_lists, assert_close, random_network, targets
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

import fastbp
from fastbp import reference

# database=None: nothing is written next to wherever the suite runs
SETTINGS = dict(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# FASTBP_PROPERTY_SCALE=20 runs twenty times the examples (a soak run; CI uses 1)
SCALE = float(os.environ.get("FASTBP_PROPERTY_SCALE", "1"))


def examples(n):
    return max(1, int(n * SCALE))

# tolerance per dtype: relative, with entries near zero judged against the
# array's largest entry (helpers.assert_close); a fit compounds a few steps
RTOL = {"float64": 1e-12, "float32": 1e-5}
FIT_RTOL = {"float64": 1e-10, "float32": 1e-4}
# a ReLU pre-activation this close to 0 may round to either side in the
# compiled code: its derivative (0 or 1) is then rounding, not a bug
KINK = {"float64": 1e-9, "float32": 1e-4}


# ---------------------------------------------------------------------------
# Random networks against the pure-Python reference
# ---------------------------------------------------------------------------

@st.composite
def problems(draw, max_rows=10):
    """A random network, batch and loss; sizes: depth 1-4, widths 1-40."""
    depth = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 40), min_size=depth + 1, max_size=depth + 1))
    hidden = draw(st.lists(st.sampled_from(HIDDEN), min_size=depth - 1, max_size=depth - 1))
    loss, output = draw(st.sampled_from(LOSS_OUTPUTS))
    dtype = draw(st.sampled_from(["float64", "float32"]))
    m = draw(st.integers(1, max_rows))
    l2 = draw(st.sampled_from([0.0, 0.0, 0.01, 0.3, 2.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    net = random_network(rng, sizes, hidden, output, dtype=dtype)
    # rows of unit scale whatever the width, so the problem stays well conditioned
    X = (rng.normal(size=(m, sizes[0])) / math.sqrt(sizes[0])).astype(dtype)
    Y = targets(rng, loss, m, sizes[-1], dtype)
    return net, X, Y, loss, l2, rng


def kink_margin(weights, biases, activations, X):
    """Smallest |pre-activation| over the layers with a ReLU, in the reference."""
    margin = math.inf
    for x in X:
        a, _ = reference.forward(weights, biases, activations, x)
        for a_layer, name in zip(a[1:], activations):
            if name == "relu":
                margin = min([margin] + [abs(v) for v in a_layer])
    return margin


def as64(array):
    return np.asarray(array, dtype=np.float64).tolist()


@settings(max_examples=examples(60), **SETTINGS)
@given(problems())
def test_gradients_loss_and_predictions_equal_the_reference(problem):
    net, X, Y, loss, l2, _ = problem
    dtype = net.dtype.name
    W, b, acts = as_lists(net)
    assume(kink_margin(W, b, acts, as64(X)) > KINK[dtype])
    dW, db = net.gradients(X, Y, loss=loss, l2=l2)
    dW_ref, db_ref = reference.gradients(W, b, acts, as64(X), as64(Y), loss, l2)
    for got, want in zip(dW + db, dW_ref + db_ref):
        assert got.dtype == net.dtype
        assert_close(got, want, rtol=RTOL[dtype])
    assert_close(net.loss(X, Y, loss=loss, l2=l2),
                 reference.loss(W, b, acts, as64(X), as64(Y), loss, l2), rtol=RTOL[dtype])
    out = net.predict(X)
    assert out.dtype == net.dtype and out.shape == Y.shape
    assert_close(out, reference.predict(W, b, acts, as64(X)), rtol=RTOL[dtype])


@settings(max_examples=examples(40), **SETTINGS)
@given(problems(max_rows=12), st.data())
def test_a_few_fit_steps_equal_the_reference(problem, data):
    net, X, Y, loss, l2, rng = problem
    dtype = net.dtype.name
    m = X.shape[0]
    batch_size = data.draw(st.integers(1, m + 1), label="batch_size")
    momentum, nesterov = data.draw(st.sampled_from([(0.0, False), (0.5, False), (0.9, True)]),
                                   label="momentum, nesterov")
    shuffle = data.draw(st.booleans(), label="shuffle")
    epochs = data.draw(st.integers(1, 2), label="epochs")
    lr = 0.05
    W, b, acts = as_lists(net)
    initial = [np.array(p) for p in W + b]
    perm = np.random.default_rng(3)
    orders = [perm.permutation(m).tolist() if shuffle else list(range(m)) for _ in range(epochs)]

    # the reference's steps, one batch at a time, watching for ReLU kinks and
    # for divergence (momentum 0.9 at batch 1 can blow up wide identity
    # layers; there rounding grows with the weights and tests nothing)
    Xl, Yl = as64(X), as64(Y)
    velocity, history, bound = None, [], None
    for order in orders:
        total = 0.0
        for start in range(0, m, batch_size):
            rows = order[start:start + batch_size]
            Xb, Yb = [Xl[r] for r in rows], [Yl[r] for r in rows]
            assume(kink_margin(W, b, acts, Xb) > KINK[dtype])
            try:
                batch_loss = reference.loss(W, b, acts, Xb, Yb, loss, l2)
            except OverflowError:
                reject()
            bound = 100 * max(batch_loss, 1.0) if bound is None else bound
            assume(batch_loss <= bound)
            total += len(rows) * batch_loss
            dW, db = reference.gradients(W, b, acts, Xb, Yb, loss, l2)
            velocity = reference.sgd_step(W, b, dW, db, lr, momentum, nesterov, velocity)
        history.append(total / m)

    fit = net.fit(X, Y, loss=loss, optimizer=fastbp.SGD(lr=lr, momentum=momentum,
                                                          nesterov=nesterov),
                  epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=3, l2=l2)
    assert_close(fit["loss"], history, rtol=FIT_RTOL[dtype])
    # A parameter is its start plus a sum of steps; one that ends near zero
    # by cancellation keeps the rounding of its larger terms. So entries are
    # judged against the scale of all parameters, before and after.
    scale = max(float(np.max(np.abs(p))) for p in initial + W + b)
    for got, want in zip(net.weights + net.biases, W + b):
        assert got.dtype == net.dtype
        np.testing.assert_allclose(got, want, rtol=FIT_RTOL[dtype], atol=FIT_RTOL[dtype] * scale)


@settings(max_examples=examples(10), **SETTINGS)
@given(problems(max_rows=4))
def test_graph_engine_agrees_on_random_networks(problem):
    net, X, Y, loss, l2, _ = problem
    assume(net.n_params <= 1500)  # the graph engine is slow on purpose
    W, b, acts = as_lists(net)
    dW, db = reference.graph_gradients(W, b, acts, as64(X), as64(Y), loss, l2)
    dW_ref, db_ref = reference.gradients(W, b, acts, as64(X), as64(Y), loss, l2)
    for got, want in zip(dW + db, dW_ref + db_ref):
        assert_close(got, want, rtol=1e-11)


# ---------------------------------------------------------------------------
# Random bad input: an error, or the answer of the clean equivalent
# ---------------------------------------------------------------------------

N_IN, N_OUT, ROWS = 3, 2, 5
DTYPES = ["float64", "float32", "float16", "longdouble", "int8", "int64", "uint8", "bool",
          "complex128", "str", "object", "object with str", "datetime64[s]"]
VALUES = ["clean", "nan", "inf", "-inf", "1e39", "1e300"]
SHAPES = ["same", "extra column", "missing column", "extra row", "1-D", "3-D", "no rows",
          "no columns", "0-D", "transposed"]
LAYOUTS = ["C", "F", "strided", "reversed", "read-only", "unaligned", "broadcast", "list",
           "ragged list"]


@st.composite
def mutated(draw, clean):
    """``clean`` with a random value, shape, dtype and layout mutation."""
    value = draw(st.sampled_from(VALUES), label="value")
    shape = draw(st.sampled_from(SHAPES), label="shape")
    dtype = draw(st.sampled_from(DTYPES), label="dtype")
    layout = draw(st.sampled_from(LAYOUTS), label="layout")
    a = clean.copy()
    if value != "clean":
        i = draw(st.integers(0, a.shape[0] - 1), label="row")
        j = draw(st.integers(0, a.shape[1] - 1), label="column")
        with np.errstate(over="ignore"):
            a[i, j] = float(value)
    a = {
        "same": lambda: a,
        "extra column": lambda: np.concatenate([a, a[:, :1]], axis=1),
        "missing column": lambda: a[:, :-1],
        "extra row": lambda: np.concatenate([a, a[:1]]),
        "1-D": lambda: a[0],
        "3-D": lambda: a[None],
        "no rows": lambda: a[:0],
        "no columns": lambda: a[:, :0],
        "0-D": lambda: np.array(a[0, 0]),
        "transposed": lambda: a.T,
    }[shape]()
    with np.errstate(all="ignore"):
        if dtype == "str":
            a = a.astype(str)
        elif dtype == "object":
            a = a.astype(object)
        elif dtype == "object with str":
            a = a.astype(object)
            if a.size:
                a.flat[0] = "1.5"
        elif dtype.startswith(("int", "uint")):
            low = 0 if dtype == "uint8" else -100
            a = np.nan_to_num(a * 3, posinf=0, neginf=0).round().clip(low, 100).astype(dtype)
        elif dtype == "datetime64[s]":
            a = np.nan_to_num(a, posinf=0, neginf=0).astype(np.int64).astype(dtype)
        else:
            a = a.astype(dtype)
    return _layout(a, layout)


def _layout(a, layout):
    """``a`` (a 2-D array) re-laid out in memory, or as (ragged) lists."""
    if a.ndim == 2:
        if layout == "F":
            a = np.asfortranarray(a)
        elif layout == "strided":
            big = np.zeros((2 * a.shape[0], 2 * a.shape[1]), a.dtype)
            big[::2, ::2] = a
            a = big[::2, ::2]
        elif layout == "reversed":
            a = a[::-1, ::-1].copy()[::-1, ::-1]
        elif layout == "broadcast" and a.shape[0]:
            a = np.broadcast_to(a[:1], a.shape)  # zero row stride, read-only
    if layout == "read-only" and isinstance(a, np.ndarray):
        a = a.copy()
        a.flags.writeable = False
    elif layout == "unaligned" and a.dtype.kind in "biufc" and a.itemsize > 1:
        buffer = np.zeros(a.nbytes + a.itemsize, np.uint8)
        view = np.ndarray(a.shape, a.dtype, buffer=buffer, offset=1)
        view[...] = a
        a = view
    elif layout == "list":
        a = a.tolist()
    elif layout == "ragged list" and a.ndim == 2 and a.shape[0] > 1 and a.shape[1] > 1:
        a = a.tolist()
        a[-1] = a[-1][:-1]
    return a


def clean_equivalent(data, dtype, shape_ok):
    """What a correct validator makes of ``data``: a clean C array, or None to refuse.

    Written from the README's contract, independently of fastbp._validation.
    """
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):
        return None
    if array.dtype.kind == "O":
        if any(isinstance(v, (str, bytes)) for v in array.flat):
            return None
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            return None
    elif array.dtype.kind not in "biuf":
        return None
    if array.ndim != 2 or 0 in array.shape or not shape_ok(array.shape):
        return None
    with np.errstate(all="ignore"):
        out = np.array(array, dtype=dtype, order="C")
    return out if np.isfinite(out).all() else None


@contextlib.contextmanager
def kernels_checked():
    """Make every array a training or evaluation kernel receives prove itself
    C-contiguous and aligned: the kernels index raw typed pointers."""
    from fastbp import _kernels
    saved = {}

    def checked(name, kernel):
        def call(*args):
            for arg in args:
                if isinstance(arg, np.ndarray):
                    assert arg.flags.c_contiguous and arg.flags.aligned, (name, arg.flags)
            return kernel(*args)
        return call

    class CheckedPredictor(_kernels.Predictor):
        # predict's one-pass kernel (the threads may take X's own layout)
        def predict(self, X, out, work=None, n_threads=1, check_finite=False):
            kernel = super().predict
            if n_threads == 1 and not check_finite:
                kernel = checked("Predictor.predict", kernel)
            return kernel(X, out, work, n_threads, check_finite)

    for name, kernel in (("network_loss", None), ("Predictor", CheckedPredictor)):
        if hasattr(_kernels, name):
            saved[name] = getattr(_kernels, name)
            setattr(_kernels, name, kernel or checked(name, saved[name]))
    try:
        yield
    finally:
        for name, kernel in saved.items():
            setattr(_kernels, name, kernel)


def outcome(call):
    """("error", type) for a ValueError/TypeError, else ("ok", result). Anything else fails."""
    try:
        return "ok", call()
    except (ValueError, TypeError) as exc:
        return "error", type(exc)


def assert_same(got, want):
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    else:
        np.testing.assert_array_equal(got, want)
        assert np.asarray(got).dtype == np.asarray(want).dtype


def fresh_net(dtype):
    return fastbp.Network([N_IN, 4, N_OUT], activation="tanh", output_activation="identity",
                          dtype=dtype, seed=0)


CALLS = {
    "predict": lambda net, X, Y: net.predict(X),
    "loss": lambda net, X, Y: net.loss(X, Y, l2=0.1),
    "gradients": lambda net, X, Y: net.gradients(X, Y, l2=0.1),
    "fit": lambda net, X, Y: (net.fit(X, Y, optimizer=fastbp.SGD(lr=0.1, momentum=0.5),
                                      epochs=2, batch_size=2, seed=0)["loss"],
                              net.weights, net.biases),
}


@settings(max_examples=examples(250), **SETTINGS)
@given(st.sampled_from(sorted(CALLS)), st.sampled_from(["float64", "float32"]),
       st.sampled_from(["X", "Y"]), st.data())
def test_bad_input_ends_in_an_error_or_the_clean_answer(method, dtype, which, data):
    base = np.random.default_rng(0)
    X0 = base.normal(size=(ROWS, N_IN))
    Y0 = base.normal(size=(ROWS, N_OUT))
    if method == "predict" and which == "Y":
        which = "X"
    bad = data.draw(mutated(X0 if which == "X" else Y0), label="input")
    X, Y = (bad, Y0) if which == "X" else (X0, bad)
    n_cols = N_IN if which == "X" else N_OUT
    other_rows = ROWS if method != "predict" else None
    clean = clean_equivalent(
        bad, dtype, lambda s: s[1] == n_cols and (other_rows is None or s[0] == other_rows))

    net = fresh_net(dtype)
    before = [a.copy() for a in net.weights + net.biases]
    with kernels_checked():
        kind, result = outcome(lambda: CALLS[method](net, X, Y))
    if clean is None:
        assert kind == "error", f"accepted an input a validator must refuse: {bad!r}"
        for got, want in zip(net.weights + net.biases, before):
            np.testing.assert_array_equal(got, want)  # a refused call changes nothing
    else:
        # the clean twin may fail too (a target of 1e300 diverges): then the same way
        twin = fresh_net(dtype)
        Xc, Yc = (clean, Y0) if which == "X" else (X0, clean)
        twin_kind, twin_result = outcome(lambda: CALLS[method](twin, Xc, Yc))
        assert kind == twin_kind, f"{bad!r} gave {result}, its clean twin {twin_result}"
        assert_same(result, twin_result)
        assert_same(net.weights + net.biases, twin.weights + twin.biases)


@settings(max_examples=examples(120), **SETTINGS)
@given(st.sampled_from(["float64", "float32"]), st.integers(0, 3), st.data())
def test_bad_weights_end_in_an_error_or_the_clean_weights(dtype, which, data):
    net = fresh_net(dtype)
    weights, biases = net.weights, net.biases
    arrays = weights + biases
    target = arrays[which]
    bad = data.draw(mutated(target if target.ndim == 2 else target.reshape(1, -1)), label="input")
    if target.ndim == 1 and isinstance(bad, np.ndarray) and bad.ndim == 2 and bad.shape[0] == 1:
        bad = bad[0]  # a bias vector is 1-D
    given_arrays = list(arrays)
    given_arrays[which] = bad
    try:
        as_array = np.asarray(bad)
        shape_ok = as_array.shape == target.shape
    except (ValueError, TypeError):
        shape_ok = False
    clean = clean_equivalent(np.reshape(bad, (-1, target.shape[-1])) if shape_ok else None,
                             dtype, lambda s: True) if shape_ok else None
    before = [a.copy() for a in arrays]
    kind, result = outcome(lambda: net.set_weights(given_arrays[:2], given_arrays[2:]))
    after = net.weights + net.biases
    if clean is None:
        assert kind == "error", f"set_weights accepted {bad!r}"
        for got, want in zip(after, before):
            np.testing.assert_array_equal(got, want)
    else:
        assert kind == "ok", f"set_weights refused {bad!r} with {result.__name__}"
        np.testing.assert_array_equal(after[which], clean.reshape(target.shape))
        assert after[which].dtype == net.dtype


# ---------------------------------------------------------------------------
# Damaged model files: a ValueError naming the file, or the very same network
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    net = fastbp.Network([3, 5, 2], activation=["relu"], output_activation="softmax",
                         dtype="float32", seed=4)
    path = tmp_path_factory.mktemp("model") / "model.npz"
    net.save(path)
    return net, path.read_bytes()


def load_outcome(path):
    try:
        return "ok", fastbp.load(path)
    except ValueError as exc:
        assert re.search(re.escape(str(path)), str(exc)), f"message does not name the file: {exc}"
        return "error", None


def assert_same_network(got, net):
    assert (got.sizes, got.activations, got.output_activation, got.dtype) == \
        (net.sizes, net.activations, net.output_activation, net.dtype)
    np.testing.assert_array_equal(got._params, net._params)


def test_cut_model_files_are_a_value_error(saved_model, tmp_path):
    net, good = saved_model
    path = tmp_path / "cut.npz"
    # every length within 400 bytes of either end (headers, central directory),
    # every 5th in between (array data)
    lengths = sorted(set(range(0, 400)) | set(range(400, len(good) - 400, 5))
                     | set(range(max(0, len(good) - 400), len(good))))
    for length in lengths:
        path.write_bytes(good[:length])
        kind, _ = load_outcome(path)
        assert kind == "error", f"a file cut to {length} of {len(good)} bytes loaded"
    path.write_bytes(good)
    kind, loaded = load_outcome(path)
    assert kind == "ok" and loaded.dtype == np.float32
    assert_same_network(loaded, net)


@settings(max_examples=examples(300), **SETTINGS)
@given(st.data())
def test_a_damaged_model_file_is_refused_or_loads_unchanged(saved_model, tmp_path_factory, data):
    net, good = saved_model
    damaged = bytearray(good)
    for _ in range(data.draw(st.integers(1, 3), label="bytes changed")):
        position = data.draw(st.integers(0, len(good) - 1), label="position")
        damaged[position] ^= data.draw(st.integers(1, 255), label="xor")
    path = tmp_path_factory.mktemp("damaged") / "model.npz"
    path.write_bytes(bytes(damaged))
    kind, loaded = load_outcome(path)
    if kind == "ok":  # only bytes no reader looks at were hit (timestamps, flags...)
        assert_same_network(loaded, net)
    os.unlink(path)


@pytest.mark.parametrize("layout", LAYOUTS[:7])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_layout_reaches_the_kernels_aligned_and_contiguous(layout, dtype, method):
    # the deterministic corner of the property above: same-dtype arrays in
    # every layout, including a misaligned buffer that numpy would pass through
    base = np.random.default_rng(1)
    X0, Y0 = base.normal(size=(ROWS, N_IN)), base.normal(size=(ROWS, N_OUT))
    X = _layout(X0.astype(dtype), layout)
    Y = _layout(Y0.astype(dtype), layout)
    net, twin = fresh_net(dtype), fresh_net(dtype)
    with kernels_checked():
        result = CALLS[method](net, X, Y)
    assert_same(result, CALLS[method](twin, np.array(X), np.array(Y)))
