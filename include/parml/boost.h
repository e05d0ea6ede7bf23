/* The boosting loop's per-row work in parallel: gradients and hessians of the loss (written as
 * float32, what the histogram kernels read) and the raw-score update from a grown tree's leaves.
 * Included by _boost.pyx only. Rows are independent, so any blocking gives the same bits. */
#ifndef PARML_BOOST_H
#define PARML_BOOST_H

#include <math.h>
#include <stdint.h>

#include "pool_api.h"

enum { PARML_GB_SQUARED = 0, PARML_GB_LOGISTIC = 1, PARML_GB_SOFTMAX = 2 };
#define PARML_GB_BLOCK 8192

typedef struct {
    int loss;
    const double *raw;   /* IN  n x K (row-major) */
    const double *y;     /* IN  n: target, 0/1 label, or class index (softmax) */
    const double *sw;    /* IN  n sample weights or NULL */
    ptrdiff_t n, K;
    float *g, *h;        /* OUT K x n each (h NULL: squared error without weights) */
} parml_grad_ctx;

static void parml_grad_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_grad_ctx *c = (const parml_grad_ctx *)vctx;
    const ptrdiff_t i0 = t * PARML_GB_BLOCK;
    const ptrdiff_t i1 = i0 + PARML_GB_BLOCK < c->n ? i0 + PARML_GB_BLOCK : c->n;
    const ptrdiff_t n = c->n, K = c->K;
    (void)worker;
    if (c->loss == PARML_GB_SQUARED) {
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const double w = c->sw ? c->sw[i] : 1.0;
            c->g[i] = (float)((c->raw[i] - c->y[i]) * w);
            if (c->h) c->h[i] = (float)w;
        }
    } else if (c->loss == PARML_GB_LOGISTIC) {
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const double w = c->sw ? c->sw[i] : 1.0;
            const double p = 1.0 / (1.0 + exp(-c->raw[i]));
            c->g[i] = (float)((p - c->y[i]) * w);
            c->h[i] = (float)(p * (1.0 - p) * w);
        }
    } else {  /* softmax over K outputs, one row at a time */
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const double *r = c->raw + i * K;
            const double w = c->sw ? c->sw[i] : 1.0;
            double mx = r[0], s = 0.0;
            for (ptrdiff_t k = 1; k < K; ++k) mx = r[k] > mx ? r[k] : mx;
            for (ptrdiff_t k = 0; k < K; ++k) s += exp(r[k] - mx);
            const ptrdiff_t yi = (ptrdiff_t)c->y[i];
            for (ptrdiff_t k = 0; k < K; ++k) {
                const double p = exp(r[k] - mx) / s;
                c->g[k * n + i] = (float)((p - (k == yi)) * w);
                c->h[k * n + i] = (float)(p * (1.0 - p) * w);
            }
        }
    }
}

/* raw[rows[j] * K + k] += value[l] for j in [lo[l], hi[l]) of every leaf l: a grown tree's leaves
 * are disjoint spans of its partitioned row buffer, so tasks (leaves) never touch the same row. */
typedef struct {
    double *raw;
    ptrdiff_t K, k;
    const int32_t *rows;
    const int64_t *lo, *hi;
    const double *value;
} parml_leaves_ctx;

static void parml_leaves_task(void *vctx, ptrdiff_t l, int worker)
{
    const parml_leaves_ctx *c = (const parml_leaves_ctx *)vctx;
    const double v = c->value[l];
    (void)worker;
    for (int64_t j = c->lo[l]; j < c->hi[l]; ++j) c->raw[(ptrdiff_t)c->rows[j] * c->K + c->k] += v;
}

#endif
