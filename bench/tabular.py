#!/usr/bin/env python
"""Test error at equal time: fastbp's one default configuration against FANN's best algorithm.

FANN's own benchmark problems (the PROBEN1 and DELVE sets shipped in
``libfann-doc``: ``apt-get install libfann-doc libfann-dev``) are real tabular
data, already scaled to [0, 1] and split into train and test halves. For each
problem, every contender trains the same layer sizes (``--hidden`` units, one
hidden layer) on the train half for the same wall time (``--budget`` seconds,
whole epochs, checked after each) and is scored once, at the end, on the test
half; nobody looks at the test half before that. Each (problem, contender)
runs ``--seeds`` times, interleaved (seed 0 of every contender, then seed 1,
...), and the table shows medians.

Contenders, one thread each (FANN has no threads):

- FANN 2.2 with each of its training algorithms (incremental, batch, RPROP
  (its default), Quickprop, SARPROP) at its own defaults, tanh
  (``FANN_SIGMOID_SYMMETRIC``) hidden units and sigmoid outputs. "FANN best"
  is, per problem, the algorithm with the lowest median test error.
- fastbp with one configuration for every problem (:data:`FASTBP_CONFIG`):
  the same for all nine problems; a softmax output with cross-entropy where
  the targets are one-hot classes, a sigmoid output with mse otherwise.

The score is the test mse over all outputs, 1/(n·k)·Σ(y − t)² (FANN's
``fann_test_data``), computed here in NumPy from each contender's outputs on
the test rows; for one-hot problems the classification error is shown too.
Same-work check, before any timing: FANN's own ``fann_test_data`` mse of a
trained network must equal the NumPy mse of its ``fann_run`` outputs, and
fastbp's ``Network.loss`` on the test rows must equal the NumPy value of its
loss from its ``predict`` outputs, so that both are scored by the same rule
on the same rows.

Usage::

    python bench/tabular.py                      # 9 problems, 2 s each, 3 seeds
    python bench/tabular.py --budget 0.5 --seeds 3 --problems diabetes,thyroid

Results: ``bench/results/tabular.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from peers import fann_peer  # noqa: E402

DATASETS = Path("/usr/share/doc/libfann-dev/examples/datasets")
#: real tabular problems of FANN's benchmark set (two-spiral and parity are synthetic)
PROBLEMS = ("abelone", "building", "census-house", "diabetes", "gene", "mushroom", "robot",
            "soybean", "thyroid")
#: FANN's training algorithms (fann_data.h, enum fann_train_enum)
FANN_ALGORITHMS = {"incremental": 0, "batch": 1, "rprop": 2, "quickprop": 3, "sarprop": 4}
FANN_SIGMOID = 3
FANN_SIGMOID_SYMMETRIC = 5
#: fastbp's one configuration: set once, for every problem
FASTBP_CONFIG = {"activation": "tanh", "optimizer": "Adam", "lr": 1e-3, "batch_size": 32}


def read_fann_data(path: Path):
    """One FANN data file: a header "rows inputs outputs", then input and output lines."""
    tokens = path.read_text().split()
    n_rows, n_in, n_out = (int(t) for t in tokens[:3])
    values = np.array(tokens[3:], dtype=np.float64).reshape(n_rows, n_in + n_out)
    return values[:, :n_in].copy(), values[:, n_in:].copy()


def is_one_hot(Y) -> bool:
    return bool(np.isin(Y, (0.0, 1.0)).all() and (Y.sum(axis=1) == 1).all())


def test_scores(outputs, Y) -> dict:
    """Test mse over all outputs and, for one-hot targets, the classification error."""
    scores = {"mse": float(np.mean((outputs - Y) ** 2))}
    if is_one_hot(Y):
        scores["error"] = float(np.mean(outputs.argmax(axis=1) != Y.argmax(axis=1)))
    return scores


class FannContender:
    """FANN (float64 library) with one training algorithm."""

    def __init__(self, algorithm: str):
        self.name = f"fann-{algorithm}"
        self.algorithm = FANN_ALGORITHMS[algorithm]
        self.fann = fann_peer.fann_library("float64")
        lib, ann = self.fann.lib, ctypes.c_void_p
        data = ctypes.POINTER(self.fann.TrainData)
        real_p = ctypes.POINTER(ctypes.c_double)
        for function, restype, argtypes in (
                ("fann_read_train_from_file", data, [ctypes.c_char_p]),
                ("fann_destroy_train", None, [data]),
                ("fann_run", real_p, [ann, real_p]),
                ("fann_randomize_weights", None, [ann, ctypes.c_double, ctypes.c_double]),
                ("fann_test_data", ctypes.c_float, [ann, data])):
            getattr(lib, function).restype = restype
            getattr(lib, function).argtypes = argtypes
        self.libc = ctypes.CDLL(None)

    def run(self, problem: str, sizes, seed: int, budget: float) -> dict:
        lib = self.fann.lib
        train = lib.fann_read_train_from_file(str(DATASETS / f"{problem}.train").encode())
        test = lib.fann_read_train_from_file(str(DATASETS / f"{problem}.test").encode())
        layer_sizes = (ctypes.c_uint * len(sizes))(*sizes)
        ann = ctypes.c_void_p(lib.fann_create_standard_array(len(sizes), layer_sizes))
        try:
            lib.fann_set_activation_function_hidden(ann, FANN_SIGMOID_SYMMETRIC)
            lib.fann_set_activation_function_output(ann, FANN_SIGMOID)
            lib.fann_set_training_algorithm(ann, self.algorithm)
            self.libc.srand(seed)  # fann_randomize_weights draws from rand()
            lib.fann_randomize_weights(ann, -0.1, 0.1)  # FANN's own initial range
            epochs, start = 0, time.perf_counter()
            while time.perf_counter() - start < budget:
                lib.fann_train_epoch(ann, train)
                epochs += 1
            seconds = time.perf_counter() - start
            X_test, Y_test = read_fann_data(DATASETS / f"{problem}.test")
            outputs = np.array([self._run_row(ann, row, sizes[-1]) for row in X_test])
            scores = test_scores(outputs, Y_test)
            scores["fann_mse"] = float(lib.fann_test_data(ann, test))
        finally:
            lib.fann_destroy(ann)
            lib.fann_destroy_train(train)
            lib.fann_destroy_train(test)
        return {**scores, "epochs": epochs, "seconds": seconds}

    def _run_row(self, ann, row, n_out):
        row = np.ascontiguousarray(row, dtype=np.float64)
        out = self.fann.lib.fann_run(ann, row.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        return np.ctypeslib.as_array(out, shape=(n_out,)).copy()


class FastbpContender:
    """fastbp with :data:`FASTBP_CONFIG`."""

    name = "fastbp"

    def __init__(self):
        import fastbp
        self.fastbp = fastbp

    def run(self, problem: str, sizes, seed: int, budget: float) -> dict:
        X, Y = read_fann_data(DATASETS / f"{problem}.train")
        X_test, Y_test = read_fann_data(DATASETS / f"{problem}.test")
        classes = is_one_hot(Y)
        network = self.fastbp.Network(sizes, activation=FASTBP_CONFIG["activation"],
                                      output_activation="softmax" if classes else "sigmoid",
                                      seed=seed)
        optimizer = getattr(self.fastbp, FASTBP_CONFIG["optimizer"])(lr=FASTBP_CONFIG["lr"])
        epochs, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget:
            # the optimiser's state carries over from fit to fit
            network.fit(X, Y, optimizer=optimizer, epochs=1,
                        batch_size=FASTBP_CONFIG["batch_size"], seed=seed + 1000 * epochs,
                        n_threads=1)
            epochs += 1
        seconds = time.perf_counter() - start
        outputs = network.predict(X_test)
        scores = test_scores(outputs, Y_test)
        # checked on the rows whose target probability did not underflow to 0:
        # NumPy's log of it is -inf there, fastbp's loss comes from a instead
        rows = (np.sum(Y_test * outputs, axis=1) > 0) if classes else slice(None)
        scores["own_loss"] = float(network.loss(X_test[rows], Y_test[rows]))
        scores["numpy_loss"] = float(
            -np.mean(np.sum(Y_test[rows] * np.log(np.where(Y_test[rows] > 0, outputs[rows], 1)),
                            axis=1)) if classes
            else 0.5 * np.mean(np.sum((outputs - Y_test) ** 2, axis=1)))
        return {**scores, "epochs": epochs, "seconds": seconds}


def same_work(results) -> list:
    """Problems where a contender's own score disagrees with the NumPy rule."""
    failures = []
    for (problem, name, seed), r in results.items():
        # FANN sums its mse in a C float: 1e-4 relative over ~10^4 rows
        if "fann_mse" in r and not np.isclose(r["fann_mse"], r["mse"], rtol=1e-4, atol=1e-7):
            failures.append(f"{problem}/{name}/{seed}: fann_test_data {r['fann_mse']} "
                            f"!= NumPy {r['mse']}")
        if "own_loss" in r and not np.isclose(r["own_loss"], r["numpy_loss"], rtol=1e-9):
            failures.append(f"{problem}/{name}/{seed}: Network.loss {r['own_loss']} "
                            f"!= NumPy {r['numpy_loss']}")
    return failures


def summarise(results, problems, names, seeds) -> list:
    rows = []
    for problem in problems:
        medians = {name: {key: statistics.median(results[problem, name, s][key] for s in seeds)
                          for key in ("mse", "epochs") + (("error",) if "error" in
                                                          results[problem, name, 0] else ())}
                   for name in names}
        fann = {n: m for n, m in medians.items() if n.startswith("fann-")}
        best = min(fann, key=lambda n: fann[n]["mse"])
        rows.append({"problem": problem, "medians": medians, "fann_best": best,
                     "ratio": medians["fastbp"]["mse"] / fann[best]["mse"]})
    return rows


def markdown(rows, args, seconds) -> str:
    lines = [f"Test mse after {args.budget} s of training (median of {args.seeds} seeds), "
             f"one hidden layer of {args.hidden}, one thread; fastbp {FASTBP_CONFIG}.", "",
             "| problem | fastbp mse | FANN best | its mse | fastbp / FANN best | "
             "fastbp error | FANN best error | fastbp epochs | FANN epochs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        m, best = row["medians"], row["fann_best"]
        err = (f"{m['fastbp']['error']:.4f} | {m[best]['error']:.4f}"
               if "error" in m["fastbp"] else "– | –")
        lines.append(f"| {row['problem']} | {m['fastbp']['mse']:.5f} | {best} | "
                     f"{m[best]['mse']:.5f} | {row['ratio']:.3f} | {err} | "
                     f"{m['fastbp']['epochs']:.0f} | {m[best]['epochs']:.0f} |")
    wins = sum(row["ratio"] <= 1 for row in rows)
    lines += ["", f"fastbp's test mse is no worse than FANN's best algorithm on {wins} of "
              f"{len(rows)} problems. Run took {seconds:.0f} s on {platform.processor() or platform.machine()}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of training per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--algorithms", default=",".join(FANN_ALGORITHMS))
    parser.add_argument("--out", default=str(BENCH_DIR / "results"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if fann_peer.availability() or not DATASETS.is_dir():
        print("needs libfann-dev and libfann-doc (FANN's datasets): "
              "apt-get install libfann-dev libfann-doc", file=sys.stderr)
        return 2
    problems = args.problems.split(",")
    contenders = [FastbpContender()] + [FannContender(a) for a in args.algorithms.split(",")]
    names = [c.name for c in contenders]
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    results = {}
    for problem in problems:
        X, Y = read_fann_data(DATASETS / f"{problem}.train")
        sizes = [X.shape[1], args.hidden, Y.shape[1]]
        for seed in seeds:  # interleaved: every contender's seed 0, then seed 1, ...
            for contender in contenders:
                results[problem, contender.name, seed] = contender.run(problem, sizes, seed,
                                                                       args.budget)
        print(f"{problem} done", file=sys.stderr)
    failures = same_work(results)
    if failures:
        print("same-work check failed:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    rows = summarise(results, problems, names, seeds)
    text = markdown(rows, args, time.perf_counter() - started)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tabular.md").write_text(text)
    (out / "tabular.json").write_text(json.dumps(
        {"config": FASTBP_CONFIG, "budget": args.budget, "hidden": args.hidden, "rows": rows,
         "runs": [{"problem": p, "contender": n, "seed": s, **r}
                  for (p, n, s), r in results.items()]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
