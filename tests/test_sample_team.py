"""Per-sample epochs of a wide network on a team of threads
(csrc/fastbp_sample_team_impl.h): each row's layers split over the threads,
the same weights and losses, bit for bit, as the single-thread per-sample
kernels (fastbp_sample_impl.h), on any thread count."""
import numpy as np
import pytest

import fastbp
from fastbp import _kernels
from fastbp._runtime import default_threads, sample_team_threads
from fastbp.losses import LOSSES
from fastbp.network import ACTIVATIONS

pytestmark = pytest.mark.skipif(not _kernels.HAVE_THREADS, reason="no threads of fastbp's own")

# widths around the forward's blocks (32 outputs, 64 floats or 32 doubles in
# momentum's order), not divisible by 2 or 3, a one-unit layer, a layer
# narrower than the threads, and a softmax output wider than a block
NETS = [
    ((13, 37, 61, 5), "tanh", "softmax", "cross_entropy"),
    ((70, 129, 1), "relu", "identity", "mse"),
    ((9, 2, 100, 67), "gelu", "softmax", "cross_entropy"),
    ((33, 97, 31, 3), "sigmoid", "sigmoid", "bce"),
    ((40, 200, 65), "softplus", "identity", "mse"),
]
OPTIMIZERS = {
    "sgd": lambda: fastbp.SGD(lr=0.005),
    "momentum": lambda: fastbp.SGD(lr=0.005, momentum=0.7),
    "nesterov": lambda: fastbp.SGD(lr=0.005, momentum=0.9, nesterov=True),
}


@pytest.fixture
def team_on_small_nets():
    """The team from one weight on, so these small networks take it."""
    old = _kernels.set_sample_team(1)
    yield
    _kernels.set_sample_team(old)


def _problem(sizes, rows, loss, seed=0):
    """Rows of X and targets the loss takes: one-hot classes, 0/1 labels or values."""
    rng = np.random.default_rng(seed)
    X, U = rng.normal(size=(rows, sizes[0])), rng.uniform(size=(rows, sizes[-1]))
    targets = {"cross_entropy": lambda: np.eye(sizes[-1])[U.argmax(axis=1)],
               "bce": lambda: (U < 0.5).astype(float)}
    return X, targets.get(loss, lambda: U)()


def _fit(net_spec, kind, dtype, n_threads, l2=0.0, epochs=2, **kw):
    sizes, act, out, loss = net_spec
    X, Y = _problem(sizes, 30, loss)
    net = fastbp.Network(list(sizes), activation=act, output_activation=out, dtype=dtype,
                         seed=3)
    history = net.fit(X, Y, loss=loss, optimizer=OPTIMIZERS[kind](), epochs=epochs,
                      batch_size=1, seed=4, l2=l2, n_threads=n_threads, **kw)
    return net, history


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("net_spec", NETS, ids=lambda spec: "-".join(map(str, spec[0])))
def test_the_team_gives_one_threads_bits(team_on_small_nets, dtype, kind, net_spec):
    one, one_history = _fit(net_spec, kind, dtype, 1)
    runs = _kernels.sample_team_runs()
    for n_threads in (2, 3):
        team, history = _fit(net_spec, kind, dtype, n_threads)
        np.testing.assert_array_equal(team._params, one._params)
        assert history["loss"] == one_history["loss"]
    # fit's full path (a stopping rule: Python between epochs) as its lean one
    full, full_history = _fit(net_spec, kind, dtype, 2, early_stopping=fastbp.EarlyStopping(
        patience=100, restore_best=False))
    np.testing.assert_array_equal(full._params, one._params)
    assert full_history["loss"] == one_history["loss"]
    # the three fits' epochs ran on the team (each epoch is one kernel call,
    # or all of a fit's in one block call: at least one team run a fit)
    assert _kernels.sample_team_runs() >= runs + 3
    assert not np.array_equal(one._params, fastbp.Network(
        list(net_spec[0]), activation=net_spec[1], output_activation=net_spec[2], dtype=dtype,
        seed=3)._params)  # and they trained


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("net_spec", NETS[:3], ids=lambda spec: "-".join(map(str, spec[0])))
def test_plain_sgd_with_l2_on_the_team(team_on_small_nets, dtype, net_spec):
    one, one_history = _fit(net_spec, "sgd", dtype, 1, l2=0.05)
    runs = _kernels.sample_team_runs()
    for n_threads in (2, 3):
        team, history = _fit(net_spec, "sgd", dtype, n_threads, l2=0.05)
        np.testing.assert_array_equal(team._params, one._params)
        # the L2 term's row sums added in one thread's order
        assert history["loss"] == one_history["loss"]
    assert _kernels.sample_team_runs() > runs


@pytest.mark.parametrize("kind", ["momentum", "nesterov"])
def test_momentum_with_l2_and_dropout_stay_on_one_thread(team_on_small_nets, kind):
    # momentum's L2 gradient sums all of W in lanes, and dropout draws
    # masks per row: both keep the single-thread kernel (the same bits)
    runs = _kernels.sample_team_runs()
    one, one_history = _fit(NETS[0], kind, "float64", 1, l2=0.05)
    two, history = _fit(NETS[0], kind, "float64", 2, l2=0.05)
    np.testing.assert_array_equal(two._params, one._params)
    assert history["loss"] == one_history["loss"]
    sizes, act, out, loss = NETS[0]
    dropped = []
    for n_threads in (1, 2):
        net = fastbp.Network(list(sizes), activation=act, output_activation=out, seed=3,
                             dropout=0.3)
        X, Y = _problem(sizes, 30, loss)
        net.fit(X, Y, loss=loss, optimizer=OPTIMIZERS["sgd"](), epochs=2, batch_size=1, seed=4,
                n_threads=n_threads)
        dropped.append(net._params)
    np.testing.assert_array_equal(dropped[0], dropped[1])
    assert _kernels.sample_team_runs() == runs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_trainer_on_the_team_run_by_run(team_on_small_nets, dtype):
    # a Trainer's runs over shuffled positions in pieces: statuses, totals
    # and weights as on one thread, up to and after a row whose loss is not
    # finite (its update not applied, the run stopped there)
    sizes = np.array([11, 70, 45, 4], np.intc)
    acts = np.array([ACTIVATIONS["elu"], ACTIVATIONS["tanh"], ACTIVATIONS["identity"]],
                    np.intc)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 11)).astype(dtype)
    T = rng.normal(size=(50, 4)).astype(dtype)
    T[37, 2] = np.inf
    order = rng.permutation(50).astype(np.intp)
    start = fastbp.Network([11, 70, 45, 4], seed=1, dtype=dtype)._params
    results = []
    for n_threads in (1, 2, 3):
        trainer = _kernels.Trainer(sizes, acts, LOSSES["mse"], 0.0, 1, n_threads)
        params = start.copy()
        velocity = np.zeros_like(params)
        trainer.set_params(params)
        trainer.set_data(X, T)
        trainer.set_order(order)
        trainer.set_optimizer("sgd", 0.01, {"momentum": 0.5}, {"velocity": velocity}, 0)
        runs = [trainer.run(a, b) for a, b in ((0, 17), (17, 30), (30, 50))]
        results.append((runs, params, velocity))
    for runs, params, velocity in results[1:]:
        assert runs == results[0][0]
        np.testing.assert_array_equal(params, results[0][1])
        np.testing.assert_array_equal(velocity, results[0][2])
    statuses = [run[0] for run in results[0][0]]
    assert 1 in statuses  # the row with an infinite target stopped a run


def test_small_networks_keep_one_thread():
    # below the threshold a Trainer with threads runs its per-sample epochs
    # on the single-thread kernel, and fit gives it one thread
    threshold = _kernels.set_sample_team()
    assert threshold > 64 * 32 + 32 * 10
    runs = _kernels.sample_team_runs()
    X, Y = _problem((64, 32, 10), 20, "cross_entropy")
    net = fastbp.Network([64, 32, 10], seed=1)
    net.fit(X, Y, optimizer=fastbp.SGD(lr=0.01), epochs=1, batch_size=1, n_threads=2)
    assert _kernels.sample_team_runs() == runs
    assert sample_team_threads(64 * 32 + 32 * 10, 2) == 1
    assert sample_team_threads(threshold, 2) == 2
    assert sample_team_threads(threshold, None) == min(default_threads(), _kernels.MAX_THREADS)
    assert sample_team_threads(threshold, 1) == 1


def test_set_sample_team_checks_and_restores():
    old = _kernels.set_sample_team(123)
    try:
        assert _kernels.set_sample_team() == 123
        assert _kernels.set_sample_team(-1) == 123
        for bad in (0, -2):
            with pytest.raises(ValueError, match="min_weights"):
                _kernels.set_sample_team(bad)
        assert _kernels.set_sample_team() == 123
    finally:
        _kernels.set_sample_team(old)
