"""Uniform random permutations (Fisher-Yates on splitmix64; see include/parml/shuffle.h)."""

import numpy as np

cdef extern from "parml/shuffle.h" nogil:
    void parml_shuffle(Py_ssize_t *a, Py_ssize_t n, unsigned long long seed)


def permutation(n_or_values, seed):
    """A uniformly random permutation of range(n) (int) or of a 1-d intp array (shuffled copy),
    as an intp array; the same seed (0 <= seed < 2**64) gives the same permutation."""
    cdef unsigned long long s
    cdef Py_ssize_t[::1] a
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2 ** 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    s = int(seed)
    if isinstance(n_or_values, (int, np.integer)) and not isinstance(n_or_values, (bool, np.bool_)):
        if n_or_values < 0:
            raise ValueError(f"permutation of a negative length ({n_or_values})")
        out = np.arange(int(n_or_values), dtype=np.intp)
    else:
        v = np.asarray(n_or_values)
        if v.ndim != 1 or v.dtype != np.intp:
            raise TypeError(f"permutation needs an int or a 1-d intp array, got {v.dtype} "
                            f"array of shape {v.shape}")
        out = np.array(v, dtype=np.intp, copy=True)
    a = out
    if a.shape[0] > 1:
        with nogil:
            parml_shuffle(&a[0], a.shape[0], s)
    return out
