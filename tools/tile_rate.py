"""How fast the AVX-512 tiles run on one core, against the core's best GEMM rate.

    python tools/tile_rate.py [--rounds 3]

On one thread (the BLAS held to one too), for the products of a
784-256-128-10 batch (forward products of 64 rows, one thread's share of a
128-row batch on 2 threads, and of 128 and 512 rows; weight gradients over
128 rows), it prints GFLOP/s of ``_kernels.dense_forward`` and
``_kernels.layer_gradients`` with the tiles on, best of 15 runs, and NumPy's
2048 x 2048 GEMM (OpenBLAS; the rate bench/compare.py's floor uses), best of
3. Best-of rates, because a shared machine only ever slows a run down. The
rounds alternate the products and the GEMM; compare two builds by running
this with each on PYTHONPATH in turn.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np
from threadpoolctl import threadpool_limits

from fastbp import _kernels

GEMM_SIZE = 2048
# (rows, n_in, n_out, product) of a 784-256-128-10 batch
SHAPES = [(64, 784, 256, "forward"), (64, 256, 128, "forward"), (128, 784, 256, "forward"),
          (512, 784, 256, "forward"), (128, 784, 256, "gradient"), (128, 256, 128, "gradient")]


def product_rate(dtype, rows, n_in, n_out, product, rng):
    """GFLOP/s of one product, best of 15 runs of 10 calls."""
    z = rng.normal(size=(rows, n_in)).astype(dtype)
    W = rng.normal(size=(n_in, n_out)).astype(dtype)
    if product == "forward":
        a, b = np.empty((rows, n_out), dtype), np.zeros(n_out, dtype)
        call = lambda: _kernels.dense_forward(z, W, b, a)  # noqa: E731
    else:
        delta = rng.normal(size=(rows, n_out)).astype(dtype)
        dW, db = np.empty((n_in, n_out), dtype), np.empty(n_out, dtype)
        call = lambda: _kernels.layer_gradients(z, delta, W, 0.0, dW, db)  # noqa: E731
    seconds = min(timeit.repeat(call, number=10, repeat=15)) / 10
    return 2.0 * rows * n_in * n_out / seconds / 1e9


def gemm_rate(dtype):
    A = np.ones((GEMM_SIZE, GEMM_SIZE), dtype)
    return 2.0 * GEMM_SIZE ** 3 / min(timeit.repeat(lambda: A @ A, number=1, repeat=3)) / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args(argv)
    if not _kernels.set_tiled_gemm(True):
        raise SystemExit("this CPU has no AVX-512: the tiles never run")
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for round_ in range(arguments.rounds):
            for dtype in ("float32", "float64"):
                rates = [f"{product} {rows}x{n_in}x{n_out} "
                         f"{product_rate(dtype, rows, n_in, n_out, product, rng):.1f}"
                         for rows, n_in, n_out, product in SHAPES]
                print(f"round {round_ + 1} {dtype}: GEMM {GEMM_SIZE}^2 {gemm_rate(dtype):.1f}"
                      f" GFLOP/s; " + ", ".join(rates))


if __name__ == "__main__":
    main()
