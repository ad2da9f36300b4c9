"""From a table to the matrices a network trains on: features, targets, missing cells.

Features are encoded by specs that ``train`` fits on its training rows and
saves in the model, so ``predict`` and ``evaluate`` encode a table the same
way: a numeric column is taken as it is (``{"kind": "number"}``), a text
column one-hot over the categories seen in training (``{"kind": "category"}``;
an unseen category is a row of zeros). With ``--impute mean|median`` a
missing cell gets the training rows' mean or median (a text cell their most
frequent category); ``--impute drop`` drops the rows that have one.

The task of a target (``--task auto``): text labels are classes; numbers
are classes when they are integer codes (k <= MAX_AUTO_CLASSES distinct
values, consecutive, such as 0..9 or 1..3); any other numbers are a
regression target. Integer classes that may be a quantity (more than
two of them, and more than WARN_CLASSES or fewer than WARN_ROWS_PER_CLASS
rows a class) get a warning. A regression target with the same value on
every row is refused. An integer feature with a different value on every
row (at least MIN_ROWS_FOR_IDENTIFIER rows) gets a warning: it looks like
a row identifier.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .errors import UsageError
from .model import CLASS_LOSSES, REGRESSION_LOSSES, ModelMeta
from .tables import Column, Table

#: integer codes with at most this many distinct consecutive values are classes
MAX_AUTO_CLASSES = 20
#: integer targets taken as classes get a warning above this many classes...
WARN_CLASSES = 10
#: ...or below this many rows a class on average
WARN_ROWS_PER_CLASS = 5
#: a text feature with more categories than this is refused (likely an id or free text)
MAX_CATEGORIES = 100
#: an integer feature with a different value on every row, in at least this many rows,
#: gets a warning (a row identifier such as PassengerId); in fewer, distinct is common
MIN_ROWS_FOR_IDENTIFIER = 20
_INTEGER_CELL = re.compile(r"[+-]?\d+")
IMPUTE_CHOICES = ("mean", "median", "drop")


def split_names(values) -> list:
    """Column names from repeated options, each possibly a comma list, in order, once each.

    Parameters
    ----------
    values : list of str or None
        E.g. ``["a,b", "c"]`` from ``--target a,b --target c``.

    Returns
    -------
    list of str
    """
    names = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names


def choose_features(table: Table, targets: list, features: list, drop: list) -> list:
    """The feature columns: ``features`` (default: every column but the targets)
    less ``drop``; every name must be a column of the table.

    Returns
    -------
    list of str
    """
    for name in drop:
        table.column(name, "--drop")
    if features:
        for name in features:
            table.column(name, "--features")
            if name in targets:
                raise UsageError(f"column {name!r} is both a target and a feature (--features)")
    else:
        features = [name for name in table.names() if name not in targets]
    chosen = [name for name in features if name not in drop]
    if not chosen:
        raise UsageError(f"{table.source}: no feature columns left besides the target "
                         f"{', '.join(map(repr, targets))}")
    return chosen


def drop_incomplete_rows(table: Table, targets: list, features: list, impute: str | None):
    """The rows to train on: without a missing target (with any --impute), and
    without a missing feature (--impute drop).

    Returns
    -------
    table : Table
    notes : list of str
        What was dropped, for stderr.

    Raises
    ------
    UsageError
        Naming the first missing target when --impute was not given, or if no rows remain.
    """
    notes = []
    keep = np.ones(table.n_rows, bool)
    for name in targets:
        column = table.column(name)
        if column.missing is None:
            continue
        if impute is None:
            row = int(np.flatnonzero(column.missing)[0])
            raise UsageError(f"{table.source}: {table.where(row)} has no valid target {name!r}: "
                             f"{column.cell(row)!r} (--impute mean|median|drop drops rows "
                             "without a target)")
        notes.append(f"dropped {int(column.missing.sum())} rows without a target {name!r}")
        keep &= ~column.missing
    if impute == "drop":
        for name in features:
            column = table.column(name, "--features")
            if column.missing is not None:
                notes.append(f"dropped {int((column.missing & keep).sum())} rows missing "
                             f"column {name!r} (--impute drop)")
                keep &= ~column.missing
    if keep.all():
        return table, notes
    if keep.sum() < 2:
        raise UsageError(f"{table.source}: {int(keep.sum())} of {table.n_rows} rows are complete; "
                         "too few to train on")
    return table.take(keep), notes


# -- targets -------------------------------------------------------------------

def _is_one_hot(Y: np.ndarray) -> bool:
    return bool(np.isin(Y, (0.0, 1.0)).all() and (Y.sum(axis=1) == 1).all())


def label(value):
    """A class label as JSON-friendly and readable: 3.0 -> 3, text as a plain str
    (NumPy's own str and float types print as ``np.str_('a')`` in messages)."""
    if isinstance(value, str):
        return str(value)
    value = float(value)
    return int(value) if value.is_integer() else value


def decide_task(column: Column, loss: str | None) -> tuple:
    """("classification" or "regression", the reason in words) for ``--task auto``."""
    if loss in CLASS_LOSSES:
        return "classification", f"--loss {loss} needs classes"
    if loss in REGRESSION_LOSSES:
        return "regression", f"--loss {loss} fits numbers"
    if not column.numeric:
        return "classification", "text labels"
    values = column.values
    if values.ndim == 2:
        return ("classification", "one-hot columns") if _is_one_hot(values) else (
            "regression", "numbers")
    distinct = np.unique(values[np.isfinite(values)])
    if len(distinct) == 0 or not np.all(distinct == np.round(distinct)):
        return "regression", "numbers"
    low, high = label(distinct[0]), label(distinct[-1])
    k = len(distinct)
    if 2 <= k <= MAX_AUTO_CLASSES and high - low + 1 == k:
        return "classification", f"integer codes {low}..{high}"
    return "regression", (f"integers {low}..{high}, {k} distinct values: not consecutive "
                          f"class codes of at most {MAX_AUTO_CLASSES} values; --task "
                          "classification to take them as classes")


def encode_targets(table: Table, targets: list, task: str, loss: str | None) -> tuple:
    """The target columns as the matrix to train on.

    Parameters
    ----------
    table : Table
        Without missing targets (see ``drop_incomplete_rows``).
    targets : list of str
    task : {"auto", "classification", "regression"}
    loss : str or None
        The loss asked for; bce and cross_entropy need classes, huber and
        absolute_error numbers.

    Returns
    -------
    task : str
        "classification", "multilabel" (several two-class targets) or "regression".
    Y : ndarray of shape (n_rows, n_outputs)
    classes : list or None
        As ``ModelMeta.classes``.
    notes : list of str
        Why "auto" decided as it did, and warnings, for the user.
    """
    columns = [table.column(name) for name in targets]
    notes = []
    tasks = []
    for column in columns:
        if task == "auto":
            decided, why = decide_task(column, loss)
            notes.append(f"target {column.name!r}: {decided} ({why})")
        else:
            decided = task
        tasks.append(decided)
    if len(set(tasks)) > 1:
        raise UsageError("the targets mix classes and numbers ("
                         + ", ".join(f"{c.name!r}: {t}" for c, t in zip(columns, tasks))
                         + "); give --task, or train a model per target")
    decided = tasks[0]
    if decided == "regression":
        if loss in CLASS_LOSSES:
            raise UsageError(f"--loss {loss} needs class labels, but --task is regression")
        for column in columns:
            if not column.numeric:
                row = int(np.flatnonzero(~(column.missing if column.missing is not None
                                           else np.zeros(table.n_rows, bool)))[0])
                raise UsageError(f"{table.source}: {table.where(row)}, target {column.name!r} "
                                 f"holds {column.cell(row)!r}: a regression target must be "
                                 "numeric")
            if column.problem is not None:
                raise UsageError(table.not_a_number(column, column.problem))
            _refuse_constant(table, column)
        Y = np.hstack([c.values.reshape(table.n_rows, -1) for c in columns])
        return "regression", Y, None, notes
    if loss in REGRESSION_LOSSES:
        raise UsageError(f"--loss {loss} fits numbers (an identity output), but the target "
                         f"{columns[0].name!r} is taken as classes; give --task regression "
                         "for numeric codes, or another --loss")
    encoded = [_one_hot(table, column) for column in columns]
    for column, (_, classes) in zip(columns, encoded):
        warning = _classes_warning(table, column, classes)
        if warning:
            notes.append("warning: " + warning)
    if len(columns) == 1:
        return "classification", encoded[0][0], encoded[0][1], notes
    for column, (_, classes) in zip(columns, encoded):
        if len(classes) != 2:
            raise UsageError(f"several targets as classes need two classes each (one sigmoid "
                             f"output per target); {column.name!r} has {len(classes)}: train "
                             "a model per target")
    Y = np.hstack([Y[:, 1:] for Y, _ in encoded])
    return "multilabel", Y, [classes for _, classes in encoded], notes


def _refuse_constant(table: Table, column: Column) -> None:
    """A regression target with one value on every row leaves nothing to learn (and an r2 of
    0/0): a UsageError naming it (for a 2-D target, its first constant column). A single
    row is refused as such, not as a constant."""
    if table.n_rows == 1:
        raise UsageError(f"{table.source}: one row only: nothing to learn from; give more rows")
    values = column.values.reshape(table.n_rows, -1)
    constant = np.flatnonzero((values == values[:1]).all(axis=0))
    if len(constant):
        j = int(constant[0])
        name = column.name if values.shape[1] == 1 else f"{column.name}[{j}]"
        raise UsageError(f"{table.source}: the target {name!r} is {label(values[0, j])} on every "
                         f"one of the {table.n_rows} rows: there is nothing to learn; choose "
                         "another --target")


def identifier_warnings(table: Table, features: list) -> list:
    """Warnings for the feature columns that look like row identifiers.

    A column is taken for one when it is numeric, written as integers (no
    decimal point or exponent in a CSV cell), holds a different value on
    every row, and the table has at least ``MIN_ROWS_FOR_IDENTIFIER`` rows
    (in fewer, distinct integers are common, e.g. a year per row).

    Parameters
    ----------
    table : Table
    features : list of str

    Returns
    -------
    list of str
        One "warning: ..." per such column, naming the ``--drop`` fix.
    """
    if table.n_rows < MIN_ROWS_FOR_IDENTIFIER:
        return []
    warnings = []
    for name in features:
        column = table.column(name, "--features")
        values = column.values
        if (not column.numeric or values.ndim != 1 or column.missing is not None
                or not np.isfinite(values).all() or not np.all(values == np.round(values))
                or len(np.unique(values)) != len(values)):
            continue
        if column.cells is not None and not all(_INTEGER_CELL.fullmatch(c) for c in column.cells):
            continue
        warnings.append(f"warning: {table.source}: column {name!r} holds a different integer "
                        f"on every one of the {table.n_rows} rows, like a row identifier; it "
                        f"is trained on as a number (--drop {name} if it is an identifier)")
    return warnings


def _classes_warning(table: Table, column: Column, classes: list) -> str | None:
    if not column.numeric or column.values.ndim == 2:
        return None
    k = len(classes)
    per_class = table.n_rows / k
    if k > 2 and (k > WARN_CLASSES or per_class < WARN_ROWS_PER_CLASS):
        return (f"target {column.name!r} is taken as {k} classes of its integer values, "
                f"{per_class:.3g} rows a class; if it is a quantity, use --task regression")
    return None


def _one_hot(table: Table, column: Column) -> tuple:
    """(one-hot Y, sorted class labels) of a label column or a one-hot group."""
    values = column.values
    if values.ndim == 2:
        if not _is_one_hot(values):
            raise UsageError(f"{table.source}: the 2-D target {column.name!r} is not one-hot, "
                             "so it cannot be taken as class labels")
        return values, list(range(values.shape[1]))
    if column.numeric:
        if column.problem is not None:
            raise UsageError(table.not_a_number(column, column.problem))
        classes, index = np.unique(values, return_inverse=True)
    else:
        classes, index = np.unique(values.astype(str), return_inverse=True)
    if len(classes) < 2:
        raise UsageError(f"{table.source}: the target {column.name!r} has a single class "
                         f"({label(classes[0])!r}); classification needs at least two")
    return np.eye(len(classes))[index.reshape(-1)], [label(c) for c in classes]


def targets_as_trained(table: Table, meta: ModelMeta) -> np.ndarray:
    """The target columns of ``table`` encoded as the model was trained (unscaled).

    Parameters
    ----------
    table : Table
    meta : ModelMeta

    Returns
    -------
    Y : ndarray of shape (n_rows, n_outputs)

    Raises
    ------
    UsageError
        If a target is missing from the table, holds a missing or non-numeric
        cell, or a label the model was not trained on.
    """
    blocks = []
    for k, name in enumerate(meta.targets):
        column = table.column(name, "a target of the model")
        if column.missing is not None:
            row = int(np.flatnonzero(column.missing)[0])
            raise UsageError(f"{table.source}: {table.where(row)} has no valid target {name!r}: "
                             f"{column.cell(row)!r}")
        if meta.task == "regression":
            if not column.numeric or column.problem is not None:
                row = column.problem if column.numeric else 0
                raise UsageError(table.not_a_number(column, row))
            blocks.append(column.values.reshape(table.n_rows, -1))
        elif meta.task == "classification":
            blocks.append(_one_hot_over(table, column, meta.classes))
        else:
            blocks.append(_one_hot_over(table, column, meta.classes[k])[:, 1:])
    return np.hstack(blocks)


def _one_hot_over(table: Table, column: Column, classes: list) -> np.ndarray:
    values = column.values
    if values.ndim == 2:
        if values.shape[1] != len(classes) or not _is_one_hot(values):
            raise UsageError(f"{table.source}: the target {column.name!r} is not one-hot over "
                             f"the model's {len(classes)} classes")
        return values
    index = {str(c): k for k, c in enumerate(classes)}
    Y = np.zeros((len(values), len(classes)))
    for row, value in enumerate(values):
        key = str(value if isinstance(value, str) else label(value))
        if key not in index:
            raise UsageError(f"{table.source}: {table.where(row)} has the label {key!r}, "
                             "which the model was not trained on")
        Y[row, index[key]] = 1
    return Y


# -- features ------------------------------------------------------------------

def _missing_cell(table: Table, column: Column, row: int, hint: str) -> UsageError:
    text = column.cell(row)
    what = "is empty" if text == "" else f"holds {text!r}, a missing value"
    return UsageError(f"{table.source}: {table.where(row)}, column {column.name!r} {what} "
                      f"({hint})")


def _category_texts(column: Column) -> np.ndarray:
    """A column's cells as category names (a numeric column's as they were written)."""
    if not column.numeric:
        return column.values
    if column.cells is not None:
        return column.cells
    return np.array([str(label(v)) if math.isfinite(v) else "" for v in column.values],
                    dtype=object)


def fit_features(table: Table, names: list, rows: np.ndarray, impute: str | None) -> list:
    """The feature specs (see the module's docstring), fitted on ``rows`` of ``table``.

    Parameters
    ----------
    table : Table
    names : list of str
        The feature columns.
    rows : ndarray of int
        The training rows: categories and fill values come from them only.
    impute : {"mean", "median", "drop"} or None

    Returns
    -------
    list of dict

    Raises
    ------
    UsageError
        Naming the first missing cell when there is no --impute, a stray
        non-number in a numeric column, or a text column with too many
        categories.
    """
    specs = []
    for name in names:
        column = table.column(name, "--features")
        missing = column.missing
        if missing is not None and impute not in ("mean", "median"):
            raise _missing_cell(table, column, int(np.flatnonzero(missing)[0]),
                                "fill missing cells with --impute mean or median, or drop "
                                "their rows with --impute drop")
        train_missing = np.zeros(len(rows), bool) if missing is None else missing[rows]
        if column.numeric:
            if column.problem is not None:
                raise UsageError(table.not_a_number(column, column.problem)
                                 + " (a column of numbers; fix the cell, or --drop the column)")
            fill = None
            if impute in ("mean", "median"):
                present = column.values[rows][~train_missing]
                if len(present) == 0:
                    raise UsageError(f"{table.source}: column {name!r} has no values in the "
                                     "training rows to impute from; --drop it")
                fill = (np.mean if impute == "mean" else np.median)(
                    present.reshape(len(present), -1), axis=0).tolist()
            specs.append({"name": name, "kind": "number", "width": column.width, "fill": fill})
            continue
        texts = column.values[rows][~train_missing].astype(str)
        categories, counts = np.unique(texts, return_counts=True)
        if len(categories) > MAX_CATEGORIES:
            raise UsageError(f"{table.source}: text column {name!r} has {len(categories)} "
                             f"distinct values in the training rows, more than the "
                             f"{MAX_CATEGORIES} one-hot encoding takes (an id or free "
                             f"text?); --drop {name}")
        if len(categories) == 0:
            raise UsageError(f"{table.source}: column {name!r} has no values in the training "
                             "rows; --drop it")
        fill = str(categories[np.argmax(counts)]) if impute in ("mean", "median") else None
        specs.append({"name": name, "kind": "category", "categories": categories.tolist(),
                      "fill": fill})
    return specs


def input_names(specs: list) -> list:
    """The name of each network input: "a", "X[2]", "city=Paris"."""
    names = []
    for spec in specs:
        if spec["kind"] == "category":
            names += [f"{spec['name']}={c}" for c in spec["categories"]]
        elif spec["width"] == 1:
            names.append(spec["name"])
        else:
            names += [f"{spec['name']}[{j}]" for j in range(spec["width"])]
    return names


def apply_features(table: Table, specs: list) -> tuple:
    """The feature matrix of ``table`` as the specs encode it.

    Parameters
    ----------
    table : Table
    specs : list of dict
        From ``fit_features`` (or a saved model).

    Returns
    -------
    X : ndarray of shape (n_rows, n_inputs)
        float64.
    notes : list of str
        Warnings: unseen categories, encoded as rows of zeros.

    Raises
    ------
    UsageError
        If a column is absent or of the wrong kind or width, or a cell is
        missing and the spec has no fill value.
    """
    n = table.n_rows
    blocks, notes = [], []
    for spec in specs:
        name = spec["name"]
        column = table.column(name, "a feature of the model")
        missing = column.missing
        fill = spec.get("fill")
        if missing is not None and fill is None:
            raise _missing_cell(table, column, int(np.flatnonzero(missing)[0]),
                                "the model was trained without --impute mean or median, so "
                                "every cell needs a value")
        if spec["kind"] == "number":
            if not column.numeric:
                row = 0 if missing is None else int(np.flatnonzero(~missing)[0])
                raise UsageError(f"{table.source}: column {name!r} holds text such as "
                                 f"{column.cell(row)!r} ({table.where(row)}); the model takes "
                                 "numbers there")
            if column.width != spec["width"]:
                raise UsageError(f"{table.source}: column {name!r} has width {column.width}, "
                                 f"the model was trained with {spec['width']}")
            if column.problem is not None:
                raise UsageError(table.not_a_number(column, column.problem))
            block = column.values.reshape(n, -1).copy()
            if missing is not None:
                block[missing] = np.asarray(fill, dtype=np.float64)
            blocks.append(block)
            continue
        categories = [str(c) for c in spec["categories"]]
        index = {c: k for k, c in enumerate(categories)}
        texts = _category_texts(column)
        if missing is not None:
            texts = np.where(missing, str(fill), texts)
        codes = np.array([index.get(str(t), -1) for t in texts], dtype=np.intp)
        block = np.zeros((n, len(categories)))
        seen = codes >= 0
        block[np.flatnonzero(seen), codes[seen]] = 1.0
        if not seen.all():
            row = int(np.flatnonzero(~seen)[0])
            notes.append(f"warning: {table.source}: column {name!r} holds {int((~seen).sum())} "
                         f"values not seen in training (first {texts[row]!r}, "
                         f"{table.where(row)}); they are encoded as all zeros")
        blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((n, 0)), notes
