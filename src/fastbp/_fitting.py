"""Training a :class:`fastbp.Network`: :meth:`~fastbp.Network.fit` and its arguments.

:class:`FitMixin` gives Network its ``fit``: the arguments checked, the rows
(or chunks) and the validation rows prepared, then one
:class:`~fastbp._session.Session` over a source of epochs
(:class:`~fastbp._training.TrainingLoop` for arrays,
:class:`~fastbp._streaming.ChunkedTraining` for chunks). It uses the
network's public surface only, but for the lean path's copy of the
parameters (:meth:`FitMixin.fit_trainer`).
"""
from __future__ import annotations

import sys

import numpy as np

from . import _kernels
from ._checkpoint import read_checkpoint
from ._averaging import WeightAverage, check_clip_norm, check_ema
from ._inputs import check_XY
from ._lean import DEFAULT_SGD, lean_eligible, lean_fit, lean_trainer
from ._lbfgs import LbfgsIterations
from ._metrics import accuracy_metrics, check_metrics
from ._objective import OBJECTIVE_CHUNK_ROWS, mean_loss, pass_buffers
from ._progress import EpochProgress
from ._runtime import EXACT_REFCOUNTS, SPARE_PARAMS_MIN_BYTES, fit_generator
from ._session import Session
from ._streaming import ChunkedTraining, chunk_source
from ._training import Permutations, TrainingLoop, draw_dropout_seed
from ._validation import check_float, check_int, check_sample_weight, check_seed, split_rows
from .callbacks import EarlyStopping
from .losses import check_loss, resolve_loss
from . import optim
from .optim import LBFGS, SGD, Optimizer


class FitMixin:
    """:meth:`fit` of :class:`fastbp.Network`, and the trainer its lean path keeps."""

    def fit(self, X, Y, loss: str | None = None, optimizer=None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, seed=None, l2: float = 0.0,
            n_threads: int | None = None, verbose: bool = False, *, sample_weight=None,
            validation_data=None, validation_split: float = 0.0, early_stopping=None,
            callbacks=(), shuffle_buffer: int | None = None, metrics=None,
            resume=None, clip_norm: float | None = None, ema: float | None = None) -> dict:
        """Train by minibatch steps or L-BFGS in compiled, GIL-free calls of about 0.1 s each.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (n, sizes[0])
            A SciPy sparse matrix or array (any format; CSR is used where it
            lies, others are converted once) is multiplied row by row over
            its non-zeros, never densified; training agrees with the dense
            X to rounding.

            Or, with ``Y=None``, data larger than memory as chunks: an
            iterable of ``(X, Y)`` or ``(X, Y, sample_weight)`` tuples that
            can be read once per epoch (a list, :func:`fastbp.array_chunks`
            over memmaps, zarr or dask arrays, or a function returning a new
            generator each epoch). Each chunk is read and checked in a
            background thread while the one before trains; a malformed chunk
            (shape, dtype, non-finite values) raises an error naming it.
            Class labels take their classes from the first chunk unless the
            network has ``classes_`` already.
        Y : array_like of shape (n, sizes[-1]) or (n,), or None
            Targets; a 1-D array of numbers is taken as one column when
            sizes[-1] == 1. For softmax and sigmoid outputs a 1-D array of
            integer, string or boolean class labels, or of floats that are
            all whole numbers (as scikit-learn takes them; ``classes_`` then
            holds floats), is encoded (one-hot rows, or one 0/1 column for
            two classes on one sigmoid unit); the
            classes are kept in ``classes_`` for :meth:`predict_labels`,
            :meth:`score` and later fits.
        loss : {"mse", "bce", "cross_entropy", "huber", "absolute_error"}, Loss or None, \
default=None
            None is the output's natural loss: ``"cross_entropy"`` for a
            softmax output, ``"mse"`` for any other (a sigmoid output too:
            pass ``loss="bce"`` to classify with it). A loss with a
            parameter other than its default is an object:
            ``fastbp.HuberLoss(delta=0.5)``,
            ``fastbp.CrossEntropyLoss(label_smoothing=0.1)``. See
            :ref:`outputs_losses`.
        optimizer : Optimizer, optional
            Any optimiser of fastbp (:class:`~fastbp.SGD`, :class:`~fastbp.Adam`,
            :class:`~fastbp.RMSprop`, ...: those of ``fastbp.optim.__all__``).
            Defaults to ``SGD(lr=0.1)``. Its state (velocity, moments, step
            count, the schedule's current rate) persists across fits.
            :class:`~fastbp.LBFGS` trains on all rows at once, an epoch being
            one of its iterations (``batch_size`` and ``shuffle`` do not
            apply; X and Y in memory).
        epochs : int, default=1
        batch_size : int, default=32
            Rows per update; 1 is per-sample SGD, ``n`` or more is full batch.
            When it does not divide n, the last batch is smaller and its
            gradient is the mean over its own rows.
        shuffle : bool, default=True
            Visit the rows in a fresh random order each epoch; else in order.
        seed : int, numpy.random.Generator or None
            Seed of the shuffling (and of the validation split and dropout
            masks): an int makes the fit reproducible; None draws from one
            generator per process, seeded once from OS entropy.
        l2 : float, default=0.0
            λ of the penalty λ/(2m)·Σ‖W‖², m being each batch's row count.
        n_threads : int or None, default=None
            Threads for minibatch training. None uses the cores this process
            may run on (its CPU affinity), capped by ``OMP_NUM_THREADS`` or
            ``OPENBLAS_NUM_THREADS`` when set. Per-sample training
            (``batch_size=1``, plain SGD or with momentum) runs on one
            thread, or for a network of at least
            ``fastbp._kernels.set_sample_team()`` weights on ``n_threads``,
            each row's layers split over them with the bits of one thread
            (plain SGD with an L2 term too; not momentum's, nor dropout). Batches of
            at least 8e6 FLOPs in float64, 2e7 in float32 (6 × weights ×
            batch_size, ``fastbp._runtime.OWN_THREADS_MIN_FLOPS`` and
            ``OWN_THREADS_MIN_FLOPS_FLOAT32``) of networks with at
            most 2**20 weights in float64, 2**23 in float32
            (``OWN_THREADS_MAX_WEIGHTS``, ``OWN_THREADS_MAX_WEIGHTS_FLOAT32``) are
            split over ``n_threads`` threads of fastbp's own, each with a
            one-thread BLAS: each thread runs the forward pass and the deltas
            on its share of the rows (of a hidden layer's columns where its W
            spans over 2 MiB or a thread's share is 16 rows or fewer) and
            updates its share of the weights,
            so the elementwise work is split too. Smaller batches and larger
            networks leave the threads to the BLAS (None leaves the BLAS's own thread setting
            then). Results agree with one thread to rounding,
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
        sample_weight : array_like of shape (n,), optional
            Non-negative weights of the rows: each batch's loss and gradient
            are the weighted means over its rows, and the L2 term is divided
            by the batch's weight sum instead of its row count.
        validation_data : (X_val, Y_val), optional
            Rows scored after every epoch (``history["val_loss"]``: the loss
            without the L2 term).
        validation_split : float, default=0.0
            Instead of ``validation_data``: hold out this fraction of the rows,
            drawn at random with ``seed``, before training.
        early_stopping : bool or EarlyStopping, optional
            Stop when the validation loss (the training loss without
            validation rows) has not improved for ``patience`` epochs, and end
            with the best epoch's weights. True means ``EarlyStopping()``
            (patience 10). With an :class:`~fastbp.optim.Adaptive` schedule
            the rate is divided instead, until it reaches its floor.
        callbacks : sequence of callable, optional
            Each is called after every epoch as ``callback(epoch, history,
            network)``, epoch counted from 0 (from the checkpoint's epochs
            on a resumed fit), with the network holding that epoch's
            weights and the schedule moved to the next epoch's rate; a true
            return value stops training after it. See
            :mod:`fastbp.callbacks` (:class:`~fastbp.callbacks.ModelCheckpoint`,
            :class:`~fastbp.callbacks.CSVLogger`).
        shuffle_buffer : int or None, default=None
            Chunks only: train on buffers of at least this many rows, joined
            from consecutive chunks and shuffled together (memory grows with
            the buffer); None trains each chunk on its own.
        metrics : sequence of str, optional
            ``["accuracy"]`` (softmax or sigmoid outputs, class targets):
            after each epoch, ``history["accuracy"]`` on the training rows
            and ``history["val_accuracy"]`` on the validation rows, as
            :meth:`score` computes it (softmax: the largest output is the
            target class; sigmoid: every unit thresholded at 0.5 matches),
            with the epoch's final weights, weighted by ``sample_weight``.
            Each costs a forward pass over its rows (a third of a
            minibatch epoch's work for the training rows) and changes no
            weight. With chunks only "val_accuracy" is measured, and
            validation_data is needed.
        resume : str or os.PathLike, optional
            A checkpoint written by :class:`~fastbp.callbacks.ModelCheckpoint`
            during an earlier fit of this architecture: the network takes
            its weights and ``optimizer`` (of the same class, a fresh object
            will do) its state (buffers, step count, rate, schedule
            state), the shuffles go on from its generator state, and the
            fit trains the epochs from the checkpoint's to ``epochs``,
            which counts from the start of the fit that wrote it, as
            Keras's ``initial_epoch`` does. Called with that fit's data and
            arguments, the weights equal the uninterrupted fit's bit for
            bit. The history holds the new epochs only.
        clip_norm : float or None, default=None
            Clip the gradient's global L2 norm before every optimiser step,
            as ``torch.nn.utils.clip_grad_norm_``: g, the gradient of J (the
            L2 term included) over every W and b, is scaled by
            min(1, clip_norm / (‖g‖ + 1e-6)). Any optimiser; > 0. Per-sample
            plain SGD then runs as batches of one row (same steps, no fused
            path). See :ref:`clipping`.
        ema : float or None, default=None
            Keep an exponential moving average of the weights with this
            decay, in (0, 1), e.g. 0.999: after the first optimiser step it
            is a copy of the weights, after each later one
            ema ← ema·decay + (1 − decay)·W (``torch.optim.swa_utils.AveragedModel``
            with ``get_ema_multi_avg_fn``). The network holds the average:
            validation, callbacks, early stopping and the final weights see
            it (as Keras's ``SwapEMAWeights``), while the raw weights go on
            training privately from epoch to epoch and are dropped at the
            end. ``"loss"`` and its terms stay the raw weights' running
            minibatch objectives; ``"val_loss"`` is the average's. Each fit
            starts a new average. See :ref:`weight_averaging`.

        Returns
        -------
        dict
            Per epoch: ``"loss"``, the row-weighted mean of the minibatch
            objectives J (L2 included), each taken before its update;
            ``"data_loss"`` and ``"penalty"``, its two terms; ``"lr"``, the
            learning rate used; ``"seconds"``, wall time; ``"val_loss"``
            with validation rows; ``"accuracy"`` and ``"val_accuracy"``
            with ``metrics=["accuracy"]``.

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
        bit-identical weights from run to run on one machine and build. The
        default ``n_threads=None`` counts as the number of usable cores, so a
        process whose CPU affinity or ``OMP_NUM_THREADS`` differs may round
        differently; pass ``n_threads`` to pin it.
        Per-sample SGD (``batch_size=1``, with or without momentum) and products too
        small for BLAS are also bit-identical at any ``n_threads``. Larger
        minibatch products are not: OpenBLAS's threaded gemm sums in another
        order than its single-threaded one (measured: dgemm 300×200×256 differs
        by ~5e-14 between 1 and 2 threads), so such fits agree to rounding
        only. Across machines the kernels may round differently too: the
        per-sample kernel is compiled for AVX-512, AVX2+FMA and baseline x86-64
        (picked when the module loads; fused multiply-adds where the CPU has
        them), and OpenBLAS picks its gemm kernels by CPU.
        """
        if loss is None:
            loss = resolve_loss(loss, self.output_activation)
        code = check_loss(loss, self.output_activation)
        # None: a fresh SGD(), made where the lean path does not stand in for it
        if optimizer is None and (Y is None or resume is not None):
            optimizer = SGD()
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be one of fastbp's optimisers ({optimizer_list()}), "
                            f"got {type(optimizer).__name__}")
        # ints in range skip their checks' calls: a cold fit (caches evicted)
        # pays ~7 µs a Python call
        if type(epochs) is not int or epochs < 1:
            epochs = check_int(epochs, "epochs", 1)
        if type(batch_size) is not int or batch_size < 1:
            batch_size = check_int(batch_size, "batch_size", 1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        # the options left at their defaults skip their checks: a small fit
        # feels every call
        if seed is not None:
            seed = check_seed(seed)
        if type(l2) is not float or l2 != 0.0:
            l2 = check_float(l2, "l2", minimum=0.0)
        if n_threads is not None and (type(n_threads) is not int or n_threads < 1):
            n_threads = check_int(n_threads, "n_threads", 1)
        if early_stopping is not None:
            early_stopping = check_early_stopping(early_stopping)
        if type(callbacks) is not tuple or callbacks:
            callbacks = check_callbacks(callbacks)
        lbfgs = isinstance(optimizer, LBFGS)
        metrics = () if metrics is None else check_metrics(metrics, self)
        checkpoint = None
        if resume is not None:
            checkpoint, epochs = resumed_epochs(self, optimizer, resume, epochs)
        # only shuffles and splits draw; a new generator costs 15-19 µs
        drawn = shuffle or (validation_data is None and validation_split != 0)
        rng = fit_generator(seed, private=checkpoint is not None) if drawn else None
        if clip_norm is not None:
            clip_norm = check_clip_norm(clip_norm)
        average = None
        if ema is not None:
            average = WeightAverage(check_ema(ema))
        if lbfgs:
            check_lbfgs_options(self, clip_norm, average)
        training = None  # the rows in memory, for the training accuracy
        # the masks' seed, drawn before the shuffles (a Generator seed serves both)
        drop_seed = None if self.dropout is None else draw_dropout_seed(seed)
        if Y is None:
            if lbfgs:
                raise ValueError("LBFGS reads every row several times an iteration: pass X "
                                 "and Y in memory, not chunks")
            # shuffle draws from rng: default_rng(seed) as it was made
            rng = rng if shuffle else None
            source, validation = chunked_training(
                self, X, loss, code, optimizer, epochs, batch_size, rng, l2, n_threads,
                sample_weight, validation_data, validation_split, shuffle_buffer, drop_seed,
                clip_norm, average)
        else:
            if shuffle_buffer is not None:
                raise ValueError("shuffle_buffer applies to chunks (Y=None) only")
            classes_before = getattr(self, "classes_", None)
            try:
                X, Y = check_XY(self, X, Y, loss, encode_labels=True)
                if sample_weight is not None:
                    sample_weight = check_sample_weight(sample_weight, X.shape[0], self.dtype)
                validation = None
                if validation_data is not None or not (type(validation_split) is float
                                                       and validation_split == 0):
                    X, Y, sample_weight, validation = validation_rows(
                        self, X, Y, sample_weight, validation_data, validation_split, loss,
                        code, rng)
            except Exception:
                self.classes_ = classes_before  # a failed fit learns no classes
                raise
            n = X.shape[0]
            if lbfgs:  # all rows an iteration
                source = LbfgsIterations(self, X, Y, sample_weight, code, l2, optimizer,
                                         n_threads)
            else:
                fresh = optimizer is None  # DEFAULT_SGD stands in for SGD() on the lean path
                step = DEFAULT_SGD if fresh else optimizer
                batch_size = min(batch_size, n)
                next_order = Permutations(rng, n) if shuffle else None
                source = None
                if lean_eligible(self, X, sample_weight, checkpoint=checkpoint,
                                 callbacks=callbacks, early_stopping=early_stopping,
                                 verbose=verbose, metrics=metrics, validation=validation,
                                 clip_norm=clip_norm, average=average):
                    trainer, live, fused, source = lean_trainer(
                        self, X, Y, code, l2, step, batch_size, n_threads, epochs, next_order)
                    if trainer is not None:
                        replay = [next_order]
                        history = lean_fit(self, X, Y, trainer, live, fused, step, n_threads,
                                           epochs, fresh, next_order, replay)
                        if history is not None:
                            return history
                        next_order = replay[0]  # the orders drawn: the generator moved on
                if source is None:
                    source = TrainingLoop(self, X, Y, sample_weight, code, l2, step,
                                          batch_size, n_threads, next_order,
                                          dropout_seed=drop_seed,
                                          clip_norm=clip_norm, average=average)
                if fresh:
                    optimizer = source.optimizer = SGD()
            training = (X, Y, sample_weight)
        metric_pairs = (accuracy_metrics(self, metrics, training, validation, n_threads)
                        if metrics else ())
        if early_stopping is not None:
            early_stopping.reset()
        if checkpoint is not None:
            checkpoint.restore(self, optimizer, rng)
        if checkpoint is None:
            session = Session(self, optimizer, callbacks, early_stopping, validation,
                              EpochProgress(epochs) if verbose else None, metric_pairs, rng=rng)
        else:
            session = Session(self, optimizer, callbacks, early_stopping, validation,
                              EpochProgress(epochs) if verbose else None, metric_pairs, rng=rng,
                              initial_epoch=checkpoint.epoch, resumed=checkpoint.meta)
        return session.run(source, epochs)

    def fit_trainer(self, key, make, keep: bool, threads: int = 1) -> tuple:
        """The compiled trainer of a :meth:`fit` on its lean path
        (``fastbp._lean``), kept from fit to fit (not by pickles or copies),
        set to train a private copy of the current parameters.

        Parameters
        ----------
        key : tuple
            What it is built for besides the layout (loss, L2, batch size, dtypes).
        make : callable
            Builds one for ``key`` when none is kept for it.
        keep : bool
            Keep it for the next call (small data: it holds the rows till
            then); False drops any kept one.
        threads : int, default=1
            Threads of the copy and of the trainer's check for non-finite
            params after each run (``fastbp._runtime.pass_threads``).

        Returns
        -------
        (trainer, params) : (fastbp._kernels.Trainer, ndarray)
            The trainer and the copy it trains, to publish by :meth:`training_lease`.
        """
        kept = self.__dict__.get("_lean_trainer")
        if kept is None or kept[0] is not self.kernel_layout[0] or kept[1] != key:
            # the fourth: what the lean path decided with it (fastbp._lean.lean_trainer)
            kept = (self.kernel_layout[0], key, make(), None)
        if keep:
            self._lean_trainer = kept
        else:
            self.__dict__.pop("_lean_trainer", None)
        trainer = kept[2]
        params = self.fit_params_take(trainer, threads)
        trainer.pass_threads = threads
        return trainer, params


    def fit_params_copy(self, threads: int) -> np.ndarray:
        """A fit's private copy of the parameters, written into the spare
        array :meth:`_retire_params` kept, if any.

        Parameters
        ----------
        threads : int
            Threads of the copy (``fastbp._runtime.pass_threads``).

        Returns
        -------
        ndarray
            The copy, on a 64-byte boundary, for the fit's trainer to train.
        """
        return _kernels.aligned_copy(self._params, threads,
                                     self.__dict__.pop("_spare_params", None))

    def fit_params_take(self, trainer, threads: int) -> np.ndarray:
        """:meth:`fit_params_copy` set as ``trainer``'s parameters, in one
        call (``Trainer.take_params``): the copy goes into the spare array
        :meth:`_retire_params` kept, if any, else into an array the trainer
        trained before that nothing else refers to any more.

        Parameters
        ----------
        trainer : fastbp._kernels.Trainer
            The lean path's kept trainer (:meth:`fit_trainer`).
        threads : int
            Threads of the copy (``fastbp._runtime.pass_threads``).

        Returns
        -------
        ndarray
            The copy, on a 64-byte boundary, which ``trainer`` now trains.
        """
        return trainer.take_params(self._params, threads,
                                   self.__dict__.pop("_spare_params", None))

    def _retire_params(self, old: np.ndarray) -> None:
        """After ``old`` stopped being the parameter array: keep it as the
        spare of the next fit's private copy when it spans
        ``SPARE_PARAMS_MIN_BYTES`` or more and nothing else refers to it or
        to the memory it views (its base), else let it go. Fresh pages cost
        a fit of a big network its copy's time again: 1024-2048-2048-10
        float64, 50 MB, ~12 ms fresh, ~4 ms into mapped pages on 2 threads,
        of an epoch of 600 rows at batch 512 (~160 ms on 2 cores)."""
        model = self.__dict__.get("_compiled_predictor")
        if model is not None and model.params is old:  # stale: the next predict rebuilds it
            del self._compiled_predictor
        del model  # it refers to old
        # memory NumPy allocated (not a memmap's, a buffer's): old's own or
        # its base's, which every view of old refers to; the references:
        # the caller's, this frame's and getrefcount's own (the base: old's
        # and getrefcount's), and a view or a reader adds one. The size
        # first: a small network's fit skips the flags and counts (numpy's
        # flags object costs a cold fit, caches evicted, a few µs)
        free = EXACT_REFCOUNTS and old.nbytes >= SPARE_PARAMS_MIN_BYTES
        if free and old.base is None:
            free = (type(old) is np.ndarray and old.flags.owndata
                    and sys.getrefcount(old) <= 3)
        elif free:
            free = (type(old.base) is np.ndarray and old.base.flags.owndata
                    and sys.getrefcount(old) <= 3 and sys.getrefcount(old.base) <= 2)
        if free:
            self._spare_params = old
        else:
            self.__dict__.pop("_spare_params", None)


def check_lbfgs_options(network, clip_norm, average) -> None:
    """Refuse what LBFGS cannot do: it steps on all rows at once."""
    if network.dropout is not None:
        raise ValueError("dropout draws masks per minibatch step; LBFGS steps on all rows "
                         "with one deterministic objective: use a minibatch optimiser or "
                         "Network(..., dropout=None)")
    if clip_norm is not None or average is not None:
        raise ValueError("clip_norm and ema act around minibatch steps; LBFGS takes none")


def resumed_epochs(network, optimizer, resume, epochs: int) -> tuple:
    """fit's checkpoint (None without ``resume``) and the epochs left to train."""
    if resume is None:
        return None, epochs
    checkpoint = read_checkpoint(resume, network, optimizer)
    if checkpoint.epoch >= epochs:
        raise ValueError(f"the checkpoint {checkpoint.path!r} is at epoch {checkpoint.epoch}: "
                         f"epochs={epochs}, the total counted from the start of the fit that "
                         "wrote it, leaves none to train")
    return checkpoint, epochs - checkpoint.epoch


def chunked_training(network, chunks, loss, code, optimizer, epochs, batch_size, rng, l2,
                     n_threads, sample_weight, validation_data, validation_split,
                     shuffle_buffer, dropout_seed=None, clip_norm=None, average=None) -> tuple:
    """fit's source over chunks (``Y=None``), one pass over them an epoch,
    and its validation-loss function (or None)."""
    if sample_weight is not None:
        raise ValueError("with chunks, give the weights in each chunk: (X, Y, sample_weight)")
    if validation_split:
        raise ValueError("with chunks, pass validation_data instead of validation_split")
    shuffle_buffer = 0 if shuffle_buffer is None else check_int(
        shuffle_buffer, "shuffle_buffer", 1)
    validation = None if validation_data is None else validation_scorer(
        network, validation_data, loss, code)

    def check(X, Y, weights):
        X, Y = check_XY(network, X, Y, loss, encode_labels=True)
        return X, Y, check_sample_weight(weights, X.shape[0], network.dtype)

    source = ChunkedTraining(network, chunk_source(chunks, epochs), check, code, l2, optimizer,
                             batch_size, n_threads, rng, shuffle_buffer,
                             dropout_seed=dropout_seed, clip_norm=clip_norm, average=average)
    return source, validation


class ValidationRows:
    """A fit's validation rows ``X`` and ``Y``: called with the network
    after each epoch, their mean loss (without the L2 term)."""

    __slots__ = ("X", "Y", "code", "_buffers")

    def __init__(self, X, Y, code: int):
        self.X, self.Y, self.code = X, Y, code
        self._buffers = None  # made at the first call, kept for the fit's epochs

    def __call__(self, net) -> float:
        sizes, acts = net.kernel_layout
        if self._buffers is None:
            self._buffers = pass_buffers(sizes, acts, min(self.X.shape[0], OBJECTIVE_CHUNK_ROWS),
                                         net.dtype)
        return mean_loss(self.X, self.Y, net.params, sizes, acts, self.code, 0.0,
                         OBJECTIVE_CHUNK_ROWS, self._buffers)


def validation_loss(X_val, Y_val, code: int) -> ValidationRows:
    """The validation-loss function fit calls with the network after each epoch."""
    return ValidationRows(X_val, Y_val, code)


def validation_rows(network, X, Y, sample_weight, validation_data, validation_split, loss,
                     code, rng):
    """(X, Y, sample_weight) to train on and the validation-loss function, or None."""
    validation_split = check_float(validation_split, "validation_split", minimum=0.0,
                                   maximum=1.0, strict_max=True)
    if validation_data is not None and validation_split:
        raise ValueError("pass validation_data or validation_split, not both")
    if validation_data is not None:
        return X, Y, sample_weight, validation_scorer(network, validation_data, loss, code)
    if not validation_split:
        return X, Y, sample_weight, None
    (X, Y, sample_weight), (X_val, Y_val, _) = split_rows(
        (X, Y, sample_weight), validation_split, rng, "validation_split")
    return X, Y, sample_weight, validation_loss(X_val, Y_val, code)


def validation_scorer(network, validation_data, loss: str, code: int):
    """The validation-loss function of ``validation_data``, checked."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError("validation_data must be a pair (X_val, Y_val)")
    X_val, Y_val = check_XY(network, *validation_data, loss)
    return validation_loss(X_val, Y_val, code)


def check_early_stopping(early_stopping):
    """``fit``'s early_stopping as an EarlyStopping or None."""
    if early_stopping is None or early_stopping is False:
        return None
    if early_stopping is True:
        return EarlyStopping()
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be True, False, None or a fastbp.EarlyStopping, "
                        f"got {early_stopping!r}")
    return early_stopping


def optimizer_list() -> str:
    """"fastbp.SGD, fastbp.Adam, ... or fastbp.LBFGS": every optimiser that
    ``fastbp.optim.__all__`` (and so fastbp) exports, for messages."""
    names = [f"fastbp.{name}" for name in optim.__all__
             if isinstance(getattr(optim, name), type)
             and issubclass(getattr(optim, name), Optimizer) and name != "Optimizer"]
    return ", ".join(names[:-1]) + " or " + names[-1]


def check_callbacks(callbacks) -> tuple:
    """``fit``'s callbacks as a tuple of callables."""
    if callable(callbacks):
        callbacks = (callbacks,)
    try:
        callbacks = tuple(callbacks)
    except TypeError:
        raise TypeError(f"callbacks must be a sequence of callables, got {callbacks!r}") from None
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables (epoch, history, network), "
                            f"got {callback!r}")
    return callbacks
