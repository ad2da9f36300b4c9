"""Checkpoints: a network, its optimiser's state and the fit's generator in
one ``.npz`` file, so that a fit resumes bit for bit.

A checkpoint is a model file (:func:`fastbp.load` reads the network from it)
with two more kinds of entries: ``checkpoint``, JSON text of the state (the
epochs completed, the optimiser's class, rate, step count, schedule
counters and memo, the generator's state, the monitored best), and
``checkpoint_buffer_<name>``, the optimiser's buffers.
:class:`fastbp.callbacks.ModelCheckpoint` writes them (atomically, through
:func:`fastbp._npz.save`); ``Network.fit(..., resume=path)`` reads them here.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib

import numpy as np

from ._npz import read_npz_checked, save
from .optim import OptimizerState

#: the version of the checkpoint entries this fastbp writes and reads
CHECKPOINT_VERSION = 1
META_KEY = "checkpoint"
BUFFER_PREFIX = "checkpoint_buffer_"


def _plain(value):
    """JSON for what ``json`` does not write itself (NumPy values)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to a checkpoint")


def write_checkpoint(path, session, epochs_done: int, monitor=None, best=None) -> None:
    """Write the state of ``session`` after ``epochs_done`` epochs to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    session : fastbp._session.Session
        Between two epochs: its network's weights, its optimiser's state
        (:attr:`~fastbp._session.Session.state`) and its generator.
    epochs_done : int
        Epochs completed, counted as a resumed fit counts them.
    monitor : str or None
    best : float or None
        The monitored key and its best value, for the next ModelCheckpoint.
    """
    state, optimizer, rng = session.state, session.optimizer, session.rng
    meta = {
        "version": CHECKPOINT_VERSION,
        "epoch": epochs_done,
        "optimizer": type(optimizer).__name__,
        "lr": state.lr,
        "step_count": state.step_count,
        "epochs": state.epochs,
        "samples_seen": state.samples_seen,
        "schedule_memo": state.schedule_memo,
        "rng": None if rng is None else rng.bit_generator.state,
        "monitor": monitor,
        "best": best,
    }
    entries = {META_KEY: np.array(json.dumps(meta, default=_plain))}
    entries.update((BUFFER_PREFIX + name, buffer) for name, buffer in state.buffers.items())
    save(session.network, path, extra=entries)


class Checkpoint:
    """A checkpoint read and checked against a network and an optimiser
    (:func:`read_checkpoint`).

    Attributes
    ----------
    path : str
    epoch : int
        Epochs the fit that wrote it had completed.
    meta : dict
        The JSON entry, as written by :func:`write_checkpoint`.
    """

    def __init__(self, path: str, meta: dict, params: np.ndarray, buffers: dict):
        self.path, self.meta = path, meta
        self.epoch = meta["epoch"]
        self._params, self._buffers = params, buffers

    def restore(self, network, optimizer, rng) -> None:
        """Give ``network`` the weights, ``optimizer`` its state for it and
        ``rng`` (when not None) the generator's state."""
        meta = self.meta
        network.replace_params(self._params)
        state = OptimizerState({name: buffer.copy() for name, buffer in self._buffers.items()},
                               float(meta["lr"]))
        state.step_count, state.epochs = int(meta["step_count"]), int(meta["epochs"])
        state.samples_seen = int(meta["samples_seen"])
        state.schedule_memo = meta["schedule_memo"]
        optimizer.adopt_state(network, state)
        if rng is not None and meta["rng"] is not None:
            rng.bit_generator.state = meta["rng"]


def read_checkpoint(path, network, optimizer) -> Checkpoint:
    """The checkpoint at ``path``, checked against ``network`` and ``optimizer``.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is no checkpoint (a plain model file, a damaged file),
        was written for another architecture or dtype, or by another kind of
        optimiser; the message names the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such checkpoint file: {path!r}")
    try:
        fields = read_npz_checked(path)
        if META_KEY not in fields:
            raise ValueError("it holds a network but no training state (ModelCheckpoint "
                             "writes checkpoints; Network.save writes models)")
        meta = json.loads(str(fields[META_KEY]))
        version = meta.get("version")
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {version!r}; this fastbp reads "
                             f"{CHECKPOINT_VERSION}")
        _check_architecture(fields, network)
        params = fields["params"]
        if params.shape != (network.n_params,) or params.dtype != network.dtype:
            raise ValueError(f"parameters have shape {params.shape} and dtype {params.dtype}, "
                             f"expected {(network.n_params,)} and {network.dtype}")
        if not np.isfinite(params).all():
            raise ValueError("parameters contain NaN or infinite values")
        buffers = {key[len(BUFFER_PREFIX):]: value for key, value in fields.items()
                   if key.startswith(BUFFER_PREFIX)}
        _check_optimizer(meta, buffers, network, optimizer)
    except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
            RuntimeError) as exc:
        raise ValueError(f"{path!r} is not a checkpoint this fit can resume from: {exc}") from exc
    return Checkpoint(path, meta, params, buffers)


def _check_architecture(fields: dict, network) -> None:
    saved = {
        "sizes": [int(s) for s in fields["sizes"]],
        "activations": [str(a) for a in fields["activations"]],
        "output_activation": str(fields["output_activation"]),
        "dtype": str(fields["dtype"]),
    }
    ours = {"sizes": list(network.sizes), "activations": list(network.activations),
            "output_activation": network.output_activation, "dtype": network.dtype.name}
    for key, value in saved.items():
        if value != ours[key]:
            raise ValueError(f"it was written for {key} {value}, the network has {ours[key]}")


def _check_optimizer(meta: dict, buffers: dict, network, optimizer) -> None:
    kind = type(optimizer).__name__
    if meta["optimizer"] != kind:
        raise ValueError(f"it was written by {meta['optimizer']}, the fit's optimizer is {kind}")
    if set(buffers) != set(optimizer.buffer_names):
        raise ValueError(f"it holds the buffers {sorted(buffers)}, {optimizer!r} keeps "
                         f"{sorted(optimizer.buffer_names)}")
    for name, buffer in buffers.items():
        if buffer.shape != (network.n_params,) or buffer.dtype != network.dtype:
            raise ValueError(f"buffer {name!r} has shape {buffer.shape} and dtype "
                             f"{buffer.dtype}, expected {(network.n_params,)} and "
                             f"{network.dtype}")
        if not np.isfinite(buffer).all():
            raise ValueError(f"buffer {name!r} contains NaN or infinite values")
