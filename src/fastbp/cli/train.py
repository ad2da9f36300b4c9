"""``fastbp train``: fit a network to a table, report it, save and plot it."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

from .errors import EXIT_OK, RunFailed, UsageError
from .model import OUTPUT_FOR_LOSS, ModelMeta, fit_scaler, save_model
from .options import (DTYPES, HIDDEN_ACTIVATIONS, LOSS_NAMES, check_output_path, float_in,
                      hidden_widths, int_at_least)
from .tables import DATASETS, MAX_AUTO_CLASSES, encode_target, feature_matrix, load_table


def add_parser(subparsers) -> None:
    """Add the ``train`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train a network on a CSV, an .npz or an embedded dataset",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=(
            "Train by minibatch SGD and report the loss per epoch, the final metrics and the "
            "training time per sample. Class labels are one-hot encoded; features (and "
            "regression targets) are standardized on the training rows."))
    p.set_defaults(run=run)
    p.add_argument("data", metavar="DATA",
                   help=f"a CSV with a header row, an .npz, or one of: {', '.join(DATASETS)}")
    p.add_argument("--target", metavar="COL",
                   help="the target column (for a CSV or .npz: required)")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: classification for text labels, bce/cross_entropy, or at most "
                        f"{MAX_AUTO_CLASSES} distinct integer values; else regression")
    p.add_argument("--hidden", type=hidden_widths, default=[32], metavar="WIDTHS",
                   help="hidden layer widths, e.g. 64,32 ('none' for no hidden layer)")
    p.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh",
                   help="hidden activation")
    p.add_argument("--loss", choices=LOSS_NAMES, default=None,
                   help="default: cross_entropy (softmax output) for classification, "
                        "mse (identity output) for regression")
    p.add_argument("--epochs", type=int_at_least(1), default=20)
    p.add_argument("--batch-size", type=int_at_least(1), default=32)
    p.add_argument("--lr", type=float_in(0, strict=True), default=0.05, help="learning rate")
    p.add_argument("--momentum", type=float_in(0, 1, strict_max=True), default=0.9)
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    p.add_argument("--l2", type=float_in(0), default=0.0, help="L2 penalty λ")
    p.add_argument("--dtype", choices=DTYPES, default="float64")
    p.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the split, the initial weights and the shuffling")
    p.add_argument("--test-fraction", type=float_in(0, 1, strict_max=True), default=0.25,
                   help="fraction of the rows held out for testing (0: none)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="use the features and targets as they are")
    p.add_argument("--threads", type=int_at_least(1), default=None,
                   help="training threads, as in Network.fit (default: the BLAS "
                        "library's own setting)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (default: when stderr is a terminal)")
    p.add_argument("--save", metavar="MODEL.npz", help="save the trained model")
    p.add_argument("--plot", metavar="CURVE.png",
                   help="plot the train and test loss per epoch (needs matplotlib)")


def run(args) -> int:
    """Run ``fastbp train`` on the parsed ``args``; the exit code."""
    _check_outputs(args)
    table = load_table(args.data)
    meta, X, Y = _prepare(table, args)
    train, test = _split(X.shape[0], args)
    _fit_scaling(meta, X[train], Y[train], args.standardize)
    X, Y = meta.inputs(X), meta.targets(Y)
    fit_rows, held_out = (X[train], Y[train]), (X[test], Y[test])
    net, optimizer = _network(meta, X.shape[1], Y.shape[1], args)
    what = (f"{len(meta.classes)} classes, one-hot" if meta.task == "classification"
            else f"regression{', standardized' if args.standardize else ''}")
    print(f"fastbp train: {net} on {table.source}: {len(train)} train / {len(test)} test rows, "
          f"{X.shape[1]} features, target {meta.target!r} ({what}), loss {meta.loss}", flush=True)

    history, seconds = _epochs(net, optimizer, meta.loss, fit_rows, held_out, args)
    _report(net, meta, fit_rows, held_out, seconds, args)
    if args.save is not None:
        save_model(net, meta, args.save)
        print(f"saved the model to {args.save}")
    if args.plot is not None:
        _plot(history, net.sizes, table, len(train), len(test), meta.loss, args.plot)
    return EXIT_OK


def _check_outputs(args) -> None:
    """Refuse unwritable outputs before any work is done."""
    check_output_path(args.save, "--save")
    check_output_path(args.plot, "--plot")
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError('--plot needs matplotlib: pip install "fastbp[plot]"')


def _prepare(table, args) -> tuple:
    """(meta without the scaling, X, Y) from the table and the options."""
    target = args.target or table.default_target
    if target is None:
        raise UsageError(f"{args.data}: name the target column with --target "
                         f"(columns: {', '.join(table.names()[:12])})")
    task, Y, classes = encode_target(table, target, args.task, args.loss)
    X, features = feature_matrix(table, exclude=target)
    loss = args.loss or ("cross_entropy" if task == "classification" else "mse")
    meta = ModelMeta(target=target, task=task, loss=loss, features=features, classes=classes,
                     x_mean=[0.0] * X.shape[1], x_scale=[1.0] * X.shape[1],
                     y_mean=[0.0] * Y.shape[1], y_scale=[1.0] * Y.shape[1])
    return meta, X, Y


def _split(n: int, args) -> tuple:
    """Shuffled (train, test) row indices; at least one test row if any are asked for."""
    order = np.random.default_rng(args.seed).permutation(n)
    n_test = int(round(args.test_fraction * n))
    if args.test_fraction > 0:
        n_test = max(n_test, 1)
    if n - n_test < 1:
        raise UsageError(f"{args.data}: {n} rows leave no training rows with "
                         f"--test-fraction {args.test_fraction:g}")
    return order[:n - n_test], order[n - n_test:]


def _fit_scaling(meta: ModelMeta, X_train, Y_train, standardize: bool) -> None:
    """Standardize on the training rows: the features, and a regression target."""
    if not standardize:
        return
    meta.x_mean, meta.x_scale = fit_scaler(X_train)
    if meta.task == "regression":
        meta.y_mean, meta.y_scale = fit_scaler(Y_train)


def _network(meta: ModelMeta, n_inputs: int, n_outputs: int, args) -> tuple:
    """(network, optimizer) as the options ask, once the memory check passes."""
    from ..network import Network
    from ..optim import SGD

    sizes = [n_inputs, *args.hidden, n_outputs]
    _check_memory(sizes, args.batch_size, np.dtype(args.dtype).itemsize)
    output = OUTPUT_FOR_LOSS.get(meta.loss,
                                 "sigmoid" if meta.task == "classification" else "identity")
    net = Network(sizes, activation=args.activation, output_activation=output,
                  dtype=args.dtype, seed=args.seed)
    return net, SGD(lr=args.lr, momentum=args.momentum, nesterov=args.nesterov)


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


def _epochs(net, optimizer, loss: str, fit_rows: tuple, held_out: tuple, args) -> tuple:
    """Train epoch by epoch, printing a line each; (history, seconds in fit).

    ``fit_rows`` and ``held_out`` are (X, Y) pairs; the held-out loss is
    measured after each epoch when there are held-out rows.
    """
    from .._progress import EpochProgress
    from ..network import TrainingDiverged

    (X_train, Y_train), (X_test, Y_test) = fit_rows, held_out
    shuffle_rng = np.random.default_rng(args.seed)
    history = {"loss": [], "val_loss": [], "seconds": []}
    show_bar = sys.stderr.isatty() if args.progress is None else args.progress
    progress = EpochProgress(args.epochs, bar=show_bar, lines=True, desc="train")
    seconds = 0.0
    try:
        for epoch in range(1, args.epochs + 1):
            started = time.perf_counter()
            # one epoch per call: the optimiser keeps its velocity and the
            # shared generator its state, so this equals one fit(epochs=N)
            result = net.fit(X_train, Y_train, loss=loss, optimizer=optimizer, epochs=1,
                             batch_size=args.batch_size, shuffle=True, seed=shuffle_rng,
                             l2=args.l2, n_threads=args.threads)
            elapsed = time.perf_counter() - started
            seconds += elapsed
            history["loss"].append(result["loss"][0])
            history["seconds"].append(result["seconds"][0])
            line = f"epoch {epoch:3d}/{args.epochs}  train loss {result['loss'][0]:.6f}"
            if len(X_test):
                history["val_loss"].append(net.loss(X_test, Y_test, loss=loss))
                line += f"  test loss {history['val_loss'][-1]:.6f}"
            progress.update(result["loss"][0], elapsed, line)
    except TrainingDiverged as exc:
        raise RunFailed(str(exc)) from None
    finally:
        progress.close()
    if not len(X_test):
        del history["val_loss"]
    return history, seconds


def _metrics(net, X, Y, meta: ModelMeta) -> str:
    """Loss plus accuracy, or rmse and r2 in the target's own units."""
    value = net.loss(X, Y, loss=meta.loss)
    out = net.predict(X)
    if meta.task == "classification":
        accuracy = float(np.mean(out.argmax(1) == Y.argmax(1)))
        return f"loss {value:.5g}  accuracy {accuracy:.4f}"
    y_scale = np.asarray(meta.y_scale)
    rmse = float(np.sqrt(np.mean(((out - Y) * y_scale) ** 2)))
    spread = float(np.mean(((Y - Y.mean(axis=0)) * y_scale) ** 2))
    r2 = 1 - rmse ** 2 / spread if spread > 0 else float("nan")
    return f"loss {value:.5g}  rmse {rmse:.5g}  r2 {r2:.4f}"


def _report(net, meta: ModelMeta, fit_rows: tuple, held_out: tuple, seconds: float,
            args) -> None:
    """The final metrics and the training time per sample."""
    n_train = len(fit_rows[0])
    print(f"train {_metrics(net, *fit_rows, meta)}")
    if len(held_out[0]):
        print(f"test  {_metrics(net, *held_out, meta)}")
    print(f"time per training sample {seconds / (args.epochs * n_train) * 1e6:.3g} µs "
          f"({args.epochs} epochs x {n_train} rows, batch {args.batch_size}, "
          f"{seconds:.3g} s in all)")


def _plot(history: dict, sizes, table, n_train: int, n_test: int, loss: str,
          path: str) -> None:
    from ..plotting import plot_history

    plot_history(history, path, loss=loss,
                 validation_label="held-out test rows (after the epoch)",
                 title=f"fastbp {'-'.join(map(str, sizes))} on {Path(table.source).name}: "
                       f"{n_train} train / {n_test} test rows")
    print(f"plotted the loss curve to {path}")
