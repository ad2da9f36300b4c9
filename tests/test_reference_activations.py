"""An activation of the reference is one entry of reference/activations.py.

Its entry holds f, the hand-written f' and the graph op side by side and fills
the tables of both derivations; the derivations still check each other, since
neither module imports the entries and the graph op never calls the f'.
tests/test_tables.py runs every entry against the compiled rows.
"""
import ast
import inspect

import numpy as np
import pytest

from fastbp import reference
from fastbp.reference import activations, graph, neuron


def test_each_entry_fills_the_tables_of_both_derivations():
    for name, row in activations.ELEMENTWISE.items():
        assert reference.ACTIVATIONS[name] is row.f
        assert reference.DERIVATIVES[name] is row.derivative
        assert reference.GRAPH_ACTIVATIONS[name] is row.graph
    for name, row in activations.LAYERWISE.items():
        assert reference.LAYER_ACTIVATIONS[name] is row.f
        assert reference.GRAPH_LAYER_ACTIVATIONS[name] is row.graph
    elementwise, layerwise = set(activations.ELEMENTWISE), set(activations.LAYERWISE)
    assert set(reference.ACTIVATIONS) == set(reference.DERIVATIVES) == elementwise
    assert set(reference.GRAPH_ACTIVATIONS) == elementwise
    assert set(reference.LAYER_ACTIVATIONS) == set(reference.GRAPH_LAYER_ACTIVATIONS) == layerwise
    assert reference.DERIVATIVES_OF_A == {name for name, row in activations.ELEMENTWISE.items()
                                          if row.of_a}


def test_an_entry_gives_its_f_prime_one_way(monkeypatch):
    with pytest.raises(ValueError, match="through z or through a, not both"):
        activations.Activation(f=abs, graph=abs, of_z=abs, of_a=abs)
    monkeypatch.setitem(activations.ELEMENTWISE, "no_slope",
                        activations.Activation(f=abs, graph=abs))
    with pytest.raises(ValueError, match="no_slope needs its f'"):
        activations._fill_the_tables()
    assert "no_slope" not in reference.ACTIVATIONS


def test_neither_derivation_imports_the_entries_or_the_other():
    for module in (neuron, graph):
        tree = ast.parse(inspect.getsource(module))
        imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert [node for node in imports if isinstance(node, ast.ImportFrom)] == [], module
        assert {alias.name for node in imports for alias in node.names} == {"math"}, module


@pytest.mark.parametrize("name", sorted(activations.ELEMENTWISE))
def test_a_wrong_f_prime_in_any_entry_is_exposed_by_the_graph(rng, monkeypatch, name):
    # the graph op derives f' by itself: a wrong hand-written one moves the
    # per-neuron gradients only
    sizes = [3, 4, 2]
    weights = [rng.normal(size=(i, o)).tolist() for i, o in zip(sizes, sizes[1:])]
    biases = [rng.normal(size=o).tolist() for o in sizes[1:]]
    X, T = (rng.normal(size=(6, 3)) * 2).tolist(), rng.normal(size=(6, 2)).tolist()
    acts = [name, "identity"]
    by_graph = reference.graph_gradients(weights, biases, acts, X, T, "mse")
    right = reference.DERIVATIVES[name]
    monkeypatch.setitem(reference.DERIVATIVES, name, lambda x: 0.5 * right(x) + 0.25)
    assert reference.graph_gradients(weights, biases, acts, X, T, "mse") == by_graph
    by_neuron = reference.gradients(weights, biases, acts, X, T, "mse")
    first_layer = np.array(by_neuron[0][0]) - np.array(by_graph[0][0])
    assert np.max(np.abs(first_layer)) > 1e-3
