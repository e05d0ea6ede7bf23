/* AArch64 Advanced SIMD (NEON) micro-kernels: baseline on every AArch64 CPU, so no target
 * attribute and no run-time check; the file is empty elsewhere.
 *
 * Register tile: MR = 8 rows x NR = 3 vectors (6 doubles / 12 floats), for the 32 128-bit
 * registers: 24 accumulators + 3 for the B row + the A column as vectors (4 for double, 2 for
 * float) = 31 / 29. A is loaded as whole vectors and each row's element is taken by lane in the
 * FMA (fmla by element), so broadcasts cost nothing: per step of k, 7 (double) or 5 (float) vector
 * loads feed 24 FMAs, 24 independent chains, enough for 4 FMA pipes of latency 4. (6 x 4 vectors
 * would need the same registers for no more reuse; 8 x 3 keeps the vector dimension, the one with
 * ragged edges, short.) Edge tiles go through a scratch tile. */
#ifndef PARML_GEMM_UKR_NEON_H
#define PARML_GEMM_UKR_NEON_H

#include "gemm_ukr.h"
#include "cpu_features.h"

#if PARML_ARM64
#include <arm_neon.h>

#define PARML_D128_MR 8
#define PARML_D128_NR 6
#define PARML_S128_MR 8
#define PARML_S128_NR 12

/* Blocks for 64-128 KiB L1d, 1-2 MiB L2 (Neoverse N1/V1/V2, Apple M): a KC x NR panel of B
 * (12 KiB double, 24 KiB float) plus the streamed A micro-panel (16 KiB) fit L1; the MC x KC
 * block of A (384 KiB) about a third of a 1 MiB L2. MC is a multiple of MR and NC of NR, so
 * blocks leave no ragged tiles of their own. */
#define PARML_NEON_KC_D 256
#define PARML_NEON_MC_D 192
#define PARML_NEON_NC_D 2040
#define PARML_NEON_KC_S 512
#define PARML_NEON_MC_S 192
#define PARML_NEON_NC_S 2040

/* Row i of the tile reads lane l of A vector av; X(S, V, i, av, l) is applied to each row. */
#define PARML_NEON_ROWS_D(X, S, V)                                                                 \
    X(S, V, 0, a0, 0) X(S, V, 1, a0, 1) X(S, V, 2, a1, 0) X(S, V, 3, a1, 1)                        \
    X(S, V, 4, a2, 0) X(S, V, 5, a2, 1) X(S, V, 6, a3, 0) X(S, V, 7, a3, 1)
#define PARML_NEON_ROWS_S(X, S, V)                                                                 \
    X(S, V, 0, a0, 0) X(S, V, 1, a0, 1) X(S, V, 2, a0, 2) X(S, V, 3, a0, 3)                        \
    X(S, V, 4, a1, 0) X(S, V, 5, a1, 1) X(S, V, 6, a1, 2) X(S, V, 7, a1, 3)
#define PARML_NEON_LOADA_D                                                                         \
    const float64x2_t a0 = vld1q_f64(a), a1 = vld1q_f64(a + 2), a2 = vld1q_f64(a + 4),             \
                      a3 = vld1q_f64(a + 6);
#define PARML_NEON_LOADA_S const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);

/* Named accumulators (not arrays) keep the lane indices literal, which the intrinsics need at
 * -O0 too. */
#define PARML_NEON_ZERO(S, V, i, av, l)                                                            \
    V c##i##_0 = vdupq_n_##S(0), c##i##_1 = vdupq_n_##S(0), c##i##_2 = vdupq_n_##S(0);
#define PARML_NEON_FMA(S, V, i, av, l)                                                             \
    c##i##_0 = vfmaq_laneq_##S(c##i##_0, b0, av, l);                                               \
    c##i##_1 = vfmaq_laneq_##S(c##i##_1, b1, av, l);                                               \
    c##i##_2 = vfmaq_laneq_##S(c##i##_2, b2, av, l);
#define PARML_NEON_ADDC(S, V, i, av, l)                                                            \
    c##i##_0 = vaddq_##S(c##i##_0, vld1q_##S(c + i * rs_c));                                       \
    c##i##_1 = vaddq_##S(c##i##_1, vld1q_##S(c + i * rs_c + L));                                   \
    c##i##_2 = vaddq_##S(c##i##_2, vld1q_##S(c + i * rs_c + 2 * L));
#define PARML_NEON_STC(S, V, i, av, l)                                                             \
    vst1q_##S(c + i * rs_c, c##i##_0);                                                             \
    vst1q_##S(c + i * rs_c + L, c##i##_1);                                                         \
    vst1q_##S(c + i * rs_c + 2 * L, c##i##_2);
#define PARML_NEON_STTILE(S, V, i, av, l)                                                          \
    vst1q_##S(tile + i * 3 * L, c##i##_0);                                                         \
    vst1q_##S(tile + i * 3 * L + L, c##i##_1);                                                     \
    vst1q_##S(tile + i * 3 * L + 2 * L, c##i##_2);

/* T: element, V: vector type, S: intrinsic suffix, W: lanes, ROWS/LOADA: the tile's row map. */
#define PARML_DEFINE_NEON_UKR(T, V, S, W, ROWS, LOADA, NAME)                                       \
    static void NAME(ptrdiff_t k, const T *PARML_RESTRICT a, const T *PARML_RESTRICT b,            \
                     ptrdiff_t rs_b, T *PARML_RESTRICT c, ptrdiff_t rs_c, int mr, int nr,          \
                     int accumulate)                                                               \
    {                                                                                              \
        enum { L = W, MR = 8 };                                                                    \
        PARML_PREFETCH_C_TILE(c, rs_c, mr, nr)                                                     \
        ROWS(PARML_NEON_ZERO, S, V)                                                                \
        for (ptrdiff_t p = k; p > 0; --p) {                                                        \
            const V b0 = vld1q_##S(b), b1 = vld1q_##S(b + L), b2 = vld1q_##S(b + 2 * L);           \
            LOADA                                                                                  \
            ROWS(PARML_NEON_FMA, S, V)                                                             \
            a += MR;                                                                               \
            b += rs_b;                                                                             \
        }                                                                                          \
        if (mr == MR && nr == 3 * L) {                                                             \
            if (accumulate) {                                                                      \
                ROWS(PARML_NEON_ADDC, S, V)                                                        \
            }                                                                                      \
            ROWS(PARML_NEON_STC, S, V)                                                             \
        } else {                                                                                   \
            T tile[MR * 3 * L];                                                                    \
            ROWS(PARML_NEON_STTILE, S, V)                                                          \
            PARML_TILE_TO_C(T, c, rs_c, tile, 3 * L, mr, nr, accumulate)                           \
        }                                                                                          \
    }

PARML_DEFINE_NEON_UKR(double, float64x2_t, f64, 2, PARML_NEON_ROWS_D, PARML_NEON_LOADA_D,
                      parml_ukr_d_neon)
PARML_DEFINE_NEON_UKR(float, float32x4_t, f32, 4, PARML_NEON_ROWS_S, PARML_NEON_LOADA_S,
                      parml_ukr_s_neon)

/* Skinny products, n <= W: A read in place through its strides (one element per row and step,
 * used by element in the FMA), B's row as NV vectors, R rows of C at a time: R x NV accumulators
 * + NV B vectors + R A elements <= 32 registers, since GCC issues all R A loads first (with 12
 * rows at NV = 2 it spilled accumulators in the k loop). Loads and stores never pass column n: for n >= lanes the last vector is the one
 * ending at column n (it overlaps the one before, and the overlapped columns get the same sums),
 * and n < lanes has its own partial-vector variants. Rows past m repeat the last row: computed,
 * never stored. Each element is summed over p in increasing order from zero. */
#define PARML_NEON_SKINNY_W_D 8
#define PARML_NEON_SKINNY_W_S 16

#define PARML_DEFINE_NEON_SKINNY(T, V, S, L, NV, R, LOADLAST, STORELAST, NAME)                     \
    static void NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *PARML_RESTRICT a,             \
                     ptrdiff_t rs_a, ptrdiff_t cs_a, const T *PARML_RESTRICT b, ptrdiff_t rs_b,    \
                     T *PARML_RESTRICT c, ptrdiff_t rs_c)                                          \
    {                                                                                              \
        const ptrdiff_t last = n - L; /* column of the last vector, when n >= L */                 \
        (void)last;                                                                                \
        for (ptrdiff_t i0 = 0; i0 < m; i0 += R) {                                                  \
            const ptrdiff_t r = m - i0 < R ? m - i0 : R;                                           \
            const T *row[R];                                                                       \
            V acc[R][NV];                                                                          \
            _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i)                                   \
            {                                                                                      \
                row[i] = a + (i0 + (i < r ? i : r - 1)) * rs_a;                                    \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[i][v] = vdupq_n_##S(0);   \
            }                                                                                      \
            const T *bp = b;                                                                       \
            for (ptrdiff_t p = 0; p < k; ++p, bp += rs_b) {                                        \
                V bv[NV];                                                                          \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV - 1; ++v)                           \
                    bv[v] = vld1q_##S(bp + v * L);                                                 \
                bv[NV - 1] = LOADLAST(bp);                                                         \
                const ptrdiff_t off = p * cs_a;                                                    \
                _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i)                               \
                {                                                                                  \
                    const T ai = row[i][off];                                                      \
                    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v)                           \
                        acc[i][v] = vfmaq_n_##S(acc[i][v], bv[v], ai);                             \
                }                                                                                  \
            }                                                                                      \
            _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i)                                   \
            {                                                                                      \
                if (i >= r) break;                                                                 \
                T *ci = c + (i0 + i) * rs_c;                                                       \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV - 1; ++v)                           \
                    vst1q_##S(ci + v * L, acc[i][v]);                                              \
                STORELAST(ci, acc[i][NV - 1]);                                                     \
            }                                                                                      \
        }                                                                                          \
    }

/* last vector ending at column n */
#define PARML_NEON_LD_END_D(p) vld1q_f64((p) + last)
#define PARML_NEON_ST_END_D(q, x) vst1q_f64((q) + last, (x))
#define PARML_NEON_LD_END_S(p) vld1q_f32((p) + last)
#define PARML_NEON_ST_END_S(q, x) vst1q_f32((q) + last, (x))
/* n < lanes: the first n lanes, zero above */
#define PARML_NEON_LD1_D(p) vcombine_f64(vld1_f64(p), vdup_n_f64(0))
#define PARML_NEON_ST1_D(q, x) vst1q_lane_f64((q), (x), 0)
#define PARML_NEON_LD1_S(p) vld1q_lane_f32((p), vdupq_n_f32(0), 0)
#define PARML_NEON_ST1_S(q, x) vst1q_lane_f32((q), (x), 0)
#define PARML_NEON_LD2_S(p) vcombine_f32(vld1_f32(p), vdup_n_f32(0))
#define PARML_NEON_ST2_S(q, x) vst1_f32((q), vget_low_f32(x))
#define PARML_NEON_LD3_S(p) vld1q_lane_f32((p) + 2, PARML_NEON_LD2_S(p), 2)
#define PARML_NEON_ST3_S(q, x) (vst1_f32((q), vget_low_f32(x)), vst1q_lane_f32((q) + 2, (x), 2))

/*                        T       V            S    L  NV R   last-vector load / store */
PARML_DEFINE_NEON_SKINNY(double, float64x2_t, f64, 2, 1, 12, PARML_NEON_LD1_D, PARML_NEON_ST1_D,
                         parml_skinny_d_neon_p1)
PARML_DEFINE_NEON_SKINNY(double, float64x2_t, f64, 2, 1, 12, PARML_NEON_LD_END_D,
                         PARML_NEON_ST_END_D, parml_skinny_d_neon_v1)
PARML_DEFINE_NEON_SKINNY(double, float64x2_t, f64, 2, 2, 8, PARML_NEON_LD_END_D,
                         PARML_NEON_ST_END_D, parml_skinny_d_neon_v2)
PARML_DEFINE_NEON_SKINNY(double, float64x2_t, f64, 2, 3, 6, PARML_NEON_LD_END_D,
                         PARML_NEON_ST_END_D, parml_skinny_d_neon_v3)
PARML_DEFINE_NEON_SKINNY(double, float64x2_t, f64, 2, 4, 5, PARML_NEON_LD_END_D,
                         PARML_NEON_ST_END_D, parml_skinny_d_neon_v4)
PARML_DEFINE_NEON_SKINNY(float, float32x4_t, f32, 4, 1, 12, PARML_NEON_LD1_S, PARML_NEON_ST1_S,
                         parml_skinny_s_neon_p1)
PARML_DEFINE_NEON_SKINNY(float, float32x4_t, f32, 4, 1, 12, PARML_NEON_LD2_S, PARML_NEON_ST2_S,
                         parml_skinny_s_neon_p2)
PARML_DEFINE_NEON_SKINNY(float, float32x4_t, f32, 4, 1, 12, PARML_NEON_LD3_S, PARML_NEON_ST3_S,
                         parml_skinny_s_neon_p3)
PARML_DEFINE_NEON_SKINNY(float, float32x4_t, f32, 4, 1, 12, PARML_NEON_LD_END_S,
                         PARML_NEON_ST_END_S, parml_skinny_s_neon_v1)
PARML_DEFINE_NEON_SKINNY(float, float32x4_t, f32, 4, 2, 8, PARML_NEON_LD_END_S,
                         PARML_NEON_ST_END_S, parml_skinny_s_neon_v2)
PARML_DEFINE_NEON_SKINNY(float, float32x4_t, f32, 4, 3, 6, PARML_NEON_LD_END_S,
                         PARML_NEON_ST_END_S, parml_skinny_s_neon_v3)
PARML_DEFINE_NEON_SKINNY(float, float32x4_t, f32, 4, 4, 5, PARML_NEON_LD_END_S,
                         PARML_NEON_ST_END_S, parml_skinny_s_neon_v4)

/* C[m, n] = A.B for 1 <= n <= PARML_NEON_SKINNY_W_D (parml_skinny_d_fn) */
static void parml_skinny_d_neon(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *a,
                                ptrdiff_t rs_a, ptrdiff_t cs_a, const double *b, ptrdiff_t rs_b,
                                double *c, ptrdiff_t rs_c)
{
    parml_skinny_d_fn f = n <= 1 ? parml_skinny_d_neon_p1
                        : n <= 2 ? parml_skinny_d_neon_v1
                        : n <= 4 ? parml_skinny_d_neon_v2
                        : n <= 6 ? parml_skinny_d_neon_v3
                                 : parml_skinny_d_neon_v4;
    if (n >= 1) f(m, n, k, a, rs_a, cs_a, b, rs_b, c, rs_c);
}

/* C[m, n] = A.B for 1 <= n <= PARML_NEON_SKINNY_W_S (parml_skinny_s_fn) */
static void parml_skinny_s_neon(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a,
                                ptrdiff_t rs_a, ptrdiff_t cs_a, const float *b, ptrdiff_t rs_b,
                                float *c, ptrdiff_t rs_c)
{
    parml_skinny_s_fn f = n <= 1  ? parml_skinny_s_neon_p1
                        : n <= 2  ? parml_skinny_s_neon_p2
                        : n <= 3  ? parml_skinny_s_neon_p3
                        : n <= 4  ? parml_skinny_s_neon_v1
                        : n <= 8  ? parml_skinny_s_neon_v2
                        : n <= 12 ? parml_skinny_s_neon_v3
                                  : parml_skinny_s_neon_v4;
    if (n >= 1) f(m, n, k, a, rs_a, cs_a, b, rs_b, c, rs_c);
}

#endif /* PARML_ARM64 */
#endif
