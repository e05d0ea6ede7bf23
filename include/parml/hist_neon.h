/* The histogram inner loop in NEON (hist_simd.h includes it after parml_hbin; AArch64 only,
 * empty elsewhere). The same design as parml_hist_group_avx: a bin's (g, h) is one float64x2
 * accumulator, so an update is one load, one add and one store, and the row's (g, h) vector is
 * built once and added into up to 4 features' bins in the same pass; counts are a separate
 * uint32 array (128-bit vectors have no room for them). Accumulators (20 KiB for 4 features) are
 * on the stack and written to the caller's parml_hbin layout at the end.
 *
 * Exactness: each bin's g and h get the same float64 additions (float -> double, then add), in
 * the same row order, as the scalar loop parml_hist_rows; counts are integers; so the histograms
 * are bit-identical to the scalar ones. Without hessians (oh NULL) the h lane adds 0.0 to +0.0
 * and stays +0.0, as the scalar loop leaves it. */
#ifndef PARML_HIST_NEON_H
#define PARML_HIST_NEON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cpu_features.h"

#if PARML_ARM64
#include <arm_neon.h>

/* the row's (g, h) or (g, 0) as doubles */
#define PARML_HN_GH(i) vcvt_f64_f32(vld1_lane_f32(oh + (i), vld1_dup_f32(og + (i)), 1))
#define PARML_HN_G(i) vcvt_f64_f32(vld1_lane_f32(og + (i), vdup_n_f32(0.0f), 0))
#define PARML_HN_SELF(i) (i)
#define PARML_HN_ROWS(i) ((ptrdiff_t)rows[i])
#define PARML_HN_ADD(A, C, bin)                                                                    \
    do {                                                                                           \
        const ptrdiff_t b_ = (bin);                                                                \
        A[b_] = vaddq_f64(A[b_], v);                                                               \
        C[b_]++;                                                                                   \
    } while (0)
#define PARML_HN_LOOP(ROWVEC, IDX, BODY)                                                           \
    for (ptrdiff_t i = r0; i < r1; ++i) {                                                          \
        const float64x2_t v = ROWVEC(i);                                                           \
        const ptrdiff_t r = IDX(i);                                                                \
        BODY                                                                                       \
    }
/* the four loops (hessians or not, row list or not), tests hoisted out of the row loop */
#define PARML_HN_VARIANTS(BODY)                                                                    \
    do {                                                                                           \
        if (oh != NULL) {                                                                          \
            if (rows != NULL) PARML_HN_LOOP(PARML_HN_GH, PARML_HN_ROWS, BODY)                      \
            else PARML_HN_LOOP(PARML_HN_GH, PARML_HN_SELF, BODY)                                   \
        } else {                                                                                   \
            if (rows != NULL) PARML_HN_LOOP(PARML_HN_G, PARML_HN_ROWS, BODY)                       \
            else PARML_HN_LOOP(PARML_HN_G, PARML_HN_SELF, BODY)                                    \
        }                                                                                          \
    } while (0)

/* parml_hist_group_fn: features f0 .. f0 + k - 1 (k in 1..4), node positions r0 .. r1, nbins
 * <= 256; H: the k features' bins, nbins each, all overwritten. */
static void parml_hist_group_neon(const uint8_t *B, ptrdiff_t n, ptrdiff_t nbins,
                                  const int32_t *rows, const float *og, const float *oh,
                                  ptrdiff_t f0, int k, ptrdiff_t r0, ptrdiff_t r1, parml_hbin *H)
{
    float64x2_t acc[4 * 256];
    uint32_t cnt[4 * 256];
    float64x2_t *A0 = acc, *A1 = acc + nbins, *A2 = acc + 2 * nbins, *A3 = acc + 3 * nbins;
    uint32_t *C0 = cnt, *C1 = cnt + nbins, *C2 = cnt + 2 * nbins, *C3 = cnt + 3 * nbins;
    const uint8_t *b0 = B + f0 * n, *b1 = b0 + n, *b2 = b1 + n, *b3 = b2 + n;
    memset(acc, 0, sizeof(float64x2_t) * (size_t)(k * nbins));
    memset(cnt, 0, sizeof(uint32_t) * (size_t)(k * nbins));
    if (k == 4) {
        PARML_HN_VARIANTS(PARML_HN_ADD(A0, C0, b0[r]); PARML_HN_ADD(A1, C1, b1[r]);
                          PARML_HN_ADD(A2, C2, b2[r]); PARML_HN_ADD(A3, C3, b3[r]););
    } else if (k == 2) {
        PARML_HN_VARIANTS(PARML_HN_ADD(A0, C0, b0[r]); PARML_HN_ADD(A1, C1, b1[r]););
    } else { /* k == 1 or 3: one feature at a time */
        for (int j = 0; j < k; ++j) {
            float64x2_t *Aj = acc + j * nbins;
            uint32_t *Cj = cnt + j * nbins;
            const uint8_t *bj = b0 + j * n;
            PARML_HN_VARIANTS(PARML_HN_ADD(Aj, Cj, bj[r]););
        }
    }
    for (ptrdiff_t q = 0; q < k * nbins; ++q) {
        vst1q_f64(&H[q].g, acc[q]);   /* g, h: adjacent doubles */
        H[q].count = cnt[q];
        H[q].pad = 0;
    }
}

#undef PARML_HN_GH
#undef PARML_HN_G
#undef PARML_HN_SELF
#undef PARML_HN_ROWS
#undef PARML_HN_ADD
#undef PARML_HN_LOOP
#undef PARML_HN_VARIANTS
#endif /* PARML_ARM64 */
#endif
