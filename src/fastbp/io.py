"""Save and load networks as ``.npz``: atomic writes, no pickles, checked reads."""
from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT_VERSION = 1
_KEYS = {"format_version", "sizes", "activations", "output_activation", "dtype", "params"}


def save(network, path, extra: dict | None = None) -> None:
    """Write ``network`` to ``path`` in fastbp's ``.npz`` format, atomically
    (see :func:`atomic_write`). The path is used exactly as given (no suffix
    is added).

    Parameters
    ----------
    network : fastbp.Network
        Its class labels (``classes_``), if any, are saved too.
    path : str or os.PathLike
    extra : dict of str to array, optional
        More entries for the archive (e.g. the command line's metadata);
        :func:`load` ignores them.
    """
    entries = {}
    if getattr(network, "classes_", None) is not None:
        classes = np.asarray(network.classes_)
        # object arrays would need pickles, which load refuses: store their text
        entries["classes"] = classes if classes.dtype.kind in "biuUS" else classes.astype(str)
    extra = dict(extra or {})
    clash = (_KEYS | {"classes"}) & set(extra)
    if clash:
        raise ValueError(f"extra entries {sorted(clash)} would replace the network's")
    with atomic_write(path, suffix=".npz.tmp") as handle:
        np.savez(
            handle,
            format_version=np.array(FORMAT_VERSION),
            sizes=np.asarray(network.sizes, dtype=np.int64),
            activations=np.asarray(network.activations, dtype=str).reshape(-1),
            output_activation=np.array(network.output_activation),
            dtype=np.array(network.dtype.name),
            params=network._params,
            **entries,
            **extra,
        )


@contextlib.contextmanager
def atomic_write(path, suffix: str = ".tmp"):
    """A binary handle whose content replaces ``path`` only once complete.

    The data goes to a temporary file in the same folder, which is flushed to
    disk and moved over ``path`` with :func:`os.replace` when the block ends;
    on an error it is removed, so a crash never leaves a half file.

    Parameters
    ----------
    path : str or os.PathLike
    suffix : str
        Of the temporary file's name.

    Yields
    ------
    file object
        Open for writing in binary mode.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; give it the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable: it lives in the folder's entries."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is done
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def load(path):
    """Read a network written by :meth:`fastbp.Network.save`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    fastbp.Network
        In the dtype it was saved in.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is cut, damaged, of a newer format or not a fastbp model;
        the message names the file.
    """
    from .network import Network

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = _KEYS - set(archive.files)
            if missing:
                raise ValueError(f"missing entries {sorted(missing)}")
            fields = {key: archive[key] for key in _KEYS}
            classes = archive["classes"] if "classes" in archive.files else None
        version = int(fields["format_version"])
        if version > FORMAT_VERSION:
            raise ValueError(f"format version {version} is newer than this fastbp reads ({FORMAT_VERSION})")
        if version < 1:
            raise ValueError(f"format version {version} is not a valid version (they start at 1)")
        sizes = fields["sizes"].tolist()  # floats are refused by Network, not truncated
        activations = [str(a) for a in fields["activations"]]
        net = Network(sizes, activation=activations, output_activation=str(fields["output_activation"]),
                      dtype=str(fields["dtype"]))
        params = fields["params"]
        if params.shape != net._params.shape or params.dtype != net.dtype:
            raise ValueError(f"parameters have shape {params.shape} and dtype {params.dtype}, "
                             f"expected {net._params.shape} and {net.dtype}")
        if not np.isfinite(params).all():
            raise ValueError("parameters contain NaN or infinite values")
        net._params[...] = params
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
