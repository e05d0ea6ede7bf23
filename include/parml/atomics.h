/* The few atomic operations the Cython kernels need (Cython has no _Atomic): GCC/Clang
 * builtins on plain bytes and words, with the orderings named. */
#ifndef PARML_ATOMICS_H
#define PARML_ATOMICS_H

#include <sched.h>
#include <stddef.h>

static inline unsigned char parml_load_acq_u8(const unsigned char *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void parml_store_rel_u8(unsigned char *p, unsigned char v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* *p: expect -> v; 1 if this call made the change. */
static inline int parml_cas_u8(unsigned char *p, unsigned char expect, unsigned char v)
{
    return __atomic_compare_exchange_n(p, &expect, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline ptrdiff_t parml_load_acq_z(const ptrdiff_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void parml_store_rel_z(ptrdiff_t *p, ptrdiff_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline void parml_add_z(ptrdiff_t *p, ptrdiff_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* A spin-wait step: pause, and every 1024th step give the core away (the thread being waited
 * for may be queued behind this one). */
static inline void parml_spin_step(long *spins)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if ((++*spins & 1023) == 0)
        sched_yield();
}

#endif
