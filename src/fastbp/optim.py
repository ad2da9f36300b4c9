"""Optimisers and learning-rate schedules.

An optimiser holds its hyper-parameters, a schedule and, per network it
trains, its state (moment buffers, step count, current learning rate,
samples seen). That state persists between fits, so a second ``fit`` with
the same optimiser continues where the first stopped; :meth:`reset` forgets
it. The training loop asks the optimiser to configure the compiled trainer
(:meth:`configure`) and, after each epoch, for the next learning rate
(:meth:`epoch_ends`), as scikit-learn's ``_stochastic_optimizers`` do.

An optimiser is a subclass of :class:`Optimizer` here and a step of the
same name in the kernels (``csrc/optim_<name>.pxi``, which registers it):
the class names it in ``kernel_name`` and declares its hyper-parameters
(:meth:`Optimizer.hyper`), its buffers (``buffer_names``), their checks and
its docstring; the base class keeps the state and configures the trainer.
Every optimiser listed in ``__all__`` is also importable from fastbp itself.

Schedules give the learning rate after each epoch from the initial rate
``lr0``; :meth:`Schedule.on_plateau` says what to do when a stopping rule
sees no improvement (reduce the rate and go on, or stop).
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from ._validation import check_float, check_int

__all__ = [
    # the optimisers (fastbp itself exports every one listed here)
    "SGD", "Adam",
    # their base and state, and the schedules
    "Optimizer", "OptimizerState", "Schedule", "Constant", "InvScaling", "Adaptive",
    "StepDecay", "CosineDecay",
    # the full-batch optimiser, SciPy's L-BFGS-B (fastbp exports it too)
    "LBFGS",
]


# -- learning-rate schedules --------------------------------------------------

class Schedule:
    """Base of the learning-rate schedules: a constant rate.

    Subclasses override :meth:`lr_after_epoch` and, to act on plateaus,
    :meth:`on_plateau`.
    """

    def lr_after_epoch(self, lr0: float, lr: float, epochs: int, samples_seen: int) -> float:
        """The rate for the next epoch.

        Parameters
        ----------
        lr0 : float
            The optimiser's initial rate.
        lr : float
            The rate of the epoch that ended.
        epochs : int
            Epochs completed so far (over all fits with this optimiser).
        samples_seen : int
            Rows trained so far (scikit-learn's ``t_``).

        Returns
        -------
        float
        """
        return lr

    def on_plateau(self, lr: float):
        """The new rate when a stopping rule sees no improvement, or None to stop."""
        return None

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class Constant(Schedule):
    """The same rate every epoch (scikit-learn's ``learning_rate="constant"``)."""


class InvScaling(Schedule):
    """lr = lr0 / (t + 1) ** power_t after each epoch, t being the rows seen
    so far (scikit-learn's ``learning_rate="invscaling"``).

    Parameters
    ----------
    power_t : float, default=0.5
    """

    def __init__(self, power_t: float = 0.5):
        self.power_t = check_float(power_t, "power_t", minimum=0.0)

    def lr_after_epoch(self, lr0, lr, epochs, samples_seen):
        return lr0 / (samples_seen + 1) ** self.power_t


class Adaptive(Schedule):
    """Keep the rate while training improves; on a plateau divide it by
    ``factor``, and stop once it is at most ``min_lr`` (scikit-learn's
    ``learning_rate="adaptive"``: factor 5, min_lr 1e-6).

    Parameters
    ----------
    factor : float, default=5.0
    min_lr : float, default=1e-6
    """

    def __init__(self, factor: float = 5.0, min_lr: float = 1e-6):
        self.factor = check_float(factor, "factor", minimum=1.0, strict=True)
        self.min_lr = check_float(min_lr, "min_lr", minimum=0.0)

    def on_plateau(self, lr):
        return None if lr <= self.min_lr else lr / self.factor


class StepDecay(Schedule):
    """lr = lr0 · gamma ** (epochs // step_size), as PyTorch's ``StepLR``.

    Parameters
    ----------
    step_size : int
        Epochs between two decays.
    gamma : float, default=0.1
    """

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = check_int(step_size, "step_size", 1)
        self.gamma = check_float(gamma, "gamma", minimum=0.0, strict=True)

    def lr_after_epoch(self, lr0, lr, epochs, samples_seen):
        return lr0 * self.gamma ** (epochs // self.step_size)


class CosineDecay(Schedule):
    """Cosine annealing from lr0 to ``min_lr`` over ``epochs`` epochs, then
    ``min_lr``: lr = min_lr + (lr0 − min_lr)·(1 + cos(π·e/epochs))/2, as
    PyTorch's ``CosineAnnealingLR`` up to ``T_max`` (past it, PyTorch's rate
    rises again along the cosine; this one stays at ``min_lr``).

    Parameters
    ----------
    epochs : int
        Length of the decay (PyTorch's ``T_max``).
    min_lr : float, default=0.0
    """

    def __init__(self, epochs: int, min_lr: float = 0.0):
        self.epochs = check_int(epochs, "epochs", 1)
        self.min_lr = check_float(min_lr, "min_lr", minimum=0.0)

    def lr_after_epoch(self, lr0, lr, epochs, samples_seen):
        done = min(epochs, self.epochs)
        return self.min_lr + (lr0 - self.min_lr) * (1 + math.cos(math.pi * done / self.epochs)) / 2


_SCHEDULE_NAMES = {"constant": Constant, "invscaling": InvScaling, "adaptive": Adaptive}


def _check_schedule(schedule) -> Schedule:
    if schedule is None:
        return Constant()
    if isinstance(schedule, str) and schedule in _SCHEDULE_NAMES:
        return _SCHEDULE_NAMES[schedule]()
    if not isinstance(schedule, Schedule):
        raise TypeError("schedule must be a fastbp.optim.Schedule or one of "
                        f"{sorted(_SCHEDULE_NAMES)}, got {schedule!r}")
    return schedule


# -- optimisers -----------------------------------------------------------------

class OptimizerState:
    """What an optimiser keeps for one network between fits.

    Attributes
    ----------
    buffers : dict of str to ndarray
        Parameter-shaped arrays updated in place by the kernels (the
        velocity, or Adam's first and second moments).
    step_count : int
        Adam's update count (its bias corrections need it).
    lr : float
        The current learning rate.
    epochs, samples_seen : int
        Epochs and rows trained so far, for the schedules.
    """

    def __init__(self, buffers: dict, lr: float):
        self.buffers = buffers
        self.step_count = 0
        self.lr = lr
        self.epochs = 0
        self.samples_seen = 0

    def fits(self, params: np.ndarray) -> bool:
        """Whether the buffers match ``params`` in shape and dtype."""
        return self.fits_layout(params.shape, params.dtype)

    def fits_layout(self, shape: tuple, dtype) -> bool:
        """Whether the buffers are arrays of ``shape`` and ``dtype``."""
        for buffer in self.buffers.values():
            if buffer.shape != shape or buffer.dtype != dtype:
                return False
        return True


class Optimizer:
    """Base of the optimisers: per-network state and the schedule.

    A subclass sets ``kernel_name`` (the name its step registered in the
    kernels, ``fastbp._kernels.optimizer_kinds()``) and ``buffer_names``,
    and returns its hyper-parameters from :meth:`hyper`.
    """

    #: the name of its step in the kernels (csrc/optim_<name>.pxi)
    kernel_name: str = ""
    #: names of the parameter-shaped buffers the optimiser keeps
    buffer_names: tuple = ()

    def __init__(self, lr: float, schedule):
        self.lr = check_float(lr, "lr", minimum=0.0, strict=True)
        self.schedule = _check_schedule(schedule)
        self._states = weakref.WeakKeyDictionary()

    def state(self, network) -> OptimizerState:
        """The state kept for ``network``: zero buffers and the initial rate on first use."""
        # n_params and dtype: network.params would build a view each call
        state = self._states.get(network)
        if state is None or (state.buffers and not state.fits_layout((network.n_params,),
                                                                      network.dtype)):
            state = OptimizerState({}, self.lr)
            self._states[network] = state
        for name in self.buffer_names:
            if name not in state.buffers:
                state.buffers[name] = np.zeros(network.n_params, network.dtype)
        return state

    def adopt_state(self, network, state: OptimizerState) -> None:
        """Continue from ``state``, e.g. one kept by another optimiser of the
        same kind whose hyper-parameters were changed."""
        self._states[network] = state

    def reset(self) -> None:
        """Forget the state of every network."""
        self._states.clear()

    def hyper(self) -> dict:
        """The hyper-parameters its kernel step reads, by the names it
        registered there (``fastbp._kernels.optimizer_kinds()``); flags as
        bools. Those left out take the kernel's defaults."""
        return {}

    @property
    def plain(self) -> bool:
        """Whether each step is W ← W − lr·g with no state (plain SGD): the
        kernels fold such a step into the products, and take their fused
        path for ``batch_size=1``."""
        return False

    def configure(self, trainer, state: OptimizerState) -> None:
        """Hand this optimiser's step, hyper-parameters, buffers and step
        count to a compiled trainer (``fastbp._kernels.Trainer``)."""
        names = self.buffer_names
        buffers = {name: state.buffers[name] for name in names} if names else {}
        trainer.set_optimizer(self.kernel_name, state.lr, self.hyper(), buffers,
                              state.step_count)

    def epoch_ends(self, state: OptimizerState, rows: int) -> None:
        """Count an epoch of ``rows`` rows and move the rate along the schedule."""
        state.epochs += 1
        state.samples_seen += rows
        if type(self.schedule).lr_after_epoch is Schedule.lr_after_epoch:
            return  # a constant rate: skip the call (small fits feel every µs)
        state.lr = float(self.schedule.lr_after_epoch(self.lr, state.lr, state.epochs,
                                                      state.samples_seen))

    def epochs_end(self, state: OptimizerState, rows: int, count: int) -> None:
        """:meth:`epoch_ends` ``count`` times, at once for a constant rate."""
        if type(self.schedule).lr_after_epoch is Schedule.lr_after_epoch:
            state.epochs += count
            state.samples_seen += rows * count
            return
        for _ in range(count):
            self.epoch_ends(state, rows)

    def plateau(self, state: OptimizerState) -> bool:
        """A stopping rule saw no improvement: True to stop, False when the
        schedule lowered the rate instead."""
        lr = self.schedule.on_plateau(state.lr)
        if lr is None:
            return True
        state.lr = float(lr)
        return False

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._repr_fields)
        return f"{type(self).__name__}({fields})"


class SGD(Optimizer):
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
        Learning rate, > 0 (the initial one when a schedule changes it).
    momentum : float, default=0.0
        Momentum μ in [0, 1).
    nesterov : bool, default=False
        Use Nesterov's momentum; needs ``momentum > 0``.
    schedule : Schedule or {"constant", "invscaling", "adaptive"}, default=None
        How the rate changes after each epoch; None keeps it constant.

    Notes
    -----
    The velocity of each network trained with this optimiser is kept, so a
    second ``fit`` with the same optimiser continues where the first stopped.
    Call :meth:`reset` to forget it.
    """

    kernel_name = "sgd"
    _repr_fields = ("lr", "momentum", "nesterov")

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False,
                 schedule=None):
        super().__init__(lr, schedule)
        self.momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0,
                                    strict_max=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        # plain SGD keeps no velocity: its kernels never read one
        self.buffer_names = ("velocity",) if self.momentum != 0 else ()

    def __repr__(self) -> str:
        text = super().__repr__()
        if not isinstance(self.schedule, Constant):
            text = text[:-1] + f", schedule={self.schedule!r})"
        return text

    def velocity(self, network) -> np.ndarray:
        """The velocity vector kept for ``network`` (zeros on first use; an
        unused zero vector for plain SGD)."""
        state = self.state(network)
        if "velocity" not in state.buffers:
            return np.zeros_like(network.params)
        return state.buffers["velocity"]

    def hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    @property
    def plain(self):
        return self.momentum == 0


class LBFGS(Optimizer):
    """L-BFGS over all rows at once: SciPy's L-BFGS-B, the driver of the
    estimators' ``solver="lbfgs"``.

    In :meth:`fastbp.Network.fit`, an epoch is one L-BFGS iteration over
    every row (``epochs`` is scikit-learn's ``max_iter``), with J and its
    gradient from the compiled kernels; ``batch_size`` and ``shuffle`` do not
    apply. The history, validation, callbacks and early stopping run after
    each iteration; the fit ends early when L-BFGS converges. It is not a
    per-batch step, so it has no kernel of its own and keeps no state
    between fits: each fit starts a new run from the network's weights.

    Parameters
    ----------
    tol : float, default=1e-4
        Stop when the largest component of the gradient (projected, as
        SciPy's ``gtol``) is at most ``tol``; scikit-learn's ``tol``.
    max_fun : int, default=15000
        At most this many evaluations of J and its gradient (SciPy's
        ``maxfun``, scikit-learn's ``max_fun``); a line search takes one or
        more an iteration.

    Notes
    -----
    The names and defaults are those of ``MLPClassifier``/``MLPRegressor``
    with ``solver="lbfgs"``, and the run is theirs: the same network, rows,
    loss and ``l2=alpha`` give bit-identical weights. ``history["lr"]``
    holds 1.0, the first step each line search tries (as
    ``torch.optim.LBFGS``'s default ``lr``); ``history["loss"]`` is J after
    each iteration. Chunks (``Y=None``) are not supported: every iteration
    reads all rows, several times.

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); Y = X[:, :1] * X[:, 1:]
    >>> net = fastbp.Network([2, 8, 1], "tanh", "identity", seed=0)
    >>> history = net.fit(X, Y, optimizer=fastbp.LBFGS(), epochs=100)
    >>> history["loss"][-1] < 0.01 * history["loss"][0]
    True
    """

    _repr_fields = ("tol", "max_fun")

    def __init__(self, tol: float = 1e-4, max_fun: int = 15000):
        super().__init__(1.0, None)
        self.tol = check_float(tol, "tol", minimum=0.0)
        self.max_fun = check_int(max_fun, "max_fun", 1)

    def configure(self, trainer, state: OptimizerState) -> None:
        raise TypeError("LBFGS has no per-batch step: Network.fit runs it over all rows")


class Adam(Optimizer):
    """Adam (Kingma & Ba), in scikit-learn's or PyTorch's formulation.

    With g the gradient and t the step count (from 1)::

        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        lr_t = lr·√(1 − β2^t) / (1 − β1^t)
        W ← W − lr_t·m / (√v + ε)                  (scikit-learn)
        W ← W − lr_t·m / (√v + ε·√(1 − β2^t))      (PyTorch: ε added to √v̂)

    Parameters
    ----------
    lr : float, default=0.001
    beta1 : float, default=0.9
        In [0, 1).
    beta2 : float, default=0.999
        In [0, 1).
    epsilon : float, default=1e-8
        > 0.
    flavor : {"sklearn", "torch"}, default="sklearn"
        Where ε enters, as above. The two agree but for ε's weight.
    schedule : Schedule or {"constant", "invscaling", "adaptive"}, default=None

    Notes
    -----
    The moments and the step count persist between fits with the same
    optimiser (scikit-learn restarts Adam on a warm start; ``partial_fit``
    keeps it).
    """

    kernel_name = "adam"
    buffer_names = ("first_moment", "second_moment")
    _repr_fields = ("lr", "beta1", "beta2", "epsilon", "flavor")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, flavor: str = "sklearn", schedule=None):
        super().__init__(lr, schedule)
        self.beta1 = check_float(beta1, "beta1", minimum=0.0, maximum=1.0, strict_max=True)
        self.beta2 = check_float(beta2, "beta2", minimum=0.0, maximum=1.0, strict_max=True)
        self.epsilon = check_float(epsilon, "epsilon", minimum=0.0, strict=True)
        if flavor not in ("sklearn", "torch"):
            raise ValueError(f"flavor must be 'sklearn' or 'torch', got {flavor!r}")
        self.flavor = flavor

    def hyper(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon,
                "torch_epsilon": self.flavor == "torch"}
