"""Backpropagation in plain Python (standard library only), read beside the lecture notes.

Two modules derive the same gradients in the two ways of the notes, sharing
no code, so each checks the other:

- :mod:`fastbp.reference.neuron`, the per-neuron equations: forward pass,
  losses, error terms δ, gradients and SGD. Read it first.
- :mod:`fastbp.reference.graph`, a scalar computational graph
  (:class:`Value`) and the network built on it: reverse mode finds the same
  gradients without naming a δ.

Each activation is one entry of :mod:`fastbp.reference.activations`: its f,
its hand-written f' for the per-neuron equations and its graph op, made of
Value's operations. That module fills the tables of both; neither imports it.

Both take the parameters as nested lists in the layout of
``fastbp.Network.weights`` and ``fastbp.Network.biases``;
:func:`gradients` and :func:`graph_gradients` return that layout too.
:func:`fastbp.gradcheck` compares both with the compiled kernels. Every
public name of the three modules is available from this package.
"""
from .activations import (
    ELEMENTWISE,
    LAYERWISE,
    Activation,
    elliot,
    gelu,
    gelu_derivative,
    graph_softsign,
)
from .graph import (
    GRAPH_ACTIVATIONS,
    GRAPH_LAYER_ACTIVATIONS,
    GRAPH_LOSSES,
    Value,
    graph_activate,
    graph_cross_entropy,
    graph_forward,
    graph_gradients,
    graph_log_sum_exp,
    graph_objective,
    graph_predict,
    graph_sample_loss,
    graph_sigmoid,
    graph_softmax,
    graph_softplus,
    topological_order,
)
from .neuron import (
    ACTIVATIONS,
    DERIVATIVES,
    DERIVATIVES_OF_A,
    LAYER_ACTIVATIONS,
    LOSS_GRADIENTS,
    LOSS_OUTPUTS,
    SAMPLE_LOSSES,
    activate,
    backprop,
    cross_entropy,
    derivative,
    fit,
    forward,
    gradients,
    l2_penalty,
    layer_gradient,
    log_sum_exp,
    loss,
    neuron_inputs,
    objective,
    output_delta,
    predict,
    sample_loss,
    sgd_step,
    sigmoid,
    softmax,
    softplus,
    zeros_like,
)

__all__ = [
    # neuron.py
    "ACTIVATIONS", "DERIVATIVES", "DERIVATIVES_OF_A", "LAYER_ACTIVATIONS", "LOSS_GRADIENTS",
    "LOSS_OUTPUTS", "SAMPLE_LOSSES", "activate", "backprop", "cross_entropy", "derivative",
    "fit", "forward", "gradients",
    "l2_penalty", "layer_gradient", "log_sum_exp", "loss", "neuron_inputs", "objective",
    "output_delta", "predict", "sample_loss", "sgd_step", "sigmoid", "softmax", "softplus",
    "zeros_like",
    # graph.py
    "GRAPH_ACTIVATIONS", "GRAPH_LAYER_ACTIVATIONS", "GRAPH_LOSSES", "Value", "graph_activate",
    "graph_cross_entropy", "graph_forward", "graph_gradients", "graph_log_sum_exp",
    "graph_objective", "graph_predict", "graph_sample_loss", "graph_sigmoid", "graph_softmax",
    "graph_softplus", "topological_order",
    # activations.py
    "ELEMENTWISE", "LAYERWISE", "Activation", "elliot", "gelu", "gelu_derivative",
    "graph_softsign",
]
