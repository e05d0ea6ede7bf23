/* Software prefetch of rows read in an order the hardware prefetcher cannot guess (shuffled
 * rows of X, y, sample weights), shared by the linear and MLP kernels. */
#ifndef PARML_PREFETCH_H
#define PARML_PREFETCH_H

#include <stddef.h>

#include "cpu_features.h"

/* Whether "read once, soon" rows are prefetched non-temporally (prefetchnta) or into L1 as usual
 * (prefetcht0). On AMD Zen prefetchnta fills L1 and keeps more rows in flight (measured 0.84-0.94x
 * the time of prefetcht0/t1 for shuffled SGD and the fused gradient); on Intel cores its lines
 * bypass L2/L3 and the fused logistic gradient, which reads each block twice (dot, then axpy),
 * lost them in between: 4.7x the time of prefetcht0 on a Xeon (Emerald Rapids, 80k x 100). So
 * non-temporal only where it was measured to help; set once per process by
 * parml_prefetch_init(), read-only while kernels run. */
static int parml_prefetch_nta = 0;

static inline void parml_prefetch_init(void)
{
#if PARML_X86
    __builtin_cpu_init();
    parml_prefetch_nta = __builtin_cpu_is("amd") ? 1 : 0;
#else
    parml_prefetch_nta = 0;
#endif
}

/* Prefetch hint for (the first 4 KiB of) a row that will be read soon: shuffled SGD visits rows
 * in random order, and without this each row costs a DRAM round trip (~100 ns measured).
 * The empty volatile asm marks these helpers as having an effect: otherwise GCC's IPA may find a
 * caller that only prefetches "pure" and delete the call (it did, for a Cython helper wrapping
 * both prefetches: no prefetch instruction was left in the binary). */
static inline void parml_prefetch_lines(const void *p, ptrdiff_t bytes, int nta)
{
#if defined(__GNUC__) || defined(__clang__)
    const char *c = (const char *)p;
    const int hint = nta ? (parml_prefetch_nta ? 0 : 3) : 2;
    __asm__ __volatile__("");
    for (ptrdiff_t o = 0; o < bytes && o < 4096; o += 64) {
        if (hint == 0) __builtin_prefetch(c + o, 0, 0);   /* (constants: the hint must be) */
        else if (hint == 3) __builtin_prefetch(c + o, 0, 3);
        else __builtin_prefetch(c + o, 0, 2);
    }
#else
    (void)p; (void)bytes; (void)nta;
#endif
}

/* Into L2 (prefetcht1): rows read a while later, or too many to hold in L1. */
static inline void parml_prefetch_row(const void *p, ptrdiff_t bytes)
{
    parml_prefetch_lines(p, bytes, 0);
}

/* Non-temporal, into L1 (prefetchnta; prefetcht0 where that is slower, see parml_prefetch_nta),
 * for rows read once within the next few hundred ns: a
 * shuffled SGD step's row (1-thread epochs of 800k x 100 took 0.84x the time of prefetcht1, the
 * pipelined gatherer 0.94x) and the fused logistic gradient's next block but one (0.85x on 2
 * threads, the same on 1, against prefetcht0). On this Zen core prefetchnta also got more rows
 * in flight than prefetcht0/t1 did. */
static inline void parml_prefetch_row_nta(const void *p, ptrdiff_t bytes)
{
    parml_prefetch_lines(p, bytes, 1);
}

/* The same for one scalar (a shuffled row's target or weight: y of 800k rows is 6.4 MB, and a
 * random read of it missed the caches and the TLB: 100 ns a row, the larger part of a shuffled
 * SGD step before it was prefetched too). */
static inline void parml_prefetch_one(const void *p)
{
#if defined(__GNUC__) || defined(__clang__)
    __asm__ __volatile__("");
    __builtin_prefetch(p, 0, 2);
#else
    (void)p;
#endif
}

#endif
