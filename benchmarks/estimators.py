"""The scikit-learn estimators: MLPClassifier fit and predict_proba on the digits.

The float32 runs pass float32 data, which the estimators train and predict in.
"""
import warnings

from sklearn.exceptions import ConvergenceWarning

from fastbp import MLPClassifier

from .common import DTYPES, THREADS, digits

#: a fixed number of epochs: tol=0 and n_iter_no_change=max_iter never stop
#: early, so every commit does the same work (and warns that it did not converge)
EPOCHS = 20


def classifier(n_threads, max_iter=EPOCHS):
    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=max_iter, tol=0.0,
                         n_iter_no_change=max_iter, random_state=0, n_threads=n_threads)


class MLPClassifierFit:
    """Adam (scikit-learn's default), batch 200, one hidden layer of 64, 20 epochs."""

    params = (DTYPES, THREADS)
    param_names = ["dtype", "n_threads"]

    def setup(self, dtype, n_threads):
        self.X, self.y = digits(dtype)
        warnings.simplefilter("ignore", ConvergenceWarning)

    def time_fit(self, dtype, n_threads):
        classifier(n_threads).fit(self.X, self.y)

    def track_loss(self, dtype, n_threads):
        return classifier(n_threads).fit(self.X, self.y).loss_

    track_loss.unit = "log-loss"


class MLPClassifierPredictProba:
    params = (DTYPES, THREADS)
    param_names = ["dtype", "n_threads"]

    def setup(self, dtype, n_threads):
        self.X, y = digits(dtype)
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the speed of predict_proba does not depend on how well the model fits
        self.model = classifier(n_threads, max_iter=2).fit(self.X, y)

    def time_predict_proba(self, dtype, n_threads):
        self.model.predict_proba(self.X)
