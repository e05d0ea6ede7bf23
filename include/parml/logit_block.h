/* The logistic loss over a block of margins p_i = y_i z_i, for the fused loss + gradient.
 *
 * Why: with libm, exp + log1p + a division cost ~21 ns per row, which made the 2-thread logistic
 * gradient of 1M x 100 compute-bound (20.6 ms, against 15.3 ms for the squared loss at the
 * machine's read bandwidth). Here the block's margins are done 8 at a time in AVX-512:
 *   e = exp(-|p|): k = round(-|p| / ln 2), r = -|p| - k ln 2 (ln 2 in two parts), exp(r) by its
 *       Taylor series to degree 13 (|r| <= ln 2 / 2: truncation ~4e-18), times 2^(k/2) 2^(k-k/2)
 *       (two factors, so that underflow to subnormals and zero stays graceful down to -746);
 *   log1p(e) = log(u) + (e - (u - 1)) / u with u = 1 + e in [1, 2]; log(u) = j ln 2 + log(m),
 *       m = u / 2^j in [sqrt(2)/2, sqrt(2)], log(m) = 2 atanh(s), s = (m - 1) / (m + 1),
 *       |s| <= 0.172, by its series to s^19;
 *   g = d loss / d p = -e / (1 + e) for p > 0, -1 / (1 + e) otherwise;
 *   l = log1p(e) + max(-p, 0).
 * Within 4 ulp of libm (tests/kernels/test_logit_block.py); a NaN margin gives NaN, as libm's. Tails run masked through the same
 * vector code, so every row gets the same arithmetic wherever the block boundaries fall (results
 * never depend on the thread count). The generic version is the libm formula of losses.h. */
#ifndef PARML_LOGIT_BLOCK_H
#define PARML_LOGIT_BLOCK_H

#include <math.h>
#include <stddef.h>
#include "kernel_sets.h"

#if PARML_X86
#include <immintrin.h>
#endif

/* g[i], l[i] for p[i], i < n; l is left untouched when !need_loss. */
typedef void (*parml_logit_fn)(const double *p, double *g, double *l, ptrdiff_t n, int need_loss);

static void parml_logit_generic(const double *p, double *g, double *l, ptrdiff_t n, int need_loss)
{
    for (ptrdiff_t i = 0; i < n; ++i) {
        const double e = exp(-fabs(p[i]));
        if (p[i] > 0) {
            g[i] = -e / (1.0 + e);
            if (need_loss) l[i] = log1p(e);
        } else {
            g[i] = -1.0 / (1.0 + e);
            if (need_loss) l[i] = -p[i] + log1p(e);
        }
    }
}

#if PARML_X86
#define PARML_LOGIT512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))

PARML_LOGIT512 static inline __m512d parml_exp_neg_512(__m512d x)   /* x <= 0 */
{
    const __m512d shift = _mm512_set1_pd(0x1.8p52);
    x = _mm512_max_pd(_mm512_set1_pd(-746.0), x);   /* (max returns its 2nd operand on NaN: NaN stays) */
    const __m512d kd = _mm512_sub_pd(_mm512_fmadd_pd(x, _mm512_set1_pd(0x1.71547652b82fep0), shift),
                                     shift);
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(6.93147180369123816490e-01), x);
    r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(1.90821492927058770002e-10), r);
    /* 1/13!, 1/12!, ..., 1/1!, 1/0! */
    static const double c[14] = {
        1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
        1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
        1.0 / 6.0, 0.5, 1.0, 1.0};
    __m512d q = _mm512_set1_pd(c[0]);
    for (int i = 1; i < 14; ++i) q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(c[i]));
    const __m512i k = _mm512_cvtpd_epi64(kd);
    const __m512i k1 = _mm512_srai_epi64(k, 1);
    const __m512i k2 = _mm512_sub_epi64(k, k1);
    const __m512i bias = _mm512_set1_epi64(1023);
    const __m512d s1 = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(k1, bias), 52));
    const __m512d s2 = _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(k2, bias), 52));
    return _mm512_mul_pd(_mm512_mul_pd(q, s1), s2);
}

PARML_LOGIT512 static inline __m512d parml_log1p_unit_512(__m512d e)   /* 0 <= e <= 1 */
{
    const __m512d one = _mm512_set1_pd(1.0);
    const __m512d u = _mm512_add_pd(one, e);
    const __m512d corr = _mm512_div_pd(_mm512_sub_pd(e, _mm512_sub_pd(u, one)), u);
    const __mmask8 big = _mm512_cmp_pd_mask(u, _mm512_set1_pd(0x1.6a09e667f3bcdp0), _CMP_GT_OQ);
    const __m512d m = _mm512_mask_mul_pd(u, big, u, _mm512_set1_pd(0.5));
    const __m512d f = _mm512_sub_pd(m, one);
    const __m512d s = _mm512_div_pd(f, _mm512_add_pd(_mm512_set1_pd(2.0), f));
    const __m512d z = _mm512_mul_pd(s, s);
    /* R = z/3 + z^2/5 + ... + z^9/19 */
    static const double c[9] = {1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9,
                                1.0 / 7, 1.0 / 5, 1.0 / 3};
    __m512d R = _mm512_set1_pd(c[0]);
    for (int i = 1; i < 9; ++i) R = _mm512_fmadd_pd(R, z, _mm512_set1_pd(c[i]));
    R = _mm512_mul_pd(R, z);
    const __m512d s2 = _mm512_add_pd(s, s);
    const __m512d logm = _mm512_fmadd_pd(s2, R, s2);
    const __m512d j = _mm512_mask_blend_pd(big, _mm512_setzero_pd(), one);
    const __m512d lo = _mm512_fmadd_pd(j, _mm512_set1_pd(1.90821492927058770002e-10), corr);
    return _mm512_fmadd_pd(j, _mm512_set1_pd(6.93147180369123816490e-01), _mm512_add_pd(logm, lo));
}

PARML_LOGIT512 static void parml_logit_avx512(const double *p, double *g, double *l, ptrdiff_t n,
                                              int need_loss)
{
    const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
    const __m512d sign = _mm512_set1_pd(-0.0);
    for (ptrdiff_t i = 0; i < n; i += 8) {
        const __mmask8 m = n - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - i)) - 1u);
        const __m512d pv = _mm512_maskz_loadu_pd(m, p + i);
        const __m512d e = parml_exp_neg_512(_mm512_or_pd(pv, sign));          /* exp(-|p|) */
        const __m512d u = _mm512_add_pd(one, e);
        const __mmask8 pos = _mm512_cmp_pd_mask(pv, zero, _CMP_GT_OQ);
        const __m512d num = _mm512_mask_blend_pd(pos, one, e);
        _mm512_mask_storeu_pd(g + i, m, _mm512_div_pd(_mm512_xor_pd(num, sign), u));
        if (need_loss) {
            const __m512d neg = _mm512_mask_blend_pd(pos, _mm512_xor_pd(pv, sign), zero);
            _mm512_mask_storeu_pd(l + i, m, _mm512_add_pd(neg, parml_log1p_unit_512(e)));
        }
    }
}
#endif

#include "logit_avx2.h"
#include "logit_neon.h"

/* The block function of kernel set `set` (kernel_sets.h). */
static inline parml_logit_fn parml_logit_for(int set)
{
    switch (set) {
#if PARML_X86
    case PARML_SET_AVX2: return parml_logit_avx2;
    case PARML_SET_AVX512: return parml_logit_avx512;
#endif
#if PARML_ARM64
    case PARML_SET_NEON: return parml_logit_neon;
#endif
    default: return parml_logit_generic;
    }
}

#endif
