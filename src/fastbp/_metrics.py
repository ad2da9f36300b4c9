"""Metrics :meth:`fastbp.Network.fit` records beside the losses
(``metrics=["accuracy"]``): ``history["accuracy"]`` on the training rows and
``history["val_accuracy"]`` on the validation rows."""
from __future__ import annotations

from ._labels import CLASSIFIER_OUTPUTS
from ._scores import accuracy

#: the metric names fit takes
METRICS = ("accuracy",)


def check_metrics(metrics, network) -> tuple:
    """``fit``'s metrics as a tuple of known names, each once; a ValueError
    for an unknown name or a network they do not apply to."""
    if metrics is None:
        return ()
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        metrics = tuple(metrics)
    except TypeError:
        raise TypeError(f"metrics must be a sequence of names such as ['accuracy'], "
                        f"got {metrics!r}") from None
    for name in metrics:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; choose from {list(METRICS)}")
    if metrics and network.output_activation not in CLASSIFIER_OUTPUTS:
        raise ValueError("metrics=['accuracy'] needs a softmax or sigmoid output, got "
                         f"{network.output_activation!r}")
    return tuple(dict.fromkeys(metrics))


class Accuracy:
    """The accuracy of a network on fixed rows, as :meth:`fastbp.Network.score`
    computes it: one forward pass (``predict``) over them with the weights
    at the end of the epoch.

    Softmax rows count as right when the largest output is the target's 1;
    sigmoid rows when every unit thresholded at 0.5 matches its 0/1 target.

    Parameters
    ----------
    X, Y : validated arrays (or CSR rows) of the network's dtype
    weights : ndarray or None
        Row weights of the mean.
    network : Network
    n_threads : int or None
        For predict.
    where : str
        The rows' name, for the error on targets that are not classes.

    Raises
    ------
    ValueError
        If ``Y`` holds no class targets (one-hot rows for softmax, 0/1
        values for sigmoid).
    """

    __slots__ = ("X", "Y", "weights", "one_of_many", "n_threads")

    def __init__(self, X, Y, weights, network, n_threads, where: str):
        self.one_of_many = network.output_activation == "softmax"
        zero_one = ((Y == 0) | (Y == 1)).all()
        if not zero_one or (self.one_of_many and Y.shape[1] > 1
                            and not (Y.sum(axis=1) == 1).all()):
            kind = "one-hot rows" if self.one_of_many else "0/1 values"
            raise ValueError(f"metrics=['accuracy'] needs class targets ({kind} or labels), "
                             f"but the {where} targets are not")
        self.X, self.Y, self.weights, self.n_threads = X, Y, weights, n_threads

    def __call__(self, network) -> float:
        return accuracy(network.predict(self.X, n_threads=self.n_threads), self.Y,
                        self.one_of_many, self.weights)


def accuracy_metrics(network, metrics: tuple, training, validation, n_threads) -> tuple:
    """``(key, metric)`` pairs for a Session: "accuracy" on the ``training``
    rows ``(X, Y, weights)`` (None: not kept, as with chunks) and
    "val_accuracy" on the ``validation`` rows (an object with ``X`` and
    ``Y``, or None)."""
    if "accuracy" not in metrics:
        return ()
    pairs = []
    if training is not None:
        X, Y, weights = training
        pairs.append(("accuracy", Accuracy(X, Y, weights, network, n_threads, "training")))
    if validation is not None:
        pairs.append(("val_accuracy", Accuracy(validation.X, validation.Y, None, network,
                                               n_threads, "validation")))
    if not pairs:
        raise ValueError("with chunks, metrics=['accuracy'] is measured on validation_data "
                         "only (the training rows are not kept): pass validation_data")
    return tuple(pairs)

