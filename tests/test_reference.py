"""The pure-Python reference checked on its own: finite differences, stability, no numpy."""
import ast
import importlib
import inspect
import math
import pkgutil
import random

import pytest

from fastbp import reference


def small_problem(seed, loss, output, hidden="tanh"):
    rnd = random.Random(seed)
    sizes = [3, 4, 2]
    weights = [[[rnd.uniform(-1, 1) for _ in range(b)] for _ in range(a)] for a, b in zip(sizes, sizes[1:])]
    biases = [[rnd.uniform(-0.5, 0.5) for _ in range(b)] for b in sizes[1:]]
    X = [[rnd.gauss(0, 1) for _ in range(3)] for _ in range(5)]
    if loss == "cross_entropy":
        T = [[1.0, 0.0] if rnd.random() < 0.5 else [0.0, 1.0] for _ in X]
    else:
        T = [[rnd.random() for _ in range(2)] for _ in X]
    return weights, biases, [hidden, output], X, T


@pytest.mark.parametrize("loss,output", [("mse", "sigmoid"), ("mse", "softmax"), ("mse", "relu"),
                                         ("bce", "sigmoid"), ("cross_entropy", "softmax")])
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "identity"])
def test_reference_gradients_match_its_own_finite_differences(loss, output, hidden):
    weights, biases, acts, X, T = small_problem(3, loss, output, hidden)
    dW, db = reference.gradients(weights, biases, acts, X, T, loss, l2=0.2)
    eps = 1e-6
    for params, grads in ((weights, dW), (biases, db)):
        for P, G in zip(params, grads):
            rows = P if isinstance(P[0], list) else [P]
            grad_rows = G if isinstance(G[0], list) else [G]
            for row, grad_row in zip(rows, grad_rows):
                for j in range(len(row)):
                    saved = row[j]
                    row[j] = saved + eps
                    plus = reference.loss(weights, biases, acts, X, T, loss, 0.2)
                    row[j] = saved - eps
                    minus = reference.loss(weights, biases, acts, X, T, loss, 0.2)
                    row[j] = saved
                    assert math.isclose(grad_row[j], (plus - minus) / (2 * eps), rel_tol=1e-5, abs_tol=1e-8)


def test_notes_formulas_on_a_hand_example():
    # one sigmoid neuron, w = 0.5, b = 0, x = 2, t = 1: y = σ(1)
    y = 1 / (1 + math.exp(-1.0))
    J = reference.loss([[[0.5]]], [[0.0]], ["sigmoid"], [[2.0]], [[1.0]], "mse")
    assert math.isclose(J, 0.5 * (y - 1) ** 2, rel_tol=1e-15)
    dW, db = reference.gradients([[[0.5]]], [[0.0]], ["sigmoid"], [[2.0]], [[1.0]], "mse")
    delta = (y - 1) * y * (1 - y)  # δ = (y − t) σ'(a)
    assert math.isclose(dW[0][0][0], 2.0 * delta, rel_tol=1e-15)  # ∂J/∂w = z δ
    assert math.isclose(db[0][0], delta, rel_tol=1e-15)


def test_stable_at_extremes():
    assert reference.sigmoid(1e300) == 1.0 and reference.sigmoid(-1e300) == 0.0
    assert reference.softmax([1e300, 0.0]) == [1.0, 0.0]
    assert math.isfinite(reference.sample_loss("bce", [1e300], [1.0], [0.0]))
    assert math.isfinite(reference.sample_loss("cross_entropy", [1e300, -1e300], [1.0, 0.0], [0.0, 1.0]))


def test_reference_uses_only_the_standard_library():
    # every module of the package; its modules importing each other (level 1) is no dependency
    modules = [reference] + [importlib.import_module(f"{reference.__name__}.{info.name}")
                             for info in pkgutil.iter_modules(reference.__path__)]
    assert len(modules) >= 3  # the package, neuron.py, graph.py
    for module in modules:
        tree = ast.parse(inspect.getsource(module))
        imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import)
                   or isinstance(node, ast.ImportFrom) and node.level != 1]
        imported = {alias.name.split(".")[0] for node in imports for alias in node.names}
        imported |= {node.module.split(".")[0] for node in imports
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert imported <= {"math"}, (module.__name__, imported)
