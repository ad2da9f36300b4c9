"""The estimators' bridge to :class:`fastbp.Network`: the fitted network,
``coefs_`` and ``intercepts_`` as views of its parameters, pickling, and the
weights' way to and from PyTorch and scikit-learn."""
from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .network import Network


class NetworkBridge:
    """The fitted :class:`fastbp.Network` behind an estimator."""

    @property
    def network_(self) -> Network:
        """The fitted :class:`fastbp.Network` (made to hold what ``coefs_`` and
        ``intercepts_`` hold first). Its output layer is the estimator's
        before ``out_activation_`` "exp" (the Poisson regressor's mean).

        Raises
        ------
        NotFittedError
            Before a fit, unless ``coefs_`` and ``intercepts_`` were set.
        """
        return self._network()

    def _bind_weights(self) -> None:
        """Make ``coefs_`` and ``intercepts_`` new lists of views of the
        network's parameters; called whenever the network's parameter array
        is replaced (every fit, set_weights, the restore of early stopping)."""
        views = self._net.layer_params()
        self.coefs_ = [W for W, _ in views]
        self.intercepts_ = [b for _, b in views]
        self._bound = (tuple(self.coefs_), tuple(self.intercepts_))

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
        if net is not None and bound is not None and _same_arrays(coefs, bound[0]) \
                and _same_arrays(intercepts, bound[1]):
            if not np.may_share_memory(bound[0][0], net.params):
                self._bind_weights()  # replaced without a rebind: follow the network
            return net
        shapes = [np.shape(W) for W in coefs], [np.shape(b) for b in intercepts]
        if net is None or shapes != ([(a, b) for a, b in zip(net.sizes, net.sizes[1:])],
                                     [(b,) for b in net.sizes[1:]]):
            self._adopt_architecture(coefs, intercepts)
            net = self._net
        elif bound is not None:
            # items still bound take the network's current values: it may have
            # been trained or set since they were handed out
            current = net.layer_params()
            coefs = [W if W is not old else now
                     for W, old, (now, _) in zip(coefs, bound[0], current)]
            intercepts = [b if b is not old else now
                          for b, old, (_, now) in zip(intercepts, bound[1], current)]
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
        if self.compute_dtype is not None:  # bfloat16 products on float32 weights
            dtype = np.float32
        return Network(layer_units, activation=hidden, output_activation=output,
                       dtype=np.dtype(dtype).name, dropout=self.dropout or None,
                       compute_dtype=self.compute_dtype)

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
        params.pop("n_threads", None)  # fastbp's own, and its training-only regularisation:
        for name in ("dropout", "weight_decay", "clip_norm", "ema", "compute_dtype"):
            params.pop(name, None)
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
        ours._adopt_fitted(estimator)  # a new object of this class, finished here
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


def _same_arrays(given: list, bound: tuple) -> bool:
    """Whether a list still holds exactly the arrays handed out."""
    return len(given) == len(bound) and all(a is b for a, b in zip(given, bound))


def _as_numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value
