"""Optimisers. Their state (velocities) lives here and persists between fits."""
from __future__ import annotations

import weakref

import numpy as np

from ._validation import check_float


class SGD:
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    With g the minibatch gradient, μ the momentum and v the velocity
    (zero at the start):

    - plain (μ = 0): W ← W − lr·g
    - momentum:       v ← μ·v − lr·g;  W ← W + v
    - Nesterov:       v ← μ·v − lr·g;  W ← W + μ·v − lr·g

    This is the formulation of scikit-learn's SGD solver; with a constant
    lr it takes the same steps as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float, default=0.1
        Learning rate, > 0.
    momentum : float, default=0.0
        Momentum μ in [0, 1).
    nesterov : bool, default=False
        Use Nesterov's momentum; needs ``momentum > 0``.

    Notes
    -----
    The velocity of each network trained with this optimiser is kept, so a
    second ``fit`` with the same optimiser continues where the first stopped.
    Call :meth:`reset` to forget it.
    """

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False):
        self.lr = check_float(lr, "lr", minimum=0.0, strict=True)
        self.momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0,
                                    strict_max=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self._velocity = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr!r}, momentum={self.momentum!r}, nesterov={self.nesterov!r})"

    def velocity(self, network) -> np.ndarray:
        """The velocity vector kept for ``network`` (zeros on first use)."""
        params = network._params
        v = self._velocity.get(network)
        if v is None or v.shape != params.shape or v.dtype != params.dtype:
            v = np.zeros_like(params)
            self._velocity[network] = v
        return v

    def reset(self) -> None:
        """Forget all velocities."""
        self._velocity.clear()
