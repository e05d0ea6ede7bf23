/* Uniform random permutations for shuffled SGD epochs.
 *
 * numpy's RandomState.permutation(800k) takes 11-15 ms here, serial, once per epoch: a fifth of
 * a 2-thread shuffled SGD epoch. This is Fisher-Yates driven by rng.h (splitmix64, unbiased
 * bounded draws). The swaps land anywhere in an array larger than L2, so the positions are
 * drawn PARML_SHUF_AHEAD steps ahead (they do not depend on the data) and their cache lines
 * prefetched. */
#ifndef PARML_SHUFFLE_H
#define PARML_SHUFFLE_H

#include <stddef.h>
#include <stdint.h>
#include "rng.h"

#define PARML_SHUF_AHEAD 16   /* power of two */

/* a[0..n) <- a uniformly random permutation of itself (Fisher-Yates, from the top). Step i
 * swaps a[i] with a[j], j uniform in [0, i]; the j of step i - AHEAD is drawn and its line
 * prefetched before step i runs, so a random read is in flight for each of the next AHEAD
 * steps. The draws are consumed in the same order as plain Fisher-Yates would consume them. */
static void parml_shuffle(ptrdiff_t *a, ptrdiff_t n, uint64_t seed)
{
    uint64_t st = seed;
    ptrdiff_t ring[PARML_SHUF_AHEAD];
    ptrdiff_t i, next = n - 1;   /* next step whose j is to be drawn */
    if (n < 2)
        return;
    for (i = n - 1; i >= 1; --i) {
        while (next >= 1 && next > i - PARML_SHUF_AHEAD) {
            const ptrdiff_t j = (ptrdiff_t)parml_bounded(&st, (uint64_t)next + 1);
            ring[next & (PARML_SHUF_AHEAD - 1)] = j;
            __builtin_prefetch(a + j, 1, 3);
            --next;
        }
        {
            const ptrdiff_t j = ring[i & (PARML_SHUF_AHEAD - 1)];
            const ptrdiff_t t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}

#endif
