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
 * least SSE2 allows (3 per pair), and 1 of loop. Registers: 12 accumulators + 2 B vectors + 2
 * temporaries = all 16.
 * The k loop (4 steps a trip) is inline assembly, for two reasons. GCC never folds a load that is
 * used twice, so it spent a fourth macro-op on the last row; and it aligns the start of a loop it
 * unrolled itself only by chance, so where the loop sat in its 64-byte fetch windows changed with
 * the code around it, and a k = 192 call with it by 2.5-3% (a loop starting at byte 63 of a window
 * ran slower). The assembly loop starts on a 64-byte boundary. On a Zen 3 core a k = 192 call took
 * 393 ns with the compiled loop aligned, 384 with the in-place last row, and 374-378 ns (~6.1
 * cycles per k step against the 6 of the mul + add peak) with the assembly loop, wherever the
 * kernel lands. The remaining k % 4 steps, and builds with AVX at the baseline (three-operand
 * instructions, no copies to save, and legacy SSE among VEX code would pay transition costs),
 * take the C loop.
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

/* Assembly is written in both of GCC's dialects, {AT&T|Intel}, so builds with -masm=intel work;
 * labels are named (%= makes them unique), as Intel syntax reads `1b` as a binary number. */
#define PARML_ASM2(att, intel) "{" att "|" intel "}\n\t"

/* x *= *(16-byte aligned) p, as one fused load-multiply (mulpd/mulps with a memory operand) */
#if defined(__AVX__)
#define PARML_SSE2_MUL_MEM(SUF, x, p) ((x) = _mm_mul_##SUF((x), _mm_load_##SUF(p)))
#else
#define PARML_SSE2_MUL_MEM(SUF, x, p)                                                              \
    __asm__(PARML_ASM2("mul" #SUF " %1, %0", "mul" #SUF " %0, %1")                                 \
            : "+x"(x) : "m"(*(const __typeof__(x) *)(p)))
#endif

/* x86-64 only: 32-bit x86 has 8 vector registers */
#if defined(__x86_64__) && !defined(__AVX__)
/* The k loop in assembly (see the top of this file). Accumulators stay in the 12 registers GCC
 * gives them (operands c0x, c1x); xmm12-15 hold B's two vectors and the products. S: "d" or "s"
 * (double or single precision). One row: acc0 += A(i) * b0, acc1 += A(i) * b1. */
#define PARML_SSE2_ROW_ASM(S, AOFF, I)                                                             \
    PARML_ASM2("movap" S " " AOFF "+16*" #I "(%[a]), %%xmm14",                                     \
               "movap" S " xmm14, [%[a]+" AOFF "+16*" #I "]")                                      \
    PARML_ASM2("movap" S " %%xmm12, %%xmm15", "movap" S " xmm15, xmm12")                           \
    PARML_ASM2("mulp" S " %%xmm14, %%xmm15", "mulp" S " xmm15, xmm14")                             \
    PARML_ASM2("mulp" S " %%xmm13, %%xmm14", "mulp" S " xmm14, xmm13")                             \
    PARML_ASM2("addp" S " %%xmm15, %[c0" #I "]", "addp" S " %[c0" #I "], xmm15")                   \
    PARML_ASM2("addp" S " %%xmm14, %[c1" #I "]", "addp" S " %[c1" #I "], xmm14")
/* one k step: B's row at BATT / [BINTEL] (the two dialects' address), A's 6 broadcast vectors at
 * AOFF(a); the last row multiplies the B registers in place by A from memory (their last use) */
#define PARML_SSE2_STEP_ASM(S, AOFF, BATT, BINTEL)                                                 \
    PARML_ASM2("movup" S " " BATT ", %%xmm12", "movup" S " xmm12, [" BINTEL "]")                   \
    PARML_ASM2("movup" S " 16" BATT ", %%xmm13", "movup" S " xmm13, [" BINTEL "+16]")              \
    PARML_SSE2_ROW_ASM(S, AOFF, 0) PARML_SSE2_ROW_ASM(S, AOFF, 1)                                  \
    PARML_SSE2_ROW_ASM(S, AOFF, 2) PARML_SSE2_ROW_ASM(S, AOFF, 3)                                  \
    PARML_SSE2_ROW_ASM(S, AOFF, 4)                                                                 \
    PARML_ASM2("mulp" S " " AOFF "+80(%[a]), %%xmm12", "mulp" S " xmm12, [%[a]+" AOFF "+80]")      \
    PARML_ASM2("mulp" S " " AOFF "+80(%[a]), %%xmm13", "mulp" S " xmm13, [%[a]+" AOFF "+80]")      \
    PARML_ASM2("addp" S " %%xmm12, %[c05]", "addp" S " %[c05], xmm12")                             \
    PARML_ASM2("addp" S " %%xmm13, %[c15]", "addp" S " %[c15], xmm13")
/* Trips of 4 k steps until a reaches a_end; a and b move on by 4 steps. A step of A is MR = 6
 * vectors (96 bytes, written into the offsets) for both types; B's rows are rs bytes apart and may
 * be unaligned (B read in place), A's are 16-byte aligned (gemm_ukr.h). GCC allows 30 operands (it
 * counts these 14 read-write ones twice), so b moves twice a trip rather than taking a 3 rs
 * operand. */
#define PARML_SSE2_LOOP_ASM(S, acc0_, acc1_, a_, b_, a_end_, rs_)                                  \
    __asm__(".p2align 6\n"                                                                         \
            ".Lparml_sse2_k%=:\n\t"                                                                \
            PARML_SSE2_STEP_ASM(S, "0", "(%[b])", "%[b]")                                          \
            PARML_SSE2_STEP_ASM(S, "96", "(%[b],%[rs])", "%[b]+%[rs]")                             \
            PARML_ASM2("lea (%[b],%[rs],2), %[b]", "lea %[b], [%[b]+%[rs]*2]")                     \
            PARML_SSE2_STEP_ASM(S, "192", "(%[b])", "%[b]")                                        \
            PARML_SSE2_STEP_ASM(S, "288", "(%[b],%[rs])", "%[b]+%[rs]")                            \
            PARML_ASM2("lea (%[b],%[rs],2), %[b]", "lea %[b], [%[b]+%[rs]*2]")                     \
            PARML_ASM2("add $384, %[a]", "add %[a], 384")                                          \
            PARML_ASM2("cmp %[a_end], %[a]", "cmp %[a], %[a_end]")                                 \
            "jne .Lparml_sse2_k%=\n\t"                                                             \
            : [c00] "+x"(acc0_[0]), [c01] "+x"(acc0_[1]), [c02] "+x"(acc0_[2]),                    \
              [c03] "+x"(acc0_[3]), [c04] "+x"(acc0_[4]), [c05] "+x"(acc0_[5]),                    \
              [c10] "+x"(acc1_[0]), [c11] "+x"(acc1_[1]), [c12] "+x"(acc1_[2]),                    \
              [c13] "+x"(acc1_[3]), [c14] "+x"(acc1_[4]), [c15] "+x"(acc1_[5]),                    \
              [a] "+r"(a_), [b] "+r"(b_)                                                           \
            : [a_end] "r"(a_end_), [rs] "r"(rs_)                                                   \
            : "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory")

/* k & ~3 steps in the assembly loop; p = the steps done */
#define PARML_SSE2_MAIN_LOOP(SUF, acc0, acc1, a, b, k, rs_b, p)                                    \
    do {                                                                                           \
        if ((k) >= 4) {                                                                            \
            (p) = (k) & ~(ptrdiff_t)3;                                                             \
            const void *a_end = (const char *)(a) + (p) * (PARML_SSE2_MR * 16);                    \
            const ptrdiff_t rs = (rs_b) * (ptrdiff_t)sizeof(*(b));                                 \
            PARML_SSE2_LOOP_ASM(PARML_SSE2_S_##SUF, acc0, acc1, a, b, a_end, rs);                  \
        }                                                                                          \
    } while (0)
#define PARML_SSE2_S_pd "d"
#define PARML_SSE2_S_ps "s"
#else
#define PARML_SSE2_MAIN_LOOP(SUF, acc0, acc1, a, b, k, rs_b, p) ((void)0)
#endif

/* a: packed A panel, element (i, p) as W copies at a[(p*MR + i)*W]; b: rows of 2*W elements */
#define PARML_DEFINE_SSE2_UKR(T, VEC, W, SUF, NAME)                                                \
    static void NAME(ptrdiff_t k, const T *PARML_RESTRICT a, const T *PARML_RESTRICT b,            \
                     ptrdiff_t rs_b, T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr, int nr,          \
                     int accumulate)                                                               \
    {                                                                                              \
        enum { MR = PARML_SSE2_MR };                                                               \
        VEC acc0[MR], acc1[MR];                                                                    \
        /* no C-tile hints (gemm_ukr.h): at 6.1 cycles a k step a call outlasts a C miss; 1024^3   \
         * and 2048^3 ran as fast without them, and in L1 they cost 1-2% of a k = 192 call */      \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                       \
        {                                                                                          \
            acc0[i] = _mm_setzero_##SUF();                                                         \
            acc1[i] = _mm_setzero_##SUF();                                                         \
        }                                                                                          \
        ptrdiff_t p = 0;                                                                           \
        PARML_SSE2_MAIN_LOOP(SUF, acc0, acc1, a, b, k, rs_b, p);                                   \
        /* the rest: k % 4 steps, or all of them in AVX builds (unrolled by 4: GCC then folds the  \
         * pointer bumps of 4 k steps into the loads' offsets; by 2 it ran 2% slower) */           \
        _Pragma("GCC unroll 4") for (; p < k; ++p)                                                 \
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
