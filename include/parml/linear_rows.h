/* Row primitives of the linear-model kernels: a dot product and an axpy between one row of X
 * (float64 or float32, used as given) and float64 weights / gradients.
 *
 * Why here and not in Cython: without -ffast-math the compiler keeps a reduction's order, so a
 * plain loop is one scalar add chain (4 cycles per element). The generic versions break the chain
 * into 8 accumulators; the AVX-512 versions (per-function target attribute, chosen at run time)
 * use 4 zmm accumulators and masked tails; the AVX2 and NEON sets live in linear_rows_avx2.h and
 * linear_rows_neon.h. A float32 row is widened to float64 in registers, so
 * the gradient is always accumulated in double. Summation order is fixed per function, so results
 * depend on the CPU's kernel choice but never on the thread count. */
#ifndef PARML_LINEAR_ROWS_H
#define PARML_LINEAR_ROWS_H

#include <stddef.h>
#include "kernel_sets.h"
#include "prefetch.h"

#if PARML_X86
#include <immintrin.h>
#endif

typedef double (*parml_dot_d_fn)(const double *x, const double *w, ptrdiff_t d);
typedef double (*parml_dot_s_fn)(const float *x, const double *w, ptrdiff_t d);
typedef void (*parml_axpy_d_fn)(double a, const double *x, double *g, ptrdiff_t d);
typedef void (*parml_axpy_s_fn)(double a, const float *x, double *g, ptrdiff_t d);
/* g = c g + a x in one pass (Hogwild's decayed step: the weights' shared cache lines are
 * written once a step instead of twice) */
typedef void (*parml_axpby_d_fn)(double a, const double *x, double c, double *g, ptrdiff_t d);
typedef void (*parml_axpby_s_fn)(double a, const float *x, double c, double *g, ptrdiff_t d);

/* Four rows at once (x[0..3], any addresses, of the function's element type): out[r] = x[r] . w, and g += sum_r a[r] x[r] (rows
 * added in order 0..3). Sharing the loads of w, and of g, across 4 rows halves the per-row
 * instructions of the fused logistic gradient, whose per-row arithmetic, not its read of X,
 * limited it on 2 threads. */
typedef void (*parml_dot4_fn)(const void *const *x, const double *w, ptrdiff_t d, double *out);
typedef void (*parml_axpy4_fn)(const double *a, const void *const *x, double *g, ptrdiff_t d);

typedef struct {
    parml_dot_d_fn dot_d;
    parml_dot_s_fn dot_s;
    parml_axpy_d_fn axpy_d;   /* g += a * x */
    parml_axpy_s_fn axpy_s;
    parml_dot4_fn dot4_d;     /* rows of doubles */
    parml_dot4_fn dot4_s;     /* rows of floats */
    parml_axpy4_fn axpy4_d;
    parml_axpy4_fn axpy4_s;
    parml_axpby_d_fn axpby_d;
    parml_axpby_s_fn axpby_s;
    const char *name;
} parml_rowops;

#define PARML_DEFINE_GENERIC_ROWOPS(XT, SFX)                                                       \
    static double parml_dot_gen_##SFX(const XT *x, const double *w, ptrdiff_t d)                  \
    {                                                                                              \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;                     \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 8 <= d; j += 8) {                                                               \
            s0 += (double)x[j] * w[j];                                                             \
            s1 += (double)x[j + 1] * w[j + 1];                                                     \
            s2 += (double)x[j + 2] * w[j + 2];                                                     \
            s3 += (double)x[j + 3] * w[j + 3];                                                     \
            s4 += (double)x[j + 4] * w[j + 4];                                                     \
            s5 += (double)x[j + 5] * w[j + 5];                                                     \
            s6 += (double)x[j + 6] * w[j + 6];                                                     \
            s7 += (double)x[j + 7] * w[j + 7];                                                     \
        }                                                                                          \
        for (; j < d; ++j) s0 += (double)x[j] * w[j];                                              \
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));                                  \
    }                                                                                              \
    static void parml_axpy_gen_##SFX(double a, const XT *x, double *g, ptrdiff_t d)               \
    {                                                                                              \
        for (ptrdiff_t j = 0; j < d; ++j) g[j] += a * (double)x[j];                                \
    }                                                                                              \
    static void parml_axpby_gen_##SFX(double a, const XT *x, double c, double *g, ptrdiff_t d)   \
    {                                                                                              \
        for (ptrdiff_t j = 0; j < d; ++j) g[j] = c * g[j] + a * (double)x[j];                      \
    }                                                                                              \
    static void parml_dot4_gen_##SFX(const void *const *x, const double *w, ptrdiff_t d,         \
                                     double *out)                                                  \
    {                                                                                              \
        for (int r = 0; r < 4; ++r) out[r] = parml_dot_gen_##SFX((const XT *)x[r], w, d);          \
    }                                                                                              \
    static void parml_axpy4_gen_##SFX(const double *a, const void *const *x, double *g, ptrdiff_t d)\
    {                                                                                              \
        for (int r = 0; r < 4; ++r) parml_axpy_gen_##SFX(a[r], (const XT *)x[r], g, d);            \
    }

PARML_DEFINE_GENERIC_ROWOPS(double, d)
PARML_DEFINE_GENERIC_ROWOPS(float, s)

static const parml_rowops parml_rowops_generic = {
    parml_dot_gen_d, parml_dot_gen_s, parml_axpy_gen_d, parml_axpy_gen_s,
    parml_dot4_gen_d, parml_dot4_gen_s, parml_axpy4_gen_d, parml_axpy4_gen_s,
    parml_axpby_gen_d, parml_axpby_gen_s, "generic"};

#if PARML_X86
#define PARML_ROW512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))

/* LOAD(p) gives 8 doubles from p; MLOAD(m, p) the first lanes under mask m. */
#define PARML_LOAD_D(p) _mm512_loadu_pd(p)
#define PARML_MLOAD_D(m, p) _mm512_maskz_loadu_pd((m), (p))
#define PARML_LOAD_S(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define PARML_MLOAD_S(m, p) _mm512_cvtps_pd(_mm256_maskz_loadu_ps((m), (p)))

#define PARML_DEFINE_AVX512_ROWOPS(XT, SFX, LOAD, MLOAD)                                           \
    PARML_ROW512 static double parml_dot_512_##SFX(const XT *x, const double *w, ptrdiff_t d)     \
    {                                                                                              \
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();                                \
        __m512d s2 = _mm512_setzero_pd(), s3 = _mm512_setzero_pd();                                \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 32 <= d; j += 32) {                                                             \
            s0 = _mm512_fmadd_pd(LOAD(x + j), _mm512_loadu_pd(w + j), s0);                         \
            s1 = _mm512_fmadd_pd(LOAD(x + j + 8), _mm512_loadu_pd(w + j + 8), s1);                 \
            s2 = _mm512_fmadd_pd(LOAD(x + j + 16), _mm512_loadu_pd(w + j + 16), s2);               \
            s3 = _mm512_fmadd_pd(LOAD(x + j + 24), _mm512_loadu_pd(w + j + 24), s3);               \
        }                                                                                          \
        for (; j + 8 <= d; j += 8) s0 = _mm512_fmadd_pd(LOAD(x + j), _mm512_loadu_pd(w + j), s0); \
        if (j < d) {                                                                               \
            const __mmask8 m = (__mmask8)((1u << (d - j)) - 1u);                                   \
            s1 = _mm512_fmadd_pd(MLOAD(m, x + j), _mm512_maskz_loadu_pd(m, w + j), s1);            \
        }                                                                                          \
        return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3))); \
    }                                                                                              \
    PARML_ROW512 static void parml_axpy_512_##SFX(double a, const XT *x, double *g, ptrdiff_t d)  \
    {                                                                                              \
        const __m512d va = _mm512_set1_pd(a);                                                      \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 16 <= d; j += 16) {                                                             \
            _mm512_storeu_pd(g + j, _mm512_fmadd_pd(va, LOAD(x + j), _mm512_loadu_pd(g + j)));     \
            _mm512_storeu_pd(g + j + 8,                                                            \
                             _mm512_fmadd_pd(va, LOAD(x + j + 8), _mm512_loadu_pd(g + j + 8)));   \
        }                                                                                          \
        for (; j < d; j += 8) {                                                                    \
            const ptrdiff_t r = d - j;                                                             \
            const __mmask8 m = r >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << r) - 1u);               \
            _mm512_mask_storeu_pd(g + j, m,                                                        \
                                  _mm512_fmadd_pd(va, MLOAD(m, x + j), _mm512_maskz_loadu_pd(m, g + j))); \
        }                                                                                          \
    }

#define PARML_DEFINE_AVX512_AXPBY(XT, SFX, MLOAD)                                                  \
    PARML_ROW512 static void parml_axpby_512_##SFX(double a, const XT *x, double c, double *g,    \
                                                   ptrdiff_t d)                                    \
    {                                                                                              \
        const __m512d va = _mm512_set1_pd(a), vc = _mm512_set1_pd(c);                              \
        for (ptrdiff_t j = 0; j < d; j += 8) {                                                     \
            const ptrdiff_t r = d - j;                                                             \
            const __mmask8 m = r >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << r) - 1u);               \
            const __m512d gc = _mm512_mul_pd(vc, _mm512_maskz_loadu_pd(m, g + j));                 \
            _mm512_mask_storeu_pd(g + j, m, _mm512_fmadd_pd(va, MLOAD(m, x + j), gc));             \
        }                                                                                          \
    }

/* dot4: two accumulators per row (8 independent FMA chains); the masked tail goes into the
 * second. axpy4: each 8-lane group of g loaded once, the 4 rows' FMAs chained in row order. */
#define PARML_DEFINE_AVX512_ROWS4(XT, SFX, LOAD, MLOAD)                                            \
    PARML_ROW512 static void parml_dot4_512_##SFX(const void *const *x, const double *w,        \
                                                  ptrdiff_t d, double *out)                        \
    {                                                                                              \
        __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();                                \
        __m512d a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();                                \
        __m512d b0 = _mm512_setzero_pd(), b1 = _mm512_setzero_pd();                                \
        __m512d b2 = _mm512_setzero_pd(), b3 = _mm512_setzero_pd();                                \
        const XT *x0 = (const XT *)x[0], *x1 = (const XT *)x[1];                                   \
        const XT *x2 = (const XT *)x[2], *x3 = (const XT *)x[3];                                   \
        ptrdiff_t j = 0;                                                                           \
        for (; j + 16 <= d; j += 16) {                                                             \
            const __m512d w0 = _mm512_loadu_pd(w + j), w1 = _mm512_loadu_pd(w + j + 8);           \
            a0 = _mm512_fmadd_pd(LOAD(x0 + j), w0, a0);                                           \
            a1 = _mm512_fmadd_pd(LOAD(x1 + j), w0, a1);                                           \
            a2 = _mm512_fmadd_pd(LOAD(x2 + j), w0, a2);                                           \
            a3 = _mm512_fmadd_pd(LOAD(x3 + j), w0, a3);                                           \
            b0 = _mm512_fmadd_pd(LOAD(x0 + j + 8), w1, b0);                                       \
            b1 = _mm512_fmadd_pd(LOAD(x1 + j + 8), w1, b1);                                       \
            b2 = _mm512_fmadd_pd(LOAD(x2 + j + 8), w1, b2);                                       \
            b3 = _mm512_fmadd_pd(LOAD(x3 + j + 8), w1, b3);                                       \
        }                                                                                          \
        for (; j < d; j += 8) {                                                                    \
            const ptrdiff_t r = d - j;                                                             \
            const __mmask8 m = r >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << r) - 1u);               \
            const __m512d w0 = _mm512_maskz_loadu_pd(m, w + j);                                    \
            b0 = _mm512_fmadd_pd(MLOAD(m, x0 + j), w0, b0);                                        \
            b1 = _mm512_fmadd_pd(MLOAD(m, x1 + j), w0, b1);                                        \
            b2 = _mm512_fmadd_pd(MLOAD(m, x2 + j), w0, b2);                                        \
            b3 = _mm512_fmadd_pd(MLOAD(m, x3 + j), w0, b3);                                        \
        }                                                                                          \
        out[0] = _mm512_reduce_add_pd(_mm512_add_pd(a0, b0));                                      \
        out[1] = _mm512_reduce_add_pd(_mm512_add_pd(a1, b1));                                      \
        out[2] = _mm512_reduce_add_pd(_mm512_add_pd(a2, b2));                                      \
        out[3] = _mm512_reduce_add_pd(_mm512_add_pd(a3, b3));                                      \
    }                                                                                              \
    PARML_ROW512 static void parml_axpy4_512_##SFX(const double *a, const void *const *x,       \
                                                   double *g, ptrdiff_t d)                         \
    {                                                                                              \
        const __m512d v0 = _mm512_set1_pd(a[0]), v1 = _mm512_set1_pd(a[1]);                       \
        const __m512d v2 = _mm512_set1_pd(a[2]), v3 = _mm512_set1_pd(a[3]);                       \
        const XT *x0 = (const XT *)x[0], *x1 = (const XT *)x[1];                                   \
        const XT *x2 = (const XT *)x[2], *x3 = (const XT *)x[3];                                   \
        for (ptrdiff_t j = 0; j < d; j += 8) {                                                     \
            const ptrdiff_t r = d - j;                                                             \
            const __mmask8 m = r >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << r) - 1u);               \
            __m512d t = _mm512_maskz_loadu_pd(m, g + j);                                           \
            t = _mm512_fmadd_pd(v0, MLOAD(m, x0 + j), t);                                          \
            t = _mm512_fmadd_pd(v1, MLOAD(m, x1 + j), t);                                          \
            t = _mm512_fmadd_pd(v2, MLOAD(m, x2 + j), t);                                          \
            t = _mm512_fmadd_pd(v3, MLOAD(m, x3 + j), t);                                          \
            _mm512_mask_storeu_pd(g + j, m, t);                                                    \
        }                                                                                          \
    }

PARML_DEFINE_AVX512_ROWOPS(double, d, PARML_LOAD_D, PARML_MLOAD_D)
PARML_DEFINE_AVX512_ROWOPS(float, s, PARML_LOAD_S, PARML_MLOAD_S)
PARML_DEFINE_AVX512_ROWS4(double, d, PARML_LOAD_D, PARML_MLOAD_D)
PARML_DEFINE_AVX512_ROWS4(float, s, PARML_LOAD_S, PARML_MLOAD_S)
PARML_DEFINE_AVX512_AXPBY(double, d, PARML_MLOAD_D)
PARML_DEFINE_AVX512_AXPBY(float, s, PARML_MLOAD_S)

static const parml_rowops parml_rowops_avx512 = {
    parml_dot_512_d, parml_dot_512_s, parml_axpy_512_d, parml_axpy_512_s,
    parml_dot4_512_d, parml_dot4_512_s, parml_axpy4_512_d, parml_axpy4_512_s,
    parml_axpby_512_d, parml_axpby_512_s, "avx512"};
#endif

#include "linear_rows_avx2.h"
#include "linear_rows_neon.h"

/* The row kernels of kernel set `set` (kernel_sets.h); the caller checked it is supported. */
static inline const parml_rowops *parml_rowops_for(int set)
{
    switch (set) {
#if PARML_X86
    case PARML_SET_AVX2: return &parml_rowops_avx2;
    case PARML_SET_AVX512: return &parml_rowops_avx512;
#endif
#if PARML_ARM64
    case PARML_SET_NEON: return &parml_rowops_neon;
#endif
    default: return &parml_rowops_generic;
    }
}

#endif
