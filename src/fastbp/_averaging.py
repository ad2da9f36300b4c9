"""The step rules of :meth:`fastbp.Network.fit` beside the optimiser:
``clip_norm`` and ``ema``, checked here; the kernels apply them around every
step whatever the optimiser (csrc/step_rules.pxi).

With ``ema`` the network holds the moving average of the weights
(:class:`WeightAverage`) while the kernels train the raw weights, privately,
from the first epoch to the last: validation, callbacks, early stopping and
the weights a fit ends with all see the average, as Keras's
``SwapEMAWeights`` shows it to them.
"""
from __future__ import annotations

import numpy as np

from ._runtime import aligned_empty
from ._validation import check_float


def check_clip_norm(clip_norm) -> float | None:
    """``fit``'s clip_norm: None, or a finite float > 0."""
    if clip_norm is None:
        return None
    return check_float(clip_norm, "clip_norm", minimum=0.0, strict=True)


def check_ema(ema) -> float | None:
    """``fit``'s ema: None, or a decay in (0, 1)."""
    if ema is None:
        return None
    return check_float(ema, "ema (the average's decay, e.g. 0.999)", minimum=0.0, strict=True,
                       maximum=1.0, strict_max=True)


class WeightAverage:
    """One fit's exponential moving average of the weights, and the raw
    weights it averages.

    The kernels train :attr:`raw` in place and, after each step, update
    :attr:`ema`: a copy of the weights after the first step, then
    ema ← decay·ema + (1 − decay)·W (``torch.optim.swa_utils.AveragedModel``
    with ``get_ema_multi_avg_fn(decay)``). Both live for the whole fit, over
    every kernel call and every buffer of chunks.

    Parameters
    ----------
    decay : float
        In (0, 1).

    Attributes
    ----------
    raw, ema : ndarray or None
        The raw weights and their average, the network's shape and dtype,
        from :meth:`live` on.
    steps : int
        Steps averaged so far, as of the last :meth:`took`.
    """

    def __init__(self, decay: float):
        self.decay = decay
        self.raw = self.ema = None
        self.steps = 0

    def live(self, network) -> np.ndarray:
        """The raw weights the kernels train: a private copy of the
        network's weights on the first call, the same array after."""
        if self.raw is None:
            params = network.params
            self.raw = aligned_empty(params.size, params.dtype)
            self.raw[...] = params
            self.ema = aligned_empty(params.size, params.dtype)
        return self.raw

    def configure(self, trainer) -> None:
        """Have a compiled trainer update :attr:`ema` after each step."""
        trainer.set_ema(self.ema, self.decay, self.steps)

    def took(self, trainer) -> None:
        """Count the steps the trainer averaged."""
        self.steps = trainer.ema_steps

    def weights(self) -> np.ndarray:
        """A copy of the weights to publish: the average (before any step,
        the raw weights)."""
        return (self.ema if self.steps else self.raw).copy()
