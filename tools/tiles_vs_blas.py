"""Time fit with the register-tiled products on and off, interleaved, in one process.

    python tools/tiles_vs_blas.py

784-256-128-10 sigmoid, plain SGD, 12 000 rows, batch 32/128/512, 1 and 2
threads, float32 and float64; 5 alternating runs each, median (and the ratio
of the fastest runs). A ratio above 1 means BLAS alone was faster on this CPU:
the tiles' gate (csrc/fastbp_gemm.h) was tuned on an AMD EPYC (Zen 4).
"""
import statistics
import time

import numpy as np

import fastbp
from fastbp import _kernels

ROWS = 12_000


def fit_seconds(X, Y, dtype, batch, threads):
    net = fastbp.Network([784, 256, 128, 10], activation="sigmoid",
                         output_activation="sigmoid", dtype=dtype, seed=0)
    started = time.perf_counter()
    net.fit(X, Y, optimizer=fastbp.SGD(lr=0.01), batch_size=batch, shuffle=False,
            n_threads=threads)
    return time.perf_counter() - started


def main():
    if not _kernels.set_tiled_gemm(True):
        raise SystemExit("this CPU has no AVX-512: the tiles never run")
    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        X = rng.normal(size=(ROWS, 784)).astype(dtype)
        Y = rng.uniform(size=(ROWS, 10)).astype(dtype)
        for threads in (1, 2):
            for batch in (32, 128, 512):
                times = {True: [], False: []}
                for _ in range(5):
                    for tiles in (True, False):
                        _kernels.set_tiled_gemm(tiles)
                        times[tiles].append(fit_seconds(X, Y, dtype, batch, threads))
                        time.sleep(0.1)  # BLAS workers stop spinning
                on, off = statistics.median(times[True]), statistics.median(times[False])
                print(f"{dtype} {threads}t b{batch}: tiles {on / ROWS * 1e6:.2f} "
                      f"blas {off / ROWS * 1e6:.2f} µs/sample, tiles/blas {on / off:.2f} "
                      f"(fastest runs {min(times[True]) / min(times[False]):.2f})", flush=True)
    _kernels.set_tiled_gemm(True)


if __name__ == "__main__":
    main()
