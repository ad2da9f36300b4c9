"""The :class:`Network`: its architecture, parameters, predict and persistence.

Its other jobs live in modules of their own, as mixins that use only its
public surface: loss, gradients and objective (:mod:`fastbp._objective`), fit
(:mod:`fastbp._fitting`, which runs a :class:`fastbp._session.Session`), and
predict_labels and score (:mod:`fastbp._scores`). Every method validates its
input, then hands C-contiguous arrays to the compiled kernels in
:mod:`fastbp._kernels`.
"""
from __future__ import annotations

import math
import numbers
import threading

import numpy as np

from . import _kernels
from ._architecture import (MAX_LAYERS, MAX_WIDTH, check_architecture, check_dropout,
                            n_params_of)
from ._fitting import FitMixin
from ._inputs import check_X, check_XY
from ._npz import save as save_npz
from ._objective import ObjectiveMixin, kernel_rows, layer_views
from ._runtime import aligned_empty, blas_threads, predict_threads
from ._scores import ScoreMixin
from ._session import TrainingLease
from ._validation import (as_matrix, check_choice, check_compute_dtype, check_dtype,
                          check_float, check_int, check_seed, is_convertible_layout,
                          is_ready_layout, usable_as_is)

# check_X and check_XY are also read from here (gradcheck); MAX_LAYERS and
# MAX_WIDTH too (the command line)
__all__ = ["ACTIVATIONS", "CHUNK_ROWS", "HIDDEN_ACTIVATIONS", "MAX_LAYERS", "MAX_WIDTH",
           "Network", "check_X", "check_XY"]

#: activation name -> kernel code: the rows of csrc/fastbp_activation_table.h, in code order
ACTIVATIONS = {name: code for code, (name, _) in enumerate(_kernels.activation_table())}
#: those a hidden layer may use: the element-wise ones (not softmax)
HIDDEN_ACTIVATIONS = {name: ACTIVATIONS[name]
                      for name, elementwise in _kernels.activation_table() if elementwise}

#: rows per kernel call in predict and loss, to bound the workspace
CHUNK_ROWS = 4096
#: the largest predict workspace a network keeps for its next call
SPARE_WORK_BYTES = 8 << 20


class Network(ObjectiveMixin, FitMixin, ScoreMixin):
    """A dense feed-forward network trained by backpropagation.

    Layer l computes a = z_prev · W + b and z = f(a), with ``W`` of shape
    (sizes[l], sizes[l+1]).

    Parameters
    ----------
    sizes : sequence of int
        Widths of the layers, input first, output last (at least two).
    activation : str or sequence of str, default="sigmoid"
        Hidden activation: an element-wise name of ``fastbp.ACTIVATIONS``
        ("sigmoid", "tanh", "relu", "identity", "leaky_relu", "elu", "gelu",
        "silu", "softplus", "softsign", "elliot"; :ref:`activations`), or a
        list with one name per hidden layer.
    output_activation : str, default="sigmoid"
        Any name of ``fastbp.ACTIVATIONS``: those, or "softmax".
    dtype : {"float32", "float64"}, default="float64"
        Precision of parameters and computation; inputs are converted to it.
    seed : int or None, default=None
        Seed of the weight initialisation (Glorot uniform; biases start at 0).
    dropout : float, sequence of float or None, default=None
        Inverted dropout on the hidden layers' outputs during :meth:`fit`:
        a rate in [0, 1) for every hidden layer, or one per hidden layer.
        Each unit is dropped with that probability and the others scaled by
        1/(1 − rate); the masks are drawn from fit's ``seed`` and are the
        same on any number of threads. :meth:`predict`, :meth:`loss` and
        :meth:`gradients` never drop (see :ref:`dropout`). None or 0: none.
    compute_dtype : {None, "bfloat16"}, default=None
        Precision of the products in :meth:`fit` and :meth:`predict`. None:
        the network's ``dtype`` (the attribute then holds that dtype's
        name). "bfloat16" (with ``dtype="float32"`` only; :meth:`fit` takes
        dense X only) rounds the operands of every product to bfloat16 and
        sums in float32, on AMX or AVX512-BF16 where the CPU has them, else
        emulated; the weights, biases, optimiser, activations, loss and
        outputs stay float32 (see :ref:`compute-dtype` and
        :ref:`bfloat16-predict`). :meth:`loss` and :meth:`gradients` run
        in float32.

    Attributes
    ----------
    dropout : tuple of float or None
        The rate of each hidden layer; None when no layer drops units.

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
                 dtype="float64", seed=None, dropout=None, compute_dtype=None):
        sizes, hidden = check_architecture(sizes, activation, output_activation,
                                           HIDDEN_ACTIVATIONS, ACTIVATIONS)
        self.dropout = check_dropout(dropout, len(hidden))
        self.sizes = sizes
        self.activations = hidden
        self.output_activation = output_activation
        self.dtype = check_dtype(dtype)
        self.compute_dtype = check_compute_dtype(compute_dtype, self.dtype)
        self._sizes = np.asarray(sizes, dtype=np.intc)
        self._acts = np.asarray([ACTIVATIONS[a] for a in hidden + (output_activation,)],
                                dtype=np.intc)
        self._sizes.flags.writeable = self._acts.flags.writeable = False  # see kernel_layout
        self._params = np.zeros(n_params_of(sizes), self.dtype)
        # guards _training and every rebinding of _params by fit and set_weights
        self._fit_lock = threading.Lock()
        self._training = False
        self._lease = TrainingLease(self._start_training, self._end_training, self._bind_params)
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
        new = _kernels.on_cache_lines(new)  # predict's loads of W then split no cache line
        with self._fit_lock:
            if self._training:
                raise RuntimeError(f"cannot {action} while fit runs on this network "
                                   "in another thread")
            old, self._params = self._params, new  # other threads keep the snapshot they hold
        self._retire_params(old)

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

    def layer_params(self) -> list:
        """(W, b) of each layer: writable views of the current parameters.

        Writes go into the network at once (the estimators' ``coefs_`` and
        ``intercepts_`` are such views). fit, :meth:`set_weights` and
        :meth:`replace_params` bind a new array: views taken before keep
        the values of their time, as :attr:`params` does."""
        self._params_shared = params = self._params  # predict re-reads what views may write
        model = self.__dict__.get("_compiled_predictor")
        if model is not None:
            model.params_fixed = False
        return self._layer_views(params)

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
            if ready and X.shape[0] <= CHUNK_ROWS:  # a small call: one kernel call checks X
                out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
                if model.predict(X, out, None, 1, True) >= 0:
                    return out
                check_X(self, X)  # raises, naming the problem
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
            model = _kernels.Predictor(
                self._sizes, self._acts, params,
                compute="bfloat16" if self.compute_dtype == "bfloat16" else "float32")
            # published arrays are never written again, but layer_params' views may be
            model.params_fixed = self.__dict__.get("_params_shared") is not params
            self._compiled_predictor = model
        return model

    # -- loss, gradients, objective: fastbp._objective.ObjectiveMixin --------
    # -- fit: fastbp._fitting.FitMixin -----------------------------------------

    # -- training ---------------------------------------------------------------

    def training_lease(self) -> TrainingLease:
        """Hold the network for one training run, as :meth:`fit` does.

        ``with net.training_lease() as lease:`` marks the network as
        training: meanwhile a second lease (or :meth:`fit`),
        :meth:`set_weights`, :meth:`replace_params` and :meth:`init_weights`
        raise ``RuntimeError``, and ``lease.publish(params)`` makes a flat
        parameter vector (the network's dtype and shape, never written again)
        the network's parameters without a copy. For training loops of one's
        own that publish as they go; fit's session holds one.

        Returns
        -------
        TrainingLease
            A context manager; entering it raises ``RuntimeError`` if the
            network is training already.
        """
        return self._lease  # made once (its three bound methods cost a small fit ~1 µs)

    def _start_training(self) -> None:
        with self._fit_lock:
            if self._training:
                raise RuntimeError("fit is already running on this network in another thread")
            self._training = True

    def _end_training(self) -> None:
        with self._fit_lock:
            self._training = False

    def _bind_params(self, params: np.ndarray) -> None:
        old = self._params
        if params is old:  # published again: its values may have changed
            self.__dict__.pop("_compiled_predictor", None)
            return
        self._params = params  # readers in other threads keep the array they hold
        self._retire_params(old)

    # -- classification -----------------------------------------------------

    # -- persistence --------------------------------------------------------

    def save(self, path) -> None:
        """Write the network to ``path`` as ``.npz`` (atomically); see :func:`fastbp.load`."""
        save_npz(self, path)

    def __getstate__(self):
        # locks do not pickle; a restored network gets a fresh one (and its
        # predictor, rebuilt at its first predict)
        state = self.__dict__.copy()
        del state["_fit_lock"], state["_lease"]
        state.pop("_compiled_predictor", None)
        state.pop("_lean_trainer", None)  # fit_trainer's
        state.pop("_spare_params", None)  # _retire_params'
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._params = _kernels.on_cache_lines(self._params)
        self.__dict__.setdefault("dropout", None)  # pickled before networks had dropout
        self.__dict__.setdefault("compute_dtype", self.dtype.name)  # ... or compute_dtype
        self._sizes.flags.writeable = self._acts.flags.writeable = False  # unpickled: writeable
        self._fit_lock = threading.Lock()
        self._training = False
        self._lease = TrainingLease(self._start_training, self._end_training, self._bind_params)

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
        """A copy of this network in another dtype ("float32" or "float64");
        it computes in that dtype, or in bfloat16 if this one does and the
        copy is float32."""
        dtype = check_dtype(dtype)
        clone = self._clone(self._params.astype(dtype))
        clone.dtype = dtype
        if not (dtype == np.float32 and self.compute_dtype == "bfloat16"):
            clone.compute_dtype = dtype.name
        if not np.isfinite(clone.params).all():
            raise ValueError(f"the parameters overflow {dtype}")
        return clone

    def __repr__(self) -> str:
        hidden = self.activations[0] if len(set(self.activations)) == 1 else list(self.activations)
        dropout = "" if self.dropout is None else f", dropout={_rates(self.dropout)!r}"
        compute = ("" if self.compute_dtype == self.dtype.name
                   else f", compute_dtype={self.compute_dtype!r}")
        return (f"Network({list(self.sizes)}, activation={hidden!r}, "
                f"output_activation={self.output_activation!r}, dtype={self.dtype.name!r}"
                f"{dropout}{compute})")


def _rates(rates: tuple):
    """Dropout rates as the constructor takes them: one number if all are equal."""
    return rates[0] if len(set(rates)) == 1 else list(rates)


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
    work = None
    if model.compute != "bfloat16":  # which keeps a workspace of its own
        size = threads * _kernels.predict_workspace_share(model.sizes, rows, threads, convert)
        # the last call's, if big enough: a new one's pages fault in (2% of a call)
        work, model.spare_work = model.spare_work, None  # another thread's call makes its own
        if work is None or work.size < size:
            work = aligned_empty(size, dtype)
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        X_rows = X[start:stop] if convert else kernel_rows(X, start, stop, dtype)
        out_rows = out[start:stop]
        if model.predict(X_rows, out_rows, work, threads, check_finite) < 0:
            return False
    if work is not None and work.nbytes <= SPARE_WORK_BYTES:
        model.spare_work = work
    return True


def _check_rng(rng):
    """A NumPy generator (Generator or RandomState) as it is; a seed gives a new Generator."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not (rng is None or isinstance(rng, numbers.Integral)):
        raise TypeError("rng must be a numpy.random.Generator, a numpy.random.RandomState, "
                        f"an int seed or None, got {type(rng).__name__}")
    return np.random.default_rng(check_seed(rng, "rng"))
