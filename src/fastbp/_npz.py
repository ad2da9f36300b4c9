"""fastbp's ``.npz`` plumbing: the model format, atomic writes and checked reads.

Kept apart from :mod:`fastbp.io` (which builds networks from files) so that
:class:`fastbp.Network` can save itself without importing the module that
imports it: nothing here imports another module of fastbp.
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
import zipfile

import numpy as np

FORMAT_VERSION = 1
MODEL_KEYS = frozenset({"format_version", "sizes", "activations", "output_activation", "dtype",
                        "params"})
#: entries a model has when it needs them: class labels, dropout rates
OPTIONAL_KEYS = frozenset({"classes", "dropout", "compute_dtype"})

#: a model's entries may unpack to at most this multiple of the file's size
#: (save stores them uncompressed: the ratio is about 1), and any file to
#: READ_FLOOR bytes, so a crafted header cannot make a reader allocate more
MODEL_INFLATION = 4
READ_FLOOR = 1 << 20
#: the dtype kinds read_npz_checked accepts: booleans, integers, floats, text
PLAIN_KINDS = "biufUS"
#: bytes read from an archive member at a time
_CHUNK = 1 << 20


def save(network, path, extra: dict | None = None) -> None:
    """Write ``network`` to ``path`` in fastbp's ``.npz`` format, atomically
    (see :func:`atomic_write`). The path is used exactly as given (no suffix
    is added).

    Parameters
    ----------
    network : fastbp.Network
        Its class labels (``classes_``), dropout rates and a compute_dtype
        other than its dtype (bfloat16), if any, are saved too.
    path : str or os.PathLike
    extra : dict of str to array, optional
        More entries for the archive (e.g. the command line's metadata);
        :func:`load` ignores them.
    """
    entries = {}
    if network.dropout is not None:  # only then: other files stay as they were
        entries["dropout"] = np.asarray(network.dropout, dtype=np.float64)
    if network.compute_dtype != network.dtype.name:  # likewise
        entries["compute_dtype"] = np.array(network.compute_dtype)
    if getattr(network, "classes_", None) is not None:
        classes = np.asarray(network.classes_)
        # object arrays would need pickles, which load refuses: store their text
        entries["classes"] = classes if classes.dtype.kind in "biufUS" else classes.astype(str)
    extra = dict(extra or {})
    clash = (MODEL_KEYS | OPTIONAL_KEYS) & set(extra)
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
            params=network.params,
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


def read_npz_checked(path, names=None, max_inflation: float = MODEL_INFLATION) -> dict:
    """The arrays of an ``.npz`` file, each header checked before anything is allocated.

    ``np.load`` allocates what a member's header declares before reading its
    data, so a 1 kB file declaring a shape of 10**12 asks for terabytes. Here
    every declared size must equal the bytes the member holds, and all the
    members read must fit in ``max_inflation`` times the file's size (at
    least ``READ_FLOOR`` bytes), which also stops compressed "zip bombs".

    Parameters
    ----------
    path : str or os.PathLike
    names : iterable of str, optional
        The entries to read (those missing from the archive are left out);
        default all.
    max_inflation : float, default=MODEL_INFLATION
        How many times its size the file may unpack to.

    Returns
    -------
    dict of str to ndarray
        In the archive's order. Only plain dtypes (``PLAIN_KINDS``), never
        objects or records.

    Raises
    ------
    ValueError
        Naming the entry and what is wrong with it (zipfile, zlib and EOF
        errors of a damaged archive are passed on as they are).
    """
    budget = max(max_inflation * os.path.getsize(path), READ_FLOOR)
    wanted = None if names is None else set(names)
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if wanted is not None and key not in wanted:
                continue
            if info.file_size > budget:
                raise ValueError(
                    f"entry {key!r} unpacks to {info.file_size:,} bytes, more than "
                    f"{max_inflation:g} times the file's size: refused as damaged or crafted")
            budget -= info.file_size
            with archive.open(info) as member:
                arrays[key] = _read_npy(member, info.file_size, key)
    return arrays


def _read_npy(member, stored: int, key: str) -> np.ndarray:
    """One ``.npy`` member of ``stored`` bytes, its header checked against them."""
    fmt = np.lib.format
    version = fmt.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(member)
    else:
        raise ValueError(f"entry {key!r} is in .npy format {version}, which is not read")
    if dtype.hasobject:
        raise ValueError(f"entry {key!r} holds Python objects (dtype {dtype}); "
                         "they would need unpickling, which is never done")
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in PLAIN_KINDS \
            or dtype.itemsize == 0:
        raise ValueError(f"entry {key!r} holds {dtype} values, not plain numbers or text")
    # Python integers: a crafted shape must not wrap around
    count = math.prod(shape)
    declared = count * dtype.itemsize
    held = stored - member.tell()
    if declared != held:
        raise ValueError(f"entry {key!r} declares shape {shape} of {dtype} ({declared:,} bytes) "
                         f"but holds {max(held, 0):,} bytes")
    array = np.empty(count, dtype)
    raw = array.view(np.uint8)
    filled = 0
    while filled < declared:
        chunk = member.read(min(_CHUNK, declared - filled))
        if not chunk:
            raise ValueError(f"entry {key!r} is cut short after {filled:,} of {declared:,} bytes")
        raw[filled:filled + len(chunk)] = np.frombuffer(chunk, np.uint8)
        filled += len(chunk)
    return array.reshape(shape, order="F" if fortran else "C")
