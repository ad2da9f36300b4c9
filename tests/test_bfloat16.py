"""bfloat16 rounding and products (csrc/fastbp_bf16.h) against NumPy emulations.

Each product path the machine runs (AMX, AVX512-BF16, the emulated one) is
forced in turn with _kernels.set_bf16_path, and checked against the product
of the bfloat16-rounded inputs in float64, to float32 rounding of sums of k
terms; the emulated path is checked bit for bit against the same sums done
in NumPy float32."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from fastbp import _kernels

PATHS = ["emulated", "avx512bf16", "amx"]


@pytest.fixture(params=PATHS)
def bf16_path(request):
    """Run a test on one bfloat16 product path, skipped where it cannot run."""
    if request.param not in _kernels.bf16_paths():
        pytest.skip(f"this machine does not run the {request.param} path")
    _kernels.set_bf16_path(request.param)
    try:
        yield request.param
    finally:
        _kernels.set_bf16_path("auto")


@pytest.fixture
def rng():
    return np.random.default_rng(2929)


def round_bf16_reference(x):
    """float32 -> bfloat16 bit patterns (uint16), nearest with ties to even,
    by choosing between the two neighbours in float64: the bfloat16 just
    below |x| (x's top 16 bits) and the one above (next pattern up)."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32)
    low = (bits >> 16).astype(np.uint32)  # truncated toward zero
    high = low + 1
    with np.errstate(invalid="ignore"):  # signalling NaNs cast to float64
        value_low = widen_reference(low).astype(np.float64)
        value_high = widen_reference(high).astype(np.float64)
        # past the largest bfloat16 the next value up is 2^128 (unbounded
        # exponent), which IEEE rounding then turns into infinity
        value_high = np.where(np.isinf(value_high) & ~np.isinf(value_low),
                              np.copysign(2.0 ** 128, value_low), value_high)
        below = np.abs(x.astype(np.float64) - value_low)
        above = np.abs(value_high - x.astype(np.float64))
    pick_high = (above < below) | ((above == below) & (low % 2 == 1))
    out = np.where(pick_high, high, low)
    out = np.where(np.isnan(x), (bits >> 16) | 0x40, out)  # NaN: quiet, sign kept
    out = np.where(np.isinf(x), bits >> 16, out)
    return out.astype(np.uint16)


def widen_reference(h):
    return (np.asarray(h, np.uint16).astype(np.uint32) << 16).view(np.float32)


def rounded(x):
    """x's values after rounding to bfloat16, in float64."""
    return widen_reference(round_bf16_reference(x)).astype(np.float64)


# ---- rounding ---------------------------------------------------------------

def test_rounding_known_values():
    eps = 2.0 ** -7  # bfloat16's spacing at 1
    cases = [  # (x, its bfloat16 value); a list: 0.0 and -0.0 are one dict key
        (1.0, 1.0),
        (1 + eps / 2, 1.0),                       # tie: to the even neighbour, 1
        (1 + 3 * eps / 2, 1 + 2 * eps),           # tie: to 1 + 2 eps, not 1 + eps
        (1 + eps / 2 + 2.0 ** -20, 1 + eps),      # just past the tie: up
        (-(1 + eps / 2 + 2.0 ** -20), -(1 + eps)),
        (3.1415927, 3.140625),
        (65504.0, 65536.0),
        (0.0, 0.0),
        (-0.0, -0.0),
        (np.inf, np.inf),
        (-np.inf, -np.inf),
        (float(np.finfo(np.float32).max), np.inf),  # past bfloat16's largest: infinity
    ]
    x = np.array([c[0] for c in cases], np.float32)
    got = _kernels.bf16_widen(_kernels.bf16_round(x))
    want = np.array([c[1] for c in cases], np.float32)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_rounding_matches_the_reference_on_random_and_edge_bits(rng):
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    # the ties and their neighbours, denormals, near-overflow values
    ties = (rng.integers(0, 2**16, size=20_000).astype(np.uint32) << 16) | 0x8000
    edges = np.concatenate([ties, ties - 1, ties + 1,
                            np.arange(0, 70_000, dtype=np.uint32),            # +denormals
                            np.arange(0x80000000, 0x80011170, dtype=np.uint32),  # -denormals
                            np.arange(0x7f7f0000, 0x7f800001, dtype=np.uint32)])
    x = np.concatenate([bits, edges]).view(np.float32)
    got = _kernels.bf16_round(x)
    want = round_bf16_reference(x)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(got[finite], want[finite])
    np.testing.assert_array_equal(got[~finite & ~np.isnan(x)], want[~finite & ~np.isnan(x)])


def test_nan_stays_nan_and_keeps_its_sign():
    # signalling and quiet NaNs whose payload would round into the exponent
    bits = np.array([0x7f800001, 0x7fbfffff, 0x7fc00000, 0x7fffffff, 0xff800001,
                     0xffffffff, 0x7f80ffff], np.uint32)
    got = _kernels.bf16_widen(_kernels.bf16_round(bits.view(np.float32)))
    assert np.isnan(got).all()
    np.testing.assert_array_equal(np.signbit(got), bits >= 0x80000000)


def test_denormals_round_to_the_nearest_denormal():
    x = np.array([1e-40, -3e-39, 2.0 ** -133, 9.2e-41], np.float32)
    got = _kernels.bf16_widen(_kernels.bf16_round(x)).astype(np.float64)
    spacing = 2.0 ** -133  # bfloat16's denormal step
    assert (got != 0).all()
    assert (np.abs(got - x.astype(np.float64)) <= spacing / 2).all()
    np.testing.assert_array_equal(got, rounded(x))


def test_widen_is_exact_on_every_pattern():
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    got = _kernels.bf16_widen(h)
    np.testing.assert_array_equal(got.view(np.uint32), h.astype(np.uint32) << 16)
    # and rounding a widened value gives its pattern back (NaNs: quiet)
    back = _kernels.bf16_round(got)
    is_nan = np.isnan(got)
    np.testing.assert_array_equal(back[~is_nan], h[~is_nan])
    np.testing.assert_array_equal(back[is_nan], h[is_nan] | 0x40)


def test_empty_arrays():
    assert _kernels.bf16_round(np.empty(0, np.float32)).shape == (0,)
    assert _kernels.bf16_widen(np.empty(0, np.uint16)).shape == (0,)


# ---- products ---------------------------------------------------------------

SHAPES = [  # m, n, k: ragged edges, k = 1, the MLP's batch shapes, large k
    (1, 1, 1), (5, 7, 3), (33, 65, 31), (17, 100, 1), (3, 40, 2), (16, 16, 32),
    (32, 32, 33), (47, 97, 130), (128, 256, 784), (128, 10, 128), (128, 784, 256),
    (784, 256, 128), (40, 50, 3000), (200, 70, 600), (20, 33, 512), (64, 64, 1024),
    (300, 530, 40),
]


def product_reference(A, B, C0=None):
    """op(A).op(B) of the bfloat16-rounded inputs in float64 (+ C0), and the
    bound on float32 rounding of sums of k terms: k u (|A|.|B| + |C0|)."""
    Ar, Br = rounded(A), rounded(B)
    exact = Ar @ Br
    scale = np.abs(Ar) @ np.abs(Br)
    if C0 is not None:
        exact = exact + C0
        scale = scale + np.abs(C0)
    k = A.shape[1]
    return exact, (k + 2) * 2.0 ** -24 * scale + 1e-37


def check_product(C, A, B, C0=None):
    exact, bound = product_reference(A, B, C0)
    err = np.abs(C.astype(np.float64) - exact)
    assert np.isfinite(C).all()
    assert (err <= bound).all(), f"worst excess {np.max(err / bound):.3g}x the bound"


@pytest.mark.parametrize("m, n, k", SHAPES)
def test_product_equals_the_emulation(bf16_path, rng, m, n, k):
    A = rng.normal(size=(m, k)).astype(np.float32)
    B = rng.normal(size=(k, n)).astype(np.float32)
    C = np.full((m, n), np.nan, np.float32)
    _kernels.bf16_gemm(A, B, C)
    check_product(C, A, B)


@pytest.mark.parametrize("m, n, k", [(5, 7, 3), (33, 65, 31), (128, 256, 784), (64, 10, 129)])
def test_accumulating_and_transposed_products(bf16_path, rng, m, n, k):
    A = rng.normal(size=(m, k)).astype(np.float32)
    B = rng.uniform(-3, 3, size=(k, n)).astype(np.float32)
    C0 = rng.normal(size=(m, n)).astype(np.float32)
    C = C0.copy()
    _kernels.bf16_gemm(A, B, C, accumulate=True)
    check_product(C, A, B, C0.astype(np.float64))
    # the weight gradient z^T.delta (A stored k x m) and the delta product
    # delta.W^T (B stored n x k) read their operands in place
    for trans_a, trans_b in [(True, False), (False, True), (True, True)]:
        At = np.ascontiguousarray(A.T) if trans_a else A
        Bt = np.ascontiguousarray(B.T) if trans_b else B
        C = np.full((m, n), np.nan, np.float32)
        _kernels.bf16_gemm(At, Bt, C, trans_a=trans_a, trans_b=trans_b)
        check_product(C, A, B)


def test_inputs_are_rounded_to_bfloat16_first(bf16_path):
    # 1 + 2^-9 rounds to 1 in bfloat16: a float32 product would give k (1 + 2^-9)
    k = 64
    A = np.full((3, k), 1 + 2.0 ** -9, np.float32)
    B = np.ones((k, 5), np.float32)
    C = np.empty((3, 5), np.float32)
    _kernels.bf16_gemm(A, B, C)
    np.testing.assert_array_equal(C, np.full((3, 5), k, np.float32))


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 5, 3), (33, 65, 31), (40, 37, 200)])
def test_emulated_path_gives_the_bits_of_numpy_float32(rng, m, n, k):
    """The emulated path sums each pair of products (exact in float32) in
    float32 and adds the pairs in order, as NumPy float32 does here."""
    _kernels.set_bf16_path("emulated")
    try:
        A = rng.normal(size=(m, k)).astype(np.float32)
        B = rng.normal(size=(k, n)).astype(np.float32)
        C = rng.normal(size=(m, n)).astype(np.float32)
        want = C.copy()
        _kernels.bf16_gemm(A, B, C, accumulate=True)
    finally:
        _kernels.set_bf16_path("auto")
    Ar = rounded(A).astype(np.float32)
    Br = rounded(B).astype(np.float32)
    Ar = np.pad(Ar, ((0, 0), (0, k % 2)))
    Br = np.pad(Br, ((0, k % 2), (0, 0)))
    for q in range(0, k, 2):
        pair = Ar[:, q, None] * Br[q] + Ar[:, q + 1, None] * Br[q + 1]
        want = want + pair
    np.testing.assert_array_equal(C, want)


def test_products_write_only_inside_the_result(bf16_path, rng):
    # a guard band of NaN around C: edge tiles (AMX's 32 x 32 blocks, the
    # masked vectors) must leave it untouched
    m, n, k, guard = 35, 41, 70, 128
    A = rng.normal(size=(m, k)).astype(np.float32)
    B = rng.normal(size=(k, n)).astype(np.float32)
    for accumulate in (False, True):
        band = np.full(2 * guard + m * n, np.nan, np.float32)
        C = band[guard:guard + m * n].reshape(m, n)
        C[...] = 0
        _kernels.bf16_gemm(A, B, C, accumulate=accumulate)
        assert np.isnan(band[:guard]).all() and np.isnan(band[-guard:]).all()
        check_product(C, A, B)


def test_nan_and_inf_reach_their_rows(bf16_path, rng):
    m, n, k = 20, 33, 40
    A = rng.normal(size=(m, k)).astype(np.float32)
    B = rng.normal(size=(k, n)).astype(np.float32)
    A[3, 5] = np.nan
    A[7, 0] = np.inf
    B[:, 4] = 0  # inf * 0: NaN in row 7, column 4
    C = np.empty((m, n), np.float32)
    _kernels.bf16_gemm(A, B, C)
    assert np.isnan(C[3]).all()
    assert np.isinf(np.delete(C[7], 4)).all() and np.isnan(C[7, 4])
    others = np.delete(np.arange(m), [3, 7])
    check_product(C[others], A[others], B)


def test_empty_inner_dimension_gives_zero_or_leaves_c(bf16_path):
    A = np.empty((4, 0), np.float32)
    B = np.empty((0, 6), np.float32)
    C = np.full((4, 6), 2.5, np.float32)
    _kernels.bf16_gemm(A, B, C, accumulate=True)
    np.testing.assert_array_equal(C, 2.5)
    _kernels.bf16_gemm(A, B, C)
    np.testing.assert_array_equal(C, 0)
    C[...] = 1.5
    _kernels.bf16_gemm_packed(_kernels.bf16_pack_a(A), _kernels.bf16_pack_b(B), C, 0,
                              accumulate=True)
    np.testing.assert_array_equal(C, 1.5)
    _kernels.bf16_gemm_packed(_kernels.bf16_pack_a(A), _kernels.bf16_pack_b(B), C, 0)
    np.testing.assert_array_equal(C, 0)


def pack_a_reference(A):
    """A's pack: rows of round(A), zeros up to multiples of 32 rows and
    columns, and 32 more columns where the rows would be a multiple of 1 KiB."""
    m, k = A.shape
    k_pad = -(-k // 32) * 32
    lda = k_pad + (32 if k_pad % 512 == 0 and k > 0 else 0)
    out = np.zeros((-(-m // 32) * 32, lda), np.uint16)
    out[:m, :k] = round_bf16_reference(A)
    return out.ravel()


def pack_b_reference(B):
    """B's pack: panels of 32 columns, each k/2 rows of (B[2q, j], B[2q+1, j])."""
    k, n = B.shape
    k_pad, n_pad = -(-k // 32) * 32, -(-n // 32) * 32
    padded = np.zeros((k_pad, n_pad), np.uint16)
    padded[:k, :n] = round_bf16_reference(B)
    # [panel, q, column in panel, which of the pair]
    pairs = padded.reshape(k_pad // 2, 2, n_pad // 32, 32).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(pairs).ravel()


@pytest.mark.parametrize("rows, cols", [(1, 1), (5, 7), (33, 64), (64, 33), (100, 3), (3, 512),
                                        (513, 2)])
def test_packs_hold_the_rounded_operands_in_their_layout(rng, rows, cols):
    X = rng.normal(size=(rows, cols)).astype(np.float32)
    np.testing.assert_array_equal(_kernels.bf16_pack_a(X), pack_a_reference(X))
    np.testing.assert_array_equal(_kernels.bf16_pack_b(X), pack_b_reference(X))
    Xt = np.ascontiguousarray(X.T)
    np.testing.assert_array_equal(_kernels.bf16_pack_a(Xt, trans=True), pack_a_reference(X))
    np.testing.assert_array_equal(_kernels.bf16_pack_b(Xt, trans=True), pack_b_reference(X))


def test_packed_product_gives_the_bits_of_the_whole_call(bf16_path, rng):
    m, n, k = 45, 70, 300
    A = rng.normal(size=(m, k)).astype(np.float32)
    B = rng.normal(size=(k, n)).astype(np.float32)
    C = np.empty((m, n), np.float32)
    _kernels.bf16_gemm(A, B, C)
    C_packed = np.empty((m, n), np.float32)
    _kernels.bf16_gemm_packed(_kernels.bf16_pack_a(A), _kernels.bf16_pack_b(B), C_packed, k)
    np.testing.assert_array_equal(C_packed, C)
    with pytest.raises(ValueError, match="packs do not hold"):
        _kernels.bf16_gemm_packed(_kernels.bf16_pack_a(A), _kernels.bf16_pack_b(B), C_packed,
                                  k + 40)


@pytest.mark.parametrize("row0, rows, col0, cols", [(0, 100, 0, 90), (32, 68, 0, 17),
                                                    (64, 5, 32, 58), (96, 4, 64, 26),
                                                    (0, 33, 64, 1)])
def test_blocks_of_the_packs_give_the_blocks_of_the_product(bf16_path, rng, row0, rows, col0,
                                                           cols):
    # what threads sharing one pack compute: their block of C, the same bits
    m, n, k = 100, 90, 70
    A = rng.normal(size=(m, k)).astype(np.float32)
    B = rng.normal(size=(k, n)).astype(np.float32)
    Ap, Bp = _kernels.bf16_pack_a(A), _kernels.bf16_pack_b(B)
    whole = np.empty((m, n), np.float32)
    _kernels.bf16_gemm_packed(Ap, Bp, whole, k)
    block = np.full((rows, cols), np.nan, np.float32)
    _kernels.bf16_gemm_packed(Ap, Bp, block, k, row0=row0, col0=col0)
    np.testing.assert_array_equal(block, whole[row0:row0 + rows, col0:col0 + cols])


def test_blocks_must_start_on_32_and_stay_inside_the_packs(rng):
    A = np.ones((40, 8), np.float32)
    B = np.ones((8, 40), np.float32)
    Ap, Bp = _kernels.bf16_pack_a(A), _kernels.bf16_pack_b(B)
    with pytest.raises(ValueError, match="multiples of 32"):
        _kernels.bf16_gemm_packed(Ap, Bp, np.empty((4, 4), np.float32), 8, row0=16)
    with pytest.raises(ValueError, match="packs do not hold"):
        _kernels.bf16_gemm_packed(Ap, Bp, np.empty((40, 4), np.float32), 8, row0=32)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="do not multiply"):
        _kernels.bf16_gemm(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32),
                           np.empty((3, 2), np.float32))


# ---- the path switch --------------------------------------------------------

def test_the_emulated_path_always_runs_and_can_be_forced():
    paths = _kernels.bf16_paths()
    assert paths[0] == "emulated" and set(paths) <= set(PATHS)
    old = _kernels.set_bf16_path("emulated")
    try:
        assert _kernels.bf16_path() == "emulated"
        assert old in paths
    finally:
        _kernels.set_bf16_path("auto")
    assert _kernels.bf16_path() == paths[-1]  # auto: the fastest that runs


def test_unknown_or_missing_paths_are_refused():
    before = _kernels.bf16_path()
    with pytest.raises(ValueError, match="must be 'auto' or one of"):
        _kernels.set_bf16_path("fp8")
    missing = [p for p in PATHS if p not in _kernels.bf16_paths()]
    for name in missing:
        with pytest.raises(ValueError, match="does not run on this machine"):
            _kernels.set_bf16_path(name)
    assert _kernels.bf16_path() == before


def test_paths_match_the_cpu_flags():
    """Where Linux lists the instructions, the paths run (AMX also needs the
    kernel's permission, which a Linux new enough to list amx_tile grants)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split())
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo")
    paths = _kernels.bf16_paths()
    assert ("avx512bf16" in paths) == ({"avx512f", "avx512_bf16"} <= flags)
    if "amx" in paths:
        assert {"amx_tile", "amx_bf16"} <= flags


REFUSE_AMX = r"""
/* An LD_PRELOAD shim: the kernel refuses ARCH_REQ_XCOMP_PERM (as a Linux
 * without AMX support, or a seccomp policy, would); other syscalls pass. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long number, ...)
{
    static long (*real)(long, ...);
    long a[6];
    va_list ap;
    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_arch_prctl && a[0] == 0x1023) {
        errno = EPERM;
        return -1;
    }
    if (!real)
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""

REFUSED_CHILD = """
import numpy as np
from fastbp import _kernels
paths = _kernels.bf16_paths()
rng = np.random.default_rng(1)
A = rng.normal(size=(40, 70)).astype(np.float32)
B = rng.normal(size=(70, 50)).astype(np.float32)
C = np.empty((40, 50), np.float32)
_kernels.bf16_gemm(A, B, C)
try:
    _kernels.set_bf16_path("amx")
    forced = "amx"
except ValueError:
    forced = "refused"
print(paths, _kernels.bf16_path(), forced, float(np.abs(C - A @ B).max()))
"""


def test_amx_refused_by_the_os_falls_back():
    """Where the CPU has AMX, a process whose arch_prctl(ARCH_REQ_XCOMP_PERM)
    fails runs the next path, and refuses to be forced onto AMX."""
    if "amx" not in _kernels.bf16_paths():
        pytest.skip("no AMX here for the OS to refuse")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler for the LD_PRELOAD shim")
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "refuse_amx.c")
        shim = os.path.join(tmp, "refuse_amx.so")
        with open(source, "w") as f:
            f.write(REFUSE_AMX)
        subprocess.run([compiler, "-shared", "-fPIC", "-O1", source, "-o", shim, "-ldl"],
                       check=True, capture_output=True)
        env = dict(os.environ, LD_PRELOAD=shim)
        out = subprocess.run([sys.executable, "-c", REFUSED_CHILD], env=env, check=True,
                             capture_output=True, text=True, timeout=120).stdout.split()
    paths_text, path, forced, error = " ".join(out[:-3]), out[-3], out[-2], float(out[-1])
    assert "amx" not in paths_text and "emulated" in paths_text
    assert path == ("avx512bf16" if "avx512bf16" in _kernels.bf16_paths() else "emulated")
    assert forced == "refused"
    assert error < 0.1  # a bfloat16 product (inputs rounded to 8 bits), not garbage
