"""AdamW, NAdam and SGD's decoupled weight decay: step for step against
torch.optim (float64 to 1e-12, float32 to 1e-5), with the biases in a
parameter group of their own without decay; the same fit on 1 and 2
threads, sparse and dense X, in chunks and whole."""
import numpy as np
import pytest
import scipy.sparse
from helpers import (assert_close, products_independent_of_splits, random_network,
                     spy_on_trainer_runs)

import fastbp
from fastbp import _kernels, _runtime

torch = pytest.importorskip("torch")

ACTS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


@pytest.fixture
def torch_float64():
    """PyTorch keeps NAdam's running product in its default dtype: float64
    for a float64 oracle."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.fixture
def own_threads(monkeypatch):
    """fastbp's own threads even for these small fits, on products whose sums
    do not depend on how the threads split them."""
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    with products_independent_of_splits():
        yield


def torch_fit(net, X, Y, make_optimizer, epochs, batch_size, hidden, l2=0.0, dtype=None,
              decoupled=0.0):
    """Train a copy of ``net`` (mse on an identity output, fastbp's J with
    its L2 term) with ``make_optimizer(groups)``, the batches in order;
    the weights W and the biases b are two parameter groups, b's without
    decay. ``decoupled``: W ← (1 − lr·λ)·W by hand before each step.
    Returns the weights and biases after training."""
    dtype = dtype or torch.float64
    Ws = [torch.tensor(W, dtype=dtype, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=dtype, requires_grad=True) for b in net.biases]
    opt = make_optimizer([{"params": Ws}, {"params": bs, "weight_decay": 0.0}])
    Xt, Yt = torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)
    for _ in range(epochs):
        for start in range(0, len(X), batch_size):
            x, y = Xt[start:start + batch_size], Yt[start:start + batch_size]
            opt.zero_grad()
            z = x
            for i, (W, b) in enumerate(zip(Ws, bs)):
                z = z @ W + b
                if i < len(Ws) - 1:
                    z = ACTS[hidden](z)
            m = len(x)
            J = 0.5 * ((z - y) ** 2).sum() / m + l2 / (2 * m) * sum((W ** 2).sum() for W in Ws)
            J.backward()
            if decoupled:
                with torch.no_grad():
                    for W in Ws:
                        W.mul_(1 - opt.param_groups[0]["lr"] * decoupled)
            opt.step()
    return [W.detach().numpy() for W in Ws], [b.detach().numpy() for b in bs]


def problem(rng, hidden, dtype="float64", sizes=(5, 7, 6, 3), rows=20):
    net = random_network(rng, list(sizes), hidden, "identity", dtype=dtype)
    X = rng.normal(size=(rows, sizes[0]))
    Y = rng.normal(size=(rows, sizes[-1]))
    return net, X, Y


# name -> (fastbp's optimiser, torch's on the two groups, λ decoupled by hand)
CASES = {
    "adamw": (lambda: fastbp.AdamW(lr=0.02, beta1=0.8, beta2=0.95, epsilon=1e-3,
                                   weight_decay=0.3),
              lambda groups: torch.optim.AdamW(groups, lr=0.02, betas=(0.8, 0.95), eps=1e-3,
                                               weight_decay=0.3, foreach=False), 0.0),
    "adamw defaults": (lambda: fastbp.AdamW(lr=0.01),
                       lambda groups: torch.optim.AdamW(groups, lr=0.01, foreach=False), 0.0),
    "nadam": (lambda: fastbp.NAdam(lr=0.02, beta1=0.85, beta2=0.99, epsilon=1e-4,
                                   momentum_decay=0.05),
              lambda groups: torch.optim.NAdam(groups, lr=0.02, betas=(0.85, 0.99), eps=1e-4,
                                               momentum_decay=0.05, foreach=False), 0.0),
    "nadam defaults": (lambda: fastbp.NAdam(),
                       lambda groups: torch.optim.NAdam(groups, foreach=False), 0.0),
    "sgd decay": (lambda: fastbp.SGD(lr=0.05, weight_decay=0.4),
                  lambda groups: torch.optim.SGD(groups, lr=0.05), 0.4),
    "sgd momentum decay": (lambda: fastbp.SGD(lr=0.05, momentum=0.9, weight_decay=0.4),
                           lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9), 0.4),
    "sgd nesterov decay": (lambda: fastbp.SGD(lr=0.05, momentum=0.7, nesterov=True,
                                              weight_decay=0.2),
                           lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.7,
                                                          nesterov=True), 0.2),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("batch_size,l2", [(5, 0.0), (20, 0.5), (1, 0.0)])
def test_steps_match_torch_in_float64(rng, torch_float64, case, hidden, batch_size, l2):
    make_ours, make_torch, decoupled = CASES[case]
    net, X, Y = problem(rng, hidden)
    W_want, b_want = torch_fit(net, X, Y, make_torch, 3, batch_size, hidden, l2=l2,
                               decoupled=decoupled)
    net.fit(X, Y, optimizer=make_ours(), epochs=3, batch_size=batch_size, shuffle=False, l2=l2)
    for got, want in zip(net.weights + net.biases, W_want + b_want):
        assert_close(got, want, rtol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_steps_match_torch_in_float32(rng, case):
    make_ours, make_torch, decoupled = CASES[case]
    net, X, Y = problem(rng, "tanh", dtype="float32")
    W_want, b_want = torch_fit(net, X, Y, make_torch, 3, 5, "tanh", dtype=torch.float32,
                               decoupled=decoupled)
    net.fit(X.astype(np.float32), Y.astype(np.float32), optimizer=make_ours(), epochs=3,
            batch_size=5, shuffle=False)
    for got, want in zip(net.weights + net.biases, W_want + b_want):
        assert got.dtype == np.float32
        assert_close(got, want, rtol=1e-5)


def test_one_step_decays_the_weights_and_spares_the_biases(rng):
    # one batch: the gradient is taken before the step, so AdamW's step is
    # Adam's on b, and Adam's on (1 - lr λ) W
    net, X, Y = problem(rng, "tanh")
    adam, adamw, undecayed = net.copy(), net.copy(), net.copy()
    fit = dict(epochs=1, batch_size=len(X), shuffle=False)
    adam.fit(X, Y, optimizer=fastbp.Adam(lr=0.01, flavor="torch"), **fit)
    adamw.fit(X, Y, optimizer=fastbp.AdamW(lr=0.01, weight_decay=3.0), **fit)
    undecayed.fit(X, Y, optimizer=fastbp.AdamW(lr=0.01, weight_decay=0.0), **fit)
    np.testing.assert_array_equal(undecayed.params, adam.params)  # λ = 0: Adam's very steps
    for b_w, b_adam in zip(adamw.biases, adam.biases):
        np.testing.assert_array_equal(b_w, b_adam)
    for W_w, W_adam, W0 in zip(adamw.weights, adam.weights, net.weights):
        assert_close(W_w, W_adam - 0.01 * 3.0 * W0)


@pytest.mark.parametrize("make", [lambda: fastbp.AdamW(lr=0.01, weight_decay=0.1),
                                  lambda: fastbp.NAdam(lr=0.01),
                                  lambda: fastbp.SGD(lr=0.05, weight_decay=0.1),
                                  lambda: fastbp.SGD(lr=0.05, momentum=0.9, weight_decay=0.1)],
                         ids=["adamw", "nadam", "sgd", "sgd momentum"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_threads_train_as_one(rng, own_threads, monkeypatch, make, dtype):
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    seen = set()
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: seen.add(
        trainer.n_threads))
    X = rng.normal(size=(90, 12)).astype(dtype)
    Y = rng.normal(size=(90, 3)).astype(dtype)
    results = {}
    for n_threads in (1, 2):
        net = fastbp.Network([12, 16, 8, 3], activation="tanh", output_activation="identity",
                             dtype=dtype, seed=4)
        history = net.fit(X, Y, optimizer=make(), epochs=3, batch_size=30, seed=2, l2=0.2,
                          n_threads=n_threads)
        results[n_threads] = (net.params.copy(), history["loss"])
    assert seen == {1, 2}
    np.testing.assert_array_equal(results[2][0], results[1][0])  # the very weights
    # the threads add up J's parts in their own order
    np.testing.assert_allclose(results[2][1], results[1][1], rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: fastbp.AdamW(lr=0.01, weight_decay=0.1),
                                  lambda: fastbp.NAdam(lr=0.01),
                                  lambda: fastbp.SGD(lr=0.05, weight_decay=0.1),
                                  lambda: fastbp.SGD(lr=0.05, momentum=0.9, weight_decay=0.1)],
                         ids=["adamw", "nadam", "sgd", "sgd momentum"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_sparse_x_trains_as_dense(rng, own_threads, make, dtype, n_threads):
    # AdamW and NAdam step W_0's rows of a sparse batch in one pass with the
    # L2 term (fastbp_adam.h); the dense X takes the whole-gradient step
    X = scipy.sparse.random(60, 30, density=0.15, format="csr", random_state=3, dtype=dtype)
    Y = rng.normal(size=(60, 2)).astype(dtype)
    nets = [fastbp.Network([30, 6, 2], activation="tanh", output_activation="identity",
                           dtype=dtype, seed=5) for _ in range(2)]
    for net, data in zip(nets, (X, X.toarray())):
        net.fit(data, Y, optimizer=make(), epochs=3, batch_size=12, l2=0.3, seed=6,
                n_threads=n_threads)
    for got, want in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        assert_close(got, want, dtype=dtype)


@pytest.mark.parametrize("make", [lambda: fastbp.AdamW(lr=0.01, weight_decay=0.1),
                                  lambda: fastbp.NAdam(lr=0.01),
                                  lambda: fastbp.SGD(lr=0.05, weight_decay=0.1)],
                         ids=["adamw", "nadam", "sgd"])
def test_chunks_and_successive_fits_take_the_same_steps(rng, make):
    """NAdam's running product P_t and every step count carry over: chunks
    in order, and two fits of two epochs, take one fit's very steps."""
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
    new = lambda: fastbp.Network([5, 7, 2], activation="tanh", output_activation="identity",
                                 seed=3)
    whole, chunked, twice = new(), new(), new()
    whole.fit(X, Y, optimizer=make(), epochs=4, batch_size=10, shuffle=False)
    chunked.fit([(X[:20], Y[:20]), (X[20:], Y[20:])], None, optimizer=make(), epochs=4,
                batch_size=10, shuffle=False)
    optimizer = make()
    for _ in range(2):
        twice.fit(X, Y, optimizer=optimizer, epochs=2, batch_size=10, shuffle=False)
    np.testing.assert_array_equal(chunked.params, whole.params)
    np.testing.assert_array_equal(twice.params, whole.params)


def test_per_sample_sgd_with_decay_decays_every_row(rng, torch_float64):
    # weight_decay > 0 takes SGD off the fused per-sample path: it is not plain
    assert fastbp.SGD(lr=0.1).plain and not fastbp.SGD(lr=0.1, weight_decay=0.1).plain
    net, X, Y = problem(rng, "tanh", rows=8)
    W_want, b_want = torch_fit(net, X, Y, lambda groups: torch.optim.SGD(groups, lr=0.1), 2, 1,
                               "tanh", decoupled=0.25)
    net.fit(X, Y, optimizer=fastbp.SGD(lr=0.1, weight_decay=0.25), epochs=2, batch_size=1,
            shuffle=False)
    for got, want in zip(net.weights + net.biases, W_want + b_want):
        assert_close(got, want, rtol=1e-12)


def test_the_decay_follows_the_schedule(rng, torch_float64):
    # λ scales with the current rate, as PyTorch's AdamW with a StepLR
    net, X, Y = problem(rng, "tanh", rows=10)
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    opt = torch.optim.AdamW([{"params": Ws}, {"params": bs, "weight_decay": 0.0}], lr=0.05,
                            weight_decay=0.5, foreach=False)
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    for _ in range(3):
        opt.zero_grad()
        z = torch.tanh(torch.tanh(Xt @ Ws[0] + bs[0]) @ Ws[1] + bs[1]) @ Ws[2] + bs[2]
        (0.5 * ((z - Yt) ** 2).sum() / len(X)).backward()
        opt.step()
        schedule.step()
    net.fit(X, Y, optimizer=fastbp.AdamW(lr=0.05, weight_decay=0.5,
                                         schedule=fastbp.optim.StepDecay(1, 0.5)),
            epochs=3, batch_size=10, shuffle=False)
    for got, want in zip(net.weights + net.biases, Ws + bs):
        assert_close(got, want.detach().numpy(), rtol=1e-12)


def test_the_kernels_take_them_by_name():
    kinds = _kernels.optimizer_kinds()
    assert kinds["adamw"].hyper_names == ("beta1", "beta2", "epsilon", "torch_epsilon",
                                          "weight_decay")
    assert kinds["nadam"].hyper_names == ("beta1", "beta2", "epsilon", "momentum_decay")
    assert kinds["sgd"].hyper_defaults[kinds["sgd"].hyper_names.index("weight_decay")] == 0
    assert repr(fastbp.SGD(lr=0.1, weight_decay=0.01)) == (
        "SGD(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.01)")
    assert repr(fastbp.SGD(lr=0.1)) == "SGD(lr=0.1, momentum=0.0, nesterov=False)"
    assert repr(fastbp.NAdam()) == ("NAdam(lr=0.002, beta1=0.9, beta2=0.999, epsilon=1e-08, "
                                    "momentum_decay=0.004)")


@pytest.mark.parametrize("make,match", [
    (lambda: fastbp.AdamW(weight_decay=-0.1), "weight_decay must be >= 0"),
    (lambda: fastbp.AdamW(weight_decay=float("nan")), "weight_decay must be finite"),
    (lambda: fastbp.AdamW(beta1=1.0), "beta1 must be < 1"),
    (lambda: fastbp.AdamW(flavor="keras"), "flavor must be 'sklearn' or 'torch'"),
    (lambda: fastbp.AdamW(lr=0), "lr must be > 0"),
    (lambda: fastbp.NAdam(momentum_decay=-1), "momentum_decay must be >= 0"),
    (lambda: fastbp.NAdam(beta2=1.0), "beta2 must be < 1"),
    (lambda: fastbp.NAdam(epsilon=0), "epsilon must be > 0"),
    (lambda: fastbp.NAdam(lr=-1), "lr must be > 0"),
    (lambda: fastbp.SGD(weight_decay=-1e-3), "weight_decay must be >= 0"),
    (lambda: fastbp.SGD(weight_decay=float("inf")), "weight_decay must be finite"),
    (lambda: fastbp.SGD(weight_decay="0.1"), "weight_decay must be a real number"),
])
def test_bad_settings_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("name,hyper,match", [
    ("adamw", {"weight_decay": -1.0}, "weight_decay must be finite and >= 0"),
    ("nadam", {"momentum_decay": float("inf")}, "momentum_decay must be finite and >= 0"),
    ("sgd", {"weight_decay": float("nan")}, "weight_decay must be finite and >= 0"),
])
def test_the_kernels_check_their_hyper_parameters_too(name, hyper, match):
    params = np.zeros(8)
    buffers = {key: np.zeros(8) for key in _kernels.optimizer_kinds()[name].buffer_names}
    with pytest.raises(ValueError, match=match):
        _kernels.optimizer_update(name, params, np.ones(8), 0.1, hyper, buffers)
