"""Training on data larger than memory: ``Network.fit(chunks)``.

Each epoch reads the chunks again (from a callable or a re-iterable); a
background thread reads and validates the next chunk while the kernels train
the current one without the GIL. Chunks are gathered into a shuffle buffer of
at least ``shuffle_buffer`` rows, whose rows are trained in one random order,
so rows of neighbouring chunks mix. Memory is O(buffer + one chunk).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse

from ._sparse import CsrRows, as_csr_rows
from ._session import EpochReport, EpochSource
from ._training import Permutations, TrainingLoop, draw_dropout_seed


def chunk_source(chunks, epochs: int):
    """A function returning a fresh iterator of chunks for each epoch.

    ``chunks`` is a callable returning an iterable, or a re-iterable (a
    list, or any object whose ``__iter__`` does not return itself). A
    one-shot iterator (a generator) serves one epoch only.
    """
    if hasattr(chunks, "shape"):  # an array (dense, sparse, DataFrame): Y was forgotten
        raise TypeError(f"Y is None but X is an array of shape {chunks.shape}: pass the "
                        "targets as Y, or X as chunks of (X, Y) for data larger than memory")
    if callable(chunks) and not hasattr(chunks, "__iter__"):
        return lambda: iter(chunks())
    if not hasattr(chunks, "__iter__"):
        raise TypeError("with Y=None, X must be the chunks: an iterable of (X, Y) or "
                        f"(X, Y, sample_weight) tuples, or a callable returning one; got "
                        f"{type(chunks).__name__}")
    if iter(chunks) is chunks and epochs > 1:
        raise ValueError(f"a generator of chunks can be read once, but epochs={epochs}: pass "
                         "a function that returns a new generator each epoch, or a list")
    return lambda: iter(chunks)


def array_chunks(X, Y, chunk_rows: int = 65536):
    """A re-iterable of (X, Y) row blocks of arrays too large for memory.

    Works with anything that slices by rows: NumPy memmaps, h5py and zarr
    arrays, dask arrays (each block is computed when it is read).

    Parameters
    ----------
    X, Y : array-like, same number of rows
    chunk_rows : int, default=65536

    Returns
    -------
    iterable of (ndarray, ndarray)

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> X, Y = np.random.default_rng(0).normal(size=(100, 3)), np.zeros((100, 1))
    >>> [x.shape for x, _ in fastbp.array_chunks(X, Y, chunk_rows=40)]
    [(40, 3), (40, 3), (20, 3)]
    """
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}")
    if not (isinstance(chunk_rows, int) and chunk_rows >= 1):
        raise ValueError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")

    class _Blocks:
        def __iter__(self):
            for start in range(0, len(X), chunk_rows):
                yield _read(X[start:start + chunk_rows]), _read(Y[start:start + chunk_rows])

    return _Blocks()


def _read(block):
    return np.asarray(block.compute() if hasattr(block, "compute") else block)


def chunk_parts(chunk, where: str) -> tuple:
    """(X, Y, sample_weight or None) of one chunk; a TypeError naming it
    (``where``) when it is no such tuple."""
    if not isinstance(chunk, (tuple, list)) or len(chunk) not in (2, 3):
        raise TypeError(f"{where}: a chunk must be an (X, Y) or (X, Y, sample_weight) "
                        f"tuple, got {type(chunk).__name__}")
    return chunk[0], chunk[1], chunk[2] if len(chunk) == 3 else None


def checked_chunk(chunk, where: str, check):
    """``check(X, Y, sample_weight)`` of one chunk, its ValueError or
    TypeError prefixed with ``where``."""
    parts = chunk_parts(chunk, where)
    try:
        return check(*parts)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


class ChunkedTraining(EpochSource):
    """The epochs of a chunked fit (see :meth:`fastbp.Network.fit`): a
    source of a :class:`~fastbp._session.Session`.

    ``check(X, Y, sample_weight)`` turns one chunk's arrays into the
    kernels' (X, Y, weights) or raises ValueError/TypeError; it runs in the
    reader thread. ``rows_seen``: the rows of the last epoch. With
    ``network.dropout``, ``dropout_seed`` seeds the masks as in
    :class:`~fastbp._training.TrainingLoop`, a row's position in the epoch
    counting the rows of the buffers before it. ``clip_norm`` and
    ``average`` go to every buffer's :class:`~fastbp._training.TrainingLoop`
    (the average's raw weights carry on from one buffer to the next).
    """

    def __init__(self, network, source, check, code: int, l2: float, optimizer,
                 batch_size: int, n_threads, rng, shuffle_buffer: int, *, dropout_seed=None,
                 clip_norm=None, average=None):
        self.network, self.source, self.check = network, source, check
        self.code, self.l2 = code, l2
        self.clip_norm, self.average = clip_norm, average
        self.optimizer, self.batch_size, self.n_threads = optimizer, batch_size, n_threads
        self.rng, self.shuffle_buffer = rng, shuffle_buffer
        # one seed for every buffer: each one's masks go on from the rows before it
        self.dropout_seed = (None if network.dropout is None
                             else draw_dropout_seed(dropout_seed))
        self.rows_seen = 0
        self._pass = None  # the buffer being trained

    def _checked(self, chunk, index: int, epoch: int):
        """(X, Y, weights) of chunk ``index``, or a ValueError/TypeError naming it."""
        return checked_chunk(chunk, f"chunk {index} of epoch {epoch + 1}", self.check)

    def _chunks(self, epoch: int):
        """The epoch's validated chunks, each read and checked in a background
        thread while the one before trains."""
        iterator = self.source()
        index = 0

        def read_next():
            nonlocal index
            chunk = next(iterator, None)
            if chunk is None:
                return None
            index += 1
            return self._checked(chunk, index, epoch)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastbp-chunks") as reader:
            pending = reader.submit(read_next)
            while True:
                checked = pending.result()
                if checked is None:
                    return
                pending = reader.submit(read_next)
                yield checked

    def _buffers(self, epoch: int):
        """Chunks joined until the buffer holds ``shuffle_buffer`` rows."""
        parts, rows = [], 0
        for part in self._chunks(epoch):
            parts.append(part)
            rows += part[0].shape[0]
            if rows >= self.shuffle_buffer:
                yield _join(parts)
                parts, rows = [], 0
        if parts:
            yield _join(parts)

    # -- the source protocol (fastbp._session) -------------------------------

    def train(self, session, epoch: int, count: int) -> EpochReport:
        """Train one pass over the chunks, a buffer at a time (each an
        epoch of a :class:`~fastbp._training.TrainingLoop`)."""
        started = time.perf_counter()
        self._pass = None
        lr = session.state.lr
        data_sum = penalty_sum = 0.0
        rows = 0
        for X, Y, weights in self._buffers(epoch):
            n = X.shape[0]
            order = Permutations(self.rng, n) if self.rng is not None else None
            self._pass = TrainingLoop(self.network, X, Y, weights, self.code, self.l2,
                                      self.optimizer, min(self.batch_size, n), self.n_threads,
                                      order, dropout_seed=self.dropout_seed,
                                      first_position=rows, clip_norm=self.clip_norm,
                                      average=self.average)
            with self._pass.running(session, 1):
                report = self._pass.train(session, 0, 1)
            self._pass = None  # published: nothing of it to keep on Ctrl-C
            data_sum += report.data_sums[0]
            penalty_sum += report.penalty_sums[0]
            rows += n
        if rows == 0:
            raise ValueError(f"epoch {epoch + 1} read no chunks")
        self.rows_seen = rows
        return EpochReport(epoch, (data_sum,), (penalty_sum,), rows, lr,
                           time.perf_counter() - started)

    def interrupted(self, session, epoch: int) -> str:
        """Keep the weights of the buffer being trained; where the fit stopped."""
        if self._pass is None:
            return f"fit stopped in epoch {epoch + 1} between two buffers of chunks"
        return self._pass.interrupted(session, epoch)


def _join(parts):
    """One (X, Y, weights) of several checked chunks."""
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0][0], CsrRows):
        stacked = scipy.sparse.vstack([p[0].to_scipy() for p in parts], format="csr")
        X = as_csr_rows(stacked, parts[0][0].dtype, "X")
    else:
        X = np.concatenate([np.asarray(p[0]) for p in parts])
    Y = np.concatenate([p[1] for p in parts])
    if all(p[2] is None for p in parts):
        return X, Y, None
    weights = np.concatenate([p[2] if p[2] is not None else np.ones(p[0].shape[0], X.dtype)
                              for p in parts])
    return X, Y, weights
