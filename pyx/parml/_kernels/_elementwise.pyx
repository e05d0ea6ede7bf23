"""Element-wise kernels, data-parallel over blocks of rows (or of a flat contiguous range).
Callers (parml.ops) validate shapes, dtypes and layouts; nothing here checks."""

from cython cimport floating
from cython.parallel cimport prange

# Elements per task of the flat kernel: 32K doubles = 256 KB per operand, big enough to amortise
# scheduling, small enough that two threads split even medium arrays evenly.
cdef enum:
    FLAT_BLOCK = 32768


def add_flat(const floating[::1] a,   # IN
             const floating[::1] b,   # IN
             floating[::1] out,       # OUT  may be a or b (element-wise, so in-place is safe)
             int n_threads):
    """out = a + b over contiguous 1-D views, in blocks of FLAT_BLOCK elements."""
    cdef Py_ssize_t n = out.shape[0]
    cdef Py_ssize_t nblk = (n + FLAT_BLOCK - 1) // FLAT_BLOCK
    cdef Py_ssize_t blk, i, lo, hi
    with nogil:
        for blk in prange(nblk, schedule="static", num_threads=n_threads):
            lo = blk * FLAT_BLOCK
            hi = min(lo + FLAT_BLOCK, n)
            for i in range(lo, hi):
                out[i] = a[i] + b[i]


def add_rows(const floating[:, :] a,  # IN   any strides (0 for broadcast axes)
             const floating[:, :] b,  # IN   any strides
             floating[:, :] out,      # OUT  any strides, no overlap with a or b unless identical
             int n_threads):
    """out = a + b over 2-D strided views, parallel over blocks of rows."""
    cdef Py_ssize_t m = out.shape[0], n = out.shape[1]
    cdef Py_ssize_t i, j
    with nogil:
        for i in prange(m, schedule="static", num_threads=n_threads):
            for j in range(n):
                out[i, j] = a[i, j] + b[i, j]
