/* tools/sigmoid_bits.sh: the old and new sigmoid, row loops and scalar, compared bit for bit. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>
#include <stddef.h>
#define DECL(p) void p##rows_f(const float*, float*, ptrdiff_t); void p##rows_d(const double*, double*, ptrdiff_t); \
  float p##one_f(float); double p##one_d(double); double p##exp_d(double); float p##exp_f(float);
DECL(old_) DECL(new_)
static int same_f(float a, float b) { uint32_t x, y; memcpy(&x,&a,4); memcpy(&y,&b,4); return x == y || (isnan(a) && isnan(b)); }
static int same_d(double a, double b) { uint64_t x, y; memcpy(&x,&a,8); memcpy(&y,&b,8); return x == y || (isnan(a) && isnan(b)); }
static int exact_f(float a, float b) { uint32_t x, y; memcpy(&x,&a,4); memcpy(&y,&b,4); return x == y; }
enum { N = 1 << 20 };
/* the new rows in lengths 1, 2, 3, 1, ...: rows of a few units take the branchy loop */
static void short_rows_f(const float *a, float *z, ptrdiff_t n) {
    for (ptrdiff_t i = 0, len = 1; i < n; i += len, len = len % 3 + 1) new_rows_f(a + i, z + i, n - i < len ? n - i : len);
}
static void short_rows_d(const double *a, double *z, ptrdiff_t n) {
    for (ptrdiff_t i = 0, len = 1; i < n; i += len, len = len % 3 + 1) new_rows_d(a + i, z + i, n - i < len ? n - i : len);
}
int main(void) {
    static float a[N], zo[N], zn[N];
    static double ad[N], zdo[N], zdn[N];
    uint64_t bad = 0, nan_bits = 0, scalar_bad = 0, short_bad = 0;
    for (uint64_t base = 0; base < (1ULL << 32); base += N) {
        for (uint32_t i = 0; i < N; i++) { uint32_t b = (uint32_t)(base + i); memcpy(&a[i], &b, 4); }
        old_rows_f(a, zo, N); new_rows_f(a, zn, N);
        for (uint32_t i = 0; i < N; i++) {
            if (!same_f(zo[i], zn[i])) { if (bad < 5) printf("f %a old %a new %a\n", a[i], zo[i], zn[i]); bad++; }
            else if (!exact_f(zo[i], zn[i])) nan_bits++;
            if ((i & 63) == 0) {
                float so = old_one_f(a[i]), sn = new_one_f(a[i]);
                if (!same_f(so, sn) || !same_f(so, zo[i]) || !same_f(old_exp_f(-fabsf(a[i])), new_exp_f(-fabsf(a[i])))) scalar_bad++;
            }
        }
        short_rows_f(a, zn, N);
        for (uint32_t i = 0; i < N; i++) short_bad += !same_f(zo[i], zn[i]);
    }
    printf("float32: all 2^32 inputs, rows differing %llu (NaN payload/sign only: %llu), scalar/exp differing %llu, rows of 1-3 differing %llu\n",
           (unsigned long long)bad, (unsigned long long)nan_bits, (unsigned long long)scalar_bad, (unsigned long long)short_bad);
    bad += short_bad;
    short_bad = 0;
    bad = 0; scalar_bad = 0;
    srand(1);
    for (int round = 0; round < 100; round++) {
        for (uint32_t i = 0; i < N; i++) {
            uint64_t b = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand() ^ ((uint64_t)(rand() & 3) << 62);
            double v; memcpy(&v, &b, 8);
            if (round % 2) v = ((double)rand() / RAND_MAX - 0.5) * 1600.0;  /* the interesting range */
            if (round % 4 == 2) v = ((double)rand() / RAND_MAX - 0.5) * 40.0;
            ad[i] = v;
        }
        if (round == 0) { ad[0] = 0.0; ad[1] = -0.0; ad[2] = INFINITY; ad[3] = -INFINITY; ad[4] = NAN; ad[5] = -708.39; ad[6] = nextafter(-708.39, -1e9); ad[7] = 708.39; }
        old_rows_d(ad, zdo, N); new_rows_d(ad, zdn, N);
        for (uint32_t i = 0; i < N; i++) {
            if (!same_d(zdo[i], zdn[i])) { if (bad < 5) printf("d %a old %a new %a\n", ad[i], zdo[i], zdn[i]); bad++; }
        }
        short_rows_d(ad, zdn, N);
        for (uint32_t i = 0; i < N; i++) {
            short_bad += !same_d(zdo[i], zdn[i]);
            if ((i & 15) == 0 && (!same_d(old_one_d(ad[i]), new_one_d(ad[i])) || !same_d(old_one_d(ad[i]), zdo[i])
                                  || !same_d(old_exp_d(-fabs(ad[i])), new_exp_d(-fabs(ad[i]))))) scalar_bad++;
        }
    }
    printf("float64: %d random inputs (bits, [-800,800], [-20,20], specials), rows differing %llu, scalar/exp differing %llu, rows of 1-3 differing %llu\n",
           100 * N, (unsigned long long)bad, (unsigned long long)scalar_bad, (unsigned long long)short_bad);
    bad += short_bad;
    return bad != 0 || scalar_bad != 0;
}
