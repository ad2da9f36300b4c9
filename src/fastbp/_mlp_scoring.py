"""The estimators' outputs: the kernel loss their outputs pair with,
prediction through the network, early stopping's validation score and the
fitted attributes each epoch records (scikit-learn's ``loss_curve_``,
``validation_scores_``, ...)."""
from __future__ import annotations

import numpy as np

from ._mlp_params import ACTIVATION_NAMES
from .losses import KERNEL_LOSSES, LOSS_FOR_OUTPUT, LOSSES


class MLPScoring:
    """Losses, outputs and scores of a fitted estimator."""

    def _loss_code(self) -> int:
        if self.out_activation_ == "exp":  # the log link: poisson on the identity output
            return KERNEL_LOSSES["poisson"]
        output = ACTIVATION_NAMES.get(self.out_activation_, self.out_activation_)
        return LOSSES[LOSS_FOR_OUTPUT.get(output, "mse")]

    def _loss_scale(self) -> float:
        # scikit-learn's squared error is also averaged over the outputs (its
        # poisson deviance, like the log-losses, is summed over them)
        return 1.0 / self.n_outputs_ if self.out_activation_ == "identity" else 1.0

    def _forward(self, X, check_input: bool = True) -> np.ndarray:
        """The output layer's values; X unchecked without ``check_input``."""
        net = self._network()
        if check_input:
            X = self._checked_X(X)
        outputs = net.predict(X, n_threads=self.n_threads)
        return np.exp(outputs, out=outputs) if self.out_activation_ == "exp" else outputs

    def _validation_score(self, X, y, sample_weight) -> float:
        """The score on early stopping's split, NaN where the outputs are not
        finite (as scikit-learn). X is the validated split: checking it
        again would warn about feature names once per epoch."""
        outputs = self._forward(X, check_input=False)
        if not np.isfinite(outputs).all():
            return np.nan
        return float(self._score_function(y, self._outputs_to_predictions(outputs),
                                          sample_weight=sample_weight))

    def _bookkeeping(self, rows, X_val, y_val, sw_val):
        """The epoch callback: scikit-learn's fitted attributes, the value
        the stopping rule watches, and the verbose lines. ``rows()``: the
        rows of the epoch."""
        scale = self._loss_scale()

        def after_epoch(epoch, history, network):
            self.n_iter_ += 1
            self.t_ += rows()
            self.loss_ = history["data_loss"][-1] * scale + history["penalty"][-1]
            self.loss_curve_.append(self.loss_)
            history.setdefault("loss_curve", []).append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f (%.3f s)"
                      % (self.n_iter_, self.loss_, history["seconds"][-1]))
            if X_val is None:
                self.best_loss_ = min(self.best_loss_, self.loss_)
                return False
            score = self._validation_score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            history.setdefault("val_score", []).append(score)
            self.best_validation_score_ = max(self.best_validation_score_, score)
            if self.verbose:
                print("Validation score: %f" % score)
            return False
        return after_epoch
