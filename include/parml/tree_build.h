/* Whole decision trees built natively on binned data: the kernel under parml's DecisionTree* and
 * RandomForest*. Included by _tree_build.pyx only.
 *
 * Data: binned X column-major uint8, B[f * n + i], bin `missing_bin` = NaN (as in hist.h).
 * Targets: a class index per row (gini / entropy) or a float64 value (squared error).
 *
 * One tree = one task. A random forest runs its trees as the tasks of one parallel-for, each
 * tree on its own random stream (seeds[t]), so a forest is identical for every thread count.
 * A tree is grown in two stages so that a single deep tree can use several threads too:
 *   1. breadth-first from the root until FRONTIER nodes wait to be split (or none remain);
 *   2. each waiting node's whole subtree depth-first, as independent tasks (node parallelism:
 *      once its parent is split a subtree needs nothing from the rest of the tree), each on a
 *      random stream derived from (tree seed, subtree index); subtrees are appended in order.
 * The stages are cut by shape, never by thread count, so the tree is the same for any n_threads.
 * With max_leaf_nodes the tree grows best-first (largest impurity decrease first) in one stage.
 *
 * A node's split: features drawn without replacement (max_features), each feature's histogram
 * of the node's rows (per bin: class weights, or sum w*y and sum w; and a row count), scanned
 * over the occupied bins only, with missing values tried on each side. A constant feature does
 * not count towards max_features (scikit-learn's rule). Gains are weighted impurity decreases
 * (W_t imp_t - W_L imp_L - W_R imp_R), so feature importances are their sums. */
#ifndef PARML_TREE_BUILD_H
#define PARML_TREE_BUILD_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool_api.h"
#include "rng.h"
#include "heap.h"

enum { PARML_CRIT_GINI = 0, PARML_CRIT_ENTROPY = 1, PARML_CRIT_MSE = 2 };
#define PARML_TB_FRONTIER 16

/* ---- random stream: rng.h's splitmix64 (tiny state, good enough for sampling rows and features) */

static inline uint64_t parml_tb_below(uint64_t *s, uint64_t bound)
{   /* multiply-shift: bias below 2^-32 for the bounds used here (rows, features) */
    return (uint64_t)(((unsigned __int128)parml_splitmix64(s) * bound) >> 64);
}

/* ---- output: one tree's nodes, growable ---------------------------------------------------- */
typedef struct {
    int32_t *feature, *bin, *left, *right;  /* left < 0: leaf */
    uint8_t *missing_left;
    double *value;          /* n_nodes x W: class fractions, or the mean */
    double *impurity, *wsum, *gain;
    int64_t *count;
    int32_t *depth;
    ptrdiff_t n_nodes, cap;
    int W, failed;
} parml_tb_nodes;

static void parml_tb_nodes_free(parml_tb_nodes *t)
{
    free(t->feature); free(t->bin); free(t->left); free(t->right); free(t->missing_left);
    free(t->value); free(t->impurity); free(t->wsum); free(t->gain); free(t->count);
    free(t->depth);
    memset(t, 0, sizeof(*t));
}

#define PARML_TB_GROW(p, type, cap, w) do {                                   \
        void *q_ = realloc((p), sizeof(type) * (size_t)(cap) * (w));            \
        if (!q_) return -1;                                                     \
        (p) = (type *)q_;                                                       \
    } while (0)

static int parml_tb_reserve(parml_tb_nodes *t, ptrdiff_t need)
{
    if (need <= t->cap) return 0;
    ptrdiff_t cap = t->cap ? t->cap : 64;
    while (cap < need) cap *= 2;
    PARML_TB_GROW(t->feature, int32_t, cap, 1);
    PARML_TB_GROW(t->bin, int32_t, cap, 1);
    PARML_TB_GROW(t->left, int32_t, cap, 1);
    PARML_TB_GROW(t->right, int32_t, cap, 1);
    PARML_TB_GROW(t->missing_left, uint8_t, cap, 1);
    PARML_TB_GROW(t->value, double, cap, t->W);
    PARML_TB_GROW(t->impurity, double, cap, 1);
    PARML_TB_GROW(t->wsum, double, cap, 1);
    PARML_TB_GROW(t->gain, double, cap, 1);
    PARML_TB_GROW(t->count, int64_t, cap, 1);
    PARML_TB_GROW(t->depth, int32_t, cap, 1);
    t->cap = cap;
    return 0;
}

/* ---- the build's inputs (shared by all trees, read-only) ---------------------------------- */
typedef struct {
    const uint8_t *B;          /* IN  d x n binned */
    ptrdiff_t n, d;
    const int32_t *nb;         /* IN  non-missing bins per feature */
    int missing_bin, nbins;    /* nbins = missing_bin + 1 histogram slots */
    const int32_t *y_cls;      /* IN  class per row (gini / entropy) */
    const double *y_reg;       /* IN  target per row (mse) */
    int K, crit;               /* classes (1 for mse) */
    const double *base_w;      /* IN  per-row weight (sample_weight x class_weight) or NULL;
                                *      used as the tree's weights without bootstrap */
    const double *cdf;         /* IN  bootstrap: running sums of base_w (rows drawn with
                                *      probability proportional to it), or NULL: uniform */
    int bootstrap, balanced_subsample;
    ptrdiff_t n_boot;
    int max_depth;             /* < 0: none */
    ptrdiff_t min_split, min_leaf, max_leaf_nodes;  /* max_leaf_nodes <= 0: depth-first */
    double min_wleaf_frac, min_impurity_decrease;
    int mtry;
    const uint64_t *seeds;     /* IN  n_trees */
    ptrdiff_t n_trees;
    parml_tb_nodes *out;       /* OUT n_trees (zeroed by the caller; W set) */
    uint8_t *inbag;            /* OUT n_trees x ceil(n/8) bits, or NULL */
    parml_parallel_for_fn pf;
} parml_tb_ctx;

/* One tree's rows: rows, labels/targets and weights move together when a node is partitioned,
 * so a histogram reads labels and weights sequentially and gathers only B. */
typedef struct {
    int32_t *rows, *lab;
    double *yv, *w;
    double w_root, min_wleaf;
} parml_tb_sample;

typedef struct {          /* a grower: one random stream, scratch, and its own nodes */
    const parml_tb_ctx *c;
    parml_tb_sample *s;
    parml_tb_nodes nodes;
    uint64_t rng;
    int32_t *perm;        /* features, shuffled in place as nodes draw them */
    double *hist;         /* nbins x S, all zero between uses */
    int64_t *hcnt;        /* nbins */
    double *tot, *lt;     /* S each: node totals, running left totals */
    int32_t *tmp_i;
    double *tmp_d;
    int S;
} parml_tb_grower;

typedef struct { ptrdiff_t lo, hi; int depth; int32_t parent; int right; } parml_tb_entry;

typedef struct {
    int ok, feature, bin, mleft;
    double gain;
} parml_tb_split;

static int parml_tb_grower_init(parml_tb_grower *g, const parml_tb_ctx *c, parml_tb_sample *s,
                                uint64_t seed, ptrdiff_t tmp_rows)
{
    memset(g, 0, sizeof(*g));
    g->c = c; g->s = s; g->rng = seed;
    g->S = c->crit == PARML_CRIT_MSE ? 2 : c->K;
    g->nodes.W = c->crit == PARML_CRIT_MSE ? 1 : c->K;
    g->perm = (int32_t *)malloc(sizeof(int32_t) * (size_t)(c->d > 0 ? c->d : 1));
    g->hist = (double *)calloc((size_t)c->nbins * g->S, sizeof(double));
    g->hcnt = (int64_t *)calloc((size_t)c->nbins, sizeof(int64_t));
    g->tot = (double *)malloc(sizeof(double) * 2 * (size_t)g->S);
    g->tmp_i = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)(tmp_rows > 0 ? tmp_rows : 1));
    g->tmp_d = (double *)malloc(sizeof(double) * 2 * (size_t)(tmp_rows > 0 ? tmp_rows : 1));
    if (!g->perm || !g->hist || !g->hcnt || !g->tot || !g->tmp_i || !g->tmp_d) return -1;
    g->lt = g->tot + g->S;
    for (ptrdiff_t f = 0; f < c->d; ++f) g->perm[f] = (int32_t)f;
    return 0;
}

static void parml_tb_grower_free(parml_tb_grower *g)
{
    free(g->perm); free(g->hist); free(g->hcnt); free(g->tot); free(g->tmp_i); free(g->tmp_d);
}

static inline double parml_tb_xlogx(double x) { return x > 0 ? x * log(x) : 0.0; }

/* Criterion "proxy" of a side: larger is purer. Gain = proxy(L) + proxy(R) - proxy(parent)
 * is exactly the weighted impurity decrease (entropy in bits). */
static inline double parml_tb_proxy(int crit, const double *st, int S, double W)
{
    if (W <= 0) return 0.0;
    if (crit == PARML_CRIT_MSE) return st[0] * st[0] / W;
    double a = 0.0;
    if (crit == PARML_CRIT_GINI) {
        for (int k = 0; k < S; ++k) a += st[k] * st[k];
        return a / W;
    }
    for (int k = 0; k < S; ++k) a += parml_tb_xlogx(st[k]);
    return (a - parml_tb_xlogx(W)) * 1.4426950408889634;  /* / ln 2 */
}

/* Sum the node's statistics; write the node; return its id (or -1 on allocation failure). */
static int32_t parml_tb_make_node(parml_tb_grower *g, ptrdiff_t lo, ptrdiff_t hi, int depth,
                                  double *W_out)
{
    const parml_tb_ctx *c = g->c;
    const parml_tb_sample *s = g->s;
    parml_tb_nodes *t = &g->nodes;
    const int S = g->S;
    double W = 0.0, yy = 0.0;
    for (int k = 0; k < S; ++k) g->tot[k] = 0.0;
    if (c->crit == PARML_CRIT_MSE) {
        double sy = 0.0;
        for (ptrdiff_t i = lo; i < hi; ++i) {
            const double w = s->w[i], y = s->yv[i];
            W += w; sy += w * y; yy += w * y * y;
        }
        g->tot[0] = sy; g->tot[1] = W;
    } else {
        for (ptrdiff_t i = lo; i < hi; ++i) g->tot[s->lab[i]] += s->w[i];
        for (int k = 0; k < S; ++k) W += g->tot[k];
    }
    if (parml_tb_reserve(t, t->n_nodes + 1)) { t->failed = 1; return -1; }
    const int32_t id = (int32_t)t->n_nodes++;
    t->feature[id] = -2; t->bin[id] = -1; t->left[id] = -1; t->right[id] = -1;
    t->missing_left[id] = 0; t->gain[id] = 0.0;
    t->wsum[id] = W; t->count[id] = hi - lo; t->depth[id] = depth;
    double imp = 0.0;
    if (c->crit == PARML_CRIT_MSE) {
        const double mean = W > 0 ? g->tot[0] / W : 0.0;
        t->value[id] = mean;
        imp = W > 0 ? yy / W - mean * mean : 0.0;
        if (imp < 0) imp = 0.0;
    } else {
        double *v = t->value + (ptrdiff_t)id * t->W;
        for (int k = 0; k < S; ++k) {
            const double p = W > 0 ? g->tot[k] / W : 0.0;
            v[k] = p;
            imp += c->crit == PARML_CRIT_GINI ? -p * p : -(p > 0 ? p * log2(p) : 0.0);
        }
        if (c->crit == PARML_CRIT_GINI) imp += 1.0;
        if (imp < 0) imp = 0.0;
    }
    t->impurity[id] = imp;
    *W_out = W;
    return id;
}

/* Best split of the node [lo, hi) whose totals are in g->tot (weight W, impurity imp). */
static parml_tb_split parml_tb_best_split(parml_tb_grower *g, ptrdiff_t lo, ptrdiff_t hi,
                                          double W)
{
    const parml_tb_ctx *c = g->c;
    const parml_tb_sample *s = g->s;
    const int S = g->S, crit = c->crit, MB = c->missing_bin;
    const ptrdiff_t n = c->n, m = hi - lo;
    parml_tb_split best = {0, -1, -1, 0, -INFINITY};
    const double parent = parml_tb_proxy(crit, g->tot, S, W);
    int evaluated = 0;
    for (ptrdiff_t j = 0; j < c->d && evaluated < c->mtry; ++j) {
        const ptrdiff_t r = j + (ptrdiff_t)parml_tb_below(&g->rng, (uint64_t)(c->d - j));
        const int32_t f = g->perm[r];
        g->perm[r] = g->perm[j];
        g->perm[j] = f;
        const uint8_t *col = c->B + (ptrdiff_t)f * n;
        double *H = g->hist;
        int64_t *C = g->hcnt;
        int minb = 255, maxb = 0;
        if (crit == PARML_CRIT_MSE) {
            for (ptrdiff_t i = lo; i < hi; ++i) {
                const int b = col[s->rows[i]];
                const double w = s->w[i];
                H[2 * b] += w * s->yv[i];
                H[2 * b + 1] += w;
                C[b] += 1;
                const int bn = b == MB ? 255 : b, bx = b == MB ? 0 : b;
                minb = bn < minb ? bn : minb;
                maxb = bx > maxb ? bx : maxb;
            }
        } else {
            for (ptrdiff_t i = lo; i < hi; ++i) {
                const int b = col[s->rows[i]];
                H[(ptrdiff_t)b * S + s->lab[i]] += s->w[i];
                C[b] += 1;
                const int bn = b == MB ? 255 : b, bx = b == MB ? 0 : b;
                minb = bn < minb ? bn : minb;
                maxb = bx > maxb ? bx : maxb;
            }
        }
        const int64_t n_miss = C[MB];
        const int64_t n_val = m - n_miss;
        const int constant = n_val == 0 || (minb == maxb && n_miss == 0);
        if (!constant) {
            evaluated++;
            const double *Hm = H + (ptrdiff_t)MB * S;
            double Wm = 0.0;
            if (crit == PARML_CRIT_MSE) Wm = Hm[1];
            else for (int k = 0; k < S; ++k) Wm += Hm[k];
            for (int k = 0; k < S; ++k) g->lt[k] = 0.0;
            double WL = 0.0;
            int64_t NL = 0;
            /* split after bin b: bins <= b left; b = maxb is "all values left, missing right" */
            for (int b = minb; b <= maxb; ++b) {
                if (C[b] == 0) continue;  /* same split as the previous occupied bin */
                const double *hb = H + (ptrdiff_t)b * S;
                for (int k = 0; k < S; ++k) g->lt[k] += hb[k];
                if (crit == PARML_CRIT_MSE) WL += hb[1];
                else for (int k = 0; k < S; ++k) WL += hb[k];
                NL += C[b];
                for (int side = 0; side < 2; ++side) {  /* side 1: missing rows go left */
                    if (side == 1 && n_miss == 0) break;
                    if (b == maxb && side == 1) break;    /* everything left: not a split */
                    if (b == maxb && n_miss == 0) break;
                    const double ms = side ? 1.0 : 0.0;   /* adds the missing slot to the left */
                    const double wl = WL + ms * Wm;
                    const int64_t nl = NL + (side ? n_miss : 0);
                    const int64_t nr = m - nl;
                    const double wr = W - wl;
                    if (nl < c->min_leaf || nr < c->min_leaf || wl < s->min_wleaf ||
                        wr < s->min_wleaf || wl <= 0 || wr <= 0)
                        continue;
                    double pl = 0.0, pr = 0.0;  /* proxies of left and right (= parent - left) */
                    if (crit == PARML_CRIT_MSE) {
                        const double vl = g->lt[0] + ms * Hm[0], vr = g->tot[0] - vl;
                        pl = vl * vl / wl;
                        pr = vr * vr / wr;
                    } else if (crit == PARML_CRIT_GINI) {
                        for (int k = 0; k < S; ++k) {
                            const double vl = g->lt[k] + ms * Hm[k], vr = g->tot[k] - vl;
                            pl += vl * vl;
                            pr += vr * vr;
                        }
                        pl /= wl;
                        pr /= wr;
                    } else {
                        for (int k = 0; k < S; ++k) {
                            const double vl = g->lt[k] + ms * Hm[k], vr = g->tot[k] - vl;
                            pl += parml_tb_xlogx(vl);
                            pr += parml_tb_xlogx(vr > 0 ? vr : 0.0);
                        }
                        pl = (pl - parml_tb_xlogx(wl)) * 1.4426950408889634;
                        pr = (pr - parml_tb_xlogx(wr)) * 1.4426950408889634;
                    }
                    const double gain = pl + pr - parent;
                    if (gain > best.gain) {
                        best.ok = 1; best.gain = gain; best.feature = f;
                        /* "every value left, missing right" holds for any value at predict
                         * time: recorded on the feature's last bin (threshold +inf) */
                        best.bin = b == maxb ? c->nb[f] - 1 : b;
                        /* no missing rows in the node: NaN at predict time follows the larger
                         * child, ties to the right (scikit-learn's rule) */
                        best.mleft = n_miss ? side : (nl > nr);
                    }
                }
            }
        }
        /* leave the histogram zero for the next feature: only the touched slots */
        if (n_val > 0)
            for (int b = minb; b <= maxb; ++b) {
                C[b] = 0;
                for (int k = 0; k < S; ++k) H[(ptrdiff_t)b * S + k] = 0.0;
            }
        C[MB] = 0;
        for (int k = 0; k < S; ++k) H[(ptrdiff_t)MB * S + k] = 0.0;
    }
    return best;
}

/* Stable partition of [lo, hi) by the split; returns the left count. */
static ptrdiff_t parml_tb_partition(parml_tb_grower *g, ptrdiff_t lo, ptrdiff_t hi,
                                    const parml_tb_split *sp)
{
    const parml_tb_ctx *c = g->c;
    parml_tb_sample *s = g->s;
    const uint8_t *col = c->B + (ptrdiff_t)sp->feature * c->n;
    const int MB = c->missing_bin, bin = sp->bin, ml = sp->mleft;
    int32_t *tr = g->tmp_i, *tl = g->tmp_i + (hi - lo);
    double *tw = g->tmp_d, *ty = g->tmp_d + (hi - lo);
    ptrdiff_t j = lo, k = 0;
    for (ptrdiff_t i = lo; i < hi; ++i) {
        const int b = col[s->rows[i]];
        const int left = b == MB ? ml : b <= bin;
        if (left) {
            s->rows[j] = s->rows[i]; s->w[j] = s->w[i];
            if (s->lab) s->lab[j] = s->lab[i];
            if (s->yv) s->yv[j] = s->yv[i];
            ++j;
        } else {
            tr[k] = s->rows[i]; tw[k] = s->w[i];
            if (s->lab) tl[k] = s->lab[i];
            if (s->yv) ty[k] = s->yv[i];
            ++k;
        }
    }
    memcpy(s->rows + j, tr, sizeof(int32_t) * (size_t)k);
    memcpy(s->w + j, tw, sizeof(double) * (size_t)k);
    if (s->lab) memcpy(s->lab + j, tl, sizeof(int32_t) * (size_t)k);
    if (s->yv) memcpy(s->yv + j, ty, sizeof(double) * (size_t)k);
    return j - lo;
}

/* Create the node for [lo, hi) and decide whether and how it splits. */
static int32_t parml_tb_node(parml_tb_grower *g, ptrdiff_t lo, ptrdiff_t hi, int depth,
                             parml_tb_split *sp)
{
    const parml_tb_ctx *c = g->c;
    double W;
    const int32_t id = parml_tb_make_node(g, lo, hi, depth, &W);
    sp->ok = 0;
    if (id < 0) return id;
    const ptrdiff_t m = hi - lo;
    if ((c->max_depth >= 0 && depth >= c->max_depth) || m < c->min_split || m < 2 * c->min_leaf
        || W < 2 * g->s->min_wleaf || g->nodes.impurity[id] <= 1e-12)
        return id;
    *sp = parml_tb_best_split(g, lo, hi, W);
    if (sp->ok && sp->gain / g->s->w_root + 1e-12 < c->min_impurity_decrease) sp->ok = 0;
    return id;
}

static void parml_tb_link(parml_tb_nodes *t, int32_t parent, int right, int32_t child)
{
    if (parent < 0) return;
    if (right) t->right[parent] = child; else t->left[parent] = child;
}

static void parml_tb_set_split(parml_tb_nodes *t, int32_t id, const parml_tb_split *sp)
{
    t->feature[id] = sp->feature; t->bin[id] = sp->bin;
    t->missing_left[id] = (uint8_t)sp->mleft; t->gain[id] = sp->gain;
}

/* Depth-first growth of the subtree rooted at entry e (stage 2, or a whole small tree). */
static int parml_tb_grow_dfs(parml_tb_grower *g, parml_tb_entry root)
{
    ptrdiff_t cap = 64, top = 0;
    parml_tb_entry *st = (parml_tb_entry *)malloc(sizeof(*st) * (size_t)cap);
    if (!st) return -1;
    st[top++] = root;
    while (top > 0) {
        const parml_tb_entry e = st[--top];
        parml_tb_split sp;
        const int32_t id = parml_tb_node(g, e.lo, e.hi, e.depth, &sp);
        if (id < 0) { free(st); return -1; }
        parml_tb_link(&g->nodes, e.parent, e.right, id);
        if (!sp.ok) continue;
        parml_tb_set_split(&g->nodes, id, &sp);
        const ptrdiff_t nl = parml_tb_partition(g, e.lo, e.hi, &sp);
        if (top + 2 > cap) {
            cap *= 2;
            parml_tb_entry *q = (parml_tb_entry *)realloc(st, sizeof(*st) * (size_t)cap);
            if (!q) { free(st); return -1; }
            st = q;
        }
        st[top++] = (parml_tb_entry){e.lo + nl, e.hi, e.depth + 1, id, 1};
        st[top++] = (parml_tb_entry){e.lo, e.lo + nl, e.depth + 1, id, 0};  /* left first */
    }
    free(st);
    return 0;
}

/* ---- best-first growth (max_leaf_nodes): heap.h's order, gain then lower node id ---------- */
typedef struct { double gain; int32_t node; parml_tb_entry e; parml_tb_split sp; } parml_tb_cand;
PARML_HEAP_DEFINE(parml_tb_heap, parml_tb_cand)

static int parml_tb_grow_best_first(parml_tb_grower *g, ptrdiff_t m)
{
    const ptrdiff_t max_leaves = g->c->max_leaf_nodes;
    /* the heap holds at most one entry per leaf, and a tree has at most m leaves */
    const ptrdiff_t hcap = (max_leaves < m ? max_leaves : m) + 2;
    parml_tb_cand *heap = (parml_tb_cand *)malloc(sizeof(*heap) * (size_t)hcap);
    if (!heap) return -1;
    ptrdiff_t nh = 0, leaves = 1;
    parml_tb_split sp;
    int32_t id = parml_tb_node(g, 0, m, 0, &sp);
    if (id < 0) { free(heap); return -1; }
    if (sp.ok) parml_tb_heap_push(heap, &nh, (parml_tb_cand){sp.gain, id, {0, m, 0, -1, 0}, sp});
    while (nh > 0 && leaves < max_leaves) {
        const parml_tb_cand cd = parml_tb_heap_pop(heap, &nh);
        parml_tb_set_split(&g->nodes, cd.node, &cd.sp);
        const ptrdiff_t nl = parml_tb_partition(g, cd.e.lo, cd.e.hi, &cd.sp);
        leaves += 1;
        const ptrdiff_t bounds[3] = {cd.e.lo, cd.e.lo + nl, cd.e.hi};
        for (int side = 0; side < 2; ++side) {
            id = parml_tb_node(g, bounds[side], bounds[side + 1], cd.e.depth + 1, &sp);
            if (id < 0) { free(heap); return -1; }
            parml_tb_link(&g->nodes, cd.node, side, id);
            if (sp.ok)
                parml_tb_heap_push(heap, &nh, (parml_tb_cand){
                    sp.gain, id, {bounds[side], bounds[side + 1], cd.e.depth + 1, cd.node, side}, sp});
        }
    }
    free(heap);
    return 0;
}

/* ---- two-stage growth ---------------------------------------------------------------------- */
typedef struct {
    const parml_tb_ctx *c;
    parml_tb_sample *s;
    const parml_tb_entry *frontier;
    parml_tb_grower *subs;
    uint64_t seed;
    int *failed;
} parml_tb_stage2;

static void parml_tb_stage2_task(void *vctx, ptrdiff_t k, int worker)
{
    parml_tb_stage2 *x = (parml_tb_stage2 *)vctx;
    const parml_tb_entry e = x->frontier[k];
    parml_tb_grower *g = &x->subs[k];
    uint64_t seed = x->seed ^ (0xD1B54A32D192ED03ULL * (uint64_t)(k + 1));
    (void)worker;
    if (parml_tb_grower_init(g, x->c, x->s, parml_splitmix64(&seed), e.hi - e.lo)) {
        *x->failed = 1;
        return;
    }
    parml_tb_entry root = e;
    root.parent = -1;  /* linked into the tree when stitched */
    if (parml_tb_grow_dfs(g, root) || g->nodes.failed) *x->failed = 1;
}

/* Append subtree g's nodes to t after node id offset; link them to their parent in t. */
static int parml_tb_stitch(parml_tb_nodes *t, const parml_tb_nodes *sub, const parml_tb_entry *e)
{
    const ptrdiff_t off = t->n_nodes, m = sub->n_nodes, W = t->W;
    if (parml_tb_reserve(t, off + m)) return -1;
    for (ptrdiff_t i = 0; i < m; ++i) {
        const ptrdiff_t j = off + i;
        t->feature[j] = sub->feature[i]; t->bin[j] = sub->bin[i];
        t->left[j] = sub->left[i] < 0 ? -1 : (int32_t)(sub->left[i] + off);
        t->right[j] = sub->right[i] < 0 ? -1 : (int32_t)(sub->right[i] + off);
        t->missing_left[j] = sub->missing_left[i];
        memcpy(t->value + j * W, sub->value + i * W, sizeof(double) * (size_t)W);
        t->impurity[j] = sub->impurity[i]; t->wsum[j] = sub->wsum[i]; t->gain[j] = sub->gain[i];
        t->count[j] = sub->count[i]; t->depth[j] = sub->depth[i];
    }
    t->n_nodes = off + m;
    parml_tb_link(t, e->parent, e->right, (int32_t)off);
    return 0;
}

static int parml_tb_grow_two_stage(parml_tb_grower *g, ptrdiff_t m, uint64_t seed, int threads)
{
    const parml_tb_ctx *c = g->c;
    /* stage 1: breadth-first until FRONTIER nodes wait (a FIFO of entries) */
    ptrdiff_t cap = 4 * PARML_TB_FRONTIER + 4, head = 0, tail = 0;
    parml_tb_entry *q = (parml_tb_entry *)malloc(sizeof(*q) * (size_t)cap);
    if (!q) return -1;
    q[tail++] = (parml_tb_entry){0, m, 0, -1, 0};
    while (head < tail && tail - head < PARML_TB_FRONTIER) {
        const parml_tb_entry e = q[head++];
        parml_tb_split sp;
        const int32_t id = parml_tb_node(g, e.lo, e.hi, e.depth, &sp);
        if (id < 0) { free(q); return -1; }
        parml_tb_link(&g->nodes, e.parent, e.right, id);
        if (!sp.ok) continue;
        parml_tb_set_split(&g->nodes, id, &sp);
        const ptrdiff_t nl = parml_tb_partition(g, e.lo, e.hi, &sp);
        if (tail + 2 > cap) {  /* compact: entries before head are done */
            memmove(q, q + head, sizeof(*q) * (size_t)(tail - head));
            tail -= head; head = 0;
        }
        q[tail++] = (parml_tb_entry){e.lo, e.lo + nl, e.depth + 1, id, 0};
        q[tail++] = (parml_tb_entry){e.lo + nl, e.hi, e.depth + 1, id, 1};
    }
    const ptrdiff_t nf = tail - head;
    int rc = 0;
    if (nf > 0) {
        /* stage 2: the waiting subtrees, independent (disjoint row ranges, own scratch) */
        parml_tb_grower *subs = (parml_tb_grower *)calloc((size_t)nf, sizeof(*subs));
        int failed = 0;
        if (!subs) { free(q); return -1; }
        parml_tb_stage2 x = {c, g->s, q + head, subs, seed, &failed};
        if (threads > 1 && nf > 1 && c->pf)
            c->pf(nf, threads, parml_tb_stage2_task, &x);
        else
            for (ptrdiff_t k = 0; k < nf; ++k) parml_tb_stage2_task(&x, k, 0);
        for (ptrdiff_t k = 0; k < nf && !failed; ++k)
            if (parml_tb_stitch(&g->nodes, &subs[k].nodes, &q[head + k])) failed = 1;
        for (ptrdiff_t k = 0; k < nf; ++k) {
            parml_tb_nodes_free(&subs[k].nodes);
            parml_tb_grower_free(&subs[k]);
        }
        free(subs);
        rc = failed ? -1 : 0;
    }
    free(q);
    return rc;
}

/* ---- bootstrap: n_boot rows drawn with replacement, uniformly or with probability proportional
 * to the weights (scikit-learn >= 1.8: the tree then weighs rows by their counts alone). The
 * first draws of the tree's stream: out-of-bag code regenerates the same counts from the seed. */
static void parml_tb_draw(const parml_tb_ctx *c, uint64_t *rng, int32_t *cnt)
{
    const ptrdiff_t n = c->n;
    if (c->cdf == NULL) {
        for (ptrdiff_t j = 0; j < c->n_boot; ++j) cnt[parml_tb_below(rng, (uint64_t)n)] += 1;
        return;
    }
    const double total = c->cdf[n - 1];
    for (ptrdiff_t j = 0; j < c->n_boot; ++j) {
        const double u = (double)(parml_splitmix64(rng) >> 11) * 0x1.0p-53 * total;
        ptrdiff_t lo = 0, hi = n - 1;          /* first row whose running sum exceeds u */
        while (lo < hi) {
            const ptrdiff_t mid = lo + (hi - lo) / 2;
            if (c->cdf[mid] > u) hi = mid; else lo = mid + 1;
        }
        cnt[lo] += 1;
    }
}

/* ---- one tree: its sample (bootstrap), then growth --------------------------------------- */
static int parml_tb_tree(const parml_tb_ctx *c, ptrdiff_t t, int threads)
{
    const ptrdiff_t n = c->n;
    uint64_t rng = c->seeds[t];
    int32_t *cnt = NULL;
    parml_tb_sample s = {0};
    parml_tb_grower g;
    int rc = -1;
    memset(&g, 0, sizeof(g));
    if (c->bootstrap) {
        cnt = (int32_t *)calloc((size_t)(n > 0 ? n : 1), sizeof(int32_t));
        if (!cnt) return -1;
        parml_tb_draw(c, &rng, cnt);
    }
    double cw[256];
    const int use_cw = c->balanced_subsample && c->y_cls && c->K <= 256;
    if (use_cw) {  /* class weights from this bootstrap sample's class frequencies */
        double tot[256] = {0};
        ptrdiff_t drawn = 0;
        int present = 0;
        for (ptrdiff_t i = 0; i < n; ++i) {
            const double k = cnt ? cnt[i] : 1;
            tot[c->y_cls[i]] += k;
            drawn += (ptrdiff_t)k;
        }
        for (int k = 0; k < c->K; ++k) present += tot[k] > 0;
        /* "balanced" on the drawn sample, over the classes it holds (scikit-learn's rule) */
        for (int k = 0; k < c->K; ++k) cw[k] = tot[k] > 0 ? drawn / (present * tot[k]) : 0.0;
    }
    s.rows = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    s.w = (double *)malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (c->y_cls) s.lab = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    else s.yv = (double *)malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!s.rows || !s.w || (!s.lab && !s.yv)) goto done;
    ptrdiff_t m = 0;
    double wr = 0.0;
    uint8_t *bits = c->inbag ? c->inbag + t * ((n + 7) / 8) : NULL;
    for (ptrdiff_t i = 0; i < n; ++i) {
        /* drawn in proportion to the weights (cdf): a row counts by its draws alone;
         * drawn uniformly: its weight times its draws */
        const double bw = c->base_w ? c->base_w[i] : 1.0;
        double w = cnt ? (double)cnt[i] * (c->cdf ? 1.0 : bw) : bw;
        if (use_cw) w *= cw[c->y_cls[i]];
        if (bits && cnt && cnt[i]) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
        if (!(w > 0)) continue;  /* as scikit-learn: zero-weight rows are not in the tree */
        s.rows[m] = (int32_t)i;
        s.w[m] = w;
        if (s.lab) s.lab[m] = c->y_cls[i]; else s.yv[m] = c->y_reg[i];
        wr += w;
        ++m;
    }
    if (bits && !cnt) memset(bits, 0xFF, (size_t)((n + 7) / 8));  /* padding bits unused */
    s.w_root = wr;
    s.min_wleaf = c->min_wleaf_frac * wr;
    if (parml_tb_grower_init(&g, c, &s, parml_splitmix64(&rng), m)) goto done;
    if (c->max_leaf_nodes > 0) rc = parml_tb_grow_best_first(&g, m);
    else rc = parml_tb_grow_two_stage(&g, m, parml_splitmix64(&rng), threads);
    if (g.nodes.failed) rc = -1;
done:
    c->out[t] = g.nodes;  /* hand the nodes over (freed by the caller) */
    parml_tb_grower_free(&g);
    free(cnt); free(s.rows); free(s.w); free(s.lab); free(s.yv);
    return rc;
}

typedef struct { const parml_tb_ctx *c; int *failed; } parml_tb_forest;

static void parml_tb_tree_task(void *vctx, ptrdiff_t t, int worker)
{
    parml_tb_forest *x = (parml_tb_forest *)vctx;
    (void)worker;
    if (parml_tb_tree(x->c, t, 1)) *x->failed = 1;
}

/* Build all trees: in parallel over trees, or (a single tree) over its subtrees. */
static int parml_tb_build(const parml_tb_ctx *c, int n_threads)
{
    int failed = 0;
    if (c->n_trees == 1) return parml_tb_tree(c, 0, n_threads);
    parml_tb_forest x = {c, &failed};
    if (n_threads > 1 && c->pf)
        c->pf(c->n_trees, n_threads, parml_tb_tree_task, &x);
    else
        for (ptrdiff_t t = 0; t < c->n_trees; ++t) parml_tb_tree_task(&x, t, 0);
    return failed ? -1 : 0;
}

/* ---- in-bag bits regenerated from the trees' seeds (the same first draws as the build) ----- */
typedef struct { const parml_tb_ctx *c; uint8_t *bits; int *failed; } parml_tb_inbag_ctx;

static void parml_tb_inbag_task(void *vctx, ptrdiff_t t, int worker)
{
    parml_tb_inbag_ctx *x = (parml_tb_inbag_ctx *)vctx;
    const ptrdiff_t n = x->c->n, nbytes = (n + 7) / 8;
    uint64_t rng = x->c->seeds[t];
    int32_t *cnt = (int32_t *)calloc((size_t)(n > 0 ? n : 1), sizeof(int32_t));
    (void)worker;
    if (!cnt) { *x->failed = 1; return; }
    parml_tb_draw(x->c, &rng, cnt);
    uint8_t *b = x->bits + t * nbytes;
    for (ptrdiff_t i = 0; i < n; ++i)
        if (cnt[i]) b[i >> 3] |= (uint8_t)(1u << (i & 7));
    free(cnt);
}

/* ---- out-of-bag sums: each row through every tree it was not drawn for, in tree order ------ */
typedef struct {
    const uint8_t *B; ptrdiff_t n;
    int missing_bin;
    const int32_t *feature, *bin, *left, *right;
    const uint8_t *missing_left;
    const double *value;        /* nodes x W */
    const int64_t *roots;       /* n_trees */
    ptrdiff_t n_trees, W;
    const uint8_t *inbag;       /* n_trees x ceil(n/8) */
    double *sum;                /* OUT n x W */
    int32_t *count;             /* OUT n */
    ptrdiff_t block;
} parml_tb_oob_ctx;

static void parml_tb_oob_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_tb_oob_ctx *c = (const parml_tb_oob_ctx *)vctx;
    const ptrdiff_t i0 = t * c->block, i1 = i0 + c->block < c->n ? i0 + c->block : c->n;
    const ptrdiff_t nbytes = (c->n + 7) / 8;
    (void)worker;
    for (ptrdiff_t i = i0; i < i1; ++i) {
        double *o = c->sum + i * c->W;
        for (ptrdiff_t k = 0; k < c->n_trees; ++k) {
            if ((c->inbag[k * nbytes + (i >> 3)] >> (i & 7)) & 1) continue;
            int64_t node = c->roots[k];
            while (c->left[node] >= 0) {
                const int b = c->B[(ptrdiff_t)c->feature[node] * c->n + i];
                const int go_left = b == c->missing_bin ? c->missing_left[node] : b <= c->bin[node];
                node = c->roots[k] + (go_left ? c->left[node] : c->right[node]);
            }
            for (ptrdiff_t w = 0; w < c->W; ++w) o[w] += c->value[node * c->W + w];
            c->count[i] += 1;
        }
    }
}

#endif
