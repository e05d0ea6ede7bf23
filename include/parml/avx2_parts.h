/* Partial loads and stores for the AVX2 kernels' tails: exactly the valid elements are read or
 * written, with 128-, 64- and 32-bit pieces, never VMASKMOV (whose masked-off lanes may fault on
 * some CPUs) and never a full vector past the end of a row. Loaded lanes past r are +0.0, as a
 * masked load gives, so tails sum exactly as full vectors do. */
#ifndef PARML_AVX2_PARTS_H
#define PARML_AVX2_PARTS_H

#include <stddef.h>
#include "cpu_features.h"

#if PARML_X86
#include <immintrin.h>

#define PARML_AVX2_PARTS_TARGET __attribute__((target("avx2,fma")))

/* p[0..r-1] (1 <= r <= 3) in lanes 0..r-1 */
PARML_AVX2_PARTS_TARGET static inline __m256d parml_avx2_part_d(const double *p, ptrdiff_t r)
{
    const __m128d lo = r >= 2 ? _mm_loadu_pd(p) : _mm_load_sd(p);
    const __m128d hi = r == 3 ? _mm_load_sd(p + 2) : _mm_setzero_pd();
    return _mm256_set_m128d(hi, lo);
}

/* p[0..r-1] (0 <= r <= 3) in lanes 0..r-1 of 4 floats */
PARML_AVX2_PARTS_TARGET static inline __m128 parml_avx2_part4_s(const float *p, ptrdiff_t r)
{
    if (r <= 0) return _mm_setzero_ps();
    if (r == 1) return _mm_load_ss(p);
    const __m128 lo = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)p));   /* 2 floats */
    return r == 3 ? _mm_movelh_ps(lo, _mm_load_ss(p + 2)) : lo;
}

/* Lanes 0..r-1 of v to c (r >= 4: all four) */
PARML_AVX2_PARTS_TARGET static inline void parml_avx2_store_d(double *c, __m256d v, ptrdiff_t r)
{
    if (r >= 4) {
        _mm256_storeu_pd(c, v);
        return;
    }
    __m128d x = _mm256_castpd256_pd128(v);
    if (r & 2) {
        _mm_storeu_pd(c, x);
        x = _mm256_extractf128_pd(v, 1);
        c += 2;
    }
    if (r & 1) _mm_store_sd(c, x);
}

#endif /* PARML_X86 */
#endif
