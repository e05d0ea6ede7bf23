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
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn
from parml._kernels._kernel_sets cimport active_set
from parml._kernels._types cimport parml_hbin, parml_split
from parml._kernels._checks cimport i32_within, u8_max
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


cdef extern from "parml/hist_grow.h" nogil:
    ctypedef struct parml_grow_ctx:
        const uint8_t *B
        ptrdiff_t n, d
        const int32_t *nb
        int32_t missing_bin, nbins
        const float *g
        const float *h
        double hconst
        const uint8_t *is_cat
        ptrdiff_t max_leaves
        int max_depth
        int64_t min_leaf
        double l2, min_hessian
        int strategy, n_threads
        parml_parallel_for_fn pf
        int32_t *rows
        ptrdiff_t m
        int all_rows
        int32_t *feature
        int32_t *bin
        int32_t *left
        int32_t *right
        int32_t *depth
        uint8_t *missing_left
        double *value
        double *gain
        int64_t *count
        int64_t *lo
        int64_t *hi
        uint8_t *node_cat
        uint32_t *cats
        ptrdiff_t n_nodes
    int parml_grow_tree(parml_grow_ctx *c)
    double PARML_GROW_MIN_GAIN
    double parml_grow_leaf(double G, double H, double l2)
    int parml_grow_may_split(int64_t N, int depth, int64_t min_leaf, int max_depth)
    int parml_grow_small_is_left(int64_t nl, int64_t nr)
    ctypedef struct parml_grower:
        parml_hbin **hist
        parml_split *split
        ptrdiff_t nh, leaves
    int parml_grower_init(parml_grower *t, parml_grow_ctx *c)
    void parml_grower_free(parml_grower *t)
    void parml_grower_root(parml_grower *t, parml_hbin *H, int64_t lo, int64_t hi)
    int32_t parml_grower_next(const parml_grower *t)
    ptrdiff_t parml_grower_best(const parml_grower *t, ptrdiff_t k, int32_t *nodes)
    int parml_grower_wants_hist(const parml_grower *t, int32_t node)
    void parml_grower_split(parml_grower *t, int64_t nl, parml_hbin *small, int small_left)
    void parml_grower_finish(parml_grower *t)


STRATEGIES = {"features": 0, "samples": 1}
MIN_GAIN = PARML_GROW_MIN_GAIN   # a split needs a gain above this (hist_grow.h)


def leaf_value(double G, double H, double l2):
    """A leaf's value from its gradient and hessian sums, as the native grower sets it."""
    return parml_grow_leaf(G, H, l2)


BIN_BLOCK = 1024  # rows per task: the block's rows stay in L2 across the feature passes


def hist_loop():
    """The histogram inner loop of the active kernel set: "vector" (hist_simd.h, hist_neon.h)
    or "scalar" (the generic set); both give bit-identical histograms."""
    parml_hist_use_set(active_set())
    return "scalar" if parml_hist_group == NULL else "vector"


cdef int _uint8_flags(flags, str what) except -1:
    """Flag arguments are uint8 0/1: a bool array converts to the same memoryview, and is refused
    like any other dtype (flags is the memoryview; its base, the caller's array)."""
    if getattr(getattr(flags.base, "dtype", None), "kind", "u") == "b":
        raise ValueError(f"{what} must be a uint8 array of 0/1 flags, not bool")
    return 0


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
    if rows is not None and not checked and not i32_within(rows, 0, n):
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
    if not i32_within(nb, 1, min(missing_bin, nbins) + 1):
        raise ValueError("find_splits: nb must be in 1..missing_bin")
    if not 0 <= missing_bin < nbins:
        raise ValueError("find_splits: missing_bin must index a histogram bin")
    for flags, what in ((allowed, "allowed"), (is_cat, "is_cat")):
        if flags is not None:
            if flags.shape[0] != d:
                raise ValueError(f"find_splits: {what} needs one entry per feature of hist "
                                 f"({d}), got {flags.shape[0]}")
            _uint8_flags(flags, f"find_splits: {what}")
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
    if not checked and not i32_within(rows, 0, n):
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


def grow_tree_native(const uint8_t[:, ::1] B not None,  # IN    d x n bins
                     const int32_t[::1] nb not None,    # IN    d non-missing bins per feature
                     int missing_bin, Py_ssize_t nbins,
                     const float[::1] g not None,       # IN    n gradients
                     const float[::1] h,                # IN    n hessians, or None (hconst)
                     double hconst,
                     rows,                              # INOUT m int32 tree rows, or None (all n)
                     Py_ssize_t max_leaves, max_depth, long long min_leaf, double l2,
                     double min_hessian, str strategy="features", int n_threads=1,
                     const uint8_t[::1] is_cat=None):   # IN    d flags, or None (none)
    """One gradient tree grown best-first natively (include/parml/hist_grow.h).

    g, h: float32 per training row (h None: constant hessian hconst > 0); rows: int32 rows of
    the tree (partitioned in place; None: all rows). Returns (nodes, rows): nodes is a dict of
    per-node arrays (feature, bin, left, right, depth, missing_left, value, gain, count, lo, hi;
    lo/hi: the node's span of the returned, partitioned rows; node_cat, cats (nodes x 8 uint32):
    categorical splits and their left sets). is_cat: uint8 (d,) flags of categorical features."""
    parml_hist_use_set(active_set())
    cdef Py_ssize_t d = B.shape[0], n = B.shape[1]
    if nb.shape[0] != d:
        raise ValueError(f"grow_tree: nb needs one entry per feature of B ({d}), got "
                         f"{nb.shape[0]}")
    if not 1 <= nbins <= 256 or not 0 <= missing_bin < nbins:
        raise ValueError("grow_tree: need 1 <= nbins <= 256 and missing_bin < nbins")
    if not i32_within(nb, 1, missing_bin + 1):
        raise ValueError("grow_tree: nb must be in 1..missing_bin")
    if g.shape[0] != n or (h is not None and h.shape[0] != n):
        raise ValueError(f"grow_tree: g and h need one entry per row of B ({n}), got "
                         f"{g.shape[0]} and {None if h is None else h.shape[0]}")
    if h is None and not hconst > 0:
        raise ValueError("grow_tree: a constant hessian (h None) needs hconst > 0")
    all_rows = rows is None
    if all_rows:
        rows = np.arange(n, dtype=np.int32)
    cdef int32_t[::1] rv
    try:  # viewed here, not in the signature, so that a refusal names rows
        rv = rows
    except (ValueError, TypeError) as e:
        raise ValueError(f"grow_tree: rows must be a writable C-contiguous int32 array: {e}") \
            from None
    cdef Py_ssize_t m = rv.shape[0]
    if not all_rows and not i32_within(rv, 0, n):
        raise ValueError("grow_tree: rows out of range")
    if max_leaves < 2 or min_leaf < 1:
        raise ValueError("grow_tree: max_leaves >= 2 and min_leaf >= 1")
    if strategy not in STRATEGIES:
        raise ValueError(f"grow_tree: strategy must be one of {tuple(STRATEGIES)}")
    if is_cat is not None:
        if is_cat.shape[0] != d:
            raise ValueError(f"grow_tree: is_cat needs one entry per feature of B ({d}), got "
                             f"{is_cat.shape[0]}")
        _uint8_flags(is_cat, "grow_tree: is_cat")
    # a leaf holds at least min_leaf rows: no tree has more than m // min_leaf leaves
    cdef Py_ssize_t L = max(2, min(max_leaves, m // min_leaf + 1))
    cdef Py_ssize_t cap = 2 * L - 1
    nodes = {k: np.zeros(cap, dtype=dt) for k, dt in (
        ("feature", np.int32), ("bin", np.int32), ("left", np.int32), ("right", np.int32),
        ("depth", np.int32), ("missing_left", np.uint8), ("value", np.float64),
        ("gain", np.float64), ("count", np.int64), ("lo", np.int64), ("hi", np.int64),
        ("node_cat", np.uint8))}
    nodes["cats"] = np.zeros((cap, 8), dtype=np.uint32)
    cdef int32_t[::1] feature = nodes["feature"], bin_ = nodes["bin"], left = nodes["left"]
    cdef int32_t[::1] right = nodes["right"], depth = nodes["depth"]
    cdef uint8_t[::1] missing_left = nodes["missing_left"], node_cat = nodes["node_cat"]
    cdef double[::1] value = nodes["value"], gain = nodes["gain"]
    cdef int64_t[::1] count = nodes["count"], lo = nodes["lo"], hi = nodes["hi"]
    cdef uint32_t[:, ::1] cats = nodes["cats"]
    cdef parml_grow_ctx c
    c.B = &B[0, 0] if d and n else NULL
    c.n, c.d = n, d
    c.nb = &nb[0] if d else NULL
    c.missing_bin, c.nbins = missing_bin, nbins
    c.g = &g[0] if n else NULL
    c.h = &h[0] if h is not None and n else NULL
    c.hconst = hconst if h is None else 0.0
    c.is_cat = &is_cat[0] if is_cat is not None and d else NULL
    c.max_leaves = L
    c.max_depth = -1 if max_depth is None else int(max_depth)
    c.min_leaf, c.l2, c.min_hessian = min_leaf, l2, min_hessian
    c.strategy, c.n_threads = STRATEGIES[strategy], n_threads
    c.pf = parallel_for
    c.rows = &rv[0] if m else NULL
    c.m = m
    c.all_rows = all_rows
    c.feature, c.bin, c.left, c.right = &feature[0], &bin_[0], &left[0], &right[0]
    c.depth, c.missing_left = &depth[0], &missing_left[0]
    c.value, c.gain = &value[0], &gain[0]
    c.count, c.lo, c.hi = &count[0], &lo[0], &hi[0]
    c.node_cat, c.cats = &node_cat[0], &cats[0, 0]
    cdef int rc
    with nogil:
        rc = parml_grow_tree(&c)
    if rc != 0:
        raise MemoryError("grow_tree: out of memory")
    k = c.n_nodes
    return {key: a[:k] for key, a in nodes.items()}, rows


_NODE_DTYPES = (("feature", np.int32), ("bin", np.int32), ("left", np.int32), ("right", np.int32),
                ("depth", np.int32), ("missing_left", np.uint8), ("value", np.float64),
                ("gain", np.float64), ("count", np.int64), ("lo", np.int64), ("hi", np.int64),
                ("node_cat", np.uint8))


cdef parml_hbin *_own_hist(object hist, Py_ssize_t d, Py_ssize_t nbins, str what,
                           bint copy=True) except? NULL:
    """A malloc'ed copy of a (d, nbins) HBIN histogram, for the grower to own (copy false: only
    the check, returning NULL)."""
    if not isinstance(hist, np.ndarray) or hist.dtype != HBIN or hist.shape != (d, nbins):
        raise ValueError(f"Grower: {what} must be a {HBIN} array of shape {(d, nbins)}")
    if not copy:
        return NULL
    cdef const uint8_t[::1] raw = np.ascontiguousarray(hist).view(np.uint8).reshape(-1)
    cdef size_t size = <size_t>(d * nbins) * sizeof(parml_hbin)
    cdef parml_hbin *out = <parml_hbin *>malloc(size)
    if out == NULL:
        raise MemoryError("Grower: out of memory")
    memcpy(out, &raw[0], size)
    return out


cdef class Grower:
    """Best-first growth of one tree (hist_grow.h's grower) from histograms the caller supplies:
    the rules, the candidate order, the leaf values and the node numbering are the local
    grower's (grow_tree_native, whose histograms come from local rows). parml.dask drives it
    with histograms summed over its workers::

        t = Grower(root_hist, nb, missing_bin, max_leaves=31, ...)
        while (node := t.next()) >= 0:      # the node best-first splits next, or -1
            s = t.split_of(node)            # feature, bin, missing_left, nl, nr, small_left
            small = (histogram of its smaller child) if t.wants_hist(node) else None
            left, right = t.split(node, small)
        nodes = t.nodes()                   # what grow_tree_native returns, less the rows

    t.best(k) lists the next k candidates in order: the nodes a source may prepare ahead.
    Histograms are HBIN arrays of shape (d, nbins); the grower copies them."""
    cdef parml_grow_ctx c
    cdef parml_grower t
    cdef bint live
    cdef Py_ssize_t d, nbins
    cdef object nb, is_cat, node_arrays, cats

    def __cinit__(self):
        self.live = False

    def __init__(self, root_hist, nb, int missing_bin, *, Py_ssize_t max_leaves, max_depth,
                 long long min_leaf, double l2, double min_hessian, double hconst=0.0,
                 int n_threads=1, is_cat=None):
        if not isinstance(root_hist, np.ndarray) or root_hist.ndim != 2:
            raise ValueError("Grower: root_hist must be a 2-D histogram array")
        cdef Py_ssize_t d = root_hist.shape[0], nbins = root_hist.shape[1]
        if d < 1 or not 1 <= nbins <= 256 or not 0 <= missing_bin < nbins:
            raise ValueError("Grower: need d >= 1, 1 <= nbins <= 256 and missing_bin < nbins")
        if not isinstance(nb, np.ndarray) or nb.dtype != np.int32 or nb.shape != (d,):
            raise ValueError(f"Grower: nb must be an int32 array of shape ({d},)")
        if nb.min() < 1 or nb.max() > missing_bin:
            raise ValueError("Grower: nb must be in 1..missing_bin")
        if is_cat is not None and (not isinstance(is_cat, np.ndarray) or is_cat.dtype != np.uint8
                                   or is_cat.shape != (d,)):
            raise ValueError(f"Grower: is_cat must be a uint8 array of shape ({d},) or None")
        if max_leaves < 2 or min_leaf < 1:
            raise ValueError("Grower: max_leaves >= 2 and min_leaf >= 1")
        if hconst < 0:
            raise ValueError("Grower: hconst must be >= 0")
        self.d, self.nbins = d, nbins
        self.nb = np.ascontiguousarray(nb)
        self.is_cat = None if is_cat is None else np.ascontiguousarray(is_cat)
        cdef parml_hbin *root = _own_hist(root_hist, d, nbins, "root_hist")
        cdef int64_t N = 0
        cdef Py_ssize_t b
        for b in range(nbins):
            N += root[b].count
        # a leaf holds at least min_leaf rows: no tree has more than N // min_leaf leaves
        cdef Py_ssize_t L = max(2, min(max_leaves, N // min_leaf + 1))
        self.node_arrays = {k: np.zeros(2 * L - 1, dtype=dt) for k, dt in _NODE_DTYPES}
        self.cats = np.zeros((2 * L - 1, 8), dtype=np.uint32)
        cdef const int32_t[::1] nbv = self.nb
        cdef const uint8_t[::1] catv
        memset(&self.c, 0, sizeof(self.c))
        self.c.d, self.c.nbins, self.c.missing_bin = d, nbins, missing_bin
        self.c.nb = &nbv[0]
        if self.is_cat is not None:
            catv = self.is_cat
            self.c.is_cat = &catv[0]
        self.c.hconst = hconst
        self.c.max_leaves = L
        self.c.max_depth = -1 if max_depth is None else int(max_depth)
        self.c.min_leaf, self.c.l2, self.c.min_hessian = min_leaf, l2, min_hessian
        self.c.n_threads, self.c.pf = n_threads, parallel_for
        self._bind_nodes()
        if parml_grower_init(&self.t, &self.c) != 0:
            free(root)
            raise MemoryError("Grower: out of memory")
        self.live = True
        parml_hist_use_set(active_set())
        with nogil:
            parml_grower_root(&self.t, root, 0, N)

    cdef _bind_nodes(self):
        cdef int32_t[::1] i32
        cdef uint8_t[::1] u8
        cdef double[::1] f64
        cdef int64_t[::1] i64
        cdef uint32_t[:, ::1] cats = self.cats
        a = self.node_arrays
        i32 = a["feature"]; self.c.feature = &i32[0]
        i32 = a["bin"]; self.c.bin = &i32[0]
        i32 = a["left"]; self.c.left = &i32[0]
        i32 = a["right"]; self.c.right = &i32[0]
        i32 = a["depth"]; self.c.depth = &i32[0]
        u8 = a["missing_left"]; self.c.missing_left = &u8[0]
        u8 = a["node_cat"]; self.c.node_cat = &u8[0]
        f64 = a["value"]; self.c.value = &f64[0]
        f64 = a["gain"]; self.c.gain = &f64[0]
        i64 = a["count"]; self.c.count = &i64[0]
        i64 = a["lo"]; self.c.lo = &i64[0]
        i64 = a["hi"]; self.c.hi = &i64[0]
        self.c.cats = &cats[0, 0]

    def __dealloc__(self):
        if self.live:
            parml_grower_free(&self.t)

    cdef int _candidate(self, Py_ssize_t node) except -1:
        if not self.live:
            raise ValueError("Grower: the tree is final (nodes() was called)")
        if not 0 <= node < self.c.n_nodes or self.t.hist[node] == NULL:
            raise ValueError(f"Grower: node {node} is not a candidate for splitting")
        return 0

    @property
    def n_leaves(self):
        return self.t.leaves

    def next(self):
        """The node best-first splits next, or -1 once the tree is final."""
        return parml_grower_next(&self.t) if self.live else -1

    def best(self, Py_ssize_t k):
        """The first k candidates (fewer if there are fewer) in the order best-first would
        split them: no other node is split before these."""
        out = np.empty(max(0, min(k, self.t.nh)), dtype=np.int32)
        cdef int32_t[::1] o = out
        if self.live and len(out):
            parml_grower_best(&self.t, len(out), &o[0])
        return out

    def split_of(self, Py_ssize_t node):
        """A candidate's best split: feature, bin, missing_left, gain, nl and nr (rows to each
        side), small_left (whether the left child is the one whose histogram split() takes)."""
        self._candidate(node)
        cdef parml_split s = self.t.split[node]
        return {"feature": int(self.c.feature[node]), "bin": int(s.bin),
                "missing_left": bool(s.missing_left), "gain": s.gain, "nl": int(s.nl),
                "nr": int(s.nr), "small_left": bool(parml_grow_small_is_left(s.nl, s.nr))}

    def wants_hist(self, Py_ssize_t node):
        """Whether splitting candidate `node` needs its smaller child's histogram (a child of it
        could still be split)."""
        self._candidate(node)
        return bool(parml_grower_wants_hist(&self.t, <int32_t>node))

    def split(self, Py_ssize_t node, small=None):
        """Split `node`, which must be next(); small: its smaller child's histogram (see
        split_of), needed when wants_hist(node) is true. A histogram prepared ahead for a split
        whose children can no longer be split (no leaf left to add) is not used. Returns the
        children."""
        self._candidate(node)
        if node != parml_grower_next(&self.t):
            raise ValueError(f"Grower: node {node} is not the one best-first splits next "
                             f"({parml_grower_next(&self.t)})")
        cdef bint want = parml_grower_wants_hist(&self.t, <int32_t>node)
        if want and small is None:
            raise ValueError(f"Grower: splitting node {node} needs its smaller child's histogram")
        cdef parml_split s = self.t.split[node]
        if small is not None:
            _own_hist(small, self.d, self.nbins, "small", False)  # checked even when unused
        cdef parml_hbin *h = _own_hist(small, self.d, self.nbins, "small", True) if want else NULL
        cdef int small_left = parml_grow_small_is_left(s.nl, s.nr)
        parml_hist_use_set(active_set())
        with nogil:
            parml_grower_split(&self.t, s.nl, h, small_left)
        return int(self.c.left[node]), int(self.c.right[node])

    def nodes(self):
        """The final tree: per-node arrays as grow_tree_native returns them (lo/hi: each node's
        span of rows in the order of the parent's split, left rows first)."""
        if self.live:
            parml_grower_finish(&self.t)
            parml_grower_free(&self.t)
            self.live = False
        k = self.c.n_nodes
        out = {key: a[:k] for key, a in self.node_arrays.items()}
        out["cats"] = self.cats[:k]
        return out
