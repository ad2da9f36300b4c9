"""The parser class and the option types shared by the commands.

The types parse the text and leave the range checks to ``fastbp._validation``,
so the command line accepts what the library accepts.
"""
from __future__ import annotations

import argparse
import math
import os

from .errors import UsageError

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
LOSS_NAMES = ("mse", "bce", "cross_entropy")
DTYPES = ("float32", "float64")
MAX_WIDTH = 2**31 - 1


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised rather than printed."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


def int_at_least(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum].

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
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value
    return integer


def float_in(low: float, high: float | None = None, low_open: bool = False,
             high_open: bool = False):
    """An argparse type: a finite number between ``low`` and ``high``.

    Parameters
    ----------
    low, high : float
        The bounds; no upper bound if ``high`` is None.
    low_open, high_open : bool
        Exclude the bound itself.

    Returns
    -------
    callable
        Text -> float; raises ``argparse.ArgumentTypeError``.
    """
    def number(text: str) -> float:
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
        if not 1 <= width <= MAX_WIDTH:
            raise argparse.ArgumentTypeError(
                f"every {what[:-1] if what.endswith('s') else what} must be between 1 and "
                f"{MAX_WIDTH}, got {width}")
        widths.append(width)
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
