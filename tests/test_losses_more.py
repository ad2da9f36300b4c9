"""The losses with a parameter or a kink (huber, absolute_error, label smoothing)
against PyTorch: loss and gradients, and SGD steps in Network.fit."""
import numpy as np
import pytest
import scipy.sparse
from helpers import assert_close, random_network

import fastbp
from fastbp import _kernels
from fastbp.losses import KERNEL_LOSSES, CrossEntropyLoss, HuberLoss, Loss

torch = pytest.importorskip("torch")

#: (loss as fit takes it, output activation)
CASES = [
    ("huber", "identity"), (HuberLoss(delta=0.3), "identity"), (HuberLoss(delta=2.5), "identity"),
    ("absolute_error", "identity"),
    (CrossEntropyLoss(label_smoothing=0.1), "softmax"),
    (CrossEntropyLoss(label_smoothing=1.0), "softmax"),
]


def torch_data_term(loss, a, T):
    """PyTorch's loss of the output pre-activation ``a``, on fastbp's scale: the
    regression losses average over m·K elements, fastbp's sum over the K outputs
    (as its "mse" does), so J = K · torch's mean; cross-entropy averages over
    the m rows in both."""
    K = a.shape[1]
    if loss == "huber" or isinstance(loss, HuberLoss):
        delta = 1.0 if loss == "huber" else loss.delta
        return K * torch.nn.HuberLoss(delta=delta)(a, T)
    if loss == "absolute_error":
        return K * torch.nn.L1Loss()(a, T)
    return torch.nn.CrossEntropyLoss(label_smoothing=loss.label_smoothing)(a, T)


def torch_objective(net, X, Y, loss, l2):
    """J and its gradients by PyTorch's autograd in float64."""
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in net.biases]
    z = torch.tensor(np.asarray(X), dtype=torch.float64)
    for l, (W, b) in enumerate(zip(Ws, bs)):
        a = z @ W + b
        z = torch.tanh(a) if l < len(Ws) - 1 else a
    m = X.shape[0]
    J = torch_data_term(loss, a, torch.tensor(Y, dtype=torch.float64))
    J = J + l2 / (2 * m) * sum((W ** 2).sum() for W in Ws)
    J.backward()
    return J.item(), [W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]


def problem(rng, loss, output, m=9, sizes=(4, 6, 3), dtype="float64"):
    net = random_network(rng, list(sizes), "tanh", output, dtype=dtype)
    X = rng.normal(size=(m, sizes[0]))
    if output == "softmax":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)]
    else:  # residuals on both sides of the huber thresholds
        Y = rng.normal(scale=2.0, size=(m, sizes[-1]))
    return net, X, Y


# -- the loss and its gradient against PyTorch ------------------------------------------------

@pytest.mark.parametrize("loss,output", CASES, ids=repr)
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_loss_and_gradients_match_torch(rng, loss, output, l2):
    net, X, Y = problem(rng, loss, output)
    J_torch, dW_torch, db_torch = torch_objective(net, X, Y, loss, l2)
    assert_close(net.loss(X, Y, loss=loss, l2=l2), J_torch)
    dW, db = net.gradients(X, Y, loss=loss, l2=l2)
    for got, want in zip(dW + db, dW_torch + db_torch):
        assert_close(got, want)
    # the flat objective of lbfgs agrees
    J, grad = net.objective(X, Y, l2=l2, loss=loss)
    assert_close(J, J_torch)
    assert_close(grad, np.concatenate([g.ravel() for pair in zip(dW_torch, db_torch)
                                       for g in pair]))


@pytest.mark.parametrize("loss,output", CASES, ids=repr)
def test_float32_matches_torch_to_its_precision(rng, loss, output):
    net, X, Y = problem(rng, loss, output)
    J_torch, dW_torch, db_torch = torch_objective(net, X, Y, loss, 0.0)
    net32 = net.astype("float32")
    # torch on the float32 weights, so only fastbp's arithmetic differs
    J_torch, dW_torch, db_torch = torch_objective(net32, X.astype(np.float32), Y, loss, 0.0)
    assert_close(net32.loss(X, Y, loss=loss), J_torch, np.float32)
    dW, db = net32.gradients(X, Y, loss=loss)
    for got, want in zip(dW + db, dW_torch + db_torch):
        assert_close(got, want, np.float32, rtol=1e-4)


def test_absolute_error_subgradient_is_zero_at_zero_as_torch():
    # a zero last layer outputs its bias exactly: rows whose target is the bias
    # have residual 0, where torch's sign (and fastbp's) is 0
    net = fastbp.Network([3, 4, 2], "tanh", "identity", seed=3)
    W1, W2 = net.weights
    net.set_weights([W1, np.zeros_like(W2)], [np.full(4, 0.2), np.array([0.5, -1.0])])
    X = np.random.default_rng(0).normal(size=(6, 3))
    Y = np.tile([0.5, -1.0], (6, 1))
    Y[::2, 0] += 1.0  # rows 0, 2, 4: residual -1 in the first output, 0 elsewhere
    J_torch, dW_torch, db_torch = torch_objective(net, X, Y, "absolute_error", 0.0)
    dW, db = net.gradients(X, Y, loss="absolute_error")
    for got, want in zip(dW + db, dW_torch + db_torch):
        assert_close(got, want)
    assert db[1][1] == 0.0 and db[1][0] == -0.5  # 3 rows of −1 over 6, and 0
    assert net.loss(X, Y, loss="absolute_error") == J_torch == 0.5


def test_huber_is_mse_inside_delta_and_label_smoothing_zero_is_cross_entropy(rng):
    net, X, Y = problem(rng, "huber", "identity")
    Y = net.predict(X) + rng.uniform(-0.4, 0.4, size=(X.shape[0], 3))
    assert_close(net.loss(X, Y, loss=HuberLoss(delta=0.5)), net.loss(X, Y, loss="mse"))
    soft, X, Y = problem(rng, "cross_entropy", "softmax")
    assert soft.loss(X, Y, loss=CrossEntropyLoss()) == soft.loss(X, Y, loss="cross_entropy")
    (dW, db) = soft.gradients(X, Y, loss=CrossEntropyLoss(0.0))
    (dW_ce, db_ce) = soft.gradients(X, Y)
    for got, want in zip(dW + db, dW_ce + db_ce):
        np.testing.assert_array_equal(got, want)


def test_the_kernels_take_a_rows_default_parameter():
    assert dict(zip(KERNEL_LOSSES, _kernels.loss_param_defaults())) == {
        "mse": 0.0, "bce": 0.0, "cross_entropy": 0.0, "poisson": 0.0, "huber": 1.0,
        "absolute_error": 0.0}
    a = np.array([[3.0, -0.5]])
    T = np.zeros((1, 2))
    by_default, by_one, by_two = (np.empty_like(a) for _ in range(3))
    J = _kernels.loss_output_delta(a, a, T, by_default, KERNEL_LOSSES["huber"],
                                   fastbp.ACTIVATIONS["identity"])
    J_one = _kernels.loss_output_delta(a, a, T, by_one, KERNEL_LOSSES["huber"],
                                       fastbp.ACTIVATIONS["identity"], 1.0)
    J_two = _kernels.loss_output_delta(a, a, T, by_two, KERNEL_LOSSES["huber"],
                                       fastbp.ACTIVATIONS["identity"], 2.0)
    assert J == J_one == 2.5 + 0.125 and by_default.tolist() == by_one.tolist() == [[1.0, -0.5]]
    assert J_two == 4.0 + 0.125 and by_two.tolist() == [[2.0, -0.5]]
    sizes, acts = np.array([2, 2], np.intc), np.array([0], np.intc)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="loss_param must be finite"):
            _kernels.Trainer(sizes, acts, KERNEL_LOSSES["huber"], 0.0, 1, 1, bad)


# -- pairing and parameter checks -----------------------------------------------------------

@pytest.mark.parametrize("loss,output,needed", [
    ("huber", "softmax", "identity"), (HuberLoss(0.5), "tanh", "identity"),
    ("absolute_error", "sigmoid", "identity"), (CrossEntropyLoss(0.1), "identity", "softmax"),
])
def test_a_loss_on_another_output_is_refused(loss, output, needed):
    net = fastbp.Network([2, 3], output_activation=output, seed=0)
    X, Y = np.zeros((2, 2)), np.full((2, 3), 1 / 3)
    name = getattr(loss, "name", loss)
    message = f"loss '{name}' needs output_activation='{needed}'"
    for call in (lambda: net.fit(X, Y, loss=loss), lambda: net.loss(X, Y, loss=loss),
                 lambda: net.gradients(X, Y, loss=loss)):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("make,message", [
    (lambda: HuberLoss(0.0), "delta"), (lambda: HuberLoss(-1.0), "delta"),
    (lambda: HuberLoss(np.nan), "delta"), (lambda: HuberLoss("1"), "delta"),
    (lambda: CrossEntropyLoss(-0.1), "label_smoothing"),
    (lambda: CrossEntropyLoss(1.5), "label_smoothing"),
    (lambda: CrossEntropyLoss(np.inf), "label_smoothing"),
])
def test_bad_parameters_are_refused(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_loss_objects_compare_by_parameter():
    assert HuberLoss() == HuberLoss(1.0) != HuberLoss(2.0)
    assert HuberLoss(1.0) != CrossEntropyLoss(1.0)
    assert repr(CrossEntropyLoss(0.1)) == "CrossEntropyLoss(label_smoothing=0.1)"
    assert len({HuberLoss(), HuberLoss(1.0), HuberLoss(0.5)}) == 2


def test_gradcheck_checks_the_new_rows_by_name(rng):
    for loss, output in (("huber", "identity"), ("absolute_error", "identity")):
        net, X, Y = problem(rng, loss, output, m=4)
        assert fastbp.gradcheck(net, X, Y, loss=loss).failed == []
    with pytest.raises(TypeError, match="gradcheck takes a loss by name"):
        fastbp.gradcheck(net, X, Y, loss=HuberLoss(0.5))


# -- in Network.fit ----------------------------------------------------------------------------

def torch_sgd(net, X, Y, loss, lr, batch_size):
    """One epoch of plain SGD over the rows in order, by PyTorch."""
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in net.biases]
    opt = torch.optim.SGD(Ws + bs, lr=lr)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    for start in range(0, X.shape[0], batch_size):
        opt.zero_grad()
        z = Xt[start:start + batch_size]
        for l, (W, b) in enumerate(zip(Ws, bs)):
            a = z @ W + b
            z = torch.tanh(a) if l < len(Ws) - 1 else a
        torch_data_term(loss, a, Yt[start:start + batch_size]).backward()
        opt.step()
    return [W.detach().numpy() for W in Ws] + [b.detach().numpy() for b in bs]


@pytest.mark.parametrize("loss,output", CASES, ids=repr)
@pytest.mark.parametrize("batch_size", [1, 3])  # 1: the fused per-sample kernel
def test_sgd_fit_steps_as_torch(rng, loss, output, batch_size):
    net, X, Y = problem(rng, loss, output)
    want = torch_sgd(net, X, Y, loss, 0.05, batch_size)
    net.fit(X, Y, loss=loss, optimizer=fastbp.SGD(lr=0.05), batch_size=batch_size,
            shuffle=False, n_threads=1)
    for got, expected in zip(net.weights + net.biases, want):
        assert_close(got, expected)


@pytest.mark.parametrize("loss,output", CASES, ids=repr)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_is_the_same_on_one_and_two_threads_and_learns(rng, loss, output, dtype):
    # wide enough for fastbp's own threads to split each batch
    net, X, Y = problem(rng, loss, output, m=256, sizes=(40, 64, 3), dtype=dtype)
    before = net.loss(X, Y, loss=loss)
    fits = []
    for threads in (1, 2):
        copy = net.copy()
        history = copy.fit(X, Y, loss=loss, optimizer=fastbp.Adam(lr=0.01), epochs=4,
                           batch_size=128, seed=0, n_threads=threads)
        fits.append((copy.params, history["loss"]))
    np.testing.assert_array_equal(fits[0][0], fits[1][0])
    assert fits[0][1] == fits[1][1]
    trained = net.copy()
    trained.replace_params(fits[0][0])
    assert trained.loss(X, Y, loss=loss) < before


@pytest.mark.parametrize("loss,output", CASES, ids=repr)
def test_sparse_and_chunked_fits_agree_with_the_dense_one(rng, loss, output):
    net, X, Y = problem(rng, loss, output, m=12)
    X[X < 0.3] = 0.0  # mostly zeros
    fits = {}
    for name, data in (("dense", (X, Y)), ("sparse", (scipy.sparse.csr_matrix(X), Y)),
                       ("chunks", ([(X[:6], Y[:6]), (X[6:], Y[6:])], None))):
        copy = net.copy()
        copy.fit(*data, loss=loss, optimizer=fastbp.SGD(lr=0.05, momentum=0.5), epochs=2,
                 batch_size=3, shuffle=False, n_threads=1)
        fits[name] = copy.params
    assert_close(fits["sparse"], fits["dense"])
    assert_close(fits["chunks"], fits["dense"])
    if isinstance(loss, Loss):  # the parameter took part: the default one trains elsewhere
        default = net.copy()
        default.fit(X, Y, loss=loss.name, optimizer=fastbp.SGD(lr=0.05, momentum=0.5),
                    epochs=2, batch_size=3, shuffle=False, n_threads=1)
        assert np.abs(default.params - fits["dense"]).max() > 1e-6


def test_the_validation_loss_uses_the_parameter(rng):
    net, X, Y = problem(rng, None, "softmax", m=20)
    loss = CrossEntropyLoss(label_smoothing=0.2)
    history = net.fit(X[:14], Y[:14], loss=loss, epochs=2, validation_data=(X[14:], Y[14:]))
    assert history["val_loss"][-1] == net.loss(X[14:], Y[14:], loss=loss)
    assert history["val_loss"][-1] != net.loss(X[14:], Y[14:])
