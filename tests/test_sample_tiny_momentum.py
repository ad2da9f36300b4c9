"""Per-sample SGD with momentum on a net of a few units (csrc/fastbp_sample_impl.h's
fbp_sample_momentum_tiny: one hidden layer of <= 4 sigmoid units, <= 4 inputs,
one sigmoid output, mse, no L2 term, no Nesterov, no decay) trains bit for bit
as the general momentum path, on every shape it takes, one epoch a call and
many epochs in one call (fbp_sample_momentum_epochs), and as the pure-Python
reference."""
import numpy as np
import pytest
from helpers import as_lists, assert_close
from test_sample_tiny import assert_same_bits, fit_outcome, general_loop, never_stop, tiny_net

import fastbp
from fastbp import _kernels, reference

__all__ = ["general_loop"]  # the fixture, shared with test_sample_tiny


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n0", [1, 2, 3, 4])
@pytest.mark.parametrize("n1", [1, 2, 3, 4])
def test_every_tiny_shape_bit_for_bit_the_general_momentum_path(rng, general_loop, dtype, n0,
                                                                 n1):
    # large weights reach the sigmoid's saturated tails on both signs
    scale = float(rng.choice([1.0, 30.0]))
    X = rng.normal(scale=2.0, size=(int(rng.integers(1, 9)), n0))
    Y = rng.uniform(size=(X.shape[0], 1))
    net = tiny_net(rng, n0, n1, dtype, scale)
    params = net.weights, net.biases
    mu = float(rng.choice([0.4, 0.9]))
    runs = []
    for how in ("tiny", "general"):
        for callbacks in ((), (never_stop,)):  # all epochs in one call, then one a call
            net.set_weights(*params)
            fit = lambda: fit_outcome(net, X, Y, optimizer=fastbp.SGD(lr=0.7, momentum=mu),
                                      epochs=7, batch_size=1, shuffle=bool(n1 % 2), seed=3,
                                      callbacks=callbacks)
            before = _kernels.sample_tiny_runs()
            runs.append(fit() if how == "tiny" else general_loop(fit))
            assert (_kernels.sample_tiny_runs() > before) == (how == "tiny")
    assert_same_bits(runs[0], runs[2])
    assert_same_bits(runs[1], runs[3])
    assert_same_bits(runs[0], runs[1])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_second_fit_continues_the_velocity_as_the_general_path(rng, general_loop, dtype):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([[0], [1], [1], [0]], float)
    net = tiny_net(rng, 2, 2, dtype)
    params = net.weights, net.biases
    runs = []
    for how in ("tiny", "general"):
        net.set_weights(*params)
        optimizer = fastbp.SGD(lr=0.5, momentum=0.4)

        def fit():
            first = fit_outcome(net, X, Y, optimizer=optimizer, epochs=5, batch_size=1,
                                shuffle=False)
            return first, fit_outcome(net, X, Y, optimizer=optimizer, epochs=5, batch_size=1,
                                      shuffle=False)
        runs.append(fit() if how == "tiny" else general_loop(fit))
    assert_same_bits(runs[0][0], runs[1][0])
    assert_same_bits(runs[0][1], runs[1][1])


@pytest.mark.parametrize("n0, n1", [(2, 2), (3, 4), (1, 3)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_tiny_momentum_epochs_match_the_reference(rng, n0, n1, shuffle):
    net = tiny_net(rng, n0, n1, "float64")
    X, Y = rng.normal(size=(6, n0)), rng.uniform(size=(6, 1))
    W_ref, b_ref, acts = as_lists(net)
    before = _kernels.sample_tiny_runs()
    history = net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=0.5, momentum=0.4), epochs=20,
                      batch_size=1, shuffle=shuffle, seed=11)
    assert _kernels.sample_tiny_runs() > before
    # fit draws one permutation per epoch from default_rng(seed)
    perm_rng = np.random.default_rng(11)
    orders = [perm_rng.permutation(6).tolist() for _ in range(20)] if shuffle else None
    ref_history = reference.fit(W_ref, b_ref, acts, X.tolist(), Y.tolist(), "mse", lr=0.5,
                                momentum=0.4, epochs=20, batch_size=1, orders=orders)
    assert_close(history["loss"], ref_history)
    for got, want in zip(net.weights + net.biases, W_ref + b_ref):
        assert_close(got, want)


# divergence and rollback: test_sample_tiny.py, for plain SGD and momentum alike


@pytest.mark.parametrize("sizes, kwargs, optimizer", [
    ([2, 5, 1], {}, dict(momentum=0.4)),                         # 5 hidden units
    ([2, 2, 2], {}, dict(momentum=0.4)),                         # two outputs
    ([2, 2, 1], {"l2": 0.01}, dict(momentum=0.4)),
    ([2, 2, 1], {}, dict(momentum=0.4, nesterov=True)),
    ([2, 2, 1], {}, dict(momentum=0.4, weight_decay=0.01)),
])
def test_other_momentum_fits_take_the_general_path(rng, sizes, kwargs, optimizer):
    net = fastbp.Network(sizes, activation="sigmoid", output_activation="sigmoid", seed=1)
    X, Y = rng.normal(size=(4, sizes[0])), rng.uniform(size=(4, sizes[-1]))
    before = _kernels.sample_tiny_runs()
    net.fit(X, Y, **{"loss": "mse", **kwargs}, optimizer=fastbp.SGD(lr=0.5, **optimizer),
            epochs=3, batch_size=1)
    assert _kernels.sample_tiny_runs() == before
