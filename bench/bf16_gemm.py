#!/usr/bin/env python
"""bfloat16 products (csrc/fastbp_bf16.h), each path, against float32 sgemm and PyTorch bfloat16.

Usage (fastbp installed; torch optional)::

    flock /tmp/quiet.lock python3 /work/wt/notes/quiet.py \\
        python bench/bf16_gemm.py --out bench/results/bf16_gemm.txt
    python bench/bf16_gemm.py --quick      # the same-work checks only

The products of one training step of 784-256-128-10 at batch 128 (forward
z.W, delta.W^T, the weight gradient z^T.delta) and a 2048 x 2048 square, in
GFLOP/s (2 m n k over the median time), on one thread for everyone:

- fastbp on each bfloat16 path this machine runs (amx, avx512bf16,
  emulated), twice: "pack+mul" rounds and packs both float32 operands and
  multiplies (what a product costs when neither operand was packed before;
  includes a few microseconds of Python call), and "mul" multiplies packs made
  before (weights packed once per step, for instance);
- NumPy float32 ``A @ B`` (OpenBLAS sgemm, operands transposed as views, so
  BLAS takes them in place);
- PyTorch ``torch.matmul`` on bfloat16 tensors made before (oneDNN).

Same work first: every contender's C is checked against the float64 product
(of the bfloat16-rounded operands for the bfloat16 contenders), fastbp's to
float32 rounding of k-term sums, PyTorch's to its bfloat16 output's rounding.
Then rounds of all contenders interleaved (A B C ... A B C ...); each time
is the best of a few calls' mean, and the reported rate the median over
``--repeats`` rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastbp import _kernels

try:
    import torch
except ImportError:  # the column is left out
    torch = None

# (name, m, n, k, trans_a, trans_b): C (m x n) = op(A) op(B), the operands
# stored as the training step stores them
SHAPES = [
    ("forward 1   z0.W0", 128, 256, 784, False, False),
    ("forward 2   z1.W1", 128, 128, 256, False, False),
    ("forward 3   z2.W2", 128, 10, 128, False, False),
    ("delta 2     d3.W2^T", 128, 128, 10, False, True),
    ("delta 1     d2.W1^T", 128, 256, 128, False, True),
    ("grad W0     z0^T.d1", 784, 256, 128, True, False),
    ("grad W1     z1^T.d2", 256, 128, 128, True, False),
    ("grad W2     z2^T.d3", 128, 10, 128, True, False),
    ("square      2048^2", 2048, 2048, 2048, False, False),
]


def operands(rng, m, n, k, trans_a, trans_b):
    """float32 A and B stored as a step stores them, and op(A), op(B) views."""
    A = rng.normal(size=(k, m) if trans_a else (m, k)).astype(np.float32)
    B = rng.normal(size=(n, k) if trans_b else (k, n)).astype(np.float32)
    return A, B, (A.T if trans_a else A), (B.T if trans_b else B)


def rounded64(X):
    return _kernels.bf16_widen(_kernels.bf16_round(np.ascontiguousarray(X).ravel())) \
        .reshape(X.shape).astype(np.float64)


def contenders(A, B, opA, opB, trans_a, trans_b, C):
    """name -> (call, check): call() computes once; check() verifies its C."""
    m, n = C.shape
    k = opA.shape[1]
    exact_bf16 = rounded64(opA) @ rounded64(opB)
    bound_bf16 = (k + 2) * 2.0 ** -24 * (np.abs(rounded64(opA)) @ np.abs(rounded64(opB))) + 1e-30
    exact_f32 = opA.astype(np.float64) @ opB.astype(np.float64)
    bound_f32 = (k + 2) * 2.0 ** -24 * (np.abs(opA).astype(np.float64) @ np.abs(opB)) + 1e-30
    out = {}

    def fastbp_check():
        assert (np.abs(C - exact_bf16) <= bound_bf16).all(), "fastbp differs from the emulation"

    for path in reversed(_kernels.bf16_paths()):
        def whole(path=path):
            _kernels.set_bf16_path(path)
            _kernels.bf16_gemm(A, B, C, trans_a=trans_a, trans_b=trans_b)
        Ap = _kernels.bf16_pack_a(A, trans=trans_a)
        Bp = _kernels.bf16_pack_b(B, trans=trans_b)

        def packed(path=path, Ap=Ap, Bp=Bp):
            _kernels.set_bf16_path(path)
            _kernels.bf16_gemm_packed(Ap, Bp, C, k)
        out[f"{path} pack+mul"] = (whole, fastbp_check)
        out[f"{path} mul"] = (packed, fastbp_check)

    result = {}

    def numpy_call():
        result["numpy"] = opA @ opB

    def numpy_check():
        assert (np.abs(result["numpy"] - exact_f32) <= bound_f32).all(), "sgemm is off"
    out["numpy f32"] = (numpy_call, numpy_check)

    if torch is not None:
        tA = torch.from_numpy(A).to(torch.bfloat16)
        tB = torch.from_numpy(B).to(torch.bfloat16)
        tA, tB = (tA.t() if trans_a else tA), (tB.t() if trans_b else tB)

        def torch_call():
            result["torch"] = torch.matmul(tA, tB)

        def torch_check():
            got = result["torch"].float().numpy().astype(np.float64)
            # bfloat16 output: 2^-8 relative of the sums' magnitude, plus the sums' own error
            assert (np.abs(got - exact_bf16) <= 2.0 ** -8 * np.abs(exact_bf16) + 4 * bound_bf16).all(), \
                "torch bf16 is off"
        out["torch bf16"] = (torch_call, torch_check)
    return out


def time_call(call, flops, budget=0.02):
    """Seconds a call: the best mean over 3 batches of calls lasting ~budget."""
    call()
    t0 = time.perf_counter()
    call()
    once = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, min(1000, int(budget / once)))
    best = float("inf")
    for _ in range(3 if once < 0.5 else 1):
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="the same-work checks only")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    if args.repeats < 3 and not args.quick:
        parser.error("--repeats must be at least 3 (a median of interleaved runs)")
    rng = np.random.default_rng(29)
    if torch is not None:
        torch.set_num_threads(1)
    lines = [f"bfloat16 products, GFLOP/s on 1 thread (median of {args.repeats} interleaved rounds)",
             f"fastbp paths here: {_kernels.bf16_paths()}; torch "
             f"{torch.__version__ if torch is not None else 'absent'}; numpy {np.__version__}; "
             f"load average at start {os.getloadavg()[0]:.2f}"]
    table = []
    with threadpool_limits(1):
        for name, m, n, k, trans_a, trans_b in SHAPES:
            A, B, opA, opB = operands(rng, m, n, k, trans_a, trans_b)
            C = np.empty((m, n), np.float32)
            runs = contenders(A, B, opA, opB, trans_a, trans_b, C)
            for call, check in runs.values():
                call()
                check()
            if args.quick:
                continue
            flops = 2.0 * m * n * k
            times = {label: [] for label in runs}
            for _ in range(args.repeats):
                for label, (call, _check) in runs.items():
                    if label.startswith("emulated") and flops > 1e9 and times[label]:
                        continue  # seconds a call: one round is enough to show it
                    times[label].append(time_call(call, flops))
            rates = {label: flops / statistics.median(t) / 1e9 for label, t in times.items()}
            table.append((f"{name}  {m}x{n}x{k}", rates))
    _kernels.set_bf16_path("auto")
    if args.quick:
        print("same work: every contender matches its reference")
        return
    labels = list(table[0][1])
    width = max(len(row[0]) for row in table)
    head = f"{'product':<{width}}  " + "  ".join(f"{label:>18}" for label in labels)
    lines += ["", head, "-" * len(head)]
    for row_name, rates in table:
        lines.append(f"{row_name:<{width}}  " + "  ".join(f"{rates[label]:>18.1f}" for label in labels))
    lines.append(f"load average at end {os.getloadavg()[0]:.2f}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
