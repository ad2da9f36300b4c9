"""The one L-BFGS driver: SciPy's L-BFGS-B over a network's flat parameters,
with J and dJ/dθ from the kernels' weighted sums. The estimators'
``solver="lbfgs"`` (:mod:`fastbp._mlp_solvers`: one machine's rows, or
tree-reduced over Dask workers) and :class:`fastbp.LBFGS` in
:meth:`fastbp.Network.fit` (:class:`LbfgsIterations`) both run it."""
from __future__ import annotations

import contextlib
import queue
import threading
import time

import numpy as np

from ._objective import mean_objective, weight_mask, weighted_sums, workspace_for
from ._runtime import training_threads
from ._session import EpochReport, EpochSource
from ._training import TrainingDiverged


class LbfgsObjective:
    """J(θ) and dJ/dθ in float64 for :func:`minimize`, the data term's sums
    from ``weighted_sums_at(params, sizes, acts, loss_code)`` (as
    :func:`fastbp._objective.weighted_sums` gives them) and the L2 term
    l2/(2·Σw)·Σ‖W‖², both divided by ``divisor`` (the estimators' scale of
    scikit-learn's loss; 1 in ``Network.fit``).

    Attributes
    ----------
    best_loss : float
        The loss at the last point whose loss and gradient were finite (inf
        before one).
    best_params : ndarray
        That point, in the network's dtype (the starting weights before one).
    """

    def __init__(self, network, weighted_sums_at, loss_code: int, l2: float,
                 divisor: float = 1.0):
        self.dtype = network.dtype
        self.is_weight = weight_mask(network)
        self.model = (*network.kernel_layout, loss_code)
        self.weighted_sums_at, self.l2, self.divisor = weighted_sums_at, l2, divisor
        self.best_loss, self.best_params = np.inf, network.params

    def __call__(self, theta: np.ndarray) -> tuple:
        params = theta.astype(self.dtype)
        J, grad = mean_objective(self.weighted_sums_at(params, *self.model), params,
                                 self.is_weight, self.l2)
        loss = J / self.divisor
        if np.isfinite(loss) and np.isfinite(grad).all():
            self.best_loss, self.best_params = loss, params
        return loss, grad / self.divisor


def minimize(objective: LbfgsObjective, x0: np.ndarray, max_iter: int, max_fun: int,
             tol: float, verbose: bool = False, callback=None):
    """SciPy's L-BFGS-B from ``x0`` (cast to float64): at most ``max_iter``
    iterations and ``max_fun`` evaluations, stopping when the largest
    gradient component is at most ``tol`` (scikit-learn's lbfgs); its
    ``OptimizeResult``. ``callback(intermediate_result)`` runs after each
    iteration; raising StopIteration there ends the run."""
    import scipy.optimize  # here: ~0.1 s that `import fastbp` need not pay

    iprint = {"iprint": 1} if verbose else {}
    return scipy.optimize.minimize(
        objective, x0.astype(np.float64), method="L-BFGS-B", jac=True, callback=callback,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol, **iprint})


class LbfgsIterations(EpochSource):
    """:class:`fastbp.LBFGS`'s iterations over validated arrays in memory as
    the epochs of a :class:`~fastbp._session.Session`: an epoch is one
    L-BFGS iteration over all rows.

    :func:`minimize` runs in a thread of its own that hands each iteration
    to the session and waits until the session asks for the next, so the
    end-of-epoch rules (validation, callbacks, early stopping, Ctrl-C) run
    between iterations as in any fit, and the run is the estimators' own,
    step for step. When L-BFGS converges before the epochs end, the session
    ends there.

    Parameters
    ----------
    network : Network
    X, Y : ndarray or sparse matrix
        Validated, of the network's dtype.
    sample_weight : ndarray or None
    loss_code : int
    l2 : float
        λ of λ/(2·Σw)·Σ‖W‖².
    optimizer : fastbp.LBFGS
    n_threads : int or None
        As in :meth:`Network.fit`: the BLAS's threads (the rows are one batch).
    """

    def __init__(self, network, X, Y, sample_weight, loss_code, l2, optimizer, n_threads):
        self.network, self.optimizer = network, optimizer
        self.n_threads = n_threads
        work = workspace_for(network.kernel_layout[0], X.shape[0], network.dtype)
        self.objective = LbfgsObjective(network, lambda params, sizes, acts, code: weighted_sums(
            X, Y, sample_weight, params, sizes, acts, code, work), loss_code, l2)
        self.rows = X.shape[0]
        self.weight = float(self.rows if sample_weight is None
                            else sample_weight.sum(dtype=np.float64))
        self._thread = None
        #: L-BFGS ended before the epochs did (the session stops)
        self.converged = False

    def running(self, session, epochs: int):
        self._epochs, self.converged = epochs, False
        stack = contextlib.ExitStack()
        stack.enter_context(training_threads(self.network.sizes, self.rows, self.n_threads,
                                             per_sample=True))
        stack.callback(self._finish)
        return stack

    def _start(self) -> None:
        """Start :func:`minimize` in its thread, paused after each iteration."""
        self._reports, self._resume = queue.Queue(maxsize=1), queue.Queue(maxsize=1)
        self._stop = False

        def after_iteration(intermediate_result):
            self._reports.put(("iteration", intermediate_result))
            if self._resume.get() or self._stop:
                raise StopIteration  # the session ended: scipy returns this point

        def run():
            try:
                result = minimize(self.objective, self.network.params, self._epochs,
                                  self.optimizer.max_fun, self.optimizer.tol,
                                  callback=after_iteration)
            except BaseException as exc:  # handed to the session's thread
                self._reports.put(("error", exc))
            else:
                self._reports.put(("done", result))

        self._started = time.perf_counter()
        self._thread = threading.Thread(target=run, name="fastbp-lbfgs", daemon=True)
        self._thread.start()

    def _finish(self) -> None:
        """End the run and its thread, whichever way the session ended."""
        if self._thread is None:
            return
        self._stop = True
        while self._thread.is_alive():
            try:
                self._resume.put_nowait(True)
            except queue.Full:
                pass
            try:
                self._reports.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread = None

    def train(self, session, epoch: int, count: int) -> EpochReport:
        if self._thread is None:
            self._start()
        else:
            self._resume.put(False)
        kind, value = self._reports.get()
        if kind == "error":
            self._thread.join()
            self._thread = None
            raise value
        seconds = time.perf_counter() - self._started
        self._started = time.perf_counter()
        if kind == "done":
            # converged (or out of evaluations) before the epochs ended: the
            # result's point is the last iteration's, or the one before a
            # failed line search; the session ends after this empty report
            self._thread.join()
            self._thread = None
            self.converged = True
            self._publish(session, value.x, value.fun, epoch)
            return EpochReport(epoch, (), (), rows=self.rows, lr=session.state.lr,
                               seconds=seconds, weight=self.weight)
        params = self._publish(session, value.x, value.fun, epoch)
        # J's two terms times Σw, as the minibatch sources report them
        weights = params[self.objective.is_weight].astype(np.float64)
        penalty = 0.5 * self.objective.l2 * float(np.dot(weights, weights))
        return EpochReport(epoch, (value.fun * self.weight - penalty,), (penalty,),
                           rows=self.rows, lr=session.state.lr, seconds=seconds,
                           weight=self.weight)

    def _publish(self, session, x: np.ndarray, loss: float, epoch: int) -> np.ndarray:
        """Make ``x`` the network's weights; on a non-finite loss or weights,
        the last finite point's, and raise TrainingDiverged."""
        params = x.astype(self.network.dtype)
        if np.isfinite(loss) and np.isfinite(params).all():
            session.publish(params)
            return params
        session.publish(self.objective.best_params.copy())
        raise TrainingDiverged(
            f"training diverged in iteration {epoch + 1}: L-BFGS reached a non-finite loss "
            f"({loss}); the network keeps the last point whose loss was finite "
            f"({self.objective.best_loss:.6g})", session.history)

    def interrupted(self, session, epoch: int) -> str:
        return f"fit stopped after {epoch} L-BFGS iteration(s)"
