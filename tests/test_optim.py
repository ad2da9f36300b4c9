"""Optimisers and schedules (fastbp.optim) against independent transcriptions:
plain NumPy formulas on the pure-Python reference's gradients, scikit-learn's
own optimiser classes, and PyTorch's (when installed)."""
import math

import numpy as np
import pytest

import fastbp
from fastbp import optim, reference
from helpers import as_lists, random_network


def _reference_gradient(net, X, Y, loss):
    """The flat gradient from the pure-Python reference, in fastbp's layout
    (per layer: W row-major, then b)."""
    W, b, acts = as_lists(net)
    dW, db = reference.gradients(W, b, acts, X.tolist(), Y.tolist(), loss=loss)
    return np.concatenate([np.concatenate([np.ravel(w), np.ravel(c)]) for w, c in zip(dW, db)])


def _params(net):
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in
                           zip(net.weights, net.biases)])


def _set_params(net, flat):
    weights, biases, offset = [], [], 0
    for W, b in zip(net.weights, net.biases):
        weights.append(flat[offset:offset + W.size].reshape(W.shape))
        offset += W.size
        biases.append(flat[offset:offset + b.size])
        offset += b.size
    net.set_weights(weights, biases)


def _adam_numpy(theta, grad_of, steps, lr, beta1, beta2, epsilon, torch_flavor):
    """Adam as written in Kingma & Ba (scikit-learn) or in PyTorch's docs."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t in range(1, steps + 1):
        g = grad_of(theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        if torch_flavor:
            m_hat = m / (1 - beta1 ** t)
            v_hat = v / (1 - beta2 ** t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + epsilon)
        else:
            lr_t = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
            theta = theta - lr_t * m / (np.sqrt(v) + epsilon)
    return theta


@pytest.mark.parametrize("flavor", ["sklearn", "torch"])
@pytest.mark.parametrize("loss,output", [("mse", "tanh"), ("cross_entropy", "softmax")])
def test_adam_steps_equal_a_numpy_transcription(rng, flavor, loss, output):
    net = random_network(rng, [4, 6, 3], "tanh", output)
    X = rng.normal(size=(9, 4))
    Y = np.eye(3)[rng.integers(0, 3, 9)] if loss == "cross_entropy" else rng.normal(size=(9, 3))
    # epsilon large enough that where it enters matters
    hyper = dict(lr=0.05, beta1=0.8, beta2=0.95, epsilon=1e-2)
    scratch = net.copy()

    def grad_of(theta):
        _set_params(scratch, theta)
        return _reference_gradient(scratch, X, Y, loss)

    expected = _adam_numpy(_params(net), grad_of, 5, torch_flavor=flavor == "torch", **hyper)
    net.fit(X, Y, loss=loss, optimizer=fastbp.Adam(flavor=flavor, **hyper), epochs=5,
            batch_size=9, shuffle=False)
    np.testing.assert_allclose(_params(net), expected, rtol=1e-12, atol=1e-14)


def test_adam_flavors_differ_where_epsilon_matters(rng):
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    results = []
    for flavor in ("sklearn", "torch"):
        net = fastbp.Network([3, 2], output_activation="identity", seed=1)
        net.fit(X, Y, optimizer=fastbp.Adam(lr=0.1, epsilon=0.5, flavor=flavor), epochs=3,
                batch_size=8)
        results.append(_params(net))
    assert np.abs(results[0] - results[1]).max() > 1e-4


def test_adam_matches_torch_adam(rng):
    torch = pytest.importorskip("torch")
    net = random_network(rng, [5, 7, 2], "tanh", "identity")
    X, Y = rng.normal(size=(12, 5)), rng.normal(size=(12, 2))
    layers = [torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2)]
    model = torch.nn.Sequential(*layers).double()
    with torch.no_grad():
        for layer, W, b in zip(layers[::2], net.weights, net.biases):
            layer.weight.copy_(torch.from_numpy(W.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.Adam(model.parameters(), lr=0.02, betas=(0.9, 0.99), eps=1e-3)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(6):
        opt.zero_grad()
        loss = ((model(Xt) - Yt) ** 2).sum() / (2 * len(X))  # fastbp's mse
        loss.backward()
        opt.step()
    net.fit(X, Y, optimizer=fastbp.Adam(lr=0.02, beta1=0.9, beta2=0.99, epsilon=1e-3,
                                        flavor="torch"), epochs=6, batch_size=12, shuffle=False)
    for layer, W, b in zip(layers[::2], net.weights, net.biases):
        np.testing.assert_allclose(W, layer.weight.detach().numpy().T, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_adam_state_persists_across_fits(rng):
    X, Y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    make = lambda: fastbp.Network([3, 4, 2], output_activation="identity", seed=3)
    once, twice = make(), make()
    once.fit(X, Y, optimizer=fastbp.Adam(lr=0.01), epochs=4, batch_size=5, seed=1)
    adam = fastbp.Adam(lr=0.01)
    # two fits of two epochs: the same steps, if moments and step count persist
    # and the shuffles are the same draws
    rng_seed = np.random.default_rng(1)
    twice.fit(X, Y, optimizer=adam, epochs=2, batch_size=5, seed=rng_seed)
    twice.fit(X, Y, optimizer=adam, epochs=2, batch_size=5, seed=rng_seed)
    np.testing.assert_allclose(_params(twice), _params(once), rtol=1e-12)
    assert adam.state(twice).step_count == 8
    adam.reset()
    assert adam.state(twice).step_count == 0


# -- schedules against scikit-learn's optimisers ---------------------------------

def test_invscaling_equals_sklearn():
    pytest.importorskip("sklearn")
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer
    theirs = SGDOptimizer([np.zeros(2)], learning_rate_init=0.3, lr_schedule="invscaling",
                          power_t=0.7)
    ours = optim.InvScaling(power_t=0.7)
    lr = 0.3
    for epoch in range(1, 8):
        seen = 37 * epoch
        theirs.iteration_ends(seen)
        lr = ours.lr_after_epoch(0.3, lr, epoch, seen)
        assert lr == pytest.approx(theirs.learning_rate, rel=1e-15)


def test_adaptive_and_constant_equal_sklearn_on_plateaus():
    pytest.importorskip("sklearn")
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer
    for name, ours in (("adaptive", optim.Adaptive()), ("constant", optim.Constant())):
        theirs = SGDOptimizer([np.zeros(2)], learning_rate_init=0.1, lr_schedule=name)
        lr = 0.1
        for _ in range(12):
            theirs.iteration_ends(100)
            lr = ours.lr_after_epoch(0.1, lr, 1, 100)
            stop_theirs = theirs.trigger_stopping("plateau", verbose=False)
            new = ours.on_plateau(lr)
            assert (new is None) == stop_theirs
            if stop_theirs:
                break
            lr = new
            assert lr == pytest.approx(theirs.learning_rate, rel=1e-15)
        assert stop_theirs


@pytest.mark.parametrize("schedule,make_torch", [
    (optim.StepDecay(step_size=3, gamma=0.5),
     lambda torch, opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)),
    (optim.CosineDecay(epochs=7, min_lr=0.01),
     lambda torch, opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.01)),
])
def test_step_and_cosine_decay_equal_torch(schedule, make_torch):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    scheduler = make_torch(torch, opt)
    lr = 0.2
    # up to the cosine's end: past it PyTorch's rate climbs again, fastbp's stays at min_lr
    for epoch in range(1, 8):
        opt.step()
        scheduler.step()
        lr = schedule.lr_after_epoch(0.2, lr, epoch, 0)
        assert lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)


def test_fit_records_the_scheduled_rates(rng):
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    net = fastbp.Network([3, 1], output_activation="identity", seed=0)
    history = net.fit(X, Y, optimizer=fastbp.SGD(lr=0.1, schedule=optim.StepDecay(2, 0.5)),
                      epochs=5, batch_size=4)
    assert history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]
    # a schedule changes the steps: equal to fits epoch by epoch at those rates
    twin = fastbp.Network([3, 1], output_activation="identity", seed=0)
    rng_seed = np.random.default_rng(0)
    for lr in history["lr"]:
        twin.fit(X, Y, optimizer=fastbp.SGD(lr=lr), epochs=1, batch_size=4, seed=rng_seed)
    other = fastbp.Network([3, 1], output_activation="identity", seed=0)
    other.fit(X, Y, optimizer=fastbp.SGD(lr=0.1, schedule=optim.StepDecay(2, 0.5)), epochs=5,
              batch_size=4, seed=np.random.default_rng(0))
    np.testing.assert_allclose(_params(other), _params(twin), rtol=1e-12)


@pytest.mark.parametrize("make,match", [
    (lambda: fastbp.Adam(lr=0), "lr must be > 0"),
    (lambda: fastbp.Adam(beta1=1.0), "beta1 must be < 1"),
    (lambda: fastbp.Adam(beta2=-0.1), "beta2 must be >= 0"),
    (lambda: fastbp.Adam(epsilon=0), "epsilon must be > 0"),
    (lambda: fastbp.Adam(flavor="keras"), "flavor must be 'sklearn' or 'torch'"),
    (lambda: fastbp.SGD(schedule="cosine"), "schedule must be"),
    (lambda: optim.StepDecay(0), "step_size must be >= 1"),
    (lambda: optim.CosineDecay(epochs=0), "epochs must be >= 1"),
    (lambda: optim.Adaptive(factor=1.0), "factor must be > 1"),
])
def test_bad_optimizer_settings_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ---------------------------------------------------------------------------
# Each optimiser is one class here and one step in the kernels

def _optimizer_classes():
    """The optimisers fastbp.optim exports: its Optimizer subclasses with a kernel step."""
    classes = [getattr(optim, name) for name in optim.__all__]
    return [cls for cls in classes
            if isinstance(cls, type) and issubclass(cls, optim.Optimizer) and cls.kernel_name]


def test_every_optimizer_class_has_its_kernel_step_and_back():
    from fastbp import _kernels
    kinds = _kernels.optimizer_kinds()
    assert {"sgd", "adam"} <= set(kinds)
    assert sorted(cls.kernel_name for cls in _optimizer_classes()) == sorted(kinds)
    for cls in _optimizer_classes():
        assert getattr(fastbp, cls.__name__) is cls  # exported by fastbp itself


@pytest.mark.parametrize("optimizer", [fastbp.SGD(), fastbp.SGD(momentum=0.9, nesterov=True),
                                       fastbp.Adam(), fastbp.Adam(flavor="torch")],
                         ids=repr)
def test_an_optimizers_hyper_parameters_and_buffers_are_its_kernels(optimizer):
    from fastbp import _kernels
    kind = _kernels.optimizer_kinds()[optimizer.kernel_name]
    assert set(optimizer.hyper()) <= set(kind.hyper_names)
    assert set(optimizer.buffer_names) <= set(kind.buffer_names)
    assert len(kind.hyper_defaults) == len(kind.hyper_names)


def test_plain_is_sgd_without_momentum():
    assert fastbp.SGD().plain and fastbp.SGD(lr=0.5).plain
    assert not fastbp.SGD(momentum=0.5).plain and not fastbp.Adam().plain


def test_an_optimisers_states_go_with_their_networks():
    """An optimiser keeps a state per network, weakly: a network that goes
    takes its state along; a deep copy of the optimiser keeps copies of the
    states of the networks alive, under its own weak references."""
    import copy
    import gc
    import pickle
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    optimizer = fastbp.SGD(lr=0.3, momentum=0.9)
    kept, gone = fastbp.Network([2, 2, 1], seed=0), fastbp.Network([2, 2, 1], seed=1)
    for net in (kept, gone):
        net.fit(X, Y, optimizer=optimizer, batch_size=1)
    assert len(optimizer._states) == 2
    twin = copy.deepcopy(optimizer)
    velocity = optimizer.state(kept).buffers["velocity"]
    assert twin.state(kept).buffers["velocity"] is not velocity
    np.testing.assert_array_equal(twin.state(kept).buffers["velocity"], velocity)
    assert optimizer.state(kept).epochs == twin.state(kept).epochs == 1
    del net, gone
    gc.collect()
    assert len(optimizer._states) == 1 and len(twin._states) == 1
    twin.state(kept).epochs = 7  # the copy's state is its own
    assert optimizer.state(kept).epochs == 1
    del twin
    gc.collect()
    assert optimizer.state(kept).buffers["velocity"] is velocity
    with pytest.raises(TypeError):
        pickle.dumps(optimizer)  # weak references do not pickle, as before
    optimizer.reset()
    assert len(optimizer._states) == 0
    assert optimizer.state(kept).epochs == 0  # a new start
