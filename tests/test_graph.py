"""The computational-graph engine of fastbp.reference: the second, independent oracle."""
import doctest
import math
import random

import numpy as np
import pytest
from helpers import HIDDEN, LOSS_OUTPUTS, as_lists, assert_close, random_network, targets

import fastbp
from fastbp import reference
from fastbp.reference import Value


def test_notes_example_is_a_passing_doctest():
    # f = (x + y)·z at x = −2, y = 5, z = −4: ∂f/∂x = ∂f/∂y = −4, ∂f/∂z = 3
    result = doctest.testmod(reference.graph, verbose=False)
    assert result.attempted >= 4 and result.failed == 0
    x, y, z = Value(-2.0), Value(5.0), Value(-4.0)
    f = (x + y) * z
    f.backward()
    assert (f.data, x.grad, y.grad, z.grad) == (-12.0, -4.0, -4.0, 3.0)


@pytest.mark.parametrize("name,build,derivative", [
    ("exp", lambda u: u.exp(), math.exp),
    ("log", lambda u: u.log(), lambda u: 1 / u),
    ("tanh", lambda u: u.tanh(), lambda u: 1 - math.tanh(u) ** 2),
    ("relu", lambda u: u.relu(), lambda u: 1.0 if u > 0 else 0.0),
    ("square", lambda u: u * u, lambda u: 2 * u),
    ("affine", lambda u: 3 - 2 * u + 1, lambda u: -2.0),
])
@pytest.mark.parametrize("at", [0.3, 1.7, -0.8])
def test_each_operation_has_the_right_local_derivative(name, build, derivative, at):
    if name == "log":
        at = abs(at)  # log is defined for positive numbers only
    u = Value(at)
    out = build(u)
    out.backward()
    assert math.isclose(u.grad, derivative(at), rel_tol=1e-14, abs_tol=1e-15)


def test_a_node_used_twice_sums_its_gradient_terms():
    # g = u·u + u: both uses of u feed its gradient, 2u + 1
    u = Value(3.0)
    g = u * u + u
    g.backward()
    assert g.data == 12.0 and u.grad == 7.0


def test_backward_is_repeatable():
    # gradients are recomputed, not accumulated across calls
    u, v = Value(2.0), Value(5.0)
    f = (u * v).tanh()
    f.backward()
    first = (u.grad, v.grad)
    f.backward()
    assert (u.grad, v.grad) == first


def test_deep_graphs_need_no_recursion():
    # a chain far deeper than Python's recursion limit
    u = Value(1.0)
    total = u
    for _ in range(20000):
        total = total + u * 0.5
    total.backward()
    assert u.grad == 1 + 20000 * 0.5


def test_topological_order_lists_parents_first():
    x, y = Value(1.0), Value(2.0)
    q = x * y
    f = q + x
    order = reference.topological_order(f)
    position = {id(node): i for i, node in enumerate(order)}
    assert len(order) == 4
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]


def test_graph_activations_are_stable_at_extremes():
    for a in (-1e300, -800.0, 0.0, 800.0, 1e300):
        assert reference.graph_sigmoid(Value(a)).data == reference.sigmoid(a)
        assert math.isfinite(reference.graph_softplus(Value(a)).data)
    p = reference.graph_activate("softmax", [Value(1e300), Value(0.0)])
    assert [v.data for v in p] == [1.0, 0.0]


@pytest.mark.parametrize("sizes", [[3, 2], [4, 5, 3], [3, 4, 4, 2]])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss,output", LOSS_OUTPUTS)
def test_graph_equals_per_neuron_reference(rng, sizes, hidden, loss, output):
    net = random_network(rng, sizes, hidden, output)
    X = rng.normal(size=(4, sizes[0])).tolist()
    Y = targets(rng, loss, 4, sizes[-1]).tolist()
    W, b, acts = as_lists(net)
    dW, db = reference.graph_gradients(W, b, acts, X, Y, loss, l2=0.3)
    dW_ref, db_ref = reference.gradients(W, b, acts, X, Y, loss, l2=0.3)
    # two derivations sharing no code: float64 rounding only
    for got, want in zip(dW + db, dW_ref + db_ref):
        assert_close(got, want, rtol=1e-12)
    assert_close(reference.graph_predict(W, b, acts, X), reference.predict(W, b, acts, X),
                 rtol=1e-14)
    Wv = [[[Value(w) for w in row] for row in W_l] for W_l in W]
    bv = [[Value(v) for v in b_l] for b_l in b]
    J = reference.graph_objective(Wv, bv, acts, X, Y, loss, 0.3)
    assert math.isclose(J.data, reference.loss(W, b, acts, X, Y, loss, 0.3), rel_tol=1e-13)


def test_graph_gradients_match_finite_differences():
    rnd = random.Random(5)
    W = [[[rnd.uniform(-1, 1) for _ in range(3)] for _ in range(2)],
         [[rnd.uniform(-1, 1) for _ in range(2)] for _ in range(3)]]
    b = [[0.1, -0.2, 0.3], [0.05, -0.05]]
    acts = ["sigmoid", "softmax"]
    X = [[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]]
    T = [[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]]
    dW, db = reference.graph_gradients(W, b, acts, X, T, "cross_entropy", l2=0.1)
    eps = 1e-6
    for params, grads in ((W, dW), (b, db)):
        for P, G in zip(params, grads):
            rows, grad_rows = (P, G) if isinstance(P[0], list) else ([P], [G])
            for row, grad_row in zip(rows, grad_rows):
                for j, saved in enumerate(row):
                    row[j] = saved + eps
                    plus = reference.loss(W, b, acts, X, T, "cross_entropy", 0.1)
                    row[j] = saved - eps
                    minus = reference.loss(W, b, acts, X, T, "cross_entropy", 0.1)
                    row[j] = saved
                    assert math.isclose(grad_row[j], (plus - minus) / (2 * eps),
                                        rel_tol=1e-6, abs_tol=1e-9)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss,output", [("mse", "tanh"), ("bce", "sigmoid"),
                                         ("cross_entropy", "softmax")])
def test_gradcheck_compares_four_ways(rng, dtype, loss, output):
    net = random_network(rng, [4, 6, 5, 3], ["relu", "sigmoid"], output, dtype=dtype)
    X = rng.normal(size=(5, 4))
    Y = targets(rng, loss, 5, 3)
    result = fastbp.gradcheck(net, X, Y, loss=loss, l2=0.2)
    assert result._fields == ("reference", "finite_differences", "graph", "reference_vs_graph")
    assert result.reference_vs_graph < 1e-13  # both oracles are float64 whatever the net
    if dtype == "float64":
        assert max(result.reference, result.graph) < 1e-12
        assert result.finite_differences < 1e-6
    else:
        assert max(result.reference, result.graph) < 1e-5
        assert result.finite_differences < 1e-3


@pytest.mark.parametrize("output,expected", [("softmax", "cross_entropy"), ("tanh", "mse"),
                                             ("sigmoid", "mse")])
def test_gradcheck_checks_the_loss_fit_would_train_on_by_default(rng, monkeypatch, output,
                                                                 expected):
    net = random_network(rng, [3, 4, 3], "tanh", output)
    X, Y = rng.normal(size=(4, 3)), np.eye(3)[[0, 2, 1, 0]]
    seen = []
    real = fastbp.Network.gradients

    def recording(self, X, Y, loss=None, **kwargs):
        seen.append(loss)
        return real(self, X, Y, loss=loss, **kwargs)

    monkeypatch.setattr(fastbp.Network, "gradients", recording)
    assert fastbp.gradcheck(net, X, Y).failed == []
    assert seen == [expected]


def test_gradcheck_graph_oracle_catches_a_wrong_gradient(rng, monkeypatch):
    net = random_network(rng, [3, 4, 2], "tanh", "sigmoid")
    X, Y = rng.normal(size=(4, 3)), rng.uniform(size=(4, 2))
    assert fastbp.gradcheck(net, X, Y).graph < 1e-12
    real = fastbp.Network.gradients

    def wrong_bias_gradient(self, *args, **kwargs):
        dW, db = real(self, *args, **kwargs)
        return dW, [b + 1e-3 for b in db]

    monkeypatch.setattr(fastbp.Network, "gradients", wrong_bias_gradient)
    result = fastbp.gradcheck(net, X, Y)
    assert result.graph > 1e-4 and result.reference > 1e-4
    assert result.reference_vs_graph < 1e-13  # the oracles still agree with each other


def test_a_broken_oracle_is_exposed_by_the_other(rng, monkeypatch):
    # if the per-neuron reference had a wrong tanh derivative, the graph would disagree
    net = random_network(rng, [3, 4, 2], "tanh", "identity")
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    monkeypatch.setitem(reference.DERIVATIVES, "tanh", lambda z: 1.0 - z)
    result = fastbp.gradcheck(net, X, Y)
    assert result.reference_vs_graph > 1e-3 and result.graph < 1e-12


def test_graph_engine_is_standard_library_only_and_reads_like_the_notes():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(reference.graph))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    assert imported <= {"math"}
    # every operation of the list exists on Value
    for op in ("__add__", "__mul__", "exp", "log", "tanh", "relu", "backward"):
        assert callable(getattr(Value, op))
    # the graph code does not lean on the per-neuron derivation
    source = inspect.getsource(reference.graph)
    graph_source = source[source.index("class Value"):]
    for name in ("output_delta", "backprop(", "DERIVATIVES", "layer_gradient"):
        assert name not in graph_source


def test_graph_network_on_float32_weights_matches_the_compiled_float32(rng):
    net = random_network(rng, [5, 7, 3], "tanh", "softmax", dtype="float32")
    X = rng.normal(size=(6, 5)).astype(np.float32)
    Y = targets(rng, "cross_entropy", 6, 3, np.float32)
    W, b, acts = as_lists(net)
    dW, db = reference.graph_gradients(W, b, acts, X.astype(np.float64).tolist(),
                                       Y.astype(np.float64).tolist(), "cross_entropy")
    got_W, got_b = net.gradients(X, Y, loss="cross_entropy")
    for got, want in zip(got_W + got_b, dW + db):
        assert_close(got, want, np.float32)
