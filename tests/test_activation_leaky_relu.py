"""leaky_relu (slope 0.01) against PyTorch autograd in float64.

tests/test_tables.py runs its compiled row against its reference and graph
rows by itself; here the kernels meet an oracle written elsewhere.
"""
import numpy as np
import pytest
from helpers import assert_close, random_network, targets

import fastbp

torch = pytest.importorskip("torch")

OUTPUTS = {"identity": lambda a: a, "sigmoid": torch.sigmoid,
           "softmax": lambda a: torch.softmax(a, dim=1)}


def torch_forward(Ws, bs, X, output):
    z = X
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        a = z @ W + b
        z = (torch.nn.functional.leaky_relu(a, 0.01) if layer < len(Ws) - 1
             else OUTPUTS[output](a))
    return a, z


def torch_loss(a, z, T, loss):
    m = T.shape[0]
    if loss == "mse":
        return 0.5 * ((z - T) ** 2).sum() / m
    if loss == "bce":
        return torch.nn.functional.binary_cross_entropy_with_logits(a, T, reduction="sum") / m
    return -(T * torch.log_softmax(a, dim=1)).sum() / m


@pytest.mark.parametrize("loss,output", [("mse", "identity"), ("bce", "sigmoid"),
                                         ("cross_entropy", "softmax")])
def test_gradients_match_torch_autograd(rng, loss, output):
    net = random_network(rng, [5, 7, 6, 4], "leaky_relu", output)
    X, Y = rng.normal(size=(9, 5)) * 2, targets(rng, loss, 9, 4)
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    a, z = torch_forward(Ws, bs, torch.tensor(X), output)
    J = torch_loss(a, z, torch.tensor(Y), loss)
    J.backward()
    assert_close(net.loss(X, Y, loss=loss), J.item())
    assert_close(net.predict(X), z.detach().numpy())
    dW, db = net.gradients(X, Y, loss=loss)
    for got, want in zip(dW + db, Ws + bs):
        assert_close(got, want.grad.numpy())


@pytest.mark.parametrize("batch_size", [1, 4])
def test_sgd_fit_matches_torch(rng, batch_size):
    # batch 1 takes the fused per-sample path, batch 4 the minibatch one
    net = random_network(rng, [4, 6, 5, 2], "leaky_relu", "identity")
    X, Y = rng.normal(size=(12, 4)) * 2, rng.normal(size=(12, 2))
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    optimizer = torch.optim.SGD(Ws + bs, lr=0.05)
    for _ in range(3):
        for start in range(0, 12, batch_size):
            optimizer.zero_grad()
            rows = slice(start, start + batch_size)
            a, z = torch_forward(Ws, bs, torch.tensor(X[rows]), "identity")
            torch_loss(a, z, torch.tensor(Y[rows]), "mse").backward()
            optimizer.step()
    net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=0.05), epochs=3, batch_size=batch_size,
            shuffle=False)
    for got, want in zip(net.weights + net.biases, Ws + bs):
        assert_close(got, want.detach().numpy())


def test_the_onnx_graph_predicts_as_predict(rng):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    for dtype in (np.float64, np.float32):
        net = fastbp.Network([5, 7, 3], activation="leaky_relu", dtype=dtype, seed=1)
        X = (rng.normal(size=(11, 5)) * 3).astype(dtype)
        session = ort.InferenceSession(fastbp.to_onnx(net).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"X": X})
        # LeakyRelu's alpha is a float32 attribute: 0.01 to 2e-8 relative in float64
        assert_close(out, net.predict(X), rtol=1e-5 if dtype == np.float32 else 1e-7)
