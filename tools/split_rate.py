"""Two threads on one large layer: split its rows or its columns?

    python tools/split_rate.py [--dtype float32] [--width 2048] [--rounds 5]

Times the two products of a width x width layer that fastbp's training
threads split (``csrc/threads.pxi``), on two Python threads calling the
GIL-free kernel twins with the BLAS held to one thread each:

- forward, ``z . W``: each thread takes half the rows of z and all of W
  (the row split), or all rows and half the columns of W (the column split);
- backward, ``delta . W^T``: half the rows of delta and all of W, or all
  rows and half the rows of W.

Split by rows, each thread reads all of W, which spans more than the L2
cache; split by columns, each reads half. Prints microseconds per call
(best of ``--rounds``) for batches of 32, 128 and 512 rows.
"""
from __future__ import annotations

import argparse
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastbp import _kernels

SIGMOID = 1  # the activation code for the backward pass's f'(z)


def in_two_threads(calls):
    """Wall time of running the two zero-argument ``calls`` at once."""
    threads = [threading.Thread(target=call) for call in calls]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def halves(array, axis):
    """The two contiguous halves of ``array`` along ``axis``."""
    return [np.ascontiguousarray(part) for part in np.array_split(array, 2, axis=axis)]


def time_layer(W, rows, rounds, rng):
    """Best µs per call of each product and split for a batch of ``rows``."""
    dtype, width = W.dtype, W.shape[0]
    repeats = max(2, 4096 // rows)
    z = rng.standard_normal((rows, width)).astype(dtype)
    delta = rng.standard_normal((rows, width)).astype(dtype)
    b, b_half = np.zeros(width, dtype), np.zeros(width // 2, dtype)
    z_rows, delta_rows, z_columns = halves(z, 0), halves(delta, 0), halves(z, 1)
    W_columns, W_rows = halves(W, 1), halves(W, 0)
    out_rows = [np.empty((rows // 2, width), dtype) for _ in range(2)]
    out_columns = [np.empty((rows, width // 2), dtype) for _ in range(2)]
    products = {
        "forward, rows": lambda i: _kernels.dense_forward(z_rows[i], W, b, out_rows[i]),
        "forward, columns": lambda i: _kernels.dense_forward(z, W_columns[i], b_half,
                                                             out_columns[i]),
        "backward, rows": lambda i: _kernels.backprop_delta(delta_rows[i], W, z_rows[i],
                                                            SIGMOID, out_rows[i]),
        "backward, columns": lambda i: _kernels.backprop_delta(delta, W_rows[i], z_columns[i],
                                                               SIGMOID, out_columns[i]),
    }
    best = {name: float("inf") for name in products}
    for _ in range(rounds):
        for name, product in products.items():
            calls = [lambda i=i: [product(i) for _ in range(repeats)] for i in range(2)]
            best[name] = min(best[name], in_two_threads(calls) / repeats * 1e6)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((args.width, args.width)) * 0.02).astype(args.dtype)
    with threadpool_limits(1):
        for rows in (32, 128, 512):
            best = time_layer(W, rows, args.rounds, rng)
            forward = best["forward, columns"] / best["forward, rows"]
            backward = best["backward, columns"] / best["backward, rows"]
            print(f"{args.dtype} {args.width}x{args.width}, {rows} rows: "
                  + ", ".join(f"{name} {us:.0f} µs" for name, us in best.items())
                  + f"; columns/rows: forward {forward:.2f}x, backward {backward:.2f}x")


if __name__ == "__main__":
    main()
