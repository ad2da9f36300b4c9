"""Tables: CSV and ``.npz`` files, embedded datasets, their features and target."""
from __future__ import annotations

import csv
import gzip
import math
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .errors import UsageError
from .model import META_KEY, OUTPUT_FOR_LOSS

#: a numeric target with integral values and at most this many distinct ones
#: is taken as class labels (unless --task says otherwise)
MAX_AUTO_CLASSES = 20


@dataclass
class Column:
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
        """The message that names the first non-numeric entry."""
        where, value = self.bad
        what = "is empty" if value == "" else f"holds {value!r}, not a finite number"
        return f"{source}: {where}, column {self.name!r} {what}"


@dataclass
class Table:
    """Named columns of equal length, read from ``source``."""

    source: str
    columns: list = field(default_factory=list)
    #: the target of an embedded dataset
    default_target: str | None = None

    @property
    def n_rows(self) -> int:
        return self.columns[0].values.shape[0]

    def names(self) -> list:
        return [c.name for c in self.columns]

    def column(self, name: str, option: str = "--target") -> Column:
        """The column called ``name``; a UsageError naming ``option`` if there is none."""
        for c in self.columns:
            if c.name == name:
                return c
        shown = ", ".join(repr(n) for n in self.names()[:12])
        more = f" and {len(self.columns) - 12} more" if len(self.columns) > 12 else ""
        raise UsageError(f"{self.source}: unknown column {name!r} ({option}); "
                         f"the columns are {shown}{more}")


def _digits_table() -> Table:
    from ..datasets import load_digits

    X, labels = load_digits(one_hot=False)
    columns = [Column(f"pixel{j}", X[:, j], True) for j in range(X.shape[1])]
    columns.append(Column("digit", labels.astype(np.float64), True))
    return Table("digits", columns, default_target="digit")


#: embedded datasets: name -> loader of a Table
DATASETS = {"digits": _digits_table}


def load_table(data: str) -> Table:
    """Read a CSV file, an ``.npz`` file or an embedded dataset.

    Parameters
    ----------
    data : str
        A path (``.npz`` by its suffix, else CSV, optionally gzipped), or
        the name of an embedded dataset when no such file exists.

    Returns
    -------
    Table

    Raises
    ------
    UsageError
        If the data cannot be read; the message names the file and the place.
    """
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
        return read_npz(data) if data.lower().endswith(".npz") else read_csv(data)
    except PermissionError:
        raise UsageError(f"{data}: permission denied") from None


# -- CSV -----------------------------------------------------------------------

def read_csv(path: str) -> Table:
    """Read a CSV file with a header row (gzipped if ``path`` ends in ``.gz``).

    Parameters
    ----------
    path : str

    Returns
    -------
    Table
        A column is numeric (float64) where every cell is a finite number,
        else text; blank lines are skipped.
    """
    rows, lines = _csv_rows(path)
    if not rows:
        raise UsageError(f"{path}: the file is empty (expected a header row and data rows)")
    header = _csv_header(path, rows[0], lines[0])
    body, body_lines = rows[1:], lines[1:]
    if not body:
        raise UsageError(f"{path}: the file has a header but no data rows")
    for row, line in zip(body, body_lines):
        if len(row) != len(header):
            raise UsageError(f"{path}: line {line} has {len(row)} fields, "
                             f"the header has {len(header)}")
    cells = list(zip(*body))
    return Table(path, [_csv_column(name, list(col), body_lines)
                        for name, col in zip(header, cells)])


def _csv_rows(path: str) -> tuple:
    """The non-blank rows and their line numbers."""
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
    return rows, lines


def _csv_header(path: str, row: list, line: int) -> list:
    header = [name.strip() for name in row]
    for j, name in enumerate(header):
        if not name:
            raise UsageError(f"{path}: column {j + 1} of the header (line {line}) has no name")
        if name in header[:j]:
            raise UsageError(f"{path}: the header names column {name!r} twice")
    return header


def _csv_column(name: str, cells: list, lines: list) -> Column:
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return Column(name, values, True)
    # find the first bad cell; Python's float() also takes what NumPy may not
    parsed = []
    for line, cell in zip(lines, cells):
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            return Column(name, np.array([c.strip() for c in cells], dtype=object), False,
                          (f"line {line}", cell.strip()))
        parsed.append(value)
    return Column(name, np.array(parsed), True)


# -- .npz ----------------------------------------------------------------------

def read_npz(path: str) -> Table:
    """Read an ``.npz`` file of equally long 1-D or 2-D arrays, a column per array.

    Parameters
    ----------
    path : str

    Returns
    -------
    Table
        Numbers become float64 columns, 1-D string arrays text columns; a
        model's metadata entry is skipped.
    """
    arrays = _npz_arrays(path)
    table, n_rows = Table(path), None
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
        table.columns.append(_npz_column(path, name, array))
    return table


def _npz_arrays(path: str) -> dict:
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
    return arrays


def _npz_column(path: str, name: str, array: np.ndarray) -> Column:
    if array.dtype.kind in "biuf":
        values = array.astype(np.float64)
        finite = np.isfinite(values)
        if finite.all():
            return Column(name, values, True)
        row = int(np.argwhere(~finite)[0][0])
        return Column(name, values, False, (f"row {row}", str(array[row])))
    if array.dtype.kind in "US" and array.ndim == 1:
        values = np.array([str(v.decode() if isinstance(v, bytes) else v).strip()
                           for v in array], dtype=object)
        return Column(name, values, False, ("row 0", values[0]))
    raise UsageError(f"{path}: array {name!r} holds {array.dtype} data, not numbers or labels")


# -- features and target -----------------------------------------------------------

def feature_matrix(table: Table, spec: list | None = None, exclude: str | None = None):
    """The features as one float64 matrix.

    Parameters
    ----------
    table : Table
    spec : list of [name, width], optional
        A saved model's features: these columns in this order, others
        ignored. Default: every column but ``exclude``.
    exclude : str, optional
        The target column.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features)
    spec : list of [name, width]
        The columns taken, in the order of X's columns.
    """
    chosen = _feature_columns(table, spec, exclude)
    for column in chosen:
        if not column.numeric:
            raise UsageError(column.not_numeric(table.source) +
                             " (only the target column may hold text labels)")
    X = np.hstack([c.values.reshape(table.n_rows, -1) for c in chosen])
    return X, [[c.name, c.width] for c in chosen]


def _feature_columns(table: Table, spec: list | None, exclude: str | None) -> list:
    if spec is None:
        chosen = [c for c in table.columns if c.name != exclude]
        if not chosen:
            raise UsageError(f"{table.source}: no feature columns besides the target {exclude!r}")
        return chosen
    chosen = []
    for name, width in spec:
        column = table.column(name, "a feature of the model")
        if column.width != width:
            raise UsageError(f"{table.source}: column {name!r} has width {column.width}, "
                             f"the model was trained with {width}")
        chosen.append(column)
    return chosen


def label(value):
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


def _auto_task(column: Column, loss: str | None) -> str:
    """Classification for text labels, one-hot 2-D targets, bce/cross_entropy, and
    integral values with at most MAX_AUTO_CLASSES distinct ones; else regression."""
    if not column.numeric or loss in OUTPUT_FOR_LOSS:
        return "classification"
    if column.values.ndim == 2:
        return "classification" if _is_one_hot(column.values) else "regression"
    distinct = np.unique(column.values)
    integral = bool(np.all(distinct == np.round(distinct)))
    return "classification" if integral and len(distinct) <= MAX_AUTO_CLASSES else "regression"


def encode_target(table: Table, name: str, task: str, loss: str | None):
    """The target column as a matrix to train on.

    Parameters
    ----------
    table : Table
    name : str
        The target column.
    task : {"auto", "classification", "regression"}
        "auto" decides by the values and the loss (see ``_auto_task``).
    loss : str or None
        The loss asked for; bce and cross_entropy need class labels.

    Returns
    -------
    task : str
        "classification" or "regression".
    Y : ndarray of shape (n_rows, n_outputs)
        One-hot rows for classification, the values for regression.
    classes : list or None
        The class labels in the order of Y's columns.
    """
    column = table.column(name)
    if task == "auto":
        task = _auto_task(column, loss)
    if task == "classification":
        Y, classes = _one_hot(table, column)
        return task, Y, classes
    if loss in OUTPUT_FOR_LOSS:
        raise UsageError(f"--loss {loss} needs class labels, but --task is regression")
    if not column.numeric:
        raise UsageError(column.not_numeric(table.source)
                         + " (a regression target must be numeric)")
    return task, column.values.reshape(table.n_rows, -1), None


def _one_hot(table: Table, column: Column) -> tuple:
    """(one-hot Y, sorted class labels) of a label column or a one-hot group."""
    values = column.values
    if values.ndim == 2:
        if not _is_one_hot(values):
            raise UsageError(f"{table.source}: the 2-D target {column.name!r} is not one-hot, "
                             "so it cannot be taken as class labels")
        return values, list(range(values.shape[1]))
    if column.numeric:
        classes = np.unique(values)
        index = np.searchsorted(classes, values)
    else:
        for row, value in enumerate(values):
            if _is_missing(value):
                raise UsageError(f"{table.source}: data row {row + 1} has no valid target "
                                 f"{column.name!r}: {str(value)!r}")
        classes, index = np.unique(values.astype(str), return_inverse=True)
    if len(classes) < 2:
        raise UsageError(f"{table.source}: the target {column.name!r} has a single class "
                         f"({label(classes[0])!r}); classification needs at least two")
    return np.eye(len(classes))[index], [label(c) for c in classes]


def one_hot_as_trained(table: Table, name: str, classes: list) -> np.ndarray:
    """One-hot rows of a target column over a saved model's classes.

    Parameters
    ----------
    table : Table
    name : str
        The target column.
    classes : list
        The model's class labels; Y's columns follow their order.

    Returns
    -------
    Y : ndarray of shape (n_rows, len(classes))

    Raises
    ------
    UsageError
        If a row holds a label the model was not trained on.
    """
    values = table.column(name).values
    if values.ndim == 2:
        if values.shape[1] != len(classes) or not _is_one_hot(values):
            raise UsageError(f"{table.source}: the target {name!r} is not one-hot over the "
                             f"model's {len(classes)} classes")
        return values
    index = {str(c): k for k, c in enumerate(classes)}
    Y = np.zeros((len(values), len(classes)))
    for row, value in enumerate(values):
        key = str(value if isinstance(value, str) else label(value))
        if key not in index:
            raise UsageError(f"{table.source}: data row {row + 1} has the label {key!r}, "
                             f"which the model was not trained on")
        Y[row, index[key]] = 1
    return Y
