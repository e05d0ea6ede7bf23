/* The kernel-set registry: the one place that names parml's instruction-set variants and says
 * which ones this CPU can run. Every kernel family keeps a table indexed by these ids (gemm.h,
 * linear_rows.h, logit_block.h, sgd_step.h, hist_simd.h); adding a set means a new id here, a
 * row in each family's table, and a feature test below, and no algorithm code changes.
 *
 *   generic  C at the target's baseline ISA (x86-64: SSE2, its GEMM kernel in SSE2 intrinsics;
 *            AArch64: Advanced SIMD through the compiler)
 *   avx2     x86-64-v3: AVX2 + FMA
 *   avx512   x86-64-v4: AVX-512 F/VL/DQ
 *   neon     AArch64 Advanced SIMD, hand-written (every AArch64 CPU)
 *
 * The order of ids is also the preference order within an architecture: the best set is the
 * supported one with the highest id. PARML_ISA caps the choice (parml_set_choose). Within one set
 * every kernel's summation order is fixed, so results are bitwise identical for any thread count;
 * two sets may differ in the last bits (FMA contraction, accumulator count). */
#ifndef PARML_KERNEL_SETS_H
#define PARML_KERNEL_SETS_H

#include <string.h>
#include "cpu_features.h"

enum {
    PARML_SET_GENERIC = 0,
    PARML_SET_AVX2 = 1,
    PARML_SET_AVX512 = 2,
    PARML_SET_NEON = 3,
    PARML_N_SETS = 4
};

static const char *const parml_set_names[PARML_N_SETS] = {"generic", "avx2", "avx512", "neon"};

/* Can this build, on this CPU, run set s? */
static inline int parml_set_supported(int s)
{
    const int f = parml_cpu_features();
    switch (s) {
    case PARML_SET_GENERIC: return 1;
    case PARML_SET_AVX2: return PARML_X86 && (f & PARML_CPU_AVX2_FMA) != 0;
    case PARML_SET_AVX512: return PARML_X86 && (f & PARML_CPU_AVX512) != 0;
    case PARML_SET_NEON: return PARML_ARM64 && (f & PARML_CPU_NEON) != 0;
    default: return 0;
    }
}

/* The best supported x86 set at or below an x86 cap (a cap of avx2 on an AVX-512 CPU gives
 * avx2; a cap of avx512 on an AVX2-only CPU gives avx2). */
static inline int parml_set_best_under(int cap)
{
    for (int s = cap; s >= PARML_SET_AVX2; --s)
        if (s <= PARML_SET_AVX512 && parml_set_supported(s)) return s;
    return PARML_SET_GENERIC;
}

static inline int parml_set_best(void)
{
    int best = PARML_SET_GENERIC;
    for (int s = 0; s < PARML_N_SETS; ++s)
        if (parml_set_supported(s)) best = s;
    return best;
}

/* Id of a set name, or -1. */
static inline int parml_set_id(const char *name)
{
    for (int s = 0; s < PARML_N_SETS; ++s)
        if (name && strcmp(name, parml_set_names[s]) == 0) return s;
    return -1;
}

enum { PARML_CHOOSE_OK = 0, PARML_CHOOSE_UNKNOWN = 1, PARML_CHOOSE_UNSUPPORTED = 2 };

/* The set to use for a PARML_ISA value (NULL or "" : the best set). *status says whether the
 * name was unknown (the best set is returned) or names a set this CPU or build lacks (the best
 * set under it, or the best set when the cap belongs to another architecture). */
static inline int parml_set_choose(const char *value, int *status)
{
    *status = PARML_CHOOSE_OK;
    if (value == NULL || value[0] == '\0') return parml_set_best();
    const int cap = parml_set_id(value);
    if (cap < 0) {
        *status = PARML_CHOOSE_UNKNOWN;
        return parml_set_best();
    }
    if (parml_set_supported(cap)) return cap;
    *status = PARML_CHOOSE_UNSUPPORTED;
    /* a cap from the other architecture says nothing about this one: take its best */
    if (cap == PARML_SET_NEON || !PARML_X86) return parml_set_best();
    return parml_set_best_under(cap);
}

#endif
