/* The generic set's micro-kernels on x86-64: SSE2, the baseline every x86-64 CPU has.
 *
 * Why not the portable kernel (gemm_ukr_ref.h) the compiler vectorises: SSE2 has no FMA and only
 * two-operand instructions, so a multiply-add of two vectors is a copy (or load), a multiply and
 * an add, three macro-ops, and a core that dispatches 6 per cycle reaches its mul + add peak only
 * if the k loop has almost nothing else in it. A broadcast of an A element would cost two more
 * (load and unpack: there is no broadcast load before SSE3), so the packer writes every A element
 * as a whole vector (`a_lanes` copies, gemm_ukr.h) and a broadcast is one load. Per k step, for
 * MR = 6 rows and 2 vectors of B: 2 B loads, then per row one A load, a copy, 2 multiplies and 2
 * adds; the last row instead multiplies the B registers in place by A from memory (their last
 * use), 2 fused load-multiplies and 2 adds. That is 36 macro-ops for 12 multiply-add pairs, the
 * least SSE2 allows (3 per pair), and ~2 of loop. Registers: 12 accumulators + 2 B vectors + 2
 * temporaries = all 16.
 * On a Zen 3 core a k = 192 call runs at 6.2-6.4 cycles per k step against the 6 of the
 * mul + add peak; where the compiler places the loop within 64-byte fetch windows moves that by
 * ~2.5% (GCC aligns the start of a loop it unrolled itself only by chance). The last row's two
 * fused multiplies gained 2-2.4% over letting GCC load A into a register (both loops aligned the
 * same; GCC never folds a load used twice), so they are written in assembly; a build with AVX at
 * the baseline has three-operand instructions, needs no copies, and keeps intrinsics (legacy SSE
 * assembly among VEX code would also pay transition costs). An assembly k loop with 0.75 of loop
 * per step ran no faster, and hand-unrolled C made the compiler spill, so the loop stays C.
 * The portable kernel ran at 56-58% of that peak here.
 *
 * Sums run over p in increasing order from zero and are added to C once, as in the portable
 * kernel, and a multiply and an add round separately, as the portable kernel's do when compiled
 * for x86-64 (no FMA there): on x86-64 the generic set gives the same bits as it did with the
 * portable kernel. (A build with FMA at the baseline, CFLAGS=-march=native say, lets the
 * compiler contract the multiply and add, and the bits change.) */
#ifndef PARML_GEMM_UKR_SSE2_H
#define PARML_GEMM_UKR_SSE2_H

#include "gemm_ukr.h"
#include "cpu_features.h"

/* SSE2 is the x86-64 baseline; a 32-bit x86 build without it keeps the portable kernel */
#if PARML_X86 && defined(__SSE2__)
#define PARML_HAVE_SSE2_UKR 1
#include <emmintrin.h>

#define PARML_SSE2_MR 6
#define PARML_SSE2_NR_D 4 /* 2 vectors of 2 doubles */
#define PARML_SSE2_NR_S 8 /* 2 vectors of 4 floats */

/* x *= *(16-byte aligned) p, as one fused load-multiply (mulpd/mulps with a memory operand) */
#if defined(__AVX__)
#define PARML_SSE2_MUL_MEM(SUF, x, p) ((x) = _mm_mul_##SUF((x), _mm_load_##SUF(p)))
#else
#define PARML_SSE2_MUL_MEM(SUF, x, p)                                                              \
    __asm__("mul" #SUF " %1, %0" : "+x"(x) : "m"(*(const __typeof__(x) *)(p)))
#endif

/* a: packed A panel, element (i, p) as W copies at a[(p*MR + i)*W]; b: rows of 2*W elements */
#define PARML_DEFINE_SSE2_UKR(T, VEC, W, SUF, NAME)                                                \
    static void NAME(ptrdiff_t k, const T *PARML_RESTRICT a, const T *PARML_RESTRICT b,          \
                     ptrdiff_t rs_b, T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr, int nr,          \
                     int accumulate)                                                               \
    {                                                                                              \
        enum { MR = PARML_SSE2_MR };                                                               \
        VEC acc0[MR], acc1[MR];                                                                    \
        /* no C-tile hints (gemm_ukr.h): at 6.2 cycles a k step a call outlasts a C miss; 1024^3   \
         * and 2048^3 ran as fast without them, and in L1 they cost 1-2% of a k = 192 call */      \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                       \
        {                                                                                          \
            acc0[i] = _mm_setzero_##SUF();                                                         \
            acc1[i] = _mm_setzero_##SUF();                                                         \
        }                                                                                          \
        /* unrolled by 4: GCC then folds the pointer bumps of 4 k steps into the loads' offsets \
         * (unrolled by 2, the loop ran 2% slower) */                                              \
        _Pragma("GCC unroll 4") for (ptrdiff_t p = 0; p < k; ++p)                                  \
        {                                                                                          \
            VEC b0 = _mm_loadu_##SUF(b), b1 = _mm_loadu_##SUF(b + W);                              \
            _Pragma("GCC unroll 8") for (int i = 0; i < MR - 1; ++i)                               \
            {                                                                                      \
                const VEC ai = _mm_load_##SUF(a + i * W);                                          \
                acc0[i] = _mm_add_##SUF(acc0[i], _mm_mul_##SUF(ai, b0));                           \
                acc1[i] = _mm_add_##SUF(acc1[i], _mm_mul_##SUF(ai, b1));                           \
            }                                                                                      \
            PARML_SSE2_MUL_MEM(SUF, b0, a + (MR - 1) * W);                                         \
            PARML_SSE2_MUL_MEM(SUF, b1, a + (MR - 1) * W);                                         \
            acc0[MR - 1] = _mm_add_##SUF(acc0[MR - 1], b0);                                        \
            acc1[MR - 1] = _mm_add_##SUF(acc1[MR - 1], b1);                                        \
            a += MR * W;                                                                           \
            b += rs_b;                                                                             \
        }                                                                                          \
        PARML_TILE_OUT_2VEC(T, MR, W, _mm_add_##SUF, _mm_loadu_##SUF, _mm_storeu_##SUF,            \
                            acc0, acc1, c, rs_c, mr, nr, accumulate)                               \
    }

PARML_DEFINE_SSE2_UKR(double, __m128d, 2, pd, parml_ukr_d_sse2)
PARML_DEFINE_SSE2_UKR(float, __m128, 4, ps, parml_ukr_s_sse2)
#undef PARML_DEFINE_SSE2_UKR

#else
#define PARML_HAVE_SSE2_UKR 0
#endif /* PARML_X86 && __SSE2__ */
#endif
