/* Transposing copies for the GEMM packers (gemm_impl.h): a block stored one way in the caller's
 * matrix, written the other way into a packed panel.
 *
 *   parml_tcopy_{s,d}(rows, cols, src, ld_src, dst, ld_dst)
 *       dst[i * ld_dst + j] = src[j * ld_src + i]   for 0 <= i < rows, 0 <= j < cols
 *
 * Packing a column-major B (a transposed view, as in the MLP's delta . W^T) or a row-major A
 * block is such a copy. Element by element it costs a load and a store per element, and at the
 * MLP's layer shapes that was 14% of a product's time (256x128 . 128x256 float, AVX2 kernels).
 * Here whole 4x4 (float) or 2x2 (double) blocks are read with vector loads, transposed in
 * registers and stored as vectors; the instructions are the architecture's baseline (SSE2 on
 * x86-64, Advanced SIMD on AArch64), so this code is shared by every kernel set. Other
 * architectures, and the ragged edges, copy element by element. A copy moves values only: the
 * packed panel is bit for bit the same whichever path wrote it. */
#ifndef PARML_GEMM_PACK_H
#define PARML_GEMM_PACK_H

#include <stddef.h>
#include "cpu_features.h"

#if PARML_X86
#include <emmintrin.h>
#elif PARML_ARM64
#include <arm_neon.h>
#endif

/* The elements no whole block covers: rows i0.. (every column), then columns j0.. of rows < i0. */
#define PARML_TCOPY_TAIL(i0, rows, j0, cols, src, ls, dst, ld)                                   \
    do {                                                                                           \
        for (ptrdiff_t i_ = (i0); i_ < (rows); ++i_)                                               \
            for (ptrdiff_t j_ = 0; j_ < (cols); ++j_) (dst)[i_ * (ld) + j_] = (src)[j_ * (ls) + i_]; \
        for (ptrdiff_t i_ = 0; i_ < (i0); ++i_)                                                    \
            for (ptrdiff_t j_ = (j0); j_ < (cols); ++j_) (dst)[i_ * (ld) + j_] = (src)[j_ * (ls) + i_]; \
    } while (0)

#if PARML_X86
/* parml_tcopy_s for the 6-row A panels of the AVX2 set (cols = ld = 6): per 4 k steps, the six
 * rows' 4 elements are loaded, rows 0-3 transposed and rows 4-5 interleaved in registers, and the
 * 24 packed elements written with six 16-byte stores. */
static void parml_tcopy6_s(ptrdiff_t rows, const float *src, ptrdiff_t ls, float *dst)
{
    const ptrdiff_t rb = rows & ~(ptrdiff_t)3;
    for (ptrdiff_t i = 0; i < rb; i += 4) {
        const float *s = src + i;
        float *d = dst + i * 6;
        __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ls);
        __m128 r2 = _mm_loadu_ps(s + 2 * ls), r3 = _mm_loadu_ps(s + 3 * ls);
        const __m128 r4 = _mm_loadu_ps(s + 4 * ls), r5 = _mm_loadu_ps(s + 5 * ls);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        const __m128 lo = _mm_unpacklo_ps(r4, r5), hi = _mm_unpackhi_ps(r4, r5);
        _mm_storeu_ps(d, r0);
        _mm_storeu_ps(d + 4, _mm_movelh_ps(lo, r1));
        _mm_storeu_ps(d + 8, _mm_movehl_ps(lo, r1));
        _mm_storeu_ps(d + 12, r2);
        _mm_storeu_ps(d + 16, _mm_movelh_ps(hi, r3));
        _mm_storeu_ps(d + 20, _mm_movehl_ps(hi, r3));
    }
    PARML_TCOPY_TAIL(rb, rows, 6, 6, src, ls, dst, 6);
}
#endif

static inline __attribute__((always_inline)) void parml_tcopy_s_body(
    ptrdiff_t rows, const ptrdiff_t cols, const float *src, ptrdiff_t ls, float *dst, ptrdiff_t ld)
{
    ptrdiff_t i0 = 0, j0 = 0;
#if PARML_X86 || PARML_ARM64
    const ptrdiff_t rb = rows & ~(ptrdiff_t)3, cb = cols & ~(ptrdiff_t)3;
    for (ptrdiff_t i = 0; i < rb; i += 4)
        for (ptrdiff_t j = 0; j < cb; j += 4) {
            const float *s = src + j * ls + i;
            float *d = dst + i * ld + j;
#if PARML_X86
            __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ls);
            __m128 r2 = _mm_loadu_ps(s + 2 * ls), r3 = _mm_loadu_ps(s + 3 * ls);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d, r0);
            _mm_storeu_ps(d + ld, r1);
            _mm_storeu_ps(d + 2 * ld, r2);
            _mm_storeu_ps(d + 3 * ld, r3);
#else
            const float32x4_t r0 = vld1q_f32(s), r1 = vld1q_f32(s + ls);
            const float32x4_t r2 = vld1q_f32(s + 2 * ls), r3 = vld1q_f32(s + 3 * ls);
            const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1));
            const float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1));
            const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3));
            const float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
            vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
            vst1q_f32(d + ld, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
            vst1q_f32(d + 2 * ld, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
            vst1q_f32(d + 3 * ld, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
#endif
        }
    if (cols - cb >= 2) /* two more columns (a 6-row A panel): 4x2 blocks, 64-bit stores */
        for (ptrdiff_t i = 0; i < rb; i += 4) {
            const float *s = src + cb * ls + i;
            float *d = dst + i * ld + cb;
#if PARML_X86
            const __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ls);
            const __m128 lo = _mm_unpacklo_ps(r0, r1), hi = _mm_unpackhi_ps(r0, r1);
            _mm_storel_pi((__m64 *)d, lo);
            _mm_storeh_pi((__m64 *)(d + ld), lo);
            _mm_storel_pi((__m64 *)(d + 2 * ld), hi);
            _mm_storeh_pi((__m64 *)(d + 3 * ld), hi);
#else
            const float32x4_t r0 = vld1q_f32(s), r1 = vld1q_f32(s + ls);
            const float32x4_t lo = vzip1q_f32(r0, r1), hi = vzip2q_f32(r0, r1);
            vst1_f32(d, vget_low_f32(lo));
            vst1_f32(d + ld, vget_high_f32(lo));
            vst1_f32(d + 2 * ld, vget_low_f32(hi));
            vst1_f32(d + 3 * ld, vget_high_f32(hi));
#endif
        }
    i0 = rb;
    j0 = cols - cb >= 2 ? cb + 2 : cb;
#endif
    PARML_TCOPY_TAIL(i0, rows, j0, cols, src, ls, dst, ld);
}

static inline __attribute__((always_inline)) void parml_tcopy_d_body(
    ptrdiff_t rows, const ptrdiff_t cols, const double *src, ptrdiff_t ls, double *dst, ptrdiff_t ld)
{
    ptrdiff_t i0 = 0, j0 = 0;
#if PARML_X86 || PARML_ARM64
    const ptrdiff_t rb = rows & ~(ptrdiff_t)1, cb = cols & ~(ptrdiff_t)1;
    for (ptrdiff_t i = 0; i < rb; i += 2)
        for (ptrdiff_t j = 0; j < cb; j += 2) {
            const double *s = src + j * ls + i;
            double *d = dst + i * ld + j;
#if PARML_X86
            const __m128d r0 = _mm_loadu_pd(s), r1 = _mm_loadu_pd(s + ls);
            _mm_storeu_pd(d, _mm_unpacklo_pd(r0, r1));
            _mm_storeu_pd(d + ld, _mm_unpackhi_pd(r0, r1));
#else
            const float64x2_t r0 = vld1q_f64(s), r1 = vld1q_f64(s + ls);
            vst1q_f64(d, vzip1q_f64(r0, r1));
            vst1q_f64(d + ld, vzip2q_f64(r0, r1));
#endif
        }
    i0 = rb;
    j0 = cb;
#endif
    PARML_TCOPY_TAIL(i0, rows, j0, cols, src, ls, dst, ld);
}

/* The copies themselves. The panel widths of the AVX2 and NEON sets, and the AVX-512 set's
 * 12-row A panels (MR, NR: 6, 8, 12, 16), get bodies compiled for their constant width, so the
 * loop over column blocks unrolls and the pointers stay in registers. Inlined into the GEMM task
 * with a variable width, the copy spilled them to the stack: 4.9% of a 256^3 product with the
 * AVX2 set, against 2.7% (float, parml_tcopy6_s) and 3.2% (double) now. Other widths take the
 * general body, compiled once. */
static void parml_tcopy_s(ptrdiff_t rows, ptrdiff_t cols, const float *src, ptrdiff_t ls,
                          float *dst, ptrdiff_t ld)
{
#if PARML_X86
    if (cols == 6 && ld == 6) {
        parml_tcopy6_s(rows, src, ls, dst);
        return;
    }
#endif
    switch (cols) {
    case 8: parml_tcopy_s_body(rows, 8, src, ls, dst, ld); return;
    case 12: parml_tcopy_s_body(rows, 12, src, ls, dst, ld); return;
    case 16: parml_tcopy_s_body(rows, 16, src, ls, dst, ld); return;
    default: parml_tcopy_s_body(rows, cols, src, ls, dst, ld);
    }
}

static void parml_tcopy_d(ptrdiff_t rows, ptrdiff_t cols, const double *src, ptrdiff_t ls,
                          double *dst, ptrdiff_t ld)
{
    switch (cols) {
    case 6: parml_tcopy_d_body(rows, 6, src, ls, dst, ld); return;
    case 8: parml_tcopy_d_body(rows, 8, src, ls, dst, ld); return;
    case 12: parml_tcopy_d_body(rows, 12, src, ls, dst, ld); return;
    default: parml_tcopy_d_body(rows, cols, src, ls, dst, ld);
    }
}

#endif
