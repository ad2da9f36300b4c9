"""PyTorch eager mode: ``nn.Linear`` + ``nn.Sigmoid`` layers and ``torch.optim.SGD``
(or the ``torch.optim`` class of another optimiser, ``compare.py --optimizers``).

The loss is written as 0.5/m·Σ(y − t)², fastbp's mse; autograd then gives
δ_out = σ'(a)(y − t)/m. Threads are set by the benchmark with
``torch.set_num_threads``. In bfloat16 cases (``compare.py --compute
bfloat16``) the forward pass and the loss run under
``torch.autocast("cpu", dtype=torch.bfloat16)``, PyTorch's mixed precision:
the weights stay float32, the products take bfloat16 operands, and the layers'
outputs are stored in bfloat16 too.
"""
from __future__ import annotations

import contextlib

import numpy as np

from . import train_with
from .optimizers import NAMES, SGD, torch_optimizer

NAME = "torch"
MATH = "mse"
max_rows = None
#: the optimisers it runs (``compare.py --optimizers``)
OPTIMIZERS = NAMES
#: mixed precision it runs (``compare.py --compute``)
COMPUTE = ("bfloat16",)


def availability():
    """``None`` when torch imports, else the reason."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        return f"torch is not installed ({error})"
    return None


def version():
    """torch's version."""
    import torch
    return torch.__version__


def set_threads(n_threads):
    """Pin torch's intra-op thread pool to ``n_threads`` (it ignores threadpoolctl)."""
    import torch
    torch.set_num_threads(n_threads)


def limitation(sizes, n_rows, batch_size, dtype):
    """Every case is in scope: return ``None``."""
    return None


class Trainer:
    """PyTorch minibatch SGD; see :class:`peers.numpy_peer.Trainer` for the parameters."""

    def __init__(self, X, Y, sizes, batch_size, lr, dtype, optimizer=SGD, compute=None):
        import torch

        self._torch = torch
        self.autocast = ((lambda: torch.autocast("cpu", dtype=torch.bfloat16))
                         if compute == "bfloat16" else contextlib.nullcontext)
        self.torch_dtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        # from_numpy shares memory; batches are then row slices, as for the others
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=dtype))
        self.Y = torch.from_numpy(np.ascontiguousarray(Y, dtype=dtype))
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.optimizer = optimizer
        layers = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [torch.nn.Linear(n_in, n_out, dtype=self.torch_dtype), torch.nn.Sigmoid()]
        self.model = torch.nn.Sequential(*layers)
        self.linears = [layer for layer in self.model if isinstance(layer, torch.nn.Linear)]

    def load(self, weights, biases):
        """Copy ``weights`` and ``biases`` into the layers (untimed); torch stores W transposed."""
        with self._torch.no_grad():
            for linear, W, b in zip(self.linears, weights, biases):
                linear.weight.copy_(self._torch.as_tensor(np.asarray(W).T))
                linear.bias.copy_(self._torch.as_tensor(np.asarray(b)))

    def epoch(self, epochs=1):
        """Train ``epochs`` passes over the rows, in order (the timed part)."""
        torch = self._torch
        if self.optimizer == SGD:
            self._epochs(torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.0,
                                         weight_decay=0.0), epochs)
            return
        # fresh, as SGD: no state carried from the last run
        optimizer = torch_optimizer(self.optimizer, self.lr,
                                    [linear.weight for linear in self.linears],
                                    [linear.bias for linear in self.linears])
        # NAdam keeps its running product of μ_t in torch's default dtype: the
        # model's here, so that float64 runs carry it in float64 as fastbp does
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(self.torch_dtype)
        try:
            self._epochs(optimizer, epochs)
        finally:
            torch.set_default_dtype(default_dtype)

    def _epochs(self, optimizer, epochs):
        torch = self._torch
        n = self.X.shape[0]
        for _ in range(epochs):
            for start in range(0, n, self.batch_size):
                stop = min(start + self.batch_size, n)
                optimizer.zero_grad(set_to_none=True)
                with self.autocast():
                    output = self.model(self.X[start:stop])
                    loss = torch.nn.functional.mse_loss(output, self.Y[start:stop],
                                                        reduction="sum")
                (loss * (0.5 / (stop - start))).backward()
                optimizer.step()

    def parameters(self):
        """Copies of the current (weights, biases) in fastbp's layout."""
        weights = [linear.weight.detach().numpy().T.copy() for linear in self.linears]
        biases = [linear.bias.detach().numpy().copy() for linear in self.linears]
        return weights, biases


def train(X, Y, weights, biases, batch_size, lr, dtype, epochs=1):
    """Train with PyTorch eager SGD (mse, sigmoid layers) from the given parameters.

    Parameters and return value as in :func:`peers.train_with`.
    """
    return train_with(Trainer, X, Y, weights, biases, batch_size, lr, dtype, epochs)
