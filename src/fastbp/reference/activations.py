"""The activations of the reference, one entry each: f, f' and the graph op.

An activation is one :class:`Activation` in ``ELEMENTWISE`` (or
``LAYERWISE``, for a whole-layer output such as softmax), holding what
both derivations need of it, side by side:

- its formula z = f(a), for :mod:`fastbp.reference.neuron`;
- its derivative f', written by hand through the output z (``of_z``) or,
  where one z comes from two a with different slopes, through a (``of_a``),
  for the per-neuron δ;
- its graph op (``graph``), made of :class:`~fastbp.reference.graph.Value`'s
  operations, so that reverse mode finds f' by itself: it never calls the
  hand-written one.

This module fills the tables each derivation reads (``ACTIVATIONS``,
``DERIVATIVES``, ``DERIVATIVES_OF_A`` and ``LAYER_ACTIVATIONS`` of
neuron.py; ``GRAPH_ACTIVATIONS`` and ``GRAPH_LAYER_ACTIVATIONS`` of
graph.py). Neither of those imports it or the other, and the graph never
sees a hand-written f', so the two derivations still check each other and,
together, the kernels (csrc/fastbp_activation_table.h has the compiled row
of each name; the tests check that every table lists the same names).
"""
import math

from . import graph, neuron
from .graph import graph_sigmoid, graph_softmax, graph_softplus
from .neuron import sigmoid, softmax, softplus


class Activation:
    """One activation: its f, its f' for the per-neuron equations and its graph op.

    Parameters
    ----------
    f : callable
        z = f(a) of one neuron (of a whole layer, for a ``LAYERWISE`` row).
    graph : callable
        The same f on a :class:`~fastbp.reference.graph.Value` (a list of them,
        for a layer), made of Value's operations.
    of_z, of_a : callable, optional
        f'(a), written through z = f(a) or through a: exactly one of them for
        an element-wise activation, neither for a layer's (an output only:
        its loss writes the output's δ).
    """

    __slots__ = ("f", "graph", "derivative", "of_a")

    def __init__(self, f, graph, of_z=None, of_a=None):
        if of_z is not None and of_a is not None:
            raise ValueError("f' is written through z or through a, not both")
        self.f, self.graph = f, graph
        self.derivative = of_a if of_a is not None else of_z
        self.of_a = of_a is not None


def gelu(a):
    """a·Φ(a), Φ the standard normal CDF (PyTorch's default, exact GELU):
    Φ(a) = ½(1 + erf(a/√2)) = ½ erfc(−a/√2), which keeps its digits for a ≪ 0."""
    return a * 0.5 * math.erfc(-a / math.sqrt(2.0))


def gelu_derivative(a):
    """GELU's f'(a) = Φ(a) + a·φ(a), φ(a) = e^(−a²/2)/√(2π) the normal density."""
    density = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    return 0.5 * math.erfc(-a / math.sqrt(2.0)) + a * density


def elliot(a):
    """FANN's FANN_ELLIOT at FANN's default steepness s = ½: ½·(s·a)/(1 + abs(s·a)) + ½.

    In (0, 1), with the sigmoid's slope ¼ at 0 (at s = ½, FANN_SIGMOID is
    :func:`~fastbp.reference.neuron.sigmoid`); FANN's derivative
    s/(2(1 + abs(s·a))²) = 1/(2 + abs(a))², which is (1 − abs(2z − 1))²/4 in z.
    """
    s = 0.5
    return 0.5 * (s * a) / (1.0 + abs(s * a)) + 0.5


def graph_softsign(a):
    """a/(1 + abs(a)) = a · exp(−log(1 + abs(a))); abs(a) is a or −a as a's
    sign says, so its slope ±1 follows from Value's ×."""
    size = a if a.data >= 0 else -a
    return a * (-(1 + size).log()).exp()


ELEMENTWISE = {  # z_j = f(a_j), neuron by neuron
    "identity": Activation(
        f=lambda a: a,
        of_z=lambda z: 1.0,
        graph=lambda a: a),
    "sigmoid": Activation(
        f=sigmoid,
        of_z=lambda z: z * (1.0 - z),
        graph=graph_sigmoid),
    "tanh": Activation(
        f=math.tanh,
        of_z=lambda z: 1.0 - z * z,
        graph=lambda a: a.tanh()),
    "relu": Activation(
        f=lambda a: a if a > 0 else 0.0,
        of_z=lambda z: 1.0 if z > 0 else 0.0,
        graph=lambda a: a.relu()),
    "leaky_relu": Activation(
        f=lambda a: a if a > 0 else 0.01 * a,
        of_z=lambda z: 1.0 if z > 0 else 0.01,
        graph=lambda a: a if a.data > 0 else a * 0.01),  # Value's ×: its slope follows
    "elu": Activation(  # α = 1
        f=lambda a: a if a > 0 else math.expm1(a),
        of_z=lambda z: 1.0 if z > 0 else z + 1.0,  # e^a = z + 1 where a ≤ 0
        graph=lambda a: a if a.data > 0 else a.exp() - 1),
    "gelu": Activation(
        f=gelu,
        of_a=gelu_derivative,
        # PyTorch's formula, a · ½(1 + erf(a/√2))
        graph=lambda a: a * 0.5 * (1 + (a * (1 / math.sqrt(2.0))).erf())),
    "silu": Activation(  # a·σ(a), "swish"
        f=lambda a: a * sigmoid(a),
        of_a=lambda a: sigmoid(a) * (1.0 + a * (1.0 - sigmoid(a))),
        graph=lambda a: a * graph_sigmoid(a)),
    "softplus": Activation(  # β = 1, PyTorch's threshold 20
        f=lambda a: a if a > 20 else softplus(a),
        of_a=lambda a: 1.0 if a > 20 else sigmoid(a),
        graph=lambda a: a if a.data > 20 else graph_softplus(a)),
    "softsign": Activation(
        f=lambda a: a / (1.0 + abs(a)),
        of_z=lambda z: (1.0 - abs(z)) ** 2,  # 1/(1 + |a|)²
        graph=graph_softsign),
    "elliot": Activation(  # FANN's FANN_ELLIOT at its default steepness s = ½
        f=elliot,
        of_z=lambda z: (1.0 - abs(2.0 * z - 1.0)) ** 2 / 4.0,  # 1/(2 + |a|)²
        graph=lambda a: 0.5 * graph_softsign(a * 0.5) + 0.5),  # ½·softsign(s·a) + ½
}

LAYERWISE = {  # z = f(a) of a whole layer: an output only (no f' per neuron)
    "softmax": Activation(f=softmax, graph=graph_softmax),
}


def _fill_the_tables():
    """Each entry's parts into the tables of the per-neuron equations and of the graph."""
    for name, row in ELEMENTWISE.items():
        if row.derivative is None:
            raise ValueError(f"the element-wise activation {name} needs its f' (of_z or of_a)")
        neuron.ACTIVATIONS[name] = row.f
        neuron.DERIVATIVES[name] = row.derivative
        if row.of_a:
            neuron.DERIVATIVES_OF_A.add(name)
        graph.GRAPH_ACTIVATIONS[name] = row.graph
    for name, row in LAYERWISE.items():
        neuron.LAYER_ACTIVATIONS[name] = row.f
        graph.GRAPH_LAYER_ACTIVATIONS[name] = row.graph


_fill_the_tables()
