"""Save and load networks as ``.npz``: atomic writes, no pickles, checked reads.

The file plumbing (atomic writes, checked reads, the format's keys) lives in
:mod:`fastbp._npz`; this module builds networks from files.
"""
from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from ._npz import (FORMAT_VERSION, MODEL_INFLATION, MODEL_KEYS, OPTIONAL_KEYS, PLAIN_KINDS,
                   READ_FLOOR, atomic_write, read_npz_checked, save)
from ._architecture import n_params_of
from .network import Network

__all__ = ["FORMAT_VERSION", "MODEL_INFLATION", "PLAIN_KINDS", "READ_FLOOR", "atomic_write",
           "load", "read_npz_checked", "save"]


def load(path):
    """Read a network written by :meth:`fastbp.Network.save`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    fastbp.Network
        In the dtype (and compute_dtype) it was saved in; files without a
        compute_dtype compute in their dtype.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is cut, damaged, of a newer format or not a fastbp model;
        the message names the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    try:
        if os.path.isdir(path):
            raise ValueError("is a directory")
        fields = read_npz_checked(path, MODEL_KEYS | OPTIONAL_KEYS)
        missing = MODEL_KEYS - set(fields)
        if missing:
            raise ValueError(f"missing entries {sorted(missing)}")
        classes = fields.pop("classes", None)
        dropout = fields.pop("dropout", None)
        compute = fields.pop("compute_dtype", None)  # saved only for bfloat16
        version = int(fields["format_version"])
        if version > FORMAT_VERSION:
            raise ValueError(f"format version {version} is newer than this fastbp reads ({FORMAT_VERSION})")
        if version < 1:
            raise ValueError(f"format version {version} is not a valid version (they start at 1)")
        sizes = fields["sizes"].tolist()  # floats are refused by Network, not truncated
        params = fields["params"]
        _check_params_size(sizes, params)
        activations = [str(a) for a in fields["activations"]]
        net = Network(sizes, activation=activations, output_activation=str(fields["output_activation"]),
                      dtype=str(fields["dtype"]),
                      dropout=None if dropout is None else dropout.reshape(-1).tolist(),
                      compute_dtype=None if compute is None else str(compute))
        if params.shape != (net.n_params,) or params.dtype != net.dtype:
            raise ValueError(f"parameters have shape {params.shape} and dtype {params.dtype}, "
                             f"expected {(net.n_params,)} and {net.dtype}")
        if not np.isfinite(params).all():
            raise ValueError("parameters contain NaN or infinite values")
        net.replace_params(params)
        if classes is not None:
            if classes.ndim != 1 or len(classes) != max(2, sizes[-1]):
                raise ValueError(f"{len(classes)} class labels for {sizes[-1]} outputs")
            net.classes_ = classes
        return net
    except (ValueError, TypeError, KeyError, OverflowError, OSError, EOFError, zipfile.BadZipFile,
            zlib.error, RuntimeError) as exc:
        # RuntimeError: zipfile's answer to damaged flag, version or method
        # bytes ("encrypted", NotImplementedError "compression type 99")
        raise ValueError(f"{path!r} is not a readable fastbp model file: {exc}") from exc


def _check_params_size(sizes, params: np.ndarray) -> None:
    """Refuse sizes whose parameter count differs from the stored ``params``
    before the network is built: a crafted file must not make it allocate
    billions of weights it does not hold."""
    if not (isinstance(sizes, list) and all(type(s) is int and s > 0 for s in sizes)):
        return  # not integer widths: Network names the problem, allocating nothing
    expected = n_params_of(sizes)
    if params.ndim != 1 or params.size != expected:
        raise ValueError(f"parameters have shape {params.shape}, but sizes {sizes} need "
                         f"({expected},)")
