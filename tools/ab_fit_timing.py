"""Time Network.fit in two installed builds of fastbp, interleaved (A B A B ...).

    python tools/ab_fit_timing.py --old /tmp/venv-old/bin/python \
        --new /tmp/venv-k/bin/python --runs 9

Each run starts a fresh interpreter per build, which fits every case three
times (the first warms up) and reports the faster of the other two. The
table shows µs per sample, median and minimum over the runs, and each build's
final loss (the same work: equal up to float rounding). For a kernel change,
install the commit before it into one venv and the change into the other.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = [
    # name, sizes, rows, batch, dtype, n_threads, momentum
    ("per-sample 64-32-10 f64", [64, 32, 10], 60000, 1, "float64", 1, 0.0),
    ("per-sample 64-32-10 f32", [64, 32, 10], 60000, 1, "float32", 1, 0.0),
    ("mb128 784-256-128-10 f32 1t", [784, 256, 128, 10], 12000, 128, "float32", 1, 0.9),
    ("mb128 784-256-128-10 f32 2t", [784, 256, 128, 10], 12000, 128, "float32", 2, 0.9),
    ("mb128 784-256-128-10 f64 1t", [784, 256, 128, 10], 12000, 128, "float64", 1, 0.9),
    ("mb128 784-256-128-10 f64 2t", [784, 256, 128, 10], 12000, 128, "float64", 2, 0.9),
]


def worker(only: str) -> None:
    """Time each case in this interpreter's fastbp; print JSON."""
    import numpy as np

    import fastbp
    out = {}
    for name, sizes, rows, batch, dtype, threads, momentum in CASES:
        if only not in name:
            continue
        rng = np.random.default_rng(0)
        X = rng.normal(size=(rows, sizes[0])).astype(dtype)
        Y = rng.uniform(size=(rows, sizes[-1])).astype(dtype)
        best = float("inf")
        for rep in range(3):
            net = fastbp.Network(sizes, activation="tanh", seed=0, dtype=dtype)
            started = time.perf_counter()
            history = net.fit(X, Y, optimizer=fastbp.SGD(lr=0.001, momentum=momentum),
                              epochs=1, batch_size=batch, seed=1, n_threads=threads)
            if rep:
                best = min(best, time.perf_counter() - started)
        out[name] = (best / rows * 1e6, float(history["loss"][-1]))
        time.sleep(0.2)  # let BLAS workers stop spinning
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="python of the build to compare against")
    parser.add_argument("--new", help="python of the build under test")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs (>= 3)")
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.only)
        return
    if not (args.old and args.new) or args.runs < 3:
        parser.error("--old and --new are needed, and --runs >= 3")
    times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    losses: dict[str, dict[str, float]] = {}
    for _ in range(args.runs):
        for tag, python in (("old", args.old), ("new", args.new)):
            result = subprocess.run([python, __file__, "--worker", "--only", args.only],
                                    capture_output=True, text=True, check=True, cwd="/")
            for case, (us, loss) in json.loads(result.stdout).items():
                times[tag].setdefault(case, []).append(us)
                losses.setdefault(case, {})[tag] = loss
    print("| case | old µs/sample | new µs/sample | new/old | old min | new min | new/old min "
          "| final loss old | new |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, old in times["old"].items():
        new = times["new"][case]
        o, n = statistics.median(old), statistics.median(new)
        print(f"| {case} | {o:.2f} | {n:.2f} | {n / o:.3f} | {min(old):.2f} | {min(new):.2f} "
              f"| {min(new) / min(old):.3f} | {losses[case]['old']:.10g} "
              f"| {losses[case]['new']:.10g} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
