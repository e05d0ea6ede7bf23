"""Histogram-tree kernels (include/parml/hist.h): binning, node histograms (feature- or
sample-parallel), the subtraction trick, best split per feature, and stable row partitioning.
Callers validate; the wrappers re-check only what would make C read or write out of bounds."""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uintptr_t
from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn
from parml._kernels._kernel_sets cimport active_set


cdef extern from "parml/hist.h" nogil:
    enum: PARML_PART_BLOCK
    void parml_hist_use_set(int kernel_set)
    const void *parml_hist_group
    ctypedef struct parml_hbin:
        double g
        double h
        uint32_t count
        uint32_t pad

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

    ctypedef struct parml_split:
        double gain
        int32_t bin
        int32_t missing_left
        double gl, hl, gr, hr
        int64_t nl, nr
        int32_t is_cat, pad
        uint32_t cats[8]

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


HBIN = np.dtype([("g", "<f8"), ("h", "<f8"), ("count", "<u4"), ("pad", "<u4")])
SPLIT = np.dtype([("gain", "<f8"), ("bin", "<i4"), ("missing_left", "<i4"), ("gl", "<f8"),
                  ("hl", "<f8"), ("gr", "<f8"), ("hr", "<f8"), ("nl", "<i8"), ("nr", "<i8"),
                  ("is_cat", "<i4"), ("pad", "<i4"), ("cats", "<u4", (8,))])
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


cdef inline void *_ptr(a):
    return <void *><uintptr_t>a.ctypes.data


def _need(a, dtype, shape, what, writable=False):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape \
            or not a.flags.c_contiguous or (writable and not a.flags.writeable):
        raise ValueError(f"histogram kernel: {what} must be a C-contiguous{' writable' if writable else ''} "
                         f"{np.dtype(dtype)} array of shape {shape}")


def bin_data(X, edges, int missing_bin, int n_threads=1):
    """Binned X, shape (d, n) uint8: bin = number of edges < x; NaN -> missing_bin.

    X: (n, d) float32/float64 with contiguous rows; edges: d sorted float64 arrays, each with
    fewer than missing_bin entries (bins 0..len(edges[f]))."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype not in (np.float32, np.float64) \
            or (X.shape[0] > 0 and X.shape[1] > 1 and X.strides[1] != X.itemsize):
        raise ValueError("bin_data: X must be a 2-D float32/float64 array with contiguous rows")
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
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
    cdef parml_bin_ctx c
    c.X = <const char *>_ptr(X)
    c.n, c.d, c.row_bytes = n, d, X.strides[0]
    c.is_float = X.dtype == np.float32
    c.edges = <const double *>_ptr(flat)
    c.eoff = <const int64_t *>_ptr(eoff)
    c.missing_bin = missing_bin
    c.B = <uint8_t *>_ptr(B)
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


def build_histogram(B, rows, og, oh, Py_ssize_t nbins, str strategy="features",
                    int n_threads=1, out=None, bint checked=False, bint gather=False):
    """(d, nbins) HBIN histogram of the node's rows.

    B (d, n) uint8; rows int32 (m,) or None (all n rows); og, oh float32 (m,): gradients and
    hessians in node order (oh None: constant hessian, h left 0). gather=True: og, oh are
    per training row (n,) instead, and the kernel gathers the node's values itself, in
    parallel. checked=True skips the scans of B and rows for out-of-range values (for the
    grower, whose rows and bins are valid by construction: those scans cost more than the
    histogram)."""
    parml_hist_use_set(active_set())
    _need(B, np.uint8, B.shape if isinstance(B, np.ndarray) and B.ndim == 2 else (-1, -1), "B")
    cdef Py_ssize_t d = B.shape[0], n = B.shape[1]
    cdef Py_ssize_t m = n if rows is None else len(rows)
    if rows is not None:
        _need(rows, np.int32, (m,), "rows")
        if not checked and m and (rows.min() < 0 or rows.max() >= n):
            raise ValueError("build_histogram: rows out of range")
    gather = gather and rows is not None
    cdef Py_ssize_t glen = n if gather else m
    _need(og, np.float32, (glen,), "og")
    if oh is not None:
        _need(oh, np.float32, (glen,), "oh")
    g_full = h_full = None
    if gather:
        g_full, h_full = og, oh
        og = np.empty(m, dtype=np.float32)
        oh = None if h_full is None else np.empty(m, dtype=np.float32)
    if not 1 <= nbins <= 256:
        raise ValueError("build_histogram: nbins must be in 1..256")
    if not checked and d and n and B.max() >= nbins:
        raise ValueError("build_histogram: B holds bins >= nbins")
    if strategy not in STRATEGIES:
        raise ValueError(f"build_histogram: strategy must be one of {tuple(STRATEGIES)}")
    if out is None:
        out = np.empty((d, nbins), dtype=HBIN)
    _need(out, HBIN, (d, nbins), "out", True)
    cdef parml_hist_ctx c
    c.B = <const uint8_t *>_ptr(B)
    c.n, c.d, c.nbins = n, d, nbins
    c.rows = <const int32_t *>_ptr(rows) if rows is not None else NULL
    c.m = m
    c.og = <const float *>_ptr(og)
    c.oh = <const float *>_ptr(oh) if oh is not None else NULL
    c.g_full = <const float *>_ptr(g_full) if g_full is not None else NULL
    c.h_full = <const float *>_ptr(h_full) if h_full is not None else NULL
    c.hist = <parml_hbin *>_ptr(out)
    c.partials = NULL
    cdef int strat = STRATEGIES[strategy]
    cdef int rc
    with nogil:
        rc = parml_build_histogram(&c, strat, n_threads, parallel_for)
    if rc != 0:
        raise MemoryError("build_histogram: could not allocate per-task histograms")
    return out


def subtract(parent, child, out=None):
    """parent - child, bin by bin (HBIN arrays of one shape)."""
    shape = parent.shape if isinstance(parent, np.ndarray) else None
    _need(parent, HBIN, shape, "parent")
    _need(child, HBIN, shape, "child")
    if out is None:
        out = np.empty_like(parent)
    _need(out, HBIN, shape, "out", True)
    cdef ptrdiff_t count = parent.size
    cdef const parml_hbin *pp = <const parml_hbin *>_ptr(parent)
    cdef const parml_hbin *cp = <const parml_hbin *>_ptr(child)
    cdef parml_hbin *op = <parml_hbin *>_ptr(out)
    with nogil:
        parml_hist_subtract(pp, cp, op, count)
    return out


def find_splits(hist, nb, int missing_bin, double G, double H, long long N, *, double l2=0.0,
                double min_hessian=1e-3, long long min_leaf=1, double hconst=0.0, allowed=None,
                is_cat=None, int n_threads=1):
    """(d,) SPLIT records: the best split of each feature (gain -inf: none allowed). is_cat:
    uint8 (d,) flags of categorical features (their splits are sets of bins: is_cat, cats)."""
    shape = hist.shape if isinstance(hist, np.ndarray) and hist.ndim == 2 else (-1, -1)
    _need(hist, HBIN, shape, "hist")
    cdef Py_ssize_t d = hist.shape[0], nbins = hist.shape[1]
    _need(nb, np.int32, (d,), "nb")
    if d and (nb.min() < 1 or nb.max() > min(missing_bin, nbins)):
        raise ValueError("find_splits: nb must be in 1..missing_bin")
    if not 0 <= missing_bin < nbins:
        raise ValueError("find_splits: missing_bin must index a histogram bin")
    if allowed is not None:
        _need(allowed, np.uint8, (d,), "allowed")
    if is_cat is not None:
        _need(is_cat, np.uint8, (d,), "is_cat")
    out = np.empty(d, dtype=SPLIT)
    cdef parml_split_ctx c
    c.hist = <const parml_hbin *><uintptr_t>hist.ctypes.data
    c.d, c.nbins = d, nbins
    c.nb = <const int32_t *><uintptr_t>nb.ctypes.data
    c.missing_bin = missing_bin
    c.hconst, c.G, c.H, c.N = hconst, G, H, N
    c.l2, c.min_hessian, c.min_leaf = l2, min_hessian, min_leaf
    c.allowed = <const uint8_t *><uintptr_t>allowed.ctypes.data if allowed is not None else NULL
    c.is_cat = <const uint8_t *><uintptr_t>is_cat.ctypes.data if is_cat is not None else NULL
    c.out = <parml_split *><uintptr_t>out.ctypes.data
    with nogil:
        parml_find_splits(&c, n_threads, parallel_for)
    return out


def partition(B, rows, Py_ssize_t feature, int bin, bint missing_left, int missing_bin,
              bint checked=False, int n_threads=1, cats=None):
    """Stable in-place partition of rows (int32): left rows first. Returns the left count.
    cats: uint32 (8,) set of bins going left (a categorical split; bin and missing_left are then
    unused). checked=True skips the scan of rows for out-of-range values. Large nodes run in
    parallel (same result for any n_threads)."""
    shape = B.shape if isinstance(B, np.ndarray) and B.ndim == 2 else (-1, -1)
    _need(B, np.uint8, shape, "B")
    m = len(rows) if isinstance(rows, np.ndarray) else -1
    _need(rows, np.int32, (m,), "rows", True)
    cdef Py_ssize_t n = B.shape[1]
    if not 0 <= feature < B.shape[0]:
        raise ValueError("partition: feature out of range")
    if not checked and m and (rows.min() < 0 or rows.max() >= n):
        raise ValueError("partition: rows out of range")
    tmp = np.empty(max(m, 1), dtype=np.int32)
    cdef ptrdiff_t nl
    cdef const uint8_t *bp = <const uint8_t *><uintptr_t>B.ctypes.data
    cdef int32_t *rp = <int32_t *><uintptr_t>rows.ctypes.data
    cdef int32_t *tp = <int32_t *><uintptr_t>tmp.ctypes.data
    cdef ptrdiff_t mm = m
    scratch = np.empty(2 * (m // PARML_PART_BLOCK + 2), dtype=np.intp)  # per-block counts
    cdef ptrdiff_t *sp = <ptrdiff_t *><uintptr_t>scratch.ctypes.data
    if cats is not None:
        _need(cats, np.uint32, (8,), "cats")
    cdef const uint32_t *cp = <const uint32_t *><uintptr_t>cats.ctypes.data if cats is not None else NULL
    with nogil:
        nl = parml_partition_parallel(bp, n, rp, mm, feature, bin, missing_left, missing_bin,
                                      tp, sp, n_threads, parallel_for, cp)
    return nl


def grow_tree_native(B, nb, int missing_bin, Py_ssize_t nbins, g, h, double hconst, rows,
                     Py_ssize_t max_leaves, max_depth, long long min_leaf, double l2,
                     double min_hessian, str strategy="features", int n_threads=1, is_cat=None):
    """One gradient tree grown best-first natively (include/parml/hist_grow.h).

    g, h: float32 per training row (h None: constant hessian hconst > 0); rows: int32 rows of
    the tree (partitioned in place; None: all rows). Returns (nodes, rows): nodes is a dict of
    per-node arrays (feature, bin, left, right, depth, missing_left, value, gain, count, lo, hi;
    lo/hi: the node's span of the returned, partitioned rows; node_cat, cats (nodes x 8 uint32):
    categorical splits and their left sets). is_cat: uint8 (d,) flags of categorical features."""
    parml_hist_use_set(active_set())
    shape = B.shape if isinstance(B, np.ndarray) and B.ndim == 2 else (-1, -1)
    _need(B, np.uint8, shape, "B")
    cdef Py_ssize_t d = B.shape[0], n = B.shape[1]
    _need(nb, np.int32, (d,), "nb")
    if not 1 <= nbins <= 256 or not 0 <= missing_bin < nbins:
        raise ValueError("grow_tree: need 1 <= nbins <= 256 and missing_bin < nbins")
    if d and (nb.min() < 1 or nb.max() > missing_bin):
        raise ValueError("grow_tree: nb must be in 1..missing_bin")
    _need(g, np.float32, (n,), "g")
    if h is not None:
        _need(h, np.float32, (n,), "h")
    elif not hconst > 0:
        raise ValueError("grow_tree: a constant hessian (h None) needs hconst > 0")
    all_rows = rows is None
    if all_rows:
        rows = np.arange(n, dtype=np.int32)
    m = len(rows) if isinstance(rows, np.ndarray) else -1
    _need(rows, np.int32, (m,), "rows", True)
    if not all_rows and m and (rows.min() < 0 or rows.max() >= n):
        raise ValueError("grow_tree: rows out of range")
    if max_leaves < 2 or min_leaf < 1:
        raise ValueError("grow_tree: max_leaves >= 2 and min_leaf >= 1")
    if strategy not in STRATEGIES:
        raise ValueError(f"grow_tree: strategy must be one of {tuple(STRATEGIES)}")
    if is_cat is not None:
        _need(is_cat, np.uint8, (d,), "is_cat")
    # a leaf holds at least min_leaf rows: no tree has more than m // min_leaf leaves
    cdef Py_ssize_t L = max(2, min(max_leaves, m // min_leaf + 1))
    cdef Py_ssize_t cap = 2 * L - 1
    nodes = {k: np.zeros(cap, dtype=dt) for k, dt in (
        ("feature", np.int32), ("bin", np.int32), ("left", np.int32), ("right", np.int32),
        ("depth", np.int32), ("missing_left", np.uint8), ("value", np.float64),
        ("gain", np.float64), ("count", np.int64), ("lo", np.int64), ("hi", np.int64),
        ("node_cat", np.uint8))}
    nodes["cats"] = np.zeros((cap, 8), dtype=np.uint32)
    cdef parml_grow_ctx c
    c.B = <const uint8_t *>_ptr(B)
    c.n, c.d = n, d
    c.nb = <const int32_t *>_ptr(nb)
    c.missing_bin, c.nbins = missing_bin, nbins
    c.g = <const float *>_ptr(g)
    c.h = <const float *>_ptr(h) if h is not None else NULL
    c.hconst = hconst if h is None else 0.0
    c.is_cat = <const uint8_t *>_ptr(is_cat) if is_cat is not None else NULL
    c.max_leaves = L
    c.max_depth = -1 if max_depth is None else int(max_depth)
    c.min_leaf, c.l2, c.min_hessian = min_leaf, l2, min_hessian
    c.strategy, c.n_threads = STRATEGIES[strategy], n_threads
    c.pf = parallel_for
    c.rows = <int32_t *>_ptr(rows)
    c.m = m
    c.all_rows = all_rows
    c.feature = <int32_t *>_ptr(nodes["feature"])
    c.bin = <int32_t *>_ptr(nodes["bin"])
    c.left = <int32_t *>_ptr(nodes["left"])
    c.right = <int32_t *>_ptr(nodes["right"])
    c.depth = <int32_t *>_ptr(nodes["depth"])
    c.missing_left = <uint8_t *>_ptr(nodes["missing_left"])
    c.value = <double *>_ptr(nodes["value"])
    c.gain = <double *>_ptr(nodes["gain"])
    c.count = <int64_t *>_ptr(nodes["count"])
    c.lo = <int64_t *>_ptr(nodes["lo"])
    c.hi = <int64_t *>_ptr(nodes["hi"])
    c.node_cat = <uint8_t *>_ptr(nodes["node_cat"])
    c.cats = <uint32_t *>_ptr(nodes["cats"])
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
