"""``fastbp predict``: a saved model's predictions for a table, as CSV."""
from __future__ import annotations

import argparse
import csv
import sys

import numpy as np

from .errors import EXIT_OK, UsageError
from .model import ModelMeta, load_model
from .options import check_output_path
from .tables import feature_matrix, load_table


def add_parser(subparsers) -> None:
    """Add the ``predict`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "predict", help="write a saved model's predictions as CSV",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Predict with a model saved by `fastbp train --save` (or fastbp.Network.save). "
                    "Classification writes the predicted label and one output per class.")
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="a model .npz")
    p.add_argument("data", metavar="DATA", help="a CSV, an .npz or an embedded dataset's name")
    p.add_argument("--out", metavar="FILE", help="write the CSV there instead of stdout")


def run(args) -> int:
    """Run ``fastbp predict`` on the parsed ``args``; the exit code."""
    net, meta = load_model(args.model)
    table = load_table(args.data)
    if meta is None:
        header, rows = _plain(net, table)
    else:
        header, rows = _as_trained(net, meta, table)
    if args.out is None:
        _write(csv.writer(sys.stdout, lineterminator="\n"), header, rows)
        return EXIT_OK
    check_output_path(args.out, "--out")
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        _write(csv.writer(handle), header, rows)
    print(f"wrote {table.n_rows} predictions to {args.out}", file=sys.stderr)
    return EXIT_OK


def _format(value: float) -> str:
    return f"{value:.8g}"


def _plain(net, table) -> tuple:
    """(header, rows) of a network saved without the CLI's metadata: every column is an input."""
    X, _ = feature_matrix(table)
    if X.shape[1] != net.sizes[0]:
        raise UsageError(
            f"{table.source}: {X.shape[1]} columns, but the model takes {net.sizes[0]} inputs "
            "(a model saved by `fastbp train --save` picks its columns by name)")
    header = [f"y{k}" for k in range(net.sizes[-1])]
    return header, ([_format(float(v)) for v in row] for row in net.predict(X))


def _as_trained(net, meta: ModelMeta, table) -> tuple:
    """(header, rows) with the columns, scaling and class names saved beside the network."""
    X, _ = feature_matrix(table, spec=meta.features)
    out = net.predict(meta.inputs(X)).astype(np.float64)
    target = meta.target
    if meta.task == "classification":
        header = [target] + [f"{target}={c}" for c in meta.classes]
        return header, ([str(meta.classes[int(np.argmax(row))])] + [_format(float(v)) for v in row]
                        for row in out)
    out = meta.outputs(out)
    header = [target] if out.shape[1] == 1 else [f"{target}[{k}]" for k in range(out.shape[1])]
    return header, ([_format(float(v)) for v in row] for row in out)


def _write(writer, header: list, rows) -> None:
    writer.writerow(header)
    writer.writerows(rows)
