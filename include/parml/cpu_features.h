/* Run-time CPU feature detection. Kernels are compiled for the baseline ISA of the target (x86-64
 * SSE2, or AArch64 with Advanced SIMD); the AVX2/AVX-512 kernels carry per-function target
 * attributes and are only called when the CPU *and the OS* (XSAVE state enabled, checked by the
 * compiler runtime) support them. Advanced SIMD (NEON) is part of every AArch64 CPU, so the NEON
 * kernels need no run-time check: they are compiled in on AArch64 builds only. */
#ifndef PARML_CPU_FEATURES_H
#define PARML_CPU_FEATURES_H

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PARML_X86 1
#else
#define PARML_X86 0
#endif

#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__))
#define PARML_ARM64 1
#else
#define PARML_ARM64 0
#endif

enum {
    PARML_CPU_AVX2_FMA = 1 << 0,   /* AVX2 + FMA3 */
    PARML_CPU_AVX512 = 1 << 1,     /* AVX-512 F + VL + DQ (what our 512-bit kernels use) */
    PARML_CPU_NEON = 1 << 2,       /* AArch64 Advanced SIMD (always, on AArch64) */
};

static inline int parml_cpu_features(void)
{
    int f = 0;
#if PARML_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f |= PARML_CPU_AVX2_FMA;
    if ((f & PARML_CPU_AVX2_FMA) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        f |= PARML_CPU_AVX512;
#endif
#if PARML_ARM64
    f |= PARML_CPU_NEON;
#endif
    return f;
}

#endif
