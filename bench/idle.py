"""Wait until no thread of this process is busy before a timed run.

Thread pools keep spinning after their work: OpenBLAS's for about 0.1 s
after each threaded call (2**28 cycles, ``OPENBLAS_THREAD_TIMEOUT``), OpenMP's
briefly. A contender timed within that window shares its cores with the
spinner of the one before (or of the benchmark's own GEMM probe): on 2 cores,
right after a NumPy 2048 x 2048 GEMM, fastbp's 784-256-128-10 fit on 2
threads ran 13.7 against 6.5 µs a sample, PyTorch's 13.4 against 11.8. So
every timed run starts from an idle process.
"""
from __future__ import annotations

import time

# a process using less than this share of one core is idle
IDLE_SHARE = 0.05


def wait_until_idle(max_seconds: float = 1.0, window: float = 0.01) -> float:
    """Sleep in windows of ``window`` seconds until the process's threads used
    less than ``IDLE_SHARE`` of a core over one; give up after ``max_seconds``.

    Returns the seconds waited.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < max_seconds:
        wall, cpu = time.perf_counter(), time.process_time()
        time.sleep(window)
        if (time.process_time() - cpu) < IDLE_SHARE * (time.perf_counter() - wall):
            break
    return time.perf_counter() - started
