"""Histogram-tree kernels (include/parml/hist.h): binning, node histograms (feature- or
sample-parallel), the subtraction trick, best split per feature, and stable row partitioning.

Every array argument is a typed memoryview, marked IN / OUT / INOUT: Cython checks its dtype,
dimensions, C-contiguity and (OUT) writability on the way in; None only where documented.
Callers validate; the wrappers re-check only what would make C read or write out of bounds
(shapes that must agree, row numbers, bins)."""

import numpy as np

from cython cimport floating
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn
from parml._kernels._kernel_sets cimport active_set
from parml._kernels._types cimport parml_hbin, parml_split
from parml._kernels._checks cimport within, u8_max, uint8_flags
from parml._kernels._types import HBIN, SPLIT   # the records' numpy mirrors, written once there


cdef extern from "parml/hist.h" nogil:
    enum: PARML_PART_BLOCK
    void parml_hist_use_set(int kernel_set)
    const void *parml_hist_group

    ctypedef struct parml_bin_ctx:
        const char *X
        ptrdiff_t n, d, row_bytes
        int is_float
        const double *edges
        const int64_t *eoff
        uint8_t missing_bin
        uint8_t *B
        ptrdiff_t block
    void parml_bin_task(void *ctx, ptrdiff_t t, int worker)

    ctypedef struct parml_hist_ctx:
        const uint8_t *B
        ptrdiff_t n, d, nbins
        const int32_t *rows
        ptrdiff_t m
        const float *og
        const float *oh
        const float *g_full
        const float *h_full
        parml_hbin *hist
        ptrdiff_t fblock, rblock
        parml_hbin *partials
    int parml_build_histogram(parml_hist_ctx *c, int strategy, int n_threads,
                              parml_parallel_for_fn pf)
    void parml_hist_subtract(const parml_hbin *parent, const parml_hbin *child, parml_hbin *out,
                             ptrdiff_t count)

    ctypedef struct parml_split_ctx:
        const parml_hbin *hist
        ptrdiff_t d, nbins
        const int32_t *nb
        int32_t missing_bin
        double hconst, G, H
        int64_t N
        double l2, min_hessian
        int64_t min_leaf
        const uint8_t *allowed
        const uint8_t *is_cat
        parml_split *out
        ptrdiff_t fblock
    void parml_find_splits(parml_split_ctx *c, int n_threads, parml_parallel_for_fn pf)

    ptrdiff_t parml_partition(const uint8_t *B, ptrdiff_t n, int32_t *rows, ptrdiff_t m,
                              ptrdiff_t feature, int32_t bin, int missing_left,
                              int32_t missing_bin, int32_t *tmp)
    ptrdiff_t parml_partition_parallel(const uint8_t *B, ptrdiff_t n, int32_t *rows, ptrdiff_t m,
                                       ptrdiff_t feature, int32_t bin, int missing_left,
                                       int32_t missing_bin, int32_t *tmp, ptrdiff_t *scratch,
                                       int n_threads, parml_parallel_for_fn pf,
                                       const uint32_t *cats)


STRATEGIES = {"features": 0, "samples": 1}


BIN_BLOCK = 1024  # rows per task: the block's rows stay in L2 across the feature passes


def hist_loop():
    """The histogram inner loop of the active kernel set: "vector" (hist_simd.h, hist_neon.h)
    or "scalar" (the generic set); both give bit-identical histograms."""
    parml_hist_use_set(active_set())
    return "scalar" if parml_hist_group == NULL else "vector"


def bin_data(const floating[:, :] X not None,   # IN   n x d, rows contiguous (any row stride)
             edges,                            # IN   d sorted float64 sequences
             int missing_bin, int n_threads=1):
    """Binned X, shape (d, n) uint8: bin = number of edges < x; NaN -> missing_bin.

    X: (n, d) float32/float64 with contiguous rows; edges: d sorted float64 arrays, each with
    fewer than missing_bin entries (bins 0..len(edges[f]))."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    if n > 0 and d > 1 and X.strides[1] != sizeof(floating):
        raise ValueError("bin_data: X must have contiguous rows (a unit column step)")
    if len(edges) != d:
        raise ValueError("bin_data: need one edge array per feature")
    if not 1 <= missing_bin <= 255:
        raise ValueError("bin_data: missing_bin must be in 1..255")
    for e in edges:
        if len(e) >= missing_bin:
            raise ValueError("bin_data: a feature has more edges than bins below missing_bin")
    # each feature's edges padded to 255 with +inf: the kernel's search has a fixed length
    flat = np.full((max(d, 1), 256), np.inf)
    for f, e in enumerate(edges):
        flat[f, :len(e)] = np.asarray(e, dtype=np.float64)
    eoff = np.arange(d + 1, dtype=np.int64) * 256
    B = np.empty((d, n), dtype=np.uint8)
    if n == 0 or d == 0:
        return B
    cdef const double[:, ::1] fv = flat
    cdef const int64_t[::1] ev = eoff
    cdef uint8_t[:, ::1] bv = B
    cdef parml_bin_ctx c
    c.X = <const char *>&X[0, 0]
    c.n, c.d, c.row_bytes = n, d, X.strides[0]
    c.is_float = floating is float
    c.edges = &fv[0, 0]
    c.eoff = &ev[0]
    c.missing_bin = missing_bin
    c.B = &bv[0, 0]
    c.block = BIN_BLOCK
    cdef ptrdiff_t ntask = (n + BIN_BLOCK - 1) // BIN_BLOCK
    cdef ptrdiff_t t
    with nogil:
        if n_threads > 1 and ntask > 1:
            parallel_for(ntask, n_threads, parml_bin_task, &c)
        else:
            for t in range(ntask):
                parml_bin_task(&c, t, 0)
    return B


def build_histogram(const uint8_t[:, ::1] B not None,  # IN   d x n bins
                    const int32_t[::1] rows,           # IN   m node rows, or None (all n rows)
                    const float[::1] og not None,      # IN   m gradients (n with gather)
                    const float[::1] oh,               # IN   m hessians (n with gather), or None
                    Py_ssize_t nbins, str strategy="features", int n_threads=1,
                    parml_hbin[:, ::1] out=None,       # OUT  d x nbins, or None (allocated)
                    bint checked=False, bint gather=False):
    """(d, nbins) HBIN histogram of the node's rows (out, or a new array).

    B (d, n) uint8; rows int32 (m,) or None (all n rows); og, oh float32 (m,): gradients and
    hessians in node order (oh None: constant hessian, h left 0). gather=True: og, oh are
    per training row (n,) instead, and the kernel gathers the node's values itself, in
    parallel. checked=True skips the scans of B and rows for out-of-range values (for the
    grower, whose rows and bins are valid by construction: those scans cost more than the
    histogram)."""
    parml_hist_use_set(active_set())
    cdef Py_ssize_t d = B.shape[0], n = B.shape[1]
    cdef Py_ssize_t m = n if rows is None else rows.shape[0]
    if rows is not None and not checked and not within(rows, 0, n):
        raise ValueError("build_histogram: rows out of range")
    gather = gather and rows is not None
    cdef Py_ssize_t glen = n if gather else m
    if og.shape[0] != glen or (oh is not None and oh.shape[0] != glen):
        raise ValueError(f"build_histogram: og and oh need {glen} entries (one per "
                         f"{'row of B' if gather or rows is None else 'entry of rows'}"
                         f"), got {og.shape[0]} and {None if oh is None else oh.shape[0]}")
    cdef const float[::1] g_full = None, h_full = None
    if gather:
        g_full, h_full = og, oh
        og = np.empty(m, dtype=np.float32)
        oh = None if h_full is None else np.empty(m, dtype=np.float32)
    if not 1 <= nbins <= 256:
        raise ValueError("build_histogram: nbins must be in 1..256")
    if not checked and u8_max(B) >= nbins:
        raise ValueError("build_histogram: B holds bins >= nbins")
    if strategy not in STRATEGIES:
        raise ValueError(f"build_histogram: strategy must be one of {tuple(STRATEGIES)}")
    result = None
    if out is None:
        out = result = np.empty((d, nbins), dtype=HBIN)
    elif out.shape[0] != d or out.shape[1] != nbins:
        raise ValueError(f"build_histogram: out must have shape ({d}, {nbins}) (B's features x "
                         f"nbins), got ({out.shape[0]}, {out.shape[1]})")
    cdef parml_hist_ctx c
    c.B = &B[0, 0] if d and n else NULL
    c.n, c.d, c.nbins = n, d, nbins
    c.rows = &rows[0] if rows is not None and m else NULL
    c.m = m
    c.og = &og[0] if og.shape[0] else NULL
    c.oh = &oh[0] if oh is not None and oh.shape[0] else NULL
    c.g_full = &g_full[0] if g_full is not None and n else NULL
    c.h_full = &h_full[0] if h_full is not None and n else NULL
    c.hist = &out[0, 0] if d else NULL
    c.partials = NULL
    cdef int strat = STRATEGIES[strategy]
    cdef int rc
    with nogil:
        rc = parml_build_histogram(&c, strat, n_threads, parallel_for)
    if rc != 0:
        raise MemoryError("build_histogram: could not allocate per-task histograms")
    return out.base if result is None else result


def subtract(const parml_hbin[:, ::1] parent not None,  # IN   d x nbins
             const parml_hbin[:, ::1] child not None,   # IN   d x nbins
             parml_hbin[:, ::1] out=None):              # OUT  d x nbins (may be parent), or None
    """parent - child, bin by bin (HBIN arrays of one shape): out, or a new array."""
    cdef Py_ssize_t d = parent.shape[0], nbins = parent.shape[1]
    if child.shape[0] != d or child.shape[1] != nbins:
        raise ValueError(f"subtract: child has shape ({child.shape[0]}, {child.shape[1]}), "
                         f"parent ({d}, {nbins})")
    result = None
    if out is None:
        out = result = np.empty((d, nbins), dtype=HBIN)
    elif out.shape[0] != d or out.shape[1] != nbins:
        raise ValueError(f"subtract: out has shape ({out.shape[0]}, {out.shape[1]}), parent "
                         f"({d}, {nbins})")
    cdef ptrdiff_t count = d * nbins
    if count:
        with nogil:
            parml_hist_subtract(&parent[0, 0], &child[0, 0], &out[0, 0], count)
    return out.base if result is None else result


def find_splits(const parml_hbin[:, ::1] hist not None,  # IN   d x nbins
                const int32_t[::1] nb not None,          # IN   d non-missing bins per feature
                int missing_bin, double G, double H, long long N, *, double l2=0.0,
                double min_hessian=1e-3, long long min_leaf=1, double hconst=0.0,
                const uint8_t[::1] allowed=None,         # IN   d flags, or None (all)
                const uint8_t[::1] is_cat=None,          # IN   d flags, or None (none)
                int n_threads=1):
    """(d,) SPLIT records: the best split of each feature (gain -inf: none allowed). is_cat:
    uint8 (d,) flags of categorical features (their splits are sets of bins: is_cat, cats)."""
    cdef Py_ssize_t d = hist.shape[0], nbins = hist.shape[1]
    if nb.shape[0] != d:
        raise ValueError(f"find_splits: nb needs one entry per feature of hist ({d}), got "
                         f"{nb.shape[0]}")
    if not within(nb, 1, min(missing_bin, nbins) + 1):
        raise ValueError("find_splits: nb must be in 1..missing_bin")
    if not 0 <= missing_bin < nbins:
        raise ValueError("find_splits: missing_bin must index a histogram bin")
    for flags, what in ((allowed, "allowed"), (is_cat, "is_cat")):
        if flags is not None:
            if flags.shape[0] != d:
                raise ValueError(f"find_splits: {what} needs one entry per feature of hist "
                                 f"({d}), got {flags.shape[0]}")
            uint8_flags(flags, f"find_splits: {what}")
    out = np.empty(d, dtype=SPLIT)
    if d == 0:
        return out
    cdef parml_split[::1] ov = out
    cdef parml_split_ctx c
    c.hist = &hist[0, 0]
    c.d, c.nbins = d, nbins
    c.nb = &nb[0]
    c.missing_bin = missing_bin
    c.hconst, c.G, c.H, c.N = hconst, G, H, N
    c.l2, c.min_hessian, c.min_leaf = l2, min_hessian, min_leaf
    c.allowed = &allowed[0] if allowed is not None else NULL
    c.is_cat = &is_cat[0] if is_cat is not None else NULL
    c.out = &ov[0]
    with nogil:
        parml_find_splits(&c, n_threads, parallel_for)
    return out


def partition(const uint8_t[:, ::1] B not None,  # IN    d x n bins
              int32_t[::1] rows not None,        # INOUT m node rows, partitioned in place
              Py_ssize_t feature, int bin, bint missing_left, int missing_bin,
              bint checked=False, int n_threads=1,
              const uint32_t[::1] cats=None):    # IN    8: bins going left, or None (ordinal)
    """Stable in-place partition of rows (int32): left rows first. Returns the left count.
    cats: uint32 (8,) set of bins going left (a categorical split; bin and missing_left are then
    unused). checked=True skips the scan of rows for out-of-range values. Large nodes run in
    parallel (same result for any n_threads)."""
    cdef Py_ssize_t n = B.shape[1], m = rows.shape[0]
    if not 0 <= feature < B.shape[0]:
        raise ValueError("partition: feature out of range")
    if not checked and not within(rows, 0, n):
        raise ValueError("partition: rows out of range")
    if cats is not None and cats.shape[0] != 8:
        raise ValueError(f"partition: cats must hold 8 words (256 bins), got {cats.shape[0]}")
    if m == 0:
        return 0
    cdef int32_t[::1] tmp = np.empty(m, dtype=np.int32)
    cdef ptrdiff_t[::1] scratch = np.empty(2 * (m // PARML_PART_BLOCK + 2), dtype=np.intp)
    cdef ptrdiff_t nl
    cdef const uint32_t *cp = &cats[0] if cats is not None else NULL
    with nogil:
        nl = parml_partition_parallel(&B[0, 0], n, &rows[0], m, feature, bin, missing_left,
                                      missing_bin, &tmp[0], &scratch[0], n_threads,
                                      parallel_for, cp)
    return nl
