"""Nothing lost: no leaks, clear divergence, Ctrl-C keeps whole batches; plus the
bounds-check build's own check."""
import _thread
import gc
import os
import re
import signal
import threading
import time
import tracemalloc

import numpy as np
import pytest

import fastbp
from fastbp import _kernels, _objective, _runtime, _training, network
from helpers import spy_on_trainer_runs

MiB = 1 << 20


def rss_bytes():
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def params(net):
    return np.concatenate([a.ravel() for a in net.weights + net.biases])


# ---------------------------------------------------------------------------
# No leaks
# ---------------------------------------------------------------------------

@pytest.fixture
def workload():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(200, 20)), rng.uniform(size=(200, 3))
    net = fastbp.Network([20, 32, 3], activation="tanh", seed=0)
    net32 = net.astype("float32")
    opt = fastbp.SGD(lr=0.01, momentum=0.9)
    count = [0]

    def cycle():
        """One fit and one predict, taking turns over dtypes and kernel paths."""
        i = count[0] = count[0] + 1
        model = (net, net32)[i % 2]
        if i % 4 < 2:
            model.fit(X, Y, optimizer=opt, epochs=1, batch_size=16, seed=0)
        else:
            model.fit(X[:50], Y[:50], epochs=1, batch_size=1, shuffle=False, n_threads=1)
        model.predict(X)
        if i % 10 == 0:
            model.gradients(X[:10], Y[:10], l2=0.1)
            for bad in (X[:, :3], np.full_like(X, np.nan)):  # error paths too
                with pytest.raises(ValueError):
                    model.fit(bad, Y)
    return cycle


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_a_thousand_fit_and_predict_calls_keep_rss_flat(workload):
    for _ in range(100):  # warm up allocator arenas, BLAS buffers, caches
        workload()
    gc.collect()
    before = rss_bytes()
    for _ in range(1000):
        workload()
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 5 * MiB, f"RSS grew by {grown / MiB:.2f} MiB over 1000 cycles"


def test_a_thousand_fit_and_predict_calls_keep_no_python_objects(workload):
    for _ in range(20):
        workload()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(50):
            workload()
        gc.collect()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(1000):
            workload()
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # numpy reports its buffers to tracemalloc too, so this covers arrays
    assert after - before < 64 * 1024, f"traced memory grew by {after - before} bytes"


# ---------------------------------------------------------------------------
# Divergence: a clear error, the last finite weights
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_divergence_names_epoch_and_loss_and_keeps_the_last_finite_weights(dtype):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(64, 2)), rng.normal(size=(64, 1))
    make = lambda: fastbp.Network([2, 4, 1], activation="identity",
                                  output_activation="identity", dtype=dtype, seed=0)
    net, twin = make(), make()
    opt, twin_opt = fastbp.SGD(lr=0.6, momentum=0.3), fastbp.SGD(lr=0.6, momentum=0.3)
    with pytest.raises(fastbp.TrainingDiverged) as info:
        net.fit(X, Y, optimizer=opt, epochs=10, batch_size=8, shuffle=False)
    message = str(info.value)
    assert re.search(r"training diverged in epoch 2: the loss became non-finite at rows "
                     r"\d+\.\.\d+ of the epoch \(mean loss of epoch 2 before that: \S+ over "
                     r"its first \d+ rows; last finite epoch loss: [\d.e+]+\)", message), message
    assert "weights from the start of epoch 2 were restored" in message
    # the kept state is exactly that after epoch 1, velocity included
    first = twin.fit(X, Y, optimizer=twin_opt, epochs=1, batch_size=8, shuffle=False)
    assert info.value.history["loss"] == first["loss"]
    np.testing.assert_array_equal(params(net), params(twin))
    np.testing.assert_array_equal(opt.velocity(net), twin_opt.velocity(twin))
    assert np.isfinite(net.predict(X)).all()
    net.fit(X, Y, optimizer=fastbp.SGD(lr=1e-3), epochs=1)  # usable again


def test_divergence_in_the_first_batch_of_an_epoch_restores_the_epoch_before():
    # full batches: an epoch's only batch fails, so its starting weights are
    # bad too and the start of the epoch before is restored, velocity included
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(16, 2)), rng.normal(size=(16, 1))
    make = lambda: fastbp.Network([2, 4, 1], activation="identity",
                                  output_activation="identity", seed=0)
    net, opt = make(), fastbp.SGD(lr=1.0, momentum=0.5)
    with pytest.raises(fastbp.TrainingDiverged) as info:
        net.fit(X, Y, optimizer=opt, epochs=400, batch_size=16, shuffle=False)
    found = re.search(r"diverged in epoch (\d+): the loss became non-finite at rows 0\.\.15 .*"
                      r"the weights from the start of epoch (\d+) were restored", str(info.value))
    assert found, str(info.value)
    diverged, restored = map(int, found.groups())
    assert restored == diverged - 1 >= 2
    twin, twin_opt = make(), fastbp.SGD(lr=1.0, momentum=0.5)
    twin.fit(X, Y, optimizer=twin_opt, epochs=restored - 1, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(params(net), params(twin))
    np.testing.assert_array_equal(opt.velocity(net), twin_opt.velocity(twin))


# ---------------------------------------------------------------------------
# Ctrl-C: prompt, and the weights of the last completed batch
# ---------------------------------------------------------------------------

needs_default_sigint = pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="the runner replaced Python's SIGINT handler")


def replay(make, X, Y, seed, epochs_done, rows_done, fit_kwargs, optimizer):
    """A fresh network trained on exactly the rows a fit had finished."""
    net = make()
    if epochs_done:
        net.fit(X, Y, optimizer=optimizer, epochs=epochs_done, seed=seed, **fit_kwargs)
    if rows_done:
        rng = np.random.default_rng(seed)
        for _ in range(epochs_done):
            rng.permutation(len(X))
        order = rng.permutation(len(X))[:rows_done]
        net.fit(X[order], Y[order], optimizer=optimizer, epochs=1, shuffle=False, **fit_kwargs)
    return net


@needs_default_sigint
@pytest.mark.parametrize("batch_size,momentum", [(1, 0.0), (8, 0.9)])
@pytest.mark.parametrize("at_call", [1, 3, 7])
def test_ctrl_c_between_kernel_calls_keeps_exactly_the_finished_batches(
        monkeypatch, batch_size, momentum, at_call):
    monkeypatch.setattr(_training, "FIT_CALL_FLOPS", 2000.0)  # a few rows per call
    calls = []

    def kernel_then_ctrl_c(trainer, start, stop):
        calls.append((start, stop))
        if len(calls) == at_call:
            _thread.interrupt_main()  # as if Ctrl-C came during this call

    spy = spy_on_trainer_runs(monkeypatch, after=kernel_then_ctrl_c)
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(20, 5)), rng.uniform(size=(20, 2))
    make = lambda: fastbp.Network([5, 6, 2], seed=2)
    net = make()
    fit_kwargs = dict(batch_size=batch_size)
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, Y, optimizer=fastbp.SGD(lr=0.1, momentum=momentum), epochs=50, seed=3,
                **fit_kwargs)
    assert len(calls) == at_call  # no kernel call after the interrupt
    epoch, rows = map(int, re.search(r"fit stopped in epoch (\d+) after (\d+) of its 20 rows",
                                     info.value.__notes__[-1]).groups())
    assert rows == calls[-1][1] % 20 or (rows == 0 and calls[-1][1] == 20)
    assert len(info.value.history["loss"]) == epoch - 1
    monkeypatch.setattr(_kernels, "Trainer", spy.__base__)
    twin = replay(make, X, Y, 3, epoch - 1, rows, fit_kwargs,
                  fastbp.SGD(lr=0.1, momentum=momentum))
    np.testing.assert_array_equal(params(net), params(twin))
    # usable: the lock is free and Python's own Ctrl-C handler is back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    net.fit(X, Y, epochs=1)
    assert np.isfinite(net.predict(X)).all()


@needs_default_sigint
def test_ctrl_c_during_the_last_call_still_stops_the_program(monkeypatch):
    net = fastbp.Network([3, 4, 1], seed=0)
    X, Y = np.ones((10, 3)), np.zeros((10, 1))
    spy = spy_on_trainer_runs(monkeypatch, after=lambda *_: _thread.interrupt_main())
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, Y, epochs=1, batch_size=10)
    assert "already finished all its epochs" in info.value.__notes__[-1]
    assert len(info.value.history["loss"]) == 1
    monkeypatch.setattr(_kernels, "Trainer", spy.__base__)
    twin = fastbp.Network([3, 4, 1], seed=0)
    twin.fit(X, Y, epochs=1, batch_size=10)
    np.testing.assert_array_equal(params(net), params(twin))


@needs_default_sigint
def test_ctrl_c_lands_promptly_in_a_long_epoch():
    # one epoch of ~3 s of per-sample training; Ctrl-C after 0.3 s
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(40000, 100)), rng.uniform(size=(40000, 10))
    net = fastbp.Network([100, 300, 300, 10], seed=0)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt) as info:
        net.fit(X, Y, epochs=1, batch_size=1, optimizer=fastbp.SGD(lr=1e-4), n_threads=1)
    latency = time.perf_counter() - started - 0.3
    timer.join()
    rows = int(re.search(r"after (\d+) of its", info.value.__notes__[-1]).group(1))
    assert 0 < rows < 40000
    assert latency < 1.5, f"Ctrl-C took {latency:.2f} s to stop the fit"
    assert np.isfinite(net.predict(X[:5])).all()


def test_fits_in_other_threads_leave_sigint_alone():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(
        fastbp.Network([2, 1], seed=0).fit(np.ones((4, 2)), np.zeros((4, 1)))))
    before = signal.getsignal(signal.SIGINT)
    thread.start()
    thread.join()
    assert seen and signal.getsignal(signal.SIGINT) is before


def test_a_custom_sigint_handler_is_respected(monkeypatch):
    handled = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: handled.append(signum))
    try:
        net = fastbp.Network([2, 3, 1], seed=0)
        X, Y = np.ones((8, 2)), np.zeros((8, 1))
        spy_on_trainer_runs(monkeypatch, before=lambda *_: _thread.interrupt_main())
        net.fit(X, Y, epochs=2, batch_size=4)  # the program's handler decides: no exception
        assert handled
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------
# The bounds-checked build (tools/debug_kernel_tests.sh sets the variable)
# ---------------------------------------------------------------------------

@pytest.mark.skipif(os.environ.get("FASTBP_EXPECT_DEBUG_KERNELS") != "1",
                    reason="only against the FASTBP_DEBUG_KERNELS=1 build")
def test_the_debug_build_checks_bounds():
    # db is one entry short: the release build would write past it
    z_prev, delta, W = np.ones((2, 3)), np.ones((2, 4)), np.ones((3, 4))
    dW, db = np.empty((3, 4)), np.empty(3)
    with pytest.raises(IndexError):
        _kernels.layer_gradients(z_prev, delta, W, 0.0, dW, db)
    # and it is the scratch build under test, not an installed release one
    assert _kernels.__file__.startswith(os.environ["FASTBP_DEBUG_BUILD_DIR"])


# ---------------------------------------------------------------------------
# Memory O(batch + weights): no array as large as X besides the output
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_first_nonfinite_finds_the_first_bad_value_anywhere(dtype):
    rng = np.random.default_rng(3)
    values = rng.normal(size=5000).astype(dtype)
    values[::7] = 0.0
    values[1::11] = -0.0
    values[5] = np.finfo(dtype).max
    values[6] = np.finfo(dtype).tiny / 4  # subnormal
    assert _kernels.first_nonfinite(values) == -1
    assert _kernels.first_nonfinite(values[:0]) == -1
    for position in (0, 3, 1023, 1024, 1027, 2047, 4097, 4999):
        for bad in (np.nan, np.inf, -np.inf):
            spoiled = values.copy()
            spoiled[position] = bad
            spoiled[min(position + 500, 4999)] = np.nan  # a later one is not reported
            assert _kernels.first_nonfinite(spoiled) == position, (position, bad)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_first_nonfinite_finds_the_first_bad_value_of_a_large_array(dtype):
    # many scan blocks of 1024: the first bad one is searched, the rest skipped
    values = np.ones(200_003, dtype)
    assert _kernels.first_nonfinite(values) == -1
    for position in (0, 65535, 65536, 131071, 200_002):
        spoiled = values.copy()
        spoiled[position] = np.inf
        assert _kernels.first_nonfinite(spoiled) == position


@pytest.mark.parametrize("bad", [np.ones((2, 3)), np.ones(6)[::2], np.arange(6),
                                 np.ones(6, ">f8"), np.ones(6, np.float16)])
def test_first_nonfinite_refuses_what_it_cannot_scan(bad):
    with pytest.raises(TypeError, match="1-D C-contiguous float32 or float64"):
        _kernels.first_nonfinite(bad)


def _peak_traced(call):
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_memory_beyond_the_output_does_not_grow_with_the_rows(dtype):
    cols = 100
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60_000, cols)).astype(dtype)  # 24 or 48 MB
    Y = rng.uniform(size=(60_000, 2)).astype(dtype)
    net = fastbp.Network([cols, 8, 2], dtype=dtype, seed=0)
    calls = {
        "predict": lambda rows: net.predict(X[:rows]),
        "loss": lambda rows: net.loss(X[:rows], Y[:rows]),
        "gradients": lambda rows: net.gradients(X[:rows], Y[:rows]),
        "fit": lambda rows: net.fit(X[:rows], Y[:rows], batch_size=256, shuffle=False,
                                    n_threads=1),
    }
    for name, call in calls.items():
        call(100)  # first-call allocations
        small, large = (_peak_traced(lambda: call(rows)) for rows in (20_000, 60_000))
        # 40 000 more rows: predict's output grows by 40 000 x 2 values; an
        # isfinite mask or a whole-X workspace would grow by megabytes
        allowed = (40_000 * 2 * X.itemsize if name == "predict" else 0) + 256 * 1024
        assert large - small < allowed, (name, small, large)
    X[30_000, 7] = np.inf
    with pytest.raises(ValueError, match=r"first at \[30000, 7\]"):
        net.predict(X)


def _flat(result):
    """predict's or loss's result, or gradients' (dW, db) lists, as one 1-D array."""
    if isinstance(result, tuple):
        return np.concatenate([np.ravel(a) for part in result for a in part])
    return np.ravel(result)


@pytest.mark.parametrize("layout", ["float64", "int32", "fortran", "strided"])
def test_input_that_needs_converting_is_converted_a_chunk_at_a_time(layout):
    cols = 100
    rng = np.random.default_rng(5)
    base = rng.normal(size=(60_000, cols)) * (30 if layout == "int32" else 1)
    X = {"float64": base, "int32": base.astype(np.int32), "fortran": np.asfortranarray(
        base.astype(np.float32)), "strided": np.repeat(base.astype(np.float32), 2, axis=1)[:, ::2]}[
        layout]
    Y = rng.uniform(size=(60_000, 2)).astype(np.float32)
    net = fastbp.Network([cols, 8, 2], dtype="float32", seed=0)
    native = np.ascontiguousarray(X, dtype=np.float32)
    for name, call in {"predict": lambda A, rows: net.predict(A[:rows]),
                       "loss": lambda A, rows: net.loss(A[:rows], Y[:rows]),
                       "gradients": lambda A, rows: net.gradients(A[:rows], Y[:rows])}.items():
        # the same numbers as from the converted array
        np.testing.assert_array_equal(_flat(call(X, 20_000)), _flat(call(native, 20_000)))
        call(X, 100)
        small, large = (_peak_traced(lambda: call(X, rows)) for rows in (20_000, 60_000))
        # a whole converted copy would grow by 40 000 x 100 x 4 bytes = 16 MB
        allowed = (40_000 * 2 * 4 if name == "predict" else 0) + 256 * 1024
        assert large - small < allowed, (name, small, large)


def test_a_bad_value_in_a_later_chunk_is_reported_for_the_whole_array(monkeypatch):
    monkeypatch.setattr(network, "CHUNK_ROWS", 4)  # predict's
    monkeypatch.setattr(_objective, "OBJECTIVE_CHUNK_ROWS", 4)  # loss's and gradients'
    net = fastbp.Network([3, 4, 2], dtype="float32", seed=0)
    X = np.zeros((20, 3))  # float64: converted a chunk at a time
    X[13, 2], X[17, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"X contains 2 NaN or infinite value\(s\), first at "
                                         r"\[13, 2\]"):
        net.predict(X)
    X[13, 2], X[17, 0] = 1e300, 0.0  # finite in float64, not in float32
    for call in (lambda: net.predict(X), lambda: net.loss(X, np.zeros((20, 2))),
                 lambda: net.gradients(X, np.zeros((20, 2)))):
        with pytest.raises(ValueError, match=r"X\[13, 2\] = .*1e\+300.* overflows float32"):
            call()
