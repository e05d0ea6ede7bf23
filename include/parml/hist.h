/* Histogram-tree kernels: binning, per-node gradient histograms, best split per feature, and row
 * partitioning. Included by _histogram.pyx, and through hist_grow.h by _grower.pyx.
 *
 * Layout: binned X is column-major uint8, B[f * n + i] (each feature's bins contiguous, so a
 * feature-parallel histogram task streams one column). Bin `missing_bin` (= the number of
 * non-missing bins of the widest feature, at most 255) holds NaN. A node's rows are an int32
 * list; its gradients and hessians are gathered into node order once, so the per-feature loops
 * read them sequentially (LightGBM's "ordered gradients").
 *
 * Histogram strategies (both exact: counts are integers, sums are float64 in a fixed order):
 *   features  task = a block of features; each task streams the node's rows for its features
 *   samples   task = a block of rows into its own full histogram; blocks summed in task order
 *             (for few features and many rows, where features cannot feed the threads)
 */
#ifndef PARML_HIST_H
#define PARML_HIST_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool_api.h"

typedef struct {
    double g;        /* sum of gradients */
    double h;        /* sum of hessians */
    uint32_t count;  /* rows */
    uint32_t pad;
} parml_hbin;

/* ---- binning --------------------------------------------------------------------------------
 * bin(x) = number of edges < x, i.e. x <= edges[b] lands in bin b (the last bin is open); NaN
 * goes to missing_bin. Edges of feature f: edges[eoff[f] .. eoff[f] + 255), padded with +inf. */
typedef struct {
    const char *X;           /* IN  n x d row-major, float64 or float32 */
    ptrdiff_t n, d, row_bytes;
    int is_float;
    const double *edges;     /* IN  concatenated edges */
    const int64_t *eoff;     /* IN  d + 1 offsets */
    uint8_t missing_bin;
    uint8_t *B;              /* OUT d x n */
    ptrdiff_t block;
} parml_bin_ctx;

/* bin(x) = the number of edges < x, over a feature's edges padded to 255 with +inf (which no x
 * exceeds): eight fixed steps, each a load, a compare and a select, with no branch and no
 * data-dependent trip count, so the searches of consecutive rows overlap in the out-of-order
 * core. (A search whose length depends on the value mispredicts its loop exit: 37 ns/value.) */
static inline uint8_t parml_bin_value(double x, const double *e, uint8_t missing)
{
    if (x != x) return missing;
    unsigned b = 0;
    b += e[b + 127] < x ? 128u : 0u;
    b += e[b + 63] < x ? 64u : 0u;
    b += e[b + 31] < x ? 32u : 0u;
    b += e[b + 15] < x ? 16u : 0u;
    b += e[b + 7] < x ? 8u : 0u;
    b += e[b + 3] < x ? 4u : 0u;
    b += e[b + 1] < x ? 2u : 0u;
    b += e[b] < x ? 1u : 0u;
    return (uint8_t)b;
}

static void parml_bin_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_bin_ctx *c = (const parml_bin_ctx *)vctx;
    const ptrdiff_t i0 = t * c->block, i1 = i0 + c->block < c->n ? i0 + c->block : c->n;
    (void)worker;
    for (ptrdiff_t f = 0; f < c->d; ++f) {
        const double *e = c->edges + c->eoff[f];   /* 255 edges, +inf padded */
        uint8_t *out = c->B + f * c->n;
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const char *row = c->X + i * c->row_bytes;
            const double x = c->is_float ? (double)((const float *)row)[f] : ((const double *)row)[f];
            out[i] = parml_bin_value(x, e, c->missing_bin);
        }
    }
}

/* ---- histograms ------------------------------------------------------------------------------ */
typedef struct {
    const uint8_t *B;        /* IN d x n */
    ptrdiff_t n, d, nbins;   /* nbins per feature slot in hist (256 or fewer) */
    const int32_t *rows;     /* IN node rows or NULL (all rows 0..m) */
    ptrdiff_t m;
    const float *og, *oh;    /* IN gradients/hessians in node order (oh NULL: constant hessian) */
    const float *g_full, *h_full;  /* IN per training row, or NULL: when set, og/oh (scratch,
                                    * m each) are first gathered from them in parallel */
    parml_hbin *hist;        /* OUT d x nbins */
    ptrdiff_t fblock;        /* feature strategy: tasks of 4 features (the rest: pairs) */
    ptrdiff_t rblock;        /* rows per task (sample strategy) */
    parml_hbin *partials;    /* sample strategy: ntasks x d x nbins */
} parml_hist_ctx;

static void parml_hist_rows(const parml_hist_ctx *c, ptrdiff_t f, ptrdiff_t r0, ptrdiff_t r1,
                            parml_hbin *H)
{
    const uint8_t *bf = c->B + f * c->n;
    const float *og = c->og, *oh = c->oh;
    if (c->rows == NULL) {
        if (oh == NULL)
            for (ptrdiff_t i = r0; i < r1; ++i) {
                parml_hbin *e = H + bf[i];
                e->g += og[i];
                e->count++;
            }
        else
            for (ptrdiff_t i = r0; i < r1; ++i) {
                parml_hbin *e = H + bf[i];
                e->g += og[i];
                e->h += oh[i];
                e->count++;
            }
    } else {
        const int32_t *rows = c->rows;
        if (oh == NULL)
            for (ptrdiff_t i = r0; i < r1; ++i) {
                parml_hbin *e = H + bf[rows[i]];
                e->g += og[i];
                e->count++;
            }
        else
            for (ptrdiff_t i = r0; i < r1; ++i) {
                parml_hbin *e = H + bf[rows[i]];
                e->g += og[i];
                e->h += oh[i];
                e->count++;
            }
    }
}

#include "hist_simd.h"

/* Features f0 .. f1 - 1 over node positions r0 .. r1 into H (their bins, zeroed by the caller):
 * with a vector loop (hist_simd.h), groups of 4 features share a pass; the result is
 * bit-identical. */
static void parml_hist_features(const parml_hist_ctx *c, ptrdiff_t f0, ptrdiff_t f1,
                                ptrdiff_t r0, ptrdiff_t r1, parml_hbin *H)
{
    const parml_hist_group_fn group = parml_hist_group;
    if (group != NULL && r1 - r0 >= PARML_HIST_SIMD_MIN_ROWS && c->nbins <= 256) {
        for (ptrdiff_t f = f0; f < f1; f += 4) {
            const int k = f1 - f < 4 ? (int)(f1 - f) : 4;
            group(c->B, c->n, c->nbins, c->rows, c->og, c->oh, f, k, r0, r1,
                  H + (f - f0) * c->nbins);
        }
        return;
    }
    for (ptrdiff_t f = f0; f < f1; ++f) parml_hist_rows(c, f, r0, r1, H + (f - f0) * c->nbins);
}

/* Feature tasks: groups of 4 features (one pass each), then the rest -- at least the last
 * 2 * n_threads features, plus what does not fill a group of 4 -- in pairs (and a single), so
 * that dynamic scheduling can even the threads out at the end (28 features on 2 threads:
 * 4,4,4,4,4,4,2,2 -> 14 features each). Returns the number of 4-feature tasks (kept in
 * parml_hist_ctx.fblock). Grouping never changes a histogram, only the speed. */
static ptrdiff_t parml_hist_groups4(ptrdiff_t d, int n_threads)
{
    const ptrdiff_t tail = n_threads > 1 ? 2 * (ptrdiff_t)n_threads : 0;
    return d > tail ? (d - tail) / 4 : 0;
}

static void parml_hist_task_range(ptrdiff_t d, ptrdiff_t g4, ptrdiff_t t, ptrdiff_t *f0,
                                  ptrdiff_t *f1)
{
    if (t < g4) {
        *f0 = 4 * t; *f1 = *f0 + 4;
    } else {
        *f0 = 4 * g4 + 2 * (t - g4); *f1 = *f0 + 2 < d ? *f0 + 2 : d;
    }
}

static void parml_hist_feature_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_hist_ctx *c = (const parml_hist_ctx *)vctx;
    ptrdiff_t f0, f1;
    (void)worker;
    parml_hist_task_range(c->d, c->fblock, t, &f0, &f1);
    parml_hbin *H = c->hist + f0 * c->nbins;
    memset(H, 0, (size_t)((f1 - f0) * c->nbins) * sizeof(parml_hbin));
    parml_hist_features(c, f0, f1, 0, c->m, H);
}

static void parml_hist_sample_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_hist_ctx *c = (const parml_hist_ctx *)vctx;
    const ptrdiff_t r0 = t * c->rblock, r1 = r0 + c->rblock < c->m ? r0 + c->rblock : c->m;
    parml_hbin *P = c->partials + t * c->d * c->nbins;
    (void)worker;
    memset(P, 0, (size_t)(c->d * c->nbins) * sizeof(parml_hbin));
    parml_hist_features(c, 0, c->d, r0, r1, P);
}

#define PARML_GATHER_BLOCK 16384

static void parml_gather_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_hist_ctx *c = (const parml_hist_ctx *)vctx;
    const ptrdiff_t i0 = t * PARML_GATHER_BLOCK;
    const ptrdiff_t i1 = i0 + PARML_GATHER_BLOCK < c->m ? i0 + PARML_GATHER_BLOCK : c->m;
    float *og = (float *)c->og, *oh = (float *)c->oh;
    (void)worker;
    for (ptrdiff_t i = i0; i < i1; ++i) og[i] = c->g_full[c->rows[i]];
    if (c->h_full != NULL)
        for (ptrdiff_t i = i0; i < i1; ++i) oh[i] = c->h_full[c->rows[i]];
}

/* hist (d x nbins) of the node's rows. strategy 0: features, 1: samples. A constant hessian
 * (oh == NULL) leaves h = 0: the caller knows it is count x constant. Returns 0 or -1 (memory).
 * With g_full set, the node's gradients are gathered into og/oh first, in parallel over row
 * blocks ("ordered gradients": every feature pass then reads them sequentially). */
static int parml_build_histogram(parml_hist_ctx *c, int strategy, int n_threads,
                                 parml_parallel_for_fn pf)
{
    if (c->g_full != NULL && c->rows != NULL && c->m > 0) {
        const ptrdiff_t ng = (c->m + PARML_GATHER_BLOCK - 1) / PARML_GATHER_BLOCK;
        if (n_threads > 1 && ng > 1 && pf != NULL) pf(ng, n_threads, parml_gather_task, c);
        else for (ptrdiff_t t = 0; t < ng; ++t) parml_gather_task(c, t, 0);
    }
    if (c->d == 0 || c->nbins == 0) return 0;
    if (strategy == 0) {
        /* c->fblock: the number of 4-feature tasks; the rest are pairs */
        c->fblock = parml_hist_groups4(c->d, n_threads);
        const ptrdiff_t ntask = c->fblock + (c->d - 4 * c->fblock + 1) / 2;
        if (n_threads > 1 && ntask > 1 && pf != NULL) pf(ntask, n_threads, parml_hist_feature_task, c);
        else for (ptrdiff_t t = 0; t < ntask; ++t) parml_hist_feature_task(c, t, 0);
        return 0;
    }
    /* samples: blocks cut by the node's size alone, so the sum order never depends on threads */
    const ptrdiff_t RB = 16384;
    ptrdiff_t ntask = (c->m + RB - 1) / RB;
    if (ntask < 1) ntask = 1;
    c->rblock = (c->m + ntask - 1) / ntask;
    if (c->rblock < 1) c->rblock = 1;
    const size_t per = (size_t)(c->d * c->nbins);
    c->partials = (parml_hbin *)malloc((size_t)ntask * per * sizeof(parml_hbin));
    if (c->partials == NULL) return -1;
    if (n_threads > 1 && ntask > 1 && pf != NULL) pf(ntask, n_threads, parml_hist_sample_task, c);
    else for (ptrdiff_t t = 0; t < ntask; ++t) parml_hist_sample_task(c, t, 0);
    memcpy(c->hist, c->partials, per * sizeof(parml_hbin));
    for (ptrdiff_t t = 1; t < ntask; ++t) {
        const parml_hbin *P = c->partials + t * (ptrdiff_t)per;
        for (size_t k = 0; k < per; ++k) {
            c->hist[k].g += P[k].g;
            c->hist[k].h += P[k].h;
            c->hist[k].count += P[k].count;
        }
    }
    free(c->partials);
    c->partials = NULL;
    return 0;
}

/* sibling = parent - child, bin by bin (the subtraction trick: build only the smaller child). */
static void parml_hist_subtract(const parml_hbin *parent, const parml_hbin *child,
                                parml_hbin *out, ptrdiff_t count)
{
    for (ptrdiff_t k = 0; k < count; ++k) {
        out[k].g = parent[k].g - child[k].g;
        out[k].h = parent[k].h - child[k].h;
        out[k].count = parent[k].count - child[k].count;
        out[k].pad = 0;
    }
}

/* ---- split finding ---------------------------------------------------------------------------
 * For feature f with nb[f] non-missing bins: left = bins 0..t, right = the rest; missing rows go
 * left or right, whichever gains more (ties: right). gain = GL^2/(HL+l2) + GR^2/(HR+l2)
 * - G^2/(H+l2). A constant hessian uses h = count * hconst. */
typedef struct {
    double gain;
    int32_t bin;          /* left = bins <= bin */
    int32_t missing_left;
    double gl, hl, gr, hr;
    int64_t nl, nr;
    int32_t is_cat;       /* categorical split: rows whose bin is in cats go left */
    int32_t pad;
    uint32_t cats[8];     /* 256-bit set of bins (categories; the missing bin too) going left */
} parml_split;

static inline int parml_cat_has(const uint32_t *cats, int b) { return (cats[b >> 5] >> (b & 31)) & 1; }

typedef struct {
    const parml_hbin *hist;  /* IN d x nbins */
    ptrdiff_t d, nbins;
    const int32_t *nb;       /* IN non-missing bins per feature */
    int32_t missing_bin;
    double hconst;           /* > 0: constant hessian */
    double G, H;             /* node sums */
    int64_t N;
    double l2, min_hessian;
    int64_t min_leaf;
    const uint8_t *allowed;  /* IN d flags or NULL (all features) */
    const uint8_t *is_cat;   /* IN d flags or NULL (no categorical features) */
    parml_split *out;        /* OUT d, one best split per feature (gain -inf: none) */
    ptrdiff_t fblock;
} parml_split_ctx;

static inline double parml_score(double g, double h, double l2) { return g * g / (h + l2); }

/* ---- categorical split: bins are category codes. As scikit-learn and LightGBM do, categories
 * with at least CAT_SUPPORT rows (the missing bin counts as a category when the node has missing
 * rows) are ordered by G / (H + CAT_SMOOTH); every prefix of that order, in both directions, is a
 * candidate left set. Categories below the support always go right. Exact gain as for ordinal
 * splits. */
#define PARML_CAT_SUPPORT 10
#define PARML_CAT_SMOOTH 10.0

static void parml_split_categorical(const parml_split_ctx *c, ptrdiff_t f, parml_split *best)
{
    const parml_hbin *H = c->hist + f * c->nbins;
    const double hc = c->hconst;
    int32_t used[256];
    double key[256];
    int nu = 0;
    for (int32_t b = 0; b < c->nb[f] && b < 256; ++b)
        if (H[b].count >= PARML_CAT_SUPPORT) used[nu++] = b;
    if (H[c->missing_bin].count >= PARML_CAT_SUPPORT) used[nu++] = c->missing_bin;
    if (nu < 2 && !(nu == 1 && (int64_t)H[used[0]].count < c->N)) return;
    for (int k = 0; k < nu; ++k) {
        const parml_hbin *e = H + used[k];
        key[k] = e->g / ((hc > 0 ? hc * e->count : e->h) + PARML_CAT_SMOOTH);
    }
    for (int k = 1; k < nu; ++k) {  /* insertion sort by key, then bin: deterministic */
        const int32_t ub = used[k];
        const double kk = key[k];
        int j = k - 1;
        while (j >= 0 && (key[j] > kk || (key[j] == kk && used[j] > ub))) {
            used[j + 1] = used[j]; key[j + 1] = key[j]; --j;
        }
        used[j + 1] = ub; key[j + 1] = kk;
    }
    const double parent = parml_score(c->G, c->H, c->l2);
    int best_dir = -1, best_k = -1;
    for (int dir = 0; dir < 2; ++dir) {
        double gl = 0.0, hl = 0.0;
        int64_t nl = 0;
        for (int k = 0; k < nu; ++k) {  /* left = the first k + 1 categories of the order */
            const parml_hbin *e = H + used[dir ? nu - 1 - k : k];
            gl += e->g;
            hl += hc > 0 ? hc * e->count : e->h;
            nl += e->count;
            const int64_t nr = c->N - nl;
            if (nr <= 0) break;
            if (nl < c->min_leaf || nr < c->min_leaf) continue;
            const double gr = c->G - gl, hr = c->H - hl;
            if (hl < c->min_hessian || hr < c->min_hessian) continue;
            const double gain = parml_score(gl, hl, c->l2) + parml_score(gr, hr, c->l2) - parent;
            if (gain > best->gain) {
                best->gain = gain; best->gl = gl; best->hl = hl; best->gr = gr; best->hr = hr;
                best->nl = nl; best->nr = nr;
                best_dir = dir; best_k = k;
            }
        }
    }
    if (best_dir < 0) return;
    best->is_cat = 1;
    best->bin = -1;
    memset(best->cats, 0, sizeof(best->cats));
    for (int k = 0; k <= best_k; ++k) {
        const int32_t b = used[best_dir ? nu - 1 - k : k];
        best->cats[b >> 5] |= 1u << (b & 31);
    }
    const int has_missing = H[c->missing_bin].count > 0;
    best->missing_left = has_missing ? parml_cat_has(best->cats, c->missing_bin)
                                     : best->nl >= best->nr;  /* unseen NaN: larger child */
    if (best->missing_left) best->cats[c->missing_bin >> 5] |= 1u << (c->missing_bin & 31);
}

static void parml_split_feature(const parml_split_ctx *c, ptrdiff_t f)
{
    parml_split best;
    best.gain = -INFINITY;
    best.bin = -1;
    best.missing_left = 0;
    best.gl = best.hl = best.gr = best.hr = 0;
    best.nl = best.nr = 0;
    best.is_cat = 0;
    best.pad = 0;
    memset(best.cats, 0, sizeof(best.cats));
    if (c->allowed != NULL && !c->allowed[f]) {
        c->out[f] = best;
        return;
    }
    if (c->is_cat != NULL && c->is_cat[f]) {
        parml_split_categorical(c, f, &best);
        c->out[f] = best;
        return;
    }
    const parml_hbin *H = c->hist + f * c->nbins;
    const parml_hbin *M = H + c->missing_bin;
    const double parent = parml_score(c->G, c->H, c->l2);
    const double hc = c->hconst;
    const int has_missing = M->count > 0;
    for (int ml = 0; ml <= has_missing; ++ml) { /* ml: missing rows go left */
        double gl = ml ? M->g : 0.0, hl = ml ? (hc > 0 ? hc * M->count : M->h) : 0.0;
        int64_t nl = ml ? (int64_t)M->count : 0;
        /* thresholds: with missing left, b = -1 sends only the missing rows left; with missing
         * right, b = nb - 1 sends only them right */
        const int32_t last = ml ? c->nb[f] - 2 : (has_missing ? c->nb[f] - 1 : c->nb[f] - 2);
        for (int32_t b = ml ? -1 : 0; b <= last; ++b) {
            if (b >= 0) {
                gl += H[b].g;
                hl += hc > 0 ? hc * H[b].count : H[b].h;
                nl += H[b].count;
            }
            const int64_t nr = c->N - nl;
            if (nl < c->min_leaf) continue;
            if (nr < c->min_leaf) break;
            const double gr = c->G - gl, hr = c->H - hl;
            if (hl < c->min_hessian || hr < c->min_hessian) continue;
            const double gain = parml_score(gl, hl, c->l2) + parml_score(gr, hr, c->l2) - parent;
            if (gain > best.gain) {
                best.gain = gain;
                best.bin = b;
                best.missing_left = ml;
                best.gl = gl; best.hl = hl; best.gr = gr; best.hr = hr;
                best.nl = nl; best.nr = nr;
            }
        }
    }
    if (!has_missing && best.bin >= 0) best.missing_left = best.nl >= best.nr; /* unseen NaN */
    c->out[f] = best;
}

static void parml_split_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_split_ctx *c = (const parml_split_ctx *)vctx;
    const ptrdiff_t f0 = t * c->fblock, f1 = f0 + c->fblock < c->d ? f0 + c->fblock : c->d;
    (void)worker;
    for (ptrdiff_t f = f0; f < f1; ++f) parml_split_feature(c, f);
}

static void parml_find_splits(parml_split_ctx *c, int n_threads, parml_parallel_for_fn pf)
{
    ptrdiff_t ntask = n_threads > 1 ? 2 * (ptrdiff_t)n_threads : 1;
    if (ntask > c->d) ntask = c->d;
    if (ntask < 1) ntask = 1;
    c->fblock = (c->d + ntask - 1) / ntask;
    ntask = c->d > 0 ? (c->d + c->fblock - 1) / c->fblock : 0;
    if (n_threads > 1 && ntask > 1 && pf != NULL) pf(ntask, n_threads, parml_split_task, c);
    else for (ptrdiff_t t = 0; t < ntask; ++t) parml_split_task(c, t, 0);
}

/* ---- partition --------------------------------------------------------------------------------
 * rows[0..m) -> left rows first, then right, each in their original order (stable, so results
 * never depend on threads). tmp: m int32 of scratch. Returns the left count. */
static inline int parml_goes_left(int32_t b, int32_t bin, int missing_left, int32_t missing_bin,
                                  const uint32_t *cats)
{
    if (cats != NULL) return parml_cat_has(cats, b);
    return b == missing_bin ? missing_left : b <= bin;
}

static ptrdiff_t parml_partition(const uint8_t *B, ptrdiff_t n, int32_t *rows, ptrdiff_t m,
                                 ptrdiff_t feature, int32_t bin, int missing_left,
                                 int32_t missing_bin, int32_t *tmp, const uint32_t *cats)
{
    const uint8_t *bf = B + feature * n;
    ptrdiff_t nl = 0, nr = 0;
    for (ptrdiff_t i = 0; i < m; ++i) {
        const int32_t r = rows[i];
        const int32_t b = bf[r];
        const int left = parml_goes_left(b, bin, missing_left, missing_bin, cats);
        if (left) rows[nl++] = r;
        else tmp[nr++] = r;
    }
    memcpy(rows + nl, tmp, (size_t)nr * sizeof(int32_t));
    return nl;
}

/* The same partition in parallel for large nodes: blocks of rows (cut by m alone) count their
 * left rows, prefix sums give every block its place, then each block writes its left and right
 * rows into tmp at those places and the result is copied back. Same output as the serial one. */
#define PARML_PART_BLOCK 32768
typedef struct {
    const uint8_t *bf;
    int32_t *rows, *tmp;
    ptrdiff_t m, nl_total;
    int32_t bin, missing_left, missing_bin;
    const uint32_t *cats;       /* categorical split, or NULL */
    ptrdiff_t *lcount, *loff;   /* per block */
    int phase;
} parml_part_ctx;

static void parml_part_task(void *vctx, ptrdiff_t t, int worker)
{
    parml_part_ctx *c = (parml_part_ctx *)vctx;
    const ptrdiff_t i0 = t * PARML_PART_BLOCK;
    const ptrdiff_t i1 = i0 + PARML_PART_BLOCK < c->m ? i0 + PARML_PART_BLOCK : c->m;
    (void)worker;
    if (c->phase == 0) {
        ptrdiff_t k = 0;
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const int32_t b = c->bf[c->rows[i]];
            k += parml_goes_left(b, c->bin, c->missing_left, c->missing_bin, c->cats);
        }
        c->lcount[t] = k;
    } else if (c->phase == 1) {
        ptrdiff_t l = c->loff[t], r = c->nl_total + (i0 - c->loff[t]);
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const int32_t row = c->rows[i];
            const int32_t b = c->bf[row];
            if (parml_goes_left(b, c->bin, c->missing_left, c->missing_bin, c->cats))
                c->tmp[l++] = row;
            else c->tmp[r++] = row;
        }
    } else {
        memcpy(c->rows + i0, c->tmp + i0, (size_t)(i1 - i0) * sizeof(int32_t));
    }
}

static ptrdiff_t parml_partition_parallel(const uint8_t *B, ptrdiff_t n, int32_t *rows,
                                          ptrdiff_t m, ptrdiff_t feature, int32_t bin,
                                          int missing_left, int32_t missing_bin, int32_t *tmp,
                                          ptrdiff_t *scratch, int n_threads,
                                          parml_parallel_for_fn pf, const uint32_t *cats)
{
    const ptrdiff_t nt = (m + PARML_PART_BLOCK - 1) / PARML_PART_BLOCK;
    if (n_threads < 2 || nt < 2 || pf == NULL)
        return parml_partition(B, n, rows, m, feature, bin, missing_left, missing_bin, tmp, cats);
    parml_part_ctx c;
    c.bf = B + feature * n; c.rows = rows; c.tmp = tmp; c.m = m;
    c.bin = bin; c.missing_left = missing_left; c.missing_bin = missing_bin; c.cats = cats;
    c.lcount = scratch; c.loff = scratch + nt;
    c.phase = 0;
    pf(nt, n_threads, parml_part_task, &c);
    ptrdiff_t acc = 0;
    for (ptrdiff_t t = 0; t < nt; ++t) { c.loff[t] = acc; acc += c.lcount[t]; }
    c.nl_total = acc;
    c.phase = 1;
    pf(nt, n_threads, parml_part_task, &c);
    c.phase = 2;
    pf(nt, n_threads, parml_part_task, &c);
    return acc;
}

#endif
