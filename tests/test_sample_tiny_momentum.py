"""What only momentum's tiny epochs (csrc/fastbp_sample_impl.h's
fbp_sample_momentum_tiny) have: a second fit continues the velocity as the
general momentum path does, and the settings they decline (L2, Nesterov,
decay, other nets) take that path. Every shape bit for bit, the reference,
and divergence with rollback are in test_sample_tiny.py, parametrised by
momentum."""
import numpy as np
import pytest
from test_sample_tiny import assert_same_bits, fit_outcome, general_loop, tiny_net

import fastbp
from fastbp import _kernels

__all__ = ["general_loop"]  # the fixture, shared with test_sample_tiny


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
