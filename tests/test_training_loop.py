"""The nogil training loop, driven through the Trainer as Network.fit drives it:
sample weights, Adam, epochs split into ranges, minibatches on threads."""
import contextlib

import numpy as np
import pytest
from helpers import as_lists, assert_close, random_network, targets

import fastbp
from fastbp import _kernels, reference
from fastbp._kernels import Trainer
from fastbp.losses import LOSSES


def flat(net):
    return net._params.copy()


def trainer(net, X, Y, sw, order, batch, optimizer=0, lr=0.1, momentum=0.0, nesterov=False,
            beta2=0.999, epsilon=1e-8, steps=0, l2=0.0, loss="mse", state1=None, state2=None,
            n_threads=1, params=None):
    """A Trainer on ``params`` (default: net's own, trained in place), as fit
    sets one up. ``optimizer`` 0 is SGD (state1: the velocity, used with
    momentum), 1 Adam (state1, state2: the moments; momentum: beta1, steps:
    the steps taken before). An empty ``sw`` or ``order`` means none."""
    params = net._params if params is None else params
    t = Trainer(net._sizes, net._acts, LOSSES[loss], l2, batch, n_threads)
    t.set_params(params)
    t.set_data(X, Y, sw if len(sw) else None)
    t.set_order(order if len(order) else None)
    state1 = np.zeros_like(params) if state1 is None else state1
    if optimizer == 0:
        t.set_optimizer("sgd", lr, {"momentum": momentum, "nesterov": nesterov},
                        {"velocity": state1} if momentum != 0 else None)
    else:
        t.set_optimizer("adam", lr, {"beta1": momentum, "beta2": beta2, "epsilon": epsilon},
                        {"first_moment": state1,
                         "second_moment": np.zeros_like(params) if state2 is None else state2},
                        step_count=steps)
    return t


def run_rows(net, X, Y, sw, order, start, stop, batch, optimizer=0, steps=0, **kw):
    """Train net's parameters on positions [start, stop); returns (status,
    loss_sum, penalty_sum, rows_done, step_count), the step count being
    Adam's after the run, or ``steps`` for SGD."""
    t = trainer(net, X, Y, sw, order, batch, optimizer, steps=steps, **kw)
    return (*t.run(start, stop), t.step_count if optimizer == 1 else steps)


@pytest.mark.parametrize("loss,output", [("mse", "tanh"), ("bce", "sigmoid"),
                                         ("cross_entropy", "softmax")])
def test_integer_sample_weights_equal_repeated_rows(rng, loss, output):
    # weighting a row by k is the same objective as repeating it k times
    net = random_network(rng, [4, 6, 3], "sigmoid", output)
    X = rng.normal(size=(7, 4))
    Y = targets(rng, loss, 7, 3)
    weights = rng.integers(1, 4, size=7).astype(np.float64)
    work = np.empty(_kernels.pass_workspace_size(net._sizes, 7), np.float64)
    grad = np.empty_like(net._params)
    J, penalty = _kernels.weighted_loss_gradient(X, Y, weights, net._params, net._sizes,
                                                 net._acts, LOSSES[loss], 0.3, work, grad)
    repeat = np.repeat(np.arange(7), weights.astype(int))
    dW, db = net.gradients(X[repeat], Y[repeat], loss=loss, l2=0.3)
    assert_close(J + penalty, net.loss(X[repeat], Y[repeat], loss=loss, l2=0.3))
    expected = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(dW, db)])
    assert_close(grad, expected)


def test_weighted_minibatch_training_matches_repeated_full_batch(rng):
    net = random_network(rng, [3, 5, 2], "tanh", "identity")
    twin = net.copy()
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    weights = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 2.0])
    empty = np.empty(0, np.intp)
    status, loss_sum, penalty_sum, rows, _ = run_rows(net, X, Y, weights, empty, 0, 6, 6, l2=0.1)
    assert status == 0 and rows == 6
    repeat = np.repeat(np.arange(6), weights.astype(int))
    twin.fit(X[repeat], Y[repeat], optimizer=fastbp.SGD(lr=0.1), batch_size=len(repeat),
             shuffle=False, l2=0.1)
    assert_close(flat(net), flat(twin))


@pytest.mark.parametrize("batch", [1, 3, 10])
def test_epoch_split_into_ranges_equals_one_call(rng, batch):
    X, Y = rng.normal(size=(10, 3)), rng.uniform(size=(10, 2))
    order = rng.permutation(10).astype(np.intp)
    whole = fastbp.Network([3, 4, 2], seed=5)
    parts = whole.copy()
    velocity_whole = np.zeros_like(whole._params)
    run_rows(whole, X, Y, np.empty(0), order, 0, 10, batch, momentum=0.5, state1=velocity_whole)
    velocity_parts = np.zeros_like(parts._params)
    # split on batch boundaries, as a caller must
    cut = batch * (10 // batch // 2) or 10
    run_rows(parts, X, Y, np.empty(0), order, 0, cut, batch, momentum=0.5, state1=velocity_parts)
    run_rows(parts, X, Y, np.empty(0), order, cut, 10, batch, momentum=0.5, state1=velocity_parts)
    np.testing.assert_array_equal(flat(whole), flat(parts))


def test_adam_matches_the_paper_formulas(rng):
    net = random_network(rng, [3, 4, 2], "tanh", "identity")
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    W_ref, b_ref, acts = [W.tolist() for W in net.weights], [b.tolist() for b in net.biases], \
        list(net.activations) + [net.output_activation]
    lr, beta1, beta2, eps = 0.01, 0.9, 0.999, 1e-8
    first = np.zeros_like(net._params)
    second = np.zeros_like(net._params)
    status, *_, steps = run_rows(net, X, Y, np.empty(0), np.empty(0, np.intp), 0, 8, 4,
                                 optimizer=1, lr=lr, momentum=beta1, beta2=beta2, epsilon=eps,
                                 state1=first, state2=second)
    assert status == 0 and steps == 2
    # Kingma & Ba, Algorithm 1, with gradients from the pure-Python reference
    theta = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in zip(W_ref, b_ref)])
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, rows in enumerate([slice(0, 4), slice(4, 8)], start=1):
        Ws, bs, offset = [], [], 0
        for n_in, n_out in zip(net.sizes, net.sizes[1:]):
            Ws.append(theta[offset:offset + n_in * n_out].reshape(n_in, n_out).tolist())
            offset += n_in * n_out
            bs.append(theta[offset:offset + n_out].tolist())
            offset += n_out
        dW, db = reference.gradients(Ws, bs, acts, X[rows].tolist(), Y[rows].tolist())
        g = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in zip(dW, db)])
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - beta2 ** t))
    # sklearn's and the kernel's form puts eps outside the bias correction;
    # the paper's eps-hat = eps/sqrt(1-beta2^t) above makes the two identical
    assert_close(flat(net), theta, rtol=1e-10)


# ---------------------------------------------------------------------------
# Minibatches on threads of the kernel's own
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def poisoned_buffers():
    """Trainers made inside get their gradient and workspace filled with NaN
    (a scalar no thread computed would show); yields the sizes allocated."""
    real, sizes = _kernels.aligned_empty, []

    def poisoned(size, dtype):
        buffer = real(size, dtype)
        buffer.fill(np.nan)
        sizes.append(size)
        return buffer

    _kernels.aligned_empty = poisoned
    try:
        yield sizes
    finally:
        _kernels.aligned_empty = real


def run_threaded(net, X, Y, sw, order, batch, n_threads, optimizer=0, momentum=0.0,
                 nesterov=False, l2=0.0, loss="mse", start=0, lr=0.05):
    """A run from ``start`` to the end on a copy of net's parameters, with a
    workspace of NaN and Adam 4 steps in; returns (params, results)."""
    params = net._params.copy()
    with poisoned_buffers() as sizes:
        t = trainer(net, X, Y, sw, order, batch, optimizer, lr, momentum, nesterov,
                    epsilon=1e-8, steps=4, l2=l2, loss=loss, n_threads=n_threads,
                    params=params)
    assert sizes[-1] == _kernels.workspace_size(net._sizes, batch, t.n_threads)
    results = (*t.run(start, X.shape[0]), t.step_count if optimizer == 1 else 4)
    return params, results


OPTIMIZERS = {"sgd": (0, 0.0, False), "momentum": (0, 0.9, False),
              "nesterov": (0, 0.9, True), "adam": (1, 0.9, False)}


@pytest.mark.parametrize("split", ["rows", "columns"])
@pytest.mark.parametrize("blas", ["loops", "blas"])
@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threaded_minibatches_equal_one_thread(request, rng, dtype, optimizer, n_threads, blas,
                                               split):
    # every feature of the loop at once: sample weights, a shuffled order, L2,
    # a short last batch and a start inside the data. Split by columns (the
    # column_split fixture), 3 threads split the 17- and 11-unit layers'
    # columns in shares of 4 and leave the 4 outputs to rows; with 2, the 11
    # units split as well. The workspace starts as NaN: a column no thread
    # computed would show.
    if split == "columns":
        request.getfixturevalue("column_split")
    net = random_network(rng, [13, 17, 11, 4], "tanh", "softmax", dtype)
    X = rng.normal(size=(101, 13)).astype(dtype)
    Y = targets(rng, "cross_entropy", 101, 4, dtype)
    sw = rng.uniform(0.5, 2, 101).astype(dtype)
    order = rng.permutation(101).astype(np.intp)
    code, momentum, nesterov = OPTIMIZERS[optimizer]
    old = _kernels.set_blas_min_flops(0 if blas == "blas" else 2**62)
    try:
        runs = [run_threaded(net, X, Y, sw, order, 16, threads, code, momentum, nesterov,
                             l2=0.3, loss="cross_entropy", start=3)
                for threads in (1, n_threads)]
    finally:
        _kernels.set_blas_min_flops(old)
    (one, one_results), (many, many_results) = runs
    assert many_results[0] == one_results[0] == 0
    assert many_results[3:] == one_results[3:]  # rows done, Adam's step count
    assert_close(many, one, dtype)
    assert_close(many_results[1:3], one_results[1:3], dtype)  # loss and L2 sums


@pytest.mark.parametrize("split", ["rows", "columns"])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_wide_full_batch_step_matches_the_reference_on_every_product_path(request, rng, gemm_path,
                                                                          dtype, n_threads, split):
    # layers wide enough for the AVX-512 tiles; on threads, each one's weight
    # update is a column block of z_prev (the lda path), with leftover rows;
    # split by columns, each thread's share of a layer's columns goes through
    # the tiles (or BLAS, or loops) with the rows of W and z far apart
    if split == "columns":
        request.getfixturevalue("column_split")
    net = random_network(rng, [40, 48, 37, 5], "tanh", "sigmoid", dtype)
    X = rng.normal(size=(26, 40)).astype(dtype)
    Y = targets(rng, "bce", 26, 5, dtype)
    params, results = run_threaded(net, X, Y, np.empty(0, dtype), np.empty(0, np.intp), 26,
                                   n_threads, l2=0.2, loss="bce", lr=0.5)
    assert results[0] == 0
    weights, biases, activations = as_lists(net)
    dW, db = reference.gradients(weights, biases, activations, X.astype(np.float64).tolist(),
                                 Y.astype(np.float64).tolist(), "bce", 0.2)
    expected = np.concatenate([np.concatenate([np.ravel(W) - 0.5 * np.ravel(g),
                                               np.ravel(b) - 0.5 * np.ravel(gb)])
                               for W, b, g, gb in zip(weights, biases, dW, db)])
    assert_close(params, expected, dtype)


@pytest.mark.parametrize("hidden,output,loss", [("sigmoid", "sigmoid", "mse"),
                                                ("relu", "sigmoid", "bce"),
                                                ("tanh", "softmax", "cross_entropy")])
def test_threaded_full_batch_step_matches_the_reference_gradient(rng, hidden, output, loss):
    net = random_network(rng, [6, 9, 5, 3], hidden, output)
    X = rng.normal(size=(12, 6))
    Y = targets(rng, loss, 12, 3)
    none = np.empty(0)
    params, results = run_threaded(net, X, Y, none, np.empty(0, np.intp), 12, 2, l2=0.2,
                                   loss=loss, lr=0.5)
    weights, biases, activations = as_lists(net)
    dW, db = reference.gradients(weights, biases, activations, X.tolist(), Y.tolist(), loss,
                                 0.2)
    expected = np.concatenate([np.concatenate([np.ravel(W) - 0.5 * np.ravel(g),
                                               np.ravel(b) - 0.5 * np.ravel(gb)])
                               for W, b, g, gb in zip(weights, biases, dW, db)])
    assert_close(params, expected)
    J = reference.objective(weights, biases, activations, X.tolist(), Y.tolist(), loss, 0.2)
    assert_close((results[1] + results[2]) / 12, J)


@pytest.mark.parametrize("sizes,output,loss", [
    ([9, 4], "softmax", "cross_entropy"),   # one layer, softmax output
    ([9, 3], "sigmoid", "bce"),             # one layer, elementwise output
    ([9, 2, 5, 3], "identity", "mse"),      # fewer units in a layer than threads
])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_threaded_one_layer_and_narrow_nets_equal_one_thread(rng, sizes, output, loss,
                                                              optimizer):
    # 3 threads on 2 units and on 8-row batches: some shares are empty
    net = random_network(rng, sizes, "tanh", output)
    X = rng.normal(size=(37, sizes[0]))
    Y = targets(rng, loss, 37, sizes[-1])
    order = rng.permutation(37).astype(np.intp)
    code, momentum, nesterov = OPTIMIZERS[optimizer]
    runs = [run_threaded(net, X, Y, np.empty(0), order, 8, threads, code, momentum, nesterov,
                         l2=0.2, loss=loss) for threads in (1, 3)]
    (one, one_results), (many, many_results) = runs
    assert many_results[0] == one_results[0] == 0
    assert many_results[3:] == one_results[3:]
    assert_close(many, one)
    assert_close(many_results[1:3], one_results[1:3])
    assert not np.allclose(one, net._params)  # it trained


@pytest.fixture
def column_split():
    """Threads split the columns of every layer of 4 columns a thread or more
    (the default is W over 2 MiB, 64 columns a thread)."""
    old = _kernels.set_column_split(0, 4)
    yield
    _kernels.set_column_split(*old)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_of_layers_over_2_mib_on_two_threads_matches_one(rng, dtype):
    # the default split: W_1 (1024 x 600) spans over 2 MiB in both dtypes, so two
    # threads take 320 and 280 of its 600 columns, and 512 each of the 1024
    # deltas it sends back
    net = fastbp.Network([64, 1024, 600, 3], activation="tanh", output_activation="softmax",
                         dtype=dtype, seed=1)
    X = rng.normal(size=(96, 64)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 96)]
    fits = []
    for n_threads in (1, 2):
        copy = net.copy()
        history = copy.fit(X, Y, loss="cross_entropy", optimizer=fastbp.SGD(lr=0.1), epochs=2,
                           batch_size=48, n_threads=n_threads, seed=0)
        fits.append((copy, history))
    (one, one_history), (two, two_history) = fits
    for W1, W2 in zip(one.weights + one.biases, two.weights + two.biases):
        assert_close(W2, W1, dtype)
    assert_close(two_history["loss"], one_history["loss"], dtype)
    assert not np.allclose(one.weights[1], net.weights[1])


@pytest.mark.parametrize("split", ["rows", "columns"])
def test_threaded_training_is_bit_identical_from_run_to_run(request, rng, split):
    if split == "columns":
        request.getfixturevalue("column_split")
    net = random_network(rng, [30, 40, 20, 5], "relu", "identity")
    X, Y = rng.normal(size=(500, 30)), rng.normal(size=(500, 5))
    order = rng.permutation(500).astype(np.intp)
    first = run_threaded(net, X, Y, np.empty(0), order, 32, 2, 0, 0.9)
    for _ in range(5):
        again = run_threaded(net, X, Y, np.empty(0), order, 32, 2, 0, 0.9)
        np.testing.assert_array_equal(again[0], first[0])
        assert again[1] == first[1]


@pytest.mark.parametrize("split", ["rows", "columns"])
def test_threaded_training_stops_at_the_same_batch_as_one_thread(request, rng, split):
    # every thread meets the barriers between layers, then stops at that batch
    if split == "columns":
        request.getfixturevalue("column_split")
    net = random_network(rng, [5, 8, 2], "tanh", "identity")
    X, Y = rng.normal(size=(64, 5)), rng.normal(size=(64, 2))
    Y[37, 1] = np.inf  # in the third batch of 16
    one = run_threaded(net, X, Y, np.empty(0), np.empty(0, np.intp), 16, 1)
    many = run_threaded(net, X, Y, np.empty(0), np.empty(0, np.intp), 16, 2)
    assert one[1][0] == many[1][0] == 1
    assert one[1][3] == many[1][3] == 32  # two whole batches went through
    assert_close(many[0], one[0])


def test_threaded_training_takes_a_workspace_sized_for_threads(rng):
    # threads keep every layer's delta: more workspace on deeper nets. The
    # Trainer allocates it for its threads, so no caller can hand it one
    # sized for one thread
    net = random_network(rng, [5, 8, 8, 8, 2], "tanh", "identity")
    X, Y = rng.normal(size=(10, 5)), rng.normal(size=(10, 2))
    assert _kernels.workspace_size(net._sizes, 4, 2) > _kernels.workspace_size(net._sizes, 4)
    params = net._params.copy()
    with poisoned_buffers() as sizes:
        t = trainer(net, X, Y, np.empty(0), np.empty(0, np.intp), 4, n_threads=2,
                    params=params)
    assert t.n_threads == (2 if _kernels.HAVE_THREADS else 1)
    assert sizes == [params.size, _kernels.workspace_size(net._sizes, 4, t.n_threads)]
    assert t.run(0, 10)[0] == 0
    one, _ = run_threaded(net, X, Y, np.empty(0), np.empty(0, np.intp), 4, 1, lr=0.1)
    assert_close(params, one)
