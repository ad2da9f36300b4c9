"""scikit-learn compatible estimators on fastbp's compiled core.

:class:`MLPClassifier` and :class:`MLPRegressor` take the constructor
parameters, defaults, fitted attributes and methods of
``sklearn.neural_network``'s estimators, so ``from fastbp import
MLPClassifier`` is a one-line switch. They follow scikit-learn's loss
conventions (not :class:`fastbp.Network`'s):

- regression: J = ½ · mean over outputs of the (weighted) mean over rows of
  (y − t)², plus α/(2·Σw) · Σ‖W‖²; the SGD/Adam gradient is scikit-learn's,
  i.e. that of ``Network``'s "mse" (not divided by the number of outputs);
  with ``loss="poisson"`` the prediction is μ = exp(y) and J the half Poisson
  deviance, Σ over outputs of the mean over rows of t·log(t/μ) − t + μ, plus
  the same L2 term (a kernel loss of its own, ``KERNEL_LOSSES["poisson"]``);
- classification: log-loss with softmax outputs (multiclass) or logistic
  outputs (binary, multilabel), plus the same L2 term.

Where they differ from scikit-learn:

- ``lbfgs`` gets the exact gradient of the reported loss (for multi-output
  regression scikit-learn's lbfgs gradient is n_outputs times too large in
  the data term);
- probabilities are not clipped to [eps, 1 − eps] in the loss: the log-loss
  is computed from the pre-activations (log-sum-exp, softplus) instead;
- a warm-started ``fit`` keeps the optimiser state (SGD velocities, Adam's
  moments and step count), as ``partial_fit`` does in both; scikit-learn
  starts a new optimiser in every warm-started fit;
- ``class_weight`` ({dict, "balanced"}), ``activation`` as a list (one per
  hidden layer) and ``n_threads`` (threads for training and prediction, as
  in ``Network.fit``), checked like scikit-learn's parameters
  (``InvalidParameterError``); a warm start keeps the network's dtype
  (float32 or float64) whatever the dtype of the new data;
- a fit whose loss becomes non-finite: with ``early_stopping`` it stops at
  that epoch, recorded as scikit-learn records it (NaN loss and validation
  score), and keeps the weights of the best validation score, where
  scikit-learn trains the NaN weights on to ``max_iter`` first; without,
  it raises scikit-learn's "Solver produced non-finite parameter weights"
  error at once (a :class:`fastbp.TrainingDiverged`) and keeps the finite
  weights from before that epoch, where scikit-learn leaves NaN weights;
- negative ``sample_weight``, and negative targets with ``loss="poisson"``,
  raise ``ValueError`` (scikit-learn trains on them);
- scikit-learn's private attributes (``_optimizer``,
  ``_no_improvement_count``, ``_loss_grad_lbfgs``, ...) do not exist, so
  the port of its tests (tests/sklearn_port) skips the five that read them;
- sparse input (as scikit-learn: CSR and CSC; other formats are
  converted) is multiplied in CSR form by the first layer, never densified,
  and trains to the same weights as the dense X up to rounding;
- ``fit(chunks)`` with ``y=None`` trains on data larger than memory, read
  chunk by chunk (``MLPClassifier.fit`` takes ``classes`` for it).
"""
from __future__ import annotations

import itertools

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import validate_data

from . import _kernels
from ._mlp_inputs import SPARSE_FORMATS, MLPInputs, are_chunks
from ._mlp_network import NetworkBridge
from ._mlp_params import (CLASSIFIER_CONSTRAINTS, REGRESSOR_CONSTRAINTS, STOCHASTIC_SOLVERS,
                          MLPParameters, is_int)
from ._mlp_scoring import MLPScoring
from ._mlp_solvers import NON_FINITE_WEIGHTS, DistributedRows, SolverDrivers
from ._streaming import ChunkedTraining, checked_chunk, chunk_parts, chunk_source
from ._validation import as_matrix


def _has_stochastic_solver(estimator) -> bool:
    """partial_fit's availability: True, or AttributeError naming the solver."""
    if estimator.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{estimator.solver} is not stochastic.")
    return True


class _BaseMLP(SolverDrivers, MLPScoring, NetworkBridge, MLPInputs, MLPParameters):
    """What :class:`MLPClassifier` and :class:`MLPRegressor` share: the fits.

    The jobs live in mixins of their own: :class:`~fastbp._mlp_params.MLPParameters`
    (the parameters and their rules), :class:`~fastbp._mlp_inputs.MLPInputs`
    (X, y and row weights), :class:`~fastbp._mlp_network.NetworkBridge` (the
    network, ``coefs_`` views, interop), :class:`~fastbp._mlp_scoring.MLPScoring`
    (losses, outputs, the epochs' records) and
    :class:`~fastbp._mlp_solvers.SolverDrivers` (lbfgs, minibatch and averaged
    epochs)."""

    def _initialize(self, y: np.ndarray, layer_units: list, dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            # poisson: the log link, the network's identity output is log of the mean
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        self._net = self._build_network(layer_units, dtype)
        # Glorot uniform for weights and biases, as scikit-learn initialises
        self._net.init_weights(self._random_state,
                               factor=2.0 if self.activation == "logistic" else 6.0,
                               biases="uniform")
        self._bind_weights()
        self._reset_optimizer()
        self._stopping = None
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None
            self._stopping = self._stopping_rule()

    def _fit(self, X, y, sample_weight=None, incremental=False, validation_data=None):
        self._check_n_threads()
        self._check_regularisation()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, y_raw = self._validate_input(X, y, incremental, reset=first_pass)
        # as scikit-learn: every fit call restarts the random stream, so the
        # same random_state draws the same weights, split and shuffles
        self._random_state = self._restarted_random_state()
        sample_weight = self._sample_weight(X, y_raw, sample_weight)
        self._prepare_network([X.shape[1]] + hidden + [y.shape[1]], y, X.dtype, first_pass)
        dtype = self._net.dtype
        X = as_matrix(X, dtype, "X", accept_sparse=True)  # the one path to the kernels
        y = np.require(y, dtype=dtype, requirements="CA")
        if sample_weight is not None:  # a warm start may meet data of another dtype
            sample_weight = np.require(sample_weight, dtype=dtype, requirements="CA")
        try:
            if self.solver in STOCHASTIC_SOLVERS:
                self._adopt_stochastic_state()
                self._fit_stochastic(X, y, y_raw, sample_weight, incremental, validation_data)
            else:
                self._fit_lbfgs(X, y, sample_weight)
        finally:
            self._bind_weights()  # training replaced the parameter array
        if not np.isfinite(self._net.params).all():
            raise ValueError(NON_FINITE_WEIGHTS)
        return self

    def _prepare_network(self, layer_units: list, Y, dtype, first_pass: bool) -> None:
        """A new network for a first fit; else check that the warm one fits
        ``layer_units``, and restart the optimiser if the solver changed."""
        if first_pass:
            self._initialize(Y, layer_units, dtype)
        elif list(self._network().sizes) != layer_units:
            raise ValueError(f"the network has layers {list(self._net.sizes)}, but this fit "
                             f"asks for {layer_units}; use warm_start=False")
        elif (self.compute_dtype == "bfloat16") != (self._net.compute_dtype == "bfloat16"):
            raise ValueError(f"the network computes in {self._net.compute_dtype}, but this fit "
                             f"asks for compute_dtype={self.compute_dtype!r}; use "
                             "warm_start=False")
        elif self._optimizer_solver != self.solver:
            self._reset_optimizer()

    def _fit_chunks(self, chunks, sample_weight, classes=None, shuffle_buffer=None,
                    validation_data=None):
        """fit over chunks of (X, y[, sample_weight]): one pass an epoch, each
        chunk checked in a background thread while the one before trains."""
        self._check_n_threads()
        if sample_weight is not None:
            raise ValueError("with chunks, give the weights in each chunk: (X, y, sample_weight)")
        if self.solver not in STOCHASTIC_SOLVERS:
            raise ValueError(f"solver={self.solver!r} steps on all rows at once; chunks train "
                             "with a minibatch solver: "
                             + ", ".join(repr(solver) for solver in STOCHASTIC_SOLVERS))
        if self.early_stopping and validation_data is None:
            raise ValueError("early_stopping holds out validation_fraction of the rows, which "
                             "chunks read once per epoch do not allow: pass "
                             "validation_data=(X_val, y_val) to stop on those rows, or with "
                             "early_stopping=False tol and n_iter_no_change watch the training "
                             "loss")
        if getattr(self, "class_weight", None) == "balanced":
            raise ValueError("class_weight='balanced' needs the class counts of all rows, which "
                             "chunks do not give: pass class_weight as a dict")
        if shuffle_buffer is not None and not (is_int(shuffle_buffer) and shuffle_buffer >= 1):
            raise ValueError(f"shuffle_buffer must be an integer >= 1 or None, got "
                             f"{shuffle_buffer!r}")
        source = chunk_source(chunks, self.max_iter)
        first_pass = not hasattr(self, "coefs_") or not self.warm_start
        if first_pass:
            self._learn_classes(source, classes)
        elif classes is not None:
            raise ValueError("classes applies to the first fit only; warm_start keeps classes_ "
                             f"{self.classes_}")
        # the first chunk sets n_features_in_ and the network; the epochs then read it again
        iterator = source()
        first = next(iterator, None)
        if first is None:
            raise ValueError("the chunks hold no rows")
        X, Y, _ = checked_chunk(first, "chunk 1 of epoch 1", lambda X, y, weights:
                                self._validate_input(X, y, True, reset=first_pass, chunk=True))
        self._random_state = self._restarted_random_state()
        self._prepare_network([X.shape[1]] + self._hidden_sizes() + [Y.shape[1]], Y, X.dtype,
                              first_pass)
        self._adopt_stochastic_state()
        replay = [itertools.chain([first], iterator)]
        dtype = self._net.dtype

        def check(X, y, weights):
            X, Y, y_raw = self._validate_input(X, y, True, reset=False, chunk=True)
            weights = self._sample_weight(X, y_raw, weights)
            if weights is not None:
                weights = np.require(weights, dtype=dtype, requirements="CA")
            return (as_matrix(X, dtype, "X", accept_sparse=True),
                    np.require(Y, dtype=dtype, requirements="CA"), weights)

        batch_size = self._resolved_batch_size(None)

        def epoch_chunks():  # the first epoch finishes the iterator begun above
            return replay.pop() if replay else source()

        training = ChunkedTraining(self._net, epoch_chunks, check, self._loss_code(), self.alpha,
                                   self._optimizer(), batch_size, self.n_threads,
                                   self._random_state if self.shuffle else None,
                                   shuffle_buffer or 0, dropout_seed=self._dropout_seed(),
                                   clip_norm=self.clip_norm, average=self._weight_average())
        validation = None
        if validation_data is not None:
            validation = self._given_validation(validation_data, dtype)
            self._start_validation_records()
        bookkeeping = self._bookkeeping(lambda: training.rows_seen, validation)
        try:
            self._train_epochs(lambda: training.run(self.max_iter, [bookkeeping], self._stopping),
                               lambda: training.stopped, False, lambda: training.rows_seen)
        finally:
            self._bind_weights()
        if not np.isfinite(self._net.params).all():
            raise ValueError(NON_FINITE_WEIGHTS)
        return self

    def _learn_classes(self, source, classes) -> None:
        """Regressors learn nothing here; see MLPClassifier."""

    def _fit_distributed(self, rows: DistributedRows):
        """fit on rows that workers hold (fastbp.dask): the network set up
        (or kept, with warm_start) from ``rows``' shapes and classes, then
        lbfgs over the workers' summed gradients or averaged epochs."""
        self._check_n_threads()
        self._check_regularisation()
        layer_units = [rows.n_features] + self._hidden_sizes() + [rows.n_outputs]
        first_pass = not hasattr(self, "coefs_") or not self.warm_start
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self.n_features_in_ = rows.n_features
            if rows.binarizer is not None:
                self._label_binarizer = rows.binarizer
                self.classes_ = rows.binarizer.classes_
        self._prepare_network(layer_units, np.empty((0, rows.n_outputs)), rows.dtype, first_pass)
        n_parts = rows.place(self._net.dtype, join=self.solver != "lbfgs")
        if self.solver == "lbfgs":
            self._run_lbfgs(rows.weighted_sums, keep_best_on=rows.lost)
        else:
            self._run_averaged_epochs(rows.run_round, rows.n_rows, n_parts)
        if not np.isfinite(self._net.params).all():
            raise ValueError(NON_FINITE_WEIGHTS)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, shuffle_buffer=None, validation_data=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or chunks
            Or, with ``y=None``, data larger than memory as chunks: an
            iterable of ``(X, y)`` or ``(X, y, sample_weight)`` tuples that
            can be read once per epoch (a list, :func:`fastbp.array_chunks`
            over memmaps, zarr or dask arrays, or a function returning a new
            generator each epoch; a generator serves ``max_iter=1``). An
            epoch is one pass over the chunks, each shuffled on its own (or
            see ``shuffle_buffer``); the next chunk is read and checked in a
            background thread while one trains, and a malformed chunk raises
            an error naming it. Chunks train with any solver but "lbfgs", without
            early stopping (``tol`` and ``n_iter_no_change`` watch the
            training loss). Rows that Dask workers hold come this way from
            :mod:`fastbp.dask`'s ``fit``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), or None
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss (and in early stopping's score).
        shuffle_buffer : int or None, default=None
            Chunks only: train on buffers of at least this many rows, joined
            from consecutive chunks and shuffled together (memory grows with
            the buffer); None trains each chunk on its own.
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: rows
            scored after every epoch instead of a ``validation_fraction``
            split of X (no rows are held out). With ``early_stopping=True``
            training stops on their score, as on the split's; without it
            the scores are recorded all the same. Either way
            ``validation_scores_`` and ``validation_loss_curve_`` hold them.
            Stochastic solvers only; with chunks, this is how early stopping
            works.

        Returns
        -------
        self
        """
        return self._fit_any(X, y, sample_weight, shuffle_buffer, validation_data=validation_data)

    #: fit's error for arguments of chunks given with arrays
    _chunk_arguments_error = "shuffle_buffer applies to chunks (y=None) only"

    def _fit_any(self, X, y, sample_weight, shuffle_buffer, classes=None, validation_data=None):
        """fit's way to the fit of its X: rows that workers hold, chunks, or arrays."""
        if validation_data is not None and self.solver not in STOCHASTIC_SOLVERS:
            raise ValueError(f"validation_data is scored after each epoch, and solver="
                             f"{self.solver!r} has no epochs: use a stochastic solver "
                             f"({', '.join(map(repr, STOCHASTIC_SOLVERS))})")
        if y is None and isinstance(X, DistributedRows):
            if validation_data is not None:
                raise ValueError("validation_data is not taken with rows that Dask workers hold")
            return self._fit_distributed(X)
        if y is None and are_chunks(X):
            return self._fit_chunks(X, sample_weight, classes, shuffle_buffer, validation_data)
        if classes is not None or shuffle_buffer is not None:
            raise ValueError(self._chunk_arguments_error)
        return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                         validation_data=validation_data)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn compatible, on fastbp's kernels.

    Takes every parameter of ``sklearn.neural_network.MLPClassifier`` with the
    same defaults, plus fastbp's own ``n_threads``, ``class_weight``,
    ``dropout``, ``weight_decay``, ``clip_norm``, ``ema`` and
    ``compute_dtype``; see the module docstring for where it differs.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
    activation : str or list of str, default="relu"
        scikit-learn's "identity", "logistic", "tanh", "relu", or fastbp's
        "leaky_relu", "elu", "gelu", "silu", "softplus", "softsign", "elliot".
        One name for every hidden layer, or a list with one per hidden layer.
    solver : {"lbfgs", "sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "rprop"}, \
default="adam"
        scikit-learn's three, and fastbp's optimisers of the same names
        (:mod:`fastbp.optim`) at ``learning_rate_init``, with ``beta_1``,
        ``beta_2`` and ``epsilon`` where they take them, their other
        settings at PyTorch's defaults ("adamw": weight decay 1e-2; "rprop":
        meant for full batches, ``learning_rate_init`` its first step).
    alpha : float, default=1e-4
        L2 penalty α: adds α/(2·Σw)·Σ‖W‖² to the loss.
    batch_size : int or "auto", default="auto"
        "auto" is min(200, n_samples).
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As in scikit-learn.
    n_threads : int or None, default=None
        Threads for training and prediction, as in :meth:`fastbp.Network.fit`
        and :meth:`fastbp.Network.predict`: minibatches of
        at least ``OWN_THREADS_MIN_FLOPS`` run on fastbp's own threads, smaller
        ones and lbfgs on that many BLAS threads. None uses the cores the
        process may run on (capped by ``OMP_NUM_THREADS`` or
        ``OPENBLAS_NUM_THREADS``), leaving the BLAS's thread pool as it is.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied into ``sample_weight``.
    dropout : float or list of float, default=0.0
        fastbp's own: inverted dropout on the hidden layers while training
        (one rate, or one per hidden layer), masks drawn from
        ``random_state``; see :class:`fastbp.Network`. Not with lbfgs.
    weight_decay : float or None, default=None
        fastbp's own: decoupled weight decay of solver "sgd" (None: 0) or
        "adamw" (None: its 1e-2), on the weights only; other solvers refuse
        it (``alpha`` is every solver's L2 penalty).
    clip_norm : float or None, default=None
        fastbp's own: clip the gradient's global L2 norm before every step,
        as ``torch.nn.utils.clip_grad_norm_``. Stochastic solvers only.
    ema : float or None, default=None
        fastbp's own: an exponential moving average of the weights, updated
        after every step with this decay in (0, 1), e.g. 0.999, as
        :meth:`fastbp.Network.fit`'s ``ema``: the validation scores, early
        stopping and the fitted ``coefs_`` and ``intercepts_`` are the
        average's, ``loss_curve_`` the raw weights' running loss.
        ``partial_fit`` and a warm start carry one average (and the raw
        weights) on, as they carry the optimiser state; a new one starts
        from weights set by hand or restored by early stopping. Stochastic
        solvers only.
    compute_dtype : {None, "bfloat16"}, default=None
        fastbp's own: None trains in the data's dtype (float32 or float64).
        "bfloat16" trains a float32 network (X is converted to float32)
        whose products take operands rounded to bfloat16 and sum in float32,
        as :class:`fastbp.Network`'s ``compute_dtype``; predictions and
        scores stay float32. Dense X and stochastic solvers only.

    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_, t_, coefs_, intercepts_, n_features_in_,
    feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_
        As in scikit-learn. ``coefs_`` and ``intercepts_`` are lists of views
        of the network's parameters: writes into the arrays go through at
        once, an assigned item or list is copied in when the estimator is
        next used.
    network_ : fastbp.Network
        fastbp's own: the fitted network, holding what ``coefs_`` and
        ``intercepts_`` hold (:func:`fastbp.to_onnx` exports it).
    validation_loss_curve_ : list of float or None
        fastbp's own: the loss of ``loss_curve_`` on the validation rows
        (early stopping's split, or fit's ``validation_data``) after each
        epoch, the L2 term included, beside ``validation_scores_``; None
        without validation rows.
    """

    _parameter_constraints: dict = CLASSIFIER_CONSTRAINTS

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None, class_weight=None, dropout=0.0, weight_decay=None,
                 clip_norm=None, ema=None, compute_dtype=None):
        self._store_parameters(locals())

    def _validate_input(self, X, y, incremental, reset, chunk=False):
        encoded = None if reset else self._encoded_labels(X, y, incremental, chunk)
        if encoded is not None:
            return X, encoded, y
        X, y = validate_data(self, X, y, accept_sparse=SPARSE_FORMATS, multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not chunk:  # a chunk may hold some of the classes
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        Y = self._label_binarizer.transform(y).astype(X.dtype)
        return X, Y, y

    def _encoded_labels(self, X, y, incremental, chunk):
        """_validate_input's one-hot targets without scikit-learn's generic
        checks, for the common call of a fitted classifier (partial_fit in a
        loop, ~1 ms a call through LabelBinarizer): X ready (see
        :meth:`_is_ready`) and y a 1-D array of integer or boolean labels,
        all of them in ``classes_``. None when any of that fails: the full
        path then runs, with scikit-learn's messages."""
        binarizer = getattr(self, "_label_binarizer", None)
        if (binarizer is None or not incremental or (self.warm_start and not chunk)
                or binarizer.y_type_ not in ("binary", "multiclass")
                or type(y) is not np.ndarray or y.ndim != 1 or y.dtype.kind not in "iub"
                or y.shape[0] != X.shape[0] or not self._is_ready(X)):
            return None
        classes = self.classes_
        if classes.dtype.kind not in "iub" or classes.shape[0] < 2:
            return None
        index = np.searchsorted(classes, y)
        if index.max() >= classes.shape[0] or not np.array_equal(classes[index], y):
            return None  # an unknown label: the full path names it
        if binarizer.y_type_ == "binary":  # one 0/1 column, for classes_[1]
            return (index == 1).astype(X.dtype).reshape(-1, 1)
        Y = np.zeros((y.shape[0], classes.shape[0]), X.dtype)
        Y[np.arange(y.shape[0]), index] = 1
        return Y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, classes=None, shuffle_buffer=None,
            validation_data=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or chunks
            Or, with ``y=None``, chunks of ``(X, y[, sample_weight])``: see
            :meth:`MLPRegressor.fit`.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), or None
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss (and in early stopping's score).
        classes : array-like of shape (n_classes,), default=None
            Chunks only: all classes. Without it, a first pass over the
            chunks reads their labels.
        shuffle_buffer : int or None, default=None
            Chunks only: see :meth:`MLPRegressor.fit`.
        validation_data : tuple, default=None
            ``(X_val, y_val[, sample_weight_val])``: see :meth:`MLPRegressor.fit`.

        Returns
        -------
        self
        """
        return self._fit_any(X, y, sample_weight, shuffle_buffer, classes, validation_data)

    _chunk_arguments_error = ("classes and shuffle_buffer apply to chunks (y=None) only; with "
                              "arrays the classes are those of y")

    def _learn_classes(self, source, classes) -> None:
        """classes_ of a chunked fit: ``classes``, or a pass over the labels."""
        binarizer = LabelBinarizer()
        if classes is not None:
            classes = np.asarray(classes)
            if classes.ndim != 1 or classes.size == 0:
                raise ValueError("classes must be a 1-D array of at least one class label, got "
                                 f"shape {classes.shape}")
            binarizer.fit(classes)
        else:
            labels = []
            for index, chunk in enumerate(source(), 1):
                y = np.asarray(chunk_parts(chunk, f"chunk {index} (reading the labels)")[1])
                if type_of_target(y).startswith("multilabel"):
                    labels = [y]  # the indicator's columns are the classes
                    break
                labels.append(np.unique(y))
            if not labels:
                raise ValueError("the chunks hold no rows")
            binarizer.fit(labels[0] if labels[0].ndim == 2 else np.concatenate(labels))
        self._label_binarizer = binarizer
        self.classes_ = binarizer.classes_

    _score_function = staticmethod(accuracy_score)

    def _outputs_to_predictions(self, y_pred):
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        kind = self._label_binarizer.y_type_
        # LabelBinarizer.inverse_transform's rules for dense outputs, without
        # its checks (~40 µs a call): the argmax, or the output above 0.5
        if kind == "multiclass" and y_pred.ndim == 2:
            return self.classes_.take(y_pred.argmax(axis=1), mode="clip")
        if kind == "binary" and y_pred.ndim == 1 and self.classes_.shape[0] == 2:
            return self.classes_[(y_pred > 0.5).astype(np.intp)]
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X):
        """Predict with the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        return self._outputs_to_predictions(self._forward(X))

    @available_if(_has_stochastic_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one pass over (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            All classes, required on the first call.

        Returns
        -------
        self
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            # multilabel targets define their own columns; else the given classes
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(self.classes_)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_proba(self, X):
        """Probability estimates.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, scikit-learn compatible, on fastbp's kernels.

    Takes every parameter of ``sklearn.neural_network.MLPRegressor`` with the
    same defaults and positions, plus fastbp's own ``n_threads``,
    ``dropout``, ``weight_decay``, ``clip_norm``, ``ema`` and
    ``compute_dtype``; see :class:`MLPClassifier` and the module docstring.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
        As in scikit-learn (>= 1.7): half the squared error, or half the
        Poisson deviance of an exponential output (the log link), which
        needs ``y >= 0``.
    hidden_layer_sizes, activation, solver, ..., max_fun, n_threads, dropout,
    weight_decay, clip_norm, ema, compute_dtype
        As in :class:`MLPClassifier`.
    """

    _parameter_constraints: dict = REGRESSOR_CONSTRAINTS

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None, dropout=0.0, weight_decay=None, clip_norm=None, ema=None,
                 compute_dtype=None):
        self._store_parameters(locals())

    def _validate_input(self, X, y, incremental, reset, chunk=False):
        ready = (not reset and self._is_ready(X) and type(y) is np.ndarray
                 and y.ndim in (1, 2) and y.dtype == X.dtype and y.shape[0] == X.shape[0]
                 and y.size and _kernels.first_nonfinite(np.ravel(y)) < 0)
        if not ready:  # else validate_data would return X and y as they are
            X, y = validate_data(self, X, y, accept_sparse=SPARSE_FORMATS, multi_output=True,
                                 y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(f"loss='poisson' needs targets y >= 0; the smallest is {y.min()}")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return X, np.asarray(Y, dtype=X.dtype), y

    _score_function = staticmethod(r2_score)

    def _outputs_to_predictions(self, y_pred):
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._outputs_to_predictions(self._forward(X))

    @available_if(_has_stochastic_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one pass over (X, y).

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

