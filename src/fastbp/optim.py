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
sees no improvement (reduce the rate and go on, or stop). They act per
epoch, never per batch: a kernel call trains whole epochs at one rate.
"""
from __future__ import annotations

import copy
import math
import weakref

import numpy as np

from ._runtime import aligned_empty
from ._validation import check_bool, check_choice, check_float, check_int

__all__ = [
    # the optimisers (fastbp itself exports every one listed here)
    "SGD", "Adam", "AdamW", "NAdam", "RMSprop", "Adagrad", "Rprop",
    # their base and state, and the schedules
    "Optimizer", "OptimizerState", "Schedule", "Constant", "InvScaling", "Adaptive",
    "StepDecay", "CosineDecay",
    "ExponentialDecay", "LinearWarmup", "OneCycle", "CosineWarmRestarts", "ReduceLROnPlateau",
    # the full-batch optimiser, SciPy's L-BFGS-B (fastbp exports it too)
    "LBFGS",
]


# -- learning-rate schedules --------------------------------------------------

class Schedule:
    """Base of the learning-rate schedules: a constant rate.

    Subclasses override :meth:`lr_after_epoch` and, to act on plateaus,
    :meth:`on_plateau`; one whose first epoch does not run at lr0 overrides
    :meth:`initial_lr`, and one that reads the history or keeps a state
    (:class:`ReduceLROnPlateau`) overrides :meth:`next_lr`.
    """

    def initial_lr(self, lr0: float) -> float:
        """The rate of the first epoch an optimiser trains a network with
        (lr0 unless the schedule warms up)."""
        return lr0

    def next_lr(self, lr0: float, lr: float, epochs: int, samples_seen: int, history,
                memo: dict) -> float:
        """The rate for the next epoch: what the optimiser asks after each one.

        By default :meth:`lr_after_epoch`, which sees neither ``history``
        nor ``memo``.

        Parameters
        ----------
        lr0, lr, epochs, samples_seen
            As in :meth:`lr_after_epoch`.
        history : dict
            The fit's history so far (see :meth:`fastbp.Network.fit`).
        memo : dict
            The schedule's state for this network, kept with the
            optimiser's (:attr:`OptimizerState.schedule_memo`) and saved in
            checkpoints: str keys, values that JSON writes (numbers, str,
            lists, dicts).

        Returns
        -------
        float
        """
        return self.lr_after_epoch(lr0, lr, epochs, samples_seen)

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

    @property
    def constant(self) -> bool:
        """Whether the rate never changes from epoch to epoch (neither
        :meth:`lr_after_epoch` nor :meth:`next_lr` is overridden): the
        training loop then runs many epochs in one kernel call."""
        kind = type(self)
        return kind.lr_after_epoch is Schedule.lr_after_epoch and kind.next_lr is Schedule.next_lr


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


class ExponentialDecay(Schedule):
    """lr ← lr·gamma after each epoch, as PyTorch's ``ExponentialLR``: the
    rate of epoch e (from 0) is lr0·gamma**e, up to rounding.

    Keras's ``ExponentialDecay(decay_rate, decay_steps)`` counts batches; its
    per-epoch equivalent is ``gamma = decay_rate ** (batches_per_epoch /
    decay_steps)`` (with ``staircase=False``).

    Parameters
    ----------
    gamma : float
        Factor per epoch, > 0.
    """

    def __init__(self, gamma: float):
        self.gamma = check_float(gamma, "gamma", minimum=0.0, strict=True)

    def lr_after_epoch(self, lr0, lr, epochs, samples_seen):
        # from the last rate, as ExponentialLR steps (its very roundings)
        return lr * self.gamma


class LinearWarmup(Schedule):
    """A linear warm-up over ``epochs`` epochs, then another schedule.

    Epoch e < ``epochs`` (from 0) runs at lr0·(f + (1 − f)·e/epochs), f
    being ``start_factor``; epoch ``epochs`` starts ``then`` afresh, as if
    it were the fit's first epoch (its :meth:`~Schedule.initial_lr`, its
    epochs and rows counted from there). This is PyTorch's
    ``SequentialLR([LinearLR(start_factor=f, total_iters=epochs), then],
    milestones=[epochs])`` stepped once an epoch, and Keras's
    ``warmup_steps`` counted in epochs; ``then=None`` keeps lr0 after the
    warm-up (``LinearLR`` alone).

    Parameters
    ----------
    epochs : int
        Length of the warm-up, >= 1.
    then : Schedule or None, default=None
        The schedule after it.
    start_factor : float or None, default=None
        The first epoch's share of lr0, in (0, 1]. None is 1/(epochs + 1):
        the rates climb lr0/(epochs + 1), 2·lr0/(epochs + 1), ..., and reach
        lr0 at epoch ``epochs`` with no epoch at rate 0.

    Notes
    -----
    On a plateau of the stopping rule ``then`` decides (without ``then``,
    the fit stops).
    """

    def __init__(self, epochs: int, then=None, start_factor: float | None = None):
        self.epochs = check_int(epochs, "epochs", 1)
        if then is not None and not isinstance(then, Schedule):
            raise TypeError(f"then must be a fastbp.optim.Schedule or None, got {then!r}")
        self.then = then
        if start_factor is None:
            start_factor = 1.0 / (self.epochs + 1)
        self.start_factor = check_float(start_factor, "start_factor", minimum=0.0,
                                        strict=True, maximum=1.0)

    def initial_lr(self, lr0):
        return lr0 * self.start_factor  # LinearLR's first rate

    def next_lr(self, lr0, lr, epochs, samples_seen, history, memo):
        if epochs < self.epochs:
            return lr0 * (self.start_factor
                          + (1.0 - self.start_factor) * epochs / self.epochs)
        then = self.then
        if then is None:
            return lr0
        if epochs == self.epochs:
            memo["warmup_samples"] = samples_seen
            memo["then"] = {}
            return then.initial_lr(lr0)
        return then.next_lr(lr0, lr, epochs - self.epochs,
                            samples_seen - memo["warmup_samples"], history, memo["then"])

    def on_plateau(self, lr):
        return None if self.then is None else self.then.on_plateau(lr)


class OneCycle(Schedule):
    """The 1cycle policy over ``epochs`` epochs, as PyTorch's ``OneCycleLR``
    with ``total_steps=epochs`` stepped once an epoch (fastbp's schedules act
    per epoch) and ``cycle_momentum=False``.

    The optimiser's lr is the peak (``max_lr``). The rate climbs from
    lr0/div_factor to lr0 over the first ``pct_start`` of the epochs, then
    falls to lr0/(div_factor·final_div_factor) at epoch ``epochs − 1``;
    later epochs keep that last rate. With ``three_phase`` it falls back to
    lr0/div_factor over as many epochs as it climbed, then to the minimum.

    Parameters
    ----------
    epochs : int
        Length of the cycle (PyTorch's ``total_steps``), >= 1.
    pct_start : float, default=0.3
        Share of the cycle spent climbing, in [0, 1].
    anneal_strategy : {"cos", "linear"}, default="cos"
    div_factor : float, default=25.0
    final_div_factor : float, default=1e4
    three_phase : bool, default=False

    Notes
    -----
    A phase that spans no epoch (pct_start·epochs = 1 makes the climb end
    at epoch 0) gives its start rate, where PyTorch divides by zero. The
    momentum is not cycled.
    """

    def __init__(self, epochs: int, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False):
        self.epochs = check_int(epochs, "epochs", 1)
        self.pct_start = check_float(pct_start, "pct_start", minimum=0.0, maximum=1.0)
        self.anneal_strategy = check_choice(anneal_strategy, ("cos", "linear"),
                                            "anneal_strategy")
        self.div_factor = check_float(div_factor, "div_factor", minimum=0.0, strict=True)
        self.final_div_factor = check_float(final_div_factor, "final_div_factor", minimum=0.0,
                                            strict=True)
        self.three_phase = check_bool(three_phase, "three_phase")

    def _lr_at(self, lr0: float, step: int) -> float:
        """OneCycleLR's rate at step ``step``, in its order of operations."""
        total, pct_start = self.epochs, self.pct_start
        start = lr0 / self.div_factor
        low = start / self.final_div_factor
        if self.three_phase:
            phases = ((float(pct_start * total) - 1, start, lr0),
                      (float(2 * pct_start * total) - 2, lr0, start),
                      (total - 1, start, low))
        else:
            phases = ((float(pct_start * total) - 1, start, lr0), (total - 1, lr0, low))
        step = min(step, total - 1)
        start_step = 0.0
        for i, (end_step, begin, end) in enumerate(phases):
            if step <= end_step or i == len(phases) - 1:
                span = end_step - start_step
                pct = (step - start_step) / span if span else 0.0
                if self.anneal_strategy == "cos":
                    return end + (begin - end) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (end - begin) * pct + begin
            start_step = end_step
        raise AssertionError("unreachable: the last phase takes every step")

    def initial_lr(self, lr0):
        return self._lr_at(lr0, 0)

    def lr_after_epoch(self, lr0, lr, epochs, samples_seen):
        return self._lr_at(lr0, epochs)


class CosineWarmRestarts(Schedule):
    """Cosine annealing restarted every cycle, as PyTorch's
    ``CosineAnnealingWarmRestarts`` stepped once an epoch.

    Cycle i lasts T_0·T_mult**i epochs; T_cur epochs into a cycle of T_i,
    lr = min_lr + (lr0 − min_lr)·(1 + cos(π·T_cur/T_i))/2.

    Parameters
    ----------
    T_0 : int
        Epochs of the first cycle, >= 1.
    T_mult : int, default=1
        Growth of each cycle over the one before, >= 1.
    min_lr : float, default=0.0
        The floor (PyTorch's ``eta_min``).
    """

    def __init__(self, T_0: int, T_mult: int = 1, min_lr: float = 0.0):
        self.T_0 = check_int(T_0, "T_0", 1)
        self.T_mult = check_int(T_mult, "T_mult", 1)
        self.min_lr = check_float(min_lr, "min_lr", minimum=0.0)

    def _lr_at(self, lr0: float, epoch: int) -> float:
        T_i = self.T_0
        if self.T_mult == 1:
            T_cur = epoch % T_i
        else:
            T_cur = epoch
            while T_cur >= T_i:  # cycles grow geometrically: few turns
                T_cur -= T_i
                T_i *= self.T_mult
        return self.min_lr + (lr0 - self.min_lr) * (1 + math.cos(math.pi * T_cur / T_i)) / 2

    def initial_lr(self, lr0):
        return self._lr_at(lr0, 0)

    def lr_after_epoch(self, lr0, lr, epochs, samples_seen):
        return self._lr_at(lr0, epochs)


class ReduceLROnPlateau(Schedule):
    """Multiply the rate by ``factor`` when a monitored value stops
    improving, as PyTorch's ``ReduceLROnPlateau`` stepped once an epoch.

    After each epoch the value improves when it is below best·(1 −
    threshold) (``threshold_mode="rel"``) or best − threshold ("abs");
    ``mode="max"`` flips both. After more than ``patience`` epochs in a row
    without improvement the rate becomes max(lr·factor, min_lr) (unless that
    changes it by ``eps`` or less), and the next ``cooldown`` epochs count no
    bad epochs. Its state (best value, bad epochs, cooldown) is kept per
    network with the optimiser's, over fits, and saved in checkpoints.

    Parameters
    ----------
    monitor : str, default="auto"
        A key of the history: "auto" is "val_loss" when the fit has
        validation rows, else the training "loss" (which, measured before
        each update, lags the weights by half an epoch).
    mode : {"min", "max"}, default="min"
    factor : float, default=0.1
        In (0, 1).
    patience : int, default=10
    threshold : float, default=1e-4
    threshold_mode : {"rel", "abs"}, default="rel"
    cooldown : int, default=0
    min_lr : float, default=0.0
    eps : float, default=1e-8

    Notes
    -----
    On a plateau of the stopping rule (``early_stopping``) the fit stops:
    this schedule lowers the rate on its own count.
    """

    def __init__(self, monitor: str = "auto", mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        self.monitor = check_monitor(monitor)
        self.mode = check_choice(mode, ("min", "max"), "mode")
        self.factor = check_float(factor, "factor", minimum=0.0, strict=True, maximum=1.0,
                                  strict_max=True)
        self.patience = check_int(patience, "patience", 0)
        self.threshold = check_float(threshold, "threshold", minimum=0.0)
        self.threshold_mode = check_choice(threshold_mode, ("rel", "abs"), "threshold_mode")
        self.cooldown = check_int(cooldown, "cooldown", 0)
        self.min_lr = check_float(min_lr, "min_lr", minimum=0.0)
        self.eps = check_float(eps, "eps", minimum=0.0)

    def key(self, history: dict) -> str:
        """The history key watched: ``monitor``, "auto" resolved."""
        return monitor_key(self.monitor, history)

    def _better(self, value: float, best: float) -> bool:
        # ReduceLROnPlateau's comparisons, term for term
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return value < best * (1.0 - self.threshold)
            return value < best - self.threshold
        if self.threshold_mode == "rel":
            return value > best * (self.threshold + 1.0)
        return value > best + self.threshold

    def next_lr(self, lr0, lr, epochs, samples_seen, history, memo):
        if history is None:
            raise ValueError("ReduceLROnPlateau needs the fit's history")
        key = self.key(history)
        if key not in history:
            raise ValueError(f"ReduceLROnPlateau monitors {key!r}, which the history does not "
                             f"have (keys: {sorted(history)})")
        value = float(history[key][-1])
        best = memo.get("best", math.inf if self.mode == "min" else -math.inf)
        bad, cooldown = memo.get("bad_epochs", 0), memo.get("cooldown_counter", 0)
        if self._better(value, best):
            best, bad = value, 0
        else:
            bad += 1
        if cooldown > 0:
            cooldown -= 1
            bad = 0  # bad epochs in the cooldown do not count
        if bad > self.patience:
            lowered = max(lr * self.factor, self.min_lr)
            if lr - lowered > self.eps:
                lr = lowered
            cooldown, bad = self.cooldown, 0
        memo.update(best=best, bad_epochs=bad, cooldown_counter=cooldown)
        return lr


def check_monitor(monitor) -> str:
    """A history key to watch (or "auto"), checked."""
    if not isinstance(monitor, str):
        raise TypeError(f"monitor must be a history key such as 'val_loss', got {monitor!r}")
    return monitor


def monitor_key(monitor: str, history: dict) -> str:
    """The history key a rule watches: ``monitor``, "auto" being "val_loss"
    when the fit has validation rows, else "loss"."""
    if monitor != "auto":
        return monitor
    return "val_loss" if "val_loss" in history else "loss"


_SCHEDULE_NAMES = {"constant": Constant, "invscaling": InvScaling, "adaptive": Adaptive}


#: the schedule of an optimiser given none: a Constant keeps nothing (its
#: memo is the optimiser state's), so one serves every optimiser, and fit's
#: peers, which build an optimiser per call, skip making one (~5 µs cold)
_CONSTANT = Constant()


def _check_schedule(schedule) -> Schedule:
    if schedule is None:
        return _CONSTANT
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
    schedule_memo : dict
        What the schedule keeps between epochs (see :meth:`Schedule.next_lr`).
    """

    def __init__(self, buffers: dict, lr: float):
        self.buffers = buffers
        self.step_count = 0
        self.lr = lr
        self.epochs = 0
        self.samples_seen = 0
        self.schedule_memo = {}

    def fits(self, params: np.ndarray) -> bool:
        """Whether the buffers match ``params`` in shape and dtype."""
        return self.fits_layout(params.shape, params.dtype)

    def fits_layout(self, shape: tuple, dtype) -> bool:
        """Whether the buffers are arrays of ``shape`` and ``dtype``."""
        for buffer in self.buffers.values():
            if buffer.shape != shape or buffer.dtype != dtype:
                return False
        return True


class _States(dict):
    """An optimiser's states, by a weak reference to their network: a
    ``weakref.WeakKeyDictionary``'s job (an entry goes with its network)
    with dict's own C methods. A WeakKeyDictionary's Python layers cost a
    fit three calls in a module of their own (its ``__init__``, ``get`` and
    ``__setitem__``): ~20 µs of a cold fit (caches evicted), which builds
    its optimiser anew, as bench/compare.py's fastbp peer does."""

    #: the callback of its weak references, made with its first entry
    _forget = None

    def remember(self, network, state: "OptimizerState") -> None:
        """Keep ``state`` for ``network`` until the network goes."""
        forget = self._forget
        if forget is None:
            forget = self._forget = _forgetter(weakref.ref(self))
        self[weakref.ref(network, forget)] = state

    def __deepcopy__(self, memo) -> "_States":
        # copy.deepcopy keeps weak references as they are, with their
        # callback into this dict: the copy's entries get their own
        copied = _States()
        for key, state in list(self.items()):  # a network may go meanwhile
            network = key()
            if network is not None:
                copied.remember(network, copy.deepcopy(state, memo))
        return copied

    def __reduce__(self):  # pickle: the weak references cannot go; as a WeakKeyDictionary
        raise TypeError(f"cannot pickle an optimiser's states ({len(self)} networks)")


def _forgetter(states_ref):
    """The callback of a :class:`_States`' weak references: drops the entry
    of a network that went (if the dict is still there)."""

    def forget(key) -> None:
        states = states_ref()
        if states is not None:
            states.pop(key, None)

    return forget


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
        # a positive finite float skips its check's call (fit's peers build an
        # optimiser per call, and a cold call costs ~7 µs)
        self.lr = (lr if type(lr) is float and 0.0 < lr < math.inf
                   else check_float(lr, "lr", minimum=0.0, strict=True))
        self.schedule = _CONSTANT if schedule is None else _check_schedule(schedule)
        self._states = _States()

    def state(self, network) -> OptimizerState:
        """The state kept for ``network``: zero buffers and the initial rate on first use."""
        # n_params and dtype: network.params would build a view each call;
        # a new optimiser (as fit's peers build one per call) has none to look up
        states = self._states
        state = states.get(weakref.ref(network)) if states else None
        if state is None or (state.buffers and not state.fits_layout((network.n_params,),
                                                                      network.dtype)):
            state = OptimizerState({}, self.schedule.initial_lr(self.lr))
            self._states.remember(network, state)
        for name in self.buffer_names:
            if name not in state.buffers:
                # on a cache line, as the params: the kernels' vectors then
                # never straddle two lines
                buffer = state.buffers[name] = aligned_empty(network.n_params, network.dtype)
                buffer[...] = 0
        return state

    def adopt_state(self, network, state: OptimizerState) -> None:
        """Continue from ``state``, e.g. one kept by another optimiser of the
        same kind whose hyper-parameters were changed."""
        self._states.remember(network, state)

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

    @property
    def fused_per_sample(self) -> bool:
        """Whether ``batch_size=1`` fits take a fused per-sample epoch of the
        kernels (csrc/fastbp_sample.h): plain SGD's, or the optimiser's own."""
        return self.plain

    def configure(self, trainer, state: OptimizerState) -> None:
        """Hand this optimiser's step, hyper-parameters, buffers and step
        count to a compiled trainer (``fastbp._kernels.Trainer``)."""
        names = self.buffer_names
        buffers = {name: state.buffers[name] for name in names} if names else {}
        trainer.set_optimizer(self.kernel_name, state.lr, self.hyper(), buffers,
                              state.step_count)

    def epoch_ends(self, state: OptimizerState, rows: int, history=None) -> None:
        """Count an epoch of ``rows`` rows and move the rate along the
        schedule, which may read the fit's ``history``."""
        state.epochs += 1
        state.samples_seen += rows
        if self.schedule.constant:
            return  # a constant rate: skip the call (small fits feel every µs)
        state.lr = float(self.schedule.next_lr(self.lr, state.lr, state.epochs,
                                               state.samples_seen, history,
                                               state.schedule_memo))

    def epochs_end(self, state: OptimizerState, rows: int, count: int) -> None:
        """:meth:`epoch_ends` ``count`` times, at once for a constant rate."""
        if self.schedule.constant:
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
    """Stochastic gradient descent, optionally with (Nesterov) momentum and
    decoupled weight decay.

    With g the minibatch gradient, μ the momentum and v the velocity
    (zero at the start):

    - plain (μ = 0): W ← W − lr·g
    - momentum:       v ← μ·v − lr·g;  W ← W + v
    - Nesterov:       v ← μ·v − lr·g;  W ← W + μ·v − lr·g

    The same steps, with b in place of W, update the biases. With a weight
    decay λ > 0, each step first shrinks the weights (not the biases)::

        W ← (1 − lr·λ)·W

    This is the formulation of scikit-learn's SGD solver; with a constant
    lr and λ = 0 it takes the same steps as ``torch.optim.SGD``.

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
    weight_decay : float, default=0.0
        Decoupled weight decay λ ≥ 0, as above and as
        :class:`AdamW` decays: on the weights only, at the current rate,
        once per step (per batch, or per row with ``batch_size=1``). Unlike
        ``torch.optim.SGD(weight_decay=...)``, which adds λ·W to the
        gradient (coupled L2, biases included), and unlike
        ``Network.fit(l2=...)``, fastbp's coupled L2 term (the gradient of
        λ/(2·Σw)·Σ‖W‖², added to the loss).

    Notes
    -----
    The velocity of each network trained with this optimiser is kept, so a
    second ``fit`` with the same optimiser continues where the first stopped.
    Call :meth:`reset` to forget it.

    A step with decay needs the whole gradient first: plain SGD with
    ``weight_decay > 0`` leaves the fused per-sample path (``batch_size=1``)
    and the update folded into the products, and trains as SGD with momentum
    does (more slowly per row than plain SGD).
    """

    kernel_name = "sgd"
    _repr_fields = ("lr", "momentum", "nesterov")

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False,
                 schedule=None, weight_decay: float = 0.0):
        super().__init__(lr, schedule)
        # 0.0, the defaults, skip their checks: fit builds an SGD() per call
        if type(momentum) is not float or momentum != 0.0:
            momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0,
                                   strict_max=True)
        self.momentum = momentum
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        if type(weight_decay) is not float or weight_decay != 0.0:
            weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        self.weight_decay = weight_decay
        # plain SGD keeps no velocity: its kernels never read one
        self.buffer_names = ("velocity",) if self.momentum != 0 else ()

    def __repr__(self) -> str:
        text = super().__repr__()
        if self.weight_decay != 0:
            text = text[:-1] + f", weight_decay={self.weight_decay!r})"
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
        return {"momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    @property
    def plain(self):
        return self.momentum == 0 and self.weight_decay == 0

    @property
    def fused_per_sample(self):
        # momentum has a fused epoch of its own (csrc/optim_sgd.pxi); decay has none
        return self.weight_decay == 0


def _check_moment_rates(beta1, beta2, epsilon) -> tuple:
    """Adam's and NAdam's β1, β2 in [0, 1) and ε > 0, checked."""
    return (check_float(beta1, "beta1", minimum=0.0, maximum=1.0, strict_max=True),
            check_float(beta2, "beta2", minimum=0.0, maximum=1.0, strict_max=True),
            check_float(epsilon, "epsilon", minimum=0.0, strict=True))


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
        self.beta1, self.beta2, self.epsilon = _check_moment_rates(beta1, beta2, epsilon)
        if flavor not in ("sklearn", "torch"):
            raise ValueError(f"flavor must be 'sklearn' or 'torch', got {flavor!r}")
        self.flavor = flavor

    def hyper(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon,
                "torch_epsilon": self.flavor == "torch"}


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton), as ``torch.optim.RMSprop``.

    With g the gradient and s the running mean of g² (zero at the start)::

        s ← α·s + (1 − α)·g²
        W ← W − lr·g / (√s + ε)

    ``centered`` also keeps ḡ ← α·ḡ + (1 − α)·g, the running mean of g, and
    divides by √(s − ḡ²) + ε instead; ``momentum`` μ > 0 keeps
    b ← μ·b + g / (√s + ε) and takes W ← W − lr·b.

    Parameters
    ----------
    lr : float, default=0.01
        Learning rate, > 0 (the initial one when a schedule changes it).
    alpha : float, default=0.99
        Decay α of the running means, in [0, 1).
    epsilon : float, default=1e-8
        ε (PyTorch's ``eps``), > 0.
    momentum : float, default=0.0
        μ, in [0, 1).
    centered : bool, default=False
    schedule : Schedule or {"constant", "invscaling", "adaptive"}, default=None
        How the rate changes after each epoch; None keeps it constant.

    Notes
    -----
    The running means (and the momentum buffer) persist between fits with
    the same optimiser; :meth:`reset` forgets them. PyTorch's coupled
    ``weight_decay`` is ``fit(l2=...)``: it adds (l2/m)·W to the gradient of
    the weights (not the biases) of a batch of m rows, so
    ``weight_decay = l2 / batch_size``.
    """

    kernel_name = "rmsprop"
    _repr_fields = ("lr", "alpha", "epsilon", "momentum", "centered")

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, epsilon: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False, schedule=None):
        super().__init__(lr, schedule)
        self.alpha = check_float(alpha, "alpha", minimum=0.0, maximum=1.0, strict_max=True)
        self.epsilon = check_float(epsilon, "epsilon", minimum=0.0, strict=True)
        self.momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0,
                                    strict_max=True)
        if not isinstance(centered, (bool, np.bool_)):
            raise TypeError(f"centered must be True or False, got {centered!r}")
        self.centered = bool(centered)
        # only the buffers its step reads
        self.buffer_names = (("square_avg",) + (("momentum_buffer",) if self.momentum else ())
                             + (("grad_avg",) if self.centered else ()))

    def hyper(self):
        # rho: alpha is the products' word in csrc (csrc/optim_rmsprop.pxi)
        return {"rho": self.alpha, "epsilon": self.epsilon, "momentum": self.momentum,
                "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer), as ``torch.optim.Adagrad``.

    With g the gradient, t the step count (from 1) and A the sum of g²
    (``initial_accumulator_value`` at the start)::

        lr_t = lr / (1 + (t − 1)·lr_decay)
        A ← A + g²
        W ← W − lr_t·g / (√A + ε)

    Parameters
    ----------
    lr : float, default=0.01
        Learning rate, > 0 (the initial one when a schedule changes it).
    lr_decay : float, default=0.0
        >= 0.
    epsilon : float, default=1e-10
        ε (PyTorch's ``eps``), > 0.
    initial_accumulator_value : float, default=0.0
        A's start, >= 0.
    schedule : Schedule or {"constant", "invscaling", "adaptive"}, default=None
        How lr changes after each epoch (lr_decay acts per step on top of it);
        None keeps it constant.

    Notes
    -----
    A and the step count persist between fits with the same optimiser;
    :meth:`reset` forgets them. PyTorch's coupled ``weight_decay`` is
    ``fit(l2=...)``, as for :class:`RMSprop`.
    """

    kernel_name = "adagrad"
    buffer_names = ("accumulator",)
    _repr_fields = ("lr", "lr_decay", "epsilon", "initial_accumulator_value")

    def __init__(self, lr: float = 0.01, lr_decay: float = 0.0, epsilon: float = 1e-10,
                 initial_accumulator_value: float = 0.0, schedule=None):
        super().__init__(lr, schedule)
        self.lr_decay = check_float(lr_decay, "lr_decay", minimum=0.0)
        self.epsilon = check_float(epsilon, "epsilon", minimum=0.0, strict=True)
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "initial_accumulator_value", minimum=0.0)

    def hyper(self):
        return {"lr_decay": self.lr_decay, "epsilon": self.epsilon,
                "initial_accumulator_value": self.initial_accumulator_value}


def _check_pair(pair, name: str) -> tuple:
    """Two finite real numbers, as a tuple of floats."""
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
        raise TypeError(f"{name} must be a pair of numbers, got {pair!r}")
    return tuple(check_float(value, f"{name}[{i}]") for i, value in enumerate(pair))


class Rprop(Optimizer):
    """Resilient backpropagation, iRPROP− (Igel & Hüsken), as
    ``torch.optim.Rprop``; FANN's default algorithm.

    Each parameter has its own step size Δ (``lr`` at the start) and moves by
    Δ against the sign of its gradient g; only signs count. With g′ the
    gradient kept from the step before (zero at the start)::

        g·g′ > 0:  Δ ← min(Δ·η+, Δmax)
        g·g′ < 0:  Δ ← max(Δ·η−, Δmin);  g ← 0  (no move, and g′ ← 0)
        g·g′ = 0:  Δ unchanged
        W ← W − sign(g)·Δ;  g′ ← g

    Meant for full batches (``batch_size`` >= the rows): on minibatches it
    runs, but the signs of one batch's gradient drive the step sizes.

    Parameters
    ----------
    lr : float, default=0.01
        Every step size's start Δ₀, > 0; it has no other use, so Rprop takes
        no schedule.
    etas : (float, float), default=(0.5, 1.2)
        (η−, η+), with 0 < η− < 1 < η+.
    step_sizes : (float, float), default=(1e-6, 50)
        (Δmin, Δmax), with 0 <= Δmin <= Δmax.

    Notes
    -----
    The step sizes and the gradient kept persist between fits with the same
    optimiser; :meth:`reset` forgets them. FANN's iRPROP− differs: it grows
    Δ by η+ also when g·g′ = 0 (the first step, and the step after a change
    of sign), and after a change of sign it moves the weight by +Δ
    (``fann_update_weights_irpropm``); FANN's Δ₀ = 0.1 thus takes a first
    step of 0.12, as ``lr=0.12`` here. PyTorch's Rprop has no weight decay;
    ``fit(l2=...)`` adds the L2 term to the gradients all the same.
    """

    kernel_name = "rprop"
    buffer_names = ("prev", "step_size")
    _repr_fields = ("lr", "etas", "step_sizes")

    def __init__(self, lr: float = 0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50)):
        super().__init__(lr, None)
        self.etas = _check_pair(etas, "etas")
        if not 0 < self.etas[0] < 1 < self.etas[1]:
            raise ValueError(f"etas must satisfy 0 < etas[0] < 1 < etas[1], got {self.etas}")
        self.step_sizes = _check_pair(step_sizes, "step_sizes")
        if not 0 <= self.step_sizes[0] <= self.step_sizes[1]:
            raise ValueError("step_sizes must satisfy 0 <= step_sizes[0] <= step_sizes[1], "
                             f"got {self.step_sizes}")

    def hyper(self):
        return {"etaminus": self.etas[0], "etaplus": self.etas[1],
                "step_size_min": self.step_sizes[0], "step_size_max": self.step_sizes[1]}


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, as
    ``torch.optim.AdamW``.

    With g the gradient, t the step count (from 1) and λ the weight decay,
    each step first shrinks the weights (not the biases), then takes
    :class:`Adam`'s step on weights and biases alike::

        W ← (1 − lr·λ)·W
        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        lr_t = lr·√(1 − β2^t) / (1 − β1^t)
        W ← W − lr_t·m / (√v + ε·√(1 − β2^t))      (PyTorch: ε added to √v̂)
        W ← W − lr_t·m / (√v + ε)                  (flavor="sklearn")

    PyTorch's AdamW decays every parameter of a group; fastbp's matches a
    PyTorch model whose biases sit in a group of their own with
    ``weight_decay=0``, the usual recipe.

    Parameters
    ----------
    lr, beta1, beta2, epsilon : float
        As :class:`Adam` takes them, with its defaults: 0.001, 0.9, 0.999
        and 1e-8.
    weight_decay : float, default=0.01
        λ ≥ 0, applied at the current rate once per step (per batch). 0 takes
        :class:`Adam`'s steps.
    flavor : {"torch", "sklearn"}, default="torch"
        Where ε enters, as in :class:`Adam` (whose default is scikit-learn's;
        this one's is PyTorch's, as ``torch.optim.AdamW``).
    schedule : Schedule or {"constant", "invscaling", "adaptive"}, default=None

    Notes
    -----
    The decay is not a term of the loss: ``Network.fit(l2=...)`` (coupled
    L2, in the gradient) adds to it, and ``history`` reports only the
    ``l2`` term. The moments and the step count persist between fits with
    the same optimiser; :meth:`reset` forgets them.
    """

    kernel_name = "adamw"
    _repr_fields = ("lr", "beta1", "beta2", "epsilon", "weight_decay", "flavor")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, weight_decay: float = 1e-2, flavor: str = "torch",
                 schedule=None):
        super().__init__(lr, beta1, beta2, epsilon, flavor, schedule)
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)

    def hyper(self):
        return {**super().hyper(), "weight_decay": self.weight_decay}


class NAdam(Optimizer):
    """NAdam (Dozat): Adam with Nesterov's momentum, as ``torch.optim.NAdam``.

    With g the gradient, t the step count (from 1) and ψ the momentum
    decay::

        μ_t = β1·(1 − 0.5·0.96^(t·ψ));   P_t = μ_1·μ_2···μ_t
        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        v̂ = v / (1 − β2^t)
        W ← W − lr·(1 − μ_t)/(1 − P_t)·g / (√v̂ + ε)
              − lr·μ_{t+1}/(1 − P_t·μ_{t+1})·m / (√v̂ + ε)

    Parameters
    ----------
    lr : float, default=0.002
    beta1, beta2 : float, default=0.9 and 0.999
        The moments' decay rates, in [0, 1).
    epsilon : float, default=1e-8
        > 0.
    momentum_decay : float, default=0.004
        ψ ≥ 0.
    schedule : Schedule or {"constant", "invscaling", "adaptive"}, default=None

    Notes
    -----
    The moments and the step count persist between fits with the same
    optimiser (P_t follows from the step count); :meth:`reset` forgets them.
    PyTorch's ``weight_decay`` and ``decoupled_weight_decay`` options are not
    offered: use ``Network.fit(l2=...)`` for a coupled L2 term.
    """

    kernel_name = "nadam"
    buffer_names = ("first_moment", "second_moment")
    _repr_fields = ("lr", "beta1", "beta2", "epsilon", "momentum_decay")

    def __init__(self, lr: float = 0.002, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, momentum_decay: float = 4e-3, schedule=None):
        super().__init__(lr, schedule)
        self.beta1, self.beta2, self.epsilon = _check_moment_rates(beta1, beta2, epsilon)
        self.momentum_decay = check_float(momentum_decay, "momentum_decay", minimum=0.0)

    def hyper(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon,
                "momentum_decay": self.momentum_decay}
