"""The :class:`Network`: parameters, predict, loss, gradients and fit.

Every method validates its input here, then hands C-contiguous arrays to the
compiled kernels in :mod:`fastbp._kernels`.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

import numpy as np
from threadpoolctl import ThreadpoolController

from . import _kernels
from ._progress import EpochProgress
from ._validation import (as_matrix, check_choice, check_dtype, check_float, check_int,
                          check_rows_match, check_seed)
from .losses import check_loss, check_targets
from .optim import SGD

#: activation name -> kernel code (csrc/fastbp_codes.h, through the enum)
ACTIVATIONS = {code.name.lower(): int(code) for code in _kernels.Activation}
HIDDEN_ACTIVATIONS = {name: code for name, code in ACTIVATIONS.items() if name != "softmax"}

#: the kernels keep per-layer offsets on the stack
MAX_LAYERS = 63
MAX_WIDTH = 2**31 - 1
#: rows per kernel call in predict and loss, to bound the workspace
CHUNK_ROWS = 4096
#: fit splits an epoch into kernel calls of whole batches and about this many
#: flops (6 per weight and row), so that Ctrl-C and readers in other threads
#: wait at most one call: measured 0.06-0.17 s per call for per-sample SGD on
#: the CI machine. Minibatch kernels run 2-4x more flops per second, so their
#: calls get 4x the budget. A fixed budget, not a timed one, keeps the split,
#: and so the summation order of the epoch losses, the same from run to run.
FIT_CALL_FLOPS = 1e9
#: least FLOPs of a call per parameter, so publishing the weights stays cheap
FIT_CALL_OVERHEAD_RATIO = 15000
#: least FLOPs of a minibatch (6 per weight and row) for fit to split it over
#: threads of its own. Measured on 784-256-128-10 (1.8e8 FLOPs a batch at
#: batch 128) against OpenBLAS's threading, 2 threads: equal to 8% faster;
#: at 2e7 and below the results were mixed, so smaller batches are left to
#: the BLAS's own threading
OWN_THREADS_MIN_FLOPS = 1e8


def _openblas_controller_class():
    """threadpoolctl's OpenBLAS controller class, or None if it has none."""
    import threadpoolctl
    return getattr(threadpoolctl, "OpenBLASController", None)


class _BlasThreads:
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
        self._original = None
        # one controller: building one scans the loaded libraries (about 1 ms)
        self._controller = None

    @staticmethod
    def _as_guest(change):
        """Run ``change`` (a limit or a restore) without keeping control."""
        openblas = _openblas_controller_class()
        state = getattr(openblas, "_SHARED_STATE", None)
        if state is None or not hasattr(openblas, "clear_controlling_thread"):
            return change()  # threadpoolctl < 3.8: any thread may set limits
        held_before = state.controlling_thread is threading.current_thread()
        try:
            return change()
        finally:
            if not held_before:
                openblas.clear_controlling_thread()  # only clears if this thread took it

    @contextlib.contextmanager
    def limit(self, n_threads):
        """Hold the BLAS limit at most ``n_threads`` (None: leave it); yields
        the limit in force, which a limit held elsewhere can keep higher."""
        if n_threads is None:
            yield None
            return
        with self._lock:
            if self._controller is None:
                self._controller = ThreadpoolController()
            if self._users == 0:
                self._original = self._as_guest(
                    lambda: self._controller.limit(limits=n_threads, user_api="blas"))
                self._limit = n_threads
            elif n_threads < self._limit:
                self._as_guest(
                    lambda: self._controller.limit(limits=n_threads, user_api="blas"))
                self._limit = n_threads
            self._users += 1
            effective = max((lib.num_threads or 1 for lib in self._controller.lib_controllers
                             if lib.user_api == "blas"), default=n_threads)
        try:
            yield effective
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._as_guest(self._original.restore_original_limits)
                    self._original = self._limit = None


_blas_threads = _BlasThreads()


def _fused_per_sample(batch_size: int, momentum: float, sgd: bool = True,
                      weighted: bool = False) -> bool:
    """Whether ``train_rows`` takes its fused per-sample path (one row, plain
    SGD, no sample weights): train_rows_kernel's own rule, mirrored here."""
    return batch_size == 1 and sgd and momentum == 0 and not weighted


@contextlib.contextmanager
def _training_threads(sizes, batch_size: int, n_threads, per_sample: bool):
    """Hold the thread settings of one training run; yields the number of
    fastbp's own threads for ``train_rows`` (1: the BLAS gets the threads).

    Minibatches big enough run on ``n_threads`` threads of fastbp's own, each
    with a one-thread BLAS; smaller ones, and the per-sample path, leave the
    threads to the BLAS. ``n_threads=None`` leaves the BLAS's limit alone.
    """
    flops_per_batch = 6 * batch_size * sum(a * b for a, b in zip(sizes, sizes[1:]))
    own_threads = 1
    if (n_threads is not None and n_threads > 1 and _kernels.HAVE_THREADS
            and not per_sample and flops_per_batch >= OWN_THREADS_MIN_FLOPS):
        own_threads = n_threads
    # scipy's BLAS serves the kernels' gemm calls
    with _blas_threads.limit(1 if own_threads > 1 else n_threads) as blas_limit:
        if blas_limit is not None and blas_limit > 1:
            own_threads = 1  # a BLAS limit held elsewhere: threads on threads
        yield own_threads


@contextlib.contextmanager
def _sigint_deferred():
    """Turn Ctrl-C into a flag that fit checks between kernel calls.

    Yields a ``threading.Event`` set by SIGINT. Only in the main thread (the
    one signals go to) and only over Python's default handler, so a handler
    the program installed itself is left alone.
    """
    event = threading.Event()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield event
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _whole_batches(rows: float, batch_size: int) -> int:
    """``rows`` rounded down to whole batches, at least one batch."""
    return max(1, int(rows) // batch_size) * batch_size


def aligned_empty(size: int, dtype, alignment: int = 64) -> np.ndarray:
    """An uninitialised 1-D array whose data starts on a cache-line boundary.

    NumPy only promises 16 bytes; the kernels' 64-byte SIMD loads and stores
    run measurably slower when every one of them straddles two cache lines.
    """
    dtype = np.dtype(dtype)
    raw = np.empty(size * dtype.itemsize + alignment, np.uint8)
    offset = -raw.ctypes.data % alignment
    return raw[offset:offset + size * dtype.itemsize].view(dtype)


class TrainingDiverged(ValueError, FloatingPointError):
    """The loss or the weights became NaN or infinite during :meth:`Network.fit`.

    The network keeps the last finite weights. ``history`` holds the losses of
    the epochs that completed.
    """

    def __init__(self, message: str, history: dict):
        super().__init__(message)
        self.history = history


class Network:
    """A dense feed-forward network trained by backpropagation.

    Layer l computes a = z_prev · W + b and z = f(a), with ``W`` of shape
    (sizes[l], sizes[l+1]).

    Parameters
    ----------
    sizes : sequence of int
        Widths of the layers, input first, output last (at least two).
    activation : str or sequence of str, default="sigmoid"
        Hidden activation: one of "sigmoid", "tanh", "relu", "identity", or a
        list with one name per hidden layer.
    output_activation : str, default="sigmoid"
        One of "sigmoid", "tanh", "relu", "identity", "softmax".
    dtype : {"float32", "float64"}, default="float64"
        Precision of parameters and computation; inputs are converted to it.
    seed : int or None, default=None
        Seed of the weight initialisation (Glorot uniform; biases start at 0).

    Notes
    -----
    Threads: :meth:`predict`, :meth:`loss`, :meth:`gradients`,
    :attr:`weights`, :attr:`biases`, :meth:`save` and :meth:`copy` may run in
    any thread at any time, also while another thread runs :meth:`fit`. Each
    call reads one consistent snapshot of the parameters, taken between two
    batches: fit trains a private copy and publishes it after every kernel
    call (about every 0.1 s, see ``FIT_CALL_FLOPS``). A second :meth:`fit`, or a :meth:`set_weights`,
    while a fit runs raises ``RuntimeError`` rather than mix two sources of
    weights. Different networks train in parallel threads: every kernel runs
    without the GIL.

    Examples
    --------
    >>> import fastbp, numpy as np
    >>> net = fastbp.Network([2, 3, 1], seed=0)
    >>> net.predict(np.zeros((4, 2))).shape
    (4, 1)
    """

    def __init__(self, sizes, activation="sigmoid", output_activation="sigmoid",
                 dtype="float64", seed=None):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            raise TypeError(f"sizes must be a sequence of layer widths, got {sizes!r}")
        # widths go to the kernels as C ints
        sizes = tuple(check_int(s, f"sizes[{i}]", 1, MAX_WIDTH) for i, s in enumerate(sizes))
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
        if len(sizes) - 1 > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} layers are supported, got {len(sizes) - 1}")
        n_hidden = len(sizes) - 2
        if isinstance(activation, str):
            hidden = (activation,) * n_hidden
            check_choice(activation, HIDDEN_ACTIVATIONS, "hidden activation")
        else:
            hidden = tuple(activation)
            if len(hidden) != n_hidden:
                raise ValueError(
                    f"activation lists {len(hidden)} names but the network has {n_hidden} hidden layers"
                )
            for name in hidden:
                check_choice(name, HIDDEN_ACTIVATIONS, "hidden activation")
        check_choice(output_activation, ACTIVATIONS, "output activation")
        self.sizes = sizes
        self.activations = hidden
        self.output_activation = output_activation
        self.dtype = check_dtype(dtype)
        self._sizes = np.asarray(sizes, dtype=np.intc)
        self._acts = np.asarray([ACTIVATIONS[a] for a in hidden + (output_activation,)],
                                dtype=np.intc)
        self._params = np.zeros(sum((a + 1) * b for a, b in zip(sizes, sizes[1:])), self.dtype)
        # guards _training and every rebinding of _params by fit and set_weights
        self._fit_lock = threading.Lock()
        self._training = False
        self._init_weights(check_seed(seed))

    # -- parameters ---------------------------------------------------------

    def _layer_views(self, flat: np.ndarray):
        """(W, b) views of each layer inside a flat parameter-shaped vector."""
        views, offset = [], 0
        for n_in, n_out in zip(self.sizes, self.sizes[1:]):
            W = flat[offset:offset + n_in * n_out].reshape(n_in, n_out)
            offset += n_in * n_out
            b = flat[offset:offset + n_out]
            offset += n_out
            views.append((W, b))
        return views

    def _init_weights(self, seed) -> None:
        rng = np.random.default_rng(seed)
        for (W, b), act in zip(self._layer_views(self._params), self._acts):
            n_in, n_out = W.shape
            # Glorot uniform; sigmoid's gentler slope takes a smaller range
            factor = 2.0 if act == ACTIVATIONS["sigmoid"] else 6.0
            bound = math.sqrt(factor / (n_in + n_out))
            W[...] = rng.uniform(-bound, bound, size=W.shape)
            b[...] = 0

    @property
    def n_layers(self) -> int:
        """Number of weight layers (len(sizes) - 1)."""
        return len(self.sizes) - 1

    @property
    def n_params(self) -> int:
        """Total number of weights and biases."""
        return self._params.size

    @property
    def weights(self) -> list:
        """Copies of the weight matrices; ``weights[l].shape == (sizes[l], sizes[l+1])``."""
        return [W.copy() for W, _ in self._layer_views(self._params)]

    @property
    def biases(self) -> list:
        """Copies of the bias vectors; ``biases[l].shape == (sizes[l+1],)``."""
        return [b.copy() for _, b in self._layer_views(self._params)]

    def set_weights(self, weights, biases) -> None:
        """Replace all weights and biases with validated copies.

        Parameters
        ----------
        weights : sequence of array_like
            One (sizes[l], sizes[l+1]) matrix per layer.
        biases : sequence of array_like
            One (sizes[l+1],) vector per layer.

        Raises
        ------
        ValueError
            On a wrong count or shape, or non-finite values. Nothing is changed then.
        RuntimeError
            While :meth:`fit` runs on this network in another thread.
        """
        weights, biases = list(weights), list(biases)
        if len(weights) != self.n_layers or len(biases) != self.n_layers:
            raise ValueError(
                f"expected {self.n_layers} weight matrices and bias vectors, "
                f"got {len(weights)} and {len(biases)}"
            )
        new = np.empty_like(self._params)
        for l, ((W, b), W_in, b_in) in enumerate(zip(self._layer_views(new), weights, biases)):
            for name, given, target in ((f"weights[{l}]", W_in, W), (f"biases[{l}]", b_in, b)):
                if np.shape(given) != target.shape:
                    raise ValueError(f"{name} has shape {np.shape(given)}, expected {target.shape}")
                target[...] = as_matrix(np.reshape(given, (-1, target.shape[-1])), self.dtype,
                                        name).reshape(target.shape)
        with self._fit_lock:
            if self._training:
                raise RuntimeError("cannot set the weights while fit runs on this network "
                                   "in another thread")
            # a new array, not a copy into the old one: readers in other
            # threads keep the snapshot they hold
            self._params = new

    # -- evaluation ---------------------------------------------------------

    def _check_X(self, X) -> np.ndarray:
        return as_matrix(X, self.dtype, "X", n_columns=self.sizes[0])

    def _check_XY(self, X, Y, loss: str) -> tuple:
        X = self._check_X(X)
        Y = as_matrix(Y, self.dtype, "Y", n_columns=self.sizes[-1], allow_vector=True)
        check_rows_match(X, Y)
        check_targets(Y, loss)
        return X, Y

    def predict(self, X) -> np.ndarray:
        """Network outputs for the rows of ``X``.

        Parameters
        ----------
        X : array_like of shape (m, sizes[0])

        Returns
        -------
        ndarray of shape (m, sizes[-1]) and the network's dtype
        """
        X = self._check_X(X)
        params = self._params  # one snapshot for every chunk, whatever other threads do
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        rows = min(X.shape[0], CHUNK_ROWS)
        work = np.empty(_kernels.workspace_size(self._sizes, rows), self.dtype)
        for start in range(0, X.shape[0], rows):
            stop = min(start + rows, X.shape[0])
            _kernels.network_predict(X[start:stop], params, self._sizes, self._acts,
                                     work, out[start:stop])
        return out

    def loss(self, X, Y, loss: str = "mse", l2: float = 0.0) -> float:
        """The objective J on (X, Y); see :mod:`fastbp.losses` for the formulas.

        Parameters
        ----------
        X : array_like of shape (m, sizes[0])
        Y : array_like of shape (m, sizes[-1])
        loss : {"mse", "bce", "cross_entropy"}
        l2 : float, default=0.0
            λ of the penalty λ/(2m)·Σ‖W‖² (biases are not penalised).

        Returns
        -------
        float
        """
        code = check_loss(loss, self.output_activation)
        l2 = check_float(l2, "l2", minimum=0.0)
        X, Y = self._check_XY(X, Y, loss)
        m = X.shape[0]
        params = self._params  # one snapshot for every chunk, whatever other threads do
        rows = min(m, CHUNK_ROWS)
        work = np.empty(_kernels.workspace_size(self._sizes, rows), self.dtype)
        grad = np.empty_like(params)
        total = 0.0
        for start in range(0, m, rows):
            stop = min(start + rows, m)
            total += (stop - start) * _kernels.network_loss(
                X[start:stop], Y[start:stop], params, self._sizes, self._acts,
                code, 0.0, work, grad)
        penalty = sum(float(np.dot(W.ravel(), W.ravel())) for W, _ in self._layer_views(params))
        return total / m + 0.5 * l2 / m * penalty

    def gradients(self, X, Y, loss: str = "mse", l2: float = 0.0) -> tuple:
        """Gradients of :meth:`loss` with respect to the weights and biases.

        Returns
        -------
        dW : list of ndarray, shaped like :attr:`weights`
        db : list of ndarray, shaped like :attr:`biases`
        """
        code = check_loss(loss, self.output_activation)
        l2 = check_float(l2, "l2", minimum=0.0)
        X, Y = self._check_XY(X, Y, loss)
        grad = self._flat_gradient(X, Y, code, l2)[1]
        views = self._layer_views(grad)
        return [W for W, _ in views], [b for _, b in views]

    def _flat_gradient(self, X: np.ndarray, Y: np.ndarray, code: int, l2: float):
        """(J, flat gradient) on validated arrays."""
        params = self._params  # one snapshot, whatever other threads do
        work = np.empty(_kernels.workspace_size(self._sizes, X.shape[0]), self.dtype)
        grad = np.empty_like(params)
        J = _kernels.network_loss(X, Y, params, self._sizes, self._acts, code, l2, work, grad)
        return J, grad

    # -- training -----------------------------------------------------------

    def fit(self, X, Y, loss: str = "mse", optimizer=None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, seed=None, l2: float = 0.0,
            n_threads: int | None = None, verbose: bool = False) -> dict:
        """Train by minibatch SGD in compiled, GIL-free calls of about 0.1 s each.

        Parameters
        ----------
        X : array_like of shape (n, sizes[0])
        Y : array_like of shape (n, sizes[-1])
            Targets; a 1-D array is taken as one column when sizes[-1] == 1.
        loss : {"mse", "bce", "cross_entropy"}, default="mse"
        optimizer : SGD, optional
            Defaults to ``SGD(lr=0.1)``. Its velocity state persists across fits.
        epochs : int, default=1
        batch_size : int, default=32
            Rows per update; 1 is per-sample SGD, ``n`` or more is full batch.
            When it does not divide n, the last batch is smaller and its
            gradient is the mean over its own rows.
        shuffle : bool, default=True
            Visit the rows in a fresh random order each epoch; else in order.
        seed : int or None
            Seed of the shuffling.
        l2 : float, default=0.0
            λ of the penalty λ/(2m)·Σ‖W‖², m being each batch's row count.
        n_threads : int or None, default=None
            Threads for minibatch training; None leaves the BLAS library's
            own setting. Per-sample training is single-threaded. Batches of
            at least ``OWN_THREADS_MIN_FLOPS`` (6 × weights × batch_size) are
            split over ``n_threads`` threads of fastbp's own, each with a
            one-thread BLAS: each thread runs the forward pass and the deltas
            on its share of the rows and updates its share of the weights,
            so the elementwise work is split too. Smaller batches leave the
            threads to the BLAS. Results agree with one thread to rounding,
            and are bit-identical from run to run for the same ``n_threads``.
            The BLAS limit is process-wide: fits running at the same time in
            several threads share the smallest limit asked for, so to train
            several networks at once pass ``n_threads=1`` to each
            (tools/thread_speedup.py measures the speed-up). A threadpoolctl
            limit that the program holds in another thread takes precedence,
            as threadpoolctl lets one thread at a time change OpenBLAS's
            limit; fit then leaves the threads to the BLAS.
        verbose : bool, default=False
            Show a tqdm progress bar over the epochs, with the loss, on
            stderr; without tqdm installed, print one line per epoch instead.

        Returns
        -------
        dict
            ``"loss"``: per epoch, the row-weighted mean of the minibatch
            objectives J (L2 included), each taken before its update;
            ``"seconds"``: wall time per epoch.

        Raises
        ------
        TrainingDiverged
            When the loss or the weights stop being finite; the message gives
            the epoch, the rows and the last finite losses. The network then
            holds the weights it had at the start of the failing epoch, or of
            the epoch before when the very first batch failed: the newest
            weights known to give a finite loss. The optimiser's velocity is
            rolled back with them.
        RuntimeError
            If fit already runs on this network in another thread.
        KeyboardInterrupt
            Ctrl-C stops training at the end of the running kernel call
            (within about 0.1 s; a single batch is never split). The network
            and the optimiser then hold the state after the last completed
            batch and are ready for use; the exception's ``history`` holds the
            completed epochs, and a note says where training stopped.

        Notes
        -----
        With the same seed, data, starting weights and ``n_threads``, fit gives
        bit-identical weights from run to run on one machine and build.
        Per-sample training (``batch_size=1``, no momentum) and products too
        small for BLAS are also bit-identical at any ``n_threads``. Larger
        minibatch products are not: OpenBLAS's threaded gemm sums in another
        order than its single-threaded one (measured: dgemm 300×200×256 differs
        by ~5e-14 between 1 and 2 threads), so such fits agree to rounding
        only. Across machines the kernels may round differently too: the
        per-sample kernel is compiled for AVX-512, AVX2+FMA and baseline x86-64
        (picked when the module loads; fused multiply-adds where the CPU has
        them), and OpenBLAS picks its gemm kernels by CPU.
        """
        code = check_loss(loss, self.output_activation)
        optimizer = SGD() if optimizer is None else optimizer
        if not isinstance(optimizer, SGD):
            raise TypeError(f"optimizer must be a fastbp.SGD, got {type(optimizer).__name__}")
        epochs = check_int(epochs, "epochs", 1)
        batch_size = check_int(batch_size, "batch_size", 1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        rng = np.random.default_rng(check_seed(seed))
        l2 = check_float(l2, "l2", minimum=0.0)
        if n_threads is not None:
            n_threads = check_int(n_threads, "n_threads", 1)
        X, Y = self._check_XY(X, Y, loss)
        n = X.shape[0]
        batch_size = min(batch_size, n)

        with self._fit_lock:
            if self._training:
                raise RuntimeError("fit is already running on this network in another thread")
            self._training = True
        per_sample = _fused_per_sample(batch_size, optimizer.momentum)
        try:
            with _training_threads(self.sizes, batch_size, n_threads, per_sample) as own_threads, \
                    _sigint_deferred() as interrupted:
                history = self._fit_epochs(X, Y, code, l2, optimizer, epochs, batch_size,
                                           shuffle, rng, verbose, interrupted, own_threads,
                                           per_sample)
        finally:
            with self._fit_lock:
                self._training = False
        if interrupted.is_set():
            # Ctrl-C came during the last kernel call: training is complete, but
            # the user asked to stop
            raise _interrupt(history, "fit had already finished all its epochs")
        return history

    def _fit_epochs(self, X, Y, code, l2, optimizer, epochs, batch_size, shuffle, rng, verbose,
                    interrupted, own_threads, per_sample):
        n = X.shape[0]
        # all workspace is allocated once per fit, never per batch
        work = aligned_empty(_kernels.workspace_size(self._sizes, batch_size, own_threads),
                             self.dtype)
        grad = aligned_empty(self._params.size, self.dtype)
        velocity = optimizer.velocity(self)
        # The kernels train a private copy; readers in other threads use the
        # last published one, which always holds whole batches.
        live = aligned_empty(self._params.size, self.dtype)
        live[...] = self._params
        # Snapshots of (params, velocity) at the start of this and the last
        # epoch, for the rollback. The params are the published arrays, never
        # written again, so a reference is a snapshot (big nets would pay
        # 2-3 fresh copies of their weights per fit otherwise). The velocity
        # changes in place, and only with momentum.
        velocity_copies = ((np.empty_like(velocity), np.empty_like(velocity))
                           if optimizer.momentum != 0 else None)
        snapshot = (self._params, None)
        no_order = np.empty(0, dtype=np.intp)
        unweighted = np.empty(0, self.dtype)
        history = {"loss": [], "seconds": []}
        progress = EpochProgress(epochs) if verbose else None
        flops_per_row = 6 * sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))
        budget = FIT_CALL_FLOPS * (1 if per_sample else 4)
        # Between calls the weights are copied (published) and checked for
        # NaN: O(n_params) memory traffic, worth ~50 multiply-adds an element.
        # Keep that under ~1% of a call's work, or big nets pay for it.
        budget = max(budget, FIT_CALL_OVERHEAD_RATIO * live.size)
        rows_per_call = _whole_batches(budget / flops_per_row, batch_size)
        epoch = done = 0
        try:
            for epoch in range(epochs):
                order = rng.permutation(n).astype(np.intp, copy=False) if shuffle else no_order
                older = snapshot
                saved_velocity = None
                if velocity_copies is not None:
                    saved_velocity = velocity_copies[epoch % 2]
                    np.copyto(saved_velocity, velocity)
                snapshot = (self._params, saved_velocity)  # self._params equals live here
                started = time.perf_counter()
                loss_sum, done, status, diverged = 0.0, 0, 0, False
                # An epoch is split into calls of whole batches, so the batches,
                # their order and every rounding are those of one call.
                while done < n:
                    if interrupted.is_set():
                        raise KeyboardInterrupt
                    stop = min(done + rows_per_call, n)
                    status, data_sum, penalty_sum, rows, _ = _kernels.train_rows(
                        X, Y, unweighted, order, done, stop, batch_size, live, grad, velocity,
                        unweighted, self._sizes, self._acts, code, l2, 0, optimizer.lr,
                        optimizer.momentum, optimizer.nesterov, 0.0, 0.0, 0, work, own_threads)
                    loss_sum += data_sum + penalty_sum
                    done += rows
                    diverged = status != 0 or not np.isfinite(live).all()
                    if diverged:
                        break
                    if done < n or epoch < epochs - 1:
                        self._params = live.copy()  # publish (the last call: live itself, below)
                elapsed = time.perf_counter() - started
                if diverged:
                    # Roll back to the newest snapshot known to give a finite loss:
                    # this epoch's start if its first batch went through, else the
                    # previous epoch's start (whose first batch did).
                    good = snapshot if (done > 0 or status == 0 or epoch == 0) else older
                    np.copyto(live, good[0])
                    if good[1] is not None:
                        np.copyto(velocity, good[1])
                    self._params = live
                    restored = epoch + 1 if good is snapshot else epoch
                    where = (f"at rows {done}..{min(done + batch_size, n) - 1} of the epoch"
                             if status != 0 else "in the weights")
                    so_far = f"{loss_sum / done:.6g} over its first {done} rows" if done else "none"
                    last = f"{history['loss'][-1]:.6g}" if history["loss"] else "none"
                    raise TrainingDiverged(
                        f"training diverged in epoch {epoch + 1}: the loss became non-finite "
                        f"{where} (mean loss of epoch {epoch + 1} before that: {so_far}; last "
                        f"finite epoch loss: {last}); the weights from the start of epoch "
                        f"{restored} were restored. Try a smaller learning rate or scaled inputs.",
                        history,
                    )
                history["loss"].append(loss_sum / n)
                history["seconds"].append(elapsed)
                if progress is not None:
                    progress.update(loss_sum / n, elapsed)
        except KeyboardInterrupt as exc:
            # `live` holds whole batches: the kernels finish every call they start
            if np.isfinite(live).all():
                self._params = live
            raise _interrupt(history, f"fit stopped in epoch {epoch + 1} after {done} of its "
                                      f"{n} rows", exc) from None
        finally:
            if progress is not None:
                progress.close()
        self._params = live
        return history

    # -- persistence --------------------------------------------------------

    def save(self, path) -> None:
        """Write the network to ``path`` as ``.npz`` (atomically); see :func:`fastbp.load`."""
        from .io import save
        save(self, path)

    def __getstate__(self):
        # locks do not pickle; a restored network gets a fresh one
        state = self.__dict__.copy()
        del state["_fit_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._fit_lock = threading.Lock()
        self._training = False

    def copy(self) -> "Network":
        """An independent copy with the same architecture and parameters."""
        clone = Network.__new__(Network)
        clone.__dict__.update(self.__dict__)
        clone._params = self._params.copy()
        clone._fit_lock = threading.Lock()
        clone._training = False
        return clone

    def astype(self, dtype) -> "Network":
        """A copy of this network in another dtype ("float32" or "float64")."""
        dtype = check_dtype(dtype)
        clone = self.copy()
        clone.dtype = dtype
        clone._params = clone._params.astype(dtype)
        if not np.isfinite(clone._params).all():
            raise ValueError(f"the parameters overflow {dtype}")
        return clone

    def __repr__(self) -> str:
        hidden = self.activations[0] if len(set(self.activations)) == 1 else list(self.activations)
        return (f"Network({list(self.sizes)}, activation={hidden!r}, "
                f"output_activation={self.output_activation!r}, dtype={self.dtype.name!r})")



def _interrupt(history: dict, where: str, exc: BaseException | None = None) -> KeyboardInterrupt:
    """The KeyboardInterrupt fit raises: ``history`` attached, a note on where it stopped."""
    exc = KeyboardInterrupt() if exc is None else exc
    exc.history = history
    if hasattr(exc, "add_note"):  # Python 3.11+
        exc.add_note(f"fastbp: {where}; the network holds the weights after the last "
                     "completed batch")
    return exc
