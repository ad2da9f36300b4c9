"""The estimators' outputs: the kernel loss their outputs pair with,
prediction through the network, early stopping's validation score and the
fitted attributes each epoch records (scikit-learn's ``loss_curve_``,
``validation_scores_``, ``validation_loss_curve_``, ...)."""
from __future__ import annotations

import numpy as np

from ._mlp_params import ACTIVATION_NAMES
from ._objective import OBJECTIVE_CHUNK_ROWS, mean_loss, weighted_sums
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

    def _validation_loss(self, validation, penalty: float) -> float:
        """The loss of ``loss_curve_`` on the validation rows: their data
        term, scaled as the training loss's, plus the same L2 term."""
        net, code = self._net, self._loss_code()
        if validation.sample_weight is None:
            data = mean_loss(validation.X, validation.Y, net.params, *net.kernel_layout, code,
                             0.0, OBJECTIVE_CHUNK_ROWS)
        else:
            data_sum, _, weight_sum = weighted_sums(validation.X, validation.Y,
                                                    validation.sample_weight, net.params,
                                                    *net.kernel_layout, code)
            data = data_sum / weight_sum if weight_sum > 0 else np.nan
        return float(data * self._loss_scale() + penalty)

    def _bookkeeping(self, rows, validation=None):
        """The epoch callback: scikit-learn's fitted attributes, the value
        the stopping rule watches, and the verbose lines. ``rows()``: the
        rows of the epoch; ``validation``: the
        :class:`~fastbp._mlp_inputs.ValidationRows` scored after each epoch."""
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
            if validation is None or not self.early_stopping:
                self.best_loss_ = min(self.best_loss_, self.loss_)
            if validation is None:
                return False
            score = self._validation_score(validation.X, validation.y, validation.sample_weight)
            self.validation_scores_.append(score)
            history.setdefault("val_score", []).append(score)
            val_loss = (self._validation_loss(validation, history["penalty"][-1])
                        if np.isfinite(score) else np.nan)
            self.validation_loss_curve_.append(val_loss)
            history.setdefault("val_loss_curve", []).append(val_loss)
            self.best_validation_score_ = max(self.best_validation_score_, score)
            if self.verbose:
                print("Validation score: %f" % score)
            return False
        return after_epoch
