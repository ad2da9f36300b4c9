"""Process plumbing for training: BLAS thread limits, Ctrl-C deferral and
aligned buffers. Kept out of :mod:`fastbp.network`, which holds the model."""
from __future__ import annotations

import functools
import os
import signal
import sys
import threading

import numpy as np
from threadpoolctl import ThreadpoolController

from . import _kernels
from ._architecture import weight_count

# FASTBP_TILED_GEMM=0 leaves every product to BLAS, as on a CPU without
# AVX-512: for measuring that case on a machine that has it
if os.environ.get("FASTBP_TILED_GEMM", "").strip() == "0":
    _kernels.set_tiled_gemm(False)

#: least FLOPs of a float64 minibatch (6 per weight and row) for fit to
#: split it over threads of its own; smaller batches are left to the BLAS's
#: threads, which the register tiles (one thread) take most products from.
#: 2 threads, own threads against that, us a sample, from an idle process:
#: 64-100-10 at batch 200 (8.9e6 FLOPs) 0.68 -> 0.59, 30-60-60-3 at 256
#: (8.6e6) 0.80 -> 0.70, 784-128-10 at 128 (7.8e7) 5.71 -> 3.70,
#: 784-256-128-10 at 32 (4.5e7) 17.2 -> 12.5 (columns split, see
#: csrc/threads.pxi); 64-100-10 at 128 (5.7e6) 0.69 -> 0.74
OWN_THREADS_MIN_FLOPS = 8e6
#: the same in float32, whose products take half the time: 784-128-10 at
#: batch 32 (2.0e7) 3.01 -> 3.15-3.28 with own threads, 256-256-256-10 at 32
#: (2.6e7) 6.16 -> 5.04, 784-128-10 at 128 (7.8e7) 2.77 -> 1.89
OWN_THREADS_MIN_FLOPS_FLOAT32 = 2e7
#: most weights for fit's own threads in float64: each of them multiplies
#: its rows by all of W, which must then come from cache; the BLAS's threads
#: split W's columns instead. 1024-2048-2048-10 (6.3e6 weights), 2 threads:
#: the BLAS's threads were 1.05-1.5x faster than fastbp's at batch 32-512;
#: 784-256-128-10 (2.4e5) is the other way round
OWN_THREADS_MAX_WEIGHTS = 2 ** 20
#: the same in float32, where the tiles take the products of large layers
#: too (csrc/fastbp_gemm.h): 1024-2048-2048-10 at batch 32-512, 2 threads,
#: fastbp's own ran 0-25% faster than the BLAS's (float64 did not gain)
OWN_THREADS_MAX_WEIGHTS_FLOAT32 = 2 ** 23


@functools.lru_cache(maxsize=None)
def _openblas_controller_class():
    """threadpoolctl's OpenBLAS controller class, or None if it has none."""
    import threadpoolctl
    return getattr(threadpoolctl, "OpenBLASController", None)


class BlasThreads:
    """The process-wide BLAS thread limit, shared by the fits that run at once.

    threadpoolctl's limits are global, and each ``with threadpool_limits``
    restores what it found on entry: two such blocks overlapping in two
    threads can leave the wrong limit behind for good. Here the first fit that
    asks saves the original limits, later ones can only lower the limit (never
    raise it under a running gemm), and the last one out restores the original.

    The fit that sets the limit and the one that restores it may run in
    different threads. threadpoolctl >= 3.8 lets only one "controlling" thread
    change OpenBLAS's limit and silently ignores the others, so each change
    made here hands that control back unless this thread held it before.
    Without the hand-back, a later fit in a worker thread could not lower the
    limit, and two such fits' gemm calls would fight over the shared 2-thread
    pool (measured 0.4x the speed of running them one after the other).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._limit = None
        #: {library controller: its thread count before the first change}
        self._original = {}
        # one controller: building one scans the loaded libraries (about 1 ms)
        self._controller = None
        self._libraries = ()

    @staticmethod
    def _as_guest(change):
        """Run ``change`` (a limit or a restore) without keeping control.

        When another live thread holds control (a program that called
        ``threadpool_limits(n)`` once in its main thread keeps it for good),
        threadpoolctl would ignore the change: control is lent to this thread
        for the change and handed back. Otherwise ``predict(n_threads=1)`` in
        worker threads shared one BLAS pool for their narrow products: two at
        once ran 0.97x the speed of the same two in turn (1.7x with the
        change made).
        """
        openblas = _openblas_controller_class()
        state = getattr(openblas, "_SHARED_STATE", None)
        if state is None or not hasattr(openblas, "clear_controlling_thread"):
            return change()  # threadpoolctl < 3.8: any thread may set limits
        this_thread = threading.current_thread()
        with state.lock:
            holder = state.controlling_thread
            lent = holder is not None and holder is not this_thread and holder.is_alive()
            if lent:
                state.controlling_thread = None  # free for the change below
        try:
            return change()
        finally:
            if lent:
                with state.lock:
                    state.controlling_thread = holder
            elif holder is not this_thread:
                openblas.clear_controlling_thread()  # only clears if this thread took it

    def limit(self, n_threads) -> "BlasLimit":
        """Hold the BLAS limit at most ``n_threads`` (None: leave it) while
        entered; entering gives the limit in force, which a limit held
        elsewhere can keep higher."""
        return BlasLimit(self, n_threads)

    def _enter(self, n_threads: int) -> int:
        with self._lock:
            if self._controller is None:
                self._controller = ThreadpoolController()
                self._libraries = tuple(lib for lib in self._controller.lib_controllers
                                        if lib.user_api == "blas")
            libraries = self._libraries
            if self._users == 0:
                self._limit = n_threads
            # a limit the BLAS already keeps costs nothing to hold; a loop, not
            # comprehensions (each a call): fit(n_threads=k) enters here, and a
            # cold call (caches evicted) costs ~7 µs
            counts, above = [], []
            for lib in libraries:
                count = _thread_count(lib)
                counts.append(count)
                if count > n_threads:
                    above.append((lib, count))
            if above and (self._users == 0 or n_threads <= self._limit):
                for lib, count in above:  # the counts as the first change found them
                    self._original.setdefault(lib, count)
                self._lower([lib for lib, _ in above], n_threads)
                self._limit = n_threads
                counts = [_thread_count(lib) for lib in libraries]
            self._users += 1
            return max(counts, default=n_threads)

    def _exit(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                if self._original:
                    _set_thread_counts(list(self._original.items()), self._as_guest)
                self._original = {}
                self._limit = None

    def _lower(self, libraries, n_threads: int) -> None:
        """Set each of ``libraries`` to ``n_threads`` threads."""
        _set_thread_counts([(lib, n_threads) for lib in libraries], self._as_guest)


def _raw_openblas(lib, name: str):
    """The C function ``name`` of a pthreads OpenBLAS (threadpoolctl's
    controller ``lib``), or None: a direct ctypes call costs ~0.2 µs where
    the controller's methods cost ~1.5 µs and a controlling-thread dance."""
    get_symbol = getattr(lib, "_get_symbol", None)
    if (get_symbol is None or getattr(lib, "internal_api", None) != "openblas"
            or getattr(lib, "threading_layer", None) != "pthreads"):
        return None
    try:
        return get_symbol(name)
    except Exception:  # pragma: no cover - another threadpoolctl's internals
        return None


@functools.lru_cache(maxsize=None)
def _openblas_functions(lib) -> tuple:
    """``(get, set)``: ``lib``'s raw thread-count functions, or (None, None)."""
    getter = _raw_openblas(lib, "openblas_get_num_threads")
    setter = _raw_openblas(lib, "openblas_set_num_threads")
    return (getter, setter) if getter is not None and setter is not None else (None, None)


def _thread_count(lib) -> int:
    """The thread count a BLAS library runs (at least 1)."""
    getter = _openblas_functions(lib)[0]
    count = getter() if getter is not None else lib.num_threads
    return count or 1


def _set_thread_counts(changes, as_guest) -> None:
    """Give each ``(library, count)`` its count: a pthreads OpenBLAS through
    its own C setter (a process-wide value, which no threadpoolctl rule on
    the calling thread applies to), others through threadpoolctl's setter,
    lent control by ``as_guest`` (:meth:`BlasThreads._as_guest`).
    threadpoolctl's ``limit`` would also query every library's info and build
    a limiter: with its restore, ~50 µs a fit, much of a small one."""
    others = []
    for lib, count in changes:
        setter = _openblas_functions(lib)[1]
        if setter is not None:
            setter(count)
        else:
            others.append((lib, count))
    if others:
        as_guest(lambda: [lib.set_num_threads(count) for lib, count in others])


class BlasLimit:
    """:meth:`BlasThreads.limit`'s context manager: a class, not a
    generator, as every minibatch fit enters one (see :class:`sigint_deferred`)."""

    __slots__ = ("_owner", "_n_threads")

    def __init__(self, owner: BlasThreads, n_threads):
        self._owner, self._n_threads = owner, n_threads

    def __enter__(self):
        return None if self._n_threads is None else self._owner._enter(self._n_threads)

    def __exit__(self, *exc_info) -> None:
        if self._n_threads is not None:
            self._owner._exit()


blas_threads = BlasThreads()


#: environment variables that cap the default thread count: joblib's loky
#: workers and Dask's nannies set them to keep several processes from
#: oversubscribing the cores, and users set them for the same reason
THREAD_LIMIT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_threads() -> int:
    """The thread count of a call that names none.

    The cores this process may run on (its CPU affinity where the OS has one,
    else the CPU count), capped by ``OMP_NUM_THREADS`` or
    ``OPENBLAS_NUM_THREADS`` when set to a positive integer.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows)
        cores = getattr(os, "process_cpu_count", os.cpu_count)() or 1
    for name in THREAD_LIMIT_VARIABLES:
        value = os.environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            cores = min(cores, int(value))
    return max(cores, 1)


def _asked_threads(n_threads, limit: int | None = None) -> int:
    """``n_threads`` (None: :func:`default_threads`) within [1, ``limit``]
    and the kernels' ``MAX_THREADS``."""
    wanted = default_threads() if n_threads is None else n_threads
    cap = _kernels.MAX_THREADS if limit is None else min(limit, _kernels.MAX_THREADS)
    return max(1, min(wanted, cap))


#: bytes of parameters from which a fit's passes over all of them (its
#: private copy of the weights, into fresh pages, and the check for
#: non-finite values after each kernel call) split over threads: they only
#: move memory, and a thread costs ~30 µs to start. 1024-2048-2048-10
#: float64 (50 MB): the copy 12.9 -> 7.3 ms on 2 threads, ~4% of an epoch of
#: 600 rows at batch 512 on 2 threads
PASS_THREADS_MIN_BYTES = 8 << 20
#: bytes of parameters from which a network keeps the array a fit or a
#: setter replaced, when nothing else refers to it, for the next fit's
#: private copy (``Network._retire_params``): one more parameter vector
#: held between fits, as during them, against fresh pages' cost each fit
SPARE_PARAMS_MIN_BYTES = 8 << 20
#: whether sys.getrefcount sees every reference, as ``_retire_params``'s
#: "nothing else refers to it" needs: CPython up to 3.13 with the GIL (3.14
#: borrows references from the interpreter's stack, free-threaded builds
#: defer some), else no array is kept
EXACT_REFCOUNTS = (sys.implementation.name == "cpython" and sys.version_info < (3, 14)
                   and getattr(sys, "_is_gil_enabled", lambda: True)())


def pass_threads(nbytes: int, n_threads) -> int:
    """Threads of a fit's passes over its ``nbytes`` bytes of parameters:
    1 below ``PASS_THREADS_MIN_BYTES``, else ``n_threads`` (None:
    :func:`default_threads`), whoever runs the minibatches."""
    if nbytes < PASS_THREADS_MIN_BYTES or not _kernels.HAVE_THREADS:
        return 1
    return _asked_threads(n_threads)


#: least FLOPs of a predict call (2 per parameter and row) for it to split the
#: rows over threads of its own; starting and joining a thread costs ~30 µs
PREDICT_THREADS_MIN_FLOPS = 4e6


def predict_threads(n_params: int, rows: int, n_threads) -> int:
    """Threads of fastbp's own for a forward pass over ``rows`` rows: 0 below
    ``PREDICT_THREADS_MIN_FLOPS`` (the call runs as it is, BLAS untouched),
    else ``n_threads`` (None: :func:`default_threads`), at most one a row."""
    if 2.0 * n_params * rows < PREDICT_THREADS_MIN_FLOPS:
        return 0
    if not _kernels.HAVE_THREADS:
        return 1
    return _asked_threads(n_threads, rows)


def sample_team_threads(n_weights: int, n_threads) -> int:
    """Threads of a per-sample fit (the kernels' fused ``batch_size=1``
    path) of a network of ``n_weights`` weights: from the kernels'
    threshold on (``_kernels.set_sample_team()``), ``n_threads`` (None:
    :func:`default_threads`), over which each row's layers are split with
    the bits of one thread (csrc/fastbp_sample_team_impl.h); 1 below it,
    checked first, as default_threads() would cost a small fit ~3 µs."""
    if n_weights < _kernels.set_sample_team() or not _kernels.HAVE_THREADS:
        return 1
    return _asked_threads(n_threads)


def own_training_threads(sizes, batch_size: int, n_threads, per_sample: bool,
                         itemsize: int = 8) -> int:
    """The number of fastbp's own threads for a training run (1: the BLAS
    gets the threads), before a BLAS limit held elsewhere has its say
    (:class:`TrainingThreads`).

    Minibatches big enough run on ``n_threads`` threads of fastbp's own
    (None: :func:`default_threads`; fewer when a thread would get less than
    half of ``OWN_THREADS_MIN_FLOPS``), each with a one-thread BLAS; smaller
    ones and networks of more than ``OWN_THREADS_MAX_WEIGHTS`` weights
    (``OWN_THREADS_MAX_WEIGHTS_FLOAT32`` for ``itemsize`` 4) leave the
    threads to the BLAS, whose limit is then set to ``n_threads`` (None:
    left as it is, which for OpenBLAS is also every core unless the same
    variables cap it). ``per_sample``: one thread of fastbp's own whatever
    the batch. The fused per-sample kernel calls no BLAS and needs none of
    this (fit skips it).
    """
    if not may_own_threads(sizes, batch_size, per_sample, itemsize):
        return 1  # before default_threads(): its affinity and environment cost a small fit ~3 µs
    n_weights = weight_count(tuple(sizes))
    flops = 6 * batch_size * n_weights
    min_flops = OWN_THREADS_MIN_FLOPS_FLOAT32 if itemsize == 4 else OWN_THREADS_MIN_FLOPS
    wanted = default_threads() if n_threads is None else n_threads
    own_threads = 1
    if wanted > 1:
        # each thread keeps at least half the threshold's work, as two did
        # where it was measured: a batch's barriers and copies grow with the
        # threads (an extrapolation; this project's machines have 2 cores)
        own_threads = wanted if min_flops <= 0 else min(wanted, max(2, int(2 * flops // min_flops)))
    return own_threads


def may_own_threads(sizes, batch_size: int, per_sample: bool, itemsize: int = 8) -> bool:
    """Whether :func:`own_training_threads` asks for the thread count
    (``n_threads``, or :func:`default_threads`, which the process's
    affinity and environment decide); False: it is 1 whatever they say."""
    n_weights = weight_count(tuple(sizes))
    return (_kernels.HAVE_THREADS and not per_sample
            and 6 * batch_size * n_weights >= (OWN_THREADS_MIN_FLOPS_FLOAT32 if itemsize == 4
                                               else OWN_THREADS_MIN_FLOPS)
            and n_weights <= (OWN_THREADS_MAX_WEIGHTS_FLOAT32 if itemsize == 4
                              else OWN_THREADS_MAX_WEIGHTS))


class TrainingThreads:
    """:func:`training_threads`' context manager: entered, it holds the BLAS
    limit and gives the number of fastbp's own threads. A class, not a
    generator: every minibatch fit enters one."""

    __slots__ = ("_args", "_n_threads", "_blas")

    def __init__(self, sizes, batch_size: int, n_threads, per_sample: bool, itemsize: int):
        self._args = (sizes, batch_size, n_threads, per_sample, itemsize)
        self._n_threads, self._blas = n_threads, None

    def __enter__(self) -> int:
        own_threads = own_training_threads(*self._args)
        # scipy's BLAS serves the kernels' gemm calls
        self._blas = blas_threads.limit(1 if own_threads > 1 else self._n_threads)
        blas_limit = self._blas.__enter__()
        if blas_limit is not None and blas_limit > 1:
            own_threads = 1  # a BLAS limit held elsewhere: threads on threads
        return own_threads

    def __exit__(self, *exc_info) -> None:
        self._blas.__exit__(*exc_info)


def training_threads(sizes, batch_size: int, n_threads, per_sample: bool,
                     itemsize: int = 8) -> TrainingThreads:
    """Hold the thread settings of one training run while entered, which
    gives the number of fastbp's own threads for the trainer (1: the BLAS
    gets the threads); see :func:`own_training_threads` for the rule."""
    return TrainingThreads(sizes, batch_size, n_threads, per_sample, itemsize)


class _Flag:
    """A one-way flag: a threading.Event costs a lock and a condition, and
    only this thread's signal handler sets it (the flag is that handler)."""

    _set = False  # a class default rather than an __init__: one call fewer a fit

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def __call__(self, signum, frame) -> None:
        self._set = True


try:  # signal's C module: the same calls without enum conversions (~15 µs a fit)
    import _signal as _raw_signal
except ImportError:  # pragma: no cover - not CPython
    _raw_signal = signal
_SIGINT = int(signal.SIGINT)


class sigint_deferred:
    """Turn Ctrl-C into a flag that fit checks between kernel calls.

    ``with sigint_deferred() as flag``: the flag (``is_set()``) is set by
    SIGINT. Only in the main thread (the one signals go to) and only over
    Python's default handler, so a handler the program installed itself is
    left alone. A class rather than a generator: a small fit enters it once,
    and every microsecond of its fixed cost shows.
    """

    __slots__ = ("flag", "_previous")

    def __enter__(self) -> _Flag:
        flag = self.flag = _Flag()
        self._previous = None
        if _raw_signal.getsignal(_SIGINT) is signal.default_int_handler:
            try:
                self._previous = _raw_signal.signal(_SIGINT, flag)
            except ValueError:  # not the main thread, which signals go to (its check is C's)
                pass
        return flag

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            _raw_signal.signal(_SIGINT, self._previous)


#: an uninitialised 1-D array whose data starts on a cache-line boundary (64
#: bytes): the kernels' own function, not a wrapper, as every fit calls it
aligned_empty = _kernels.aligned_empty


_shared_generator = None


def fit_generator(seed, private: bool = False) -> np.random.Generator:
    """The generator of a fit's draws (shuffles, splits): ``default_rng(seed)``.

    For ``seed=None`` it is one generator per process, seeded once from OS
    entropy: a new Generator costs 15-19 µs (its SeedSequence hashes fresh
    entropy), a third of a default small ``fit(X, Y)``. The draws are as
    unpredictable, and a forked child seeds its own. ``private`` makes a
    new one anyway: for a fit that restores a checkpoint's generator state,
    which must not rewind the process's generator.
    """
    global _shared_generator
    if seed is not None or private:
        return np.random.default_rng(seed)
    if _shared_generator is None:
        _shared_generator = np.random.default_rng()
    return _shared_generator


def _forget_shared_generator() -> None:
    global _shared_generator
    _shared_generator = None


if hasattr(os, "register_at_fork"):  # a forked child must not replay its parent's draws
    os.register_at_fork(after_in_child=_forget_shared_generator)
