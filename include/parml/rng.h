/* The random stream of the native kernels: splitmix64 (a 64-bit counter hashed by two
 * multiply-xorshift rounds; passes BigCrush, one word of state), and unbiased bounded draws by
 * multiply-shift with rejection (Lemire 2019). Used by the permutations of shuffled SGD
 * (shuffle.h) and by the forest builder's row and feature sampling (tree_build.h). */
#ifndef PARML_RNG_H
#define PARML_RNG_H

#include <stdint.h>

static inline uint64_t parml_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, range), range >= 1, without modulo bias. */
static inline uint64_t parml_bounded(uint64_t *state, uint64_t range)
{
    unsigned __int128 m = (unsigned __int128)parml_splitmix64(state) * range;
    uint64_t low = (uint64_t)m;
    if (low < range) {
        const uint64_t floor = (0 - range) % range;   /* 2^64 mod range */
        while (low < floor) {
            m = (unsigned __int128)parml_splitmix64(state) * range;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

#endif
