/* NEON row kernels (the contract is in linear_rows.h, which includes this file after defining
 * parml_rowops; AArch64 only, empty elsewhere).
 *
 * dot: 4 float64x2 accumulators over 8 elements per step (FMA latency 4 on 2-4 pipes needs
 * several chains; the loop is load-bound beyond that), then pairs into the first, a last odd
 * element into the second in lane 0: the order is a fixed function of d. axpy/axpby: 4 vectors a
 * step, each element g = fma(a, x, g) (axpby: fma(a, x, c * g)), a last odd element through the
 * one-lane forms of the same instructions. A float32 row is widened with fcvtl/fcvtl2. */
#ifndef PARML_LINEAR_ROWS_NEON_H
#define PARML_LINEAR_ROWS_NEON_H

#include <stddef.h>
#include "cpu_features.h"

#if PARML_ARM64
#include <arm_neon.h>

/* LOAD4(p, v0, v1): 4 elements as two float64x2; LOAD2(p): 2 elements; LOAD1(p): one element as
 * float64x1. */
#define PARML_NEON_LOAD4_D(p, v0, v1)                                                              \
    const float64x2_t v0 = vld1q_f64(p), v1 = vld1q_f64((p) + 2)
#define PARML_NEON_LOAD4_S(p, v0, v1)                                                              \
    const float32x4_t v0##_f = vld1q_f32(p);                                                       \
    const float64x2_t v0 = vcvt_f64_f32(vget_low_f32(v0##_f)), v1 = vcvt_high_f64_f32(v0##_f)
#define PARML_NEON_LOAD2_D(p) vld1q_f64(p)
#define PARML_NEON_LOAD2_S(p) vcvt_f64_f32(vld1_f32(p))
#define PARML_NEON_LOAD1_D(p) vld1_f64(p)
#define PARML_NEON_LOAD1_S(p) vdup_n_f64((double)*(p))

#define PARML_DEFINE_NEON_ROWOPS(XT, SFX, LOAD4, LOAD2, LOAD1)                                     \
    static double parml_dot_neon_##SFX(const XT *x, const double *w, ptrdiff_t d)                  \
    {                                                                                              \
        float64x2_t s0 = vdupq_n_f64(0), s1 = s0, s2 = s0, s3 = s0;                                \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 8 <= d; j += 8) {                                                               \
            LOAD4(x + j, x0, x1);                                                                  \
            LOAD4(x + j + 4, x2, x3);                                                              \
            s0 = vfmaq_f64(s0, x0, vld1q_f64(w + j));                                              \
            s1 = vfmaq_f64(s1, x1, vld1q_f64(w + j + 2));                                          \
            s2 = vfmaq_f64(s2, x2, vld1q_f64(w + j + 4));                                          \
            s3 = vfmaq_f64(s3, x3, vld1q_f64(w + j + 6));                                          \
        }                                                                                          \
        for (; j + 2 <= d; j += 2) s0 = vfmaq_f64(s0, LOAD2(x + j), vld1q_f64(w + j));            \
        if (j < d)                                                                                 \
            s1 = vfmaq_f64(s1, vcombine_f64(LOAD1(x + j), vdup_n_f64(0)),                          \
                           vcombine_f64(vld1_f64(w + j), vdup_n_f64(0)));                          \
        return vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3)));                        \
    }                                                                                              \
    static void parml_axpy_neon_##SFX(double a, const XT *x, double *g, ptrdiff_t d)               \
    {                                                                                              \
        const float64x2_t va = vdupq_n_f64(a);                                                     \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 8 <= d; j += 8) {                                                               \
            LOAD4(x + j, x0, x1);                                                                  \
            LOAD4(x + j + 4, x2, x3);                                                              \
            vst1q_f64(g + j, vfmaq_f64(vld1q_f64(g + j), va, x0));                                 \
            vst1q_f64(g + j + 2, vfmaq_f64(vld1q_f64(g + j + 2), va, x1));                         \
            vst1q_f64(g + j + 4, vfmaq_f64(vld1q_f64(g + j + 4), va, x2));                         \
            vst1q_f64(g + j + 6, vfmaq_f64(vld1q_f64(g + j + 6), va, x3));                         \
        }                                                                                          \
        for (; j + 2 <= d; j += 2)                                                                 \
            vst1q_f64(g + j, vfmaq_f64(vld1q_f64(g + j), va, LOAD2(x + j)));                       \
        if (j < d) vst1_f64(g + j, vfma_f64(vld1_f64(g + j), vget_low_f64(va), LOAD1(x + j)));    \
    }                                                                                              \
    static void parml_axpby_neon_##SFX(double a, const XT *x, double c, double *g, ptrdiff_t d)    \
    {                                                                                              \
        const float64x2_t va = vdupq_n_f64(a), vc = vdupq_n_f64(c);                                \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 8 <= d; j += 8) {                                                               \
            LOAD4(x + j, x0, x1);                                                                  \
            LOAD4(x + j + 4, x2, x3);                                                              \
            vst1q_f64(g + j, vfmaq_f64(vmulq_f64(vc, vld1q_f64(g + j)), va, x0));                  \
            vst1q_f64(g + j + 2, vfmaq_f64(vmulq_f64(vc, vld1q_f64(g + j + 2)), va, x1));          \
            vst1q_f64(g + j + 4, vfmaq_f64(vmulq_f64(vc, vld1q_f64(g + j + 4)), va, x2));          \
            vst1q_f64(g + j + 6, vfmaq_f64(vmulq_f64(vc, vld1q_f64(g + j + 6)), va, x3));          \
        }                                                                                          \
        for (; j + 2 <= d; j += 2)                                                                 \
            vst1q_f64(g + j, vfmaq_f64(vmulq_f64(vc, vld1q_f64(g + j)), va, LOAD2(x + j)));       \
        if (j < d)                                                                                 \
            vst1_f64(g + j, vfma_f64(vmul_f64(vget_low_f64(vc), vld1_f64(g + j)), vget_low_f64(va), \
                                     LOAD1(x + j)));                                               \
    }                                                                                              \
    /* dot4: two accumulators per row (8 chains), w loaded once for the 4 rows; pairs go into   \
     * the second, a last odd element into the first in lane 0. */                               \
    static void parml_dot4_neon_##SFX(const void *const *x, const double *w, ptrdiff_t d,         \
                                      double *out)                                                 \
    {                                                                                              \
        const XT *r0 = (const XT *)x[0], *r1 = (const XT *)x[1];                                   \
        const XT *r2 = (const XT *)x[2], *r3 = (const XT *)x[3];                                   \
        float64x2_t a0 = vdupq_n_f64(0), a1 = a0, a2 = a0, a3 = a0;                                \
        float64x2_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                            \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 4 <= d; j += 4) {                                                               \
            const float64x2_t w0 = vld1q_f64(w + j), w1 = vld1q_f64(w + j + 2);                    \
            LOAD4(r0 + j, x00, x01);                                                               \
            LOAD4(r1 + j, x10, x11);                                                               \
            LOAD4(r2 + j, x20, x21);                                                               \
            LOAD4(r3 + j, x30, x31);                                                               \
            a0 = vfmaq_f64(a0, x00, w0); b0 = vfmaq_f64(b0, x01, w1);                              \
            a1 = vfmaq_f64(a1, x10, w0); b1 = vfmaq_f64(b1, x11, w1);                              \
            a2 = vfmaq_f64(a2, x20, w0); b2 = vfmaq_f64(b2, x21, w1);                              \
            a3 = vfmaq_f64(a3, x30, w0); b3 = vfmaq_f64(b3, x31, w1);                              \
        }                                                                                          \
        for (; j + 2 <= d; j += 2) {                                                               \
            const float64x2_t w0 = vld1q_f64(w + j);                                               \
            b0 = vfmaq_f64(b0, LOAD2(r0 + j), w0);                                                 \
            b1 = vfmaq_f64(b1, LOAD2(r1 + j), w0);                                                 \
            b2 = vfmaq_f64(b2, LOAD2(r2 + j), w0);                                                 \
            b3 = vfmaq_f64(b3, LOAD2(r3 + j), w0);                                                 \
        }                                                                                          \
        if (j < d) {                                                                               \
            const float64x2_t w0 = vcombine_f64(vld1_f64(w + j), vdup_n_f64(0));                   \
            a0 = vfmaq_f64(a0, vcombine_f64(LOAD1(r0 + j), vdup_n_f64(0)), w0);                    \
            a1 = vfmaq_f64(a1, vcombine_f64(LOAD1(r1 + j), vdup_n_f64(0)), w0);                    \
            a2 = vfmaq_f64(a2, vcombine_f64(LOAD1(r2 + j), vdup_n_f64(0)), w0);                    \
            a3 = vfmaq_f64(a3, vcombine_f64(LOAD1(r3 + j), vdup_n_f64(0)), w0);                    \
        }                                                                                          \
        out[0] = vaddvq_f64(vaddq_f64(a0, b0));                                                    \
        out[1] = vaddvq_f64(vaddq_f64(a1, b1));                                                    \
        out[2] = vaddvq_f64(vaddq_f64(a2, b2));                                                    \
        out[3] = vaddvq_f64(vaddq_f64(a3, b3));                                                    \
    }                                                                                              \
    /* axpy4: each pair of g loaded once, the 4 rows' FMAs chained in row order; two pairs per  \
     * step for two independent chains. */                                                         \
    static void parml_axpy4_neon_##SFX(const double *a, const void *const *x, double *g,          \
                                       ptrdiff_t d)                                                \
    {                                                                                              \
        const XT *r0 = (const XT *)x[0], *r1 = (const XT *)x[1];                                   \
        const XT *r2 = (const XT *)x[2], *r3 = (const XT *)x[3];                                   \
        const float64x2_t v0 = vdupq_n_f64(a[0]), v1 = vdupq_n_f64(a[1]);                          \
        const float64x2_t v2 = vdupq_n_f64(a[2]), v3 = vdupq_n_f64(a[3]);                          \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 4 <= d; j += 4) {                                                               \
            LOAD4(r0 + j, x00, x01);                                                               \
            LOAD4(r1 + j, x10, x11);                                                               \
            LOAD4(r2 + j, x20, x21);                                                               \
            LOAD4(r3 + j, x30, x31);                                                               \
            float64x2_t t = vld1q_f64(g + j), u = vld1q_f64(g + j + 2);                            \
            t = vfmaq_f64(t, v0, x00); u = vfmaq_f64(u, v0, x01);                                  \
            t = vfmaq_f64(t, v1, x10); u = vfmaq_f64(u, v1, x11);                                  \
            t = vfmaq_f64(t, v2, x20); u = vfmaq_f64(u, v2, x21);                                  \
            t = vfmaq_f64(t, v3, x30); u = vfmaq_f64(u, v3, x31);                                  \
            vst1q_f64(g + j, t);                                                                   \
            vst1q_f64(g + j + 2, u);                                                               \
        }                                                                                          \
        for (; j + 2 <= d; j += 2) {                                                               \
            float64x2_t t = vld1q_f64(g + j);                                                      \
            t = vfmaq_f64(t, v0, LOAD2(r0 + j));                                                   \
            t = vfmaq_f64(t, v1, LOAD2(r1 + j));                                                   \
            t = vfmaq_f64(t, v2, LOAD2(r2 + j));                                                   \
            t = vfmaq_f64(t, v3, LOAD2(r3 + j));                                                   \
            vst1q_f64(g + j, t);                                                                   \
        }                                                                                          \
        if (j < d) {                                                                               \
            float64x1_t t = vld1_f64(g + j);                                                       \
            t = vfma_f64(t, vget_low_f64(v0), LOAD1(r0 + j));                                      \
            t = vfma_f64(t, vget_low_f64(v1), LOAD1(r1 + j));                                      \
            t = vfma_f64(t, vget_low_f64(v2), LOAD1(r2 + j));                                      \
            t = vfma_f64(t, vget_low_f64(v3), LOAD1(r3 + j));                                      \
            vst1_f64(g + j, t);                                                                    \
        }                                                                                          \
    }

PARML_DEFINE_NEON_ROWOPS(double, d, PARML_NEON_LOAD4_D, PARML_NEON_LOAD2_D, PARML_NEON_LOAD1_D)
PARML_DEFINE_NEON_ROWOPS(float, s, PARML_NEON_LOAD4_S, PARML_NEON_LOAD2_S, PARML_NEON_LOAD1_S)

static const parml_rowops parml_rowops_neon = {
    parml_dot_neon_d, parml_dot_neon_s, parml_axpy_neon_d, parml_axpy_neon_s,
    parml_dot4_neon_d, parml_dot4_neon_s, parml_axpy4_neon_d, parml_axpy4_neon_s,
    parml_axpby_neon_d, parml_axpby_neon_s, "neon"};

#endif /* PARML_ARM64 */
#endif
