"""Network's parameter surface for optimisers and wings: init_weights,
objective and replace_params, each against an oracle of its own."""
import math

import numpy as np
import pytest

import fastbp


def flat(weights, biases) -> np.ndarray:
    """The flat layout: per layer, W row by row, then b."""
    return np.concatenate([part for W, b in zip(weights, biases) for part in (W.ravel(), b)])


def problem(m=40, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    net = fastbp.Network([5, 7, 3], activation="tanh", output_activation="softmax",
                         dtype=dtype, seed=seed)
    X = rng.normal(size=(m, 5))
    labels = rng.integers(0, 3, m)
    return net, X, np.eye(3)[labels], labels


# -- init_weights ---------------------------------------------------------------------

def test_init_weights_is_what_the_constructor_draws():
    built = fastbp.Network([6, 5, 4, 2], activation=["relu", "sigmoid"], seed=3)
    redrawn = fastbp.Network([6, 5, 4, 2], activation=["relu", "sigmoid"], seed=99)
    redrawn.init_weights(np.random.default_rng(3))
    for a, b in zip(built.weights + built.biases, redrawn.weights + redrawn.biases):
        np.testing.assert_array_equal(a, b)
    again = fastbp.Network([6, 5, 4, 2], activation=["relu", "sigmoid"], seed=99)
    again.init_weights(3)  # an int seeds default_rng
    np.testing.assert_array_equal(flat(again.weights, again.biases),
                                  flat(built.weights, built.biases))


def test_init_weights_draws_glorot_uniform_layer_by_layer():
    net = fastbp.Network([6, 5, 4, 2], activation=["relu", "sigmoid"], seed=0)
    net.init_weights(np.random.default_rng(7))
    # the oracle draws the same stream by hand: relu layer factor 6, sigmoid layers 2
    rng = np.random.default_rng(7)
    for W, b, (n_in, n_out), factor in zip(net.weights, net.biases,
                                          [(6, 5), (5, 4), (4, 2)], [6, 2, 2]):
        bound = math.sqrt(factor / (n_in + n_out))
        np.testing.assert_array_equal(W, rng.uniform(-bound, bound, size=(n_in, n_out)))
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.5 * bound  # spread over the range, not a constant
        np.testing.assert_array_equal(b, np.zeros(n_out))


def test_init_weights_as_scikit_learn_with_a_random_state():
    net = fastbp.Network([4, 3, 2], activation="relu", output_activation="sigmoid",
                         dtype="float32", seed=0)
    net.init_weights(np.random.RandomState(5), factor=6.0, biases="uniform")
    state = np.random.RandomState(5)
    for W, b, (n_in, n_out) in zip(net.weights, net.biases, [(4, 3), (3, 2)]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        np.testing.assert_array_equal(W, state.uniform(-bound, bound, (n_in, n_out))
                                      .astype(np.float32))
        np.testing.assert_array_equal(b, state.uniform(-bound, bound, n_out)
                                      .astype(np.float32))
    assert net.weights[0].dtype == np.float32


def test_init_weights_reproducible_and_seed_dependent():
    net = fastbp.Network([8, 8, 1], seed=0)
    net.init_weights(11)
    first = flat(net.weights, net.biases)
    net.init_weights(11)
    np.testing.assert_array_equal(flat(net.weights, net.biases), first)
    net.init_weights(12)
    assert not np.array_equal(flat(net.weights, net.biases), first)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"rng": "seed"}, TypeError, "rng must be"),
    ({"rng": 1.5}, TypeError, "rng must be"),
    ({"rng": True}, TypeError, "rng must be"),
    ({"rng": -1}, ValueError, "rng"),
    ({"factor": 0.0}, ValueError, "factor must be > 0"),
    ({"factor": float("nan")}, ValueError, "factor must be finite"),
    ({"factor": "6"}, TypeError, "factor must be a real number"),
    ({"biases": "ones"}, ValueError, "unknown biases 'ones'"),
])
def test_init_weights_refuses_bad_input_and_changes_nothing(kwargs, error, match):
    net = fastbp.Network([3, 4, 2], seed=0)
    before = flat(net.weights, net.biases)
    with pytest.raises(error, match=match):
        net.init_weights(**{"rng": 0, **kwargs})
    np.testing.assert_array_equal(flat(net.weights, net.biases), before)


# -- objective ---------------------------------------------------------------------------

@pytest.mark.parametrize("l2", [0.0, 0.4])
def test_objective_equals_loss_and_flattened_gradients(l2):
    net, X, Y, _ = problem()
    J, grad = net.objective(X, Y, l2=l2)
    assert isinstance(J, float)
    assert grad.dtype == np.float64 and grad.shape == (net.n_params,)
    assert J == pytest.approx(net.loss(X, Y, l2=l2), rel=1e-12)
    np.testing.assert_allclose(grad, flat(*net.gradients(X, Y, l2=l2)), rtol=1e-10,
                               atol=1e-14)


def test_objective_gradient_matches_central_differences():
    net, X, Y, _ = problem(m=25)
    l2, step = 0.3, 1e-6
    J, grad = net.objective(X, Y, l2=l2)
    theta = flat(net.weights, net.biases)
    numeric = np.empty_like(theta)
    for k in range(theta.size):
        shifted = theta.copy()
        shifted[k] += step
        net.replace_params(shifted)
        plus = net.objective(X, Y, l2=l2)[0]
        shifted[k] -= 2 * step
        net.replace_params(shifted)
        numeric[k] = (plus - net.objective(X, Y, l2=l2)[0]) / (2 * step)
    net.replace_params(theta)
    assert net.objective(X, Y, l2=l2)[0] == J
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_objective_weights_count_like_repeated_rows():
    net, X, Y, labels = problem(m=30)
    counts = np.random.default_rng(1).integers(1, 4, 30)
    repeated = np.repeat(np.arange(30), counts)
    J, grad = net.objective(X, labels, sample_weight=counts, l2=0.2)
    J_rep, grad_rep = net.objective(X[repeated], Y[repeated], l2=0.2)
    assert J == pytest.approx(J_rep, rel=1e-12)
    np.testing.assert_allclose(grad, grad_rep, rtol=1e-10, atol=1e-14)


def test_objective_sums_more_rows_than_a_chunk():
    net, X, Y, _ = problem(m=9000)  # three chunks of 4096 rows, the last short
    J, grad = net.objective(X, Y, l2=0.1)
    assert J == pytest.approx(net.loss(X, Y, l2=0.1), rel=1e-12)
    np.testing.assert_allclose(grad, flat(*net.gradients(X, Y, l2=0.1)), rtol=1e-9,
                               atol=1e-13)


def test_objective_float32_close_to_float64():
    net, X, Y, _ = problem()
    J64, grad64 = net.objective(X, Y, l2=0.1)
    J32, grad32 = net.astype("float32").objective(X, Y, l2=0.1)
    assert grad32.dtype == np.float64
    assert J32 == pytest.approx(J64, rel=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"l2": -1.0}, ValueError, "l2 must be >= 0"),
    ({"sample_weight": np.ones(3)}, ValueError, "sample_weight"),
    ({"sample_weight": -np.ones(40)}, ValueError, "non-negative"),
    ({"loss": "hinge"}, ValueError, "unknown loss"),
    ({"loss": "bce"}, ValueError, "needs output_activation='sigmoid'"),
])
def test_objective_refuses_bad_input(kwargs, error, match):
    net, X, Y, _ = problem()
    with pytest.raises(error, match=match):
        net.objective(X, Y, **kwargs)


def test_objective_refuses_rows_that_do_not_match():
    net, X, Y, _ = problem()
    with pytest.raises(ValueError):
        net.objective(X[:10], Y)
    with pytest.raises(ValueError, match="X"):
        net.objective(X[:, :4], Y)


# -- replace_params ----------------------------------------------------------------------

def test_replace_params_sets_every_layer_in_the_flat_layout():
    net = fastbp.Network([3, 4, 2], seed=0)
    new = np.arange(net.n_params, dtype=np.float64) / 10
    net.replace_params(new)
    np.testing.assert_array_equal(net.weights[0], new[:12].reshape(3, 4))
    np.testing.assert_array_equal(net.biases[0], new[12:16])
    np.testing.assert_array_equal(net.weights[1], new[16:24].reshape(4, 2))
    np.testing.assert_array_equal(net.biases[1], new[24:26])
    new[:] = 0  # the network keeps its own copy
    assert net.weights[0][0, 1] == 0.1


def test_replace_params_rounds_to_the_network_dtype():
    net = fastbp.Network([2, 2, 1], dtype="float32", seed=0)
    values = np.linspace(-1, 1, net.n_params)
    net.replace_params(values)
    np.testing.assert_array_equal(flat(net.weights, net.biases), values.astype(np.float32))
    assert net.weights[0].dtype == np.float32


@pytest.mark.parametrize("value, error, match", [
    (np.zeros(5), ValueError, r"shape \(5,\), expected \(13,\)"),
    (np.zeros((13, 1)), ValueError, "shape"),
    (np.array(["a"] * 13), TypeError, "real numbers"),
    (np.full(13, np.nan), ValueError, "NaN or infinite"),
])
def test_replace_params_refuses_bad_input_and_changes_nothing(value, error, match):
    net = fastbp.Network([2, 3, 1], seed=0)
    before = flat(net.weights, net.biases)
    with pytest.raises(error, match=match):
        net.replace_params(value)
    np.testing.assert_array_equal(flat(net.weights, net.biases), before)


def test_replace_params_refuses_overflow_of_float32_unless_told():
    net = fastbp.Network([2, 3, 1], dtype="float32", seed=0)
    huge = np.full(net.n_params, 1e300)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        net.replace_params(huge)
    net.replace_params(np.full(net.n_params, np.nan), check_finite=False)
    assert np.isnan(net.weights[0]).all()


def test_parameter_changes_are_refused_while_fit_runs():
    net, X, Y, _ = problem()
    theta = flat(net.weights, net.biases)
    refused = []

    def try_changes(epoch, history, network):
        for change in (lambda: network.replace_params(theta),
                       lambda: network.init_weights(0)):
            with pytest.raises(RuntimeError, match="while fit runs"):
                change()
            refused.append(epoch)

    net.fit(X, Y, epochs=2, callbacks=[try_changes], seed=0)
    assert refused == [0, 0, 1, 1]


def test_kernel_layout_and_params_are_read_only_and_stay_so_after_pickling():
    import pickle
    net = fastbp.Network([3, 4, 2], activation="relu", output_activation="softmax", seed=0)
    for network in (net, pickle.loads(pickle.dumps(net)), net.copy(), net.astype("float32")):
        sizes, acts = network.kernel_layout
        np.testing.assert_array_equal(sizes, [3, 4, 2])
        np.testing.assert_array_equal(acts, [fastbp.ACTIVATIONS["relu"],
                                             fastbp.ACTIVATIONS["softmax"]])
        for array in (sizes, acts, network.params):
            with pytest.raises(ValueError, match="read-only"):
                array[0] = 1
