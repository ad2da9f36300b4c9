"""``fastbp train``'s optimiser and learning-rate schedule options.

The optimisers and schedules offered come from :mod:`fastbp.optim` (its
``__all__``), named as the estimators name their solvers: ``--optimizer
adamw`` is :class:`fastbp.AdamW`, ``--schedule cosine_decay`` is
:class:`fastbp.optim.CosineDecay`. Each hyper-parameter has one option named
after the constructor's parameter (``--weight-decay`` is ``weight_decay``),
and it applies to the classes whose constructor takes that parameter: given
to another, it is refused naming both. The options default to None, so the
constructor's own default applies unless the command line sets it (SGD's lr
and momentum keep the command line's 0.05 and 0.9).
"""
from __future__ import annotations

import argparse
import inspect
import re

from .. import optim
from .errors import UsageError
from .options import float_in, int_at_least

#: the command line's own defaults, where they differ from the constructor's
CLI_DEFAULTS = {"sgd": {"lr": 0.05, "momentum": 0.9}}
#: constructor parameters with no option: the schedule's (``--schedule``),
#: and ReduceLROnPlateau's rarely changed ones (their defaults apply)
NO_OPTION = {"schedule", "then", "monitor", "mode", "eps"}


def _snake(name: str) -> str:
    """CosineWarmRestarts -> cosine_warm_restarts, ReduceLROnPlateau -> reduce_lr_on_plateau."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _classes(base) -> list:
    return [value for value in (getattr(optim, name) for name in optim.__all__)
            if isinstance(value, type) and issubclass(value, base) and value is not base]


#: --optimizer NAME -> class: every optimiser of fastbp.optim, lower case
OPTIMIZERS = {kind.__name__.lower(): kind for kind in _classes(optim.Optimizer)}
#: --schedule NAME -> class: every schedule but LinearWarmup (``--warmup``), in snake case
SCHEDULES = {_snake(kind.__name__): kind for kind in _classes(optim.Schedule)
             if kind is not optim.LinearWarmup}


def _parameters(kind) -> dict:
    """The constructor's parameters with an option: name -> default (``inspect._empty``)."""
    return {name: p.default for name, p in inspect.signature(kind).parameters.items()
            if name not in NO_OPTION}


def _pair(text: str) -> tuple:
    """The type of ``--etas`` and ``--step-sizes``: two numbers, comma-separated."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return tuple(float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two numbers separated by a comma, like 0.5,1.2; got {text!r}") from None


_UNIT = float_in(0, 1, strict_max=True)
#: optimiser parameter -> (type, metavar, help); the option is --name-with-dashes
OPTIMIZER_OPTIONS = {
    "lr": (float_in(0, strict=True), None,
           "learning rate (default: 0.05 for sgd, else the optimiser's own: adam, adamw 0.001, "
           "nadam 0.002, rmsprop, adagrad 0.01; rprop: every step size's start, 0.01)"),
    "momentum": (_UNIT, None, "SGD momentum (default: 0.9); also RMSprop's (default: 0)"),
    "nesterov": ("flag", None, "sgd: Nesterov momentum (default: off)"),
    "weight_decay": (float_in(0), "λ",
                     "decoupled weight decay on the weights, not the biases: W ← (1 − lr·λ)·W "
                     "each step (sgd, default: 0; adamw, default: 0.01)"),
    "beta1": (_UNIT, "β1", "first-moment decay (adam, adamw, nadam; default: 0.9)"),
    "beta2": (_UNIT, "β2", "second-moment decay (adam, adamw, nadam; default: 0.999)"),
    "epsilon": (float_in(0, strict=True), "ε",
                "ε of the denominator (adam, adamw, nadam, rmsprop; default: 1e-8; adagrad: "
                "1e-10)"),
    "flavor": (("sklearn", "torch"), None,
               "where ε enters Adam's step (adam, default: sklearn; adamw, default: torch)"),
    "momentum_decay": (float_in(0), "ψ", "NAdam's momentum decay (default: 0.004)"),
    "alpha": (_UNIT, "α", "RMSprop's decay of the running means (default: 0.99)"),
    "centered": ("flag", None, "RMSprop: divide by the centred second moment"),
    "lr_decay": (float_in(0), None, "Adagrad's per-step rate decay (default: 0)"),
    "initial_accumulator_value": (float_in(0), "A0",
                                  "Adagrad's starting sum of squared gradients (default: 0)"),
    "etas": (_pair, "ETA-,ETA+", "Rprop's step-size factors, 0 < η− < 1 < η+ "
             "(default: 0.5,1.2)"),
    "step_sizes": (_pair, "MIN,MAX", "Rprop's step-size bounds (default: 1e-06,50)"),
    "tol": (float_in(0), None, "L-BFGS stops when the largest gradient component is at most "
            "this (default: 1e-4)"),
    "max_fun": (int_at_least(1), "N", "L-BFGS's most evaluations of the loss and gradient "
                "(default: 15000)"),
}
#: schedule parameter -> (option, type, metavar, help)
SCHEDULE_OPTIONS = {
    "power_t": ("--schedule-power-t", float_in(0), "P",
                "inv_scaling: lr0 / (rows seen + 1) ** P (default: 0.5)"),
    "factor": ("--schedule-factor", float_in(0, strict=True), "F",
               "adaptive: divide the rate by F > 1 on a plateau of early stopping (default: "
               "5); reduce_lr_on_plateau: multiply it by F < 1 (default: 0.1)"),
    "min_lr": ("--schedule-min-lr", float_in(0), "LR",
               "the floor of adaptive (default: 1e-6), cosine_decay, cosine_warm_restarts, "
               "reduce_lr_on_plateau (default: 0)"),
    "step_size": ("--schedule-step-size", int_at_least(1), "EPOCHS",
                  "step_decay: epochs between decays (required by step_decay; default: none)"),
    "gamma": ("--schedule-gamma", float_in(0, strict=True), "G",
              "the factor of step_decay (default: 0.1) and exponential_decay (each epoch; "
              "required by exponential_decay)"),
    "epochs": ("--schedule-epochs", int_at_least(1), "EPOCHS",
               "the length of cosine_decay and one_cycle (default: --epochs, less --warmup)"),
    "pct_start": ("--schedule-pct-start", float_in(0, 1), "P",
                  "one_cycle: the share of the cycle spent climbing (default: 0.3)"),
    "anneal_strategy": ("--schedule-anneal-strategy", ("cos", "linear"), None,
                        "one_cycle's annealing (default: cos)"),
    "div_factor": ("--schedule-div-factor", float_in(0, strict=True), "D",
                   "one_cycle starts at lr / D (default: 25)"),
    "final_div_factor": ("--schedule-final-div-factor", float_in(0, strict=True), "D",
                         "one_cycle ends at lr / div_factor / D (default: 1e4)"),
    "three_phase": ("--schedule-three-phase", "flag", None, "one_cycle: three phases"),
    "T_0": ("--schedule-t0", int_at_least(1), "EPOCHS",
            "cosine_warm_restarts: the first cycle's epochs (required; default: none)"),
    "T_mult": ("--schedule-t-mult", int_at_least(1), "M",
               "cosine_warm_restarts: each cycle's growth over the last (default: 1)"),
    "patience": ("--schedule-patience", int_at_least(0), "EPOCHS",
                 "reduce_lr_on_plateau: epochs without improvement before lowering the rate "
                 "(default: 10)"),
    "threshold": ("--schedule-threshold", float_in(0), "T",
                  "reduce_lr_on_plateau: least improvement that counts (default: 1e-4)"),
    "threshold_mode": ("--schedule-threshold-mode", ("rel", "abs"), None,
                       "reduce_lr_on_plateau: the threshold relative or absolute (default: "
                       "rel)"),
    "cooldown": ("--schedule-cooldown", int_at_least(0), "EPOCHS",
                 "reduce_lr_on_plateau: epochs after a reduction that count no bad epoch "
                 "(default: 0)"),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add(group, option: str, kind, metavar, text: str) -> None:
    """One option: a flag (store_true), a choice or a typed value, default None."""
    if kind == "flag":
        group.add_argument(option, action="store_true", help=text)
    elif isinstance(kind, tuple):
        group.add_argument(option, choices=kind, default=None, help=text)
    else:
        group.add_argument(option, type=kind, metavar=metavar, default=None, help=text)


def add_options(parser) -> None:
    """Add the optimiser and schedule options to ``parser`` (``fastbp train``'s)."""
    group = parser.add_argument_group(
        "optimiser", "Each option applies to the optimisers named in its help; given to "
        "another, it is refused.")
    group.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="sgd",
                       help="the optimiser, as fastbp.SGD, fastbp.Adam, ... take it (lbfgs: "
                            "an epoch is one L-BFGS iteration over every row; rprop is meant "
                            "for --batch-size at least the training rows)")
    for name, (kind, metavar, text) in OPTIMIZER_OPTIONS.items():
        _add(group, _flag(name), kind, metavar, text)
    group = parser.add_argument_group(
        "learning-rate schedule", "The rate after each epoch (fastbp.optim's schedules); "
        "each --schedule-* option applies to the schedules named in its help.")
    group.add_argument("--schedule", choices=tuple(SCHEDULES), default=None,
                       help="default: a constant rate")
    group.add_argument("--warmup", type=int_at_least(1), metavar="EPOCHS", default=None,
                       help="a linear warm-up over EPOCHS epochs before --schedule "
                            "(fastbp.optim.LinearWarmup; default: none)")
    group.add_argument("--warmup-start-factor", type=float_in(0, 1, strict=True),
                       metavar="F", default=None,
                       help="the first warm-up epoch's share of the rate (default: "
                            "1 / (EPOCHS + 1))")
    for name, (option, kind, metavar, text) in SCHEDULE_OPTIONS.items():
        _add(group, option, kind, metavar, text)


def _given(args, name: str, option: str | None = None) -> bool:
    value = getattr(args, (option or _flag(name))[2:].replace("-", "_"))
    return value is not None and value is not False


def _applies(kinds: dict, name: str) -> list:
    return [key for key, kind in kinds.items() if name in _parameters(kind)]


def _construct(kind, what: str, kwargs: dict):
    """``kind(**kwargs)``; its ValueError or TypeError as a UsageError naming ``what``."""
    try:
        return kind(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{what}: {exc}") from None


def make_optimizer(args):
    """The optimiser the options ask for, with its schedule, checked.

    Raises
    ------
    UsageError
        For an option that does not apply to ``--optimizer`` or the
        schedule, a schedule parameter missing, or a value the constructor
        refuses.
    """
    name = args.optimizer
    kind = OPTIMIZERS[name]
    accepted = _parameters(kind)
    kwargs = dict(CLI_DEFAULTS.get(name, {}))
    for param in OPTIMIZER_OPTIONS:
        if not _given(args, param):
            continue
        if param not in accepted:
            raise UsageError(f"{_flag(param)} does not apply to --optimizer {name} (it applies "
                             f"to {', '.join(_applies(OPTIMIZERS, param))})")
        kwargs[param] = getattr(args, param)
    schedule = make_schedule(args)
    if schedule is not None:
        if "schedule" not in inspect.signature(kind).parameters:
            option = "--schedule" if args.schedule is not None else "--warmup"
            raise UsageError(f"{option} does not apply to --optimizer {name}, which takes no "
                             "learning-rate schedule")
        kwargs["schedule"] = schedule
    return _construct(kind, f"--optimizer {name}", kwargs)


def make_schedule(args):
    """The schedule of ``--schedule`` and ``--warmup`` (None: a constant rate)."""
    name = args.schedule
    kind = SCHEDULES.get(name)
    accepted = _parameters(kind) if kind is not None else {}
    kwargs = {}
    for param, (option, *_) in SCHEDULE_OPTIONS.items():
        if not _given(args, param, option):
            continue
        if name is None:
            raise UsageError(f"{option} needs --schedule (one of "
                             f"{', '.join(_applies(SCHEDULES, param))})")
        if param not in accepted:
            raise UsageError(f"{option} does not apply to --schedule {name} (it applies to "
                             f"{', '.join(_applies(SCHEDULES, param))})")
        kwargs[param] = getattr(args, option[2:].replace("-", "_"))
    if args.warmup_start_factor is not None and args.warmup is None:
        raise UsageError("--warmup-start-factor needs --warmup")
    schedule = None
    if kind is not None:
        if "epochs" in accepted and "epochs" not in kwargs:
            kwargs["epochs"] = max(args.epochs - (args.warmup or 0), 1)
        missing = [SCHEDULE_OPTIONS[param][0] for param, default in accepted.items()
                   if default is inspect.Parameter.empty and param not in kwargs]
        if missing:
            raise UsageError(f"--schedule {name} needs {' and '.join(missing)}")
        schedule = _construct(kind, f"--schedule {name}", kwargs)
    if args.warmup is not None:
        return optim.LinearWarmup(args.warmup, then=schedule,
                                  start_factor=args.warmup_start_factor)
    return schedule
