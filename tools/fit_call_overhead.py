"""What splitting epochs into ~0.1 s kernel calls costs fit.

    python tools/fit_call_overhead.py [--repeats 5]

For each configuration, times fit with the default calls of
``FIT_CALL_FLOPS`` against one kernel call per epoch (the layout before epochs
were split), interleaved over the repeats, and checks that both give
bit-identical weights (the epoch losses are summed per call, so they agree to
rounding: the largest relative difference is printed). It also prints the
number of calls per epoch and the median seconds per call.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastbp
from fastbp import _kernels, _training

CONFIGS = [
    # name, sizes, rows, batch_size, epochs, momentum
    ("digits-size per-sample 64-32-10", [64, 32, 10], 20000, 1, 3, 0.0),
    ("digits-size minibatch 32 64-32-10", [64, 32, 10], 50000, 32, 3, 0.9),
    ("per-sample 100-400-400-10", [100, 400, 400, 10], 4000, 1, 1, 0.0),
    ("minibatch 128 784-512-512-10", [784, 512, 512, 10], 6000, 128, 1, 0.9),
    ("tiny full batch 4-8-2 (many epochs)", [4, 8, 2], 100, 100, 500, 0.9),
]


def fit(sizes, X, Y, batch_size, epochs, momentum, split):
    """(seconds, params, losses, kernel calls per epoch) of one fit; a
    ``run_epochs`` call, which trains several epochs, counts as one."""
    saved = _training.FIT_CALL_FLOPS
    if not split:
        _training.FIT_CALL_FLOPS = 1e30
    calls = []
    real = _kernels.Trainer

    class CountingTrainer(real):
        def run(self, start, stop):
            calls.append(1)
            return super().run(start, stop)

        def run_epochs(self, *args):  # several whole epochs in one call
            calls.append(1)
            return super().run_epochs(*args)

    _kernels.Trainer = CountingTrainer
    try:
        net = fastbp.Network(sizes, activation="tanh", seed=0)
        started = time.perf_counter()
        history = net.fit(X, Y, optimizer=fastbp.SGD(lr=0.001, momentum=momentum),
                          epochs=epochs, batch_size=batch_size, seed=1, n_threads=1)
        seconds = time.perf_counter() - started
        return seconds, net._params.copy(), history["loss"], len(calls) / epochs
    finally:
        _training.FIT_CALL_FLOPS = saved
        _kernels.Trainer = real


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'configuration':38s} {'1 call/epoch s':>14s} {'split s':>8s} {'overhead':>9s} "
          f"{'calls/epoch':>11s} {'s/call':>7s}  same weights  loss rel. diff")
    for name, sizes, rows, batch_size, epochs, momentum in CONFIGS:
        X, Y = rng.normal(size=(rows, sizes[0])), rng.uniform(size=(rows, sizes[-1]))
        times = {True: [], False: []}
        results = {}
        for _ in range(args.repeats):
            for split in (False, True):
                seconds, params, losses, calls = fit(sizes, X, Y, batch_size, epochs, momentum,
                                                     split)
                times[split].append(seconds)
                results[split] = (params, np.array(losses), calls)
        same = np.array_equal(results[True][0], results[False][0])
        loss_diff = float(np.max(np.abs(results[True][1] / results[False][1] - 1)))
        whole, split = statistics.median(times[False]), statistics.median(times[True])
        calls = results[True][2]
        print(f"{name:38s} {whole:14.3f} {split:8.3f} {100 * (split / whole - 1):+8.1f}% "
              f"{calls:11.1f} {split / epochs / calls:7.3f}  {str(same):12s}  {loss_diff:.1e}")


if __name__ == "__main__":
    main()
