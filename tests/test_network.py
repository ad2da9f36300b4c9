"""Network against the reference and finite differences: predict, loss, gradients, fit."""
import numpy as np
import pytest
from helpers import HIDDEN, LOSS_OUTPUTS, as_lists, assert_close, random_network, targets

import fastbp
from fastbp import reference

SIZES = [[3, 1], [4, 6, 3], [5, 7, 4, 3]]


def assert_matches_reference(net, history, ref_history, ref_params):
    """The fit's losses and final parameters are the reference's."""
    assert_close(history["loss"], ref_history)
    for got, want in zip(net.weights + net.biases, ref_params):
        assert_close(got, want)


def central_differences(net, X, Y, loss, l2, eps=1e-6):
    """dJ/dθ by central differences of Network.loss, one parameter at a time."""
    weights, biases = net.weights, net.biases
    numeric_W = [np.zeros_like(W) for W in weights]
    numeric_b = [np.zeros_like(b) for b in biases]
    for params, numeric in ((weights, numeric_W), (biases, numeric_b)):
        for P, N in zip(params, numeric):
            for idx in np.ndindex(P.shape):
                saved = P[idx]
                P[idx] = saved + eps
                net.set_weights(weights, biases)
                plus = net.loss(X, Y, loss=loss, l2=l2)
                P[idx] = saved - eps
                net.set_weights(weights, biases)
                minus = net.loss(X, Y, loss=loss, l2=l2)
                P[idx] = saved
                N[idx] = (plus - minus) / (2 * eps)
    net.set_weights(weights, biases)
    return numeric_W, numeric_b


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss,output", LOSS_OUTPUTS)
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_gradients_three_ways(rng, sizes, hidden, loss, output, l2):
    if output == "softmax" and sizes[-1] == 1:
        sizes = sizes[:-1] + [2]  # softmax over one output is constant
    net = random_network(rng, sizes, hidden, output)
    X = rng.normal(size=(6, sizes[0]))
    Y = targets(rng, loss, 6, sizes[-1])
    dW, db = net.gradients(X, Y, loss=loss, l2=l2)
    W_ref, b_ref, acts = as_lists(net)

    # compiled vs reference (per-neuron, pure Python): float64 rounding only
    dW_ref, db_ref = reference.gradients(W_ref, b_ref, acts, X.tolist(), Y.tolist(), loss, l2)
    for got, want in zip(dW + db, dW_ref + db_ref):
        assert_close(got, want)
    # loss vs reference
    assert_close(net.loss(X, Y, loss=loss, l2=l2),
                 reference.loss(W_ref, b_ref, acts, X.tolist(), Y.tolist(), loss, l2))
    # compiled vs central finite differences of the loss
    num_W, num_b = central_differences(net, X, Y, loss, l2)
    scale = max(np.abs(g).max() for g in dW + db)
    for got, want in zip(dW + db, num_W + num_b):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7 * max(scale, 1.0))


@pytest.mark.parametrize("loss,output", LOSS_OUTPUTS)
def test_float32_gradients_match_reference(rng, loss, output):
    net = random_network(rng, [5, 8, 4], "tanh", output, dtype="float32")
    X = rng.normal(size=(10, 5)).astype(np.float32)
    Y = targets(rng, loss, 10, 4, np.float32)
    dW, db = net.gradients(X, Y, loss=loss, l2=0.1)
    assert all(g.dtype == np.float32 for g in dW + db)
    W_ref, b_ref, acts = as_lists(net)
    dW_ref, db_ref = reference.gradients(W_ref, b_ref, acts, X.tolist(), Y.tolist(), loss, 0.1)
    for got, want in zip(dW + db, dW_ref + db_ref):
        assert_close(got, want, np.float32)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_matches_reference(rng, dtype):
    net = random_network(rng, [6, 9, 5, 3], ["relu", "tanh"], "softmax", dtype=dtype)
    X = rng.normal(size=(11, 6))
    out = net.predict(X)
    assert out.shape == (11, 3) and out.dtype == np.dtype(dtype)
    W_ref, b_ref, acts = as_lists(net)
    X_cast = X.astype(dtype).astype(np.float64)
    assert_close(out, reference.predict(W_ref, b_ref, acts, X_cast.tolist()), np.dtype(dtype))


def test_predict_in_chunks_equals_one_call(rng, monkeypatch):
    net = random_network(rng, [3, 4, 2], "sigmoid", "identity")
    X = rng.normal(size=(25, 3))
    whole = net.predict(X)
    monkeypatch.setattr(fastbp.network, "CHUNK_ROWS", 4)
    # BLAS may block a 4-row product differently from a 25-row one: equal to rounding
    assert_close(net.predict(X), whole)
    assert_close(net.loss(X, np.zeros((25, 2)), l2=0.2),
                 0.5 * np.mean(np.sum(whole ** 2, axis=1))
                 + 0.1 / 25 * sum(float(np.sum(W ** 2)) for W in net.weights))


@pytest.mark.parametrize("loss,output", LOSS_OUTPUTS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_in_chunks_match_the_reference(rng, monkeypatch, loss, output, dtype):
    net = random_network(rng, [5, 7, 3], "tanh", output, dtype=dtype)
    X = rng.normal(size=(23, 5)).astype(dtype)
    Y = targets(rng, loss, 23, 3, np.dtype(dtype))
    monkeypatch.setattr(fastbp.network, "CHUNK_ROWS", 4)  # 6 chunks, the last of 3 rows
    dW, db = net.gradients(X, Y, loss=loss, l2=0.3)
    assert all(g.dtype == np.dtype(dtype) for g in dW + db)
    W_ref, b_ref, acts = as_lists(net)
    dW_ref, db_ref = reference.gradients(W_ref, b_ref, acts, X.astype(np.float64).tolist(),
                                         Y.astype(np.float64).tolist(), loss, 0.3)
    for got, want in zip(dW + db, dW_ref + db_ref):
        assert_close(got, want, np.dtype(dtype))
    J_ref = reference.objective(W_ref, b_ref, acts, X.astype(np.float64).tolist(),
                           Y.astype(np.float64).tolist(), loss, 0.3)
    assert_close(net._flat_gradient(X, Y, fastbp.losses.check_loss(loss, output), 0.3)[0],
                 J_ref, np.dtype(dtype))


@pytest.mark.parametrize("batch_size,n", [(1, 12), (7, 30), (30, 30), (50, 30)])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.8, False), (0.8, True)])
@pytest.mark.parametrize("loss,output,l2", [("mse", "sigmoid", 0.0), ("cross_entropy", "softmax", 0.05),
                                            ("bce", "sigmoid", 0.0)])
def test_fit_matches_reference_fit(rng, batch_size, n, momentum, nesterov, loss, output, l2):
    net = random_network(rng, [4, 5, 3], "tanh", output)
    X = rng.normal(size=(n, 4))
    Y = targets(rng, loss, n, 3)
    W_ref, b_ref, acts = as_lists(net)
    opt = fastbp.SGD(lr=0.3, momentum=momentum, nesterov=nesterov)
    history = net.fit(X, Y, loss=loss, optimizer=opt, epochs=4, batch_size=batch_size,
                      shuffle=False)
    # batch 50 > n = 30: one full batch
    ref_history = reference.fit(W_ref, b_ref, acts, X.tolist(), Y.tolist(), loss, lr=0.3,
                                momentum=momentum, nesterov=nesterov, epochs=4,
                                batch_size=min(batch_size, n), l2=0.0)
    assert_matches_reference(net, history, ref_history, W_ref + b_ref)


def test_fit_with_l2_matches_reference(rng):
    net = random_network(rng, [3, 4, 2], "relu", "identity")
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    W_ref, b_ref, acts = as_lists(net)
    history = net.fit(X, Y, l2=0.5, optimizer=fastbp.SGD(lr=0.1, momentum=0.5), epochs=3,
                      batch_size=4, shuffle=False)
    ref_history = reference.fit(W_ref, b_ref, acts, X.tolist(), Y.tolist(), "mse", lr=0.1,
                                momentum=0.5, epochs=3, batch_size=4, l2=0.5)
    assert_matches_reference(net, history, ref_history, W_ref + b_ref)


def test_shuffled_fit_visits_a_permutation_each_epoch(rng):
    net = random_network(rng, [3, 5, 2], "sigmoid", "sigmoid")
    X, Y = rng.normal(size=(10, 3)), rng.uniform(size=(10, 2))
    W_ref, b_ref, acts = as_lists(net)
    net.fit(X, Y, optimizer=fastbp.SGD(lr=0.5), epochs=3, batch_size=3, shuffle=True, seed=7)
    # Network.fit draws one permutation per epoch from default_rng(seed)
    perm_rng = np.random.default_rng(7)
    orders = [perm_rng.permutation(10).tolist() for _ in range(3)]
    reference.fit(W_ref, b_ref, acts, X.tolist(), Y.tolist(), "mse", lr=0.5, epochs=3,
                  batch_size=3, orders=orders)
    for got, want in zip(net.weights + net.biases, W_ref + b_ref):
        assert_close(got, want)


def test_same_seed_same_result_and_shuffle_matters(rng):
    X, Y = rng.normal(size=(40, 4)), rng.uniform(size=(40, 2))
    runs = []
    for seed in (1, 1, 2):
        net = fastbp.Network([4, 6, 2], seed=0)
        net.fit(X, Y, epochs=2, batch_size=5, shuffle=True, seed=seed)
        runs.append(np.concatenate([W.ravel() for W in net.weights]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_optimizer_keeps_velocity_between_fits(rng):
    X, Y = rng.normal(size=(8, 3)), rng.uniform(size=(8, 1))
    one = fastbp.Network([3, 4, 1], seed=3)
    two = fastbp.Network([3, 4, 1], seed=3)
    opt1 = fastbp.SGD(lr=0.2, momentum=0.9)
    one.fit(X, Y, optimizer=opt1, epochs=4, batch_size=2, shuffle=False)
    opt2 = fastbp.SGD(lr=0.2, momentum=0.9)
    two.fit(X, Y, optimizer=opt2, epochs=2, batch_size=2, shuffle=False)
    two.fit(X, Y, optimizer=opt2, epochs=2, batch_size=2, shuffle=False)
    for got, want in zip(two.weights, one.weights):
        np.testing.assert_array_equal(got, want)


def test_training_learns_digits():
    X, Y = fastbp.load_digits()
    net = fastbp.Network([64, 32, 10], output_activation="softmax", seed=0)
    history = net.fit(X[:1400], Y[:1400], loss="cross_entropy",
                      optimizer=fastbp.SGD(lr=0.2, momentum=0.9), epochs=8, batch_size=16, seed=0)
    assert history["loss"][-1] < 0.3 * history["loss"][0]
    accuracy = np.mean(net.predict(X[1400:]).argmax(1) == Y[1400:].argmax(1))
    assert accuracy > 0.9


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradcheck_api(rng, dtype):
    net = random_network(rng, [4, 6, 3], "tanh", "softmax", dtype=dtype)
    X = rng.normal(size=(5, 4))
    Y = targets(rng, "cross_entropy", 5, 3)
    result = fastbp.gradcheck(net, X, Y, loss="cross_entropy", l2=0.1)
    assert isinstance(result, fastbp.GradcheckResult)
    if dtype == "float64":
        assert result.reference < 1e-12 and result.finite_differences < 1e-6
    else:
        assert result.reference < 1e-5 and result.finite_differences < 1e-3


def test_gradcheck_detects_a_wrong_gradient(rng, monkeypatch):
    net = random_network(rng, [3, 4, 2], "sigmoid", "sigmoid")
    X, Y = rng.normal(size=(4, 3)), rng.uniform(size=(4, 2))
    real = fastbp.Network.gradients

    def off_by_one_percent(self, *args, **kwargs):
        dW, db = real(self, *args, **kwargs)
        return [W * 1.01 for W in dW], db

    monkeypatch.setattr(fastbp.Network, "gradients", off_by_one_percent)
    result = fastbp.gradcheck(net, X, Y)
    assert result.reference > 1e-3 and result.finite_differences > 1e-3


def test_activation_list_and_repr():
    net = fastbp.Network([2, 3, 3, 1], activation=["relu", "tanh"], output_activation="identity")
    assert net.activations == ("relu", "tanh")
    assert "relu" in repr(net) and net.n_layers == 3
    assert [W.shape for W in net.weights] == [(2, 3), (3, 3), (3, 1)]
    assert [b.shape for b in net.biases] == [(3,), (3,), (1,)]
    assert net.n_params == 2 * 3 + 3 + 3 * 3 + 3 + 3 + 1
    assert fastbp.__version__


@pytest.mark.parametrize("n_threads", [1, 2])
def test_n_threads_gives_the_same_training(rng, n_threads):
    X, Y = rng.normal(size=(300, 40)), rng.uniform(size=(300, 5))
    nets = [fastbp.Network([40, 64, 5], seed=1) for _ in range(2)]
    nets[0].fit(X, Y, epochs=2, batch_size=100, shuffle=False, n_threads=n_threads)
    nets[1].fit(X, Y, epochs=2, batch_size=100, shuffle=False)
    for got, want in zip(nets[0].weights, nets[1].weights):
        assert_close(got, want)
    with pytest.raises(ValueError, match="n_threads"):
        nets[0].fit(X, Y, n_threads=0)


# -- the default loss: the output's natural one ----------------------------

def _fit_twice(sizes, output, Y, losses, rng):
    """Weights, history and loss/gradients of one network fitted with each of
    ``losses`` (None: the default) from the same start on the same rows."""
    X = rng.normal(size=(Y.shape[0], sizes[0]))
    runs = []
    for loss in losses:
        net = fastbp.Network(sizes, activation="tanh", output_activation=output, seed=3)
        kwargs = {} if loss is None else {"loss": loss}
        history = net.fit(X, Y, optimizer=fastbp.SGD(lr=0.3, momentum=0.5), epochs=3,
                          batch_size=8, seed=4, **kwargs)
        runs.append((np.concatenate([w.ravel() for w in net.weights + net.biases]),
                     history["loss"], net.loss(X, Y, **kwargs),
                     np.concatenate([g.ravel() for g in sum(net.gradients(X, Y, **kwargs),
                                                              [])])))
    return runs


def _same_bits(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_softmax_output_defaults_to_cross_entropy(rng):
    Y = np.eye(3)[rng.integers(0, 3, 40)]
    default, cross_entropy, mse = _fit_twice([4, 6, 3], "softmax", Y,
                                             [None, "cross_entropy", "mse"], rng)
    assert _same_bits(default, cross_entropy)
    assert not np.array_equal(default[0], mse[0])  # the comparison can tell the losses apart


def test_the_default_cross_entropy_is_the_formula(rng):
    net = random_network(rng, [4, 5, 3], "tanh", "softmax")
    X, Y = rng.normal(size=(7, 4)), np.eye(3)[rng.integers(0, 3, 7)]
    W_ref, b_ref, acts = as_lists(net)
    P = np.array(reference.predict(W_ref, b_ref, acts, X.tolist()))
    assert_close(net.loss(X, Y), -np.mean(np.sum(Y * np.log(P), axis=1)))
    assert_close(net.loss(X, Y, l2=0.2),
                 reference.loss(W_ref, b_ref, acts, X.tolist(), Y.tolist(), "cross_entropy", 0.2))


@pytest.mark.parametrize("output", ["sigmoid", "identity", "tanh", "relu"])
def test_other_outputs_keep_mse_as_their_default(rng, output):
    Y = rng.uniform(0.1, 0.9, size=(40, 2))  # also valid bce targets: the loss must tell
    others = ["bce"] if output == "sigmoid" else []
    runs = _fit_twice([4, 6, 2], output, Y, [None, "mse"] + others, rng)
    assert _same_bits(runs[0], runs[1])
    for other in runs[2:]:
        assert not np.array_equal(runs[0][0], other[0])


def test_targets_the_default_loss_refuses_say_how_to_choose_another(rng):
    net = fastbp.Network([2, 3], output_activation="softmax", seed=0)
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 3))
    for call in (net.fit, net.loss, net.gradients):
        with pytest.raises(ValueError, match=r"cross_entropy targets must lie in \[0, 1\].*"
                                             r"default loss of a softmax output; pass loss='mse'"):
            call(X, Y)
    Y = np.full((5, 3), 0.5)
    with pytest.raises(ValueError, match=r"summing to 1.*pass loss='mse'"):
        net.fit(X, Y)
    assert np.isfinite(net.fit(X, Y, loss="mse")["loss"]).all()  # mse takes them, when named
