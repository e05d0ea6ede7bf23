/* AVX2 + FMA versions of the row primitives of linear_rows.h (included by it, after parml_rowops
 * and the function typedefs; per-function target attributes, chosen at run time).
 *
 * dot: 8 ymm accumulators over blocks of 32 (FMA latency 4 x 2 pipes), then blocks of 8 into
 *   accumulators 0 and 1, one block of 4 into accumulator 2, and the last d % 4 elements
 *   (zero-padded, see Tails) into accumulator 3; reduced as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)),
 *   then high half + low half, then lane 0 + lane 1. The order is a fixed function of d.
 * dot4: two accumulators per row (8 chains), w loaded once per 4 rows; the tail goes into the
 *   second one, as in the AVX-512 version.
 * axpy, axpby, axpy4: element-wise, so the result is the same as the AVX-512 versions' bit for
 *   bit (axpby: c g rounded, then one FMA; axpy4: the 4 rows' FMAs chained in row order 0..3).
 * Tails (the last d % 4 elements): loaded in exact-size pieces (a 128-bit and/or a 64-bit load
 *   for doubles, 64/32-bit for floats), combined into a vector whose other lanes are zero, so no
 *   byte past the row's end is touched; no vmaskmov (AMD documents its handling of faults on
 *   masked-off elements as implementation dependent, and its stores are microcoded on Zen).
 *   Stores of a tail are exact-size pieces as well.
 * A float32 row is widened to float64 in registers (vcvtps2pd), as in the other sets. */
#ifndef PARML_LINEAR_ROWS_AVX2_H
#define PARML_LINEAR_ROWS_AVX2_H

#include <stddef.h>
#include "cpu_features.h"
#include "avx2_parts.h"

#if PARML_X86
#include <immintrin.h>

#define PARML_ROW256 __attribute__((target("avx2,fma")))


/* 4 doubles of a row: from doubles, or widened from floats; MLOAD: the first r (1..3) only, the
 * other lanes zero. */
#define PARML_R256_LOAD_D(p) _mm256_loadu_pd(p)
#define PARML_R256_LOAD_S(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define PARML_R256_MLOAD_D(p, r) parml_avx2_part_d((p), (r))
#define PARML_R256_MLOAD_S(p, r) _mm256_cvtps_pd(parml_avx2_part4_s((p), (r)))


PARML_ROW256 static inline double parml_r256_hsum(__m256d v)
{
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

#define PARML_DEFINE_AVX2_ROWOPS(XT, SFX, LOAD, MLOAD)                                             \
    PARML_ROW256 static double parml_dot_256_##SFX(const XT *x, const double *w, ptrdiff_t d)     \
    {                                                                                              \
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();                                \
        __m256d s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();                                \
        __m256d s4 = _mm256_setzero_pd(), s5 = _mm256_setzero_pd();                                \
        __m256d s6 = _mm256_setzero_pd(), s7 = _mm256_setzero_pd();                                \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 32 <= d; j += 32) {                                                             \
            s0 = _mm256_fmadd_pd(LOAD(x + j), _mm256_loadu_pd(w + j), s0);                         \
            s1 = _mm256_fmadd_pd(LOAD(x + j + 4), _mm256_loadu_pd(w + j + 4), s1);                 \
            s2 = _mm256_fmadd_pd(LOAD(x + j + 8), _mm256_loadu_pd(w + j + 8), s2);                 \
            s3 = _mm256_fmadd_pd(LOAD(x + j + 12), _mm256_loadu_pd(w + j + 12), s3);               \
            s4 = _mm256_fmadd_pd(LOAD(x + j + 16), _mm256_loadu_pd(w + j + 16), s4);               \
            s5 = _mm256_fmadd_pd(LOAD(x + j + 20), _mm256_loadu_pd(w + j + 20), s5);               \
            s6 = _mm256_fmadd_pd(LOAD(x + j + 24), _mm256_loadu_pd(w + j + 24), s6);               \
            s7 = _mm256_fmadd_pd(LOAD(x + j + 28), _mm256_loadu_pd(w + j + 28), s7);               \
        }                                                                                          \
        for (; j + 8 <= d; j += 8) {                                                               \
            s0 = _mm256_fmadd_pd(LOAD(x + j), _mm256_loadu_pd(w + j), s0);                         \
            s1 = _mm256_fmadd_pd(LOAD(x + j + 4), _mm256_loadu_pd(w + j + 4), s1);                 \
        }                                                                                          \
        if (j + 4 <= d) {                                                                          \
            s2 = _mm256_fmadd_pd(LOAD(x + j), _mm256_loadu_pd(w + j), s2);                         \
            j += 4;                                                                                \
        }                                                                                          \
        if (j < d)                                                                                 \
            s3 = _mm256_fmadd_pd(MLOAD(x + j, d - j), PARML_R256_MLOAD_D(w + j, d - j), s3);       \
        const __m256d t0 = _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3));           \
        const __m256d t1 = _mm256_add_pd(_mm256_add_pd(s4, s5), _mm256_add_pd(s6, s7));           \
        return parml_r256_hsum(_mm256_add_pd(t0, t1));                                             \
    }                                                                                              \
    PARML_ROW256 static void parml_axpy_256_##SFX(double a, const XT *x, double *g, ptrdiff_t d)  \
    {                                                                                              \
        const __m256d va = _mm256_set1_pd(a);                                                      \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 16 <= d; j += 16) {                                                             \
            const __m256d t0 = _mm256_fmadd_pd(va, LOAD(x + j), _mm256_loadu_pd(g + j));           \
            const __m256d t1 = _mm256_fmadd_pd(va, LOAD(x + j + 4), _mm256_loadu_pd(g + j + 4));   \
            const __m256d t2 = _mm256_fmadd_pd(va, LOAD(x + j + 8), _mm256_loadu_pd(g + j + 8));   \
            const __m256d t3 = _mm256_fmadd_pd(va, LOAD(x + j + 12), _mm256_loadu_pd(g + j + 12)); \
            _mm256_storeu_pd(g + j, t0);                                                           \
            _mm256_storeu_pd(g + j + 4, t1);                                                       \
            _mm256_storeu_pd(g + j + 8, t2);                                                       \
            _mm256_storeu_pd(g + j + 12, t3);                                                      \
        }                                                                                          \
        for (; j + 4 <= d; j += 4)                                                                 \
            _mm256_storeu_pd(g + j, _mm256_fmadd_pd(va, LOAD(x + j), _mm256_loadu_pd(g + j)));     \
        if (j < d)                                                                                 \
            parml_avx2_store_d(g + j, _mm256_fmadd_pd(va, MLOAD(x + j, d - j),                  \
                                                         PARML_R256_MLOAD_D(g + j, d - j)), d - j);\
    }                                                                                              \
    PARML_ROW256 static void parml_axpby_256_##SFX(double a, const XT *x, double c, double *g,    \
                                                   ptrdiff_t d)                                    \
    {                                                                                              \
        const __m256d va = _mm256_set1_pd(a), vc = _mm256_set1_pd(c);                              \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 8 <= d; j += 8) {                                                               \
            const __m256d g0 = _mm256_mul_pd(vc, _mm256_loadu_pd(g + j));                          \
            const __m256d g1 = _mm256_mul_pd(vc, _mm256_loadu_pd(g + j + 4));                      \
            _mm256_storeu_pd(g + j, _mm256_fmadd_pd(va, LOAD(x + j), g0));                         \
            _mm256_storeu_pd(g + j + 4, _mm256_fmadd_pd(va, LOAD(x + j + 4), g1));                 \
        }                                                                                          \
        for (; j + 4 <= d; j += 4) {                                                               \
            const __m256d g0 = _mm256_mul_pd(vc, _mm256_loadu_pd(g + j));                          \
            _mm256_storeu_pd(g + j, _mm256_fmadd_pd(va, LOAD(x + j), g0));                         \
        }                                                                                          \
        if (j < d) {                                                                               \
            const __m256d g0 = _mm256_mul_pd(vc, PARML_R256_MLOAD_D(g + j, d - j));                \
            parml_avx2_store_d(g + j, _mm256_fmadd_pd(va, MLOAD(x + j, d - j), g0), d - j);     \
        }                                                                                          \
    }                                                                                              \
    PARML_ROW256 static void parml_dot4_256_##SFX(const void *const *x, const double *w,        \
                                                  ptrdiff_t d, double *out)                        \
    {                                                                                              \
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();                                \
        __m256d a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();                                \
        __m256d b0 = _mm256_setzero_pd(), b1 = _mm256_setzero_pd();                                \
        __m256d b2 = _mm256_setzero_pd(), b3 = _mm256_setzero_pd();                                \
        const XT *x0 = (const XT *)x[0], *x1 = (const XT *)x[1];                                   \
        const XT *x2 = (const XT *)x[2], *x3 = (const XT *)x[3];                                   \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 8 <= d; j += 8) {                                                               \
            const __m256d w0 = _mm256_loadu_pd(w + j), w1 = _mm256_loadu_pd(w + j + 4);           \
            a0 = _mm256_fmadd_pd(LOAD(x0 + j), w0, a0);                                           \
            a1 = _mm256_fmadd_pd(LOAD(x1 + j), w0, a1);                                           \
            a2 = _mm256_fmadd_pd(LOAD(x2 + j), w0, a2);                                           \
            a3 = _mm256_fmadd_pd(LOAD(x3 + j), w0, a3);                                           \
            b0 = _mm256_fmadd_pd(LOAD(x0 + j + 4), w1, b0);                                       \
            b1 = _mm256_fmadd_pd(LOAD(x1 + j + 4), w1, b1);                                       \
            b2 = _mm256_fmadd_pd(LOAD(x2 + j + 4), w1, b2);                                       \
            b3 = _mm256_fmadd_pd(LOAD(x3 + j + 4), w1, b3);                                       \
        }                                                                                          \
        if (j + 4 <= d) {                                                                          \
            const __m256d w0 = _mm256_loadu_pd(w + j);                                             \
            b0 = _mm256_fmadd_pd(LOAD(x0 + j), w0, b0);                                            \
            b1 = _mm256_fmadd_pd(LOAD(x1 + j), w0, b1);                                            \
            b2 = _mm256_fmadd_pd(LOAD(x2 + j), w0, b2);                                            \
            b3 = _mm256_fmadd_pd(LOAD(x3 + j), w0, b3);                                            \
            j += 4;                                                                                \
        }                                                                                          \
        if (j < d) {                                                                               \
            const ptrdiff_t r = d - j;                                                             \
            const __m256d w0 = PARML_R256_MLOAD_D(w + j, r);                                       \
            b0 = _mm256_fmadd_pd(MLOAD(x0 + j, r), w0, b0);                                        \
            b1 = _mm256_fmadd_pd(MLOAD(x1 + j, r), w0, b1);                                        \
            b2 = _mm256_fmadd_pd(MLOAD(x2 + j, r), w0, b2);                                        \
            b3 = _mm256_fmadd_pd(MLOAD(x3 + j, r), w0, b3);                                        \
        }                                                                                          \
        out[0] = parml_r256_hsum(_mm256_add_pd(a0, b0));                                           \
        out[1] = parml_r256_hsum(_mm256_add_pd(a1, b1));                                           \
        out[2] = parml_r256_hsum(_mm256_add_pd(a2, b2));                                           \
        out[3] = parml_r256_hsum(_mm256_add_pd(a3, b3));                                           \
    }                                                                                              \
    PARML_ROW256 static void parml_axpy4_256_##SFX(const double *a, const void *const *x,       \
                                                   double *g, ptrdiff_t d)                         \
    {                                                                                              \
        const __m256d v0 = _mm256_set1_pd(a[0]), v1 = _mm256_set1_pd(a[1]);                       \
        const __m256d v2 = _mm256_set1_pd(a[2]), v3 = _mm256_set1_pd(a[3]);                       \
        const XT *x0 = (const XT *)x[0], *x1 = (const XT *)x[1];                                   \
        const XT *x2 = (const XT *)x[2], *x3 = (const XT *)x[3];                                   \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 8 <= d; j += 8) {                                                               \
            __m256d t = _mm256_loadu_pd(g + j), u = _mm256_loadu_pd(g + j + 4);                   \
            t = _mm256_fmadd_pd(v0, LOAD(x0 + j), t);                                              \
            u = _mm256_fmadd_pd(v0, LOAD(x0 + j + 4), u);                                          \
            t = _mm256_fmadd_pd(v1, LOAD(x1 + j), t);                                              \
            u = _mm256_fmadd_pd(v1, LOAD(x1 + j + 4), u);                                          \
            t = _mm256_fmadd_pd(v2, LOAD(x2 + j), t);                                              \
            u = _mm256_fmadd_pd(v2, LOAD(x2 + j + 4), u);                                          \
            t = _mm256_fmadd_pd(v3, LOAD(x3 + j), t);                                              \
            u = _mm256_fmadd_pd(v3, LOAD(x3 + j + 4), u);                                          \
            _mm256_storeu_pd(g + j, t);                                                            \
            _mm256_storeu_pd(g + j + 4, u);                                                        \
        }                                                                                          \
        if (j + 4 <= d) {                                                                          \
            __m256d t = _mm256_loadu_pd(g + j);                                                    \
            t = _mm256_fmadd_pd(v0, LOAD(x0 + j), t);                                              \
            t = _mm256_fmadd_pd(v1, LOAD(x1 + j), t);                                              \
            t = _mm256_fmadd_pd(v2, LOAD(x2 + j), t);                                              \
            t = _mm256_fmadd_pd(v3, LOAD(x3 + j), t);                                              \
            _mm256_storeu_pd(g + j, t);                                                            \
            j += 4;                                                                                \
        }                                                                                          \
        if (j < d) {                                                                               \
            const ptrdiff_t r = d - j;                                                             \
            __m256d t = PARML_R256_MLOAD_D(g + j, r);                                              \
            t = _mm256_fmadd_pd(v0, MLOAD(x0 + j, r), t);                                          \
            t = _mm256_fmadd_pd(v1, MLOAD(x1 + j, r), t);                                          \
            t = _mm256_fmadd_pd(v2, MLOAD(x2 + j, r), t);                                          \
            t = _mm256_fmadd_pd(v3, MLOAD(x3 + j, r), t);                                          \
            parml_avx2_store_d(g + j, t, r);                                                    \
        }                                                                                          \
    }

PARML_DEFINE_AVX2_ROWOPS(double, d, PARML_R256_LOAD_D, PARML_R256_MLOAD_D)
PARML_DEFINE_AVX2_ROWOPS(float, s, PARML_R256_LOAD_S, PARML_R256_MLOAD_S)

static const parml_rowops parml_rowops_avx2 = {
    parml_dot_256_d, parml_dot_256_s, parml_axpy_256_d, parml_axpy_256_s,
    parml_dot4_256_d, parml_dot4_256_s, parml_axpy4_256_d, parml_axpy4_256_s,
    parml_axpby_256_d, parml_axpby_256_s, "avx2"};

#endif /* PARML_X86 */
#endif
