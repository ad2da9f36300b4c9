"""Exit codes, and the two errors that ``main`` reports as one line on stderr."""
from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input or usage: reported as one line on stderr, exit code 2.

    ``prog`` names the command when the error comes from its parser.
    """

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class RunFailed(Exception):
    """The run itself failed (not the input): one line on stderr, exit code 1."""
