"""Element-wise kernels (include/parml/elementwise.h), data-parallel over blocks of rows or of a
flat contiguous range, on parml's task pool. Callers (parml.ops) validate shapes, dtypes and
layouts; nothing here checks."""

from cython cimport floating

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn

cdef extern from "parml/elementwise.h" nogil:
    int parml_add_flat(const void *a, const void *b, void *out, ptrdiff_t n, int f32,
                       int n_threads, parml_parallel_for_fn pf)
    int parml_add_rows(const void *a, ptrdiff_t rs_a, ptrdiff_t cs_a, const void *b,
                       ptrdiff_t rs_b, ptrdiff_t cs_b, void *out, ptrdiff_t rs_o, ptrdiff_t cs_o,
                       ptrdiff_t m, ptrdiff_t n, int f32, int n_threads, parml_parallel_for_fn pf)


def add_flat(const floating[::1] a,   # IN
             const floating[::1] b,   # IN
             floating[::1] out,       # OUT  may be a or b (element-wise, so in-place is safe)
             int n_threads):
    """out = a + b over contiguous 1-D views."""
    cdef Py_ssize_t n = out.shape[0]
    if n == 0:
        return
    with nogil:
        parml_add_flat(&a[0], &b[0], &out[0], n, floating is float, n_threads, parallel_for)


def add_rows(const floating[:, :] a,  # IN   any strides (0 for broadcast axes)
             const floating[:, :] b,  # IN   any strides
             floating[:, :] out,      # OUT  any strides; no partial overlap with a or b
             int n_threads):
    """out = a + b over 2-D strided views, parallel over blocks of rows."""
    cdef Py_ssize_t m = out.shape[0], n = out.shape[1]
    if m == 0 or n == 0:
        return
    with nogil:
        parml_add_rows(&a[0, 0], a.strides[0], a.strides[1], &b[0, 0], b.strides[0], b.strides[1],
                       &out[0, 0], out.strides[0], out.strides[1], m, n, floating is float,
                       n_threads, parallel_for)
