"""Exit codes, the two errors that ``main`` reports as one line on stderr, and notes."""
from __future__ import annotations

import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Ctrl-C, as shells report a process ended by SIGINT (128 + 2)
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input or usage: reported as one line on stderr, exit code 2.

    ``prog`` names the command when the error comes from its parser.
    """

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class RunFailed(Exception):
    """The run itself failed (not the input): one line on stderr, exit code 1."""


def note(*messages: str, prefix: str = "note") -> None:
    """Print each message on stderr as ``fastbp: note: ...`` (one line each).

    A message starting with "warning: " is printed as ``fastbp: warning: ...``.
    """
    sys.stdout.flush()
    for message in messages:
        kind = prefix
        if message.startswith("warning: "):
            kind, message = "warning", message[len("warning: "):]
        print(f"fastbp: {kind}: {' '.join(message.split())}", file=sys.stderr, flush=True)
