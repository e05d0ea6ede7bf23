/* AVX2 + FMA micro-kernels, per-function target attributes (see gemm_ukr_avx512.h).
 *
 * Register tile: MR = 6 rows x NR = 2 vectors (8 doubles / 16 floats): 12 ymm accumulators +
 * 2 for B + 1 broadcast = 15 of 16 registers. Edge tiles go through a small scratch tile because
 * AVX2 has no cheap masked store for every width. The skinny kernels (n <= 12 doubles / 16 floats,
 * A read in place) are at the end. */
#ifndef PARML_GEMM_UKR_AVX2_H
#define PARML_GEMM_UKR_AVX2_H

#include <stdlib.h>
#include "gemm_ukr.h"
#include "cpu_features.h"
#include "avx2_parts.h"

#if PARML_X86
#include <immintrin.h>

#define PARML_AVX2_TARGET __attribute__((target("avx2,fma")))
#define PARML_D256_MR 6
#define PARML_D256_NR 8
#define PARML_S256_MR 6
#define PARML_S256_NR 16

/* NAME reads a packed A panel; NAME##_a reads A in place (parml_ukr_a_*_fn). One body, inlined
 * into both: with ar = 1, ac = MR constant the packed kernel compiles as if written alone. */
#define PARML_DEFINE_AVX2_UKR(T, VEC, W, SUF, BCAST, MR, NAME)                                     \
    PARML_AVX2_TARGET static inline __attribute__((always_inline)) void NAME##_body(              \
        ptrdiff_t k, const T *PARML_RESTRICT a, ptrdiff_t ar, ptrdiff_t ac,                        \
        const T *PARML_RESTRICT b, ptrdiff_t rs_b, T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr,    \
        int nr, int accumulate)                                                                    \
    {                                                                                              \
        VEC acc0[MR], acc1[MR];                                                                    \
        PARML_PREFETCH_C_TILE(c, rs_c, mr, nr)                                                     \
        _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                       \
        {                                                                                          \
            acc0[i] = _mm256_setzero_##SUF();                                                      \
            acc1[i] = _mm256_setzero_##SUF();                                                      \
        }                                                                                          \
        /* unrolled 4 steps: one loop counter and branch per 4 steps (89 instructions, not 100);   \
         * products ran 2-9% faster on Zen 3 (in-process A/B), more when the sibling vCPU was      \
         * busy: the two then share one core's dispatch slots */                                   \
        _Pragma("GCC unroll 4") for (ptrdiff_t p = 0; p < k; ++p) {                                \
            const VEC b0 = _mm256_loadu_##SUF(b);                                                  \
            const VEC b1 = _mm256_loadu_##SUF(b + W);                                              \
            _Pragma("GCC unroll 8") for (int i = 0; i < MR; ++i)                                   \
            {                                                                                      \
                const VEC ai = BCAST(a + i * ar);                                                  \
                acc0[i] = _mm256_fmadd_##SUF(ai, b0, acc0[i]);                                     \
                acc1[i] = _mm256_fmadd_##SUF(ai, b1, acc1[i]);                                     \
            }                                                                                      \
            a += ac;                                                                               \
            b += rs_b;                                                                             \
        }                                                                                          \
        PARML_TILE_OUT_2VEC(T, MR, W, _mm256_add_##SUF, _mm256_loadu_##SUF, _mm256_storeu_##SUF,   \
                            acc0, acc1, c, rs_c, mr, nr, accumulate)                               \
    }                                                                                              \
    PARML_DEFINE_UKR_ENTRIES(PARML_AVX2_TARGET, T, MR, NAME)

PARML_DEFINE_AVX2_UKR(double, __m256d, 4, pd, _mm256_broadcast_sd, PARML_D256_MR, parml_ukr_d_avx2)
PARML_DEFINE_AVX2_UKR(float, __m256, 8, ps, _mm256_broadcast_ss, PARML_S256_MR, parml_ukr_s_avx2)

/* Skinny products (parml_skinny_d_fn / parml_skinny_s_fn in gemm_ukr.h): C[m, n] = A.B for
 * n <= PARML_AVX2_SKINNY_W_D (12 doubles: 3 vectors) / PARML_AVX2_SKINNY_W_S (16 floats: 2
 * vectors), A read in place through its strides (no packing), every element summed over p in
 * increasing order from zero with one FMA per term: bit-identical to the AVX-512 skinny kernel,
 * and the same whichever of the two layouts below computes it.
 *
 * Row kernel (any A): lanes along the columns of B and C. A pass holds R rows x NV vectors of
 * accumulators (NV = ceil(n / lanes)) and one B row: NV = 1: R = 8; NV = 2: R = 6; NV = 3: R = 4
 * (12 accumulators + 3 B vectors + 1 broadcast = 16 ymm). FMA latency 4 x 2 pipes wants >= 8
 * independent chains; 12 rows of NV = 1 ran slower than 8 (the 12 row pointers spilled). Rows past
 * m in the last pass repeat the last row: computed, never stored. One pass of 3 vectors beat
 * covering n = 10 doubles with a pass of 2 and one of 1 (re-reading A): 43 against 39 GFLOP/s, and
 * 42 against 33 with A transposed.
 *
 * Column kernel (A with unit row stride, rs_a == 1: A^T of a row-major matrix, as in the MLP's
 * weight gradient X^T.delta): lanes along the rows of A and C, so no lane is wasted on n: per p,
 * RV vectors of A rows are loaded and each of the n B elements is broadcast into RV FMAs. n is a
 * compile-time constant per instance (n accumulators per row vector, unrolled); RV is chosen for
 * >= 8 chains (n = 1: 8; 2: 4; 3, 4: 3; 5, 6: 2; 7..14: 1). The tile is written to C through a
 * small stack transpose. Used for every float n <= 14, and for double n <= 6 and 9, 10 (for n =
 * 7, 8, 11, 12 doubles the row kernel measured faster: one row vector, 7 or 8 chains).
 *
 * Nothing past column n - 1 of a B or C row, or past row m - 1 of A, is read or written, and no
 * vmaskmov is used (AMD leaves the fault behaviour of masked-off elements implementation
 * dependent; its stores are microcoded on Zen). Every lane's sum is independent of the others,
 * so a lane may repeat another one's work (the same FMAs on the same values, the same result):
 *   - row kernel, n >= L (lanes): the last vector is columns n - L..n - 1, read from B and
 *     written to C with full vectors; when L does not divide n it overlaps the one before, and
 *     the shared columns are written twice with the same value;
 *   - row kernel, n < L: B's rows read with loads of exactly n elements where one instruction
 *     does it (1, 2 doubles; 1, 2, 4 floats), else copied once per call, zero-padded to L, into
 *     PARML_AVX2_SKINNY_KB rows on the stack (for a longer k one heap block; failing that, blocks
 *     of KB steps, the sums of a later block going on from C's values). Loads per step instead
 *     measured slower for m = 256 (pieces chosen by n: up to 1.35x for floats; two overlapping
 *     loads and a shuffle: 1.05x); the copy costs ~0.06 us per 128 rows of B and call (1.25x for
 *     m = 8, one pass). C's last vector is stored in exact-size pieces;
 *   - column kernel: a last block of fewer than RV L rows loads vector v from rows
 *     min(v L, rows - L) (reaching back into the block before when rows < L); only for m < L are
 *     A's rows read with two overlapping loads of h = 1, 2 or 4 elements (lanes remapped when the
 *     tile is written out). The A vectors are held in registers (an empty asm): GCC otherwise
 *     reloaded each one for every FMA using it, which cost 1.5x for n = 2. */
#define PARML_AVX2_SKINNY_W_D 12
#define PARML_AVX2_SKINNY_W_S 16

#ifndef PARML_AVX2_SKINNY_KB
#define PARML_AVX2_SKINNY_KB 256   /* rows of the zero-padded copy of B on the stack (8 KiB) */
#endif

/* p[0..r-1] in lanes 0..r-1, the other lanes +0.0, with exact-size loads (avx2_parts.h):
 * _part: 1 <= r < lanes; _load: any r (r >= lanes: a full load; r <= 0: zero). */
PARML_AVX2_TARGET static inline __m256 parml_skinny_part_s(const float *p, int r)
{
    return r >= 4 ? _mm256_set_m128(parml_avx2_part4_s(p + 4, r - 4), _mm_loadu_ps(p))
                  : _mm256_set_m128(_mm_setzero_ps(), parml_avx2_part4_s(p, r));
}
PARML_AVX2_TARGET static inline __m256d parml_skinny_load_d(const double *p, int r)
{
    return r >= 4 ? _mm256_loadu_pd(p) : r <= 0 ? _mm256_setzero_pd() : parml_avx2_part_d(p, r);
}
PARML_AVX2_TARGET static inline __m256 parml_skinny_load_s(const float *p, int r)
{
    return r >= 8 ? _mm256_loadu_ps(p) : r <= 0 ? _mm256_setzero_ps() : parml_skinny_part_s(p, r);
}

/* The column kernel's m < lanes rows p[0..m-1], with two loads of h elements (h = 4, 2 or 1: the
 * largest power of two <= m, at most half a vector): rows 0..h-1 in lanes 0..h-1, rows m-h..m-1
 * in lanes h..2h-1 (overlapping when m < 2h), the other lanes zero. */
PARML_AVX2_TARGET static inline __m256d parml_skinny_col_d(const double *p, int m)
{
    if (m >= 2) return _mm256_set_m128d(_mm_loadu_pd(p + m - 2), _mm_loadu_pd(p));
    return _mm256_set_m128d(_mm_setzero_pd(), _mm_load_sd(p));
}
PARML_AVX2_TARGET static inline __m256 parml_skinny_col_s(const float *p, int m)
{
    if (m >= 4) return _mm256_set_m128(_mm_loadu_ps(p + m - 4), _mm_loadu_ps(p));
    if (m >= 2)
        return _mm256_set_m128(
            _mm_setzero_ps(),
            _mm_castpd_ps(_mm_unpacklo_pd(_mm_castsi128_pd(_mm_loadl_epi64((const __m128i *)p)),
                                          _mm_castsi128_pd(_mm_loadl_epi64(
                                              (const __m128i *)(p + m - 2))))));
    return _mm256_set_m128(_mm_setzero_ps(), _mm_load_ss(p));
}

PARML_AVX2_TARGET static inline void parml_skinny_store_s(float *c, __m256 v, int r)
{
    if (r >= 8) {
        _mm256_storeu_ps(c, v);
        return;
    }
    __m128 x = _mm256_castps256_ps128(v);
    if (r & 4) {
        _mm_storeu_ps(c, x);
        x = _mm256_extractf128_ps(v, 1);
        c += 4;
    }
    if (r & 2) {
        _mm_storel_epi64((__m128i *)c, _mm_castps_si128(x));
        x = _mm_movehl_ps(x, x);
        c += 2;
    }
    if (r & 1) _mm_store_ss(c, x);
}

/* Row kernel, one pass: rows 0..r-1 (r <= R) of A from a. Vectors v < NV - 1: columns v L..v L +
 * L - 1 of B (from b) and C; the last vector: LASTB(bl + p rs_bl) (a full load, or one of exactly
 * 1, 2 or 4 elements), its lanes 0..nl-1 stored to columns cl..cl + nl - 1 of C. from_c (only
 * where FROMC): the sums start from C's values instead of zero. */
#define PARML_DEFINE_AVX2_SKINNY_ROWS(T, VEC, L, SUF, BCAST, LOADP, LASTB, STORE, NV, R, FROMC,    \
                                      NAME)                                                        \
    PARML_AVX2_TARGET static void NAME(ptrdiff_t r, ptrdiff_t k, const T *PARML_RESTRICT a,       \
                                       ptrdiff_t rs_a, ptrdiff_t cs_a, const T *PARML_RESTRICT b,  \
                                       ptrdiff_t rs_b, const T *PARML_RESTRICT bl,                 \
                                       ptrdiff_t rs_bl, T *PARML_RESTRICT c, ptrdiff_t rs_c,       \
                                       ptrdiff_t cl, int nl, int from_c)                           \
    {                                                                                              \
        const T *row[R];                                                                           \
        VEC acc[R][NV];                                                                            \
        _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i)                                       \
        {   /* rows past r repeat the last row: computed, never stored */                          \
            row[i] = a + (i < r ? i : r - 1) * rs_a;                                               \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; ++v)                                   \
                acc[i][v] = _mm256_setzero_##SUF();                                                \
        }                                                                                          \
        if (FROMC && from_c)                                                                       \
            _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i)                                   \
            {                                                                                      \
                if (i >= r) break;                                                                 \
                const T *ci = c + i * rs_c;                                                        \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV - 1; ++v)                           \
                    acc[i][v] = _mm256_loadu_##SUF(ci + v * L);                                    \
                acc[i][NV - 1] = LOADP(ci + cl, nl);                                               \
            }                                                                                      \
        for (ptrdiff_t p = 0; p < k; ++p) {                                                        \
            const T *bp = b + p * rs_b;                                                            \
            VEC bv[NV];                                                                            \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV - 1; ++v)                               \
                bv[v] = _mm256_loadu_##SUF(bp + v * L);                                            \
            bv[NV - 1] = LASTB(bl + p * rs_bl);                                                    \
            const ptrdiff_t off = p * cs_a;                                                        \
            _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i)                                   \
            {                                                                                      \
                const VEC ai = BCAST(row[i] + off);                                                \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; ++v)                               \
                    acc[i][v] = _mm256_fmadd_##SUF(ai, bv[v], acc[i][v]);                          \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i)                                       \
        {                                                                                          \
            if (i >= r) break;                                                                     \
            T *ci = c + i * rs_c;                                                                  \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV - 1; ++v)                               \
                _mm256_storeu_##SUF(ci + v * L, acc[i][v]);                                        \
            STORE(ci + cl, acc[i][NV - 1], nl);                                                    \
        }                                                                                          \
    }

/* Column kernel: all m rows, A[i, p] at a[i + p cs_a], exactly NB columns. LOADA(..., v) gives
 * row vector v of the current p. */
#define PARML_SKINNY_COLS_STEP(T, VEC, L, SUF, BCAST, PART, NB, RV, LOADA)                         \
    for (ptrdiff_t p = 0; p < k; ++p, ap += cs_a, bp += rs_b) {                                    \
        VEC av[RV];                                                                                \
        _Pragma("GCC unroll 16") for (int v = 0; v < RV; ++v)                                      \
        {   /* in a register: GCC would otherwise load it again for each of the NB FMAs */        \
            av[v] = LOADA(SUF, L, PART, v);                                                        \
            if (NB > 1) __asm__("" : "+x"(av[v]));                                                 \
        }                                                                                          \
        _Pragma("GCC unroll 16") for (int j = 0; j < NB; ++j)                                      \
        {                                                                                          \
            const VEC bj = BCAST(bp + j);                                                          \
            _Pragma("GCC unroll 16") for (int v = 0; v < RV; ++v)                                  \
                acc[v][j] = _mm256_fmadd_##SUF(av[v], bj, acc[v][j]);                              \
        }                                                                                          \
    }

#define PARML_DEFINE_AVX2_SKINNY_COLS(T, VEC, L, SUF, BCAST, PART, NB, RV, NAME)                   \
    PARML_AVX2_TARGET static void NAME(ptrdiff_t m, ptrdiff_t k, const T *PARML_RESTRICT a,       \
                                       ptrdiff_t cs_a, const T *PARML_RESTRICT b, ptrdiff_t rs_b,  \
                                       T *PARML_RESTRICT c, ptrdiff_t rs_c)                        \
    {                                                                                              \
        for (ptrdiff_t i0 = 0; i0 < m; i0 += RV * L) {                                             \
            const ptrdiff_t rows = m - i0 < RV * L ? m - i0 : RV * L;                              \
            VEC acc[RV][NB];                                                                       \
            _Pragma("GCC unroll 16") for (int v = 0; v < RV; ++v)                                  \
                _Pragma("GCC unroll 16") for (int j = 0; j < NB; ++j)                              \
                    acc[v][j] = _mm256_setzero_##SUF();                                            \
            const T *ap = a + i0, *bp = b;                                                         \
            T tile[NB][RV * L];                                                                    \
            ptrdiff_t sh = 0; /* row i of the block is tile row i + sh */                          \
            if (rows == RV * L) {                                                                  \
                PARML_SKINNY_COLS_STEP(T, VEC, L, SUF, BCAST, PART, NB, RV,                        \
                                       PARML_SKINNY_LOADA_FULL)                                    \
                _Pragma("GCC unroll 16") for (int v = 0; v < RV; ++v)                              \
                    _Pragma("GCC unroll 16") for (int j = 0; j < NB; ++j)                          \
                        _mm256_storeu_##SUF(tile[j] + v * L, acc[v][j]);                           \
            } else if (m >= L) { /* the last rows: vector v holds rows off[v] = min(v L, rows -   \
                      * L) of the block (< 0 when rows < L: rows of the block before); overlaps  \
                      * get the same values */                                                    \
                ptrdiff_t off[RV];                                                                 \
                _Pragma("GCC unroll 16") for (int v = 0; v < RV; ++v)                              \
                    off[v] = v * L < rows - L ? v * L : rows - L;                                  \
                PARML_SKINNY_COLS_STEP(T, VEC, L, SUF, BCAST, PART, NB, RV,                        \
                                       PARML_SKINNY_LOADA_OFF)                                     \
                if (rows < L) sh = L - rows;                                                       \
                _Pragma("GCC unroll 16") for (int v = 0; v < RV; ++v)                              \
                    _Pragma("GCC unroll 16") for (int j = 0; j < NB; ++j)                          \
                        _mm256_storeu_##SUF(tile[j] + off[v] + sh, acc[v][j]);                     \
            } else { /* m < L: vector 0 holds rows 0..h-1 in lanes 0..h-1 and rows m-h..m-1 in    \
                      * lanes h..2h-1 (PART: parml_skinny_col_*), the others zero */              \
                PARML_SKINNY_COLS_STEP(T, VEC, L, SUF, BCAST, PART, NB, RV,                        \
                                       PARML_SKINNY_LOADA_PART)                                    \
                _Pragma("GCC unroll 16") for (int v = 0; v < RV; ++v)                              \
                    _Pragma("GCC unroll 16") for (int j = 0; j < NB; ++j)                          \
                        _mm256_storeu_##SUF(tile[j] + v * L, acc[v][j]);                           \
                const int h = L == 8 && m >= 4 ? 4 : m >= 2 ? 2 : 1;                               \
                for (ptrdiff_t i = 0; i < m; ++i)                                                  \
                    for (int j = 0; j < NB; ++j)                                                   \
                        c[i * rs_c + j] = tile[j][i < h ? i : i + 2 * h - m];                      \
                continue;                                                                          \
            }                                                                                      \
            if (sh == 0)                                                                           \
                for (ptrdiff_t i = 0; i < rows; ++i)                                               \
                    for (int j = 0; j < NB; ++j) c[(i0 + i) * rs_c + j] = tile[j][i];              \
            else                                                                                   \
                for (ptrdiff_t i = 0; i < rows; ++i)                                               \
                    for (int j = 0; j < NB; ++j) c[(i0 + i) * rs_c + j] = tile[j][i + sh];         \
        }                                                                                          \
    }
#define PARML_SKINNY_LOADA_FULL(SUF, L, PART, v) _mm256_loadu_##SUF(ap + (v) * (L))
#define PARML_SKINNY_LOADA_OFF(SUF, L, PART, v) _mm256_loadu_##SUF(ap + off[v])
#define PARML_SKINNY_LOADA_PART(SUF, L, PART, v)                                                   \
    ((v) == 0 ? PART(ap, (int)m) : _mm256_setzero_##SUF())

/* the last B vector of a row kernel: a full one, or exactly 1, 2 or 4 elements, zero-extended */
#define PARML_SKINNY_LB_pd(q) _mm256_loadu_pd(q)
#define PARML_SKINNY_LB1_pd(q) _mm256_set_m128d(_mm_setzero_pd(), _mm_load_sd(q))
#define PARML_SKINNY_LB2_pd(q) _mm256_set_m128d(_mm_setzero_pd(), _mm_loadu_pd(q))
#define PARML_SKINNY_LB_ps(q) _mm256_loadu_ps(q)
#define PARML_SKINNY_LB1_ps(q) _mm256_set_m128(_mm_setzero_ps(), _mm_load_ss(q))
#define PARML_SKINNY_LB2_ps(q)                                                                     \
    _mm256_set_m128(_mm_setzero_ps(), _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(q))))
#define PARML_SKINNY_LB4_ps(q) _mm256_set_m128(_mm_setzero_ps(), _mm_loadu_ps(q))

#define PARML_SKINNY_ROWS_D(NV, R, LB, FROMC, NAME)                                                \
    PARML_DEFINE_AVX2_SKINNY_ROWS(double, __m256d, 4, pd, _mm256_broadcast_sd,                     \
                                  parml_skinny_load_d, LB, parml_avx2_store_d, NV, R, FROMC, NAME)
#define PARML_SKINNY_ROWS_S(NV, R, LB, FROMC, NAME)                                                \
    PARML_DEFINE_AVX2_SKINNY_ROWS(float, __m256, 8, ps, _mm256_broadcast_ss,                       \
                                  parml_skinny_load_s, LB, parml_skinny_store_s, NV, R, FROMC, NAME)
#define PARML_SKINNY_COLS_D(NB, RV)                                                                \
    PARML_DEFINE_AVX2_SKINNY_COLS(double, __m256d, 4, pd, _mm256_broadcast_sd,                     \
                                  parml_skinny_col_d, NB, RV, parml_skinny_d_avx2_c##NB)
#define PARML_SKINNY_COLS_S(NB, RV)                                                                \
    PARML_DEFINE_AVX2_SKINNY_COLS(float, __m256, 8, ps, _mm256_broadcast_ss,                       \
                                  parml_skinny_col_s, NB, RV, parml_skinny_s_avx2_c##NB)

PARML_SKINNY_ROWS_D(1, 8, PARML_SKINNY_LB_pd, 1, parml_skinny_d_avx2_r1)
PARML_SKINNY_ROWS_D(2, 6, PARML_SKINNY_LB_pd, 0, parml_skinny_d_avx2_r2)
PARML_SKINNY_ROWS_D(3, 4, PARML_SKINNY_LB_pd, 0, parml_skinny_d_avx2_r3)
PARML_SKINNY_ROWS_D(1, 8, PARML_SKINNY_LB1_pd, 0, parml_skinny_d_avx2_r1e1)
PARML_SKINNY_ROWS_D(1, 8, PARML_SKINNY_LB2_pd, 0, parml_skinny_d_avx2_r1e2)
PARML_SKINNY_ROWS_S(1, 8, PARML_SKINNY_LB_ps, 1, parml_skinny_s_avx2_r1)
PARML_SKINNY_ROWS_S(2, 6, PARML_SKINNY_LB_ps, 0, parml_skinny_s_avx2_r2)
PARML_SKINNY_ROWS_S(1, 8, PARML_SKINNY_LB1_ps, 0, parml_skinny_s_avx2_r1e1)
PARML_SKINNY_ROWS_S(1, 8, PARML_SKINNY_LB2_ps, 0, parml_skinny_s_avx2_r1e2)
PARML_SKINNY_ROWS_S(1, 8, PARML_SKINNY_LB4_ps, 0, parml_skinny_s_avx2_r1e4)

PARML_SKINNY_COLS_D(1, 8)
PARML_SKINNY_COLS_D(2, 4)
PARML_SKINNY_COLS_D(3, 3)
PARML_SKINNY_COLS_D(4, 3)
PARML_SKINNY_COLS_D(5, 2)
PARML_SKINNY_COLS_D(6, 2)
PARML_SKINNY_COLS_D(9, 1)
PARML_SKINNY_COLS_D(10, 1)
PARML_SKINNY_COLS_S(1, 8)
PARML_SKINNY_COLS_S(2, 4)
PARML_SKINNY_COLS_S(3, 3)
PARML_SKINNY_COLS_S(4, 3)
PARML_SKINNY_COLS_S(5, 2)
PARML_SKINNY_COLS_S(6, 2)
PARML_SKINNY_COLS_S(7, 1)
PARML_SKINNY_COLS_S(8, 1)
PARML_SKINNY_COLS_S(9, 1)
PARML_SKINNY_COLS_S(10, 1)
PARML_SKINNY_COLS_S(11, 1)
PARML_SKINNY_COLS_S(12, 1)
PARML_SKINNY_COLS_S(13, 1)
PARML_SKINNY_COLS_S(14, 1)

typedef void (*parml_skinny_rows_d_avx2_fn)(ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t,
                                            ptrdiff_t, const double *, ptrdiff_t, const double *,
                                            ptrdiff_t, double *, ptrdiff_t, ptrdiff_t, int, int);
typedef void (*parml_skinny_rows_s_avx2_fn)(ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t,
                                            ptrdiff_t, const float *, ptrdiff_t, const float *,
                                            ptrdiff_t, float *, ptrdiff_t, ptrdiff_t, int, int);
typedef void (*parml_skinny_cols_d_avx2_fn)(ptrdiff_t, ptrdiff_t, const double *, ptrdiff_t,
                                            const double *, ptrdiff_t, double *, ptrdiff_t);
typedef void (*parml_skinny_cols_s_avx2_fn)(ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t,
                                            const float *, ptrdiff_t, float *, ptrdiff_t);

/* Column kernels by n (0: use the row kernel) */
static const parml_skinny_cols_d_avx2_fn parml_skinny_cols_d_avx2[PARML_AVX2_SKINNY_W_D + 1] = {
    0, parml_skinny_d_avx2_c1, parml_skinny_d_avx2_c2, parml_skinny_d_avx2_c3,
    parml_skinny_d_avx2_c4, parml_skinny_d_avx2_c5, parml_skinny_d_avx2_c6, 0, 0,
    parml_skinny_d_avx2_c9, parml_skinny_d_avx2_c10, 0, 0};
static const parml_skinny_cols_s_avx2_fn parml_skinny_cols_s_avx2[PARML_AVX2_SKINNY_W_S + 1] = {
    0, parml_skinny_s_avx2_c1, parml_skinny_s_avx2_c2, parml_skinny_s_avx2_c3,
    parml_skinny_s_avx2_c4, parml_skinny_s_avx2_c5, parml_skinny_s_avx2_c6,
    parml_skinny_s_avx2_c7, parml_skinny_s_avx2_c8, parml_skinny_s_avx2_c9,
    parml_skinny_s_avx2_c10, parml_skinny_s_avx2_c11, parml_skinny_s_avx2_c12,
    parml_skinny_s_avx2_c13, parml_skinny_s_avx2_c14, 0, 0};

/* C[m, n] = A.B for 1 <= n <= PARML_AVX2_SKINNY_W_D (parml_skinny_d_fn) */
PARML_AVX2_TARGET static void parml_skinny_d_avx2(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                                  const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a,
                                                  const double *b, ptrdiff_t rs_b, double *c,
                                                  ptrdiff_t rs_c)
{
    if (m <= 0 || n <= 0 || n > PARML_AVX2_SKINNY_W_D) return;
    if (rs_a == 1 && parml_skinny_cols_d_avx2[n] != 0) {
        parml_skinny_cols_d_avx2[n](m, k, a, cs_a, b, rs_b, c, rs_c);
        return;
    }
    const int nv = (int)((n + 3) / 4);
    const int R = nv == 1 ? 8 : nv == 2 ? 6 : 4;
    const parml_skinny_rows_d_avx2_fn f = nv == 1   ? parml_skinny_d_avx2_r1
                                          : nv == 2 ? parml_skinny_d_avx2_r2
                                                    : parml_skinny_d_avx2_r3;
    if (n >= 4) {   /* last vector: columns n - 4..n - 1 */
        for (ptrdiff_t i0 = 0; i0 < m; i0 += R)
            f(m - i0 < R ? m - i0 : R, k, a + i0 * rs_a, rs_a, cs_a, b, rs_b, b + (n - 4), rs_b,
              c + i0 * rs_c, rs_c, n - 4, 4, 0);
        return;
    }
    if (n <= 2) {   /* B's rows read with loads of exactly n elements */
        const parml_skinny_rows_d_avx2_fn fe = n == 1 ? parml_skinny_d_avx2_r1e1
                                                      : parml_skinny_d_avx2_r1e2;
        for (ptrdiff_t i0 = 0; i0 < m; i0 += R)
            fe(m - i0 < R ? m - i0 : R, k, a + i0 * rs_a, rs_a, cs_a, b, rs_b, b, rs_b,
               c + i0 * rs_c, rs_c, 0, (int)n, 0);
        return;
    }
    /* n == 3: B's rows zero-padded to 4, on the stack, or for k > KB in one heap block (failing
     * that, blocks of KB rows: the sums of a later block go on from C's values) */
    double stk[PARML_AVX2_SKINNY_KB * 4] __attribute__((aligned(32)));
    double *heap = k > PARML_AVX2_SKINNY_KB
                       ? (double *)aligned_alloc(32, (size_t)k * 4 * sizeof(double)) : NULL;
    double *bpad = heap != NULL ? heap : stk;
    const ptrdiff_t kb = heap != NULL ? k : PARML_AVX2_SKINNY_KB;
    ptrdiff_t p0 = 0;
    do {   /* k == 0 still stores the zero sums */
        const ptrdiff_t kc = k - p0 < kb ? k - p0 : kb;
        for (ptrdiff_t p = 0; p < kc; ++p)
            _mm256_storeu_pd(bpad + 4 * p, parml_avx2_part_d(b + (p0 + p) * rs_b, 3));
        for (ptrdiff_t i0 = 0; i0 < m; i0 += R)
            f(m - i0 < R ? m - i0 : R, kc, a + i0 * rs_a + p0 * cs_a, rs_a, cs_a, bpad, 4, bpad, 4,
              c + i0 * rs_c, rs_c, 0, 3, p0 > 0);
        p0 += kc;
    } while (p0 < k);
    free(heap);
}

/* B's rows p0..p0 + kc - 1, their first N (3, 5, 6, 7) floats, zero-padded to 8 */
PARML_AVX2_TARGET static inline void parml_skinny_pad_s(float *dst, const float *b, ptrdiff_t rs_b,
                                                        ptrdiff_t kc, int N)
{
    for (ptrdiff_t p = 0; p < kc; ++p)
        _mm256_storeu_ps(dst + 8 * p, parml_skinny_part_s(b + p * rs_b, N));
}

/* C[m, n] = A.B for 1 <= n <= PARML_AVX2_SKINNY_W_S (parml_skinny_s_fn) */
PARML_AVX2_TARGET static void parml_skinny_s_avx2(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                                  const float *a, ptrdiff_t rs_a, ptrdiff_t cs_a,
                                                  const float *b, ptrdiff_t rs_b, float *c,
                                                  ptrdiff_t rs_c)
{
    if (m <= 0 || n <= 0 || n > PARML_AVX2_SKINNY_W_S) return;
    if (rs_a == 1 && parml_skinny_cols_s_avx2[n] != 0) {
        parml_skinny_cols_s_avx2[n](m, k, a, cs_a, b, rs_b, c, rs_c);
        return;
    }
    const int nv = (int)((n + 7) / 8);
    const int R = nv == 1 ? 8 : 6;
    const parml_skinny_rows_s_avx2_fn f = nv == 1 ? parml_skinny_s_avx2_r1 : parml_skinny_s_avx2_r2;
    if (n >= 8) {   /* last vector: columns n - 8..n - 1 */
        for (ptrdiff_t i0 = 0; i0 < m; i0 += R)
            f(m - i0 < R ? m - i0 : R, k, a + i0 * rs_a, rs_a, cs_a, b, rs_b, b + (n - 8), rs_b,
              c + i0 * rs_c, rs_c, n - 8, 8, 0);
        return;
    }
    if (n == 1 || n == 2 || n == 4) {   /* B's rows read with loads of exactly n elements */
        const parml_skinny_rows_s_avx2_fn fe = n == 1   ? parml_skinny_s_avx2_r1e1
                                               : n == 2 ? parml_skinny_s_avx2_r1e2
                                                        : parml_skinny_s_avx2_r1e4;
        for (ptrdiff_t i0 = 0; i0 < m; i0 += R)
            fe(m - i0 < R ? m - i0 : R, k, a + i0 * rs_a, rs_a, cs_a, b, rs_b, b, rs_b,
               c + i0 * rs_c, rs_c, 0, (int)n, 0);
        return;
    }
    /* n = 3, 5, 6, 7: B's rows zero-padded to 8, as for doubles */
    float stk[PARML_AVX2_SKINNY_KB * 8] __attribute__((aligned(32)));
    float *heap = k > PARML_AVX2_SKINNY_KB
                      ? (float *)aligned_alloc(32, (size_t)k * 8 * sizeof(float)) : NULL;
    float *bpad = heap != NULL ? heap : stk;
    const ptrdiff_t kb = heap != NULL ? k : PARML_AVX2_SKINNY_KB;
    ptrdiff_t p0 = 0;
    do {   /* k == 0 still stores the zero sums */
        const ptrdiff_t kc = k - p0 < kb ? k - p0 : kb;
        const float *bp = b + p0 * rs_b;
        switch (n) {   /* constant N: a copy loop without branches */
        case 3: parml_skinny_pad_s(bpad, bp, rs_b, kc, 3); break;
        case 5: parml_skinny_pad_s(bpad, bp, rs_b, kc, 5); break;
        case 6: parml_skinny_pad_s(bpad, bp, rs_b, kc, 6); break;
        default: parml_skinny_pad_s(bpad, bp, rs_b, kc, 7); break;
        }
        for (ptrdiff_t i0 = 0; i0 < m; i0 += R)
            f(m - i0 < R ? m - i0 : R, kc, a + i0 * rs_a + p0 * cs_a, rs_a, cs_a, bpad, 8, bpad, 8,
              c + i0 * rs_c, rs_c, 0, (int)n, p0 > 0);
        p0 += kc;
    } while (p0 < k);
    free(heap);
}

#endif /* PARML_X86 */
#endif
