"""``fastbp predict``: a saved model's predictions for a table, as CSV."""
from __future__ import annotations

import csv
import sys

import numpy as np

from .errors import EXIT_OK, UsageError, note
from .features import apply_features, label
from .model import ModelMeta, load_model
from .options import HelpFormatter, add_table_options, check_output_path, table_options
from .output import reader_gone
from .tables import load_table


def add_parser(subparsers) -> None:
    """Add the ``predict`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "predict", help="write a saved model's predictions as CSV",
        formatter_class=HelpFormatter,
        description="Predict with a model saved by `fastbp train --save` (or fastbp.Network.save). "
                    "The table is encoded as in training (its columns picked by name, text "
                    "one-hot, missing cells filled as --impute did). Classification writes the "
                    "predicted label and one probability per class.")
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="a model .npz")
    p.add_argument("data", metavar="DATA", help="a CSV, an .npz or an embedded dataset's name")
    p.add_argument("--out", metavar="FILE",
                   help="write the CSV there (default: standard output)")
    add_table_options(p)


def run(args) -> int:
    """Run ``fastbp predict`` on the parsed ``args``; the exit code."""
    check_output_path(args.out, "--out")
    net, meta = load_model(args.model)
    table = load_table(args.data, table_options(args))
    note(*table.notes)
    if meta is None:
        header, rows = _plain(net, table)
    else:
        header, rows = _as_trained(net, meta, table)
    if args.out is None:
        _write(csv.writer(sys.stdout, lineterminator="\n"), header, rows)
        return EXIT_OK
    from ..io import atomic_write

    with atomic_write(args.out) as raw:
        with open(raw.fileno(), "w", newline="", encoding="utf-8", closefd=False) as handle:
            _write(csv.writer(handle), header, rows)
    print(f"wrote {table.n_rows} predictions to {args.out}", file=sys.stderr)
    return EXIT_OK


def _format(value: float) -> str:
    return f"{value:.8g}"


def _plain(net, table) -> tuple:
    """(header, rows) of a network saved without the CLI's metadata: every column is an input."""
    specs = [{"name": c.name, "kind": "number", "width": c.width, "fill": None}
             for c in table.columns]
    X, _ = apply_features(table, specs)
    if X.shape[1] != net.sizes[0]:
        raise UsageError(
            f"{table.source}: {X.shape[1]} columns, but the model takes {net.sizes[0]} inputs "
            "(a model saved by `fastbp train --save` picks its columns by name)")
    header = [f"y{k}" for k in range(net.sizes[-1])]
    return header, ([_format(float(v)) for v in row] for row in net.predict(X))


def _as_trained(net, meta: ModelMeta, table) -> tuple:
    """(header, rows) with the columns, encoders, scaling and class names saved beside the network."""
    X, unseen = apply_features(table, meta.features)
    note(*unseen)
    out = net.predict(meta.inputs(X)).astype(np.float64)
    if meta.task == "classification":
        target = meta.targets[0]
        if out.shape[1] == 1:  # one sigmoid unit for two classes: P(second class)
            out = np.hstack([1 - out, out])
        header = [target] + [f"{target}={c}" for c in meta.classes]
        return header, ([str(meta.classes[int(np.argmax(row))])]
                        + [_format(float(v)) for v in row] for row in out)
    if meta.task == "multilabel":
        header = []
        for target, (_, positive) in zip(meta.targets, meta.classes):
            header += [target, f"{target}={label(positive)}"]
        return header, ([cell for (negative, positive), p in zip(meta.classes, row)
                         for cell in (str(positive if p > 0.5 else negative), _format(float(p)))]
                        for row in out)
    out = meta.outputs(out)
    if len(meta.targets) == out.shape[1]:
        header = list(meta.targets)
    else:
        header = [f"{meta.targets[0]}[{k}]" for k in range(out.shape[1])]
    return header, ([_format(float(v)) for v in row] for row in out)


def _write(writer, header: list, rows) -> None:
    writer.writerow(header)
    for row in rows:
        if reader_gone():  # e.g. `fastbp predict ... | head`: nobody reads the rest
            return
        writer.writerow(row)
