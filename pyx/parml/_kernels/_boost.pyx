# cython: language_level=3
"""The boosting loop's per-row work (include/parml/boost.h): loss gradients/hessians as float32
and the raw-score update from a tree's leaves, in parallel over row blocks / leaves.

Array arguments are typed memoryviews marked IN / OUT / INOUT (Cython checks dtype, dimensions,
C-contiguity and writability on the way in; None only where documented); the wrappers check
that shapes agree and that row numbers and leaf spans stay in bounds."""

import numpy as np

from libc.stdint cimport int32_t, int64_t
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parallel_for
from parml._kernels._checks cimport within

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


def gradients(str loss,
              const double[:, ::1] raw not None,  # IN   n x K raw scores
              const double[::1] y not None,       # IN   n targets (softmax: class indices)
              const double[::1] sw,               # IN   n sample weights, or None
              float[:, ::1] g not None,           # OUT  K x n gradients
              float[:, ::1] h,                    # OUT  K x n hessians, or None (see below)
              int n_threads=1):
    """Fill g, h (float32, (K, n)) with the loss's gradients and hessians at raw (float64,
    (n, K)), times the sample weights sw (float64 (n,) or None). loss: "squared_error" (K = 1;
    h may be None without weights: a constant hessian), "logistic" (K = 1, y in {0, 1}),
    "softmax" (y holds class indices 0..K-1)."""
    if loss not in LOSSES:
        raise ValueError(f"boost kernel: loss must be one of {tuple(LOSSES)}")
    cdef Py_ssize_t n = raw.shape[0], K = raw.shape[1]
    if y.shape[0] != n or (sw is not None and sw.shape[0] != n):
        raise ValueError(f"boost kernel: y and sw need one entry per row of raw ({n}), got "
                         f"{y.shape[0]} and {None if sw is None else sw.shape[0]}")
    if g.shape[0] != K or g.shape[1] != n or \
            (h is not None and (h.shape[0] != K or h.shape[1] != n)):
        raise ValueError(f"boost kernel: g and h must have shape ({K}, {n}) (raw transposed), "
                         f"got ({g.shape[0]}, {g.shape[1]}) and "
                         f"{None if h is None else (h.shape[0], h.shape[1])}")
    if h is None and (loss != "squared_error" or sw is not None):
        raise ValueError("boost kernel: h is needed unless the loss is unweighted squared error")
    if loss != "softmax" and K != 1:
        raise ValueError("boost kernel: squared_error and logistic take one output")
    if n == 0 or K == 0:
        return
    cdef parml_grad_ctx c
    c.loss = LOSSES[loss]
    c.raw = &raw[0, 0]
    c.y = &y[0]
    c.sw = &sw[0] if sw is not None else NULL
    c.n, c.K = n, K
    c.g = &g[0, 0]
    c.h = &h[0, 0] if h is not None else NULL
    cdef ptrdiff_t ntask = (n + BLOCK - 1) // BLOCK, t
    cdef bint par = n_threads > 1 and n >= SMALL
    with nogil:
        if par:
            parallel_for(ntask, n_threads, parml_grad_task, &c)
        else:
            for t in range(ntask):
                parml_grad_task(&c, t, 0)


def add_leaf_values(double[:, ::1] raw not None,       # INOUT n x K raw scores
                    Py_ssize_t k,
                    const int32_t[::1] rows not None,  # IN    m row buffer (rows of raw)
                    const int64_t[::1] lo not None,    # IN    L leaf span starts in rows
                    const int64_t[::1] hi not None,    # IN    L leaf span ends in rows
                    const double[::1] value not None,  # IN    L leaf values
                    int n_threads=1, bint checked=False):
    """raw[rows[lo[l]:hi[l]], k] += value[l] for every leaf l; returns raw. The spans must be
    disjoint and the rows in them distinct (as in a grown tree's partitioned row buffer), so no
    two tasks add to one row. checked=True skips the O(n) distinctness scan (the grower's buffer
    is a permutation by construction)."""
    cdef Py_ssize_t n = raw.shape[0], K = raw.shape[1], m = rows.shape[0], L = value.shape[0]
    if not 0 <= k < K:
        raise ValueError("boost kernel: k out of range")
    if lo.shape[0] != L or hi.shape[0] != L:
        raise ValueError(f"boost kernel: lo, hi and value need one entry per leaf, got "
                         f"{lo.shape[0]}, {hi.shape[0]} and {L}")
    if L == 0:
        return raw.base
    lo_a, hi_a = np.asarray(lo), np.asarray(hi)
    order = np.argsort(lo_a, kind="stable")
    if lo_a.min() < 0 or hi_a.max() > m or (hi_a < lo_a).any() \
            or (lo_a[order][1:] < hi_a[order][:L - 1]).any():
        raise ValueError("boost kernel: leaf spans must be disjoint spans of rows")
    if not within(rows, 0, n):
        raise ValueError("boost kernel: rows out of range")
    if not checked:
        rows_a = np.asarray(rows)
        used = np.concatenate([rows_a[a:b] for a, b in zip(lo_a, hi_a)])
        if len(used) and np.bincount(used, minlength=n).max() > 1:
            raise ValueError("boost kernel: a row appears in more than one leaf position")
    cdef parml_leaves_ctx c
    c.raw = &raw[0, 0] if n else NULL
    c.K, c.k = K, k
    c.rows = &rows[0] if m else NULL
    c.lo = &lo[0]
    c.hi = &hi[0]
    c.value = &value[0]
    cdef ptrdiff_t t, nl = L
    cdef bint par = n_threads > 1 and m >= SMALL
    with nogil:
        if par:
            parallel_for(nl, n_threads, parml_leaves_task, &c)
        else:
            for t in range(nl):
                parml_leaves_task(&c, t, 0)
    return raw.base
