/* parml GEMM: micro-kernel tables per kernel set, and the float/double drivers.
 * Included by pyx/parml/_kernels/_gemm.pyx (everything is static: one translation unit). */
#ifndef PARML_GEMM_H
#define PARML_GEMM_H

#include "kernel_sets.h"
#include "gemm_ukr.h"
#include "gemm_ukr_ref.h"
#include "gemm_ukr_sse2.h"
#include "gemm_ukr_avx2.h"
#include "gemm_ukr_avx512.h"
#include "gemm_ukr_neon.h"

/* One micro-kernel table per dtype, indexed by kernel-set id (kernel_sets.h); a set that this
 * build cannot have (another architecture) has a zero row, and parml_set_supported() says no. */
#define PARML_N_KERNELS PARML_N_SETS
#define PARML_NO_KERNEL(NAME) {NAME, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* The generic set: SSE2 on x86 (broadcast A panels, a_lanes = one vector), portable C
 * elsewhere. KC = 256 in both: on x86-64 the SSE2 kernel gives the bits the portable one gave
 * there (gemm_ukr_sse2.h). With A's panels
 * twice (float64) or four times (float32) as big, MC = 48 keeps the packed A block at 192 KiB,
 * inside the 256 KiB L2 of the oldest cores this set serves. */
#if PARML_HAVE_SSE2_UKR
#define PARML_GENERIC_D \
    {"generic", PARML_SSE2_MR, PARML_SSE2_NR_D, 256, 48, 2048, parml_ukr_d_sse2, 0, 0, 0, 2}
#define PARML_GENERIC_S \
    {"generic", PARML_SSE2_MR, PARML_SSE2_NR_S, 256, 48, 4096, parml_ukr_s_sse2, 0, 0, 0, 4}
#else
#define PARML_GENERIC_D \
    {"generic", PARML_REF_MR_D, PARML_REF_NR_D, 256, 128, 2048, parml_ukr_d_ref, 0, 0, 0, 1}
#define PARML_GENERIC_S \
    {"generic", PARML_REF_MR_S, PARML_REF_NR_S, 256, 128, 4096, parml_ukr_s_ref, 0, 0, 0, 1}
#endif

/*                name      MR              NR              KC   MC   NC    */
static const parml_kernel_d parml_kernels_d[PARML_N_SETS] = {
    PARML_GENERIC_D,
#if PARML_X86
    {"avx2",      PARML_D256_MR, PARML_D256_NR, 256, 96,  2048, parml_ukr_d_avx2,
     PARML_AVX2_SKINNY_W_D, parml_skinny_d_avx2, parml_ukr_d_avx2_a, 1},
    {"avx512",    PARML_D512_MR, PARML_D512_NR, 256, 144, 2048, parml_ukr_d_avx512,
     8, parml_skinny_d_avx512, parml_ukr_d_avx512_a, 1},
#else
    PARML_NO_KERNEL("avx2"),
    PARML_NO_KERNEL("avx512"),
#endif
#if PARML_ARM64
    {"neon", PARML_D128_MR, PARML_D128_NR, PARML_NEON_KC_D, PARML_NEON_MC_D, PARML_NEON_NC_D,
     parml_ukr_d_neon, PARML_NEON_SKINNY_W_D, parml_skinny_d_neon, 0, 1},
#else
    PARML_NO_KERNEL("neon"),
#endif
};

static const parml_kernel_s parml_kernels_s[PARML_N_SETS] = {
    PARML_GENERIC_S,
#if PARML_X86
    {"avx2",      PARML_S256_MR, PARML_S256_NR, 256, 96,  4096, parml_ukr_s_avx2,
     PARML_AVX2_SKINNY_W_S, parml_skinny_s_avx2, parml_ukr_s_avx2_a, 1},
    {"avx512",    PARML_S512_MR, PARML_S512_NR, 256, 144, 4096, parml_ukr_s_avx512,
     16, parml_skinny_s_avx512, parml_ukr_s_avx512_a, 1},
#else
    PARML_NO_KERNEL("avx2"),
    PARML_NO_KERNEL("avx512"),
#endif
#if PARML_ARM64
    {"neon", PARML_S128_MR, PARML_S128_NR, PARML_NEON_KC_S, PARML_NEON_MC_S, PARML_NEON_NC_S,
     parml_ukr_s_neon, PARML_NEON_SKINNY_W_S, parml_skinny_s_neon, 0, 1},
#else
    PARML_NO_KERNEL("neon"),
#endif
};
#undef PARML_NO_KERNEL
#undef PARML_GENERIC_D
#undef PARML_GENERIC_S

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
