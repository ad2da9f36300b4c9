"""Backpropagation derived a second way: a scalar computational graph.

The notes derive backpropagation a second time without any δ: write the loss
as a graph of tiny operations (+, ×, exp, ...), each of which knows its own
local derivative, and apply the chain rule backwards from the output, one
node at a time. That is reverse-mode automatic differentiation. A
:class:`Value` is one node of such a graph; the functions after it build a
network's objective J out of Values, and :func:`graph_gradients` reads
∂J/∂W and ∂J/∂b off the weights' nodes after ``J.backward()``.

A node used in several places (a weight used by every sample, a neuron's
output feeding the whole next layer) collects the gradient terms arriving
from each use into its ``.grad``; everything upstream then reuses that sum
instead of recomputing it per parameter. Those shared sums are exactly the δ
of the per-neuron equations in :mod:`fastbp.reference.neuron`, found here
without being named.

This module takes and returns the same list layout as
:mod:`fastbp.reference.neuron` but imports nothing from it, so the two
derivations check each other (:func:`fastbp.gradcheck` compares both with the
compiled kernels).
"""
import math


class Value:
    """A scalar in a computational graph, with a slot for ∂output/∂(this value).

    Each operation on Values returns a new Value that remembers its inputs
    (``parents``) and a small function that passes its gradient back to them:
    the local chain rule. :meth:`backward` runs those functions from the
    output back to the inputs.

    Parameters
    ----------
    data : float
        The value.

    Examples
    --------
    The notes' example f = (x + y)·z at x = −2, y = 5, z = −4:

    >>> x, y, z = Value(-2.0), Value(5.0), Value(-4.0)
    >>> q = x + y          # q = 3
    >>> f = q * z          # f = −12
    >>> f.backward()
    >>> f.data
    -12.0
    >>> x.grad, y.grad, z.grad   # ∂f/∂x = z, ∂f/∂y = z, ∂f/∂z = x + y
    (-4.0, -4.0, 3.0)
    """

    # __slots__ only saves memory: a network's graph has many thousands of nodes
    __slots__ = ("data", "grad", "parents", "backward_step")

    def __init__(self, data, parents=()):
        self.data = float(data)
        self.grad = 0.0
        self.parents = parents
        self.backward_step = None  # set by the operation that made this node

    def __repr__(self):
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    # -- the seven operations, each with its local derivative -----------------

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def backward_step():  # ∂(u + v)/∂u = 1, ∂(u + v)/∂v = 1
            self.grad += out.grad
            other.grad += out.grad
        out.backward_step = backward_step
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def backward_step():  # ∂(u·v)/∂u = v, ∂(u·v)/∂v = u
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out.backward_step = backward_step
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))

        def backward_step():  # ∂e^u/∂u = e^u
            self.grad += out.data * out.grad
        out.backward_step = backward_step
        return out

    def log(self):
        out = Value(math.log(self.data), (self,))

        def backward_step():  # ∂log(u)/∂u = 1/u
            self.grad += out.grad / self.data
        out.backward_step = backward_step
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,))

        def backward_step():  # ∂tanh(u)/∂u = 1 − tanh(u)²
            self.grad += (1.0 - out.data * out.data) * out.grad
        out.backward_step = backward_step
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,))

        def backward_step():  # ∂max(0, u)/∂u = 1 if u > 0 else 0
            self.grad += out.grad if self.data > 0 else 0.0
        out.backward_step = backward_step
        return out

    def erf(self):  # for GELU, which no combination of the others gives
        out = Value(math.erf(self.data), (self,))

        def backward_step():  # ∂erf(u)/∂u = 2/√π · e^(−u²)
            self.grad += 2.0 / math.sqrt(math.pi) * math.exp(-self.data * self.data) * out.grad
        out.backward_step = backward_step
        return out

    # -- shorthands, made of the operations above ----------------------------

    def __radd__(self, other):  # 2 + v
        return self + other

    def __rmul__(self, other):  # 2 · v
        return self * other

    def __neg__(self):  # −v = v · (−1)
        return self * -1.0

    def __sub__(self, other):  # u − v = u + (−v)
        return self + (-other)

    def __rsub__(self, other):  # 2 − v
        return (-self) + other

    # -- the backward pass ---------------------------------------------------

    def backward(self):
        """Fill ``.grad`` of every node this one depends on with ∂self/∂node.

        Walks the graph in reverse topological order: a node passes its
        gradient back only once every node that uses it has added its term.
        """
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0  # ∂self/∂self
        for node in reversed(order):
            if node.backward_step is not None:
                node.backward_step()


def topological_order(output):
    """All nodes ``output`` depends on, each listed after its parents.

    A depth-first search, written with an explicit stack instead of recursion:
    a graph over a batch is far deeper than Python's recursion limit.
    """
    order, seen = [], set()
    stack = [(output, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:           # all its parents are already in order
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node.parents)
    return order


# -- activations and losses as graphs of the seven operations ----------------


def graph_sigmoid(a):
    """σ(a) = 1/(1 + e^−a) = exp(−log(1 + e^−a)); for a < 0 the equal
    e^a/(1 + e^a) = exp(a − log(1 + e^a)), so no exp ever overflows."""
    if a.data >= 0:
        e = (-a).exp()                    # e^−a ≤ 1
        return (-(1 + e).log()).exp()     # 1/(1 + e^−a)
    e = a.exp()                           # e^a < 1
    return (a - (1 + e).log()).exp()      # e^a/(1 + e^a)


def graph_softplus(a):
    """log(1 + e^a); for a > 0 the equal a + log(1 + e^−a), which cannot overflow."""
    if a.data > 0:
        return a + (1 + (-a).exp()).log()  # a + log(1 + e^−a)
    return (1 + a.exp()).log()             # log(1 + e^a)


def graph_log_sum_exp(a):
    """log Σ_k e^(a_k), computed as top + log Σ_k e^(a_k − top).

    ``top`` = max(a) is a plain number, not a node: the result does not depend
    on it, so neither does its gradient.
    """
    top = max(a_k.data for a_k in a)
    return top + sum((a_k - top).exp() for a_k in a).log()


def graph_softmax(a):
    """p_k = exp(a_k − log Σ_j e^(a_j)) for a whole layer."""
    lse = graph_log_sum_exp(a)
    return [(a_k - lse).exp() for a_k in a]


def graph_cross_entropy(a, t):
    """Σ_k t_k·(log Σ_j e^(a_j) − a_k)."""
    lse = graph_log_sum_exp(a)
    return sum(t_k * (lse - a_k) for a_k, t_k in zip(a, t))


# A row per name in each table (the compiled kernels have their own rows,
# csrc/fastbp_activation_table.h and fastbp_loss_table.h; the tests check that
# all list the same names). Each activation is one entry of
# reference/activations.py, which fills the two activation tables with its op,
# made of Value's operations, when the package loads.

GRAPH_ACTIVATIONS = {}  # z_j = f(a_j) as a node, neuron by neuron
GRAPH_LAYER_ACTIVATIONS = {}  # z = f(a) of a whole layer, as nodes

GRAPH_LOSSES = {  # the loss of one sample as a node; y = f(a_out), t the target
    # ½ Σ_k (y_k − t_k)²
    "mse": lambda a_out, y, t: 0.5 * sum((y_k - t_k) * (y_k - t_k) for y_k, t_k in zip(y, t)),
    # Σ_k softplus(a_k) − t_k·a_k
    "bce": lambda a_out, y, t: sum(graph_softplus(a_k) - t_k * a_k
                                   for a_k, t_k in zip(a_out, t)),
    "cross_entropy": lambda a_out, y, t: graph_cross_entropy(a_out, t),
    # Σ_k e^(a_k) − t_k·a_k + t_k log t_k − t_k (the last two are constants; 0 log 0 = 0)
    "poisson": lambda a_out, y, t: sum(a_k.exp() - t_k * a_k
                                       + ((t_k * math.log(t_k)) if t_k > 0 else 0.0) - t_k
                                       for a_k, t_k in zip(a_out, t)),
    # Σ_k h(y_k − t_k), h(r) = r·r/2 for |r| < 1, else |r| − 1/2 (Huber, δ = 1)
    "huber": lambda a_out, y, t: sum(graph_huber(y_k - t_k) for y_k, t_k in zip(y, t)),
    # Σ_k |y_k − t_k|, |r| = relu(r) + relu(−r)
    "absolute_error": lambda a_out, y, t: sum(graph_abs(y_k - t_k) for y_k, t_k in zip(y, t)),
}


def graph_abs(r):
    """abs(r) as relu(r) + relu(−r): slope ±1, and 0 at r = 0."""
    return r.relu() + (-r).relu()


def graph_huber(r):
    """Huber's h(r) with δ = 1: r·r/2 inside (−1, 1), abs(r) − 1/2 outside."""
    return r * r * 0.5 if abs(r.data) < 1.0 else graph_abs(r) - 0.5


def graph_activate(name, a):
    """Outputs z of one layer, as nodes, from its pre-activation nodes a."""
    if name in GRAPH_LAYER_ACTIVATIONS:
        return GRAPH_LAYER_ACTIVATIONS[name](a)
    if name not in GRAPH_ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}")
    f = GRAPH_ACTIVATIONS[name]
    return [f(a_j) for a_j in a]


def graph_sample_loss(loss, a_out, y, t):
    """The loss of one sample as a node; y = f(a_out) is the output, t the target."""
    if loss not in GRAPH_LOSSES:
        raise ValueError(f"unknown loss {loss!r}")
    return GRAPH_LOSSES[loss](a_out, y, t)


# -- the network as one graph -------------------------------------------------


def graph_forward(W, b, activations, x):
    """Forward pass of one sample through Value weights W and biases b.

    Returns
    -------
    a_out, z_out : lists of Value
        Pre-activations and outputs of the last layer.
    """
    z = list(x)  # the inputs are plain numbers: no gradient is needed for them
    for W_l, b_l, name in zip(W, b, activations):
        # a_j = Σ_i w_ij · z_i + b_j
        a = [sum((W_l[i][j] * z[i] for i in range(len(z))), b_l[j]) for j in range(len(b_l))]
        z = graph_activate(name, a)
    return a, z


def graph_objective(W, b, activations, X, T, loss="mse", l2=0.0):
    """J over the batch (X, T) as one node: mean sample loss + λ/(2m)·Σ w²."""
    m = len(X)
    total = 0.0
    for x, t in zip(X, T):
        a_out, y = graph_forward(W, b, activations, x)
        total = total + graph_sample_loss(loss, a_out, y, t)
    J = total * (1.0 / m)
    if l2:
        J = J + (l2 / (2 * m)) * sum(w * w for W_l in W for row in W_l for w in row)
    return J


def graph_gradients(weights, biases, activations, X, T, loss="mse", l2=0.0):
    """∂J/∂W and ∂J/∂b over the batch (X, T), by reverse mode on the graph of J.

    Takes and returns the same list layout as :func:`gradients`.

    Returns
    -------
    dW, db : lists shaped like weights and biases
    """
    W = [[[Value(w) for w in row] for row in W_l] for W_l in weights]
    b = [[Value(v) for v in b_l] for b_l in biases]
    J = graph_objective(W, b, activations, X, T, loss, l2)
    J.backward()
    dW = [[[w.grad for w in row] for row in W_l] for W_l in W]
    db = [[v.grad for v in b_l] for b_l in b]
    return dW, db


def graph_predict(weights, biases, activations, X):
    """Network outputs for every sample of X, computed on the graph."""
    W = [[[Value(w) for w in row] for row in W_l] for W_l in weights]
    b = [[Value(v) for v in b_l] for b_l in biases]
    return [[y_k.data for y_k in graph_forward(W, b, activations, x)[1]] for x in X]
