"""Time per-sample SGD on one thread against the per-sample team (csrc/fastbp_sample_team_impl.h),
to place the team's threshold (fastbp._kernels.set_sample_team).

    flock /tmp/quiet.lock python3 /work/wt/notes/quiet.py python tools/sample_team.py

For each network 64-h-h-10 (and the widths given with --hidden), each dtype and SGD with and
without momentum: µs a row of a fit with n_threads=1 and with n_threads=2 and the team on from one
weight, interleaved, median of --repeats; both fits' weights are checked equal first (same work).
"""
import argparse
import statistics
import time

import numpy as np

import fastbp
from fastbp import _kernels


def fit_seconds(sizes, dtype, optimizer, rows, n_threads):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], rows)]
    net = fastbp.Network(list(sizes), activation="tanh", output_activation="softmax",
                         dtype=dtype, seed=1)
    started = time.perf_counter()
    net.fit(X, Y, loss="cross_entropy", optimizer=optimizer(), epochs=1, batch_size=1,
            shuffle=False, n_threads=n_threads)
    return time.perf_counter() - started, net.params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="64,128,192,256,384,512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    optimizers = {"sgd": lambda: fastbp.SGD(lr=0.001),
                  "momentum": lambda: fastbp.SGD(lr=0.001, momentum=0.9)}
    old = _kernels.set_sample_team(1)
    try:
        print(f"{'net':>16} {'weights':>8} {'dtype':>7} {'opt':>8} {'1 thread':>9} "
              f"{args.threads} threads  ratio")
        for h in map(int, args.hidden.split(",")):
            sizes = (64, h, h, 10)
            weights = 64 * h + h * h + 10 * h
            rows = max(20, min(4000, int(2e8 / (6 * weights))))
            for dtype in ("float32", "float64"):
                for name, optimizer in optimizers.items():
                    one, one_params = fit_seconds(sizes, dtype, optimizer, rows, 1)
                    team, team_params = fit_seconds(sizes, dtype, optimizer, rows, args.threads)
                    assert np.array_equal(one_params, team_params), "not the same work"
                    times = {1: [], args.threads: []}
                    for _ in range(args.repeats):
                        for n in times:
                            times[n].append(fit_seconds(sizes, dtype, optimizer, rows, n)[0])
                    t1 = statistics.median(times[1]) / rows * 1e6
                    tn = statistics.median(times[args.threads]) / rows * 1e6
                    print(f"{'-'.join(map(str, sizes)):>16} {weights:>8} {dtype:>7} {name:>8} "
                          f"{t1:9.2f} {tn:10.2f}  {t1 / tn:5.2f}x", flush=True)
    finally:
        _kernels.set_sample_team(old)


if __name__ == "__main__":
    main()
