"""The activations of issue #28 (leaky_relu, elu, gelu, silu, softplus,
softsign, elliot) against oracles written elsewhere: PyTorch's functions and
autograd in float64, FANN's definition of FANN_ELLIOT, onnxruntime.

tests/test_tables.py runs each compiled row against its reference and graph
rows; here the whole network (forward, loss gradients, fits on every path)
meets PyTorch, and the rows whose f' is written through a (the layer keeps its
pre-activation) are checked on every path that keeps it.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from helpers import assert_close, random_network, targets

import fastbp
from fastbp import _kernels, _runtime, reference

torch = pytest.importorskip("torch")
F = torch.nn.functional

NEW = ["leaky_relu", "elu", "gelu", "silu", "softplus", "softsign", "elliot"]


def fann_elliot(a):
    """FANN's FANN_ELLIOT, y = ((x s)/2) / (1 + |x s|) + 0.5, at its default steepness 0.5."""
    s = 0.5
    return (a * s / 2) / (1 + torch.abs(a * s)) + 0.5


TORCH = {
    "leaky_relu": lambda a: F.leaky_relu(a, 0.01),
    "elu": lambda a: F.elu(a, 1.0),
    "gelu": lambda a: F.gelu(a),  # the erf form, torch's default
    "silu": F.silu,
    "softplus": lambda a: F.softplus(a, beta=1.0, threshold=20.0),
    "softsign": F.softsign,
    "elliot": fann_elliot,
    "identity": lambda a: a,
    "sigmoid": torch.sigmoid,
    "softmax": lambda a: torch.softmax(a, dim=1),
}

# a's that reach each branch: 0, the softplus threshold 20 from both sides, far out
EDGES = [0.0, -0.0, 1e-8, -1e-8, 19.999, 20.0, 20.001, 25.0, -30.0, 40.0, -745.0, 700.0]


def preactivations(rng, dtype):
    a = np.concatenate([rng.normal(size=40) * 4, EDGES]).reshape(4, -1)
    return a.astype(dtype)


@pytest.mark.parametrize("name", NEW)
def test_values_match_torch(rng, name):
    a = preactivations(rng, np.float64)
    z = np.empty_like(a)
    _kernels.activate(a, z, fastbp.ACTIVATIONS[name])
    assert_close(z, TORCH[name](torch.tensor(a)).numpy())
    # elementwise too, not only against the array's largest value, where torch's
    # GELU, 1 + erf(a/√2), has lost digits to cancellation far below 0: the
    # reference's Φ is erfc's, as the kernel's
    exact = [reference.activate(name, row) for row in a.tolist()]
    # (FANN's Elliot formula cancels as z nears 0, the kernel's does not)
    np.testing.assert_allclose(z, exact, rtol=1e-13 if name == "elliot" else 1e-14,
                               atol=1e-300)
    # float32 layers: within float32 rounding of the float64 values
    a32 = a[np.abs(a) < 100].astype(np.float32).reshape(1, -1)
    z32 = np.empty_like(a32)
    _kernels.activate(a32, z32, fastbp.ACTIVATIONS[name])
    assert_close(z32, TORCH[name](torch.tensor(a32, dtype=torch.float64)).numpy(), np.float32)


@pytest.mark.parametrize("name", NEW)
def test_the_derivative_matches_torch_autograd(rng, name):
    a = preactivations(rng, np.float64)
    a = a[np.abs(a) < 100].reshape(1, -1)  # torch's e^a overflows beyond
    a_t = torch.tensor(a, requires_grad=True)
    TORCH[name](a_t).sum().backward()
    z, out = np.empty_like(a), np.empty_like(a)
    code = fastbp.ACTIVATIONS[name]
    _kernels.activate(a, z, code)
    _kernels.activation_derivative(z, out, code, a)
    # softplus's f' is 1 from a > 20 on, as torch's (at a = 20 it is s(20))
    np.testing.assert_allclose(out, a_t.grad.numpy(), rtol=1e-12, atol=1e-15)
    # and the reference's f', from z or a as its row says
    expected = [[reference.derivative(name, a_k, z_k) for a_k, z_k in zip(ra, rz)]
                for ra, rz in zip(a.tolist(), z.tolist())]
    assert_close(out, expected)


def test_the_rows_written_through_a_are_the_same_in_the_kernels_and_the_reference():
    assert _kernels.activations_of_a() == ["gelu", "silu", "softplus"]
    assert set(_kernels.activations_of_a()) == reference.DERIVATIVES_OF_A
    # a twin asked for such a row's f' without a refuses, rather than read z as a
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="gelu's f' needs a"):
        _kernels.activation_derivative(z, np.empty_like(z), fastbp.ACTIVATIONS["gelu"])
    with pytest.raises(ValueError, match="through a"):
        reference.derivative("silu", None, 0.5)


def test_a_layer_whose_f_prime_needs_a_keeps_it_in_training_but_not_in_predict():
    sizes = np.array([3, 4, 5, 6, 2], np.intc)
    acts = np.array([fastbp.ACTIVATIONS[n] for n in ("gelu", "tanh", "silu", "gelu")], np.intc)
    specs, _ = _kernels.layer_specs(sizes, acts)
    # z_1, a_1 | z_2 (a in place) | z_3, a_3 | z_4, a_out
    assert [(s["z"], s["a"]) for s in specs] == [(0, 4), (8, 8), (13, 19), (25, 27)]
    plain = np.array([fastbp.ACTIVATIONS["tanh"]] * 4, np.intc)
    widths = [_kernels.workspace_size(sizes, 8, 1, codes) for codes in (acts, plain)]
    assert widths[0] - widths[1] == 8 * (4 + 6)  # the two hidden a's kept, 8 rows each
    assert _kernels.workspace_size(sizes, 8, 1) == widths[1]
    assert (_kernels.pass_workspace_size(sizes, 8, acts) - _kernels.pass_workspace_size(sizes, 8)
            == 8 * (4 + 6))
    # the objective's entry points refuse a workspace sized without the kept a's
    net = fastbp.Network([3, 4, 5, 6, 2], activation=["gelu", "tanh", "silu"],
                         output_activation="gelu", seed=0)
    X, T = np.ones((8, 3)), np.zeros((8, 2))
    work = np.empty(_kernels.pass_workspace_size(net._sizes, 8))
    with pytest.raises(ValueError, match="work has .* scalars; 8 rows need"):
        _kernels.network_loss(X, T, net._params, net._sizes, net._acts, 0, 0.0, work,
                              np.empty_like(net._params))


def torch_forward(Ws, bs, X, hidden, output):
    z = X
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        a = z @ W + b
        z = TORCH[hidden](a) if layer < len(Ws) - 1 else TORCH[output](a)
    return a, z


def torch_loss(a, z, T, loss):
    m = T.shape[0]
    if loss == "mse":
        return 0.5 * ((z - T) ** 2).sum() / m
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(a, T, reduction="sum") / m
    return -(T * torch.log_softmax(a, dim=1)).sum() / m


CASES = [("mse", "identity"), ("bce", "sigmoid"), ("cross_entropy", "softmax")]


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("loss,output", CASES)
def test_loss_predict_and_gradients_match_torch_autograd(rng, name, loss, output):
    net = random_network(rng, [5, 7, 6, 4], name, output)
    X, Y = rng.normal(size=(9, 5)) * 2, targets(rng, loss, 9, 4)
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    a, z = torch_forward(Ws, bs, torch.tensor(X), name, output)
    J = torch_loss(a, z, torch.tensor(Y), loss)
    J.backward()
    assert_close(net.loss(X, Y, loss=loss), J.item())
    assert_close(net.predict(X), z.detach().numpy())
    dW, db = net.gradients(X, Y, loss=loss)
    for got, want in zip(dW + db, Ws + bs):
        assert_close(got, want.grad.numpy())
    # float32: the same network rounded, within float32's rounding
    net32 = fastbp.Network(net.sizes, activation=name, output_activation=output,
                           dtype="float32")
    net32.set_weights(net.weights, net.biases)
    Ws32 = [torch.tensor(W.astype(np.float32).astype(np.float64), requires_grad=True)
            for W in net.weights]
    bs32 = [torch.tensor(b.astype(np.float32).astype(np.float64), requires_grad=True)
            for b in net.biases]
    a, z = torch_forward(Ws32, bs32, torch.tensor(X.astype(np.float32).astype(np.float64)),
                         name, output)
    torch_loss(a, z, torch.tensor(Y), loss).backward()
    dW, db = net32.gradients(X.astype(np.float32), Y.astype(np.float32), loss=loss)
    for got, want in zip(dW + db, Ws32 + bs32):
        assert_close(got, want.grad.numpy(), np.float32, rtol=1e-4)


@pytest.mark.parametrize("name", NEW)
def test_as_the_output_with_mse_the_gradients_match_torch(rng, name):
    # the output delta goes through f' of a_out (written through a for gelu, silu)
    net = random_network(rng, [4, 5, 3], "tanh", name)
    X, Y = rng.normal(size=(7, 4)) * 2, rng.normal(size=(7, 3))
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    z = torch.tanh(torch.tensor(X) @ Ws[0] + bs[0])
    y = TORCH[name](z @ Ws[1] + bs[1])
    (0.5 * ((y - torch.tensor(Y)) ** 2).sum() / 7).backward()
    dW, db = net.gradients(X, Y, loss="mse")
    for got, want in zip(dW + db, Ws + bs):
        assert_close(got, want.grad.numpy())


@pytest.mark.parametrize("name", NEW)
def test_kernels_reference_and_graph_agree(rng, name):
    net = random_network(rng, [3, 5, 4, 2], [name, "gelu" if name != "gelu" else "silu"],
                         "identity")
    X, Y = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 2))
    result = fastbp.gradcheck(net, X, Y, loss="mse")
    assert result.failed == []
    assert max(result.reference, result.graph) < 1e-12 and result.reference_vs_graph < 1e-13
    net32 = random_network(rng, [3, 5, 4, 2], name, "identity", dtype="float32")
    assert fastbp.gradcheck(net32, X, Y, loss="mse").failed == []
    # the twins: a layer's delta through f' of its kept a, against the reference
    a = rng.normal(size=(5, 4)) * 3
    z = np.empty_like(a)
    _kernels.activate(a, z, fastbp.ACTIVATIONS[name])
    delta_next, W_next = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    delta = np.empty_like(a)
    _kernels.backprop_delta(delta_next, W_next, z, fastbp.ACTIVATIONS[name], delta, a)
    expected = [reference.backprop(W_next.tolist(), d, zr, name, ar)
                for d, zr, ar in zip(delta_next.tolist(), z.tolist(), a.tolist())]
    assert_close(delta, expected)


def sgd_in_torch(net, X, Y, name, batch_size, epochs, lr):
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    optimizer = torch.optim.SGD(Ws + bs, lr=lr)
    for _ in range(epochs):
        for start in range(0, X.shape[0], batch_size):
            optimizer.zero_grad()
            rows = slice(start, start + batch_size)
            a, z = torch_forward(Ws, bs, torch.tensor(X[rows]), name, "identity")
            torch_loss(a, z, torch.tensor(Y[rows]), "mse").backward()
            optimizer.step()
    return [W.detach().numpy() for W in Ws + bs]


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_sgd_fit_matches_torch_step_for_step(rng, name, batch_size):
    # batch 1 takes the fused per-sample path (fastbp_sample.h), batch 4 the minibatch one
    net = random_network(rng, [4, 6, 5, 2], name, "identity")
    X, Y = rng.normal(size=(12, 4)) * 2, rng.normal(size=(12, 2))
    want = sgd_in_torch(net, X, Y, name, batch_size, 3, 0.05)
    net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=0.05), epochs=3, batch_size=batch_size,
            shuffle=False)
    for got, expected in zip(net.weights + net.biases, want):
        assert_close(got, expected)


@pytest.fixture
def own_threads(monkeypatch):
    """Small fits run on fastbp's own threads too."""
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)


def fit_params(name, dtype, X, Y, n_threads, **kwargs):
    net = fastbp.Network([X.shape[1], 24, 16, 3], activation=name, output_activation="softmax",
                         dtype=dtype, seed=7)
    history = net.fit(X, Y, epochs=3, batch_size=kwargs.pop("batch_size", 20), seed=3,
                      n_threads=n_threads, optimizer=fastbp.Adam(lr=0.01), **kwargs)
    return net._params.copy(), history["loss"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NEW)
def test_fit_on_one_and_two_threads(rng, own_threads, name, dtype):
    X = rng.normal(size=(100, 10)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 100)]
    one, one_loss = fit_params(name, dtype, X, Y, 1)
    again, _ = fit_params(name, dtype, X, Y, 1)
    two, two_loss = fit_params(name, dtype, X, Y, 2)
    np.testing.assert_array_equal(again, one)  # reproducible to the bit
    assert np.all(np.isfinite(one)) and one_loss[-1] < one_loss[0]
    # two threads sum a batch's rows in two parts: equal to rounding, as for every
    # activation (tests/test_threads.py)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(two, one, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(two_loss, one_loss, rtol=rtol)


@pytest.mark.parametrize("name", ["gelu", "silu", "elu"])
def test_the_threads_column_split_keeps_a(rng, own_threads, name):
    # every layer of 4 columns a thread or more splits its columns: the
    # forward product writes a into the kept block, then z = f(a) beside it
    old = _kernels.set_column_split(0, 4)
    try:
        X = rng.normal(size=(64, 10))
        Y = np.eye(3)[rng.integers(0, 3, 64)]
        two, _ = fit_params(name, "float64", X, Y, 2, batch_size=32)
    finally:
        _kernels.set_column_split(*old)
    one, _ = fit_params(name, "float64", X, Y, 1, batch_size=32)
    np.testing.assert_allclose(two, one, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["gelu", "softplus"])
def test_sparse_X_and_chunks_train_as_dense_rows(rng, name):
    X = rng.normal(size=(60, 12)) * (rng.uniform(size=(60, 12)) < 0.3)
    Y = rng.normal(size=(60, 2))
    fits = {}
    for kind, data in (("dense", (X, Y)), ("sparse", (sp.csr_matrix(X), Y)),
                       ("chunks", ([(X[:25], Y[:25]), (X[25:], Y[25:])], None))):
        net = fastbp.Network([12, 8, 2], activation=name, output_activation="identity", seed=2)
        net.fit(*data, loss="mse", epochs=2, batch_size=5, shuffle=False,
                optimizer=fastbp.SGD(lr=0.05, momentum=0.9), n_threads=1)
        fits[kind] = net._params
    assert_close(fits["sparse"], fits["dense"])
    assert_close(fits["chunks"], fits["dense"])


@pytest.mark.parametrize("name", NEW)
def test_the_onnx_graph_predicts_as_predict(rng, name):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    for dtype in (np.float64, np.float32):
        net = fastbp.Network([5, 7, 3], activation=name, output_activation=name, dtype=dtype,
                             seed=1)
        X = (rng.normal(size=(11, 5)) * 3).astype(dtype)
        X[0, :] = 20.0  # past softplus's threshold
        session = ort.InferenceSession(fastbp.to_onnx(net).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"X": X})
        # LeakyRelu's alpha is a float32 attribute: 0.01 to 2e-8 relative in
        # float64; onnxruntime's Erf is float32's
        rtol = 1e-6 if name == "gelu" else 1e-12 if name != "leaky_relu" else 1e-7
        assert_close(out, net.predict(X), rtol=1e-5 if dtype == np.float32 else rtol)
