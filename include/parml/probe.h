/* Machine probes for the benchmarks: a busy loop timed on each thread (a thread that gets less
 * than a whole core, because another process or a sibling vCPU shares it, takes longer), and an
 * FMA loop that measures the core's real floating-point peak. */
#ifndef PARML_PROBE_H
#define PARML_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "clock.h"
#include "omp_shim.h"
#include "kernel_sets.h"

/* 8 independent multiply-add chains: enough to keep the FP pipes of one core busy, so a thread
 * sharing its core (SMT sibling or time slicing) shows up as a longer time. Returns seconds. */
static double parml_busy_loop(long iters, double *sink)
{
    double x[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const double mul = 0.999999, add = 1e-7;
    const double t0 = parml_now();
    for (long i = 0; i < iters; ++i)
        for (int j = 0; j < 8; ++j) x[j] = x[j] * mul + add;
    const double t = parml_now() - t0;
    *sink = x[0] + x[1] + x[2] + x[3] + x[4] + x[5] + x[6] + x[7];
    return t;
}

/* Each of n_threads threads runs the busy loop; times[t] = its seconds. */
static void parml_busy_probe(int n_threads, long iters, double *times)
{
    #pragma omp parallel num_threads(n_threads)
    {
        double sink = 0.0;
        const int t = omp_get_thread_num();
        if (t < n_threads) times[t] = parml_busy_loop(iters, &sink);
        if (sink == 42.0) times[t] += 0.0; /* keep the loop alive */
    }
}

/* OR of words[a..b): the portable loop (SSE2 under -O3: four 16-byte loads per cache line). */
static uint64_t parml_read_or(const uint64_t *words, ptrdiff_t a, ptrdiff_t b)
{
    uint64_t acc = 0;
    for (ptrdiff_t i = a; i < b; ++i) acc |= words[i];
    return acc;
}

#if PARML_X86
#include <immintrin.h>
/* The same with one 64-byte load per line and 4 accumulators. The SSE2 loop read 28 GB/s on one
 * Zen 5 vCPU where this reads 38-41: four loads per line fill the load queue with a quarter of
 * the lines in flight, so it measured the loop, not the memory. */
__attribute__((target("avx512f"))) static uint64_t parml_read_or_512(const uint64_t *words,
                                                                     ptrdiff_t a, ptrdiff_t b)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    ptrdiff_t i = a;
    for (; i + 32 <= b; i += 32) {
        s0 = _mm512_or_si512(s0, _mm512_loadu_si512((const void *)(words + i)));
        s1 = _mm512_or_si512(s1, _mm512_loadu_si512((const void *)(words + i + 8)));
        s2 = _mm512_or_si512(s2, _mm512_loadu_si512((const void *)(words + i + 16)));
        s3 = _mm512_or_si512(s3, _mm512_loadu_si512((const void *)(words + i + 24)));
    }
    s0 = _mm512_or_si512(_mm512_or_si512(s0, s1), _mm512_or_si512(s2, s3));
    uint64_t lanes[8], acc = parml_read_or(words, i, b);
    _mm512_storeu_si512((void *)lanes, s0);
    for (int j = 0; j < 8; ++j) acc |= lanes[j];
    return acc;
}
#endif

/* Seconds for n_threads threads to read words[0..n) once, each a contiguous share (an OR of the
 * words: no arithmetic to wait for, so the time is the memory's); *sink keeps the reads alive. */
static double parml_read_probe(const uint64_t *words, ptrdiff_t n, int n_threads, uint64_t *sink)
{
    uint64_t acc = 0;
#if PARML_X86
    const int wide = (parml_cpu_features() & PARML_CPU_AVX512) != 0;
#else
    const int wide = 0;
#endif
    const double t0 = parml_now();
    #pragma omp parallel num_threads(n_threads) reduction(|:acc)
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const ptrdiff_t a = n * t / nt, b = n * (t + 1) / nt;
#if PARML_X86
        if (wide) acc |= parml_read_or_512(words, a, b);
        else
#endif
        acc |= parml_read_or(words, a, b);
        (void)wide;
    }
    const double t = parml_now() - t0;
    *sink = acc;
    return t;
}

#if PARML_X86
/* Peak FLOP/s of one core: 16 independent 512-bit FMA chains (no memory traffic). */
__attribute__((target("avx512f"))) static double parml_fma_peak_avx512(long iters)
{
    __m512d acc[16];
    const __m512d a = _mm512_set1_pd(0.999999), b = _mm512_set1_pd(1e-7);
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_set1_pd((double)j);
    const double t0 = parml_now();
    for (long i = 0; i < iters; ++i) {
        _Pragma("GCC unroll 16") for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_pd(acc[j], a, b);
    }
    const double t = parml_now() - t0;
    __m512d s = acc[0];
    for (int j = 1; j < 16; ++j) s = _mm512_add_pd(s, acc[j]);
    volatile double sink = _mm512_reduce_add_pd(s);
    (void)sink;
    return (double)iters * 16 * 8 * 2 / t;
}

__attribute__((target("avx2,fma"))) static double parml_fma_peak_avx2(long iters)
{
    __m256d acc[12];
    const __m256d a = _mm256_set1_pd(0.999999), b = _mm256_set1_pd(1e-7);
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_pd((double)j);
    const double t0 = parml_now();
    for (long i = 0; i < iters; ++i) {
        _Pragma("GCC unroll 12") for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_pd(acc[j], a, b);
    }
    const double t = parml_now() - t0;
    double out[4];
    __m256d s = acc[0];
    for (int j = 1; j < 12; ++j) s = _mm256_add_pd(s, acc[j]);
    _mm256_storeu_pd(out, s);
    volatile double sink = out[0] + out[1] + out[2] + out[3];
    (void)sink;
    return (double)iters * 12 * 4 * 2 / t;
}
#endif

#if PARML_ARM64
#include <arm_neon.h>
/* 24 independent 128-bit FMA chains: enough for 4 FMA pipes of 4-cycle latency. */
static double parml_fma_peak_neon(long iters)
{
    float64x2_t acc[24];
    const float64x2_t a = vdupq_n_f64(0.999999), b = vdupq_n_f64(1e-7);
    for (int j = 0; j < 24; ++j) acc[j] = vdupq_n_f64((double)j);
    const double t0 = parml_now();
    for (long i = 0; i < iters; ++i) {
        _Pragma("GCC unroll 24") for (int j = 0; j < 24; ++j) acc[j] = vfmaq_f64(b, acc[j], a);
    }
    const double t = parml_now() - t0;
    float64x2_t s = acc[0];
    for (int j = 1; j < 24; ++j) s = vaddq_f64(s, acc[j]);
    volatile double sink = vaddvq_f64(s);
    (void)sink;
    return (double)iters * 24 * 2 * 2 / t;
}
#endif

/* The generic set's peak: 12 independent 2-wide multiply-add chains at the baseline ISA (SSE2
 * mulpd + addpd on x86-64; the compiler may fuse them into FMAs elsewhere). */
static double parml_fma_peak_generic(long iters)
{
    typedef double v2d __attribute__((vector_size(16)));
    v2d acc[12];
    const v2d a = {0.999999, 0.999999}, b = {1e-7, 1e-7};
    for (int j = 0; j < 12; ++j) acc[j] = (v2d){(double)j, (double)j};
    const double t0 = parml_now();
    for (long i = 0; i < iters; ++i) {
        _Pragma("GCC unroll 12") for (int j = 0; j < 12; ++j) acc[j] = acc[j] * a + b;
    }
    const double t = parml_now() - t0;
    v2d s = acc[0];
    for (int j = 1; j < 12; ++j) s += acc[j];
    volatile double sink = s[0] + s[1];
    (void)sink;
    return (double)iters * 12 * 2 * 2 / t;
}

/* Double-precision peak FLOP/s of one core with kernel set `set`'s widest vectors (kernel_sets.h;
 * the caller checked the set is supported). */
static double parml_fma_peak(int set, long iters)
{
    switch (set) {
#if PARML_X86
    case PARML_SET_AVX512: return parml_fma_peak_avx512(iters);
    case PARML_SET_AVX2: return parml_fma_peak_avx2(iters);
#endif
#if PARML_ARM64
    case PARML_SET_NEON: return parml_fma_peak_neon(iters);
#endif
    default: return parml_fma_peak_generic(iters);
    }
}

#endif
