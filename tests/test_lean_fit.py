"""fit's lean path (fastbp._lean): a fit of one kernel call gives what the
full path (Session over TrainingLoop) gives, bit for bit: weights, history,
optimiser state, generator state, divergence and Ctrl-C."""
import signal

import numpy as np
import pytest

import fastbp
from fastbp import TrainingDiverged, _fitting, _lean, _training

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = np.array([[0.0], [1.0], [1.0], [0.0]])


def xor_net(dtype="float64", seed=0, sizes=(2, 2, 1)):
    return fastbp.Network(list(sizes), activation="sigmoid", output_activation="sigmoid",
                          seed=seed, dtype=dtype)


def full_path(monkeypatch):
    """Make fit skip the lean path."""
    monkeypatch.setattr(_training.TrainingLoop, "one_call", lambda *args: False)


def lean_calls(monkeypatch):
    """Count the lean path's fits that returned a history."""
    calls = []
    real = _fitting.lean_fit

    def counted(*args):
        calls.append(None)  # entered; None stays if it raised
        result = real(*args)
        calls[-1] = result is not None
        return result

    monkeypatch.setattr(_fitting, "lean_fit", counted)
    return calls


def both_paths(monkeypatch):
    """Yield twice, the lean path's fit counter: for lean fits, then full ones."""
    yield lean_calls(monkeypatch)
    full_path(monkeypatch)
    yield lean_calls(monkeypatch)


def same_history(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        if key != "seconds":
            assert a[key] == b[key], key
            # bit for bit too: == takes -0.0 for 0.0
            assert np.array(a[key]).tobytes() == np.array(b[key]).tobytes(), key
    assert len(a["seconds"]) == len(b["seconds"])


def state_of(optimizer, net):
    state = optimizer.state(net)
    return (state.step_count, state.lr, state.epochs, state.samples_seen,
            {k: v.copy() for k, v in state.buffers.items()})


def same_state(a, b) -> None:
    assert a[:4] == b[:4]
    assert list(a[4]) == list(b[4])
    for name in a[4]:
        np.testing.assert_array_equal(a[4][name], b[4][name])


FORMS = [
    {},
    {"shuffle": False},
    {"batch_size": 1},
    {"batch_size": 1, "shuffle": False, "n_threads": 1},
    {"epochs": 100},
    {"epochs": 30, "batch_size": 1},
    {"epochs": 7, "batch_size": 3, "l2": 0.01},
    {"batch_size": 2, "loss": "bce"},
]
OPTIMIZERS = [
    lambda: None,
    lambda: fastbp.SGD(lr=0.5),
    lambda: fastbp.SGD(lr=0.3, momentum=0.9),
    lambda: fastbp.SGD(lr=0.3, momentum=0.5, nesterov=True),
    lambda: fastbp.Adam(lr=0.01),
    lambda: fastbp.SGD(lr=0.3, schedule=fastbp.optim.InvScaling(power_t=0.5)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS)
@pytest.mark.parametrize("form", FORMS)
def test_lean_fits_equal_the_full_path(monkeypatch, dtype, make_optimizer, form):
    runs = []
    for calls in both_paths(monkeypatch):
        net = xor_net(dtype)
        optimizer = make_optimizer()
        rng = np.random.default_rng(5)
        histories = []
        for _ in range(3):  # later fits continue the optimiser's state
            kwargs = {"optimizer": optimizer, "seed": rng, **form}
            histories.append(net.fit(X, Y, **kwargs))
        runs.append((net.params.copy(), histories, rng.bit_generator.state,
                     None if optimizer is None else state_of(optimizer, net), calls))
    (lean_w, lean_h, lean_rng, lean_state, lean_calls_), (w, h, rng_state, state, calls) = runs
    # schedules that move the rate take the lean path for one epoch only; a
    # thread setting (n_threads with minibatches) takes it too when fastbp runs
    # no threads of its own, as on this net (tests/test_cold_fit.py)
    probe = make_optimizer() or fastbp.SGD()
    moving = not probe.schedule.constant and form.get("epochs", 1) > 1
    assert lean_calls_ == ([] if moving else [True] * 3)
    assert calls == []
    np.testing.assert_array_equal(lean_w, w)
    for a, b in zip(lean_h, h):
        same_history(a, b)
    assert lean_rng == rng_state
    if state is not None:
        same_state(lean_state, state)


def test_seed_none_draws_from_the_process_generator_as_before(monkeypatch):
    from fastbp import _runtime
    nets = []
    for _ in both_paths(monkeypatch):
        _runtime._forget_shared_generator()
        shared = _runtime.fit_generator(None)
        shared.bit_generator.state = np.random.default_rng(11).bit_generator.state
        net = xor_net()
        for _ in range(4):
            net.fit(X, Y)
            net.fit(X, Y, epochs=5, batch_size=1)
        nets.append((net.params.copy(), shared.bit_generator.state))
    np.testing.assert_array_equal(nets[0][0], nets[1][0])
    assert nets[0][1] == nets[1][1]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_changes_between_fits_act_as_on_a_fresh_network(dtype):
    # a fit after changing weights, optimiser, lr, shape, dtype or seed: the
    # weights a freshly built network with those weights gets, bit for bit
    net = xor_net(dtype)
    net.fit(X, Y, epochs=20, seed=0)

    def fresh_like(network):
        twin = xor_net(network.dtype.name, sizes=network.sizes)
        twin.set_weights(network.weights, network.biases)
        return twin

    def check(network, *args, **kwargs):
        twin = fresh_like(network)
        network.fit(*args, **kwargs)
        twin.fit(*args, **kwargs)
        np.testing.assert_array_equal(network.params, twin.params)

    rng = np.random.default_rng(3)
    net.set_weights([w + 0.5 for w in net.weights], net.biases)  # weights
    check(net, X, Y, epochs=10, seed=1)
    check(net, X, Y, epochs=10, seed=2, optimizer=fastbp.SGD(lr=0.9))  # lr
    check(net, X, Y, epochs=10, seed=2, optimizer=fastbp.Adam(lr=0.05))  # optimiser
    check(net, X, Y, epochs=10, seed=3, batch_size=1)  # per-sample
    X8, Y8 = rng.uniform(size=(8, 2)), rng.uniform(size=(8, 1))
    check(net, X8, Y8, epochs=10, seed=4, batch_size=3)  # shape
    check(net, X8[:5].astype(np.float32), Y8[:5], epochs=3, seed=5)  # input dtype
    other = xor_net("float32" if dtype == "float64" else "float64")
    other.set_weights(net.weights, net.biases)
    check(other, X, Y, epochs=10, seed=6)  # network dtype
    wide = xor_net(dtype, sizes=(2, 5, 3, 1))
    check(wide, X, Y, epochs=10, seed=7, batch_size=1)  # architecture
    check(net, X, Y, epochs=10, seed=8, l2=0.1)  # L2 term
    check(net, X, Y, epochs=10, seed=8, l2=-0.0)
    check(net, X, Y, epochs=10, seed=9, loss="bce")  # loss
    linear = fastbp.Network([2, 3, 1], output_activation="identity", seed=0, dtype=dtype)
    linear.fit(X, Y, epochs=5, seed=1, loss=fastbp.HuberLoss(delta=0.3))
    twin = fastbp.Network([2, 3, 1], output_activation="identity", dtype=dtype)
    twin.set_weights(linear.weights, linear.biases)
    for network in (linear, twin):  # the loss's parameter
        network.fit(X, Y, epochs=10, seed=9, loss=fastbp.HuberLoss(delta=0.7))
    np.testing.assert_array_equal(linear.params, twin.params)
    check(net, X, Y, epochs=10, seed=10, batch_size=2)  # batch size
    check(net, X8, Y8, epochs=3, seed=11, batch_size=1, shuffle=False)  # rows, no order
    check(net, X, Y, epochs=3, seed=12, batch_size=1)


def test_a_network_keeps_its_lean_trainer_for_small_data_only():
    import copy
    import pickle
    net = xor_net()
    net.fit(X, Y)
    kept = net.__dict__["_lean_trainer"][2]
    net.fit(X, Y, epochs=5, seed=1)
    assert net.__dict__["_lean_trainer"][2] is kept  # same layout, loss, l2, batch size
    net.fit(X, Y, l2=0.5)
    assert net.__dict__["_lean_trainer"][2] is not kept
    # pickles and copies leave it behind, and train as the original does
    for twin in (pickle.loads(pickle.dumps(net)), copy.copy(net), copy.deepcopy(net)):
        assert "_lean_trainer" not in twin.__dict__
        twin.fit(X, Y, seed=3)
        assert twin.__dict__["_lean_trainer"][2] is not net.__dict__["_lean_trainer"][2]
    big = np.random.default_rng(0).uniform(size=(_lean.KEEP_TRAINER_BYTES // 16 + 1, 2))
    net.fit(big, big[:, :1])
    assert "_lean_trainer" not in net.__dict__  # it would hold the rows


R16 = np.random.default_rng(0)
X16, Y16 = R16.normal(size=(16, 2)), R16.normal(size=(16, 1))
DIVERGING = [
    # one epoch whose first batch overflows
    (xor_net, X, Y * 1e160, {}),
    (xor_net, X, Y * 1e160, {"batch_size": 1, "shuffle": False}),
    (xor_net, X, Y * 1e160, {"batch_size": 1, "epochs": 50}),
    # a block of epochs diverging after a few hundred: the full path replays it
    (lambda: fastbp.Network([2, 4, 1], activation="identity", output_activation="identity",
                            seed=0), X16, Y16, {"epochs": 400, "batch_size": 16}),
    (lambda: fastbp.Network([2, 4, 1], activation="identity", output_activation="identity",
                            seed=0), X16, Y16, {"epochs": 400, "batch_size": 16,
                                                "shuffle": False}),
]


@pytest.mark.parametrize("case", range(len(DIVERGING)))
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_a_divergence_is_reported_and_rolled_back_as_before(monkeypatch, case, momentum):
    make_net, X_fit, Y_fit, form = DIVERGING[case]
    lr = 1.0 if make_net is not xor_net else 1e10
    results = []
    for calls in both_paths(monkeypatch):
        net = make_net()
        optimizer = fastbp.SGD(lr=lr, momentum=momentum)
        rng = np.random.default_rng(9)
        net.fit(X_fit, Y_fit / 1e160 if make_net is xor_net else Y_fit, seed=rng)  # finite
        with pytest.raises(TrainingDiverged) as info:
            net.fit(X_fit, Y_fit, optimizer=optimizer, seed=rng, **form)
        results.append((str(info.value), info.value.history, net.params.copy(),
                        state_of(optimizer, net), rng.bit_generator.state, calls))
    (message, history, w, state, rng_state, calls), full = results[0], results[1]
    assert calls == [True, False]  # the lean path fell back to the full one
    assert full[5] == []
    assert message == full[0]
    same_history(history, full[1])
    np.testing.assert_array_equal(w, full[2])
    same_state(state, full[3])
    assert rng_state == full[4]


class _SetFlag:
    """sigint_deferred as if Ctrl-C came as soon as it was entered."""

    def __enter__(self):
        from fastbp._runtime import _Flag
        flag = _Flag()
        flag.set()
        return flag

    def __exit__(self, *exc_info):
        pass


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="the runner replaced Python's SIGINT handler")
def test_ctrl_c_before_the_call_stops_as_the_full_path_does(monkeypatch):
    from fastbp import _session
    monkeypatch.setattr(_lean, "sigint_deferred", _SetFlag)
    monkeypatch.setattr(_session, "sigint_deferred", _SetFlag)
    outcomes = []
    for calls in both_paths(monkeypatch):
        net = xor_net()
        rng = np.random.default_rng(4)
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, Y, seed=rng)
        outcomes.append((info.value.__notes__, info.value.history, net.params.copy(),
                         rng.bit_generator.state, len(calls)))
    assert outcomes[0][4] == 1 and outcomes[1][4] == 0
    assert outcomes[0][0] == outcomes[1][0]
    assert outcomes[0][1] == outcomes[1][1]
    np.testing.assert_array_equal(outcomes[0][2], outcomes[1][2])
    assert outcomes[0][3] == outcomes[1][3]
    np.testing.assert_array_equal(outcomes[0][2], xor_net().params)


def test_options_that_run_between_epochs_take_the_full_path(monkeypatch):
    calls = lean_calls(monkeypatch)
    net = xor_net()
    net.fit(X, Y, epochs=2, callbacks=[lambda *args: None])
    net.fit(X, Y, epochs=2, validation_data=(X, Y))
    net.fit(X, Y, epochs=2, sample_weight=np.ones(4))
    net.fit(X, Y, epochs=2, clip_norm=1.0)
    net.fit(X, Y, epochs=2, ema=0.9)
    assert calls == []
    net.fit(X, Y, epochs=2, batch_size=1, n_threads=1)  # per-sample holds none
    assert calls == [True]


def test_a_kept_decision_trains_the_current_weights(monkeypatch):
    """A network keeps what decided its last small fit (fastbp._lean.lean_trainer);
    the next fit that asks the same takes it, but trains the weights the
    network holds then: set by set_weights or written into layer_params'
    views between the fits. Each fit equals the full path's from the same
    weights, optimiser state and orders."""
    X200 = np.resize(X, (200, 2))
    Y200 = np.resize(Y, (200, 1))
    start = xor_net()
    weights, biases = start.weights, start.biases
    results = []
    for calls in both_paths(monkeypatch):
        net = xor_net()
        optimizer = fastbp.SGD(lr=0.3, momentum=0.5)
        rng = np.random.default_rng(5)
        digests = []
        for step in range(4):
            if step == 1:
                net.set_weights([W * 0.5 for W in weights], biases)
            if step == 2:
                W, b = net.layer_params()[1]
                W += 0.25  # into the network's own array, which the last fit published
                b -= 0.5
            history = net.fit(X200, Y200, optimizer=optimizer, batch_size=1, seed=rng)
            digests.append((net.params.copy(), history["loss"], state_of(optimizer, net)))
        results.append((digests, calls, net.__dict__.get("_lean_trainer")))
    (lean, lean_calls_, kept), (full, full_calls, _) = results
    assert lean_calls_ == [True] * 4 and full_calls == []
    assert kept is not None and kept[3] is not None  # the decision was kept...
    for (w_lean, loss_lean, state_lean), (w_full, loss_full, state_full) in zip(lean, full):
        np.testing.assert_array_equal(w_lean, w_full)  # ... and each fit saw the new weights
        assert loss_lean == loss_full
        same_state(state_lean, state_full)
    # the weights did change between the fits: every fit's result differs
    assert len({w.tobytes() for w, _, _ in lean}) == 4


def test_a_kept_decision_is_asked_again_when_its_terms_change(monkeypatch):
    from fastbp import _kernels
    net = xor_net()
    X8, Y8 = np.resize(X, (8, 2)), np.resize(Y, (8, 1))
    net.fit(X8, Y8, batch_size=1)
    key = net.__dict__["_lean_trainer"][3]
    assert key is not None
    made = []
    real = _training.TrainingLoop.one_call

    def asked(self, *args):
        made.append(self.X.shape[0])
        return real(self, *args)

    monkeypatch.setattr(_training.TrainingLoop, "one_call", asked)
    net.fit(X8, Y8, batch_size=1, seed=1)
    net.fit(X8, Y8, batch_size=1, optimizer=fastbp.SGD(lr=0.2))
    assert made == []  # the same terms: the kept decision
    net.fit(X8[:6], Y8[:6], batch_size=1)  # other rows
    net.fit(X8[:6], Y8[:6], batch_size=1, l2=-0.0)  # the L2 term's sign bit
    net.fit(X8[:6], Y8[:6], batch_size=1, l2=-0.0, n_threads=1)
    net.fit(X8[:6], Y8[:6], batch_size=1, l2=-0.0, n_threads=1, epochs=3)
    net.fit(X8[:6], Y8[:6], batch_size=2, l2=-0.0, n_threads=1, epochs=3)
    net.fit(X8[:6], Y8[:6], batch_size=2, l2=-0.0, n_threads=1, epochs=3, loss="bce")
    assert made == [6] * 6
    old = _kernels.set_sample_team(1)  # a per-sample fit of this network now takes a team
    try:
        net.fit(X8, Y8, batch_size=1)
        net.fit(X8, Y8, batch_size=1)  # on default_threads(): never kept
        assert made == [6] * 6 + [8, 8]
        assert net.__dict__["_lean_trainer"][3] is None
    finally:
        _kernels.set_sample_team(old)
    net.fit(X8, Y8, batch_size=1)
    net.fit(X8, Y8, batch_size=1)
    assert made == [6] * 6 + [8, 8, 8]
    assert net.__dict__["_lean_trainer"][3] == key
