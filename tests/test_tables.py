"""An activation or a loss is one row of one table (issue #27).

The compiled tables (csrc/fastbp_activation_table.h, fastbp_loss_table.h) are
the only list of codes; Python's name -> code maps are read from them. The
reference's rows (an activation's entry in activations.py fills neuron.py's
and graph.py's tables; a loss has a row in each) and the ONNX mapping are
written apart, so the reference stays an independent oracle: these tests
check that every one of them names exactly the compiled rows, and run every
row, so a row missing anywhere, or a new one, is caught without a new test.
"""
import numpy as np
import pytest
from helpers import assert_close

import fastbp
from fastbp import _kernels, onnx_export, reference
from fastbp.cli import model as cli_model, options as cli_options
from fastbp.losses import KERNEL_LOSSES, LOSS_FOR_OUTPUT, LOSSES, REQUIRED_OUTPUT
from fastbp.network import HIDDEN_ACTIVATIONS
from fastbp.reference import Value

DTYPES = [np.float64, np.float32]


def missing_rows() -> dict:
    """Per table, the compiled names it lacks or the names it has beyond them."""
    activations = dict(_kernels.activation_table())
    elementwise = {name for name, each_unit in activations.items() if each_unit}
    layerwise = set(activations) - elementwise
    losses = dict(_kernels.loss_table())
    tables = {
        "reference.ACTIVATIONS": (elementwise, reference.ACTIVATIONS),
        "reference.DERIVATIVES": (elementwise, reference.DERIVATIVES),
        "reference.LAYER_ACTIVATIONS": (layerwise, reference.LAYER_ACTIVATIONS),
        "reference.GRAPH_ACTIVATIONS": (elementwise, reference.GRAPH_ACTIVATIONS),
        "reference.GRAPH_LAYER_ACTIVATIONS": (layerwise, reference.GRAPH_LAYER_ACTIVATIONS),
        "onnx_export.ACTIVATION_NODES": (set(activations), onnx_export.ACTIVATION_NODES),
        "reference.SAMPLE_LOSSES": (set(losses), reference.SAMPLE_LOSSES),
        "reference.LOSS_GRADIENTS": (set(losses), reference.LOSS_GRADIENTS),
        "reference.LOSS_OUTPUTS": (set(losses), reference.LOSS_OUTPUTS),
        "reference.GRAPH_LOSSES": (set(losses), reference.GRAPH_LOSSES),
    }
    return {table: sorted(compiled ^ set(rows)) for table, (compiled, rows) in tables.items()
            if compiled != set(rows)}


def test_every_table_names_exactly_the_compiled_rows():
    assert len(_kernels.activation_table()) >= 5 and len(_kernels.loss_table()) >= 4
    assert missing_rows() == {}


def test_a_row_missing_from_one_table_is_named(monkeypatch):
    monkeypatch.delitem(reference.GRAPH_ACTIVATIONS, "relu")
    monkeypatch.delitem(onnx_export.ACTIVATION_NODES, "softmax")
    monkeypatch.setitem(reference.SAMPLE_LOSSES, "hinge", reference.SAMPLE_LOSSES["mse"])
    assert missing_rows() == {"reference.GRAPH_ACTIVATIONS": ["relu"],
                              "onnx_export.ACTIVATION_NODES": ["softmax"],
                              "reference.SAMPLE_LOSSES": ["hinge"]}


def test_the_kernels_and_the_reference_pair_each_loss_with_the_same_output():
    assert dict(_kernels.loss_table()) == reference.LOSS_OUTPUTS
    assert reference.LOSS_OUTPUTS == {"mse": None, "bce": "sigmoid",
                                      "cross_entropy": "softmax", "poisson": "identity",
                                      "huber": "identity", "absolute_error": "identity"}


def test_the_python_tables_are_read_from_the_compiled_table():
    activations = _kernels.activation_table()
    names = [name for name, _ in activations]
    # in code order: a name's code is its row's place
    assert list(fastbp.ACTIVATIONS.items()) == [(name, code) for code, name in enumerate(names)]
    # the same names as the reference, which is written apart from the kernels
    assert set(names) == set(reference.ACTIVATIONS) | set(reference.LAYER_ACTIVATIONS)
    assert HIDDEN_ACTIVATIONS == {name: fastbp.ACTIVATIONS[name]
                                  for name, each_unit in activations if each_unit}
    assert "softmax" not in HIDDEN_ACTIVATIONS and len(HIDDEN_ACTIVATIONS) == len(names) - 1
    losses = _kernels.loss_table()
    assert list(KERNEL_LOSSES.items()) == [(name, code) for code, (name, _) in enumerate(losses)]
    assert set(KERNEL_LOSSES) == set(reference.SAMPLE_LOSSES)
    assert LOSSES == {name: code for name, code in KERNEL_LOSSES.items() if name != "poisson"}
    assert fastbp.LOSSES is LOSSES


def test_the_loss_to_output_pairing_is_read_from_the_compiled_table():
    paired = {name: output for name, output in _kernels.loss_table() if name in LOSSES}
    assert REQUIRED_OUTPUT == paired
    assert LOSS_FOR_OUTPUT == {"sigmoid": "bce", "softmax": "cross_entropy"}
    assert cli_model.OUTPUT_FOR_LOSS == {"bce": "sigmoid", "cross_entropy": "softmax",
                                         "huber": "identity", "absolute_error": "identity"}
    assert cli_options.LOSS_NAMES == tuple(LOSSES)
    assert cli_options.HIDDEN_ACTIVATIONS == tuple(HIDDEN_ACTIVATIONS)


def test_the_trainer_takes_every_row_and_nothing_past_the_last():
    sizes = np.array([3, 2], np.intc)
    n_activations, n_losses = len(_kernels.activation_table()), len(_kernels.loss_table())
    for code in range(n_activations):
        for loss in range(n_losses):
            _kernels.Trainer(sizes, np.array([code], np.intc), loss, 0.0, 1)
    for code in (-1, n_activations):
        with pytest.raises(ValueError, match="unknown activation code"):
            _kernels.Trainer(sizes, np.array([code], np.intc), 0, 0.0, 1)
    for loss in (-1, n_losses):
        with pytest.raises(ValueError, match=f"unknown loss code {loss}"):
            _kernels.Trainer(sizes, np.array([0], np.intc), loss, 0.0, 1)


# -- every row runs: compiled against the reference against the graph ---------

ACTIVATION_NAMES = [name for name, _ in _kernels.activation_table()]
ELEMENTWISE = [name for name, each_unit in _kernels.activation_table() if each_unit]
# every loss with its output, or with each output when it takes any
LOSS_CASES = [(loss, output) for loss, needed in _kernels.loss_table()
              for output in ([needed] if needed else ACTIVATION_NAMES)]


def row_targets(rng, loss, m, n):
    if loss == "cross_entropy":
        return np.eye(n)[rng.integers(0, n, m)]
    if loss == "bce":
        return rng.uniform(0, 1, (m, n))
    if loss == "poisson":
        return rng.poisson(2.0, (m, n)).astype(np.float64)
    return rng.normal(size=(m, n))


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_each_activation_row_agrees_with_its_reference_and_graph_rows(rng, name):
    a = rng.normal(size=(4, 5)) * 3
    z = np.empty_like(a)
    _kernels.activate(a, z, fastbp.ACTIVATIONS[name])
    by_neuron = [reference.activate(name, row) for row in a.tolist()]
    by_graph = [[v.data for v in reference.graph_activate(name, [Value(x) for x in row])]
                for row in a.tolist()]
    assert_close(z, by_neuron)
    assert_close(by_graph, by_neuron)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_each_hidden_activation_gets_the_same_gradients_from_both_derivations(rng, name):
    sizes = [3, 4, 2]
    weights = [rng.normal(size=(i, o)).tolist() for i, o in zip(sizes, sizes[1:])]
    biases = [rng.normal(size=o).tolist() for o in sizes[1:]]
    X, T = rng.normal(size=(5, 3)).tolist(), rng.normal(size=(5, 2)).tolist()
    acts = [name, "identity"]
    by_neuron = reference.gradients(weights, biases, acts, X, T, "mse")
    by_graph = reference.graph_gradients(weights, biases, acts, X, T, "mse")
    for neuron_part, graph_part in zip(by_neuron, by_graph):
        for N, G in zip(neuron_part, graph_part):
            assert_close(G, N)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,output", LOSS_CASES)
def test_each_loss_row_agrees_with_its_reference_and_graph_rows(rng, dtype, loss, output):
    m, n = 7, 3
    a = (rng.normal(size=(m, n)) * 2).astype(dtype)
    z = np.empty_like(a)
    _kernels.activate(a, z, fastbp.ACTIVATIONS[output])
    T = row_targets(rng, loss, m, n).astype(dtype)
    delta = np.empty_like(a)
    J = _kernels.loss_output_delta(a, z, T, delta, KERNEL_LOSSES[loss], fastbp.ACTIVATIONS[output])
    rows = list(zip(a.tolist(), [reference.activate(output, r) for r in a.tolist()], T.tolist()))
    J_neuron = sum(reference.sample_loss(loss, *row) for row in rows) / m
    delta_neuron = [reference.output_delta(loss, output, y, t, m, a_row) for a_row, y, t in rows]
    assert_close(J, J_neuron, dtype)
    assert_close(delta, delta_neuron, dtype)
    # the graph's loss, and its gradient by reverse mode, of the same rows
    J_graph, delta_graph = 0.0, []
    for a_row, _, t_row in rows:
        a_nodes = [Value(x) for x in a_row]
        node = reference.graph_sample_loss(loss, a_nodes, reference.graph_activate(output, a_nodes),
                                           t_row) * (1.0 / m)
        node.backward()
        J_graph += node.data
        delta_graph.append([x.grad for x in a_nodes])
    assert_close(J_graph, J_neuron)
    assert_close(delta_graph, delta_neuron)
