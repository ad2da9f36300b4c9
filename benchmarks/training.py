"""Network.fit: per-sample SGD (ten epochs) and minibatch SGD (one epoch).

Each timed call trains a fresh network (asv re-runs ``setup`` before every
call), so every call does the same work from the same weights. The
``track_loss`` benchmarks record the last epoch's mean loss: a commit that skips
updates, or rows, changes it even when it looks faster.
"""
import fastbp

from .common import DTYPES, THREADS, digits, teacher_rows


class PerSampleSGD:
    """batch_size=1 on the digits, 64-32-10 (sigmoid, softmax), plain SGD(lr=0.1).

    Ten epochs (17 970 updates, ~16 ms here): one epoch takes under 2 ms,
    where the fixed cost of a fit call and the machine's noise weigh too much.
    """

    params = (DTYPES, THREADS)
    param_names = ["dtype", "n_threads"]

    def setup(self, dtype, n_threads):
        self.X, self.y = digits(dtype)
        self.net = fastbp.Network([64, 32, 10], activation="sigmoid",
                                  output_activation="softmax", dtype=dtype, seed=0)

    def _fit(self, n_threads) -> dict:
        return self.net.fit(self.X, self.y, loss="cross_entropy", optimizer=fastbp.SGD(lr=0.1),
                            epochs=10, batch_size=1, seed=0, n_threads=n_threads)

    def time_ten_epochs(self, dtype, n_threads):
        self._fit(n_threads)

    def track_loss(self, dtype, n_threads):
        return self._fit(n_threads)["loss"][-1]

    track_loss.unit = "cross-entropy"


class Minibatch:
    """Batches of 32 and 128, 784-256-128-10 (ReLU, softmax), 4096 rows, SGD(lr=0.1).

    One epoch takes about 0.06-0.3 s on one core of a 2-core Xeon.
    """

    params = (DTYPES, [32, 128], THREADS)
    param_names = ["dtype", "batch_size", "n_threads"]

    def setup(self, dtype, batch_size, n_threads):
        self.X, self.y = teacher_rows(4096, 784, 10, dtype)
        self.net = fastbp.Network([784, 256, 128, 10], activation="relu",
                                  output_activation="softmax", dtype=dtype, seed=0)

    def _epoch(self, batch_size, n_threads) -> dict:
        return self.net.fit(self.X, self.y, loss="cross_entropy", optimizer=fastbp.SGD(lr=0.1),
                            epochs=1, batch_size=batch_size, seed=0, n_threads=n_threads)

    def time_epoch(self, dtype, batch_size, n_threads):
        self._epoch(batch_size, n_threads)

    def track_loss(self, dtype, batch_size, n_threads):
        return self._epoch(batch_size, n_threads)["loss"][0]

    track_loss.unit = "cross-entropy"
