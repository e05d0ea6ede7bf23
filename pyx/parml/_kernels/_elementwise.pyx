"""Element-wise kernels, data-parallel over blocks of rows (or of a flat contiguous range), on
parml's task pool. Callers (parml.ops) validate shapes, dtypes and layouts; nothing here checks."""

from cython cimport floating

from parml._kernels._pool cimport parallel_for

# Elements per task of the flat kernel: 64K = 512 KB of doubles per operand, large enough to
# amortise a task claim, small enough that two threads split medium arrays evenly.
cdef enum:
    FLAT_BLOCK = 65536


ctypedef struct AddCtx:
    char *a               # IN
    char *b               # IN
    char *out             # OUT
    Py_ssize_t m, n       # rows, columns (flat: m = 1 block row, n = length)
    Py_ssize_t rs_a, cs_a, rs_b, cs_b, rs_o, cs_o   # strides in bytes
    Py_ssize_t rows_per_task


cdef inline void _add_flat_range(AddCtx *c, ptrdiff_t t, floating *dummy) noexcept nogil:
    cdef const floating *a = <const floating *>c.a
    cdef const floating *b = <const floating *>c.b
    cdef floating *out = <floating *>c.out
    cdef Py_ssize_t lo = t * FLAT_BLOCK
    cdef Py_ssize_t hi = min(lo + FLAT_BLOCK, c.n)
    cdef Py_ssize_t i
    for i in range(lo, hi):
        out[i] = a[i] + b[i]


cdef inline void _add_rows_range(AddCtx *c, ptrdiff_t t, floating *dummy) noexcept nogil:
    cdef Py_ssize_t lo = t * c.rows_per_task
    cdef Py_ssize_t hi = min(lo + c.rows_per_task, c.m)
    cdef Py_ssize_t i, j
    cdef const char *ai
    cdef const char *bi
    cdef char *oi
    for i in range(lo, hi):
        ai = c.a + i * c.rs_a
        bi = c.b + i * c.rs_b
        oi = c.out + i * c.rs_o
        for j in range(c.n):
            (<floating *>(oi + j * c.cs_o))[0] = ((<const floating *>(ai + j * c.cs_a))[0]
                                                + (<const floating *>(bi + j * c.cs_b))[0])


cdef void _flat_d(void *c, ptrdiff_t t, int w) noexcept nogil:
    _add_flat_range(<AddCtx *>c, t, <double *>NULL)

cdef void _flat_s(void *c, ptrdiff_t t, int w) noexcept nogil:
    _add_flat_range(<AddCtx *>c, t, <float *>NULL)

cdef void _rows_d(void *c, ptrdiff_t t, int w) noexcept nogil:
    _add_rows_range(<AddCtx *>c, t, <double *>NULL)

cdef void _rows_s(void *c, ptrdiff_t t, int w) noexcept nogil:
    _add_rows_range(<AddCtx *>c, t, <float *>NULL)


def add_flat(const floating[::1] a,   # IN
             const floating[::1] b,   # IN
             floating[::1] out,       # OUT  may be a or b (element-wise, so in-place is safe)
             int n_threads):
    """out = a + b over contiguous 1-D views, in blocks of FLAT_BLOCK elements."""
    cdef AddCtx c
    cdef Py_ssize_t n = out.shape[0]
    if n == 0:
        return
    c.a = <char *>&a[0]
    c.b = <char *>&b[0]
    c.out = <char *>&out[0]
    c.m = 1
    c.n = n
    with nogil:
        if floating is double:
            parallel_for((n + FLAT_BLOCK - 1) // FLAT_BLOCK, n_threads, _flat_d, &c)
        else:
            parallel_for((n + FLAT_BLOCK - 1) // FLAT_BLOCK, n_threads, _flat_s, &c)


def add_rows(const floating[:, :] a,  # IN   any strides (0 for broadcast axes)
             const floating[:, :] b,  # IN   any strides
             floating[:, :] out,      # OUT  any strides; no partial overlap with a or b
             int n_threads):
    """out = a + b over 2-D strided views, parallel over blocks of rows."""
    cdef AddCtx c
    cdef Py_ssize_t m = out.shape[0], n = out.shape[1]
    cdef Py_ssize_t ntasks
    if m == 0 or n == 0:
        return
    c.a = <char *>&a[0, 0]
    c.b = <char *>&b[0, 0]
    c.out = <char *>&out[0, 0]
    c.m, c.n = m, n
    c.rs_a, c.cs_a = a.strides[0], a.strides[1]
    c.rs_b, c.cs_b = b.strides[0], b.strides[1]
    c.rs_o, c.cs_o = out.strides[0], out.strides[1]
    c.rows_per_task = max(1, FLAT_BLOCK // n)
    ntasks = (m + c.rows_per_task - 1) // c.rows_per_task
    with nogil:
        if floating is double:
            parallel_for(ntasks, n_threads, _rows_d, &c)
        else:
            parallel_for(ntasks, n_threads, _rows_s, &c)
