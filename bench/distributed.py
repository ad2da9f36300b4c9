#!/usr/bin/env python
"""fastbp.dask: lbfgs on 2 Dask workers against 1, and a projection to more.

Usage (fastbp installed with its dask extra)::

    python bench/distributed.py                    # 1 000 000 x 784 (needs ~10 GB, long)
    python bench/distributed.py --rows 200000 --out bench/results/distributed.txt

Data: synthetic float32 rows (``--rows`` x 784, standard normal) made on
the workers, labels from a random linear teacher over 10 classes.
Model: 784-256-10 relu/softmax, ``DaskMLPClassifier(solver="lbfgs",
max_iter=20, tol=0)``: 20 L-BFGS iterations.

Runs: a LocalCluster of 1 worker x 1 thread, then one of 2 workers x 1
thread (processes, 127.0.0.1). For each: the time of the 20 iterations
(after the data is on the workers), the loss-and-gradient evaluations,
the compute time of the workers' gradient tasks (Dask's task stream), each
worker's resident memory with the data persisted and its peak during the
fit (the growth is the fit's own memory), and the bytes each evaluation
moves: the weight vector to every worker (float32) and one float64 partial
gradient from every worker into the tree reduction.

Projection to 16 and 64 workers: per evaluation, compute time (measured on
one worker) / W, plus the measured fixed cost of an evaluation on 2 workers
(scheduling, the client's L-BFGS step), plus transfers of the weight vector
to W workers and log2(W) levels of the reduction at an assumed 1.25 GB/s
(10 Gbit/s) network, each level also paying the measured per-task latency.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import time
import warnings

import numpy as np

# this folder holds distributed.py and sparse.py, which would shadow the
# packages of those names: take it off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

#: assumed network bandwidth of a cluster, bytes per second (10 Gbit/s)
NETWORK_BYTES_PER_SECOND = 1.25e9


def _status_bytes(field: str) -> int:
    """A memory figure of the calling process from /proc/self/status (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int:
    """Resident memory of the calling process now."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """Peak resident memory since the last reset_peak_rss()."""
    return _status_bytes("VmHWM")


def _import_fit_modules() -> None:
    import fastbp.dask  # noqa: F401  (the estimators, scikit-learn, SciPy)
    import scipy.optimize  # noqa: F401


def reset_peak_rss() -> None:
    """Restart the peak at the current RSS (Linux: "5" to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def make_data(rows, features, classes, chunk_rows, seed):
    import dask.array as da
    state = da.random.RandomState(seed)
    X = state.standard_normal((rows, features), chunks=(chunk_rows, features)).astype(np.float32)
    teacher = np.random.default_rng(seed).normal(size=(features, classes)).astype(np.float32)
    y = (X @ teacher).argmax(axis=1)
    return X, y


def run(workers: int, args) -> dict:
    from distributed import Client, LocalCluster, get_task_stream, wait
    from fastbp.dask import DaskMLPClassifier

    evaluation_seconds = []

    class TimedClassifier(DaskMLPClassifier):
        def _with_retries(self, work, *work_args):
            started = time.perf_counter()
            try:
                return super()._with_retries(work, *work_args)
            finally:
                evaluation_seconds.append(time.perf_counter() - started)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=50,
                               memory_limit=None)
    client = Client(cluster)
    try:
        X, y = make_data(args.rows, args.features, args.classes, args.chunk_rows, args.seed)
        # the data in the workers' memory first, as a user's persisted collection,
        # and the modules a fit imports, so the growth below is the fit's own
        client.run(_import_fit_modules)
        X, y = client.persist([X, y])
        wait([X, y])
        with_data = client.run(rss_bytes)
        client.run(reset_peak_rss)
        model = TimedClassifier((args.hidden,), solver="lbfgs", max_iter=args.iterations, tol=0.0,
                                random_state=0, client=client, timeout=3600)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with get_task_stream(client) as stream:
                model.fit(X, y)
        total = time.perf_counter() - started
        gradient_tasks = [t for t in stream.data if "_blocks_loss_gradient" in str(t["key"])]
        compute = sum(s["stop"] - s["start"] for t in gradient_tasks for s in t["startstops"]
                      if s["action"] == "compute")
        peak = client.run(peak_rss_bytes)
        return {"workers": workers, "fit_seconds": total,
                "iteration_seconds": sum(evaluation_seconds), "evaluations": len(evaluation_seconds),
                "iterations": model.n_iter_, "loss": model.loss_,
                "gradient_compute_seconds": compute,
                "worker_rss_with_data": [with_data[a] for a in sorted(peak)],
                "worker_peak_rss": [peak[a] for a in sorted(peak)],
                "n_params": model._local._net._params.size}
    finally:
        client.close()
        cluster.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=25_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args(argv)

    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    say(f"fastbp.dask lbfgs benchmark: {args.rows} x {args.features} float32, "
        f"{args.features}-{args.hidden}-{args.classes}, {args.iterations} iterations")
    say(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}")
    say("load average before (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + " -- speed-ups need the cores free of other work")
    results = [run(1, args), run(2, args)]
    say("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    one, two = results
    n_params = one["n_params"]
    for r in results:
        per_eval = r["iteration_seconds"] / r["evaluations"]
        say(f"{r['workers']} worker(s) x 1 thread: fit {r['fit_seconds']:.1f} s, "
            f"{r['iterations']} iterations / {r['evaluations']} evaluations in "
            f"{r['iteration_seconds']:.1f} s ({per_eval:.3f} s each), gradient compute "
            f"{r['gradient_compute_seconds']:.1f} s (all workers), loss {r['loss']:.6f}")
        say("  per worker: RSS with its data persisted, then peak during the fit (growth): "
            + ", ".join(f"{a / 2**20:.0f} -> {b / 2**20:.0f} MiB (+{(b - a) / 2**20:.0f})"
                        for a, b in zip(r["worker_rss_with_data"], r["worker_peak_rss"])))
    speedup = (one["iteration_seconds"] / one["evaluations"]) / \
        (two["iteration_seconds"] / two["evaluations"])
    say(f"speed-up of the iterations, 2 workers over 1: {speedup:.2f}x "
        f"(target >= 1.6x at 1M rows)")
    say(f"data per worker: {args.rows / 2 * args.features * 4 / 2**20:.0f} MiB of X at 2 "
        f"workers, {args.rows * args.features * 4 / 2**20:.0f} MiB at 1; one-hot targets "
        f"{args.rows / 2 * args.classes * 4 / 2**20:.0f} MiB at 2 workers")
    from fastbp import _kernels
    from fastbp._objective import OBJECTIVE_CHUNK_ROWS
    sizes = np.array([args.features, args.hidden, args.classes], np.int32)
    workspace = 4 * _kernels.pass_workspace_size(sizes, OBJECTIVE_CHUNK_ROWS)
    say(f"a fit's own memory per worker: the one-hot targets, the weights and gradients "
        f"(~{4 * one['n_params'] * 8 / 2**20:.0f} MiB in all), the passes' workspace for "
        f"{OBJECTIVE_CHUNK_ROWS}-row chunks (~{workspace / 2**20:.0f} MiB): O(weights + chunk), not O(rows)")

    down, up = n_params * 4, n_params * 8 + 24
    say(f"weights: {n_params} parameters; each evaluation moves {down / 1e6:.2f} MB (float32 "
        f"weights) to each worker and {up / 1e6:.2f} MB (float64 partial gradient) from each: "
        f"{2 * (down + up) / 1e6:.2f} MB at 2 workers")

    compute_one = one["gradient_compute_seconds"] / one["evaluations"]
    per_eval_two = two["iteration_seconds"] / two["evaluations"]
    compute_two = two["gradient_compute_seconds"] / two["evaluations"] / 2
    fixed = max(per_eval_two - compute_two, 0.0)
    say(f"per evaluation: compute {compute_one:.3f} s on 1 worker; on 2 workers "
        f"{compute_two:.3f} s each, fixed cost (scheduling, transfers on one host, L-BFGS "
        f"step) {fixed:.3f} s")
    say(f"projection (compute scaled from the measured 1-worker time x rows "
        f"{args.rows} -> 1M, network {NETWORK_BYTES_PER_SECOND / 1e9:.2f} GB/s assumed):")
    scale = 1_000_000 / args.rows
    for workers in (2, 16, 64):
        compute = compute_one * scale / workers
        transfers = (workers * down + math.ceil(math.log2(workers)) * up) / \
            NETWORK_BYTES_PER_SECOND
        latency = fixed * math.ceil(math.log2(workers))
        per_eval = compute + transfers + latency
        say(f"  {workers:>2} workers: {per_eval:.3f} s per evaluation (compute {compute:.3f}, "
            f"transfers {transfers:.3f}, latency {latency:.3f}); speed-up over 1 worker "
            f"{compute_one * scale / per_eval:.1f}x")
    if args.out:
        with open(args.out, "w") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
