/* The block logistic loss of logit_block.h in AVX2 + FMA, 4 margins at a time (included by
 * logit_block.h after parml_logit_fn; per-function target attribute, chosen at run time).
 *
 * The same algorithm as the AVX-512 version, operation for operation (so the two agree bit for
 * bit): exp(-|p|) by k = round(-|p| / ln 2) (the 0x1.8p52 shift trick), r = -|p| - k ln 2 (ln 2 in
 * two parts), Taylor to degree 13, times 2^k1 2^k2 with k1 = floor(k / 2), k2 = k - k1; log1p by
 * the atanh series. AVX2 has no double -> int64 conversion and no 64-bit arithmetic shift, so:
 *   - k is read from the bits of t = -|p| log2(e) + 0x1.8p52 (before the shift is subtracted):
 *     t lies in [2^52, 2^53), where the ulp is 1, so bits(t) = bits(0x1.8p52) + k exactly;
 *   - after the clamp to -746, k is in [-1077, 0], so D = k + 2048 is positive and a logical
 *     shift gives floor(D / 2) = k1 + 1024; the biased exponents k1 + 1023 and k2 + 1023 (both
 *     in [484, 1023]: normal numbers) are then built with 64-bit adds and shifts.
 * A NaN margin stays NaN (max returns its second operand on NaN; the scale bits are then garbage
 * but the polynomial is NaN). Tails go through the same vector code: the last 1..3 margins are
 * read with loads of exactly that size into a vector whose other lanes are 0 (no vmaskmov: AMD
 * leaves its fault handling for masked-off elements implementation dependent), and stored in
 * exact-size pieces, so nothing past p[n - 1] is touched and a row's result never depends on
 * where a block ends. */
#ifndef PARML_LOGIT_AVX2_H
#define PARML_LOGIT_AVX2_H

#include <stddef.h>
#include "cpu_features.h"
#include "avx2_parts.h"

#if PARML_X86
#include <immintrin.h>

#define PARML_LOGIT256 __attribute__((target("avx2,fma")))

PARML_LOGIT256 static inline __m256d parml_exp_neg_256(__m256d x)   /* x <= 0 */
{
    const __m256d shift = _mm256_set1_pd(0x1.8p52);
    x = _mm256_max_pd(_mm256_set1_pd(-746.0), x);   /* NaN stays NaN */
    const __m256d t = _mm256_fmadd_pd(x, _mm256_set1_pd(0x1.71547652b82fep0), shift);
    const __m256d kd = _mm256_sub_pd(t, shift);
    __m256d r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(6.93147180369123816490e-01), x);
    r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(1.90821492927058770002e-10), r);
    /* 1/13!, 1/12!, ..., 1/1!, 1/0! */
    static const double c[14] = {
        1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
        1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
        1.0 / 6.0, 0.5, 1.0, 1.0};
    __m256d q = _mm256_set1_pd(c[0]);
    for (int i = 1; i < 14; ++i) q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(c[i]));
    /* D = k + 2048 = bits(t) - bits(0x1.8p52) + 2048 */
    const __m256i D = _mm256_add_epi64(_mm256_castpd_si256(t),
                                       _mm256_set1_epi64x(2048LL - 0x4338000000000000LL));
    const __m256i e1 = _mm256_sub_epi64(_mm256_srli_epi64(D, 1), _mm256_set1_epi64x(1));
    const __m256i e2 = _mm256_sub_epi64(_mm256_sub_epi64(D, _mm256_set1_epi64x(2)), e1);
    const __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(e1, 52));   /* 2^k1 */
    const __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(e2, 52));   /* 2^(k - k1) */
    return _mm256_mul_pd(_mm256_mul_pd(q, s1), s2);
}

PARML_LOGIT256 static inline __m256d parml_log1p_unit_256(__m256d e)   /* 0 <= e <= 1 */
{
    const __m256d one = _mm256_set1_pd(1.0);
    const __m256d u = _mm256_add_pd(one, e);
    const __m256d corr = _mm256_div_pd(_mm256_sub_pd(e, _mm256_sub_pd(u, one)), u);
    const __m256d big = _mm256_cmp_pd(u, _mm256_set1_pd(0x1.6a09e667f3bcdp0), _CMP_GT_OQ);
    const __m256d m = _mm256_blendv_pd(u, _mm256_mul_pd(u, _mm256_set1_pd(0.5)), big);
    const __m256d f = _mm256_sub_pd(m, one);
    const __m256d s = _mm256_div_pd(f, _mm256_add_pd(_mm256_set1_pd(2.0), f));
    const __m256d z = _mm256_mul_pd(s, s);
    /* R = z/3 + z^2/5 + ... + z^9/19 */
    static const double c[9] = {1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9,
                                1.0 / 7, 1.0 / 5, 1.0 / 3};
    __m256d R = _mm256_set1_pd(c[0]);
    for (int i = 1; i < 9; ++i) R = _mm256_fmadd_pd(R, z, _mm256_set1_pd(c[i]));
    R = _mm256_mul_pd(R, z);
    const __m256d s2 = _mm256_add_pd(s, s);
    const __m256d logm = _mm256_fmadd_pd(s2, R, s2);
    const __m256d j = _mm256_and_pd(big, one);   /* 1 where u was halved, else 0 */
    const __m256d lo = _mm256_fmadd_pd(j, _mm256_set1_pd(1.90821492927058770002e-10), corr);
    return _mm256_fmadd_pd(j, _mm256_set1_pd(6.93147180369123816490e-01), _mm256_add_pd(logm, lo));
}



/* g and (need_loss) l for 8 full margins: two vectors side by side, for instruction-level
 * parallelism across the long polynomial chains (8-10% faster than one vector at a time here);
 * each lane gets exactly the arithmetic of the one-vector loop below. */
PARML_LOGIT256 static inline void parml_logit256_x2(const double *p, double *g, double *l,
                                                    ptrdiff_t i, int need_loss)
{
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    const __m256d sign = _mm256_set1_pd(-0.0);
    const __m256d p0 = _mm256_loadu_pd(p + i), p1 = _mm256_loadu_pd(p + i + 4);
    const __m256d e0 = parml_exp_neg_256(_mm256_or_pd(p0, sign));
    const __m256d e1 = parml_exp_neg_256(_mm256_or_pd(p1, sign));
    const __m256d u0 = _mm256_add_pd(one, e0), u1 = _mm256_add_pd(one, e1);
    const __m256d pos0 = _mm256_cmp_pd(p0, zero, _CMP_GT_OQ);
    const __m256d pos1 = _mm256_cmp_pd(p1, zero, _CMP_GT_OQ);
    const __m256d n0 = _mm256_xor_pd(_mm256_blendv_pd(one, e0, pos0), sign);
    const __m256d n1 = _mm256_xor_pd(_mm256_blendv_pd(one, e1, pos1), sign);
    _mm256_storeu_pd(g + i, _mm256_div_pd(n0, u0));
    _mm256_storeu_pd(g + i + 4, _mm256_div_pd(n1, u1));
    if (need_loss) {
        const __m256d L0 = parml_log1p_unit_256(e0), L1 = parml_log1p_unit_256(e1);
        const __m256d m0 = _mm256_blendv_pd(_mm256_xor_pd(p0, sign), zero, pos0);
        const __m256d m1 = _mm256_blendv_pd(_mm256_xor_pd(p1, sign), zero, pos1);
        _mm256_storeu_pd(l + i, _mm256_add_pd(m0, L0));
        _mm256_storeu_pd(l + i + 4, _mm256_add_pd(m1, L1));
    }
}

PARML_LOGIT256 static void parml_logit_avx2(const double *p, double *g, double *l, ptrdiff_t n,
                                            int need_loss)
{
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    const __m256d sign = _mm256_set1_pd(-0.0);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) parml_logit256_x2(p, g, l, i, need_loss);
    for (; i < n; i += 4) {
        const ptrdiff_t r = n - i;
        const __m256d pv = r >= 4 ? _mm256_loadu_pd(p + i) : parml_avx2_part_d(p + i, r);
        const __m256d e = parml_exp_neg_256(_mm256_or_pd(pv, sign));          /* exp(-|p|) */
        const __m256d u = _mm256_add_pd(one, e);
        const __m256d pos = _mm256_cmp_pd(pv, zero, _CMP_GT_OQ);
        const __m256d num = _mm256_blendv_pd(one, e, pos);
        parml_avx2_store_d(g + i, _mm256_div_pd(_mm256_xor_pd(num, sign), u), r);
        if (need_loss) {
            const __m256d neg = _mm256_blendv_pd(_mm256_xor_pd(pv, sign), zero, pos);
            parml_avx2_store_d(l + i, _mm256_add_pd(neg, parml_log1p_unit_256(e)), r);
        }
    }
}

#endif /* PARML_X86 */
#endif
