"""Two networks trained in two threads against one after the other.

    python tools/thread_speedup.py [--repeats 5]

Each configuration trains network A then network B (sequential), and A' and
B' at once in two threads (parallel), interleaved over the repeats. It checks
that the parallel weights are bit-identical to the sequential ones and prints
the median times and the speed-up. BLAS is held to one thread per fit
(``n_threads=1``), so two threads use the two cores of the CI machine.

Each configuration runs in a fresh process. The sequential fits run in the
main thread and the parallel ones in worker threads, so the BLAS limit has to
take effect from both (threadpoolctl >= 3.8 lets only one thread at a time
change it; until fastbp handed that control back, the workers' limit was
ignored and the minibatch pair ran at 0.38x).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

import fastbp

CONFIGS = [
    # name, sizes, rows, batch_size, optimizer
    ("per-sample SGD, 64-128-64-10", [64, 128, 64, 10], 40000, 1, dict(lr=0.01)),
    ("minibatch 32, momentum, 100-256-256-10", [100, 256, 256, 10], 30000, 32,
     dict(lr=0.01, momentum=0.9)),
]


def train(net, X, Y, batch_size, opt):
    net.fit(X, Y, optimizer=fastbp.SGD(**opt), epochs=1, batch_size=batch_size, seed=0,
            n_threads=1)


def sequential(make, X, Y, batch_size, opt):
    nets = [make(1), make(2)]
    started = time.perf_counter()
    for net in nets:
        train(net, X, Y, batch_size, opt)
    return time.perf_counter() - started, nets


def parallel(make, X, Y, batch_size, opt):
    nets = [make(1), make(2)]
    barrier = threading.Barrier(3)

    def body(net):
        barrier.wait()
        train(net, X, Y, batch_size, opt)

    threads = [threading.Thread(target=body, args=(net,)) for net in nets]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, nets


def params(net):
    return np.concatenate([a.ravel() for a in net.weights + net.biases])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config is None:
        print(f"{'configuration':58s} {'sequential s':>13s} {'parallel s':>11s} "
              f"{'speed-up':>9s}  bit-identical", flush=True)
        for index in range(len(CONFIGS)):
            subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats),
                            "--config", str(index)], check=True)
        return
    rng = np.random.default_rng(0)
    for name, sizes, rows, batch_size, opt in CONFIGS[args.config:args.config + 1]:
        X = rng.normal(size=(rows, sizes[0]))
        Y = rng.uniform(size=(rows, sizes[-1]))
        make = lambda seed, sizes=sizes: fastbp.Network(sizes, activation="tanh", seed=seed)
        train(make(0), X[:200], Y[:200], batch_size, opt)  # warm up
        seq_times, par_times, identical = [], [], True
        for _ in range(args.repeats):
            seconds, seq_nets = sequential(make, X, Y, batch_size, opt)
            seq_times.append(seconds)
            seconds, par_nets = parallel(make, X, Y, batch_size, opt)
            par_times.append(seconds)
            identical &= all(np.array_equal(params(a), params(b))
                             for a, b in zip(seq_nets, par_nets))
        seq, par = statistics.median(seq_times), statistics.median(par_times)
        print(f"{name:58s} {seq:13.3f} {par:11.3f} {seq / par:8.2f}x  {identical}", flush=True)


if __name__ == "__main__":
    main()
