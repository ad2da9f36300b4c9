"""Predict latency for a few rows, to place the gemv/gemm switch of
csrc/products.pxi (GEMV_MAX_ROWS) on a CPU without AVX-512.

    python tools/few_row_predict.py            # one build
    # before/after: run it with each build's python, interleaved, on a quiet machine

Prints, per net and dtype, the median of 300 calls in µs for 1-8 rows.
"""
import time

import numpy as np

import fastbp


def main():
    rng = np.random.default_rng(0)
    for sizes in ([784, 256, 128, 10], [784, 128, 10], [64, 32, 10]):
        for dtype in ("float32", "float64"):
            net = fastbp.Network(sizes, dtype=dtype, seed=0)
            cells = []
            for m in (1, 2, 3, 4, 5, 6, 8):
                X = rng.standard_normal((m, sizes[0])).astype(dtype)
                net.predict(X)
                times = []
                for _ in range(300):
                    start = time.perf_counter()
                    net.predict(X)
                    times.append(time.perf_counter() - start)
                cells.append(f"{m}:{np.median(times) * 1e6:6.1f}")
            print("-".join(map(str, sizes)), dtype, " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
