"""What dropout costs: the same fit with and without it, interleaved.

Each case fits the same data from the same weights for the same number of
updates on one thread, with ``dropout=None`` and with ``dropout=RATE``,
alternating A B A B ... for ``--rounds`` rounds, and reports the median
µs per sample of each and their ratio. CPU time (``time.process_time``) is
reported beside wall time: one thread's CPU time is what the fit costs, and
it moves less than wall time on a shared, loaded machine. Usage::

    python bench/dropout.py [--rounds 5] [--seconds 0.3] [--rate 0.2] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

import fastbp

#: (sizes, batch size, dtype): the issue's two cases, the small one in float64,
#: and per-sample training (batch 1), where both fits take the fused
#: per-sample kernel (dropout's masks drawn in its row loop)
CASES = [((784, 256, 128, 10), 128, "float32"),
         ((64, 32, 10), 32, "float32"),
         ((64, 32, 10), 32, "float64"),
         ((64, 32, 10), 1, "float32"),
         ((64, 32, 10), 1, "float64")]


def one_fit(sizes, batch, dtype, dropout, X, Y, params, epochs) -> tuple:
    """(wall, cpu) seconds of one fit."""
    net = fastbp.Network(list(sizes), activation="relu", output_activation="softmax",
                         dtype=dtype, dropout=dropout)
    net.replace_params(params)
    wall, cpu = time.perf_counter(), time.process_time()
    net.fit(X, Y, epochs=epochs, batch_size=batch, seed=0, n_threads=1,
            optimizer=fastbp.SGD(lr=0.01))
    return time.perf_counter() - wall, time.process_time() - cpu


def run_case(sizes, batch, dtype, rate, rounds, seconds) -> dict:
    rng = np.random.default_rng(0)
    n = 4096
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    params = fastbp.Network(list(sizes), activation="relu", output_activation="softmax",
                            dtype=dtype, seed=1).params
    # epochs for about ``seconds`` a fit, from one warm-up epoch without dropout
    wall, _ = one_fit(sizes, batch, dtype, None, X, Y, params, 1)
    epochs = max(1, round(seconds / wall))
    times = {None: [], rate: []}
    for _ in range(rounds):
        for dropout in (None, rate):
            times[dropout].append(one_fit(sizes, batch, dtype, dropout, X, Y, params, epochs))
    rows = n * epochs
    result = {"net": "-".join(map(str, sizes)), "batch_size": batch, "dtype": dtype,
              "epochs": epochs, "rate": rate}
    for clock, index in (("wall", 0), ("cpu", 1)):
        plain = statistics.median(t[index] for t in times[None]) / rows * 1e6
        dropped = statistics.median(t[index] for t in times[rate]) / rows * 1e6
        result[f"{clock}_us_per_sample"] = {"plain": plain, "dropout": dropped}
        # the ratio of each round's pair, then their median: drifts in load cancel
        pairs = [d[index] / p[index] for p, d in zip(times[None], times[rate])]
        result[f"{clock}_ratio"] = statistics.median(pairs)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (>= 3)")
    parser.add_argument("--seconds", type=float, default=0.3, help="about this long a fit")
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    load = os.getloadavg()
    results = [run_case(sizes, batch, dtype, args.rate, args.rounds, args.seconds)
               for sizes, batch, dtype in CASES]
    print(f"load average before: {load[0]:.2f}, after: {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} cores); median of {args.rounds} interleaved rounds")
    print("| net | batch | dtype | µs/sample plain | with dropout | ratio (wall) | ratio (cpu) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['net']} | {r['batch_size']} | {r['dtype']} | "
              f"{r['cpu_us_per_sample']['plain']:.3f} | {r['cpu_us_per_sample']['dropout']:.3f} "
              f"| {r['wall_ratio']:.3f} | {r['cpu_ratio']:.3f} |")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"load": load, "rounds": args.rounds, "cases": results}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
