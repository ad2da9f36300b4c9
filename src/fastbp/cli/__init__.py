"""The ``fastbp`` command line (also ``python -m fastbp``).

Commands::

    fastbp train DATA [--target COL] [--hidden 64,32] [--loss ...] [--save M.npz] [--plot C.png]
    fastbp predict MODEL DATA [--out predictions.csv]
    fastbp gradcheck [MODEL [DATA]]
    fastbp bench [--quick] [compare.py options]

DATA is a CSV file with a header row (``.csv``, optionally gzipped as
``.csv.gz``), an ``.npz`` file of equally long 1-D or 2-D arrays (one array
per column or group of columns), or the name of an embedded dataset
(``digits``).

Exit codes: 0 success; 1 the run failed (training diverged, a gradient check
over its tolerance, a failing benchmark); 2 bad input or usage, reported as
one line on stderr.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: member of a model .npz that holds the CLI's preprocessing (JSON in a 0-d str array)
META_KEY = "fastbp_cli"
META_VERSION = 1
#: a numeric target with integral values and at most this many distinct ones
#: is taken as class labels (unless --task says otherwise)
MAX_AUTO_CLASSES = 20
MAX_WIDTH = 2**31 - 1
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
LOSS_NAMES = ("mse", "bce", "cross_entropy")
#: the output activation each loss is trained with (mse: by task)
OUTPUT_FOR_LOSS = {"bce": "sigmoid", "cross_entropy": "softmax"}
#: gradient-check tolerances per dtype: (vs reference, vs finite differences)
GRADCHECK_TOLERANCE = {"float64": (1e-10, 1e-6), "float32": (1e-4, 1e-3)}


class UsageError(Exception):
    """Bad input or usage: reported as one line on stderr, exit code 2.

    ``prog`` names the command when the error comes from its parser.
    """

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class RunFailed(Exception):
    """The run itself failed (not the input): one line on stderr, exit code 1."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised rather than printed."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


# -- argument types ----------------------------------------------------------

def _int_at_least(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def _float_in(low: float, high: float | None = None, low_open: bool = False,
              high_open: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        if value < low or (low_open and value == low):
            relation = ">" if low_open else ">="
            raise argparse.ArgumentTypeError(f"must be {relation} {low:g}, got {text}")
        if high is not None and (value > high or (high_open and value == high)):
            relation = "<" if high_open else "<="
            raise argparse.ArgumentTypeError(f"must be {relation} {high:g}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def _widths(text: str, what: str, allow_empty: bool) -> list:
    text = text.strip()
    if text.lower() in ("", "none"):
        if allow_empty:
            return []
        raise argparse.ArgumentTypeError(f"no {what} given")
    widths = []
    for part in text.split(","):
        try:
            width = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be comma-separated positive integers like 64,32; got {text!r}"
            ) from None
        if not 1 <= width <= MAX_WIDTH:
            raise argparse.ArgumentTypeError(
                f"every {what[:-1] if what.endswith('s') else what} must be between 1 and "
                f"{MAX_WIDTH}, got {width}")
        widths.append(width)
    return widths


def _hidden(text: str) -> list:
    return _widths(text, "hidden widths", allow_empty=True)


_hidden.__name__ = "widths"


def _sizes(text: str) -> list:
    sizes = _widths(text, "layer sizes", allow_empty=False)
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(
            f"needs at least an input and an output width, got {text!r}")
    return sizes


_sizes.__name__ = "sizes"


# -- data --------------------------------------------------------------------

@dataclass
class _Column:
    """One named column (1-D) or group of columns (2-D) of a table."""

    name: str
    values: np.ndarray
    #: float64 values; else text (an object array of str)
    numeric: bool
    #: where the first non-numeric entry is, e.g. "line 4" or "row 3", and that entry
    bad: tuple | None = None

    @property
    def width(self) -> int:
        return 1 if self.values.ndim == 1 else self.values.shape[1]

    def not_numeric(self, source: str) -> str:
        where, value = self.bad
        what = "is empty" if value == "" else f"holds {value!r}, not a finite number"
        return f"{source}: {where}, column {self.name!r} {what}"


@dataclass
class _Table:
    source: str
    columns: list = field(default_factory=list)
    #: the target of an embedded dataset
    default_target: str | None = None

    @property
    def n_rows(self) -> int:
        return self.columns[0].values.shape[0]

    def names(self) -> list:
        return [c.name for c in self.columns]

    def column(self, name: str, option: str = "--target") -> _Column:
        for c in self.columns:
            if c.name == name:
                return c
        shown = ", ".join(repr(n) for n in self.names()[:12])
        more = f" and {len(self.columns) - 12} more" if len(self.columns) > 12 else ""
        raise UsageError(f"{self.source}: unknown column {name!r} ({option}); "
                         f"the columns are {shown}{more}")


def _digits_table() -> _Table:
    from ..datasets import load_digits

    X, labels = load_digits(one_hot=False)
    columns = [_Column(f"pixel{j}", X[:, j], True) for j in range(X.shape[1])]
    columns.append(_Column("digit", labels.astype(np.float64), True))
    return _Table("digits", columns, default_target="digit")


#: embedded datasets: name -> loader of a _Table
DATASETS = {"digits": _digits_table}


def _numeric_column(name: str, cells: list, lines: list) -> _Column:
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return _Column(name, values, True)
    # find the first bad cell; Python's float() also takes what NumPy may not
    parsed = []
    for line, cell in zip(lines, cells):
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            return _Column(name, np.array([c.strip() for c in cells], dtype=object), False,
                           (f"line {line}", cell.strip()))
        parsed.append(value)
    return _Column(name, np.array(parsed), True)


def _read_csv(path: str) -> _Table:
    """Read a CSV file with a header row; columns are numeric where every cell is."""
    opener = gzip.open if path.endswith(".gz") else open
    rows, lines = [], []
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text; is it a CSV file?") from None
    except csv.Error as exc:
        raise UsageError(f"{path}: not a readable CSV file: {exc}") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise UsageError(f"{path}: not a readable gzip file: {exc}") from None
    if not rows:
        raise UsageError(f"{path}: the file is empty (expected a header row and data rows)")
    header = [name.strip() for name in rows[0]]
    for j, name in enumerate(header):
        if not name:
            raise UsageError(f"{path}: column {j + 1} of the header (line {lines[0]}) has no name")
        if name in header[:j]:
            raise UsageError(f"{path}: the header names column {name!r} twice")
    body, body_lines = rows[1:], lines[1:]
    if not body:
        raise UsageError(f"{path}: the file has a header but no data rows")
    for row, line in zip(body, body_lines):
        if len(row) != len(header):
            raise UsageError(f"{path}: line {line} has {len(row)} fields, "
                             f"the header has {len(header)}")
    cells = list(zip(*body))
    return _Table(path, [_numeric_column(name, list(col), body_lines)
                        for name, col in zip(header, cells)])


def _read_npz(path: str) -> _Table:
    """Read an ``.npz`` of equally long 1-D or 2-D arrays, one _Column per array."""
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not an .npz file (not a zip archive of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        reason = " ".join(str(exc).split())
        raise UsageError(f"{path}: not a readable .npz file: {reason}") from None
    arrays.pop(META_KEY, None)
    if not arrays:
        raise UsageError(f"{path}: the .npz file holds no arrays")
    table, n_rows = _Table(path), None
    for name, array in arrays.items():
        if array.ndim not in (1, 2):
            raise UsageError(f"{path}: array {name!r} is {array.ndim}-D with shape {array.shape}; "
                             "use 1-D (one column) or 2-D (rows x columns) arrays")
        if n_rows is None:
            n_rows = array.shape[0]
        if array.shape[0] != n_rows:
            raise UsageError(f"{path}: array {name!r} has {array.shape[0]} rows, "
                             f"the others {n_rows}")
        if array.size == 0:
            raise UsageError(f"{path}: array {name!r} is empty (shape {array.shape})")
        if array.dtype.kind in "biuf":
            values = array.astype(np.float64)
            finite = np.isfinite(values)
            if finite.all():
                table.columns.append(_Column(name, values, True))
                continue
            row = int(np.argwhere(~finite)[0][0])
            bad = (f"row {row}", str(array[row]))
        elif array.dtype.kind in "US" and array.ndim == 1:
            values = np.array([str(v.decode() if isinstance(v, bytes) else v).strip()
                               for v in array], dtype=object)
            bad = ("row 0", values[0])
        else:
            raise UsageError(f"{path}: array {name!r} holds {array.dtype} data, "
                             "not numbers or labels")
        table.columns.append(_Column(name, values, False, bad))
    return table


def _load_table(data: str) -> _Table:
    """A _Table from a CSV path, an .npz path or an embedded dataset's name."""
    if os.path.isdir(data):
        raise UsageError(f"{data}: is a directory, not a data file")
    if not os.path.exists(data):
        if data in DATASETS:
            return DATASETS[data]()
        raise UsageError(f"{data}: no such file (nor an embedded dataset: "
                         f"{', '.join(sorted(DATASETS))})")
    try:
        if os.path.getsize(data) == 0:
            raise UsageError(f"{data}: the file is empty")
        return _read_npz(data) if data.lower().endswith(".npz") else _read_csv(data)
    except PermissionError:
        raise UsageError(f"{data}: permission denied") from None


def _feature_matrix(table: _Table, spec: list | None = None, exclude: str | None = None):
    """The features as an (n, d) float64 matrix, with their [name, width] spec.

    With ``spec`` (from a saved model) the named columns are taken in that
    order and others are ignored; else every column but ``exclude``.
    """
    if spec is None:
        chosen = [c for c in table.columns if c.name != exclude]
        if not chosen:
            raise UsageError(f"{table.source}: no feature columns besides the target {exclude!r}")
    else:
        chosen = []
        for name, width in spec:
            column = table.column(name, "a feature of the model")
            if column.width != width:
                raise UsageError(f"{table.source}: column {name!r} has width {column.width}, "
                                 f"the model was trained with {width}")
            chosen.append(column)
    for column in chosen:
        if not column.numeric:
            raise UsageError(column.not_numeric(table.source) +
                             " (only the target column may hold text labels)")
    X = np.hstack([c.values.reshape(table.n_rows, -1) for c in chosen])
    return X, [[c.name, c.width] for c in chosen]


def _label(value):
    """A class label as JSON-friendly and readable: 3.0 -> 3, strings unchanged."""
    if isinstance(value, str):
        return value
    value = float(value)
    return int(value) if value.is_integer() else value


def _is_missing(value) -> bool:
    """An empty label, or one that reads as NaN or infinity."""
    if isinstance(value, str) and not value.strip():
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _is_one_hot(Y: np.ndarray) -> bool:
    return bool(np.isin(Y, (0.0, 1.0)).all() and (Y.sum(axis=1) == 1).all())


def _encode_target(table: _Table, name: str, task: str, loss: str | None):
    """(task, Y matrix, class labels or None) for the target column.

    task "auto" picks classification for text labels, for one-hot 2-D
    targets, for bce/cross_entropy, and for integral values with at most
    MAX_AUTO_CLASSES distinct ones; else regression.
    """
    column = table.column(name)
    values = column.values
    if task == "auto":
        if not column.numeric or loss in OUTPUT_FOR_LOSS:
            task = "classification"
        elif values.ndim == 2:
            task = "classification" if _is_one_hot(values) else "regression"
        else:
            distinct = np.unique(values)
            integral = bool(np.all(distinct == np.round(distinct)))
            task = ("classification" if integral and len(distinct) <= MAX_AUTO_CLASSES
                    else "regression")
    if task == "regression":
        if loss in OUTPUT_FOR_LOSS:
            raise UsageError(f"--loss {loss} needs class labels, but --task is regression")
        if not column.numeric:
            raise UsageError(column.not_numeric(table.source)
                             + " (a regression target must be numeric)")
        return task, values.reshape(table.n_rows, -1), None
    if values.ndim == 2:
        if not _is_one_hot(values):
            raise UsageError(f"{table.source}: the 2-D target {name!r} is not one-hot, "
                             "so it cannot be taken as class labels")
        return task, values, list(range(values.shape[1]))
    if column.numeric:
        classes = np.unique(values)
        index = np.searchsorted(classes, values)
    else:
        for row, value in enumerate(values):
            if _is_missing(value):
                raise UsageError(f"{table.source}: data row {row + 1} has no valid target "
                                 f"{name!r}: {str(value)!r}")
        classes, index = np.unique(values.astype(str), return_inverse=True)
    if len(classes) < 2:
        raise UsageError(f"{table.source}: the target {name!r} has a single class "
                         f"({_label(classes[0])!r}); classification needs at least two")
    return task, np.eye(len(classes))[index], [_label(c) for c in classes]


def _one_hot_as_trained(table: _Table, name: str, classes: list) -> np.ndarray:
    """One-hot rows of the target column over a saved model's classes, in their order."""
    values = table.column(name).values
    if values.ndim == 2:
        if values.shape[1] != len(classes) or not _is_one_hot(values):
            raise UsageError(f"{table.source}: the target {name!r} is not one-hot over the "
                             f"model's {len(classes)} classes")
        return values
    index = {str(label): k for k, label in enumerate(classes)}
    Y = np.zeros((len(values), len(classes)))
    for row, value in enumerate(values):
        key = str(value if isinstance(value, str) else _label(value))
        if key not in index:
            raise UsageError(f"{table.source}: data row {row + 1} has the label {key!r}, "
                             f"which the model was not trained on")
        Y[row, index[key]] = 1
    return Y


# -- models with the CLI's preprocessing --------------------------------------

def _save_model(net, meta: dict, path: str) -> None:
    """Save ``net`` as fastbp.load reads it, plus ``meta`` under META_KEY, atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-cli-", suffix=".npz", dir=folder)
    os.close(fd)
    try:
        net.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_STORED) as archive:
            with archive.open(META_KEY + ".npy", "w") as member:
                np.lib.format.write_array(member, np.array(json.dumps(meta)), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_model(path: str):
    """(network, meta or None) from a model file."""
    from ..io import load

    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, not a model file")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a fastbp model (not an .npz archive)")
    net = load(path)
    meta = None
    with np.load(path, allow_pickle=False) as archive:
        if META_KEY in archive.files:
            try:
                meta = json.loads(str(archive[META_KEY]))
            except ValueError as exc:
                raise UsageError(f"{path}: damaged {META_KEY} entry: {exc}") from None
    if meta is not None and meta.get("version", 0) > META_VERSION:
        raise UsageError(f"{path}: written by a newer fastbp (CLI format {meta['version']})")
    return net, meta


def _standardize(X: np.ndarray, mean, scale) -> np.ndarray:
    return (X - np.asarray(mean)) / np.asarray(scale)


def _fit_scaler(X: np.ndarray) -> tuple:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return mean.tolist(), scale.tolist()


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


def _check_writable(path: str | None, option: str) -> None:
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory")


# -- train --------------------------------------------------------------------

def _metrics(net, X, Y, loss, task, y_scale) -> str:
    value = net.loss(X, Y, loss=loss)
    out = net.predict(X)
    if task == "classification":
        accuracy = float(np.mean(out.argmax(1) == Y.argmax(1)))
        return f"loss {value:.5g}  accuracy {accuracy:.4f}"
    residual = (out - Y) * np.asarray(y_scale)
    rmse = float(np.sqrt(np.mean(residual ** 2)))
    spread = float(np.mean(((Y - Y.mean(axis=0)) * np.asarray(y_scale)) ** 2))
    r2 = 1 - rmse ** 2 / spread if spread > 0 else float("nan")
    return f"loss {value:.5g}  rmse {rmse:.5g}  r2 {r2:.4f}"


def _cmd_train(args) -> int:
    from .._progress import EpochProgress
    from ..network import Network, TrainingDiverged
    from ..optim import SGD

    _check_writable(args.save, "--save")
    _check_writable(args.plot, "--plot")
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError('--plot needs matplotlib: pip install "fastbp[plot]"')
    table = _load_table(args.data)
    target = args.target or table.default_target
    if target is None:
        raise UsageError(f"{args.data}: name the target column with --target "
                         f"(columns: {', '.join(table.names()[:12])})")
    task, Y, classes = _encode_target(table, target, args.task, args.loss)
    X, features = _feature_matrix(table, exclude=target)
    loss = args.loss or ("cross_entropy" if task == "classification" else "mse")
    output = OUTPUT_FOR_LOSS.get(loss, "sigmoid" if task == "classification" else "identity")

    n = X.shape[0]
    order = np.random.default_rng(args.seed).permutation(n)
    n_test = int(round(args.test_fraction * n))
    if args.test_fraction > 0:
        n_test = max(n_test, 1)
    if n - n_test < 1:
        raise UsageError(f"{args.data}: {n} rows leave no training rows with "
                         f"--test-fraction {args.test_fraction:g}")
    train, test = order[:n - n_test], order[n - n_test:]
    x_mean, x_scale = (_fit_scaler(X[train]) if args.standardize
                       else ([0.0] * X.shape[1], [1.0] * X.shape[1]))
    if task == "regression" and args.standardize:
        y_mean, y_scale = _fit_scaler(Y[train])
    else:
        y_mean, y_scale = [0.0] * Y.shape[1], [1.0] * Y.shape[1]
    X = _standardize(X, x_mean, x_scale)
    Y = _standardize(Y, y_mean, y_scale) if task == "regression" else Y
    X_train, Y_train, X_test, Y_test = X[train], Y[train], X[test], Y[test]

    sizes = [X.shape[1], *args.hidden, Y.shape[1]]
    _check_memory(sizes, args.batch_size, np.dtype(args.dtype).itemsize)
    net = Network(sizes, activation=args.activation, output_activation=output,
                  dtype=args.dtype, seed=args.seed)
    optimizer = SGD(lr=args.lr, momentum=args.momentum, nesterov=args.nesterov)
    what = (f"{len(classes)} classes, one-hot" if task == "classification"
            else f"regression{', standardized' if args.standardize else ''}")
    print(f"fastbp train: {net} on {table.source}: {len(train)} train / {len(test)} test rows, "
          f"{X.shape[1]} features, target {target!r} ({what}), loss {loss}", flush=True)

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
            if len(test):
                history["val_loss"].append(net.loss(X_test, Y_test, loss=loss))
                line += f"  test loss {history['val_loss'][-1]:.6f}"
            progress.update(result["loss"][0], elapsed, line)
    except TrainingDiverged as exc:
        raise RunFailed(str(exc)) from None
    finally:
        progress.close()
    if not len(test):
        del history["val_loss"]

    print(f"train {_metrics(net, X_train, Y_train, loss, task, y_scale)}")
    if len(test):
        print(f"test  {_metrics(net, X_test, Y_test, loss, task, y_scale)}")
    print(f"time per training sample {seconds / (args.epochs * len(train)) * 1e6:.3g} µs "
          f"({args.epochs} epochs x {len(train)} rows, batch {args.batch_size}, "
          f"{seconds:.3g} s in all)")
    if args.save is not None:
        meta = {"version": META_VERSION, "target": target, "task": task, "loss": loss,
                "features": features, "classes": classes, "x_mean": x_mean,
                "x_scale": x_scale, "y_mean": y_mean, "y_scale": y_scale}
        _save_model(net, meta, args.save)
        print(f"saved the model to {args.save}")
    if args.plot is not None:
        from ..plotting import plot_history

        plot_history(history, args.plot, loss=loss,
                     validation_label="held-out test rows (after the epoch)",
                     title=f"fastbp {'-'.join(map(str, sizes))} on {Path(table.source).name}: "
                           f"{len(train)} train / {len(test)} test rows")
        print(f"plotted the loss curve to {args.plot}")
    return EXIT_OK


# -- predict ------------------------------------------------------------------

def _format(value) -> str:
    return f"{value:.8g}" if isinstance(value, float) else str(value)


def _cmd_predict(args) -> int:
    net, meta = _load_model(args.model)
    table = _load_table(args.data)
    if meta is None:
        X, _ = _feature_matrix(table)
        if X.shape[1] != net.sizes[0]:
            raise UsageError(
                f"{args.data}: {X.shape[1]} columns, but the model takes {net.sizes[0]} inputs "
                "(a model saved by `fastbp train --save` picks its columns by name)")
        header = [f"y{k}" for k in range(net.sizes[-1])]
        rows = ([_format(float(v)) for v in row] for row in net.predict(X))
    else:
        X, _ = _feature_matrix(table, spec=meta["features"])
        out = net.predict(_standardize(X, meta["x_mean"], meta["x_scale"])).astype(np.float64)
        target = meta["target"]
        if meta["task"] == "classification":
            classes = meta["classes"]
            header = [target] + [f"{target}={c}" for c in classes]
            rows = ([str(classes[int(np.argmax(row))])] + [_format(float(v)) for v in row]
                    for row in out)
        else:
            out = out * np.asarray(meta["y_scale"]) + np.asarray(meta["y_mean"])
            header = ([target] if out.shape[1] == 1
                      else [f"{target}[{k}]" for k in range(out.shape[1])])
            rows = ([_format(float(v)) for v in row] for row in out)
    if args.out is not None:
        _check_writable(args.out, "--out")
        with open(args.out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        print(f"wrote {X.shape[0]} predictions to {args.out}", file=sys.stderr)
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return EXIT_OK


# -- gradcheck ----------------------------------------------------------------

def _random_targets(rng, loss: str, m: int, n: int) -> np.ndarray:
    if loss == "cross_entropy":
        return np.eye(n)[rng.integers(0, n, m)]
    if loss == "bce":
        return rng.uniform(0, 1, (m, n))
    return rng.normal(size=(m, n))


def _cmd_gradcheck(args) -> int:
    from ..gradcheck import gradcheck
    from ..network import Network

    rng = np.random.default_rng(args.seed)
    if args.model is None:
        loss = args.loss or "mse"
        output = OUTPUT_FOR_LOSS.get(loss, "tanh")
        net = Network(args.sizes, activation=args.activation, output_activation=output,
                      dtype=args.dtype, seed=args.seed)
        # non-zero biases, so that their gradients are checked too
        net.set_weights(net.weights, [rng.normal(scale=0.3, size=b.shape) for b in net.biases])
        X = rng.normal(size=(args.rows, net.sizes[0]))
        Y = _random_targets(rng, loss, args.rows, net.sizes[-1])
        source = f"{args.rows} random rows"
    else:
        net, meta = _load_model(args.model)
        if args.dtype_given:
            net = net.astype(args.dtype)
        default_loss = (meta or {}).get("loss") or {
            "softmax": "cross_entropy", "sigmoid": "bce"}.get(net.output_activation, "mse")
        loss = args.loss or default_loss
        if args.data is None:
            X = rng.normal(size=(args.rows, net.sizes[0]))
            Y = _random_targets(rng, loss, args.rows, net.sizes[-1])
            source = f"{args.rows} random rows"
        else:
            if meta is None:
                raise UsageError(f"{args.model}: checking on DATA needs a model saved by "
                                 "`fastbp train --save` (it records the columns and the target)")
            table = _load_table(args.data)
            X, _ = _feature_matrix(table, spec=meta["features"])
            if meta["task"] == "classification":
                Y = _one_hot_as_trained(table, meta["target"], meta["classes"])
            else:
                _, Y, _ = _encode_target(table, meta["target"], "regression", "mse")
                Y = _standardize(Y, meta["y_mean"], meta["y_scale"])
            X = _standardize(X, meta["x_mean"], meta["x_scale"])
            rows = rng.permutation(X.shape[0])[:args.rows]
            X, Y = X[rows], Y[rows]
            source = f"{len(rows)} rows of {table.source}"
    dtype = net.dtype.name
    result = gradcheck(net, X, Y, loss=loss, l2=args.l2, max_params=args.max_params,
                       seed=args.seed)
    tol_ref, tol_fd = GRADCHECK_TOLERANCE[dtype]
    print(f"fastbp gradcheck: {net}, loss {loss}, l2 {args.l2:g}, {source}, "
          f"{net.n_params} parameters")
    checks = [("compiled vs reference (per-neuron Python)", result.reference, tol_ref),
              ("compiled vs graph engine (reverse mode)", result.graph, tol_ref),
              ("compiled vs central finite differences", result.finite_differences, tol_fd)]
    failed = False
    for name, error, tolerance in checks:
        ok = error <= tolerance
        failed |= not ok
        print(f"{name:42s} max relative error {error:.3e}  "
              f"(tolerance {tolerance:.0e})  {'ok' if ok else 'FAIL'}")
    if failed:
        raise RunFailed("the compiled gradients disagree with the oracles")
    return EXIT_OK


# -- bench --------------------------------------------------------------------

def _find_bench_script(start: Path | None = None) -> Path | None:
    """bench/compare.py in ``start`` (default: the current directory) or its
    nearest parent that has one, else None."""
    start = Path.cwd() if start is None else start
    for folder in (start, *start.parents):
        script = folder / "bench" / "compare.py"
        if script.is_file():
            return script
    return None


def _cmd_bench(args, extra: list) -> int:
    script = _find_bench_script()
    if script is None:
        raise UsageError(
            "bench/compare.py not found in the current directory or its parents: the benchmark "
            "is not part of the installed package; run `fastbp bench` inside a fastbp source "
            "checkout")
    command = [sys.executable, str(script)] + (["--quick"] if args.quick else []) + extra
    print(f"fastbp bench: {' '.join(command)}", flush=True)
    return subprocess.call(command, cwd=script.parent.parent)


# -- main ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastbp`` command.

    Returns
    -------
    argparse.ArgumentParser
        With the sub-commands train, predict, gradcheck and bench; its
        errors raise :class:`UsageError` instead of exiting.
    """
    from .. import __version__

    parser = _Parser(prog="fastbp", description="Train and use dense feed-forward networks "
                     "with fastbp's compiled backpropagation.",
                     epilog="Exit codes: 0 ok, 1 the run failed, 2 bad input.")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)
    formatter = argparse.ArgumentDefaultsHelpFormatter

    train = commands.add_parser(
        "train", help="train a network on a CSV, an .npz or an embedded dataset",
        formatter_class=formatter, description=(
            "Train by minibatch SGD and report the loss per epoch, the final metrics and the "
            "training time per sample. Class labels are one-hot encoded; features (and "
            "regression targets) are standardized on the training rows."))
    train.add_argument("data", metavar="DATA",
                       help=f"a CSV with a header row, an .npz, or one of: {', '.join(DATASETS)}")
    train.add_argument("--target", metavar="COL",
                       help="the target column (for a CSV or .npz: required)")
    train.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                       help="auto: classification for text labels, bce/cross_entropy, or at most "
                            f"{MAX_AUTO_CLASSES} distinct integer values; else regression")
    train.add_argument("--hidden", type=_hidden, default=[32], metavar="WIDTHS",
                       help="hidden layer widths, e.g. 64,32 ('none' for no hidden layer)")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh",
                       help="hidden activation")
    train.add_argument("--loss", choices=LOSS_NAMES, default=None,
                       help="default: cross_entropy (softmax output) for classification, "
                            "mse (identity output) for regression")
    train.add_argument("--epochs", type=_int_at_least(1), default=20)
    train.add_argument("--batch-size", type=_int_at_least(1), default=32)
    train.add_argument("--lr", type=_float_in(0, low_open=True), default=0.05,
                       help="learning rate")
    train.add_argument("--momentum", type=_float_in(0, 1, high_open=True), default=0.9)
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    train.add_argument("--l2", type=_float_in(0), default=0.0, help="L2 penalty λ")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    train.add_argument("--seed", type=_int_at_least(0), default=0,
                       help="seed of the split, the initial weights and the shuffling")
    train.add_argument("--test-fraction", type=_float_in(0, 1, high_open=True), default=0.25,
                       help="fraction of the rows held out for testing (0: none)")
    train.add_argument("--no-standardize", dest="standardize", action="store_false",
                       help="use the features and targets as they are")
    train.add_argument("--threads", type=_int_at_least(1), default=None,
                       help="training threads, as in Network.fit (default: the BLAS "
                            "library's own setting)")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a progress bar on stderr (default: when stderr is a terminal)")
    train.add_argument("--save", metavar="MODEL.npz", help="save the trained model")
    train.add_argument("--plot", metavar="CURVE.png",
                       help="plot the train and test loss per epoch (needs matplotlib)")

    predict = commands.add_parser(
        "predict", help="write a saved model's predictions as CSV", formatter_class=formatter,
        description="Predict with a model saved by `fastbp train --save` (or fastbp.Network.save). "
                    "Classification writes the predicted label and one output per class.")
    predict.add_argument("model", metavar="MODEL", help="a model .npz")
    predict.add_argument("data", metavar="DATA",
                         help="a CSV, an .npz or an embedded dataset's name")
    predict.add_argument("--out", metavar="FILE", help="write the CSV there instead of stdout")

    check = commands.add_parser(
        "gradcheck", formatter_class=formatter,
        help="check the compiled gradients against the reference and finite differences",
        description="Compare the compiled gradients with fastbp.reference (pure Python, per "
                    "neuron) and with central finite differences, on a small random network, "
                    "or on a saved model with random or given data. Exits 1 on a failure.")
    check.add_argument("model", metavar="MODEL", nargs="?", help="a saved model (optional)")
    check.add_argument("data", metavar="DATA", nargs="?",
                       help="data for the model, with its target column (optional)")
    check.add_argument("--sizes", type=_sizes, default=[4, 5, 3],
                       help="layer widths of the random network")
    check.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh",
                       help="hidden activation of the random network")
    check.add_argument("--loss", choices=LOSS_NAMES, default=None,
                       help="default: mse, or the saved model's loss")
    check.add_argument("--rows", type=_int_at_least(1, 10_000), default=8,
                       help="rows in the checked batch")
    check.add_argument("--l2", type=_float_in(0), default=0.0)
    check.add_argument("--dtype", choices=("float32", "float64"), default=None,
                       help="default: float64, or the saved model's dtype")
    check.add_argument("--max-params", type=_int_at_least(1), default=2000,
                       help="parameters checked by finite differences (chosen at random)")
    check.add_argument("--seed", type=_int_at_least(0), default=0)

    bench = commands.add_parser(
        "bench", help="run bench/compare.py (from a source checkout)",
        description="Run the benchmark bench/compare.py of the fastbp source checkout in the "
                    "current directory or a parent; other options are passed on to it.")
    bench.add_argument("--quick", action="store_true",
                       help="the same-work checks only, fast enough for CI")
    return parser


def main(argv=None) -> int:
    """Run the ``fastbp`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 ok, 1 the run failed, 2 bad input (one line on stderr).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = "fastbp"
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        prog = f"fastbp {args.command}"
        if extra and args.command != "bench":
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see {prog} --help)")
        if args.command == "train":
            return _cmd_train(args)
        if args.command == "predict":
            return _cmd_predict(args)
        if args.command == "gradcheck":
            args.dtype_given = args.dtype is not None
            args.dtype = args.dtype or "float64"
            if args.data is not None and args.model is None:
                raise UsageError("DATA needs a MODEL")
            return _cmd_gradcheck(args)
        return _cmd_bench(args, extra)
    except UsageError as exc:
        return _fail(exc.prog or prog, str(exc), EXIT_USAGE)
    except RunFailed as exc:
        return _fail(prog, str(exc), EXIT_FAILED)
    except BrokenPipeError:
        # the reader went away (e.g. `fastbp predict ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except MemoryError:
        return _fail(prog, "out of memory (try smaller --hidden or --batch-size)", EXIT_USAGE)
    except (ValueError, TypeError, OSError) as exc:
        # the library's own validation errors name the problem
        return _fail(prog, str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", 130)


def _fail(prog: str, message: str, code: int) -> int:
    """Print ``prog: error: message`` as one line on stderr; return ``code``."""
    sys.stdout.flush()
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    return code
