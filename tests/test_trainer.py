"""The Trainer: one object owning a fit's native state, against
fastbp.reference (plus NumPy optimiser steps) and PyTorch's Adam formula."""
import numpy as np
import pytest
from helpers import as_lists, assert_close, random_network, targets

from fastbp import _kernels, reference
from fastbp._kernels import Trainer, optimizer_kinds
from fastbp.losses import KERNEL_LOSSES
from fastbp.network import ACTIVATIONS

OPTIMIZERS = {  # kind, momentum or beta1, nesterov
    "sgd": ("sgd", 0.0, False),
    "momentum": ("sgd", 0.9, False),
    "nesterov": ("sgd", 0.9, True),
    "adam": ("adam", 0.9, False),
}
BETA2, EPSILON = 0.99, 1e-3  # a large epsilon, so where it goes shows


def problem(rng, dtype="float64", rows=11, sizes=(4, 6, 3), weighted=True, shuffled=True,
            loss="mse", output="tanh"):
    """A random network, data, integer sample weights and a row order."""
    net = random_network(rng, list(sizes), "tanh", output, dtype)
    X = rng.normal(size=(rows, sizes[0])).astype(dtype)
    Y = targets(rng, loss, rows, sizes[-1], dtype)
    sw = rng.integers(1, 4, size=rows).astype(dtype) if weighted else None
    order = rng.permutation(rows).astype(np.intp) if shuffled else None
    return net, X, Y, sw, order


def trainer_for(net, X, Y, sw, order, batch, optimizer, lr=0.05, n_threads=1, l2=0.0,
                loss="mse", torch_epsilon=False, params=None):
    """A Trainer on a copy of net's parameters (or ``params``), its buffers."""
    kind, mu, nesterov = OPTIMIZERS[optimizer]
    params = net._params.copy() if params is None else params
    t = Trainer(net._sizes, net._acts, KERNEL_LOSSES[loss], l2, batch, n_threads)
    t.set_params(params)
    t.set_data(X, Y, sw)
    t.set_order(order)
    state = (np.zeros_like(params), np.zeros_like(params))
    if kind == "sgd":
        t.set_optimizer("sgd", lr, {"momentum": mu, "nesterov": nesterov}, {"velocity": state[0]})
    else:
        t.set_optimizer("adam", lr, {"beta1": mu, "beta2": BETA2, "epsilon": EPSILON,
                                     "torch_epsilon": torch_epsilon},
                        {"first_moment": state[0], "second_moment": state[1]})
    return t, params, state


# ---------------------------------------------------------------------------
# Pure-Python gradients (fastbp.reference) and NumPy optimiser steps
# ---------------------------------------------------------------------------

def unflatten(theta, sizes):
    Ws, bs, offset = [], [], 0
    for n_in, n_out in zip(sizes, sizes[1:]):
        Ws.append(theta[offset:offset + n_in * n_out].reshape(n_in, n_out).tolist())
        offset += n_in * n_out
        bs.append(theta[offset:offset + n_out].tolist())
        offset += n_out
    return Ws, bs


def reference_gradient(theta, sizes, acts, X, Y, rows, sw, l2):
    """dJ/dtheta over the batch ``rows``; integer weights repeat rows."""
    if sw is not None:
        rows = np.repeat(rows, sw[rows].astype(int))
    Ws, bs = unflatten(theta, sizes)
    dW, db = reference.gradients(Ws, bs, acts, X[rows].tolist(), Y[rows].tolist(), l2=l2)
    return np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in zip(dW, db)])


def reference_terms(theta, sizes, acts, X, Y, rows, sw, l2):
    """J's (data term, L2 term) over the batch ``rows``; integer weights repeat rows."""
    if sw is not None:
        rows = np.repeat(rows, sw[rows].astype(int))
    Ws, bs = unflatten(theta, sizes)
    data = reference.objective(Ws, bs, acts, X[rows].tolist(), Y[rows].tolist())
    return data, reference.objective(Ws, bs, acts, X[rows].tolist(), Y[rows].tolist(),
                                     l2=l2) - data


def reference_training(net, X, Y, sw, order, batch, optimizer, lr=0.05, l2=0.0,
                       torch_epsilon=False, totals=None):
    """Minibatch training with reference gradients and the textbook steps.

    With a list ``totals``, adds each batch's (data term, L2 term) of J
    before its step, times its rows, as [data_sum, penalty_sum]."""
    kind, mu, nesterov = OPTIMIZERS[optimizer]
    acts = as_lists(net)[2]
    theta = net._params.astype(np.float64)
    positions = order if order is not None else np.arange(X.shape[0])
    v = np.zeros_like(theta)
    m = np.zeros_like(theta)
    for t, start in enumerate(range(0, len(positions), batch), start=1):
        g = reference_gradient(theta, net.sizes, acts, X, Y, positions[start:start + batch],
                               sw, l2)
        if totals is not None:
            rows = positions[start:start + batch]
            data, penalty = reference_terms(theta, net.sizes, acts, X, Y, rows, sw, l2)
            totals[0] += data * len(rows)
            totals[1] += penalty * len(rows)
        if kind == "adam":
            m = mu * m + (1 - mu) * g
            v = BETA2 * v + (1 - BETA2) * g * g
            if torch_epsilon:
                # torch.optim.Adam (no amsgrad, no weight decay), transcribed
                step_size = lr / (1 - mu ** t)
                denom = np.sqrt(v) / np.sqrt(1 - BETA2 ** t) + EPSILON
                theta = theta - step_size * m / denom
            else:
                # scikit-learn's AdamOptimizer
                lr_t = lr * np.sqrt(1 - BETA2 ** t) / (1 - mu ** t)
                theta = theta - lr_t * m / (np.sqrt(v) + EPSILON)
        elif mu == 0:
            theta = theta - lr * g
        else:
            v = mu * v - lr * g
            theta = theta + (mu * v - lr * g if nesterov else v)
    return theta


# ---------------------------------------------------------------------------
# The same training as the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("weighted,shuffled", [(False, False), (True, False), (False, True),
                                               (True, True)])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trainer_runs_an_epoch_as_the_reference(rng, dtype, optimizer, weighted, shuffled, batch,
                                                n_threads):
    # in both dtypes: parameters, J's sums, rows and Adam's step count
    net, X, Y, sw, order = problem(rng, dtype, weighted=weighted, shuffled=shuffled)
    t, params, _ = trainer_for(net, X, Y, sw, order, batch, optimizer, n_threads=n_threads,
                               l2=0.1)
    status, data_sum, penalty_sum, rows = t.run(0, X.shape[0])
    assert status == 0 and rows == X.shape[0]
    totals = [0.0, 0.0]
    expected = reference_training(net, X.astype(np.float64), Y.astype(np.float64),
                                  sw, order, batch, optimizer, l2=0.1, totals=totals)
    assert_close(params, expected, dtype)
    assert_close([data_sum, penalty_sum], totals, dtype)
    assert t.step_count == (-(-X.shape[0] // batch) if optimizer == "adam" else 0)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_run_reports_weights_it_left_non_finite(rng, dtype, batch):
    # every batch loss finite, but a rate this large overflows the weights:
    # run checks them itself (status 2), so fit needs no isfinite pass of its own
    net, X, Y, _, _ = problem(rng, dtype, weighted=False, shuffled=False)
    Y *= 1e3  # far targets: gradients of order 1e3, which overflow at this rate
    lr = float(np.finfo(dtype).max)
    t, params, _ = trainer_for(net, X, Y, None, None, batch, "sgd", lr=lr)
    status, _, _, rows = t.run(0, batch)
    assert status == 2 and rows == batch
    assert not np.isfinite(params).all()
    calm, params, _ = trainer_for(net, X, Y, None, None, batch, "sgd")
    assert calm.run(0, batch)[0] == 0 and np.isfinite(params).all()


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("batch", [1, 4, 11])
@pytest.mark.parametrize("weighted,shuffled", [(False, False), (True, True)])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_trainer_equals_the_reference(rng, gemm_path, optimizer, weighted, shuffled, batch,
                                      n_threads):
    net, X, Y, sw, order = problem(rng, weighted=weighted, shuffled=shuffled)
    t, params, _ = trainer_for(net, X, Y, sw, order, batch, optimizer, n_threads=n_threads,
                               l2=0.2)
    status, *_ = t.run(0, X.shape[0])
    assert status == 0
    expected = reference_training(net, X, Y, sw, order, batch, optimizer, l2=0.2)
    assert_close(params, expected)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_torch_epsilon_is_pytorchs_adam(rng, weighted, n_threads):
    net, X, Y, sw, order = problem(rng, weighted=weighted, rows=12)
    t, params, (first, second) = trainer_for(net, X, Y, sw, order, 4, "adam",
                                             n_threads=n_threads, torch_epsilon=True)
    assert t.run(0, 12)[0] == 0 and t.step_count == 3
    torch_form = reference_training(net, X, Y, sw, order, 4, "adam", torch_epsilon=True)
    assert_close(params, torch_form, rtol=1e-12)
    # the two placements of epsilon differ by more than rounding here
    sklearn_form = reference_training(net, X, Y, sw, order, 4, "adam")
    assert np.max(np.abs(torch_form - sklearn_form)) > 1e-6
    assert np.all(second >= 0) and np.any(first != 0)


def test_runs_continue_the_epoch_and_the_adam_steps(rng):
    # an epoch split on batch boundaries, over calls, equals one call
    net, X, Y, sw, order = problem(rng, rows=12)
    whole, params_whole, _ = trainer_for(net, X, Y, sw, order, 4, "adam")
    whole.run(0, 12)
    parts, params_parts, _ = trainer_for(net, X, Y, sw, order, 4, "adam")
    results = [parts.run(0, 4), parts.run(4, 12)]
    assert [r[3] for r in results] == [4, 8]
    np.testing.assert_array_equal(params_parts, params_whole)
    assert parts.step_count == whole.step_count == 3


def test_lr_changes_between_runs(rng):
    net, X, Y, _, _ = problem(rng, weighted=False, shuffled=False, rows=8)
    t, params, _ = trainer_for(net, X, Y, None, None, 4, "momentum", lr=0.05)
    assert t.lr == 0.05
    t.run(0, 4)
    t.lr = 0.01
    t.run(4, 8)
    # the same two steps through the reference, with the second lr
    acts = as_lists(net)[2]
    theta, v = net._params.copy(), np.zeros_like(net._params)
    for lr, rows in ((0.05, np.arange(4)), (0.01, np.arange(4, 8))):
        v = 0.9 * v - lr * reference_gradient(theta, net.sizes, acts, X, Y, rows, None, 0.0)
        theta = theta + v
    assert_close(params, theta)


def test_set_params_swaps_the_vector_and_keeps_the_rest(rng):
    net, X, Y, sw, order = problem(rng)
    t, first_params, _ = trainer_for(net, X, Y, sw, order, 4, "sgd")
    second_params = net._params.copy()
    t.set_params(second_params)  # same dtype: data and optimiser stay
    t.run(0, X.shape[0])
    np.testing.assert_array_equal(first_params, net._params)
    fresh, expected, _ = trainer_for(net, X, Y, sw, order, 4, "sgd")
    fresh.run(0, X.shape[0])
    np.testing.assert_array_equal(second_params, expected)
    # a new dtype forgets the data and the optimiser
    t.set_params(second_params.astype(np.float32))
    with pytest.raises(RuntimeError, match="no data yet"):
        t.run(0, 1)


def test_n_threads_is_clamped(rng):
    net, *_ = problem(rng)
    top = 64 if _kernels.HAVE_THREADS else 1
    assert Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], 0.0, 4, 1000).n_threads == top
    assert Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], 0.0, 4, 0).n_threads == 1
    assert Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], 0.0, 4).n_threads == 1


def test_codes_are_the_python_tables():
    from fastbp import ACTIVATIONS, LOSSES
    assert ACTIVATIONS == {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "softmax": 4,
                           "leaky_relu": 5, "elu": 6, "gelu": 7, "silu": 8, "softplus": 9,
                           "softsign": 10, "elliot": 11}
    assert LOSSES == {"mse": 0, "bce": 1, "cross_entropy": 2, "huber": 4, "absolute_error": 5}
    assert {name: kind.name for name, kind in optimizer_kinds().items()} == {
        "sgd": "sgd", "adam": "adam", "rmsprop": "rmsprop", "adagrad": "adagrad",
        "rprop": "rprop", "adamw": "adamw", "nadam": "nadam"}
    assert (ACTIVATIONS["softmax"] == 4 and KERNEL_LOSSES["cross_entropy"] == 2
            and KERNEL_LOSSES["poisson"] == 3)


# ---------------------------------------------------------------------------
# Errors, all raised before the kernel runs
# ---------------------------------------------------------------------------

def sizes_acts(*sizes):
    return np.array(sizes, np.intc), np.full(len(sizes) - 1, ACTIVATIONS["tanh"], np.intc)


@pytest.mark.parametrize("args,error,match", [
    ((np.array([3, 2], np.int64), sizes_acts(3, 2)[1], 0, 0.0, 1), TypeError, "sizes must be"),
    ((*sizes_acts(3), 0, 0.0, 1), ValueError, "2 to 64 layer widths"),
    ((np.array([3, 0], np.intc), sizes_acts(3, 2)[1], 0, 0.0, 1), ValueError, "width must be"),
    ((sizes_acts(3, 2)[0], np.zeros(2, np.intc), 0, 0.0, 1), ValueError, "one code per layer"),
    ((sizes_acts(3, 2)[0], np.array([99], np.intc), 0, 0.0, 1), ValueError, "activation code"),
    ((*sizes_acts(3, 2), 7, 0.0, 1), ValueError, "unknown loss code 7"),
    ((*sizes_acts(3, 2), 6, 0.0, 1), ValueError, "unknown loss code 6"),  # one past the last row
    ((*sizes_acts(3, 2), 0, -1.0, 1), ValueError, "l2 must be"),
    ((*sizes_acts(3, 2), 0, 0.0, 0), ValueError, "batch_size must be >= 1"),
])
def test_constructor_errors(args, error, match):
    with pytest.raises(error, match=match):
        Trainer(*args)


def test_initialised_once(rng):
    sizes, acts = sizes_acts(3, 2)
    t = Trainer(sizes, acts, KERNEL_LOSSES["mse"], 0.0, 2)
    with pytest.raises(RuntimeError, match="initialised once"):
        t.__init__(*sizes_acts(5, 2), KERNEL_LOSSES["mse"], 0.0, 2)
    with pytest.raises(RuntimeError, match="__init__ was not called"):
        Trainer.__new__(Trainer).set_params(np.zeros(0))


def test_setter_and_run_errors():
    sizes, acts = sizes_acts(3, 2)
    t = Trainer(sizes, acts, KERNEL_LOSSES["mse"], 0.0, 2)
    params = np.zeros(8)
    X, Y = np.zeros((5, 3)), np.zeros((5, 2))
    with pytest.raises(RuntimeError, match="call set_params before set_data"):
        t.set_data(X, Y)
    with pytest.raises(RuntimeError, match="no parameters yet"):
        t.run(0, 1)
    with pytest.raises(ValueError, match="params has 7 elements; sizes \\[3, 2\\] need 8"):
        t.set_params(np.zeros(7))
    with pytest.raises(TypeError, match="params must be float32 or float64, got int64"):
        t.set_params(np.zeros(8, np.int64))
    with pytest.raises(ValueError, match="C-contiguous, aligned and writeable"):
        t.set_params(np.zeros(16)[::2])
    t.set_params(params)
    with pytest.raises(RuntimeError, match="no data yet"):
        t.run(0, 1)
    with pytest.raises(ValueError, match="X has 4 columns; the network takes 3 inputs"):
        t.set_data(np.zeros((5, 4)), Y)
    with pytest.raises(ValueError, match="T has 3 columns; the network has 2 outputs"):
        t.set_data(X, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="X has 5 rows but T has 4"):
        t.set_data(X, np.zeros((4, 2)))
    with pytest.raises(TypeError, match="X is float32 but params are float64"):
        t.set_data(X.astype(np.float32), Y)
    with pytest.raises(ValueError, match="X must be C-contiguous"):
        t.set_data(np.asfortranarray(X), Y)
    with pytest.raises(ValueError, match="sample_weight has 4 elements for 5 rows"):
        t.set_data(X, Y, np.ones(4))
    t.set_data(X, Y, np.empty(0))  # empty: unweighted
    with pytest.raises(TypeError, match="order must be None or a C-contiguous 1-D np.intp"):
        t.set_order(np.arange(5, dtype=np.int32))
    with pytest.raises(ValueError, match="order holds row indices outside \\[0, 5\\)"):
        t.set_order(np.array([0, 5], np.intp))
    with pytest.raises(RuntimeError, match="no optimizer yet"):
        t.run(0, 1)
    with pytest.raises(RuntimeError, match="no optimizer yet"):
        t.lr = 0.1
    with pytest.raises(ValueError, match="momentum > 0 needs a velocity buffer"):
        t.set_optimizer("sgd", 0.1, {"momentum": 0.9})
    with pytest.raises(ValueError, match="velocity has 7 elements; params have 8"):
        t.set_optimizer("sgd", 0.1, {"momentum": 0.9}, {"velocity": np.zeros(7)})
    with pytest.raises(ValueError, match="lr must be finite and >= 0"):
        t.set_optimizer("sgd", float("nan"))
    with pytest.raises(ValueError, match="beta2 must be in \\[0, 1\\)"):
        t.set_optimizer("adam", 0.1, {"beta1": 0.9, "beta2": 1.0, "epsilon": 1e-8},
                        {"first_moment": np.zeros(8), "second_moment": np.zeros(8)})
    with pytest.raises(ValueError, match="epsilon must be finite and > 0"):
        t.set_optimizer("adam", 0.1, {"beta1": 0.9, "beta2": 0.999, "epsilon": 0.0},
                        {"first_moment": np.zeros(8), "second_moment": np.zeros(8)})
    with pytest.raises(ValueError, match="second_moment must be writeable"):
        readonly = np.zeros(8)
        readonly.flags.writeable = False
        t.set_optimizer("adam", 0.1, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
                        {"first_moment": np.zeros(8), "second_moment": readonly})
    t.set_optimizer("sgd", 0.1)
    with pytest.raises(ValueError, match="lr must be finite"):
        t.lr = -1.0
    with pytest.raises(ValueError, match="need 0 <= start <= stop <= 5 \\(the number of rows\\)"):
        t.run(0, 6)
    with pytest.raises(ValueError, match="start=3, stop=2"):
        t.run(3, 2)
    t.set_order(np.array([4, 0, 1], np.intp))
    with pytest.raises(ValueError, match="stop <= 3 \\(the number of positions\\)"):
        t.run(0, 4)
    np.testing.assert_array_equal(params, 0)  # nothing was trained
    assert t.run(0, 3)[3] == 3
    with pytest.raises(ValueError, match="order holds row indices outside \\[0, 2\\)"):
        t.set_data(X[:2], Y[:2])  # the order set before must fit the new data


@pytest.mark.parametrize("args,error,match", [
    (("rmsprop_unknown", 0.1), ValueError, "unknown optimizer 'rmsprop_unknown' \\(known: .*adam.*sgd"),
    (("sgd", 0.1, {"beta1": 0.9}), ValueError,
     "sgd has no hyper-parameter 'beta1' \\(its hyper-parameters: momentum, nesterov, "
     "weight_decay\\)"),
    (("sgd", 0.1, {"momentum": "fast"}), TypeError, "momentum must be a number, got 'fast'"),
    (("sgd", 0.1, {"momentum": 1.5}), ValueError, "momentum must be in \\[0, 1\\], got 1.5"),
    (("adam", 0.1, {}, {"velocity": np.zeros(8)}), ValueError,
     "adam has no buffer 'velocity' \\(its buffers: first_moment, second_moment\\)"),
    (("adam", 0.1, {}, {"first_moment": np.zeros(8)}), ValueError,
     "adam needs a second_moment buffer"),
    (("adam", 0.1, {}, {"first_moment": np.zeros(8), "second_moment": np.zeros(8)}, -1),
     ValueError, "step_count must be >= 0, got -1"),
])
def test_set_optimizer_names_what_is_wrong(args, error, match):
    sizes, acts = sizes_acts(3, 2)
    t = Trainer(sizes, acts, KERNEL_LOSSES["mse"], 0.0, 2)
    t.set_params(np.zeros(8))
    with pytest.raises(error, match=match):
        t.set_optimizer(*args)
    with pytest.raises(RuntimeError, match="no optimizer yet"):
        t.lr  # nothing was set


def test_hyper_parameters_left_out_take_the_kernels_defaults(rng):
    # Adam with its registered defaults equals Adam with them spelled out
    kind = optimizer_kinds()["adam"]
    assert dict(zip(kind.hyper_names, kind.hyper_defaults)) == {
        "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "torch_epsilon": 0.0}
    net, X, Y, sw, order = problem(rng)
    results = []
    for hyper in ({}, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "torch_epsilon": False}):
        params = net._params.copy()
        t = Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], 0.0, 4)
        t.set_params(params)
        t.set_data(X, Y, sw)
        t.set_optimizer("adam", 0.05, hyper, {"first_moment": np.zeros_like(params),
                                              "second_moment": np.zeros_like(params)})
        assert t.run(0, X.shape[0])[0] == 0
        results.append(params)
    np.testing.assert_array_equal(results[0], results[1])
    assert not np.array_equal(results[0], net._params)


def test_trainer_refuses_buffers_that_do_not_fit(rng):
    net, X, Y, _, _ = problem(rng, weighted=False, shuffled=False)
    p = net._params.copy()
    t = Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], 0.0, 4)
    with pytest.raises(ValueError, match=f"params has {p.size + 1} elements"):
        t.set_params(np.zeros(p.size + 1))
    t.set_params(p)
    with pytest.raises(TypeError, match="second_moment must be a 1-D NumPy array"):
        t.set_optimizer("adam", 0.1, {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
                        {"first_moment": np.zeros_like(p), "second_moment": None})
    with pytest.raises(ValueError, match="momentum > 0 needs a velocity buffer"):
        t.set_optimizer("sgd", 0.1, {"momentum": 0.9})
    with pytest.raises(ValueError, match="X has 3 columns; the network takes 4 inputs"):
        t.set_data(X[:, :3].copy(), Y)
    with pytest.raises(ValueError, match="sample_weight has 3 elements for 11 rows"):
        t.set_data(X, Y, np.ones(3))
    t.set_data(X, Y)
    t.set_optimizer("sgd", 0.1)  # plain SGD needs no velocity
    np.testing.assert_array_equal(p, net._params)  # nothing was trained
    assert t.run(0, X.shape[0])[3] == X.shape[0]
