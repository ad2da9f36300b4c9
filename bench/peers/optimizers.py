"""The optimisers the benchmark runs besides plain SGD (``compare.py --optimizers``).

Each one is run by fastbp (its class of the same name), by PyTorch
(``torch.optim``'s class of the same name) and by NumPy, whose step here is
the yardstick of the same-work check, as NumPy's plain SGD is for SGD. All
three take the libraries' default hyper-parameters but the learning rate,
with PyTorch's semantics: Adam's ε is added to √v̂ (``fastbp.Adam(flavor="torch")``), and
AdamW decays the weights but not the biases (PyTorch's biases sit in a group
with ``weight_decay=0``, fastbp never decays them). The state (moments, step
count) starts afresh at each timed epoch, in every library.

Each optimiser's rate is a power-of-two fraction of the network's SGD rate,
so the wide networks, where SGD takes a quarter of the small ones' rate, get
a quarter too. Adaptive steps are about lr·sign(g) from the first step on,
whatever |g|; where float32 rounding flips the sign of a small gradient
component, two libraries' runs part by about 2·lr, so the rates are kept
small enough for the float32 check (1e-4 relative) to tell same work from
different work.

Plain SGD ("sgd") is not listed in :data:`RULES`: it keeps the benchmark's
original code path in every contender.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: the default selection: plain SGD, the benchmark's original contract
SGD = "sgd"


@dataclass(frozen=True)
class Rule:
    """One optimiser: its rate, its classes and their options, and its NumPy step.

    ``step(p, g, state, t, lr, decay)`` updates the parameter array ``p``
    in place from its gradient ``g``, with ``state`` a dict of this array's
    buffers, ``t`` the step count (from 1) and ``decay`` whether ``p``'s
    weight decay applies (weights, not biases).
    """

    #: the class's name in fastbp and in torch.optim alike
    class_name: str
    #: the rate as a fraction of the network's plain-SGD rate
    lr_fraction: float
    description: str
    step: object
    fastbp_options: dict = field(default_factory=dict)
    #: decoupled weight decay of the weights' group, for PyTorch
    weight_decay: float = 0.0
    #: why the optimiser does not run per-sample cases (batch 1), or None
    no_batch_1: str = None


def buffer(state, name, like, fill=0.0):
    """``state[name]``, made on first use: an array like ``like`` filled with ``fill``."""
    if name not in state:
        state[name] = np.full_like(like, fill)
    return state[name]


def adam_moments(g, state, beta1=0.9, beta2=0.999):
    """Update Adam's two moment buffers in place; return them."""
    m, v = buffer(state, "m", g), buffer(state, "v", g)
    m += (1.0 - beta1) * (g - m)  # torch's lerp_
    v *= beta2
    v += (1.0 - beta2) * g * g
    return m, v


def adam_step(p, g, state, t, lr, decay, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
    """torch.optim.Adam (AdamW with ``weight_decay`` on decayed arrays)."""
    if decay and weight_decay:
        p *= 1.0 - lr * weight_decay
    m, v = adam_moments(g, state, beta1, beta2)
    denominator = np.sqrt(v) / math.sqrt(1.0 - beta2**t) + eps
    p -= (lr / (1.0 - beta1**t)) * m / denominator


def adamw_step(p, g, state, t, lr, decay):
    """torch.optim.AdamW with its default decay, 0.01, on the weights."""
    adam_step(p, g, state, t, lr, decay, weight_decay=1e-2)


def nadam_step(p, g, state, t, lr, decay, beta1=0.9, beta2=0.999, eps=1e-8,
               momentum_decay=4e-3):
    """torch.optim.NAdam: μ_t, their running product and the two-term step."""
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    state["mu_product"] = mu_product = state.get("mu_product", 1.0) * mu
    m, v = adam_moments(g, state, beta1, beta2)
    denominator = np.sqrt(v / (1.0 - beta2**t)) + eps
    p -= (lr * (1.0 - mu) / (1.0 - mu_product)) * g / denominator
    p -= (lr * mu_next / (1.0 - mu_product * mu_next)) * m / denominator


def rmsprop_step(p, g, state, t, lr, decay, alpha=0.99, eps=1e-8):
    """torch.optim.RMSprop, neither centred nor with momentum (its defaults)."""
    s = buffer(state, "square_avg", g)
    s *= alpha
    s += (1.0 - alpha) * g * g
    p -= lr * g / (np.sqrt(s) + eps)


def adagrad_step(p, g, state, t, lr, decay, eps=1e-10):
    """torch.optim.Adagrad with its defaults (no lr_decay, accumulator from 0)."""
    total = buffer(state, "sum", g)
    total += g * g
    p -= lr * g / (np.sqrt(total) + eps)


def rprop_step(p, g, state, t, lr, decay, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    """torch.optim.Rprop (iRPROP−): per-parameter step sizes driven by signs."""
    kind = p.dtype.type  # the factors in the arrays' precision, as torch's
    previous = buffer(state, "prev", g)
    size = buffer(state, "step_size", g, lr)
    product = np.sign(g * previous)
    size *= np.where(product > 0, kind(etas[1]), np.where(product < 0, kind(etas[0]), kind(1)))
    np.clip(size, step_sizes[0], step_sizes[1], out=size)
    g = np.where(product < 0, kind(0), g)  # no move after a change of sign
    p -= np.sign(g) * size
    previous[...] = g


RULES = {
    "adam": Rule("Adam", 2.0**-8, "Adam, β = (0.9, 0.999), ε = 1e-8 added to √v̂", adam_step,
                 {"flavor": "torch"}),
    "adamw": Rule("AdamW", 2.0**-8, "AdamW, as Adam with decoupled decay 0.01 on the weights",
                  adamw_step, weight_decay=1e-2),
    "nadam": Rule("NAdam", 2.0**-8, "NAdam, β = (0.9, 0.999), ε = 1e-8, momentum decay 0.004",
                  nadam_step),
    "rmsprop": Rule("RMSprop", 2.0**-8, "RMSprop, α = 0.99, ε = 1e-8", rmsprop_step),
    "adagrad": Rule("Adagrad", 2.0**-8, "Adagrad, ε = 1e-10", adagrad_step),
    # Rprop's rate is its first step size, and a float32 sign flip of a gradient
    # component near zero parts two runs by about one step size: at 2^-8, 784-128-10
    # float32 (b=32, 4000 rows) missed 1e-4 (1.1e-4), at 2^-10 it passes (5e-5)
    "rprop": Rule("Rprop", 2.0**-10, "Rprop (iRPROP−), η = (0.5, 1.2), Δ in [1e-6, 50], "
                  "Δ₀ = lr", rprop_step,
                  # the sign of one row's gradient drives every step size
                  no_batch_1="Rprop on single rows grows its step sizes to Δmax within an "
                             "epoch: a chaotic run no check can compare"),
}
#: every name ``--optimizers`` takes, in run order
NAMES = (SGD,) + tuple(RULES)


def learning_rate(name, sgd_lr):
    """The rate optimiser ``name`` runs at on a network whose SGD rate is ``sgd_lr``."""
    return sgd_lr if name == SGD else RULES[name].lr_fraction * sgd_lr


def limitation(name, batch_size):
    """Why optimiser ``name`` does not run a case, or ``None``."""
    if name != SGD and batch_size == 1:
        return RULES[name].no_batch_1
    return None


def fastbp_optimizer(name, lr):
    """A fresh fastbp optimiser ``name`` (no state) at rate ``lr``."""
    import fastbp

    return getattr(fastbp, RULES[name].class_name)(lr=lr, **RULES[name].fastbp_options)


def torch_optimizer(name, lr, weights, biases):
    """A fresh ``torch.optim`` optimiser ``name`` over two groups: weights, then
    biases (which are never decayed)."""
    import torch

    groups = [{"params": list(weights)}, {"params": list(biases)}]
    if RULES[name].weight_decay:
        groups[0]["weight_decay"] = RULES[name].weight_decay
        groups[1]["weight_decay"] = 0.0
    return getattr(torch.optim, RULES[name].class_name)(groups, lr=lr)


class NumpyOptimizer:
    """Optimiser ``name`` in NumPy over a list of arrays, updated in place."""

    def __init__(self, name, lr):
        self.rule = RULES[name]
        self.lr = lr
        self.t = 0
        self.states = {}

    def step(self, parameters, gradients, decayed):
        """One step of every array ``parameters[i]`` with ``gradients[i]``;
        ``decayed[i]`` says whether weight decay applies to it."""
        self.t += 1
        for index, (p, g, decay) in enumerate(zip(parameters, gradients, decayed)):
            self.rule.step(p, g, self.states.setdefault(index, {}), self.t, self.lr, decay)
