"""The general training kernel: sample weights, Adam, and epochs split into ranges."""
import numpy as np
import pytest
from helpers import assert_close, random_network, targets

import fastbp
from fastbp import _kernels, reference
from fastbp.losses import LOSSES


def flat(net):
    return net._params.copy()


def run_rows(net, X, Y, sw, order, start, stop, batch, optimizer=0, lr=0.1, momentum=0.0,
             nesterov=False, beta2=0.999, epsilon=1e-8, steps=0, l2=0.0, loss="mse",
             state1=None, state2=None):
    work = np.empty(_kernels.workspace_size(net._sizes, batch), net.dtype)
    grad = np.empty_like(net._params)
    state1 = np.zeros_like(net._params) if state1 is None else state1
    state2 = np.zeros_like(net._params) if state2 is None else state2
    return _kernels.train_rows(X, Y, sw, order, start, stop, batch, net._params, grad, state1,
                               state2, net._sizes, net._acts, LOSSES[loss], l2, optimizer, lr,
                               momentum, nesterov, beta2, epsilon, steps, work)


@pytest.mark.parametrize("loss,output", [("mse", "tanh"), ("bce", "sigmoid"),
                                         ("cross_entropy", "softmax")])
def test_integer_sample_weights_equal_repeated_rows(rng, loss, output):
    # weighting a row by k is the same objective as repeating it k times
    net = random_network(rng, [4, 6, 3], "sigmoid", output)
    X = rng.normal(size=(7, 4))
    Y = targets(rng, loss, 7, 3)
    weights = rng.integers(1, 4, size=7).astype(np.float64)
    work = np.empty(_kernels.workspace_size(net._sizes, 7), np.float64)
    grad = np.empty_like(net._params)
    J, penalty = _kernels.weighted_loss_gradient(X, Y, weights, net._params, net._sizes,
                                                 net._acts, LOSSES[loss], 0.3, work, grad)
    repeat = np.repeat(np.arange(7), weights.astype(int))
    dW, db = net.gradients(X[repeat], Y[repeat], loss=loss, l2=0.3)
    assert_close(J + penalty, net.loss(X[repeat], Y[repeat], loss=loss, l2=0.3))
    expected = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(dW, db)])
    assert_close(grad, expected)


def test_weighted_minibatch_training_matches_repeated_full_batch(rng):
    net = random_network(rng, [3, 5, 2], "tanh", "identity")
    twin = net.copy()
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    weights = np.array([1.0, 2.0, 1.0, 3.0, 1.0, 2.0])
    empty = np.empty(0, np.intp)
    status, loss_sum, penalty_sum, rows, _ = run_rows(net, X, Y, weights, empty, 0, 6, 6, l2=0.1)
    assert status == 0 and rows == 6
    repeat = np.repeat(np.arange(6), weights.astype(int))
    twin.fit(X[repeat], Y[repeat], optimizer=fastbp.SGD(lr=0.1), batch_size=len(repeat),
             shuffle=False, l2=0.1)
    assert_close(flat(net), flat(twin))


@pytest.mark.parametrize("batch", [1, 3, 10])
def test_epoch_split_into_ranges_equals_one_call(rng, batch):
    X, Y = rng.normal(size=(10, 3)), rng.uniform(size=(10, 2))
    order = rng.permutation(10).astype(np.intp)
    whole = fastbp.Network([3, 4, 2], seed=5)
    parts = whole.copy()
    velocity_whole = np.zeros_like(whole._params)
    run_rows(whole, X, Y, np.empty(0), order, 0, 10, batch, momentum=0.5, state1=velocity_whole)
    velocity_parts = np.zeros_like(parts._params)
    # split on batch boundaries, as a caller must
    cut = batch * (10 // batch // 2) or 10
    run_rows(parts, X, Y, np.empty(0), order, 0, cut, batch, momentum=0.5, state1=velocity_parts)
    run_rows(parts, X, Y, np.empty(0), order, cut, 10, batch, momentum=0.5, state1=velocity_parts)
    np.testing.assert_array_equal(flat(whole), flat(parts))


def test_adam_matches_the_paper_formulas(rng):
    net = random_network(rng, [3, 4, 2], "tanh", "identity")
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    W_ref, b_ref, acts = [W.tolist() for W in net.weights], [b.tolist() for b in net.biases], \
        list(net.activations) + [net.output_activation]
    lr, beta1, beta2, eps = 0.01, 0.9, 0.999, 1e-8
    first = np.zeros_like(net._params)
    second = np.zeros_like(net._params)
    status, *_, steps = run_rows(net, X, Y, np.empty(0), np.empty(0, np.intp), 0, 8, 4,
                                 optimizer=1, lr=lr, momentum=beta1, beta2=beta2, epsilon=eps,
                                 state1=first, state2=second)
    assert status == 0 and steps == 2
    # Kingma & Ba, Algorithm 1, with gradients from the pure-Python reference
    theta = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in zip(W_ref, b_ref)])
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, rows in enumerate([slice(0, 4), slice(4, 8)], start=1):
        Ws, bs, offset = [], [], 0
        for n_in, n_out in zip(net.sizes, net.sizes[1:]):
            Ws.append(theta[offset:offset + n_in * n_out].reshape(n_in, n_out).tolist())
            offset += n_in * n_out
            bs.append(theta[offset:offset + n_out].tolist())
            offset += n_out
        dW, db = reference.gradients(Ws, bs, acts, X[rows].tolist(), Y[rows].tolist())
        g = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in zip(dW, db)])
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - beta2 ** t))
    # sklearn's and the kernel's form puts eps outside the bias correction;
    # the paper's eps-hat = eps/sqrt(1-beta2^t) above makes the two identical
    assert_close(flat(net), theta, rtol=1e-10)
