"""Where a float32 predict's time goes when BLAS does the products (issue #29).

    python tools/predict_gemm_rate.py [rounds]        # default 5; needs onnxruntime

On 784-128-10 relu/softmax, 10 000 rows, one thread unless named: the first
layer's product (X . W_0 + b_0, 98.7% of the FLOPs) by OpenBLAS as fastbp
calls it (scipy.linalg.cython_blas's sgemm, here through scipy.linalg.blas)
in 256-row blocks (predict's blocks on 2 threads), in 1024-row blocks and in
one call (predict on 1 thread takes 4096-row chunks whole), against
onnxruntime's MatMul + Add (MLAS, W packed once when the session loads), in
one call and in 256-row calls; then the whole predict of each on 1 and 2
threads. Rounds are interleaved (A B C ... A B C); medians of the rounds, each
the median of 7 calls, in µs a row and GFLOP/s.

OpenBLAS packs W (sgemm_itcopy) and X (sgemm_oncopy) on every call; on a
256-row block the packing of W alone was 7% of a 2-thread predict's samples
(perf record), which larger blocks would amortise, but OpenBLAS's results
depend on where a block starts (its kernel's rows come in groups of 12 here),
so any other block size changes predict's bits.
"""
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

import fastbp

ROWS = 10_000
SIZES = [784, 128, 10]


def openblas_first_layer(X, W, b, block):
    """X . W + b in blocks of ``block`` rows, as predict's threads call sgemm:
    C^T = W^T X^T in Fortran order, C starting from the bias (beta 1)."""
    def run():
        out = np.empty((X.shape[0], W.shape[1]), np.float32)
        for r0 in range(0, X.shape[0], block):
            c = out[r0:r0 + block]
            c[...] = b
            blas.sgemm(1.0, W.T, X[r0:r0 + block].T, beta=1.0, c=c.T, overwrite_c=True)
        return out
    return run


def sessions(W, b, W2, b2):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from predict import onnx_graph

    def session(model, threads):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])
    layer = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["Y"])],
        "layer", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, SIZES[0]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, SIZES[1]])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")]),
        opset_imports=[helper.make_opsetid("", 17)])
    full = onnx_graph([W, W2], [b, b2], "float32")
    return session(layer, 1), session(full, 1), session(full, 2)


def main(rounds):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, SIZES[0])).astype(np.float32)
    net = fastbp.Network(SIZES, activation="relu", output_activation="softmax", dtype="float32")
    net.init_weights(rng=0)
    (W, b), (W2, b2) = [(np.array(w), np.array(c)) for w, c in net.layer_params()]
    layer1, full1, full2 = sessions(W, b, W2, b2)
    one_thread = {
        "layer 1, OpenBLAS, 256-row calls": openblas_first_layer(X, W, b, 256),
        "layer 1, OpenBLAS, 1024-row calls": openblas_first_layer(X, W, b, 1024),
        "layer 1, OpenBLAS, one call": openblas_first_layer(X, W, b, ROWS),
        "layer 1, MLAS, one call": lambda: layer1.run(None, {"X": X})[0],
        "layer 1, MLAS, 256-row calls": lambda: np.concatenate(
            [layer1.run(None, {"X": X[r0:r0 + 256]})[0] for r0 in range(0, ROWS, 256)]),
        "predict, fastbp, 1 thread": lambda: net.predict(X, n_threads=1),
        "predict, onnxruntime, 1 thread": lambda: full1.run(None, {"X": X})[0],
    }
    two_threads = {
        "predict, fastbp, 2 threads": lambda: net.predict(X, n_threads=2),
        "predict, onnxruntime, 2 threads": lambda: full2.run(None, {"X": X})[0],
    }
    # the same work first: every first layer against float64, every predict against fastbp's
    a_ref = X.astype(np.float64) @ W + b
    expected = net.predict(X, n_threads=1)
    for name, run in {**one_thread, **two_threads}.items():
        reference = a_ref if name.startswith("layer") else expected
        error = np.abs(run() - reference).max() / np.abs(reference).max()
        assert error < 1e-5, (name, error)
    times = {name: [] for name in {**one_thread, **two_threads}}
    for _ in range(rounds):
        with threadpool_limits(1):
            for name, run in one_thread.items():
                times[name].append(median_seconds(run))
        for name, run in two_threads.items():
            times[name].append(median_seconds(run))
    params = sum((a + 1) * c for a, c in zip(SIZES, SIZES[1:]))
    for name, values in times.items():
        us_per_row = statistics.median(values) / ROWS * 1e6
        flops = 2 * SIZES[0] * SIZES[1] if name.startswith("layer") else 2 * params
        print(f"{name:34s} {us_per_row:6.3f} µs/row {flops / us_per_row / 1e3:6.1f} GFLOP/s  "
              f"({' '.join(f'{v / ROWS * 1e6:.3f}' for v in values)})")


def median_seconds(run, calls=7):
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
