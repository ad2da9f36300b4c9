#!/usr/bin/env python
"""Benchmark prediction: fastbp's predict against NumPy, onnxruntime, PyTorch and scikit-learn.

Usage (from the repository root, fastbp installed)::

    python bench/predict.py                    # equal threads (2) and each library's defaults
    python bench/predict.py --threads 1 --dtype float64
    python bench/predict.py --sizes 784-256-128-10 --contenders fastbp,fastbp_bf16,onnxruntime \
        --name predict_bfloat16_784-256-128-10   # bfloat16 predict against float32

Every contender computes the same network's outputs (784-128-10 relu/softmax
by default, the same weights): fastbp ``Network.predict``; NumPy
(``X @ W + b``, its BLAS); onnxruntime running an ONNX graph of the same
layers built with the ``onnx`` package (MatMul, Add, Relu, Softmax);
PyTorch (``nn.Sequential`` under ``inference_mode``); scikit-learn
(``MLPClassifier.predict_proba`` with the weights set); with --dtype float32
also fastbp in bfloat16 mixed precision (``fastbp_bf16``:
``compute_dtype="bfloat16"``, products of bfloat16-rounded operands summed in
float32).

1. Same-work check: each contender's outputs on the rows must equal a NumPy
   float64 forward pass to 1e-5 (float32) or 1e-12 (float64), relative to
   the largest output (``fastbp_bf16``: to 2e-2, the effect of rounding the
   operands to bfloat16's 8 significant bits); a contender that fails is not
   timed.
2. Throughput: one call on ``--rows`` rows, µs per row. Latency: a one-row
   call, µs per call (the mean over a loop of calls, so the timer's own
   cost is spread). Runs are interleaved (A B C A B C ...) and the median of
   ``--repeats`` is kept.
3. Modes: "equal" pins every library to ``--threads`` threads (fastbp's
   ``n_threads``, onnxruntime's ``intra_op_num_threads``,
   ``torch.set_num_threads``, threadpoolctl for the BLAS pools); "defaults"
   sets nothing. The modes run in separate processes, since thread pools are
   fixed when a library loads.
4. Concurrency: two Python threads each predicting on their own rows with
   ``n_threads=1`` against one thread doing both shares in turn.

Ratios are against fastbp in the same run (> 1: fastbp is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from idle import wait_until_idle

BENCH_DIR = Path(__file__).resolve().parent
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
BF16_TOLERANCE = 2e-2
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="784-128-10", help="layer widths, e.g. 784-128-10")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the throughput call")
    parser.add_argument("--threads", type=int, default=2, help="threads of the equal mode")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved runs (>= 3)")
    parser.add_argument("--modes", default="equal,defaults", help="equal, defaults or both")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--contenders", default=None,
                        help="comma-separated subset of: " + ", ".join(CONTENDERS))
    parser.add_argument("--name", default=None,
                        help="results file stem (default predict_<dtype>)")
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # one child process
    arguments = parser.parse_args(argv)
    if arguments.repeats < 3:
        parser.error("--repeats must be at least 3")
    names = (arguments.contenders or ",".join(CONTENDERS)).split(",")
    unknown = [name for name in names if name not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}")
    arguments.contenders = names
    return arguments


# ---------------------------------------------------------------------------
# Contenders: each is built from the same (weights, biases) and maps X -> outputs
# ---------------------------------------------------------------------------

def numpy_forward(X, weights, biases):
    """relu hidden layers, softmax output, in X's dtype."""
    import numpy as np
    z = X
    for index, (W, b) in enumerate(zip(weights, biases)):
        a = z @ W + b
        if index < len(weights) - 1:
            z = np.maximum(a, 0)
        else:
            a = a - a.max(axis=1, keepdims=True)
            z = np.exp(a)
            z /= z.sum(axis=1, keepdims=True)
    return z


def build_fastbp(weights, biases, sizes, dtype, threads):
    import fastbp
    net = fastbp.Network(sizes, activation="relu", output_activation="softmax", dtype=dtype)
    net.set_weights(weights, biases)
    option = {} if threads is None else {"n_threads": threads}
    return lambda X: net.predict(X, **option)


def build_fastbp_bf16(weights, biases, sizes, dtype, threads):
    import fastbp
    if dtype != "float32":
        raise ImportError("bfloat16 compute needs dtype float32")  # skipped, as a missing peer
    net = fastbp.Network(sizes, activation="relu", output_activation="softmax", dtype=dtype,
                         compute_dtype="bfloat16")
    net.set_weights(weights, biases)
    option = {} if threads is None else {"n_threads": threads}
    return lambda X: net.predict(X, **option)


def build_numpy(weights, biases, sizes, dtype, threads):
    return lambda X: numpy_forward(X, weights, biases)


def onnx_graph(weights, biases, dtype):
    """The network as an ONNX model (opset 17)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    elem = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    nodes, initializers, current = [], [], "X"
    for index, (W, b) in enumerate(zip(weights, biases)):
        initializers += [numpy_helper.from_array(np.asarray(W, dtype), f"W{index}"),
                         numpy_helper.from_array(np.asarray(b, dtype), f"b{index}")]
        nodes += [helper.make_node("MatMul", [current, f"W{index}"], [f"m{index}"]),
                  helper.make_node("Add", [f"m{index}", f"b{index}"], [f"a{index}"])]
        last = index == len(weights) - 1
        nodes.append(helper.make_node("Softmax" if last else "Relu", [f"a{index}"],
                                      ["Y" if last else f"z{index}"], **({"axis": 1} if last
                                                                         else {})))
        current = f"z{index}"
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("X", elem, [None, weights[0].shape[0]])],
        [helper.make_tensor_value_info("Y", elem, [None, weights[-1].shape[1]])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def build_onnxruntime(weights, biases, sizes, dtype, threads):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_graph(weights, biases, dtype).SerializeToString(),
                                           options, providers=["CPUExecutionProvider"])
    return lambda X: session.run(None, {"X": X})[0]


def build_torch(weights, biases, sizes, dtype, threads):
    import numpy as np
    import torch
    if threads is not None:
        torch.set_num_threads(threads)
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    layers = []
    for index, (W, b) in enumerate(zip(weights, biases)):
        linear = torch.nn.Linear(*W.shape, dtype=torch_dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU() if index < len(weights) - 1 else torch.nn.Softmax(1)]
    model = torch.nn.Sequential(*layers).eval()

    def predict(X):
        with torch.inference_mode():
            return model(torch.from_numpy(X)).numpy()
    return predict


def build_sklearn(weights, biases, sizes, dtype, threads):
    import numpy as np
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(sizes[1:-1], max_iter=1)
    model.fit(np.zeros((sizes[-1], sizes[0]), dtype), np.arange(sizes[-1]))  # shapes only
    model.coefs_ = [W.copy() for W in weights]
    model.intercepts_ = [b.copy() for b in biases]
    return model.predict_proba


CONTENDERS = {"fastbp": build_fastbp, "fastbp_bf16": build_fastbp_bf16, "numpy": build_numpy,
              "onnxruntime": build_onnxruntime,
              "torch": build_torch, "sklearn": build_sklearn}


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

def same_work(predict, X, expected, dtype):
    """The largest deviation from the float64 forward pass, relative to its scale."""
    import numpy as np
    got = np.asarray(predict(X), dtype=np.float64)
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


def time_call(predict, X, calls):
    started = time.perf_counter()
    for _ in range(calls):
        predict(X)
    return (time.perf_counter() - started) / calls


def concurrency(predict_one_thread, X):
    """(seconds for two shares in turn, seconds for them in two threads at once)."""
    halves = (X[: len(X) // 2], X[len(X) // 2:])
    started = time.perf_counter()
    for half in halves:
        predict_one_thread(half)
    in_turn = time.perf_counter() - started
    threads = [threading.Thread(target=predict_one_thread, args=(half,)) for half in halves]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return in_turn, time.perf_counter() - started


def run_mode(arguments, mode):
    """Build, check and time every contender in this process; return the report."""
    import numpy as np
    threads = arguments.threads if mode == "equal" else None
    if threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    sizes = [int(s) for s in arguments.sizes.split("-")]
    dtype = arguments.dtype
    rng = np.random.default_rng(0)
    weights = [rng.normal(scale=(2 / a) ** 0.5, size=(a, b)).astype(dtype)
               for a, b in zip(sizes, sizes[1:])]
    biases = [rng.normal(scale=0.1, size=b).astype(dtype) for b in sizes[1:]]
    X = rng.normal(size=(arguments.rows, sizes[0])).astype(dtype)
    one_row = X[:1].copy()
    expected = numpy_forward(X.astype(np.float64), [W.astype(np.float64) for W in weights],
                             [b.astype(np.float64) for b in biases])
    report = {"mode": mode, "threads": threads, "sizes": sizes, "dtype": dtype,
              "rows": arguments.rows, "repeats": arguments.repeats, "contenders": {}}
    predictors = {}
    for name in arguments.contenders:
        build = CONTENDERS[name]
        try:
            predict = build(weights, biases, sizes, dtype, threads)
        except ImportError as error:
            report["contenders"][name] = {"status": "skipped", "reason": str(error)}
            continue
        error = same_work(predict, X, expected, dtype)
        ok = error <= (BF16_TOLERANCE if name == "fastbp_bf16" else TOLERANCE[dtype])
        report["contenders"][name] = {"status": "ok" if ok else "FAILED", "max_error": error}
        if ok:
            predictors[name] = predict
    throughput = {name: [] for name in predictors}
    latency = {name: [] for name in predictors}
    for predict in predictors.values():  # warm-up: first calls allocate and spin up pools
        time_call(predict, X, 1)
        time_call(predict, one_row, 200)
    for _ in range(arguments.repeats):
        for name, predict in predictors.items():
            time_call(predict, X, 1)  # untimed: caches and pools as this contender left them
            wait_until_idle()  # and no pool of the previous contender still spinning
            throughput[name].append(time_call(predict, X, 3) / len(X))
            wait_until_idle()
            latency[name].append(time_call(predict, one_row, 2000))
    for name in predictors:
        report["contenders"][name].update(
            us_per_row=1e6 * statistics.median(throughput[name]),
            us_per_call_one_row=1e6 * statistics.median(latency[name]))
    if "fastbp" in predictors:
        import fastbp
        net = fastbp.Network(sizes, activation="relu", output_activation="softmax", dtype=dtype)
        net.set_weights(weights, biases)
        runs = []
        for _ in range(arguments.repeats):
            wait_until_idle()
            runs.append(concurrency(lambda rows: net.predict(rows, n_threads=1), X))
        report["concurrency_speedup"] = statistics.median(a / b for a, b in runs)
    return report


def print_mode(report):
    fastbp = report["contenders"].get("fastbp", {})
    threads = report["threads"] if report["threads"] is not None else "each library's default"
    print(f"\n== {report['mode']}: threads {threads}; {'-'.join(map(str, report['sizes']))} "
          f"{report['dtype']}, {report['rows']} rows; median of {report['repeats']} runs")
    print(f"{'contender':12} {'µs/row':>9} {'vs fastbp':>10} {'µs 1-row call':>14} "
          f"{'vs fastbp':>10}  same work")
    for name, result in report["contenders"].items():
        if "us_per_row" not in result:
            print(f"{name:12} {result['status']}: {result.get('reason', result.get('max_error'))}")
            continue
        row_ratio = result["us_per_row"] / fastbp["us_per_row"] if "us_per_row" in fastbp else 0
        call_ratio = (result["us_per_call_one_row"] / fastbp["us_per_call_one_row"]
                      if "us_per_row" in fastbp else 0)
        print(f"{name:12} {result['us_per_row']:9.3f} {row_ratio:9.2f}x "
              f"{result['us_per_call_one_row']:14.2f} {call_ratio:9.2f}x  "
              f"ok ({result['max_error']:.1e})")
    bf16, onnx = report["contenders"].get("fastbp_bf16", {}), report["contenders"].get(
        "onnxruntime", {})
    if "us_per_row" in bf16 and "us_per_row" in onnx:
        print(f"fastbp_bf16 against onnxruntime float32: throughput "
              f"{onnx['us_per_row'] / bf16['us_per_row']:.2f}x, one-row latency "
              f"{onnx['us_per_call_one_row'] / bf16['us_per_call_one_row']:.2f}x (> 1: faster)")
    if "concurrency_speedup" in report:
        print(f"two threads predicting at once (n_threads=1 each) vs in turn: "
              f"{report['concurrency_speedup']:.2f}x")


def main(arguments):
    if arguments.mode is not None:  # a child: one mode, JSON on stdout
        print(json.dumps(run_mode(arguments, arguments.mode)))
        return 0
    reports = []
    for mode in arguments.modes.split(","):
        env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        if mode == "equal":
            env.update({k: str(arguments.threads) for k in THREAD_VARIABLES})
        command = [sys.executable, __file__, "--mode", mode] + sys.argv[1:]
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        reports.append(json.loads(output.stdout.strip().splitlines()[-1]))
        print_mode(reports[-1])
    arguments.out.mkdir(parents=True, exist_ok=True)
    path = arguments.out / f"{arguments.name or 'predict_' + arguments.dtype}.json"
    path.write_text(json.dumps(reports, indent=1) + "\n")
    print(f"\nwrote {path}")
    failed = [name for r in reports for name, c in r["contenders"].items()
              if c["status"] == "FAILED"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(parse_arguments()))
