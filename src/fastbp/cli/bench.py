"""``fastbp bench``: run bench/compare.py of a source checkout."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .errors import UsageError


def add_parser(subparsers) -> None:
    """Add the ``bench`` command to ``subparsers``; unknown options go on to compare.py."""
    p = subparsers.add_parser(
        "bench", help="run bench/compare.py (from a source checkout)",
        description="Run the benchmark bench/compare.py of the fastbp source checkout in the "
                    "current directory or a parent; other options are passed on to it.")
    p.set_defaults(run=run, passes_on_unknown=True)
    p.add_argument("--quick", action="store_true",
                   help="the same-work checks only, fast enough for CI")


def find_bench_script(start: Path | None = None) -> Path | None:
    """Find bench/compare.py.

    Parameters
    ----------
    start : Path, optional
        Where to look first; default the current directory.

    Returns
    -------
    Path or None
        bench/compare.py in ``start`` or its nearest parent that has one.
    """
    start = Path.cwd() if start is None else start
    for folder in (start, *start.parents):
        script = folder / "bench" / "compare.py"
        if script.is_file():
            return script
    return None


def run(args) -> int:
    """Run compare.py with ``--quick`` and ``args.unknown``; its exit code."""
    script = find_bench_script()
    if script is None:
        raise UsageError(
            "bench/compare.py not found in the current directory or its parents: the benchmark "
            "is not part of the installed package; run `fastbp bench` inside a fastbp source "
            "checkout")
    command = [sys.executable, str(script)] + (["--quick"] if args.quick else []) + args.unknown
    print(f"fastbp bench: {' '.join(command)}", flush=True)
    return subprocess.call(command, cwd=script.parent.parent)
