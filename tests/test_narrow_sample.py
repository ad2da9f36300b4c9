"""Tiny nets on the per-sample path: the momentum epoch of a net at most
four units wide runs its own x86-64-v3 code (fastbp_sample.h's
FBP_CLONES_NARROW), and a short array's NaN check runs inline
(fastbp_finite.h's FBP_FINITE_SMALL). Both must leave every result as it
was: the same bits as the minibatch loop at batch 1, at the bound and just
past it, and the same first non-finite index at every length around the
inline bound."""
import numpy as np
import pytest

import fastbp
from fastbp import _kernels
from test_per_sample_momentum import _problem, loop_products  # noqa: F401 (a fixture)

# (sizes, hidden activation, output activation, loss): at most 4 wide, and
# just past it (5 units somewhere), which keeps the general clones
NETS = [
    ((2, 2, 1), "sigmoid", "sigmoid", "mse"),
    ((4, 3, 4, 2), "tanh", "softmax", "cross_entropy"),
    ((1, 4, 1), "relu", "identity", "mse"),
    ((2, 5, 1), "sigmoid", "sigmoid", "mse"),
    ((5, 4, 3), "tanh", "sigmoid", "bce"),
]
OPTIMIZERS = {
    "momentum": lambda: fastbp.SGD(lr=0.1, momentum=0.4),
    "nesterov": lambda: fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True),
}


def _fit(spec, optimizer, X, Y, dtype, **kw):
    sizes, act, out, loss = spec
    net = fastbp.Network(list(sizes), activation=act, output_activation=out, dtype=dtype,
                         seed=2)
    history = net.fit(X, Y, loss=loss, optimizer=optimizer, epochs=4, batch_size=1,
                      shuffle=False, **kw)
    return net, history


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("spec", NETS, ids=lambda s: "-".join(map(str, s[0])))
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_narrow_momentum_epochs_equal_the_minibatch_loop(loop_products, dtype, kind, spec, l2):
    # sample weights of 1 send the same fit through the minibatch loop
    X, Y = _problem(spec[0], 24, spec[3], seed=5)
    fused, fused_history = _fit(spec, OPTIMIZERS[kind](), X, Y, dtype, l2=l2)
    loop, loop_history = _fit(spec, OPTIMIZERS[kind](), X, Y, dtype, l2=l2,
                              sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(fused._params, loop._params)
    assert fused_history["loss"] == loop_history["loss"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_narrow_momentum_same_bits_on_one_and_two_threads(dtype):
    X, Y = _problem((2, 2, 1), 4, "mse", seed=5)
    params = []
    for n_threads in (1, 2):
        net, _ = _fit(NETS[0], OPTIMIZERS["momentum"](), X, Y, dtype, n_threads=n_threads)
        params.append(net._params)
    np.testing.assert_array_equal(params[0], params[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 2, 9, 31, 32, 33, 40])
def test_first_nonfinite_around_the_inline_bound(dtype, n):
    values = np.linspace(-1.0, 1.0, n).astype(dtype)
    values[n // 2] = np.finfo(dtype).tiny / 4  # subnormal: finite
    assert _kernels.first_nonfinite(values) == -1
    for position in sorted({0, n // 2, n - 1}):
        for bad in (np.nan, np.inf, -np.inf):
            spoiled = values.copy()
            spoiled[position] = bad
            spoiled[-1] = np.nan if position != n - 1 else bad  # a later one is not reported
            assert _kernels.first_nonfinite(spoiled) == position, (position, bad)


def test_a_tiny_diverging_fit_stops_with_finite_weights():
    # 9 parameters: the per-epoch check of the weights runs inline
    X, Y = _problem((2, 2, 1), 4, "mse", seed=5)
    net = fastbp.Network([2, 2, 1], activation="relu", output_activation="identity", seed=0)
    with pytest.raises(fastbp.TrainingDiverged):
        net.fit(X, Y * 1e6, loss="mse", optimizer=fastbp.SGD(lr=10.0, momentum=0.9),
                epochs=200, batch_size=1, shuffle=False)
    assert np.isfinite(net._params).all()
