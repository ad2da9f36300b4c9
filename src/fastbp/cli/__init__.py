"""The ``fastbp`` command line (also ``python -m fastbp``).

Commands::

    fastbp train DATA [--target COL] [--hidden 64,32] [--loss ...] [--optimizer adamw]
                 [--schedule ...] [--dropout 0.2] [--checkpoint C.npz] [--save M.npz] [--plot C.png]
    fastbp predict MODEL DATA [--out predictions.csv]
    fastbp evaluate MODEL DATA
    fastbp gradcheck [MODEL [DATA]]
    fastbp bench [--quick] [compare.py options]

DATA is a CSV file with a header row (``.csv``, optionally gzipped as
``.csv.gz``), an ``.npz`` file of equally long 1-D or 2-D arrays (one array
per column or group of columns), or the name of an embedded dataset
(``digits``).

Exit codes: 0 success; 1 the run failed (training diverged, a gradient check
over its tolerance, a failing benchmark); 2 bad input or usage, reported as
one line on stderr; 130 interrupted by Ctrl-C (train reports and saves what
it has first). A closed standard output (``| head``) is not an error.

A module per command (``train``, ``predict``, ``evaluate``, ``gradcheck``,
``bench``) adds its parser with ``add_parser(subparsers)`` and runs it with
``run(args)``; ``tables`` reads the data, ``features`` encodes features and
targets, ``model`` is what is saved beside the network, ``report`` the
metrics, ``output`` the guard of standard output; ``optimizers`` and
``fitting`` are train's options for the optimiser and schedule, and for
regularisation, checkpoints and logs.
"""
from __future__ import annotations

import argparse
import sys

from . import bench, evaluate, gradcheck, predict, train
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, RunFailed, UsageError
from .gradcheck import GRADCHECK_TOLERANCE
from .model import META_KEY, META_VERSION, OUTPUT_FOR_LOSS
from .options import HIDDEN_ACTIVATIONS, LOSS_NAMES, MAX_WIDTH, Parser
from .features import MAX_AUTO_CLASSES
from .output import guarded_stdout
from .tables import DATASETS

__all__ = ["main", "build_parser", "UsageError", "RunFailed", "EXIT_OK", "EXIT_FAILED",
           "EXIT_USAGE", "EXIT_INTERRUPTED", "META_KEY", "META_VERSION", "OUTPUT_FOR_LOSS", "GRADCHECK_TOLERANCE",
           "HIDDEN_ACTIVATIONS", "LOSS_NAMES", "MAX_WIDTH", "DATASETS", "MAX_AUTO_CLASSES"]

#: the commands, in the order --help lists them
COMMANDS = (train, predict, evaluate, gradcheck, bench)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastbp`` command.

    Returns
    -------
    argparse.ArgumentParser
        With the sub-commands train, predict, evaluate, gradcheck and bench; its
        errors raise :class:`UsageError` instead of exiting.
    """
    from .. import __version__

    parser = Parser(prog="fastbp", description="Train and use dense feed-forward networks "
                    "with fastbp's compiled backpropagation.",
                    epilog="Exit codes: 0 ok, 1 the run failed, 2 bad input.")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    """Run the ``fastbp`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 ok, 1 the run failed, 2 bad input (one line on
        stderr), 130 interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    with guarded_stdout():
        return _run(argv)


def _run(argv: list) -> int:
    prog = "fastbp"
    try:
        args, unknown = build_parser().parse_known_args(argv)
        prog = f"fastbp {args.command}"
        if unknown and not getattr(args, "passes_on_unknown", False):
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)} (see {prog} --help)")
        args.unknown = unknown
        return args.run(args)
    except UsageError as exc:
        return _fail(exc.prog or prog, str(exc), EXIT_USAGE)
    except RunFailed as exc:
        return _fail(prog, str(exc), EXIT_FAILED)
    except MemoryError:
        return _fail(prog, "out of memory (try smaller --hidden or --batch-size)", EXIT_USAGE)
    except (ValueError, TypeError, OSError) as exc:
        # the library's own validation errors name the problem
        return _fail(prog, str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", EXIT_INTERRUPTED)


def _fail(prog: str, message: str, code: int) -> int:
    """Print ``prog: error: message`` as one line on stderr; return ``code``."""
    sys.stdout.flush()
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    return code
