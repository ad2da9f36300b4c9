"""Per-sample SGD with momentum (or Nesterov's) on the fused per-sample path
(csrc/fastbp_sample_impl.h, fbp_sample_momentum_epoch): the same weights as
the minibatch loop at batch 1, bit for bit where that loop's products are
plain loops, and the same steps as NumPy's and PyTorch's per-sample loops."""
import numpy as np
import pytest
import scipy.sparse as sp

import fastbp
from fastbp import _kernels
from fastbp._training import fused_per_sample

# (hidden activation, output activation, loss)
CONFIGS = [
    ("tanh", "softmax", "cross_entropy"),
    ("sigmoid", "sigmoid", "mse"),
    ("relu", "sigmoid", "bce"),
    ("tanh", "identity", "mse"),
]
OPTIMIZERS = {
    "momentum": lambda: fastbp.SGD(lr=0.05, momentum=0.6),
    "nesterov": lambda: fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True),
}


def _problem(sizes, rows, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, sizes[0]))
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], rows)]
    elif loss == "bce":
        Y = rng.integers(0, 2, size=(rows, sizes[-1])).astype(float)
    else:
        Y = rng.uniform(size=(rows, sizes[-1]))
    return X, Y


@pytest.fixture
def loop_products():
    """The minibatch loop's products as plain loops (no tiles, no BLAS),
    whose order the per-sample path follows."""
    old = _kernels.set_blas_min_flops(1 << 40)
    yield
    _kernels.set_blas_min_flops(old)


def _fit(sizes, act, out, loss, optimizer, X, Y, dtype, **kw):
    net = fastbp.Network(list(sizes), activation=act, output_activation=out, dtype=dtype,
                         seed=3)
    history = net.fit(X, Y, loss=loss, optimizer=optimizer, epochs=3, batch_size=1, seed=4,
                      **kw)
    return net, history


def test_momentum_takes_the_fused_per_sample_path():
    assert fused_per_sample(1, fastbp.SGD(lr=0.1, momentum=0.5))
    assert fused_per_sample(1, fastbp.SGD(lr=0.1, momentum=0.5, nesterov=True))
    assert fused_per_sample(1, fastbp.SGD(lr=0.1))
    assert not fused_per_sample(2, fastbp.SGD(lr=0.1, momentum=0.5))
    assert not fused_per_sample(1, fastbp.Adam())
    kinds = _kernels.optimizer_kinds()
    assert kinds["sgd"].per_sample and not kinds["adam"].per_sample


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("act,out,loss", CONFIGS)
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_bit_for_bit_the_minibatch_loop_at_batch_one(loop_products, dtype, kind, act, out,
                                                     loss, l2):
    # sample weights of 1 send the same fit through the minibatch loop (the
    # fused path takes unweighted rows only); they scale nothing
    sizes = (7, 12, 9, 3)
    X, Y = _problem(sizes, 40, loss)
    fused, fused_history = _fit(sizes, act, out, loss, OPTIMIZERS[kind](), X, Y, dtype, l2=l2)
    loop, loop_history = _fit(sizes, act, out, loss, OPTIMIZERS[kind](), X, Y, dtype, l2=l2,
                              sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(fused._params, loop._params)
    assert fused_history["loss"] == loop_history["loss"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bit_for_bit_on_wide_layers_and_velocity(loop_products, dtype):
    # widths past the forward pass's register blocks (4 vectors, 1 vector, the rest)
    sizes = (5, 150, 37, 2)
    X, Y = _problem(sizes, 25, "mse", seed=1)
    optimizers = [fastbp.SGD(lr=0.01, momentum=0.7) for _ in range(2)]
    fused, _ = _fit(sizes, "tanh", "identity", "mse", optimizers[0], X, Y, dtype)
    loop, _ = _fit(sizes, "tanh", "identity", "mse", optimizers[1], X, Y, dtype,
                   sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(fused._params, loop._params)
    np.testing.assert_array_equal(optimizers[0].velocity(fused), optimizers[1].velocity(loop))


def test_close_to_the_minibatch_loop_with_its_default_products():
    # with tiles and BLAS the loop sums in another order: equal to rounding
    sizes = (64, 32, 10)
    X, Y = _problem(sizes, 200, "cross_entropy", seed=2)
    fused, _ = _fit(sizes, "tanh", "softmax", "cross_entropy", OPTIMIZERS["momentum"](), X, Y,
                    "float64")
    loop, _ = _fit(sizes, "tanh", "softmax", "cross_entropy", OPTIMIZERS["momentum"](), X, Y,
                   "float64", sample_weight=np.ones(len(X)))
    np.testing.assert_allclose(fused._params, loop._params, rtol=0, atol=1e-11)


def _numpy_momentum(net, X, Y, lr, mu, nesterov, epochs, l2):
    """Per-sample SGD with momentum in float64, tanh hidden layers, identity
    output, J = 1/2 ||y - t||^2 + l2/2 sum ||W||^2 per row (fastbp's at batch 1)."""
    W = [w.astype(np.float64) for w in net.weights]
    b = [c.astype(np.float64) for c in net.biases]
    vW = [np.zeros_like(w) for w in W]
    vb = [np.zeros_like(c) for c in b]
    for _ in range(epochs):
        for x, t in zip(X, Y):
            z = [x]
            for layer, (w, c) in enumerate(zip(W, b)):
                a = z[-1] @ w + c
                z.append(a if layer == len(W) - 1 else np.tanh(a))
            delta = z[-1] - t
            grads = []
            for layer in range(len(W) - 1, -1, -1):
                grads.append((layer, np.outer(z[layer], delta) + l2 * W[layer], delta))
                if layer > 0:
                    delta = (W[layer] @ delta) * (1 - z[layer] ** 2)
            for layer, g_W, g_b in grads:
                for p, v, g in ((W, vW, g_W), (b, vb, g_b)):
                    v[layer] = mu * v[layer] - lr * g
                    p[layer] = p[layer] + (mu * v[layer] - lr * g if nesterov else v[layer])
    return W, b


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_against_a_numpy_per_sample_loop(nesterov, l2):
    sizes = (4, 9, 6, 2)
    X, Y = _problem(sizes, 30, "mse", seed=5)
    lr, mu = 0.03, 0.8
    for dtype, rtol in (("float64", 1e-12), ("float32", 2e-5)):
        net = fastbp.Network(list(sizes), activation="tanh", output_activation="identity",
                             dtype=dtype, seed=6)
        start = net.copy()
        net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=lr, momentum=mu, nesterov=nesterov),
                epochs=3, batch_size=1, shuffle=False, l2=l2)
        W, b = _numpy_momentum(start, X, Y, lr, mu, nesterov, 3, l2)
        for got, want in zip(net.weights + net.biases, W + b):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("nesterov", [False, True])
def test_against_torch_sgd_step_for_step(nesterov):
    torch = pytest.importorskip("torch")
    sizes = (5, 8, 3)
    X, Y = _problem(sizes, 12, "cross_entropy", seed=7)
    net = fastbp.Network(list(sizes), activation="sigmoid", output_activation="softmax",
                         dtype="float64", seed=8)
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True)
              for pair in zip(net.weights, net.biases) for p in pair]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=nesterov)
    optimizer = fastbp.SGD(lr=0.1, momentum=0.9, nesterov=nesterov)
    for epoch in range(2):
        net.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=1, batch_size=1,
                shuffle=False)
        for x, t in zip(torch.tensor(X), torch.tensor(Y)):
            opt.zero_grad()
            a = torch.sigmoid(x @ params[0] + params[1]) @ params[2] + params[3]
            loss = -(t * torch.log_softmax(a, dim=0)).sum()
            loss.backward()
            opt.step()
        for got, want in zip([p for pair in zip(net.weights, net.biases) for p in pair],
                             params):
            want = want.detach().numpy()
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_bits_on_one_and_two_threads_and_a_second_fit_continues(dtype):
    sizes = (6, 20, 4)
    X, Y = _problem(sizes, 60, "cross_entropy", seed=9)
    runs = []
    for n_threads in (1, 2):
        net = fastbp.Network(list(sizes), activation="relu", output_activation="softmax",
                             dtype=dtype, seed=1)
        optimizer = fastbp.SGD(lr=0.05, momentum=0.9)
        net.fit(X, Y, optimizer=optimizer, epochs=2, batch_size=1, seed=2, n_threads=n_threads)
        runs.append(net._params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    # two fits of one epoch with one optimiser: its velocity carries over
    net = fastbp.Network(list(sizes), activation="relu", output_activation="softmax",
                         dtype=dtype, seed=1)
    optimizer = fastbp.SGD(lr=0.05, momentum=0.9)
    rng = np.random.default_rng(2)
    orders = [rng.permutation(len(X)) for _ in range(2)]
    for order in orders:
        net.fit(X[order], Y[order], optimizer=optimizer, epochs=1, batch_size=1, shuffle=False)
    whole = fastbp.Network(list(sizes), activation="relu", output_activation="softmax",
                           dtype=dtype, seed=1)
    optimizer = fastbp.SGD(lr=0.05, momentum=0.9)
    both = np.concatenate(orders)
    whole.fit(X[both], Y[both], optimizer=optimizer, epochs=1, batch_size=1, shuffle=False)
    np.testing.assert_array_equal(net._params, whole._params)


def test_sparse_rows_take_the_minibatch_loop_and_agree():
    sizes = (10, 8, 3)
    X, Y = _problem(sizes, 50, "cross_entropy", seed=10)
    X[np.abs(X) < 0.8] = 0
    nets = []
    for data in (X, sp.csr_matrix(X)):
        net = fastbp.Network(list(sizes), activation="tanh", output_activation="softmax", seed=2)
        net.fit(data, Y, optimizer=fastbp.SGD(lr=0.05, momentum=0.9), epochs=2, batch_size=1,
                seed=3)
        nets.append(net._params)
    np.testing.assert_allclose(nets[0], nets[1], rtol=0, atol=1e-12)


def test_a_diverging_fit_stops_with_finite_weights():
    sizes = (3, 5, 1)
    X, Y = _problem(sizes, 20, "mse", seed=11)
    Y *= 1e3
    net = fastbp.Network(list(sizes), activation="relu", output_activation="identity", seed=0)
    with pytest.raises(fastbp.TrainingDiverged):
        net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=1.0, momentum=0.9), epochs=50,
                batch_size=1)
    assert np.isfinite(net._params).all()
