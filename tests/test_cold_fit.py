"""fit(n_threads=k) on minibatches too small for fastbp's own threads takes the
lean path (fastbp._lean), holding the BLAS limit k around its kernel call as
the full path's thread settings do; with threads of fastbp's own it keeps the
full path. Same bits either way."""
import numpy as np
import pytest

import fastbp
from fastbp import _fitting, _runtime, _training

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 8)
Y = np.array([[0.0], [1.0], [1.0], [0.0]] * 8)


def xor_net(dtype="float64"):
    return fastbp.Network([2, 2, 1], activation="sigmoid", output_activation="sigmoid",
                          seed=0, dtype=dtype)


def count_lean_fits(monkeypatch) -> list:
    calls = []
    real = _fitting.lean_fit

    def counted(*args):
        result = real(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(_fitting, "lean_fit", counted)
    return calls


def record_blas_limits(monkeypatch) -> list:
    """Log ("enter", k) and ("exit", k) of every BLAS limit held."""
    log = []
    real = _runtime.blas_threads.limit

    class Recorded:
        def __init__(self, n_threads):
            self.n_threads, self.inner = n_threads, real(n_threads)

        def __enter__(self):
            log.append(("enter", self.n_threads))
            return self.inner.__enter__()

        def __exit__(self, *exc_info):
            log.append(("exit", self.n_threads))
            return self.inner.__exit__(*exc_info)

    monkeypatch.setattr(_runtime.blas_threads, "limit", Recorded)
    return log


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("epochs", [1, 5])
def test_minibatch_fits_with_n_threads_are_lean_and_hold_the_blas_limit(
        monkeypatch, dtype, epochs):
    full = xor_net(dtype)
    monkeypatch.setattr(_training.TrainingLoop, "one_call", lambda *args: False)
    full_history = full.fit(X, Y, batch_size=8, epochs=epochs, n_threads=1, seed=3)
    monkeypatch.undo()
    lean_fits = count_lean_fits(monkeypatch)
    limits = record_blas_limits(monkeypatch)
    net = xor_net(dtype)
    history = net.fit(X, Y, batch_size=8, epochs=epochs, n_threads=1, seed=3)
    assert lean_fits == [True]
    assert limits == [("enter", 1), ("exit", 1)]
    np.testing.assert_array_equal(net.params, full.params)
    assert history["loss"] == full_history["loss"]


def test_lean_fit_releases_the_blas_limit_when_the_kernel_raises(monkeypatch):
    limits = record_blas_limits(monkeypatch)
    net = xor_net()
    net.fit(X, Y, batch_size=8, n_threads=1)  # keeps its trainer for the next fit
    limits.clear()

    class Broken(Exception):
        pass

    kept = net.__dict__["_lean_trainer"]

    class Raising:
        def __getattr__(self, name):
            return getattr(kept[2], name)

        def run(self, *args):
            raise Broken()

    net._lean_trainer = (kept[0], kept[1], Raising(), *kept[3:])  # as kept: the next fit takes it
    with pytest.raises(Broken):
        net.fit(X, Y, batch_size=8, n_threads=1)
    assert limits == [("enter", 1), ("exit", 1)]
    assert _runtime.blas_threads._users == 0


def test_per_sample_and_default_thread_fits_hold_no_blas_limit(monkeypatch):
    limits = record_blas_limits(monkeypatch)
    lean_fits = count_lean_fits(monkeypatch)
    net = xor_net()
    net.fit(X, Y, batch_size=1, n_threads=1)
    net.fit(X, Y, batch_size=8)
    assert lean_fits == [True, True]
    assert limits == []


def test_fits_on_threads_of_fastbps_own_keep_the_full_path(monkeypatch):
    sizes = [64, 256, 10]
    batch_size = 512
    if _runtime.own_training_threads(sizes, batch_size, 2, False) < 2:
        pytest.skip("no threads of fastbp's own here")
    lean_fits = count_lean_fits(monkeypatch)
    rng = np.random.default_rng(0)
    X_big = rng.standard_normal((batch_size, 64))
    Y_big = np.eye(10)[rng.integers(0, 10, batch_size)]
    net = fastbp.Network(sizes, output_activation="softmax", seed=0)
    net.fit(X_big, Y_big, batch_size=batch_size, n_threads=2)
    assert lean_fits == []
