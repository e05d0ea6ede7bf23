/* parml's C API: the kernels behind the Python package, callable from C and C++.
 *
 *   #include <parml/parml.h>
 *   cc -O2 -fopenmp -I"$(python3 -c 'import parml; print(parml.get_include())')" prog.c -lm -lpthread
 *
 * Header-only: every function is `static`, compiled by the program's own compiler into the
 * translation unit that includes this header (one parml per translation unit: include it in one
 * .c file and call it from there). The kernels, the kernel-set dispatch (PARML_ISA) and the task
 * pool are the very code the Python package compiles; docs/c-api.md has an example.
 *
 * Conventions of every function here:
 *   - Returns PARML_OK (0), or PARML_EINVAL for a bad argument (nothing was written), or
 *     PARML_ENOMEM when a work buffer could not be allocated (nothing was written).
 *   - n_threads: the threads the call may use; <= 0 means OpenMP's count (omp_get_max_threads(),
 *     OMP_NUM_THREADS), 1 when compiled without OpenMP. Work runs on parml's task pool (pool.h):
 *     the calling thread always takes part and never waits for a helper that has not started.
 *   - Determinism: within one kernel set every result is the same sum in the same order for any
 *     n_threads, so results are bitwise identical across thread counts. Two kernel sets may
 *     differ in the last bits (FMA contraction, accumulator count).
 *   - Arrays are the caller's; IN arrays are only read, OUT arrays are only written (INOUT: read
 *     and written). No function keeps a pointer after it returns. Thread-safe: concurrent calls
 *     queue on the pool, one job at a time.
 *   - Data values are not checked (NaN and inf flow through as IEEE arithmetic) except where a
 *     value is used as an index: those are checked and give PARML_EINVAL.
 */
#ifndef PARML_PARML_H
#define PARML_PARML_H

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The kernel headers hold more static helpers than one program calls: no unused warnings. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include "kernel_sets.h"
#include "omp_shim.h"
#include "pool.h"
#include "gemm.h"
#include "elementwise.h"
#include "linear_grad.h"
#include "hist.h"
#include "tree_predict.h"

#define PARML_API_VERSION 1

enum { PARML_OK = 0, PARML_EINVAL = -1, PARML_ENOMEM = -2 };

/* Element types of X in the linear and tree functions. */
enum { PARML_FLOAT64 = 0, PARML_FLOAT32 = 1 };

/* ---- kernel sets -----------------------------------------------------------------------------
 * Ids: PARML_SET_GENERIC, PARML_SET_AVX2, PARML_SET_AVX512, PARML_SET_NEON (kernel_sets.h). The
 * first call of any function below picks the best set this CPU supports, capped by the
 * environment variable PARML_ISA as in Python (a set the CPU lacks: the best set under it). */
static int parml_api_set = -1;

/* The kernel set in use. */
static inline int parml_kernel_set(void)
{
    if (parml_api_set < 0) {
        char name[16] = {0};
        const char *v = getenv("PARML_ISA");
        int status;
        for (size_t i = 0; v != NULL && v[i] != '\0' && i + 1 < sizeof(name); ++i)
            name[i] = (char)tolower((unsigned char)v[i]);
        parml_prefetch_init();
        parml_api_set = parml_set_choose(v != NULL ? name : NULL, &status);
        if (status != PARML_CHOOSE_OK)
            fprintf(stderr, "parml: PARML_ISA=%s %s; using the %s kernel set\n", v,
                    status == PARML_CHOOSE_UNKNOWN
                        ? "is not one of generic, avx2, avx512, neon"
                        : "names a kernel set this CPU or build lacks",
                    parml_set_names[parml_api_set]);
    }
    return parml_api_set;
}

/* Use kernel set `set` from now on: PARML_OK, or PARML_EINVAL when this CPU or build lacks it
 * (the set in use does not change). Not while another thread is inside a parml call. */
static inline int parml_use_kernel_set(int set)
{
    if (set < 0 || set >= PARML_N_SETS || !parml_set_supported(set)) return PARML_EINVAL;
    parml_kernel_set();
    parml_api_set = set;
    return PARML_OK;
}

/* "generic", "avx2", "avx512", "neon"; NULL for an unknown id. */
static inline const char *parml_kernel_set_name(int set)
{
    return set >= 0 && set < PARML_N_SETS ? parml_set_names[set] : NULL;
}

/* The thread count n_threads <= 0 stands for. */
static inline int parml_default_threads(void)
{
    const int n = omp_get_max_threads();
    return n > 0 ? n : 1;
}

static inline int parml_api_threads(int n_threads)
{
    return n_threads > 0 ? n_threads : parml_default_threads();
}

/* ---- GEMM --------------------------------------------------------------------------------
 * C = A B.  A: m x k, element (i, p) at a[i*rs_a + p*cs_a]; B: k x n, element (p, j) at
 * b[p*rs_b + j*cs_b] (any strides, in elements: row-major, column-major or transposed views);
 * C: m x n row-major, element (i, j) at c[i*rs_c + j], rs_c >= n.
 *   IN a, b; OUT c (never read: C is overwritten, not accumulated). C must not overlap A or B.
 *   m, n, k >= 0; k == 0 gives C = 0. Pointers may be NULL only for empty operands.
 * Cache-blocked and packed (gemm_impl.h) with the kernel set's micro-kernel; products of at most
 * PARML_GEMM_DIRECT_MAX_MNK multiply-adds skip packing. Threads split C into rectangles, one per
 * thread (the Python layer additionally chooses the thread count from a calibrated time model;
 * here the caller chooses). Each element of C is the same k-term sum in the same order for any
 * n_threads. */
#define PARML_GEMM_DIRECT_MAX_MNK (24 * 24 * 24)

#define PARML_API_GEMM(T, SFX, IS, KTAB)                                                          \
static inline int parml_gemm_##SFX(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a,          \
                                   ptrdiff_t rs_a, ptrdiff_t cs_a, const T *b, ptrdiff_t rs_b,  \
                                   ptrdiff_t cs_b, T *c, ptrdiff_t rs_c, int n_threads)         \
{                                                                                               \
    if (m < 0 || n < 0 || k < 0 || (m > 0 && n > 0 && (c == NULL || rs_c < n)))                 \
        return PARML_EINVAL;                                                                    \
    if (m > 0 && n > 0 && k > 0 && (a == NULL || b == NULL)) return PARML_EINVAL;               \
    if (m == 0 || n == 0) return PARML_OK;                                                      \
    const int nt = parml_api_threads(n_threads);                                                \
    parml_gemm_args_##IS g;                                                                     \
    g.m = m; g.n = n; g.k = k;                                                                  \
    g.a = a; g.rs_a = rs_a; g.cs_a = cs_a;                                                      \
    g.b = b; g.rs_b = rs_b; g.cs_b = cs_b;                                                      \
    g.c = c; g.rs_c = rs_c;                                                                     \
    const int direct = (double)m * (double)n * (double)k <= PARML_GEMM_DIRECT_MAX_MNK;          \
    return parml_gemm_##IS(&KTAB[parml_kernel_set()], &g, nt, nt, direct,                       \
                           parml_parallel_for) == 0 ? PARML_OK : PARML_ENOMEM;                 \
}
PARML_API_GEMM(double, f64, d, parml_kernels_d)
PARML_API_GEMM(float, f32, s, parml_kernels_s)
#undef PARML_API_GEMM

/* ---- element-wise add ----------------------------------------------------------------------
 * out[i] = a[i] + b[i] for i < n, contiguous arrays. IN a, b; OUT out, which may be a or b
 * (element-wise, so in place is safe) but must not otherwise overlap them. Tasks of
 * PARML_ADD_BLOCK elements; exact, so any n_threads gives the same bits. */
static inline int parml_add_f64(ptrdiff_t n, const double *a, const double *b, double *out,
                                int n_threads)
{
    if (n < 0 || (n > 0 && (a == NULL || b == NULL || out == NULL))) return PARML_EINVAL;
    parml_add_flat(a, b, out, n, 0, parml_api_threads(n_threads), parml_parallel_for);
    return PARML_OK;
}

static inline int parml_add_f32(ptrdiff_t n, const float *a, const float *b, float *out,
                                int n_threads)
{
    if (n < 0 || (n > 0 && (a == NULL || b == NULL || out == NULL))) return PARML_EINVAL;
    parml_add_flat(a, b, out, n, 1, parml_api_threads(n_threads), parml_parallel_for);
    return PARML_OK;
}

/* ---- fused linear loss and gradient ------------------------------------------------------
 * One pass over X computes, for K outputs with scores z_ik = x_i . W_k + b_k,
 *   loss = sum_i sw_i L(z_i, y_i),  grad W_k = sum_i sw_i dL/dz_ik x_i,  grad b_k = sum_i sw_i dL/dz_ik
 * with L one of losses.h's PARML_L_* (PARML_L_LOG: binary logistic, y in {-1, +1};
 * PARML_L_SQUARED: least squares; PARML_L_MULTINOMIAL: softmax over K >= 2 outputs, y the class
 * index; ovr = 1: K one-vs-rest binary problems, y the class index, problem k's positives the
 * rows with y == k). This is the gradient parml's LogisticRegression and Ridge solvers call. */
typedef struct {
    const void *X;            /* IN  n x d, row i at X + i * ldx elements, columns contiguous */
    int dtype;                /*     PARML_FLOAT64 or PARML_FLOAT32 (W, b, y, sw: double) */
    ptrdiff_t n, d, ldx;      /*     ldx >= d */
    const double *y;          /* IN  n targets (see above) */
    const double *sw;         /* IN  n sample weights, or NULL for 1 */
    const double *W;          /* IN  K x d row-major */
    const double *b;          /* IN  K intercepts */
    ptrdiff_t K;              /*     outputs: 1, or the classes of multinomial / one-vs-rest */
    int loss;                 /*     PARML_L_* */
    int ovr;                  /*     1: one-vs-rest (a binary loss, K >= 1 problems) */
    double eps;               /*     the epsilon of the Huber / epsilon-insensitive losses */
} parml_linear_problem;

/* OUT out[K*d + K + 1]: grad W (K x d row-major), grad b (K), then the loss. Samples strategy
 * (row blocks with per-block partial gradients summed in block order). y is checked where it is
 * an index (multinomial, one-vs-rest: integers in [0, K)). */
static inline int parml_linear_loss_grad(const parml_linear_problem *p, double *out, int n_threads)
{
    if (p == NULL || out == NULL || p->n < 0 || p->d < 0 || p->K < 1 || p->ldx < p->d
        || (p->dtype != PARML_FLOAT64 && p->dtype != PARML_FLOAT32)
        || p->loss < 0 || p->loss >= PARML_N_LOSSES || p->W == NULL || p->b == NULL
        || (p->n > 0 && (p->X == NULL || p->y == NULL))
        || (p->loss == PARML_L_MULTINOMIAL ? (p->K < 2 || p->ovr) : (!p->ovr && p->K != 1)))
        return PARML_EINVAL;
    if (p->loss == PARML_L_MULTINOMIAL || p->ovr)
        for (ptrdiff_t i = 0; i < p->n; ++i)
            if (!(p->y[i] >= 0 && p->y[i] < (double)p->K && p->y[i] == (double)(ptrdiff_t)p->y[i]))
                return PARML_EINVAL;
    const int f32 = p->dtype == PARML_FLOAT32;
    parml_lin c;
    parml_lin_fill(&c, (const char *)p->X, p->ldx * (f32 ? 4 : 8), p->d, f32, p->y, p->sw, p->W,
                   p->b, p->K, 1.0, p->loss, p->ovr, p->eps, parml_kernel_set(),
                   parml_parallel_for);
    c.out = out;
    c.nrows = p->n;
    if (p->n == 0) {
        memset(out, 0, (size_t)(p->K * p->d + p->K + 1) * sizeof(double));
        return PARML_OK;
    }
    parml_lin_plan(&c, PARML_LIN_SAMPLES);
    if (parml_lin_alloc(&c, PARML_LIN_SAMPLES, 0) != 0) return PARML_ENOMEM;
    const int rc = parml_lin_loss_grad(&c, PARML_LIN_SAMPLES, parml_api_threads(n_threads));
    parml_lin_free(&c);
    return rc == 0 ? PARML_OK : PARML_ENOMEM;
}

/* ---- gradient histograms -----------------------------------------------------------------
 * hist[f * nbins + b] = (sum of g, sum of h, count) over the node's rows whose feature f is in
 * bin b, for every feature f < d: the inner loop of histogram gradient boosting.
 *   IN B: binned features, column-major d x n bytes (feature f of row r at B[f * n + r]), every
 *      value < nbins (parml_bins_check tests it);
 *   IN rows: the node's m row ids (each in [0, n), checked), or NULL for rows 0 .. m-1 (m <= n);
 *   IN g, h: m gradients and hessians in node order (h NULL: constant hessian, h sums left 0);
 *   OUT hist: d x nbins parml_hbin (hist.h), 1 <= nbins <= 256.
 * Parallel over groups of features; sums in row order, so exact for any n_threads. */
static inline int parml_histogram(const uint8_t *B, ptrdiff_t n, ptrdiff_t d, const int32_t *rows,
                                  ptrdiff_t m, const float *g, const float *h, int nbins,
                                  parml_hbin *hist, int n_threads)
{
    if (n < 0 || d < 0 || m < 0 || nbins < 1 || nbins > 256 || (rows == NULL && m > n)
        || hist == NULL || (m > 0 && d > 0 && (B == NULL || g == NULL)))
        return PARML_EINVAL;
    if (rows != NULL)
        for (ptrdiff_t i = 0; i < m; ++i)
            if (rows[i] < 0 || rows[i] >= n) return PARML_EINVAL;
    parml_hist_use_set(parml_kernel_set());
    parml_hist_ctx c;
    memset(&c, 0, sizeof(c));
    c.B = B;
    c.n = n;
    c.d = d;
    c.nbins = nbins;
    c.rows = rows;
    c.m = m;
    c.og = g;
    c.oh = h;
    c.hist = hist;
    if (m == 0) {
        memset(hist, 0, (size_t)(d * nbins) * sizeof(parml_hbin));
        return PARML_OK;
    }
    return parml_build_histogram(&c, 0, parml_api_threads(n_threads), parml_parallel_for) == 0
               ? PARML_OK : PARML_ENOMEM;
}

/* PARML_OK when every byte of the d x n binned matrix B is < nbins, else PARML_EINVAL. */
static inline int parml_bins_check(const uint8_t *B, ptrdiff_t n, ptrdiff_t d, int nbins)
{
    if (n < 0 || d < 0 || (n > 0 && d > 0 && B == NULL)) return PARML_EINVAL;
    uint8_t top = 0;
    for (ptrdiff_t i = 0; i < n * d; ++i) top = B[i] > top ? B[i] : top;
    return n * d == 0 || (int)top < nbins ? PARML_OK : PARML_EINVAL;
}

/* ---- tree-ensemble prediction ------------------------------------------------------------
 * A forest of n_trees trees in flat node arrays (the layout parml's trees and boosting models
 * save): tree t's nodes are [roots[t], roots[t+1]) (the last ends at n_nodes); node j is a split
 * when left[j] >= 0 (x[feature[j]] <= threshold[j] goes to left[j], else right[j], both
 * tree-relative indices after j; NaN goes left iff missing_left[j]) or a leaf holding value
 * (value_width values per node: 1, or n_outputs for a leaf with one value per output). */
typedef struct {
    ptrdiff_t n_nodes, n_trees, n_outputs, value_width;
    const int32_t *feature;       /* IN n_nodes */
    const double *threshold;      /* IN n_nodes */
    const uint8_t *missing_left;  /* IN n_nodes */
    const int32_t *left, *right;  /* IN n_nodes */
    const double *value;          /* IN n_nodes x value_width */
    const int64_t *roots;         /* IN n_trees */
    const int32_t *tree_output;   /* IN n_trees: the output each tree adds to */
} parml_forest;

/* PARML_OK when the forest is safe to walk on rows of n_features features: children inside their
 * tree and after their parent, features and outputs in range, no NaN threshold, finite leaves. */
static inline int parml_forest_check(const parml_forest *f, ptrdiff_t n_features)
{
    if (f == NULL || f->n_nodes < 0 || f->n_trees < 0 || f->n_outputs < 1 || n_features < 0
        || (f->value_width != 1 && f->value_width != f->n_outputs))
        return PARML_EINVAL;
    if (f->n_trees == 0) return PARML_OK;
    if (f->n_nodes == 0 || !f->feature || !f->threshold || !f->missing_left || !f->left
        || !f->right || !f->value || !f->roots || !f->tree_output)
        return PARML_EINVAL;
    return parml_forest_check_arrays(f->feature, f->threshold, f->left, f->right, f->value,
                                     f->value_width, f->roots, f->tree_output, f->n_trees,
                                     f->n_nodes, n_features, f->n_outputs) == 0
               ? PARML_OK : PARML_EINVAL;
}

/* INOUT out[n x n_outputs] (row-major) += the sum of each row's leaf values over the trees.
 * IN X: n x d rows ldx elements apart (ldx >= d), float64 or float32 (dtype). The forest is
 * checked first (parml_forest_check); forests whose splits' children are adjacent
 * (right == left + 1) are walked 4 rows in lockstep. Row blocks of PARML_FOREST_ROW_BLOCK run
 * in parallel; each output is the same sum in the same tree order for any n_threads. */
static inline int parml_forest_predict(const parml_forest *f, const void *X, int dtype,
                                       ptrdiff_t n, ptrdiff_t d, ptrdiff_t ldx, double *out,
                                       int n_threads)
{
    if (n < 0 || ldx < d || (dtype != PARML_FLOAT64 && dtype != PARML_FLOAT32)
        || (n > 0 && (X == NULL || out == NULL)) || parml_forest_check(f, d) != PARML_OK)
        return PARML_EINVAL;
    if (n == 0 || f->n_trees == 0) return PARML_OK;
    const int f32 = dtype == PARML_FLOAT32;
    parml_forest_ctx c;
    memset(&c, 0, sizeof(c));
    c.X = (const char *)X;
    c.n = n;
    c.row_bytes = ldx * (f32 ? 4 : 8);
    c.is_float = f32;
    c.feature = f->feature;
    c.threshold = f->threshold;
    c.missing_left = f->missing_left;
    c.left = f->left;
    c.right = f->right;
    c.value = f->value;
    c.roots = f->roots;
    c.tree_output = f->tree_output;
    c.n_trees = f->n_trees;
    c.n_outputs = f->n_outputs;
    c.value_width = f->value_width;
    c.out = out;
    c.block = PARML_FOREST_ROW_BLOCK;
    parml_qnode *q = NULL;
    int32_t *steps = NULL, *depth = NULL;
    parml_task_fn task = parml_forest_task;
    if (n >= PARML_PACKED_MIN_ROWS) {
        q = (parml_qnode *)malloc((size_t)f->n_nodes * sizeof(parml_qnode));
        steps = (int32_t *)malloc((size_t)f->n_trees * sizeof(int32_t));
        depth = (int32_t *)malloc((size_t)f->n_nodes * sizeof(int32_t));
        if (q == NULL || steps == NULL || depth == NULL) {
            free(q); free(steps); free(depth);
            return PARML_ENOMEM;
        }
        if (parml_pack_forest(f->feature, f->threshold, f->missing_left, f->left, f->right,
                              f->roots, f->n_trees, f->n_nodes, q, steps, depth) == 0) {
            c.q = q;
            c.steps = steps;
            task = parml_forest_packed_task;
        }
    }
    const ptrdiff_t ntask = (n + PARML_FOREST_ROW_BLOCK - 1) / PARML_FOREST_ROW_BLOCK;
    parml_parallel_for(ntask, parml_api_threads(n_threads), task, &c);
    free(q);
    free(steps);
    free(depth);
    return PARML_OK;
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif
