#!/usr/bin/env python
"""The speed targets of fastbp, measured side by side and judged, in one run.

Usage (repository root, extension built in place or fastbp installed)::

    PYTHONPATH=src python bench/targets.py [--repeats 5]

Each target trains the contenders from the same initial weights on the same
rows (plain SGD, sigmoid layers, mse, rows in order; see ``peers/``). Every
contender first passes the same-work check: one epoch, then its loss must
equal a NumPy run of its update rule to 1e-9 (float64) or 1e-4 (float32).
Timings are interleaved runs (A B C A B C ...), one epoch each (three and
two epochs for the short per-sample cases 1 and 2); a ratio is the median
over rounds of the two contenders' times in the same round, so a round in
which the shared machine was slow counts for both. Every timed run follows
an untimed warm-up run of the same contender: OpenBLAS and OpenMP workers
keep spinning for about 0.1 s after their last call, and without the warm-up
whichever contender follows them would run on one core less. (A pause does
not do: after an idle spell this machine runs 10-25% slower for a while.)

1. per-sample, 64-32-10 digits, float64: >= 3x FANN, >= 30x a NumPy loop;
2. per-sample, 784-128-10, float32: >= 5x FANN (float build);
3. batch 128, 784-256-128-10, 20000 rows, 2 threads: <= 1.15x the FLOP floor
   (6 x weights x rows / NumPy's 2048^2 GEMM rate, timed in every round), >= 1.8x PyTorch
   in float32 and >= 1.25x in float64;
4. fit(n_threads=2) >= 1.7x faster than n_threads=1 at batch 256 and 512
   (twice the rounds of the others);
5. RSS grows < 1 MiB over 50 epochs after the first;
6. every contender passed its same-work check (else it is not timed).

The learning rates are powers of two (0.25, 1/16) rather than 0.1: FANN keeps
its rate in a C float, and 0.1 is not exact there, so FANN would do slightly
different work. Speed does not depend on the rate.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
try:
    import fastbp  # noqa: F401
except ImportError:  # not installed: this checkout's in-place build
    sys.path.insert(0, str(BENCH_DIR.parent / "src"))
    import fastbp  # noqa: F401

from peers import load_peer  # noqa: E402
from peers.numpy_peer import Trainer as NumpyTrainer  # noqa: E402
from peers.numpy_peer import mse_objective  # noqa: E402

TOLERANCE = {"float32": 1e-4, "float64": 1e-9}


def initial_parameters(sizes, seed=1):
    """Glorot-uniform weights and small non-zero biases, in float64."""
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-np.sqrt(2 / (a + b)), np.sqrt(2 / (a + b)), (a, b))
               for a, b in zip(sizes, sizes[1:])]
    biases = [rng.uniform(-0.1, 0.1, b) for b in sizes[1:]]
    return weights, biases


def synthetic(rows, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, n_in)), np.eye(n_out)[rng.integers(0, n_out, rows)]


def same_work(peer, trainer, X, Y, sizes, batch, lr, dtype, weights, biases):
    """One epoch, then the loss relative to NumPy running the peer's own rule."""
    trainer.load(weights, biases)
    trainer.epoch(1)
    loss = mse_objective(*trainer.parameters(), X, Y)
    numpy_run = NumpyTrainer(X, Y, sizes, batch, lr, dtype, variant=peer.MATH)
    numpy_run.load(weights, biases)
    numpy_run.epoch(1)
    expected = mse_objective(*numpy_run.parameters(), X, Y)
    error = abs(loss - expected) / abs(expected)
    return error <= TOLERANCE[dtype], error


def race(contenders, X, Y, sizes, batch, lr, dtype, repeats, threads, epochs=1,
         floor_flops=None):
    """Same-work checks, then interleaved timings; µs per sample per contender.

    Each timed run trains ``epochs`` epochs from the same initial weights, so
    that a short epoch does not measure mostly cold caches. The garbage
    collector runs once per round, before the first contender, and is off
    while a contender is timed. Each timed run follows an untimed warm-up run
    of the same contender, so that no other contender's threads still spin.

    With ``floor_flops`` (FLOPs per sample), every round also times NumPy's
    2048x2048 GEMM and records the floor as the contender ``"floor"``: those
    FLOPs at that round's GEMM rate. Each contender's ``runs_us`` keeps the
    rounds in order, so that ratios can pair runs of the same round.
    """
    weights, biases = initial_parameters(sizes)
    weights = [W.astype(dtype) for W in weights]
    biases = [b.astype(dtype) for b in biases]
    X, Y = X.astype(dtype), Y.astype(dtype)
    samples = epochs * X.shape[0]
    results, trainers = {}, {}
    with threadpool_limits(threads):
        for name in contenders:
            peer = load_peer(f"{name}_peer")
            reason = peer.availability()
            if reason is not None:
                results[name] = {"status": "unavailable", "reason": reason}
                continue
            if hasattr(peer, "set_threads"):
                peer.set_threads(threads)
            trainer = peer.Trainer(X, Y, sizes, batch, lr, dtype)
            passed, error = same_work(peer, trainer, X, Y, sizes, batch, lr, dtype,
                                      weights, biases)
            results[name] = {"status": "ok" if passed else "FAILED", "loss_error": error}
            if passed:
                trainers[name] = trainer
        runs = {name: [] for name in trainers}
        rates = []
        square = np.random.default_rng(0).standard_normal((2048, 2048)).astype(dtype)
        for _ in range(repeats):
            gc.collect()
            if floor_flops is not None:
                rates.append(gemm_gflops(square))
            for name, trainer in trainers.items():
                trainer.load(weights, biases)
                trainer.epoch(epochs)  # warm-up
                trainer.load(weights, biases)
                gc.disable()
                started = time.perf_counter()
                trainer.epoch(epochs)
                runs[name].append((time.perf_counter() - started) / samples * 1e6)
                gc.enable()
    for name, times in runs.items():
        results[name].update(us_per_sample=statistics.median(times), runs_us=times)
    if floor_flops is not None:
        floor = [floor_flops / (rate * 1e9) * 1e6 for rate in rates]
        results["floor"] = {"status": "ok", "gemm_gflops": rates,
                            "us_per_sample": statistics.median(floor), "runs_us": floor}
    return results


def paired_ratio(results, slower, faster):
    """Median over rounds of ``slower``'s time over ``faster``'s in the same round."""
    return statistics.median(a / b for a, b in zip(results[slower]["runs_us"],
                                                   results[faster]["runs_us"]))


def gemm_gflops(square, calls=3):
    """NumPy's GEMM rate on ``square`` (2048x2048): the best of ``calls`` after a warm-up.

    The best call, not the median: a slower call means the machine was busy,
    and a faster GEMM rate only makes the floor stricter.
    """
    square @ square
    best = float("inf")
    for _ in range(calls):
        started = time.perf_counter()
        square @ square
        best = min(best, time.perf_counter() - started)
    return 2 * square.shape[0] ** 3 / best / 1e9


def rss_mib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def verdict(ok):
    return "PASS" if ok else "MISS"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--only", type=int, nargs="+", choices=range(1, 6), metavar="N",
                        help="measure only these targets (1-5); results are then not saved")
    args = parser.parse_args(argv)
    wanted = set(args.only or range(1, 6))
    repeats = max(args.repeats, 3)
    report = {"repeats": repeats, "load_average_at_start": os.getloadavg()}
    lines = []

    def say(text):
        print(text, flush=True)
        lines.append(text)

    # 1. per-sample 64-32-10 digits float64
    if 1 in wanted:
        X, Y = fastbp.load_digits()
        r = race(["fastbp", "fann", "numpy"], X, Y, (64, 32, 10), 1, 0.25, "float64", repeats, 1,
                 epochs=3)
        report["t1"] = r
        fb = r["fastbp"]["us_per_sample"]
        say(f"1. per-sample 64-32-10 float64 (digits, 1797 rows x 3 epochs, 1 thread): fastbp {fb:.2f} µs, "
            + ", ".join(f"{k} {v.get('us_per_sample', float('nan')):.2f} µs ({v['status']})"
                        for k, v in r.items() if k != "fastbp"))
        if "us_per_sample" in r.get("fann", {}):
            ratio = paired_ratio(r, "fann", "fastbp")
            say(f"   vs FANN {ratio:.2f}x (target >= 3): {verdict(ratio >= 3)}")
        ratio = paired_ratio(r, "numpy", "fastbp")
        say(f"   vs NumPy {ratio:.1f}x (target >= 30): {verdict(ratio >= 30)}")

    # 2. per-sample 784-128-10 float32
    if 2 in wanted:
        X, Y = synthetic(1500, 784, 10)
        r = race(["fastbp", "fann"], X, Y, (784, 128, 10), 1, 0.0625, "float32", repeats, 1,
                 epochs=2)
        report["t2"] = r
        if "us_per_sample" in r.get("fann", {}):
            ratio = paired_ratio(r, "fann", "fastbp")
            say(f"2. per-sample 784-128-10 float32 (1500 rows): fastbp "
                f"{r['fastbp']['us_per_sample']:.1f} µs, FANN {r['fann']['us_per_sample']:.1f} µs: "
                f"{ratio:.2f}x (target >= 5): {verdict(ratio >= 5)}")
        else:
            say(f"2. FANN unavailable: {r.get('fann')}")

    # 3. batch 128, 784-256-128-10, 20000 rows, 2 threads
    sizes = (784, 256, 128, 10)
    if 3 in wanted:
        n_weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
        X, Y = synthetic(20000, 784, 10)
        report["t3"] = {}
        for dtype, torch_target in (("float32", 1.8), ("float64", 1.25)):
            r = race(["fastbp", "torch", "numpy", "sklearn"], X, Y, sizes, 128, 0.0625, dtype,
                     repeats, 2, floor_flops=6 * n_weights)
            to_floor = paired_ratio(r, "fastbp", "floor")
            floor = r.pop("floor")
            fb = r["fastbp"]["us_per_sample"]
            report["t3"][dtype] = {"results": r, "floor": floor, "fastbp_to_floor": to_floor}
            say(f"3. batch 128 784-256-128-10 {dtype}, 2 threads: fastbp {fb:.2f} µs, floor "
                f"{floor['us_per_sample']:.2f} µs (GEMM "
                f"{statistics.median(floor['gemm_gflops']):.0f} GFLOP/s) -> {to_floor:.2f}x floor "
                f"(target <= 1.15): {verdict(to_floor <= 1.15)}")
            for name in ("torch", "numpy", "sklearn"):
                if "us_per_sample" in r.get(name, {}):
                    ratio = paired_ratio(r, name, "fastbp")
                    target = f" (target >= {torch_target}): {verdict(ratio >= torch_target)}" \
                        if name == "torch" else ""
                    say(f"   {name} {r[name]['us_per_sample']:.2f} µs = {ratio:.2f}x fastbp{target}")
                else:
                    say(f"   {name}: {r.get(name)}")

    # 4. threads: 2 vs 1 at batch 256 and 512 (interleaved, each after a warm-up)
    if 4 in wanted:
        X, Y = synthetic(8192, 784, 10)
        report["t4"] = {}
        for dtype in ("float32", "float64"):
            for batch in (256, 512):
                net = fastbp.Network(sizes, dtype=dtype, seed=0)
                start = net._params.copy()
                Xd, Yd = X.astype(dtype), Y.astype(dtype)

                def fit(threads):
                    net.fit(Xd, Yd, optimizer=fastbp.SGD(lr=0.0625), batch_size=batch,
                            shuffle=False, n_threads=threads)

                times = {1: [], 2: []}
                # twice the rounds: a 2-thread run also suffers any load on the
                # other core, a 1-thread run mostly not, so single rounds swing
                for _ in range(2 * repeats):
                    for threads in (1, 2):
                        fit(threads)  # warm-up
                        net._params[...] = start
                        started = time.perf_counter()
                        fit(threads)
                        times[threads].append(time.perf_counter() - started)
                speedup = statistics.median(a / b for a, b in zip(times[1], times[2]))
                report["t4"][f"{dtype}-{batch}"] = speedup
                say(f"4. threads {dtype} batch {batch}: 1 thread "
                    f"{statistics.median(times[1]) / 8192 * 1e6:.2f} µs, 2 threads "
                    f"{statistics.median(times[2]) / 8192 * 1e6:.2f} µs -> {speedup:.2f}x "
                    f"(target >= 1.7): {verdict(speedup >= 1.7)}")

    # 5. RSS over 50 epochs after the first
    if 5 in wanted:
        X, Y = synthetic(2000, 784, 10)
        net = fastbp.Network(sizes, seed=0)
        optimizer = fastbp.SGD(lr=0.0625, momentum=0.9)
        net.fit(X, Y, optimizer=optimizer, batch_size=128, epochs=1)
        gc.collect()
        before = rss_mib()
        for _ in range(50):
            net.fit(X, Y, optimizer=optimizer, batch_size=128, epochs=1)
        gc.collect()
        growth = rss_mib() - before
        report["t5_rss_growth_mib"] = growth
        say(f"5. RSS growth over 50 epochs after the first: {growth:.3f} MiB (target < 1): "
            f"{verdict(growth < 1)}")

    statuses = [v["status"] for key in ("t1", "t2") for v in report.get(key, {}).values()] + [
        v["status"] for d in report.get("t3", {}).values() for v in d["results"].values()]
    failed = statuses.count("FAILED")
    say(f"6. same-work checks: {statuses.count('ok')} passed, {failed} failed: "
        f"{verdict(failed == 0)}")
    report["load_average_at_end"] = os.getloadavg()
    say(f"load average at start {report['load_average_at_start'][0]:.2f}, "
        f"at end {report['load_average_at_end'][0]:.2f}")
    if args.only:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "targets.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / "targets.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
