/* parml GEMM: kernel tables per ISA, run-time selection, and the float/double drivers.
 * Included by pyx/parml/_kernels/_gemm.pyx (everything is static: one translation unit). */
#ifndef PARML_GEMM_H
#define PARML_GEMM_H

#include "cpu_features.h"
#include "gemm_ukr.h"
#include "gemm_ukr_ref.h"
#include "gemm_ukr_avx2.h"
#include "gemm_ukr_avx512.h"

/* Kernel ids, in the order of the tables below. */
enum { PARML_KERNEL_REF = 0, PARML_KERNEL_AVX2 = 1, PARML_KERNEL_AVX512 = 2, PARML_N_KERNELS = 3 };

/*                name      MR              NR              KC   MC   NC    */
static const parml_kernel_d parml_kernels_d[PARML_N_KERNELS] = {
    {"reference", PARML_REF_MR,  PARML_REF_NR,  256, 128, 2048, parml_ukr_d_ref, 0, 0},
#if PARML_X86
    {"avx2_fma",  PARML_D256_MR, PARML_D256_NR, 256, 96,  2048, parml_ukr_d_avx2, 0, 0},
    {"avx512",    PARML_D512_MR, PARML_D512_NR, 256, 144, 2048, parml_ukr_d_avx512,
     8, parml_skinny_d_avx512},
#else
    {"avx2_fma",  0, 0, 0, 0, 0, 0, 0, 0},
    {"avx512",    0, 0, 0, 0, 0, 0, 0, 0},
#endif
};

static const parml_kernel_s parml_kernels_s[PARML_N_KERNELS] = {
    {"reference", PARML_REF_MR,  PARML_REF_NR,  256, 128, 4096, parml_ukr_s_ref, 0, 0},
#if PARML_X86
    {"avx2_fma",  PARML_S256_MR, PARML_S256_NR, 256, 96,  4096, parml_ukr_s_avx2, 0, 0},
    {"avx512",    PARML_S512_MR, PARML_S512_NR, 256, 144, 4096, parml_ukr_s_avx512,
     16, parml_skinny_s_avx512},
#else
    {"avx2_fma",  0, 0, 0, 0, 0, 0, 0, 0},
    {"avx512",    0, 0, 0, 0, 0, 0, 0, 0},
#endif
};

/* Is kernel id usable on this CPU? */
static inline int parml_kernel_supported(int id)
{
    const int f = parml_cpu_features();
    switch (id) {
    case PARML_KERNEL_REF: return 1;
    case PARML_KERNEL_AVX2: return (f & PARML_CPU_AVX2_FMA) != 0;
    case PARML_KERNEL_AVX512: return (f & PARML_CPU_AVX512) != 0;
    default: return 0;
    }
}

/* The best kernel this CPU supports. */
static inline int parml_best_kernel(void)
{
    if (parml_kernel_supported(PARML_KERNEL_AVX512)) return PARML_KERNEL_AVX512;
    if (parml_kernel_supported(PARML_KERNEL_AVX2)) return PARML_KERNEL_AVX2;
    return PARML_KERNEL_REF;
}

#define PT double
#define PSFX(x) x##_d
#define PKERNEL parml_kernel_d
#include "gemm_impl.h"
#undef PT
#undef PSFX
#undef PKERNEL

#define PT float
#define PSFX(x) x##_s
#define PKERNEL parml_kernel_s
#include "gemm_impl.h"
#undef PT
#undef PSFX
#undef PKERNEL

#endif
