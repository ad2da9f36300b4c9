"""PyTorch autograd in float64 as a third, independent oracle (skipped without torch)."""
import numpy as np
import pytest
from helpers import HIDDEN, LOSS_OUTPUTS, assert_close, random_network, targets

torch = pytest.importorskip("torch")

TORCH_ACTS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
              "identity": lambda a: a, "softmax": lambda a: torch.softmax(a, dim=1)}


def torch_objective(net, X, Y, loss, l2):
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in net.biases]
    z = torch.tensor(X, dtype=torch.float64)
    T = torch.tensor(Y, dtype=torch.float64)
    names = list(net.activations) + [net.output_activation]
    for W, b, name in zip(Ws, bs, names):
        a = z @ W + b
        z = TORCH_ACTS[name](a)
    m = X.shape[0]
    if loss == "mse":
        J = 0.5 * ((z - T) ** 2).sum() / m
    elif loss == "bce":
        J = torch.nn.functional.binary_cross_entropy_with_logits(a, T, reduction="sum") / m
    else:
        J = -(T * torch.log_softmax(a, dim=1)).sum() / m
    J = J + l2 / (2 * m) * sum((W ** 2).sum() for W in Ws)
    J.backward()
    return J.item(), [W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss,output", LOSS_OUTPUTS)
@pytest.mark.parametrize("l2", [0.0, 0.4])
def test_gradients_match_torch_autograd(rng, hidden, loss, output, l2):
    net = random_network(rng, [5, 7, 6, 4], hidden, output)
    X = rng.normal(size=(8, 5))
    Y = targets(rng, loss, 8, 4)
    J_torch, dW_torch, db_torch = torch_objective(net, X, Y, loss, l2)
    assert_close(net.loss(X, Y, loss=loss, l2=l2), J_torch)
    dW, db = net.gradients(X, Y, loss=loss, l2=l2)
    for got, want in zip(dW + db, dW_torch + db_torch):
        assert_close(got, want)


def test_sgd_momentum_matches_torch(rng):
    net = random_network(rng, [4, 6, 3], "tanh", "identity")
    X, Y = rng.normal(size=(12, 4)), rng.normal(size=(12, 3))
    Ws = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in net.biases]
    opt = torch.optim.SGD(Ws + bs, lr=0.1, momentum=0.9, nesterov=True)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    for epoch in range(3):
        for start in range(0, 12, 4):
            opt.zero_grad()
            out = torch.tanh(Xt[start:start + 4] @ Ws[0] + bs[0]) @ Ws[1] + bs[1]
            (0.5 * ((out - Yt[start:start + 4]) ** 2).sum() / 4).backward()
            opt.step()
    import fastbp
    net.fit(X, Y, optimizer=fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True), epochs=3,
            batch_size=4, shuffle=False)
    # torch's velocity is ours divided by -lr: same steps, other rounding
    for got, want in zip(net.weights + net.biases, Ws + bs):
        assert_close(got, want.detach().numpy(), rtol=1e-11)
