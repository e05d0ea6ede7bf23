# cython: language_level=3
"""The boosting loop's per-row work (include/parml/boost.h): loss gradients/hessians as float32
and the raw-score update from a tree's leaves, in parallel over row blocks / leaves."""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uintptr_t
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parallel_for

cdef extern from "parml/boost.h" nogil:
    ctypedef struct parml_grad_ctx:
        int loss
        const double *raw
        const double *y
        const double *sw
        ptrdiff_t n, K
        float *g
        float *h
    void parml_grad_task(void *ctx, ptrdiff_t t, int worker)
    ctypedef struct parml_leaves_ctx:
        double *raw
        ptrdiff_t K, k
        const int32_t *rows
        const int64_t *lo
        const int64_t *hi
        const double *value
    void parml_leaves_task(void *ctx, ptrdiff_t l, int worker)

LOSSES = {"squared_error": 0, "logistic": 1, "softmax": 2}
BLOCK = 8192
SMALL = 65536  # rows below which one thread does it (a parallel region costs more)


cdef inline void *_ptr(a):
    return <void *><uintptr_t>a.ctypes.data


def _need(a, dtype, shape, what, writable=False):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape \
            or not a.flags.c_contiguous or (writable and not a.flags.writeable):
        raise ValueError(f"boost kernel: {what} must be a C-contiguous"
                         f"{' writable' if writable else ''} {np.dtype(dtype)} array of shape "
                         f"{shape}")


def gradients(str loss, raw, y, sw, g, h, int n_threads=1):
    """Fill g, h (float32, (K, n)) with the loss's gradients and hessians at raw (float64,
    (n, K)), times the sample weights sw (float64 (n,) or None). loss: "squared_error" (K = 1;
    h may be None without weights: a constant hessian), "logistic" (K = 1, y in {0, 1}),
    "softmax" (y holds class indices 0..K-1)."""
    if loss not in LOSSES:
        raise ValueError(f"boost kernel: loss must be one of {tuple(LOSSES)}")
    if not isinstance(raw, np.ndarray) or raw.ndim != 2:
        raise ValueError("boost kernel: raw must be a 2-D float64 array (n, K)")
    cdef Py_ssize_t n = raw.shape[0], K = raw.shape[1]
    _need(raw, np.float64, (n, K), "raw")
    _need(y, np.float64, (n,), "y")
    if sw is not None:
        _need(sw, np.float64, (n,), "sw")
    _need(g, np.float32, (K, n), "g", True)
    if h is not None:
        _need(h, np.float32, (K, n), "h", True)
    elif loss != "squared_error" or sw is not None:
        raise ValueError("boost kernel: h is needed unless the loss is unweighted squared error")
    if loss != "softmax" and K != 1:
        raise ValueError("boost kernel: squared_error and logistic take one output")
    cdef parml_grad_ctx c
    c.loss = LOSSES[loss]
    c.raw = <const double *>_ptr(raw)
    c.y = <const double *>_ptr(y)
    c.sw = <const double *>_ptr(sw) if sw is not None else NULL
    c.n, c.K = n, K
    c.g = <float *>_ptr(g)
    c.h = <float *>_ptr(h) if h is not None else NULL
    cdef ptrdiff_t ntask = (n + BLOCK - 1) // BLOCK, t
    cdef bint par = n_threads > 1 and n >= SMALL
    with nogil:
        if par:
            parallel_for(ntask, n_threads, parml_grad_task, &c)
        else:
            for t in range(ntask):
                parml_grad_task(&c, t, 0)


def add_leaf_values(raw, Py_ssize_t k, rows, lo, hi, value, int n_threads=1,
                    bint checked=False):
    """raw[rows[lo[l]:hi[l]], k] += value[l] for every leaf l. The spans must be disjoint and
    the rows in them distinct (as in a grown tree's partitioned row buffer), so no two tasks
    add to one row. checked=True skips the O(n) distinctness scan (the grower's buffer is a
    permutation by construction)."""
    if not isinstance(raw, np.ndarray) or raw.ndim != 2:
        raise ValueError("boost kernel: raw must be a 2-D float64 array (n, K)")
    cdef Py_ssize_t n = raw.shape[0], K = raw.shape[1]
    _need(raw, np.float64, (n, K), "raw", True)
    if not 0 <= k < K:
        raise ValueError("boost kernel: k out of range")
    m = len(rows) if isinstance(rows, np.ndarray) else -1
    _need(rows, np.int32, (m,), "rows")
    L = len(value) if isinstance(value, np.ndarray) else -1
    _need(value, np.float64, (L,), "value")
    _need(lo, np.int64, (L,), "lo")
    _need(hi, np.int64, (L,), "hi")
    if L == 0:
        return raw
    order = np.argsort(lo, kind="stable")
    if lo.min() < 0 or hi.max() > m or (hi < lo).any() \
            or (lo[order][1:] < hi[order][:-1]).any():
        raise ValueError("boost kernel: leaf spans must be disjoint spans of rows")
    if m and (rows.min() < 0 or rows.max() >= n):
        raise ValueError("boost kernel: rows out of range")
    if not checked:
        used = np.concatenate([rows[a:b] for a, b in zip(lo, hi)])
        if len(used) and np.bincount(used, minlength=n).max() > 1:
            raise ValueError("boost kernel: a row appears in more than one leaf position")
    cdef parml_leaves_ctx c
    c.raw = <double *>_ptr(raw)
    c.K, c.k = K, k
    c.rows = <const int32_t *>_ptr(rows)
    c.lo = <const int64_t *>_ptr(lo)
    c.hi = <const int64_t *>_ptr(hi)
    c.value = <const double *>_ptr(value)
    cdef ptrdiff_t t, nl = L
    cdef bint par = n_threads > 1 and m >= SMALL
    with nogil:
        if par:
            parallel_for(nl, n_threads, parml_leaves_task, &c)
        else:
            for t in range(nl):
                parml_leaves_task(&c, t, 0)
    return raw
