/* The histogram inner loop of each kernel set: 256-bit adds here (avx2 and avx512 sets), float64x2
 * pairs in hist_neon.h, the scalar loop of hist.h for the generic set. Included by hist.h only.
 *
 * The scalar loop updates a bin with three read-modify-writes per row and feature (g, h, count):
 * 6 loads and 3 stores, ~2.8 cycles per update on Zen 4/5. Here a bin is accumulated as one
 * 256-bit vector (g, h, count, 0) of doubles, so an update is one load, one add and one store;
 * the row's vector (g, h, 1, 0) is built once and added into up to 4 features' histograms in the
 * same pass (4 independent store-to-load chains). The accumulators (32 KB for 4 features) live
 * on the stack and are written to the caller's parml_hbin layout at the end.
 *
 * Exactness: every bin's g and h are the same float64 additions, in the same row order, as the
 * scalar loop's (float -> double conversion, then add), and counts are sums of 1.0 (exact below
 * 2^53), so both paths give bit-identical histograms; tests compare them. */
#ifndef PARML_HIST_SIMD_H
#define PARML_HIST_SIMD_H

#include "kernel_sets.h"

/* Features f0 .. f0 + k - 1 (k in 1..4) over positions r0 .. r1 of the node (row ids rows[i],
 * or i itself when rows is NULL; og/oh in node order); H: the k features' bins, nbins each. */
typedef void (*parml_hist_group_fn)(const uint8_t *B, ptrdiff_t n, ptrdiff_t nbins,
                                    const int32_t *rows, const float *og, const float *oh,
                                    ptrdiff_t f0, int k, ptrdiff_t r0, ptrdiff_t r1,
                                    parml_hbin *H);

/* The vector loop of the kernel set in use, NULL for the scalar loop (the generic set). Set by
 * parml_hist_use_set at every kernel entry, never while a kernel runs. */
static parml_hist_group_fn parml_hist_group = NULL;

/* Rows below which the scalar loop wins: the vector path zeroes and converts 256 bins per
 * feature (~0.3 us), which only pays once there are a few hundred updates per feature. */
#define PARML_HIST_SIMD_MIN_ROWS 512

#if PARML_X86
#include <immintrin.h>

#define PARML_HIST_AVX __attribute__((target("avx")))

/* The row's (g, h, 1, 0) as doubles; h = 0 for a constant hessian (oh NULL). */
#define PARML_HIST_ROWVEC(i) \
    _mm256_cvtps_pd(_mm_or_ps(oh ? _mm_unpacklo_ps(_mm_load_ss(og + (i)), _mm_load_ss(oh + (i))) \
                                 : _mm_load_ss(og + (i)), one))

#define PARML_HIST_ADD(A, b) A[b] = _mm256_add_pd(A[b], v)

/* parml_hist_group_fn with 256-bit vectors (AVX is enough; the avx2 and avx512 sets use it). */
PARML_HIST_AVX
static void parml_hist_group_avx(const uint8_t *B, ptrdiff_t n, ptrdiff_t nbins,
                                 const int32_t *rows, const float *og, const float *oh,
                                 ptrdiff_t f0, int k, ptrdiff_t r0, ptrdiff_t r1, parml_hbin *H)
{
    __m256d acc[4 * 256] __attribute__((aligned(32)));
    const __m128 one = _mm_setr_ps(0.0f, 0.0f, 1.0f, 0.0f);
    __m256d *A0 = acc, *A1 = acc + nbins, *A2 = acc + 2 * nbins, *A3 = acc + 3 * nbins;
    const uint8_t *b0 = B + f0 * n, *b1 = b0 + n, *b2 = b1 + n, *b3 = b2 + n;
    memset(acc, 0, sizeof(__m256d) * (size_t)(k * nbins));
    if (k == 4) {
        if (rows == NULL)
            for (ptrdiff_t i = r0; i < r1; ++i) {
                const __m256d v = PARML_HIST_ROWVEC(i);
                PARML_HIST_ADD(A0, b0[i]); PARML_HIST_ADD(A1, b1[i]);
                PARML_HIST_ADD(A2, b2[i]); PARML_HIST_ADD(A3, b3[i]);
            }
        else
            for (ptrdiff_t i = r0; i < r1; ++i) {
                const __m256d v = PARML_HIST_ROWVEC(i);
                const ptrdiff_t r = rows[i];
                PARML_HIST_ADD(A0, b0[r]); PARML_HIST_ADD(A1, b1[r]);
                PARML_HIST_ADD(A2, b2[r]); PARML_HIST_ADD(A3, b3[r]);
            }
    } else if (k == 2) {
        if (rows == NULL)
            for (ptrdiff_t i = r0; i < r1; ++i) {
                const __m256d v = PARML_HIST_ROWVEC(i);
                PARML_HIST_ADD(A0, b0[i]); PARML_HIST_ADD(A1, b1[i]);
            }
        else
            for (ptrdiff_t i = r0; i < r1; ++i) {
                const __m256d v = PARML_HIST_ROWVEC(i);
                const ptrdiff_t r = rows[i];
                PARML_HIST_ADD(A0, b0[r]); PARML_HIST_ADD(A1, b1[r]);
            }
    } else {  /* k == 1 or 3: one feature at a time */
        for (int j = 0; j < k; ++j) {
            __m256d *Aj = acc + j * nbins;
            const uint8_t *bj = b0 + j * n;
            if (rows == NULL)
                for (ptrdiff_t i = r0; i < r1; ++i) {
                    const __m256d v = PARML_HIST_ROWVEC(i);
                    PARML_HIST_ADD(Aj, bj[i]);
                }
            else
                for (ptrdiff_t i = r0; i < r1; ++i) {
                    const __m256d v = PARML_HIST_ROWVEC(i);
                    PARML_HIST_ADD(Aj, bj[rows[i]]);
                }
        }
    }
    for (ptrdiff_t q = 0; q < k * nbins; ++q) {
        double t[4];
        _mm256_storeu_pd(t, acc[q]);
        H[q].g = t[0];
        H[q].h = t[1];
        H[q].count = (uint32_t)t[2];
        H[q].pad = 0;
    }
}

#undef PARML_HIST_ROWVEC
#undef PARML_HIST_ADD
#endif /* PARML_X86 */

#include "hist_neon.h"

static void parml_hist_use_set(int set)
{
    switch (set) {
#if PARML_X86
    case PARML_SET_AVX2:
    case PARML_SET_AVX512: parml_hist_group = parml_hist_group_avx; break;
#endif
#if PARML_ARM64
    case PARML_SET_NEON: parml_hist_group = parml_hist_group_neon; break;
#endif
    default: parml_hist_group = NULL;
    }
}


#endif
