/* Portable reference micro-kernels (plain C, any architecture; the compiler may auto-vectorise at
 * the baseline ISA). They follow the contract in gemm_ukr.h exactly and are the generic set's
 * kernels where there is no SSE2 one (gemm_ukr_sse2.h): non-x86 builds, 32-bit x86 without SSE2. */
#ifndef PARML_GEMM_UKR_REF_H
#define PARML_GEMM_UKR_REF_H

#include "gemm_ukr.h"

#ifndef PARML_REF_MR_D
#define PARML_REF_MR_D 4
#define PARML_REF_NR_D 8
#define PARML_REF_MR_S 4
#define PARML_REF_NR_S 8
#endif

#define PARML_DEFINE_REF_UKR(T, NAME, PARML_REF_MR, PARML_REF_NR)                                  \
    static void NAME(ptrdiff_t k, const T *PARML_RESTRICT a, const T *PARML_RESTRICT b,          \
                     ptrdiff_t rs_b, T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr, int nr,          \
                     int accumulate)                                                               \
    {                                                                                              \
        T acc[PARML_REF_MR][PARML_REF_NR] = {{0}};                                                 \
        PARML_PREFETCH_C_TILE(c, rs_c, mr, nr)                                                     \
        for (ptrdiff_t p = 0; p < k; ++p) {                                                        \
            const T *ap = a + p * PARML_REF_MR;                                                    \
            const T *bp = b + p * rs_b;                                                            \
            for (int i = 0; i < PARML_REF_MR; ++i)                                                 \
                for (int j = 0; j < PARML_REF_NR; ++j)                                             \
                    acc[i][j] += ap[i] * bp[j];                                                    \
        }                                                                                          \
        for (int i = 0; i < mr; ++i) {                                                             \
            T *ci = c + i * rs_c;                                                                  \
            if (accumulate)                                                                        \
                for (int j = 0; j < nr; ++j) ci[j] += acc[i][j];                                   \
            else                                                                                   \
                for (int j = 0; j < nr; ++j) ci[j] = acc[i][j];                                    \
        }                                                                                          \
    }

PARML_DEFINE_REF_UKR(double, parml_ukr_d_ref, PARML_REF_MR_D, PARML_REF_NR_D)
PARML_DEFINE_REF_UKR(float, parml_ukr_s_ref, PARML_REF_MR_S, PARML_REF_NR_S)

#endif
