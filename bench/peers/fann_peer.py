"""FANN 2.2 through ctypes: ``libfann`` (float32) and ``libdoublefann`` (float64).

FANN trains per sample only here (``FANN_TRAIN_INCREMENTAL``: one
``fann_train`` per row, run by ``fann_train_epoch``), so it enters the batch-1
cases only. How it is set up to do the benchmark's math, from its sources
(src/fann_train.c, src/include/fann_activation.h of libfann/fann):

- ``FANN_SIGMOID`` is y = 1/(1 + exp(−2·s·x)) with steepness s, and its
  derivative is 2·s·y(1 − y). The logistic function is therefore s = 0.5,
  which is FANN's default; the steepness is still set explicitly.
- ``fann_set_train_error_function(FANN_ERRORFUNC_LINEAR)``: the default
  (tanh) error function replaces y − t by log((1 + d)/(1 − d)).
- The incremental update is W += lr·δ·z with δ_out = f'·(t − y), i.e. SGD on
  ½Σ(y − t)² per sample: the batch-1 mse of fastbp. ``learning_momentum = 0``.
- Deviation that cannot be switched off: ``fann_activation_derived`` clips y
  to [0.01f, 0.99f] before y(1 − y). Saturated neurons thus keep a slope of
  at least 0.0099. The same-work check is against NumPy running that same
  clipped rule (``MATH = "mse-fann-clip"``), to the usual tolerances; how far
  the result moves from the unclipped rule is reported alongside.
- ``learning_rate`` is a C float in both libraries: use a learning rate that
  float32 holds exactly (the benchmark uses powers of two).

Weights are read and written through ``struct fann``'s ``weights`` pointer
(the public ``fann_set_weight`` searches every connection per call, so a full
reset would be quadratic). The struct layout is FANN 2.2's ``fann_data.h``;
it is verified against ``fann_get_connection_array`` when a network is built.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from . import train_with

NAME = "fann"
MATH = "mse-fann-clip"
max_rows = None

FANN_SIGMOID = 3
FANN_TRAIN_INCREMENTAL = 0
FANN_ERRORFUNC_LINEAR = 0
#: FANN's sigmoid is 1/(1 + exp(−2·s·x)): s = 0.5 is the logistic function
LOGISTIC_STEEPNESS = 0.5

LIBRARIES = {"float32": ("fann", "libfann.so.2"), "float64": ("doublefann", "libdoublefann.so.2")}


def _connection_type(c_type):
    """``struct fann_connection`` (fann_data.h) for one fann_type."""
    return type(f"Connection_{c_type.__name__}", (ctypes.Structure,), {
        "_fields_": [("from_neuron", ctypes.c_uint), ("to_neuron", ctypes.c_uint),
                     ("weight", c_type)]})


def _struct_prefix_type(c_type):
    """The leading fields of ``struct fann`` (FANN 2.2, fann_data.h), up to ``weights``."""
    return type(f"FannPrefix_{c_type.__name__}", (ctypes.Structure,), {
        "_fields_": [
            ("errno_f", ctypes.c_int), ("error_log", ctypes.c_void_p),
            ("errstr", ctypes.c_char_p), ("learning_rate", ctypes.c_float),
            ("learning_momentum", ctypes.c_float), ("connection_rate", ctypes.c_float),
            ("network_type", ctypes.c_int), ("first_layer", ctypes.c_void_p),
            ("last_layer", ctypes.c_void_p), ("total_neurons", ctypes.c_uint),
            ("num_input", ctypes.c_uint), ("num_output", ctypes.c_uint),
            ("weights", ctypes.POINTER(c_type)),
        ]})


def _train_data_type(c_type):
    """``struct fann_train_data`` (fann_train.h)."""
    row = ctypes.POINTER(c_type)
    return type(f"TrainData_{c_type.__name__}", (ctypes.Structure,), {
        "_fields_": [
            ("errno_f", ctypes.c_int), ("error_log", ctypes.c_void_p),
            ("errstr", ctypes.c_char_p), ("num_data", ctypes.c_uint),
            ("num_input", ctypes.c_uint), ("num_output", ctypes.c_uint),
            ("input", ctypes.POINTER(row)), ("output", ctypes.POINTER(row)),
        ]})


class FannLibrary:
    """One of FANN's libraries with the argument types of the calls used here.

    Parameters
    ----------
    dtype : {"float32", "float64"}
        Selects libfann (fann_type = float) or libdoublefann (double).
    """

    def __init__(self, dtype):
        name, soname = LIBRARIES[np.dtype(dtype).name]
        path = ctypes.util.find_library(name) or soname
        self.lib = ctypes.CDLL(path)
        self.path = path
        self.c_type = ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double
        self.Connection = _connection_type(self.c_type)
        self.Prefix = _struct_prefix_type(self.c_type)
        self.TrainData = _train_data_type(self.c_type)
        ann, uint, fann_type = ctypes.c_void_p, ctypes.c_uint, self.c_type
        signatures = {
            "fann_create_standard_array": (ann, [uint, ctypes.POINTER(uint)]),
            "fann_destroy": (None, [ann]),
            "fann_set_activation_function_hidden": (None, [ann, ctypes.c_int]),
            "fann_set_activation_function_output": (None, [ann, ctypes.c_int]),
            "fann_set_activation_steepness_hidden": (None, [ann, fann_type]),
            "fann_set_activation_steepness_output": (None, [ann, fann_type]),
            "fann_set_training_algorithm": (None, [ann, ctypes.c_int]),
            "fann_set_train_error_function": (None, [ann, ctypes.c_int]),
            "fann_set_learning_rate": (None, [ann, ctypes.c_float]),
            "fann_get_learning_rate": (ctypes.c_float, [ann]),
            "fann_set_learning_momentum": (None, [ann, ctypes.c_float]),
            "fann_get_total_connections": (uint, [ann]),
            "fann_get_connection_array": (None, [ann, ctypes.POINTER(self.Connection)]),
            "fann_train_epoch": (ctypes.c_float, [ann, ctypes.POINTER(self.TrainData)]),
            "fann_train_on_data": (None, [ann, ctypes.POINTER(self.TrainData), uint, uint,
                                          ctypes.c_float]),
        }
        for function, (restype, argtypes) in signatures.items():
            getattr(self.lib, function).restype = restype
            getattr(self.lib, function).argtypes = argtypes


@functools.lru_cache(maxsize=None)
def fann_library(dtype):
    """The :class:`FannLibrary` of ``dtype``, loaded once."""
    return FannLibrary(np.dtype(dtype).name)


def availability():
    """``None`` when both FANN libraries load, else the reason."""
    try:
        for dtype in LIBRARIES:
            fann_library(dtype)
    except OSError as error:
        return f"libfann is not installed ({error}); apt-get install libfann-dev"
    return None


def version():
    """The Debian package version of libfann, else the library paths."""
    import subprocess
    try:
        found = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libfann2"],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        found = ""
    paths = ", ".join(fann_library(dtype).path for dtype in LIBRARIES)
    return f"{found or 'unknown'} ({paths})"


def limitation(sizes, n_rows, batch_size, dtype):
    """Why a case is out of scope (FANN trains per sample only), or ``None``."""
    if batch_size != 1:
        return "FANN's incremental training is per sample: batch 1 only"
    return None


class Trainer:
    """FANN incremental (per-sample) training; see :class:`peers.numpy_peer.Trainer`.

    ``batch_size`` must be 1.
    """

    def __init__(self, X, Y, sizes, batch_size, lr, dtype):
        if batch_size != 1:
            raise ValueError("FANN trains per sample: batch_size must be 1")
        self.fann = fann_library(dtype)
        self.sizes = tuple(sizes)
        if float(np.float32(lr)) != float(lr):
            raise ValueError(f"lr={lr} would be rounded by FANN's float learning rate; "
                             "use one that float32 holds exactly")
        lib = self.fann.lib
        layer_sizes = (ctypes.c_uint * len(sizes))(*sizes)
        self.ann = ctypes.c_void_p(lib.fann_create_standard_array(len(sizes), layer_sizes))
        if not self.ann:
            raise RuntimeError("fann_create_standard_array failed")
        lib.fann_set_activation_function_hidden(self.ann, FANN_SIGMOID)
        lib.fann_set_activation_function_output(self.ann, FANN_SIGMOID)
        lib.fann_set_activation_steepness_hidden(self.ann, LOGISTIC_STEEPNESS)
        lib.fann_set_activation_steepness_output(self.ann, LOGISTIC_STEEPNESS)
        lib.fann_set_training_algorithm(self.ann, FANN_TRAIN_INCREMENTAL)
        lib.fann_set_train_error_function(self.ann, FANN_ERRORFUNC_LINEAR)
        lib.fann_set_learning_rate(self.ann, float(lr))
        lib.fann_set_learning_momentum(self.ann, 0.0)
        self._map_connections()
        self._make_train_data(X, Y, dtype)

    def __del__(self):
        ann = getattr(self, "ann", None)
        if ann:
            self.fann.lib.fann_destroy(ann)
            self.ann = None

    def _map_connections(self):
        """Find where each weight and bias sits in FANN's flat weight array.

        Neurons are numbered over all layers, each layer followed by its bias
        neuron (value 1); connection k feeds ``to_neuron`` from ``from_neuron``.
        """
        lib = self.fann.lib
        n_connections = lib.fann_get_total_connections(self.ann)
        connections = (self.fann.Connection * n_connections)()
        lib.fann_get_connection_array(self.ann, connections)
        table = np.ctypeslib.as_array(connections)  # fields from_neuron, to_neuron, weight
        first_neuron = np.cumsum([0] + [n + 1 for n in self.sizes])  # +1: the bias neuron
        source = table["from_neuron"].astype(np.int64)
        layer = np.searchsorted(first_neuron, source, side="right") - 1
        source -= first_neuron[layer]
        target = table["to_neuron"].astype(np.int64) - first_neuron[layer + 1]
        is_bias = source == np.asarray(self.sizes)[layer]
        connection = np.arange(n_connections)
        self.weight_index, self.bias_index = [], []
        for l, (n_in, n_out) in enumerate(zip(self.sizes, self.sizes[1:])):
            weight_index, bias_index = np.full((n_in, n_out), -1), np.full(n_out, -1)
            in_layer = layer == l
            weights, biases = in_layer & ~is_bias, in_layer & is_bias
            weight_index[source[weights], target[weights]] = connection[weights]
            bias_index[target[biases]] = connection[biases]
            self.weight_index.append(weight_index)
            self.bias_index.append(bias_index)
        if n_connections != sum((n_in + 1) * n_out for n_in, n_out in
                                zip(self.sizes, self.sizes[1:])) \
                or any((index < 0).any() for index in self.weight_index + self.bias_index):
            raise RuntimeError("FANN's connections do not form a dense layered network")

        # the weights pointer of struct fann: check that it holds what FANN reports
        prefix = ctypes.cast(self.ann, ctypes.POINTER(self.fann.Prefix)).contents
        if (prefix.num_input, prefix.num_output) != (self.sizes[0], self.sizes[-1]) \
                or prefix.learning_rate != lib.fann_get_learning_rate(self.ann):
            raise RuntimeError("struct fann does not have the FANN 2.2 layout")
        self.flat_weights = np.ctypeslib.as_array(prefix.weights, shape=(n_connections,))
        if not np.array_equal(self.flat_weights, table["weight"]):
            raise RuntimeError("struct fann's weights do not match fann_get_connection_array")

    def _make_train_data(self, X, Y, dtype):
        """A ``struct fann_train_data`` whose rows point into NumPy arrays kept here."""
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.Y = np.ascontiguousarray(Y, dtype=dtype)
        row_pointer = ctypes.POINTER(self.fann.c_type)
        n = self.X.shape[0]
        self._input_rows = (row_pointer * n)(*[
            ctypes.cast(self.X.ctypes.data + i * self.X.strides[0], row_pointer) for i in range(n)])
        self._output_rows = (row_pointer * n)(*[
            ctypes.cast(self.Y.ctypes.data + i * self.Y.strides[0], row_pointer) for i in range(n)])
        self.train_data = self.fann.TrainData(
            num_data=n, num_input=self.X.shape[1], num_output=self.Y.shape[1],
            input=self._input_rows, output=self._output_rows)

    def load(self, weights, biases):
        """Write ``weights`` and ``biases`` into FANN's weight array (untimed)."""
        for W, b, W_index, b_index in zip(weights, biases, self.weight_index, self.bias_index):
            self.flat_weights[W_index] = W
            self.flat_weights[b_index] = b

    def epoch(self, epochs=1):
        """Train ``epochs`` passes over the rows, one update per row (the timed
        part); several epochs run in FANN's own loop (``fann_train_on_data``,
        no reports, never stopping early), not one ctypes call an epoch."""
        if epochs == 1:
            self.fann.lib.fann_train_epoch(self.ann, ctypes.byref(self.train_data))
        elif epochs > 1:
            self.fann.lib.fann_train_on_data(self.ann, ctypes.byref(self.train_data), epochs, 0,
                                             -1.0)

    def parameters(self):
        """Copies of the current (weights, biases) in fastbp's layout."""
        return ([self.flat_weights[index].copy() for index in self.weight_index],
                [self.flat_weights[index].copy() for index in self.bias_index])


def train(X, Y, weights, biases, batch_size, lr, dtype, epochs=1):
    """Train with FANN's incremental backpropagation (batch 1, sigmoid layers).

    Parameters and return value as in :func:`peers.train_with`.

    ``batch_size`` must be 1 and ``lr`` exact in float32.
    """
    return train_with(Trainer, X, Y, weights, biases, batch_size, lr, dtype, epochs)
