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

#endif
