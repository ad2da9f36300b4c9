"""The parser class and the option types shared by the commands.

The types parse the text and leave the range checks to ``fastbp._validation``,
so the command line accepts what the library accepts.
"""
from __future__ import annotations

import argparse
import os

from .._validation import check_float, check_int
from ..losses import LOSSES
from ..network import HIDDEN_ACTIVATIONS as _HIDDEN_CODES
from ..network import MAX_WIDTH
from .errors import UsageError

# the choices come from the kernels' tables (csrc/fastbp_*_table.h), not a copy
HIDDEN_ACTIVATIONS = tuple(_HIDDEN_CODES)
LOSS_NAMES = tuple(LOSSES)
DTYPES = ("float32", "float64")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised rather than printed."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


def _parse(text: str, convert, what: str):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def int_at_least(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum], checked by ``check_int``.

    Parameters
    ----------
    minimum : int
    maximum : int, optional

    Returns
    -------
    callable
        Text -> int; raises ``argparse.ArgumentTypeError``.
    """
    def integer(text: str) -> int:
        value = _parse(text, int, "an integer")
        try:
            return check_int(value, "", minimum, maximum)
        except ValueError:
            # the CLI's wording ("at least"), which its tests and users match
            bound = f"at least {minimum}" if value < minimum else f"at most {maximum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}") from None
    return integer


def float_in(minimum: float, maximum: float | None = None, strict: bool = False,
             strict_max: bool = False):
    """An argparse type: a finite number within bounds, checked by ``check_float``.

    Parameters
    ----------
    minimum, maximum : float
        The bounds; no upper bound if ``maximum`` is None.
    strict, strict_max : bool
        Exclude the bound itself, as in ``check_float``.

    Returns
    -------
    callable
        Text -> float; raises ``argparse.ArgumentTypeError``.
    """
    def number(text: str) -> float:
        value = _parse(text, float, "a number")
        try:
            return check_float(value, "", minimum, strict, maximum, strict_max)
        except ValueError as exc:
            # argparse names the option, so check_float gets an empty name
            raise argparse.ArgumentTypeError(str(exc).strip()) from None
    return number


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
        try:
            widths.append(check_int(width, what, 1, MAX_WIDTH))
        except ValueError:
            one = what[:-1] if what.endswith("s") else what
            raise argparse.ArgumentTypeError(
                f"every {one} must be between 1 and {MAX_WIDTH}, got {width}") from None
    return widths


def hidden_widths(text: str) -> list:
    """The ``--hidden`` type: comma-separated widths, or 'none' for no hidden layer."""
    return _widths(text, "hidden widths", allow_empty=True)


def layer_sizes(text: str) -> list:
    """The ``--sizes`` type: comma-separated widths, at least an input and an output."""
    sizes = _widths(text, "layer sizes", allow_empty=False)
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(
            f"needs at least an input and an output width, got {text!r}")
    return sizes


def check_output_path(path: str | None, option: str) -> None:
    """Refuse an output path whose folder is missing, or which is a folder.

    Parameters
    ----------
    path : str or None
        Nothing is checked for None (the option was not given).
    option : str
        The option's name, for the message.
    """
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory")


class OnOff(argparse.Action):
    """A ``--flag`` / ``--no-flag`` pair, as ``argparse.BooleanOptionalAction``
    but without the "(default: True)" that Python < 3.13 appends to its help."""

    def __init__(self, option_strings, dest, default=None, help=None):
        strings = []
        for option in option_strings:
            strings.append(option)
            if option.startswith("--"):
                strings.append("--no-" + option[2:])
        super().__init__(strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))

    def format_usage(self):
        return " | ".join(self.option_strings)


def _shown(default) -> str:
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default)) if default else "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows every option's default: "(default: 20)", "(default: off)".

    An option whose default is None says in its own help what happens
    without it; its text must contain "default".
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            default = not action.const
        else:
            default = action.default
        if default is None:
            return text
        # argparse %-formats help: a literal % in a default must be doubled
        return f"{text} (default: {_shown(default).replace('%', '%%')})".strip()


def add_table_options(parser) -> None:
    """``--sep``, ``--encoding`` and ``--decimal``, for the commands that read a CSV."""
    group = parser.add_argument_group("reading a CSV")
    group.add_argument("--sep", type=_separator, metavar="CHAR",
                       help="the field separator, e.g. ';' or tab (default: detected from the "
                            "first lines among , ; tab |)")
    group.add_argument("--encoding", metavar="NAME",
                       help="the text encoding, e.g. utf-8, latin-1, cp1252, utf-16 (default: "
                            "from a byte-order mark, else UTF-8, else cp1252/Latin-1 with a note)")
    group.add_argument("--decimal", choices=(".", ","),
                       help="the decimal mark (default: ',' when the separator is ';', else '.')")


def _separator(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "space": " ", "comma": ",", "semicolon": ";",
             "pipe": "|"}
    sep = named.get(text.lower(), text)
    if len(sep) != 1 or sep in "\"\r\n":
        raise argparse.ArgumentTypeError(f"expected one character (or tab, space), got {text!r}")
    return sep


def table_options(args):
    """The ``ReadOptions`` that ``add_table_options`` parsed."""
    from .tables import ReadOptions

    return ReadOptions(sep=args.sep, encoding=args.encoding, decimal=args.decimal)
