"""fastbp: fast CPU backpropagation for dense feed-forward networks."""
from . import reference
from .datasets import load_digits
from .gradcheck import GradcheckResult, gradcheck
from .io import load
from .losses import LOSSES
from .network import ACTIVATIONS, Network, TrainingDiverged
from .optim import SGD

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LOSSES", "GradcheckResult", "Network", "SGD", "TrainingDiverged",
    "gradcheck", "load", "load_digits", "reference", "__version__",
]
