"""Network.predict on 10 000 rows, 784-128-10 (ReLU, softmax)."""
import fastbp

from .common import DTYPES, THREADS, teacher_rows


class Predict:
    params = (DTYPES, THREADS)
    param_names = ["dtype", "n_threads"]

    def setup(self, dtype, n_threads):
        self.X, _ = teacher_rows(10_000, 784, 10, dtype)
        self.net = fastbp.Network([784, 128, 10], activation="relu",
                                  output_activation="softmax", dtype=dtype, seed=0)

    def time_predict(self, dtype, n_threads):
        self.net.predict(self.X, n_threads=n_threads)
