"""RMSprop, Adagrad and Rprop step for step against torch.optim: the
kernels' one step, then Network.fit on random nets (minibatches and full
batches, float64 to 1e-12 and float32 to 1e-5), on two threads, on a CSR X,
on chunks, resumed across fits and with fit's l2 as PyTorch's coupled
weight_decay."""
import numpy as np
import pytest
import scipy.sparse
from helpers import (assert_close, products_independent_of_splits, random_network,
                     spy_on_trainer_runs)

import fastbp
from fastbp import _kernels, _runtime

torch = pytest.importorskip("torch")

# name -> settings, each (fastbp's keywords, torch's keywords) for the same optimiser
SETTINGS = {
    "rmsprop": [
        (dict(lr=0.01, alpha=0.9, epsilon=1e-6, momentum=momentum, centered=centered),
         dict(lr=0.01, alpha=0.9, eps=1e-6, momentum=momentum, centered=centered))
        for momentum in (0.0, 0.9) for centered in (False, True)],
    "adagrad": [
        (dict(lr=0.05), dict(lr=0.05)),
        (dict(lr=0.05, lr_decay=0.3, epsilon=1e-6, initial_accumulator_value=0.2),
         dict(lr=0.05, lr_decay=0.3, eps=1e-6, initial_accumulator_value=0.2))],
    "rprop": [
        (dict(lr=0.01), dict(lr=0.01)),
        # step sizes that reach both bounds within a few steps
        (dict(lr=0.02, etas=(0.3, 1.7), step_sizes=(0.008, 0.04)),
         dict(lr=0.02, etas=(0.3, 1.7), step_sizes=(0.008, 0.04)))],
}
CLASSES = {"rmsprop": (fastbp.RMSprop, torch.optim.RMSprop),
           "adagrad": (fastbp.Adagrad, torch.optim.Adagrad),
           "rprop": (fastbp.Rprop, torch.optim.Rprop)}
CASES = [(name, index) for name, settings in SETTINGS.items() for index in range(len(settings))]
IDS = [f"{name}-{index}" for name, index in CASES]


def make(name, index):
    """fastbp's optimiser and a function building torch's over parameter groups."""
    ours, theirs = SETTINGS[name][index]
    ours_class, torch_class = CLASSES[name]
    return ours_class(**ours), lambda groups: torch_class(groups, **theirs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,index", CASES, ids=IDS)
def test_the_kernel_step_matches_torch(rng, name, index, dtype):
    optimizer, torch_optimizer = make(name, index)
    params = rng.normal(size=60).astype(dtype)
    buffers = {key: np.zeros_like(params) for key in optimizer.buffer_names}
    theirs = torch.tensor(params, requires_grad=True)
    torch_optimizer = torch_optimizer([theirs])
    step_count = 0
    for _ in range(8):
        grad = rng.normal(size=params.shape).astype(dtype)
        grad[:4] = 0  # sign(0) and products of 0 take their own branches
        step_count = _kernels.optimizer_update(name, params, grad, optimizer.lr,
                                               optimizer.hyper(), buffers, step_count)
        theirs.grad = torch.tensor(grad)
        torch_optimizer.step()
        assert_close(params, theirs.detach().numpy(), dtype)


def torch_fit(net, X, Y, torch_optimizer, epochs, batch_size, weight_decay=0.0,
              penalty=0.0):
    """The same fit in torch: batches in order, tanh hidden layers, an
    identity output and fastbp's mse (½Σ(z − t)² / m). ``weight_decay`` goes
    to torch's optimiser in a group of the weights (the biases' group has
    none); ``penalty`` adds fastbp's L2 term (penalty/2m)Σ‖W‖² to the loss."""
    dtype = torch.float64 if net.dtype == np.float64 else torch.float32
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    groups = [{"params": Ws}, {"params": bs}]
    if weight_decay:
        groups[0]["weight_decay"] = weight_decay
    optimizer = torch_optimizer(groups)
    X, Y = torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)
    for _ in range(epochs):
        for start in range(0, X.shape[0], batch_size):
            optimizer.zero_grad()
            z = X[start:start + batch_size]
            for layer, (W, b) in enumerate(zip(Ws, bs)):
                z = z @ W + b
                if layer < len(Ws) - 1:
                    z = torch.tanh(z)
            m = z.shape[0]
            J = 0.5 * ((z - Y[start:start + batch_size]) ** 2).sum() / m
            if penalty:
                J = J + penalty / (2 * m) * sum((W ** 2).sum() for W in Ws)
            J.backward()
            optimizer.step()
    return [p.detach().numpy() for p in Ws + bs]


def problem(rng, dtype=np.float64, sizes=(5, 8, 6, 3), rows=24):
    net = random_network(rng, list(sizes), "tanh", "identity", dtype=np.dtype(dtype).name)
    X = rng.normal(size=(rows, sizes[0])) * (rng.uniform(size=(rows, sizes[0])) < 0.6)
    Y = rng.normal(size=(rows, sizes[-1]))
    return net, X.astype(dtype), Y.astype(dtype)


def assert_all_close(got, want, dtype=np.float64):
    for ours, theirs in zip(got, want):
        assert_close(ours, theirs, dtype)


@pytest.mark.parametrize("batch_size", [8, 24])  # minibatches, and the full batch
@pytest.mark.parametrize("name,index", CASES, ids=IDS)
def test_fit_matches_torch(rng, name, index, batch_size):
    net, X, Y = problem(rng)
    optimizer, torch_optimizer = make(name, index)
    want = torch_fit(net, X, Y, torch_optimizer, epochs=4, batch_size=batch_size)
    net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=4, batch_size=batch_size,
            shuffle=False)
    assert_all_close(net.weights + net.biases, want)


@pytest.mark.parametrize("name", SETTINGS)
def test_float32_fit_matches_torch(rng, name):
    net, X, Y = problem(rng, np.float32)
    optimizer, torch_optimizer = make(name, len(SETTINGS[name]) - 1)
    want = torch_fit(net, X, Y, torch_optimizer, epochs=3, batch_size=8)
    net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=3, batch_size=8, shuffle=False)
    assert net.weights[0].dtype == np.float32
    assert_all_close(net.weights + net.biases, want, np.float32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,index", CASES, ids=IDS)
def test_two_threads_give_the_same_bits_as_one(rng, monkeypatch, name, index, dtype):
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)  # small nets take the threads
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    threads = []
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: threads.append(
        trainer.n_threads))
    net, X, Y = problem(rng, dtype, sizes=(7, 16, 11, 3), rows=48)
    fits = []
    for n_threads in (1, 2):
        copy = net.copy()
        with products_independent_of_splits():
            copy.fit(X, Y, loss="mse", optimizer=make(name, index)[0], epochs=3, batch_size=16,
                     shuffle=False, n_threads=n_threads)
        fits.append(copy.params)
    assert threads == [1, 2]
    np.testing.assert_array_equal(fits[0], fits[1])
    if dtype == np.float64:
        want = torch_fit(net, X, Y, make(name, index)[1], epochs=3, batch_size=16)
        assert_all_close(copy.weights + copy.biases, want)


def fitted_copy(net, X, Y, name, epochs, batch_size):
    """A copy of ``net`` fitted in order with a fresh optimiser of name's last setting."""
    fitted = net.copy()
    fitted.fit(X, Y, loss="mse", optimizer=make(name, len(SETTINGS[name]) - 1)[0],
               epochs=epochs, batch_size=batch_size, shuffle=False)
    return fitted


@pytest.mark.parametrize("name", SETTINGS)
def test_csr_x_and_chunks_match_torch(rng, name):
    net, X, Y = problem(rng)
    optimizer, torch_optimizer = make(name, len(SETTINGS[name]) - 1)
    want = torch_fit(net, X, Y, torch_optimizer, epochs=3, batch_size=8)
    dense = fitted_copy(net, X, Y, name, epochs=3, batch_size=8)
    sparse = net.copy()
    sparse.fit(scipy.sparse.csr_matrix(X), Y, loss="mse", optimizer=optimizer, epochs=3,
               batch_size=8, shuffle=False)
    assert_all_close(sparse.weights + sparse.biases, want)
    # chunks of whole batches, in order, train as the array
    chunks = [(X[i:i + 8], Y[i:i + 8]) for i in range(0, 24, 8)]
    chunked = net.copy()
    chunked.fit(chunks, None, loss="mse", optimizer=make(name, len(SETTINGS[name]) - 1)[0],
                epochs=3, batch_size=8, shuffle=False)
    np.testing.assert_array_equal(chunked.params, dense.params)
    assert_all_close(chunked.weights + chunked.biases, want)


@pytest.mark.parametrize("name", SETTINGS)
def test_a_second_fit_continues_the_first(rng, name):
    """The state (step count, accumulators, step sizes) persists: 2 + 2
    epochs are 4, and Adagrad's and Rprop's first-step start is taken once."""
    net, X, Y = problem(rng)
    optimizer, torch_optimizer = make(name, len(SETTINGS[name]) - 1)
    want = torch_fit(net, X, Y, torch_optimizer, epochs=4, batch_size=12)
    at_once = fitted_copy(net, X, Y, name, epochs=4, batch_size=12)
    for _ in range(2):
        net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=2, batch_size=12, shuffle=False)
    np.testing.assert_array_equal(net.params, at_once.params)
    assert_all_close(net.weights + net.biases, want)
    optimizer.reset()  # forgets it: a new start
    again = at_once.copy()
    again.fit(X, Y, loss="mse", optimizer=optimizer, epochs=1, batch_size=12, shuffle=False)
    fresh = at_once.copy()
    fresh.fit(X, Y, loss="mse", optimizer=make(name, len(SETTINGS[name]) - 1)[0], epochs=1,
              batch_size=12, shuffle=False)
    np.testing.assert_array_equal(again.params, fresh.params)


@pytest.mark.parametrize("name", SETTINGS)
def test_fit_l2_is_torch_coupled_weight_decay_on_the_weights(rng, name):
    """fit(l2) adds (l2/m)·W to a batch's gradient of the weights: torch's
    weight_decay = l2/m in a group of the weights, none on the biases (Rprop,
    which has no weight_decay in torch, takes the same L2 term in its loss)."""
    net, X, Y = problem(rng)
    l2, batch_size = 0.6, 8
    optimizer, torch_optimizer = make(name, 0)
    if name == "rprop":
        want = torch_fit(net, X, Y, torch_optimizer, epochs=3, batch_size=batch_size,
                         penalty=l2)
    else:
        want = torch_fit(net, X, Y, torch_optimizer, epochs=3, batch_size=batch_size,
                         weight_decay=l2 / batch_size)
    net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=3, batch_size=batch_size,
            shuffle=False, l2=l2)
    assert_all_close(net.weights + net.biases, want)
