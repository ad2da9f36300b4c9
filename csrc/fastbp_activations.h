/* Activations and the output delta, shared by the batch kernels (Cython,
 * csrc/activations.pxi) and the per-sample path (fastbp_sample_impl.h), so
 * both compute them with the same code. Each activation and each loss is a
 * row of its table (fastbp_activation_table.h, fastbp_loss_table.h).
 *
 * fastbp_activations_impl.h is a template: it is included once per scalar
 * type with FBP_REAL (the type) and FBP_SUFFIX(name) (name_d or name_f).
 * Every function is static inline: the per-sample path inlines them into
 * each of its target clones, and the loops that must vectorise call the
 * FBP_CLONES functions of fastbp_math.h.
 */
#ifndef FASTBP_ACTIVATIONS_H
#define FASTBP_ACTIVATIONS_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "fastbp_codes.h"
#include "fastbp_math.h"

/* The loss rows and their switch (fbp_output_delta_row) inline into every
 * caller, the per-sample path's clones included: one left out of line is
 * compiled for the baseline only (fastbp_sample.h says why that matters).
 * The inliner left the switch out once the table grew to six rows. */
#if defined(__GNUC__)
#define FBP_LOSS_INLINE static inline __attribute__((always_inline))
#else
#define FBP_LOSS_INLINE static inline
#endif

/* log(1 + e^x) without overflow */
static inline double fbp_softplus(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

#define FBP_REAL double
#define FBP_SUFFIX(name) name##_d
#include "fastbp_activations_impl.h"
#undef FBP_REAL
#undef FBP_SUFFIX

#define FBP_REAL float
#define FBP_SUFFIX(name) name##_f
#include "fastbp_activations_impl.h"
#undef FBP_REAL
#undef FBP_SUFFIX

#endif
