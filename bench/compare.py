#!/usr/bin/env python
"""Benchmark fastbp's training against NumPy, PyTorch, scikit-learn, FANN and fastbp.reference.

Usage (from the repository root; the extension is built in place)::

    PYTHONPATH=src python bench/compare.py --quick     # same-work checks only, well under a minute
    PYTHONPATH=src python bench/compare.py             # the full matrix, 1 thread
    PYTHONPATH=src python bench/compare.py --threads 2 --nets 784-256-128-10 --batch-sizes 128
    PYTHONPATH=src python bench/compare.py --threads defaults  # each library as users run it
    PYTHONPATH=src python bench/compare.py --threads 1,defaults  # both, one run (README)
    PYTHONPATH=src python bench/compare.py --optimizers adam,rprop --nets 64-32-10

Every contender runs plain SGD (no momentum, no L2) on a network with sigmoid
hidden and output layers, rows in order, the last batch smaller; see
``peers/__init__.py``. ``--optimizers`` adds other optimisers (Adam, AdamW,
NAdam, RMSprop, Adagrad, Rprop), which fastbp, NumPy and PyTorch run with
their own rates (``peers/optimizers.py``); the other contenders run plain
SGD only. For each case (network, batch size, dtype and optimiser):

1. Same-work check. Every contender starts from the same initial weights and
   trains one epoch on the same rows. The mse of its final parameters on those
   rows must match a NumPy run of the update rule the contender claims, to
   1e-9 relative in float64 and 1e-4 in float32; so must every final
   parameter (max |Δ| over max |p|). A contender that fails is FAILED and not
   timed. scikit-learn and FANN cannot run sigmoid-output mse exactly; they are
   checked against NumPy running their own rule (log-loss, resp. FANN's
   clipped sigmoid derivative) and their distance from the mse rule is shown.
2. Timing. Runs are interleaved and rotated (A B C, B C A, C A B, ...: the
   first contender of a round meets caches the round's GEMM left cold), each
   one epoch from the same initial weights (the reset is not timed); the
   median of ``--repeats`` runs is reported in µs per sample. With ``--threads`` above 1, every timed
   run follows an untimed one of the same contender, so that no other
   contender's thread pool still spins (OpenBLAS and OpenMP workers do for
   about 0.1 s after their last call).

``--threads defaults`` sets no thread count anywhere (no environment
variables, no threadpoolctl limit, no ``n_threads``, no
``torch.set_num_threads``): each library runs as a user who never heard of
threads runs it. The pools found are recorded in the report. A list
(``--threads 1,defaults``) runs each setting in a fresh interpreter, one after
the other, since a library's thread pool is fixed when it loads.

The machine's GEMM rate (NumPy sgemm/dgemm on 2048×2048, median of 3) is
measured at the start and the end of the run, and once per timing round of
every case, interleaved with the contenders so that it sees the same load.
The case's median rate gives its floor: 6 × n_weights × n_samples / rate
(forward, backward and weight-gradient products). Results go to
``bench/results/`` as JSON, Markdown and a PNG plot.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

#: "bfloat16" is mixed precision (``--compute bfloat16``): float32 weights, products
#: of bfloat16-rounded operands. Its tolerance is PyTorch autocast's: it also stores
#: each layer's output in bfloat16, which departs from the NumPy rule by up to 2.2e-2
#: (per-sample steps on saturated sigmoids, --quick); one epoch moves the loss by 7 %
#: or more in every case, so skipped work still fails
TOLERANCE = {"float32": 1e-4, "float64": 1e-9, "bfloat16": 3e-2}
DTYPES = ("float32", "float64")
BFLOAT16 = "bfloat16"
#: a case's precision: a dtype, or bfloat16 products on float32 weights
PRECISIONS = DTYPES + (BFLOAT16,)
BATCH_SIZES = (1, 32, 128, 512)
GEMM_SIZE = 2048
#: slowest / fastest run of a contender above which its median is flagged as noisy
NOISY_SPREAD = 1.3


def parse_arguments(argv=None):
    """Command-line options of the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="same-work checks only, on small cases; exit 1 if one fails")
    parser.add_argument("--threads", type=thread_settings, default=[1],
                        help="threads for every library's BLAS/OpenMP pool (default 1), or "
                             "'defaults': no thread setting anywhere, each library's own; "
                             "a comma-separated list runs each in turn")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per contender and case; the median is kept (>= 3)")
    parser.add_argument("--nets", default=None,
                        help="comma-separated network names to run, e.g. 64-32-10,784-128-10")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated, e.g. 1,128")
    parser.add_argument("--dtypes", default=None, help="float32, float64 or both (comma)")
    parser.add_argument("--compute", choices=(BFLOAT16,), default=None,
                        help="also run bfloat16 cases: float32 weights, products of "
                             "bfloat16-rounded operands (fastbp's compute_dtype, PyTorch's "
                             "autocast); the contenders without it are skipped there")
    parser.add_argument("--contenders", default=None,
                        help="comma-separated subset of fastbp,numpy,torch,sklearn,fann,reference")
    parser.add_argument("--optimizers", default="sgd",
                        help="comma-separated optimisers, e.g. sgd,adam,rprop (default sgd: "
                             "plain SGD only); the names are bench/peers/optimizers.py's")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every case's row count (e.g. 0.25 for a faster run)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results",
                        help="directory for the JSON, Markdown and PNG results")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--render", type=Path, default=None, metavar="JSON",
                        help="only rewrite the Markdown and PNG of a saved JSON report")
    parser.add_argument("--targets", action="store_true",
                        help="after the matrix, run bench/targets.py: the speed targets "
                             "(1 and 2 threads) measured side by side and judged")
    arguments = parser.parse_args(argv)
    if arguments.repeats < 3 and not arguments.quick:
        parser.error("--repeats must be at least 3")
    return arguments


def thread_setting(text):
    """``--threads``: a positive int, or "defaults" (returned as the string)."""
    if text == "defaults":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a thread count or 'defaults': {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--threads must be at least 1")
    return value


def thread_settings(text):
    """``--threads``: a comma-separated list of :func:`thread_setting`."""
    return [thread_setting(part.strip()) for part in text.split(",")]


def pin_threads_early(n_threads):
    """Set the usual thread variables before NumPy, SciPy or torch load their pools
    ("defaults": leave them as the user's environment has them)."""
    if n_threads == "defaults":
        return
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "BLIS_NUM_THREADS"):
        os.environ[variable] = str(n_threads)


if __name__ == "__main__":
    ARGUMENTS = parse_arguments()
    if len(ARGUMENTS.threads) == 1:
        ARGUMENTS.threads = ARGUMENTS.threads[0]
        pin_threads_early(ARGUMENTS.threads)

# The heavy imports come after the thread variables are set.
import functools  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

if importlib.util.find_spec("fastbp") is None:  # not installed: this checkout's build
    sys.path.insert(0, str(REPO_DIR / "src"))

sys.path.insert(0, str(BENCH_DIR))
from idle import wait_until_idle  # noqa: E402
from peers import PEER_MODULES, load_peer  # noqa: E402
from peers.numpy_peer import VARIANTS, mse_objective  # noqa: E402
from peers.numpy_peer import Trainer as NumpyTrainer  # noqa: E402
from peers.optimizers import NAMES as OPTIMIZER_NAMES  # noqa: E402
from peers.optimizers import RULES as OPTIMIZER_RULES  # noqa: E402
from peers.optimizers import SGD, learning_rate  # noqa: E402
from peers.optimizers import limitation as optimizer_limitation  # noqa: E402


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkSpec:
    """A network of the matrix and the data it trains on.

    ``rows`` is for minibatch cases; per-sample updates cost far more per row,
    so batch 1 gets ``rows_batch1``. Row counts keep a run near a second.

    ``lr`` is a power of two, exact in float32 (FANN's learning rate is a C
    float), and small enough that one epoch is not chaotic: with 784 or more
    standard-normal inputs and per-sample steps of 0.25, two runs that differ
    only in the last bit of a sigmoid drift apart to O(1) within 2000 rows
    (log-loss rule), and no tolerance could tell same work from different work.
    """

    name: str
    sizes: tuple
    data: str  # "xor", "digits" or "synthetic"
    rows: int
    rows_batch1: int
    lr: float
    #: multiplies the initial weights; large ones saturate the sigmoids
    weight_scale: float = 1.0

    @property
    def n_weights(self):
        """Weights (not biases): the multiply-adds of one forward pass per sample."""
        return sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))


FULL_NETWORKS = (
    NetworkSpec("2-2-1", (2, 2, 1), "xor", 2000, 2000, 0.25),
    NetworkSpec("64-32-10", (64, 32, 10), "digits", 1797, 1797, 0.25),
    NetworkSpec("784-128-10", (784, 128, 10), "synthetic", 8000, 1500, 0.0625),
    NetworkSpec("784-256-128-10", (784, 256, 128, 10), "synthetic", 20000, 1000, 0.0625),
    NetworkSpec("1024-2048-2048-10", (1024, 2048, 2048, 10), "synthetic", 600, 16, 0.0625),
)
# Row counts that batch sizes do not divide, so the smaller last batch is checked too.
DIGITS_ROWS = 1797
QUICK_NETWORKS = (
    NetworkSpec("2-2-1", (2, 2, 1), "xor", 100, 100, 0.25),
    NetworkSpec("64-32-10", (64, 32, 10), "digits", 300, 300, 0.25),
    NetworkSpec("784-128-10", (784, 128, 10), "synthetic", 260, 260, 0.0625),
    # saturated sigmoids, where FANN's clipped derivative departs from the mse rule
    NetworkSpec("64-32-10-saturated", (64, 32, 10), "digits", 300, 300, 0.25, weight_scale=8.0),
)


def make_data(spec, rows, seed=0):
    """Inputs and one-hot (or XOR) targets of ``spec``, in float64.

    Parameters
    ----------
    spec : NetworkSpec
    rows : int
    seed : int, default=0

    Returns
    -------
    X : ndarray of shape (rows, sizes[0])
    Y : ndarray of shape (rows, sizes[-1])
    """
    n_in, n_out = spec.sizes[0], spec.sizes[-1]
    if spec.data == "xor":
        patterns = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        X = np.resize(patterns, (rows, 2))
        return X, (X[:, :1] != X[:, 1:]).astype(np.float64)
    if spec.data == "digits":
        import fastbp

        X, Y = fastbp.load_digits()
        if rows > X.shape[0]:
            raise ValueError(f"digits has {X.shape[0]} rows, {rows} asked")
        return X[:rows], Y[:rows]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, n_in))
    return X, np.eye(n_out)[rng.integers(0, n_out, rows)]


def initial_parameters(sizes, seed=1):
    """Glorot-uniform weights (sigmoid's range, as fastbp's) and small random biases.

    The biases are not zero, so a contender that ignored the given ones would
    fail the same-work check.
    """
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in zip(sizes, sizes[1:]):
        bound = np.sqrt(2.0 / (n_in + n_out))
        weights.append(rng.uniform(-bound, bound, (n_in, n_out)))
        biases.append(rng.uniform(-0.1, 0.1, n_out))
    return weights, biases


@dataclass
class Case:
    """One cell of the matrix, its data and initial parameters cast to its dtype."""

    spec: NetworkSpec
    batch_size: int
    dtype: str
    X: np.ndarray
    Y: np.ndarray
    weights: list
    biases: list
    optimizer: str = SGD

    @property
    def lr(self):
        """The optimiser's learning rate: the network's own for plain SGD."""
        return learning_rate(self.optimizer, self.spec.lr)

    @property
    def label(self):
        label = f"{self.spec.name} b={self.batch_size} {self.dtype}"
        return label if self.optimizer == SGD else f"{label} {self.optimizer}"


def storage_dtype(precision):
    """The dtype of a case's arrays: float32 for bfloat16 cases (float32 weights)."""
    return "float32" if precision == BFLOAT16 else precision


def build_cases(networks, batch_sizes, dtypes, scale, optimizers=(SGD,)):
    """Every (network, batch size, precision, optimiser) with its data, in run order."""
    cases = []
    for spec in networks:
        weights, biases = initial_parameters(spec.sizes)
        weights = [spec.weight_scale * W for W in weights]
        for batch_size in batch_sizes:
            rows = spec.rows_batch1 if batch_size == 1 else spec.rows
            rows = max(int(round(rows * scale)), 4)
            if spec.data == "digits":
                rows = min(rows, DIGITS_ROWS)
            X, Y = make_data(spec, rows)
            for dtype in dtypes:
                stored = storage_dtype(dtype)
                for optimizer in optimizers:
                    cases.append(Case(spec, batch_size, dtype, X.astype(stored),
                                      Y.astype(stored), [W.astype(stored) for W in weights],
                                      [b.astype(stored) for b in biases], optimizer))
    return cases


# ---------------------------------------------------------------------------
# Contenders, threads, machine
# ---------------------------------------------------------------------------


def load_contenders(names):
    """Import the wanted peer modules; print and return the ones that cannot run.

    Returns
    -------
    available : list of module
    unavailable : dict of str to str
        Contender name -> reason.
    """
    available, unavailable = [], {}
    for module_name in PEER_MODULES:
        peer = load_peer(module_name)
        if names is not None and peer.NAME not in names:
            continue
        reason = peer.availability()
        if reason is None:
            available.append(peer)
        else:
            unavailable[peer.NAME] = reason
            print(f"note: skipping {peer.NAME}: {reason}")
    return available, unavailable


def thread_label(threads):
    """File-name part for a --threads setting: "1thread", "2thread" or "defaults"."""
    return "defaults" if threads == "defaults" else f"{threads}thread"


def pin_threads(n_threads, peers):
    """Limit every loaded BLAS/OpenMP pool (threadpoolctl) and torch to ``n_threads``.

    Call after the contenders' libraries are imported: threadpoolctl acts on
    the pools loaded at the time.

    Returns
    -------
    list of dict
        The pools found, with their thread counts afterwards.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    if n_threads != "defaults":
        threadpool_limits(limits=n_threads)
        for peer in peers:
            if hasattr(peer, "set_threads"):
                peer.set_threads(n_threads)
    return [{"api": pool.get("internal_api"), "version": pool.get("version"),
             "architecture": pool.get("architecture"), "threads": pool.get("num_threads"),
             "library": Path(pool.get("filepath", "")).name}
            for pool in threadpool_info()]


def machine_description():
    """CPU model, core counts, memory and Python of this machine."""
    cpu_model, physical_cores = None, None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and cpu_model is None:
                cpu_model = value
            elif key == "cpu cores" and physical_cores is None:
                physical_cores = int(value)
    except OSError:
        pass
    cpu_model = cpu_model or platform.processor() or "unknown"
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model, "logical_cores": os.cpu_count(), "usable_cores": usable,
            "cores_per_socket": physical_cores, "memory_gib": memory_gib,
            "platform": platform.platform(), "python": platform.python_version()}


def source_revision():
    """The checkout's git commit, and whether src/ or csrc/ differ from it."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        modified = bool(git("status", "--porcelain", "--", "src", "csrc"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes in src/ or csrc/" if modified else "")


def library_versions(peers):
    """Versions of the contenders' libraries and of the tools used here."""
    versions = {"numpy": np.__version__}
    for peer in peers:
        versions[peer.NAME] = peer.version()
    for module_name in ("scipy", "threadpoolctl", "matplotlib"):
        try:
            versions[module_name] = __import__(module_name).__version__
        except ImportError:
            versions[module_name] = "not installed"
    return versions


@functools.lru_cache(maxsize=None)
def gemm_operands(dtype, size=GEMM_SIZE):
    """Two random size×size matrices of ``dtype``, made once."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((size, size)).astype(dtype),
            rng.standard_normal((size, size)).astype(dtype))


def time_gemm(dtype):
    """Seconds of one NumPy GEMM (sgemm or dgemm) on the GEMM_SIZE² operands."""
    A, B = gemm_operands(dtype)
    started = time.perf_counter()
    A @ B
    return time.perf_counter() - started


def gemm_rate(seconds):
    """FLOP/s of GEMM_SIZE² GEMMs that took ``seconds`` (their median)."""
    return 2.0 * GEMM_SIZE**3 / statistics.median(seconds)


def gemm_rates(repeats=3, warm_up_seconds=0.5):
    """NumPy's sgemm and dgemm rate in FLOP/s (median of ``repeats``)."""
    rates = {}
    for dtype in DTYPES:
        started = time.perf_counter()
        while time.perf_counter() - started < warm_up_seconds:  # page in, clock up
            time_gemm(dtype)
        rates[dtype] = gemm_rate([time_gemm(dtype) for _ in range(repeats)])
    return rates


# ---------------------------------------------------------------------------
# Same-work check and timing
# ---------------------------------------------------------------------------


def rows_for(peer, case):
    """Rows a contender gets in ``case`` (the pure-Python reference gets at most 300)."""
    rows = case.X.shape[0]
    return rows if peer.max_rows is None else min(rows, peer.max_rows)


def relative_parameter_error(parameters, expected):
    """max |p − p_expected| over max |p_expected|, all weights and biases together."""
    difference = max(float(np.max(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64))))
                     for p, q in zip(parameters, expected))
    scale = max(float(np.max(np.abs(np.asarray(q, np.float64)))) for q in expected)
    return difference / scale


class ExpectedRuns:
    """NumPy runs of each update rule on a case, computed once per (rule, rows)."""

    def __init__(self, case):
        self.case = case
        self._runs = {}

    def get(self, variant, rows):
        """(parameters as one list, mse of them) after one epoch of rule ``variant``."""
        key = (variant, rows)
        if key not in self._runs:
            case = self.case
            trainer = NumpyTrainer(case.X[:rows], case.Y[:rows], case.spec.sizes,
                                   case.batch_size, case.lr, storage_dtype(case.dtype),
                                   variant=variant,
                                   optimizer=case.optimizer)
            trainer.load(case.weights, case.biases)
            trainer.epoch(1)
            weights, biases = trainer.parameters()
            loss = mse_objective(weights, biases, case.X[:rows], case.Y[:rows])
            self._runs[key] = (weights + biases, loss)
        return self._runs[key]


def same_work_check(peer, trainer, case, expected_runs):
    """Train one epoch with ``trainer`` and compare with NumPy running the peer's rule.

    Returns
    -------
    dict
        ``passed``, the final ``loss``, ``loss_error`` and ``parameter_error``
        (relative), the ``tolerance``, the rule compared with and, for a rule
        other than mse, ``loss_vs_mse_rule``: how far the result is from the
        mse rule's.
    """
    rows = rows_for(peer, case)
    trainer.load(case.weights, case.biases)
    trainer.epoch(1)
    weights, biases = trainer.parameters()
    loss = mse_objective(weights, biases, case.X[:rows], case.Y[:rows])
    rule = "mse-bf16" if case.dtype == BFLOAT16 else peer.MATH
    expected_parameters, expected_loss = expected_runs.get(rule, rows)
    tolerance = TOLERANCE[case.dtype]
    loss_error = abs(loss - expected_loss) / abs(expected_loss)
    parameter_error = relative_parameter_error(weights + biases, expected_parameters)
    result = {
        "passed": bool(loss_error <= tolerance and parameter_error <= tolerance),
        "compared_with": f"numpy, {VARIANTS[rule]['description']}",
        "loss": loss, "expected_loss": expected_loss, "loss_error": loss_error,
        "parameter_error": parameter_error, "tolerance": tolerance,
        "initial_loss": mse_objective(case.weights, case.biases, case.X[:rows], case.Y[:rows]),
    }
    if rule != "mse":
        mse_loss = expected_runs.get("mse", rows)[1]
        result["loss_vs_mse_rule"] = abs(loss - mse_loss) / abs(mse_loss)
    return result


def run_case(case, peers, repeats, check_only, warm_up=False):
    """Check, then time, every contender on one case.

    With ``warm_up``, every timed run follows an untimed one of the same
    contender: with thread pools, the last contender's OpenBLAS or OpenMP
    workers spin on for about 0.1 s and would take a core from the next.

    Returns
    -------
    dict
        The case's description, its FLOP floor (filled in later) and a result
        per contender: status "ok", "FAILED" or "skipped", with its check and
        timings.
    """
    spec = case.spec
    expected_runs = ExpectedRuns(case)
    results, trainers = {}, {}
    # plain SGD calls every Trainer as before the optimisers came
    options = {} if case.optimizer == SGD else {"optimizer": case.optimizer}
    for peer in peers:
        rows = rows_for(peer, case)
        compute = {"compute": BFLOAT16} if case.dtype == BFLOAT16 else {}
        if case.optimizer not in getattr(peer, "OPTIMIZERS", (SGD,)):
            reason = "runs plain SGD only"
        elif compute and BFLOAT16 not in getattr(peer, "COMPUTE", ()):
            reason = "no bfloat16 products"
        else:
            reason = (peer.limitation(spec.sizes, rows, case.batch_size,
                                      storage_dtype(case.dtype))
                      or optimizer_limitation(case.optimizer, case.batch_size))
        if reason is not None:
            results[peer.NAME] = {"status": "skipped", "reason": reason}
            continue
        try:
            trainer = peer.Trainer(case.X[:rows], case.Y[:rows], spec.sizes, case.batch_size,
                                   case.lr, storage_dtype(case.dtype), **options, **compute)
            check = same_work_check(peer, trainer, case, expected_runs)
        except Exception as error:  # a contender that crashes fails its check, nothing else
            traceback.print_exc()
            results[peer.NAME] = {"status": "FAILED", "rows": rows,
                                  "reason": f"{type(error).__name__}: {error}"}
            continue
        results[peer.NAME] = {"status": "ok" if check["passed"] else "FAILED", "rows": rows,
                              "check": check}
        if check["passed"]:
            trainers[peer.NAME] = trainer
        else:
            results[peer.NAME]["reason"] = (
                f"same-work check: loss error {check['loss_error']:.2e}, parameter error "
                f"{check['parameter_error']:.2e} > {check['tolerance']:.0e}")

    gemm_seconds = []
    if not check_only:
        # interleaved, so drifts of the machine hit everyone alike, and rotated
        # (A B C, B C A, C A B, ...), so that no contender always runs first after
        # the GEMM, which joins every round for a floor under the same conditions
        # and leaves the caches cold for whoever comes next
        seconds = {name: [] for name in trainers}
        names = list(trainers)
        for round_index in range(repeats):
            start = round_index % len(names) if names else 0
            for name in names[start:] + names[:start]:
                trainer = trainers[name]
                if warm_up:
                    trainer.load(case.weights, case.biases)
                    trainer.epoch(1)
                trainer.load(case.weights, case.biases)
                gc.collect()
                wait_until_idle()  # no pool of the last contender or GEMM still spinning
                started = time.perf_counter()
                trainer.epoch(1)
                seconds[name].append(time.perf_counter() - started)
            gemm_seconds.append(time_gemm(storage_dtype(case.dtype)))
        for name, times in seconds.items():
            rows = results[name]["rows"]
            results[name]["seconds"] = times
            results[name]["us_per_sample"] = statistics.median(times) / rows * 1e6
            results[name]["spread"] = max(times) / min(times)
    trainers.clear()  # free the libraries' buffers before the next case
    gc.collect()
    result = {"net": spec.name, "sizes": list(spec.sizes), "data": spec.data,
              "batch_size": case.batch_size, "dtype": case.dtype, "rows": case.X.shape[0],
              "lr": case.lr, "n_weights": spec.n_weights,
              "gemm_gflops": gemm_rate(gemm_seconds) / 1e9 if gemm_seconds else None,
              "contenders": results}
    if case.optimizer != SGD:  # plain SGD's reports keep their fields
        result["optimizer"] = case.optimizer
    return result


def add_floors(case_result):
    """FLOP floor of the case and every contender's ratio to fastbp and to the floor.

    The floor is 6 × n_weights / rate per sample, with the GEMM rate measured
    in the case's own timing rounds.
    """
    floor = 6.0 * case_result["n_weights"] / (case_result["gemm_gflops"] * 1e9) * 1e6
    case_result["floor_us_per_sample"] = floor
    contenders = case_result["contenders"]
    fastbp_us = contenders.get("fastbp", {}).get("us_per_sample")
    for result in contenders.values():
        if "us_per_sample" not in result:
            continue
        result["gemm_fraction"] = floor / result["us_per_sample"]
        if fastbp_us:
            result["ratio_to_fastbp"] = result["us_per_sample"] / fastbp_us
    if fastbp_us:
        case_result["fastbp_over_floor"] = fastbp_us / floor


def print_case(case_result, check_only):
    """One line per contender: its check and, when timed, its speed."""
    print(f"\n== {case_result['net']}  batch {case_result['batch_size']}  "
          f"{case_result['dtype']}  ({case_result['rows']} rows)"
          + (f"  {case_result['optimizer']}" if "optimizer" in case_result else ""))
    fastbp_us = case_result["contenders"].get("fastbp", {}).get("us_per_sample")
    for name, result in case_result["contenders"].items():
        if result["status"] == "skipped":
            print(f"   {name:10s} skipped: {result['reason']}")
            continue
        check = result.get("check")
        line = f"   {name:10s} {result['status']:6s}"
        if check:
            line += (f" loss {check['loss']:.10g}  err {check['loss_error']:.1e}/"
                     f"{check['parameter_error']:.1e} (tol {check['tolerance']:.0e})")
            if "loss_vs_mse_rule" in check:
                line += f"  vs mse rule {check['loss_vs_mse_rule']:.1e}"
        if result["status"] == "FAILED":
            line += f"  {result.get('reason', '')}"
        if not check_only and "us_per_sample" in result:
            line += f"  {result['us_per_sample']:.3g} µs/sample"
            if fastbp_us:
                line += f" ({result['us_per_sample'] / fastbp_us:.2f}× fastbp)"
        print(line)


def print_floors(report):
    """fastbp's time against the FLOP floor, one line per case."""
    print("\nfastbp against the GEMM floor (6 × n_weights / rate per sample):")
    for case in report["cases"]:
        fastbp_result = case["contenders"].get("fastbp", {})
        if "fastbp_over_floor" in case:
            print(f"   {case['net']:>18s} b={case['batch_size']:<4d} {case['dtype']}  "
                  f"fastbp {fastbp_result['us_per_sample']:8.3g} µs  floor "
                  f"{case['floor_us_per_sample']:8.3g} µs  ratio {case['fastbp_over_floor']:7.2f}")


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------


NOTES = (
    "scikit-learn cannot train a sigmoid output on mse: MLPRegressor's output is the "
    "identity, and MLPClassifier (used here, on 0/1 targets) pairs its logistic output with "
    "the log-loss, whose δ_out = (y − t)/m lacks the factor σ'(a). The work differs by one "
    "elementwise multiply on the output block per batch; it is checked against NumPy running "
    "the log-loss rule.",
    "FANN's sigmoid is 1/(1 + exp(−2·s·x)): steepness s = 0.5 (its default) is the logistic "
    "function, s = 1.0 would be a sigmoid twice as steep. Its error function is set to linear "
    "(the default, tanh, reshapes y − t). Its derivative clips y to [0.01, 0.99], which only "
    "matters for saturated neurons; it is checked against NumPy running that clipped rule, "
    "to the same tolerances. It trains per sample only, so it enters the batch-1 cases.",
    "The pure-Python reference runs on at most 300 rows of networks up to 64-32-10, in "
    "float64 only; its µs per sample is over those rows.",
    "The floor counts 6 FLOPs (3 multiply-adds) per weight and sample: forward pass, δ to "
    "the layer below, weight gradient. Training needs no δ for the input layer, so the least work is 2·n_in·n_hidden "
    "FLOPs per sample smaller; with 784 inputs a time down to about 0.67× the floor is "
    "possible, and fastbp / floor slightly below 1 is no error.",
    "Every timed run starts once no thread of the process is busy (bench/idle.py): "
    "OpenBLAS's threads spin for about 0.1 s after a call, and a contender timed in that "
    "window shared its cores with the spinner of the one before or of the GEMM probe.",
    "The learning rates are powers of two (FANN takes a C float) and small enough that an "
    "epoch is not chaotic; at 0.25 with 784 standard-normal inputs, runs that differ in the "
    "last bit of one sigmoid end up O(1) apart, and no check could pass.",
)


def format_cell(result):
    """A table cell: µs/sample (ratio to fastbp, fraction of the GEMM rate)."""
    status = result.get("status")
    if status == "skipped":
        return "–"
    if status == "FAILED":
        return "FAILED"
    if "us_per_sample" not in result:
        return "✓"
    # ~ marks a median whose runs spread by more than NOISY_SPREAD (slowest / fastest)
    cell = f"{result['us_per_sample']:.3g}" + ("~" if result.get("spread", 1) > NOISY_SPREAD else "")
    extras = []
    if "ratio_to_fastbp" in result:
        extras.append(f"{result['ratio_to_fastbp']:.2f}×")
    if "gemm_fraction" in result:
        percent = 100 * result["gemm_fraction"]
        extras.append(f"{percent:.0f}%" if percent >= 10 else f"{percent:.2g}%")
    return cell + (f" ({', '.join(extras)})" if extras else "")


def check_cell(result):
    """A same-work table cell: ✓ and the larger relative error, or why not."""
    if result["status"] == "skipped":
        return "–"
    check = result.get("check")
    if check is None:
        return "FAILED (error)"
    worst = max(check["loss_error"], check["parameter_error"])
    mark = "✓" if check["passed"] else "FAILED"
    extra = (f", {check['loss_vs_mse_rule']:.1e} from mse rule"
             if "loss_vs_mse_rule" in check else "")
    return f"{mark} {worst:.0e}{extra}"


def skip_summary(report):
    """(contender, reason) -> the cases it skipped, for a compact list."""
    grouped = {}
    for case in report["cases"]:
        for name, result in case["contenders"].items():
            if result["status"] == "skipped":
                grouped.setdefault((name, result["reason"]), []).append(
                    f"{case['net']} b={case['batch_size']} {case['dtype']}")
    return grouped


def threads_sentence(threads):
    """The report's line on threads, for a count or "defaults"."""
    if threads == "defaults":
        return ("- Threads: each library's defaults (no thread variable, threadpoolctl limit, "
                "`n_threads` or `torch.set_num_threads`); the pools as found are listed below.")
    return (f"- Threads: {threads} for every library (threadpoolctl for the BLAS/OpenMP "
            "pools, `torch.set_num_threads`).")


def optimizer_column(report, case_or_title):
    """The optimiser cell of a table row (a case's name, or the column title),
    as a list: empty in plain SGD's reports, which have no such column."""
    if "optimizers" not in report:
        return []
    if isinstance(case_or_title, str):
        return [case_or_title]
    return [case_or_title.get("optimizer", SGD)]


def markdown_report(report):
    """The report as Markdown: setup, timings per dtype, checks, skips."""
    names = report["contenders"]
    lines = [f"# fastbp benchmark ({'quick: same-work checks only' if report['quick'] else 'full'})",
             "", f"Generated {report['generated']} by `bench/compare.py {report['command']}`.", ""]
    machine = report["machine"]
    lines += [
        "## Setup", "",
        f"- Machine: {machine['cpu']}, {machine['usable_cores']} usable cores "
        f"({machine['logical_cores']} logical), {machine['memory_gib']} GiB; "
        f"{machine['platform']}, Python {machine['python']}.",
        threads_sentence(report["threads"]),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + f"; fastbp checkout {report['fastbp_revision']}.",
        "- Thread pools: " + "; ".join(
            f"{p['library']} ({p['api']} {p['version'] or ''}, {p['threads']} threads)"
            for p in report["thread_pools"]) + ".",
        # with --optimizers, the optimisers are listed below; the rates are plain SGD's
        "- Training: " + ("" if "optimizers" in report else "plain SGD, ")
        + "sigmoid hidden and output layers, rows in order, one epoch per run from the same "
        "initial weights; " + ("plain SGD's lr " if "optimizers" in report else "lr ")
        + ", ".join(f"{net} {lr}" for net, lr in report["learning_rates"].items())
        + ("." if report["quick"] else f"; median of {report['repeats']} interleaved runs."),
        "- Load average (1, 5, 15 min) at start {} and end {}: other processes on the machine "
        "slow every contender alike, but add noise.".format(
            *(", ".join(f"{x:.2f}" for x in report[key])
              for key in ("load_average_at_start", "load_average_at_end"))),
    ]
    if report.get("gemm_gflops_at_start"):
        lines.append(
            f"- GEMM rate (NumPy, {GEMM_SIZE}×{GEMM_SIZE}, median of 3) at the start and the "
            "end of the run: " + ", ".join(
                f"{d} {report['gemm_gflops_at_start'][d]:.1f} and "
                f"{report['gemm_gflops_at_end'][d]:.1f} GFLOP/s" for d in DTYPES)
            + ". Each case also times one GEMM of its dtype (float32 for bfloat16 cases) per "
            "timing round, interleaved with "
            "the contenders; its median (column GEMM) sets the case's floor = 6 × n_weights "
            "/ rate per sample: one multiply-add per weight in each of the forward pass, the "
            "backward pass and the weight gradient.")
    if "optimizers" in report:
        lines += ["", "Optimisers (column opt.), each run by fastbp, NumPy and PyTorch (its "
                  "`torch.optim` class of the same name) with the same hyper-parameters and "
                  "a fresh state each run; the other contenders run plain SGD only "
                  "(bench/peers/optimizers.py):", ""]
        lines += [f"- **{name}**: {text}" for name, text in report["optimizers"].items()]
    lines += ["", "What each contender runs (the same-work check compares it with NumPy running "
              "exactly this rule):", ""]
    for name, description in report["contender_math"].items():
        lines.append(f"- **{name}**: {description}")
    for name, reason in report["unavailable"].items():
        lines.append(f"- **{name}**: not run: {reason}")
    lines += ["", "Notes:", ""] + [f"- {note}" for note in NOTES] + [""]

    if not report["quick"]:
        lines += ["", "## Time per sample", "",
                  "Cells: µs per sample (time / fastbp's, share of the GEMM rate reached = "
                  "floor / time). `~`: its slowest run took over "
                  f"{NOISY_SPREAD}× its fastest (a busy machine). `–`: not in scope (see "
                  "Skipped), `FAILED`: failed its same-work check, not timed.", ""]
        for dtype in PRECISIONS:
            cases = [c for c in report["cases"] if c["dtype"] == dtype]
            if not cases:
                continue
            header = (["net", "batch"] + optimizer_column(report, "opt.")
                      + ["rows", "GEMM GFLOP/s", "floor µs", "fastbp / floor"] + names)
            lines += [f"### {dtype}", "", "| " + " | ".join(header) + " |",
                      "|" + "---|" * len(header)]
            for case in cases:
                over = case.get("fastbp_over_floor")
                row = ([case["net"], str(case["batch_size"])] + optimizer_column(report, case)
                       + [str(case["rows"]), f"{case['gemm_gflops']:.0f}",
                          f"{case['floor_us_per_sample']:.3g}", f"{over:.2f}" if over else "–"])
                for name in names:
                    result = case["contenders"].get(name, {"status": "skipped"})
                    cell = format_cell(result)
                    if result.get("rows") not in (None, case["rows"]):
                        cell += f" [{result['rows']} rows]"
                    row.append(cell)
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")

    lines += ["## Same-work checks", "",
              "✓ and the larger of the relative loss error and the relative parameter error "
              "(max |Δp| / max |p|) against NumPy running the contender's rule; tolerance "
              f"{TOLERANCE['float64']:.0e} (float64), {TOLERANCE['float32']:.0e} (float32), "
              f"{TOLERANCE[BFLOAT16]:.0e} (bfloat16, against NumPy rounding every product's "
              "operands to bfloat16). "
              "For a rule other than mse, the distance of the final loss from the mse rule's "
              "follows.", "",
              "| " + " | ".join(["net", "batch", "dtype"] + optimizer_column(report, "opt.")
                                + ["rows"] + names) + " |",
              "|" + "---|" * (4 + len(optimizer_column(report, "opt.")) + len(names))]
    for case in report["cases"]:
        cells = [check_cell(case["contenders"].get(name, {"status": "skipped"}))
                 for name in names]
        lines.append("| " + " | ".join([case["net"], str(case["batch_size"]), case["dtype"]]
                                       + optimizer_column(report, case)
                                       + [str(case["rows"])] + cells) + " |")
    lines += ["", "## Skipped", ""]
    skips = skip_summary(report)
    if not skips and not report["unavailable"]:
        lines.append("Nothing.")
    for (name, reason), where in skips.items():
        lines.append(f"- {name}: {reason} ({len(where)} cases)")
    failures = report["failures"]
    lines += ["", "## Failures", ""]
    lines += [f"- {failure}" for failure in failures] or ["None."]
    return "\n".join(lines) + "\n"


def plot_report(report, path):
    """µs per sample of every contender and the floor, one panel per dtype, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = [d for d in PRECISIONS if any(c["dtype"] == d for c in report["cases"])]
    figure, axes = plt.subplots(len(dtypes), 1, figsize=(15, 5.2 * len(dtypes)), squeeze=False)
    names = report["contenders"]
    markers = dict(zip(names, "os^DvP*X"))
    for axis, dtype in zip(axes[:, 0], dtypes):
        cases = [c for c in report["cases"] if c["dtype"] == dtype]
        positions = np.arange(len(cases))
        for index, name in enumerate(names):
            values = [c["contenders"].get(name, {}).get("us_per_sample", np.nan) for c in cases]
            if np.all(np.isnan(values)):
                continue
            dodge = 0.07 * (index - (len(names) - 1) / 2)  # side by side, not on top
            axis.plot(positions + dodge, values, linestyle="none", marker=markers[name],
                      markersize=7, label=name)
        axis.plot(positions, [c["floor_us_per_sample"] for c in cases], linestyle="none",
                  marker="_", markersize=18, color="black", label="GEMM floor")
        axis.set_yscale("log")
        axis.set_xticks(positions)
        axis.set_xticklabels([" ".join([f"b={c['batch_size']}"] + optimizer_column(report, c))
                              for c in cases], fontsize=8,
                             rotation=90 if "optimizers" in report else 0)
        # one network name under each group of batch sizes
        below_ticks = matplotlib.transforms.blended_transform_factory(axis.transData,
                                                                      axis.transAxes)
        nets = list(dict.fromkeys(c["net"] for c in cases))
        for net in nets:
            group = [i for i, c in enumerate(cases) if c["net"] == net]
            axis.text(np.mean(group), -0.075, net, transform=below_ticks, ha="center",
                      va="top", fontsize=9)
            if group[0] > 0:
                axis.axvline(group[0] - 0.5, color="0.85", linewidth=1)
        axis.set_ylabel("training time per sample (µs, log scale)")
        axis.set_xlabel("network and batch size b (one epoch, plain SGD, sigmoid layers)",
                        labelpad=24)
        threads = ("each library's default threads" if report["threads"] == "defaults"
                   else f"{report['threads']} thread(s)")
        axis.set_title(f"{dtype}, {threads} — {report['machine']['cpu']}")
        axis.grid(True, which="major", axis="y", alpha=0.4)
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def select(values, option, convert=str):
    """``values`` filtered by a comma-separated command-line option (None: all)."""
    if option is None:
        return tuple(values)
    wanted = [convert(item.strip()) for item in option.split(",") if item.strip()]
    unknown = [w for w in wanted if w not in values]
    if unknown:
        raise SystemExit(f"unknown choice(s) {unknown}; pick from {list(values)}")
    return tuple(v for v in values if v in wanted)


def write_reports(report, json_path, plot=True):
    """Write the Markdown and (unless ``plot`` is false) the PNG beside ``json_path``."""
    written = [json_path.with_suffix(".md")]
    written[0].write_text(markdown_report(report))
    if plot and not report["quick"]:
        try:
            plot_report(report, json_path.with_suffix(".png"))
            written.append(json_path.with_suffix(".png"))
        except ImportError as error:
            print(f"note: no plot ({error}); pip install matplotlib")
    return written


def run_each_setting(arguments):
    """One child interpreter per --threads setting; the worst exit code."""
    import subprocess
    argv = sys.argv[1:]
    at = argv.index("--threads") if "--threads" in argv else None
    codes = []
    for setting in arguments.threads:
        child = list(argv)
        if at is not None:
            child[at + 1] = str(setting)
        else:
            child = [a for a in child if not a.startswith("--threads=")] + [
                "--threads", str(setting)]
        print(f"\n== --threads {setting}", flush=True)
        codes.append(subprocess.run([sys.executable, __file__, *child]).returncode)
    return max(codes)


def main(arguments):
    """Run the benchmark; return the process exit code (1 when a check failed)."""
    if isinstance(arguments.threads, list):
        return run_each_setting(arguments)
    if arguments.render is not None:
        report = json.loads(arguments.render.read_text())
        written = write_reports(report, arguments.render, plot=not arguments.no_plot)
        print("wrote " + ", ".join(str(p) for p in written))
        return 0

    networks = QUICK_NETWORKS if arguments.quick else FULL_NETWORKS
    networks = [n for n in networks
                if n.name in select([n.name for n in networks], arguments.nets)]
    batch_sizes = select(BATCH_SIZES, arguments.batch_sizes, int)
    dtypes = select(DTYPES, arguments.dtypes) + ((BFLOAT16,) if arguments.compute else ())
    optimizers = select(OPTIMIZER_NAMES, arguments.optimizers)
    contender_names = None if arguments.contenders is None else set(
        select([load_peer(m).NAME for m in PEER_MODULES], arguments.contenders))

    peers, unavailable = load_contenders(contender_names)
    thread_pools = pin_threads(arguments.threads, peers)
    started = time.perf_counter()
    report = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(sys.argv[1:]), "quick": arguments.quick,
        "threads": arguments.threads, "repeats": arguments.repeats,
        "machine": machine_description(), "versions": library_versions(peers),
        "fastbp_revision": source_revision(),
        "thread_pools": thread_pools, "tolerance": TOLERANCE,
        "load_average_at_start": os.getloadavg(),
        "contenders": [peer.NAME for peer in peers],
        "learning_rates": {spec.name: spec.lr for spec in networks},
        "contender_math": {peer.NAME: VARIANTS[peer.MATH]["description"]
                           + ("" if peer.MATH == "mse" else f" (rule '{peer.MATH}', see "
                              f"bench/peers/{peer.__name__.split('.')[-1]}.py)")
                           for peer in peers},
        "unavailable": unavailable, "cases": [], "failures": [],
    }
    if optimizers != (SGD,):  # plain SGD's reports keep their fields
        report["optimizers"] = {
            name: "plain SGD at the network's lr" if name == SGD else
            f"{OPTIMIZER_RULES[name].description}; lr = plain SGD's × "
            f"{OPTIMIZER_RULES[name].lr_fraction:g}"
            for name in optimizers}
    print(f"threads: {arguments.threads}; contenders: {', '.join(report['contenders'])}")
    if not arguments.quick:
        rates_at_start = gemm_rates()
        print("GEMM rate: " + ", ".join(f"{d} {r / 1e9:.1f} GFLOP/s"
                                        for d, r in rates_at_start.items()))

    for case in build_cases(networks, batch_sizes, dtypes, arguments.scale, optimizers):
        case_result = run_case(case, peers, arguments.repeats, check_only=arguments.quick,
                               warm_up=arguments.threads != 1)
        print_case(case_result, arguments.quick)
        report["cases"].append(case_result)
        for name, result in case_result["contenders"].items():
            if result["status"] == "FAILED":
                report["failures"].append(f"{case.label} {name}: {result.get('reason')}")
    report["seconds"] = time.perf_counter() - started
    report["load_average_at_end"] = os.getloadavg()
    if not arguments.quick:
        rates_at_end = gemm_rates()
        report["gemm_gflops_at_start"] = {d: r / 1e9 for d, r in rates_at_start.items()}
        report["gemm_gflops_at_end"] = {d: r / 1e9 for d, r in rates_at_end.items()}
        print("\nGEMM rate at the end: " + ", ".join(
            f"{d} {r / 1e9:.1f} GFLOP/s" for d, r in rates_at_end.items()))
        for case_result in report["cases"]:
            add_floors(case_result)
        print_floors(report)

    arguments.out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if arguments.quick else f"compare_{thread_label(arguments.threads)}"
    if optimizers != (SGD,):
        stem += "_optimizers"
    if arguments.compute:
        stem += f"_{arguments.compute}"
    if arguments.nets or arguments.batch_sizes or arguments.dtypes or arguments.contenders \
            or arguments.scale != 1.0:
        stem += "_partial"
    json_path = arguments.out / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    written = [json_path] + write_reports(report, json_path, plot=not arguments.no_plot)

    checks = [r for c in report["cases"] for r in c["contenders"].values()
              if r["status"] != "skipped"]
    print(f"\n{sum(r['status'] == 'ok' for r in checks)} passed, "
          f"{sum(r['status'] == 'FAILED' for r in checks)} failed "
          f"(same-work checks, {report['seconds']:.1f} s)")
    for failure in report["failures"]:
        print(f"FAILED: {failure}")
    print("wrote " + ", ".join(str(p) for p in written))
    if arguments.targets:
        # a fresh interpreter: this one pinned every BLAS pool to --threads at start,
        # and the targets need 1 and 2 threads
        import subprocess
        print("\n== speed targets (bench/targets.py)", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in (
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}
        subprocess.run([sys.executable, str(BENCH_DIR / "targets.py"), "--repeats",
                        str(max(arguments.repeats, 5)), "--out", str(arguments.out)],
                       env=env, check=True)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(ARGUMENTS))
