"""Shared test helpers: random networks, dtype-aware comparisons and a
Dask cluster on loopback."""
import contextlib
import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastbp
from fastbp import _kernels

RTOL = {np.float64: 1e-12, np.float32: 1e-5}

HIDDEN = ["sigmoid", "tanh", "relu", "identity"]
# every loss with each output activation it accepts
LOSS_OUTPUTS = [("mse", out) for out in ["sigmoid", "tanh", "relu", "identity", "softmax"]] + [
    ("bce", "sigmoid"), ("cross_entropy", "softmax")]


@contextlib.contextmanager
def products_independent_of_splits():
    """Run the products so that each output's sum is the same however a product
    is split into rows or columns.

    fastbp's AVX-512 tiles and its plain loops sum every entry over the inner
    dimension in one order, whichever rows and columns a call covers. OpenBLAS's
    kernels for CPUs without AVX-512 (Haswell, Zen) do not: on an AMD EPYC (Zen 3)
    rows 64-129 of a 130 x 784 x 256 dgemm differ in 457 entries from the same
    rows multiplied alone. Where the tiles are off, the products run as plain
    loops here, so that a test of how threads or blocks split the work compares
    the splits, not BLAS's kernels (docs/user_guide/threads.rst, Reproducibility).
    """
    if _kernels.tiled_gemm_in_use():
        yield
        return
    old = _kernels.set_blas_min_flops(2 ** 62)
    try:
        yield
    finally:
        _kernels.set_blas_min_flops(old)


def assert_close(actual, expected, dtype=np.float64, rtol=None):
    """Relative comparison; entries near zero are judged against the array's scale."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    rtol = RTOL[np.dtype(dtype).type] if rtol is None else rtol
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def targets(rng, loss, m, n, dtype=np.float64):
    """Random targets valid for ``loss``."""
    if loss == "cross_entropy":
        return np.eye(n, dtype=dtype)[rng.integers(0, n, m)]
    if loss == "bce":
        return rng.uniform(0, 1, (m, n)).astype(dtype)
    return rng.normal(size=(m, n)).astype(dtype)


def as_lists(net):
    """A network's parameters and activations in the reference's list form."""
    return ([W.astype(np.float64).tolist() for W in net.weights],
            [b.astype(np.float64).tolist() for b in net.biases],
            list(net.activations) + [net.output_activation])


def random_network(rng, sizes, hidden, output, dtype="float64"):
    net = fastbp.Network(sizes, activation=hidden, output_activation=output, dtype=dtype,
                         seed=int(rng.integers(1 << 30)))
    # non-zero biases so their gradients are exercised too
    net.set_weights(net.weights, [rng.normal(scale=0.3, size=b.shape) for b in net.biases])
    return net


def spy_on_trainer_runs(monkeypatch, before=None, after=None):
    """Make fit build a ``_kernels.Trainer`` whose every ``run(start, stop)``
    calls ``before(trainer, start, stop)`` and ``after(...)`` around the real
    one; a ``run_epochs`` call (many small epochs at once) counts as a run
    over positions [0, n_epochs * epoch_rows)."""
    from fastbp import _kernels

    class SpyTrainer(_kernels.Trainer):
        def run(self, start, stop):
            if before is not None:
                before(self, start, stop)
            result = super().run(start, stop)
            if after is not None:
                after(self, start, stop)
            return result

        def run_epochs(self, n_epochs, epoch_rows, data_sums, penalty_sums):
            if before is not None:
                before(self, 0, n_epochs * epoch_rows)
            result = super().run_epochs(n_epochs, epoch_rows, data_sums, penalty_sums)
            if after is not None:
                after(self, 0, n_epochs * epoch_rows)
            return result

    monkeypatch.setattr(_kernels, "Trainer", SpyTrainer)
    return SpyTrainer


def figures_module():
    """``tools/figures.py``, the one generator of the speed figures, loaded
    from the checkout (it is a script, not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "tools" / "figures.py"
    spec = importlib.util.spec_from_file_location("figures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_module(name: str):
    """Yield ``bench/<name>.py`` imported as a module (its main() does not
    run), for a module-scoped fixture; bench/ then leaves sys.path and its
    modules sys.modules (bench's distributed.py would shadow Dask's package
    in the worker processes of later tests)."""
    bench = str(Path(__file__).resolve().parents[1] / "bench")
    path, modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, bench)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path[:] = path
        for module in set(sys.modules) - modules:
            if bench in str(getattr(sys.modules[module], "__file__", None)):
                del sys.modules[module]


def local_dask_client(wait: float):
    """A fixture's body: a distributed Client of a LocalCluster of 2 worker
    processes of 1 thread on 127.0.0.1 (no dashboard), every wait at most
    ``wait`` seconds; closed, and the environment restored, after the yield."""
    import distributed
    # distributed's nanny writes OMP_NUM_THREADS=1 (and MKL_, OPENBLAS_) into
    # this process's environment for its workers; left there, every later
    # test saw one usable core (fastbp._runtime.default_threads) and never ran
    # the default multi-threaded paths
    environ = dict(os.environ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the port of a previous cluster still in use
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           silence_logs=50)
    client = distributed.Client(cluster, timeout=wait)
    client.wait_for_workers(2, timeout=wait)
    try:
        yield client
    finally:
        client.close(timeout=wait)
        cluster.close(timeout=wait)
        os.environ.clear()
        os.environ.update(environ)
