"""Tables: CSV and ``.npz`` files and embedded datasets, read into named columns.

A CSV's separator, text encoding and decimal mark are detected unless given;
cells such as ``""``, ``NA`` or ``?`` are missing values. Nothing here decides
what a column is for: ``features`` picks the features and targets.

Untrusted files: memory stays within a small multiple of the file's size. A
``.csv.gz`` may unpack to ``INFLATION`` times its size and an ``.npz`` too
(checked from the headers before anything is allocated, see
``fastbp.io.read_npz_checked``), each at least ``fastbp.io.READ_FLOOR`` bytes.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..io import READ_FLOOR, read_npz_checked
from .errors import UsageError
from .model import META_KEY

#: separators tried, in order of preference when several fit
SEPARATORS = (",", ";", "\t", "|")
#: cells read as missing values (compared in lower case, stripped)
MISSING = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "?"})
#: a compressed input (.csv.gz, .npz) may unpack to at most this multiple of its size
INFLATION = 32
#: lines of a CSV that the separator is detected from
SNIFF_LINES = 50
#: "1.234.567,89" with dots grouping thousands, in files with a decimal comma
_GROUPED_DECIMAL_COMMA = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d*)?")


@dataclass
class Column:
    """One named column (1-D) or group of columns (2-D) of a table."""

    name: str
    #: float64 numbers (NaN where missing), or an object array of str (text)
    values: np.ndarray
    numeric: bool
    #: True where a cell is missing; None when none is
    missing: np.ndarray | None = None
    #: the row of the first cell that is neither missing nor a finite number
    #: (numeric columns only: a stray word among numbers, or "inf")
    problem: int | None = None
    #: the cells as read (CSV), for messages and for numbers taken as categories
    cells: np.ndarray | None = None

    @property
    def width(self) -> int:
        return 1 if self.values.ndim == 1 else self.values.shape[1]

    def cell(self, row: int) -> str:
        """The cell of ``row`` as text."""
        if self.cells is not None:
            return str(self.cells[row])
        value = self.values[row]
        return str(value.tolist() if isinstance(value, np.ndarray) else value)

    def take(self, rows: np.ndarray) -> "Column":
        """The column restricted to ``rows`` (indices or a mask)."""
        missing = None if self.missing is None else self.missing[rows]
        if missing is not None and not missing.any():
            missing = None
        values = self.values[rows]
        problem = _first_problem(values, missing) if self.numeric else None
        return Column(self.name, values, self.numeric, missing, problem,
                      None if self.cells is None else self.cells[rows])


def _first_problem(values: np.ndarray, missing) -> int | None:
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if missing is not None:
        bad &= ~missing
    rows = np.flatnonzero(bad)
    return int(rows[0]) if len(rows) else None


@dataclass
class Table:
    """Named columns of equal length, read from ``source``."""

    source: str
    columns: list = field(default_factory=list)
    #: the targets of an embedded dataset
    default_targets: list | None = None
    #: the file line of each row (CSV); rows are counted from 1 otherwise
    lines: np.ndarray | None = None
    #: how the file was read, when it was guessed (e.g. "separator ';', decimal comma")
    dialect: str = ""
    #: things the user should know, printed as notes on stderr
    notes: list = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return self.columns[0].values.shape[0]

    def names(self) -> list:
        return [c.name for c in self.columns]

    def where(self, row: int) -> str:
        """Where ``row`` is in the file: "line 7" for a CSV, else "data row 3"."""
        return f"line {self.lines[row]}" if self.lines is not None else f"data row {row + 1}"

    def column(self, name: str, option: str = "--target") -> Column:
        """The column called ``name``; a UsageError naming ``option`` if there is none."""
        for c in self.columns:
            if c.name == name:
                return c
        shown = ", ".join(repr(n) for n in self.names()[:12])
        more = f" and {len(self.columns) - 12} more" if len(self.columns) > 12 else ""
        raise UsageError(f"{self.source}: unknown column {name!r} ({option}); "
                         f"the columns are {shown}{more}")

    def take(self, rows: np.ndarray) -> "Table":
        """The table restricted to ``rows`` (indices or a boolean mask)."""
        return Table(self.source, [c.take(rows) for c in self.columns], self.default_targets,
                     None if self.lines is None else self.lines[rows], self.dialect, self.notes)

    def not_a_number(self, column: Column, row: int) -> str:
        """The message naming a cell that should hold a finite number."""
        return (f"{self.source}: {self.where(row)}, column {column.name!r} holds "
                f"{column.cell(row)!r}, not a finite number")


def _digits_table() -> Table:
    from ..datasets import load_digits

    X, labels = load_digits(one_hot=False)
    columns = [Column(f"pixel{j}", X[:, j], True) for j in range(X.shape[1])]
    columns.append(Column("digit", labels.astype(np.float64), True))
    return Table("digits", columns, default_targets=["digit"])


#: embedded datasets: name -> loader of a Table
DATASETS = {"digits": _digits_table}


@dataclass
class ReadOptions:
    """How to read a CSV; None fields are detected."""

    sep: str | None = None
    encoding: str | None = None
    #: "." or ","; None: "," when the separator is ";", else "."
    decimal: str | None = None


def load_table(data: str, options: ReadOptions | None = None) -> Table:
    """Read a CSV file, an ``.npz`` file or an embedded dataset.

    Parameters
    ----------
    data : str
        A path (``.npz`` by its suffix, else CSV, optionally gzipped), or
        the name of an embedded dataset when no such file exists.
    options : ReadOptions, optional
        The CSV's separator, encoding and decimal mark; detected by default.

    Returns
    -------
    Table

    Raises
    ------
    UsageError
        If the data cannot be read; the message names the file and the place.
    """
    options = options or ReadOptions()
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
        return read_npz(data) if data.lower().endswith(".npz") else read_csv(data, options)
    except PermissionError:
        raise UsageError(f"{data}: permission denied") from None


# -- CSV -----------------------------------------------------------------------

def read_csv(path: str, options: ReadOptions | None = None) -> Table:
    """Read a CSV file with a header row (gzipped if ``path`` ends in ``.gz``).

    Parameters
    ----------
    path : str
    options : ReadOptions, optional
        Separator, encoding and decimal mark; each detected when None.

    Returns
    -------
    Table
        A column is numeric (float64, NaN where missing) when at least half
        of its non-missing cells are numbers, else text; blank lines are
        skipped.
    """
    options = options or ReadOptions()
    text, encoding = _decode(path, _read_bytes(path), options.encoding)
    sep = options.sep if options.sep is not None else _detect_separator(text)
    decimal = options.decimal or ("," if sep == ";" else ".")
    rows, lines = _csv_rows(path, text, sep)
    if not rows:
        raise UsageError(f"{path}: the file is empty (expected a header row and data rows)")
    header = _csv_header(path, rows[0], lines[0])
    body, body_lines = rows[1:], lines[1:]
    if not body:
        raise UsageError(f"{path}: the file has a header but no data rows")
    for row, line in zip(body, body_lines):
        if len(row) != len(header):
            hint = "" if options.sep is not None else " (the separator was guessed: give --sep)"
            raise UsageError(f"{path}: line {line} has {len(row)} fields, "
                             f"the header has {len(header)}{hint}")
    del rows
    columns = [_csv_column(name, list(cells), decimal) for name, cells in zip(header, zip(*body))]
    dialect = f"separator {_show(sep)}" + (", decimal comma" if decimal == "," else "")
    notes = []
    if encoding in ("cp1252", "latin-1") and options.encoding is None:
        notes.append(f"{path} is not UTF-8; read it as {encoding} (--encoding to choose)")
    if encoding != "utf-8":
        dialect += f", {encoding}"
    return Table(path, columns, lines=np.array(body_lines), dialect=dialect, notes=notes)


def _show(sep: str) -> str:
    return {"\t": "tab", " ": "space"}.get(sep, repr(sep))


def _read_bytes(path: str) -> bytes:
    """The file's bytes, unzipped for ``.gz`` up to INFLATION times the file's size."""
    if not path.endswith(".gz"):
        with open(path, "rb") as handle:
            return handle.read()
    limit = max(INFLATION * os.path.getsize(path), READ_FLOOR)
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
        raise UsageError(f"{path}: not a readable gzip file: {exc}") from None
    if len(data) > limit:
        raise UsageError(f"{path}: unpacks to more than {INFLATION} times its size; "
                         "refused as damaged or crafted (unzip it first if it is real)")
    return data


def _decode(path: str, raw: bytes, encoding: str | None) -> tuple:
    """(text, encoding used): the given one, a BOM's, UTF-8, else cp1252 or Latin-1."""
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(f"--encoding {encoding}: no such text encoding "
                             "(e.g. utf-8, latin-1, cp1252, utf-16)") from None
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            raise UsageError(f"{path}: line {line} is not {encoding} text "
                             f"(byte {raw[exc.start]:#04x})") from None
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(name), name
            except UnicodeDecodeError:
                raise UsageError(f"{path}: starts like {name} text but is not; is it a "
                                 "CSV file? (--encoding to choose)") from None
    if b"\0" in raw:
        line = raw[:raw.index(b"\0")].count(b"\n") + 1
        raise UsageError(f"{path}: line {line} holds a NUL byte: a binary file, not CSV text")
    # cp1252 is what "Latin-1" files from Windows mostly are; Latin-1 reads any byte
    for name in ("utf-8", "cp1252", "latin-1"):
        try:
            return raw.decode(name), name
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte")


def _detect_separator(text: str) -> str:
    """The separator that splits the first lines into equally many fields, most of
    them; else the one giving the header most fields (the row check names the line)."""
    lines = [line for line in text[:1 << 20].splitlines()[:SNIFF_LINES * 2] if line.strip()]
    lines = lines[:SNIFF_LINES]
    if not lines:
        return ","
    best, best_header = None, (1, ",")
    for rank, sep in enumerate(SEPARATORS):
        try:
            widths = [len(row) for row in csv.reader(lines, delimiter=sep)]
        except csv.Error:
            continue
        if widths[0] > 1 and len(set(widths)) == 1 and (best is None or widths[0] > best[0]):
            best = (widths[0], sep)
        if widths[0] > best_header[0]:
            best_header = (widths[0], sep)
    return (best or best_header)[1]


def _csv_rows(path: str, text: str, sep: str) -> tuple:
    """The non-blank rows and their line numbers."""
    rows, lines = [], []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise UsageError(f"{path}: not a readable CSV file: {exc}") from None
    except TypeError as exc:  # a --sep of the wrong length
        raise UsageError(f"--sep {sep!r}: {exc}") from None
    return rows, lines


def _csv_header(path: str, row: list, line: int) -> list:
    header = [name.strip() for name in row]
    for j, name in enumerate(header):
        if not name:
            raise UsageError(f"{path}: column {j + 1} of the header (line {line}) has no name")
        if name in header[:j]:
            raise UsageError(f"{path}: the header names column {name!r} twice")
    return header


def _as_number_text(cell: str, decimal: str) -> str:
    """A cell's text as Python's float() reads it: the decimal comma made a point."""
    if decimal == "," and "," in cell:
        if _GROUPED_DECIMAL_COMMA.fullmatch(cell):
            cell = cell.replace(".", "")
        if "." not in cell and cell.count(",") == 1:
            return cell.replace(",", ".")
    return cell


def _csv_column(name: str, cells: list, decimal: str) -> Column:
    cells = np.array([c.strip() for c in cells], dtype=object)
    numbers = [_as_number_text(c, decimal) for c in cells] if decimal == "," else list(cells)
    try:
        values = np.array(numbers, dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return Column(name, values, True, cells=cells)
    missing = np.array([c.lower() in MISSING for c in cells])
    values = np.full(len(cells), math.nan)
    first_bad, n_numbers, n_words = None, 0, 0
    for row, text in enumerate(numbers):
        if missing[row]:
            continue
        try:
            value = float(text)
        except ValueError:
            n_words += 1
            first_bad = row if first_bad is None else first_bad
            continue
        n_numbers += 1
        values[row] = value
        if not math.isfinite(value) and first_bad is None:
            first_bad = row
    has_missing = missing if missing.any() else None
    if n_numbers >= n_words:
        # mostly numbers (or all missing): the words are mistakes, reported when used
        return Column(name, values, True, has_missing, first_bad, cells)
    return Column(name, cells, False, has_missing, None, cells)


# -- .npz ----------------------------------------------------------------------

def read_npz(path: str) -> Table:
    """Read an ``.npz`` file of equally long 1-D or 2-D arrays, a column per array.

    Parameters
    ----------
    path : str

    Returns
    -------
    Table
        Numbers become float64 columns (NaN is a missing value), 1-D string
        arrays text columns; a model's metadata entry is skipped.
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
        arrays = read_npz_checked(path, max_inflation=INFLATION)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError,
            NotImplementedError) as exc:
        reason = " ".join(str(exc).split())
        raise UsageError(f"{path}: not a readable .npz file: {reason}") from None
    arrays.pop(META_KEY, None)
    if not arrays:
        raise UsageError(f"{path}: the .npz file holds no arrays")
    return arrays


def _npz_column(path: str, name: str, array: np.ndarray) -> Column:
    if array.dtype.kind in "biuf":
        values = array.astype(np.float64)
        nan = np.isnan(values).reshape(len(values), -1).any(axis=1)
        missing = nan if nan.any() else None
        return Column(name, values, True, missing, _first_problem(values, missing))
    if array.dtype.kind in "US" and array.ndim == 1:
        values = np.array([str(v.decode("utf-8", "replace") if isinstance(v, bytes) else v).strip()
                           for v in array], dtype=object)
        missing = np.array([v.lower() in MISSING for v in values])
        return Column(name, values, False, missing if missing.any() else None)
    raise UsageError(f"{path}: array {name!r} holds {array.dtype} data, not numbers or labels")
