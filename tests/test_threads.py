"""Threads: kernels without the GIL, parallel training, the same network shared
between threads, BLAS thread limits, and bit-identical results."""
import hashlib
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastbp
from fastbp import _kernels, _runtime, _training, network
from helpers import spy_on_trainer_runs


def blas_threads():
    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


def run_in_thread(target):
    """Start ``target`` in a thread; return (thread, box) where box gets its result."""
    box = {}

    def body():
        try:
            box["result"] = target()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    return thread, box


def finish(thread, box):
    thread.join(timeout=120)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box.get("result")


# ---------------------------------------------------------------------------
# Kernels run without the GIL
# ---------------------------------------------------------------------------

def main_thread_blocked_fraction(call):
    """Run ``call`` in a thread while this thread spins in Python.

    Returns the fraction of the call's wall time during which this thread
    could not run for 20 ms or more: about 0 if the call releases the GIL,
    about 1 if it holds it (then the spinning thread waits for every kernel).
    """
    started = last = time.perf_counter()  # before start(): it waits for the GIL too
    thread, box = run_in_thread(call)
    blocked = 0.0
    while thread.is_alive():
        now = time.perf_counter()
        if now - last > 0.02:
            blocked += now - last
        last = now
    total = time.perf_counter() - started
    finish(thread, box)
    return blocked / total, total


def _big(rows, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, n_in)), rng.uniform(size=(rows, n_out))


# each 0.1-0.5 s on one core of the CI machine (gradients took 0.097 s on 4000 rows)
LONG_CALLS = {
    # one predict thread: predict's own threads (all cores by default) would
    # take the probe's core and measure the scheduler, not the GIL
    "predict": lambda net, X, Y: net.predict(X, n_threads=1),
    "gradients": lambda net, X, Y: net.gradients(X, Y),
    "fit per sample": lambda net, X, Y: net.fit(X[:3000], Y[:3000], batch_size=1, epochs=1,
                                                optimizer=fastbp.SGD(lr=0.001)),
    "fit minibatch": lambda net, X, Y: net.fit(X, Y, batch_size=64, epochs=1, n_threads=1,
                                               optimizer=fastbp.SGD(lr=0.001, momentum=0.9)),
}


@pytest.mark.parametrize("name", sorted(LONG_CALLS))
def test_long_kernels_release_the_gil(name):
    net = fastbp.Network([100, 300, 300, 10], activation="tanh", seed=0)
    X, Y = _big(10000, 100, 10)
    with threadpool_limits(limits=1, user_api="blas"):  # the cores are for the two threads
        fraction, seconds = main_thread_blocked_fraction(lambda: LONG_CALLS[name](net, X, Y))
    assert seconds > 0.1, "the call is too short to tell"
    assert fraction < 0.5, f"{name}: this thread was blocked {fraction:.0%} of {seconds:.2f} s"


def test_the_gil_probe_sees_a_call_that_holds_the_gil():
    # the probe itself can fail: list.sort on floats never releases the GIL
    data = np.random.default_rng(0).random(1_000_000).tolist()
    fraction, seconds = main_thread_blocked_fraction(lambda: sorted(data))
    assert fraction > 0.8, (fraction, seconds)


# ---------------------------------------------------------------------------
# Different networks in parallel threads
# ---------------------------------------------------------------------------

def assert_two_threads_match_one(results, dtype):
    """results[n_threads] = (parameters, losses): 2 threads give 1 thread's."""
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(results[2][0], results[1][0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(results[2][1], results[1][1], rtol=rtol)


def _params(net):
    return np.concatenate([a.ravel() for a in net.weights + net.biases])


@pytest.mark.parametrize("batch_size,n_threads", [(1, None), (32, 1)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_networks_in_two_threads_equal_one_after_the_other(batch_size, n_threads, dtype):
    X, Y = _big(3000, 20, 4, seed=1)
    kwargs = dict(loss="mse", epochs=3, batch_size=batch_size, seed=5, n_threads=n_threads)

    def make(seed):
        return fastbp.Network([20, 64, 32, 4], activation="relu", dtype=dtype, seed=seed)

    sequential = []
    for seed in (1, 2):
        net = make(seed)
        history = net.fit(X, Y, optimizer=fastbp.SGD(lr=0.01, momentum=0.5), **kwargs)
        sequential.append((_params(net), history["loss"]))

    nets = [make(1), make(2)]
    start = threading.Barrier(2)

    def train(net):
        start.wait()
        return net.fit(X, Y, optimizer=fastbp.SGD(lr=0.01, momentum=0.5), **kwargs)

    threads = [run_in_thread(lambda net=net: train(net)) for net in nets]
    histories = [finish(*t) for t in threads]
    for net, history, (params, losses) in zip(nets, histories, sequential):
        np.testing.assert_array_equal(_params(net), params)
        assert history["loss"] == losses


def test_one_optimizer_shared_by_two_threads_keeps_one_velocity_per_network():
    X, Y = _big(2000, 10, 3, seed=2)
    opt = fastbp.SGD(lr=0.05, momentum=0.9)
    nets = [fastbp.Network([10, 16, 3], seed=s) for s in (1, 2)]
    threads = [run_in_thread(lambda net=net: net.fit(X, Y, optimizer=opt, epochs=2,
                                                     batch_size=8, seed=0)) for net in nets]
    for t in threads:
        finish(*t)
    for seed, net in zip((1, 2), nets):
        alone = fastbp.Network([10, 16, 3], seed=seed)
        alone.fit(X, Y, optimizer=fastbp.SGD(lr=0.05, momentum=0.9), epochs=2, batch_size=8,
                  seed=0)
        np.testing.assert_array_equal(_params(net), _params(alone))


# ---------------------------------------------------------------------------
# One network shared between threads
# ---------------------------------------------------------------------------

def _wait_until_training(net, thread):
    deadline = time.perf_counter() + 30
    while not net._training:
        assert thread.is_alive() and time.perf_counter() < deadline, "fit never started"
        time.sleep(0.001)


def test_second_fit_on_the_same_network_is_refused_and_harmless():
    X, Y = _big(20000, 30, 3, seed=3)
    net = fastbp.Network([30, 64, 3], seed=0)
    twin = net.copy()
    fit = lambda: net.fit(X, Y, epochs=3, batch_size=1, seed=0, optimizer=fastbp.SGD(lr=0.01))
    thread, box = run_in_thread(fit)
    _wait_until_training(net, thread)
    with pytest.raises(RuntimeError, match="fit is already running"):
        net.fit(X, Y, epochs=1)
    with pytest.raises(RuntimeError, match="cannot set the weights while fit"):
        net.set_weights(net.weights, net.biases)
    finish(thread, box)
    # the refused calls left no trace: the fit equals one run alone
    twin.fit(X, Y, epochs=3, batch_size=1, seed=0, optimizer=fastbp.SGD(lr=0.01))
    np.testing.assert_array_equal(_params(net), _params(twin))
    net.set_weights(twin.weights, twin.biases)  # allowed again once fit returned
    net.fit(X[:10], Y[:10])


def test_readers_during_fit_see_whole_snapshots_and_do_not_disturb_it(tmp_path, monkeypatch):
    # Publish after every few batches, so readers overlap many weight changes.
    monkeypatch.setattr(_training, "FIT_CALL_FLOPS", 1e5)
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(6000, 8)), rng.normal(size=(6000, 3))
    net = fastbp.Network([8, 32, 3], activation="tanh", output_activation="identity", seed=0)
    twin = net.copy()
    # one sample repeated: every row of any prediction from one snapshot is the same
    probe = np.repeat(rng.normal(size=(1, 8)), 3000, axis=0)
    kwargs = dict(epochs=30, batch_size=1, seed=0, optimizer=fastbp.SGD(lr=0.001))
    thread, box = run_in_thread(lambda: net.fit(X, Y, **kwargs))
    _wait_until_training(net, thread)
    seen, refused = set(), 0
    clone = net.copy()
    before = clone.predict(probe)
    while thread.is_alive():
        out = net.predict(probe)
        assert (out == out[0]).all(), "a prediction mixed two sets of weights"
        seen.add(out[0].tobytes())
        dW, db = net.gradients(probe[:5], Y[:5])
        assert all(np.isfinite(g).all() for g in dW + db)
        net.copy()
        net.save(tmp_path / "during.npz")
        assert fastbp.load(tmp_path / "during.npz").sizes == net.sizes
        try:
            net.set_weights(net.weights, net.biases)
        except RuntimeError:
            refused += 1
    finish(thread, box)
    assert len(seen) > 3, "the readers did not overlap the training"
    assert refused > 0
    np.testing.assert_array_equal(clone.predict(probe), before)  # a copy is independent
    twin.fit(X, Y, **kwargs)
    np.testing.assert_array_equal(_params(net), _params(twin))


# ---------------------------------------------------------------------------
# BLAS thread limits
# ---------------------------------------------------------------------------

def test_overlapping_blas_limits_restore_the_original():
    original = blas_threads()
    limiter = _runtime.BlasThreads()
    first = limiter.limit(1)
    second = limiter.limit(2)
    first.__enter__()
    assert blas_threads() == [1]
    second.__enter__()
    assert blas_threads() == [1]  # a later fit never raises the limit under a running one
    first.__exit__(None, None, None)
    assert blas_threads() == [1]  # the second is still running
    second.__exit__(None, None, None)
    assert blas_threads() == original


def test_a_limit_the_blas_already_keeps_changes_nothing(monkeypatch):
    original = blas_threads()
    limiter = _runtime.BlasThreads()
    with limiter.limit(max(original)) as effective:  # builds the controller
        assert effective == max(original)
    calls = []
    real_lower = limiter._lower
    monkeypatch.setattr(limiter, "_lower",
                        lambda libraries, n: calls.append(n) or real_lower(libraries, n))
    with limiter.limit(max(original) + 1) as effective:
        assert effective == max(original)
        with limiter.limit(max(original)):  # nested, at the limit in force: no change
            pass
    assert calls == [] and blas_threads() == original
    # below the limit in force it still lowers it, and the last one out restores
    if max(original) > 1:
        with limiter.limit(max(original)):
            with limiter.limit(1) as effective:
                assert effective == 1 and blas_threads() == [1]
            assert blas_threads() == [1]  # the outer fit is still running
        assert len(calls) == 1 and blas_threads() == original


def test_blas_limits_set_and_restored_from_different_threads_take_effect():
    # threadpoolctl >= 3.8 obeys only one "controlling" thread per process;
    # fits in worker threads must still lower the limit after a fit in the
    # main thread did, or their gemm calls share one 2-thread pool
    original = blas_threads()
    if original == [1]:
        pytest.skip("the BLAS runs one thread already: a limit of 1 changes nothing")
    limiter = _runtime.BlasThreads()
    with limiter.limit(1):  # the main thread sets and restores first
        assert blas_threads() == [1]
    assert blas_threads() == original
    first, second = limiter.limit(1), limiter.limit(1)
    finish(*run_in_thread(first.__enter__))  # a worker sets the limit
    assert blas_threads() == [1]
    finish(*run_in_thread(second.__enter__))
    finish(*run_in_thread(lambda: first.__exit__(None, None, None)))
    assert blas_threads() == [1]  # the second is still running
    second.__exit__(None, None, None)  # the main thread is last out and restores
    assert blas_threads() == original
    with limiter.limit(1):  # and can still set the limit afterwards
        assert blas_threads() == [1]


def test_a_worker_lowers_the_limit_while_the_main_thread_keeps_threadpoolctls_control():
    # a program that calls threadpool_limits(n) once, without "with", keeps
    # control in its main thread for good; threadpoolctl then ignores limits
    # set in other threads, and predict(n_threads=1) calls in a thread pool
    # shared one BLAS pool (0.97x the speed of running them in turn)
    from threadpoolctl import OpenBLASController
    original = blas_threads()
    if original == [1]:
        pytest.skip("the BLAS runs one thread already: a limit of 1 changes nothing")
    if not hasattr(OpenBLASController, "_SHARED_STATE"):
        pytest.skip("threadpoolctl < 3.8 lets any thread set the limit")
    state = OpenBLASController._SHARED_STATE
    threadpool_limits(limits=max(original), user_api="blas")  # and never restored
    try:
        assert state.controlling_thread is threading.current_thread()
        limiter = _runtime.BlasThreads()
        worker_limit = limiter.limit(1)
        finish(*run_in_thread(worker_limit.__enter__))
        assert blas_threads() == [1]
        finish(*run_in_thread(lambda: worker_limit.__exit__(None, None, None)))
        assert blas_threads() == original
        # control went back to the main thread, whose limits still take effect
        assert state.controlling_thread is threading.current_thread()
        threadpool_limits(limits=1, user_api="blas")
        assert blas_threads() == [1]
    finally:
        threadpool_limits(limits=max(original), user_api="blas")
        OpenBLASController.clear_controlling_thread(force=True)
    assert blas_threads() == original


SMALL_STACK_SCRIPT = textwrap.dedent("""
    import threading
    import numpy as np, fastbp
    net = fastbp.Network([784, 256, 10], dtype="float32", seed=0)
    X = np.random.default_rng(0).normal(size=(64, 784)).astype("float32")
    expected = net.predict(X, n_threads=1)
    threading.stack_size(32 * 1024)  # the least Python allows
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("out", net.predict(X, n_threads=1)))
    worker.start()
    worker.join()
    print(np.array_equal(box["out"], expected))
""")


def test_products_run_in_a_thread_of_the_smallest_stack():
    # the tiles copy panels of B into a 32 KiB buffer: on the stack it
    # overflowed a 32 KiB thread stack (a segfault), so it lives on the heap
    run = subprocess.run([sys.executable, "-c", SMALL_STACK_SCRIPT], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "True"


def test_concurrent_fits_with_n_threads_leave_the_blas_limit_as_found():
    original = blas_threads()
    X, Y = _big(4000, 20, 3, seed=6)
    start = threading.Barrier(3)

    def train(epochs):
        net = fastbp.Network([20, 200, 3], seed=0)
        start.wait()
        net.fit(X, Y, epochs=epochs, batch_size=200, n_threads=1)

    threads = [run_in_thread(lambda e=e: train(e)) for e in (1, 2, 3)]
    for t in threads:
        finish(*t)
    assert blas_threads() == original


# ---------------------------------------------------------------------------
# Same seed, same bits
# ---------------------------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np, fastbp
    from fastbp import _kernels
    if not _kernels.tiled_gemm_in_use():  # tests/helpers.py: products_independent_of_splits
        _kernels.set_blas_min_flops(2 ** 62)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(600, 30)), rng.uniform(size=(600, 4))
    digest = hashlib.sha256()
    for dtype in ("float64", "float32"):
        for batch, opt in ((1, fastbp.SGD(lr=0.05)), (16, fastbp.SGD(lr=0.05, momentum=0.9)),
                           (600, fastbp.SGD(lr=0.5, momentum=0.9, nesterov=True))):
            net = fastbp.Network([30, 50, 20, 4], activation="tanh", dtype=dtype, seed=7)
            net.fit(X, Y, epochs=3, batch_size=batch, optimizer=opt, seed=11,
                    n_threads=int(sys.argv[1]))
            for a in net.weights + net.biases:
                digest.update(a.tobytes())
    print(digest.hexdigest())
""")


def test_same_seed_gives_bit_identical_weights_in_fresh_processes():
    runs = [subprocess.run([sys.executable, "-c", SCRIPT, threads], capture_output=True,
                           text=True, check=True).stdout.strip() for threads in ("1", "1", "2")]
    assert len(runs[0]) == 64 and runs[0] == runs[1]
    # batch 600 runs on fastbp's own threads: without the AVX-512 tiles, the
    # script's products run as loops, whose sums do not depend on the split
    assert runs[2] == runs[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_per_sample_training_is_bit_identical_at_any_blas_threads(dtype):
    X, Y = _big(2000, 40, 5, seed=8)
    results = []
    for n_threads in (1, 2):
        net = fastbp.Network([40, 128, 5], dtype=dtype, seed=3)
        net.fit(X, Y, epochs=2, batch_size=1, seed=0, n_threads=n_threads,
                optimizer=fastbp.SGD(lr=0.01))
        results.append(_params(net))
    np.testing.assert_array_equal(*results)


def test_fit_is_the_same_whatever_the_call_size(monkeypatch):
    # splitting epochs into calls must not change a bit, shuffled or not
    X, Y = _big(1000, 12, 3, seed=9)
    results = {}
    for flops in (1e18, 1.0, 3e4):  # one call per epoch, one batch per call, a few
        monkeypatch.setattr(_training, "FIT_CALL_FLOPS", flops)
        for batch, shuffle in ((1, True), (7, True), (7, False), (64, True)):
            net = fastbp.Network([12, 20, 3], seed=0)
            history = net.fit(X, Y, epochs=2, batch_size=batch, shuffle=shuffle, seed=4,
                              optimizer=fastbp.SGD(lr=0.05, momentum=0.5))
            results.setdefault((batch, shuffle), []).append((_params(net), history["loss"]))
    for (first, loss_1), *others in results.values():
        for second, loss_2 in others:
            np.testing.assert_array_equal(first, second)
            # the epoch loss is summed per call: the same up to rounding
            np.testing.assert_allclose(loss_1, loss_2, rtol=1e-14)


def _digest(net):
    return hashlib.sha256(_params(net).tobytes()).hexdigest()


def test_kernel_calls_are_bounded_in_work(monkeypatch):
    calls = []
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: calls.append(
        stop - start))
    X, Y = _big(20005, 50, 5, seed=10)
    net = fastbp.Network([50, 100, 5], seed=0)
    flops_per_row = 6 * (50 * 100 + 100 * 5)
    for batch, momentum, budget in ((10, 0.9, 4e9), (1, 0.0, 1e9)):
        calls.clear()
        net.fit(X, Y, epochs=1, batch_size=batch,
                optimizer=fastbp.SGD(lr=1e-3, momentum=momentum))
        rows = int(budget // flops_per_row) // batch * batch
        assert calls == [rows] * (20005 // rows) + [20005 % rows]


# ---------------------------------------------------------------------------
# Minibatches split over fit's own threads
# ---------------------------------------------------------------------------

def _spy_on_threaded_runs(monkeypatch):
    """Record (own threads, BLAS limits) of every Trainer run, with the
    own-thread threshold lowered so that small test nets take that path."""
    seen = []
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: seen.append(
        (trainer.n_threads, blas_threads())))
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    return seen


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_on_its_own_threads_matches_one_thread_and_holds_blas_to_one(monkeypatch, dtype):
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    X, Y = _big(700, 20, 4, seed=3)
    seen = _spy_on_threaded_runs(monkeypatch)
    results = {}
    for n_threads in (1, 2):
        net = fastbp.Network([20, 64, 32, 4], activation="tanh", dtype=dtype, seed=4)
        history = net.fit(X, Y, epochs=3, batch_size=50, seed=2, n_threads=n_threads,
                          optimizer=fastbp.SGD(lr=0.05, momentum=0.9))
        results[n_threads] = (_params(net), history["loss"])
    assert {threads for threads, _ in seen} == {1, 2}
    assert all(limit == [1] for threads, limit in seen if threads == 2)
    assert_two_threads_match_one(results, dtype)


def test_networks_of_many_weights_leave_the_threads_to_the_blas(monkeypatch):
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    small, large = [20, 64, 4], [1024, 1025, 4]  # 1.5e3 and 1.05e6 > 2**20 weights
    with _runtime.training_threads(small, 50, 2, per_sample=False) as own:
        assert own == (2 if _kernels.HAVE_THREADS else 1)
    with _runtime.training_threads(large, 50, 2, per_sample=False) as own:
        assert own == 1
        if max(blas_threads()) >= 2:  # the BLAS gets the 2 threads instead
            assert blas_threads() == [2]
    monkeypatch.setattr(_runtime, "OWN_THREADS_MAX_WEIGHTS", 2 ** 21)
    with _runtime.training_threads(large, 50, 2, per_sample=False) as own:
        assert own == (2 if _kernels.HAVE_THREADS else 1)


def test_float32_networks_keep_their_own_threads_up_to_a_larger_size(monkeypatch):
    # in float32 the tiles take the products of large layers too, and
    # fastbp's threads beat the BLAS's on 1024-2048-2048-10; not in float64
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    large, larger = [1024, 1025, 4], [1024, 2048, 2048, 10]  # 1.05e6 and 6.3e6 weights
    for sizes in (large, larger):
        with _runtime.training_threads(sizes, 50, 2, per_sample=False, itemsize=4) as own:
            assert own == (2 if _kernels.HAVE_THREADS else 1)
        with _runtime.training_threads(sizes, 50, 2, per_sample=False, itemsize=8) as own:
            assert own == 1
    huge = [4096, 4096, 10]  # 1.7e7 weights > 2**23
    with _runtime.training_threads(huge, 50, 2, per_sample=False, itemsize=4) as own:
        assert own == 1


def test_own_threads_start_at_a_float64_batch_of_8e6_flops_and_a_float32_one_of_2e7():
    # 6 x weights x batch: 64-100-10 (7400 weights) at 200 rows is 8.9e6 FLOPs,
    # at 128 rows 5.7e6; 256-256-256-10 (133 632) at 32 rows 2.6e7
    own = 2 if _kernels.HAVE_THREADS else 1
    for sizes, batch, itemsize, expected in (([64, 100, 10], 200, 8, own),
                                             ([64, 100, 10], 128, 8, 1),
                                             ([64, 100, 10], 200, 4, 1),
                                             ([64, 100, 10], 512, 4, own),
                                             ([256, 256, 256, 10], 32, 4, own),
                                             ([784, 128, 10], 32, 4, 1)):
        with _runtime.training_threads(sizes, batch, 2, per_sample=False,
                                       itemsize=itemsize) as threads:
            assert threads == expected, (sizes, batch, itemsize)


def test_own_threads_each_keep_half_the_threshold_of_work():
    # 64-100-10 in float64: 8.9e6 FLOPs at batch 200 keep 2 of 8 threads,
    # 4.4e7 at batch 1000 all 8 (11 halves of 8e6)
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    for batch, expected in ((200, 2), (400, 4), (1000, 8)):
        with _runtime.training_threads([64, 100, 10], batch, 8, per_sample=False) as threads:
            assert threads == expected, batch


def test_small_batches_split_the_columns_of_every_hidden_layer():
    # 16 rows a thread or fewer: columns (blocks of 64, so 128 or more of them);
    # more rows: only layers whose W spans over 2 MiB
    sizes = np.array([784, 256, 128, 10], np.int32)
    assert _kernels.column_split_plan(sizes, 32, 2, 4) == ([True, True, False],
                                                           [False, True, True])
    assert _kernels.column_split_plan(sizes, 32, 2, 8, dense=False) == ([False, True, False],
                                                                        [False, True, True])
    for batch in (33, 64, 128):
        assert _kernels.column_split_plan(sizes, batch, 2, 8) == ([False] * 3, [False] * 3)
    # three threads need 192 columns: only the 256-wide layer has them
    assert _kernels.column_split_plan(sizes, 48, 3, 8) == ([True, False, False],
                                                           [False, True, False])
    large = np.array([1024, 2048, 2048, 10], np.int32)  # W_1 is 16 MiB
    assert _kernels.column_split_plan(large, 512, 2, 4) == ([True, True, False],
                                                            [False, True, False])
    old = _kernels.set_column_split(2 * 1024 * 1024, 64, 0)
    try:
        assert _kernels.column_split_plan(sizes, 32, 2, 4) == ([False] * 3, [False] * 3)
    finally:
        _kernels.set_column_split(*old)
    assert _kernels.set_column_split(*old) == old


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_default_fit_at_batch_32_splits_columns_on_two_threads_and_matches_one(monkeypatch,
                                                                                dtype):
    # 300-256-256-5 at batch 32: 2.8e7 FLOPs a batch, so fastbp's own threads,
    # 16 rows each, split the hidden layers' columns
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    sizes = [300, 256, 256, 5]
    forward, backward = _kernels.column_split_plan(np.array(sizes, np.int32), 32, 2,
                                                   np.dtype(dtype).itemsize)
    assert forward == [True, True, False] and backward == [False, True, True]
    X, Y = _big(320, 300, 5, seed=11)
    seen = []
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: seen.append(
        trainer.n_threads))
    results = {}
    for n_threads in (1, 2):
        net = fastbp.Network(sizes, activation="tanh", dtype=dtype, seed=4)
        history = net.fit(X.astype(dtype), Y.astype(dtype), epochs=2, batch_size=32, seed=2,
                          n_threads=n_threads, optimizer=fastbp.SGD(lr=0.02, momentum=0.9))
        results[n_threads] = (_params(net), history["loss"])
    assert set(seen) == {1, 2}
    assert_two_threads_match_one(results, dtype)


def test_per_sample_callers_get_no_threads_of_fastbps_own(monkeypatch):
    # lbfgs and the Dask objective pass per_sample=True: one batch of every
    # row, which fastbp's own threads do not split, so the BLAS keeps them
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    with _runtime.training_threads([20, 64, 4], 50, 2, per_sample=True) as own:
        assert own == 1
        if max(blas_threads()) >= 2:
            assert blas_threads() == [2]


def test_default_threads_counts_the_usable_cores_capped_by_the_environment(monkeypatch):
    for name in _runtime.THREAD_LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if hasattr(_runtime.os, "sched_getaffinity"):
        assert _runtime.default_threads() == len(_runtime.os.sched_getaffinity(0))
        monkeypatch.setattr(_runtime.os, "sched_getaffinity", lambda pid: {0, 2, 5})
        assert _runtime.default_threads() == 3
    else:
        monkeypatch.setattr(_runtime.os, "cpu_count", lambda: 3)
        monkeypatch.setattr(_runtime.os, "process_cpu_count", lambda: 3, raising=False)
        assert _runtime.default_threads() == 3
    for value, expected in [("2", 2), ("8", 3), ("1,1", 1), ("", 3), ("zero", 3), ("0", 3)]:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert _runtime.default_threads() == expected, value
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert _runtime.default_threads() == 1


@pytest.mark.parametrize("cores", [1, 2])
def test_fit_without_n_threads_trains_as_with_the_usable_core_count(monkeypatch, cores):
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    X, Y = _big(500, 20, 4, seed=8)
    seen = _spy_on_threaded_runs(monkeypatch)
    monkeypatch.setattr(_runtime, "default_threads", lambda: cores)
    before = blas_threads()
    weights = {}
    for n_threads in (None, cores):
        net = fastbp.Network([20, 48, 4], activation="tanh", seed=5)
        net.fit(X, Y, epochs=2, batch_size=50, seed=1, n_threads=n_threads,
                optimizer=fastbp.SGD(lr=0.05, momentum=0.9))
        weights[n_threads] = _params(net)
    assert {threads for threads, _ in seen} == {cores}
    if cores > 1:
        assert all(limit == [1] for _, limit in seen)
    else:  # the BLAS keeps its own setting
        assert seen[0][1] == before
    assert blas_threads() == before
    np.testing.assert_array_equal(weights[None], weights[cores])


def test_estimator_without_n_threads_trains_as_with_the_usable_core_count(monkeypatch):
    pytest.importorskip("sklearn")
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    from fastbp import MLPClassifier
    X, Y = _big(300, 12, 3, seed=9)
    y = Y.argmax(axis=1)
    seen = _spy_on_threaded_runs(monkeypatch)
    monkeypatch.setattr(_runtime, "default_threads", lambda: 2)
    fitted = {}
    for n_threads in (None, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not converged after 3 iterations
            fitted[n_threads] = MLPClassifier((16,), batch_size=30, max_iter=3, random_state=0,
                                              n_threads=n_threads).fit(X, y)
    assert {threads for threads, _ in seen} == {2}
    for got, want in zip(fitted[None].coefs_, fitted[2].coefs_):
        np.testing.assert_array_equal(got, want)


def test_small_minibatches_leave_the_threads_to_the_blas(monkeypatch):
    X, Y = _big(300, 10, 3, seed=4)
    seen = []
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: seen.append(
        trainer.n_threads))
    fastbp.Network([10, 16, 3], seed=0).fit(X, Y, batch_size=32, n_threads=2)
    assert seen and set(seen) == {1}


# ---------------------------------------------------------------------------
# n_threads of the scikit-learn estimators
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver,momentum", [("sgd", 0.9), ("adam", 0.9), ("sgd", 0.0)])
def test_estimator_n_threads_trains_on_own_threads_and_matches_one_thread(monkeypatch, solver,
                                                                          momentum):
    pytest.importorskip("sklearn")
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    from fastbp import MLPClassifier
    X, Y = _big(400, 12, 3, seed=5)
    y = Y.argmax(axis=1)
    weights = np.random.default_rng(6).uniform(0.5, 2, 400)
    seen = _spy_on_threaded_runs(monkeypatch)
    before = blas_threads()
    fitted = {}
    for n_threads in (1, 2):
        clf = MLPClassifier((24, 16), solver=solver, momentum=momentum, batch_size=40,
                            learning_rate_init=0.01, max_iter=4, random_state=0, tol=0,
                            n_threads=n_threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # not converged after 4 iterations
            fitted[n_threads] = clf.fit(X, y, sample_weight=weights)
    assert {threads for threads, _ in seen} == {1, 2}
    assert all(limit == [1] for threads, limit in seen if threads == 2)
    assert blas_threads() == before
    one, two = fitted[1], fitted[2]
    np.testing.assert_allclose(two.loss_curve_, one.loss_curve_, rtol=1e-12)
    for got, want in zip(two.coefs_ + two.intercepts_, one.coefs_ + one.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_estimator_lbfgs_with_n_threads_sets_the_blas_limit_and_restores_it(monkeypatch):
    pytest.importorskip("sklearn")
    from fastbp import MLPRegressor
    X, Y = _big(200, 8, 2, seed=7)
    seen = []
    real = _kernels.weighted_loss_gradient
    monkeypatch.setattr(_kernels, "weighted_loss_gradient",
                        lambda *args: seen.append(blas_threads()) or real(*args))
    before = blas_threads()
    with threadpool_limits(limits=2, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged after 30 iterations
        one = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=30,
                           random_state=0).fit(X, Y)
        during_default = list(seen)
        seen.clear()
        limited = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=30,
                               random_state=0, n_threads=1).fit(X, Y)
        assert blas_threads() == [2]
    assert during_default and all(limit == [2] for limit in during_default)
    assert seen and all(limit == [1] for limit in seen)
    assert blas_threads() == before
    np.testing.assert_allclose(limited.coefs_[0], one.coefs_[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_estimator_rejects_a_bad_n_threads(bad):
    pytest.importorskip("sklearn")
    from fastbp import MLPRegressor
    X, Y = _big(20, 3, 1, seed=8)
    from sklearn.utils._param_validation import InvalidParameterError
    with pytest.raises(InvalidParameterError,
                       match=r"'n_threads' parameter of MLPRegressor must be an int in the "
                             r"range \[1, inf\) or None"):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, n_threads=bad).fit(X, Y.ravel())


def _predictor(net):
    """net's compiled predictor (fastbp._kernels.Predictor) of its parameters."""
    return _kernels.Predictor(net._sizes, net._acts, net._params)


def _recording_predictor(net, record, threaded_only=False):
    """net's predictor, calling ``record`` with the arguments of each predict
    call (with ``threaded_only``, of those that go to the threads: more than
    one, or checking X) before running it."""
    class Recording(_kernels.Predictor):
        def predict(self, X, out, work=None, n_threads=1, check_finite=False):
            if not threaded_only or n_threads != 1 or check_finite:
                record(X, out, work, n_threads, check_finite)
            return super().predict(X, out, work, n_threads, check_finite)
    return Recording(net._sizes, net._acts, net._params)


# ---------------------------------------------------------------------------
# predict split over threads of its own
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_threads", [2, 3, 7])
def test_predict_on_threads_matches_the_reference_and_one_thread(monkeypatch, dtype, n_threads):
    from helpers import as_lists, assert_close, random_network
    from fastbp import reference
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    rng = np.random.default_rng(11)
    net = random_network(rng, [7, 40, 33, 5], ["relu", "tanh"], "softmax", dtype=dtype)
    X = rng.normal(size=(61, 7)).astype(dtype)
    monkeypatch.setattr(_runtime, "PREDICT_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(network, "CHUNK_ROWS", 5)  # several chunks, the last one short
    calls = []  # (threads, BLAS limit) of every kernel call; the one-pass call runs on 1
    monkeypatch.setattr(net, "_compiled_predictor", raising=False, value=_recording_predictor(
        net, lambda X, out, work=None, n_threads=1, check_finite=False:
        calls.append((n_threads, blas_threads()))))
    before = blas_threads()
    split = net.predict(X, n_threads=n_threads)
    assert calls and all(threads == n_threads and limit == [1] for threads, limit in calls)
    assert blas_threads() == before
    assert np.array_equal(split, net.predict(X, n_threads=n_threads))  # same threads, same bits
    W_ref, b_ref, acts = as_lists(net)
    assert_close(split, reference.predict(W_ref, b_ref, acts, X.astype(np.float64).tolist()),
                 np.dtype(dtype))
    calls.clear()
    assert_close(split, net.predict(X, n_threads=1), np.dtype(dtype))
    # one thread where asked, and the BLAS held to one as well
    assert calls and all(threads == 1 and limit == [1] for threads, limit in calls)
    monkeypatch.setattr(_runtime, "PREDICT_THREADS_MIN_FLOPS", float("inf"))
    calls.clear()
    assert_close(net.predict(X, n_threads=n_threads), split, np.dtype(dtype))
    # small calls run as they are: one thread, the BLAS untouched
    assert calls and all(threads == 1 and limit == before for threads, limit in calls)


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_threads_claim_blocks_of_rows_and_give_the_same_bits(dtype, n_threads):
    # 9610 weights: blocks of 256 rows, 12 of them (the last one short) for 3000
    # rows, claimed by whichever thread is free; every row is written once,
    # and a row's block, so its bits, does not depend on the thread
    from helpers import assert_close, random_network
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    rng = np.random.default_rng(5)
    net = random_network(rng, [64, 128, 10], "relu", "softmax", dtype=dtype)
    X = rng.normal(size=(3000, 64)).astype(dtype)
    share = _kernels.predict_workspace_share(net._sizes, 3000, n_threads)
    runs = []
    for _ in range(3):
        out = np.full((3000, 10), np.nan, dtype)
        work = np.full(n_threads * share, np.nan, dtype)
        assert _predictor(net).predict(X, out, work, n_threads) == n_threads
        runs.append(out)
    for out in runs[1:]:
        assert np.array_equal(out, runs[0])
    one = np.empty((3000, 10), dtype)
    _predictor(net).predict(X, one)
    assert_close(runs[0], one, np.dtype(dtype))
    # blocks of 256 rows each give the bits of a one-thread call on that block
    block = np.empty((256, 10), dtype)
    _predictor(net).predict(X[512:768], block)
    assert np.array_equal(runs[0][512:768], block)
    # one thread: one block, the one-pass call's bits (a converted X takes that path)
    single = np.full((3000, 10), np.nan, dtype)
    work = np.empty(_kernels.predict_workspace_share(net._sizes, 3000, 1), dtype)
    assert _predictor(net).predict(X, single, work, 1, True) == 1
    assert np.array_equal(single, one)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("bad_rows", [[0], [2999], [1300, 40], [511, 512]])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threaded_predict_scans_its_blocks_and_names_the_first_bad_value(monkeypatch, dtype,
                                                                          bad_rows, n_threads):
    # a ready X goes to the threads unscanned; they check each block in its
    # forward pass, and predict then names the first bad value of all of X
    net, X = _predict_case(dtype, 6)
    clean = net.predict(X, n_threads=n_threads)
    scans = []
    monkeypatch.setattr(net, "_compiled_predictor", raising=False, value=_recording_predictor(
        net, lambda X, out, work=None, n_threads=1, check_finite=False:
        scans.append(check_finite), threaded_only=True))
    monkeypatch.setattr(_kernels, "first_nonfinite", lambda values: pytest.fail(
        "X was scanned in a pass of its own") if values.size >= X.size else -1)
    assert np.array_equal(net.predict(X, n_threads=n_threads), clean)  # same bits
    assert scans == [True]
    monkeypatch.undo()
    for value, row in zip((np.nan, np.inf), bad_rows):
        X[row, 5] = value
    first = min(bad_rows)
    with pytest.raises(ValueError, match=rf"X contains {len(bad_rows)} NaN or infinite "
                                         rf"value\(s\), first at \[{first}, 5\]"):
        net.predict(X, n_threads=n_threads)


def _predict_case(dtype, seed):
    """The predict-thread tests' 64-128-10 relu/softmax network and 3000 rows."""
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    net = fastbp.Network([64, 128, 10], activation="relu", output_activation="softmax",
                         dtype=dtype, seed=0)
    return net, np.random.default_rng(seed).normal(size=(3000, 64)).astype(dtype)


def test_predict_reads_a_memmap_once(monkeypatch, tmp_path):
    # a memmap is as ready as an ndarray: no scan of the file before the
    # threads read it (which was a second pass over it), and a bad value
    # in it is still named
    net, X = _predict_case("float32", 12)
    stored = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                       shape=X.shape)
    stored[...] = X
    stored.flush()
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    expected = net.predict(X, n_threads=2)
    monkeypatch.setattr(_kernels, "first_nonfinite", lambda values: pytest.fail(
        "the memmap was scanned in a pass of its own") if values.size >= X.size else -1)
    np.testing.assert_array_equal(net.predict(mapped, n_threads=2), expected)
    monkeypatch.undo()
    stored[2000, 3] = np.nan
    stored.flush()
    with pytest.raises(ValueError, match=r"first at \[2000, 3\]"):
        net.predict(np.load(tmp_path / "X.npy", mmap_mode="r"), n_threads=2)


def _layouts(X):
    """X in the float layouts predict's threads convert themselves."""
    other = np.float32 if X.dtype == np.float64 else np.float64
    wide = np.zeros((2 * X.shape[0], 2 * X.shape[1]), X.dtype)
    wide[::2, ::2] = X
    return {"fortran": np.asfortranarray(X), "other dtype": X.astype(other),
            "fortran, other dtype": np.asfortranarray(X, dtype=other),
            "strided view": wide[::2, ::2], "reversed rows": X[::-1][::-1].copy()[::-1],
            "reversed columns": np.ascontiguousarray(X[:, ::-1])[:, ::-1]}


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_threads_convert_other_layouts_to_the_bits_of_a_converted_x(dtype, n_threads):
    # the threads convert the rows of each block they claim; the outputs are
    # those of the same kernel on X converted beforehand, bit for bit
    net, X = _predict_case(dtype, 9)
    share = _kernels.predict_workspace_share(net._sizes, 3000, n_threads, True)
    assert share > _kernels.predict_workspace_share(net._sizes, 3000, n_threads)

    def run(X, convert, check_finite):
        work = np.full(n_threads * _kernels.predict_workspace_share(net._sizes, 3000, n_threads,
                                                                    convert), np.nan, dtype)
        out = np.full((3000, 10), np.nan, dtype)
        assert _predictor(net).predict(X, out, work, n_threads, check_finite) == n_threads
        return out

    for name, source in _layouts(X).items():
        assert not (source.dtype == dtype and source.flags.c_contiguous), name
        expected = run(np.ascontiguousarray(source, dtype), False, False)
        for check_finite in (False, True):
            np.testing.assert_array_equal(run(source, True, check_finite), expected, err_msg=name)
    small = np.zeros(n_threads * _kernels.predict_workspace_share(net._sizes, 3000, n_threads),
                     dtype)
    with pytest.raises(ValueError, match="work is too small"):
        _predictor(net).predict(np.asfortranarray(X), np.empty((3000, 10), dtype), small,
                                n_threads)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_hands_other_float_layouts_to_the_threads_unconverted(monkeypatch, dtype,
                                                                     n_threads):
    # predict gives the kernel X's own rows, not converted chunks, and gets
    # the bits of a converted X; NaN, infinity and float32 overflow still
    # raise as_matrix's errors, naming the first bad value
    net, X = _predict_case(dtype, 10)
    for name, source in _layouts(X).items():
        expected = net.predict(np.ascontiguousarray(source, dtype), n_threads=n_threads)
        given = []
        monkeypatch.setattr(net, "_compiled_predictor", raising=False, value=_recording_predictor(
            net, lambda X_rows, *args: given.append(X_rows), threaded_only=True))
        np.testing.assert_array_equal(net.predict(source, n_threads=n_threads), expected,
                                      err_msg=name)
        monkeypatch.undo()
        assert given and all(np.shares_memory(part, source) for part in given), name
        for row, value in ((0, np.nan), (2999, -np.inf), (1700, np.nan)):
            bad = source.copy(order="K")
            bad[row, 9] = value
            with pytest.raises(ValueError, match=rf"first at \[{row}, 9\]"):
                net.predict(bad, n_threads=n_threads)
    if dtype == "float32":
        huge = np.asfortranarray(X, dtype=np.float64)
        huge[1234, 5] = 1e39
        with pytest.raises(ValueError, match=r"X\[1234, 5\] = 1e\+39 overflows float32"):
            net.predict(huge, n_threads=n_threads)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("sizes", [[64, 128, 10], [64, 48]])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_threads_check_x_through_the_first_layer(gemm_path, dtype, sizes, n_threads):
    # the threads see a NaN or infinity of X in z_1's pre-activation; these are
    # the values that could hide there: one whose row of W_0 is all 0 (inf * 0
    # is NaN) under relu (which maps NaN to 0). Finite rows whose products
    # overflow, or a NaN bias, make a non-finite too, and are no error
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    rng = np.random.default_rng(8)
    net = fastbp.Network(sizes, activation="relu", output_activation="relu", dtype=dtype, seed=0)
    weights, biases = net.weights, net.biases
    weights[0][:, 0] = 1  # a unit that sums its inputs: overflows on huge rows
    weights[0][7, :] = 0
    net.set_weights(weights, biases)
    X = rng.normal(size=(1500, 64)).astype(dtype)
    share = _kernels.predict_workspace_share(net._sizes, 1500, n_threads)
    work, out = np.empty(n_threads * share, dtype), np.empty((1500, sizes[-1]), dtype)

    params = net._params.copy()

    def checked(X):
        return _kernels.Predictor(net._sizes, net._acts, params).predict(X, out, work,
                                                                         n_threads, True)

    def unchecked(X):  # the same blocks, so the same bits
        expected = np.empty_like(out)
        _kernels.Predictor(net._sizes, net._acts, params).predict(X, expected,
                                                                  np.empty_like(work), n_threads)
        return expected

    for value in (np.nan, np.inf, -np.inf):
        for row in (0, 700, 1499):
            bad = X.copy()
            bad[row, 7] = value
            assert checked(bad) == -1, (value, row)
    huge = X.copy()
    huge[[3, 900]] = np.finfo(dtype).max / 2  # finite, but z_1's sum overflows
    assert not np.isfinite(unchecked(huge)[[3, 900]]).all()
    assert checked(huge) == n_threads
    np.testing.assert_array_equal(out, unchecked(huge))
    params[64 * sizes[1]] = np.nan  # b_0's first entry (set_weights would refuse it)
    assert checked(X) == n_threads
    np.testing.assert_array_equal(out, unchecked(X))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_threads_twin_reports_a_nonfinite_x_only_when_asked(dtype):
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    rng = np.random.default_rng(7)
    net = fastbp.Network([16, 32, 3], dtype=dtype, seed=0)
    X = rng.normal(size=(600, 16)).astype(dtype)
    X[599, 15] = -np.inf
    share = _kernels.predict_workspace_share(net._sizes, 600, 2)
    work, out = np.empty(2 * share, dtype), np.empty((600, 3), dtype)
    args = (X, out, work, 2)
    assert _predictor(net).predict(*args, True) == -1
    assert _predictor(net).predict(*args) == 2  # unscanned: the caller checked X
    X[599, 15] = 0.0
    assert _predictor(net).predict(*args, True) == 2


def test_predict_threads_default_to_the_usable_cores_and_only_for_big_calls(monkeypatch):
    monkeypatch.setattr(_runtime, "default_threads", lambda: 3)
    flops = _runtime.PREDICT_THREADS_MIN_FLOPS
    assert _runtime.predict_threads(1000, int(flops / 2000), None) == 3
    assert _runtime.predict_threads(1000, int(flops / 2000) - 1, None) == 0  # small: as it is
    assert _runtime.predict_threads(1000, int(flops / 2000), 2) == 2
    assert _runtime.predict_threads(10**9, 2, None) == 2  # never more threads than rows
    assert _runtime.predict_threads(10**9, 1000, 10**6) == _kernels.MAX_THREADS


def test_predict_threads_twin_checks_its_buffers():
    sizes = np.array([3, 4, 2], np.intc)
    acts = np.array([0, 0], np.intc)
    params = np.zeros(3 * 4 + 4 + 4 * 2 + 2)
    X = np.zeros((10, 3))
    out = np.zeros((10, 2))
    share = _kernels.predict_workspace_share(sizes, 10, 2)
    assert share % 16 == 0 and share >= 5 * (4 + 2 + 2)  # z_1, z_2 and a_out of 5 rows
    model = _kernels.Predictor(sizes, acts, params)
    with pytest.raises(ValueError, match="work is too small"):
        model.predict(X, out, np.zeros(2 * share - 1), 2)
    with pytest.raises(ValueError, match="n_threads"):
        model.predict(X, out, np.zeros(2 * share), 0)
    with pytest.raises(ValueError, match="out must"):
        model.predict(X, np.zeros((9, 2)), np.zeros(2 * share), 2)
    assert model.predict(X, out, np.zeros(2 * share), 2) in (1, 2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_predict_rejects_a_bad_n_threads(bad):
    net = fastbp.Network([3, 2])
    with pytest.raises((TypeError, ValueError), match="n_threads"):
        net.predict(np.zeros((2, 3)), n_threads=bad)
