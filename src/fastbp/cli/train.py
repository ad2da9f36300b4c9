"""``fastbp train``: fit a network to a table, report it, save and plot it.

The rows are split into training, validation (early stopping picks the
epoch with the lowest validation loss) and test rows (reported only). The
feature encoders, the imputation and the scaling are fitted on the training
rows alone and saved with the network.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from . import fitting, optimizers
from .errors import EXIT_INTERRUPTED, EXIT_OK, RunFailed, UsageError, note
from .features import (IMPUTE_CHOICES, MAX_AUTO_CLASSES, apply_features, choose_features,
                       drop_incomplete_rows, encode_targets, fit_features, identifier_warnings,
                       input_names, split_names, targets_as_trained)
from .model import OUTPUT_FOR_LOSS, ModelMeta, fit_scaler, save_model
from .options import (DTYPES, HIDDEN_ACTIVATIONS, LOSS_NAMES, HelpFormatter, OnOff,
                      add_table_options, check_output_path, float_in, hidden_widths,
                      int_at_least, table_options)
from .report import loss_unit, metrics_lines
from .tables import DATASETS, load_table

DEFAULT_TEST_FRACTION = 0.25
#: training on fewer rows than this gets a warning
FEW_TRAINING_ROWS = 10


def add_parser(subparsers) -> None:
    """Add the ``train`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train a network on a CSV, an .npz or an embedded dataset",
        formatter_class=HelpFormatter, description=(
            "Train by minibatch SGD (or another --optimizer) and report the loss per epoch, "
            "the final metrics and the training time per sample. Class labels are one-hot "
            "encoded, text features too; features (and regression targets) are standardised "
            "on the training rows. "
            "Early stopping keeps the epoch with the lowest validation loss. Ctrl-C stops "
            "training, reports and saves the weights it has (exit code 130)."))
    p.set_defaults(run=run)
    p.add_argument("data", metavar="DATA",
                   help=f"a CSV with a header row, an .npz, or one of: {', '.join(DATASETS)}")
    columns = p.add_argument_group("columns")
    columns.add_argument("--target", metavar="COL", action="append",
                         help="the target column; repeat it or give a comma list for several "
                              "(required, but for an embedded dataset: default its own target)")
    columns.add_argument("--features", metavar="COLS", action="append",
                         help="the feature columns, comma-separated (default: every column "
                              "but the targets)")
    columns.add_argument("--drop", metavar="COLS", action="append", default=[],
                         help="columns not to use, comma-separated, e.g. an id column")
    columns.add_argument("--task", choices=("auto", "classification", "regression"),
                         default="auto",
                         help="auto: classes for text labels, bce/cross_entropy, or integer "
                              f"codes (at most {MAX_AUTO_CLASSES} consecutive values, e.g. 0..9); "
                              "else regression. Several two-class targets are multilabel")
    columns.add_argument("--impute", choices=IMPUTE_CHOICES,
                         help="missing cells (empty, NA, NaN, ?): fill with the training rows' "
                              "mean or median (text: the most frequent value), or drop their "
                              "rows; rows without a target are dropped (default: a missing "
                              "cell is an error)")
    add_table_options(p)
    net = p.add_argument_group("network and training")
    net.add_argument("--hidden", type=hidden_widths, default=[32], metavar="WIDTHS",
                     help="hidden layer widths, e.g. 64,32 ('none' for no hidden layer)")
    net.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh",
                     help="hidden activation")
    net.add_argument("--loss", choices=LOSS_NAMES, default=None,
                     help="default: cross_entropy (softmax output) for classification, bce "
                          "(sigmoid outputs) for multilabel, mse (identity output) for "
                          "regression")
    net.add_argument("--epochs", type=int_at_least(1), default=200,
                     help="most epochs (early stopping usually ends sooner)")
    net.add_argument("--batch-size", type=int_at_least(1), default=None,
                     help=f"rows per update (default: {fitting.DEFAULT_BATCH_SIZE})")
    net.add_argument("--l2", type=float_in(0), default=0.0, help="L2 penalty λ")
    net.add_argument("--dtype", choices=DTYPES, default="float64",
                     help="floating-point type of the network")
    net.add_argument("--compute-dtype", choices=("bfloat16",), default=None,
                     help="bfloat16: the training products take operands rounded to bfloat16 "
                          "and sum in float32, as Network's compute_dtype (needs --dtype "
                          "float32; default: products in --dtype)")
    net.add_argument("--seed", type=int_at_least(0), default=0,
                     help="seed of the splits, the initial weights and the shuffling")
    net.add_argument("--standardize", action=OnOff, default=True,
                     help="standardise the features and regression targets on the training "
                          "rows; --no-standardize uses them as they are")
    net.add_argument("--threads", type=int_at_least(1), default=None,
                     help="training threads, as in Network.fit (default: the cores "
                          "this process may run on, capped by OMP_NUM_THREADS)")
    rows = p.add_argument_group("rows and early stopping")
    rows.add_argument("--test", metavar="FILE",
                      help="test rows from this file, read as DATA (default: held out from DATA "
                           "by --test-fraction)")
    rows.add_argument("--test-fraction", type=float_in(0, 1, strict_max=True), default=None,
                      help=f"fraction of DATA's rows held out for testing, 0 for none (default: "
                           f"{DEFAULT_TEST_FRACTION:g}, or 0 with --test)")
    rows.add_argument("--early-stopping", action=OnOff, default=True,
                      help="stop when the validation loss has not improved for --patience "
                           "epochs and keep the best epoch's weights")
    rows.add_argument("--validation-fraction", type=float_in(0, 1, strict_max=True),
                      default=0.1,
                      help="fraction of the training rows set aside to pick the best epoch "
                           "(with early stopping; 0: watch the training loss)")
    rows.add_argument("--patience", type=int_at_least(1), default=10,
                      help="epochs without improvement before early stopping")
    out = p.add_argument_group("output")
    out.add_argument("--progress", action=OnOff, default=None,
                     help="a progress bar on stderr (default: when stderr is a terminal)")
    out.add_argument("--save", metavar="MODEL.npz",
                     help="save the trained model (default: not saved)")
    out.add_argument("--plot", metavar="CURVE.png",
                     help="plot the loss per epoch (needs matplotlib; default: no plot)")
    optimizers.add_options(p)
    fitting.add_options(p)


class _Rows:
    """Row indices of DATA: ``fit`` (trained on), ``val`` (early stopping), ``test``."""

    def __init__(self, fit, val, test):
        self.fit, self.val, self.test = fit, val, test


def run(args) -> int:
    """Run ``fastbp train`` on the parsed ``args``; the exit code."""
    _check_outputs(args)
    fitting.check(args)
    optimizer = optimizers.make_optimizer(args)
    options = table_options(args)
    table = load_table(args.data, options)
    note(*table.notes)
    targets = split_names(args.target) or table.default_targets
    if not targets:
        raise UsageError(f"{args.data}: name the target column with --target "
                         f"(columns: {', '.join(table.names()[:12])})")
    for name in targets:
        table.column(name)
    features = choose_features(table, targets, split_names(args.features),
                               split_names(args.drop))
    table, dropped = drop_incomplete_rows(table, targets, features, args.impute)
    note(*dropped)
    task, Y, classes, reasons = encode_targets(table, targets, args.task, args.loss)
    # why --task auto decided is part of the report; warnings go to stderr
    for reason in reasons:
        note(reason) if reason.startswith("warning: ") else print(reason)
    rows = _split(table.n_rows, args)
    specs = fit_features(table, features, rows.fit, args.impute)
    X, unseen = apply_features(table, specs)
    _check_split(rows, args)
    note(*unseen)
    loss = args.loss or {"classification": "cross_entropy", "multilabel": "bce"}.get(task, "mse")
    fitting.check_task(args, task, loss)
    meta = ModelMeta(targets=targets, task=task, loss=loss, features=specs, classes=classes,
                     x_mean=[0.0] * X.shape[1], x_scale=[1.0] * X.shape[1],
                     y_mean=[0.0] * Y.shape[1], y_scale=[1.0] * Y.shape[1], impute=args.impute,
                     loss_param=fitting.loss_param(args))
    sets = _scaled_sets(meta, table, X, Y, rows, args)
    if args.test is not None:
        sets["test"] = _test_file(meta, args, options)
    net = _network(meta, X.shape[1], Y.shape[1], len(rows.fit), args)
    note(*identifier_warnings(table, features), *_few_rows_warning(rows, table.n_rows))
    _print_start(net, meta, table, sets, specs, args)
    note_line = fitting.describe(args, optimizer)
    if note_line:
        print(note_line, flush=True)
    history, seconds, interrupted = _fit(net, optimizer, meta, sets, args)
    _report(net, meta, sets, history, seconds, args)
    if args.save is not None:
        save_model(net, meta, args.save)
        print(f"saved the model to {args.save}", flush=True)
    if args.plot is not None and history["loss"]:
        _plot(history, net.sizes, table, sets, meta.loss, args.plot)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def _check_outputs(args) -> None:
    """Refuse unwritable outputs and clashing options before any work is done."""
    check_output_path(args.save, "--save")
    check_output_path(args.plot, "--plot")
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError('--plot needs matplotlib: pip install "fastbp[plot]"')
    if args.test is not None and args.test_fraction is not None:
        raise UsageError("--test and --test-fraction both choose the test rows; give one")
    if args.compute_dtype is not None and args.dtype != "float32":
        raise UsageError(f"--compute-dtype {args.compute_dtype} needs --dtype float32 (float32 "
                         f"master weights), got --dtype {args.dtype}")
    if args.compute_dtype is not None and args.optimizer == "lbfgs":
        raise UsageError(f"--compute-dtype {args.compute_dtype} acts on minibatch steps; "
                         "--optimizer lbfgs computes in --dtype")


def _split(n: int, args) -> _Rows:
    """Shuffled row indices: test rows (unless --test), then validation rows.

    No training row at all is a UsageError here; no validation row while
    early stopping wants one is found by ``_check_split`` once the cells are
    checked (their errors say more).
    """
    order = np.random.default_rng(args.seed).permutation(n)
    fraction = _test_fraction(args)
    n_test = max(int(round(fraction * n)), 1) if fraction > 0 else 0
    n_train = n - n_test
    if n_train < 1:
        raise _too_few_rows(n, n_test, args)
    n_val = 0
    if _validating(args) and n_train >= 2:
        n_val = min(max(int(round(args.validation_fraction * n_train)), 1), n_train - 1)
    return _Rows(order[:n_train - n_val], order[n_train - n_val:n_train], order[n_train:])


def _test_fraction(args) -> float:
    return 0.0 if args.test is not None else (
        DEFAULT_TEST_FRACTION if args.test_fraction is None else args.test_fraction)


def _validating(args) -> bool:
    """Whether early stopping sets validation rows aside."""
    return bool(args.early_stopping and args.validation_fraction > 0)


def _check_split(rows: _Rows, args) -> None:
    """Every part the options ask for has a row: else a UsageError (see ``_too_few_rows``)."""
    if _validating(args) and len(rows.val) == 0:
        raise _too_few_rows(len(rows.fit) + len(rows.val) + len(rows.test), len(rows.test), args)


def _too_few_rows(n: int, n_test: int, args) -> UsageError:
    """The error for ``n`` rows that cannot give each part the options ask for a row."""
    validating = _validating(args)
    parts = ["training"] + ["validation"] * validating + ["test"] * (n_test > 0)
    taken = (f" (--test-fraction {_test_fraction(args):g} takes {n_test} for testing)"
             if n_test else "")
    # the options that would each leave a row in every part
    fixes = [option for option, enough in (("--no-early-stopping", validating and n > n_test),
                                           ("--test-fraction 0", n_test and n > validating))
             if enough]
    return UsageError(f"{args.data}: {n} rows are too few to split into {' / '.join(parts)} "
                      f"rows with at least one each{taken}; give more rows"
                      + "".join(f", or {option}" for option in fixes))


def _few_rows_warning(rows: _Rows, n: int) -> list:
    """A warning when fewer than FEW_TRAINING_ROWS rows are trained on (training goes on)."""
    if len(rows.fit) >= FEW_TRAINING_ROWS:
        return []
    return [f"warning: training on {len(rows.fit)} of {n} rows ({len(rows.val)} validation, "
            f"{len(rows.test)} test): too few for the fit or its metrics to mean much"]


def _scaled_sets(meta: ModelMeta, table, X, Y, rows: _Rows, args) -> dict:
    """{"train", "val", "test"}: (X, Y) pairs scaled on the training rows, in the
    network's dtype; a column whose scaling overflows is a UsageError naming it."""
    names = input_names(meta.features)
    target_names = _output_names(meta, Y.shape[1])
    if args.standardize:
        meta.x_mean, meta.x_scale = _scaler(X[rows.fit], names, "column", table, rows.fit)
        if meta.task == "regression":
            meta.y_mean, meta.y_scale = _scaler(Y[rows.fit], target_names, "target", table,
                                                rows.fit)
    sets = {}
    for name, index in (("train", rows.fit), ("val", rows.val), ("test", rows.test)):
        where = lambda i, index=index: table.where(index[i])  # noqa: E731
        sets[name] = (_scaled(X[index], meta.x_mean, meta.x_scale, names, "column", where,
                              args.dtype),
                      _scaled(Y[index], meta.y_mean, meta.y_scale, target_names, "target",
                              where, args.dtype))
    return sets


def _scaler(matrix, names, kind: str, table, index) -> tuple:
    """``fit_scaler`` of ``matrix``, refusing columns whose mean or spread overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = (np.asarray(v) for v in fit_scaler(matrix))
    bad = ~(np.isfinite(mean) & np.isfinite(scale))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        row = int(np.argmax(np.abs(matrix[:, j])))
        raise UsageError(f"{table.source}: {kind} {names[j]!r} holds {matrix[row, j]:.6g} "
                         f"({table.where(index[row])}): too large to standardise (its mean "
                         f"or spread overflows float64); {_fix(kind)}")
    return mean.tolist(), scale.tolist()


def _fix(kind: str) -> str:
    return "rescale the column or --drop it" if kind == "column" else "rescale the target"


def _scaled(matrix, mean, scale, names, kind: str, where, dtype: str) -> np.ndarray:
    """``(matrix - mean) / scale`` in ``dtype``; a value that does not fit is an error."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = ((matrix - np.asarray(mean)) / np.asarray(scale)).astype(dtype)
    finite = np.isfinite(scaled)
    if not finite.all():
        row, j = (int(i) for i in np.argwhere(~finite)[0])
        raise UsageError(f"{kind} {names[j]!r}: the value {matrix[row, j]:.6g} ({where(row)}) "
                         f"does not fit {dtype} once scaled; {_fix(kind)}")
    return scaled


def _test_file(meta: ModelMeta, args, options) -> tuple:
    """(X, Y) of the --test file, encoded and scaled as the training rows."""
    table = load_table(args.test, options)
    note(*table.notes)
    feature_names = [spec["name"] for spec in meta.features]
    table, dropped = drop_incomplete_rows(table, meta.targets, feature_names, args.impute)
    note(*dropped)
    X, unseen = apply_features(table, meta.features)
    note(*unseen)
    Y = targets_as_trained(table, meta)
    where = table.where
    return (_scaled(X, meta.x_mean, meta.x_scale, input_names(meta.features), "column", where,
                    args.dtype),
            _scaled(Y, meta.y_mean, meta.y_scale, _output_names(meta, Y.shape[1]), "target",
                    where, args.dtype))


def _output_names(meta: ModelMeta, width: int) -> list:
    """The name of each output: the targets, or "y[k]" for a 2-D target."""
    if len(meta.targets) == width:
        return list(meta.targets)
    return [f"{meta.targets[0]}[{k}]" for k in range(width)]


def _network(meta: ModelMeta, n_inputs: int, n_outputs: int, n_rows: int, args):
    """The network the options ask for, once the memory check passes."""
    from ..network import Network

    sizes = [n_inputs, *args.hidden, n_outputs]
    # lbfgs takes every row at once
    _check_memory(sizes, args.batch_size or n_rows, np.dtype(args.dtype).itemsize)
    output = OUTPUT_FOR_LOSS.get(meta.loss,
                                 "identity" if meta.task == "regression" else "sigmoid")
    if meta.loss == "mse" and meta.task == "classification":
        output = "softmax" if n_outputs > 1 else "sigmoid"
    return Network(sizes, activation=args.activation, output_activation=output,
                   dtype=args.dtype, seed=args.seed, dropout=args.dropout,
                   compute_dtype=args.compute_dtype)


def _check_memory(sizes: list, batch_size: int, itemsize: int) -> None:
    """Refuse networks whose parameters and workspace would not fit in memory."""
    params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    # parameters, gradient, velocity, two snapshots, plus activations and deltas of a batch
    needed = (5 * params + 2 * batch_size * sum(sizes)) * itemsize
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    if needed > available // 2:
        raise UsageError(f"network {'-'.join(map(str, sizes))} is too large: {params:,} parameters "
                         f"need about {needed / 2**30:.1f} GiB, more than half of this machine's "
                         f"{available / 2**30:.1f} GiB")


def _print_start(net, meta: ModelMeta, table, sets: dict, specs: list, args) -> None:
    n = {name: len(X) for name, (X, _) in sets.items()}
    n_text = sum(spec["kind"] == "category" for spec in specs)
    inputs = f"{net.sizes[0]} inputs from {len(specs)} columns"
    if n_text:
        inputs += f" ({n_text} text, one-hot)"
    if meta.task == "classification":
        what = f"{len(meta.classes)} classes, one-hot"
    elif meta.task == "multilabel":
        what = "multilabel, a sigmoid output each"
    else:
        what = "regression" + (", standardized" if args.standardize else "")
    test_from = f" (from {args.test})" if args.test is not None else ""
    source = f"{table.source} ({table.dialect})" if table.dialect else table.source
    print(f"fastbp train: {net} on {source}: {n['train']} train / {n['val']} validation / "
          f"{n['test']} test rows{test_from}, {inputs}, target {meta.describe_targets()} "
          f"({what}), loss {meta.loss}", flush=True)
    parts = ["train: the epoch's mean over its batches, each before its update"
             + (", L2 term included" if args.l2 else "")]
    if n["val"] or n["test"]:
        parts.append(" and ".join(s for s in ("val", "test") if n[s]) + ": after the epoch")
    marked = "; * marks a new lowest " + ("val" if n["val"] else "train") + " loss" \
        if args.early_stopping else ""
    print(f"loss per epoch in {loss_unit(meta)}; {'; '.join(parts)}{marked}", flush=True)


def _fit(net, optimizer, meta: ModelMeta, sets: dict, args) -> tuple:
    """Train; (history, seconds, interrupted). Ctrl-C keeps the weights so far."""
    from .. import EarlyStopping, TrainingDiverged
    from .._progress import EpochProgress

    (X, Y), validation, (X_test, Y_test) = sets["train"], sets["val"], sets["test"]
    stopping = EarlyStopping(patience=args.patience) if args.early_stopping else None
    extra = fitting.fit_arguments(args, stopping)
    first = fitting.first_epoch(args, net, optimizer)
    show_bar = sys.stderr.isatty() if args.progress is None else args.progress
    progress = EpochProgress(args.epochs - first, bar=show_bar, lines=True, desc="train")
    test_losses = []
    loss = meta.loss_function()
    show_lr = not optimizer.schedule.constant

    def report_epoch(epoch, history, network):
        line = f"epoch {epoch + 1:3d}/{args.epochs}  train loss {history['loss'][-1]:.6f}"
        if "val_loss" in history:
            line += f"  val loss {history['val_loss'][-1]:.6f}"
        if len(X_test):
            test_losses.append(network.loss(X_test, Y_test, loss=loss))
            line += f"  test loss {test_losses[-1]:.6f}"
        line += fitting.epoch_extras(history, show_lr)
        # the stopping rule sees this epoch after the callbacks
        if stopping is not None and history[stopping.key(history)][-1] < stopping.best:
            line += "  *"
        progress.update(history["loss"][-1], history["seconds"][-1], line)

    interrupted = False
    try:
        history = net.fit(X, Y, loss=loss, optimizer=optimizer, epochs=args.epochs,
                          batch_size=args.batch_size or len(X), shuffle=True, seed=args.seed,
                          l2=args.l2, n_threads=args.threads,
                          validation_data=validation if len(validation[0]) else None,
                          early_stopping=stopping,
                          callbacks=[report_epoch, *extra.pop("callbacks")], **extra)
    except TrainingDiverged as exc:
        raise RunFailed(str(exc)) from None
    except KeyboardInterrupt as exc:
        interrupted = True
        history = getattr(exc, "history", None) or {"loss": [], "seconds": []}
    finally:
        progress.close()
    history["test_loss"] = test_losses
    done = first + len(history["loss"])
    if interrupted:
        note(f"interrupted after {done} complete epochs: kept the weights after the last "
             "completed batch" + ("; saving them" if args.save else ""), prefix="warning")
    elif stopping is not None and stopping.best_epoch is not None:
        key = stopping.key(history).replace("_", " ")
        ended = (f"ran all {done} epochs" if done >= args.epochs else
                 f"stopped after epoch {done}: no lower {key} in {args.patience} epochs"
                 if stopping.wait >= args.patience else
                 f"stopped after epoch {done}: L-BFGS ended its run")
        print(f"early stopping: {ended}; kept the weights of epoch {stopping.best_epoch + 1}, "
              f"the lowest {key} ({stopping.best:.6f})", flush=True)
    return history, float(sum(history["seconds"])), interrupted


def _report(net, meta: ModelMeta, sets: dict, history: dict, seconds: float, args) -> None:
    """The final metrics and the training time per sample."""
    for name, label in (("train", "train"), ("val", "val  "), ("test", "test ")):
        X, Y = sets[name]
        if len(X):
            for line in metrics_lines(net, meta, X, Y, label):
                print(line)
    n_train, epochs = len(sets["train"][0]), len(history["loss"])
    if epochs:
        print(f"time per training sample {seconds / (epochs * n_train) * 1e6:.3g} µs "
              f"({epochs} epochs x {n_train} rows, batch {args.batch_size or 'all rows'}, "
              f"{seconds:.3g} s in all)", flush=True)


def _plot(history: dict, sizes, table, sets: dict, loss: str, path: str) -> None:
    from ..plotting import plot_history

    curves = {"loss": history["loss"]}
    label = "validation rows (after the epoch)"
    if "val_loss" in history:
        curves["val_loss"] = history["val_loss"]
    elif history["test_loss"]:
        curves["val_loss"] = history["test_loss"]
        label = "held-out test rows (after the epoch)"
    n = {name: len(X) for name, (X, _) in sets.items()}
    plot_history(curves, path, loss=loss, validation_label=label,
                 title=f"fastbp {'-'.join(map(str, sizes))} on {Path(table.source).name}: "
                       f"{n['train']} train / {n['val']} val / {n['test']} test rows")
    print(f"plotted the loss curve to {path}")
