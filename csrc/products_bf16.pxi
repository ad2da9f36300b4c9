# bfloat16 products with float32 accumulation (csrc/fastbp_bf16.h): the
# operands rounded once into packs, then C = A.B or C += A.B on AMX tiles,
# AVX512-BF16 registers or the emulated path, whichever runs here.

from libc.stdint cimport uint16_t


cdef extern from "fastbp_bf16.h" nogil:
    int FBP_BF16_AUTO
    uint16_t fbp_bf16_round(float x)
    float fbp_bf16_widen(uint16_t h)
    void fbp_bf16_round_n(const float* x, uint16_t* out, Py_ssize_t n)
    void fbp_bf16_widen_n(const uint16_t* h, float* out, Py_ssize_t n)
    Py_ssize_t fbp_bf16_up(Py_ssize_t x)
    Py_ssize_t fbp_bf16_lda(Py_ssize_t k)
    size_t fbp_bf16_a_size(Py_ssize_t m, Py_ssize_t k)
    size_t fbp_bf16_b_size(Py_ssize_t k, Py_ssize_t n)
    void fbp_bf16_pack_a(Py_ssize_t m, Py_ssize_t k, const float* A, Py_ssize_t a_rs,
                         Py_ssize_t a_cs, uint16_t* Ap)
    void fbp_bf16_pack_b(Py_ssize_t k, Py_ssize_t n, const float* B, Py_ssize_t b_rs,
                         Py_ssize_t b_cs, uint16_t* Bp)
    void fbp_bf16_pack_b_rows(Py_ssize_t k_even, Py_ssize_t n, Py_ssize_t k_pad,
                              const float* B, Py_ssize_t b_rs, uint16_t* Bp)
    void fbp_f32_transpose_rows(const float* x, Py_ssize_t rows, Py_ssize_t cols,
                                Py_ssize_t c0, Py_ssize_t c1, float* out)
    void fbp_bf16_gemm_packed(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const uint16_t* Ap,
                              const uint16_t* Bp, float* C, Py_ssize_t ldc, int accumulate)
    int fbp_bf16_path_runs(int path)
    int fbp_bf16_path()
    int fbp_bf16_force(int path)


#: the bfloat16 product paths by their codes in csrc/fastbp_bf16.h
BF16_PATHS = ("emulated", "avx512bf16", "amx")


cdef void bf16_gemm_strided(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A,
                            Py_ssize_t a_rs, Py_ssize_t a_cs, const float* B,
                            Py_ssize_t b_rs, Py_ssize_t b_cs, float* C, Py_ssize_t ldc,
                            bint accumulate, uint16_t* Ap, uint16_t* Bp) noexcept nogil:
    """C = A.B (or +=) in bfloat16 with float32 sums: A(i, p) = A[i*a_rs + p*a_cs],
    B(p, j) = B[p*b_rs + j*b_cs]; Ap and Bp hold fbp_bf16_a_size(m, k) and
    fbp_bf16_b_size(k, n) entries for the packs."""
    fbp_bf16_pack_a(m, k, A, a_rs, a_cs, Ap)
    fbp_bf16_pack_b(k, n, B, b_rs, b_cs, Bp)
    fbp_bf16_gemm_packed(m, n, k, Ap, Bp, C, ldc, accumulate)
