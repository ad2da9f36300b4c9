"""The unrolled per-sample SGD epochs of a net of a few units
(csrc/fastbp_sample_impl.h's fbp_sample_tiny, and with momentum
fbp_sample_momentum_tiny: one hidden layer of <= 4 sigmoid units, <= 4
inputs, one sigmoid output, mse, no L2 term) train bit for bit as the
general per-sample loop, on every shape they take, and as the pure-Python
reference; test_sample_tiny_momentum.py has what only momentum has."""
import numpy as np
import pytest
from helpers import as_lists, assert_close

import fastbp
from fastbp import _kernels, reference


@pytest.fixture
def general_loop():
    """Run the block with the unrolled epochs off, then put the setting back."""
    def run(fn):
        old = _kernels.set_sample_tiny(False)
        try:
            return fn()
        finally:
            _kernels.set_sample_tiny(old)
    return run


def never_stop(epoch, history, network):
    return False


def tiny_net(rng, n0, n1, dtype, scale=1.0):
    net = fastbp.Network([n0, n1, 1], activation="sigmoid", output_activation="sigmoid",
                         dtype=dtype, seed=int(rng.integers(1 << 30)))
    net.set_weights([W * scale for W in net.weights],
                    [rng.normal(scale=0.3 * scale, size=b.shape) for b in net.biases])
    return net


def fit_outcome(net, X, Y, **kwargs):
    try:
        history = net.fit(X, Y, loss="mse", **kwargs)
    except fastbp.TrainingDiverged as exc:
        history = ("diverged", str(exc), exc.history)
    return history, [np.asarray(p).copy() for p in net.weights + net.biases]


def assert_same_bits(one, two):
    (h1, p1), (h2, p2) = one, two
    if isinstance(h1, tuple):
        assert h1[:2] == h2[:2]
        h1, h2 = h1[2], h2[2]
    for key in ("loss", "data_loss", "penalty", "lr"):
        assert np.array_equal(np.asarray(h1[key]).view(np.uint64),
                              np.asarray(h2[key]).view(np.uint64)), key
    for a, b in zip(p1, p2):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n0", [1, 2, 3, 4])
@pytest.mark.parametrize("n1", [1, 2, 3, 4])
@pytest.mark.parametrize("momentum", [0.0, 0.4, 0.9])  # plain SGD's tiny epochs, momentum's
def test_every_tiny_shape_bit_for_bit_the_general_loop(rng, general_loop, dtype, n0, n1,
                                                       momentum):
    # large weights reach the sigmoid's saturated tails (and, in float32, the
    # exp's lower bound) on both signs
    scale = float(rng.choice([1.0, 30.0]))
    X = rng.normal(scale=2.0, size=(int(rng.integers(1, 9)), n0))
    Y = rng.uniform(size=(X.shape[0], 1))
    net = tiny_net(rng, n0, n1, dtype, scale)
    params = net.weights, net.biases
    runs = []
    for how in ("tiny", "general"):
        for callbacks in ((), (never_stop,)):  # one call for every epoch, then one an epoch
            net.set_weights(*params)
            fit = lambda: fit_outcome(net, X, Y, optimizer=fastbp.SGD(lr=0.7, momentum=momentum),
                                      epochs=7, batch_size=1, shuffle=bool(n1 % 2), seed=3,
                                      callbacks=callbacks)
            before = _kernels.sample_tiny_runs()
            runs.append(fit() if how == "tiny" else general_loop(fit))
            assert (_kernels.sample_tiny_runs() > before) == (how == "tiny")
    assert_same_bits(runs[0], runs[2])
    assert_same_bits(runs[1], runs[3])
    assert_same_bits(runs[0], runs[1])


@pytest.mark.parametrize("n0, n1", [(2, 2), (3, 4), (1, 3)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.4])
def test_tiny_epochs_match_the_reference(rng, n0, n1, shuffle, momentum):
    net = tiny_net(rng, n0, n1, "float64")
    X, Y = rng.normal(size=(6, n0)), rng.uniform(size=(6, 1))
    W_ref, b_ref, acts = as_lists(net)
    before = _kernels.sample_tiny_runs()
    history = net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=0.5, momentum=momentum),
                      epochs=20, batch_size=1, shuffle=shuffle, seed=11)
    assert _kernels.sample_tiny_runs() > before
    # fit draws one permutation per epoch from default_rng(seed)
    perm_rng = np.random.default_rng(11)
    orders = [perm_rng.permutation(6).tolist() for _ in range(20)] if shuffle else None
    ref_history = reference.fit(W_ref, b_ref, acts, X.tolist(), Y.tolist(), "mse", lr=0.5,
                                momentum=momentum, epochs=20, batch_size=1, orders=orders)
    assert_close(history["loss"], ref_history)
    for got, want in zip(net.weights + net.biases, W_ref + b_ref):
        assert_close(got, want)


@pytest.mark.parametrize("dtype, lr, target", [
    ("float32", 1e39, 1.0),   # a rate float32 rounds to inf: the weights go inf, then NaN
    ("float64", 0.5, 1e200),  # a row whose loss overflows
])
@pytest.mark.parametrize("callbacks", [(), (never_stop,)])
@pytest.mark.parametrize("momentum", [0.0, 0.4])  # plain SGD's tiny epochs, momentum's
def test_tiny_divergence_is_reported_and_rolled_back_as_the_general_loop(
        rng, general_loop, dtype, lr, target, callbacks, momentum):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([[0], [target], [1], [0]], float)
    net = tiny_net(rng, 2, 2, dtype)
    params = net.weights, net.biases
    runs = []
    for how in ("tiny", "general"):
        net.set_weights(*params)
        fit = lambda: fit_outcome(net, X, Y, optimizer=fastbp.SGD(lr=lr, momentum=momentum),
                                  epochs=50, batch_size=1, shuffle=False, callbacks=callbacks)
        runs.append(fit() if how == "tiny" else general_loop(fit))
    assert isinstance(runs[0][0], tuple)  # it diverged
    assert_same_bits(runs[0], runs[1])
    for got, want in zip(runs[0][1], params[0] + params[1]):  # rolled back
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("sizes, kwargs", [
    ([2, 5, 1], {}),                                    # 5 hidden units
    ([2, 2, 2], {}),                                    # two outputs
    ([2, 2, 2, 1], {}),                                 # two hidden layers
    ([2, 2, 1], {"l2": 0.01}),
    ([2, 2, 1], {"loss": "bce"}),
])
def test_other_nets_take_the_general_loop(rng, sizes, kwargs):
    net = fastbp.Network(sizes, activation="sigmoid", output_activation="sigmoid", seed=1)
    X, Y = rng.normal(size=(4, sizes[0])), rng.uniform(size=(4, sizes[-1]))
    before = _kernels.sample_tiny_runs()
    net.fit(X, Y, **{"loss": "mse", **kwargs}, optimizer=fastbp.SGD(lr=0.5), epochs=3,
            batch_size=1)
    assert _kernels.sample_tiny_runs() == before


def test_tanh_hidden_units_take_the_general_loop(rng):
    net = fastbp.Network([2, 2, 1], activation="tanh", output_activation="sigmoid", seed=1)
    before = _kernels.sample_tiny_runs()
    net.fit(rng.normal(size=(4, 2)), rng.uniform(size=(4, 1)), loss="mse",
            optimizer=fastbp.SGD(lr=0.5), epochs=3, batch_size=1)
    assert _kernels.sample_tiny_runs() == before
