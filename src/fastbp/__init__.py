"""fastbp: fast CPU backpropagation for dense feed-forward networks."""
from . import callbacks, optim, reference
from .datasets import load_digits
from .gradcheck import GradcheckResult, gradcheck
from .io import load
from .losses import LOSSES
from ._streaming import array_chunks
from ._training import TrainingDiverged
from .callbacks import EarlyStopping
from .network import ACTIVATIONS, Network
from .optim import SGD, Adam
from .plotting import plot_history

# the version lives in pyproject.toml only; the installed metadata carries it
from importlib import metadata as _metadata
try:
    __version__ = _metadata.version("fastbp")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ACTIVATIONS", "LOSSES", "Adam", "EarlyStopping", "GradcheckResult", "Network", "SGD",
    "TrainingDiverged", "array_chunks", "callbacks", "optim",
    "gradcheck", "load", "load_digits", "plot_history", "reference", "__version__",
]


def __getattr__(name):
    # the scikit-learn estimators load (and need scikit-learn) only when asked for
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimators
        return getattr(estimators, name)
    # ONNX export loads (and needs onnx) only when asked for
    if name in ("to_onnx", "register_skl2onnx"):
        from . import onnx_export
        return getattr(onnx_export, name)
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
