"""Per-epoch progress reports: a tqdm bar, plain lines, or both."""
from __future__ import annotations

import sys


class EpochProgress:
    """Report the loss after each epoch of a fit.

    Parameters
    ----------
    epochs : int
        Number of epochs the fit will run.
    bar : bool, default=True
        Show a tqdm bar over the epochs on stderr, the loss in its postfix.
        Without tqdm installed this falls back to lines.
    lines : bool or None, default=None
        Print one line per epoch on stdout; None prints them only when there
        is no bar.
    desc : str, default="fit"
        Label of the bar.
    """

    def __init__(self, epochs: int, bar: bool = True, lines: bool | None = None,
                 desc: str = "fit"):
        self.epochs = epochs
        self.done = 0
        self._bar = None
        if bar:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr,
                                 dynamic_ncols=True)
        self.lines = (self._bar is None) if lines is None else bool(lines)

    @property
    def uses_bar(self) -> bool:
        """Whether a tqdm bar is showing."""
        return self._bar is not None

    def update(self, loss: float, seconds: float, line: str | None = None) -> None:
        """Report one finished epoch.

        Parameters
        ----------
        loss : float
            The epoch's mean training loss.
        seconds : float
            Its wall time.
        line : str, optional
            The line to print, if lines are on; by default
            ``epoch k/N  loss L  (s s)``.
        """
        self.done += 1
        if self.lines:
            self.write(line if line is not None else
                       f"epoch {self.done}/{self.epochs}  loss {loss:.6g}  ({seconds:.3g} s)")
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss={loss:.5g}", refresh=False)
            self._bar.update(1)
            if self.done >= self.epochs:
                self.close()

    def write(self, line: str) -> None:
        """Print ``line`` on stdout without breaking the bar."""
        if self._bar is None:
            print(line, flush=True)
        else:
            self._bar.write(line, file=sys.stdout)

    def close(self) -> None:
        """Finish the bar; safe to call more than once, and a no-op without a bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
