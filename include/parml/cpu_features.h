/* Run-time CPU feature detection. Kernels are compiled for baseline x86-64 (or any other target);
 * the AVX2/AVX-512 micro-kernels carry per-function target attributes and are only called when the
 * CPU *and the OS* (XSAVE state enabled, checked by the compiler runtime) support them. */
#ifndef PARML_CPU_FEATURES_H
#define PARML_CPU_FEATURES_H

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PARML_X86 1
#else
#define PARML_X86 0
#endif

enum {
    PARML_CPU_AVX2_FMA = 1 << 0,   /* AVX2 + FMA3 */
    PARML_CPU_AVX512 = 1 << 1,     /* AVX-512 F + VL + DQ (what our 512-bit kernels use) */
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
    return f;
}

#endif
