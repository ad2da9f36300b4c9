#!/usr/bin/env python
"""Memory of fit, predict, loss and gradients against the number of rows.

Usage (fastbp installed; writes up to 3.1 GB of memmaps to a temporary folder)::

    python bench/memory.py                      # 100k, 400k and 1M rows x 784, float32
    python bench/memory.py --rows 100000,200000 --dtype float64

X and Y are ``np.memmap`` files, so reading them costs page cache (RSS of
the file), not memory of the process's own. For each call the script samples
the process's anonymous resident memory (``RssAnon`` in /proc/self/status)
every millisecond from another thread (the kernels run without the GIL) and
reports the peak above what it was before the call, less the bytes of the
call's output; each call runs in a fresh process, so that no memory an
earlier call freed (and the allocator kept) hides a new allocation. The target: at most O(batch x width + weights) + 64 MiB,
whatever the number of rows. A second column runs predict on float64 data
for a float32 network (converted a chunk at a time).

Network 784-128-10 (relu, softmax, cross-entropy), one epoch of minibatch
SGD at batch 128 with shuffling (its row order is 8 bytes a row).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import fastbp

MiB = 1 << 20


def rss_anon() -> int:
    """Anonymous resident bytes of this process (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def peak_growth(call) -> tuple:
    """(peak RssAnon above the start during ``call``, its result)."""
    start = rss_anon()
    peak = [start]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = call()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], rss_anon())
    return peak[0] - start, result


def memmap(folder: Path, name: str, shape, dtype, fill) -> np.memmap:
    """A memmap file filled a block of rows at a time."""
    array = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
    for start in range(0, shape[0], 50_000):
        stop = min(start + 50_000, shape[0])
        array[start:stop] = fill(stop - start)
    array.flush()
    return np.load(folder / f"{name}.npy", mmap_mode="r")


CALLS = ("fit", "predict", "loss", "gradients", "predict float64 X")


def measure_call(name: str, folder: Path, rows: int, dtype: str) -> float:
    """In a fresh process (so no memory freed by an earlier call is reused):
    the peak growth of one call, MiB, less its output."""
    X = np.load(folder / ("X64.npy" if name == "predict float64 X" else "X.npy"), mmap_mode="r")
    Y = np.load(folder / "Y.npy", mmap_mode="r")
    net = fastbp.Network([784, 128, 10], activation="relu", output_activation="softmax",
                         dtype=dtype, seed=0)
    net.predict(X[:10])  # first-call allocations
    calls = {
        "fit": lambda: net.fit(X, Y, loss="cross_entropy", batch_size=128, seed=0,
                               optimizer=fastbp.SGD(lr=0.01)),
        "predict": lambda: net.predict(X),
        "loss": lambda: net.loss(X, Y, loss="cross_entropy"),
        "gradients": lambda: net.gradients(X, Y, loss="cross_entropy"),
        "predict float64 X": lambda: net.predict(X),
    }
    growth, _ = peak_growth(calls[name])
    if name.startswith("predict"):
        growth -= rows * 10 * np.dtype(dtype).itemsize
    return growth / MiB


def measure(rows: int, dtype: str, folder: Path) -> dict:
    """Write the memmaps for ``rows`` rows, then measure each call in a child process."""
    rng = np.random.default_rng(0)
    memmap(folder, "X", (rows, 784), dtype, lambda m: rng.normal(size=(m, 784)))
    memmap(folder, "Y", (rows, 10), dtype, lambda m: np.eye(10)[rng.integers(0, 10, m)])
    names = CALLS if dtype == "float32" else CALLS[:-1]
    if dtype == "float32":
        memmap(folder, "X64", (rows, 784), "float64", lambda m: rng.normal(size=(m, 784)))
    result = {"rows": rows, "X_MiB": rows * 784 * np.dtype(dtype).itemsize / MiB}
    for name in names:
        child = subprocess.run([sys.executable, __file__, "--child", name, str(folder),
                                str(rows), dtype], capture_output=True, text=True, check=True)
        result[name] = float(child.stdout.strip().splitlines()[-1])
    for path in folder.glob("*.npy"):
        path.unlink()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,400000,1000000")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        name, folder, rows, dtype = arguments.child
        print(measure_call(name, Path(folder), int(rows), dtype))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in (int(r) for r in arguments.rows.split(",")):
            results.append(measure(rows, arguments.dtype, Path(folder)))
            names = [k for k in results[-1] if k not in ("rows", "X_MiB")]
            if len(results) == 1:
                print(f"peak anonymous memory above the start, MiB (outputs excluded); "
                      f"{arguments.dtype} X\n{'rows':>9} {'X MiB':>8} "
                      + " ".join(f"{n:>18}" for n in names))
            r = results[-1]
            print(f"{r['rows']:>9} {r['X_MiB']:>8.0f} "
                  + " ".join(f"{r[n]:>18.1f}" for n in names), flush=True)
    arguments.out.mkdir(parents=True, exist_ok=True)
    path = arguments.out / f"memory_{arguments.dtype}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
