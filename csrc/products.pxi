# Matrix products, row-major, always accumulating: C += op(A) . op(B).
# Small products run as plain loops, the rest on the register tiles of
# csrc/fastbp_gemm.h (AVX-512) and BLAS for what the tiles leave.

cdef extern from "fastbp_gemm.h" nogil:
    Py_ssize_t fbp_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                          const float* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                          const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc)
    Py_ssize_t fbp_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                          const double* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                          const double* B, Py_ssize_t ldb, double* C, Py_ssize_t ldc)
    int fbp_gemm_enable(int on)
    int fbp_gemm_available()
    Py_ssize_t fbp_gemm_columns(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, Py_ssize_t a_rs,
                                Py_ssize_t a_cs, Py_ssize_t ldb, size_t item)


# Below this many multiply-adds a gemm call costs more than plain loops.
# Measured on 1 thread when it was set (59bd0c9; the timing script was not
# kept, set_blas_min_flops moves it): loops win only for products of
# about 100 multiply-adds or fewer (a 2-2-1 net); from a 4-8-3 net at
# batch 4 on, OpenBLAS is faster, and 3-4x faster at 64-32-10.
cdef Py_ssize_t BLAS_MIN_FLOPS = 128


# Up to this many rows of op(A), a product without fastbp's tiles (a CPU
# without AVX-512) runs as one BLAS gemv per row: OpenBLAS's gemm packs all
# of B on every call, which for one row costs ~10x the product itself (a
# one-row predict of 784-256-128-10 float32 took 212 us on an AMD EPYC, Zen 3,
# where onnxruntime takes 27). Each further row reads B again, so from about
# 5 rows one gemm is faster (tools/few_row_predict.py).
cdef int GEMV_MAX_ROWS = 4


cdef void _blas_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                     floating alpha, const floating* A, int lda,
                     const floating* B, int ldb, floating* C,
                     int ldc) noexcept nogil:
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T,
    # so BLAS gets the operands swapped.
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef floating one = 1.0
    cdef int r, inc = 1
    # op(B)^T as BLAS sees it: B's rows are its columns, (n x k), or with
    # trans_b (k x n), transposed by gemv
    cdef int gemv_m = k if trans_b else n
    cdef int gemv_n = n if trans_b else k
    if not trans_a and m <= GEMV_MAX_ROWS and not fbp_gemm_available():
        for r in range(m):  # C_r^T += op(B)^T A_r^T
            if floating is float:
                sgemv(&ta, &gemv_m, &gemv_n, &alpha, <float*>B, &ldb, <float*>A + r * lda,
                      &inc, &one, C + r * ldc, &inc)
            else:
                dgemv(&ta, &gemv_m, &gemv_n, &alpha, <double*>B, &ldb, <double*>A + r * lda,
                      &inc, &one, C + r * ldc, &inc)
        return
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &one, C, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &one, C, &ldc)


cdef inline int _tiled_gemm(int m, int n, int k, floating alpha, const floating* A,
                            Py_ssize_t a_rs, Py_ssize_t a_cs, const floating* B,
                            Py_ssize_t ldb, floating* C, Py_ssize_t ldc) noexcept nogil:
    # csrc/fastbp_gemm.h: the leading columns it covers, BLAS does the rest
    if floating is float:
        return <int>fbp_gemm_f(m, n, k, alpha, A, a_rs, a_cs, B, ldb, C, ldc)
    else:
        return <int>fbp_gemm_d(m, n, k, alpha, A, a_rs, a_cs, B, ldb, C, ldc)


cdef void gemm_nn(int m, int n, int k, const floating* A, const floating* B,
                  floating* C) noexcept nogil:
    """C (m x n) += A (m x k) . B (k x n)."""
    gemm_nn_ld(m, n, k, A, k, B, n, C, n)


cdef void gemm_nn_ld(int m, int n, int k, const floating* A, int lda, const floating* B,
                     int ldb, floating* C, int ldc) noexcept nogil:
    """gemm_nn on blocks: A's, B's and C's rows are lda, ldb and ldc apart."""
    cdef Py_ssize_t r, i, j
    cdef floating s
    cdef const floating* b_row
    cdef floating* c_row
    cdef int done
    if <Py_ssize_t>m * n * k >= BLAS_MIN_FLOPS:
        done = _tiled_gemm(m, n, k, 1, A, lda, 1, B, ldb, C, ldc)
        if done < n:
            _blas_gemm(False, False, m, n - done, k, 1, A, lda, B + done, ldb, C + done, ldc)
        return
    for r in range(m):
        c_row = C + r * ldc
        for i in range(k):
            s = A[r * lda + i]
            b_row = B + i * ldb
            # axpy over a contiguous row: vectorises without reassociation
            for j in range(n):
                c_row[j] += s * b_row[j]


cdef bint gemm_nn_computes_a_column(int m, int n, int k, floating* dtype_tag) noexcept nogil:
    """Whether gemm_nn(m, n, k) computes at least one column of C in fastbp's
    own code (the loops or the tiles), which multiply every entry of A by
    B's entries: a NaN or infinity in a row of A then makes that row of the
    column non-finite, whatever BLAS leaves out."""
    if <Py_ssize_t>m * n * k < BLAS_MIN_FLOPS:
        return True
    return fbp_gemm_columns(m, n, k, k, 1, n, sizeof(floating)) > 0


cdef void gemm_nt(int m, int n, int k, const floating* A, const floating* B,
                  floating* C) noexcept nogil:
    """C (m x n) += A (m x k) . B^T, with B stored (n x k)."""
    gemm_nt_ld(m, n, k, A, B, C, n)


cdef void gemm_nt_ld(int m, int n, int k, const floating* A, const floating* B,
                     floating* C, int ldc) noexcept nogil:
    """gemm_nt into a block of C whose rows are ldc apart."""
    cdef Py_ssize_t r, i, j
    cdef floating s0, s1, s2, s3
    cdef const floating* a_row
    cdef const floating* b_row
    if <Py_ssize_t>m * n * k >= BLAS_MIN_FLOPS:
        _blas_gemm(False, True, m, n, k, 1, A, k, B, k, C, ldc)
        return
    for r in range(m):
        a_row = A + r * k
        for i in range(n):
            b_row = B + i * k
            # four accumulators let the compiler keep several sums in flight
            s0 = 0; s1 = 0; s2 = 0; s3 = 0
            j = 0
            while j + 4 <= k:
                s0 += a_row[j] * b_row[j]
                s1 += a_row[j + 1] * b_row[j + 1]
                s2 += a_row[j + 2] * b_row[j + 2]
                s3 += a_row[j + 3] * b_row[j + 3]
                j += 4
            while j < k:
                s0 += a_row[j] * b_row[j]
                j += 1
            C[r * ldc + i] += (s0 + s1) + (s2 + s3)


cdef void gemm_tn(int m, int n, int k, floating alpha, const floating* A,
                  const floating* B, floating* C) noexcept nogil:
    """C (m x n) += alpha A^T . B, with A stored (k x m) and B stored (k x n)."""
    gemm_tn_ld(m, n, k, alpha, A, m, B, C)


cdef void gemm_tn_ld(int m, int n, int k, floating alpha, const floating* A,
                     int lda, const floating* B, floating* C) noexcept nogil:
    """gemm_tn on a column block of A: its rows are lda elements apart."""
    cdef Py_ssize_t r, i, j
    cdef floating s
    cdef const floating* b_row
    cdef floating* c_row
    cdef int done
    if <Py_ssize_t>m * n * k >= BLAS_MIN_FLOPS:
        done = _tiled_gemm(m, n, k, alpha, A, 1, lda, B, n, C, n)
        if done < n:
            _blas_gemm(True, False, m, n - done, k, alpha, A, lda, B + done, n, C + done, n)
        return
    for r in range(k):
        b_row = B + r * n
        for i in range(m):
            s = alpha * A[r * lda + i]
            c_row = C + i * n
            for j in range(n):
                c_row[j] += s * b_row[j]
