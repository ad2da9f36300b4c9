"""The fixed cost of a ``fit`` call: warm µs per call on a 4-row XOR, per call form.

Each form is timed in a fresh interpreter per build (``--before``, and this
Python or ``--after``), alternating A B A B ... over ``--rounds``; a round
keeps the fastest of 5 timeit repeats and the table the median over rounds.
Same work first: every build must give the same weights after the seeded
form of each call (bit for bit: a redesign keeps the bits). Usage::

    python bench/fit_fixed_cost.py --before /tmp/venv-old/bin/python --rounds 5
    python bench/fit_fixed_cost.py --rounds 3          # this build alone

Results: ``bench/results/fit_fixed_cost.txt`` (``--out``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

#: (label, keyword arguments of fit); the XOR net has 9 weights and 4 rows
FORMS = (
    ("fit(X, Y)", {}),
    ("fit(X, Y, shuffle=False)", {"shuffle": False}),
    ("fit(X, Y, batch_size=1)", {"batch_size": 1}),
    ("fit(X, Y, batch_size=1, shuffle=False, n_threads=1)",
     {"batch_size": 1, "shuffle": False, "n_threads": 1}),
    ("fit(X, Y, epochs=100)", {"epochs": 100}),
)


def worker(calls: int) -> dict:
    """Time every form in this interpreter; also the weights' digest of its seeded run."""
    import timeit

    import numpy as np

    import fastbp

    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    out = {}
    for label, kwargs in FORMS:
        seeded = fastbp.Network([2, 2, 1], activation="sigmoid", output_activation="sigmoid",
                                seed=0)
        seeded.fit(X, Y, **{"seed": 0, **kwargs})
        flat = np.concatenate([a.ravel() for a in seeded.weights + seeded.biases])
        digest = hashlib.sha256(flat.tobytes()).hexdigest()[:16]
        net = fastbp.Network([2, 2, 1], activation="sigmoid", output_activation="sigmoid",
                             seed=0)
        timer = timeit.Timer(lambda: net.fit(X, Y, **kwargs))
        timer.timeit(200)  # warm: imports, caches, the first calls' set-up
        best = min(timer.repeat(repeat=5, number=calls)) / calls
        out[label] = {"us": best * 1e6, "digest": digest}
    return out


def run_worker(python: str, calls: int) -> dict:
    text = subprocess.run([python, os.path.abspath(__file__), "--worker", "--calls", str(calls)],
                          check=True, capture_output=True, text=True, cwd="/").stdout
    return json.loads(text)


def build_parser(description: str, results_file: str) -> argparse.ArgumentParser:
    """The options of a bench that times builds against each other
    (this one's and bench/fit_cold_cost.py's)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--before", default=None, help="Python of a build to compare with")
    parser.add_argument("--after", default=sys.executable, help="Python of the new build")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help=f"directory of {results_file}")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def interleaved_runs(args, run) -> tuple:
    """``(builds, runs)``: ``run(python)`` (one worker's results by form) for
    each build, alternating A B A B ... over ``args.rounds``; the first
    round's digests of every form must agree between the builds."""
    builds = {"after": args.after} if args.before is None else {"before": args.before,
                                                                 "after": args.after}
    runs = {label: [] for label in builds}
    for round_ in range(args.rounds):
        order = list(builds) if round_ % 2 == 0 else list(reversed(builds))
        for label in order:
            runs[label].append(run(builds[label]))
            print(f"round {round_ + 1} {label} done", file=sys.stderr)
    if args.before is not None:
        for form, result in runs["after"][0].items():
            if runs["before"][0][form]["digest"] != result["digest"]:
                raise SystemExit(f"same-work check failed: {form} gives other weights")
    return builds, runs


def write_table(lines, directory: str, name: str) -> None:
    """Print the table's lines and write them to ``directory/name``."""
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as handle:
        handle.write(text)


def main(argv=None) -> int:
    parser = build_parser(__doc__.splitlines()[0], "fit_fixed_cost.txt")
    parser.add_argument("--calls", type=int, default=2000, help="calls per timeit repeat")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.calls)))
        return 0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    builds, runs = interleaved_runs(args, lambda python: run_worker(python, args.calls))
    header = "| call | " + " | ".join(f"{label} µs" for label in builds)
    lines = [f"Warm fixed cost of fit on a 4-row XOR (2-2-1), fastest of 5 x {args.calls} "
             f"calls, median of {args.rounds} interleaved rounds"
             + (f"; before = {args.before}" if args.before else "")
             + ("; same weights after each seeded call in both builds." if args.before else "."),
             "", header + (" | after/before |" if args.before else " |"),
             "|---" * (len(builds) + 1 + bool(args.before)) + "|"]
    for form, _ in FORMS:
        times = {label: statistics.median(r[form]["us"] for r in runs[label])
                 for label in builds}
        row = f"| `{form}` | " + " | ".join(f"{times[label]:.1f}" for label in builds)
        if args.before:
            row += f" | {times['after'] / times['before']:.3f}"
        lines.append(row + " |")
    write_table(lines, args.out, "fit_fixed_cost.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
