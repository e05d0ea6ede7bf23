"""The best-first grower of gradient-boosting trees (include/parml/hist_grow.h), with its two
histogram sources: grow_tree_native grows a whole tree from local rows in one native call, and
Grower takes histograms from the caller (parml.dask's summed ones). Both apply the same rules in
the same order and number the nodes alike.

Array arguments are typed memoryviews marked IN / OUT / INOUT (see _histogram)."""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn
from parml._kernels._kernel_sets cimport active_set
from parml._kernels._types cimport parml_hbin, parml_split
from parml._kernels._checks cimport within, uint8_flags
from parml._kernels._histogram import STRATEGIES


cdef extern from "parml/hist.h" nogil:
    void parml_hist_use_set(int kernel_set)


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


MIN_GAIN = PARML_GROW_MIN_GAIN   # a split needs a gain above this (hist_grow.h)


def leaf_value(double G, double H, double l2):
    """A leaf's value from its gradient and hessian sums, as the native grower sets it."""
    return parml_grow_leaf(G, H, l2)


_NODE_DTYPES = (("feature", np.int32), ("bin", np.int32), ("left", np.int32), ("right", np.int32),
                ("depth", np.int32), ("missing_left", np.uint8), ("value", np.float64),
                ("gain", np.float64), ("count", np.int64), ("lo", np.int64), ("hi", np.int64),
                ("node_cat", np.uint8))


cdef dict _new_nodes(Py_ssize_t cap):
    """Zeroed per-node arrays for a tree of up to cap nodes (cats: cap x 8 uint32)."""
    nodes = {k: np.zeros(cap, dtype=dt) for k, dt in _NODE_DTYPES}
    nodes["cats"] = np.zeros((cap, 8), dtype=np.uint32)
    return nodes


cdef int _bind_nodes(parml_grow_ctx *c, dict nodes) except -1:
    """Point c's OUT node arrays at nodes (from _new_nodes, which the caller keeps alive)."""
    cdef int32_t[::1] i32
    cdef uint8_t[::1] u8
    cdef double[::1] f64
    cdef int64_t[::1] i64
    cdef uint32_t[:, ::1] cats = nodes["cats"]
    i32 = nodes["feature"]; c.feature = &i32[0]
    i32 = nodes["bin"]; c.bin = &i32[0]
    i32 = nodes["left"]; c.left = &i32[0]
    i32 = nodes["right"]; c.right = &i32[0]
    i32 = nodes["depth"]; c.depth = &i32[0]
    u8 = nodes["missing_left"]; c.missing_left = &u8[0]
    u8 = nodes["node_cat"]; c.node_cat = &u8[0]
    f64 = nodes["value"]; c.value = &f64[0]
    f64 = nodes["gain"]; c.gain = &f64[0]
    i64 = nodes["count"]; c.count = &i64[0]
    i64 = nodes["lo"]; c.lo = &i64[0]
    i64 = nodes["hi"]; c.hi = &i64[0]
    c.cats = &cats[0, 0]
    return 0


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
    if d < 1:
        raise ValueError("grow_tree: B needs at least one feature")
    if nb.shape[0] != d:
        raise ValueError(f"grow_tree: nb needs one entry per feature of B ({d}), got "
                         f"{nb.shape[0]}")
    if not 1 <= nbins <= 256 or not 0 <= missing_bin < nbins:
        raise ValueError("grow_tree: need 1 <= nbins <= 256 and missing_bin < nbins")
    if not within(nb, 1, missing_bin + 1):
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
    if not all_rows and not within(rv, 0, n):
        raise ValueError("grow_tree: rows out of range")
    if max_leaves < 2 or min_leaf < 1:
        raise ValueError("grow_tree: max_leaves >= 2 and min_leaf >= 1")
    if strategy not in STRATEGIES:
        raise ValueError(f"grow_tree: strategy must be one of {tuple(STRATEGIES)}")
    if is_cat is not None:
        if is_cat.shape[0] != d:
            raise ValueError(f"grow_tree: is_cat needs one entry per feature of B ({d}), got "
                             f"{is_cat.shape[0]}")
        uint8_flags(is_cat, "grow_tree: is_cat")
    # a leaf holds at least min_leaf rows: no tree has more than m // min_leaf leaves
    cdef Py_ssize_t L = max(2, min(max_leaves, m // min_leaf + 1))
    cdef Py_ssize_t cap = 2 * L - 1
    nodes = _new_nodes(cap)
    cdef parml_grow_ctx c
    memset(&c, 0, sizeof(c))
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
    _bind_nodes(&c, nodes)
    cdef int rc
    with nogil:
        rc = parml_grow_tree(&c)
    if rc != 0:
        raise MemoryError("grow_tree: out of memory")
    k = c.n_nodes
    return {key: a[:k] for key, a in nodes.items()}, rows


cdef int _check_hist(const parml_hbin[:, ::1] hist, Py_ssize_t d, Py_ssize_t nbins,
                     str what) except -1:
    if hist.shape[0] != d or hist.shape[1] != nbins:
        raise ValueError(f"Grower: {what} must have shape {(d, nbins)}, got "
                         f"{(hist.shape[0], hist.shape[1])}")
    return 0


cdef parml_hbin *_own_hist(const parml_hbin[:, ::1] hist) except NULL:
    """A malloc'ed copy of a (checked) histogram, for the grower to own."""
    cdef size_t size = <size_t>(hist.shape[0] * hist.shape[1]) * sizeof(parml_hbin)
    cdef parml_hbin *out = <parml_hbin *>malloc(size)
    if out == NULL:
        raise MemoryError("Grower: out of memory")
    memcpy(out, &hist[0, 0], size)
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
    Histograms are HBIN arrays of shape (d, nbins); the grower copies them. The tree's
    parameters are grow_tree_native's."""
    cdef parml_grow_ctx c
    cdef parml_grower t
    cdef bint live
    cdef Py_ssize_t d, nbins
    cdef object nb, is_cat, nodes_

    def __cinit__(self):
        self.live = False

    def __init__(self,
                 const parml_hbin[:, ::1] root_hist not None,  # IN  d x nbins, the root's
                 const int32_t[::1] nb not None,               # IN  d non-missing bins per feature
                 int missing_bin, *, Py_ssize_t max_leaves, max_depth, long long min_leaf,
                 double l2, double min_hessian, double hconst=0.0, int n_threads=1,
                 const uint8_t[::1] is_cat=None):              # IN  d flags, or None (none)
        if self.live:
            raise ValueError("Grower: already growing a tree (make a new Grower)")
        cdef Py_ssize_t d = root_hist.shape[0], nbins = root_hist.shape[1]
        if d < 1 or not 1 <= nbins <= 256 or not 0 <= missing_bin < nbins:
            raise ValueError("Grower: need d >= 1, 1 <= nbins <= 256 and missing_bin < nbins")
        if nb.shape[0] != d:
            raise ValueError(f"Grower: nb needs one entry per feature ({d}), got {nb.shape[0]}")
        if not within(nb, 1, missing_bin + 1):
            raise ValueError("Grower: nb must be in 1..missing_bin")
        if is_cat is not None:
            if is_cat.shape[0] != d:
                raise ValueError(f"Grower: is_cat needs one entry per feature ({d}), got "
                                 f"{is_cat.shape[0]}")
            uint8_flags(is_cat, "Grower: is_cat")
        if max_leaves < 2 or min_leaf < 1:
            raise ValueError("Grower: max_leaves >= 2 and min_leaf >= 1")
        if hconst < 0:
            raise ValueError("Grower: hconst must be >= 0")
        self.d, self.nbins = d, nbins
        self.nb, self.is_cat = nb, is_cat   # views: they keep the arrays alive
        cdef parml_hbin *root = _own_hist(root_hist)
        cdef int64_t N = 0
        cdef Py_ssize_t b
        for b in range(nbins):
            N += root[b].count
        # a leaf holds at least min_leaf rows: no tree has more than N // min_leaf leaves
        cdef Py_ssize_t L = max(2, min(max_leaves, N // min_leaf + 1))
        self.nodes_ = _new_nodes(2 * L - 1)
        memset(&self.c, 0, sizeof(self.c))
        self.c.d, self.c.nbins, self.c.missing_bin = d, nbins, missing_bin
        self.c.nb = &nb[0]
        if is_cat is not None:
            self.c.is_cat = &is_cat[0]
        self.c.hconst = hconst
        self.c.max_leaves = L
        self.c.max_depth = -1 if max_depth is None else int(max_depth)
        self.c.min_leaf, self.c.l2, self.c.min_hessian = min_leaf, l2, min_hessian
        self.c.n_threads, self.c.pf = n_threads, parallel_for
        _bind_nodes(&self.c, self.nodes_)
        if parml_grower_init(&self.t, &self.c) != 0:
            free(root)
            raise MemoryError("Grower: out of memory")
        self.live = True
        parml_hist_use_set(active_set())
        with nogil:
            parml_grower_root(&self.t, root, 0, N)

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
        out = np.empty(max(0, min(k, self.t.nh)) if self.live else 0, dtype=np.int32)
        cdef int32_t[::1] o = out
        if len(out):
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

    def split(self, Py_ssize_t node,
              const parml_hbin[:, ::1] small=None):  # IN  d x nbins, or None (see wants_hist)
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
            _check_hist(small, self.d, self.nbins, "small")   # checked even when unused
        cdef parml_hbin *h = _own_hist(small) if want else NULL
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
        return {key: a[:k] for key, a in self.nodes_.items()}
