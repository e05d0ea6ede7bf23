/* The best-first candidate heap of both tree growers (hist_grow.h, tree_build.h): a binary
 * heap in which the candidate with the larger gain comes first and, on equal gains, the older
 * (lower-numbered) node. That order is part of the determinism contract: it is Python's heapq
 * on (-gain, node), which the reference growers in the tests use.
 *
 * PARML_HEAP_DEFINE(prefix, T) writes prefix_before, prefix_push and prefix_pop for an element
 * type T that has the fields `double gain` and `int32_t node`; the growers' candidates carry
 * different payloads, the order and the sift code are this file's alone. */
#ifndef PARML_HEAP_H
#define PARML_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define PARML_HEAP_DEFINE(P, T)                                                               \
static inline int P##_before(const T *a, const T *b)                                          \
{                                                                                             \
    return a->gain > b->gain || (a->gain == b->gain && a->node < b->node);                    \
}                                                                                             \
                                                                                              \
/* x joins the heap h of *n elements (capacity is the caller's) */                            \
static inline void P##_push(T *h, ptrdiff_t *n, T x)                                          \
{                                                                                             \
    ptrdiff_t i = (*n)++;                                                                     \
    while (i > 0) {                                                                           \
        const ptrdiff_t p = (i - 1) / 2;                                                      \
        if (!P##_before(&x, &h[p])) break;                                                    \
        h[i] = h[p];                                                                          \
        i = p;                                                                                \
    }                                                                                         \
    h[i] = x;                                                                                 \
}                                                                                             \
                                                                                              \
/* removes and returns the first element; *n must be > 0 */                                   \
static inline T P##_pop(T *h, ptrdiff_t *n)                                                   \
{                                                                                             \
    const T top = h[0];                                                                       \
    const T x = h[--(*n)];                                                                    \
    ptrdiff_t i = 0;                                                                          \
    for (;;) {                                                                                \
        const ptrdiff_t l = 2 * i + 1;                                                        \
        ptrdiff_t best = i;                                                                   \
        const T *bx = &x;                                                                     \
        if (l < *n && P##_before(&h[l], bx)) { best = l; bx = &h[l]; }                        \
        if (l + 1 < *n && P##_before(&h[l + 1], bx)) best = l + 1;                            \
        if (best == i) break;                                                                 \
        h[i] = h[best];                                                                       \
        i = best;                                                                             \
    }                                                                                         \
    if (*n > 0) h[i] = x;                                                                     \
    return top;                                                                               \
}

#endif
