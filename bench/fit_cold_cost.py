"""The cold cost of a ``fit`` call: µs per call on XOR (2-2-1, 2000 rows, one
epoch), timed as ``bench/compare.py`` times fastbp, against the same call warm.

compare.py times each contender once per round, after a NumPy 2048 x 2048
GEMM (its floor probe), ``gc.collect()`` and a wait for idle threads
(``bench/idle.py``): the fit then finds its code and data evicted from the
caches, and a 2-2-1 fit costs 2-4 times its warm time. Here each form runs

- cold: that sequence, then one timed ``fit`` (the GEMM in the case's dtype);
- warm: an untimed ``fit`` first, then at once the same timed call.

Each build (``--before``, and this Python or ``--after``) runs in a fresh
interpreter, alternating A B A B ... over ``--rounds``; a round keeps the
median of ``--repeats`` calls and the table the median over rounds. Same
work first: every build must give the same weights (bit for bit). Usage::

    python bench/fit_cold_cost.py --before /tmp/venv-old/bin/python --rounds 3
    python bench/fit_cold_cost.py --rounds 3          # this build alone

Results: ``bench/results/fit_cold_cost.txt`` (``--out``).
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fit_fixed_cost import build_parser, interleaved_runs, write_table  # noqa: E402
ROWS = 2000
BATCH_SIZES = (1, 32, 128, 512)
#: compare.py's thread settings: ``--threads 1`` passes n_threads=1, "defaults" none
THREADS = (1, None)


def worker(repeats: int, dtypes) -> dict:
    """Time every form cold and warm in this interpreter, and digest its weights."""
    import gc
    import time

    import numpy as np

    from idle import wait_until_idle

    import fastbp

    patterns = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    X64 = np.resize(patterns, (ROWS, 2))
    Y64 = (X64[:, :1] != X64[:, 1:]).astype(np.float64)
    rng = np.random.default_rng(0)
    A64 = rng.standard_normal((2048, 2048))
    out = {}
    for dtype in dtypes:
        X, Y = X64.astype(dtype), Y64.astype(dtype)
        A = A64.astype(dtype)
        for threads in THREADS:
            for batch_size in BATCH_SIZES:
                net = fastbp.Network([2, 2, 1], activation="sigmoid",
                                     output_activation="sigmoid", dtype=dtype, seed=0)
                weights, biases = net.weights, net.biases
                option = {} if threads is None else {"n_threads": threads}

                def fit():  # as bench/peers/fastbp_peer.py's Trainer.epoch
                    net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=0.25), epochs=1,
                            batch_size=batch_size, shuffle=False, **option)

                fit()  # as compare.py's same-work check: first-call set-up untimed
                times = {"cold": [], "warm": []}
                for _ in range(repeats):
                    for mode in times:
                        if mode == "warm":
                            net.set_weights(weights, biases)
                            fit()
                            net.set_weights(weights, biases)
                        else:
                            A @ A
                            net.set_weights(weights, biases)
                            gc.collect()
                            wait_until_idle()
                        started = time.perf_counter()
                        fit()
                        times[mode].append(time.perf_counter() - started)
                flat = np.concatenate([a.ravel() for a in net.weights + net.biases])
                label = f"{dtype} b{batch_size} n_threads={threads}"
                out[label] = {mode: statistics.median(t) * 1e6 for mode, t in times.items()}
                out[label]["digest"] = hashlib.sha256(flat.tobytes()).hexdigest()[:16]
    return out


def run_worker(python: str, repeats: int, dtypes) -> dict:
    text = subprocess.run([python, os.path.abspath(__file__), "--worker", "--repeats",
                           str(repeats), "--dtypes", ",".join(dtypes)],
                          check=True, capture_output=True, text=True, cwd="/").stdout
    return json.loads(text)


def main(argv=None) -> int:
    parser = build_parser(__doc__.splitlines()[0], "fit_cold_cost.txt")
    parser.add_argument("--repeats", type=int, default=5, help="cold (and warm) calls a round")
    parser.add_argument("--dtypes", default="float32,float64", help="comma-separated")
    args = parser.parse_args(argv)
    dtypes = [d.strip() for d in args.dtypes.split(",")]
    if args.worker:
        print(json.dumps(worker(args.repeats, dtypes)))
        return 0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    builds, runs = interleaved_runs(args, lambda python: run_worker(python, args.repeats,
                                                                    dtypes))
    forms = list(runs["after"][0])
    columns = [f"{label} {mode} µs" for label in builds for mode in ("cold", "warm")]
    if args.before:
        columns += ["cold after/before", "warm after/before"]
    lines = [f"Cold and warm fit on XOR 2-2-1, {ROWS} rows, one epoch (as compare.py's fastbp "
             f"peer: cold = after a 2048² GEMM, gc.collect() and bench/idle.py), median of "
             f"{args.repeats} calls, median of {args.rounds} interleaved rounds"
             + (f"; before = {args.before}; same weights in both builds." if args.before
                else "."), "", "| fit | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for form in forms:
        times = {(label, mode): statistics.median(r[form][mode] for r in runs[label])
                 for label in builds for mode in ("cold", "warm")}
        cells = [f"{times[label, mode]:.0f}" for label in builds for mode in ("cold", "warm")]
        if args.before:
            cells += [f"{times['after', mode] / times['before', mode]:.2f}"
                      for mode in ("cold", "warm")]
        lines.append(f"| {form} | " + " | ".join(cells) + " |")
    write_table(lines, args.out, "fit_cold_cost.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
