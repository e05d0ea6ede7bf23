/* NEON version of the logistic block (logit_block.h includes it; AArch64 only, empty elsewhere):
 * the same algorithm and constants as parml_logit_avx512 there, two margins per float64x2. An
 * odd last margin goes through the same vector code in lane 0 (lane 1 zero, never stored), so a
 * row's result does not depend on where a block ends. NaN propagates: FMAX returns NaN, and so
 * does every later operation on it. */
#ifndef PARML_LOGIT_NEON_H
#define PARML_LOGIT_NEON_H

#include <stddef.h>
#include "cpu_features.h"

#if PARML_ARM64
#include <arm_neon.h>

static inline float64x2_t parml_exp_neg_neon(float64x2_t x)   /* x <= 0 */
{
    const float64x2_t shift = vdupq_n_f64(0x1.8p52);
    x = vmaxq_f64(vdupq_n_f64(-746.0), x);
    const float64x2_t kd = vsubq_f64(vfmaq_f64(shift, x, vdupq_n_f64(0x1.71547652b82fep0)), shift);
    float64x2_t r = vfmsq_f64(x, kd, vdupq_n_f64(6.93147180369123816490e-01));
    r = vfmsq_f64(r, kd, vdupq_n_f64(1.90821492927058770002e-10));
    /* 1/13!, 1/12!, ..., 1/1!, 1/0! */
    static const double c[14] = {
        1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
        1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
        1.0 / 6.0, 0.5, 1.0, 1.0};
    float64x2_t q = vdupq_n_f64(c[0]);
    for (int i = 1; i < 14; ++i) q = vfmaq_f64(vdupq_n_f64(c[i]), q, r);
    /* 2^k as 2^(k/2) 2^(k - k/2): graceful underflow down to k = -1076 */
    const int64x2_t k = vcvtq_s64_f64(kd);
    const int64x2_t k1 = vshrq_n_s64(k, 1);
    const int64x2_t k2 = vsubq_s64(k, k1);
    const int64x2_t bias = vdupq_n_s64(1023);
    const float64x2_t s1 = vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(k1, bias), 52));
    const float64x2_t s2 = vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(k2, bias), 52));
    return vmulq_f64(vmulq_f64(q, s1), s2);
}

static inline float64x2_t parml_log1p_unit_neon(float64x2_t e)   /* 0 <= e <= 1 */
{
    const float64x2_t one = vdupq_n_f64(1.0);
    const float64x2_t u = vaddq_f64(one, e);
    const float64x2_t corr = vdivq_f64(vsubq_f64(e, vsubq_f64(u, one)), u);
    const uint64x2_t big = vcgtq_f64(u, vdupq_n_f64(0x1.6a09e667f3bcdp0));
    const float64x2_t m = vbslq_f64(big, vmulq_f64(u, vdupq_n_f64(0.5)), u);
    const float64x2_t f = vsubq_f64(m, one);
    const float64x2_t s = vdivq_f64(f, vaddq_f64(vdupq_n_f64(2.0), f));
    const float64x2_t z = vmulq_f64(s, s);
    /* R = z/3 + z^2/5 + ... + z^9/19 */
    static const double c[9] = {1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9,
                                1.0 / 7, 1.0 / 5, 1.0 / 3};
    float64x2_t R = vdupq_n_f64(c[0]);
    for (int i = 1; i < 9; ++i) R = vfmaq_f64(vdupq_n_f64(c[i]), R, z);
    R = vmulq_f64(R, z);
    const float64x2_t s2 = vaddq_f64(s, s);
    const float64x2_t logm = vfmaq_f64(s2, s2, R);
    const float64x2_t j = vreinterpretq_f64_u64(vandq_u64(big, vreinterpretq_u64_f64(one)));
    const float64x2_t lo = vfmaq_f64(corr, j, vdupq_n_f64(1.90821492927058770002e-10));
    return vfmaq_f64(vaddq_f64(logm, lo), j, vdupq_n_f64(6.93147180369123816490e-01));
}

/* g and (need_loss) l of two margins */
static inline void parml_logit2_neon(float64x2_t pv, float64x2_t *g, float64x2_t *l, int need_loss)
{
    const float64x2_t one = vdupq_n_f64(1.0);
    const uint64x2_t sign = vreinterpretq_u64_f64(vdupq_n_f64(-0.0));
    const float64x2_t e =   /* exp(-|p|) */
        parml_exp_neg_neon(vreinterpretq_f64_u64(vorrq_u64(vreinterpretq_u64_f64(pv), sign)));
    const float64x2_t u = vaddq_f64(one, e);
    const uint64x2_t pos = vcgtq_f64(pv, vdupq_n_f64(0.0));
    *g = vnegq_f64(vdivq_f64(vbslq_f64(pos, e, one), u));
    if (need_loss) {
        const float64x2_t neg = vbslq_f64(pos, vdupq_n_f64(0.0), vnegq_f64(pv));
        *l = vaddq_f64(neg, parml_log1p_unit_neon(e));
    }
}

static void parml_logit_neon(const double *p, double *g, double *l, ptrdiff_t n, int need_loss)
{
    float64x2_t gv, lv = vdupq_n_f64(0.0);
    ptrdiff_t i = 0;
    for (; i + 2 <= n; i += 2) {
        parml_logit2_neon(vld1q_f64(p + i), &gv, &lv, need_loss);
        vst1q_f64(g + i, gv);
        if (need_loss) vst1q_f64(l + i, lv);
    }
    if (i < n) {
        parml_logit2_neon(vcombine_f64(vld1_f64(p + i), vdup_n_f64(0.0)), &gv, &lv, need_loss);
        vst1_f64(g + i, vget_low_f64(gv));
        if (need_loss) vst1_f64(l + i, vget_low_f64(lv));
    }
}

#endif /* PARML_ARM64 */
#endif
