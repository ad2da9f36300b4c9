"""The one epoch loop behind :meth:`fastbp.Network.fit` and the estimators.

Data flows one way: the caller validates, :class:`TrainingLoop` builds one
compiled ``_kernels.Trainer`` that owns the fit's native state, and each
epoch is a few GIL-free ``run(start, stop)`` calls. Between calls the loop
publishes the weights for readers in other threads, checks for Ctrl-C and
divergence; between epochs it records the history, runs the callbacks and
the stopping rule and moves the optimiser's schedule.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np

from . import _kernels
from ._runtime import aligned_empty, sigint_deferred, training_threads
from .optim import Schedule

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


def fused_per_sample(batch_size: int, optimizer) -> bool:
    """Whether the kernels take their fused per-sample path (one row, plain
    SGD): the Trainer's own rule, mirrored here for the thread decision."""
    return batch_size == 1 and optimizer.plain


class Permutations:
    """The row orders of a shuffled fit: one permutation of range(n) an
    epoch, drawn from ``rng``; ``many(k)`` draws k at once, the very orders
    (and generator state) of k calls, for runs of many small epochs."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.n = rng, n

    def __call__(self) -> np.ndarray:
        return self.rng.permutation(self.n).astype(np.intp, copy=False)

    def many(self, count: int) -> np.ndarray:
        """``count`` orders as the rows of a C-contiguous np.intp array."""
        return self.rng.permuted(np.tile(np.arange(self.n, dtype=np.intp), (count, 1)), axis=1)


class _Unit:
    """Epochs trained from one rollback snapshot: their first epoch, their
    row orders (None: rows in turn) and the schedule's counters before them."""

    def __init__(self, first: int, orders: list, state):
        self.first, self.orders = first, orders
        self.counters = (state.epochs, state.samples_seen)


def end_of_epoch(network, optimizer, state, epoch: int, history: dict, callbacks,
                 early_stopping, rows) -> bool:
    """After an epoch of any fit: the callbacks, the stopping rule and the
    schedule (which a plateau may lower instead of stopping). ``rows``: the
    epoch's rows for the schedule, or None when the caller counts the epoch
    itself. Returns True to stop."""
    stop = False
    for callback in callbacks:
        stop = bool(callback(epoch, history, network)) or stop
    plateau = early_stopping is not None and early_stopping.update(epoch, history, network)
    if rows is not None:
        optimizer.epoch_ends(state, rows)
    if plateau:
        if optimizer.plateau(state):
            return True
        early_stopping.wait = 0  # the schedule lowered the rate: count afresh
    return stop


def _whole_batches(rows: float, batch_size: int) -> int:
    """``rows`` rounded down to whole batches, at least one batch."""
    return max(1, int(rows) // batch_size) * batch_size


def _interrupt(history: dict, where: str, exc: BaseException | None = None) -> KeyboardInterrupt:
    """The KeyboardInterrupt fit raises: ``history`` attached, a note on where it stopped."""
    exc = KeyboardInterrupt() if exc is None else exc
    exc.history = history
    if hasattr(exc, "add_note"):  # Python 3.11+
        exc.add_note(f"fastbp: {where}; the network holds the weights after the last "
                     "completed batch")
    return exc


class _Rollback:
    """The newest states known to give a finite loss: the weights and the
    optimiser state at the start of this epoch and of the one before.

    The weights are the published arrays, never written again, so a
    reference is a snapshot (big nets would pay 2-3 fresh copies of their
    weights per fit otherwise). The optimiser's buffers change in place, so
    they are copied, into two buffer sets allocated once.
    """

    def __init__(self, state):
        self._state = state
        self._saved = [{k: np.empty_like(v) for k, v in state.buffers.items()} for _ in range(2)]
        self._this_epoch = self._epoch_before = None

    def epoch_starts(self, epoch: int, params: np.ndarray) -> None:
        self._epoch_before = self._this_epoch
        buffers = self._saved[epoch % 2]
        for name, value in self._state.buffers.items():
            np.copyto(buffers[name], value)
        state = self._state
        self._this_epoch = (params, buffers, state.step_count, state.lr)

    def restore(self, live: np.ndarray, to_epoch_before: bool) -> None:
        """Copy a snapshot into ``live`` and the optimiser state."""
        params, buffers, self._state.step_count, self._state.lr = (
            self._epoch_before if to_epoch_before else self._this_epoch)
        np.copyto(live, params)
        for name, value in buffers.items():
            np.copyto(self._state.buffers[name], value)


class TrainingLoop:
    """One fit: validated data, the optimiser and the epoch loop.

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
    advance_schedule : bool, default=True
        Count each epoch in the optimiser's schedule; False when these rows
        are only part of an epoch (a chunked fit counts the epoch itself).
    """

    def __init__(self, network, X, Y, sample_weight, loss_code, l2, optimizer, batch_size,
                 n_threads, next_order=None, advance_schedule=True):
        self.network = network
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        self.loss_code, self.l2 = loss_code, l2
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.next_order = next_order
        #: False: a pass over part of an epoch (a chunk), whose caller moves the schedule
        self.advance_schedule = advance_schedule
        # the kernels' fused per-sample path: dense rows, no weights (csrc/training.pxi)
        self.per_sample = (fused_per_sample(batch_size, optimizer) and sample_weight is None
                           and isinstance(X, np.ndarray))
        sizes = network.sizes
        self._flops_per_row = 6 * sum(a * b for a, b in zip(sizes, sizes[1:]))
        #: whether the last run ended before its epochs, by a callback or the stopping rule
        self.stopped = False

    def _epochs_per_block(self, callbacks, early_stopping, validation, progress) -> int:
        """Epochs one ``Trainer.run_epochs`` call trains: as many as fit a
        call's FLOP budget, when there is nothing to run between epochs (no
        callbacks, stopping rule, validation, progress bar or schedule that
        moves the rate) and the orders can be drawn many at once; else 1."""
        n = self.X.shape[0]
        quiet = not callbacks and early_stopping is None and validation is None \
            and progress is None
        constant_rate = type(self.optimizer.schedule).lr_after_epoch is Schedule.lr_after_epoch
        bulk_orders = self.next_order is None or hasattr(self.next_order, "many")
        if not (quiet and constant_rate and bulk_orders):
            return 1
        return max(1, int(self._call_flops() // (self._flops_per_row * n)))

    def _call_flops(self) -> float:
        return FIT_CALL_FLOPS * (1 if self.per_sample else 4)

    def _rows_per_call(self, n_params: int) -> int:
        flops_per_row = self._flops_per_row
        budget = self._call_flops()
        # Between calls the weights are copied (published) and checked for
        # NaN: O(n_params) memory traffic, worth ~50 multiply-adds an element.
        # Keep that under ~1% of a call's work, or big nets pay for it.
        budget = max(budget, FIT_CALL_OVERHEAD_RATIO * n_params)
        return _whole_batches(budget / flops_per_row, self.batch_size)

    def run(self, epochs: int, callbacks=(), early_stopping=None, validation=None,
            progress=None) -> dict:
        """Train ``epochs`` epochs; return the history.

        Parameters
        ----------
        epochs : int
        callbacks : sequence of callable
            ``callback(epoch, history, network)`` after each epoch (epoch from
            0); a true return value stops training.
        early_stopping : fastbp.EarlyStopping or None
        validation : callable or None
            ``validation(network) -> float``: the validation loss, recorded
            as ``history["val_loss"]`` after each epoch.
        progress : EpochProgress or None

        Returns
        -------
        dict
            "loss" (row-weighted mean of the batch objectives, each before
            its update), "data_loss" and "penalty" (its two terms), "lr" and
            "seconds" per epoch; "val_loss" with ``validation``.

        Raises
        ------
        TrainingDiverged, KeyboardInterrupt
            As documented in :meth:`Network.fit`.
        """
        network = self.network
        # the fused per-sample kernel calls no BLAS: no thread settings to hold
        threads = contextlib.nullcontext(1) if self.per_sample else training_threads(
            network.sizes, self.batch_size, self.n_threads, per_sample=False,
            itemsize=network.dtype.itemsize)
        with network._training_guard(), threads as own_threads, \
                sigint_deferred() as interrupted:
            history = self._epochs(epochs, callbacks, early_stopping, validation, progress,
                                   own_threads, interrupted)
        if interrupted.is_set():
            # Ctrl-C came during the last kernel call: training is complete, but
            # the user asked to stop
            raise _interrupt(history, "fit had already finished all its epochs")
        return history

    def _make_trainer(self, live, own_threads, state):
        net = self.network
        trainer = _kernels.Trainer(*net.kernel_layout, self.loss_code, self.l2,
                                   self.batch_size, own_threads)
        trainer.set_params(live)
        trainer.set_data(self.X, self.Y, self.sample_weight)
        self.optimizer.configure(trainer, state)
        return trainer

    def _epochs(self, epochs, callbacks, early_stopping, validation, progress, own_threads,
                interrupted):
        network, optimizer = self.network, self.optimizer
        n = self.X.shape[0]
        state = optimizer.state(network)
        # The kernels train a private copy; readers in other threads use the
        # last published one, which always holds whole batches.
        live = aligned_empty(network.n_params, network.dtype)
        live[...] = network.params
        trainer = self._make_trainer(live, own_threads, state)
        rollback = _Rollback(state)
        rows_per_call = self._rows_per_call(live.size)
        history = {"loss": [], "data_loss": [], "penalty": [], "lr": [], "seconds": []}
        if validation is not None:
            history["val_loss"] = []
        epoch = done = 0
        self.stopped = False
        block = self._epochs_per_block(callbacks, early_stopping, validation, progress)
        self._units = []      # the last two, matching the rollback's two snapshots
        pending = []          # orders drawn already, for epochs replayed one by one
        try:
            while epoch < epochs:
                if block > 1 and epochs - epoch > 1 and not pending:
                    if interrupted.is_set():
                        raise KeyboardInterrupt
                    epoch, pending = self._epoch_block(trainer, live, state, rollback, history,
                                                       epoch, min(block, epochs - epoch),
                                                       epochs)
                    continue
                if pending:
                    order = pending.pop(0)
                else:
                    order = self.next_order() if self.next_order is not None else None
                trainer.set_order(order)
                trainer.lr = state.lr
                self._unit_starts(_Unit(epoch, [order], state), rollback)
                last_epoch = epoch == epochs - 1
                started = time.perf_counter()
                data_sum = penalty_sum = 0.0
                done, status, diverged = 0, 0, False
                # An epoch is split into calls of whole batches, so the batches,
                # their order and every rounding are those of one call.
                while done < n:
                    if interrupted.is_set():
                        raise KeyboardInterrupt
                    status, data, penalty, rows = trainer.run(done, min(done + rows_per_call, n))
                    state.step_count = trainer.step_count
                    data_sum += data
                    penalty_sum += penalty
                    done += rows
                    diverged = status != 0  # 2: the call left non-finite weights
                    if diverged:
                        break
                    # publish; the very last call of a fit publishes live itself
                    network._params = live if (done == n and last_epoch) else live.copy()
                elapsed = time.perf_counter() - started
                if diverged:
                    self._diverged(live, rollback, history, epoch, done, status, data_sum,
                                   penalty_sum)
                self._record(history, data_sum, penalty_sum, state.lr, elapsed, validation)
                if progress is not None:
                    progress.update(history["loss"][-1], elapsed)
                if self._end_of_epoch(epoch, history, callbacks, early_stopping, state, n):
                    self.stopped = True
                    break
                epoch += 1
        except KeyboardInterrupt as exc:
            # `live` holds whole batches: the kernels finish every call they start
            if np.isfinite(live).all():
                network._params = live
            raise _interrupt(history, f"fit stopped in epoch {epoch + 1} after {done} of its "
                                      f"{n} rows", exc) from None
        finally:
            if progress is not None:
                progress.close()
        if early_stopping is not None:
            early_stopping.restore(network)
        return history

    def _unit_starts(self, unit: _Unit, rollback: _Rollback) -> None:
        rollback.epoch_starts(unit.first, self.network.params)  # equals live here
        self._units = self._units[-1:] + [unit]

    def _epoch_block(self, trainer, live, state, rollback, history, epoch, count, epochs):
        """Train epochs [epoch, epoch + count) in one ``run_epochs`` call and
        record them; return (the next epoch, orders to replay).

        When an epoch of the block diverges, nothing of it is kept: the
        weights go back to the newest snapshot before it, the epochs up to
        the one before the divergence are trained again in one call, and
        the rest are left (with their orders) to the epoch-by-epoch loop,
        which meets the divergence with the snapshots it needs to report and
        roll back exactly as it always does.
        """
        n = self.X.shape[0]
        orders = self.next_order.many(count) if self.next_order is not None else None
        trainer.set_order(orders.reshape(-1) if orders is not None else None)
        trainer.lr = state.lr
        self._unit_starts(_Unit(epoch, list(orders) if orders is not None else [None] * count,
                                state), rollback)
        sums = np.zeros((2, count))
        started = time.perf_counter()
        trained, status = trainer.run_epochs(count, n, sums[0], sums[1])
        elapsed = time.perf_counter() - started
        state.step_count = trainer.step_count
        if status == 0:
            self._record_block(history, sums, state.lr, elapsed)
            if self.advance_schedule:
                self.optimizer.epochs_end(state, n, count)
            self.network._params = live if epoch + count == epochs else live.copy()
            return epoch + count, []
        return self._replay(trainer, live, state, rollback, history, epoch + trained)

    def _replay(self, trainer, live, state, rollback, history, failed: int):
        """Back to the snapshot before epoch ``failed``'s predecessor, and
        train again up to that predecessor; returns (its epoch, the orders
        from there on)."""
        unit = self._units[-1]
        to_before = failed == unit.first and len(self._units) == 2
        if to_before:
            unit = self._units[0]
            orders = unit.orders + self._units[1].orders
        else:
            orders = unit.orders
        rollback.restore(live, to_before)
        state.epochs, state.samples_seen = unit.counters
        self.optimizer.configure(trainer, state)  # the restored step count and rate
        for name in history:
            del history[name][unit.first:]
        again = max(0, failed - 1 - unit.first)
        if again:
            n = self.X.shape[0]
            trainer.set_order(np.concatenate(orders[:again])
                              if orders[0] is not None else None)
            trainer.lr = state.lr
            sums = np.zeros((2, again))
            started = time.perf_counter()
            trained, status = trainer.run_epochs(again, n, sums[0], sums[1])
            if status != 0 or trained != again:  # the same steps cannot change their minds
                raise RuntimeError("fastbp: replaying finite epochs did not repeat them")
            state.step_count = trainer.step_count
            self._record_block(history, sums, state.lr, time.perf_counter() - started)
            if self.advance_schedule:
                self.optimizer.epochs_end(state, n, again)
            self.network._params = live.copy()
        self._units = []
        return unit.first + again, orders[again:]

    def _record_block(self, history, sums, lr, elapsed) -> None:
        """``_record`` for the epochs of one run_epochs call (each given an
        equal share of its time)."""
        n, count = self.X.shape[0], sums.shape[1]
        history["loss"].extend(((sums[0] + sums[1]) / n).tolist())
        history["data_loss"].extend((sums[0] / n).tolist())
        history["penalty"].extend((sums[1] / n).tolist())
        history["lr"].extend([lr] * count)
        history["seconds"].extend([elapsed / count] * count)

    def _record(self, history, data_sum, penalty_sum, lr, elapsed, validation):
        n = self.X.shape[0]
        history["loss"].append((data_sum + penalty_sum) / n)
        history["data_loss"].append(data_sum / n)
        history["penalty"].append(penalty_sum / n)
        history["lr"].append(lr)
        history["seconds"].append(elapsed)
        if validation is not None:
            history["val_loss"].append(float(validation(self.network)))

    def _end_of_epoch(self, epoch, history, callbacks, early_stopping, state, n) -> bool:
        """Callbacks, the stopping rule and the schedule; True to stop."""
        return end_of_epoch(self.network, self.optimizer, state, epoch, history, callbacks,
                            early_stopping, n if self.advance_schedule else None)

    def _diverged(self, live, rollback, history, epoch, done, status, data_sum, penalty_sum):
        """Roll back to the newest snapshot known to give a finite loss and raise.

        That is this epoch's start if its first batch went through, else the
        previous epoch's start (whose first batch did).
        """
        n, batch_size = self.X.shape[0], self.batch_size
        to_epoch_before = not (done > 0 or status != 1 or epoch == 0)
        rollback.restore(live, to_epoch_before)
        self.network._params = live
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
