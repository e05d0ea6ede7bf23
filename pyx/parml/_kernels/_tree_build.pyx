# cython: language_level=3
"""Whole decision trees built natively on binned data (include/parml/tree_build.h): the kernel
under parml.tree and parml.ensemble.RandomForest*. Trees run in parallel (one task each); a
single tree runs its subtrees in parallel. Every result is the same for any n_threads.

Array arguments are typed memoryviews marked IN (Cython checks dtype, dimensions and
C-contiguity on the way in; None only where documented), except y, which is int32 or float64 by
criterion, and the forest's node arrays, passed as a dict: those are viewed here, by name. The
wrappers check that shapes agree and that bins, class indices and weights are in range."""

import numpy as np

from libc.math cimport isfinite
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn, parml_task_fn
from parml._kernels._checks cimport within, u8_max

cdef extern from "parml/tree_build.h" nogil:
    ctypedef struct parml_tb_nodes:
        int32_t *feature
        int32_t *bin
        int32_t *left
        int32_t *right
        uint8_t *missing_left
        double *value
        double *impurity
        double *wsum
        double *gain
        int64_t *count
        int32_t *depth
        ptrdiff_t n_nodes
        int W
        int failed
    ctypedef struct parml_tb_ctx:
        const uint8_t *B
        ptrdiff_t n, d
        const int32_t *nb
        int missing_bin, nbins
        const int32_t *y_cls
        const double *y_reg
        int K, crit
        const double *base_w
        const double *cdf
        int bootstrap, balanced_subsample
        ptrdiff_t n_boot
        int max_depth
        ptrdiff_t min_split, min_leaf, max_leaf_nodes
        double min_wleaf_frac, min_impurity_decrease
        int mtry
        const uint64_t *seeds
        ptrdiff_t n_trees
        parml_tb_nodes *out
        uint8_t *inbag
        parml_parallel_for_fn pf
    int parml_tb_build(const parml_tb_ctx *c, int n_threads)
    void parml_tb_nodes_free(parml_tb_nodes *t)
    ctypedef struct parml_tb_oob_ctx:
        const uint8_t *B
        ptrdiff_t n
        int missing_bin
        const int32_t *feature
        const int32_t *bin
        const int32_t *left
        const int32_t *right
        const uint8_t *missing_left
        const double *value
        const int64_t *roots
        ptrdiff_t n_trees, W
        const uint8_t *inbag
        double *sum
        int32_t *count
        ptrdiff_t block
    void parml_tb_oob_task(void *ctx, ptrdiff_t t, int worker)
    ctypedef struct parml_tb_inbag_ctx:
        const parml_tb_ctx *c
        uint8_t *bits
        int *failed
    void parml_tb_inbag_task(void *ctx, ptrdiff_t t, int worker)

CRITERIA = {"gini": 0, "entropy": 1, "log_loss": 1, "squared_error": 2}
OOB_BLOCK = 1024


cdef object _copy_out(const void *p, shape, dtype):
    """A new array of this shape and dtype, copied from the C array at p."""
    a = np.empty(shape, dtype=dtype)
    cdef uint8_t[::1] v = a.reshape(-1).view(np.uint8)
    if v.shape[0]:
        memcpy(&v[0], p, <size_t>v.shape[0])
    return a


cdef dict _take(parml_tb_nodes *t):
    """Copy one tree's node arrays into numpy arrays."""
    cdef Py_ssize_t m = t.n_nodes
    i32, i64, f64 = np.int32, np.int64, np.float64
    return {"feature": _copy_out(t.feature, m, i32), "bin": _copy_out(t.bin, m, i32),
            "left": _copy_out(t.left, m, i32), "right": _copy_out(t.right, m, i32),
            "missing_left": _copy_out(t.missing_left, m, np.uint8),
            "impurity": _copy_out(t.impurity, m, f64), "wsum": _copy_out(t.wsum, m, f64),
            "gain": _copy_out(t.gain, m, f64), "count": _copy_out(t.count, m, i64),
            "depth": _copy_out(t.depth, m, i32), "value": _copy_out(t.value, (m, t.W), f64)}


cdef int _check_cdf(const double[::1] cdf, Py_ssize_t n) except -1:
    if cdf is None:
        return 0
    if cdf.shape[0] != n:
        raise ValueError(f"tree builder: cdf needs one entry per row ({n}), got {cdf.shape[0]}")
    if n == 0:
        return 0
    cdef bint bad = cdf[0] < 0 or not isfinite(cdf[n - 1]) or not cdf[n - 1] > 0
    cdef Py_ssize_t i
    for i in range(1, n):
        bad |= cdf[i] < cdf[i - 1]
    if bad:
        raise ValueError("tree builder: cdf must be non-decreasing running sums of non-negative "
                         "weights with a positive finite total")
    return 0


def build_trees(const uint8_t[:, ::1] B not None,     # IN  d x n bins
                const int32_t[::1] nb not None,       # IN  d non-missing bins per feature
                int missing_bin,
                y,                                    # IN  n int32 classes, or float64 targets
                int K, str criterion,
                const double[::1] base_w,             # IN  n row weights, or None
                const uint64_t[::1] seeds not None,   # IN  T one seed per tree
                *, bint bootstrap=False, Py_ssize_t n_boot=0, bint balanced_subsample=False,
                const double[::1] cdf=None,           # IN  n running sums of base_w, or None
                max_depth=None, Py_ssize_t min_samples_split=2, Py_ssize_t min_samples_leaf=1,
                double min_weight_fraction_leaf=0.0, double min_impurity_decrease=0.0,
                max_leaf_nodes=None, int max_features=-1, bint want_inbag=False,
                int n_threads=1):
    """Build len(seeds) trees on binned data B (d, n) uint8.

    y: int32 class indices in [0, K) (gini/entropy) or float64 targets (squared_error);
    base_w: float64 per-row weights or None (the trees' weights without bootstrap); seeds:
    uint64, one per tree. With bootstrap, n_boot rows are drawn per tree: with cdf (running sums
    of base_w) in proportion to the weights, and a tree weighs rows by their counts alone
    (scikit-learn >= 1.8); without cdf uniformly, each row weighing base_w x its count. Returns (trees,
    inbag): trees is a list of dicts of node arrays (feature, bin, left, right, missing_left,
    value (nodes x W), impurity, wsum, gain, count, depth); inbag is (n_trees, ceil(n/8)) uint8
    bits of the rows each tree drew (bootstrap), or None."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
    cdef int crit = CRITERIA[criterion]
    cdef Py_ssize_t d = B.shape[0], n = B.shape[1]
    if nb.shape[0] != d:
        raise ValueError(f"tree builder: nb needs one entry per feature of B ({d}), got "
                         f"{nb.shape[0]}")
    if not 1 <= missing_bin <= 255:
        raise ValueError("tree builder: missing_bin must be in 1..255")
    if n == 0 or n > 2**31 - 1:
        raise ValueError(f"tree builder: need 1 .. 2**31-1 rows, got {n}")
    if u8_max(B) > missing_bin:  # a bin past missing_bin would index past a histogram
        raise ValueError("tree builder: B holds bins above missing_bin")
    if not within(nb, 1, missing_bin + 1):
        raise ValueError("tree builder: nb must be in 1..missing_bin")
    _check_cdf(cdf, n)
    cdef const int32_t[::1] y_cls = None
    cdef const double[::1] y_reg = None
    try:
        if crit == 2:
            y_reg = y
        else:
            y_cls = y
    except (ValueError, TypeError) as e:
        what = "float64 targets" if crit == 2 else "int32 class indices"
        raise ValueError(f"tree builder: y must be {what} (n,): {e}") from None
    if (y_reg.shape[0] if crit == 2 else y_cls.shape[0]) != n:
        raise ValueError(f"tree builder: y needs one entry per row of B ({n})")
    if crit == 2:
        K = 1
    else:
        if K < 1:
            raise ValueError("tree builder: K must be >= 1")
        if not within(y_cls, 0, K):
            raise ValueError("tree builder: class indices must lie in [0, K)")
        if balanced_subsample and K > 256:
            raise ValueError("class_weight='balanced_subsample' supports at most 256 classes")
    if base_w is not None and base_w.shape[0] != n:
        raise ValueError(f"tree builder: base_w needs one entry per row of B ({n}), got "
                         f"{base_w.shape[0]}")
    cdef Py_ssize_t T = seeds.shape[0]
    if T < 1:
        raise ValueError("tree builder: need at least one seed (tree)")
    if bootstrap and n_boot < 1:
        raise ValueError("tree builder: n_boot must be >= 1 with bootstrap")
    if max_features < 1 or max_features > d:
        max_features = d
    if min_samples_leaf < 1 or min_samples_split < 2:
        raise ValueError("tree builder: min_samples_leaf >= 1 and min_samples_split >= 2")
    inbag = np.zeros((T, (n + 7) // 8), dtype=np.uint8) if want_inbag else None
    cdef uint8_t[:, ::1] inbag_v = inbag

    cdef parml_tb_ctx c
    c.B = &B[0, 0] if d else NULL
    c.n, c.d = n, d
    c.nb = &nb[0] if d else NULL
    c.missing_bin, c.nbins = missing_bin, missing_bin + 1
    c.y_cls = &y_cls[0] if crit != 2 else NULL
    c.y_reg = &y_reg[0] if crit == 2 else NULL
    c.K, c.crit = K, crit
    c.base_w = &base_w[0] if base_w is not None else NULL
    c.cdf = &cdf[0] if cdf is not None and bootstrap else NULL
    c.bootstrap, c.balanced_subsample, c.n_boot = bootstrap, balanced_subsample, n_boot
    c.max_depth = -1 if max_depth is None else int(max_depth)
    c.min_split, c.min_leaf = min_samples_split, min_samples_leaf
    c.max_leaf_nodes = 0 if max_leaf_nodes is None else int(max_leaf_nodes)
    c.min_wleaf_frac, c.min_impurity_decrease = min_weight_fraction_leaf, min_impurity_decrease
    c.mtry = max_features
    c.seeds = &seeds[0]
    c.n_trees = T
    c.inbag = &inbag_v[0, 0] if inbag is not None else NULL
    c.pf = parallel_for
    cdef parml_tb_nodes *out = <parml_tb_nodes *>calloc(T, sizeof(parml_tb_nodes))
    if out == NULL:
        raise MemoryError()
    c.out = out
    cdef int rc
    cdef Py_ssize_t t
    try:
        with nogil:
            rc = parml_tb_build(&c, n_threads)
        if rc != 0:
            raise MemoryError("tree builder: out of memory")
        trees = [_take(&out[t]) for t in range(T)]
    finally:
        for t in range(T):
            parml_tb_nodes_free(&out[t])
        free(out)
    return trees, inbag


def oob_sums(const uint8_t[:, ::1] B not None,      # IN  d x n bins
             int missing_bin,
             flat,                                  # IN  the forest's node arrays (see below)
             const uint8_t[:, ::1] inbag not None,  # IN  T x ceil(n/8) in-bag bits
             Py_ssize_t W, int n_threads=1):
    """Out-of-bag sums: for each row of B (d, n), the sum of the leaf values (W per leaf) of the
    trees that did not draw it, and how many such trees. flat: dict with feature, bin, left,
    right (int32), missing_left (uint8), value (nodes x W float64), roots (int64). Returns
    (sum (n, W), count (n,))."""
    cdef Py_ssize_t n = B.shape[1]
    cdef const int32_t[::1] feature, bin_, left, right
    cdef const uint8_t[::1] missing_left
    cdef const double[:, ::1] value
    cdef const int64_t[::1] roots
    key = None
    try:
        key = "feature int32"; feature = flat["feature"]
        key = "bin int32"; bin_ = flat["bin"]
        key = "left int32"; left = flat["left"]
        key = "right int32"; right = flat["right"]
        key = "missing_left uint8"; missing_left = flat["missing_left"]
        key = "value float64 (nodes x W)"; value = flat["value"]
        key = "roots int64"; roots = flat["roots"]
    except (ValueError, TypeError) as e:
        raise ValueError(f"tree builder: flat[{key}]: {e}") from None
    cdef Py_ssize_t m = left.shape[0], T = roots.shape[0]
    if inbag.shape[0] != T or inbag.shape[1] != (n + 7) // 8:
        raise ValueError(f"tree builder: inbag must have shape ({T}, {(n + 7) // 8}) (trees x "
                         f"bytes of B's rows), got ({inbag.shape[0]}, {inbag.shape[1]})")
    if feature.shape[0] != m or bin_.shape[0] != m or right.shape[0] != m \
            or missing_left.shape[0] != m or value.shape[0] != m or value.shape[1] != W:
        raise ValueError(f"tree builder: the node arrays need one entry per node ({m}), value "
                         f"({m}, {W})")
    total = np.zeros((n, W))
    count = np.zeros(n, dtype=np.int32)
    if n == 0 or T == 0:
        return total, count
    cdef double[:, ::1] total_v = total
    cdef int32_t[::1] count_v = count
    cdef parml_tb_oob_ctx c
    c.B = &B[0, 0] if B.shape[0] else NULL
    c.n = n
    c.missing_bin = missing_bin
    c.feature = &feature[0] if m else NULL
    c.bin = &bin_[0] if m else NULL
    c.left = &left[0] if m else NULL
    c.right = &right[0] if m else NULL
    c.missing_left = &missing_left[0] if m else NULL
    c.value = &value[0, 0] if m and W else NULL
    c.roots = &roots[0]
    c.n_trees, c.W = T, W
    c.inbag = &inbag[0, 0]
    c.sum = &total_v[0, 0] if W else NULL
    c.count = &count_v[0]
    c.block = OOB_BLOCK
    cdef ptrdiff_t ntask = (n + OOB_BLOCK - 1) // OOB_BLOCK, t
    with nogil:
        if n_threads > 1 and ntask > 1:
            parallel_for(ntask, n_threads, parml_tb_oob_task, &c)
        else:
            for t in range(ntask):
                parml_tb_oob_task(&c, t, 0)
    return total, count


def inbag_bits(const uint64_t[::1] seeds not None,  # IN  T one seed per tree
               Py_ssize_t n, Py_ssize_t n_boot,
               const double[::1] cdf=None,          # IN  n running sums of weights, or None
               int n_threads=1):
    """(n_trees, ceil(n/8)) uint8: the rows each tree's bootstrap drew, regenerated from its
    seed exactly as build_trees drew them (so out-of-bag code needs no stored bits)."""
    if n < 1 or n_boot < 1:
        raise ValueError("inbag_bits: n and n_boot must be >= 1")
    _check_cdf(cdf, n)
    cdef Py_ssize_t T = seeds.shape[0]
    bits = np.zeros((T, (n + 7) // 8), dtype=np.uint8)
    if T == 0:
        return bits
    cdef uint8_t[:, ::1] bits_v = bits
    cdef parml_tb_ctx c
    c.n = n
    c.n_boot = n_boot
    c.cdf = &cdf[0] if cdf is not None else NULL
    c.seeds = &seeds[0]
    cdef int failed = 0
    cdef parml_tb_inbag_ctx x
    x.c = &c
    x.bits = &bits_v[0, 0]
    x.failed = &failed
    cdef ptrdiff_t t
    with nogil:
        if n_threads > 1 and T > 1:
            parallel_for(T, n_threads, parml_tb_inbag_task, &x)
        else:
            for t in range(T):
                parml_tb_inbag_task(&x, t, 0)
    if failed:
        raise MemoryError("inbag_bits: out of memory")
    return bits
