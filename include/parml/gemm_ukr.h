/* GEMM micro-kernels: the one contract every kernel (reference C, SSE2, AVX2+FMA, AVX-512, NEON)
 * implements, and the per-ISA register-tile and cache-block sizes.
 *
 * Contract, for T in {float, double}:
 *
 *   void ukr(ptrdiff_t k, const T *a, const T *b, ptrdiff_t rs_b,
 *            T *c, ptrdiff_t rs_c, int mr, int nr, int accumulate);
 *
 *   k           depth, k >= 1.
 *   a     IN    packed A micro-panel, MR x k: element (i, p) at a[p*MR + i]. Rows mr..MR-1 are
 *               zero padding written by the packer. A kernel whose table row sets a_lanes = L > 1
 *               gets every element as L copies instead, (i, p) at a[(p*MR + i)*L + l], l < L:
 *               one vector load is then a broadcast (gemm_ukr_sse2.h), and a is aligned to
 *               L * sizeof(T) bytes (such a kernel may use it as an aligned memory operand).
 *   b     IN    B micro-panel, k x NR: element (p, j) at b[p*rs_b + j]. All NR columns of each row
 *               are readable (rs_b == NR for a packed panel).
 *   c     OUT   output tile: element (i, j) at c[i*rs_c + j]. Only 0 <= i < mr, 0 <= j < nr are
 *               touched (edge tiles never write outside the matrix).
 *   accumulate  0: c = a.b, and c is never read (beta == 0: NaN or garbage in c cannot leak);
 *               1: c += a.b.
 *
 *   Every kernel sums over p in increasing order into zeroed registers, then adds to or stores c.
 *   So a result never depends on which thread computed a tile, or how tiles were scheduled.
 *
 * Block sizes (BLIS/Goto naming). NR: columns of the register tile (the vector direction, because
 * C is row-major); MR: rows of the register tile. KC: depth of a packed block; one KC x NR panel of
 * B stays in L1 while A micro-panels stream from L2. MC: rows of the packed A block kept in L2.
 * NC: columns of the packed B block kept in L3. KC must not depend on the thread count (it fixes
 * the order of the sum), and none of them do.
 */
#ifndef PARML_GEMM_UKR_H
#define PARML_GEMM_UKR_H

#include <stddef.h>

typedef void (*parml_ukr_d_fn)(ptrdiff_t k, const double *a, const double *b, ptrdiff_t rs_b,
                               double *c, ptrdiff_t rs_c, int mr, int nr, int accumulate);
typedef void (*parml_ukr_s_fn)(ptrdiff_t k, const float *a, const float *b, ptrdiff_t rs_b,
                               float *c, ptrdiff_t rs_c, int mr, int nr, int accumulate);

/* Optional skinny kernel: C[m, n] = A.B for n <= skinny_w, A through any strides, B rows with
 * unit column stride (rs_b between rows), C rows rs_c apart; every element summed over p in
 * increasing order from zero. */
/* The same contract with A read in place: row i of the panel, step p at a[i * ar + p * ac]
 * (packed: ar = 1, ac = MR; a row-major matrix: ar = its row stride, ac = 1). Only for whole
 * panels (mr == MR: every row it reads exists). */
typedef void (*parml_ukr_a_d_fn)(ptrdiff_t k, const double *a, ptrdiff_t ar, ptrdiff_t ac,
                                 const double *b, ptrdiff_t rs_b, double *c, ptrdiff_t rs_c,
                                 int mr, int nr, int accumulate);
typedef void (*parml_ukr_a_s_fn)(ptrdiff_t k, const float *a, ptrdiff_t ar, ptrdiff_t ac,
                                 const float *b, ptrdiff_t rs_b, float *c, ptrdiff_t rs_c,
                                 int mr, int nr, int accumulate);

typedef void (*parml_skinny_d_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *a,
                                  ptrdiff_t rs_a, ptrdiff_t cs_a, const double *b, ptrdiff_t rs_b,
                                  double *c, ptrdiff_t rs_c);
typedef void (*parml_skinny_s_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a,
                                  ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b, ptrdiff_t rs_b,
                                  float *c, ptrdiff_t rs_c);

typedef struct {
    const char *name;
    int mr, nr, kc, mc, nc;
    parml_ukr_d_fn fn;
    int skinny_w;               /* 0: no skinny kernel */
    parml_skinny_d_fn skinny;
    parml_ukr_a_d_fn fn_a;      /* NULL: A is always packed */
    int a_lanes;                /* copies of each packed A element; 0 or 1: one */
} parml_kernel_d;

typedef struct {
    const char *name;
    int mr, nr, kc, mc, nc;
    parml_ukr_s_fn fn;
    int skinny_w;
    parml_skinny_s_fn skinny;
    parml_ukr_a_s_fn fn_a;
    int a_lanes;
} parml_kernel_s;

/* Copies of each element in kernel K's packed A panels (its a_lanes, 0 meaning 1). */
#define PARML_A_LANES(K) ((K)->a_lanes > 1 ? (K)->a_lanes : 1)

/* The largest register tile of any kernel (edge-tile scratch buffers are sized with it). */
#define PARML_MAX_MR 16
#define PARML_MAX_NR 32

/* An edge tile's mr x nr corner of a full register tile kept in `tile` (rows ld apart) added to,
 * or stored into, c: the micro-kernels' shared tail, so an edge tile never touches C outside
 * the matrix (and never reads it when accumulate is 0). */
#define PARML_TILE_TO_C(T, c, rs_c, tile, ld, mr, nr, accumulate)                                  \
    for (int i_ = 0; i_ < (mr); ++i_) {                                                            \
        T *ci_ = (c) + i_ * (rs_c);                                                                \
        const T *ti_ = (tile) + i_ * (ld);                                                         \
        if (accumulate)                                                                            \
            for (int j_ = 0; j_ < (nr); ++j_) ci_[j_] += ti_[j_];                                  \
        else                                                                                       \
            for (int j_ = 0; j_ < (nr); ++j_) ci_[j_] = ti_[j_];                                   \
    }

/* The tail of a kernel whose tile is MR rows of two W-wide vectors (acc0[i], acc1[i]): a whole
 * tile goes to c directly (added to it when accumulate), an edge tile through `tile` and
 * PARML_TILE_TO_C. ADD, LOADU and STOREU are the vector width's intrinsics. */
#define PARML_TILE_OUT_2VEC(T, MR, W, ADD, LOADU, STOREU, acc0, acc1, c, rs_c, mr, nr, accumulate) \
    {                                                                                              \
        const int full_ = ((mr) == (MR) && (nr) == 2 * (W));                                       \
        T tile_[(MR) * 2 * (W)];                                                                   \
        _Pragma("GCC unroll 8") for (int i_ = 0; i_ < (MR); ++i_)                                  \
        {                                                                                          \
            T *ci_ = full_ ? (c) + i_ * (rs_c) : tile_ + i_ * 2 * (W);                             \
            if (full_ && (accumulate)) {                                                           \
                acc0[i_] = ADD(acc0[i_], LOADU(ci_));                                              \
                acc1[i_] = ADD(acc1[i_], LOADU(ci_ + (W)));                                        \
            }                                                                                      \
            STOREU(ci_, acc0[i_]);                                                                 \
            STOREU(ci_ + (W), acc1[i_]);                                                           \
        }                                                                                          \
        if (!full_) PARML_TILE_TO_C(T, c, rs_c, tile_, 2 * (W), mr, nr, accumulate)                \
    }

/* The two entry points of a micro-kernel written as one inlined body NAME##_body(k, a, ar, ac,
 * b, rs_b, c, rs_c, mr, nr, accumulate): NAME reads a packed A panel (ar = 1, ac = MR, constants,
 * so it compiles as if written alone) and NAME##_a reads A in place (parml_ukr_a_*_fn). */
#define PARML_DEFINE_UKR_ENTRIES(TARGET, T, MR, NAME)                                              \
    TARGET static void NAME(ptrdiff_t k, const T *PARML_RESTRICT a, const T *PARML_RESTRICT b,    \
                            ptrdiff_t rs_b, T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr, int nr,  \
                            int accumulate)                                                        \
    {                                                                                              \
        NAME##_body(k, a, 1, MR, b, rs_b, c, rs_c, mr, nr, accumulate);                            \
    }                                                                                              \
    TARGET static void NAME##_a(ptrdiff_t k, const T *PARML_RESTRICT a, ptrdiff_t ar, ptrdiff_t ac,\
                                const T *PARML_RESTRICT b, ptrdiff_t rs_b, T *PARML_RESTRICT c,   \
                                ptrdiff_t rs_c, int mr, int nr, int accumulate)                    \
    {                                                                                              \
        NAME##_body(k, a, ar, ac, b, rs_b, c, rs_c, mr, nr, accumulate);                           \
    }

#if defined(__GNUC__) || defined(__clang__)
#define PARML_RESTRICT __restrict__
#define PARML_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#else
#define PARML_RESTRICT
#define PARML_PREFETCH_W(p) ((void)(p))
#endif

/* Micro-kernels hint their C tile (rows < mr, columns < nr: nothing else is touched) before
 * their k loop. After the first KC block the tile is read back (accumulate), and once C outgrows
 * L2 (n >= 512 float64) those reads missed after the last FMA, with nothing left to hide them:
 * on a Zen 3 core 1-thread 512^3 and 1024^3 float64 ran at 0.84-0.85x OpenBLAS against 0.95x
 * at 256^3 (one KC block); hinted, 1024^3 takes 5% less time (0.90-1.07x OpenBLAS, 3 runs).
 * One hint per 64 bytes of a row, and one for its last element. (The SSE2 kernel, 2-4x slower
 * per call, hides the miss without them: gemm_ukr_sse2.h.) */
#define PARML_PREFETCH_C_TILE(c, rs_c, mr, nr)                                                     \
    for (int pf_i_ = 0; pf_i_ < (mr); ++pf_i_) {                                                   \
        for (int pf_j_ = 0; pf_j_ < (nr); pf_j_ += (int)(64 / sizeof(*(c))))                       \
            PARML_PREFETCH_W((c) + pf_i_ * (rs_c) + pf_j_);                                        \
        PARML_PREFETCH_W((c) + pf_i_ * (rs_c) + (nr) - 1);                                         \
    }
#endif
