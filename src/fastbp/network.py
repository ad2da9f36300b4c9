"""The :class:`Network`: parameters, predict, loss, gradients and fit.

Every method validates its input here, then hands C-contiguous arrays to the
compiled kernels in :mod:`fastbp._kernels`.
"""
from __future__ import annotations

import math
import numbers
import threading

import numpy as np

from . import _kernels, _labels
from ._progress import EpochProgress
from ._runtime import aligned_empty, blas_threads, predict_threads
from ._streaming import ChunkedTraining, chunk_source
from ._training import Permutations, TrainingDiverged, TrainingLoop
from .callbacks import EarlyStopping
from ._npz import save as save_npz
from ._objective import (flat_gradient, kernel_rows, layer_views, mean_loss, objective,
                         weight_mask)
from ._scores import accuracy, r2_score
from ._validation import (as_matrix, check_choice, check_dtype, check_float, check_int,
                          check_rows_match, check_sample_weight, check_seed,
                          is_convertible_layout, is_ready_layout, split_rows, usable_as_is)
from .losses import check_loss, check_targets, resolve_loss
from .optim import Optimizer, SGD

#: activation name -> kernel code (csrc/fastbp_codes.h, through the enum)
ACTIVATIONS = {code.name.lower(): int(code) for code in _kernels.Activation}
HIDDEN_ACTIVATIONS = {name: code for name, code in ACTIVATIONS.items() if name != "softmax"}

#: the kernels keep per-layer offsets on the stack
MAX_LAYERS = 63
MAX_WIDTH = 2**31 - 1
#: rows per kernel call in predict and loss, to bound the workspace
CHUNK_ROWS = 4096


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
        self._sizes.flags.writeable = self._acts.flags.writeable = False  # see kernel_layout
        self._params = np.zeros(sum((a + 1) * b for a, b in zip(sizes, sizes[1:])), self.dtype)
        # guards _training and every rebinding of _params by fit and set_weights
        self._fit_lock = threading.Lock()
        self._training = False
        #: the labels of the output units after a fit on class labels, else None
        self.classes_ = None
        self.init_weights(np.random.default_rng(check_seed(seed)))

    # -- parameters ---------------------------------------------------------

    def _layer_views(self, flat: np.ndarray):
        """(W, b) views of each layer inside a flat parameter-shaped vector."""
        return layer_views(self.sizes, flat)

    def init_weights(self, rng=None, *, factor=None, biases: str = "zeros") -> None:
        """Draw new weights: Glorot uniform, fastbp's one initialisation.

        Layer by layer, ``W`` (n_in, n_out) is drawn row by row, uniformly from
        [-r, r], r = sqrt(factor / (n_in + n_out)). The constructor calls
        ``init_weights(default_rng(seed))``, the estimators (as scikit-learn)
        ``init_weights(random_state, factor=2 or 6, biases="uniform")``.

        Parameters
        ----------
        rng : numpy.random.Generator, numpy.random.RandomState, int or None
            The source of the draws; an int or None seeds ``default_rng``.
        factor : float or None, default=None
            None: 2 for a sigmoid layer (its gentler slope takes a smaller
            range), 6 for any other. A positive number: that for every layer.
        biases : {"zeros", "uniform"}, default="zeros"
            "uniform" draws each layer's biases from its weights' range, right
            after its weights.

        Raises
        ------
        TypeError
            If ``rng`` is not a generator, an int or None.
        ValueError
            On a factor that is not positive and finite, or other ``biases``.
        RuntimeError
            While :meth:`fit` runs on this network in another thread.
        """
        rng = _check_rng(rng)
        if factor is not None:
            factor = check_float(factor, "factor", minimum=0.0, strict=True)
        check_choice(biases, ("zeros", "uniform"), "biases")
        new = np.zeros_like(self._params)
        for (W, b), act in zip(self._layer_views(new), self._acts):
            layer_factor = factor if factor is not None else (
                2.0 if act == ACTIVATIONS["sigmoid"] else 6.0)
            bound = math.sqrt(layer_factor / (W.shape[0] + W.shape[1]))
            W[...] = rng.uniform(-bound, bound, size=W.shape)
            if biases == "uniform":
                b[...] = rng.uniform(-bound, bound, size=b.shape)
        self._publish(new, "set the weights")

    def replace_params(self, flat, *, check_finite: bool = True) -> None:
        """Replace all weights and biases with one flat vector, as an optimiser sees them.

        The layout is that of :meth:`objective`'s gradient: for each layer,
        input first, its weights row by row, then its biases.

        Parameters
        ----------
        flat : array_like of shape (n_params,)
            Real numbers, copied in the network's dtype.
        check_finite : bool, default=True
            Refuse NaN and infinite values (also float64 values beyond a
            float32 network's range). False takes them as they are.

        Raises
        ------
        TypeError
            If ``flat`` does not hold real numbers.
        ValueError
            On another shape, or non-finite values. Nothing is changed then.
        RuntimeError
            While :meth:`fit` runs on this network in another thread.
        """
        values = np.asarray(flat)
        if values.dtype.kind not in "biuf":
            raise TypeError(f"flat must hold real numbers, got dtype {values.dtype}")
        if values.shape != self._params.shape:
            raise ValueError(f"flat has shape {values.shape}, expected {self._params.shape}")
        with np.errstate(over="ignore"):  # float64 beyond float32's range: caught below
            new = values.astype(self.dtype)
        if check_finite and not np.isfinite(new).all():
            if not np.isfinite(values).all():
                raise ValueError("flat holds NaN or infinite values")
            raise ValueError(f"flat holds values beyond the range of {self.dtype}")
        self._publish(new, "replace the parameters")

    def _publish(self, new: np.ndarray, action: str) -> None:
        """Make ``new`` the parameter array, unless a fit runs."""
        with self._fit_lock:
            if self._training:
                raise RuntimeError(f"cannot {action} while fit runs on this network "
                                   "in another thread")
            self._params = new  # a new array: other threads keep the snapshot they hold

    @property
    def n_layers(self) -> int:
        """Number of weight layers (len(sizes) - 1)."""
        return len(self.sizes) - 1

    @property
    def n_params(self) -> int:
        """Total number of weights and biases."""
        return self._params.size

    @property
    def params(self) -> np.ndarray:
        """A read-only view of the flat parameters, in :meth:`replace_params`' layout.

        fit, :meth:`set_weights` and :meth:`replace_params` bind a new array
        rather than write into this one: a view keeps the values of its time."""
        view = self._params.view()
        view.flags.writeable = False
        return view

    @property
    def kernel_layout(self) -> tuple:
        """(sizes, activation codes) as the compiled kernels take them: read-only C ints."""
        return self._sizes, self._acts

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
        self._publish(new, "set the weights")

    # -- evaluation ---------------------------------------------------------

    def predict(self, X, *, n_threads: int | None = None) -> np.ndarray:
        """Network outputs for the rows of ``X``.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])
        n_threads : int or None, default=None
            Threads for calls of at least 4e6 FLOPs (2 × parameters × m,
            ``fastbp._runtime.PREDICT_THREADS_MIN_FLOPS``; smaller calls run
            as they are); None uses the cores this process may run on,
            as in :meth:`fit`. The rows are split over threads of fastbp's
            own, each with a one-thread BLAS (``n_threads=1`` holds the BLAS
            to one thread too, so that calls from several threads scale), in
            blocks of 256 rows or more that whichever thread is free takes;
            a NaN or infinity in X is caught in the first layer's products
            (IEEE arithmetic carries it into every output of that row),
            without a pass over X of its own. A float32 or float64 X of
            another dtype or layout (Fortran order, as pandas often gives,
            or a strided view) is converted by those threads a block at a
            time, not copied first.
            Outputs agree with one thread to rounding (a row's products may
            take another kernel when the rows are split) and are
            bit-identical for the same ``n_threads``.

        Returns
        -------
        ndarray of shape (m, sizes[-1]) and the network's dtype
        """
        if n_threads is not None:
            n_threads = check_int(n_threads, "n_threads", 1)
        model = self._predictor()  # one snapshot of the parameters, whatever other threads do
        params = model.params
        ready = is_ready_layout(X, self.sizes[0], (self.dtype,))
        convertible = not ready and is_convertible_layout(X, self.sizes[0])
        if ready or convertible:
            threads = predict_threads(params.shape[0], X.shape[0], n_threads)
            if threads:
                # the threads check X through z_1 (rows x sizes[1]), no pass over
                # X, and convert another float dtype or layout block by block
                return _predict_threads_checking(X, model, threads, convert=convertible)
        X = check_X(self, X, lazy=True)
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        if not (ready or convertible):  # X had no shape to count rows by until now
            threads = predict_threads(params.shape[0], X.shape[0], n_threads)
        if not threads:  # a small call, as it is (its latency is the point)
            if X.shape[0] <= CHUNK_ROWS and usable_as_is(X, self.dtype):
                # one kernel call, which sizes its own workspace
                model.predict(X, out)
            else:
                _predict_chunks(X, model, out, 1)
            return out
        # a big call: BLAS threads would only fight fastbp's (or another predict's)
        with blas_threads.limit(1):
            _predict_chunks(X, model, out, threads)
        return out

    def _predictor(self):
        """The compiled predictor of the current parameters, built once per
        parameter array (fit and set_weights publish new arrays)."""
        params, model = self._params, self.__dict__.get("_compiled_predictor")
        if model is None or model.params is not params:
            model = self._compiled_predictor = _kernels.Predictor(self._sizes, self._acts, params)
        return model

    def loss(self, X, Y, loss: str | None = None, l2: float = 0.0) -> float:
        """The objective J on (X, Y); see :mod:`fastbp.losses` for the formulas.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])
        Y : array_like of shape (m, sizes[-1]) or (m,)
            Targets, or class labels as in :meth:`fit`.
        loss : {"mse", "bce", "cross_entropy"} or None, default=None
            None is the output's default, as in :meth:`fit`:
            ``"cross_entropy"`` for a softmax output, ``"mse"`` for any other.
        l2 : float, default=0.0
            λ of the penalty λ/(2m)·Σ‖W‖² (biases are not penalised).

        Returns
        -------
        float
        """
        X, Y, code, l2 = check_objective_args(self, X, Y, loss, l2, lazy=True)
        return mean_loss(X, Y, self._params, self._sizes, self._acts, code, l2, CHUNK_ROWS)

    def gradients(self, X, Y, loss: str | None = None, l2: float = 0.0) -> tuple:
        """Gradients of :meth:`loss` with respect to the weights and biases.

        Parameters
        ----------
        X, Y, loss, l2
            As in :meth:`loss` (``loss=None``: the output's default).

        Returns
        -------
        dW : list of ndarray, shaped like :attr:`weights`
        db : list of ndarray, shaped like :attr:`biases`
        """
        X, Y, code, l2 = check_objective_args(self, X, Y, loss, l2, lazy=True)
        grad = self._flat_gradient(X, Y, code, l2)[1]
        views = self._layer_views(grad)
        return [W for W, _ in views], [b for _, b in views]

    def objective(self, X, Y, sample_weight=None, l2: float = 0.0, *,
                  loss: str | None = None) -> tuple:
        """The weighted loss and its gradient as one flat vector, for optimisers.

        J = Σ w·J_row / Σ w + l2/(2·Σ w)·Σ‖W‖² (biases are not penalised),
        summed 4096 rows at a time (memory O(4096 × width + weights)) as the
        estimators' ``solver="lbfgs"`` sums it. For
        :func:`scipy.optimize.minimize` with ``jac=True``; set its result
        with :meth:`replace_params`.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])
        Y : array_like of shape (m, sizes[-1]) or (m,)
            Targets, or class labels as in :meth:`fit`.
        sample_weight : array_like of shape (m,), optional
            Non-negative weights of the rows; None weighs each row 1.
        l2 : float, default=0.0
            λ of the penalty.
        loss : {"mse", "bce", "cross_entropy"} or None, default=None
            None is the output's default, as in :meth:`fit`.

        Returns
        -------
        loss : float
            J at the current parameters.
        gradient : ndarray of shape (n_params,), float64
            dJ/dθ in the layout of :meth:`replace_params`.

        Examples
        --------
        >>> import numpy as np, scipy.optimize, fastbp
        >>> net = fastbp.Network([2, 8, 1], "tanh", "identity", seed=0)
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> Y = X[:, :1] * X[:, 1:]
        >>> def loss_and_gradient(theta):
        ...     net.replace_params(theta)
        ...     return net.objective(X, Y)
        >>> result = scipy.optimize.minimize(loss_and_gradient, net.params, jac=True,
        ...                                  method="L-BFGS-B", options={"maxiter": 50})
        >>> net.replace_params(result.x)
        >>> round(net.loss(X, Y), 2)  # from 0.47
        0.0
        """
        X, Y, code, l2 = check_objective_args(self, X, Y, loss, l2)
        sample_weight = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        params = self._params  # one snapshot, whatever other threads do
        return objective(X, Y, sample_weight, params, self._sizes, self._acts, code, l2,
                         weight_mask(self))

    def _flat_gradient(self, X: np.ndarray, Y: np.ndarray, code: int, l2: float):
        """(J, flat gradient) on validated arrays; see :func:`_objective.flat_gradient`."""
        return flat_gradient(X, Y, self._params, self._sizes, self._acts, code, l2, CHUNK_ROWS)

    # -- training -----------------------------------------------------------

    def fit(self, X, Y, loss: str | None = None, optimizer=None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True, seed=None, l2: float = 0.0,
            n_threads: int | None = None, verbose: bool = False, *, sample_weight=None,
            validation_data=None, validation_split: float = 0.0, early_stopping=None,
            callbacks=(), shuffle_buffer: int | None = None) -> dict:
        """Train by minibatch SGD or Adam in compiled, GIL-free calls of about 0.1 s each.

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
        loss : {"mse", "bce", "cross_entropy"} or None, default=None
            None is the output's natural loss: ``"cross_entropy"`` for a
            softmax output, ``"mse"`` for any other (a sigmoid output too:
            pass ``loss="bce"`` to classify with it). See
            :ref:`outputs_losses`.
        optimizer : SGD or Adam, optional
            Defaults to ``SGD(lr=0.1)``. Its state (velocity, moments, step
            count, the schedule's current rate) persists across fits.
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
            Threads for minibatch training. None uses the cores this process
            may run on (its CPU affinity), capped by ``OMP_NUM_THREADS`` or
            ``OPENBLAS_NUM_THREADS`` when set. Per-sample training is
            single-threaded. Batches of
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
            network)``, epoch counted from 0, with the network holding that
            epoch's weights; a true return value stops training after it.
        shuffle_buffer : int or None, default=None
            Chunks only: train on buffers of at least this many rows, joined
            from consecutive chunks and shuffled together (memory grows with
            the buffer); None trains each chunk on its own.

        Returns
        -------
        dict
            Per epoch: ``"loss"``, the row-weighted mean of the minibatch
            objectives J (L2 included), each taken before its update;
            ``"data_loss"`` and ``"penalty"``, its two terms; ``"lr"``, the
            learning rate used; ``"seconds"``, wall time; and ``"val_loss"``
            with validation rows.

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
        loss = resolve_loss(loss, self.output_activation)
        code = check_loss(loss, self.output_activation)
        optimizer = SGD() if optimizer is None else optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError("optimizer must be a fastbp.SGD or fastbp.Adam, "
                            f"got {type(optimizer).__name__}")
        epochs = check_int(epochs, "epochs", 1)
        batch_size = check_int(batch_size, "batch_size", 1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        seed = check_seed(seed)
        # only shuffles and splits draw; default_rng(None) costs ~12 µs of OS entropy
        drawn = shuffle or (validation_data is None and validation_split != 0)
        rng = np.random.default_rng(seed) if drawn else None
        l2 = check_float(l2, "l2", minimum=0.0)
        if n_threads is not None:
            n_threads = check_int(n_threads, "n_threads", 1)
        early_stopping = _check_early_stopping(early_stopping)
        callbacks = _check_callbacks(callbacks)
        if Y is None:
            return self._fit_chunks(X, loss, code, optimizer, epochs, batch_size,
                                    np.random.default_rng(seed) if shuffle else None, l2,
                                    n_threads, verbose, sample_weight, validation_data,
                                    validation_split, early_stopping, callbacks, shuffle_buffer)
        if shuffle_buffer is not None:
            raise ValueError("shuffle_buffer applies to chunks (Y=None) only")
        classes_before = getattr(self, "classes_", None)
        try:
            X, Y = check_XY(self, X, Y, loss, encode_labels=True)
            sample_weight = check_sample_weight(sample_weight, X.shape[0], self.dtype)
            X, Y, sample_weight, validation = _validation_rows(
                self, X, Y, sample_weight, validation_data, validation_split, loss, code, rng)
        except Exception:
            self.classes_ = classes_before  # a failed fit learns no classes
            raise
        if early_stopping is not None:
            early_stopping.reset()
        n = X.shape[0]
        batch_size = min(batch_size, n)
        next_order = Permutations(rng, n) if shuffle else None
        loop = TrainingLoop(self, X, Y, sample_weight, code, l2, optimizer, batch_size,
                            n_threads, next_order)
        return loop.run(epochs, callbacks, early_stopping, validation,
                        EpochProgress(epochs) if verbose else None)

    def _fit_chunks(self, chunks, loss, code, optimizer, epochs, batch_size, rng, l2,
                    n_threads, verbose, sample_weight, validation_data, validation_split,
                    early_stopping, callbacks, shuffle_buffer) -> dict:
        """fit over chunks (``Y=None``): one pass over them an epoch."""
        if sample_weight is not None:
            raise ValueError("with chunks, give the weights in each chunk: (X, Y, sample_weight)")
        if validation_split:
            raise ValueError("with chunks, pass validation_data instead of validation_split")
        shuffle_buffer = 0 if shuffle_buffer is None else check_int(
            shuffle_buffer, "shuffle_buffer", 1)
        validation = None if validation_data is None else _validation_scorer(
            self, validation_data, loss, code)

        def check(X, Y, weights):
            X, Y = check_XY(self, X, Y, loss, encode_labels=True)
            return X, Y, check_sample_weight(weights, X.shape[0], self.dtype)

        training = ChunkedTraining(self, chunk_source(chunks, epochs), check, code, l2, optimizer,
                                   batch_size, n_threads, rng, shuffle_buffer)
        if early_stopping is not None:
            early_stopping.reset()
        history = training.run(epochs, callbacks, early_stopping, validation,
                               EpochProgress(epochs) if verbose else None)
        if early_stopping is not None:
            early_stopping.restore(self)
        return history

    def _training_guard(self) -> "_TrainingGuard":
        """Mark the network as training; refuse a second fit meanwhile."""
        return _TrainingGuard(self._start_training, self._end_training)

    def _start_training(self) -> None:
        with self._fit_lock:
            if self._training:
                raise RuntimeError("fit is already running on this network in another thread")
            self._training = True

    def _end_training(self) -> None:
        with self._fit_lock:
            self._training = False

    # -- classification -----------------------------------------------------

    def predict_labels(self, X) -> np.ndarray:
        """Class labels for the rows of ``X``, for a network fitted on labels.

        The label of the largest output (softmax, several sigmoid units), or
        of the second class when a single sigmoid output exceeds 0.5.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])

        Returns
        -------
        ndarray of shape (m,), of the labels' type
        """
        classes = getattr(self, "classes_", None)
        if classes is None:
            raise ValueError("this network knows no class labels: fit it on a 1-D array of "
                             "labels (softmax or sigmoid output) first")
        return _labels.decode(self.predict(X), classes)

    def score(self, X, Y, sample_weight=None) -> float:
        """Accuracy for classification outputs, R² otherwise.

        Softmax and sigmoid outputs are scored by accuracy: ``Y`` may be
        labels (as in fit), one-hot rows (the largest output must match) or
        0/1 columns (every unit thresholded at 0.5 must match). Other outputs
        get the coefficient of determination R², averaged over the outputs,
        as scikit-learn's regressors.

        Parameters
        ----------
        X : {array_like, sparse matrix} of shape (m, sizes[0])
        Y : array_like of shape (m,) or (m, sizes[-1])
        sample_weight : array_like of shape (m,), optional

        Returns
        -------
        float
        """
        X = check_X(self, X)
        Y = _check_targets(self, Y, encode_labels=False)
        check_rows_match(X, Y)
        weights = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        if self.output_activation in _labels.CLASSIFIER_OUTPUTS:
            return accuracy(self.predict(X), Y, self.output_activation == "softmax", weights)
        return r2_score(self.predict(X), Y, weights)


    # -- persistence --------------------------------------------------------

    def save(self, path) -> None:
        """Write the network to ``path`` as ``.npz`` (atomically); see :func:`fastbp.load`."""
        save_npz(self, path)

    def __getstate__(self):
        # locks do not pickle; a restored network gets a fresh one (and its
        # predictor, rebuilt at its first predict)
        state = self.__dict__.copy()
        del state["_fit_lock"]
        state.pop("_compiled_predictor", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._sizes.flags.writeable = self._acts.flags.writeable = False  # unpickled: writeable
        self._fit_lock = threading.Lock()
        self._training = False

    def copy(self) -> "Network":
        """An independent copy with the same architecture and parameters."""
        return self._clone(self._params.copy())

    def _clone(self, params: np.ndarray) -> "Network":
        """A network of this one's state (unpickled as it would be) with ``params``."""
        state = self.__getstate__()
        state["_params"] = params
        clone = Network.__new__(Network)
        clone.__setstate__(state)
        return clone

    def astype(self, dtype) -> "Network":
        """A copy of this network in another dtype ("float32" or "float64")."""
        dtype = check_dtype(dtype)
        clone = self._clone(self._params.astype(dtype))
        clone.dtype = dtype
        if not np.isfinite(clone.params).all():
            raise ValueError(f"the parameters overflow {dtype}")
        return clone

    def __repr__(self) -> str:
        hidden = self.activations[0] if len(set(self.activations)) == 1 else list(self.activations)
        return (f"Network({list(self.sizes)}, activation={hidden!r}, "
                f"output_activation={self.output_activation!r}, dtype={self.dtype.name!r})")


def check_X(network, X, lazy: bool = False) -> np.ndarray:
    """``network``'s X checked; with ``lazy``, left unconverted where it needs
    a copy, for :func:`fastbp._objective.kernel_rows` to convert a chunk at a time."""
    return as_matrix(X, network.dtype, "X", n_columns=network.sizes[0], lazy=lazy,
                     accept_sparse=True)


def check_objective_args(network, X, Y, loss, l2, lazy: bool = False) -> tuple:
    """``(X, Y, loss code, l2)`` of a loss or gradient call on ``network``,
    checked; ``loss=None`` is the output's default loss."""
    loss = resolve_loss(loss, network.output_activation)
    code = check_loss(loss, network.output_activation)
    l2 = check_float(l2, "l2", minimum=0.0)
    X, Y = check_XY(network, X, Y, loss, lazy=lazy)
    return X, Y, code, l2


def check_XY(network, X, Y, loss: str, encode_labels: bool = False, lazy: bool = False) -> tuple:
    """``network``'s X and targets checked for ``loss`` (see :func:`check_X`)."""
    X = check_X(network, X, lazy)
    Y = _check_targets(network, Y, encode_labels)
    check_rows_match(X, Y)
    check_targets(Y, loss)
    return X, Y


def _validation_loss(X_val, Y_val, code: int):
    """The validation-loss function fit calls with the network after each epoch."""
    return lambda net: mean_loss(X_val, Y_val, net.params, *net.kernel_layout, code, 0.0,
                                 CHUNK_ROWS)


def _validation_rows(network, X, Y, sample_weight, validation_data, validation_split, loss,
                     code, rng):
    """(X, Y, sample_weight) to train on and the validation-loss function, or None."""
    if validation_data is None and type(validation_split) is float and validation_split == 0:
        return X, Y, sample_weight, None  # the default, without the checks' cost
    validation_split = check_float(validation_split, "validation_split", minimum=0.0,
                                   maximum=1.0, strict_max=True)
    if validation_data is not None and validation_split:
        raise ValueError("pass validation_data or validation_split, not both")
    if validation_data is not None:
        return X, Y, sample_weight, _validation_scorer(network, validation_data, loss, code)
    if not validation_split:
        return X, Y, sample_weight, None
    (X, Y, sample_weight), (X_val, Y_val, _) = split_rows(
        (X, Y, sample_weight), validation_split, rng, "validation_split")
    return X, Y, sample_weight, _validation_loss(X_val, Y_val, code)


def _validation_scorer(network, validation_data, loss: str, code: int):
    """The validation-loss function of ``validation_data``, checked."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise TypeError("validation_data must be a pair (X_val, Y_val)")
    X_val, Y_val = check_XY(network, *validation_data, loss)
    return _validation_loss(X_val, Y_val, code)


def _predict_threads_checking(X, model, threads: int, convert: bool = False) -> np.ndarray:
    """predict of a dense X of the parameters' dtype and layout (with
    ``convert``: float32 or float64 of any layout) on ``threads`` threads,
    whose kernel rejects NaN and infinity in X."""
    out = np.empty((X.shape[0], int(model.sizes[-1])), model.params.dtype)
    with blas_threads.limit(1):
        if _predict_chunks(X, model, out, threads, check_finite=True, convert=convert):
            return out
    as_matrix(X, model.params.dtype, "X", n_columns=int(model.sizes[0]))  # raises, naming it
    raise ValueError("X holds values that are not finite")  # not reached


def _predict_chunks(X, model, out, threads: int, check_finite: bool = False,
                    convert: bool = False) -> bool:
    """predict over chunks of ``CHUNK_ROWS`` rows a thread, on ``threads``
    threads of fastbp's own (1: this one). With ``check_finite``, the kernel
    checks X's blocks as it reads them (through the first layer's
    pre-activation), and the result is False when one held a NaN or
    infinity. With ``convert``, the kernel converts X's rows (float32 or
    float64, any layout) block by block."""
    m, dtype = X.shape[0], model.params.dtype
    rows = min(m, CHUNK_ROWS * threads)
    share = _kernels.predict_workspace_share(model.sizes, rows, threads, convert)
    # one thread needs no cache-line alignment, and np.empty is ~1 µs cheaper
    work = np.empty(share, dtype) if threads == 1 else aligned_empty(threads * share, dtype)
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        X_rows = X[start:stop] if convert else kernel_rows(X, start, stop, dtype)
        out_rows = out[start:stop]
        if model.predict(X_rows, out_rows, work, threads, check_finite) < 0:
            return False
    return True


def _check_targets(network, Y, encode_labels: bool) -> np.ndarray:
    """``network``'s targets as a matrix; class labels become one-hot rows (or a 0/1
    column) for softmax/sigmoid outputs, with ``encode_labels`` fixing the
    classes when the network has none yet."""
    n_outputs = network.sizes[-1]
    if not hasattr(Y, "dtype"):
        Y = np.asarray(Y)
    classifier = network.output_activation in _labels.CLASSIFIER_OUTPUTS
    # whole-number floats are labels for a classifier output only: for
    # the others (identity, tanh, relu) a 1-D float array is a target
    if (_labels.is_label_vector(Y) and (classifier or Y.dtype.kind in "USO")) or (
            classifier and _labels.is_whole_float_vector(Y)):
        classes = getattr(network, "classes_", None)
        if classes is None:
            classes = _labels.infer_classes(Y, n_outputs, network.output_activation)
            if encode_labels:
                network.classes_ = classes
        return _labels.targets(Y, classes, n_outputs, network.dtype)
    if getattr(Y, "ndim", None) == 1 and n_outputs > 1:
        fraction = (_labels.first_fraction(Y)
                    if classifier and Y.dtype.kind == "f" else "")
        raise ValueError(
            f"Y is 1-D but the network has {n_outputs} outputs: pass class labels "
            "(integers, strings, or floats that are all whole numbers) for a softmax or "
            f"sigmoid output, or targets of shape (n, {n_outputs})"
            + (f"; Y holds {fraction}, which is no class label" if fraction else ""))
    return as_matrix(Y, network.dtype, "Y", n_columns=n_outputs, allow_vector=True)


def _check_rng(rng):
    """A NumPy generator (Generator or RandomState) as it is; a seed gives a new Generator."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not (rng is None or isinstance(rng, numbers.Integral)):
        raise TypeError("rng must be a numpy.random.Generator, a numpy.random.RandomState, "
                        f"an int seed or None, got {type(rng).__name__}")
    return np.random.default_rng(check_seed(rng, "rng"))


def _check_early_stopping(early_stopping):
    if early_stopping is None or early_stopping is False:
        return None
    if early_stopping is True:
        return EarlyStopping()
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be True, False, None or a fastbp.EarlyStopping, "
                        f"got {early_stopping!r}")
    return early_stopping


def _check_callbacks(callbacks) -> tuple:
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


class _TrainingGuard:
    """``with network._training_guard()``: the network is marked as training
    inside, and a second fit in another thread raises RuntimeError. A class
    rather than a generator, for a small fit's fixed cost."""

    __slots__ = ("_start", "_end")

    def __init__(self, start, end):
        self._start, self._end = start, end  # the network's own, which hold its lock

    def __enter__(self) -> None:
        self._start()

    def __exit__(self, *exc_info) -> None:
        self._end()
