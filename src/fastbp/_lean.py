"""A fit of one kernel call: :meth:`fastbp.Network.fit`'s lean path for small fits.

A small fit with nothing between its epochs (no callbacks, validation,
stopping rule, metrics, progress bar, checkpoint, dropout, clipping or
average, dense rows without weights, no threads of fastbp's own) trains in
one ``Trainer.run`` call, or all its epochs in one ``Trainer.run_epochs``
call, holding the BLAS limit of an ``n_threads`` around it. Then :class:`~fastbp._session.Session` and
:class:`~fastbp._training.TrainingLoop` would do for it what this module does
in a straight line, at about two thirds of their fixed cost: the same lease,
Ctrl-C deferral, BLAS limit, trainer, row orders, history and optimiser
counters.

A network keeps the trainer of its small lean fits, and with it what
decided the fit's path and threads (:func:`lean_trainer`): the next fit that
asks the same questions skips the training loop that would answer them. It
trains the parameters the network holds then, whoever set them.

A divergence is left to them: the optimiser's state goes back to where it
was, nothing was published, and :meth:`~fastbp.Network.fit` runs its full
path on the orders drawn here (:class:`Replayed`), which meets the same
divergence and reports and rolls it back as it always does.
"""
from __future__ import annotations

import time

import numpy as np

from . import _kernels
from ._architecture import weight_count
from ._runtime import (PASS_THREADS_MIN_BYTES, blas_threads, may_own_threads, pass_threads,
                       sigint_deferred)
from ._session import interrupt, new_history
from ._training import TrainingLoop
from .losses import loss_param
from .optim import SGD, OptimizerState

#: fit's default optimiser, ``SGD()``, for its hyper-parameters and step: a
#: lean fit with ``optimizer=None`` gives it a fresh state of its own (as a
#: fresh ``SGD()`` would have) and drops it after, never storing one in it
DEFAULT_SGD = SGD()
#: its first rate, as a fresh ``SGD()``'s state starts with it
DEFAULT_LR = DEFAULT_SGD.schedule.initial_lr(DEFAULT_SGD.lr)
#: what ``DEFAULT_SGD.configure`` hands a trainer with such a state (no
#: buffers, step count 0): made once, as its ``hyper()`` builds a dict each
#: call (the two calls cost a small fit ~0.5 µs)
DEFAULT_SETTINGS = (DEFAULT_SGD.kernel_name, DEFAULT_LR, DEFAULT_SGD.hyper())


class Replayed:
    """The row orders a lean fit drew before it diverged, for the full path
    to train on instead of drawing again (the generator has moved on)."""

    __slots__ = ("orders",)

    def __init__(self, orders: np.ndarray):
        self.orders = orders

    def __call__(self) -> np.ndarray:
        return self.orders

    def many(self, count: int) -> np.ndarray:
        if count != self.orders.shape[0]:  # the full path's blocks are the lean path's
            raise RuntimeError(f"fastbp: {count} orders asked for, {self.orders.shape[0]} drawn")
        return self.orders


#: rows of X and Y (bytes) up to which a network keeps its lean fits'
#: trainer, which holds them until the next fit: a small fit's set-up is a
#: third of its fixed cost, a bigger one's holding its data is not worth it
KEEP_TRAINER_BYTES = 1 << 16


def kept_trainer(source) -> tuple:
    """A compiled trainer of ``source``'s network, loss, L2 term and batch
    size, on its threads (one but for a wide network's per-sample fit,
    :meth:`~fastbp._training.TrainingLoop.sample_threads`;
    :meth:`~fastbp._training.TrainingLoop.new_trainer`):
    the one the network kept from its last lean fit when those and the
    dtypes match (each fit sets its params, data, optimiser and order anew;
    nothing else of it carries over), else a new one, kept for the next fit
    when the data are small (:meth:`fastbp.Network.fit_trainer`). Returns
    it and the private copy of the network's parameters it trains."""
    network = source.network
    threads = source.sample_threads()
    # the L2 term's sign bit too (hex): -0.0 == 0.0, and the kernels read its bits
    key = (int(source.loss_code), loss_param(source.loss_code), float(source.l2).hex(),
           source.batch_size, network.dtype, network.compute_dtype, threads)
    trainer, live = network.fit_trainer(key, lambda: source.new_trainer(threads),
                                        source.X.nbytes + source.Y.nbytes <= KEEP_TRAINER_BYTES,
                                        pass_threads(network.n_params * network.dtype.itemsize,
                                                     source.n_threads))
    trainer.set_order(None)  # a kept one's last order may not fit these rows
    return trainer, live


def lean_eligible(network, X, sample_weight, *, checkpoint, callbacks, early_stopping,
                  verbose, metrics, validation, clip_norm, average) -> bool:
    """Whether :meth:`fastbp.Network.fit` may train by :func:`lean_fit`,
    before :func:`lean_trainer` asks about its kernel calls: when the
    session of its full path would do nothing but kernel calls. Each term
    is something only that path does:

    - ``checkpoint`` (resume): the session restores the weights, the
      optimiser's and the generator's state, and counts from its epoch;
    - ``callbacks``, ``early_stopping``: Python between epochs;
    - ``verbose``: a progress bar drawn after each epoch;
    - ``metrics``, ``validation``: rows scored after each epoch;
    - ``clip_norm`` and ``average`` (ema): step rules set on the trainer,
      and the average published instead of the weights;
    - the network's dropout: masks the trainer draws per epoch
      (``set_dropout_epoch``);
    - ``sample_weight``: the lean fit sets the rows unweighted;
    - sparse X: the lean fit takes dense arrays, whose bytes decide
      whether the network keeps the trainer (:func:`kept_trainer`).
    """
    return (checkpoint is None and not callbacks and early_stopping is None and not verbose
            and not metrics and validation is None and clip_norm is None
            and average is None and network.dropout is None
            and sample_weight is None and type(X) is np.ndarray)


def lean_trainer(network, X, Y, code, l2: float, optimizer, batch_size: int, n_threads,
                 epochs: int, next_order):
    """The trainer of a fit that :func:`lean_eligible` let through, when
    its epochs are one kernel call on no threads of fastbp's own
    (:meth:`~fastbp._training.TrainingLoop.one_call`): ``(trainer, live,
    fused, None)``, ``live`` the private copy of the parameters it trains,
    ``fused`` whether it runs the fused per-sample epoch (which calls no
    BLAS). Else ``(None, None, False, source)``: the fit's
    :class:`~fastbp._training.TrainingLoop`, for the full path.

    The network keeps, with its small fits' trainer (:func:`kept_trainer`),
    what decided them (:func:`decision_key`): a fit that asks the same
    takes it as it is, without the loop and its questions. Only decisions
    that no thread setting of the process takes part in are kept
    (:func:`settled`): those of ``default_threads()`` (affinity and
    environment) are asked again every fit.
    """
    fused = batch_size == 1 and optimizer.fused_per_sample
    key = decision_key(network, X, code, l2, optimizer, batch_size, n_threads, epochs, fused)
    kept = network.__dict__.get("_lean_trainer")
    if kept is not None and kept[3] == key and kept[0] is network.kernel_layout[0]:
        trainer = kept[2]
        # a private copy of the current parameters, which the caller may have set
        live = network.fit_params_take(trainer, 1)
        return trainer, live, fused, None
    source = TrainingLoop(network, X, Y, None, code, l2, optimizer, batch_size, n_threads,
                          next_order)
    # one epoch trains no block: the rate's constancy is moot (and costs a look-up)
    if not source.one_call(epochs, epochs == 1 or optimizer.schedule.constant):
        return None, None, False, source
    trainer, live = kept_trainer(source)
    kept = network.__dict__.get("_lean_trainer")
    if kept is not None and kept[2] is trainer:
        network._lean_trainer = kept[:3] + (key if settled(network, batch_size, fused)
                                            else None,)
    return trainer, live, fused, None


def decision_key(network, X, code, l2: float, optimizer, batch_size: int, n_threads,
                 epochs: int, fused: bool) -> tuple:
    """What a lean fit's path and trainer depend on besides the network's
    layout: the loss (its parameter too), the L2 term's bits (-0.0 == 0.0,
    and the kernels read its sign), the batch size, rows, ``n_threads``,
    epochs, the fused per-sample step, the rate's constancy (many epochs
    are one call only at a constant rate), the dtypes and the kernels'
    per-sample team threshold (``_kernels.set_sample_team``)."""
    # l2 is a float (fit checked it); the loss code's parameter as loss_param reads it
    return (int(code), getattr(code, "param", None), l2.hex(), batch_size, X.shape[0],
            n_threads, epochs, fused, epochs == 1 or optimizer.schedule.constant,
            network.dtype, network.compute_dtype, _kernels.set_sample_team())


def settled(network, batch_size: int, fused: bool) -> bool:
    """Whether a lean fit's decisions (its path, the trainer's threads, its
    passes' threads) are the same whatever ``default_threads()`` says: its
    parameters take no threads of their own (``pass_threads``), a
    per-sample fit's network is below the team threshold or computes in
    bfloat16 (``sample_team_threads``), a minibatch fit's batches are too
    small or its network too big for threads of fastbp's own
    (``own_training_threads``)."""
    if not _kernels.HAVE_THREADS:
        return True
    if network.n_params * network.dtype.itemsize >= PASS_THREADS_MIN_BYTES:
        return False
    if fused:
        return (network.compute_dtype == "bfloat16"
                or weight_count(network.sizes) < _kernels.set_sample_team())
    return not may_own_threads(network.sizes, batch_size, False, network.dtype.itemsize)


def lean_fit(network, X, Y, trainer, live, fused: bool, optimizer, n_threads, epochs: int,
             fresh: bool, next_order, replay: list):
    """Train ``network`` on dense rows ``X`` and ``Y`` for ``epochs``
    epochs in one kernel call of ``trainer`` (:func:`lean_trainer`'s, set
    to train ``live``; ``fused``: its fused per-sample epoch), as a session of fit's full path would; ``fresh``:
    ``optimizer`` is :data:`DEFAULT_SGD` standing in for a fresh ``SGD()``;
    ``next_order``: the rows' orders (None: in turn). Returns the history,
    or None when the call diverged: then nothing was published, the
    optimiser's state is as it was, and ``replay`` holds the orders drawn
    here (:class:`Replayed`, or None for rows in turn) for the full path
    to run."""
    n = X.shape[0]
    history = new_history(False)
    with network.training_lease() as lease, sigint_deferred() as interrupted:
        state = OptimizerState({}, DEFAULT_LR) if fresh else optimizer.state(network)
        trainer.set_data(X, Y, None)
        if fresh:
            trainer.set_optimizer(*DEFAULT_SETTINGS)
        else:
            optimizer.configure(trainer, state)  # its rate too
        # what the kernels change in place, for the full path after a divergence
        buffers = state.buffers
        saved = ({name: value.copy() for name, value in buffers.items()} if buffers else {},
                 state.step_count)
        if interrupted.is_set():  # Ctrl-C before the call: as the full path stops
            if np.isfinite(live).all():
                lease.publish(live)
            raise interrupt(history, f"fit stopped in epoch 1 after 0 of its {n} rows") \
                from None
        if epochs == 1:
            orders = next_order() if next_order is not None else None
            trainer.set_order(orders)
        else:
            orders = next_order.many(epochs) if next_order is not None else None
            trainer.set_order(orders.reshape(-1) if orders is not None else None)
        if epochs != 1:
            sums = np.zeros((2, epochs))
        # fit(n_threads=k) holds the BLAS at k threads as the full path does
        # (TrainingLoop.blas_limit): per-sample kernels call no BLAS
        limit = None if n_threads is None or fused else blas_threads.limit(n_threads)
        if limit is not None:
            limit.__enter__()
        try:
            started = time.perf_counter()
            if epochs == 1:
                status, data, penalty, _ = trainer.run(0, n)
            else:
                _, status = trainer.run_epochs(epochs, n, sums[0], sums[1])
            elapsed = time.perf_counter() - started
        finally:
            if limit is not None:
                limit.__exit__(None, None, None)
        if status != 0:
            for name, value in saved[0].items():
                np.copyto(state.buffers[name], value)
            state.step_count = saved[1]
            replay[0] = Replayed(orders) if orders is not None else None
            return None
        state.step_count = trainer.step_count
        lease.publish(live)
        if epochs == 1:
            # the session's record of one epoch (the loop's sums start at 0.0)
            data, penalty = 0.0 + data, 0.0 + penalty
            history["loss"].append((data + penalty) / n)
            history["data_loss"].append(data / n)
            history["penalty"].append(penalty / n)
            history["lr"].append(state.lr)
            history["seconds"].append(elapsed)
            if not fresh:  # a fresh state is dropped, its constant rate recorded
                optimizer.epoch_ends(state, n, history)  # a constant rate's: epochs_end(state, n, 1)
        else:
            data, penalty = sums[0], sums[1]
            loss, data_loss = (data + penalty) / n, data / n
            losses = loss.tolist()
            # the lists are new_history's empty ones: put whole lists in their
            # place, not extend them (build and free 280 -> 220 µs at 10 000
            # epochs, ~1% of XOR's fit); without an L2 term the lists hold the same
            # values bit for bit: share the floats (a new float costs ~15 ns to
            # make and free, and an XOR epoch of 4 rows ~400 ns); penalty's
            # bits all 0: every term +0.0
            same = np.array_equal(loss.view(np.uint64), data_loss.view(np.uint64))
            history["loss"] = losses
            history["data_loss"] = losses.copy() if same else data_loss.tolist()
            history["penalty"] = ([0.0] * epochs if not penalty.view(np.uint64).any()
                                  else (penalty / n).tolist())
            history["lr"] = [state.lr] * epochs
            history["seconds"] = [elapsed / epochs] * epochs
            optimizer.epochs_end(state, n, epochs)
    if interrupted.is_set():
        raise interrupt(history, "fit had already finished all its epochs")
    return history
