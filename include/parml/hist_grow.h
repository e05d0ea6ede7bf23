/* One gradient-boosting tree grown best-first in one native call, on the hist.h kernels: the
 * root histogram, then repeatedly the candidate with the largest gain is split: its rows are
 * partitioned (in parallel for large nodes), the smaller child's histogram is built (gathering
 * its gradients in parallel), the sibling's is the parent's minus it, and both children's best
 * splits are found. Included by _histogram.pyx after hist.h.
 *
 * Same rules and order as a Python driver over the same kernels would have: ties in the
 * candidate heap go to the older node, ties among features to the first feature. Every kernel is
 * deterministic, so the tree is the same for any n_threads. Small nodes run on one thread: a
 * parallel region costs more than their work. */
#ifndef PARML_HIST_GROW_H
#define PARML_HIST_GROW_H

#include "hist.h"

#define PARML_GROW_MIN_GAIN 1e-7
#define PARML_GROW_PAR_WORK 65536  /* rows x features below which a node's work is serial */

/* The growth rules, written once: the native grower below uses them, and parml.dask's replay of
 * best-first growth over summed histograms reads them through parml._kernels._histogram
 * (leaf_value, may_split, MIN_GAIN). A split needs a gain above PARML_GROW_MIN_GAIN. */
static inline double parml_grow_leaf(double G, double H, double l2)
{
    return H + l2 > 0 ? -G / (H + l2) : 0.0;
}

/* A node of N rows at depth `depth` may be split (max_depth < 0: no limit). */
static inline int parml_grow_may_split(int64_t N, int depth, int64_t min_leaf, int max_depth)
{
    return N >= 2 * min_leaf && (max_depth < 0 || depth < max_depth);
}

typedef struct {
    /* IN data */
    const uint8_t *B;
    ptrdiff_t n, d;
    const int32_t *nb;
    int32_t missing_bin, nbins;
    const float *g, *h;          /* per training row; h NULL: constant hessian hconst */
    double hconst;
    const uint8_t *is_cat;       /* d flags (categorical features) or NULL */
    /* IN parameters */
    ptrdiff_t max_leaves;
    int max_depth;               /* < 0: none */
    int64_t min_leaf;
    double l2, min_hessian;
    int strategy, n_threads;
    parml_parallel_for_fn pf;
    /* INOUT rows: the tree's rows (m), partitioned in place; all_rows: rows are 0..n-1 */
    int32_t *rows;
    ptrdiff_t m;
    int all_rows;
    /* OUT nodes, capacity 2 * max_leaves - 1 */
    int32_t *feature, *bin, *left, *right, *depth;
    uint8_t *missing_left;
    double *value, *gain;
    int64_t *count, *lo, *hi;    /* lo/hi: the node's span of rows */
    uint8_t *node_cat;           /* 1: a categorical split, whose left set is cats[8 * node..] */
    uint32_t *cats;
    ptrdiff_t n_nodes;
} parml_grow_ctx;

typedef struct { double gain; int32_t node; } parml_grow_cand;

static int parml_grow_before(parml_grow_cand a, parml_grow_cand b)
{   /* Python's heapq on (-gain, node): larger gain first, then the older node */
    return a.gain > b.gain || (a.gain == b.gain && a.node < b.node);
}

static void parml_grow_push(parml_grow_cand *hp, ptrdiff_t *n, parml_grow_cand x)
{
    ptrdiff_t i = (*n)++;
    while (i > 0 && parml_grow_before(x, hp[(i - 1) / 2])) { hp[i] = hp[(i - 1) / 2]; i = (i - 1) / 2; }
    hp[i] = x;
}

static parml_grow_cand parml_grow_pop(parml_grow_cand *hp, ptrdiff_t *n)
{
    parml_grow_cand top = hp[0], x = hp[--(*n)];
    ptrdiff_t i = 0;
    for (;;) {
        ptrdiff_t l = 2 * i + 1, b = i;
        parml_grow_cand bx = x;
        if (l < *n && parml_grow_before(hp[l], bx)) { b = l; bx = hp[l]; }
        if (l + 1 < *n && parml_grow_before(hp[l + 1], bx)) b = l + 1;
        if (b == i) break;
        hp[i] = hp[b];
        i = b;
    }
    if (*n > 0) hp[i] = x;
    return top;
}

typedef struct {
    parml_grow_ctx *c;
    parml_hbin **hist;       /* per node: its histogram while it is a candidate */
    parml_split *split;      /* per node: its chosen split */
    parml_split *fs;         /* 2 x d: per-feature bests of the two children (scratch) */
    float *og, *oh;          /* m: gathered gradients (scratch) */
    int32_t *tmp;            /* m: partition scratch */
    ptrdiff_t *pscratch;
} parml_grow_ws;

static int parml_grow_threads(const parml_grow_ctx *c, ptrdiff_t rows)
{
    return rows * c->d >= PARML_GROW_PAR_WORK ? c->n_threads : 1;
}

static int parml_grow_hist(parml_grow_ws *w, ptrdiff_t lo, ptrdiff_t hi, int all, parml_hbin *out)
{
    const parml_grow_ctx *c = w->c;
    parml_hist_ctx h;
    memset(&h, 0, sizeof(h));
    h.B = c->B; h.n = c->n; h.d = c->d; h.nbins = c->nbins;
    h.m = hi - lo;
    h.hist = out;
    if (all) {
        h.rows = NULL; h.og = c->g; h.oh = c->h;
    } else {
        h.rows = c->rows + lo;
        h.g_full = c->g; h.h_full = c->h;
        h.og = w->og; h.oh = c->h ? w->oh : NULL;
    }
    return parml_build_histogram(&h, c->strategy, parml_grow_threads(c, hi - lo), c->pf);
}

static void parml_grow_sums(const parml_grow_ctx *c, const parml_hbin *H, double *G, double *Hs,
                            int64_t *N)
{
    double g = 0.0, h = 0.0;
    int64_t k = 0;
    for (ptrdiff_t b = 0; b < c->nbins; ++b) { g += H[b].g; h += H[b].h; k += H[b].count; }
    *G = g; *N = k;
    *Hs = c->hconst > 0 ? c->hconst * (double)k : h;
}

/* A node's split search: set up its context (out = its per-feature scratch); 0 if the node
 * cannot split (too few rows, or at max_depth). */
static int parml_grow_prepare(parml_grow_ws *w, int32_t node, const parml_hbin *H, double G,
                              double Hs, int64_t N, parml_split *fs, parml_split_ctx *s)
{
    const parml_grow_ctx *c = w->c;
    if (!parml_grow_may_split(N, c->depth[node], c->min_leaf, c->max_depth)) return 0;
    memset(s, 0, sizeof(*s));
    s->hist = H; s->d = c->d; s->nbins = c->nbins; s->nb = c->nb; s->missing_bin = c->missing_bin;
    s->hconst = c->hconst; s->G = G; s->H = Hs; s->N = N;
    s->l2 = c->l2; s->min_hessian = c->min_hessian; s->min_leaf = c->min_leaf;
    s->allowed = NULL; s->is_cat = c->is_cat; s->out = fs;
    return 1;
}

/* The best of a node's per-feature splits into w->split[node]; 1 if it is worth taking. Ties
 * go to the first feature. */
static int parml_grow_pick(parml_grow_ws *w, int32_t node, const parml_split *fs)
{
    const parml_grow_ctx *c = w->c;
    ptrdiff_t best = 0;
    for (ptrdiff_t f = 1; f < c->d; ++f)
        if (fs[f].gain > fs[best].gain) best = f;
    if (!(c->d > 0 && fs[best].gain > PARML_GROW_MIN_GAIN)) return 0;
    w->split[node] = fs[best];
    c->feature[node] = (int32_t)best;  /* provisional until the node is split */
    return 1;
}

/* Both children's split searches in one parallel region: task t is feature t % d of child
 * t / d (a child's search alone, 28 features x 256 bins, is too small to share out). */
typedef struct { parml_split_ctx *s[2]; ptrdiff_t d; } parml_grow_split2;

static void parml_grow_split2_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_grow_split2 *q = (const parml_grow_split2 *)vctx;
    (void)worker;
    parml_split_feature(q->s[t / q->d], t % q->d);
}

/* The root's best split into w->split[node]; returns 1 if it has one worth taking. */
static int parml_grow_best(parml_grow_ws *w, int32_t node, const parml_hbin *H, double G,
                           double Hs, int64_t N)
{
    const parml_grow_ctx *c = w->c;
    parml_split_ctx s;
    if (!parml_grow_prepare(w, node, H, G, Hs, N, w->fs, &s)) return 0;
    parml_find_splits(&s, c->d * c->nbins >= 16384 ? c->n_threads : 1, c->pf);
    return parml_grow_pick(w, node, w->fs);
}


static int32_t parml_grow_node(parml_grow_ctx *c, int64_t count, double value, int depth,
                               int64_t lo, int64_t hi)
{
    const int32_t id = (int32_t)c->n_nodes++;
    c->feature[id] = 0; c->bin[id] = -1; c->left[id] = -1; c->right[id] = -1;
    c->missing_left[id] = 0; c->gain[id] = 0.0;
    c->node_cat[id] = 0;
    memset(c->cats + 8 * (ptrdiff_t)id, 0, 8 * sizeof(uint32_t));
    c->value[id] = value; c->count[id] = count; c->depth[id] = depth;
    c->lo[id] = lo; c->hi[id] = hi;
    return id;
}

/* Grow the tree; returns 0, or -1 when memory ran out. */
static int parml_grow_tree(parml_grow_ctx *c)
{
    const ptrdiff_t cap = 2 * c->max_leaves - 1;
    const size_t hsize = (size_t)(c->d * c->nbins) * sizeof(parml_hbin);
    parml_grow_ws w;
    parml_grow_cand *heap = NULL;
    int rc = -1;
    memset(&w, 0, sizeof(w));
    w.c = c;
    c->n_nodes = 0;
    w.hist = (parml_hbin **)calloc((size_t)cap, sizeof(parml_hbin *));
    w.split = (parml_split *)calloc((size_t)cap, sizeof(parml_split));
    w.fs = (parml_split *)malloc(sizeof(parml_split) * (size_t)(c->d > 0 ? 2 * c->d : 1));
    w.og = (float *)malloc(sizeof(float) * (size_t)(c->m > 0 ? c->m : 1));
    w.oh = (float *)malloc(sizeof(float) * (size_t)(c->m > 0 ? c->m : 1));
    w.tmp = (int32_t *)malloc(sizeof(int32_t) * (size_t)(c->m > 0 ? c->m : 1));
    w.pscratch = (ptrdiff_t *)malloc(sizeof(ptrdiff_t) * (size_t)(2 * (c->m / PARML_PART_BLOCK + 2)));
    heap = (parml_grow_cand *)malloc(sizeof(*heap) * (size_t)(c->max_leaves + 1));
    if (!w.hist || !w.split || !w.fs || !w.og || !w.oh || !w.tmp || !w.pscratch || !heap) goto out;

    parml_hbin *root_h = (parml_hbin *)malloc(hsize ? hsize : 1);
    if (!root_h) goto out;
    if (parml_grow_hist(&w, 0, c->m, c->all_rows, root_h)) { free(root_h); goto out; }
    double G, Hs;
    int64_t N;
    parml_grow_sums(c, root_h, &G, &Hs, &N);
    const int32_t root = parml_grow_node(c, N, parml_grow_leaf(G, Hs, c->l2), 0, 0, c->m);
    ptrdiff_t nh = 0, leaves = 1;
    if (parml_grow_best(&w, root, root_h, G, Hs, N)) {
        w.hist[root] = root_h;
        parml_grow_push(heap, &nh, (parml_grow_cand){w.split[root].gain, root});
    } else {
        free(root_h);
    }
    while (nh > 0 && leaves < c->max_leaves) {
        const int32_t node = parml_grow_pop(heap, &nh).node;
        const parml_split s = w.split[node];
        const int32_t f = c->feature[node];
        const int64_t lo = c->lo[node], hi = c->hi[node];
        const ptrdiff_t nl = parml_partition_parallel(
            c->B, c->n, c->rows + lo, hi - lo, f, s.bin, s.missing_left, c->missing_bin,
            w.tmp, w.pscratch, parml_grow_threads(c, hi - lo), c->pf, s.is_cat ? s.cats : NULL);
        const int dep = c->depth[node] + 1;
        const int32_t li = parml_grow_node(c, nl, parml_grow_leaf(s.gl, s.hl, c->l2), dep,
                                           lo, lo + nl);
        const int32_t ri = parml_grow_node(c, hi - lo - nl, parml_grow_leaf(s.gr, s.hr, c->l2),
                                           dep, lo + nl, hi);
        c->bin[node] = s.bin; c->missing_left[node] = (uint8_t)s.missing_left;
        c->node_cat[node] = (uint8_t)s.is_cat;
        if (s.is_cat) memcpy(c->cats + 8 * (ptrdiff_t)node, s.cats, 8 * sizeof(uint32_t));
        c->left[node] = li; c->right[node] = ri; c->gain[node] = s.gain;
        leaves += 1;
        parml_hbin *parent = w.hist[node];
        w.hist[node] = NULL;
        parml_hbin *small = (parml_hbin *)malloc(hsize ? hsize : 1);
        if (!small) { free(parent); goto out; }
        const int left_small = nl <= hi - lo - nl;
        const int64_t slo = left_small ? lo : lo + nl, shi = left_small ? lo + nl : hi;
        if (parml_grow_hist(&w, slo, shi, 0, small)) { free(small); free(parent); goto out; }
        parml_hist_subtract(parent, small, parent, c->d * c->nbins);  /* parent := sibling */
        parml_hbin *hl_ = left_small ? small : parent, *hr_ = left_small ? parent : small;
        const int32_t kids[2] = {li, ri};
        parml_hbin *hk[2] = {hl_, hr_};
        parml_split_ctx sc[2];
        int can[2];
        parml_grow_split2 q;
        ptrdiff_t nq = 0;
        q.d = c->d;
        for (int k = 0; k < 2; ++k) {
            parml_grow_sums(c, hk[k], &G, &Hs, &N);
            can[k] = parml_grow_prepare(&w, kids[k], hk[k], G, Hs, N, w.fs + k * c->d, &sc[k]);
            if (can[k]) q.s[nq++] = &sc[k];
        }
        /* the searches, in parallel when there is enough of them (results never depend on it) */
        if (nq > 0 && c->d > 0) {
            if (c->n_threads > 1 && c->pf != NULL && nq * c->d * c->nbins >= 8192)
                c->pf(nq * c->d, c->n_threads, parml_grow_split2_task, &q);
            else
                for (ptrdiff_t t = 0; t < nq * c->d; ++t) parml_grow_split2_task(&q, t, 0);
        }
        for (int k = 0; k < 2; ++k) {
            if (can[k] && parml_grow_pick(&w, kids[k], w.fs + k * c->d)) {
                w.hist[kids[k]] = hk[k];
                parml_grow_push(heap, &nh, (parml_grow_cand){w.split[kids[k]].gain, kids[k]});
            } else {
                free(hk[k]);
                c->feature[kids[k]] = 0;
            }
        }
    }
    /* nodes still waiting stay leaves */
    for (ptrdiff_t k = 0; k < nh; ++k) c->feature[heap[k].node] = 0;
    rc = 0;
out:
    if (w.hist)
        for (ptrdiff_t k = 0; k < cap; ++k) free(w.hist[k]);
    free(w.hist); free(w.split); free(w.fs); free(w.og); free(w.oh); free(w.tmp);
    free(w.pscratch); free(heap);
    return rc;
}

#endif
