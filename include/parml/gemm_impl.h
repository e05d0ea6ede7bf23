/* GEMM driver, written once and instantiated per element type: gemm.h includes this file with
 *   PT      the element type (double, float)
 *   PSFX(x) the name suffixer (x##_d, x##_s)
 *   PKERNEL the kernel-table type (parml_kernel_d, parml_kernel_s)
 *
 * C[m, n] = A[m, k] . B[k, n], C row-major (rs_c, unit column stride), A and B with any strides.
 *
 *   for jc in [j0, j1) step NC          B block  KC x NC  packed -> L3
 *     for pc in [0, k) step kc           (kc fixed by k alone: the order of the sum never changes)
 *       pack B[pc:pc+kc, jc:jc+nc]
 *       for ic in [i0, i1) step MC        A block  MC x KC  packed -> L2
 *         pack A[ic:ic+mc, pc:pc+kc]
 *         for jr in [0, nc) step NR        B micro-panel KC x NR stays in L1
 *           for ir in [0, mc) step MR       micro-kernel: MR x NR tile of C in registers
 *
 * Threads: the output is cut into a grid of rectangular tasks (rows in MR panels, columns in NR
 * panels) run by parml's pool (pool.h). Each task runs the five loops above on its own rectangle
 * with its own packing buffers, so there is no barrier per block for a thread to wait at, and a
 * thread slowed by another process simply claims fewer tasks. The price is that A is packed once per column chunk and B once per row chunk; the grid
 * is chosen to keep that extra packing small. The k loop is never split, so every element of C is
 * the same sum in the same order for any thread count. */

#include <stdlib.h>
#include <string.h>

#include "pool_api.h"
#include "gemm_pack.h"

#ifndef PARML_INPLACE_A_MAX_PANELS
#define PARML_INPLACE_A_MAX_PANELS 8
#endif

#ifndef PARML_INPLACE_AT_MAX_BYTES
/* half of a 32 KiB L1 data cache, the smallest of the cores parml targets */
#define PARML_INPLACE_AT_MAX_BYTES (16 * 1024)
#endif

#ifndef PARML_UNPACKED_B_MAX_BYTES
/* B at most this big, with unit column stride, is used in place instead of packed */
#define PARML_UNPACKED_B_MAX_BYTES (64 * 1024)
#endif

static inline ptrdiff_t PSFX(parml_min)(ptrdiff_t x, ptrdiff_t y) { return x < y ? x : y; }

#ifndef PARML_COPY_STEPS_BLOCK
#define PARML_COPY_STEPS_BLOCK 16
#endif

/* For each of `panels` panels q: dst[q*ps + p*N + j] = src[p*ls + q*N + j], p < steps,
 * j < N: N consecutive elements per k step and panel (row-major B panels, column-major A panels).
 * The copy goes in blocks of PARML_COPY_STEPS_BLOCK k steps, panel by panel within a block:
 * - panel by panel over all k steps, each step of a narrow panel (6 floats of a 6-row A panel)
 *   read part of a new cache line, the rest of which the next panel read again much later (the
 *   rows of a 256 x 256 float B are 1 KiB apart), and packing took 6% of an MLP epoch;
 * - step by step over all panels, every step stored into every panel: at 256 float steps the
 *   panels are 16 KiB apart, so each step's stores landed in one L1 set and evicted each other
 *   (a 256 x 256 float B: 10.4 us against 7.0 in blocks; a 6-row A panel block of 100 x 256:
 *   4.8 against 2.8; Zen 3).
 * In a block the source rows stay in L1 while every panel is written as one contiguous run.
 * With N a constant (the cases below: every kernel's MR and NR) each copy is a few vector moves;
 * a memcpy call per step cost 17% of a 100x256 . 256x256 float product. */
static void PSFX(parml_copy_steps_ps)(int N, ptrdiff_t steps, ptrdiff_t panels, const PT *src,
                                      ptrdiff_t ls, PT *PARML_RESTRICT dst, ptrdiff_t ps)
{
    for (ptrdiff_t p0 = 0; p0 < steps; p0 += PARML_COPY_STEPS_BLOCK) {
        const ptrdiff_t p1 = PSFX(parml_min)(p0 + PARML_COPY_STEPS_BLOCK, steps);
        switch (N) {
#define PARML_COPY_STEPS(W)                                                                     \
    case W:                                                                                     \
        for (ptrdiff_t q = 0; q < panels; ++q)                                                  \
            for (ptrdiff_t p = p0; p < p1; ++p)                                                 \
                memcpy(dst + q * ps + p * W, src + p * ls + q * W, W * sizeof(PT));             \
        break;
        PARML_COPY_STEPS(4)
        PARML_COPY_STEPS(6)
        PARML_COPY_STEPS(8)
        PARML_COPY_STEPS(12)
        PARML_COPY_STEPS(16)
        PARML_COPY_STEPS(32)
#undef PARML_COPY_STEPS
        default:
            for (ptrdiff_t q = 0; q < panels; ++q)
                for (ptrdiff_t p = p0; p < p1; ++p)
                    memcpy(dst + q * ps + p * N, src + p * ls + q * N, (size_t)N * sizeof(PT));
        }
    }
}

/* The same into panels of exactly `steps` steps (ps = N * steps): a whole packed block. */
static void PSFX(parml_copy_steps)(int N, ptrdiff_t steps, ptrdiff_t panels, const PT *src,
                                   ptrdiff_t ls, PT *PARML_RESTRICT dst)
{
    PSFX(parml_copy_steps_ps)(N, steps, panels, src, ls, dst, (ptrdiff_t)N * steps);
}

/* Pack an mc x kc block of A into MR-row micro-panels: panel q, element (i, p) at
 * dst[q*MR*kc + p*MR + i]; rows past mc are zero. */
static void PSFX(parml_pack_a)(int MR, ptrdiff_t mc, ptrdiff_t kc, const PT *a, ptrdiff_t rs,
                               ptrdiff_t cs, PT *PARML_RESTRICT dst)
{
    ptrdiff_t i0 = 0;
    if (rs == 1 && cs != 1 && mc >= MR) {
        /* column-major A (a transposed view): MR consecutive elements per k step */
        const ptrdiff_t full = mc / MR;
        PSFX(parml_copy_steps)(MR, kc, full, a, cs, dst);
        i0 = full * MR;
        dst += full * MR * kc;
    }
    for (; i0 < mc; i0 += MR, dst += (ptrdiff_t)MR * kc) {
        const int mr = (int)PSFX(parml_min)(MR, mc - i0);
        const PT *ap = a + i0 * rs;
        if (cs == 1) {
            /* row-major A: a transposing copy of mr rows */
            PSFX(parml_tcopy)(kc, mr, ap, rs, dst, MR);
        } else {
            for (ptrdiff_t p = 0; p < kc; ++p)
                for (int i = 0; i < mr; ++i) dst[p * MR + i] = ap[i * rs + p * cs];
        }
        if (mr < MR)
            for (ptrdiff_t p = 0; p < kc; ++p)
                for (int i = mr; i < MR; ++i) dst[p * MR + i] = 0;
    }
}

/* parml_pack_a for a kernel that takes each A element as L copies (a_lanes, gemm_ukr.h): panel
 * q, element (i, p) at dst[(q*MR*kc + p*MR + i)*L + l] for l < L; rows past mc are zero. Inlined
 * with L a constant, the L copies are one broadcast and one vector store: with a loop of L
 * scalar stores, packing took twice the kernel's time in a 256x128 . 128x10 product. */
static inline __attribute__((always_inline)) void PSFX(parml_pack_a_copies)(
    int MR, const int L, ptrdiff_t mc, ptrdiff_t kc, const PT *a, ptrdiff_t rs, ptrdiff_t cs,
    PT *PARML_RESTRICT dst)
{
    for (ptrdiff_t i0 = 0; i0 < mc; i0 += MR, dst += (ptrdiff_t)MR * kc * L) {
        const int mr = (int)PSFX(parml_min)(MR, mc - i0);
        const PT *ap = a + i0 * rs;
        for (ptrdiff_t p = 0; p < kc; ++p) {
            const PT *col = ap + p * cs;
            PT *d = dst + p * MR * L;
            for (int i = 0; i < mr; ++i) {
                const PT v = col[i * rs];
                for (int l = 0; l < L; ++l) d[i * L + l] = v;
            }
            for (int i = mr * L; i < MR * L; ++i) d[i] = 0;
        }
    }
}

static void PSFX(parml_pack_a_lanes)(int MR, int L, ptrdiff_t mc, ptrdiff_t kc, const PT *a,
                                     ptrdiff_t rs, ptrdiff_t cs, PT *PARML_RESTRICT dst)
{
    switch (L) {
    case 2: PSFX(parml_pack_a_copies)(MR, 2, mc, kc, a, rs, cs, dst); return;
    case 4: PSFX(parml_pack_a_copies)(MR, 4, mc, kc, a, rs, cs, dst); return;
    default: PSFX(parml_pack_a_copies)(MR, L, mc, kc, a, rs, cs, dst);
    }
}

/* Pack a kc x nc block of B into NR-column micro-panels: panel q, element (p, j) at
 * dst[q*NR*kc + p*NR + j]; columns past nc are zero. */
static void PSFX(parml_pack_b)(int NR, ptrdiff_t kc, ptrdiff_t nc, const PT *b, ptrdiff_t rs,
                               ptrdiff_t cs, PT *PARML_RESTRICT dst)
{
    ptrdiff_t j0 = 0;
    if (cs == 1 && nc >= NR) {
        /* row-major B: NR consecutive elements per k step */
        const ptrdiff_t full = nc / NR;
        PSFX(parml_copy_steps)(NR, kc, full, b, rs, dst);
        j0 = full * NR;
        dst += full * NR * kc;
    }
    for (; j0 < nc; j0 += NR, dst += (ptrdiff_t)NR * kc) {
        const int nr = (int)PSFX(parml_min)(NR, nc - j0);
        const PT *bp = b + j0 * cs;
        if (rs == 1) /* column-major B (e.g. a transposed view): a transposing copy */
            PSFX(parml_tcopy)(kc, nr, bp, cs, dst, NR);
        else
            for (ptrdiff_t p = 0; p < kc; ++p)
                for (int j = 0; j < nr; ++j) dst[p * NR + j] = bp[p * rs + j * cs];
        if (nr < NR)
            for (ptrdiff_t p = 0; p < kc; ++p)
                for (int j = nr; j < NR; ++j) dst[p * NR + j] = 0;
    }
}

/* A prepacked B: the whole k x n matrix packed once, in the order parml_gemm_rect reads it, so
 * that several products with the same B (row chunks of one product run as separate calls) share
 * one copy. Depth block by depth block (parml_gemm_kc steps each, the last may be shorter);
 * block pc starts at element pc * npad (npad: n rounded up to whole NR panels) and holds panel q
 * at q * NR * kc, step p of it at p * NR. Columns past n are zero. */
static ptrdiff_t PSFX(parml_gemm_kc)(const PKERNEL *K, ptrdiff_t k);

/* n rounded up to whole NR-column panels: the elements of one depth step of a prepacked B */
static ptrdiff_t PSFX(parml_prepacked_npad)(const PKERNEL *K, ptrdiff_t n)
{
    return ((n + K->nr - 1) / K->nr) * K->nr;
}

static size_t PSFX(parml_prepacked_b_elems)(const PKERNEL *K, ptrdiff_t k, ptrdiff_t n)
{
    return (size_t)PSFX(parml_prepacked_npad)(K, n) * (size_t)k;
}

/* All of B (any strides) into dst. */
static void PSFX(parml_prepack_b)(const PKERNEL *K, ptrdiff_t k, ptrdiff_t n, const PT *b,
                                  ptrdiff_t rs, ptrdiff_t cs, PT *PARML_RESTRICT dst)
{
    const ptrdiff_t kc_blk = PSFX(parml_gemm_kc)(K, k);
    const ptrdiff_t npad = PSFX(parml_prepacked_npad)(K, n);
    for (ptrdiff_t pc = 0; pc < k; pc += kc_blk)
        PSFX(parml_pack_b)(K->nr, PSFX(parml_min)(kc_blk, k - pc), n, b + pc * rs, rs, cs,
                           dst + pc * npad);
}

/* Rows i0..i1 of a row-major B (row 0 at b, row stride rs) into their place in dst, so that row
 * chunks of B produced by different tasks can each pack their own rows while they are in cache. */
static void PSFX(parml_prepack_b_rows)(const PKERNEL *K, ptrdiff_t k, ptrdiff_t n, ptrdiff_t i0,
                                       ptrdiff_t i1, const PT *b, ptrdiff_t rs,
                                       PT *PARML_RESTRICT dst)
{
    const int NR = K->nr;
    const ptrdiff_t kc_blk = PSFX(parml_gemm_kc)(K, k);
    const ptrdiff_t npad = PSFX(parml_prepacked_npad)(K, n), full = n / NR;
    while (i0 < i1) {
        const ptrdiff_t pc = (i0 / kc_blk) * kc_blk;
        const ptrdiff_t kc = PSFX(parml_min)(kc_blk, k - pc);
        const ptrdiff_t s1 = PSFX(parml_min)(i1, pc + kc);
        PT *blk = dst + pc * npad + (i0 - pc) * NR;
        PSFX(parml_copy_steps_ps)(NR, s1 - i0, full, b + i0 * rs, rs, blk, (ptrdiff_t)NR * kc);
        if (full * NR < n) { /* the ragged last panel, zero-padded */
            PT *pp = blk + full * NR * kc;
            const int nr = (int)(n - full * NR);
            for (ptrdiff_t p = i0; p < s1; ++p, pp += NR) {
                const PT *src = b + p * rs + full * NR;
                for (int j = 0; j < nr; ++j) pp[j] = src[j];
                for (int j = nr; j < NR; ++j) pp[j] = 0;
            }
        }
        i0 = s1;
    }
}

/* Columns j0..j1 of B = W^T (W: n x k row-major, row stride ldw; B[p][j] = W[j][p]) into their
 * place in dst: the rows j0..j1 of W that a task has just updated, packed while in cache. The
 * zero columns past n are left as parml_prepack_b wrote them. */
static void PSFX(parml_prepack_bt_cols)(const PKERNEL *K, ptrdiff_t k, ptrdiff_t n, ptrdiff_t j0,
                                        ptrdiff_t j1, const PT *w, ptrdiff_t ldw,
                                        PT *PARML_RESTRICT dst)
{
    const int NR = K->nr;
    const ptrdiff_t kc_blk = PSFX(parml_gemm_kc)(K, k);
    const ptrdiff_t npad = PSFX(parml_prepacked_npad)(K, n);
    for (ptrdiff_t pc = 0; pc < k; pc += kc_blk) {
        const ptrdiff_t kc = PSFX(parml_min)(kc_blk, k - pc);
        for (ptrdiff_t j = j0; j < j1;) {
            const ptrdiff_t q = j / NR, je = PSFX(parml_min)(j1, (q + 1) * NR);
            PSFX(parml_tcopy)(kc, je - j, w + j * ldw + pc, ldw,
                              dst + pc * npad + q * NR * kc + (j - q * NR), NR);
            j = je;
        }
    }
}

typedef struct {
    ptrdiff_t m, n, k;
    const PT *a;
    ptrdiff_t rs_a, cs_a;
    const PT *b;
    ptrdiff_t rs_b, cs_b;
    PT *c;
    ptrdiff_t rs_c;
} PSFX(parml_gemm_args);

/* The five loops over one rectangle [i0, i1) x [j0, j1) of C. */
static void PSFX(parml_gemm_rect)(const PKERNEL *K, const PSFX(parml_gemm_args) *g, ptrdiff_t kc_blk,
                                  ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t j0, ptrdiff_t j1, PT *abuf,
                                  PT *bbuf, int unpacked_b, const PT *bpre)
{
    /* bpre: all of B prepacked (parml_prepack_b), read instead of packing */
    const ptrdiff_t npad = PSFX(parml_prepacked_npad)(K, g->n);
    const int MR = K->mr, NR = K->nr, L = PARML_A_LANES(K);
    /* A read in place instead of packed when the rectangle is narrow: a packed panel is reused
     * by (j1 - j0) / NR kernel calls, and under PARML_INPLACE_A_MAX_PANELS of them packing costs
     * more than the strided reads it saves (a 64^3 float product: 20% of its instructions). A's
     * rows must be contiguous (unit column stride), or, for a transposed view (unit row stride),
     * the block must span few enough bytes to stay in L1: each k step of a panel is then a new
     * cache line, and at 256x256 float (1 KiB apart, a few L1 sets) the packed panel was 6%
     * faster while at 64x64 the in-place one was 5% faster. */
    const int inplace_a = K->fn_a != NULL
                          && (g->cs_a == 1
                              || (g->rs_a == 1 && (size_t)kc_blk * (size_t)g->cs_a * sizeof(PT)
                                                      <= PARML_INPLACE_AT_MAX_BYTES))
                          && (j1 - j0) <= (ptrdiff_t)PARML_INPLACE_A_MAX_PANELS * NR;
    for (ptrdiff_t jc = j0; jc < j1; jc += K->nc) {
        const ptrdiff_t nc = PSFX(parml_min)(K->nc, j1 - jc);
        for (ptrdiff_t pc = 0; pc < g->k; pc += kc_blk) {
            const ptrdiff_t kc = PSFX(parml_min)(kc_blk, g->k - pc);
            const PT *bsrc = g->b + pc * g->rs_b + jc * g->cs_b;
            /* small row-major B is read in place (it stays in cache); only a ragged last panel
             * is packed, zero-padded, so the kernel can read whole NR-wide rows */
            const ptrdiff_t nfull = unpacked_b && bpre == NULL ? (nc / NR) * NR : 0;
            const PT *bblk = bpre != NULL ? bpre + pc * npad + jc * kc : bbuf;
            if (bpre == NULL && nfull < nc)
                PSFX(parml_pack_b)(NR, kc, nc - nfull, bsrc + nfull, g->rs_b, g->cs_b, bbuf + nfull * kc);
            for (ptrdiff_t ic = i0; ic < i1; ic += K->mc) {
                const ptrdiff_t mc = PSFX(parml_min)(K->mc, i1 - ic);
                const PT *asrc = g->a + ic * g->rs_a + pc * g->cs_a;
                /* A in place: whole panels are read by the kernel from A itself, only a ragged
                 * last panel is packed (zero-padded) */
                const ptrdiff_t mfull = inplace_a ? (mc / MR) * MR : 0;
                if (mfull < mc && L > 1)
                    PSFX(parml_pack_a_lanes)(MR, L, mc - mfull, kc, asrc + mfull * g->rs_a,
                                             g->rs_a, g->cs_a, abuf + mfull * kc * L);
                else if (mfull < mc)
                    PSFX(parml_pack_a)(MR, mc - mfull, kc, asrc + mfull * g->rs_a, g->rs_a, g->cs_a,
                                       abuf + mfull * kc);
                for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    const int nr = (int)PSFX(parml_min)(NR, nc - jr);
                    const PT *bp = jr < nfull ? bsrc + jr : bblk + jr * kc;
                    const ptrdiff_t rs_bp = jr < nfull ? g->rs_b : NR;
                    PT *cp = g->c + ic * g->rs_c + jc + jr;
                    for (ptrdiff_t ir = 0; ir < mfull; ir += MR)
                        K->fn_a(kc, asrc + ir * g->rs_a, g->rs_a, g->cs_a, bp, rs_bp,
                                cp + ir * g->rs_c, g->rs_c, MR, nr, pc > 0);
                    for (ptrdiff_t ir = mfull; ir < mc; ir += MR)
                        K->fn(kc, abuf + ir * kc * L, bp, rs_bp, cp + ir * g->rs_c, g->rs_c,
                              (int)PSFX(parml_min)(MR, mc - ir), nr, pc > 0);
                }
            }
        }
    }
}

/* Direct path for small problems: no packing, C row by row as a sum of scaled rows of B.
 * The inner loop vectorises when B's rows are contiguous. */
static void PSFX(parml_gemm_direct)(const PSFX(parml_gemm_args) *g)
{
    for (ptrdiff_t i = 0; i < g->m; ++i) {
        PT *PARML_RESTRICT ci = g->c + i * g->rs_c;
        for (ptrdiff_t j = 0; j < g->n; ++j) ci[j] = 0;
        for (ptrdiff_t p = 0; p < g->k; ++p) {
            const PT aip = g->a[i * g->rs_a + p * g->cs_a];
            const PT *bp = g->b + p * g->rs_b;
            if (g->cs_b == 1)
                for (ptrdiff_t j = 0; j < g->n; ++j) ci[j] += aip * bp[j];
            else
                for (ptrdiff_t j = 0; j < g->n; ++j) ci[j] += aip * bp[j * g->cs_b];
        }
    }
}

/* Depth of one packed block: k is cut into equal blocks of at most KC. Depends on k only. */
static ptrdiff_t PSFX(parml_gemm_kc)(const PKERNEL *K, ptrdiff_t k)
{
    const ptrdiff_t nblk = (k + K->kc - 1) / K->kc;
    return (k + nblk - 1) / nblk;
}

/* Choose the task grid rows x cols (rows*cols >= tasks) that packs the least redundant data:
 * B is packed once per row chunk (cost ~ rows*n), A once per column chunk (cost ~ cols*m). */
static void PSFX(parml_gemm_grid)(ptrdiff_t mpanels, ptrdiff_t npanels, ptrdiff_t m, ptrdiff_t n,
                                  int tasks, int *rows, int *cols)
{
    double best = -1;
    *rows = 1;
    *cols = 1;
    for (int r = 1; r <= tasks; ++r) {
        const int c = (tasks + r - 1) / r;
        if (r > mpanels || c > npanels) continue;
        const double cost = (double)r * (double)n + (double)c * (double)m;
        if (best < 0 || cost < best) {
            best = cost;
            *rows = r;
            *cols = c;
        }
    }
}

/* Small row-major B is read in place by the packed path (it stays in cache). */
static int PSFX(parml_gemm_unpacked_b)(const PSFX(parml_gemm_args) *g)
{
    return g->cs_b == 1 && (size_t)g->k * (size_t)g->n * sizeof(PT) <= PARML_UNPACKED_B_MAX_BYTES;
}

typedef struct {
    const PKERNEL *K;
    const PSFX(parml_gemm_args) *g;
    ptrdiff_t kc_blk, mpanels, npanels;
    int rows, cols, unpacked_b;
    const PT *bpre;
    char *pool;
    size_t abytes, bbytes;
} PSFX(parml_gemm_ctx);

/* Task t of the grid: rectangle (t / cols, t % cols), packing into worker's own buffers. */
static void PSFX(parml_gemm_task)(void *vctx, ptrdiff_t t, int worker)
{
    const PSFX(parml_gemm_ctx) *x = (const PSFX(parml_gemm_ctx) *)vctx;
    const int MR = x->K->mr, NR = x->K->nr;
    char *mine = x->pool + (size_t)worker * (x->abytes + x->bbytes);
    const ptrdiff_t r = t / x->cols, c = t % x->cols;
    const ptrdiff_t i0 = (x->mpanels * r / x->rows) * MR;
    const ptrdiff_t i1 = PSFX(parml_min)((x->mpanels * (r + 1) / x->rows) * MR, x->g->m);
    const ptrdiff_t j0 = (x->npanels * c / x->cols) * NR;
    const ptrdiff_t j1 = PSFX(parml_min)((x->npanels * (c + 1) / x->cols) * NR, x->g->n);
    if (i0 < i1 && j0 < j1)
        PSFX(parml_gemm_rect)(x->K, x->g, x->kc_blk, i0, i1, j0, j1, (PT *)mine,
                              (PT *)(mine + x->abytes), x->unpacked_b, x->bpre);
}

/* C = A.B with up to n_threads threads over `tasks` rectangles (parallel_for runs them; NULL or
 * one thread: run in this thread), B packed per block, or read from bpre when not NULL (all of B
 * prepacked). Returns 0, or -1 if a packing buffer could not be allocated (nothing was
 * computed). */
static int PSFX(parml_gemm_packed)(const PKERNEL *K, const PSFX(parml_gemm_args) *g, int n_threads,
                                   int tasks, parml_parallel_for_fn parallel_for, const PT *bpre)
{
    PSFX(parml_gemm_ctx) x;
    x.K = K;
    x.g = g;
    x.mpanels = (g->m + K->mr - 1) / K->mr;
    x.npanels = (g->n + K->nr - 1) / K->nr;
    x.rows = x.cols = 1;
    if (n_threads > 1 && tasks > 1 && parallel_for != NULL)
        PSFX(parml_gemm_grid)(x.mpanels, x.npanels, g->m, g->n, tasks, &x.rows, &x.cols);
    const int ntask = x.rows * x.cols;
    if (n_threads > ntask) n_threads = ntask;
    if (n_threads < 1) n_threads = 1;
    x.kc_blk = PSFX(parml_gemm_kc)(K, g->k);
    x.unpacked_b = PSFX(parml_gemm_unpacked_b)(g);
    x.bpre = bpre;
    /* one A block and one B block per worker; 64-byte aligned, whole cache lines */
    const ptrdiff_t ncols_task = ((x.npanels + x.cols - 1) / x.cols) * K->nr;
    x.abytes = (((size_t)K->mc + K->mr) * x.kc_blk * PARML_A_LANES(K) * sizeof(PT) + 63)
               & ~(size_t)63;
    x.bbytes = bpre != NULL ? 0
               : (((size_t)PSFX(parml_min)(K->nc, ncols_task) + K->nr) * x.kc_blk * sizeof(PT) + 63)
                     & ~(size_t)63;
    x.pool = (char *)aligned_alloc(64, (x.abytes + x.bbytes) * (size_t)n_threads);
    if (x.pool == NULL) return -1;
    if (n_threads == 1) {
        for (ptrdiff_t t = 0; t < ntask; ++t) PSFX(parml_gemm_task)(&x, t, 0);
    } else {
        parallel_for(ntask, n_threads, PSFX(parml_gemm_task), &x);
    }
    free(x.pool);
    return 0;
}

/* Skinny path: column chunks of skinny_w, tasks of SKINNY_TASK_ROWS rows. */
#define PARML_SKINNY_TASK_ROWS 192
typedef struct {
    const PKERNEL *K;
    const PSFX(parml_gemm_args) *g;
    const PT *b;
    ptrdiff_t rs_b, row_tasks;
} PSFX(parml_skinny_ctx);

static void PSFX(parml_skinny_task)(void *vctx, ptrdiff_t t, int worker)
{
    const PSFX(parml_skinny_ctx) *x = (const PSFX(parml_skinny_ctx) *)vctx;
    const PSFX(parml_gemm_args) *g = x->g;
    const int W = x->K->skinny_w;
    const ptrdiff_t r = t % x->row_tasks, j0 = (t / x->row_tasks) * W;
    const ptrdiff_t i0 = r * PARML_SKINNY_TASK_ROWS;
    const ptrdiff_t m = PSFX(parml_min)(PARML_SKINNY_TASK_ROWS, g->m - i0);
    (void)worker;
    x->K->skinny(m, PSFX(parml_min)(W, g->n - j0), g->k, g->a + i0 * g->rs_a, g->rs_a, g->cs_a,
                 x->b + j0, x->rs_b, g->c + i0 * g->rs_c + j0, g->rs_c);
}

static int PSFX(parml_gemm_skinny)(const PKERNEL *K, const PSFX(parml_gemm_args) *g, int n_threads,
                                   parml_parallel_for_fn parallel_for)
{
    PSFX(parml_skinny_ctx) x;
    PT *bcopy = NULL;
    x.K = K;
    x.g = g;
    x.b = g->b;
    x.rs_b = g->rs_b;
    if (g->cs_b != 1) { /* B is small here (k x n, n < NR): make its rows contiguous */
        bcopy = (PT *)malloc((size_t)g->k * g->n * sizeof(PT));
        if (bcopy == NULL) return -1;
        for (ptrdiff_t p = 0; p < g->k; ++p)
            for (ptrdiff_t j = 0; j < g->n; ++j) bcopy[p * g->n + j] = g->b[p * g->rs_b + j * g->cs_b];
        x.b = bcopy;
        x.rs_b = g->n;
    }
    x.row_tasks = (g->m + PARML_SKINNY_TASK_ROWS - 1) / PARML_SKINNY_TASK_ROWS;
    const ptrdiff_t ntask = x.row_tasks * ((g->n + K->skinny_w - 1) / K->skinny_w);
    if (n_threads > 1 && parallel_for != NULL)
        parallel_for(ntask, n_threads, PSFX(parml_skinny_task), &x);
    else
        for (ptrdiff_t t = 0; t < ntask; ++t) PSFX(parml_skinny_task)(&x, t, 0);
    free(bcopy);
    return 0;
}

/* Whether parml_gemm computes this product as C^T = B^T.A^T (see parml_gemm). */
static int PSFX(parml_gemm_transposed)(const PKERNEL *K, const PSFX(parml_gemm_args) *g)
{
    const int lanes_t = PARML_A_LANES(K) > 1 && g->n <= 4 * (ptrdiff_t)K->nr
                        && (double)g->n * (double)(g->k + 2 * g->m) < (double)g->m * (double)g->k;
    return g->m > g->n && (g->n < K->nr || lanes_t);
}

/* Whether parml_gemm runs this product through the packed path and packs B there, i.e. whether
 * a prepacked B (parml_prepack_b) can stand in for that packing. Shape and strides only. */
static int PSFX(parml_gemm_packs_b)(const PKERNEL *K, const PSFX(parml_gemm_args) *g, int direct)
{
    if (g->m == 0 || g->n == 0 || g->k == 0 || direct) return 0;
    if (K->skinny != NULL && (g->n < K->nr || g->n <= K->skinny_w)) return 0;
    return !PSFX(parml_gemm_transposed)(K, g) && !PSFX(parml_gemm_unpacked_b)(g);
}

/* C = A.B. Skinny products (n narrower than the register tile, or at most the skinny routine's
 * width) use the kernel's skinny routine when it has one; otherwise, when m is wider, they are
 * computed as C^T = B^T.A^T into a scratch block and transposed into C: the tile then wastes rows
 * of a 12-row tile instead of most lanes of a 16- or 32-wide one. A kernel with broadcast A
 * panels also takes that path when packing fewer vectors pays for the transpose. Whether it happens
 * depends on the shape only, and each element is the same sum either way, so results stay
 * identical for every thread count. */
static int PSFX(parml_gemm)(const PKERNEL *K, const PSFX(parml_gemm_args) *g, int n_threads,
                            int tasks, int direct, parml_parallel_for_fn parallel_for)
{
    if (g->m == 0 || g->n == 0) return 0;
    if (direct || g->k == 0) {
        PSFX(parml_gemm_direct)(g);
        return 0;
    }
    if (K->skinny != NULL && (g->n < K->nr || g->n <= K->skinny_w))
        return PSFX(parml_gemm_skinny)(K, g, n_threads, parallel_for);
    /* A kernel with broadcast A panels (a_lanes > 1) stores a vector per A element, m*k of
     * them, about a cycle each; the transposed product stores n*k and transposes C (~2 cycles
     * per element of C). It is taken when that costs less: n*(k + 2m) < m*k. Packed as
     * vectors, the A of a 256x128 . 128x10 float product took longer than the kernel (0.6x the
     * portable kernel's speed); transposed, 1.9x. A 256x10 . 10x128 product stays as it is:
     * there, transposing C would cost more than its kernel calls. Only for n <= 4 NR: wider
     * products pack A's vectors for enough kernel calls (256x256 . 256x128 ran 10% slower
     * transposed), and the scratch copy of C stays at most 4 NR columns. */
    if (PSFX(parml_gemm_transposed)(K, g)) {
        PT *tmp = (PT *)aligned_alloc(64, ((size_t)g->m * g->n * sizeof(PT) + 63) & ~(size_t)63);
        if (tmp == NULL) return -1;
        PSFX(parml_gemm_args) t;
        t.m = g->n; t.n = g->m; t.k = g->k;
        t.a = g->b; t.rs_a = g->cs_b; t.cs_a = g->rs_b;
        t.b = g->a; t.rs_b = g->cs_a; t.cs_b = g->rs_a;
        t.c = tmp; t.rs_c = g->m;
        const int rc = PSFX(parml_gemm_packed)(K, &t, n_threads, tasks, parallel_for, NULL);
        if (rc == 0)
            for (ptrdiff_t i = 0; i < g->m; ++i)
                for (ptrdiff_t j = 0; j < g->n; ++j) g->c[i * g->rs_c + j] = tmp[j * g->m + i];
        free(tmp);
        return rc;
    }
    return PSFX(parml_gemm_packed)(K, g, n_threads, tasks, parallel_for, NULL);
}

/* C = A.B on this thread, as parml_gemm does it, reading B from bpre (all of B prepacked by
 * parml_prepack_b / parml_prepack_b_rows) instead of packing it when bpre is not NULL and the
 * product packs B (parml_gemm_packs_b). The packed values are the same either way, so the result
 * is bitwise the same. */
static int PSFX(parml_gemm_prepacked)(const PKERNEL *K, const PSFX(parml_gemm_args) *g, int direct,
                                      const PT *bpre)
{
    if (bpre != NULL && PSFX(parml_gemm_packs_b)(K, g, direct))
        return PSFX(parml_gemm_packed)(K, g, 1, 1, NULL, bpre);
    return PSFX(parml_gemm)(K, g, 1, 1, direct, NULL);
}
