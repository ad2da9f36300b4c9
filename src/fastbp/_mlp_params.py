"""The scikit-learn wing's parameters: the rules of the 24 of
``sklearn.neural_network``'s MLPs (plus fastbp's ``n_threads``,
``class_weight`` and ``loss``), declared once here.

:class:`MLPParameters` is the base of :class:`fastbp.MLPClassifier` and
:class:`fastbp.MLPRegressor`, whose signatures are the one place the
defaults are written (scikit-learn reads the parameters from them); the Dask
estimators take those signatures and these rules (``CLASSIFIER_CONSTRAINTS``,
``PARAMETER_CONSTRAINTS``) and :func:`hidden_layer_units` as they are.
"""
from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, InvalidParameterError, Options, StrOptions

from .network import HIDDEN_ACTIVATIONS
from .optim import SGD, Adagrad, Adam, AdamW, Adaptive, Constant, InvScaling, NAdam, RMSprop, Rprop

#: scikit-learn's activation names -> fastbp's: every hidden activation of the
#: kernels' table, the sigmoid under scikit-learn's name "logistic"
ACTIVATION_NAMES = {("logistic" if name == "sigmoid" else name): name
                    for name in HIDDEN_ACTIVATIONS}


def _sgd(estimator) -> SGD:
    """solver="sgd": scikit-learn's SGD with its rate schedules and momentum."""
    schedule = {"constant": Constant(), "invscaling": InvScaling(estimator.power_t),
                "adaptive": Adaptive()}[estimator.learning_rate]
    optimizer = SGD(lr=estimator.learning_rate_init, nesterov=estimator.nesterovs_momentum
                    and estimator.momentum > 0, momentum=min(estimator.momentum, 0.5),
                    schedule=schedule, weight_decay=estimator.weight_decay or 0.0)
    # scikit-learn allows momentum=1, which fastbp.SGD refuses for users
    optimizer.momentum = float(estimator.momentum)
    optimizer.buffer_names = ("velocity",) if estimator.momentum > 0 else ()
    return optimizer


def _adam(estimator) -> Adam:
    """solver="adam": Adam in scikit-learn's formulation (fastbp.Adam's default)."""
    return Adam(lr=estimator.learning_rate_init, beta1=estimator.beta_1, beta2=estimator.beta_2,
                epsilon=estimator.epsilon)


def _adamw(estimator) -> AdamW:
    """solver="adamw": AdamW (PyTorch's flavour) at its default weight decay 1e-2."""
    decay = {} if estimator.weight_decay is None else {"weight_decay": estimator.weight_decay}
    return AdamW(lr=estimator.learning_rate_init, beta1=estimator.beta_1,
                 beta2=estimator.beta_2, epsilon=estimator.epsilon, **decay)


def _nadam(estimator) -> NAdam:
    """solver="nadam": NAdam with the estimator's β1, β2 and ε."""
    return NAdam(lr=estimator.learning_rate_init, beta1=estimator.beta_1,
                 beta2=estimator.beta_2, epsilon=estimator.epsilon)


def _rmsprop(estimator) -> RMSprop:
    """solver="rmsprop": RMSprop with the estimator's ε (its α, 0.99, PyTorch's)."""
    return RMSprop(lr=estimator.learning_rate_init, epsilon=estimator.epsilon)


def _adagrad(estimator) -> Adagrad:
    """solver="adagrad": Adagrad at PyTorch's other defaults."""
    return Adagrad(lr=estimator.learning_rate_init)


def _rprop(estimator) -> Rprop:
    """solver="rprop": iRPROP-, its first step size learning_rate_init; meant
    for full batches (batch_size at least the rows)."""
    return Rprop(lr=estimator.learning_rate_init)


#: the solvers that step on minibatches (partial_fit, chunks, averaged
#: epochs): each one's fastbp optimiser, built from the estimator's
#: parameters. A new solver is a row here (and its parameters above).
STOCHASTIC_SOLVERS = {"sgd": _sgd, "adam": _adam, "adamw": _adamw, "nadam": _nadam,
                      "rmsprop": _rmsprop, "adagrad": _adagrad, "rprop": _rprop}

#: scikit-learn's rules, plus fastbp's own: activation lists and n_threads
PARAMETER_CONSTRAINTS: dict = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATION_NAMES)), list, tuple],
    "solver": [StrOptions({"lbfgs", *STOCHASTIC_SOLVERS})],
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
    # fastbp's own regularisation (see the estimators' docstrings)
    "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple, None],
    "weight_decay": [Interval(Real, 0, None, closed="left"), None],
    "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
    "ema": [Interval(Real, 0, 1, closed="neither"), None],
    # fastbp's own mixed precision (see fastbp.Network's compute_dtype)
    "compute_dtype": [StrOptions({"bfloat16"}), None],
}

#: the solvers whose optimiser takes a decoupled weight decay
WEIGHT_DECAY_SOLVERS = ("sgd", "adamw")
#: MLPClassifier's: the shared rules and class_weight
CLASSIFIER_CONSTRAINTS: dict = {**PARAMETER_CONSTRAINTS,
                                "class_weight": [dict, StrOptions({"balanced"}), None]}
#: MLPRegressor's: the shared rules and loss
REGRESSOR_CONSTRAINTS: dict = {**PARAMETER_CONSTRAINTS,
                               "loss": [StrOptions({"squared_error", "poisson"})]}


def is_int(value) -> bool:
    """An integral number that is not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def hidden_layer_units(hidden_layer_sizes) -> list:
    """The hidden layers' sizes as a list of ints, from the parameter's int
    or sequence; ValueError if they are not positive integers."""
    sizes = hidden_layer_sizes
    sizes = [sizes] if is_int(sizes) else list(sizes) if hasattr(sizes, "__iter__") else None
    if sizes is None or not all(is_int(s) and s > 0 for s in sizes):
        raise ValueError(
            f"hidden_layer_sizes must be positive integers, got {hidden_layer_sizes!r}")
    return [int(s) for s in sizes]


class MLPParameters(BaseEstimator):
    """The parameters of the estimators: their rules, their storing, and the
    checks scikit-learn's declared rules cannot express."""

    _parameter_constraints: dict = PARAMETER_CONSTRAINTS

    def _store_parameters(self, arguments: dict) -> None:
        """Store each parameter of the constructor's signature unchanged under
        its name, as scikit-learn wants (get_params and clone read them
        back); ``arguments``: the constructor's ``locals()``. The public
        estimators' signatures are the one place their defaults are written."""
        for name in self._get_param_names():
            setattr(self, name, arguments[name])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _hidden_sizes(self) -> list:
        return hidden_layer_units(self.hidden_layer_sizes)

    def _hidden_activations(self, n_hidden: int) -> list:
        names = [self.activation] * n_hidden if isinstance(self.activation, str) \
            else list(self.activation)
        # the list form is fastbp's own, so checked here, with scikit-learn's error
        if not all(isinstance(name, str) and name in ACTIVATION_NAMES for name in names):
            raise InvalidParameterError(
                f"The 'activation' parameter of {type(self).__name__} must be a str among "
                f"{sorted(ACTIVATION_NAMES)} or a list of them. Got {self.activation!r} instead.")
        if len(names) != n_hidden:
            raise InvalidParameterError(
                f"The 'activation' parameter of {type(self).__name__} lists {len(names)} names "
                f"for {n_hidden} hidden layers.")
        return [ACTIVATION_NAMES[name] for name in names]

    def _check_regularisation(self) -> None:
        """The step rules only with minibatch steps; weight_decay only where
        the solver's optimiser takes it."""
        if self.solver == "lbfgs" and (self.dropout or self.clip_norm is not None
                                       or self.ema is not None):
            raise InvalidParameterError(
                "dropout, clip_norm and ema act on minibatch steps; solver='lbfgs' takes none "
                "of them")
        if self.solver == "lbfgs" and self.compute_dtype is not None:
            raise InvalidParameterError(
                "compute_dtype='bfloat16' acts on minibatch steps; solver='lbfgs' computes its "
                "loss and gradient in the network's dtype")
        if self.weight_decay is not None and self.solver not in WEIGHT_DECAY_SOLVERS:
            raise InvalidParameterError(
                f"weight_decay applies to solver {' or '.join(WEIGHT_DECAY_SOLVERS)}, not "
                f"{self.solver!r} (alpha is the L2 penalty of every solver)")

    def _dropout_seed(self):
        """The masks' seed of a fit with dropout, drawn from the fit's random
        stream (so random_state fixes it); None without dropout, drawing
        nothing, so fits without dropout keep their bits."""
        if not self.dropout:
            return None
        return int(self._random_state.randint(2**31 - 1))

    def _check_n_threads(self) -> None:
        if isinstance(self.n_threads, (bool, np.bool_)):
            # scikit-learn's Interval(Integral) lets bools through; a thread count is no bool
            raise InvalidParameterError(
                f"The 'n_threads' parameter of {type(self).__name__} must be an int in the range "
                f"[1, inf) or None. Got {self.n_threads!r} instead.")

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
