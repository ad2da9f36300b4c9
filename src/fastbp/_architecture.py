"""A network's architecture as :class:`fastbp.Network` takes it: the layer
widths and activation names checked, and the parameter count they give.

The activation tables stay with :mod:`fastbp.network`; they come in as
arguments, so this module imports nothing of fastbp but the checks.
"""
from __future__ import annotations

import functools

from ._validation import check_choice, check_float, check_int

#: the kernels keep per-layer offsets on the stack
MAX_LAYERS = 63
#: widths go to the kernels as C ints
MAX_WIDTH = 2**31 - 1


def n_params_of(sizes) -> int:
    """Weights and biases of a network of layer widths ``sizes``."""
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


@functools.lru_cache(maxsize=64)
def weight_count(sizes: tuple) -> int:
    """Weights (biases left out) of a network of layer widths ``sizes``, a
    tuple (the cache's key): counted once per architecture, as every fit asks."""
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def check_architecture(sizes, activation, output_activation, hidden_names,
                       output_names) -> tuple:
    """``(sizes, hidden activations)`` as tuples, checked.

    Parameters
    ----------
    sizes, activation, output_activation
        As :class:`fastbp.Network` takes them.
    hidden_names, output_names : collection of str
        The activations a hidden layer and the output layer may have.

    Raises
    ------
    TypeError, ValueError
        Naming the width, the count or the activation at fault.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a sequence of layer widths, got {sizes!r}")
    sizes = tuple(check_int(s, f"sizes[{i}]", 1, MAX_WIDTH) for i, s in enumerate(sizes))
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
    if len(sizes) - 1 > MAX_LAYERS:
        raise ValueError(f"at most {MAX_LAYERS} layers are supported, got {len(sizes) - 1}")
    n_hidden = len(sizes) - 2
    if isinstance(activation, str):
        hidden = (activation,) * n_hidden
        check_choice(activation, hidden_names, "hidden activation")
    else:
        hidden = tuple(activation)
        if len(hidden) != n_hidden:
            raise ValueError(
                f"activation lists {len(hidden)} names but the network has {n_hidden} hidden layers"
            )
        for name in hidden:
            check_choice(name, hidden_names, "hidden activation")
    check_choice(output_activation, output_names, "output activation")
    return sizes, hidden


def check_dropout(dropout, n_hidden: int):
    """Dropout rates as :class:`fastbp.Network` takes them: one per hidden
    layer as a tuple of floats in [0, 1), or None when every rate is 0.

    Parameters
    ----------
    dropout : float, sequence of float or None
        A rate for every hidden layer, or one rate per hidden layer.
    n_hidden : int
        The network's hidden layers.

    Raises
    ------
    TypeError, ValueError
        Naming the rate or the count at fault.
    """
    if dropout is None:
        return None
    if isinstance(dropout, (str, bytes)) or not hasattr(dropout, "__len__"):
        rates = (check_float(dropout, "dropout", minimum=0.0, maximum=1.0, strict_max=True),
                 ) * n_hidden
        if dropout and not n_hidden:
            raise ValueError("dropout acts on hidden layers, and the network has none")
    else:
        if len(dropout) != n_hidden:
            raise ValueError(f"dropout lists {len(dropout)} rates but the network has "
                             f"{n_hidden} hidden layers")
        rates = tuple(check_float(rate, f"dropout[{l}]", minimum=0.0, maximum=1.0,
                                  strict_max=True) for l, rate in enumerate(dropout))
    return rates if any(rates) else None
