"""Epochs over arrays in memory: the source behind :meth:`fastbp.Network.fit`
and the estimators' stochastic solvers.

Data flows one way: the caller validates, :class:`TrainingLoop` builds one
compiled ``_kernels.Trainer`` that owns the fit's native state, and each
epoch is a few GIL-free ``run(start, stop)`` calls. Between calls the loop
publishes the weights for readers in other threads, checks for Ctrl-C and
divergence (rolling back to finite weights). Between epochs the
:class:`~fastbp._session.Session` records the history, runs the callbacks and
the stopping rule and moves the optimiser's schedule.
"""
from __future__ import annotations

import time

import numpy as np

from . import _kernels
from ._architecture import weight_count
from ._runtime import (blas_threads, own_training_threads, pass_threads, sample_team_threads,
                       training_threads)
from ._session import EpochReport, EpochSource
from .losses import loss_param

#: fit splits an epoch into kernel calls of whole batches and about this many
#: flops (6 per weight and row), so that Ctrl-C and readers in other threads
#: wait at most one call: measured 0.06-0.17 s per call for per-sample SGD on
#: the CI machine. Minibatch kernels run 2-4x more flops per second, so their
#: calls get 4x the budget. A fixed budget, not a timed one, keeps the split,
#: and so the summation order of the epoch losses, the same from run to run.
FIT_CALL_FLOPS = 1e9
#: least FLOPs of a call per parameter, so publishing the weights stays cheap
FIT_CALL_OVERHEAD_RATIO = 15000


class TrainingDiverged(ValueError, FloatingPointError):
    """The loss or the weights became NaN or infinite during :meth:`Network.fit`.

    The network keeps the last finite weights. ``history`` holds the losses of
    the epochs that completed.
    """

    def __init__(self, message: str, history: dict):
        super().__init__(message)
        self.history = history


def draw_dropout_seed(seed) -> int:
    """The seed of a fit's dropout masks: the fit's ``seed`` itself (an int,
    modulo 2**64), a draw from it (a Generator), or fresh entropy (None)."""
    if seed is None:
        return np.random.SeedSequence().entropy % 2**64
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**64, dtype=np.uint64))
    return int(seed) % 2**64


def fused_per_sample(batch_size: int, optimizer) -> bool:
    """Whether the kernels take their fused per-sample path (one row, plain
    SGD or an optimiser with a per-sample epoch, as SGD with momentum): the
    Trainer's own rule, mirrored here for the thread decision."""
    return batch_size == 1 and optimizer.fused_per_sample


_INTP = np.dtype(np.intp)


class Permutations:
    """The row orders of a shuffled fit: one permutation of range(n) an
    epoch, drawn from ``rng``; ``many(k)`` draws k at once, the very orders
    (and generator state) of k calls, for runs of many small epochs."""

    __slots__ = ("rng", "n")

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.n = rng, n

    def __call__(self) -> np.ndarray:
        order = self.rng.permutation(self.n)
        # np.arange's integers: np.intp on NumPy 2 (an astype call costs ~0.3 µs)
        return order if order.dtype is _INTP else order.astype(np.intp, copy=False)

    def many(self, count: int) -> np.ndarray:
        """``count`` orders as the rows of a C-contiguous np.intp array."""
        # filled and shuffled in place: np.tile's Python layers cost ~2 µs a fit
        orders = np.empty((count, self.n), dtype=np.intp)
        orders[...] = np.arange(self.n, dtype=np.intp)
        return self.rng.permuted(orders, axis=1, out=orders)


class _Unit:
    """Epochs trained from one rollback snapshot: their first epoch, their
    row orders (None: rows in turn) and the schedule's counters before them."""

    __slots__ = ("first", "orders", "counters")

    def __init__(self, first: int, orders: list, state):
        self.first, self.orders = first, orders
        self.counters = (state.epochs, state.samples_seen)


class _Rollback:
    """The newest states known to give a finite loss: the weights and the
    optimiser state at the start of this epoch and of the one before.

    The weights are the published arrays, never written again, so a
    reference is a snapshot (big nets would pay 2-3 fresh copies of their
    weights per fit otherwise). The optimiser's buffers change in place, so
    they are copied, into two buffer sets allocated once. With a
    :class:`~fastbp._averaging.WeightAverage` the published weights are the
    average's: the raw weights and the average are copied too.
    """

    __slots__ = ("_state", "_average", "_saved", "_averaged", "_this_epoch", "_epoch_before")

    def __init__(self, state, average=None):
        self._state, self._average = state, average
        buffers = state.buffers
        self._saved = ([{k: np.empty_like(v) for k, v in buffers.items()} for _ in range(2)]
                       if buffers else [{}, {}])  # plain SGD keeps none
        self._averaged = ([(np.empty_like(average.raw), np.empty_like(average.ema))
                           for _ in range(2)] if average is not None else None)
        self._this_epoch = self._epoch_before = None

    def epoch_starts(self, epoch: int, params: np.ndarray) -> None:
        self._epoch_before = self._this_epoch
        buffers = self._saved[epoch % 2]
        for name, value in self._state.buffers.items():
            np.copyto(buffers[name], value)
        state = self._state
        self._this_epoch = (params, buffers, state.step_count, state.lr)
        if self._average is not None:
            average = self._average
            raw, ema = self._averaged[epoch % 2]
            np.copyto(raw, average.raw)
            np.copyto(ema, average.ema)
            self._this_epoch = (raw, buffers, state.step_count, state.lr, ema, average.steps)

    def restore(self, live: np.ndarray, to_epoch_before: bool) -> None:
        """Copy a snapshot into ``live`` and the optimiser state (and the average)."""
        snapshot = self._epoch_before if to_epoch_before else self._this_epoch
        params, buffers, self._state.step_count, self._state.lr = snapshot[:4]
        np.copyto(live, params)
        for name, value in buffers.items():
            np.copyto(self._state.buffers[name], value)
        if self._average is not None:
            np.copyto(self._average.ema, snapshot[4])
            self._average.steps = snapshot[5]


class TrainingLoop(EpochSource):
    """Epochs over validated arrays in memory: a source of a
    :class:`~fastbp._session.Session` (see that module for the protocol).

    Parameters
    ----------
    network : Network
        Trained in place; it must not be training already.
    X, Y : ndarray
        Validated, C-contiguous, of the network's dtype.
    sample_weight : ndarray or None
    loss_code : int
    l2 : float
        λ of λ/(2·Σw)·Σ‖W‖².
    optimizer : fastbp.optim.Optimizer
    batch_size : int
        At most the number of rows.
    n_threads : int or None
        As in :meth:`Network.fit`.
    next_order : callable or None
        Called at each epoch's start; returns the row order (``np.intp``)
        or None for the rows in turn.
    dropout_seed : int or None
        With ``network.dropout``, the seed of the masks (as
        :func:`draw_dropout_seed` takes it; None: fresh entropy). An epoch's
        masks are those of the optimiser state's epoch count
        (``OptimizerState.epochs``), so a later fit draws new ones.
    first_position : int, default=0
        The position of these rows' first in its epoch, for the masks (a
        buffer of chunks after others).
    clip_norm : float or None, default=None
        Clip each step's gradient to this L2 norm (``Trainer.set_clip_norm``).
    average : fastbp._averaging.WeightAverage or None, default=None
        Train its raw weights and publish its average of them.
    """

    def __init__(self, network, X, Y, sample_weight, loss_code, l2, optimizer, batch_size,
                 n_threads, next_order=None, *, dropout_seed=None, first_position=0,
                 clip_norm=None, average=None):
        self.network = network
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.loss_code, self.l2 = loss_code, l2
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.next_order = next_order
        #: the masks' seed, None without dropout
        self.dropout_seed = (None if network.dropout is None else
                             draw_dropout_seed(dropout_seed))
        self.first_position = first_position
        self.clip_norm, self.average = clip_norm, average
        # the kernels' fused per-sample path: dense rows, no weights, no
        # step rules (csrc/training.pxi)
        self.per_sample = (fused_per_sample(batch_size, optimizer) and sample_weight is None
                           and isinstance(X, np.ndarray) and clip_norm is None
                           and average is None)
        self._flops_per_row = 6 * weight_count(network.sizes)
        #: the FLOP budget of a kernel call
        self._call_flops = FIT_CALL_FLOPS * (1 if self.per_sample else 4)
        #: the weights the kernels train, once running
        self.live = None
        #: the network's parameters: the array last published (network.params
        #: would build a view of it each call)
        self.published = None
        #: rows of the current epoch trained so far
        self.done = 0

    # -- the source protocol (fastbp._session) -------------------------------

    def running(self, session, epochs: int) -> "TrainingLoop":
        """Set up for ``epochs`` epochs of ``session``; entered, it holds the
        thread settings and the kernels' state."""
        self._session, self._epochs = session, epochs
        network = self.network
        self._threads = None if self._quiet_blas() else training_threads(
            network.sizes, self.batch_size, self.n_threads, per_sample=False,
            itemsize=network.dtype.itemsize)
        return self

    def _quiet_blas(self) -> bool:
        """No thread settings to hold: the fused per-sample kernel calls no
        BLAS, and a batch too small for threads of fastbp's own with
        n_threads=None leaves the BLAS as it is."""
        network = self.network
        return self.per_sample or (self.n_threads is None and own_training_threads(
            network.sizes, self.batch_size, None, False, network.dtype.itemsize) == 1)

    def __enter__(self) -> None:
        own_threads = self.sample_threads() if self._threads is None else self._threads.__enter__()
        network, state = self.network, self._session.state
        # The kernels train a private copy; readers in other threads use the
        # last published one, which always holds whole batches.
        published = self.published = network.params
        passes = pass_threads(published.nbytes, self.n_threads)  # copy and NaN checks
        if self.average is not None:
            live = self.live = self.average.live(network)  # the raw weights, fit-long
        else:
            live = self.live = network.fit_params_copy(passes)
        self.trainer = self._make_trainer(live, own_threads, passes, state)
        self.rollback = _Rollback(state, self.average)
        self.rows_per_call = self._rows_per_call(live.size)
        # a one-epoch fit trains no block
        self.block = self._epochs_per_block(self._session) if self._epochs > 1 else 1
        self.done = 0
        self._units = []      # the last two, matching the rollback's two snapshots
        self._pending = []    # orders drawn already, for epochs replayed one by one

    def __exit__(self, *exc_info) -> None:
        if self._threads is not None:
            self._threads.__exit__(*exc_info)

    def train(self, session, epoch: int, count: int) -> EpochReport:
        """Train epoch ``epoch`` (or, with ``count > 1``, up to ``count``
        epochs in one kernel call); see :mod:`fastbp._session`."""
        if self.block > 1 and count > 1 and not self._pending:
            return self._epoch_block(session, epoch, min(self.block, count))
        trainer, state, live, publish = self.trainer, session.state, self.live, session.publish
        interrupted = session.interrupted
        n = self.X.shape[0]
        if self._pending:
            order = self._pending.pop(0)
        else:
            order = self.next_order() if self.next_order is not None else None
        trainer.set_order(order)
        trainer.lr = state.lr
        if self.dropout_seed is not None:
            trainer.set_dropout_epoch(state.epochs, self.first_position)
        self._unit_starts(_Unit(epoch, [order], state))
        last_epoch = epoch == self._epochs - 1
        started = time.perf_counter()
        data_sum = penalty_sum = 0.0
        status, diverged = 0, False
        self.done = done = 0
        # An epoch is split into calls of whole batches, so the batches,
        # their order and every rounding are those of one call.
        while done < n:
            if interrupted.is_set():
                raise KeyboardInterrupt
            status, data, penalty, rows = trainer.run(done, min(done + self.rows_per_call, n))
            state.step_count = trainer.step_count
            data_sum += data
            penalty_sum += penalty
            self.done = done = done + rows
            diverged = status != 0  # 2: the call left non-finite weights
            if diverged:
                break
            # publish; the very last call of a fit publishes live itself
            self._publish(publish, done == n and last_epoch)
        elapsed = time.perf_counter() - started
        if diverged:
            self._diverged(session, epoch, status, data_sum, penalty_sum)
        self.done = 0  # the next epoch's, should Ctrl-C come before it starts
        return EpochReport(epoch, (data_sum,), (penalty_sum,), n, state.lr, elapsed)

    def interrupted(self, session, epoch: int) -> str:
        """Publish the weights trained so far (whole batches: the kernels
        finish every call they start) if finite; where the fit stopped."""
        weights = self.live
        if weights is not None and self.average is not None:
            self.average.took(self.trainer)
            weights = self.average.weights()
        if weights is not None and np.isfinite(weights).all():
            self.published = weights
            session.publish(weights)
        return f"fit stopped in epoch {epoch + 1} after {self.done} of its {self.X.shape[0]} rows"

    # -- inside ---------------------------------------------------------------

    def one_call(self, epochs: int, quiet: bool) -> bool:
        """Whether ``epochs`` epochs of a session (``quiet``: see
        :attr:`Session.quiet`) are one kernel call on no threads of fastbp's
        own: fit's lean path (fastbp._lean) then runs them, holding the BLAS
        limit of an ``n_threads`` itself (:meth:`blas_limit`)."""
        network = self.network
        if not (self.per_sample or own_training_threads(
                network.sizes, self.batch_size, self.n_threads, False,
                network.dtype.itemsize) == 1):
            return False
        if epochs == 1:
            return self._rows_per_call(self.network.n_params) >= self.X.shape[0]
        return quiet and self._block_epochs() >= epochs

    def blas_limit(self):
        """The BLAS limit a one-call fit (:meth:`one_call`) holds around its
        kernel call, as :func:`~fastbp._runtime.training_threads` would for
        no threads of fastbp's own; None: none to hold (per-sample kernels
        call no BLAS, ``n_threads=None`` leaves it as it is)."""
        if self.per_sample or self.n_threads is None:
            return None
        return blas_threads.limit(self.n_threads)

    def _rows_per_call(self, n_params: int) -> int:
        """Rows of a kernel call: whole batches, at least one."""
        # Between calls the weights are copied (published) and checked for
        # NaN: O(n_params) memory traffic, worth ~50 multiply-adds an element.
        # Keep that under ~1% of a call's work, or big nets pay for it.
        budget = max(self._call_flops, FIT_CALL_OVERHEAD_RATIO * n_params)
        return max(1, int(budget / self._flops_per_row) // self.batch_size) * self.batch_size

    def _block_epochs(self) -> int:
        """Epochs of a call's FLOP budget, at least one."""
        return max(1, int(self._call_flops // (self._flops_per_row * self.X.shape[0])))

    def _epochs_per_block(self, session) -> int:
        """Epochs one ``Trainer.run_epochs`` call trains: as many as fit a
        call's FLOP budget, when nothing runs between epochs (the session is
        quiet) and the orders can be drawn many at once; else 1."""
        bulk_orders = self.next_order is None or hasattr(self.next_order, "many")
        if not (session.quiet and bulk_orders):
            return 1
        return self._block_epochs()

    def sample_threads(self) -> int:
        """The trainer's threads when no thread settings are held: a wide
        network's per-sample fit takes them (:func:`sample_team_threads`),
        every other such fit one (bfloat16 products too: they take no
        per-sample kernel)."""
        if not self.per_sample or self.network.compute_dtype == "bfloat16":
            return 1
        return sample_team_threads(self._flops_per_row // 6, self.n_threads)

    def new_trainer(self, n_threads: int):
        """A compiled trainer of the network's layout and products' precision
        (``compute_dtype``), this loop's loss, L2 term and batch size, on
        ``n_threads`` threads of its own: the one maker of fit's trainers
        (this loop's and :func:`fastbp._lean.kept_trainer`'s), which then
        set the params, data and optimiser of each fit."""
        net = self.network
        trainer = _kernels.Trainer(*net.kernel_layout, self.loss_code, self.l2,
                                   self.batch_size, n_threads, loss_param(self.loss_code))
        if net.compute_dtype == "bfloat16":
            trainer.set_compute_dtype(net.compute_dtype)  # dense float32 only: run checks
        return trainer

    def _make_trainer(self, live, own_threads, passes, state):
        net = self.network
        trainer = self.new_trainer(own_threads)
        trainer.set_params(live)
        trainer.pass_threads = passes
        trainer.set_data(self.X, self.Y, self.sample_weight)
        if self.dropout_seed is not None:
            trainer.set_dropout(net.dropout, self.dropout_seed)
        self.optimizer.configure(trainer, state)
        if self.clip_norm is not None:
            trainer.set_clip_norm(self.clip_norm)
        if self.average is not None:
            self.average.configure(trainer)
        return trainer

    def _publish(self, publish, final: bool) -> None:
        """Publish a snapshot of the weights (the ``final`` one of a fit: live
        itself, written no more), or with an average a copy of it."""
        if self.average is not None:
            self.average.took(self.trainer)
            self.published = self.average.weights()
        else:
            self.published = self.live if final else self.live.copy()
        publish(self.published)

    def _unit_starts(self, unit: _Unit) -> None:
        self.rollback.epoch_starts(unit.first, self.published)  # equals live here
        self._units = self._units[-1:] + [unit]

    def _epoch_block(self, session, epoch: int, count: int) -> EpochReport:
        """Train epochs [epoch, epoch + count) in one ``run_epochs`` call.

        When an epoch of the block diverges, nothing of it is kept: the
        weights go back to the newest snapshot before it, the epochs up to
        the one before the divergence are trained again in one call, and
        the rest are left (with their orders) to be trained one by one,
        which meets the divergence with the snapshots it needs to report and
        roll back exactly as it always does.
        """
        trainer, state, live = self.trainer, session.state, self.live
        n = self.X.shape[0]
        orders = self.next_order.many(count) if self.next_order is not None else None
        trainer.set_order(orders.reshape(-1) if orders is not None else None)
        trainer.lr = state.lr
        if self.dropout_seed is not None:
            trainer.set_dropout_epoch(state.epochs, self.first_position)
        self._unit_starts(_Unit(epoch, list(orders) if orders is not None else [None] * count,
                                state))
        sums = np.zeros((2, count))
        started = time.perf_counter()
        trained, status = trainer.run_epochs(count, n, sums[0], sums[1])
        elapsed = time.perf_counter() - started
        state.step_count = trainer.step_count
        if status == 0:
            self._publish(session.publish, epoch + count == self._epochs)
            return EpochReport(epoch, sums[0], sums[1], n, state.lr, elapsed)
        return self._replay(session, epoch + trained)

    def _replay(self, session, failed: int) -> EpochReport:
        """Back to the snapshot before epoch ``failed``'s predecessor, and
        train again up to that predecessor; reports the epochs from that
        snapshot on, and keeps the orders from there on for later calls."""
        trainer, state, live = self.trainer, session.state, self.live
        unit = self._units[-1]
        to_before = failed == unit.first and len(self._units) == 2
        if to_before:
            unit = self._units[0]
            orders = unit.orders + self._units[1].orders
        else:
            orders = unit.orders
        self.rollback.restore(live, to_before)
        state.epochs, state.samples_seen = unit.counters
        self.optimizer.configure(trainer, state)  # the restored step count and rate
        if self.average is not None:
            self.average.configure(trainer)  # the restored average
        again = max(0, failed - 1 - unit.first)
        n = self.X.shape[0]
        sums = np.zeros((2, again))
        started = time.perf_counter()
        if again:
            trainer.set_order(np.concatenate(orders[:again])
                              if orders[0] is not None else None)
            trainer.lr = state.lr
            if self.dropout_seed is not None:  # the restored epoch count: the same masks
                trainer.set_dropout_epoch(state.epochs, self.first_position)
            trained, status = trainer.run_epochs(again, n, sums[0], sums[1])
            if status != 0 or trained != again:  # the same steps cannot change their minds
                raise RuntimeError("fastbp: replaying finite epochs did not repeat them")
            state.step_count = trainer.step_count
            self._publish(session.publish, False)
        self._units = []
        self._pending = orders[again:]
        return EpochReport(unit.first, sums[0], sums[1], n, state.lr,
                           time.perf_counter() - started)

    def _diverged(self, session, epoch, status, data_sum, penalty_sum):
        """Roll back to the newest snapshot known to give a finite loss and raise.

        That is this epoch's start if its first batch went through, else the
        previous epoch's start (whose first batch did).
        """
        n, batch_size, done, live = self.X.shape[0], self.batch_size, self.done, self.live
        history = session.history
        to_epoch_before = not (done > 0 or status != 1 or epoch == 0)
        self.rollback.restore(live, to_epoch_before)
        self.published = live if self.average is None else self.average.weights()
        session.publish(self.published)
        restored = epoch if to_epoch_before else epoch + 1
        where = (f"at rows {done}..{min(done + batch_size, n) - 1} of the epoch"
                 if status == 1 else "in the weights")
        so_far = (f"{(data_sum + penalty_sum) / done:.6g} over its first {done} rows"
                  if done else "none")
        last = f"{history['loss'][-1]:.6g}" if history["loss"] else "none"
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}: the loss became non-finite "
            f"{where} (mean loss of epoch {epoch + 1} before that: {so_far}; last "
            f"finite epoch loss: {last}); the weights from the start of epoch "
            f"{restored} were restored. Try a smaller learning rate or scaled inputs.",
            history,
        )
