"""``fastbp evaluate``: a saved model's metrics on a table that holds its targets."""
from __future__ import annotations

from .errors import EXIT_OK, UsageError, note
from .features import apply_features, targets_as_trained
from .model import load_model
from .options import HelpFormatter, add_table_options, table_options
from .report import metrics_lines
from .tables import load_table


def add_parser(subparsers) -> None:
    """Add the ``evaluate`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "evaluate", help="report a saved model's loss and accuracy or rmse/r2 on a table",
        formatter_class=HelpFormatter,
        description="Score a model saved by `fastbp train --save` on DATA, which must hold the "
                    "model's feature and target columns; encoded as in training.")
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="a model .npz saved by fastbp train")
    p.add_argument("data", metavar="DATA", help="a CSV, an .npz or an embedded dataset's name")
    add_table_options(p)


def run(args) -> int:
    """Run ``fastbp evaluate`` on the parsed ``args``; the exit code."""
    net, meta = load_model(args.model)
    if meta is None:
        raise UsageError(f"{args.model}: evaluate needs a model saved by `fastbp train --save` "
                         "(it records the columns and the targets)")
    table = load_table(args.data, table_options(args))
    note(*table.notes)
    X, unseen = apply_features(table, meta.features)
    note(*unseen)
    Y = targets_as_trained(table, meta)
    X = meta.inputs(X).astype(net.dtype)
    Y = meta.targets_scaled(Y).astype(net.dtype)
    print(f"fastbp evaluate: {net} on {table.source}: {table.n_rows} rows, "
          f"target {meta.describe_targets()} ({meta.task})")
    for line in metrics_lines(net, meta, X, Y, "data"):
        print(line)
    return EXIT_OK
