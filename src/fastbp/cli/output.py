"""Standard output that ends quietly when its reader goes away.

``fastbp train ... | head -2`` closes the pipe while the command still
prints. Writing then raises BrokenPipeError; the guard swallows it, points
file descriptor 1 at /dev/null (so the interpreter's final flush succeeds
too) and lets the command finish its work: the model is still saved, and
the exit code is the command's own.
"""
from __future__ import annotations

import contextlib
import os
import sys


class StdoutGuard:
    """A wrapper of a text stream: writes after a closed pipe are dropped."""

    def __init__(self, stream):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._went_away()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._went_away()

    def _went_away(self) -> None:
        self.reader_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded_stdout():
    """Run the block with ``sys.stdout`` wrapped in a :class:`StdoutGuard`."""
    original = sys.stdout
    guard = StdoutGuard(original)
    sys.stdout = guard
    try:
        yield guard
    finally:
        guard.flush()
        if sys.stdout is guard:
            sys.stdout = original


def reader_gone() -> bool:
    """Whether standard output's reader went away (nothing more needs writing)."""
    return bool(getattr(sys.stdout, "reader_gone", False))
