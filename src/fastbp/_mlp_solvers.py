"""The solvers' drivers of the scikit-learn wing, shared by the local
estimators and fastbp.dask: scikit-learn's lbfgs (SciPy's L-BFGS-B over a
gradient function: one machine's rows, or tree-reduced over Dask workers),
the minibatch epochs of the other solvers ("sgd", "adam", "adamw", ...) with
scikit-learn's stopping rule,
and the averaged epochs of Dask workers. The optimiser and its state live
here too, with the moving average of the weights (``ema``): a warm start and
partial_fit keep them."""
from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._averaging import WeightAverage
from ._lbfgs import LbfgsObjective, minimize
from ._mlp_params import STOCHASTIC_SOLVERS
from ._objective import weighted_sums, workspace_for
from ._runtime import training_threads
from ._session import EpochReport, Session
from ._training import TrainingDiverged, TrainingLoop
from .callbacks import EarlyStopping

#: scikit-learn's error for a fit that ends with NaN or infinite weights,
#: which its users match on
NON_FINITE_WEIGHTS = ("Solver produced non-finite parameter weights. The input data may "
                      "contain large values and need to be preprocessed.")


@dataclass
class DistributedRows:
    """Rows that workers elsewhere hold, as an estimator's ``fit`` takes them
    (fastbp.dask's are on a Dask cluster). The estimator sets its network up
    from the shapes and classes, calls ``place`` once, then, by its solver,
    ``weighted_sums`` (lbfgs) or ``run_round`` (minibatch epochs).

    Attributes
    ----------
    n_features, n_outputs, n_rows : int
        X's columns, the network's outputs and the rows of all workers.
    dtype : numpy.dtype
        The dtype of a new network (a warm start keeps the network's).
    binarizer : sklearn.preprocessing.LabelBinarizer or None
        A classifier's classes (fitted on all of y), None for a regressor.
    place : callable
        ``place(dtype, join) -> n_parts``: convert the rows for the kernels
        in ``dtype`` where they lie; ``join``: one part a worker (minibatch
        epochs shuffle all of a worker's rows).
    weighted_sums : callable
        ``weighted_sums(params, sizes, acts, loss_code)``: (Σw·data term,
        Σw·gradient, Σw) over all rows, as
        :func:`fastbp._objective.weighted_sums` gives them for one machine's.
    run_round : callable
        ``run_round(epoch, seed_base, batch_size) -> list``: the results of
        ``epoch(X, Y, sample_weight, seed, batch_size, n_threads)`` on each
        part (on a copy of ``epoch``, seeds ``seed_base + i``), each with the
        part's ``"rows"`` and ``"weight_sum"``.
    lost : tuple of exception types
        Errors that end a fit which cannot go on; lbfgs keeps its last
        finite point on them.
    """

    n_features: int
    n_outputs: int
    n_rows: int
    dtype: np.dtype
    binarizer: object
    place: Callable
    weighted_sums: Callable
    run_round: Callable
    lost: tuple = ()


class SolverDrivers:
    """lbfgs, minibatch epochs and averaged epochs on the estimator's network,
    optimiser state and stopping rule."""

    def _reset_optimizer(self) -> None:
        """A fresh optimiser state and no moving average (warm starts and
        partial_fit keep them)."""
        self._optimizer_state = None
        self._optimizer_solver = self.solver
        self._average = None

    def _weight_average(self):
        """The moving average of the weights this fit trains with (None
        without ``ema``), at the current ``ema``: the one of the calls before
        (partial_fit, a warm start), raw weights and all, while the network
        still holds its average; else a new one, from the network's weights
        (after a new network, a restored best epoch, weights set by hand)."""
        if self.ema is None:
            self._average = None
            return None
        average, params = getattr(self, "_average", None), self._net.params
        if average is None or not (average.raw is None or _holds(average, params)):
            average = self._average = WeightAverage(float(self.ema))
        average.decay = float(self.ema)
        return average

    def _optimizer(self):
        """The optimiser of this fit, from the current hyper-parameters,
        carrying the state of the previous ones."""
        optimizer = STOCHASTIC_SOLVERS[self.solver](self)
        if self._optimizer_state is not None:
            optimizer.adopt_state(self._net, self._optimizer_state)
        self._optimizer_state = optimizer.state(self._net)
        return optimizer

    def _stopping_rule(self) -> EarlyStopping:
        # scikit-learn's rule: n_iter_no_change + 1 epochs in a row not
        # better than the best by tol stop (or lower an adaptive rate)
        return EarlyStopping(patience=self.n_iter_no_change + 1, min_delta=self.tol,
                             monitor="val_score" if self.early_stopping else "loss_curve",
                             mode="max" if self.early_stopping else "min",
                             restore_best=self.early_stopping)

    def _adopt_stochastic_state(self) -> None:
        """The stopping rule of this fit. A warm start keeps the rule's count
        and best value but takes tol and n_iter_no_change afresh, as
        scikit-learn reads them in every fit. Where the estimator has no rule
        for this early_stopping setting (weights set by hand, a fit by lbfgs,
        early_stopping switched) the bookkeeping is set up as _initialize does."""
        stopping = getattr(self, "_stopping", None)
        if stopping is not None and stopping.restore_best == self.early_stopping:
            stopping.patience = self.n_iter_no_change + 1
            stopping.min_delta = self.tol
            return
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_ = []
        if self.early_stopping:
            self._start_validation_records()
            self.best_loss_ = None
        elif getattr(self, "best_loss_", None) is None:
            self.best_loss_ = np.inf
        self._stopping = self._stopping_rule()
        if self.early_stopping:
            self._stopping.best = -self.best_validation_score_
        else:
            self._stopping.best = self.best_loss_

    def _start_validation_records(self) -> None:
        """validation_data without early_stopping: its scores and losses are
        recorded all the same (the stopping rule watches the training loss)."""
        for name, value in (("validation_scores_", []), ("validation_loss_curve_", []),
                            ("best_validation_score_", -np.inf)):
            if getattr(self, name, None) is None:
                setattr(self, name, value)

    # -- lbfgs ---------------------------------------------------------------

    def _run_lbfgs(self, weighted_sums_at, keep_best_on=()) -> None:
        """scikit-learn's lbfgs: SciPy's L-BFGS-B over the network's flat
        parameters (:mod:`fastbp._lbfgs`, which fastbp.LBFGS runs too).
        ``weighted_sums_at(params, sizes, acts, loss_code)`` gives
        the data term's sums over all rows
        (:func:`fastbp._objective.weighted_sums`: one machine's rows, or
        tree-reduced over Dask workers). On an error of ``keep_best_on`` the
        network keeps the last parameters whose loss and gradient were
        finite, and ``loss_`` their loss."""
        net = self._net
        K = 1.0 / self._loss_scale()
        # l2 = alpha*K then /K: the data term is averaged over outputs, the
        # penalty is not, and the gradient is that of this very loss
        objective = LbfgsObjective(net, weighted_sums_at, self._loss_code(), self.alpha * K, K)

        def count_iteration(intermediate_result):
            self.n_iter_ += 1

        self.n_iter_ = 0
        try:
            result = minimize(objective, net.params, self.max_iter, self.max_fun, self.tol,
                              self.verbose, count_iteration)
        except keep_best_on:
            net.replace_params(objective.best_params, check_finite=False)
            self.loss_ = float(objective.best_loss)
            self._bind_weights()
            raise
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iterations: "
                          f"{result.message}. Increase max_iter or scale the data.",
                          ConvergenceWarning)
        self.n_iter_ = int(result.nit)
        self.loss_ = float(result.fun)
        net.replace_params(result.x, check_finite=False)  # fit refuses non-finite weights
        self._bind_weights()

    def _fit_lbfgs(self, X, y, sample_weight):
        work = workspace_for(self._net.kernel_layout[0], X.shape[0], self._net.dtype)
        # one batch of all rows: fastbp's own threads only split minibatches
        with training_threads(self._net.sizes, X.shape[0], self.n_threads, per_sample=True):
            # Ctrl-C keeps the last finite point tried, not the starting weights
            self._run_lbfgs(lambda params, sizes, acts, code: weighted_sums(
                X, y, sample_weight, params, sizes, acts, code, work),
                keep_best_on=(KeyboardInterrupt,))

    # -- minibatch epochs ----------------------------------------------------

    def _fit_stochastic(self, X, y, y_raw, sample_weight, incremental, validation_data=None):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        validation = None
        if validation_data is not None:  # no rows held out of X
            validation = self._given_validation(validation_data, self._net.dtype)
            self._start_validation_records()
        elif self.early_stopping:
            X, y, sample_weight, validation = self._validation_split(X, y, sample_weight)
        n = X.shape[0]
        batch_size = self._resolved_batch_size(n)
        loop = TrainingLoop(self._net, X, y, sample_weight, self._loss_code(), self.alpha,
                            self._optimizer(), batch_size, self.n_threads,
                            self._shuffled_orders(n) if self.shuffle else None,
                            dropout_seed=self._dropout_seed(), clip_norm=self.clip_norm,
                            average=self._weight_average())
        bookkeeping = self._bookkeeping(lambda: n, validation)
        epochs = 1 if incremental else self.max_iter
        self._train_epochs(lambda: loop.run(epochs, [bookkeeping], self._stopping),
                           lambda: loop.stopped, incremental, lambda: n)

    def _train_epochs(self, run, stopped, incremental: bool, rows) -> None:
        """Call ``run()`` (the epochs of a stochastic fit, which return their
        history) with scikit-learn's handling of divergence, interrupts and
        non-convergence. ``stopped()``: whether the stopping rule ended it;
        ``rows()``: the rows of an epoch."""
        # as scikit-learn: n_iter_ counts the epochs of this call (1 for
        # partial_fit); t_, loss_curve_ and the optimiser state carry over
        self.n_iter_ = 0
        try:
            history = run()
        except TrainingDiverged as exc:
            if not self.early_stopping:
                # scikit-learn's message first; the weights are those before the
                # epoch that diverged (scikit-learn leaves NaN weights)
                raise TrainingDiverged(f"{NON_FINITE_WEIGHTS} fastbp: {exc}",
                                       exc.history) from exc
            self._stop_diverged(rows())
            return
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
            return
        if not incremental and len(history["loss"]) == self.max_iter and not stopped():
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                          "reached and the optimization hasn't converged yet.",
                          ConvergenceWarning)
        if self.verbose and stopped():
            what = "Validation score" if self.early_stopping else "Training loss"
            print(f"{what} did not improve more than tol={self.tol:f} for "
                  f"{self.n_iter_no_change} consecutive epochs. Stopping.")

    def _stop_diverged(self, n):
        """End a fit with early stopping whose loss became non-finite.

        scikit-learn goes on training NaN weights until max_iter, recording
        NaN losses and validation scores, and at the end restores the weights
        of the best validation score. The epoch that diverged is recorded the
        same way here, but training stops there: NaN weights never recover.
        """
        self.n_iter_ += 1
        self.t_ += n
        self.loss_ = np.nan
        self.loss_curve_.append(self.loss_)
        self.validation_scores_.append(np.nan)
        self._stopping.restore(self._net)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = nan")
        warnings.warn(f"The loss became non-finite in iteration {self.n_iter_}: training "
                      "stopped with the weights of the best validation score. Scale the data "
                      "or lower learning_rate_init.", ConvergenceWarning)

    def _shuffled_orders(self, n):
        """Row orders drawn as scikit-learn's utils.shuffle of the previous
        order, draw for draw."""
        sample_idx = np.arange(n, dtype=np.intp)

        def next_order():
            nonlocal sample_idx
            permutation = np.arange(n)
            self._random_state.shuffle(permutation)
            sample_idx = sample_idx[permutation]
            return sample_idx
        return next_order

    # -- averaged epochs (fastbp.dask's workers) ------------------------------

    def _local_epoch(self, X, Y, sample_weight, seed: int, batch_size: int, n_threads) -> dict:
        """One epoch of the minibatch loop from this estimator's state, shuffled
        with ``RandomState(seed)``: fastbp.dask's task on a worker's rows.

        The steps are the local fit's: with ``dropout`` its masks are seeded
        by a draw from ``RandomState(seed)`` (so ``random_state`` and the
        parts fix them), ``clip_norm`` clips each minibatch's gradient, and
        with ``ema`` the raw weights and their average carry on from the
        round before (the estimator's, as the driver averaged them).

        Returns the new weights (with ``ema``: the raw ones, their average
        under "ema" and its step count under "ema_steps") and optimiser
        buffers, the step count and the epoch's row-averaged data and penalty
        terms, or the message of a diverged loss under "diverged".
        """
        self._random_state = np.random.RandomState(seed)
        dropout_seed = self._dropout_seed()  # draws nothing without dropout
        optimizer = self._optimizer()
        state = self._optimizer_state
        average = self._weight_average()
        order = self._shuffled_orders(X.shape[0]) if self.shuffle else None
        loop = TrainingLoop(self._net, X, Y, sample_weight, self._loss_code(), self.alpha,
                            optimizer, batch_size, n_threads, order, dropout_seed=dropout_seed,
                            clip_norm=self.clip_norm, average=average)
        try:
            history = loop.run(1)
        except TrainingDiverged as exc:  # its history argument does not survive pickling
            return {"diverged": str(exc)}
        result = {"params": self._net.params, "buffers": dict(state.buffers),
                  "step_count": int(state.step_count), "data_loss": history["data_loss"][-1],
                  "penalty": history["penalty"][-1]}
        if average is not None:  # the network holds the average: the raw weights apart
            result.update(params=average.raw, ema=average.ema, ema_steps=average.steps)
        return result

    def _run_averaged_epochs(self, run_round, n_rows: int, n_parts: int) -> None:
        """Minibatch epochs averaged over parts of the rows (fastbp.dask's
        workers), run by a :class:`fastbp._session.Session` with scikit-learn's
        bookkeeping and stopping rule. Each round, ``run_round(epoch,
        seed_base, batch_size)`` gives the results of ``epoch`` (this
        estimator's :meth:`_local_epoch`, bound to it as it stands: a copy
        trains on each part) on every part, with the seeds ``seed_base + i``;
        :meth:`_averaged_epoch` averages them into this estimator."""
        batch_size = self._resolved_batch_size(n_rows)
        seeds = self._random_state

        def one_round(session, epoch: int) -> EpochReport:
            started = time.perf_counter()
            results = run_round(self._local_epoch, int(seeds.randint(0, 2**31 - n_parts)),
                                batch_size)
            diverged = [r["diverged"] for r in results if "diverged" in r]
            if diverged:
                raise ValueError(
                    f"the loss became non-finite in iteration {self.n_iter_ + 1}: solver "
                    f"produced non-finite values ({diverged[0]}). The estimator keeps the "
                    "weights of the previous iteration.")
            return self._averaged_epoch(session, epoch, results, n_rows,
                                        time.perf_counter() - started)

        self._weight_average()  # kept, or a new one the first round starts
        session = Session(self._net, self._optimizer(),
                          [self._bookkeeping(lambda: n_rows)], self._stopping)
        try:
            history = session.run(_Rounds(one_round), self.max_iter)
        finally:
            self._bind_weights()  # the session published new parameter arrays
        if len(history["loss"]) == self.max_iter and not session.stopped:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                          "reached and the optimization hasn't converged yet.", ConvergenceWarning)

    def _averaged_epoch(self, session, epoch: int, results: list, n_rows: int,
                        seconds: float) -> EpochReport:
        """A round of :meth:`_local_epoch` results as one epoch of the session:
        their weights and optimiser buffers averaged by the parts' row
        weights, their data and penalty terms summed for the history.

        With ``ema`` the raw weights and the workers' moving averages are
        averaged apart, and the network holds the averaged average. The
        average is linear in the weights, so where the parts take as many
        steps, this is the moving average, step by step, of the parts' mean
        weights."""
        state, dtype = session.state, self._net.dtype
        with np.errstate(over="ignore"):  # beyond float32: the fit's non-finite check says so
            params = _weighted_mean([r["params"] for r in results], results).astype(dtype)
            if self._average is not None:
                average = self._average
                average.raw = params
                average.ema = _weighted_mean([r["ema"] for r in results], results).astype(dtype)
                average.steps = max(r["ema_steps"] for r in results)
                params = average.weights()
        session.publish(params)
        for name, buffer in state.buffers.items():
            buffer[...] = _weighted_mean([r["buffers"][name] for r in results], results)
        state.step_count = max(r["step_count"] for r in results)
        return EpochReport(epoch, (sum(r["data_loss"] * r["weight_sum"] for r in results),),
                           (sum(r["penalty"] * r["weight_sum"] for r in results),), rows=n_rows,
                           lr=state.lr, seconds=seconds,
                           weight=sum(r["weight_sum"] for r in results))


class _Rounds:
    """A :class:`fastbp._session.Session`'s source whose every epoch is one
    call of ``one_round(session, epoch) -> EpochReport``."""

    def __init__(self, one_round):
        self.one_round = one_round

    def running(self, session, epochs: int):
        return contextlib.nullcontext()

    def train(self, session, epoch: int, count: int) -> EpochReport:
        return self.one_round(session, epoch)

    def interrupted(self, session, epoch: int) -> str:
        return f"fit stopped in iteration {epoch + 1}, after the round of the workers' epochs"


def _holds(average: WeightAverage, params: np.ndarray) -> bool:
    """Whether ``params`` are the weights ``average`` last gave the network."""
    held = average.ema if average.steps else average.raw
    return held.dtype == params.dtype and np.array_equal(held, params)


def _weighted_mean(arrays: list, results: list) -> np.ndarray:
    """The mean of ``arrays`` weighted by each result's "weight_sum", in float64."""
    total = sum(r["weight_sum"] for r in results)
    mean = np.zeros(arrays[0].shape, np.float64)
    for array, result in zip(arrays, results):
        mean += array * (result["weight_sum"] / total)
    return mean
