"""``fastbp gradcheck``: compiled gradients against the reference and finite differences."""
from __future__ import annotations

import numpy as np

from ..gradcheck import RELATIVE_TOLERANCE
from ..losses import LOSS_FOR_OUTPUT
from .errors import EXIT_OK, RunFailed, UsageError
from .model import OUTPUT_FOR_LOSS, load_model
from .options import (DTYPES, HIDDEN_ACTIVATIONS, LOSS_NAMES, HelpFormatter, add_table_options,
                      float_in, int_at_least, layer_sizes, table_options)
from .features import apply_features, targets_as_trained
from .tables import load_table

#: the compiled gradients' allowed rounding per dtype, as a fraction of the magnitude of the
#: terms they sum (fastbp.gradcheck scales it, and adds the finite differences' step error)
GRADCHECK_TOLERANCE = RELATIVE_TOLERANCE


def add_parser(subparsers) -> None:
    """Add the ``gradcheck`` command to ``subparsers``."""
    p = subparsers.add_parser(
        "gradcheck", formatter_class=HelpFormatter,
        help="check the compiled gradients against the reference and finite differences",
        description="Compare the compiled gradients with fastbp.reference (pure Python, per "
                    "neuron), its graph engine and central finite differences, on a small "
                    "random network, or on a saved model with random or given data. Each "
                    "tolerance scales with the gradients compared (and, for finite "
                    "differences, with the step's own error); the loosest is named. Exits 1 "
                    "on a failure.")
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help="a saved model (default: a random --sizes network)")
    p.add_argument("data", metavar="DATA", nargs="?",
                   help="data for the model, with its target columns (default: random rows)")
    p.add_argument("--sizes", type=layer_sizes, default=[4, 5, 3],
                   help="layer widths of the random network")
    p.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh",
                   help="hidden activation of the random network")
    p.add_argument("--loss", choices=LOSS_NAMES, default=None,
                   help="default: mse, or the saved model's loss")
    p.add_argument("--rows", type=int_at_least(1, 10_000), default=8,
                   help="rows in the checked batch")
    p.add_argument("--l2", type=float_in(0), default=0.0, help="L2 penalty λ")
    p.add_argument("--dtype", choices=DTYPES, default=None,
                   help="default: float64, or the saved model's dtype")
    p.add_argument("--max-params", type=int_at_least(1), default=2000,
                   help="parameters checked by finite differences (chosen at random)")
    p.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the random network, rows and checked parameters")
    add_table_options(p)


def run(args) -> int:
    """Run ``fastbp gradcheck`` on the parsed ``args``; the exit code (1 on a failed check)."""
    from ..gradcheck import gradcheck

    if args.data is not None and args.model is None:
        raise UsageError("DATA needs a MODEL")
    rng = np.random.default_rng(args.seed)
    meta = None
    if args.model is None:
        net, loss = _random_network(args, rng)
    else:
        net, loss, meta = _saved_network(args)
    if args.data is None:
        X = rng.normal(size=(args.rows, net.sizes[0]))
        Y = _random_targets(rng, loss, args.rows, net.sizes[-1])
        source = f"{args.rows} random rows"
    else:
        X, Y, source = _rows_of(args, meta, rng)
    result = gradcheck(net, X, Y, loss=loss, l2=args.l2, max_params=args.max_params,
                       seed=args.seed)
    print(f"fastbp gradcheck: {net}, loss {loss}, l2 {args.l2:g}, {source}, "
          f"{net.n_params} parameters")
    _report(result)
    return EXIT_OK


def _random_network(args, rng) -> tuple:
    """(network, loss): a ``--sizes`` network with non-zero biases, so their gradients count."""
    from ..network import Network

    loss = args.loss or "mse"
    net = Network(args.sizes, activation=args.activation,
                  output_activation=OUTPUT_FOR_LOSS.get(loss, "tanh"),
                  dtype=args.dtype or "float64", seed=args.seed)
    net.set_weights(net.weights, [rng.normal(scale=0.3, size=b.shape) for b in net.biases])
    return net, loss


def _saved_network(args) -> tuple:
    """(network, loss, meta) of MODEL; the loss it was trained with unless --loss says."""
    net, meta = load_model(args.model)
    if args.dtype is not None:
        net = net.astype(args.dtype)
    default_loss = (meta.loss if meta is not None else None) or LOSS_FOR_OUTPUT.get(
        net.output_activation, "mse")
    return net, args.loss or default_loss, meta


def _rows_of(args, meta, rng) -> tuple:
    """(X, Y, source): up to --rows random rows of DATA, read and scaled as in training."""
    if meta is None:
        raise UsageError(f"{args.model}: checking on DATA needs a model saved by "
                         "`fastbp train --save` (it records the columns and the targets)")
    table = load_table(args.data, table_options(args))
    X, _ = apply_features(table, meta.features)
    Y = meta.targets_scaled(targets_as_trained(table, meta))
    X = meta.inputs(X)
    rows = rng.permutation(X.shape[0])[:args.rows]
    return X[rows], Y[rows], f"{len(rows)} rows of {table.source}"


def _random_targets(rng, loss: str, m: int, n: int) -> np.ndarray:
    if loss == "cross_entropy":
        return np.eye(n)[rng.integers(0, n, m)]
    if loss == "bce":
        return rng.uniform(0, 1, (m, n))
    return rng.normal(size=(m, n))


def _report(result) -> None:
    """A line per oracle and one naming the loosest; RunFailed if any is over its tolerance."""
    checks = [("compiled vs reference (per-neuron Python)", "reference"),
              ("compiled vs graph engine (reverse mode)", "graph"),
              ("compiled vs central finite differences", "finite_differences")]
    failed = result.failed
    for title, name in checks:
        print(f"{title:42s} max relative error {getattr(result, name):.3e}  "
              f"(tolerance {result.tolerances[name]:.1e})  "
              f"{'FAIL' if name in failed else 'ok'}")
    loosest = result.loosest
    print(f"loosest: {_NAMES[loosest]}, from {result.reasons[loosest]}")
    if "reference_vs_graph" in failed:
        raise RunFailed(f"the two pure-Python oracles disagree with each other (relative "
                        f"error {result.reference_vs_graph:.1e}, tolerance "
                        f"{result.tolerances['reference_vs_graph']:.1e}): fastbp.reference "
                        "is broken")
    if failed:
        raise RunFailed("the compiled gradients disagree with the oracles: "
                        + ", ".join(_NAMES[name] for name in failed))


_NAMES = {"reference": "the per-neuron reference", "graph": "the graph engine",
          "finite_differences": "finite differences"}
