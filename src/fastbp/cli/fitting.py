"""``fastbp train``'s options around the fit, each as :class:`fastbp.Network`
and :meth:`fastbp.Network.fit` take it: dropout, gradient clipping, weight
averaging, the loss's parameter, checkpoints, resuming, the CSV log and the
accuracy per epoch.

They are checked before any data is read (:func:`check`), but for those
that depend on the task the targets decide (:func:`loss_param`,
:func:`check_task`).
"""
from __future__ import annotations

import argparse
import os

from .errors import UsageError, note
from .options import OnOff, check_output_path, float_in

#: rows per update unless --batch-size says (lbfgs takes every row)
DEFAULT_BATCH_SIZE = 32


def dropout_rates(text: str):
    """The ``--dropout`` type: a rate, or comma-separated rates (one per hidden layer)."""
    rate = float_in(0, 1, strict_max=True)
    parts = text.split(",")
    try:
        rates = [rate(part) for part in parts]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (rates in [0, 1), like 0.2 or 0.2,0.1)") from None
    return rates[0] if len(rates) == 1 else rates


def add_options(parser) -> None:
    """Add the regularisation, loss, checkpoint and log options to ``parser``."""
    group = parser.add_argument_group("regularisation")
    group.add_argument("--dropout", type=dropout_rates, metavar="RATES", default=None,
                       help="inverted dropout on the hidden layers' outputs while training: "
                            "one rate, or one per hidden layer like 0.2,0.1 (fastbp.Network's "
                            "dropout; default: none)")
    group.add_argument("--clip-norm", type=float_in(0, strict=True), metavar="NORM",
                       default=None,
                       help="clip the gradient's global L2 norm to NORM before each step "
                            "(default: no clipping)")
    group.add_argument("--ema", type=float_in(0, 1, strict=True, strict_max=True),
                       metavar="DECAY", default=None,
                       help="an exponential moving average of the weights, e.g. 0.999: "
                            "validation, early stopping and the saved model use it "
                            "(default: none)")
    group = parser.add_argument_group("loss parameters")
    group.add_argument("--huber-delta", type=float_in(0, strict=True), metavar="DELTA",
                       default=None,
                       help="--loss huber's threshold between its squared and linear parts "
                            "(default: 1)")
    group.add_argument("--label-smoothing", type=float_in(0, 1), metavar="EPS", default=None,
                       help="cross_entropy's label smoothing: the targets become "
                            "(1 − EPS)·t + EPS/K (default: 0)")
    group = parser.add_argument_group("checkpoints and logs")
    group.add_argument("--checkpoint", metavar="PATH",
                       help="write the model and the training state that --resume reads "
                            "after each epoch whose loss (the validation loss with early "
                            "stopping) is the lowest so far; a {epoch} in PATH numbers the "
                            "files (default: none)")
    group.add_argument("--checkpoint-best-only", action=OnOff, default=True,
                       help="--no-checkpoint-best-only writes after every epoch")
    group.add_argument("--resume", metavar="PATH",
                       help="continue the run that wrote this --checkpoint, given the same "
                            "data and options: --epochs counts from its start, and the "
                            "weights end as the uninterrupted run's, bit for bit (default: "
                            "start afresh)")
    group.add_argument("--csv-log", metavar="PATH",
                       help="write the history to a CSV, a row an epoch: loss, data_loss, "
                            "penalty, lr, seconds, val_loss, accuracy... (default: none)")
    group.add_argument("--accuracy", action=OnOff, default=False,
                       help="report the training (and validation) accuracy after each epoch, "
                            "in the epoch lines and --csv-log; classes only, costs a forward "
                            "pass over the rows an epoch")


def check(args) -> None:
    """Refuse clashing options and unwritable or missing files before any work is done.

    Sets ``args.batch_size`` to its default where it was not given (and
    lbfgs does not take every row).
    """
    from .._architecture import check_dropout

    lbfgs = args.optimizer == "lbfgs"
    if lbfgs:
        for option, value in (("--batch-size", args.batch_size), ("--dropout", args.dropout),
                              ("--clip-norm", args.clip_norm), ("--ema", args.ema),
                              ("--resume", args.resume)):
            if value is not None:
                raise UsageError(f"{option} does not apply to --optimizer lbfgs, which steps "
                                 "on every row at once with no state kept between runs")
    elif args.batch_size is None:
        args.batch_size = DEFAULT_BATCH_SIZE
    try:
        args.dropout = check_dropout(args.dropout, len(args.hidden))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--dropout: {exc}") from None
    if args.huber_delta is not None and args.loss != "huber":
        raise UsageError(f"--huber-delta applies to --loss huber, not {args.loss or 'the default'}")
    if args.label_smoothing is not None and args.loss not in (None, "cross_entropy"):
        raise UsageError(f"--label-smoothing applies to --loss cross_entropy, not {args.loss}")
    if args.resume is not None and args.ema is not None:
        raise UsageError("--resume cannot continue an --ema run: its checkpoints hold the "
                         "averaged weights, not the raw ones it trains")
    check_output_path(args.checkpoint, "--checkpoint")
    check_output_path(args.csv_log, "--csv-log")
    if args.resume is not None and not os.path.isfile(args.resume):
        raise UsageError(f"--resume {args.resume}: no such file")


def check_task(args, task: str, loss: str) -> None:
    """Refuse the options the targets do not allow: ``--accuracy`` for regression,
    ``--label-smoothing`` for a loss other than cross_entropy."""
    if args.accuracy and task == "regression":
        raise UsageError("--accuracy needs class targets; the target is a regression one")
    if args.label_smoothing is not None and loss != "cross_entropy":
        raise UsageError(f"--label-smoothing applies to --loss cross_entropy, the loss is {loss} "
                         f"({task})")


def loss_param(args):
    """The loss's parameter the options give (None: the loss's default)."""
    return args.huber_delta if args.huber_delta is not None else args.label_smoothing


def fit_arguments(args, stopping) -> dict:
    """The keyword arguments of ``Network.fit`` these options give, callbacks included.

    Parameters
    ----------
    args : argparse.Namespace
    stopping : fastbp.EarlyStopping or None
        The fit's stopping rule, which a resumed fit takes up where the
        checkpoint left it.
    """
    from ..callbacks import CSVLogger, ModelCheckpoint

    callbacks = []
    if args.resume is not None:
        callbacks.append(Resumed(args.resume, stopping))
    if args.checkpoint is not None:
        # "auto": the validation loss with validation rows, else the training loss
        callbacks.append(ModelCheckpoint(args.checkpoint, monitor="auto",
                                         save_best_only=args.checkpoint_best_only))
    if args.csv_log is not None:
        callbacks.append(CSVLogger(args.csv_log))
    return {"clip_norm": args.clip_norm, "ema": args.ema, "resume": args.resume,
            "metrics": ["accuracy"] if args.accuracy else None, "callbacks": callbacks}


class Resumed:
    """A callback of a resumed fit: says where it resumes and gives the stopping
    rule the state it had when the checkpoint was written.

    A checkpoint written for the lowest value of the key the stopping rule
    watches (``--checkpoint-best-only``, as the rule's own comparison) was
    written at the rule's best epoch: its value, epoch and weights are the
    rule's best, and its count was 0. Any other checkpoint leaves the rule
    to start afresh, with a warning.
    """

    def __init__(self, path: str, stopping):
        self.path, self.stopping = path, stopping

    def fit_starts(self, session) -> None:
        """Print where the fit resumes; seed the stopping rule."""
        from ..optim import monitor_key

        print(f"resumed from {self.path} after epoch {session.initial_epoch}", flush=True)
        stopping, resumed = self.stopping, session.resumed
        if stopping is None or resumed is None:
            return
        key = monitor_key(stopping.monitor,
                          {"val_loss": ()} if session.validation is not None else {})
        if resumed.get("monitor") != key or resumed.get("best") is None:
            note(f"warning: early stopping starts afresh at epoch {session.initial_epoch + 1}: "
                 f"the checkpoint was not written for the lowest {key.replace('_', ' ')} "
                 "(--checkpoint-best-only)")
            return
        stopping.best, stopping.best_epoch = float(resumed["best"]), session.initial_epoch - 1
        stopping.best_params, stopping.wait = session.network.params, 0

    def __call__(self, epoch: int, history: dict, network) -> bool:
        return False


def first_epoch(args, net, optimizer) -> int:
    """The epochs the ``--resume`` checkpoint had done (0 without one), read and
    checked against the network and the optimiser before training."""
    if args.resume is None:
        return 0
    from .._checkpoint import read_checkpoint

    epoch = read_checkpoint(args.resume, net, optimizer).epoch
    if epoch >= args.epochs:
        raise UsageError(f"--resume {args.resume} is at epoch {epoch}: --epochs {args.epochs}, "
                         "counted from the start of the run that wrote it, leaves none to train")
    return epoch


def epoch_extras(history: dict, show_lr: bool) -> str:
    """The end of an epoch line: the rate (when a schedule moves it) and the accuracies."""
    text = f"  lr {history['lr'][-1]:.4g}" if show_lr else ""
    for key, label in (("accuracy", "train accuracy"), ("val_accuracy", "val accuracy")):
        if key in history:
            text += f"  {label} {history[key][-1]:.4f}"
    return text


def describe(args, optimizer) -> str | None:
    """A line naming the optimiser and the regularisation, unless they are the defaults."""
    from ..optim import SGD
    from .optimizers import CLI_DEFAULTS

    default = SGD(**CLI_DEFAULTS["sgd"])
    parts = [] if repr(optimizer) == repr(default) else [repr(optimizer)]
    parts += [f"{name} {value}" for name, value in (
        ("dropout", args.dropout and ",".join(f"{r:g}" for r in args.dropout)),
        ("clip_norm", args.clip_norm), ("ema", args.ema)) if value]
    return "training with " + ", ".join(parts) if parts else None
