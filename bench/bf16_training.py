#!/usr/bin/env python
"""Training in bfloat16 products (Network compute_dtype="bfloat16") against float32.

Usage (fastbp installed)::

    flock /tmp/quiet.lock python3 /work/wt/notes/quiet.py \\
        python bench/bf16_training.py --out bench/results/bf16_training.txt
    python bench/bf16_training.py --quick      # the same-work check only

One epoch of minibatch SGD (momentum 0.9, shuffled, the same seed) on
random float32 data, for each architecture: fastbp float32 and fastbp
bfloat16 (float32 master weights, bfloat16 products on the path the
machine picks), each on ``--threads`` threads.

Same work first: both train the same rows in the same order from the same
weights; the loss after one epoch must agree within bfloat16's tolerance
(2 % relative), and both must have moved the loss. Then rounds interleaved
(f32 bf16 f32 bf16 ...), each a fresh network's one-epoch fit; the figure
is the median over ``--repeats`` rounds, in microseconds a sample, and the
speed-up the ratio of the medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import fastbp
from fastbp import _kernels
from fastbp.optim import SGD

# (sizes, batch size, rows of the epoch)
CASES = [
    ([784, 256, 128, 10], 128, 32768),
    ([1024, 2048, 2048, 10], 128, 8192),
]


def make_data(sizes, rows, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, sizes[0])).astype(np.float32)
    Y = np.tanh(X[:, :sizes[-1]] + 0.1 * rng.normal(size=(rows, sizes[-1]))).astype(np.float32)
    return X, Y


def fit_once(sizes, batch, X, Y, compute, threads):
    net = fastbp.Network(sizes, activation="relu", output_activation="identity",
                         dtype="float32", compute_dtype=compute, seed=1)
    start = time.perf_counter()
    net.fit(X, Y, loss="mse", optimizer=SGD(lr=0.01, momentum=0.9), epochs=1,
            batch_size=batch, seed=2, n_threads=threads)
    return time.perf_counter() - start, net


def same_work(sizes, batch, X, Y, threads):
    first = fastbp.Network(sizes, activation="relu", output_activation="identity",
                           dtype="float32", seed=1).loss(X, Y, loss="mse")
    losses = {c: fit_once(sizes, batch, X, Y, c, threads)[1].loss(X, Y, loss="mse")
              for c in ("float32", "bfloat16")}
    assert losses["float32"] < 0.9 * first, (first, losses)
    gap = abs(losses["bfloat16"] - losses["float32"]) / losses["float32"]
    assert gap < 0.02, (losses, gap)
    return first, losses


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the same-work check only")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args()
    lines = [f"bfloat16 path: {_kernels.bf16_path()} (runs here: {', '.join(_kernels.bf16_paths())}); "
             f"threads {args.threads}; median of {args.repeats} interleaved rounds; "
             f"cpus {os.cpu_count()}",
             f"{'network':<24} {'batch':>5} {'rows':>6} {'loss f32':>10} {'loss bf16':>10} "
             f"{'f32 us/row':>10} {'bf16 us/row':>11} {'speed-up':>8}"]
    for sizes, batch, rows in CASES:
        X, Y = make_data(sizes, rows)
        first, losses = same_work(sizes, batch, X, Y, args.threads)
        times = {"float32": [], "bfloat16": []}
        if not args.quick:
            for _ in range(args.repeats):
                for compute in times:
                    times[compute].append(fit_once(sizes, batch, X, Y, compute, args.threads)[0])
        med = {c: statistics.median(t) * 1e6 / rows if t else float("nan")
               for c, t in times.items()}
        lines.append(f"{'-'.join(map(str, sizes)):<24} {batch:>5} {rows:>6} "
                     f"{losses['float32']:>10.5f} {losses['bfloat16']:>10.5f} "
                     f"{med['float32']:>10.3f} {med['bfloat16']:>11.3f} "
                     f"{med['float32'] / med['bfloat16']:>7.2f}x")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
