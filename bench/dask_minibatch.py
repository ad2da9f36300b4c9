#!/usr/bin/env python
"""Minibatch training on Dask: synchronous averaged gradients per step
against local epochs with model averaging (what fastbp.dask does).

Usage (fastbp installed with its dask extra)::

    python bench/dask_minibatch.py --out bench/results/dask_minibatch.txt

Data: 3 overlapping Gaussian classes, ``--rows`` x 64 float64 (plus 20 000
held-out rows), in 2 partitions on a LocalCluster of 2 workers x 1 thread.
Model: 64-100-3, Adam (lr 1e-3) at batch 200, ``--epochs`` epochs.

- single machine: ``fastbp.MLPClassifier`` on one thread;
- synchronous: each step scatters the weights, each worker computes the
  gradient of its half of the 200-row batch (the compiled kernels), the
  halves are summed on the cluster and the client takes the Adam step, so
  the steps are those of a single machine at batch 200; timed over one epoch;
- local epochs: ``fastbp.dask.DaskMLPClassifier``: every worker trains one
  epoch on its own rows, the client averages weights and Adam moments.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

# this folder holds distributed.py and sparse.py, which would shadow the
# packages of those names: take it off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def blobs(rows, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    centers = rng.normal(size=(3, 64)) * 0.35
    return rng.normal(size=(rows, 64)) + centers[y], y


def block_gradient(X, Y, params, sizes, acts, code):
    from fastbp import _kernels
    from fastbp._runtime import training_threads
    params = np.require(params, requirements="CA")
    grad = np.empty_like(params)
    work = np.empty(_kernels.pass_workspace_size(sizes, X.shape[0]), params.dtype)
    with training_threads(list(sizes), X.shape[0], 1, per_sample=True):
        data, _ = _kernels.weighted_loss_gradient(X, Y, np.empty(0), params, sizes, acts, code,
                                                  0.0, work, grad)
    return data * X.shape[0], grad * X.shape[0]


def add(first, second):
    return first[0] + second[0], first[1] + second[1]


def synchronous_epoch_seconds(client, X, y, batch):
    """Seconds of one epoch of synchronous data-parallel Adam steps."""
    from fastbp import MLPClassifier
    model = MLPClassifier((100,), max_iter=1, random_state=0).fit(X[:600], y[:600])
    net = model._net
    Y = model._label_binarizer.transform(y).astype(np.float64)
    workers = sorted(client.scheduler_info()["workers"])
    half = X.shape[0] // 2
    parts = [(client.scatter(np.ascontiguousarray(X[i * half:(i + 1) * half]), workers=[w]),
              client.scatter(np.ascontiguousarray(Y[i * half:(i + 1) * half]), workers=[w]))
             for i, w in enumerate(workers)]

    def rows(data, start, stop):
        return np.require(data[start:stop], requirements="CA")  # aligned for the kernels

    params = net._params.copy()
    m, v = np.zeros_like(params), np.zeros_like(params)
    started = time.perf_counter()
    steps = half // (batch // 2)
    for step in range(steps):
        start, stop = step * batch // 2, (step + 1) * batch // 2
        theta = client.scatter(params, broadcast=True, hash=False)
        partials = []
        for (Xf, Yf), worker in zip(parts, workers):
            Xb = client.submit(rows, Xf, start, stop, workers=[worker], pure=False)
            Yb = client.submit(rows, Yf, start, stop, workers=[worker], pure=False)
            partials.append(client.submit(block_gradient, Xb, Yb, theta, net._sizes, net._acts,
                                          model._loss_code(), workers=[worker], pure=False))
        _, grad = client.submit(add, *partials, pure=False).result(timeout=60)
        grad /= batch
        t = step + 1
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        params -= 1e-3 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (np.sqrt(v) + 1e-8)
    return time.perf_counter() - started, steps


def main(argv=None) -> int:
    import dask.array as da
    from distributed import Client, LocalCluster
    from fastbp import MLPClassifier
    from fastbp.dask import DaskMLPClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    lines = []

    def say(text):
        print(text, flush=True)
        lines.append(text)

    X_all, y_all = blobs(args.rows + 20_000, 0)
    X, y, X_test, y_test = X_all[:args.rows], y_all[:args.rows], X_all[args.rows:], \
        y_all[args.rows:]
    params = dict(hidden_layer_sizes=(100,), solver="adam", max_iter=args.epochs,
                  random_state=0)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    single = MLPClassifier(n_threads=1, **params).fit(X, y)
    single_seconds = time.perf_counter() - started
    say(f"{args.rows} x 64 rows, 64-100-3, Adam lr 1e-3, batch 200, {args.epochs} epochs")
    say(f"single machine, 1 thread: {single_seconds / args.epochs:.3f} s per epoch, held-out "
        f"accuracy {single.score(X_test, y_test):.4f}")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=50) as cluster, \
            Client(cluster) as client:
        seconds, steps = synchronous_epoch_seconds(client, X, y, 200)
        say(f"synchronous averaged gradients, 2 workers: {seconds:.2f} s per epoch "
            f"({steps} steps, {1000 * seconds / steps:.1f} ms per step); its steps are the "
            f"single machine's, so is its accuracy")
        chunks = args.rows // 2
        started = time.perf_counter()
        model = DaskMLPClassifier(client=client, **params).fit(
            da.from_array(X, chunks=chunks), da.from_array(y, chunks=chunks))
        local_seconds = time.perf_counter() - started
        say(f"local epochs + averaging, 2 workers: {local_seconds / args.epochs:.3f} s per "
            f"epoch (data conversion included), held-out accuracy "
            f"{model.to_local().score(X_test, y_test):.4f}")
    if args.out:
        with open(args.out, "w") as handle:
            handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
