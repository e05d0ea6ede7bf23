/* AVX2 + FMA micro-kernels, per-function target attributes (see gemm_ukr_avx512.h).
 *
 * Register tile: MR = 6 rows x NR = 2 vectors (8 doubles / 16 floats): 12 ymm accumulators +
 * 2 for B + 1 broadcast = 15 of 16 registers. Edge tiles go through a small scratch tile because
 * AVX2 has no cheap masked store for every width. */
#ifndef PARML_GEMM_UKR_AVX2_H
#define PARML_GEMM_UKR_AVX2_H

#include "gemm_ukr.h"
#include "cpu_features.h"

#if PARML_X86
#include <immintrin.h>

#define PARML_AVX2_TARGET __attribute__((target("avx2,fma")))
#define PARML_D256_MR 6
#define PARML_D256_NR 8
#define PARML_S256_MR 6
#define PARML_S256_NR 16

#define PARML_DEFINE_AVX2_UKR(T, VEC, W, SUF, BCAST, MR, NAME)                                          \
    PARML_AVX2_TARGET static void NAME(ptrdiff_t k, const T *PARML_RESTRICT a,                     \
                                       const T *PARML_RESTRICT b, ptrdiff_t rs_b,                  \
                                       T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr, int nr,        \
                                       int accumulate)                                             \
    {                                                                                              \
        VEC acc0[MR], acc1[MR];                                                                    \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                       \
        {                                                                                          \
            acc0[i] = _mm256_setzero_##SUF();                                                      \
            acc1[i] = _mm256_setzero_##SUF();                                                      \
        }                                                                                          \
        for (ptrdiff_t p = 0; p < k; ++p) {                                                        \
            const VEC b0 = _mm256_loadu_##SUF(b);                                                  \
            const VEC b1 = _mm256_loadu_##SUF(b + W);                                              \
            _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                   \
            {                                                                                      \
                const VEC ai = BCAST(a + i);                                                       \
                acc0[i] = _mm256_fmadd_##SUF(ai, b0, acc0[i]);                                     \
                acc1[i] = _mm256_fmadd_##SUF(ai, b1, acc1[i]);                                     \
            }                                                                                      \
            a += MR;                                                                               \
            b += rs_b;                                                                             \
        }                                                                                          \
        const int full = (mr == MR && nr == 2 * W);                                                \
        T tile[MR * 2 * W];                                                                        \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                       \
        {                                                                                          \
            T *ci = full ? c + i * rs_c : tile + i * 2 * W;                                        \
            if (full && accumulate) {                                                              \
                acc0[i] = _mm256_add_##SUF(acc0[i], _mm256_loadu_##SUF(ci));                       \
                acc1[i] = _mm256_add_##SUF(acc1[i], _mm256_loadu_##SUF(ci + W));                   \
            }                                                                                      \
            _mm256_storeu_##SUF(ci, acc0[i]);                                                      \
            _mm256_storeu_##SUF(ci + W, acc1[i]);                                                  \
        }                                                                                          \
        if (!full) {                                                                               \
            for (int i = 0; i < mr; ++i) {                                                         \
                T *ci = c + i * rs_c;                                                              \
                const T *ti = tile + i * 2 * W;                                                    \
                if (accumulate)                                                                    \
                    for (int j = 0; j < nr; ++j) ci[j] += ti[j];                                   \
                else                                                                               \
                    for (int j = 0; j < nr; ++j) ci[j] = ti[j];                                    \
            }                                                                                      \
        }                                                                                          \
    }

PARML_DEFINE_AVX2_UKR(double, __m256d, 4, pd, _mm256_broadcast_sd, PARML_D256_MR, parml_ukr_d_avx2)
PARML_DEFINE_AVX2_UKR(float, __m256, 8, ps, _mm256_broadcast_ss, PARML_S256_MR, parml_ukr_s_avx2)

#endif /* PARML_X86 */
#endif
