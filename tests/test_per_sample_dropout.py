"""Dropout on the fused per-sample path (``batch_size=1``): the kernel of
csrc/fastbp_sample_impl.h draws the masks dropout.pxi draws for each row's
position, and its steps are those of a NumPy emulation with those masks."""
import numpy as np
import pytest
from helpers import assert_close, random_network, targets
from scipy.special import erf

import fastbp
from fastbp import _kernels, _training

#: a hidden activation and its f', given (a, z) before the mask
HIDDEN_F = {
    "tanh": (np.tanh, lambda a, z: 1 - z * z),
    "sigmoid": (lambda a: 1 / (1 + np.exp(-a)), lambda a, z: z * (1 - z)),
    "relu": (lambda a: np.maximum(a, 0), lambda a, z: (a > 0).astype(float)),
    # f' through a: the layer keeps its a beside z
    "gelu": (lambda a: a * 0.5 * (1 + erf(a / np.sqrt(2))),
             lambda a, z: 0.5 * (1 + erf(a / np.sqrt(2)))
             + a * np.exp(-a * a / 2) / np.sqrt(2 * np.pi)),
}

#: an output with the loss whose delta at it is z - t
OUTPUTS = {"identity": ("mse", lambda a: a),
           "softmax": ("cross_entropy",
                       lambda a: np.exp(a - a.max()) / np.exp(a - a.max()).sum())}


def emulate(net, X, Y, rates, seed, epochs, lr, momentum=0.0, nesterov=False, l2=0.0):
    """fit(shuffle=False, batch_size=1) with SGD, in float64 NumPy: row p of
    epoch e takes the masks dropout_masks gives for (seed, e, p); inverted
    dropout on each hidden z, delta below through f'(before the mask) times
    the mask; v = mu v - lr g, w += v (Nesterov: w += mu v - lr g)."""
    Ws = [W.astype(np.float64) for W in net.weights]
    bs = [b.astype(np.float64) for b in net.biases]
    vW = [np.zeros_like(W) for W in Ws]
    vb = [np.zeros_like(b) for b in bs]
    f, f_prime = HIDDEN_F[net.activations[0]]
    out = OUTPUTS[net.output_activation][1]
    sizes, _ = net.kernel_layout
    L = len(Ws)

    def step(p, v, g):
        if momentum == 0:
            p -= lr * g
            return
        v[:] = momentum * v - lr * g
        p += momentum * v - lr * g if nesterov else v

    for epoch in range(epochs):
        for row in range(len(X)):
            masks = _kernels.dropout_masks(sizes, rates, seed, epoch, row, 1)
            zs, factors = [X[row].astype(np.float64)], []
            for l in range(L):
                a = zs[-1] @ Ws[l] + bs[l]
                if l == L - 1:
                    zs.append(out(a))
                else:
                    z = f(a)
                    factors.append(f_prime(a, z) * masks[l][0])
                    zs.append(z * masks[l][0])
            delta = zs[-1] - Y[row]
            for l in range(L - 1, -1, -1):
                below = (delta @ Ws[l].T) * factors[l - 1] if l > 0 else None
                step(Ws[l], vW[l], np.outer(zs[l], delta) + l2 * Ws[l])
                step(bs[l], vb[l], delta)
                delta = below
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(Ws, bs)])


def fused_fit(net, X, Y, rates, seed, epochs, optimizer, **kwargs):
    """The fit emulate emulates, on a copy of ``net``."""
    trained = fastbp.Network(net.sizes, activation=net.activations[0],
                             output_activation=net.output_activation, dtype=net.dtype,
                             dropout=rates)
    trained.replace_params(net.params)
    dtype = net.dtype
    trained.fit(X.astype(dtype), Y.astype(dtype), epochs=epochs, batch_size=1, shuffle=False,
                seed=seed, optimizer=optimizer, loss=OUTPUTS[net.output_activation][0],
                **kwargs)
    return trained


@pytest.fixture(autouse=True)
def per_sample_only(monkeypatch):
    """Each fit here takes the fused per-sample path."""
    original = _training.TrainingLoop.__init__

    def check(self, *args, **kwargs):
        original(self, *args, **kwargs)
        assert self.per_sample

    monkeypatch.setattr(_training.TrainingLoop, "__init__", check)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", list(HIDDEN_F))
@pytest.mark.parametrize("output", list(OUTPUTS))
@pytest.mark.parametrize("optimizer", ["sgd", "l2", "momentum", "nesterov"])
def test_fit_takes_the_emulations_steps_with_the_same_masks(rng, dtype, hidden, output,
                                                            optimizer):
    # two hidden layers, one of them without dropout (rate 0)
    rates, seed, lr, epochs = [0.4, 0.0] if output == "identity" else [0.3, 0.5], 7, 0.05, 2
    net = random_network(rng, [5, 9, 6, 3], hidden, output, dtype=dtype)
    X, Y = rng.normal(size=(20, 5)), targets(rng, OUTPUTS[output][0], 20, 3)
    mu, nesterov = {"sgd": (0, False), "l2": (0, False), "momentum": (0.5, False),
                    "nesterov": (0.5, True)}[optimizer]
    l2 = 0.3 if optimizer in ("l2", "nesterov") else 0.0
    sizes, _ = net.kernel_layout
    assert (_kernels.dropout_masks(sizes, rates, seed, 0, 0, 20)[0] == 0).any()
    trained = fused_fit(net, X, Y, rates, seed, epochs,
                        fastbp.SGD(lr=lr, momentum=mu, nesterov=nesterov), l2=l2)
    expected = emulate(net, X, Y, rates, seed, epochs, lr, mu, nesterov, l2)
    assert_close(trained.params, expected, rtol=1e-12 if dtype == "float64" else 1e-5)
    # and the masks mattered
    unmasked = emulate(net, X, Y, [0.0, 0.0], seed, epochs, lr, mu, nesterov, l2)
    assert not np.allclose(trained.params, unmasked, rtol=1e-3)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_seed_same_bits_another_seed_other_weights(rng, dtype):
    net = random_network(rng, [6, 16, 8, 2], "tanh", "identity", dtype=dtype)
    X, Y = rng.normal(size=(40, 6)), rng.normal(size=(40, 2))
    fit = lambda seed, rates=0.3: fused_fit(net, X, Y, rates, seed, 2,  # noqa: E731
                                            fastbp.SGD(lr=0.02)).params
    first = fit(3)
    assert np.array_equal(first, fit(3))
    assert not np.array_equal(first, fit(4))
    assert not np.array_equal(first, fit(3, None))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_thread_counts_and_kernel_call_splits_give_the_same_bits(monkeypatch, rng, dtype,
                                                                  momentum):
    # the mask of each row is its position's, whichever call of the epoch runs it
    net = random_network(rng, [6, 24, 12, 3], "relu", "softmax", dtype=dtype)
    X, Y = rng.normal(size=(90, 6)), targets(rng, "cross_entropy", 90, 3)
    fits = []
    for n_threads, flops in ((1, 1e9), (2, 1e9), (1, 3e3)):
        monkeypatch.setattr(_training, "FIT_CALL_FLOPS", flops)
        fits.append(fused_fit(net, X, Y, 0.25, 5, 3, fastbp.SGD(lr=0.05, momentum=momentum),
                              n_threads=n_threads).params)
    assert np.array_equal(fits[0], fits[1])
    assert np.array_equal(fits[0], fits[2])


def test_shuffled_fits_are_reproducible_and_differ_from_in_order(rng):
    net = random_network(rng, [4, 10, 2], "sigmoid", "identity")
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))

    def fit(shuffle):
        trained = fastbp.Network(net.sizes, activation="sigmoid", dropout=0.5, seed=0)
        trained.replace_params(net.params)
        trained.fit(X, Y, epochs=2, batch_size=1, shuffle=shuffle, seed=11)
        return trained.params

    assert np.array_equal(fit(True), fit(True))
    assert not np.array_equal(fit(True), fit(False))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_and_loss_are_unscaled_after_a_fit(rng, dtype):
    net = random_network(rng, [5, 12, 3], "tanh", "identity", dtype=dtype)
    X, Y = rng.normal(size=(25, 5)), rng.normal(size=(25, 3))
    trained = fused_fit(net, X, Y, 0.5, 1, 2, fastbp.SGD(lr=0.05))
    W0, W1 = (W.astype(np.float64) for W in trained.weights)
    b0, b1 = (b.astype(np.float64) for b in trained.biases)
    expected = np.tanh(X @ W0 + b0) @ W1 + b1  # no mask, no 1/q
    prediction = trained.predict(X.astype(dtype))
    assert_close(prediction, expected, dtype=dtype)
    assert np.array_equal(prediction, trained.predict(X.astype(dtype)))
    J = 0.5 * np.sum((expected - Y) ** 2) / len(X)
    assert trained.loss(X.astype(dtype), Y.astype(dtype)) == pytest.approx(
        J, rel=1e-12 if dtype == "float64" else 1e-5)
