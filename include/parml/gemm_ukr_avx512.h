/* AVX-512 micro-kernels (F + VL + DQ), compiled with per-function target attributes so that the
 * rest of the extension stays baseline x86-64; called only when cpu_features.h says so.
 *
 * Register tile: MR = 12 rows x NR = 2 vectors (16 doubles / 32 floats). 24 zmm accumulators,
 * 2 zmm for the B row, 1 for the broadcast A element: 27 of 32 registers, no spills. Per step of
 * k: 2 vector loads + 12 broadcasts feed 24 FMAs, enough independent chains to cover FMA latency
 * on two 512-bit pipes. Edge tiles use masked loads/stores on columns and a row bound. */
#ifndef PARML_GEMM_UKR_AVX512_H
#define PARML_GEMM_UKR_AVX512_H

#include "gemm_ukr.h"
#include "cpu_features.h"

#if PARML_X86
#include <immintrin.h>

#define PARML_AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#define PARML_D512_MR 12
#define PARML_D512_NR 16
#define PARML_S512_MR 12
#define PARML_S512_NR 32

/* VEC: vector type, W: lanes, SUF: intrinsic suffix, MASK: mask type. */
/* NAME reads a packed A panel, NAME##_a reads A in place (parml_ukr_a_*_fn): one body, inlined
 * into both (with ar = 1, ac = MR constant the packed kernel compiles as if written alone). */
#define PARML_DEFINE_AVX512_UKR(T, VEC, W, SUF, MASK, MR, NAME)                                    \
    PARML_AVX512_TARGET static inline __attribute__((always_inline)) void NAME##_body(            \
        ptrdiff_t k, const T *PARML_RESTRICT a, ptrdiff_t ar, ptrdiff_t ac,                        \
        const T *PARML_RESTRICT b, ptrdiff_t rs_b, T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr,    \
        int nr, int accumulate)                                                                    \
    {                                                                                              \
        VEC acc0[MR], acc1[MR];                                                                    \
        PARML_PREFETCH_C_TILE(c, rs_c, mr, nr)                                                     \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i)                                      \
        {                                                                                          \
            acc0[i] = _mm512_setzero_##SUF();                                                      \
            acc1[i] = _mm512_setzero_##SUF();                                                      \
        }                                                                                          \
        for (ptrdiff_t p = 0; p < k; ++p) {                                                        \
            const VEC b0 = _mm512_loadu_##SUF(b);                                                  \
            const VEC b1 = _mm512_loadu_##SUF(b + W);                                              \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i)                                  \
            {                                                                                      \
                const VEC ai = _mm512_set1_##SUF(a[i * ar]);                                       \
                acc0[i] = _mm512_fmadd_##SUF(ai, b0, acc0[i]);                                     \
                acc1[i] = _mm512_fmadd_##SUF(ai, b1, acc1[i]);                                     \
            }                                                                                      \
            a += ac;                                                                               \
            b += rs_b;                                                                             \
        }                                                                                          \
        if (mr == MR && nr == 2 * W) {                                                             \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i)                                  \
            {                                                                                      \
                T *ci = c + i * rs_c;                                                              \
                if (accumulate) {                                                                  \
                    acc0[i] = _mm512_add_##SUF(acc0[i], _mm512_loadu_##SUF(ci));                   \
                    acc1[i] = _mm512_add_##SUF(acc1[i], _mm512_loadu_##SUF(ci + W));               \
                }                                                                                  \
                _mm512_storeu_##SUF(ci, acc0[i]);                                                  \
                _mm512_storeu_##SUF(ci + W, acc1[i]);                                              \
            }                                                                                      \
        } else {                                                                                   \
            const MASK m0 = (MASK)(nr >= W ? (MASK)~(MASK)0 : (MASK)((1u << nr) - 1u));            \
            const MASK m1 = (MASK)(nr >= 2 * W  ? (MASK)~(MASK)0                                   \
                                   : nr <= W    ? (MASK)0                                          \
                                                : (MASK)((1u << (nr - W)) - 1u));                  \
            /* constant indices only (unrolled), or the compiler keeps acc in memory */        \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i)                                  \
            {                                                                                      \
                if (i >= mr) break;                                                                \
                T *ci = c + i * rs_c;                                                              \
                if (accumulate) {                                                                  \
                    acc0[i] = _mm512_add_##SUF(acc0[i], _mm512_maskz_loadu_##SUF(m0, ci));         \
                    acc1[i] = _mm512_add_##SUF(acc1[i], _mm512_maskz_loadu_##SUF(m1, ci + W));     \
                }                                                                                  \
                _mm512_mask_storeu_##SUF(ci, m0, acc0[i]);                                         \
                _mm512_mask_storeu_##SUF(ci + W, m1, acc1[i]);                                     \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    PARML_DEFINE_UKR_ENTRIES(PARML_AVX512_TARGET, T, MR, NAME)

PARML_DEFINE_AVX512_UKR(double, __m512d, 8, pd, __mmask8, PARML_D512_MR, parml_ukr_d_avx512)
PARML_DEFINE_AVX512_UKR(float, __m512, 16, ps, __mmask16, PARML_S512_MR, parml_ukr_s_avx512)

/* Skinny products (n <= one vector, W): C[m, n] = A[m, k].B[k, n] with A read in place through
 * any strides (no packing: with so few columns, packing A would cost more than the product) and
 * B's rows (unit column stride) read with a masked load. 12 rows at a time, one accumulator each;
 * each element is the sum over p in increasing order, from zero. */
#define PARML_SKINNY_ROWS 12
#define PARML_DEFINE_AVX512_SKINNY(T, VEC, W, SUF, MASK, NAME)                                     \
    PARML_AVX512_TARGET static void NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,                    \
                                         const T *PARML_RESTRICT a, ptrdiff_t rs_a, ptrdiff_t cs_a,\
                                         const T *PARML_RESTRICT b, ptrdiff_t rs_b,                \
                                         T *PARML_RESTRICT c, ptrdiff_t rs_c)                      \
    {                                                                                              \
        const MASK mask = (MASK)(n >= W ? (MASK)~(MASK)0 : (MASK)((1u << n) - 1u));                \
        for (ptrdiff_t i0 = 0; i0 < m; i0 += PARML_SKINNY_ROWS) {                                  \
            const ptrdiff_t r = m - i0 < PARML_SKINNY_ROWS ? m - i0 : PARML_SKINNY_ROWS;           \
            const T *row[PARML_SKINNY_ROWS];                                                       \
            VEC acc[PARML_SKINNY_ROWS];                                                            \
            _Pragma("GCC unroll 12") for (int i = 0; i < PARML_SKINNY_ROWS; ++i)                   \
            {   /* rows past m repeat the last row: computed, never stored */                      \
                row[i] = a + (i0 + (i < r ? i : r - 1)) * rs_a;                                    \
                acc[i] = _mm512_setzero_##SUF();                                                   \
            }                                                                                      \
            for (ptrdiff_t p = 0; p < k; ++p) {                                                    \
                const VEC bv = _mm512_maskz_loadu_##SUF(mask, b + p * rs_b);                       \
                const ptrdiff_t off = p * cs_a;                                                    \
                _Pragma("GCC unroll 12") for (int i = 0; i < PARML_SKINNY_ROWS; ++i)               \
                    acc[i] = _mm512_fmadd_##SUF(_mm512_set1_##SUF(row[i][off]), bv, acc[i]);       \
            }                                                                                      \
            _Pragma("GCC unroll 12") for (int i = 0; i < PARML_SKINNY_ROWS; ++i)                   \
                if (i < r) _mm512_mask_storeu_##SUF(c + (i0 + i) * rs_c, mask, acc[i]);           \
        }                                                                                          \
    }

PARML_DEFINE_AVX512_SKINNY(double, __m512d, 8, pd, __mmask8, parml_skinny_d_avx512)
PARML_DEFINE_AVX512_SKINNY(float, __m512, 16, ps, __mmask16, parml_skinny_s_avx512)

#endif /* PARML_X86 */
#endif
