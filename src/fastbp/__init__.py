"""fastbp: fast CPU backpropagation for dense feed-forward networks."""
from . import callbacks, optim, reference
from .datasets import load_digits
from .gradcheck import GradcheckResult, gradcheck
from .io import load
from .losses import LOSSES, CrossEntropyLoss, HuberLoss
from ._streaming import array_chunks
from ._training import TrainingDiverged
from .callbacks import CSVLogger, EarlyStopping, ModelCheckpoint
from .network import ACTIVATIONS, Network
from .plotting import plot_history

# the version lives in pyproject.toml only; the installed metadata carries it
from importlib import import_module as _import_module, metadata as _metadata, util as _util
try:
    __version__ = _metadata.version("fastbp")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: names loaded when first asked for (PEP 562), so that ``import fastbp``
#: imports neither scikit-learn nor onnx: name -> (module, the top-level
#: package it needs at import, the extra that installs it)
_LAZY = {
    "MLPClassifier": ("estimators", "sklearn", "sklearn"),
    "MLPRegressor": ("estimators", "sklearn", "sklearn"),
    # onnx_export imports onnx inside its functions only
    "to_onnx": ("onnx_export", None, None),
    "register_skl2onnx": ("onnx_export", None, None),
}

# the lazy names whose package is installed (found, not imported): without
# scikit-learn, ``from fastbp import *`` and ``inspect.getmembers(fastbp)``
# would fail on the estimators
_INSTALLED = {package: _util.find_spec(package) is not None
              for _, package, _ in _LAZY.values() if package is not None}
_AVAILABLE = [name for name, (_, package, _) in _LAZY.items()
              if package is None or _INSTALLED[package]]

#: the optimisers (fastbp.SGD, fastbp.Adam, fastbp.LBFGS, ...): each subclass of
#: Optimizer that fastbp.optim exports, so a new one needs no line here
_OPTIMIZERS = {name: getattr(optim, name) for name in optim.__all__
               if isinstance(getattr(optim, name), type)
               and issubclass(getattr(optim, name), optim.Optimizer)
               and getattr(optim, name) is not optim.Optimizer}
globals().update(_OPTIMIZERS)

# submodules imported on their own (fastbp.dask, fastbp.cli) are not listed
__all__ = [
    "ACTIVATIONS", "CSVLogger", "CrossEntropyLoss", "EarlyStopping", "GradcheckResult",
    "HuberLoss", "LOSSES", "ModelCheckpoint", "Network", "TrainingDiverged", "array_chunks",
    "gradcheck", "load", "load_digits", "plot_history",
    "__version__", "callbacks", "optim", "reference",
] + list(_OPTIMIZERS) + _AVAILABLE


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
    module_name, needs, extra = _LAZY[name]
    try:
        module = _import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as exc:
        if needs is None or (exc.name or "").partition(".")[0] != needs:
            raise
        raise ModuleNotFoundError(
            f"fastbp.{name} needs the {needs} package: pip install \"fastbp[{extra}]\"",
            name=exc.name) from exc
    value = globals()[name] = getattr(module, name)  # the next lookup skips this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_AVAILABLE))
