/* tools/sigmoid_bits.sh: one build of csrc/fastbp_math.h, its functions under NAME(...). */
#include "fastbp_math.h"
void NAME(rows_f)(const float *a, float *z, ptrdiff_t n) { fbp_sigmoid_rows_f(a, z, n); }
void NAME(rows_d)(const double *a, double *z, ptrdiff_t n) { fbp_sigmoid_rows_d(a, z, n); }
float NAME(one_f)(float x) { return fbp_sigmoidf(x); }
double NAME(one_d)(double x) { return fbp_sigmoid(x); }
double NAME(exp_d)(double x) { return fbp_exp_nonpositive(x); }
float NAME(exp_f)(float x) { return fbp_expf_nonpositive(x); }
