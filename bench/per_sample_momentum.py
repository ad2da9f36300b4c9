#!/usr/bin/env python
"""Per-sample SGD with momentum: fastbp against FANN's incremental training.

Usage (fastbp installed; FANN through Debian's libfann, ``apt-get install libfann-dev``)::

    python bench/per_sample_momentum.py                  # momentum 0.4, 5 repeats
    python bench/per_sample_momentum.py --momentum 0,0.4 --repeats 3
    python bench/per_sample_momentum.py --quick          # the same-work checks only

Three small sigmoid networks, one update per row in order, mse, from the same
initial weights on both sides, one thread:

- 2-2-1 on XOR's four rows (many epochs: fixed costs per row are the story);
- 8-16-1 on 8-bit parity (all 256 patterns);
- 64-32-10 on digits (1797 rows).

FANN runs ``FANN_TRAIN_INCREMENTAL`` with ``fann_set_learning_momentum``: its
step is Δw = lr·δ·z + μ·Δw_prev, w += Δw, which is fastbp's
v = μ·v − lr·g, w += v (g = −δ·z). FANN keeps μ in a C float, so every side
uses μ rounded to float32 (0.4 is 0.4000000059604645).

Same work: each side first trains one epoch from the given weights, and its
weights are compared with a NumPy per-sample momentum loop running its rule
(FANN's clips z to [0.01, 0.99] inside σ'; see bench/peers/fann_peer.py), to
compare.py's tolerances. Then each is timed over ``--epochs``-scaled runs,
fastbp and FANN interleaved (A B A B ...), a fresh optimiser state per run,
median of ``--repeats``; the ratio is the median over the paired runs of
FANN's time over fastbp's (above 1: fastbp is faster), by the wall clock and
by this thread's CPU time (both run on it), which on a shared machine leaves
out the time other processes held the core. The load average at the start
and end and each side's slowest/fastest run are reported too.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import TOLERANCE, initial_parameters, relative_parameter_error  # noqa: E402
from peers import fann_peer  # noqa: E402
from peers.numpy_peer import VARIANTS, sigmoid, sigmoid_slope  # noqa: E402


@dataclass(frozen=True)
class Problem:
    """A network, its data and how many epochs make one timed run."""

    name: str
    sizes: tuple
    epochs: int
    lr: float = 0.25

    def data(self):
        """Inputs and targets, float64."""
        if self.name.startswith("xor"):
            X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
            return X, (X[:, :1] != X[:, 1:]).astype(np.float64)
        if self.name.startswith("parity"):
            codes = np.arange(2 ** self.sizes[0])
            X = ((codes[:, None] >> np.arange(self.sizes[0])) & 1).astype(np.float64)
            return X, (X.sum(axis=1, keepdims=True) % 2).astype(np.float64)
        import fastbp

        return fastbp.load_digits()


PROBLEMS = (
    Problem("xor 2-2-1", (2, 2, 1), epochs=20000),
    Problem("parity 8-16-1", (8, 16, 1), epochs=200),
    Problem("digits 64-32-10", (64, 32, 10), epochs=3),
)


def numpy_momentum(X, Y, weights, biases, lr, momentum, dtype, rule, epochs=1):
    """Per-sample SGD with momentum in NumPy: the yardstick of the same-work check.

    v = μ·v − lr·g, W += v for every weight and bias, one row at a time in
    order; ``rule`` is a key of ``peers.numpy_peer.VARIANTS`` (mse, or FANN's
    clipped σ'). Returns the weights and biases.
    """
    dtype = np.dtype(dtype)
    clip = VARIANTS[rule]["derivative_clip"]
    X, Y = X.astype(dtype), Y.astype(dtype)
    W = [np.array(w, dtype) for w in weights]
    b = [np.array(c, dtype) for c in biases]
    vW = [np.zeros_like(w) for w in W]
    vb = [np.zeros_like(c) for c in b]
    lr, mu = dtype.type(lr), dtype.type(momentum)
    for _ in range(epochs):
        for x, t in zip(X, Y):
            z = [x]
            for w, c in zip(W, b):
                z.append(sigmoid(z[-1] @ w + c))
            delta = (z[-1] - t) * sigmoid_slope(z[-1], clip)
            for layer in range(len(W) - 1, -1, -1):
                g_W, g_b = np.outer(z[layer], delta), delta
                if layer > 0:
                    delta = (W[layer] @ delta) * sigmoid_slope(z[layer], clip)
                vW[layer] = mu * vW[layer] - lr * g_W
                vb[layer] = mu * vb[layer] - lr * g_b
                W[layer] += vW[layer]
                b[layer] += vb[layer]
    return W, b


class FastbpRun:
    """fastbp: set_weights, then one ``fit`` with a fresh ``SGD(lr, momentum)``."""

    name, rule = "fastbp", "mse"

    def __init__(self, X, Y, sizes, lr, momentum, dtype):
        import fastbp

        self.fastbp, self.lr, self.momentum = fastbp, lr, momentum
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.Y = np.ascontiguousarray(Y, dtype=dtype)
        self.network = fastbp.Network(list(sizes), activation="sigmoid",
                                      output_activation="sigmoid", dtype=dtype, seed=0)

    def load(self, weights, biases):
        self.network.set_weights(weights, biases)

    def epoch(self, epochs=1):
        optimizer = self.fastbp.SGD(lr=self.lr, momentum=self.momentum)
        self.network.fit(self.X, self.Y, loss="mse", optimizer=optimizer, epochs=epochs,
                         batch_size=1, shuffle=False, n_threads=1)

    def parameters(self):
        return self.network.weights, self.network.biases


class FannRun(fann_peer.Trainer):
    """FANN's incremental training (bench/peers/fann_peer.py) with a learning momentum."""

    name, rule = "fann", fann_peer.MATH

    def __init__(self, X, Y, sizes, lr, momentum, dtype):
        super().__init__(X, Y, sizes, 1, lr, dtype)
        self.fann.lib.fann_set_learning_momentum(self.ann, ctypes.c_float(momentum))


def same_work(run_class, problem, X, Y, weights, biases, momentum, dtype):
    """One epoch of ``run_class`` against NumPy running its rule."""
    run = run_class(X, Y, problem.sizes, problem.lr, momentum, dtype)
    run.load(weights, biases)
    run.epoch(1)
    got_w, got_b = run.parameters()
    want_w, want_b = numpy_momentum(X, Y, weights, biases, problem.lr, momentum, dtype,
                                    run_class.rule)
    error = relative_parameter_error(list(got_w) + list(got_b), want_w + want_b)
    return {"passed": bool(error <= TOLERANCE[dtype]), "parameter_error": error,
            "rule": run_class.rule}


def timed(run_class, problem, X, Y, weights, biases, momentum, dtype):
    """Wall and this thread's CPU seconds for ``problem.epochs`` epochs from
    the given weights (set-up untimed). Both sides train on this thread
    (FANN through ctypes), so its CPU time leaves out the time the shared
    machine's other processes held the core."""
    run = run_class(X, Y, problem.sizes, problem.lr, momentum, dtype)
    run.load(weights, biases)
    wall, cpu = time.perf_counter(), time.thread_time()
    run.epoch(problem.epochs)
    return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--momentum", default="0.4",
                        help="comma-separated momenta (each rounded to float32)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies each problem's epochs per timed run")
    parser.add_argument("--quick", action="store_true", help="the same-work checks only")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "per_sample_momentum"))
    args = parser.parse_args()
    why = fann_peer.availability()
    if why:
        sys.exit(f"FANN: {why}")
    momenta = [float(np.float32(m)) for m in args.momentum.split(",")]
    load_start = os.getloadavg()
    lines = [f"Per-sample SGD with momentum, sigmoid layers, mse, rows in order, 1 thread; "
             f"µs per sample, median of {args.repeats} interleaved runs "
             f"(load average at start {load_start[0]:.2f}, {load_start[1]:.2f}, "
             f"{load_start[2]:.2f})"]
    report = {"repeats": args.repeats, "load_start": load_start, "results": []}
    failed = False
    for problem in PROBLEMS:
        problem = Problem(problem.name, problem.sizes,
                          max(1, round(problem.epochs * args.scale)), problem.lr)
        X, Y = problem.data()
        weights, biases = initial_parameters(problem.sizes)
        samples = problem.epochs * X.shape[0]
        for momentum in momenta:
            for dtype in args.dtypes.split(","):
                label = f"{problem.name} μ={momentum:.4g} {dtype}"
                checks = {run.name: same_work(run, problem, X, Y, weights, biases, momentum,
                                              dtype) for run in (FastbpRun, FannRun)}
                for name, check in checks.items():
                    print(f"{label} same work {name}: "
                          f"{'ok' if check['passed'] else 'FAILED'} (relative parameter "
                          f"error {check['parameter_error']:.1e} vs NumPy's {check['rule']} "
                          f"rule)")
                entry = {"problem": problem.name, "sizes": problem.sizes,
                         "momentum": momentum, "dtype": dtype, "epochs": problem.epochs,
                         "rows": int(X.shape[0]), "same_work": checks}
                report["results"].append(entry)
                if not all(check["passed"] for check in checks.values()):
                    failed = True
                    lines.append(f"{label}: FAILED its same-work check, not timed")
                    continue
                if args.quick:
                    continue
                runs = {"fastbp": [], "fann": []}
                for _ in range(args.repeats):
                    for run in (FastbpRun, FannRun):
                        runs[run.name].append(timed(run, problem, X, Y, weights, biases,
                                                    momentum, dtype))
                summary = {}
                for clock, index in (("wall", 0), ("cpu", 1)):
                    times = {name: [r[index] for r in rs] for name, rs in runs.items()}
                    summary[clock] = {
                        "us_per_sample": {name: statistics.median(t) / samples * 1e6
                                          for name, t in times.items()},
                        "slowest_over_fastest": {name: max(t) / min(t)
                                                 for name, t in times.items()},
                        "fann_over_fastbp": statistics.median(
                            f / o for o, f in zip(times["fastbp"], times["fann"]))}
                entry.update(runs=runs, **summary)
                lines.append(f"{label}: " + "; ".join(
                    f"{clock} fastbp {c['us_per_sample']['fastbp']:.3f}, fann "
                    f"{c['us_per_sample']['fann']:.3f} µs/sample, FANN/fastbp "
                    f"{c['fann_over_fastbp']:.2f}x (slowest/fastest "
                    f"{c['slowest_over_fastest']['fastbp']:.2f}, "
                    f"{c['slowest_over_fastest']['fann']:.2f})"
                    for clock, c in summary.items()))
                print(lines[-1])
    load_end = os.getloadavg()
    report["load_end"] = load_end
    lines.append(f"load average at end {load_end[0]:.2f}, {load_end[1]:.2f}, {load_end[2]:.2f}")
    print("\n".join(lines))
    if not args.quick:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
        out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    if failed:
        sys.exit("a contender did not do the same work")


if __name__ == "__main__":
    main()
