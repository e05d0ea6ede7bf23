/* Per-sample SGD for one output (binary classification, regression): the step loop in C, with
 * the row kernels inlined.
 *
 * Why a loop of its own: the steps form one dependency chain (the weights that step i writes are
 * the weights step i + 1 reads), so a step costs its latency, not its instruction count. In the
 * Cython loop over the generic step (K outputs, L1, averaging) the row kernels were calls through
 * a pointer, after which every scalar of the state (scale, t, b) was reloaded from memory, and
 * the step's division sat on the chain: 36 ns a step on rows in cache, 74 ns on shuffled rows
 * of 800k x 100. Here the state lives in registers, -eta / scale is computed while the dot
 * product runs, and only dot -> loss -> axpy remains on the chain.
 *
 * The steps are the generic loop's steps, in the same order, with the same formulas (the
 * update's coefficient is (-eta / scale) * dl in both). The AVX-512 build lets the compiler fuse
 * multiply-adds (scale * dot + b, the intercept step, inside the losses), so its weights differ
 * from the portable build's in the last bits (1e-15 after an epoch of hinge, 1e-7 of modified
 * Huber, whose kink amplifies them); the tests hold both to a numpy reference. Every thread
 * count runs this same function, so a pipelined epoch is still bit-identical to the 1-thread
 * one. */
#ifndef PARML_SGD_STEP_H
#define PARML_SGD_STEP_H

#include <math.h>
#include <stddef.h>
#include "linear_rows.h"
#include "losses.h"

enum { PARML_SCH_CONSTANT = 0, PARML_SCH_OPTIMAL = 1, PARML_SCH_INVSCALING = 2 };

/* The learning rate of step t (1-based), scikit-learn's schedules. */
static inline double parml_sgd_eta(int schedule, double eta0, double power_t, double alpha,
                                   double opt_init, double t)
{
    if (schedule == PARML_SCH_OPTIMAL) return 1.0 / (alpha * (opt_init + t - 1.0));
    if (schedule == PARML_SCH_INVSCALING) return eta0 / pow(t, power_t);
    return eta0;
}

/* One step's L2 shrinkage, applied lazily: the true weights are scale * V, so the penalty
 * costs O(1) a step. Returns the new scale; once it gets below 1e-9 it is folded into V (n
 * weights) so that V's magnitude stays sane. */
static inline double parml_sgd_decay(double scale, double *V, ptrdiff_t n, double l2frac,
                                     double eta, double alpha)
{
    if (l2frac > 0.0) {
        const double f = 1.0 - l2frac * eta * alpha;
        scale *= f > 0.0 ? f : 0.0;
        if (scale < 1e-9) {
            for (ptrdiff_t j = 0; j < n; ++j) V[j] *= scale;
            scale = 1.0;
        }
    }
    return scale;
}

typedef struct {
    const char *X;            /* IN   rows ldx bytes apart, d features of the kernel's type */
    ptrdiff_t ldx, d;
    const ptrdiff_t *idx;     /* IN   visiting order (NULL: rows row0 + i) */
    ptrdiff_t row0;
    const double *y;          /* IN   +-1 (classification) or real targets, by row */
    const double *sw;         /* IN   sample weights by row, or NULL */
    double *V;                /* IN/OUT d weights, true weights = scale * V */
    double b, scale, t;       /* IN/OUT intercept, lazy L2 scale, step count */
    int loss, need_loss, schedule, fit_intercept;
    int weight_loss;          /* the returned loss weighted by sw (else unweighted, as
                               * scikit-learn's SGD sums it) */
    double eps, eta0, power_t, alpha, opt_init, l2frac;
    double max_dloss;         /* |d loss / d z| is clipped here (scikit-learn: 1e12) */
    ptrdiff_t prefetch_rows;  /* rows of the order prefetched this far ahead */
} parml_sgd1;

/* Steps over positions [lo, hi) of the order, prefetching rows of the order up to pf_hi;
 * returns acc + the rows' losses (unweighted unless weight_loss: scikit-learn's epoch loss,
 * which its stopping rule reads), added one by one. */
typedef double (*parml_sgd1_fn)(parml_sgd1 *s, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t pf_hi,
                                double acc);

#define PARML_DEFINE_SGD1(XT, SFX, ATTR, DOT, AXPY)                                                \
    ATTR static double parml_sgd1_##SFX(parml_sgd1 *s, ptrdiff_t lo, ptrdiff_t hi,               \
                                        ptrdiff_t pf_hi, double acc)                               \
    {                                                                                              \
        /* everything in locals: V's stores could alias the struct's doubles */                    \
        const char *const X = s->X;                                                                \
        const ptrdiff_t ldx = s->ldx, d = s->d, pf = s->prefetch_rows, row0 = s->row0;             \
        const ptrdiff_t *const idx = s->idx;                                                       \
        const double *const y = s->y, *const sw = s->sw;                                           \
        double *const V = s->V;                                                                    \
        const int loss = s->loss, need_loss = s->need_loss, schedule = s->schedule;               \
        const int fit_intercept = s->fit_intercept, weight_loss = s->weight_loss;                  \
        const double eps = s->eps, eta0 = s->eta0, power_t = s->power_t, alpha = s->alpha;        \
        const double opt_init = s->opt_init, l2frac = s->l2frac, max_dloss = s->max_dloss;         \
        double b = s->b, scale = s->scale, t = s->t;                                               \
        for (ptrdiff_t i = lo; i < hi; ++i) {                                                      \
            const ptrdiff_t row = idx ? idx[i] : row0 + i;                                         \
            const XT *const xr = (const XT *)(X + row * ldx);                                      \
            if (idx && i + pf < pf_hi) {                                                           \
                const ptrdiff_t q = idx[i + pf];                                                   \
                parml_prefetch_row_nta(X + q * ldx, d * (ptrdiff_t)sizeof(XT));                    \
                parml_prefetch_one(y + q);                                                         \
                if (sw) parml_prefetch_one(sw + q);                                                \
            }                                                                                      \
            const double eta = parml_sgd_eta(schedule, eta0, power_t, alpha, opt_init, t);         \
            double dl;                                                                             \
            const double z = scale * DOT(xr, V, d) + b;                                            \
            double l = parml_loss(loss, z, y[row], eps, &dl, need_loss);                           \
            dl = parml_clip_dl(dl, max_dloss);                                                     \
            if (sw) {                                                                              \
                dl *= sw[row];                                                                     \
                if (weight_loss) l *= sw[row];                                                     \
            }                                                                                      \
            acc += l;                                                                              \
            scale = parml_sgd_decay(scale, V, d, l2frac, eta, alpha);                              \
            if (dl != 0.0) {                                                                       \
                AXPY((-eta / scale) * dl, xr, V, d);                                               \
                if (fit_intercept) b -= eta * dl;                                                  \
            }                                                                                      \
            t += 1.0;                                                                              \
        }                                                                                          \
        s->b = b;                                                                                  \
        s->scale = scale;                                                                          \
        s->t = t;                                                                                  \
        return acc;                                                                                \
    }

PARML_DEFINE_SGD1(double, gen_d, , parml_dot_gen_d, parml_axpy_gen_d)
PARML_DEFINE_SGD1(float, gen_s, , parml_dot_gen_s, parml_axpy_gen_s)
#if PARML_X86
PARML_DEFINE_SGD1(double, 256_d, PARML_ROW256, parml_dot_256_d, parml_axpy_256_d)
PARML_DEFINE_SGD1(float, 256_s, PARML_ROW256, parml_dot_256_s, parml_axpy_256_s)
PARML_DEFINE_SGD1(double, 512_d, PARML_ROW512, parml_dot_512_d, parml_axpy_512_d)
PARML_DEFINE_SGD1(float, 512_s, PARML_ROW512, parml_dot_512_s, parml_axpy_512_s)
#endif
#if PARML_ARM64
PARML_DEFINE_SGD1(double, neon_d, , parml_dot_neon_d, parml_axpy_neon_d)
PARML_DEFINE_SGD1(float, neon_s, , parml_dot_neon_s, parml_axpy_neon_s)
#endif

/* The step loop for rows of float32 (f32) or float64 on kernel set `set`'s row kernels. */
static inline parml_sgd1_fn parml_sgd1_for(int set, int f32)
{
    switch (set) {
#if PARML_X86
    case PARML_SET_AVX2: return f32 ? parml_sgd1_256_s : parml_sgd1_256_d;
    case PARML_SET_AVX512: return f32 ? parml_sgd1_512_s : parml_sgd1_512_d;
#endif
#if PARML_ARM64
    case PARML_SET_NEON: return f32 ? parml_sgd1_neon_s : parml_sgd1_neon_d;
#endif
    default: return f32 ? parml_sgd1_gen_s : parml_sgd1_gen_d;
    }
}

#endif
