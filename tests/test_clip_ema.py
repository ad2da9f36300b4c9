"""fit's step rules: ``clip_norm`` (the gradient's global L2 norm clipped
before every optimiser step) and ``ema`` (a moving average of the weights
after every step, which the network then holds), against PyTorch's
``clip_grad_norm_`` and ``AveragedModel`` step for step, on every path:
float32 and float64, one and two threads (bit for bit), per-sample, sparse X,
chunks, epoch blocks and divergence rollback."""
import numpy as np
import pytest
import scipy.sparse as sp
from helpers import assert_close, random_network, spy_on_trainer_runs

import fastbp
from fastbp import _kernels, _runtime, _training
from fastbp._kernels import Trainer, optimizer_kinds
from fastbp.losses import KERNEL_LOSSES

torch = pytest.importorskip("torch")
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn  # noqa: E402

TORCH_ACTS = {"tanh": torch.tanh, "identity": lambda a: a,
              "softmax": lambda a: torch.softmax(a, dim=1)}
# fastbp's optimiser, and torch's on the same hyper-parameters
OPTIMIZERS = {
    "sgd": (lambda: fastbp.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: fastbp.SGD(lr=0.1, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov": (lambda: fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adam": (lambda: fastbp.Adam(lr=0.01, flavor="torch"),
             lambda p: torch.optim.Adam(p, lr=0.01)),
}
SMALL, LARGE = 0.05, 1e3  # clip norms below and above every gradient norm here
RTOL = {np.float64: 1e-12, np.float32: 1e-5}


class TorchMLP(torch.nn.Module):
    """A fastbp network's layers as torch parameters: z = f(z_prev @ W + b)."""

    def __init__(self, net):
        super().__init__()
        dtype = torch.float64 if net.dtype == np.float64 else torch.float32
        self.W = torch.nn.ParameterList([torch.nn.Parameter(torch.tensor(W, dtype=dtype))
                                         for W in net.weights])
        self.b = torch.nn.ParameterList([torch.nn.Parameter(torch.tensor(b, dtype=dtype))
                                         for b in net.biases])
        self.acts = list(net.activations) + [net.output_activation]

    def objective(self, X, Y, loss="mse", l2=0.0):
        """fastbp's J of the rows: the mean loss plus l2/(2m) sum ||W||^2."""
        z = torch.tensor(X)
        T = torch.tensor(Y)
        for W, b, act in zip(self.W, self.b, self.acts):
            a = z @ W + b
            z = TORCH_ACTS[act](a)
        m = X.shape[0]
        if loss == "mse":
            J = 0.5 * ((z - T) ** 2).sum() / m
        else:
            J = -(T * torch.log_softmax(a, dim=1)).sum() / m
        return J + l2 / (2 * m) * sum((W ** 2).sum() for W in self.W)

    def flat(self):
        """The parameters in fastbp's order, [W_0, b_0, W_1, b_1, ...]."""
        return np.concatenate([p.detach().numpy().ravel() for pair in zip(self.W, self.b)
                               for p in pair])


def torch_fit(net, X, Y, make_opt, epochs, batch_size, clip_norm=None, ema=None, loss="mse",
              l2=0.0, X_val=None, Y_val=None):
    """Torch's training loop over the batches fit takes (no shuffle): per
    epoch the raw running loss, the average's weights and validation loss;
    and every gradient norm clip_grad_norm_ saw."""
    model = TorchMLP(net)
    opt = make_opt(model.parameters())
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema)) if ema else None
    record = {"loss": [], "weights": [], "val_loss": [], "norms": []}
    n = X.shape[0]
    for _ in range(epochs):
        total = 0.0
        for start in range(0, n, batch_size):
            Xb, Yb = X[start:start + batch_size], Y[start:start + batch_size]
            opt.zero_grad()
            J = model.objective(Xb, Yb, loss, l2)
            J.backward()
            total += J.item() * Xb.shape[0]
            if clip_norm is not None:
                record["norms"].append(
                    float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)))
            opt.step()
            if average is not None:
                average.update_parameters(model)
        held = average.module if average is not None else model
        record["loss"].append(total / n)
        record["weights"].append(held.flat())
        if X_val is not None:
            with torch.no_grad():
                record["val_loss"].append(held.objective(X_val, Y_val, loss).item())
    return record


def data(rng, rows, n_in, n_out, dtype=np.float64):
    return (rng.normal(size=(rows, n_in)).astype(dtype),
            rng.normal(size=(rows, n_out)).astype(dtype))


def assert_clipping(norms, clip_norm):
    """Every step was clipped (a small norm) or none was (a large one)."""
    assert norms and (min(norms) > clip_norm if clip_norm == SMALL else max(norms) < clip_norm)


# -- clip_norm against torch.nn.utils.clip_grad_norm_ -------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("clip_norm", [SMALL, LARGE])
def test_clip_norm_matches_torch_step_for_step(rng, dtype, name, clip_norm):
    # one fit a batch, the optimiser's state carried from fit to fit
    net = random_network(rng, [5, 7, 6, 3], "tanh", "identity", dtype)
    X, Y = data(rng, 48, 5, 3, dtype)
    make_ours, make_theirs = OPTIMIZERS[name]
    ours = make_ours()
    model = TorchMLP(net)
    theirs = make_theirs(model.parameters())
    norms = []
    for start in range(0, 48, 8):
        Xb, Yb = X[start:start + 8], Y[start:start + 8]
        net.fit(Xb, Yb, optimizer=ours, batch_size=8, shuffle=False, clip_norm=clip_norm)
        theirs.zero_grad()
        model.objective(Xb, Yb).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)))
        theirs.step()
        assert_close(net.params, model.flat(), dtype, RTOL[dtype])
    assert_clipping(norms, clip_norm)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("clip_norm", [SMALL, LARGE])
def test_a_fit_of_many_clipped_steps_matches_torch(rng, dtype, name, clip_norm):
    # many batches in one kernel call, a short last batch, the L2 term in the
    # clipped gradient, cross-entropy on softmax
    net = random_network(rng, [6, 8, 4], "tanh", "softmax", dtype)
    X = rng.normal(size=(44, 6)).astype(dtype)
    Y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 44)]
    make_ours, make_theirs = OPTIMIZERS[name]
    expected = torch_fit(net, X, Y, make_theirs, 3, 8, clip_norm, loss="cross_entropy", l2=0.3)
    history = net.fit(X, Y, loss="cross_entropy", l2=0.3, optimizer=make_ours(), epochs=3,
                      batch_size=8, shuffle=False, clip_norm=clip_norm)
    assert_clipping(expected["norms"], clip_norm)
    assert_close(net.params, expected["weights"][-1], dtype, RTOL[dtype])
    assert_close(history["loss"], expected["loss"], dtype, RTOL[dtype])


@pytest.mark.parametrize("name", sorted(optimizer_kinds()))
def test_every_registered_optimiser_steps_on_the_clipped_gradient(rng, name):
    # the rule sits in the loops, not in the optimisers: any optimiser the
    # kernels know (those registered later too) takes the clipped gradient
    net = random_network(rng, [4, 6, 3], "tanh", "identity")
    X, Y = data(rng, 10, 4, 3)
    _, grad = net.objective(X, Y, l2=0.2)
    norm = np.sqrt(np.sum(grad ** 2))
    clip_norm = 0.5 * norm
    buffers = {key: np.zeros(net.n_params) for key in optimizer_kinds()[name].buffer_names}
    # optimizer_update sees a flat vector, not W and b apart: decoupled decay
    # (W only, in the loops) is off here; it is tested on its own elsewhere
    hyper = {"weight_decay": 0.0} if "weight_decay" in optimizer_kinds()[name].hyper_names else {}
    expected = net.params.copy()
    _kernels.optimizer_update(name, expected, grad * (clip_norm / (norm + 1e-6)), 0.05,
                              hyper=hyper, buffers={k: v.copy() for k, v in buffers.items()})
    trainer = Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], 0.2, 10)
    params = net.params.copy()
    trainer.set_params(params)
    trainer.set_data(X, Y)
    trainer.set_optimizer(name, 0.05, hyper=hyper, buffers=buffers)
    trainer.set_clip_norm(clip_norm)
    assert trainer.run(0, 10)[0] == 0
    assert_close(params, expected)
    assert not np.allclose(params, net.params)


def test_per_sample_sgd_with_clip_norm_matches_torch(rng):
    # plain SGD on one row a batch leaves its fused per-sample path for the
    # minibatch loop with batches of one row, which clips
    net = random_network(rng, [3, 5, 2], "tanh", "identity")
    X, Y = data(rng, 12, 3, 2)
    expected = torch_fit(net, X, Y, OPTIMIZERS["sgd"][1], 2, 1, SMALL)
    net.fit(X, Y, optimizer=OPTIMIZERS["sgd"][0](), epochs=2, batch_size=1, shuffle=False,
            clip_norm=SMALL)
    assert_clipping(expected["norms"], SMALL)
    assert_close(net.params, expected["weights"][-1])


def test_a_large_clip_norm_changes_nothing_but_the_path(rng):
    # never active, it takes every step as the default fit does, to rounding
    # (per-sample: the fused path against batches of one row)
    X, Y = data(rng, 30, 4, 2)
    for batch_size, make in ((1, OPTIMIZERS["sgd"][0]), (8, OPTIMIZERS["adam"][0])):
        fits = []
        for clip_norm in (None, LARGE):
            net = fastbp.Network([4, 6, 2], activation="tanh", output_activation="identity",
                                 seed=3)
            net.fit(X, Y, optimizer=make(), epochs=2, batch_size=batch_size, seed=1,
                    clip_norm=clip_norm)
            fits.append(net.params)
        assert_close(fits[1], fits[0])


# -- ema against torch.optim.swa_utils.AveragedModel ---------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("decay,clip_norm", [(0.9, None), (0.3, SMALL)])
def test_ema_matches_torch_averaged_model(rng, dtype, name, decay, clip_norm):
    # decay 0.3: lerp's weight 0.7 takes its other form. Per epoch the
    # network holds the average (callbacks see it, val_loss is its), while the
    # raw weights train on: "loss" is theirs, and torch's raw model never
    # restarts from the average
    net = random_network(rng, [5, 7, 3], "tanh", "identity", dtype)
    X, Y = data(rng, 40, 5, 3, dtype)
    X_val, Y_val = data(rng, 9, 5, 3, dtype)
    make_ours, make_theirs = OPTIMIZERS[name]
    expected = torch_fit(net, X, Y, make_theirs, 4, 8, clip_norm, decay, X_val=X_val,
                         Y_val=Y_val)
    seen = []
    history = net.fit(X, Y, optimizer=make_ours(), epochs=4, batch_size=8, shuffle=False,
                      clip_norm=clip_norm, ema=decay, validation_data=(X_val, Y_val),
                      callbacks=[lambda epoch, history, network: seen.append(network.params)])
    rtol = RTOL[dtype]
    for got, want in zip(seen, expected["weights"]):
        assert_close(got, want, dtype, rtol)
    assert_close(net.params, expected["weights"][-1], dtype, rtol)
    assert_close(history["val_loss"], expected["val_loss"], dtype, rtol)
    assert_close(history["loss"], expected["loss"], dtype, rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ema_at_batch_size_one_matches_torch(rng, dtype):
    net = random_network(rng, [3, 5, 2], "tanh", "identity", dtype)
    X, Y = data(rng, 12, 3, 2, dtype)
    expected = torch_fit(net, X, Y, OPTIMIZERS["sgd"][1], 3, 1, ema=0.8)
    net.fit(X, Y, optimizer=OPTIMIZERS["sgd"][0](), epochs=3, batch_size=1, shuffle=False,
            ema=0.8)
    assert_close(net.params, expected["weights"][-1], dtype, RTOL[dtype])


def test_early_stopping_watches_and_restores_the_average(rng):
    net = random_network(rng, [5, 7, 3], "tanh", "identity")
    X, Y = data(rng, 40, 5, 3)
    X_val, Y_val = data(rng, 9, 5, 3)
    expected = torch_fit(net, X, Y, OPTIMIZERS["momentum"][1], 12, 8, ema=0.7, X_val=X_val,
                         Y_val=Y_val)
    stopping = fastbp.EarlyStopping(patience=3)
    history = net.fit(X, Y, optimizer=OPTIMIZERS["momentum"][0](), epochs=12, batch_size=8,
                      shuffle=False, ema=0.7, validation_data=(X_val, Y_val),
                      early_stopping=stopping)
    epochs = len(history["val_loss"])
    assert_close(history["val_loss"], expected["val_loss"][:epochs])
    best = int(np.argmin(history["val_loss"]))
    assert stopping.best_epoch == best and best < epochs - 1  # the last epoch was not the best
    assert_close(net.params, expected["weights"][best])


def test_each_fit_starts_a_new_average_from_the_networks_weights(rng):
    net = random_network(rng, [4, 5, 2], "tanh", "identity")
    X, Y = data(rng, 16, 4, 2)
    optimizer = fastbp.SGD(lr=0.1, momentum=0.5)
    net.fit(X, Y, optimizer=optimizer, epochs=2, batch_size=4, shuffle=False, ema=0.9)
    averaged = net.copy()
    # torch: the raw weights of the second fit start from the first's average,
    # the optimiser's velocity carries on, and the second average starts anew
    model = TorchMLP(averaged)
    theirs = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    velocity = optimizer.velocity(net).copy()
    net.fit(X, Y, optimizer=optimizer, epochs=1, batch_size=4, shuffle=False, ema=0.9)
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    for group in theirs.param_groups:  # torch's buffer is ours over -lr
        for p, v in zip(group["params"], split_like(model, -velocity / 0.1)):
            theirs.state[p]["momentum_buffer"] = torch.tensor(v)
    for start in range(0, 16, 4):
        theirs.zero_grad()
        model.objective(X[start:start + 4], Y[start:start + 4]).backward()
        theirs.step()
        average.update_parameters(model)
    assert_close(net.params, average.module.flat(), rtol=1e-11)


def split_like(model, flat):
    """A flat vector in fastbp's order as arrays shaped as model.parameters()."""
    pieces, offset = {}, 0
    for W, b in zip(model.W, model.b):
        for p in (W, b):
            pieces[id(p)] = flat[offset:offset + p.numel()].reshape(p.shape)
            offset += p.numel()
    return [pieces[id(p)] for p in model.parameters()]


# -- every path: threads, sparse X, chunks, epoch blocks, divergence -----------

@pytest.fixture
def own_threads(monkeypatch):
    """fastbp's own threads for any batch, and plain-loop products (whose
    sums do not depend on how the threads split them); the thread counts of
    the trainers fit builds."""
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    old = _kernels.set_blas_min_flops(2 ** 62)
    _kernels.set_tiled_gemm(False)
    seen = []
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: seen.append(
        trainer.n_threads))
    yield seen
    _kernels.set_blas_min_flops(old)
    _kernels.set_tiled_gemm(True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes,batch_size", [([20, 64, 32, 4], 50),     # rows split
                                              ([30, 256, 256, 5], 32)])  # columns split
@pytest.mark.parametrize("make", [lambda: fastbp.SGD(lr=0.05),
                                  lambda: fastbp.SGD(lr=0.05, momentum=0.9),
                                  lambda: fastbp.Adam(lr=0.01)])
def test_one_and_two_threads_give_the_same_bits(own_threads, dtype, sizes, batch_size, make):
    # each thread sums the squares of its fixed parts of the gradient, and all
    # add the parts in one order; the average is element by element
    rng = np.random.default_rng(3)
    X, Y = data(rng, 160, sizes[0], sizes[-1], dtype)
    results = {}
    for n_threads in (1, 2):
        for rules in ({}, {"clip_norm": SMALL, "ema": 0.9}):
            net = fastbp.Network(sizes, activation="tanh", output_activation="identity",
                                 dtype=dtype, seed=4)
            net.fit(X, Y, epochs=2, batch_size=batch_size, seed=2, n_threads=n_threads,
                    optimizer=make(), **rules)
            results[n_threads, bool(rules)] = net.params
    assert set(own_threads) == {1, 2}
    # the default fit keeps its bits on two threads here, so the rules must too
    # (the losses sum each thread's rows apart: equal to rounding only)
    np.testing.assert_array_equal(results[2, False], results[1, False])
    np.testing.assert_array_equal(results[2, True], results[1, True])
    assert not np.allclose(results[1, True], results[1, False])


@pytest.mark.parametrize("make", [OPTIMIZERS["momentum"][0], OPTIMIZERS["adam"][0]])
def test_sparse_x_trains_as_the_dense_x(rng, make):
    # Adam's sparse W_0 step (fused with its L2 term, on the rows a batch
    # reaches) gives way to the whole gradient, which clipping needs
    X, Y = data(rng, 40, 12, 3)
    X[rng.uniform(size=X.shape) < 0.7] = 0
    fits = []
    for rows in (X, sp.csr_matrix(X)):
        net = fastbp.Network([12, 8, 3], activation="tanh", output_activation="identity",
                             seed=5)
        net.fit(rows, Y, optimizer=make(), l2=0.1, epochs=3, batch_size=8, seed=0,
                clip_norm=SMALL, ema=0.8)
        fits.append(net.params)
    assert_close(fits[1], fits[0])


def test_chunks_carry_the_raw_weights_and_the_average_over(rng):
    # chunks of whole batches: the same batches as the arrays, each chunk
    # trained by a loop of its own, the raw weights and the average going on
    X, Y = data(rng, 48, 4, 2)
    chunks = [(X[i:i + 16], Y[i:i + 16]) for i in range(0, 48, 16)]
    fits = []
    for source, targets in ((X, Y), (chunks, None)):
        net = fastbp.Network([4, 6, 2], activation="tanh", output_activation="identity",
                             seed=2)
        net.fit(source, targets, optimizer=fastbp.Adam(lr=0.01), epochs=3, batch_size=8,
                shuffle=False, clip_norm=SMALL, ema=0.8)
        fits.append(net.params)
    np.testing.assert_array_equal(fits[1], fits[0])


def never_stop(epoch, history, network):
    return False


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_epoch_blocks_train_as_one_call_an_epoch(dtype):
    # a quiet fit trains many small epochs in one kernel call, the average
    # running through them; a callback forces one call an epoch
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype)
    Y = np.array([0, 1, 1, 0], dtype)
    fits = []
    for callbacks in ((), (never_stop,)):
        net = fastbp.Network([2, 3, 1], activation="tanh", dtype=dtype, seed=4)
        net.fit(X, Y, optimizer=fastbp.Adam(lr=0.05), epochs=200, batch_size=3, seed=5,
                callbacks=callbacks, clip_norm=0.5, ema=0.95)
        fits.append(net.params)
    np.testing.assert_array_equal(fits[1], fits[0])


def test_divergence_restores_the_average_and_the_raw_weights(monkeypatch):
    # full batches with too large a rate: the divergence restores the average
    # of the start of an epoch (the weights the network held then), the same
    # with epoch blocks (replayed) as epoch by epoch
    X = np.random.default_rng(0).normal(size=(16, 2))
    Y = np.random.default_rng(1).normal(size=(16, 1))
    monkeypatch.setattr(_training, "FIT_CALL_FLOPS", 6 * 12 * 16 * 3 / 4)  # blocks of 3
    outcomes = []
    for blocks in (True, False):
        held = [fastbp.Network([2, 4, 1], activation="identity",
                               output_activation="identity", seed=0)]
        net = held[0].copy()
        callbacks = () if blocks else (lambda e, h, network: held.append(network.copy()),)
        with pytest.raises(fastbp.TrainingDiverged) as info:
            net.fit(X, Y, optimizer=fastbp.SGD(lr=1.0, momentum=0.5), epochs=400,
                    batch_size=16, shuffle=False, ema=0.5, callbacks=callbacks)
        outcomes.append((str(info.value), net.params, held))
    assert outcomes[0][0] == outcomes[1][0]
    np.testing.assert_array_equal(outcomes[0][1], outcomes[1][1])
    restored = int(str(outcomes[1][0]).split("start of epoch ")[1].split()[0])
    assert restored > 1 and np.isfinite(outcomes[1][1]).all()
    # the start of epoch r is the end of epoch r - 1: held[r - 1]
    np.testing.assert_array_equal(outcomes[1][1], outcomes[1][2][restored - 1].params)


# -- checks ---------------------------------------------------------------------

@pytest.mark.parametrize("value,error", [(0, ValueError), (-1.0, ValueError),
                                         (np.inf, ValueError), (np.nan, ValueError),
                                         (True, TypeError), ("1", TypeError)])
def test_clip_norm_must_be_a_positive_finite_number(value, error):
    net = fastbp.Network([2, 1])
    with pytest.raises(error, match="clip_norm"):
        net.fit(np.zeros((2, 2)), np.zeros(2), clip_norm=value)


@pytest.mark.parametrize("value,error", [(0, ValueError), (1, ValueError), (1.5, ValueError),
                                         (-0.5, ValueError), (np.nan, ValueError),
                                         (True, TypeError), ("0.9", TypeError)])
def test_ema_must_be_a_decay_in_0_1(value, error):
    net = fastbp.Network([2, 1])
    before = net.params.copy()
    with pytest.raises(error, match="ema"):
        net.fit(np.zeros((2, 2)), np.zeros(2), ema=value)
    np.testing.assert_array_equal(net.params, before)


def test_the_trainer_checks_its_rules_and_counts_the_averaged_steps(rng):
    net = random_network(rng, [3, 4, 2], "tanh", "identity")
    X, Y = data(rng, 10, 3, 2)
    trainer = Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], 0.0, 4)
    trainer.set_params(net.params.copy())
    trainer.set_data(X, Y)
    trainer.set_optimizer("sgd", 0.1)
    for bad in (-1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="clip_norm"):
            trainer.set_clip_norm(bad)
    with pytest.raises(ValueError, match="ema has 3 elements"):
        trainer.set_ema(np.zeros(3), 0.9)
    with pytest.raises(TypeError, match="ema is float32"):
        trainer.set_ema(np.zeros(net.n_params, np.float32), 0.9)
    ema = np.zeros(net.n_params)
    for decay in (0.0, 1.0, np.nan):
        with pytest.raises(ValueError, match="decay"):
            trainer.set_ema(ema, decay)
    trainer.set_ema(ema, 0.9)
    trainer.run(0, 10)  # batches of 4, 4 and 2 rows
    assert trainer.ema_steps == 3
    trainer.set_ema(None)
    trainer.run(0, 10)
    assert trainer.ema_steps == 0
