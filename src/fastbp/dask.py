"""Training fastbp's estimators on a Dask cluster.

:class:`DaskMLPClassifier` and :class:`DaskMLPRegressor` follow the
convention of ``xgboost.dask.DaskXGBClassifier`` and LightGBM's
``DaskLGBMClassifier``: the scikit-learn parameters of
:class:`fastbp.MLPClassifier` / :class:`fastbp.MLPRegressor`, plus
``client`` (default: ``distributed.default_client()``) and ``timeout``;
``fit(X, y)`` takes dask arrays or dask dataframes whose partitions stay on
the workers; ``predict`` and ``predict_proba`` return dask arrays (the local
model mapped over the blocks); ``to_local()`` gives the fitted plain
estimator with the same weights.

Example::

    from distributed import Client, LocalCluster
    import dask.array as da
    from fastbp.dask import DaskMLPClassifier

    client = Client(LocalCluster(n_workers=2, threads_per_worker=1))
    X = da.random.random((100_000, 784), chunks=(25_000, 784)).astype("float32")
    y = (X[:, 0] > 0.5).astype(int)
    model = DaskMLPClassifier(hidden_layer_sizes=(256,), solver="lbfgs", max_iter=20)
    model.fit(X, y)
    labels = model.predict(X)          # a dask array
    local = model.to_local()           # a fitted fastbp.MLPClassifier

How the data is held
--------------------
``fit`` computes the partitions on the workers once, converted to what the
kernels read (C-contiguous rows of the model's dtype, the binarised targets
and the row weights; rows already C-contiguous in that dtype are not
copied). lbfgs leaves each partition where it was made: one task a worker
sums the gradient over its partitions, 4096 rows at a time, so a fit adds
O(weights + 4096 rows × width) to each worker's memory, not O(rows). The
minibatch solvers shuffle all of a worker's rows each epoch, so they join
the partitions each worker holds into one block per worker (moving a
partition only where one worker would otherwise hold much more than its
share), a copy of the worker's rows. The partitions stay on the workers for
the whole fit; only weight vectors travel.

``solver="lbfgs"``: full-batch, exact
------------------------------------
Each iteration sends the weight vector to the workers (inside each
worker's task: ``client.scatter`` ignored its timeout when a worker died
under it); each worker
computes the data term of the loss and its gradient over its partitions with
the compiled kernels (``fastbp._kernels.weighted_loss_gradient``, on the
worker's own thread count), as row-weight sums in float64; the partial sums
are added in a tree of ``client.submit`` calls; SciPy's L-BFGS-B runs on the
client, which adds the L2 term. The loss and gradient are those of a
single-machine fit up to rounding (the rows are summed in another order),
so the same data gives the same iterations: the weights agree with
``fastbp.MLPClassifier(solver="lbfgs")`` to 1.5e-13 relative in float64
after 30 iterations of a 20-16-8-3 net (``tests/test_dask.py`` asserts
1e-10). As for any change of summation order, the difference grows with
the iterations where the problem is ill-conditioned: measured 2e-11 after
40, 3e-9 after 60 and a different local path after 100 iterations of that
net (20-16-3: 4e-12 after 60, 1e-8 after 100).

``solver="adam"`` and ``"sgd"``: local epochs with model averaging
-----------------------------------------------------------------
Each round, every worker trains one epoch over its own block (shuffled,
minibatches of ``batch_size``, exactly fastbp's single-machine loop) from
the same starting weights and optimiser state; the client then averages the
weights and the optimiser's buffers (velocity, Adam's moments), weighted by
the rows of each block, and applies scikit-learn's stopping rule and the
learning-rate schedule to the averaged epoch loss. ``n_iter_`` counts rounds
(= epochs over all the data).

Why not synchronous data-parallel steps (averaged gradients each minibatch)?
Measured with ``bench/dask_minibatch.py`` (results in
``bench/results/dask_minibatch.txt``) on the 2-core development machine,
LocalCluster of 2 worker processes x 1 thread, 40 000 x 64 rows, 64-100-3,
Adam at batch 200: one synchronous step (scatter the weights, the two
workers' gradient tasks, their sum, the client's Adam step) took 44.7 ms of
Dask round trips against well under 1 ms of compute, so an epoch took
8.95 s; with local epochs an epoch took 0.36 s (data conversion included;
a single machine on one thread: 0.032 s), and held-out accuracy after 10
epochs was 0.9709 against the single machine's 0.9696. A round trip per
minibatch is latency, which more workers cannot amortise, while a round
per epoch moves the weights and the optimiser's buffers once per pass over
the data. With the rows spread evenly the averaged model reaches the
single-machine held-out accuracy within 0.01 (tested); each epoch makes
fewer, averaged steps, so on some problems it needs more epochs.

Dropout, clip_norm and ema
--------------------------
They act on minibatch steps, and the minibatch solvers' steps are those of
the local loop on each worker, so each keeps its meaning there. ``dropout``:
each worker draws its masks from a seed that its round's seed draws, itself
drawn from ``random_state``; with the same ``random_state`` and the same
partitions (so the same blocks) a fit repeats itself bit for bit (blocks
are ordered by their first partition, not by the workers' addresses).
``clip_norm`` clips each minibatch gradient of each worker, as the local
fit does: there is no global gradient to clip, the workers never sum
gradients. ``ema``: the decay counts steps, as in the local fit (a moving
average of the averaged weights once a round would make 0.999 mean a
thousand rounds): each worker carries the raw weights and their average on
over its epoch's steps, and the client averages both, as it averages the
weights. The average is linear in the weights, so where the workers take as
many steps this is, step by step, the moving average of the workers' mean
weights; the network holds it (``coefs_``, ``to_local()``). With one block
these fits take the local estimator's steps bit for bit (tested).
``solver="lbfgs"`` takes none of them: it steps on all rows at once with an
exact objective, which a random mask would change from one evaluation to
the next, and whose line search a clipped or averaged step would break;
it raises ``InvalidParameterError``, as the local estimator does.

Threads and failures
--------------------
The kernels use ``n_threads`` threads on each worker, or, with
``n_threads=None``, the worker's own ``nthreads``, so a worker never runs
more threads than it was given. Every wait has a ``timeout`` (seconds).
If a worker dies mid-fit, Dask recomputes its block from the collection's
graph on a surviving or restarted worker and the iteration's tasks run
again; if that fails too (or a wait times out), ``fit`` raises
:class:`DaskFitError` and the estimator keeps the last weights with a finite
loss (``to_local()`` returns them).

Search on a cluster
-------------------
The plain estimators work with scikit-learn's searches under joblib's Dask
backend (each candidate fit is a task on a worker; with Dask's nannies
setting ``OMP_NUM_THREADS`` to the worker's threads, ``n_threads=None``
uses that many)::

    import joblib
    from sklearn.model_selection import GridSearchCV
    from fastbp import MLPClassifier

    search = GridSearchCV(MLPClassifier(max_iter=50),
                          {"hidden_layer_sizes": [(32,), (32, 16)], "alpha": [1e-4, 1e-2]})
    with joblib.parallel_backend("dask"):
        search.fit(X_numpy, y_numpy)

``dask_ml.wrappers.Incremental(fastbp.MLPClassifier(...))`` streams the
blocks of a dask array through ``partial_fit``.
``dask_ml.model_selection.HyperbandSearchCV`` (dask-ml 2025.1.0, the newest)
fails with ``dask >= 2025.3.0`` ("Attempting to use an asynchronous Client
in a synchronous context of `dask.compute`", dask/dask-ml#1016: dask-ml
calls ``dask.persist`` inside its asynchronous loop); it works with
``dask == distributed == 2025.2.0`` and ``dask-ml == 2025.1.0`` (tested),
once fastbp copies misaligned blocks (as it now does). A grid mixing
``hidden_layer_sizes`` of different depths still fails there, in any dask
version: dask-ml builds ``cv_results_`` with ``np.array`` over each
parameter's values, and NumPy >= 1.24 refuses tuples of different lengths
("inhomogeneous shape"); search each depth separately until dask-ml fixes
it. See :func:`hyperband_compatible`.
"""
from __future__ import annotations

import copy
import inspect
import math
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted

from ._mlp_params import CLASSIFIER_CONSTRAINTS, PARAMETER_CONSTRAINTS, hidden_layer_units
from ._mlp_solvers import DistributedRows
from ._objective import OBJECTIVE_CHUNK_ROWS, weighted_sums, workspace_size
from ._runtime import training_threads
from ._validation import as_matrix
from .estimators import MLPClassifier, MLPRegressor

__all__ = ["DaskFitError", "DaskMLPClassifier", "DaskMLPRegressor", "hyperband_compatible"]

#: the fitted attributes copied from the local estimator after fit
_FITTED_ATTRIBUTES = ("classes_", "n_features_in_", "n_outputs_", "n_layers_", "out_activation_",
                      "n_iter_", "t_", "loss_", "loss_curve_", "best_loss_")

#: client and timeout are checked by fit, with messages of their own
_DASK_CONSTRAINTS = {"client": "no_validation", "timeout": "no_validation"}

#: a worker may move a partition to another only if it would otherwise hold
#: more than this multiple of its even share of the rows
_IMBALANCE_TOLERANCE = 1.25


class DaskFitError(RuntimeError):
    """A distributed fit could not finish: a worker was lost and its work
    could not be redone, or a wait timed out.

    The estimator keeps the last weights whose loss was finite, and the
    iterations done so far (``n_iter_``); ``to_local()`` returns them.
    """


# -- input checks ----------------------------------------------------------------

def _type_name(value) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _is_dask_dataframe(value) -> bool:
    try:
        import dask.dataframe as dd
    except ImportError:  # dask without its dataframe extra
        return False
    return isinstance(value, (dd.DataFrame, dd.Series))


def _as_dask_array(value, name: str, ndims: tuple):
    """A dask array of known chunk sizes from a dask array or dataframe."""
    import dask.array as da
    if _is_dask_dataframe(value):
        value = value.to_dask_array(lengths=True)
    elif not isinstance(value, da.Array):
        raise TypeError(f"{name} must be a dask array or a dask dataframe, got {_type_name(value)}"
                        f"; fit in-memory data with fastbp's MLPClassifier/MLPRegressor")
    if value.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, "
                         f"got shape {value.shape}")
    if any(math.isnan(c) for c in value.chunks[0]):
        value = value.compute_chunk_sizes()
    return value


def _compute(client, collections, timeout):
    """The values of dask collections, computed on the cluster within ``timeout`` s."""
    futures = client.compute(list(collections))
    try:
        return [future.result(timeout=timeout) for future in futures]
    except TimeoutError as exc:
        raise DaskFitError(f"the cluster took more than timeout={timeout} s") from exc


def _model_dtype(dtype) -> np.dtype:
    """float32 stays float32, all else trains in float64 (as the estimators)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def _current_client(client):
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError as exc:
        raise ImportError("fastbp.dask needs distributed: pip install 'fastbp[dask]'") from exc
    try:
        return default_client()
    except ValueError as exc:
        raise ValueError("no Dask client: start one (distributed.Client(...)) or pass "
                         "client=") from exc


# -- work done on the workers ------------------------------------------------------

class _Block:
    """Rows as the kernels read them, held by one worker for a whole fit."""

    def __init__(self, X, Y, sample_weight):
        self.X = X
        self.Y = Y
        self.sample_weight = sample_weight
        self.weight_sum = float(X.shape[0] if sample_weight is None else sample_weight.sum())
        self._workspace = None

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    def aligned(self) -> "_Block":
        """This block, its arrays made aligned where a transfer between
        workers left them misaligned (the kernels need aligned rows)."""
        for name in ("X", "Y", "sample_weight"):
            array = getattr(self, name)
            if array is not None and not array.flags.aligned:
                setattr(self, name, np.require(array, requirements="CA"))
        return self

    def workspace(self, sizes, dtype, rows: int) -> np.ndarray:
        """The passes' workspace for chunks of up to ``rows`` rows, allocated
        on first use and kept with the block."""
        size = workspace_size(sizes, rows)
        if self._workspace is None or self._workspace.size != size \
                or self._workspace.dtype != dtype:
            self._workspace = np.empty(size, dtype)
        return self._workspace


def _prepare_block(X, y, sample_weight, target, dtype, class_weights) -> _Block:
    """One partition converted for the kernels: X, binarised Y, row weights."""
    # C-contiguous and aligned (deserialised chunks may not be), and finite,
    # as every X the kernels read; a partition may be empty
    X = as_matrix(X, dtype, "X", allow_empty=True)
    if isinstance(target, LabelBinarizer):
        Y = target.transform(np.asarray(y)).astype(dtype)
    else:
        Y = as_matrix(y, dtype, "y", allow_vector=True, allow_empty=True)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=dtype)
    if class_weights is not None:
        per_row = class_weights[np.searchsorted(target.classes_, np.asarray(y))]
        weights = per_row.astype(dtype) if weights is None \
            else weights * per_row.astype(dtype)
    if weights is not None:
        if weights.ndim != 1 or weights.shape[0] != X.shape[0]:
            raise ValueError(f"sample_weight must have shape ({X.shape[0]},), got {weights.shape}")
        if np.any(weights < 0):
            raise ValueError("sample weights must be non-negative")
        weights = np.require(weights, requirements="CA")
    return _Block(X, np.require(Y, requirements="CA"), weights)


def _join_blocks(*blocks) -> _Block:
    """The blocks of one worker as one (no copy for a single block)."""
    if len(blocks) == 1:
        return blocks[0]
    weights = None
    if blocks[0].sample_weight is not None:
        weights = np.concatenate([b.sample_weight for b in blocks])
    return _Block(np.concatenate([b.X for b in blocks]), np.concatenate([b.Y for b in blocks]),
                  weights)


def _worker_threads(n_threads):
    """``n_threads``, or this worker's own thread count."""
    if n_threads is not None:
        return int(n_threads)
    try:
        from distributed import get_worker
        worker = get_worker()
        state = getattr(worker, "state", None)
        return int(getattr(state, "nthreads", None) or getattr(worker, "nthreads", 1) or 1)
    except (ImportError, ValueError):
        return 1


def _blocks_loss_gradient(params, sizes, acts, loss_code, n_threads, *blocks: _Block):
    """(Σw·data term, Σw·gradient of the data term in float64, Σw) of one
    worker's blocks, summed in order."""
    params = np.require(params, requirements="CA")
    layer_sizes = [int(size) for size in sizes]  # int32 products would overflow
    rows = max(block.rows for block in blocks)
    work = blocks[0].workspace(sizes, params.dtype, rows)  # kept for the next call
    total = (0.0, np.zeros(params.shape, np.float64), 0.0)
    with training_threads(layer_sizes, min(rows, OBJECTIVE_CHUNK_ROWS),
                          _worker_threads(n_threads), per_sample=True):
        for block in blocks:
            block = block.aligned()
            total = _add_partials(total, weighted_sums(block.X, block.Y, block.sample_weight,
                                                       params, sizes, acts, loss_code, work))
    return total


def _add_partials(first, second):
    return first[0] + second[0], first[1] + second[1], first[2] + second[2]


def _local_epoch(shared_epoch, block: _Block, seed: int, batch_size: int, n_threads):
    """One epoch of the estimator's own minibatch loop over this worker's block
    (``shared_epoch``, bound to the estimator: see
    :class:`fastbp._mlp_solvers.DistributedRows`), with the block's rows and
    weight sum."""
    block = block.aligned()
    # a copy of the method is one of its estimator: never change an argument
    # a retried task may reuse
    epoch = copy.deepcopy(shared_epoch)
    started = time.perf_counter()
    result = epoch(block.X, block.Y, block.sample_weight, seed, min(batch_size, block.rows),
                   _worker_threads(n_threads))
    result.update(rows=block.rows, weight_sum=block.weight_sum,
                  seconds=time.perf_counter() - started)
    return result


def _predict_block(block, model, method):
    return getattr(model, method)(block)


# -- the estimators ----------------------------------------------------------------

def _retryable_errors() -> tuple:
    """Errors of a lost worker or a wait that timed out."""
    from concurrent.futures import CancelledError
    import distributed
    errors = [TimeoutError, CancelledError, OSError, distributed.KilledWorker]
    try:
        from distributed.comm.core import CommClosedError
        errors.append(CommClosedError)
    except ImportError:
        pass
    try:
        from distributed.client import FutureCancelledError
        errors.append(FutureCancelledError)
    except ImportError:
        pass
    return tuple(errors)


def _constructor_of(local_class, without=()):
    """An ``__init__`` taking ``local_class``'s parameters (less ``without``),
    then ``client`` and ``timeout``, so the parameters and their defaults are
    declared once, by the local estimator.

    scikit-learn reads an estimator's parameters from its ``__init__``'s
    signature (``get_params``, ``clone``) and wants each stored unchanged under
    its name: the function carries that signature and stores what it binds.
    """
    local = inspect.signature(local_class.__init__)
    if not set(without) <= set(local.parameters):
        raise ValueError(f"{local_class.__name__} has no parameter among {without}")
    keyword = inspect.Parameter.KEYWORD_ONLY
    signature = local.replace(parameters=[
        *(p for name, p in local.parameters.items() if name not in without),
        inspect.Parameter("client", keyword, default=None),
        inspect.Parameter("timeout", keyword, default=300.0)])

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}: {exc}") from None
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


class _DaskMLP(BaseEstimator):
    """Shared machinery of :class:`DaskMLPClassifier` and :class:`DaskMLPRegressor`."""

    _local_class: type = MLPClassifier
    #: retries of an iteration after a lost worker or a timeout
    _max_retries = 2

    def __getstate__(self):
        # a client does not travel with the model (as LightGBM's Dask estimators)
        state = dict(super().__getstate__())
        state["client"] = None
        return state

    def __sklearn_clone__(self):
        # scikit-learn's clone deep-copies parameters: the clone shares the client
        from sklearn.base import clone
        params = {name: clone(value, safe=False)
                  for name, value in self.get_params(deep=False).items() if name != "client"}
        return type(self)(client=self.client, **params)

    # -- the local estimator ------------------------------------------------

    def _local_params(self) -> dict:
        params = self.get_params(deep=False)
        params.pop("client")
        params.pop("timeout")
        return params

    def to_local(self):
        """The fitted model as a plain fastbp estimator (a copy, same weights).

        Returns
        -------
        fastbp.MLPClassifier or fastbp.MLPRegressor
        """
        check_is_fitted(self, "_local")
        local = copy.deepcopy(self._local)
        for name in ("_random_state", "_stopping"):
            local.__dict__.pop(name, None)
        return local

    @property
    def coefs_(self) -> list:
        """Weight matrices of the fitted model (as :attr:`fastbp.MLPClassifier.coefs_`)."""
        check_is_fitted(self, "_local")
        return self._local.coefs_

    @property
    def intercepts_(self) -> list:
        """Bias vectors of the fitted model (as :attr:`fastbp.MLPClassifier.intercepts_`)."""
        check_is_fitted(self, "_local")
        return self._local.intercepts_

    # -- fit ----------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model to the dask collections X and y on the client's workers.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
        y : dask array, Series or DataFrame of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : dask array or Series of shape (n_samples,), default=None

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If X, y or sample_weight is not a dask collection.
        DaskFitError
            If a lost worker's work could not be redone or a wait timed out.
        """
        client = _current_client(self.client)
        self._validate_params()
        if isinstance(self.n_threads, (bool, np.bool_)):
            raise ValueError(f"n_threads must be an int >= 1 or None, got {self.n_threads!r}")
        if self.timeout is None or not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.early_stopping and self.solver != "lbfgs":
            raise ValueError("early_stopping=True is not supported by the Dask estimators: "
                             "hold out a validation set and score it yourself")
        hidden_layer_units(self.hidden_layer_sizes)  # its error before any work on the cluster
        X = _as_dask_array(X, "X", (2,))
        y = _as_dask_array(y, "y", (1, 2))
        if sample_weight is not None:
            sample_weight = _as_dask_array(sample_weight, "sample_weight", (1,))
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        if sample_weight is not None and sample_weight.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but sample_weight has "
                             f"{sample_weight.shape[0]}")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
        target, class_weights, n_outputs = self._targets(client, y)
        if self.warm_start and hasattr(self, "_local"):
            local = copy.deepcopy(self._local)
            local.set_params(**self._local_params())
        else:
            local = self._local_class(**self._local_params())
        blocks = []

        def place(dtype, join):
            blocks[:] = self._persist_blocks(client, X, y, sample_weight, target, dtype,
                                             class_weights, join)
            return len(blocks)

        # the client runs the local estimator's own fit, its solvers on the workers' rows
        rows = DistributedRows(
            n_features=X.shape[1], n_outputs=n_outputs, n_rows=X.shape[0],
            dtype=_model_dtype(X.dtype),
            binarizer=target if isinstance(target, LabelBinarizer) else None, place=place,
            weighted_sums=lambda *args: self._with_retries(self._summed_gradients, client,
                                                           blocks, *args),
            run_round=lambda *args: self._with_retries(self._local_epochs, client, blocks,
                                                       *args),
            lost=(DaskFitError,))
        self._local = local  # kept whatever happens: its last finite weights
        try:
            local.fit(rows)
        finally:
            self._copy_fitted_attributes()
            del blocks[:]
        return self

    def _copy_fitted_attributes(self):
        for name in _FITTED_ATTRIBUTES:
            if hasattr(self._local, name):
                setattr(self, name, getattr(self._local, name))

    def _wait(self, futures):
        from distributed import wait
        try:
            wait(futures, timeout=self.timeout)
        except TimeoutError as exc:
            raise DaskFitError(f"the workers took more than timeout={self.timeout} s") from exc

    def _persist_blocks(self, client, X, y, sample_weight, target, dtype, class_weights,
                        join: bool):
        """Convert the partitions on the workers; returns [(worker address,
        [futures of its blocks])]. With ``join`` (minibatch epochs shuffle
        all of a worker's rows), the rows are balanced over the workers and
        joined into one block each; else (lbfgs) the partitions stay where
        they were made, never copied."""
        import dask
        X = X.rechunk({1: -1})
        y = y.rechunk({0: X.chunks[0]} if y.ndim == 1 else (X.chunks[0], -1))
        rows = X.chunks[0]
        X_parts = X.to_delayed().ravel()
        y_parts = y.to_delayed().ravel()
        if sample_weight is not None:
            sw_parts = sample_weight.rechunk({0: rows}).to_delayed().ravel()
        else:
            sw_parts = [None] * len(X_parts)
        prepare = dask.delayed(_prepare_block, pure=True)
        prepared = [prepare(Xp, yp, swp, target, dtype, class_weights)
                    for Xp, yp, swp in zip(X_parts, y_parts, sw_parts)]
        parts = client.compute(prepared)
        self._wait(parts)
        for part in parts:
            if part.status == "error":
                part.result()  # raises the worker's error (e.g. NaN in X)
        workers = sorted(client.scheduler_info()["workers"])
        holders = client.who_has(parts)
        if not join:
            by_worker = {}
            for part in parts:
                holder = (holders.get(part.key) or workers)[0]
                by_worker.setdefault(holder, []).append(part)
            return sorted(by_worker.items(), key=lambda item: item[0])
        assignment = _balanced_assignment([(part, rows[i], holders.get(part.key, ()))
                                           for i, part in enumerate(parts)], workers)
        # blocks in the order of their first partition, not of the workers'
        # addresses: block i's seeds (shuffles, dropout masks) go with its rows
        index = {part.key: i for i, part in enumerate(parts)}
        grouped = sorted(((min(index[p.key] for p in assigned), worker, assigned)
                          for worker, assigned in assignment.items() if assigned),
                         key=lambda group: group[0])
        blocks = []
        for _, worker, assigned in grouped:
            future = client.submit(_join_blocks, *assigned, workers=[worker],
                                   allow_other_workers=True, pure=False)
            blocks.append((worker, [future]))
        self._wait([future for _, (future,) in blocks])
        return blocks

    # -- lbfgs --------------------------------------------------------------

    def _summed_gradients(self, client, blocks, params, sizes, acts, code):
        """lbfgs's sums over all rows: each worker's, added in a tree of tasks."""
        # the weights travel inside each task: client.scatter's timeout is
        # not honoured when a worker dies under it (distributed 2026.8: it hung)
        partials = [client.submit(_blocks_loss_gradient, params, sizes, acts, code,
                                  self.n_threads, *parts, workers=[worker],
                                  allow_other_workers=True, pure=False)
                    for worker, parts in blocks]
        return _tree_sum(client, partials).result(timeout=self.timeout)

    def _with_retries(self, work, *args):
        """``work(*args)``, again after a lost worker or a timeout; DaskFitError at last."""
        errors = _retryable_errors()
        for attempt in range(self._max_retries + 1):
            try:
                return work(*args)
            except errors as exc:
                last = exc
                if self.verbose:
                    print(f"fastbp.dask: attempt {attempt + 1} failed ({type(exc).__name__}: "
                          f"{exc}); retrying")
        raise DaskFitError(
            f"the distributed fit failed in iteration {getattr(self._local, 'n_iter_', 0) + 1} "
            f"after {self._max_retries + 1} attempts (timeout {self.timeout} s): "
            f"{type(last).__name__}: {str(last).rstrip('.')}. The estimator keeps the last "
            f"weights with a finite loss.") from last

    # -- adam and sgd: local epochs, averaged -----------------------------------

    def _local_epochs(self, client, blocks, epoch, seed_base, batch_size):
        """A round of averaged epochs: ``epoch`` on each worker's block."""
        futures = [client.submit(_local_epoch, epoch, block, seed_base + i, batch_size,
                                 self.n_threads, workers=[worker], allow_other_workers=True,
                                 pure=False)
                   for i, (worker, (block,)) in enumerate(blocks)]
        self._wait(futures)
        return [future.result(timeout=self.timeout) for future in futures]

    # -- prediction -----------------------------------------------------------

    def _map_rows(self, X, method: str, output_columns):
        """``method`` of the local model mapped over the row blocks of X."""
        check_is_fitted(self, "_local")
        import dask.array as da
        if _is_dask_dataframe(X):
            X = X.to_dask_array()
        elif not isinstance(X, da.Array):
            raise TypeError(f"X must be a dask array or a dask dataframe, got {_type_name(X)}; "
                            f"use to_local() for in-memory data")
        if X.ndim != 2:
            raise ValueError(f"X must have 2 dimensions, got shape {X.shape}")
        if not math.isnan(X.shape[1]) and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        X = X.rechunk({1: -1})
        model = self.to_local()
        sample = getattr(model, method)(np.zeros((1, self.n_features_in_), X.dtype))
        if output_columns is None:
            return X.map_blocks(_predict_block, model, method, dtype=sample.dtype, drop_axis=1,
                                meta=np.empty((0,), sample.dtype))
        return X.map_blocks(_predict_block, model, method, dtype=sample.dtype,
                            chunks=(X.chunks[0], (output_columns,)),
                            meta=np.empty((0, 0), sample.dtype))


def _tree_sum(client, futures):
    """The sum of the partial results, added pairwise in a tree of tasks."""
    while len(futures) > 1:
        paired = [client.submit(_add_partials, futures[i], futures[i + 1], pure=False)
                  for i in range(0, len(futures) - 1, 2)]
        if len(futures) % 2:
            paired.append(futures[-1])
        futures = paired
    return futures[0]


def _balanced_assignment(parts, workers) -> dict:
    """Partitions to workers: each stays where it is unless its holder would
    get more than ``_IMBALANCE_TOLERANCE`` times an even share of the rows,
    then it goes to the worker with the fewest rows."""
    share = _IMBALANCE_TOLERANCE * sum(rows for _, rows, _ in parts) / max(len(workers), 1)
    load = {worker: 0 for worker in workers}
    assignment = {worker: [] for worker in workers}
    for part, rows, holders in sorted(parts, key=lambda p: -p[1]):
        holder = next((h for h in holders if h in load), None)
        least = min(load, key=load.get)
        if holder is None or (load[holder] + rows > share and load[least] < load[holder]):
            holder = least
        load[holder] += rows
        assignment[holder].append(part)
    return assignment


class DaskMLPClassifier(ClassifierMixin, _DaskMLP):
    """Multi-layer perceptron classifier trained on a Dask cluster.

    The parameters of :class:`fastbp.MLPClassifier` (same meanings and
    defaults; ``early_stopping=True`` is not supported with ``"sgd"`` and
    ``"adam"``), plus ``client`` and ``timeout``. See the module docstring
    for how each solver is distributed.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun, class_weight, dropout,
    weight_decay, clip_norm, ema, compute_dtype
        As in :class:`fastbp.MLPClassifier`. With the minibatch solvers
        ``max_iter`` counts rounds of one local epoch per worker, and
        ``batch_size="auto"`` is min(200, n_samples); ``dropout``,
        ``clip_norm``, ``ema`` and ``compute_dtype`` act on each worker's
        steps (see the module docstring), and lbfgs takes none of them.
    n_threads : int or None, default=None
        Threads of the kernels on each worker; None: the worker's ``nthreads``.
    client : distributed.Client or None, default=None
        The client whose workers train; None: ``distributed.default_client()``
        at fit time. It is not pickled with the model.
    timeout : float, default=300
        Seconds any single wait for the workers may take (an lbfgs
        iteration, a round of local epochs, the conversion of the data).

    Attributes
    ----------
    classes_, coefs_, intercepts_, n_features_in_, n_iter_, loss_, loss_curve_,
    best_loss_, t_, n_layers_, n_outputs_, out_activation_
        As in :class:`fastbp.MLPClassifier`.
    """

    _local_class = MLPClassifier
    _parameter_constraints: dict = {**CLASSIFIER_CONSTRAINTS, **_DASK_CONSTRAINTS}

    __init__ = _constructor_of(MLPClassifier)

    def _targets(self, client, y):
        """The label binarizer of all of y's classes, per-class weights, outputs."""
        import dask.array as da
        if y.ndim != 1:
            raise ValueError(f"{type(self).__name__} takes a 1-D y; got shape {y.shape} "
                             "(multilabel targets are not supported)")
        classes, counts = _compute(client, da.unique(y, return_counts=True), self.timeout)
        if self.warm_start and hasattr(self, "_local") and \
                set(classes) != set(self._local.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the previous "
                f"call to fit. Previously got {self._local.classes_}, `y` has {classes}")
        binarizer = LabelBinarizer().fit(classes)
        class_weights = None
        if self.class_weight is not None:
            class_weights = _class_weights(self.class_weight, binarizer.classes_, classes, counts)
        n_outputs = binarizer.transform(classes[:1]).shape[1]
        return binarizer, class_weights, n_outputs

    def predict(self, X):
        """Predicted classes, computed on the workers.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)

        Returns
        -------
        dask array of shape (n_samples,)
        """
        return self._map_rows(X, "predict", None)

    def predict_proba(self, X):
        """Class probabilities, computed on the workers.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)

        Returns
        -------
        dask array of shape (n_samples, n_classes)
        """
        return self._map_rows(X, "predict_proba", len(self.classes_))

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on the dask collections X and y, computed on the workers.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
        y : dask array or Series of shape (n_samples,)
        sample_weight : dask array or Series of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        X, y, weights = _scoring_inputs(X, y, sample_weight, (1,))
        correct = (self.predict(X) == y).astype(np.float64)
        if weights is None:
            value = correct.mean()
        else:
            value = (correct * weights).sum() / weights.sum()
        return float(_compute(_current_client(self.client), [value], self.timeout)[0])


def _scoring_inputs(X, y, sample_weight, y_ndims):
    """X, y and the weights as dask arrays of the same row chunks."""
    X = _as_dask_array(X, "X", (2,))
    y = _as_dask_array(y, "y", y_ndims)
    y = y.rechunk({0: X.chunks[0]})
    if sample_weight is not None:
        sample_weight = _as_dask_array(sample_weight, "sample_weight", (1,))
        sample_weight = sample_weight.rechunk({0: X.chunks[0]}).astype(np.float64)
    return X, y, sample_weight


def _class_weights(class_weight, binarizer_classes, classes, counts) -> np.ndarray:
    """Per-class weights in ``binarizer_classes``' order, as
    ``sklearn.utils.class_weight.compute_sample_weight`` computes them."""
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got "
                             f"{class_weight!r}")
        by_class = dict(zip(classes, counts.sum() / (len(classes) * counts.astype(np.float64))))
    else:
        by_class = {c: float(class_weight.get(c, 1.0)) for c in classes}
    return np.array([by_class[c] for c in binarizer_classes], np.float64)


class DaskMLPRegressor(RegressorMixin, _DaskMLP):
    """Multi-layer perceptron regressor trained on a Dask cluster.

    The parameters of :class:`fastbp.MLPRegressor` but ``loss`` (it fits the
    squared error), with the same meanings and defaults
    (``early_stopping=True`` is not supported with ``"sgd"`` and
    ``"adam"``), plus ``client`` and ``timeout``; see
    :class:`DaskMLPClassifier` and the module docstring.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun, dropout, weight_decay,
    clip_norm, ema, compute_dtype
        As in :class:`fastbp.MLPRegressor` and :class:`DaskMLPClassifier`.
    n_threads : int or None, default=None
        Threads of the kernels on each worker; None: the worker's ``nthreads``.
    client : distributed.Client or None, default=None
    timeout : float, default=300
    """

    _local_class = MLPRegressor
    # no loss parameter: the Dask regressor fits the squared error
    _parameter_constraints: dict = {**PARAMETER_CONSTRAINTS, **_DASK_CONSTRAINTS}
    __init__ = _constructor_of(MLPRegressor, without=("loss",))

    def _targets(self, client, y):
        return None, None, 1 if y.ndim == 1 else y.shape[1]

    def predict(self, X):
        """Predictions, computed on the workers.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)

        Returns
        -------
        dask array of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._map_rows(X, "predict", None if self.n_outputs_ == 1 else self.n_outputs_)

    def score(self, X, y, sample_weight=None):
        """R² on the dask collections X and y (averaged over the outputs, as
        scikit-learn's default), computed on the workers.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
        y : dask array, Series or DataFrame of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : dask array or Series of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        X, y, weights = _scoring_inputs(X, y, sample_weight, (1, 2))
        y = y.astype(np.float64)
        predicted = self.predict(X).astype(np.float64)
        if weights is None:
            weights = (y * 0 + 1)
        elif y.ndim == 2:
            weights = weights[:, None]
        weight_sum = (weights * (y * 0 + 1)).sum(axis=0)
        mean = (y * weights).sum(axis=0) / weight_sum
        residual = (((y - predicted) ** 2) * weights).sum(axis=0)
        total = (((y - mean) ** 2) * weights).sum(axis=0)
        r2 = (1 - residual / total).mean()
        return float(_compute(_current_client(self.client), [r2], self.timeout)[0])


def hyperband_compatible() -> bool:
    """Whether the installed dask and dask-ml can run ``HyperbandSearchCV``.

    dask-ml 2025.1.0 calls ``dask.persist`` inside its asynchronous loop,
    which ``dask >= 2025.3.0`` refuses (dask/dask-ml#1016). Tested to work:
    ``dask == distributed == 2025.2.0`` with ``dask-ml == 2025.1.0``.

    Returns
    -------
    bool
    """
    import importlib.util
    import dask
    if importlib.util.find_spec("dask_ml") is None:
        return False
    version = tuple(int(p) for p in dask.__version__.split(".")[:2] if p.isdigit())
    return version < (2025, 3)
