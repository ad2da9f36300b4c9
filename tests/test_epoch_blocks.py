"""Many small epochs in one kernel call (Trainer.run_epochs) train exactly
as one call an epoch: same weights, history, divergence report and rollback.

The epoch-by-epoch loop is forced with a callback that never stops training
(the block path runs only when nothing has to happen between epochs).
"""
import _thread
import re
import signal

import numpy as np
import pytest
from helpers import spy_on_trainer_runs

import fastbp
from fastbp import _kernels, _training
from fastbp.losses import KERNEL_LOSSES


def never_stop(epoch, history, network):
    return False


def fit_both_ways(make_net, make_opt, X, Y, **kwargs):
    """(network, optimizer, history or the exception) for blocks, then epoch by epoch."""
    results = []
    for callbacks in ((), (never_stop,)):
        net, opt = make_net(), make_opt()
        try:
            outcome = net.fit(X, Y, optimizer=opt, callbacks=callbacks, **kwargs)
        except fastbp.TrainingDiverged as exc:
            outcome = exc
        results.append((net, opt, outcome))
    return results


def state_of(net, opt):
    buffers = [np.asarray(b) for b in opt.state(net).buffers.values()]
    return [np.asarray(net._params)] + buffers + [opt.state(net).step_count]


@pytest.fixture
def count_block_calls(monkeypatch):
    calls = []
    original = _kernels.Trainer.run_epochs

    class Spy(_kernels.Trainer):
        def run_epochs(self, n_epochs, epoch_rows, data_sums, penalty_sums):
            calls.append(n_epochs)
            return original(self, n_epochs, epoch_rows, data_sums, penalty_sums)

    monkeypatch.setattr(_kernels, "Trainer", Spy)
    return calls


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make_opt, batch_size", [
    (lambda: fastbp.SGD(lr=0.5), 1),                    # the fused per-sample path
    (lambda: fastbp.SGD(lr=0.3, momentum=0.9), 2),
    (lambda: fastbp.Adam(lr=0.05), 3),                  # a short last batch an epoch
])
@pytest.mark.parametrize("shuffle", [True, False])
def test_blocks_train_as_one_call_an_epoch(dtype, make_opt, batch_size, shuffle,
                                           count_block_calls):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([0, 1, 1, 0], float)
    make_net = lambda: fastbp.Network([2, 3, 1], activation="tanh", dtype=dtype, seed=4)
    (blocks, blocks_opt, h_blocks), (epochs, epochs_opt, h_epochs) = fit_both_ways(
        make_net, make_opt, X, Y, epochs=300, batch_size=batch_size, shuffle=shuffle, seed=5)
    assert count_block_calls and sum(count_block_calls) == 300  # only the block fit used them
    for key in ("loss", "data_loss", "penalty", "lr"):
        assert h_blocks[key] == h_epochs[key]
    assert len(h_blocks["seconds"]) == 300
    for a, b in zip(state_of(blocks, blocks_opt), state_of(epochs, epochs_opt)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("epochs_per_call", [2, 3, 5, 8])
def test_divergence_inside_a_block_is_reported_and_rolled_back_as_epoch_by_epoch(
        monkeypatch, epochs_per_call):
    # full batches, lr too large: an epoch's only batch diverges, so the start
    # of the epoch before must come back; the block size moves the divergence
    # to the first, a middle and the last epoch of a block
    X = np.random.default_rng(0).normal(size=(16, 2))
    Y = np.random.default_rng(1).normal(size=(16, 1))
    net_flops = 6 * (2 * 4 + 4 * 1) * 16
    monkeypatch.setattr(_training, "FIT_CALL_FLOPS", net_flops * epochs_per_call / 4)
    make_net = lambda: fastbp.Network([2, 4, 1], activation="identity",
                                      output_activation="identity", seed=0)
    make_opt = lambda: fastbp.SGD(lr=1.0, momentum=0.5)
    replays = []
    replay = _training.TrainingLoop._replay
    monkeypatch.setattr(_training.TrainingLoop, "_replay",
                        lambda self, *args: replays.append(args[-1]) or replay(self, *args))
    (blocks, blocks_opt, e_blocks), (epochs, epochs_opt, e_epochs) = fit_both_ways(
        make_net, make_opt, X, Y, epochs=400, batch_size=16, shuffle=False)
    assert len(replays) == 1  # the block fit met the divergence inside a block
    assert isinstance(e_blocks, fastbp.TrainingDiverged)
    assert str(e_blocks) == str(e_epochs)
    assert re.search(r"the weights from the start of epoch \d+ were restored", str(e_blocks))
    assert e_blocks.history == {k: v for k, v in e_epochs.history.items() if k != "seconds"} \
        | {"seconds": e_blocks.history["seconds"]}
    for a, b in zip(state_of(blocks, blocks_opt), state_of(epochs, epochs_opt)):
        np.testing.assert_array_equal(a, b)


def test_divergence_in_the_weights_inside_a_block(monkeypatch):
    # relu into an identity output with a huge rate: the weights overflow to
    # inf after a step whose loss was still finite
    X = np.full((4, 1), 1e150)
    Y = np.zeros((4, 1))
    make_net = lambda: fastbp.Network([1, 1], output_activation="identity", seed=0)
    make_opt = lambda: fastbp.SGD(lr=1e10)
    (_, _, e_blocks), (_, _, e_epochs) = fit_both_ways(make_net, make_opt, X, Y, epochs=50,
                                                       batch_size=4, shuffle=False)
    assert isinstance(e_blocks, fastbp.TrainingDiverged)
    assert str(e_blocks) == str(e_epochs)


def per_sample_sgd(net, X, Y, lr, l2, order):
    """A batch-1 plain-SGD Trainer on a copy of net's parameters, and the copy."""
    params = net._params.copy()
    trainer = _kernels.Trainer(net._sizes, net._acts, KERNEL_LOSSES["mse"], l2, 1)
    trainer.set_params(params)
    trainer.set_data(X, Y)
    trainer.set_order(order)
    trainer.set_optimizer("sgd", lr)
    return trainer, params


# (network, rows, targets, lr) by dtype: trains on; diverges in a later epoch
# (its loss or its weights turn inf: status 1 or 2); one row an epoch, a huge
# step from a finite loss turns its weights inf (status 2, in the first epoch)
PER_SAMPLE_CASES = {
    "finite": lambda dtype: (
        fastbp.Network([2, 3, 1], activation="tanh", dtype=dtype, seed=4),
        [[0, 0], [0, 1], [1, 0], [1, 1]], [0, 1, 1, 0], 0.5),
    "diverges": lambda dtype: (
        fastbp.Network([1, 1], output_activation="identity", dtype=dtype, seed=0),
        [[1.0]] * 4, [0] * 4, 3.0),
    "weights": lambda dtype: (
        fastbp.Network([1, 1], output_activation="identity", dtype=dtype, seed=0),
        [[1e150 if dtype == "float64" else 1e15]], [0], 1e10),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(PER_SAMPLE_CASES))
@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("ordered", [False, True])
def test_per_sample_block_is_its_epochs_one_call_each(dtype, case, l2, ordered):
    # plain per-sample SGD runs a block's epochs in one C call
    # (fastbp_sample.h's fbp_sample_epochs): the same params, J sums, epochs
    # done and status as the minibatch loop's run() an epoch, the epoch that
    # went wrong left as run() leaves it
    net, X, Y, lr = PER_SAMPLE_CASES[case](dtype)
    X, Y = np.array(X, dtype), np.array(Y, dtype).reshape(-1, 1)
    n_epochs, n = 60, X.shape[0]
    order = np.tile(np.arange(n)[::-1], n_epochs) if ordered else None
    block, block_params = per_sample_sgd(net, X, Y, lr, l2, order)
    sums = np.full((2, n_epochs), -1.0)
    done, status = block.run_epochs(n_epochs, n, sums[0], sums[1])
    one, one_params = per_sample_sgd(net, X, Y, lr, l2, order)
    want_status, want_sums = 0, []
    for e in range(n_epochs):
        start = e * n if ordered else 0
        run_status, data, penalty, _ = one.run(start, start + n)
        if run_status:
            want_status = run_status
            break
        want_sums.append((data, penalty))
    assert (done, status) == (len(want_sums), want_status)
    if case == "diverges":  # inside the block, not in its first epoch
        assert 0 < done < n_epochs and status in (1, 2)
    else:
        assert status == {"finite": 0, "weights": 2}[case]
    np.testing.assert_array_equal(block_params, one_params)
    np.testing.assert_array_equal(sums[:, :done].T, np.array(want_sums).reshape(-1, 2))
    assert (sums[:, done:] == -1.0).all()  # nothing written past the epochs done


def test_a_schedule_or_a_callback_keeps_epoch_by_epoch(count_block_calls):
    X, Y = np.eye(3), np.eye(3)
    net = fastbp.Network([3, 3], seed=0)
    net.fit(X, Y, epochs=20, optimizer=fastbp.SGD(lr=0.1, schedule="invscaling"))
    net.fit(X, Y, epochs=20, callbacks=[never_stop])
    net.fit(X, Y, epochs=20, validation_data=(X, Y))
    assert count_block_calls == []
    net.fit(X, Y, epochs=20)
    assert count_block_calls == [20]


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="the runner replaced Python's SIGINT handler")
def test_ctrl_c_during_a_block_keeps_its_epochs(monkeypatch):
    # blocks of 5 epochs; Ctrl-C arrives during the second block's call
    X = np.random.default_rng(2).normal(size=(8, 3))
    Y = np.random.default_rng(3).uniform(size=(8, 2))
    monkeypatch.setattr(_training, "FIT_CALL_FLOPS", 6 * (3 * 4 + 4 * 2) * 8 * 5)
    calls = []

    def ctrl_c_in_the_second_call(trainer, start, stop):
        calls.append(stop)
        if len(calls) == 2:
            _thread.interrupt_main()

    spy = spy_on_trainer_runs(monkeypatch, after=ctrl_c_in_the_second_call)
    make = lambda: fastbp.Network([3, 4, 2], seed=0)
    net = make()
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, Y, epochs=40, batch_size=1, seed=1)
    assert calls == [40, 40]  # two blocks of 5 epochs of 8 rows, then no call
    assert len(info.value.history["loss"]) == 10
    monkeypatch.setattr(_kernels, "Trainer", spy.__base__)
    twin = make()
    twin.fit(X, Y, epochs=10, batch_size=1, seed=1)
    np.testing.assert_array_equal(net._params, twin._params)
