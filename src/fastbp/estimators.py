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
import numbers
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context,
                          is_classifier)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils._param_validation import Interval, InvalidParameterError, Options, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _kernels
from ._objective import mean_objective, weight_mask, weighted_sums, workspace_for
from ._runtime import training_threads
from ._streaming import ChunkedTraining, checked_chunk, chunk_parts, chunk_source
from ._training import TrainingDiverged, TrainingLoop
from ._validation import is_ready_matrix
from .callbacks import EarlyStopping
from .losses import KERNEL_LOSSES, LOSS_FOR_OUTPUT, LOSSES
from ._sparse import as_csr_rows
from .network import HIDDEN_ACTIVATIONS, Network
from .optim import SGD, Adam, Adaptive, Constant, InvScaling

_STOCHASTIC_SOLVERS = ("sgd", "adam")
#: scikit-learn's error for a fit that ends with NaN or infinite weights,
#: which its users match on
_NON_FINITE_WEIGHTS = ("Solver produced non-finite parameter weights. The input data may "
                       "contain large values and need to be preprocessed.")
#: scikit-learn's activation names -> fastbp's: every hidden activation of the
#: kernels' table, the sigmoid under scikit-learn's name "logistic"
_ACTIVATION_NAMES = {("logistic" if name == "sigmoid" else name): name
                     for name in HIDDEN_ACTIVATIONS}


#: as scikit-learn's MLP; validate_data converts other formats to the first
_SPARSE_FORMATS = ("csr", "csc")


def _kernel_input(X, dtype):
    """X as the kernels read it: a C-contiguous array, or CSR rows."""
    if isinstance(X, np.ndarray):
        # "A": ascontiguousarray passes misaligned buffers (e.g. unpickled by Dask) through
        return np.require(X, dtype=dtype, requirements="CA")
    return as_csr_rows(X, dtype, "X")


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _is_ready(estimator, X) -> bool:
    """Whether ``validate_data(estimator, X, reset=False)`` would return X
    itself and do nothing else: a ready float32/float64 matrix of the fitted
    width (:func:`fastbp._validation.is_ready_matrix`), for an estimator
    fitted without feature names. Such calls (predict, partial_fit in a
    loop) skip scikit-learn's generic checks, ~100 µs a call; anything else
    takes the full path, with its messages and warnings."""
    n_features = getattr(estimator, "n_features_in_", None)
    return (n_features is not None and not hasattr(estimator, "feature_names_in_")
            and is_ready_matrix(X, n_features, _FLOAT_DTYPES))


#: the initial state of RandomState(seed), for the seeds fits used lately
_SEEDED_STATES: dict = {}


def _restarted_random_state(estimator):
    """``check_random_state(estimator.random_state)``: every fit call restarts
    the stream, as in scikit-learn. For an int seed, the generator this
    function built for the estimator before is rewound instead of built
    anew: ``RandomState(seed)`` costs ~190 µs, more than half of a 32-row
    ``partial_fit``, and ``set_state`` ~50 µs. A generator the user passed
    is never touched."""
    seed = estimator.random_state
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        return check_random_state(seed)
    initial = _SEEDED_STATES.get(int(seed))
    own = getattr(estimator, "_seeded_generator", None)
    if initial is None or own is None:
        own = check_random_state(seed)
        if len(_SEEDED_STATES) >= 64:
            _SEEDED_STATES.clear()
        _SEEDED_STATES.setdefault(int(seed), own.get_state())
        estimator._seeded_generator = own
        return own
    own.set_state(initial)
    return own


def _are_chunks(X) -> bool:
    """Whether fit's X (with y=None) is chunks of (X, y) rather than an array."""
    if hasattr(X, "shape") or hasattr(X, "__array__") or isinstance(X, (str, bytes)):
        return False
    if isinstance(X, (list, tuple)):  # rows of numbers, or (X, y) tuples of arrays
        first = X[0] if len(X) else None
        return (isinstance(first, (tuple, list)) and len(first) in (2, 3)
                and len(getattr(first[0], "shape", ())) == 2)
    return callable(X) or hasattr(X, "__iter__")


def _has_stochastic_solver(estimator) -> bool:
    """partial_fit's availability: True, or AttributeError naming the solver."""
    if estimator.solver not in _STOCHASTIC_SOLVERS:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{estimator.solver} is not stochastic.")
    return True


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


class _SolverDrivers:
    """The solvers' steps that the local estimators and fastbp.dask share: the
    lbfgs driver, taking the gradient sums of the rows wherever they lie, and
    a minibatch epoch from the estimator's state with its averaging."""

    def _run_lbfgs(self, weighted_sums_at, keep_best_on=()) -> None:
        """scikit-learn's lbfgs: SciPy's L-BFGS-B over the network's flat
        parameters. ``weighted_sums_at(params, sizes, acts, loss_code)`` gives
        the data term's sums over all rows
        (:func:`fastbp._objective.weighted_sums`: one machine's rows, or
        tree-reduced over Dask workers). On an error of ``keep_best_on`` the
        network keeps the last parameters whose loss and gradient were
        finite, and ``loss_`` their loss."""
        net = self._net
        K = 1.0 / self._loss_scale()
        is_weight = weight_mask(net)
        best = {"loss": np.inf, "params": net.params}
        model = (*net.kernel_layout, self._loss_code())

        def loss_and_gradient(theta):
            params = theta.astype(net.dtype)
            # l2 = alpha*K then /K: the data term is averaged over outputs, the
            # penalty is not, and the gradient is that of this very loss
            J, grad = mean_objective(weighted_sums_at(params, *model), params, is_weight,
                                     self.alpha * K)
            loss = J / K
            if np.isfinite(loss) and np.isfinite(grad).all():
                best["loss"], best["params"] = loss, params
            return loss, grad / K

        def count_iteration(intermediate_result):
            self.n_iter_ += 1

        iprint = {"iprint": 1} if self.verbose else {}
        self.n_iter_ = 0
        try:
            result = scipy.optimize.minimize(
                loss_and_gradient, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                callback=count_iteration,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **iprint})
        except keep_best_on:
            net.replace_params(best["params"], check_finite=False)
            self.loss_ = float(best["loss"])
            self._bind_weights()
            raise
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iterations: "
                          f"{result.message}. Increase max_iter or scale the data.",
                          ConvergenceWarning)
        self.n_iter_ = int(result.nit)
        self.loss_ = float(result.fun)
        net.replace_params(result.x, check_finite=False)  # fit refuses non-finite weights
        self._bind_weights()

    def _resolved_batch_size(self, n_rows) -> int:
        """``batch_size`` with "auto" resolved as scikit-learn: min(200, n_rows);
        a larger int is clipped to n_rows, with scikit-learn's warning. With
        ``n_rows=None`` (chunks, whose rows are not known): 200, or the int."""
        if self.batch_size == "auto":
            return 200 if n_rows is None else min(200, n_rows)
        if n_rows is None:
            return int(max(self.batch_size, 1))
        if self.batch_size > n_rows:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                          "It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n_rows))

    def _start_distributed_fit(self, layer_units: list, binarizer, dtype, warm: bool):
        """fastbp.dask's set-up of this (local) estimator, on the client: the
        random stream restarted; with ``warm`` the network must have
        ``layer_units`` (the optimiser restarts if the solver changed), else a
        new one, with the classes of ``binarizer`` (a fitted LabelBinarizer,
        or None for a regressor). Returns the network's dtype."""
        self._random_state = check_random_state(self.random_state)
        if warm:
            if list(self._net.sizes) != layer_units:
                raise ValueError(f"the network has layers {list(self._net.sizes)}, but this "
                                 f"fit asks for {layer_units}; use warm_start=False")
            if self._optimizer_solver != self.solver:
                self._reset_optimizer()
        else:
            self.n_features_in_ = layer_units[0]
            if binarizer is not None:
                self._label_binarizer = binarizer
                self.classes_ = binarizer.classes_
            self._initialize(np.empty((0, layer_units[-1])), layer_units, dtype)
        return self._net.dtype

    def _local_epoch(self, X, Y, sample_weight, seed: int, batch_size: int, n_threads) -> dict:
        """One epoch of the minibatch loop from this estimator's state, shuffled
        with ``RandomState(seed)``: fastbp.dask's task on a worker's rows.

        Returns the new weights and optimiser buffers, the step count and the
        epoch's row-averaged data and penalty terms, or the message of a
        diverged loss under "diverged".
        """
        self._random_state = np.random.RandomState(seed)
        optimizer = self._optimizer()
        state = self._optimizer_state
        order = self._shuffled_orders(X.shape[0]) if self.shuffle else None
        loop = TrainingLoop(self._net, X, Y, sample_weight, self._loss_code(), self.alpha,
                            optimizer, batch_size, n_threads, order)
        try:
            history = loop.run(1)
        except TrainingDiverged as exc:  # its history argument does not survive pickling
            return {"diverged": str(exc)}
        return {"params": self._net.params, "buffers": dict(state.buffers),
                "step_count": int(state.step_count), "data_loss": history["data_loss"][-1],
                "penalty": history["penalty"][-1]}

    def _run_averaged_epochs(self, run_round, n_rows: int, n_parts: int) -> None:
        """Minibatch epochs averaged over parts of the rows (fastbp.dask's
        workers). Each round, ``run_round(model, seed_base, batch_size)`` gives
        the :meth:`_local_epoch` results of every part, trained from ``model``
        with the seeds ``seed_base + i``; :meth:`_end_averaged_epoch` averages
        them into this estimator and runs the stopping rule and schedule."""
        batch_size = self._resolved_batch_size(n_rows)
        after_epoch = self._bookkeeping(lambda: n_rows, None, None, None)
        history = {"data_loss": [], "penalty": [], "seconds": []}
        seeds = self._random_state
        for epoch in range(self.max_iter):
            started = time.perf_counter()
            results = run_round(self, int(seeds.randint(0, 2**31 - n_parts)), batch_size)
            diverged = [r["diverged"] for r in results if "diverged" in r]
            if diverged:
                raise ValueError(
                    f"the loss became non-finite in iteration {self.n_iter_ + 1}: solver "
                    f"produced non-finite values ({diverged[0]}). The estimator keeps the "
                    "weights of the previous iteration.")
            if self._end_averaged_epoch(results, epoch, history, after_epoch, n_rows,
                                        time.perf_counter() - started):
                return
        warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                      "reached and the optimization hasn't converged yet.", ConvergenceWarning)

    def _end_averaged_epoch(self, results: list, epoch: int, history: dict, after_epoch,
                            n_rows: int, seconds: float) -> bool:
        """fastbp.dask's end of a round of :meth:`_local_epoch` results: their
        weights and optimiser buffers averaged by the workers' row weights,
        the epoch recorded, the stopping rule and the schedule run. True: stop."""
        optimizer = self._optimizer()
        state = self._optimizer_state
        self._net.replace_params(_weighted_mean([r["params"] for r in results], results),
                                 check_finite=False)
        self._bind_weights()
        for name, buffer in state.buffers.items():
            buffer[...] = _weighted_mean([r["buffers"][name] for r in results], results)
        state.step_count = max(r["step_count"] for r in results)
        total = sum(r["weight_sum"] for r in results)
        history["data_loss"].append(sum(r["data_loss"] * r["weight_sum"] for r in results)
                                    / total)
        history["penalty"].append(sum(r["penalty"] * r["weight_sum"] for r in results) / total)
        history["seconds"].append(seconds)
        after_epoch(epoch, history, self._net)
        plateau = self._stopping.update(epoch, history, self._net)
        optimizer.epoch_ends(state, n_rows)
        if plateau:
            if optimizer.plateau(state):
                return True
            self._stopping.wait = 0
        return False


class _BaseMLP(_SolverDrivers, BaseEstimator):
    """Shared machinery of :class:`MLPClassifier` and :class:`MLPRegressor`."""

    # scikit-learn's rules, plus fastbp's own: activation lists and n_threads
    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATION_NAMES)), list, tuple],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads

    # -- parameters ---------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _hidden_sizes(self) -> list:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if _is_int(sizes) else list(sizes) if hasattr(sizes, "__iter__") else None
        if sizes is None or not all(_is_int(s) and s > 0 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden: int) -> list:
        names = [self.activation] * n_hidden if isinstance(self.activation, str) \
            else list(self.activation)
        # the list form is fastbp's own, so checked here, with scikit-learn's error
        if not all(isinstance(name, str) and name in _ACTIVATION_NAMES for name in names):
            raise InvalidParameterError(
                f"The 'activation' parameter of {type(self).__name__} must be a str among "
                f"{sorted(_ACTIVATION_NAMES)} or a list of them. Got {self.activation!r} instead.")
        if len(names) != n_hidden:
            raise InvalidParameterError(
                f"The 'activation' parameter of {type(self).__name__} lists {len(names)} names "
                f"for {n_hidden} hidden layers.")
        return [_ACTIVATION_NAMES[name] for name in names]

    # -- fitted parameters: lists of views into the network's flat vector --

    def _bind_weights(self) -> None:
        """Make ``coefs_`` and ``intercepts_`` new lists of views of the
        network's parameters; called whenever the network's parameter array
        is replaced (every fit, set_weights, the restore of early stopping)."""
        views = self._net._layer_views(self._net._params)
        self.coefs_ = [W for W, _ in views]
        self.intercepts_ = [b for _, b in views]
        self._bound = (self._net._params, tuple(self.coefs_), tuple(self.intercepts_))

    def _network(self) -> Network:
        """The network, first made to hold what ``coefs_`` and ``intercepts_`` hold.

        They are plain lists, as in scikit-learn. Their arrays are views of
        the network's parameters, so writes into them go straight through;
        an item assigned (``est.coefs_[1] = W``) or a list assigned
        (``est.coefs_ = [...]``) is copied into the network here, before the
        network is next used. Lists of other shapes than the network's (or
        set by hand before any fit) define a new network, as scikit-learn
        takes whatever its lists hold.

        Raises
        ------
        NotFittedError
            Before a fit, unless ``coefs_`` and ``intercepts_`` were set.
        ValueError
            On lists that do not make a network, or non-finite values.
        """
        check_is_fitted(self, ["coefs_", "intercepts_"])
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        net, bound = getattr(self, "_net", None), getattr(self, "_bound", None)
        if net is not None and bound is not None and _same_arrays(coefs, bound[1]) \
                and _same_arrays(intercepts, bound[2]):
            if bound[0] is not net._params:  # replaced without a rebind: follow the network
                self._bind_weights()
            return net
        shapes = [np.shape(W) for W in coefs], [np.shape(b) for b in intercepts]
        if net is None or shapes != ([(a, b) for a, b in zip(net.sizes, net.sizes[1:])],
                                     [(b,) for b in net.sizes[1:]]):
            self._adopt_architecture(coefs, intercepts)
            net = self._net
        elif bound is not None:
            # items still bound take the network's current values: it may have
            # been trained or set since they were handed out
            current = net._layer_views(net._params)
            coefs = [W if W is not old else now
                     for W, old, (now, _) in zip(coefs, bound[1], current)]
            intercepts = [b if b is not old else now
                          for b, old, (_, now) in zip(intercepts, bound[2], current)]
        net.set_weights(coefs, intercepts)
        self._bind_weights()
        return net

    def _adopt_architecture(self, coefs: list, intercepts: list) -> None:
        """A new network shaped by hand-set ``coefs_`` and ``intercepts_``,
        with the fitted attributes the lists imply and a fresh optimiser."""
        if not coefs or len(coefs) != len(intercepts):
            raise ValueError(f"coefs_ and intercepts_ must list one array per layer, got "
                             f"{len(coefs)} and {len(intercepts)}")
        for i, W in enumerate(coefs):
            if np.ndim(W) != 2 or (i and np.shape(W)[0] != np.shape(coefs[i - 1])[1]):
                raise ValueError(f"coefs_[{i}] has shape {np.shape(W)}, which does not "
                                 "chain the layers (coefs_[i] is (units[i], units[i+1]))")
        sizes = [np.shape(coefs[0])[0]] + [np.shape(W)[1] for W in coefs]
        out_activation = getattr(self, "out_activation_", None)
        if out_activation is None:
            raise ValueError("set out_activation_ with coefs_ and intercepts_ before a fit")
        dtype = np.float32 if np.asarray(coefs[0]).dtype == np.float32 else np.float64
        self.n_layers_ = len(sizes)
        self.n_outputs_ = sizes[-1]
        self._net = self._build_network(sizes, dtype)
        self._bound = None
        self._reset_optimizer()
        self._stopping = None  # its best weights belong to the old network

    def _build_network(self, layer_units: list, dtype) -> Network:
        hidden = self._hidden_activations(len(layer_units) - 2)
        # "exp" is applied by _forward: the network itself ends in log of the mean
        output = {"logistic": "sigmoid", "exp": "identity"}.get(self.out_activation_,
                                                                self.out_activation_)
        return Network(layer_units, activation=hidden, output_activation=output,
                       dtype=np.dtype(dtype).name)

    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself
        state.pop("_bound", None)
        if "_net" in state:
            # the network pickles the weights; the lists are rebuilt on load
            self._network()
            state.pop("coefs_", None)
            state.pop("intercepts_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_net" in state:
            self._bind_weights()

    # -- fitting ------------------------------------------------------------

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
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
            self._stopping = self._stopping_rule()

    def _stopping_rule(self) -> EarlyStopping:
        # scikit-learn's rule: n_iter_no_change + 1 epochs in a row not
        # better than the best by tol stop (or lower an adaptive rate)
        return EarlyStopping(patience=self.n_iter_no_change + 1, min_delta=self.tol,
                             monitor="val_score" if self.early_stopping else "loss_curve",
                             mode="max" if self.early_stopping else "min",
                             restore_best=self.early_stopping)

    def _adopt_stochastic_state(self) -> None:
        """The stopping rule of this fit. A warm start keeps the rule's count
        and best value but takes tol and n_iter_no_change afresh, as
        scikit-learn reads them in every fit. Where the estimator has no rule
        for this early_stopping setting (weights set by hand, a fit by lbfgs,
        early_stopping switched) the bookkeeping is set up as _initialize does."""
        stopping = getattr(self, "_stopping", None)
        if stopping is not None and stopping.restore_best == self.early_stopping:
            stopping.patience = self.n_iter_no_change + 1
            stopping.min_delta = self.tol
            return
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_ = []
        if self.early_stopping:
            for name, value in (("validation_scores_", []), ("best_validation_score_", -np.inf)):
                if getattr(self, name, None) is None:
                    setattr(self, name, value)
            self.best_loss_ = None
        elif getattr(self, "best_loss_", None) is None:
            self.best_loss_ = np.inf
        self._stopping = self._stopping_rule()
        if self.early_stopping:
            self._stopping.best = -self.best_validation_score_
        else:
            self._stopping.best = self.best_loss_

    def _reset_optimizer(self) -> None:
        """A fresh optimiser state (warm starts and partial_fit keep it)."""
        self._optimizer_state = None
        self._optimizer_solver = self.solver

    def _optimizer(self):
        """The optimiser of this fit, from the current hyper-parameters,
        carrying the state of the previous ones."""
        if self.solver == "adam":
            optimizer = Adam(lr=self.learning_rate_init, beta1=self.beta_1, beta2=self.beta_2,
                             epsilon=self.epsilon)
        else:
            schedule = {"constant": Constant(), "invscaling": InvScaling(self.power_t),
                        "adaptive": Adaptive()}[self.learning_rate]
            optimizer = SGD(lr=self.learning_rate_init, nesterov=self.nesterovs_momentum
                            and self.momentum > 0, momentum=min(self.momentum, 0.5),
                            schedule=schedule)
            # scikit-learn allows momentum=1, which fastbp.SGD refuses for users
            optimizer.momentum = float(self.momentum)
            optimizer.buffer_names = ("velocity",) if self.momentum > 0 else ()
        if self._optimizer_state is not None:
            optimizer.adopt_state(self._net, self._optimizer_state)
        self._optimizer_state = optimizer.state(self._net)
        return optimizer

    def _loss_code(self) -> int:
        if self.out_activation_ == "exp":  # the log link: poisson on the identity output
            return KERNEL_LOSSES["poisson"]
        output = _ACTIVATION_NAMES.get(self.out_activation_, self.out_activation_)
        return LOSSES[LOSS_FOR_OUTPUT.get(output, "mse")]

    def _loss_scale(self) -> float:
        # scikit-learn's squared error is also averaged over the outputs (its
        # poisson deviance, like the log-losses, is summed over them)
        return 1.0 / self.n_outputs_ if self.out_activation_ == "identity" else 1.0

    def _sample_weight(self, X, y_raw, sample_weight):
        """Per-row weights from sample_weight and class_weight, or None."""
        class_weight = getattr(self, "class_weight", None)
        if sample_weight is None and class_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        if class_weight is not None:
            weights = weights * compute_sample_weight(class_weight, y_raw).astype(X.dtype)
        if np.any(weights < 0):
            raise ValueError("sample weights must be non-negative")
        return np.ascontiguousarray(weights, dtype=X.dtype)

    def _check_n_threads(self) -> None:
        if isinstance(self.n_threads, (bool, np.bool_)):
            # scikit-learn's Interval(Integral) lets bools through; a thread count is no bool
            raise InvalidParameterError(
                f"The 'n_threads' parameter of {type(self).__name__} must be an int in the range "
                f"[1, inf) or None. Got {self.n_threads!r} instead.")

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._check_n_threads()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, y_raw = self._validate_input(X, y, incremental, reset=first_pass)
        # as scikit-learn: every fit call restarts the random stream, so the
        # same random_state draws the same weights, split and shuffles
        self._random_state = _restarted_random_state(self)
        sample_weight = self._sample_weight(X, y_raw, sample_weight)
        self._prepare_network([X.shape[1]] + hidden + [y.shape[1]], y, X.dtype, first_pass)
        dtype = self._net.dtype
        X = _kernel_input(X, dtype)
        y = np.require(y, dtype=dtype, requirements="CA")
        if sample_weight is not None:  # a warm start may meet data of another dtype
            sample_weight = np.require(sample_weight, dtype=dtype, requirements="CA")
        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                self._adopt_stochastic_state()
                self._fit_stochastic(X, y, y_raw, sample_weight, incremental)
            else:
                self._fit_lbfgs(X, y, sample_weight)
        finally:
            self._bind_weights()  # training replaced the parameter array
        if not np.isfinite(self._net.params).all():
            raise ValueError(_NON_FINITE_WEIGHTS)
        return self

    def _prepare_network(self, layer_units: list, Y, dtype, first_pass: bool) -> None:
        """A new network for a first fit; else check that the warm one fits
        ``layer_units``, and restart the optimiser if the solver changed."""
        if first_pass:
            self._initialize(Y, layer_units, dtype)
        elif list(self._network().sizes) != layer_units:
            raise ValueError(f"the network has layers {list(self._net.sizes)}, but this fit "
                             f"asks for {layer_units}; use warm_start=False")
        elif self._optimizer_solver != self.solver:
            self._reset_optimizer()

    def _fit_chunks(self, chunks, sample_weight, classes=None, shuffle_buffer=None):
        """fit over chunks of (X, y[, sample_weight]): one pass an epoch, each
        chunk checked in a background thread while the one before trains."""
        self._check_n_threads()
        if sample_weight is not None:
            raise ValueError("with chunks, give the weights in each chunk: (X, y, sample_weight)")
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(f"solver={self.solver!r} steps on all rows at once; chunks train "
                             "with solver='adam' or 'sgd'")
        if self.early_stopping:
            raise ValueError("early_stopping holds out validation_fraction of the rows, which "
                             "chunks read once per epoch do not allow: with early_stopping=False, "
                             "tol and n_iter_no_change watch the training loss, or "
                             "fastbp.Network.fit(chunks, None) takes validation_data")
        if getattr(self, "class_weight", None) == "balanced":
            raise ValueError("class_weight='balanced' needs the class counts of all rows, which "
                             "chunks do not give: pass class_weight as a dict")
        if shuffle_buffer is not None and not (_is_int(shuffle_buffer) and shuffle_buffer >= 1):
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
        self._random_state = _restarted_random_state(self)
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
            return _kernel_input(X, dtype), np.require(Y, dtype=dtype, requirements="CA"), weights

        batch_size = self._resolved_batch_size(None)

        def epoch_chunks():  # the first epoch finishes the iterator begun above
            return replay.pop() if replay else source()

        training = ChunkedTraining(self._net, epoch_chunks, check, self._loss_code(), self.alpha,
                                   self._optimizer(), batch_size, self.n_threads,
                                   self._random_state if self.shuffle else None,
                                   shuffle_buffer or 0)
        bookkeeping = self._bookkeeping(lambda: training.rows_seen, None, None, None)
        try:
            self._train_epochs(lambda: training.run(self.max_iter, [bookkeeping], self._stopping),
                               lambda: training.stopped, False, lambda: training.rows_seen)
        finally:
            self._bind_weights()
        if not np.isfinite(self._net.params).all():
            raise ValueError(_NON_FINITE_WEIGHTS)
        return self

    def _learn_classes(self, source, classes) -> None:
        """Regressors learn nothing here; see MLPClassifier."""

    def _fit_lbfgs(self, X, y, sample_weight):
        work = workspace_for(self._net.kernel_layout[0], X.shape[0], self._net.dtype)
        # one batch of all rows: fastbp's own threads only split minibatches
        with training_threads(self._net.sizes, X.shape[0], self.n_threads, per_sample=True):
            # Ctrl-C keeps the last finite point tried, not the starting weights
            self._run_lbfgs(lambda params, sizes, acts, code: weighted_sums(
                X, y, sample_weight, params, sizes, acts, code, work),
                keep_best_on=(KeyboardInterrupt,))

    def _fit_stochastic(self, X, y, y_raw, sample_weight, incremental):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_val = y_val = sw_val = None
        if self.early_stopping:
            X, y, sample_weight, X_val, y_val, sw_val = self._validation_split(X, y, sample_weight)
        n = X.shape[0]
        batch_size = self._resolved_batch_size(n)
        loop = TrainingLoop(self._net, X, y, sample_weight, self._loss_code(), self.alpha,
                            self._optimizer(), batch_size, self.n_threads,
                            self._shuffled_orders(n) if self.shuffle else None)
        bookkeeping = self._bookkeeping(lambda: n, X_val, y_val, sw_val)
        epochs = 1 if incremental else self.max_iter
        self._train_epochs(lambda: loop.run(epochs, [bookkeeping], self._stopping),
                           lambda: loop.stopped, incremental, lambda: n)

    def _train_epochs(self, run, stopped, incremental: bool, rows) -> None:
        """Call ``run()`` (the epochs of a stochastic fit, which return their
        history) with scikit-learn's handling of divergence, interrupts and
        non-convergence. ``stopped()``: whether the stopping rule ended it;
        ``rows()``: the rows of an epoch."""
        # as scikit-learn: n_iter_ counts the epochs of this call (1 for
        # partial_fit); t_, loss_curve_ and the optimiser state carry over
        self.n_iter_ = 0
        try:
            history = run()
        except TrainingDiverged as exc:
            if not self.early_stopping:
                # scikit-learn's message first; the weights are those before the
                # epoch that diverged (scikit-learn leaves NaN weights)
                raise TrainingDiverged(f"{_NON_FINITE_WEIGHTS} fastbp: {exc}",
                                       exc.history) from exc
            self._stop_diverged(rows())
            return
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
            return
        if not incremental and len(history["loss"]) == self.max_iter and not stopped():
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning)
        if self.verbose and stopped():
            what = "Validation score" if self.early_stopping else "Training loss"
            print(f"{what} did not improve more than tol={self.tol:f} for "
                  f"{self.n_iter_no_change} consecutive epochs. Stopping.")

    def _stop_diverged(self, n):
        """End a fit with early stopping whose loss became non-finite.

        scikit-learn goes on training NaN weights until max_iter, recording
        NaN losses and validation scores, and at the end restores the weights
        of the best validation score. The epoch that diverged is recorded the
        same way here, but training stops there: NaN weights never recover.
        """
        self.n_iter_ += 1
        self.t_ += n
        self.loss_ = np.nan
        self.loss_curve_.append(self.loss_)
        self.validation_scores_.append(np.nan)
        self._stopping.restore(self._net)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = nan")
        warnings.warn(f"The loss became non-finite in iteration {self.n_iter_}: training "
                      "stopped with the weights of the best validation score. Scale the data "
                      "or lower learning_rate_init.", ConvergenceWarning)

    def _validation_split(self, X, y, sample_weight):
        """scikit-learn's early-stopping split: stratified for single-output
        classification, drawn from the estimator's random state."""
        # on the 0/1 indicator columns as booleans, as scikit-learn (whose
        # "too few members" error then names the class 'True')
        stratify = y.astype(bool) if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = [X, y] + ([sample_weight] if sample_weight is not None else [])
        split = train_test_split(*arrays, random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        X, X_val, y, y_val = split[:4]
        sample_weight, sw_val = (split[4], split[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase validation_fraction "
                             "or the number of samples.")
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        if isinstance(X, np.ndarray):  # CSR rows come out of the split compact already
            X = np.ascontiguousarray(X)
        return X, np.ascontiguousarray(y), sample_weight, X_val, y_val, sw_val

    def _shuffled_orders(self, n):
        """Row orders drawn as scikit-learn's utils.shuffle of the previous
        order, draw for draw."""
        sample_idx = np.arange(n, dtype=np.intp)

        def next_order():
            nonlocal sample_idx
            permutation = np.arange(n)
            self._random_state.shuffle(permutation)
            sample_idx = sample_idx[permutation]
            return sample_idx
        return next_order

    def _bookkeeping(self, rows, X_val, y_val, sw_val):
        """The epoch callback: scikit-learn's fitted attributes, the value
        the stopping rule watches, and the verbose lines. ``rows()``: the
        rows of the epoch."""
        scale = self._loss_scale()

        def after_epoch(epoch, history, network):
            self.n_iter_ += 1
            self.t_ += rows()
            self.loss_ = history["data_loss"][-1] * scale + history["penalty"][-1]
            self.loss_curve_.append(self.loss_)
            history.setdefault("loss_curve", []).append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f (%.3f s)"
                      % (self.n_iter_, self.loss_, history["seconds"][-1]))
            if X_val is None:
                self.best_loss_ = min(self.best_loss_, self.loss_)
                return False
            score = self._validation_score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            history.setdefault("val_score", []).append(score)
            self.best_validation_score_ = max(self.best_validation_score_, score)
            if self.verbose:
                print("Validation score: %f" % score)
            return False
        return after_epoch


    # -- prediction ---------------------------------------------------------

    def _forward(self, X, check_input: bool = True) -> np.ndarray:
        """The output layer's values; X unchecked without ``check_input``."""
        net = self._network()
        if check_input and not _is_ready(self, X):
            X = validate_data(self, X, accept_sparse=_SPARSE_FORMATS,
                              dtype=(np.float64, np.float32), reset=False)
        outputs = net.predict(X, n_threads=self.n_threads)
        return np.exp(outputs, out=outputs) if self.out_activation_ == "exp" else outputs

    def _validation_score(self, X, y, sample_weight) -> float:
        """The score on early stopping's split, NaN where the outputs are not
        finite (as scikit-learn). X is the validated split: checking it
        again would warn about feature names once per epoch."""
        outputs = self._forward(X, check_input=False)
        if not np.isfinite(outputs).all():
            return np.nan
        return float(self._score_function(y, self._outputs_to_predictions(outputs),
                                          sample_weight=sample_weight))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, shuffle_buffer=None):
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
            an error naming it. Chunks train with "adam" or "sgd", without
            early stopping (``tol`` and ``n_iter_no_change`` watch the
            training loss).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), or None
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss (and in early stopping's score).
        shuffle_buffer : int or None, default=None
            Chunks only: train on buffers of at least this many rows, joined
            from consecutive chunks and shuffled together (memory grows with
            the buffer); None trains each chunk on its own.

        Returns
        -------
        self
        """
        if y is None and _are_chunks(X):
            return self._fit_chunks(X, sample_weight, shuffle_buffer=shuffle_buffer)
        if shuffle_buffer is not None:
            raise ValueError("shuffle_buffer applies to chunks (y=None) only")
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    # -- weight interop -----------------------------------------------------

    def to_torch_state_dict(self) -> dict:
        """The weights as the state_dict of ``torch.nn.Sequential`` of Linear and
        activation modules: keys "0.weight", "0.bias", "2.weight", ...

        PyTorch stores each Linear weight as (out, in): the transpose of ``coefs_``.
        NumPy arrays are returned; ``torch.from_numpy`` turns them into tensors.
        The output activation is not part of it (``out_activation_``: "exp"
        for the poisson regressor, applied to the last Linear's output).
        """
        state = {}
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            state[f"{2 * i}.weight"] = np.ascontiguousarray(W.T)
            state[f"{2 * i}.bias"] = b.copy()
        return state

    def load_torch_state_dict(self, state_dict) -> None:
        """Set the weights from a state_dict of Linear layers (see
        :meth:`to_torch_state_dict`); other entries are ignored.

        The estimator must be fitted (or warm-started) with matching layer sizes.
        """
        linear = sorted((k for k in state_dict if k.endswith(".weight")),
                        key=lambda k: [int(p) if p.isdigit() else p for p in k.split(".")])
        weights = [np.asarray(_as_numpy(state_dict[k])).T for k in linear]
        biases = [np.asarray(_as_numpy(state_dict[k[:-len("weight")] + "bias"])) for k in linear]
        self._network().set_weights(weights, biases)
        self._bind_weights()

    def to_sklearn(self):
        """An equivalent fitted ``sklearn.neural_network`` estimator (weights copied)."""
        from sklearn import neural_network
        cls = getattr(neural_network, type(self).__name__)
        self._network()  # assigned weights checked and in place
        params = self.get_params()
        params.pop("class_weight", None)
        params.pop("n_threads", None)  # fastbp's own
        if "loss" in params and "loss" not in cls().get_params():  # scikit-learn < 1.7
            if params.pop("loss") != "squared_error":
                raise ValueError(f"loss={self.loss!r} needs scikit-learn >= 1.7")
        if not isinstance(params["activation"], str):
            raise ValueError("scikit-learn takes one activation for all hidden layers")
        other = cls(**params)
        other.coefs_ = [W.copy() for W in self.coefs_]
        other.intercepts_ = [b.copy() for b in self.intercepts_]
        for name in ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_", "n_iter_",
                     "t_", "loss_", "loss_curve_", "best_loss_", "classes_",
                     "_label_binarizer", "feature_names_in_", "validation_scores_",
                     "best_validation_score_"):
            if hasattr(self, name):
                setattr(other, name, getattr(self, name))
        return other

    @classmethod
    def from_sklearn(cls, estimator):
        """A fastbp estimator holding a fitted scikit-learn MLP's parameters and weights."""
        ours = cls(**estimator.get_params())
        ours._adopt_fitted(estimator)
        return ours

    def _adopt_fitted(self, estimator) -> None:
        """:meth:`from_sklearn`'s work: the fitted attributes and weights of ``estimator``."""
        self._validate_params()
        self._random_state = check_random_state(self.random_state)
        for name in ("n_features_in_", "classes_", "_label_binarizer", "feature_names_in_"):
            if hasattr(estimator, name):
                setattr(self, name, getattr(estimator, name))
        sizes = [estimator.coefs_[0].shape[0]] + [W.shape[1] for W in estimator.coefs_]
        self._initialize(np.empty((0, sizes[-1])), sizes, estimator.coefs_[0].dtype)
        self._net.set_weights(estimator.coefs_, estimator.intercepts_)
        self._bind_weights()
        for name in ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_"):
            if hasattr(estimator, name):
                setattr(self, name, getattr(estimator, name))


def _weighted_mean(arrays: list, results: list) -> np.ndarray:
    """The mean of ``arrays`` weighted by each result's "weight_sum", in float64."""
    total = sum(r["weight_sum"] for r in results)
    mean = np.zeros(arrays[0].shape, np.float64)
    for array, result in zip(arrays, results):
        mean += array * (result["weight_sum"] / total)
    return mean


def _same_arrays(given: list, bound: tuple) -> bool:
    """Whether a list still holds exactly the arrays handed out."""
    return len(given) == len(bound) and all(a is b for a, b in zip(given, bound))


def _as_numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn compatible, on fastbp's kernels.

    Takes every parameter of ``sklearn.neural_network.MLPClassifier`` with the
    same defaults, plus ``n_threads`` and ``class_weight``; see the module
    docstring for where it differs.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
    activation : {"identity", "logistic", "tanh", "relu"} or list of them, default="relu"
        One name for every hidden layer, or a list with one per hidden layer.
    solver : {"lbfgs", "sgd", "adam"}, default="adam"
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

    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_, t_, coefs_, intercepts_, n_features_in_,
    feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_
        As in scikit-learn. ``coefs_`` and ``intercepts_`` are lists of views
        of the network's parameters: writes into the arrays go through at
        once, an assigned item or list is copied in when the estimator is
        next used.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None, class_weight=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, n_threads=n_threads)
        self.class_weight = class_weight

    def _validate_input(self, X, y, incremental, reset, chunk=False):
        encoded = None if reset else self._encoded_labels(X, y, incremental, chunk)
        if encoded is not None:
            return X, encoded, y
        X, y = validate_data(self, X, y, accept_sparse=_SPARSE_FORMATS, multi_output=True,
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
        :func:`_is_ready`) and y a 1-D array of integer or boolean labels,
        all of them in ``classes_``. None when any of that fails: the full
        path then runs, with scikit-learn's messages."""
        binarizer = getattr(self, "_label_binarizer", None)
        if (binarizer is None or not incremental or (self.warm_start and not chunk)
                or binarizer.y_type_ not in ("binary", "multiclass")
                or type(y) is not np.ndarray or y.ndim != 1 or y.dtype.kind not in "iub"
                or y.shape[0] != X.shape[0] or not _is_ready(self, X)):
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
    def fit(self, X, y=None, sample_weight=None, classes=None, shuffle_buffer=None):
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

        Returns
        -------
        self
        """
        if y is None and _are_chunks(X):
            return self._fit_chunks(X, sample_weight, classes, shuffle_buffer)
        if classes is not None or shuffle_buffer is not None:
            raise ValueError("classes and shuffle_buffer apply to chunks (y=None) only; with "
                             "arrays the classes are those of y")
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

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
    same defaults and positions, plus ``n_threads``; see
    :class:`MLPClassifier` and the module docstring.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
        As in scikit-learn (>= 1.7): half the squared error, or half the
        Poisson deviance of an exponential output (the log link), which
        needs ``y >= 0``.
    hidden_layer_sizes, activation, solver, ..., max_fun, n_threads
        As in :class:`MLPClassifier`.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, n_threads=n_threads)
        self.loss = loss

    def _validate_input(self, X, y, incremental, reset, chunk=False):
        ready = (not reset and _is_ready(self, X) and type(y) is np.ndarray
                 and y.ndim in (1, 2) and y.dtype == X.dtype and y.shape[0] == X.shape[0]
                 and y.size and _kernels.first_nonfinite(np.ravel(y)) < 0)
        if not ready:  # else validate_data would return X and y as they are
            X, y = validate_data(self, X, y, accept_sparse=_SPARSE_FORMATS, multi_output=True,
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

