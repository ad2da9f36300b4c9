"""Temporary: the Trainer API over train_rows until the compiled Trainer lands."""
import numpy as np

from . import _kernels
from ._runtime import aligned_empty


class Trainer:
    def __init__(self, sizes, acts, loss, l2, batch_size, n_threads=1):
        self.sizes, self.acts, self.loss, self.l2 = sizes, acts, loss, l2
        self.batch_size, self.n_threads = batch_size, n_threads
        self.order = np.empty(0, np.intp)
        self.step_count = 0

    def set_params(self, params):
        self.params = params
        self.grad = aligned_empty(params.size, params.dtype)
        self.work = aligned_empty(_kernels.workspace_size(self.sizes, self.batch_size,
                                                          self.n_threads), params.dtype)

    def set_data(self, X, T, sample_weight=None):
        self.X, self.T = X, T
        self.sw = sample_weight if sample_weight is not None else np.empty(0, X.dtype)

    def set_order(self, order):
        self.order = order if order is not None else np.empty(0, np.intp)

    def set_sgd(self, lr, momentum=0.0, nesterov=False, velocity=None):
        self.kind, self.lr, self.momentum, self.nesterov = 0, lr, momentum, nesterov
        self.state1 = velocity if velocity is not None else np.empty(1, self.params.dtype)
        self.state2 = np.empty(0, self.params.dtype)
        self.beta2 = self.epsilon = 0.0

    def set_adam(self, lr, beta1, beta2, epsilon, first, second, step_count=0,
                 torch_epsilon=False):
        self.kind, self.lr, self.momentum, self.nesterov = 1, lr, beta1, False
        self.state1, self.state2, self.beta2, self.epsilon = first, second, beta2, epsilon
        self.step_count = step_count

    def run(self, start, stop):
        status, data, penalty, rows, self.step_count = _kernels.train_rows(
            self.X, self.T, self.sw, self.order, start, stop, self.batch_size, self.params,
            self.grad, self.state1, self.state2, self.sizes, self.acts, self.loss, self.l2,
            self.kind, self.lr, self.momentum, self.nesterov, self.beta2, self.epsilon,
            self.step_count, self.work, self.n_threads)
        return status, data, penalty, rows
