"""Predict's threads kept alive between calls (csrc/fastbp_pool.h): the same
bits as one thread on each block, workers that persist and sleep, several
Python threads predicting at once, fork, Ctrl-C and interpreter exit."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastbp import _kernels
from helpers import random_network

pytestmark = pytest.mark.skipif(not _kernels.HAVE_THREADS,
                                reason="no threads of fastbp's own on this platform")

SIZES = [64, 128, 10]  # 9610 weights: blocks of 256 rows (csrc/predict.pxi)
BLOCK = 256


def _predictor(net, compute="float32"):
    return _kernels.Predictor(net._sizes, net._acts, net._params, compute)


def _blockwise(model, X, dtype):
    """X's outputs from one-thread calls on its blocks of BLOCK rows: the
    bits each block must have whichever thread ran it."""
    out = np.empty((X.shape[0], SIZES[-1]), dtype)
    for r0 in range(0, X.shape[0], BLOCK):
        block = np.empty((min(BLOCK, X.shape[0] - r0), SIZES[-1]), dtype)
        assert model.predict(X[r0:r0 + BLOCK], block) == 1
        out[r0:r0 + BLOCK] = block
    return out


@pytest.fixture(autouse=True)
def one_thread_blas():
    """A one-thread BLAS, as Network.predict holds it around the pool: without
    the AVX-512 tiles the products go to OpenBLAS, whose own threads spin for
    ~0.1 s after a call (and would count in the CPU time measured below)."""
    with threadpool_limits(1, user_api="blas"):
        yield


def _os_threads():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


def _problem(dtype, seed=3, rows=3000):
    rng = np.random.default_rng(seed)
    net = random_network(rng, SIZES, "relu", "softmax", dtype=dtype)
    return net, rng.normal(size=(rows, SIZES[0])).astype(dtype)


@pytest.mark.parametrize("n_threads", [2, 3, 5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pool_gives_each_block_the_bits_of_one_thread_call_after_call(dtype, n_threads):
    net, X = _problem(dtype)
    model = _predictor(net)
    expected = _blockwise(model, X, dtype)
    for _ in range(40):  # workers woken again and again, spinning or asleep
        out = np.full((X.shape[0], SIZES[-1]), np.nan, dtype)
        assert model.predict(X, out, None, n_threads) == n_threads
        assert np.array_equal(out, expected)


def test_pool_workers_outlive_the_call_and_are_reused():
    if not sys.platform.startswith("linux"):
        pytest.skip("the pool is Linux's")
    net, X = _problem("float32")
    model = _predictor(net)
    out = np.empty((X.shape[0], SIZES[-1]), np.float32)
    model.predict(X, out, None, 4)  # the pool has its 3 workers now
    before = _os_threads()
    for n_threads in (2, 4, 3, 4):
        assert model.predict(X, out, None, n_threads) == n_threads
    assert _os_threads() == before  # no thread started, none ended


def test_pool_workers_sleep_after_the_call():
    # a worker spins some 1000 pauses (~0.1 ms) for the next call, then
    # sleeps: other libraries' threads get the cores back. CPU time, not
    # wall time, so a loaded machine does not change the verdict
    net, X = _problem("float32")
    model = _predictor(net)
    out = np.empty((X.shape[0], SIZES[-1]), np.float32)
    model.predict(X, out, None, 4)
    cpu = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu < 0.05  # 3 spinning workers would use 1.5 s


def test_bfloat16_predict_runs_on_the_pool_with_the_bits_of_one_thread():
    net, X = _problem("float32")
    model = _predictor(net, "bfloat16")
    runs = []
    for n_threads in (2, 2, 3):
        out = np.full((X.shape[0], SIZES[-1]), np.nan, np.float32)
        assert model.predict(X, out, None, n_threads) == n_threads
        runs.append(out)
    one = np.empty_like(runs[0])
    for r0 in range(0, X.shape[0], BLOCK):
        block = np.empty((min(BLOCK, X.shape[0] - r0), SIZES[-1]), np.float32)
        model.predict(X[r0:r0 + BLOCK], block)
        one[r0:r0 + BLOCK] = block
    for out in runs:
        assert np.array_equal(out, one)


@pytest.mark.parametrize("shared", [False, True])
def test_python_threads_predicting_at_once_get_their_own_bits(shared):
    # more callers than pools (4): some run on threads started for the call
    n_callers = 7
    problems = [_problem(("float32", "float64")[i % 2], seed=i) for i in range(n_callers)]
    if shared:  # one Predictor, one X, called from every thread
        problems = [problems[0]] * n_callers
    models = [_predictor(net) for net, _ in problems]
    if shared:
        models = [models[0]] * n_callers
    expected = [_blockwise(model, X, X.dtype) for model, (_, X) in zip(models, problems)]
    start = threading.Barrier(n_callers)
    failures = []

    def caller(i):
        model, X = models[i], problems[i][1]
        start.wait()
        for call in range(25):
            out = np.full((X.shape[0], SIZES[-1]), np.nan, X.dtype)
            threads = model.predict(X, out, None, 2 + (i + call) % 2)
            if threads != 2 + (i + call) % 2 or not np.array_equal(out, expected[i]):
                failures.append((i, call, threads))

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(n_callers)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in callers)
    assert failures == []


CHILD_SETUP = """
import os, sys, threading
import numpy as np
sys.path.insert(0, {tests!r})
from helpers import random_network
from fastbp import _kernels
from threadpoolctl import threadpool_limits
# a one-thread BLAS, as Network.predict holds it: without the AVX-512 tiles the
# products go to OpenBLAS, whose threads a fork must not catch mid-call
threadpool_limits(1, user_api="blas")
rng = np.random.default_rng(3)
net = random_network(rng, {sizes!r}, "relu", "softmax", dtype="float32")
X = rng.normal(size=(3000, {n_in})).astype(np.float32)
model = _kernels.Predictor(net._sizes, net._acts, net._params)
def run(n_threads):
    out = np.full((3000, {n_out}), np.nan, np.float32)
    assert model.predict(X, out, None, n_threads) == n_threads
    return out
def one_thread_blocks():
    out = np.empty((3000, {n_out}), np.float32)
    for r0 in range(0, 3000, 256):
        model.predict(X[r0:r0 + 256], out[r0:r0 + 256])
    return out
expected = one_thread_blocks()
"""


def _child_script(body):
    tests = os.path.dirname(os.path.abspath(__file__))
    return textwrap.dedent(CHILD_SETUP.format(tests=tests, sizes=SIZES, n_in=SIZES[0], n_out=SIZES[-1])) + textwrap.dedent(body)


def _run_child(body, timeout=120):
    # its own process group: on a timeout the children it forked die with it (a
    # hung grandchild otherwise kept a core busy long after the test failed)
    process = subprocess.Popen([sys.executable, "-c", _child_script(body)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # any grandchild left behind
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_predicts_on_workers_of_its_own():
    # the parent's pool is in use by another thread while it forks: the
    # child must neither wait for that call's lock nor wake workers it has not.
    # Under AddressSanitizer (tools/debug_kernel_tests.sh preloads GCC's
    # libasan) the parent forks with no other thread busy: a child forked
    # while other threads allocate or start threads can inherit libasan's own
    # allocator or thread-registry lock held, and the CI's ASan run of this
    # test hung (the release build passes it); fastbp's pools reset the same
    # way either way.
    busy_threads = 0 if "libasan" in os.environ.get("LD_PRELOAD", "") else 5
    result = _run_child("""
        import multiprocessing
        assert np.array_equal(run(2), expected)  # the parent's pool has a worker
        stop = False
        def busy():
            while not stop:
                assert np.array_equal(run(2), expected)
        threads = [threading.Thread(target=busy) for _ in range(BUSY)]  # 5: every pool taken
        for t in threads:
            t.start()
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                ok = all(np.array_equal(run(n), expected) for n in (2, 3, 2, 4))
                os._exit(0 if ok else 3)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, status
        stop = True
        for t in threads:
            t.join()
        def child(queue):
            queue.put(all(np.array_equal(run(n), expected) for n in (2, 3)))
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        assert queue.get(timeout=60) is True
        process.join(60)
        assert process.exitcode == 0
        assert np.array_equal(run(2), expected)  # the parent's pool still works
        print("ok")
    """.replace("BUSY", str(busy_threads)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_ctrl_c_during_predicts_leaves_the_pool_usable():
    process = subprocess.Popen([sys.executable, "-c", _child_script("""
        print("ready", flush=True)
        try:
            while True:
                assert np.array_equal(run(2), expected)
        except KeyboardInterrupt:
            pass
        assert all(np.array_equal(run(n), expected) for n in (2, 3, 2))
        print("ok", flush=True)
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # well inside the loop of predicts
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out.strip() == "ok"


def test_the_interpreter_exits_with_workers_asleep_or_busy():
    # sleeping workers, and a daemon thread still predicting at exit
    result = _run_child("""
        assert np.array_equal(run(3), expected)
        def forever():
            while True:
                run(2)
        threading.Thread(target=forever, daemon=True).start()
        import time
        time.sleep(0.2)
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
