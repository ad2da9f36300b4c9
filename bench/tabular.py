#!/usr/bin/env python
"""Test error at equal time: fastbp's one default configuration against FANN's best algorithm.

FANN's own benchmark problems (the PROBEN1 and DELVE sets shipped in
``libfann-doc``: ``apt-get install libfann-doc libfann-dev``) are real tabular
data, already scaled to [0, 1] and split into train and test halves. For each
problem, every contender trains the same layer sizes (``--hidden`` units, one
hidden layer) on the train half for the same wall time (``--budget`` seconds,
whole epochs, checked after each; ``--clock cpu``: CPU time of the
process, for sweeps on a loaded machine) and is scored once, at the end, on the test
half; nobody looks at the test half before that. Each (problem, contender)
runs ``--seeds`` times, interleaved (seed 0 of every contender, then seed 1,
...), and the table shows medians. By default the inputs are standardised
first (``--standardise``): each column gets mean 0 and standard deviation 1
from the **training rows only** (a column constant there is only centred),
the test rows are moved by the same shift and scale, and both contenders read
the same standardised files, so FANN and fastbp are given exactly the same
arrays (``--no-standardise``: FANN's files as shipped, scaled to [0, 1]).

Contenders, one thread each (FANN has no threads):

- FANN 2.2 with each of its training algorithms (incremental, batch, RPROP
  (its default), Quickprop, SARPROP) at its own defaults, tanh
  (``FANN_SIGMOID_SYMMETRIC``) hidden units and sigmoid outputs. "FANN best"
  is, per problem, the algorithm with the lowest median test error.
- fastbp with one configuration for every problem (:data:`FASTBP_CONFIG`):
  the same for all nine problems; a softmax output with cross-entropy where
  the targets are one-hot classes, a sigmoid output with mse otherwise. It
  trains in one ``fit`` that a callback stops after the first whole epoch
  past the budget, so that early stopping (on validation rows that ``fit``
  draws from the train half) and weight averaging span the run; the time
  spent on validation counts in the budget. The configuration was chosen
  on half/half splits of the train halves (``--inner``), never on the test
  halves: bench/results/tabular_choice.md lists the candidates tried.

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
    python bench/tabular.py --no-standardise     # FANN's [0, 1]-scaled files as shipped
    python bench/tabular.py --budget 0.5 --inner 2026 --config '{"activation": "tanh",
        "optimizer": "AdamW", "optimizer_args": {"lr": 3e-3}, "batch_size": 32,
        "ema": 0.999}'                           # a candidate, on splits of the train halves

Results: ``bench/results/tabular.json`` and ``.md`` (``tabular_trial.*`` with
``--inner`` or ``--config``).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fastbp.optim import Schedule

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from peers import fann_peer  # noqa: E402

DATASETS = Path("/usr/share/doc/libfann-dev/examples/datasets")
#: what the budget counts: wall time, or the process's CPU time (``--clock cpu``)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = CLOCKS["wall"]
#: real tabular problems of FANN's benchmark set (two-spiral and parity are synthetic)
PROBLEMS = ("abelone", "building", "census-house", "diabetes", "gene", "mushroom", "robot",
            "soybean", "thyroid")
#: FANN's training algorithms (fann_data.h, enum fann_train_enum)
FANN_ALGORITHMS = {"incremental": 0, "batch": 1, "rprop": 2, "quickprop": 3, "sarprop": 4}
FANN_SIGMOID = 3
FANN_SIGMOID_SYMMETRIC = 5
#: fastbp's one configuration: set once, for every problem, chosen on splits of
#: the train halves (``--inner``; see bench/results/tabular_choice.md). Keys:
#: "optimizer" (a class of fastbp.optim) with "optimizer_args" and an optional
#: "schedule" [name, args]; "batch_size" (an int, or "full": every row);
#: "validation_split" (fit holds out that share of the train half, at
#: random) with "early_stopping" (EarlyStopping's arguments; patience None:
#: never stop, the budget does, and end with the best validation epoch's
#: weights); optional "ema", "dropout", "l2" as fit and Network take them,
#: "init_factor" (Network.init_weights) and "class_output" [activation, loss]
#: for one-hot targets (default softmax with cross-entropy); "refit" (a share
#: of the budget, in [0, 1)): after the validated fit, train on from its kept
#: weights with the same optimiser on all the train half's rows (validation
#: rows included) for that last share of the budget, or with a fresh one of
#: "refit_optimizer_args"; "refit_validated": true keeps the validation rows
#: and the best epoch's weights in that second fit ("refit_keeps_best": true,
#: the best of both fits). "refit_optimizer" (a class of fastbp.optim) makes
#: the second fit's optimiser one of another kind, "refit_batch_size",
#: "refit_ema" and "refit_dropout" (None: none) change those for it (e.g. a
#: full-batch Rprop polish); "budget_decay" ({"shape": "linear" or "cosine",
#: "final": f, "warmup": w}) lowers the first fit's rate with the share of
#: the budget spent (:class:`BudgetDecay`).
FASTBP_CONFIG = {"activation": "tanh",
                 # on standardised inputs (--standardise): Adam in small batches with
                 # dropout, scored and kept by its weights' moving average
                 "optimizer": "Adam", "optimizer_args": {"lr": 1e-2}, "batch_size": 8,
                 "dropout": 0.2, "ema": 0.999,
                 # scikit-learn's validation_fraction; keep the best epoch's weights
                 "validation_split": 0.1,
                 "early_stopping": {"patience": None, "restore_best": True}}


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
            epochs, start = 0, CLOCK()
            while CLOCK() - start < budget:
                lib.fann_train_epoch(ann, train)
                epochs += 1
            seconds = CLOCK() - start
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
    """fastbp with :data:`FASTBP_CONFIG`, in one fit that a callback stops
    once the budget is spent (checked after each whole epoch, as FANN's loop)."""

    name = "fastbp"

    def __init__(self, config=None):
        import fastbp
        self.fastbp = fastbp
        self.config = FASTBP_CONFIG if config is None else config

    def optimizer(self, args=None):
        config, optim = self.config, self.fastbp.optim
        args = dict(config.get("optimizer_args", {}) if args is None else args)
        if config.get("schedule") is not None:
            name, schedule_args = config["schedule"]
            args["schedule"] = getattr(optim, name)(**schedule_args)
        return getattr(optim, config["optimizer"])(**args)

    def run(self, problem: str, sizes, seed: int, budget: float) -> dict:
        config = self.config
        X, Y = read_fann_data(DATASETS / f"{problem}.train")
        X_test, Y_test = read_fann_data(DATASETS / f"{problem}.test")
        classes = is_one_hot(Y)
        # one-hot targets: softmax with cross-entropy, or sigmoid units with bce
        output, loss = (config.get("class_output", ("softmax", "cross_entropy")) if classes
                        else ("sigmoid", "mse"))
        network = self.fastbp.Network(sizes, activation=config["activation"],
                                      output_activation=output, seed=seed,
                                      dropout=config.get("dropout"))
        if config.get("init_factor") is not None:
            network.init_weights(seed, factor=config["init_factor"])
        # validation rows (if any) are drawn from the train half by fit itself
        stopping = config.get("early_stopping")
        if stopping is not None:
            stopping = dict(stopping)
            if stopping.get("patience", 10) is None:
                stopping["patience"] = np.inf
            stopping = self.fastbp.EarlyStopping(**stopping)
        batch_size = len(X) if config["batch_size"] == "full" else config["batch_size"]
        clock = CLOCK
        start = clock()

        # "refit": the last share of the budget goes on training, from the
        # kept weights with the same optimiser, on all the train half's rows
        refit = config.get("refit", 0.0)
        if not 0.0 <= refit < 1.0:
            raise ValueError(f"refit must be a share of the budget in [0, 1), got {refit!r}")

        def spent(share):
            return lambda epoch, history, network: clock() - start >= share * budget

        optimizer = self.optimizer()
        if config.get("budget_decay") is not None:  # the rate falls with the time spent
            optimizer.schedule = BudgetDecay(clock, start, (1.0 - refit) * budget,
                                             **config["budget_decay"])
        common = dict(loss=loss, optimizer=optimizer, epochs=2**31 - 1, batch_size=batch_size,
                      seed=seed, n_threads=1, l2=config.get("l2", 0.0), ema=config.get("ema"))
        history = network.fit(X, Y, validation_split=config.get("validation_split", 0.0),
                              early_stopping=stopping, callbacks=[spent(1.0 - refit)], **common)
        epochs = len(history["loss"])
        if refit:
            if config.get("refit_optimizer") is not None:  # a fresh optimiser of another kind
                common["optimizer"] = getattr(self.fastbp.optim, config["refit_optimizer"])(
                    **config.get("refit_optimizer_args", {}))
            elif config.get("refit_optimizer_args") is not None:  # a fresh optimiser
                common["optimizer"] = self.optimizer(config["refit_optimizer_args"])
            if "refit_batch_size" in config:
                common["batch_size"] = (len(X) if config["refit_batch_size"] == "full"
                                        else config["refit_batch_size"])
            if "refit_ema" in config:
                common["ema"] = config["refit_ema"]
            if "refit_dropout" in config:  # e.g. None: full-batch polish steps drop nothing
                network.dropout = (None if config["refit_dropout"] is None
                                   else (config["refit_dropout"],) * (len(sizes) - 2))
            if config.get("refit_validated"):  # the same validation rows, the best epoch kept
                if config.get("refit_keeps_best"):  # ... over both fits
                    stopping = keep_best(stopping)
                common.update(validation_split=config.get("validation_split", 0.0),
                              early_stopping=stopping)
            epochs += len(network.fit(X, Y, callbacks=[spent(1.0)], **common)["loss"])
        seconds = clock() - start
        outputs = network.predict(X_test)
        scores = test_scores(outputs, Y_test)
        scores["own_loss"], scores["numpy_loss"] = own_and_numpy_loss(network, loss, X_test,
                                                                      Y_test, outputs)
        return {**scores, "epochs": epochs, "seconds": seconds}


class BudgetDecay(Schedule):
    """The rate falls with the share of the time budget spent, as a schedule in
    epochs would if the epoch count were known: lr0·f(d), d = (clock() − start)
    / seconds (at most 1), f(d) = 1 − (1 − final)·d ("linear") or final + (1 −
    final)·(1 + cos πd)/2 ("cosine"); an optional warm-up share ramps f up from
    0 over the first ``warmup`` of the budget."""

    def __init__(self, clock, start, seconds, shape="linear", final=0.0, warmup=0.0):
        if shape not in ("linear", "cosine"):
            raise ValueError(f"shape must be 'linear' or 'cosine', got {shape!r}")
        self.clock, self.start, self.seconds = clock, start, seconds
        self.shape, self.final, self.warmup = shape, final, warmup

    def next_lr(self, lr0, lr, epochs, samples_seen, history, memo):
        done = min(1.0, (self.clock() - self.start) / self.seconds)
        if done < self.warmup:
            return lr0 * max(done / self.warmup, 1e-3)
        done = (done - self.warmup) / (1.0 - self.warmup)
        if self.shape == "linear":
            return lr0 * (1.0 - (1.0 - self.final) * done)
        return lr0 * (self.final + (1.0 - self.final) * (1.0 + math.cos(math.pi * done)) / 2)


def keep_best(stopping):
    """``stopping`` (a :class:`fastbp.EarlyStopping`) with its best epoch carried
    over into the next fit: that fit's ``reset`` keeps the best value and
    weights so far, so its weights are kept only if they beat them on the
    same validation rows."""
    stopping.reset = lambda: None
    return stopping


def own_and_numpy_loss(network, loss, X, Y, outputs):
    """``Network.loss`` on the rows and the same loss in NumPy from ``predict``'s outputs.

    Cross-entropy and bce are checked on the rows where no target's
    probability underflowed to 0 or 1: NumPy's log of it is -inf there,
    fastbp's loss comes from the pre-activation a instead.
    """
    if loss == "mse":
        return (float(network.loss(X, Y, loss=loss)),
                float(0.5 * np.mean(np.sum((outputs - Y) ** 2, axis=1))))
    with np.errstate(divide="ignore"):
        if loss == "cross_entropy":
            log_terms = Y * np.log(np.where(Y > 0, outputs, 1))
        else:  # bce
            log_terms = (Y * np.log(np.where(Y > 0, outputs, 1))
                         + (1 - Y) * np.log(np.where(Y < 1, 1 - outputs, 1)))
    rows = np.isfinite(log_terms).all(axis=1)
    return (float(network.loss(X[rows], Y[rows], loss=loss)),
            float(-np.mean(np.sum(log_terms[rows], axis=1))))


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


def markdown(rows, args, config, seconds) -> str:
    inputs = ("inputs standardised with the training rows' mean and std, the same arrays for "
              "both" if args.standardise else "FANN's [0, 1]-scaled inputs as shipped")
    halves = (f"the halves of a split (seed {args.inner}) of each train half"
              if args.inner is not None else "the train and test halves")
    lines = [f"Test mse after {args.budget} s of training (median of {args.seeds} seeds), "
             f"{args.clock} clock, one hidden layer of {args.hidden}, one thread, on {halves}, "
             f"{inputs}; "
             f"fastbp {config}.", "",
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
    parser.add_argument("--inner", type=int, metavar="SEED",
                        help="run on a random half/half split (this seed) of each train "
                             "half instead: for choosing a configuration without the test "
                             "halves; results go to tabular_trial.*")
    parser.add_argument("--standardise", action=argparse.BooleanOptionalAction, default=True,
                        help="standardise every input column with the training rows' mean "
                             "and standard deviation, for both contenders (default: on)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="what the budget counts: wall time, or CPU time (sweeps under load)")
    parser.add_argument("--config", help="a JSON configuration for fastbp instead of "
                                         "FASTBP_CONFIG; results go to tabular_trial.*")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if fann_peer.availability() or not DATASETS.is_dir():
        print("needs libfann-dev and libfann-doc (FANN's datasets): "
              "apt-get install libfann-dev libfann-doc", file=sys.stderr)
        return 2
    problems = args.problems.split(",")
    config = FASTBP_CONFIG if args.config is None else json.loads(args.config)
    stem = "tabular" if args.inner is None and args.config is None else "tabular_trial"
    with tempfile.TemporaryDirectory() as folder:
        return run(args, problems, config, stem, prepare_datasets(
            problems, Path(folder), inner=args.inner, standardise=args.standardise))


def prepare_datasets(problems, folder: Path, inner=None, standardise=True) -> Path:
    """The folder both contenders read the problems' .train and .test files from:
    FANN's own, or (``inner``) a split of the train halves, then (``standardise``)
    standardised with the training rows' statistics; written in ``folder``."""
    source = DATASETS
    if inner is not None:
        split_train_halves(problems, inner, folder / "inner", source)
        source = folder / "inner"
    if standardise:
        standardise_files(problems, source, folder / "standard")
        source = folder / "standard"
    return source


def write_fann_data(path: Path, X, Y) -> None:
    """A FANN data file (as :func:`read_fann_data` reads it), every value exact (repr)."""
    lines = [f"{len(X)} {X.shape[1]} {Y.shape[1]}"]
    for x, y in zip(X.tolist(), Y.tolist()):
        lines += [" ".join(map(repr, x)), " ".join(map(repr, y))]
    path.write_text("\n".join(lines) + "\n")


def standardisation(X):
    """Each column's mean and standard deviation over the rows of ``X`` (the
    training rows); a constant column keeps scale 1, so it is only centred."""
    mean, std = X.mean(axis=0), X.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def standardise_files(problems, source: Path, folder: Path) -> None:
    """Write each problem's .train and .test from ``source`` into ``folder`` with
    the inputs standardised by the .train rows' statistics; the targets unchanged."""
    folder.mkdir(parents=True, exist_ok=True)
    for problem in problems:
        X, _ = read_fann_data(source / f"{problem}.train")
        mean, scale = standardisation(X)
        for part in ("train", "test"):
            X_part, Y_part = read_fann_data(source / f"{problem}.{part}")
            write_fann_data(folder / f"{problem}.{part}", (X_part - mean) / scale, Y_part)


def split_train_halves(problems, seed: int, folder: Path, source: Path = None) -> None:
    """Write each problem's train half, split half/half at random, as FANN's
    .train and .test files in ``folder``: the test halves stay unread."""
    source = DATASETS if source is None else source
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for problem in problems:
        X, Y = read_fann_data(source / f"{problem}.train")
        order = rng.permutation(len(X))
        for part, rows in (("train", order[:len(X) // 2]), ("test", order[len(X) // 2:])):
            write_fann_data(folder / f"{problem}.{part}", X[rows], Y[rows])


def run(args, problems, config, stem: str, datasets: Path) -> int:
    global DATASETS, CLOCK
    DATASETS = datasets  # both contenders read their files from here
    CLOCK = CLOCKS[args.clock]
    contenders = [FastbpContender(config)] + [FannContender(a)
                                              for a in args.algorithms.split(",")]
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
    text = markdown(rows, args, config, time.perf_counter() - started)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(
        {"config": config, "budget": args.budget, "hidden": args.hidden, "inner": args.inner,
         "standardise": args.standardise, "clock": args.clock,
         "rows": rows,
         "runs": [{"problem": p, "contender": n, "seed": s, **r}
                  for (p, n, s), r in results.items()]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
