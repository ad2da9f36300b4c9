"""fastbp._session: one Session runs the epochs of any source, and
Network.training_lease holds a network for a training loop of one's own."""
import re

import numpy as np
import pytest

import fastbp
from fastbp._session import EpochReport, EpochSource, Session


def regression(m=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 3))
    return X, np.tanh(X @ rng.normal(size=(3, 2)))


class GradientSteps(EpochSource):
    """A source of its own: one full-batch gradient step an epoch through
    Network.objective, as a distributed source would average one."""

    def __init__(self, network, optimizer, X, Y, lr=0.1):
        self.network, self.optimizer, self.X, self.Y, self.lr = network, optimizer, X, Y, lr
        self.asked = []

    def train(self, session, epoch, count):
        self.asked.append((epoch, count))
        J, grad = self.network.objective(self.X, self.Y)
        session.publish((self.network.params - self.lr * grad).astype(self.network.dtype))
        rows = self.X.shape[0]
        return EpochReport(epoch, (J * rows,), (0.0,), rows, session.state.lr, 0.0)


def plain_steps(net, X, Y, epochs, lr=0.1):
    """The same steps without a session: (losses, final parameters)."""
    losses = []
    for _ in range(epochs):
        J, grad = net.objective(X, Y)
        losses.append(J)
        net.replace_params(net.params - lr * grad)
    return losses, net.params


def test_a_source_of_its_own_gets_the_history_callbacks_and_schedule():
    X, Y = regression()
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=1)
    expected_losses, expected_params = plain_steps(net.copy(), X, Y, 5)
    seen = []
    optimizer = fastbp.SGD(lr=0.1)
    source = GradientSteps(net, optimizer, X, Y)
    history = source.run(5, callbacks=[lambda epoch, h, n: seen.append((epoch, len(h["loss"])))])
    np.testing.assert_allclose(history["loss"], expected_losses, rtol=1e-12)
    assert history["data_loss"] == history["loss"] and history["penalty"] == [0.0] * 5
    assert history["lr"] == [0.1] * 5
    np.testing.assert_allclose(net.params, expected_params, rtol=1e-12)
    assert seen == [(e, e + 1) for e in range(5)]
    assert source.asked == [(e, 1) for e in range(5)]  # a callback: one epoch at a time
    state = optimizer.state(net)
    assert (state.epochs, state.samples_seen) == (5, 5 * 30)
    assert not source.stopped


def test_a_quiet_session_offers_the_rest_of_the_epochs():
    X, Y = regression()
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=1)
    source = GradientSteps(net, fastbp.SGD(lr=0.1), X, Y)
    assert Session(net, source.optimizer).quiet
    assert not Session(net, source.optimizer, validation=lambda n: 0.0).quiet
    source.run(3)
    assert source.asked == [(0, 3), (1, 2), (2, 1)]  # it trained one each time


def test_the_stopping_rule_stops_and_restores_the_best_weights():
    X, Y = regression()
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=1)
    source = GradientSteps(net, fastbp.SGD(lr=0.1), X, Y, lr=-0.05)  # ascent: it gets worse
    start_gradient = net.objective(X, Y)[1]
    start = net.params.copy()
    stopping = fastbp.EarlyStopping(patience=2)
    history = source.run(10, early_stopping=stopping)
    assert source.stopped and len(history["loss"]) == 3
    assert stopping.best_epoch == 0
    # the best epoch's weights: those after its step, which epoch 1 started from
    np.testing.assert_allclose(net.params, start + 0.05 * start_gradient, rtol=1e-12)
    assert net.loss(X, Y) == pytest.approx(history["loss"][1], rel=1e-12)


def test_a_report_that_goes_back_replaces_the_history_from_there():
    X, Y = regression()
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=1)

    class Rewinding(GradientSteps):
        def train(self, session, epoch, count):
            if epoch == 3 and not hasattr(self, "rewound"):
                self.rewound = True
                return EpochReport(1, (), (), 30, session.state.lr, 0.0)  # back to epoch 1
            return EpochReport(epoch, (float(epoch),), (0.0,), 30, session.state.lr, 0.0)

    history = Rewinding(net, fastbp.SGD(), X, Y).run(5)
    assert history["loss"] == [e / 30 for e in (0, 1, 2, 3, 4)]
    assert [len(v) for v in history.values()] == [5] * 5


def test_ctrl_c_in_a_source_attaches_the_history_and_the_source_s_note():
    X, Y = regression()
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=1)

    class Interrupted(GradientSteps):
        def train(self, session, epoch, count):
            if epoch == 2:
                raise KeyboardInterrupt
            return super().train(session, epoch, count)

        def interrupted(self, session, epoch):
            return f"stopped in round {epoch + 1}"

    with pytest.raises(KeyboardInterrupt) as info:
        Interrupted(net, fastbp.SGD(), X, Y).run(5)
    assert len(info.value.history["loss"]) == 2
    assert re.match("fastbp: stopped in round 3;", info.value.__notes__[-1])
    net.fit(X, Y, epochs=1)  # the lease was given back


def test_training_lease_refuses_other_writers_and_publishes_without_a_copy():
    X, Y = regression()
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=1)
    new = np.linspace(-1, 1, net.n_params)
    with net.training_lease() as lease:
        for change in (lambda: net.set_weights(net.weights, net.biases),
                       lambda: net.replace_params(new), lambda: net.init_weights(0),
                       lambda: net.fit(X, Y), lambda: net.training_lease().__enter__()):
            with pytest.raises(RuntimeError, match="fit"):
                change()
        lease.publish(new)
        assert np.shares_memory(net.params, new)
        np.testing.assert_array_equal(net.predict(X[:1]), net.copy().predict(X[:1]))
    net.replace_params(np.zeros(net.n_params))  # free again
    assert not net.params.any()


def test_ctrl_c_between_chunks_keeps_the_history_and_frees_the_network():
    X, Y = regression(m=60)
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=1)

    def ctrl_c_after_the_second_epoch(epoch, history, network):
        if epoch == 1:
            raise KeyboardInterrupt

    chunks = [(X[:30], Y[:30]), (X[30:], Y[30:])]
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(chunks, None, epochs=5, callbacks=[ctrl_c_after_the_second_epoch])
    assert len(info.value.history["loss"]) == 2
    assert re.match("fastbp: fit stopped in epoch 3 between two buffers of chunks;",
                    info.value.__notes__[-1])
    after = net.params.copy()
    net.fit(chunks, None, epochs=1)  # the lease was given back
    assert not np.array_equal(after, net.params)
