/* Best-first growth of one gradient-boosting tree on the hist.h kernels, in two parts:
 *
 * - the grower (parml_grower_*): the tree's rules and state. It holds each candidate node's
 *   histogram and best split, and a heap.h heap of candidates; given the histogram of the
 *   smaller child of the node it splits, it takes the sibling's as the parent's minus it and
 *   finds both children's best splits. It never sees rows: histograms come from a source.
 * - the sources: parml_grow_tree below (local rows: partition the node's rows in place, build
 *   the smaller child's histogram from them), and parml.dask, which sums the workers'
 *   histograms and drives the same grower through _grower.Grower.
 *
 * Ties in the candidate heap go to the older node, ties among features to the first feature.
 * Every kernel is deterministic, so the tree is the same for any n_threads. Small nodes run on
 * one thread: a parallel region costs more than their work. */
#ifndef PARML_HIST_GROW_H
#define PARML_HIST_GROW_H

#include "heap.h"
#include "hist.h"

#define PARML_GROW_MIN_GAIN 1e-7
#define PARML_GROW_PAR_WORK 65536  /* rows x features below which a node's work is serial */

/* The growth rules, written once (_grower exports leaf_value and MIN_GAIN to Python). A split
 * needs a gain above PARML_GROW_MIN_GAIN. */
static inline double parml_grow_leaf(double G, double H, double l2)
{
    return H + l2 > 0 ? -G / (H + l2) : 0.0;
}

/* A node of N rows at depth `depth` may be split (max_depth < 0: no limit). */
static inline int parml_grow_may_split(int64_t N, int depth, int64_t min_leaf, int max_depth)
{
    return N >= 2 * min_leaf && (max_depth < 0 || depth < max_depth);
}

/* Which child of a split with nl rows left and nr right gets its histogram built (the other's
 * is the parent's minus it): the smaller, the left one on a tie. */
static inline int parml_grow_small_is_left(int64_t nl, int64_t nr)
{
    return nl <= nr;
}

/* What a tree is grown from and into. The grower reads the histogram layout (d, nb,
 * missing_bin, nbins, hconst, is_cat) and the parameters, and writes the nodes; the rows and
 * gradients (B, n, g, h, rows, m, all_rows, strategy) are read only by the local source. */
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


/* ---- the grower ------------------------------------------------------------------------------ */
typedef struct { double gain; int32_t node; } parml_grow_cand;
PARML_HEAP_DEFINE(parml_grow_heap, parml_grow_cand)

typedef struct {
    parml_grow_ctx *c;
    parml_hbin **hist;       /* per node: its histogram while it is a candidate (owned) */
    parml_split *split;      /* per node: its best split, while it is a candidate and after */
    parml_split *fs;         /* 2 x d: per-feature bests of the two children (scratch) */
    parml_grow_cand *heap, *scratch;  /* max_leaves + 1 each; scratch: parml_grower_best's */
    ptrdiff_t nh, leaves;
} parml_grower;

static void parml_grower_free(parml_grower *t)
{
    if (t->hist)
        for (ptrdiff_t k = 0; k < 2 * t->c->max_leaves - 1; ++k) free(t->hist[k]);
    free(t->hist); free(t->split); free(t->fs); free(t->heap); free(t->scratch);
    t->hist = NULL; t->split = NULL; t->fs = NULL; t->heap = NULL; t->scratch = NULL;
}

/* 0, or -1 when memory ran out (t is then freed). c->max_leaves >= 2. */
static int parml_grower_init(parml_grower *t, parml_grow_ctx *c)
{
    const ptrdiff_t cap = 2 * c->max_leaves - 1;
    memset(t, 0, sizeof(*t));
    t->c = c;
    c->n_nodes = 0;
    t->hist = (parml_hbin **)calloc((size_t)cap, sizeof(parml_hbin *));
    t->split = (parml_split *)calloc((size_t)cap, sizeof(parml_split));
    t->fs = (parml_split *)malloc(sizeof(parml_split) * (size_t)(c->d > 0 ? 2 * c->d : 1));
    t->heap = (parml_grow_cand *)malloc(sizeof(parml_grow_cand) * (size_t)(c->max_leaves + 1));
    t->scratch = (parml_grow_cand *)malloc(sizeof(parml_grow_cand) * (size_t)(c->max_leaves + 1));
    if (!t->hist || !t->split || !t->fs || !t->heap || !t->scratch) {
        parml_grower_free(t);
        return -1;
    }
    return 0;
}

static size_t parml_grower_hist_bytes(const parml_grow_ctx *c)
{
    return (size_t)(c->d * c->nbins) * sizeof(parml_hbin);
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
static int parml_grow_prepare(const parml_grower *t, int32_t node, const parml_hbin *H,
                              double G, double Hs, int64_t N, parml_split *fs,
                              parml_split_ctx *s)
{
    const parml_grow_ctx *c = t->c;
    if (!parml_grow_may_split(N, c->depth[node], c->min_leaf, c->max_depth)) return 0;
    memset(s, 0, sizeof(*s));
    s->hist = H; s->d = c->d; s->nbins = c->nbins; s->nb = c->nb; s->missing_bin = c->missing_bin;
    s->hconst = c->hconst; s->G = G; s->H = Hs; s->N = N;
    s->l2 = c->l2; s->min_hessian = c->min_hessian; s->min_leaf = c->min_leaf;
    s->allowed = NULL; s->is_cat = c->is_cat; s->out = fs;
    return 1;
}

/* The best of a node's per-feature splits into t->split[node]; 1 if it is worth taking. Ties
 * go to the first feature. */
static int parml_grow_pick(parml_grower *t, int32_t node, const parml_split *fs)
{
    const parml_grow_ctx *c = t->c;
    ptrdiff_t best = 0;
    for (ptrdiff_t f = 1; f < c->d; ++f)
        if (fs[f].gain > fs[best].gain) best = f;
    if (!(c->d > 0 && fs[best].gain > PARML_GROW_MIN_GAIN)) return 0;
    t->split[node] = fs[best];
    c->feature[node] = (int32_t)best;  /* provisional until the node is split */
    return 1;
}

/* A candidate keeps its histogram (H, owned from here on) and joins the heap; any other node
 * frees it and stays a leaf. */
static void parml_grow_offer(parml_grower *t, int32_t node, int ok, parml_hbin *H)
{
    if (ok) {
        t->hist[node] = H;
        parml_grow_heap_push(t->heap, &t->nh, (parml_grow_cand){t->split[node].gain, node});
    } else {
        free(H);
        t->c->feature[node] = 0;
    }
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

/* The root (node 0), from its histogram H (owned from here on), spanning rows lo..hi. */
static void parml_grower_root(parml_grower *t, parml_hbin *H, int64_t lo, int64_t hi)
{
    parml_grow_ctx *c = t->c;
    double G, Hs;
    int64_t N;
    parml_split_ctx s;
    parml_grow_sums(c, H, &G, &Hs, &N);
    const int32_t root = parml_grow_node(c, N, parml_grow_leaf(G, Hs, c->l2), 0, lo, hi);
    t->leaves = 1;
    int ok = parml_grow_prepare(t, root, H, G, Hs, N, t->fs, &s);
    if (ok) {
        parml_find_splits(&s, c->d * c->nbins >= 16384 ? c->n_threads : 1, c->pf);
        ok = parml_grow_pick(t, root, t->fs);
    }
    parml_grow_offer(t, root, ok, H);
}

/* The node best-first splits next, or -1 once the tree is final. */
static int32_t parml_grower_next(const parml_grower *t)
{
    return t->nh > 0 && t->leaves < t->c->max_leaves ? t->heap[0].node : -1;
}

/* The first k candidates in the order best-first would take them, into nodes; returns how
 * many (at most k). What a source may prepare ahead: no other node is split before these. */
static ptrdiff_t parml_grower_best(const parml_grower *t, ptrdiff_t k, int32_t *nodes)
{
    ptrdiff_t n = t->nh, j = 0;
    memcpy(t->scratch, t->heap, sizeof(parml_grow_cand) * (size_t)n);
    while (j < k && n > 0) nodes[j++] = parml_grow_heap_pop(t->scratch, &n).node;
    return j;
}

/* Whether splitting candidate `node` needs its smaller child's histogram: only if a child could
 * be split after it (a leaf left to add, and a child large and shallow enough). */
static int parml_grower_wants_hist(const parml_grower *t, int32_t node)
{
    const parml_grow_ctx *c = t->c;
    const parml_split *s = &t->split[node];
    const int dep = c->depth[node] + 1;
    return t->leaves + 1 < c->max_leaves
        && (parml_grow_may_split(s->nl, dep, c->min_leaf, c->max_depth)
            || parml_grow_may_split(s->nr, dep, c->min_leaf, c->max_depth));
}

/* Split the node parml_grower_next names, nl rows to the left. small: the histogram of the
 * smaller child (the left one if small_left), owned from here on; NULL exactly when
 * parml_grower_wants_hist says it is not needed. */
static void parml_grower_split(parml_grower *t, int64_t nl, parml_hbin *small, int small_left)
{
    parml_grow_ctx *c = t->c;
    const int32_t node = parml_grow_heap_pop(t->heap, &t->nh).node;
    const parml_split s = t->split[node];
    const int64_t lo = c->lo[node], hi = c->hi[node];
    const int dep = c->depth[node] + 1;
    const int32_t li = parml_grow_node(c, nl, parml_grow_leaf(s.gl, s.hl, c->l2), dep, lo, lo + nl);
    const int32_t ri = parml_grow_node(c, hi - lo - nl, parml_grow_leaf(s.gr, s.hr, c->l2), dep,
                                       lo + nl, hi);
    c->bin[node] = s.bin; c->missing_left[node] = (uint8_t)s.missing_left;
    c->node_cat[node] = (uint8_t)s.is_cat;
    if (s.is_cat) memcpy(c->cats + 8 * (ptrdiff_t)node, s.cats, 8 * sizeof(uint32_t));
    c->left[node] = li; c->right[node] = ri; c->gain[node] = s.gain;
    t->leaves += 1;
    parml_hbin *parent = t->hist[node];
    t->hist[node] = NULL;
    if (!small) {  /* both children stay leaves */
        free(parent);
        return;
    }
    parml_hist_subtract(parent, small, parent, c->d * c->nbins);  /* parent := sibling */
    parml_hbin *hk[2] = {small_left ? small : parent, small_left ? parent : small};
    const int32_t kids[2] = {li, ri};
    parml_split_ctx sc[2];
    int can[2];
    parml_grow_split2 q;
    ptrdiff_t nq = 0;
    q.d = c->d;
    for (int k = 0; k < 2; ++k) {
        double G, Hs;
        int64_t N;
        parml_grow_sums(c, hk[k], &G, &Hs, &N);
        can[k] = parml_grow_prepare(t, kids[k], hk[k], G, Hs, N, t->fs + k * c->d, &sc[k]);
        if (can[k]) q.s[nq++] = &sc[k];
    }
    /* the searches, in parallel when there is enough of them (results never depend on it) */
    if (nq > 0 && c->d > 0) {
        if (c->n_threads > 1 && c->pf != NULL && nq * c->d * c->nbins >= 8192)
            c->pf(nq * c->d, c->n_threads, parml_grow_split2_task, &q);
        else
            for (ptrdiff_t j = 0; j < nq * c->d; ++j) parml_grow_split2_task(&q, j, 0);
    }
    for (int k = 0; k < 2; ++k)
        parml_grow_offer(t, kids[k], can[k] && parml_grow_pick(t, kids[k], t->fs + k * c->d),
                         hk[k]);
}

/* Candidates still waiting once the tree is final stay leaves. */
static void parml_grower_finish(parml_grower *t)
{
    for (ptrdiff_t k = 0; k < t->nh; ++k) t->c->feature[t->heap[k].node] = 0;
}

/* ---- the local source: the tree's rows, partitioned in place -------------------------------- */
typedef struct {
    const parml_grow_ctx *c;
    float *og, *oh;          /* m: gathered gradients (scratch) */
    int32_t *tmp;            /* m: partition scratch */
    ptrdiff_t *pscratch;
} parml_grow_rows;

static int parml_grow_threads(const parml_grow_ctx *c, ptrdiff_t rows)
{
    return rows * c->d >= PARML_GROW_PAR_WORK ? c->n_threads : 1;
}

/* The histogram of rows lo..hi of c->rows (all: every training row, in order) into a new
 * buffer; NULL when memory ran out. */
static parml_hbin *parml_grow_hist(const parml_grow_rows *w, ptrdiff_t lo, ptrdiff_t hi, int all)
{
    const parml_grow_ctx *c = w->c;
    const size_t bytes = parml_grower_hist_bytes(c);
    parml_hbin *out = (parml_hbin *)malloc(bytes ? bytes : 1);
    parml_hist_ctx h;
    if (!out) return NULL;
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
    if (parml_build_histogram(&h, c->strategy, parml_grow_threads(c, hi - lo), c->pf)) {
        free(out);
        return NULL;
    }
    return out;
}

/* Grow the tree from the local rows; returns 0, or -1 when memory ran out. */
static int parml_grow_tree(parml_grow_ctx *c)
{
    parml_grower t;
    parml_grow_rows w;
    int rc = -1;
    memset(&w, 0, sizeof(w));
    w.c = c;
    if (parml_grower_init(&t, c)) return -1;
    w.og = (float *)malloc(sizeof(float) * (size_t)(c->m > 0 ? c->m : 1));
    w.oh = (float *)malloc(sizeof(float) * (size_t)(c->m > 0 ? c->m : 1));
    w.tmp = (int32_t *)malloc(sizeof(int32_t) * (size_t)(c->m > 0 ? c->m : 1));
    w.pscratch = (ptrdiff_t *)malloc(sizeof(ptrdiff_t) * (size_t)(2 * (c->m / PARML_PART_BLOCK + 2)));
    if (!w.og || !w.oh || !w.tmp || !w.pscratch) goto out;

    parml_hbin *root = parml_grow_hist(&w, 0, c->m, c->all_rows);
    if (!root) goto out;
    parml_grower_root(&t, root, 0, c->m);
    for (int32_t node; (node = parml_grower_next(&t)) >= 0; ) {
        const parml_split *s = &t.split[node];
        const int64_t lo = c->lo[node], hi = c->hi[node];
        const ptrdiff_t nl = parml_partition_parallel(
            c->B, c->n, c->rows + lo, hi - lo, c->feature[node], s->bin, s->missing_left,
            c->missing_bin, w.tmp, w.pscratch, parml_grow_threads(c, hi - lo), c->pf,
            s->is_cat ? s->cats : NULL);
        const int small_left = parml_grow_small_is_left(nl, hi - lo - nl);
        parml_hbin *small = NULL;
        if (parml_grower_wants_hist(&t, node)) {
            small = small_left ? parml_grow_hist(&w, lo, lo + nl, 0)
                               : parml_grow_hist(&w, lo + nl, hi, 0);
            if (!small) goto out;
        }
        parml_grower_split(&t, nl, small, small_left);
    }
    parml_grower_finish(&t);
    rc = 0;
out:
    parml_grower_free(&t);
    free(w.og); free(w.oh); free(w.tmp); free(w.pscratch);
    return rc;
}

#endif
