/* Element-wise out = a + b, data-parallel over blocks of a flat contiguous range or of rows of
 * strided 2-D views, on parml's task pool. Used by parml.add (_elementwise.pyx) and the C API
 * (parml.h). Bandwidth-bound: portable C that the compiler vectorises at the baseline ISA. */
#ifndef PARML_ELEMENTWISE_H
#define PARML_ELEMENTWISE_H

#include <stddef.h>

#include "pool_api.h"

/* Elements per task of the flat kernel: 64K = 512 KB of doubles per operand, large enough to
 * amortise a task claim, small enough that two threads split medium arrays evenly. */
#define PARML_ADD_BLOCK 65536

typedef struct {
    const char *a, *b;        /* IN */
    char *out;                /* OUT  may be a or b (element-wise, so in place is safe) */
    ptrdiff_t m, n;           /* rows, columns (flat: n = length) */
    ptrdiff_t rs_a, cs_a, rs_b, cs_b, rs_o, cs_o;   /* strides in bytes (rows kernel) */
    ptrdiff_t rows_per_task;
} parml_add_ctx;

#define PARML_DEFINE_ADD(T, SFX)                                                                 \
static void parml_add_flat_task_##SFX(void *vc, ptrdiff_t t, int worker)                        \
{                                                                                                \
    const parml_add_ctx *c = (const parml_add_ctx *)vc;                                          \
    const T *a = (const T *)c->a, *b = (const T *)c->b;                                         \
    T *out = (T *)c->out;                                                                        \
    const ptrdiff_t lo = t * PARML_ADD_BLOCK;                                                    \
    const ptrdiff_t hi = lo + PARML_ADD_BLOCK < c->n ? lo + PARML_ADD_BLOCK : c->n;              \
    (void)worker;                                                                                \
    for (ptrdiff_t i = lo; i < hi; ++i) out[i] = a[i] + b[i];                                    \
}                                                                                                \
static void parml_add_rows_task_##SFX(void *vc, ptrdiff_t t, int worker)                        \
{                                                                                                \
    const parml_add_ctx *c = (const parml_add_ctx *)vc;                                          \
    const ptrdiff_t lo = t * c->rows_per_task;                                                   \
    const ptrdiff_t hi = lo + c->rows_per_task < c->m ? lo + c->rows_per_task : c->m;            \
    (void)worker;                                                                                \
    for (ptrdiff_t i = lo; i < hi; ++i) {                                                        \
        const char *ai = c->a + i * c->rs_a, *bi = c->b + i * c->rs_b;                           \
        char *oi = c->out + i * c->rs_o;                                                         \
        for (ptrdiff_t j = 0; j < c->n; ++j)                                                     \
            *(T *)(oi + j * c->cs_o) = *(const T *)(ai + j * c->cs_a)                            \
                                       + *(const T *)(bi + j * c->cs_b);                         \
    }                                                                                            \
}

PARML_DEFINE_ADD(double, d)
PARML_DEFINE_ADD(float, s)
#undef PARML_DEFINE_ADD

static int parml_add_run(ptrdiff_t ntasks, int n_threads, parml_task_fn fn, parml_add_ctx *c,
                         parml_parallel_for_fn pf)
{
    if (n_threads > 1 && ntasks > 1 && pf != NULL) return pf(ntasks, n_threads, fn, c);
    for (ptrdiff_t t = 0; t < ntasks; ++t) fn(c, t, 0);
    return 0;
}

/* out[i] = a[i] + b[i], i < n, contiguous; f32 selects float over double. */
static int parml_add_flat(const void *a, const void *b, void *out, ptrdiff_t n, int f32,
                          int n_threads, parml_parallel_for_fn pf)
{
    parml_add_ctx c;
    if (n <= 0) return 0;
    c.a = (const char *)a;
    c.b = (const char *)b;
    c.out = (char *)out;
    c.m = 1;
    c.n = n;
    return parml_add_run((n + PARML_ADD_BLOCK - 1) / PARML_ADD_BLOCK, n_threads,
                         f32 ? parml_add_flat_task_s : parml_add_flat_task_d, &c, pf);
}

/* out[i, j] = a[i, j] + b[i, j] over m x n views with byte strides (0 broadcasts an axis); out
 * must not partly overlap a or b. */
static int parml_add_rows(const void *a, ptrdiff_t rs_a, ptrdiff_t cs_a, const void *b,
                          ptrdiff_t rs_b, ptrdiff_t cs_b, void *out, ptrdiff_t rs_o,
                          ptrdiff_t cs_o, ptrdiff_t m, ptrdiff_t n, int f32, int n_threads,
                          parml_parallel_for_fn pf)
{
    parml_add_ctx c;
    if (m <= 0 || n <= 0) return 0;
    c.a = (const char *)a;
    c.b = (const char *)b;
    c.out = (char *)out;
    c.m = m;
    c.n = n;
    c.rs_a = rs_a; c.cs_a = cs_a;
    c.rs_b = rs_b; c.cs_b = cs_b;
    c.rs_o = rs_o; c.cs_o = cs_o;
    c.rows_per_task = PARML_ADD_BLOCK / n > 1 ? PARML_ADD_BLOCK / n : 1;
    return parml_add_run((m + c.rows_per_task - 1) / c.rows_per_task, n_threads,
                         f32 ? parml_add_rows_task_s : parml_add_rows_task_d, &c, pf);
}

#endif
