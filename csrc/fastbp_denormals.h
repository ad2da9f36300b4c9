/* Flush denormal numbers to zero inside fastbp's kernel calls.
 *
 * On x86 an arithmetic operation that meets or makes a denormal (below
 * 1.2e-38 in float, 2.2e-308 in double) takes ~100 cycles instead of ~1.
 * Adam drives the weights of inputs a fit never sees, and their moments,
 * geometrically to zero, through that range: a sparse fit slowed down 4x
 * from epoch to epoch. So each call sets FTZ and DAZ in MXCSR and restores
 * it on return (threads started inside inherit it): results change only in
 * values below the normal range, the rest of the process never sees the
 * mode (unlike -ffast-math, which sets it for the whole process), and runs
 * stay deterministic. Elsewhere this is a no-op.
 */
#ifndef FASTBP_DENORMALS_H
#define FASTBP_DENORMALS_H

#if defined(__SSE2__) || defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define FBP_FTZ_DAZ 0x8040u  /* flush to zero (bit 15), denormals are zero (bit 6) */

static inline unsigned int fbp_denormals_off(void) {
    unsigned int saved = _mm_getcsr();
    _mm_setcsr(saved | FBP_FTZ_DAZ);
    return saved;
}

static inline void fbp_denormals_restore(unsigned int saved) { _mm_setcsr(saved); }
#else
static inline unsigned int fbp_denormals_off(void) { return 0; }
static inline void fbp_denormals_restore(unsigned int saved) { (void)saved; }
#endif

#endif
