/* Fused loss + gradient of a linear model, one pass over X: the driver behind parml's
 * LogisticRegression, Ridge's iterative solvers, SGD's mini-batches and the C API's
 * parml_linear_loss_grad (parml.h).
 *
 * X is row-major (rows ldx bytes apart, columns contiguous), float64 or float32, read as given;
 * weights, gradients and every accumulation are float64. The row kernels (dot, axpy, their
 * four-row forms) and the logistic block come from the kernel set's tables (linear_rows.h,
 * logit_block.h), stored in the context so that one driver serves every set.
 *
 * Strategies:
 *   samples  task = a block of rows; each computes its rows' scores, residuals and a partial
 *            gradient in one pass; partials are summed in task order (a second parallel pass
 *            over column blocks of the partials)
 *   weights  pass 1: residuals of every row block; pass 2: each task owns a block of gradient
 *            columns and streams all rows (no partial gradients: for few rows and many weights)
 * Determinism: tasks are cut by the shape alone (never by the thread count) and partial sums
 * are reduced in task order, so results are bit-identical for any n_threads. */
#ifndef PARML_LINEAR_GRAD_H
#define PARML_LINEAR_GRAD_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "linear_rows.h"
#include "logit_block.h"
#include "losses.h"
#include "pool_api.h"

/* Work is cut into tasks of at least MIN_TASK_WORK multiply-adds, at most MAX_TASKS tasks, and
 * runs on one thread below PARALLEL_MIN_WORK (a pool round trip costs ~20 us, the time one core
 * needs for ~1e5 multiply-adds streamed from memory). Fixed by shape, never by thread count. */
enum {
    PARML_LIN_MIN_TASK_WORK = 32768,
    PARML_LIN_MAX_TASKS = 64,
    PARML_LIN_PARALLEL_MIN_WORK = 131072,
    PARML_LIN_MIN_COLS_PER_TASK = 64,   /* weights strategy: 512-byte column segments per row */
    PARML_LIN_LOGIT_BLOCK = 16,         /* rows whose margins go through the logistic block at once */
    PARML_LIN_LOGIT_BLOCK_BYTES = 24576,/* ... at most this many bytes of rows (at least 4 rows;
                                         * re-read from cache for the gradient) */
    PARML_LIN_LOGIT_L1_BYTES = 40960,   /* blocks are prefetched into L1 (nta) when 3 fit here */
    PARML_LIN_STREAM_AHEAD_BYTES = 24576, /* rows read in order: prefetched this far ahead */
    PARML_LIN_PREFETCH_ROWS = 8         /* shuffled rows: prefetch this far ahead (~100 ns DRAM
                                         * latency against ~30 ns of work per 100-feature row) */
};

enum { PARML_LIN_SAMPLES = 0, PARML_LIN_WEIGHTS = 1, PARML_LIN_HOGWILD = 2 };

/* SGD clips |d loss / d z| here, as scikit-learn does: squared losses on a badly scaled step
 * otherwise grow the weights past 1e40 within an epoch */
#define PARML_LIN_MAX_DLOSS 1e12

typedef struct {
    const char *X;             /* IN   rows of X, ldx bytes apart, columns contiguous */
    ptrdiff_t ldx, d, K, xsize;
    int f32;
    const ptrdiff_t *idx;      /* IN   row set (NULL: rows row0 .. row0 + nrows) */
    ptrdiff_t row0, nrows;
    const double *y;           /* IN   +-1 / real target / class index (ovr, multinomial) */
    const double *sw;          /* IN   sample weights or NULL */
    const double *W;           /* IN   K x d weights (times wscale) */
    const double *b;           /* IN   K intercepts */
    double wscale;
    int loss;
    int ovr;
    double eps;
    int need_loss;             /* 0: the log loss's value is skipped (SGD without a stopping rule) */
    ptrdiff_t rpt, ntasks;     /* rows per task, tasks */
    ptrdiff_t cpt, ctasks;     /* columns per task, tasks (weights pass 2, reductions) */
    double *part;              /* OUT  per-task partials, pstride apart */
    ptrdiff_t pstride;
    double *scratch;           /* per-task K doubles, sstride apart */
    ptrdiff_t sstride;
    double *R;                 /* OUT  nrows x K residuals (weights strategy) */
    double *out;               /* OUT  [grad W (K*d), grad b (K), loss] */
    ptrdiff_t pf_extra;        /* idx rows past nrows that the last task may prefetch (the next
                                * mini-batch's first rows; 0 otherwise) */
    const double *cw;          /* IN   one-vs-rest: K weights of each problem's positive class
                                *      (scikit-learn's and liblinear's class_weight), or NULL */
    int sgd;                   /* SGD's conventions: d loss / d z clipped to +-MAX_DLOSS, and the
                                * returned loss (the stopping rule's) unweighted */
    const parml_rowops *ops;   /* the kernel set's row kernels and logistic block */
    parml_logit_fn logit;
    parml_parallel_for_fn pf;  /* the task pool (NULL: run every task in the calling thread) */
} parml_lin;

static inline ptrdiff_t parml_lin_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static inline ptrdiff_t parml_lin_max(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

static inline ptrdiff_t parml_lin_row_of(const parml_lin *c, ptrdiff_t i)
{
    return c->idx != NULL ? c->idx[i] : c->row0 + i;
}

/* Hint the caches with a row that a shuffled pass reads PREFETCH_ROWS steps later: its
 * features, target and weight (random reads, each a miss otherwise). */
static inline void parml_lin_prefetch(const parml_lin *c, ptrdiff_t row)
{
    parml_prefetch_row_nta(c->X + row * c->ldx, c->d * c->xsize);
    parml_prefetch_one(c->y + row);
    if (c->sw != NULL) parml_prefetch_one(c->sw + row);
}

/* How far ahead a pass over consecutive rows prefetches: STREAM_AHEAD_BYTES of rows. */
static inline ptrdiff_t parml_lin_ahead_rows(const parml_lin *c)
{
    return parml_lin_max((ptrdiff_t)PARML_LIN_STREAM_AHEAD_BYTES / parml_lin_max(c->d * c->xsize, 1), 1);
}

/* In a pass over consecutive rows [.., hi), hint the row `ahead` rows past row i (prefetchnta:
 * the hardware prefetcher alone left the all-finite check at 22 GB/s on one thread, 0.73x the
 * time with this). */
static inline void parml_lin_stream_ahead(const parml_lin *c, ptrdiff_t i, ptrdiff_t hi,
                                          ptrdiff_t ahead)
{
    if (i + ahead < hi) parml_prefetch_row_nta(c->X + (i + ahead) * c->ldx, c->d * c->xsize);
}

static inline double parml_lin_dot(const parml_lin *c, const char *xr, const double *w, ptrdiff_t n)
{
    return c->f32 ? c->ops->dot_s((const float *)xr, w, n) : c->ops->dot_d((const double *)xr, w, n);
}

static inline void parml_lin_axpy(const parml_lin *c, double a, const char *xr, double *g,
                                  ptrdiff_t n)
{
    if (c->f32) c->ops->axpy_s(a, (const float *)xr, g, n);
    else c->ops->axpy_d(a, (const double *)xr, g, n);
}

static inline void parml_lin_axpby(const parml_lin *c, double a, const char *xr, double f,
                                   double *g, ptrdiff_t n)
{
    if (c->f32) c->ops->axpby_s(a, (const float *)xr, f, g, n);
    else c->ops->axpby_d(a, (const double *)xr, f, g, n);
}

/* Scores of one row into z, then z <- w * d loss / d z; returns w * loss (unweighted when
 * c->sgd), w the sample weight times, in one-vs-rest, the problem's positive-class weight. */
static inline double parml_lin_row(const parml_lin *c, ptrdiff_t row, const char *xr, double *z)
{
    double l = 0.0, lk, dl, yk;
    const double yv = c->y[row];
    for (ptrdiff_t k = 0; k < c->K; ++k)
        z[k] = c->wscale * parml_lin_dot(c, xr, c->W + k * c->d, c->d) + c->b[k];
    if (c->loss == PARML_L_MULTINOMIAL) {
        l = parml_softmax_loss(z, c->K, (ptrdiff_t)yv);
        if (c->sgd)
            for (ptrdiff_t k = 0; k < c->K; ++k) z[k] = parml_clip_dl(z[k], PARML_LIN_MAX_DLOSS);
    } else if (c->ovr) {
        for (ptrdiff_t k = 0; k < c->K; ++k) {
            yk = yv == (double)k ? 1.0 : -1.0;
            lk = parml_loss(c->loss, z[k], yk, c->eps, &dl, c->need_loss);
            if (c->sgd) dl = parml_clip_dl(dl, PARML_LIN_MAX_DLOSS);
            if (c->cw != NULL && yk > 0.0) {
                dl = dl * c->cw[k];
                if (!c->sgd) lk = lk * c->cw[k];
            }
            l += lk;
            z[k] = dl;
        }
    } else {
        l = parml_loss(c->loss, z[0], yv, c->eps, &dl, c->need_loss);
        z[0] = c->sgd ? parml_clip_dl(dl, PARML_LIN_MAX_DLOSS) : dl;
    }
    if (c->sw != NULL) {
        for (ptrdiff_t k = 0; k < c->K; ++k) z[k] *= c->sw[row];
        if (!c->sgd) l *= c->sw[row];
    }
    return l;
}

/* The gradient of rows r0 .. r0 + m - 1 (m <= 4) of the order, g and l their derivatives and
 * losses: one axpy4 (missing rows repeat the first with weight 0). */
static inline void parml_lin_logit_grad4(const parml_lin *c, double *part, parml_axpy4_fn axpy4,
                                         ptrdiff_t r0, ptrdiff_t m, const double *g,
                                         const double *l, double *gb, double *ls)
{
    double a4[4];
    const void *xp[4];
    for (ptrdiff_t r = 0; r < 4; ++r) {
        if (r < m) {
            const ptrdiff_t row = parml_lin_row_of(c, r0 + r);
            double dl = c->y[row] * g[r];
            double lv = c->need_loss ? l[r] : 0.0;
            if (c->sw != NULL) {
                dl = dl * c->sw[row];
                if (!c->sgd) lv = lv * c->sw[row];
            }
            *ls += lv;
            *gb += dl;
            a4[r] = dl;
            xp[r] = c->X + row * c->ldx;
        } else {
            a4[r] = 0.0;
            xp[r] = xp[0];
        }
    }
    axpy4(a4, xp, part, c->d);
}

/* Margins y (wscale x.w + b) of rows r0 .. r0 + m - 1 (m <= 4) of the order: one dot4 (missing
 * rows repeat the last). */
static inline void parml_lin_logit_margins4(const parml_lin *c, parml_dot4_fn dot4, ptrdiff_t r0,
                                            ptrdiff_t m, double *pz)
{
    const void *xp[4];
    double dots[4];
    for (ptrdiff_t r = 0; r < 4; ++r)
        xp[r] = c->X + parml_lin_row_of(c, r0 + parml_lin_min(r, m - 1)) * c->ldx;
    dot4(xp, c->W, c->d, dots);
    for (ptrdiff_t r = 0; r < m; ++r)
        pz[r] = c->y[parml_lin_row_of(c, r0 + r)] * (c->wscale * dots[r] + c->b[0]);
}

/* Row block [lo, hi) for the binary log loss, software-pipelined over blocks of rows: the
 * margins of block k + 1 (reading new rows from memory) interleaved with the gradient of block k
 * (its rows still in L1), 4 rows per dot4 / axpy4 call; between them, one vector call (the
 * logistic block) for the block's losses and derivatives (libm's exp and log1p per row cost
 * more than reading the row). The rows of block k + 2 are prefetched meanwhile, into L1 when
 * three blocks fit in LOGIT_L1_BYTES, else into L2: the hardware prefetcher alone left memory
 * idle while a block's gradient ran (45 ms for 800k x 100 on 1 thread, against 24 with the
 * prefetch to L2 and 22.5 to L1). Every row gets the same arithmetic wherever it sits, and the
 * sums run in row order. */
static void parml_lin_samples_logit(const parml_lin *c, double *part, ptrdiff_t lo, ptrdiff_t hi)
{
    double pz[2][PARML_LIN_LOGIT_BLOCK], g[2][PARML_LIN_LOGIT_BLOCK], l[2][PARML_LIN_LOGIT_BLOCK];
    const ptrdiff_t rowbytes = c->d * c->xsize;
    const ptrdiff_t nb = parml_lin_min(
        parml_lin_max((ptrdiff_t)PARML_LIN_LOGIT_BLOCK_BYTES / parml_lin_max(rowbytes, 1), 4),
        (ptrdiff_t)PARML_LIN_LOGIT_BLOCK) & ~(ptrdiff_t)3;
    const int pf_l1 = 3 * nb * rowbytes <= PARML_LIN_LOGIT_L1_BYTES;
    const parml_dot4_fn dot4 = c->f32 ? c->ops->dot4_s : c->ops->dot4_d;
    const parml_axpy4_fn axpy4 = c->f32 ? c->ops->axpy4_s : c->ops->axpy4_d;
    const ptrdiff_t pf_lim = hi + (hi == c->nrows ? c->pf_extra : 0);
    ptrdiff_t cur = lo, ncur, nxt, nn;
    int k = 0;
    /* part[d], part[d + 1] in registers: a load of part[d] right after the axpy's masked store
     * over part[96:104] cannot be forwarded (it stalled 38% of the loop at d = 100) */
    double gb = 0.0, ls = 0.0;
    if (hi <= lo) return;
    ncur = parml_lin_min(nb, hi - cur);
    for (ptrdiff_t i = 0; i < ncur; i += 4)
        parml_lin_logit_margins4(c, dot4, cur + i, parml_lin_min(4, ncur - i), &pz[0][i]);
    c->logit(pz[0], g[0], l[0], ncur, c->need_loss);
    for (;;) {
        nxt = cur + ncur;
        nn = parml_lin_min(nb, hi - nxt);
        const ptrdiff_t top = parml_lin_max(ncur, nn);
        for (ptrdiff_t i = 0; i < top; i += 4) {
            if (i < nn) {
                for (ptrdiff_t r = 0; r < 4; ++r) {
                    if (nxt + nn + i + r < pf_lim) {
                        const ptrdiff_t row = parml_lin_row_of(c, nxt + nn + i + r);
                        if (pf_l1) parml_prefetch_row_nta(c->X + row * c->ldx, rowbytes);
                        else parml_prefetch_row(c->X + row * c->ldx, rowbytes);
                        if (c->idx != NULL) {   /* a row subset in any order: y and sw jump too */
                            parml_prefetch_one(c->y + row);
                            if (c->sw != NULL) parml_prefetch_one(c->sw + row);
                        }
                    }
                }
                parml_lin_logit_margins4(c, dot4, nxt + i, parml_lin_min(4, nn - i), &pz[1 - k][i]);
            }
            if (i < ncur)
                parml_lin_logit_grad4(c, part, axpy4, cur + i, parml_lin_min(4, ncur - i), &g[k][i],
                                      &l[k][i], &gb, &ls);
        }
        if (nn <= 0) break;
        c->logit(pz[1 - k], g[1 - k], l[1 - k], nn, c->need_loss);
        cur = nxt;
        ncur = nn;
        k = 1 - k;
    }
    part[c->d] = gb;
    part[c->d + 1] = ls;
}

/* Row block [lo, hi) for any loss: one row at a time. */
static void parml_lin_samples_generic(const parml_lin *c, double *part, double *z, ptrdiff_t lo,
                                      ptrdiff_t hi)
{
    const ptrdiff_t KD = c->K * c->d, ahead = parml_lin_ahead_rows(c);
    const ptrdiff_t pf_lim = hi + (hi == c->nrows ? c->pf_extra : 0);
    for (ptrdiff_t i = lo; i < hi; ++i) {
        const ptrdiff_t row = parml_lin_row_of(c, i);
        const char *xr = c->X + row * c->ldx;
        if (c->idx != NULL) {
            if (i + PARML_LIN_PREFETCH_ROWS < pf_lim)
                parml_lin_prefetch(c, c->idx[i + PARML_LIN_PREFETCH_ROWS]);
        } else {
            parml_lin_stream_ahead(c, row, c->row0 + hi, ahead);
        }
        part[KD + c->K] += parml_lin_row(c, row, xr, z);
        for (ptrdiff_t k = 0; k < c->K; ++k) {
            if (z[k] != 0.0) {
                parml_lin_axpy(c, z[k], xr, part + k * c->d, c->d);
                part[KD + k] += z[k];
            }
        }
    }
}

/* Samples strategy: one row block's scores, residuals and partial gradient in one pass. */
static void parml_lin_t_samples(void *vc, ptrdiff_t t, int worker)
{
    const parml_lin *c = (const parml_lin *)vc;
    const ptrdiff_t lo = t * c->rpt, hi = parml_lin_min(lo + c->rpt, c->nrows);
    double *part = c->part + t * c->pstride;
    (void)worker;
    memset(part, 0, (size_t)(c->K * c->d + c->K + 1) * sizeof(double));
    if (c->K == 1 && c->loss == PARML_L_LOG && !c->ovr)
        parml_lin_samples_logit(c, part, lo, hi);
    else
        parml_lin_samples_generic(c, part, c->scratch + t * c->sstride, lo, hi);
}

/* out[j] = sum over tasks of part[task][j], tasks in order, for one block of j. */
static void parml_lin_t_reduce(void *vc, ptrdiff_t t, int worker)
{
    const parml_lin *c = (const parml_lin *)vc;
    const ptrdiff_t n = c->K * c->d + c->K + 1;
    const ptrdiff_t lo = t * c->cpt, hi = parml_lin_min(lo + c->cpt, n);
    double *o = c->out;
    (void)worker;
    memcpy(o + lo, c->part + lo, (size_t)(hi - lo) * sizeof(double));
    for (ptrdiff_t s = 1; s < c->ntasks; ++s)
        for (ptrdiff_t j = lo; j < hi; ++j) o[j] += c->part[s * c->pstride + j];
}

/* Weights strategy, pass 1: residuals of one row block, and its intercept/loss partials. */
static void parml_lin_t_resid(void *vc, ptrdiff_t t, int worker)
{
    const parml_lin *c = (const parml_lin *)vc;
    const ptrdiff_t lo = t * c->rpt, hi = parml_lin_min(lo + c->rpt, c->nrows);
    double *part = c->part + t * c->pstride;
    (void)worker;
    memset(part, 0, (size_t)(c->K + 1) * sizeof(double));
    for (ptrdiff_t i = lo; i < hi; ++i) {
        const ptrdiff_t row = parml_lin_row_of(c, i);
        double *z = c->R + i * c->K;
        part[c->K] += parml_lin_row(c, row, c->X + row * c->ldx, z);
        for (ptrdiff_t k = 0; k < c->K; ++k) part[k] += z[k];
    }
}

/* Weights strategy, pass 2: this task owns columns [j0, j1) of every gradient row. */
static void parml_lin_t_cols(void *vc, ptrdiff_t t, int worker)
{
    const parml_lin *c = (const parml_lin *)vc;
    const ptrdiff_t j0 = t * c->cpt, j1 = parml_lin_min(j0 + c->cpt, c->d), w = j1 - j0;
    (void)worker;
    for (ptrdiff_t k = 0; k < c->K; ++k) memset(c->out + k * c->d + j0, 0, (size_t)w * sizeof(double));
    for (ptrdiff_t i = 0; i < c->nrows; ++i) {
        const ptrdiff_t row = parml_lin_row_of(c, i);
        const char *xr = c->X + row * c->ldx + j0 * c->xsize;
        for (ptrdiff_t k = 0; k < c->K; ++k) {
            const double r = c->R[i * c->K + k];
            if (r != 0.0) parml_lin_axpy(c, r, xr, c->out + k * c->d + j0, w);
        }
    }
}

static inline ptrdiff_t parml_lin_clamp(ptrdiff_t v, ptrdiff_t lo, ptrdiff_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Cut c->nrows rows (and K*d weights) into tasks: depends on the shape only. */
static void parml_lin_plan(parml_lin *c, int strategy)
{
    const ptrdiff_t KD = c->K * c->d;
    const ptrdiff_t work = c->nrows * parml_lin_max(KD, 1);
    c->ntasks = parml_lin_clamp(work / PARML_LIN_MIN_TASK_WORK, 1, PARML_LIN_MAX_TASKS);
    c->ntasks = parml_lin_min(c->ntasks, parml_lin_max(c->nrows, 1));
    c->rpt = c->nrows > 0 ? (c->nrows + c->ntasks - 1) / c->ntasks : 1;
    c->ntasks = c->nrows > 0 ? (c->nrows + c->rpt - 1) / c->rpt : 0;
    c->sstride = (c->K + 7) & ~(ptrdiff_t)7;
    if (strategy == PARML_LIN_WEIGHTS) {
        c->pstride = (c->K + 1 + 7) & ~(ptrdiff_t)7;
        /* column blocks: multiples of 8 doubles (whole cache lines of the gradient) */
        c->ctasks = parml_lin_clamp(c->d / PARML_LIN_MIN_COLS_PER_TASK, 1, PARML_LIN_MAX_TASKS);
        c->cpt = parml_lin_max(8, (((c->d + c->ctasks - 1) / c->ctasks) + 7) & ~(ptrdiff_t)7);
        c->ctasks = (c->d + c->cpt - 1) / c->cpt;
    } else {
        c->pstride = (KD + c->K + 1 + 7) & ~(ptrdiff_t)7;
        c->ctasks = parml_lin_clamp((c->ntasks * (KD + c->K + 1)) / PARML_LIN_MIN_TASK_WORK, 1,
                                    PARML_LIN_MAX_TASKS);
        c->cpt = ((((KD + c->K + 1) + c->ctasks - 1) / c->ctasks) + 7) & ~(ptrdiff_t)7;
        c->ctasks = (KD + c->K + 1 + c->cpt - 1) / c->cpt;
    }
}

/* Run tasks [0, ntasks) on up to nt threads of c->pf (in this thread when nt == 1 or no pool). */
static int parml_lin_run(const parml_lin *c, ptrdiff_t ntasks, int nt, parml_task_fn fn)
{
    if (nt > 1 && ntasks > 1 && c->pf != NULL) return c->pf(ntasks, nt, fn, (void *)c);
    for (ptrdiff_t t = 0; t < ntasks; ++t) fn((void *)c, t, 0);
    return 0;
}

/* c->out <- [sum_i grad W, sum_i grad b, sum_i loss] over c's row set, buffers in c already
 * sized by parml_lin_plan for at least this many rows. Returns 0, or -1 if the pool refused. */
static int parml_lin_loss_grad(parml_lin *c, int strategy, int n_threads)
{
    const ptrdiff_t KD = c->K * c->d;
    const int nt = c->nrows * parml_lin_max(KD, 1) >= PARML_LIN_PARALLEL_MIN_WORK ? n_threads : 1;
    int rc = 0;
    if (c->nrows == 0) {
        memset(c->out, 0, (size_t)(KD + c->K + 1) * sizeof(double));
        return 0;
    }
    if (strategy == PARML_LIN_WEIGHTS) {
        rc |= parml_lin_run(c, c->ntasks, nt, parml_lin_t_resid);
        rc |= parml_lin_run(c, c->ctasks, c->ctasks > 1 ? nt : 1, parml_lin_t_cols);
        for (ptrdiff_t k = 0; k < c->K + 1; ++k) {
            c->out[KD + k] = 0.0;
            for (ptrdiff_t s = 0; s < c->ntasks; ++s) c->out[KD + k] += c->part[s * c->pstride + k];
        }
        return rc;
    }
    rc |= parml_lin_run(c, c->ntasks, nt, parml_lin_t_samples);
    if (c->ntasks == 1)
        memcpy(c->out, c->part, (size_t)(KD + c->K + 1) * sizeof(double));
    else
        rc |= parml_lin_run(c, c->ctasks, c->ntasks * KD >= PARML_LIN_PARALLEL_MIN_WORK ? nt : 1,
                            parml_lin_t_reduce);
    return rc;
}

/* n doubles on whole 64-byte cache lines: per-task buffers then never share a line, so two
 * threads writing neighbouring tasks' partials do not bounce it between cores. */
static inline double *parml_lin_lines(ptrdiff_t n)
{
    return (double *)aligned_alloc(64, ((size_t)parml_lin_max(n, 1) * sizeof(double) + 63) / 64 * 64);
}

static void parml_lin_free(parml_lin *c)
{
    free(c->part);
    free(c->scratch);
    free(c->R);
    c->part = c->scratch = c->R = NULL;
}

/* Buffers for the plan in c (residuals only for the weights strategy). Returns 0 or -1. */
static int parml_lin_alloc(parml_lin *c, int strategy, int need_R)
{
    const int want_R = need_R && strategy == PARML_LIN_WEIGHTS;
    c->part = parml_lin_lines(parml_lin_max(c->ntasks, 1) * c->pstride);
    c->scratch = parml_lin_lines(parml_lin_max(c->ntasks, 1) * c->sstride);
    c->R = want_R ? parml_lin_lines(parml_lin_max(c->nrows, 1) * c->K) : NULL;
    if (c->part == NULL || c->scratch == NULL || (want_R && c->R == NULL)) {
        parml_lin_free(c);
        return -1;
    }
    return 0;
}

/* A context for X (n rows ldx bytes apart, d columns), the model (W: K x d, b: K) and the loss,
 * with kernel set `set`'s row kernels and the task pool pf; every other field zero. */
static void parml_lin_fill(parml_lin *c, const char *X, ptrdiff_t ldx, ptrdiff_t d, int f32,
                           const double *y, const double *sw, const double *W, const double *b,
                           ptrdiff_t K, double wscale, int loss, int ovr, double eps, int set,
                           parml_parallel_for_fn pf)
{
    memset(c, 0, sizeof(*c));
    c->X = X;
    c->ldx = ldx;
    c->d = d;
    c->f32 = f32;
    c->xsize = f32 ? 4 : 8;
    c->y = y;
    c->sw = sw;
    c->W = W;
    c->b = b;
    c->K = K;
    c->wscale = wscale;
    c->loss = loss;
    c->ovr = ovr;
    c->eps = eps;
    c->need_loss = 1;
    c->ops = parml_rowops_for(set);
    c->logit = parml_logit_for(set);
    c->pf = pf;
}

#endif
