"""Warm fit calls of two versions of fit's Python layer in one process: paired A/B.

For changes to ``fastbp/_fitting.py`` and ``fastbp/_lean.py`` alone (the
same compiled kernels): "A" is those two files of another tree (``--before``,
e.g. a worktree of main), loaded beside the installed package; "B" the
installed ones. Each form is timed A B A B ... in this interpreter (fastest
of 3 x ``--calls`` calls a round), so the machine's slow phases fall on both;
the table gives the medians and the median of the per-round ratios B/A.
Same work first: both give the same weights and losses. The A/A control
(``--control``) loads the other tree twice: its ratios show the noise.
Usage (under bench's quiet wrapper)::

    python tools/fit_python_ab.py --before /work/main/src/fastbp --rounds 15
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import timeit

import numpy as np

import fastbp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from fit_fixed_cost import FORMS as BENCH_FORMS  # noqa: E402

#: bench/fit_fixed_cost.py's forms, and "SGD(lr=0.25)": a new optimiser a call, as compare.py's peer
FORMS = BENCH_FORMS + (
    ("fit(X, Y, SGD(lr=0.25), batch_size=1, shuffle=False, n_threads=1)",
     {"batch_size": 1, "shuffle": False, "n_threads": 1, "new_sgd": True}),
)


def load_fit(directory: str, suffix: str):
    """``FitMixin.fit`` of ``directory``'s _fitting.py, with its _lean.py's functions."""
    modules = {}
    for name in ("_lean", "_fitting"):
        spec = importlib.util.spec_from_file_location(f"fastbp.{name}_{suffix}",
                                                      os.path.join(directory, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    for name in ("DEFAULT_SGD", "lean_eligible", "lean_fit", "lean_trainer"):
        setattr(modules["_fitting"], name, getattr(modules["_lean"], name))
    return modules["_fitting"].FitMixin.fit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="directory of the A version's _fitting.py")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--control", action="store_true", help="A/A: the --before tree twice")
    args = parser.parse_args(argv)
    fits = {"A": load_fit(args.before, "a"),
            "B": load_fit(args.before, "b") if args.control else fastbp.Network.fit}
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])

    def net():
        return fastbp.Network([2, 2, 1], activation="sigmoid", output_activation="sigmoid",
                              seed=0)

    def call(fit, network, kwargs, **extra):
        kwargs = dict(kwargs)
        if kwargs.pop("new_sgd", False):
            kwargs["optimizer"] = fastbp.SGD(lr=0.25)
        return fit(network, X, Y, **kwargs, **extra)

    print("| call | A µs | B µs | B/A (median of paired rounds) |\n|---|---|---|---|")
    for label, kwargs in FORMS:
        same = []
        for fit in fits.values():
            network = net()
            history = [call(fit, network, kwargs, seed=0)["loss"] for _ in range(3)]
            same.append((network.params.tobytes(), history))
        if same[0] != same[1]:
            raise SystemExit(f"{label}: A and B train differently")
        timers = {}
        for key, fit in fits.items():
            network = net()
            timers[key] = timeit.Timer(lambda fit=fit, network=network: call(fit, network, kwargs))
            timers[key].timeit(300)
        times = {"A": [], "B": []}
        for round_ in range(args.rounds):
            for key in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                times[key].append(min(timers[key].repeat(3, args.calls)) / args.calls * 1e6)
        ratios = [b / a for a, b in zip(times["A"], times["B"])]
        print(f"| `{label}` | {statistics.median(times['A']):.1f} | "
              f"{statistics.median(times['B']):.1f} | {statistics.median(ratios):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
