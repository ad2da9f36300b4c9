/* Vectorisable exp for x <= 0 and the sigmoid built on it.
 *
 * libm's exp is a function call per element, so loops over it never
 * vectorise. This one is straight-line code that gcc turns into SIMD:
 *   x = n ln2 + r, |r| <= ln2/2   (n by the 1.5*2^52 rounding trick)
 *   e^r by its Taylor series to degree 13 (truncation < 5e-18), Estrin's scheme
 *   2^n by writing n into the exponent bits.
 * Accurate to a few ulp for x in [-708.39, 0]; below that it returns 0.
 * Only x <= 0 is needed: the sigmoid uses e^-|x| and softmax e^(x - max).
 */
#ifndef FASTBP_MATH_H
#define FASTBP_MATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Compile hot loops for AVX-512, AVX2+FMA and the baseline; pick at load time. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FBP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FBP_CLONES
#endif

#define FBP_EXP_MIN (-708.39)

/* c ? yes : no through the bits, for the functions below: a ternary there
 * becomes a branch that gcc's PRE then fills with the rest of the
 * arithmetic (on the constant's side: folded; on the other: a multiply),
 * and gcc does not if-convert a floating-point operation the C code may
 * skip (it could raise a flag) unless AVX-512 masks its lanes: the loops
 * over them ran scalar on AVX2, one branch in two mispredicted
 * (784-256-128-10 float32 at batch 512: ~18% of an epoch). Picked by the
 * bits, every lane's value is the ternary's and the loops vectorise on any
 * x86-64. */
static inline double fbp_pick(int c, double yes, double no) {
    uint64_t mask = -(uint64_t)(c != 0), y, n;
    double r;
    memcpy(&y, &yes, sizeof y);
    memcpy(&n, &no, sizeof n);
    y = (y & mask) | (n & ~mask);
    memcpy(&r, &y, sizeof r);
    return r;
}

static inline float fbp_pickf(int c, float yes, float no) {
    uint32_t mask = -(uint32_t)(c != 0), y, n;
    float r;
    memcpy(&y, &yes, sizeof y);
    memcpy(&n, &no, sizeof n);
    y = (y & mask) | (n & ~mask);
    memcpy(&r, &y, sizeof r);
    return r;
}

/* fbp_pick, or with branchy set (a constant where it is inlined) the plain
 * ternary: a row of a few units (XOR's 2-2-1, per sample) waits on each
 * sigmoid, and predicted branches are shorter than the picks' moves
 * through integer registers (main's XOR 0.81x FANN went to 0.74x with the
 * picks). Both give every value the ternary gives. */
static inline double fbp_select(int branchy, int c, double yes, double no) {
    return branchy ? (c ? yes : no) : fbp_pick(c, yes, no);
}

static inline float fbp_selectf(int branchy, int c, float yes, float no) {
    return branchy ? (c ? yes : no) : fbp_pickf(c, yes, no);
}

/* Rows up to this many units take the branchy sigmoid (fbp_select). */
#define FBP_SIGMOID_BRANCHY_MAX 3

/* e^r's Taylor series to degree 13 as 1 + (r + r^2 P(r)), P by Estrin's
 * scheme: six dependent multiply-adds deep instead of Horner's thirteen. A
 * sigmoid of one unit is latency-bound (per-sample training of a small net
 * waits on each one), so depth is what costs. Adding 1 last keeps Horner's
 * accuracy (measured: at most 2.3 ulp in the sigmoid, as before). */
static inline double fbp_exp_series13(double r) {
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double q1 = 1.0 / 2 + r * (1.0 / 6);
    double q2 = 1.0 / 24 + r * (1.0 / 120);
    double q3 = 1.0 / 720 + r * (1.0 / 5040);
    double q4 = 1.0 / 40320 + r * (1.0 / 362880);
    double q5 = 1.0 / 3628800 + r * (1.0 / 39916800);
    double q6 = 1.0 / 479001600 + r * (1.0 / 6227020800.0);
    double P = ((q1 + q2 * r2) + (q3 + q4 * r2) * r4) + (q5 + q6 * r2) * r8;
    return 1.0 + (r + r2 * P);
}


static inline double fbp_exp_nonpositive_select(double x, int branchy) {
    const double log2e = 1.4426950408889634, shift = 6755399441055744.0; /* 1.5 * 2^52 */
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    int below = x < FBP_EXP_MIN;
    double t = fbp_select(branchy, below, FBP_EXP_MIN, x);
    double kd = t * log2e + shift;
    uint64_t ki, scale_bits;
    double n, r, p, scale;
    memcpy(&ki, &kd, sizeof ki);
    n = kd - shift;
    r = (t - n * ln2_hi) - n * ln2_lo;
    p = fbp_exp_series13(r);
    scale_bits = (ki << 52) + 0x3ff0000000000000ULL; /* 2^n */
    memcpy(&scale, &scale_bits, sizeof scale);
    return fbp_select(branchy, below, 0.0, p * scale);
}

static inline double fbp_exp_nonpositive(double x) { return fbp_exp_nonpositive_select(x, 0); }

/* sigma(x) = 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) otherwise: never overflows.
 * (The numerator picked, times s: 1 * s is s.) */
static inline double fbp_sigmoid_select(double x, int branchy) {
    int positive = x >= 0;
    double e = fbp_exp_nonpositive_select(fbp_select(branchy, positive, -x, x), branchy);
    double s = 1.0 / (1.0 + e);
    return fbp_select(branchy, positive, 1.0, e) * s;
}

static inline double fbp_sigmoid(double x) { return fbp_sigmoid_select(x, 0); }

FBP_CLONES
static void fbp_sigmoid_rows_d(const double *a, double *z, ptrdiff_t size) {
    if (size <= FBP_SIGMOID_BRANCHY_MAX)
        for (ptrdiff_t i = 0; i < size; i++) z[i] = fbp_sigmoid_select(a[i], 1);
    else
        for (ptrdiff_t i = 0; i < size; i++) z[i] = fbp_sigmoid_select(a[i], 0);
}

/* The float series to degree 7 the same way: five deep instead of seven. */
static inline float fbp_expf_series7(float r) {
    float r2 = r * r, r4 = r2 * r2;
    float q1 = 0.5f + r * (1.0f / 6.0f);
    float q2 = 1.0f / 24.0f + r * (1.0f / 120.0f);
    float q3 = 1.0f / 720.0f + r * (1.0f / 5040.0f);
    float P = (q1 + q2 * r2) + q3 * r4;
    return 1.0f + (r + r2 * P);
}

/* The same in float, for float32 layers: twice the lanes of double and a
 * degree-7 polynomial (truncation < 1e-8 for |r| <= ln2/2, below float's
 * 6e-8 epsilon). Below -87.3 (e^x under float's smallest normal) it gives 0. */
#define FBP_EXPF_MIN (-87.3f)

static inline float fbp_expf_nonpositive_select(float x, int branchy) {
    const float log2e = 1.44269504f, shift = 12582912.0f; /* 1.5 * 2^23 */
    /* ln2 = hi + lo, hi with 9 trailing zero bits so n * hi is exact */
    const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    int below = x < FBP_EXPF_MIN;
    float t = fbp_selectf(branchy, below, FBP_EXPF_MIN, x);
    float kd = t * log2e + shift;
    uint32_t ki, scale_bits;
    float n, r, p, scale;
    memcpy(&ki, &kd, sizeof ki);
    n = kd - shift;
    r = (t - n * ln2_hi) - n * ln2_lo;
    p = fbp_expf_series7(r);
    scale_bits = (ki << 23) + 0x3f800000u;        /* 2^n */
    memcpy(&scale, &scale_bits, sizeof scale);
    return fbp_selectf(branchy, below, 0.0f, p * scale);
}

static inline float fbp_expf_nonpositive(float x) { return fbp_expf_nonpositive_select(x, 0); }

static inline float fbp_sigmoidf_select(float x, int branchy) {
    int positive = x >= 0;
    float e = fbp_expf_nonpositive_select(fbp_selectf(branchy, positive, -x, x), branchy);
    float s = 1.0f / (1.0f + e);
    return fbp_selectf(branchy, positive, 1.0f, e) * s;
}

static inline float fbp_sigmoidf(float x) { return fbp_sigmoidf_select(x, 0); }

FBP_CLONES
static void fbp_sigmoid_rows_f(const float *a, float *z, ptrdiff_t size) {
    if (size <= FBP_SIGMOID_BRANCHY_MAX)
        for (ptrdiff_t i = 0; i < size; i++) z[i] = fbp_sigmoidf_select(a[i], 1);
    else
        for (ptrdiff_t i = 0; i < size; i++) z[i] = fbp_sigmoidf_select(a[i], 0);
}

/* z = e^(x - shift) for a row, returning the sum (softmax's numerator). */
FBP_CLONES
static double fbp_exp_shifted_d(const double *x, double *z, ptrdiff_t n, double shift) {
    double total = 0;
    for (ptrdiff_t i = 0; i < n; i++) { z[i] = fbp_exp_nonpositive(x[i] - shift); total += z[i]; }
    return total;
}

FBP_CLONES
static double fbp_exp_shifted_f(const float *x, float *z, ptrdiff_t n, double shift) {
    double total = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        z[i] = (float)fbp_exp_nonpositive((double)x[i] - shift);
        total += z[i];
    }
    return total;
}

#endif
