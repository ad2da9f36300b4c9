"""Backpropagation as in the lecture notes, per neuron, in plain Python.

This is the code to read first. It is slow on purpose: every sum is written
out per neuron, so each line can be matched with an equation of the notes.
The compiled kernels of fastbp are tested against it. It holds the forward
pass, the losses, the error terms δ, the gradients and SGD training.

Notation, for layer l (inputs are layer 0)::

    a_j = Σ_i w_ij · z_i + b_j        pre-activation of neuron j
    z_j = f(a_j)                      its output
    δ_j = ∂J/∂a_j                     its error term
    δ_i = f'(a_i) · Σ_j w_ij · δ_j    backpropagation to the layer below
    ∂J/∂w_ij = z_i · δ_j,  ∂J/∂b_j = δ_j   (summed over the batch)

``weights[l][i][j]`` connects neuron i of layer l to neuron j of layer l+1,
the same layout as ``fastbp.Network.weights``. ``activations[l]`` names the
activation of layer l+1 (the last one is the output activation).
Matrices are lists of rows; a batch ``X`` is a list of samples.

:mod:`fastbp.reference.graph` derives the same gradients a second way, by
reverse mode on a graph of scalar operations. Neither module imports the
other, so each checks the other.
"""
import math

# ---------------------------------------------------------------------------
# Activations f and their derivatives f', written through the output z = f(a)
# (or through a, for the few whose z does not tell a): a row per name in each
# table. Each activation is one entry of reference/activations.py, which fills
# these tables (and the graph's op for it) when the package loads. The compiled
# kernels have a row of their own per name, csrc/fastbp_activation_table.h;
# the tests check they all list the same names.
# ---------------------------------------------------------------------------


def sigmoid(a):
    """1 / (1 + e^-a), computed without overflow for any finite a."""
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


ACTIVATIONS = {}  # z_j = f(a_j), neuron by neuron
DERIVATIVES = {}  # f'(a) expressed through z = f(a), or through a (DERIVATIVES_OF_A)

#: the rows of DERIVATIVES written through a, not z, where one z comes from two
#: a with different slopes: GELU and SiLU dip below 0 and come back, softplus
#: steps down at PyTorch's threshold (log(1 + e^20) > 20 + 2e-9)
DERIVATIVES_OF_A = set()


def derivative(name, a, z):
    """f'(a) of an element-wise activation, from z = f(a) or, for a name in
    DERIVATIVES_OF_A, from a."""
    if name not in DERIVATIVES_OF_A:
        return DERIVATIVES[name](z)
    if a is None:
        raise ValueError(f"the derivative of {name} is written through a: pass it")
    return DERIVATIVES[name](a)


def softmax(a):
    """p_k = e^(a_k) / Σ_j e^(a_j), shifted by max(a) so nothing overflows."""
    top = max(a)
    exps = [math.exp(a_k - top) for a_k in a]
    total = sum(exps)
    return [e / total for e in exps]


LAYER_ACTIVATIONS = {}  # z = f(a) of a whole layer: an output only (no f' per neuron)


def log_sum_exp(a):
    """log Σ_j e^(a_j), stable."""
    top = max(a)
    return top + math.log(sum(math.exp(a_k - top) for a_k in a))


def softplus(a):
    """log(1 + e^a), stable."""
    return a + math.log1p(math.exp(-a)) if a > 0 else math.log1p(math.exp(a))


def activate(name, a):
    """Outputs z of one layer from its pre-activations a."""
    if name in LAYER_ACTIVATIONS:
        return LAYER_ACTIVATIONS[name](a)
    f = ACTIVATIONS[name]
    return [f(a_j) for a_j in a]


# ---------------------------------------------------------------------------
# Forward pass
# ---------------------------------------------------------------------------


def neuron_inputs(W, b, z_prev):
    """Pre-activations of one layer: a_j = Σ_i w_ij · z_i + b_j."""
    return [sum(W[i][j] * z_prev[i] for i in range(len(z_prev))) + b[j] for j in range(len(b))]


def forward(weights, biases, activations, x):
    """Forward pass of one sample.

    Returns
    -------
    a, z : lists over layers
        ``z[0]`` is the input x and ``a[0]`` is None; ``z[-1]`` is the output.
    """
    a, z = [None], [list(x)]
    for W, b, name in zip(weights, biases, activations):
        a_layer = neuron_inputs(W, b, z[-1])
        a.append(a_layer)
        z.append(activate(name, a_layer))
    return a, z


def predict(weights, biases, activations, X):
    """Network outputs for every sample of X."""
    return [forward(weights, biases, activations, x)[1][-1] for x in X]


# ---------------------------------------------------------------------------
# Losses: per sample, before the 1/m of the batch mean; a row per name in each
# table (the compiled kernels: csrc/fastbp_loss_table.h)
# ---------------------------------------------------------------------------


def cross_entropy(a, t):
    """−Σ_k t_k log softmax(a)_k = Σ_k t_k (log Σ_j e^(a_j) − a_k), stable."""
    lse = log_sum_exp(a)
    return sum(t_k * (lse - a_k) for a_k, t_k in zip(a, t))


SAMPLE_LOSSES = {  # the loss of one sample; y = f(a_out) is the output, t the target
    # ½ Σ_k (y_k − t_k)²
    "mse": lambda a_out, y, t: 0.5 * sum((y_k - t_k) ** 2 for y_k, t_k in zip(y, t)),
    # −Σ_k [t log y + (1−t) log(1−y)] = Σ_k softplus(a) − t·a
    "bce": lambda a_out, y, t: sum(softplus(a_k) - t_k * a_k for a_k, t_k in zip(a_out, t)),
    "cross_entropy": lambda a_out, y, t: cross_entropy(a_out, t),
    # Σ_k t log(t/μ) − t + μ, the half Poisson deviance of the mean μ = e^a (0 log 0 = 0)
    "poisson": lambda a_out, y, t: sum((t_k * (math.log(t_k) - a_k) if t_k > 0 else 0.0)
                                       - t_k + math.exp(a_k) for a_k, t_k in zip(a_out, t)),
    # Σ_k h(y_k − t_k), h(r) = r²/2 for |r| < 1, else |r| − 1/2 (Huber, its default δ = 1)
    "huber": lambda a_out, y, t: sum(0.5 * (y_k - t_k) ** 2 if abs(y_k - t_k) < 1.0
                                     else abs(y_k - t_k) - 0.5 for y_k, t_k in zip(y, t)),
    # Σ_k |y_k − t_k|
    "absolute_error": lambda a_out, y, t: sum(abs(y_k - t_k) for y_k, t_k in zip(y, t)),
}

LOSS_OUTPUTS = {  # the output activation a loss's gradient below is written for (None: any)
    "mse": None,
    "bce": "sigmoid",
    "cross_entropy": "softmax",
    "poisson": "identity",  # the output y is the log of the mean μ
    "huber": "identity",
    "absolute_error": "identity",
}

LOSS_GRADIENTS = {  # ∂loss/∂a_out for an output of LOSS_OUTPUTS, else ∂loss/∂y
    "mse": lambda y, t: [y_k - t_k for y_k, t_k in zip(y, t)],
    "bce": lambda y, t: [y_k - t_k for y_k, t_k in zip(y, t)],  # σ's f' cancels
    "cross_entropy": lambda y, t: [y_k - t_k for y_k, t_k in zip(y, t)],  # with Σ t = 1
    "poisson": lambda y, t: [math.exp(y_k) - t_k for y_k, t_k in zip(y, t)],
    "huber": lambda y, t: [min(1.0, max(-1.0, y_k - t_k)) for y_k, t_k in zip(y, t)],
    # the subgradient 0 where y = t
    "absolute_error": lambda y, t: [(y_k > t_k) - (y_k < t_k) for y_k, t_k in zip(y, t)],
}


def sample_loss(loss, a_out, y, t):
    """The loss of one sample; y = f(a_out) is the output, t the target."""
    if loss not in SAMPLE_LOSSES:
        raise ValueError(f"unknown loss {loss!r}")
    return SAMPLE_LOSSES[loss](a_out, y, t)


def output_delta(loss, output_activation, y, t, m, a=None):
    """δ_out = ∂J/∂a_out for one sample of a batch of m; ``a`` (a_out) is
    needed only for an output in DERIVATIVES_OF_A."""
    g = [g_k / m for g_k in LOSS_GRADIENTS[loss](y, t)]
    if LOSS_OUTPUTS[loss] is not None:  # written for its output: already ∂J/∂a_out
        return g
    # ∂J/∂y_k, then the chain rule through f
    if output_activation == "softmax":
        # ∂y_j/∂a_k = y_j (1[j = k] − y_k)
        n = len(y)
        return [sum(g[j] * y[j] * ((1.0 if j == k else 0.0) - y[k]) for j in range(n))
                for k in range(n)]
    a = [None] * len(y) if a is None else a
    return [g_k * derivative(output_activation, a_k, y_k) for g_k, a_k, y_k in zip(g, a, y)]


def l2_penalty(weights, l2, m):
    """λ/(2m) · Σ_l Σ_ij w_ij² (biases are not penalised)."""
    return l2 / (2 * m) * sum(w * w for W in weights for row in W for w in row)


def objective(weights, biases, activations, X, T, loss="mse", l2=0.0):
    """The objective J over the batch (X, T): mean sample loss + L2 penalty."""
    m = len(X)
    total = 0.0
    for x, t in zip(X, T):
        a, z = forward(weights, biases, activations, x)
        total += sample_loss(loss, a[-1], z[-1], t)
    return total / m + l2_penalty(weights, l2, m)


loss = objective  # the same name as fastbp.Network.loss


# ---------------------------------------------------------------------------
# Backpropagation
# ---------------------------------------------------------------------------


def zeros_like(matrix):
    """A matrix of zeros with the shape of ``matrix`` (a list of rows)."""
    return [[0.0] * len(row) for row in matrix]


def backprop(W, delta, z_below, activation, a_below=None):
    """δ of the layer below: δ_i = f'(a_i) · Σ_j w_ij · δ_j, f' taken from z_i
    (from a_i for an activation in DERIVATIVES_OF_A)."""
    a_below = [None] * len(z_below) if a_below is None else a_below
    return [derivative(activation, a_below[i], z_below[i])
            * sum(W[i][j] * delta[j] for j in range(len(delta)))
            for i in range(len(z_below))]


def layer_gradient(z_rows, delta_rows, W, l2, m):
    """∂J/∂w_ij = Σ_samples z_i · δ_j + (λ/m) · w_ij  and  ∂J/∂b_j = Σ_samples δ_j."""
    dW = [[l2 / m * w for w in row] for row in W]
    db = [0.0] * len(W[0])
    for z, delta in zip(z_rows, delta_rows):
        for i in range(len(z)):
            for j in range(len(delta)):
                dW[i][j] += z[i] * delta[j]
        for j in range(len(delta)):
            db[j] += delta[j]
    return dW, db


def gradients(weights, biases, activations, X, T, loss="mse", l2=0.0):
    """∂J/∂W and ∂J/∂b over the batch (X, T), by per-neuron backpropagation.

    Returns
    -------
    dW, db : lists shaped like weights and biases
    """
    m, L = len(X), len(weights)
    z_rows = [[] for _ in range(L)]      # z_rows[l]: the inputs of layer l, per sample
    delta_rows = [[] for _ in range(L)]  # delta_rows[l]: δ of the outputs of layer l
    for x, t in zip(X, T):
        a, z = forward(weights, biases, activations, x)
        delta = output_delta(loss, activations[-1], z[-1], t, m, a[-1])
        for l in range(L - 1, -1, -1):   # weights[l] joins z[l] to layer l+1
            z_rows[l].append(z[l])
            delta_rows[l].append(delta)
            if l > 0:
                delta = backprop(weights[l], delta, z[l], activations[l - 1], a[l])
    layers = [layer_gradient(z_rows[l], delta_rows[l], weights[l], l2, m) for l in range(L)]
    return [dW for dW, _ in layers], [db for _, db in layers]


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def sgd_step(weights, biases, dW, db, lr, momentum=0.0, nesterov=False, velocity=None):
    """One SGD step, in place. Returns the velocity to pass to the next step.

    plain: w ← w − lr·g;  momentum: v ← μv − lr·g, w ← w + v;
    Nesterov: v ← μv − lr·g, w ← w + μv − lr·g.
    """
    params = list(weights) + [[b] for b in biases]  # every parameter as a matrix
    grads = list(dW) + [[g] for g in db]
    if velocity is None:
        velocity = [zeros_like(P) for P in params]
    for P, G, V in zip(params, grads, velocity):
        for i in range(len(P)):
            for j in range(len(P[i])):
                step = lr * G[i][j]
                if momentum == 0:
                    P[i][j] -= step
                    continue
                V[i][j] = momentum * V[i][j] - step
                P[i][j] += (momentum * V[i][j] - step) if nesterov else V[i][j]
    return velocity


def fit(weights, biases, activations, X, T, loss="mse", lr=0.1, momentum=0.0,
        nesterov=False, epochs=1, batch_size=1, l2=0.0, orders=None):
    """Minibatch SGD over epochs, in place.

    ``orders[e]`` optionally gives the order of the rows in epoch e (default:
    in order). The last batch of an epoch may be smaller.

    Returns
    -------
    list of float
        Per epoch, the row-weighted mean of the batch objectives J, each taken
        before its update (as ``fastbp.Network.fit`` reports).
    """
    history, velocity = [], None
    n = len(X)
    for epoch in range(epochs):
        order = list(range(n)) if orders is None else list(orders[epoch])
        total = 0.0
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            X_batch, T_batch = [X[r] for r in rows], [T[r] for r in rows]
            total += len(rows) * objective(weights, biases, activations,
                                           X_batch, T_batch, loss, l2)
            dW, db = gradients(weights, biases, activations, X_batch, T_batch, loss, l2)
            velocity = sgd_step(weights, biases, dW, db, lr, momentum, nesterov, velocity)
        history.append(total / n)
    return history
