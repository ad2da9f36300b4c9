"""One fit's epochs: a :class:`Session` runs them over a source of epochs.

A *source* trains epochs: over arrays in memory (``_training.TrainingLoop``),
over chunks read from disk (``_streaming.ChunkedTraining``), or over Dask
workers. The session holds the network for the fit (a second fit or a
``set_weights`` in another thread is refused meanwhile), defers Ctrl-C to the
source's next safe point, builds the history, and runs the end-of-epoch rules
once for every source: validation, the progress bar, the callbacks, the
stopping rule and the optimiser's schedule; at the end, the stopping rule's
best weights come back.

A source has three methods:

``running(session, epochs)``
    A context manager entered once for the fit, inside the session's hold
    on the network (the source's threads, its copy of the weights).
``train(session, epoch, count) -> EpochReport``
    Train epochs from ``epoch`` on: one, or up to ``count`` when
    ``count > 1`` (only then: the session has nothing to run between
    epochs, see :attr:`Session.quiet`). A source that sets ``converged``
    (L-BFGS) ends the session after that report, which may hold no epoch.
    Publish the weights through ``session.publish``; read the interrupt flag
    (:attr:`Session.interrupted`) at safe points and raise
    ``KeyboardInterrupt`` when it is set. On a non-finite loss, restore
    finite weights and raise ``TrainingDiverged(message, session.history)``.
``interrupted(session, epoch) -> str``
    After a ``KeyboardInterrupt`` in epoch ``epoch``: publish the newest
    weights that hold whole batches, and say where the fit stopped (for the
    exception's note).
"""
from __future__ import annotations

import contextlib

from ._runtime import sigint_deferred

#: the keys every fit's history has, in order (:func:`new_history`); "val_loss"
#: comes with validation, then the metrics' keys
HISTORY_KEYS = ("loss", "data_loss", "penalty", "lr", "seconds")


class EpochReport:
    """What a source's ``train`` call did: epochs ``first`` to
    ``first + len(data_sums) - 1``.

    Parameters
    ----------
    first : int
        The first epoch reported, counted from 0. At most the epoch the
        session asked for: a source that went back (to replay epochs after
        a divergence) reports from there, and the session forgets the
        history from ``first`` on before recording.
    data_sums, penalty_sums : sequence of float
        Per epoch, the sums of the data term and of the L2 term over the
        epoch's rows (each batch's mean times its rows).
    rows : int
        Rows of one epoch: what the optimiser's schedule counts.
    lr : float
        The learning rate the epochs used.
    seconds : float
        Wall time of all the epochs reported, shared equally.
    weight : float or None, default=None
        The divisor of the sums in the history's means; None is ``rows``.
    """

    __slots__ = ("first", "data_sums", "penalty_sums", "rows", "lr", "seconds", "weight")

    def __init__(self, first: int, data_sums, penalty_sums, rows: int, lr: float,
                 seconds: float, weight: float | None = None):
        self.first, self.data_sums, self.penalty_sums = first, data_sums, penalty_sums
        self.rows, self.lr, self.seconds = rows, lr, seconds
        self.weight = rows if weight is None else weight


def new_history(validation: bool, metrics=()) -> dict:
    """An empty history: a list for each of :data:`HISTORY_KEYS` (and
    "val_loss"), then for each name in ``metrics``."""
    history = {"loss": [], "data_loss": [], "penalty": [], "lr": [], "seconds": []}
    if validation:
        history["val_loss"] = []
    for name in metrics:
        history[name] = []
    return history


def interrupt(history: dict, where: str, exc: BaseException | None = None) -> KeyboardInterrupt:
    """The KeyboardInterrupt fit raises: ``history`` attached, a note on where it stopped."""
    exc = KeyboardInterrupt() if exc is None else exc
    exc.history = history
    if hasattr(exc, "add_note"):  # Python 3.11+
        exc.add_note(f"fastbp: {where}; the network holds the weights after the last "
                     "completed batch")
    return exc


class Session:
    """The epochs of one fit over a source, and everything between them.

    Parameters
    ----------
    network : Network
        Trained in place; it must not be training already.
    optimizer : fastbp.optim.Optimizer
        Its state for ``network`` is :attr:`state`; the session moves its
        schedule after every epoch.
    callbacks : sequence of callable, default=()
        ``callback(epoch, history, network)`` after each epoch (epoch from
        ``initial_epoch``); a true return value stops training. A callback
        with a ``fit_starts(session)`` method has it called once the session
        holds the network and :attr:`state`, before the first epoch; one
        with an ``after_epoch(epoch, history, network)`` method has it
        called at the end of each epoch, once the stopping rule and the
        schedule have run.
    early_stopping : fastbp.EarlyStopping or None
        Reset by the caller; its best weights come back when the epochs end
        (not after an error).
    validation : callable or None
        ``validation(network) -> float``: the validation loss, recorded as
        ``history["val_loss"]`` after each epoch.
    progress : EpochProgress or None
    metrics : sequence of (str, callable), default=()
        ``(key, metric)``: ``metric(network)`` recorded as
        ``history[key]`` after each epoch, after "val_loss".
    rng : numpy.random.Generator or None, default=None
        The fit's generator (shuffles), for checkpoints.
    initial_epoch : int, default=0
        The number of the first epoch, for the callbacks: the epochs a
        resumed fit's checkpoint had completed.
    resumed : dict or None, default=None
        The checkpoint a resumed fit started from (its metadata).

    Attributes
    ----------
    history : dict
        Built while :meth:`run` runs; see :meth:`fastbp.Network.fit`.
    stopped : bool
        Whether the last run ended before its epochs, by a callback, the
        stopping rule or a source that converged.
    state : fastbp.optim.OptimizerState
        The optimiser's state for the network, during :meth:`run`.
    quiet : bool
        Nothing runs between epochs (no callbacks, stopping rule,
        validation or progress bar, and a constant rate): a source may
        train many epochs in one call.
    interrupted : threading.Event
        Set when Ctrl-C came during :meth:`run`; sources check it between
        their kernel calls.
    publish : callable
        During :meth:`run`, the lease's ``publish(params)``: make ``params``
        the network's parameters, without a copy (see
        :class:`TrainingLease`); sources publish their weights through it.
    """

    def __init__(self, network, optimizer, callbacks=(), early_stopping=None, validation=None,
                 progress=None, metrics=(), *, rng=None, initial_epoch: int = 0,
                 resumed=None):
        self.network, self.optimizer = network, optimizer
        self.callbacks, self.early_stopping = callbacks, early_stopping
        self.validation, self.progress, self.metrics = validation, progress, metrics
        self.rng, self.initial_epoch, self.resumed = rng, initial_epoch, resumed
        self.history = None
        self.stopped = False
        self.state = self.interrupted = self.publish = None
        self._after_epoch = ()
        #: nothing runs between epochs (no callbacks, stopping rule, validation,
        #: metrics or progress bar, and a constant rate): a source may train many at once
        self.quiet = (not callbacks and early_stopping is None and validation is None
                      and progress is None and not metrics and optimizer.schedule.constant)

    def run(self, source, epochs: int) -> dict:
        """Train ``epochs`` epochs over ``source``; return the history.

        Raises
        ------
        TrainingDiverged
            From the source, with the history of the epochs that completed.
        KeyboardInterrupt
            On Ctrl-C, once the source reached a safe point: ``history``
            attached and a note on where the fit stopped.
        RuntimeError
            If the network is training already.
        """
        network = self.network
        history = self.history = new_history(
            self.validation is not None,
            [name for name, _ in self.metrics] if self.metrics else ())
        self.stopped = False
        epoch = 0
        with network.training_lease() as lease, sigint_deferred() as self.interrupted:
            self.publish = lease.publish
            self.state = self.optimizer.state(network)
            try:
                if self.callbacks:
                    self._callbacks_start()
                with source.running(self, epochs):
                    while epoch < epochs:
                        if self.interrupted.is_set():
                            raise KeyboardInterrupt
                        report = source.train(self, epoch, epochs - epoch if self.quiet else 1)
                        epoch = self._record(report)
                        if getattr(source, "converged", False):  # nothing left to train
                            self.stopped = True
                            break
                        if not self.quiet and self._end_of_epoch(epoch - 1, report.rows):
                            self.stopped = True
                            break
            except KeyboardInterrupt as exc:
                raise interrupt(history, source.interrupted(self, epoch), exc) from None
            finally:
                self.publish = None
                if self.progress is not None:
                    self.progress.close()
        if self.early_stopping is not None:
            self.early_stopping.restore(network)
        if self.interrupted.is_set():
            # Ctrl-C came during the last kernel call: training is complete, but
            # the user asked to stop
            raise interrupt(history, "fit had already finished all its epochs")
        return history

    def _callbacks_start(self) -> None:
        """Call the callbacks' ``fit_starts`` and gather their ``after_epoch``."""
        for callback in self.callbacks:
            if hasattr(callback, "fit_starts"):
                callback.fit_starts(self)
        self._after_epoch = [callback.after_epoch for callback in self.callbacks
                             if hasattr(callback, "after_epoch")]

    def _record(self, report: EpochReport) -> int:
        """Add the report's epochs to the history (validation and progress
        after a single epoch, the schedule after many); the next epoch."""
        history = self.history
        count = len(report.data_sums)
        if report.first < len(history["loss"]):  # the source went back
            for values in history.values():
                del values[report.first:]
        weight = report.weight
        if count == 1:
            # float: a block's replay may report one epoch as float64 arrays
            data, penalty = float(report.data_sums[0]), float(report.penalty_sums[0])
            history["loss"].append((data + penalty) / weight)
            history["data_loss"].append(data / weight)
            history["penalty"].append(penalty / weight)
            history["lr"].append(report.lr)
            history["seconds"].append(report.seconds)
            if self.validation is not None:
                history["val_loss"].append(float(self.validation(self.network)))
            for name, metric in self.metrics:
                history[name].append(float(metric(self.network)))
            if self.progress is not None:
                self.progress.update(history["loss"][-1], report.seconds)
        elif count:
            data, penalty = report.data_sums, report.penalty_sums  # float64 arrays
            history["loss"].extend(((data + penalty) / weight).tolist())
            history["data_loss"].extend((data / weight).tolist())
            history["penalty"].extend((penalty / weight).tolist())
            history["lr"].extend([report.lr] * count)
            history["seconds"].extend([report.seconds / count] * count)
        if self.quiet and count:
            self.optimizer.epochs_end(self.state, report.rows, count)
        return report.first + count

    def _end_of_epoch(self, epoch: int, rows: int) -> bool:
        """The callbacks, the stopping rule and the schedule (which a plateau
        may lower instead of stopping), then the callbacks' ``after_epoch``
        (a checkpoint saves the state the next epoch starts from); True to
        stop."""
        network, optimizer, early_stopping = self.network, self.optimizer, self.early_stopping
        history = self.history
        epoch += self.initial_epoch
        stop = False
        for callback in self.callbacks:
            stop = bool(callback(epoch, history, network)) or stop
        plateau = early_stopping is not None and early_stopping.update(epoch, history, network)
        optimizer.epoch_ends(self.state, rows, history)
        if plateau:
            if optimizer.plateau(self.state):
                stop = True
            else:
                early_stopping.wait = 0  # the schedule lowered the rate: count afresh
        for after_epoch in self._after_epoch:
            after_epoch(epoch, history, network)
        return stop


class EpochSource:
    """A source of epochs for a :class:`Session` (see this module's notes).

    Subclasses set ``network`` and ``optimizer`` and implement :meth:`train`;
    :meth:`run` is a session of their own.
    """

    #: whether the last :meth:`run` ended before its epochs (a callback or the stopping rule)
    stopped = False

    def run(self, epochs: int, callbacks=(), early_stopping=None, validation=None,
            progress=None) -> dict:
        """Train ``epochs`` epochs in a :class:`Session` of their own; return the history.

        Parameters
        ----------
        epochs : int
        callbacks, early_stopping, validation, progress
            As :class:`Session` takes them.

        Returns
        -------
        dict
            "loss" (row-weighted mean of the batch objectives, each before
            its update), "data_loss" and "penalty" (its two terms), "lr" and
            "seconds" per epoch; "val_loss" with ``validation``.

        Raises
        ------
        TrainingDiverged, KeyboardInterrupt
            As documented in :meth:`fastbp.Network.fit`.
        """
        session = Session(self.network, self.optimizer, callbacks, early_stopping, validation,
                          progress)
        try:
            return session.run(self, epochs)
        finally:
            self.stopped = session.stopped

    def running(self, session, epochs: int):
        """What the source holds for a session's ``epochs`` (here: nothing)."""
        return contextlib.nullcontext()

    def train(self, session, epoch: int, count: int) -> EpochReport:
        """Train epoch ``epoch`` (with ``count > 1``, up to ``count`` epochs)."""
        raise NotImplementedError

    def interrupted(self, session, epoch: int) -> str:
        """After Ctrl-C: publish what is safe to keep; where the fit stopped."""
        return f"fit stopped in epoch {epoch + 1}"


class TrainingLease:
    """A network held for one training run: :meth:`fastbp.Network.training_lease`.

    Entered, the network counts as training: a second lease (a second
    :meth:`~fastbp.Network.fit`), :meth:`~fastbp.Network.set_weights`,
    :meth:`~fastbp.Network.replace_params` and
    :meth:`~fastbp.Network.init_weights` raise ``RuntimeError`` until it is
    left. A class rather than a generator, for a small fit's fixed cost.

    Attributes
    ----------
    publish : callable
        ``publish(params)`` makes ``params`` the network's parameters,
        without a copy: a flat array of the network's dtype and shape,
        C-contiguous, that nobody writes again (readers in other threads hold
        it as their snapshot).
    """

    __slots__ = ("_start", "_end", "publish")

    def __init__(self, start, end, publish):
        # the network's own methods, which hold its lock
        self._start, self._end, self.publish = start, end, publish

    def __enter__(self) -> "TrainingLease":
        self._start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._end()
