/* Tree-ensemble prediction on raw float features. Included by _tree_predict.pyx only.
 *
 * A forest is flat arrays of nodes; tree t's nodes start at roots[t]. A node is a split
 * (x[feature] <= threshold goes left; NaN goes left iff missing_left) or a leaf (left < 0)
 * holding `value`. out[i * n_outputs + tree_output[t]] += value of row i's leaf in tree t; with
 * value_width = n_outputs (> 1) a leaf holds one value per output (a random forest's class
 * fractions) and all of them are added.
 * Rows are split into blocks run by parml's pool; within a block each tree is walked by every
 * row, trees in order, so each output is the same sum in the same order for any thread count. */
#ifndef PARML_TREE_PREDICT_H
#define PARML_TREE_PREDICT_H

#include <math.h>
#include <stdint.h>

#include "pool_api.h"

typedef struct {
    const char *X;            /* IN  n x d, float64 or float32, row stride row_bytes */
    ptrdiff_t n, row_bytes;
    int is_float;
    const int32_t *feature;   /* IN  nodes */
    const double *threshold;
    const uint8_t *missing_left;
    const int32_t *left, *right;
    const double *value;
    const int64_t *roots;     /* IN  n_trees */
    const int32_t *tree_output;
    ptrdiff_t n_trees, n_outputs, value_width;
    double *out;              /* INOUT n x n_outputs (added to) */
    const uint8_t *node_cat;  /* IN  nodes: 1 = categorical split, or NULL (none in the forest) */
    const uint32_t *cats;     /* IN  nodes x 8: the categories going left */
    const uint32_t *known;    /* IN  features x 8: categories seen in training */
    ptrdiff_t block;
    const struct parml_qnode *q;  /* IN  nodes, packed (or NULL: walk the arrays above) */
    const int32_t *steps;         /* IN  n_trees: lockstep steps of each tree (with q) */
} parml_forest_ctx;

static inline double parml_tree_x(const parml_forest_ctx *c, const char *row, int32_t f)
{
    return c->is_float ? (double)((const float *)row)[f] : ((const double *)row)[f];
}

/* A categorical split on raw x: NaN, negative, non-integer and categories not seen in training
 * follow the missing direction (scikit-learn's rule); known categories go left iff in the set. */
static inline int parml_tree_cat_left(const parml_forest_ctx *c, int64_t gnode, int32_t f, double x)
{
    if (!(x >= 0 && x < 256) || (double)(int)x != x) return c->missing_left[gnode];
    const int v = (int)x;
    if (!((c->known[8 * (ptrdiff_t)f + (v >> 5)] >> (v & 31)) & 1)) return c->missing_left[gnode];
    return (c->cats[8 * gnode + (v >> 5)] >> (v & 31)) & 1;
}

/* One block of rows. A tree at a time over the whole block (tree-major): the tree's nodes stay
 * in L1 while every row of the block walks it, instead of the whole forest streaming through the
 * cache once per row. Each row still adds its trees' values in tree order, so the sums are the
 * same for any blocking and thread count. */
static void parml_forest_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_forest_ctx *c = (const parml_forest_ctx *)vctx;
    const ptrdiff_t i0 = t * c->block, i1 = i0 + c->block < c->n ? i0 + c->block : c->n;
    (void)worker;
    for (ptrdiff_t k = 0; k < c->n_trees; ++k) {
        const int64_t root = c->roots[k];
        const int32_t *left = c->left + root, *right = c->right + root, *feat = c->feature + root;
        const double *thr = c->threshold + root;
        const uint8_t *ml = c->missing_left + root;
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const char *row = c->X + i * c->row_bytes;
            int64_t node = 0;
            if (c->node_cat == NULL) {
                while (left[node] >= 0) {
                    const double x = parml_tree_x(c, row, feat[node]);
                    const int go_left = x != x ? ml[node] : x <= thr[node];
                    node = go_left ? left[node] : right[node];
                }
            } else {
                while (left[node] >= 0) {
                    const double x = parml_tree_x(c, row, feat[node]);
                    const int go_left = c->node_cat[root + node]
                        ? parml_tree_cat_left(c, root + node, feat[node], x)
                        : (x != x ? ml[node] : x <= thr[node]);
                    node = go_left ? left[node] : right[node];
                }
            }
            double *o = c->out + i * c->n_outputs;
            if (c->value_width == 1) {
                o[c->tree_output[k]] += c->value[root + node];
            } else {
                const double *v = c->value + (root + node) * c->value_width;
                for (ptrdiff_t j = 0; j < c->value_width; ++j) o[j] += v[j];
            }
        }
    }
}

/* ---- packed, lockstep walk -------------------------------------------------------------------
 * The walk above is one dependent chain per row (node -> feature -> x -> compare -> child) that
 * ends in a mispredicted loop exit, so rows hardly overlap: ~4 ns per level here. Below, a tree
 * whose children are adjacent (right = left + 1, as the boosting grower makes them) is packed
 * into 16-byte nodes, leaves point to themselves, and 4 rows walk it together for a fixed number
 * of steps with no data-dependent branch: the 4 chains, and consecutive groups, overlap in the
 * out-of-order core (~1.3 ns per level, 1.8x faster on 200k x 100 trees of 31 leaves). Rows in a
 * leaf after `steps` steps stay there; the few deeper rows (steps is capped for deep, unbalanced
 * trees) finish with a branchy walk. Same leaves, same sums in the same order as the walk
 * above. */
/* Requests of fewer rows than this take the plain walk: a lone row has no partner chains, and
 * its fixed-depth walk (the tree's depth, not the row's) is slower than the plain one
 * (100 trees: 12.5 vs 9.9 us a call here). */
#define PARML_PACKED_MIN_ROWS 4

typedef struct parml_qnode {
    double thr;      /* split: x <= thr goes left; leaf: NaN, so every x "goes right" */
    uint32_t fm;     /* feature | (NaN goes right) << 31; leaf: 1 << 31 */
    int32_t left;    /* split: left child (right = left + 1), tree-relative; leaf: itself - 1 */
} parml_qnode;

static inline int32_t parml_qstep(const parml_qnode *p, const char *row, int is_float,
                                  int32_t node)
{
    const parml_qnode q = p[node];
    const uint32_t f = q.fm & 0x7fffffffu;
    const double x = is_float ? (double)((const float *)row)[f] : ((const double *)row)[f];
    const int32_t right = x != x ? (int32_t)(q.fm >> 31) : !(x <= q.thr);
    return q.left + right;
}

static inline int32_t parml_qfinish(const parml_qnode *p, const char *row, int is_float,
                                    int32_t node)
{
    while (p[node].left >= node) node = parml_qstep(p, row, is_float, node);
    return node;
}

static inline void parml_qadd(const parml_forest_ctx *c, ptrdiff_t k, int64_t gnode, double *o)
{
    if (c->value_width == 1) {
        o[c->tree_output[k]] += c->value[gnode];
    } else {
        const double *v = c->value + gnode * c->value_width;
        for (ptrdiff_t j = 0; j < c->value_width; ++j) o[j] += v[j];
    }
}

static inline void parml_forest_packed_rows(const parml_forest_ctx *c, ptrdiff_t i0,
                                            ptrdiff_t i1, int is_float)
{
    const ptrdiff_t rb = c->row_bytes, no = c->n_outputs;
    const ptrdiff_t i4 = i0 + (i1 - i0) / 4 * 4;
    for (ptrdiff_t k = 0; k < c->n_trees && i0 < i4; ++k) {  /* groups of 4 rows, tree-major */
        const int64_t root = c->roots[k];
        const parml_qnode *p = c->q + root;
        const int32_t S = c->steps[k];
        for (ptrdiff_t i = i0; i < i4; i += 4) {
            const char *r0 = c->X + i * rb, *r1 = r0 + rb, *r2 = r1 + rb, *r3 = r2 + rb;
            int32_t a = 0, b = 0, d = 0, e = 0;
            for (int32_t s = 0; s < S; ++s) {
                a = parml_qstep(p, r0, is_float, a);
                b = parml_qstep(p, r1, is_float, b);
                d = parml_qstep(p, r2, is_float, d);
                e = parml_qstep(p, r3, is_float, e);
            }
            a = parml_qfinish(p, r0, is_float, a);
            b = parml_qfinish(p, r1, is_float, b);
            d = parml_qfinish(p, r2, is_float, d);
            e = parml_qfinish(p, r3, is_float, e);
            parml_qadd(c, k, root + a, c->out + i * no);
            parml_qadd(c, k, root + b, c->out + (i + 1) * no);
            parml_qadd(c, k, root + d, c->out + (i + 2) * no);
            parml_qadd(c, k, root + e, c->out + (i + 3) * no);
        }
    }
    for (ptrdiff_t i = i4; i < i1; ++i) {  /* the last 1-3 rows */
        const char *row = c->X + i * rb;
        for (ptrdiff_t k = 0; k < c->n_trees; ++k) {
            const parml_qnode *p = c->q + c->roots[k];
            int32_t a = 0;
            for (int32_t s = 0; s < c->steps[k]; ++s) a = parml_qstep(p, row, is_float, a);
            parml_qadd(c, k, c->roots[k] + parml_qfinish(p, row, is_float, a), c->out + i * no);
        }
    }
}

static void parml_forest_packed_task(void *vctx, ptrdiff_t t, int worker)
{
    const parml_forest_ctx *c = (const parml_forest_ctx *)vctx;
    const ptrdiff_t i0 = t * c->block, i1 = i0 + c->block < c->n ? i0 + c->block : c->n;
    (void)worker;
    if (c->is_float) parml_forest_packed_rows(c, i0, i1, 1);
    else parml_forest_packed_rows(c, i0, i1, 0);
}

/* Pack a checked forest (children inside their tree, after their parent). Returns 0, or -1 when
 * some split's children are not adjacent (the forest is then walked unpacked). steps[t]: the
 * tree's depth, capped at 3x its mean leaf depth (+1) so that a deep, unbalanced tree does not
 * make every row walk its longest path. depth: scratch of the largest tree's size. */
static int parml_pack_forest(const int32_t *feature, const double *threshold,
                             const uint8_t *missing_left, const int32_t *left,
                             const int32_t *right, const int64_t *roots, ptrdiff_t n_trees,
                             ptrdiff_t n_nodes, parml_qnode *q, int32_t *steps, int32_t *depth)
{
    for (ptrdiff_t t = 0; t < n_trees; ++t) {
        const int64_t lo = roots[t], hi = t + 1 < n_trees ? roots[t + 1] : n_nodes;
        int32_t maxd = 0;
        double sumd = 0.0, leaves = 0.0;
        depth[0] = 0;
        for (int64_t j = 0; j < hi - lo; ++j) {
            const int64_t g = lo + j;
            if (left[g] >= 0) {
                if (right[g] != left[g] + 1) return -1;
                q[g].thr = threshold[g];
                q[g].fm = (uint32_t)feature[g] | (missing_left[g] ? 0u : 0x80000000u);
                q[g].left = left[g];
                depth[left[g]] = depth[right[g]] = depth[j] + 1;
            } else {
                q[g].thr = NAN;
                q[g].fm = 0x80000000u;
                q[g].left = (int32_t)j - 1;
                if (depth[j] > maxd) maxd = depth[j];
                sumd += depth[j];
                leaves += 1.0;
            }
        }
        const double cap = 3.0 * sumd / (leaves > 0 ? leaves : 1.0) + 1.0;
        steps[t] = (double)maxd <= cap ? maxd : (int32_t)cap;
    }
    return 0;
}

/* Rows per prediction task: a block's rows stay in L1/L2 while every tree walks them. */
#define PARML_FOREST_ROW_BLOCK 1024

/* 0 when the arrays describe a forest the walk can run safely: every child inside its tree and
 * after its parent (so every walk ends), features and outputs in range, no NaN threshold, finite
 * leaves (value: W per node, W = 1 or n_outputs). Otherwise the first problem found:
 *   1 roots do not start at 0 and increase within the n_nodes node arrays
 *   2 a tree_output out of range   3 a child outside its tree or not after its parent
 *   4 a split feature out of range 5 a NaN threshold   6 a non-finite leaf value
 * One pass, no allocation. */
static int parml_forest_check_arrays(const int32_t *feature, const double *threshold,
                                     const int32_t *left, const int32_t *right,
                                     const double *value, ptrdiff_t W, const int64_t *roots,
                                     const int32_t *tree_output, ptrdiff_t n_trees,
                                     ptrdiff_t n_nodes, ptrdiff_t n_features, ptrdiff_t n_outputs)
{
    for (ptrdiff_t t = 0; t < n_trees; ++t) {
        const int64_t lo = roots[t], hi = t + 1 < n_trees ? roots[t + 1] : n_nodes;
        if (lo < 0 || hi <= lo || hi > n_nodes || (t == 0 && lo != 0)) return 1;
        if (tree_output[t] < 0 || tree_output[t] >= n_outputs) return 2;
        const int64_t size = hi - lo;
        for (int64_t j = 0; j < size; ++j) {
            const int64_t g = lo + j;
            if (left[g] >= 0) {
                if (left[g] <= j || right[g] <= j || left[g] >= size || right[g] >= size) return 3;
                if (feature[g] < 0 || feature[g] >= n_features) return 4;
                if (threshold[g] != threshold[g]) return 5;
            } else {
                for (ptrdiff_t w = 0; w < W; ++w)
                    if (!(value[g * W + w] - value[g * W + w] == 0)) return 6;  /* NaN or inf */
            }
        }
    }
    return 0;
}

#endif
