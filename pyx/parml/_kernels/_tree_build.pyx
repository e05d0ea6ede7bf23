# cython: language_level=3
"""Whole decision trees built natively on binned data (include/parml/tree_build.h): the kernel
under parml.tree and parml.ensemble.RandomForest*. Trees run in parallel (one task each); a
single tree runs its subtrees in parallel. Every result is the same for any n_threads."""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t, uintptr_t
from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn, parml_task_fn

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


cdef inline void *_ptr(a):
    return <void *><uintptr_t>a.ctypes.data


def _need(a, dtype, shape, what):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape \
            or not a.flags.c_contiguous:
        raise ValueError(f"tree builder: {what} must be a C-contiguous {np.dtype(dtype)} array "
                         f"of shape {shape}")


cdef dict _take(parml_tb_nodes *t):
    """Copy one tree's node arrays into numpy arrays."""
    cdef Py_ssize_t m = t.n_nodes, W = t.W
    out = {}
    for name, dt in (("feature", np.int32), ("bin", np.int32), ("left", np.int32),
                     ("right", np.int32), ("missing_left", np.uint8), ("impurity", np.float64),
                     ("wsum", np.float64), ("gain", np.float64), ("count", np.int64),
                     ("depth", np.int32)):
        out[name] = np.empty(m, dtype=dt)
    out["value"] = np.empty((m, W), dtype=np.float64)
    if m == 0:
        return out
    cdef size_t nm = m
    memcpy(_ptr(out["feature"]), t.feature, nm * 4)
    memcpy(_ptr(out["bin"]), t.bin, nm * 4)
    memcpy(_ptr(out["left"]), t.left, nm * 4)
    memcpy(_ptr(out["right"]), t.right, nm * 4)
    memcpy(_ptr(out["missing_left"]), t.missing_left, nm)
    memcpy(_ptr(out["value"]), t.value, nm * 8 * W)
    memcpy(_ptr(out["impurity"]), t.impurity, nm * 8)
    memcpy(_ptr(out["wsum"]), t.wsum, nm * 8)
    memcpy(_ptr(out["gain"]), t.gain, nm * 8)
    memcpy(_ptr(out["count"]), t.count, nm * 8)
    memcpy(_ptr(out["depth"]), t.depth, nm * 4)
    return out


def _check_cdf(cdf, Py_ssize_t n):
    if cdf is None:
        return
    _need(cdf, np.float64, (n,), "cdf")
    if n and (not np.isfinite(cdf[n - 1]) or not cdf[n - 1] > 0 or (np.diff(cdf) < 0).any()
              or cdf[0] < 0):
        raise ValueError("tree builder: cdf must be non-decreasing running sums of non-negative "
                         "weights with a positive finite total")


def build_trees(B, nb, int missing_bin, y, int K, str criterion, base_w, seeds, *,
                bint bootstrap=False, Py_ssize_t n_boot=0, bint balanced_subsample=False,
                cdf=None,
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
    if not isinstance(B, np.ndarray) or B.ndim != 2:
        raise ValueError("tree builder: B must be a 2-D uint8 array (d, n)")
    cdef Py_ssize_t d = B.shape[0], n = B.shape[1]
    _need(B, np.uint8, (d, n), "B")
    _need(nb, np.int32, (d,), "nb")
    if not 1 <= missing_bin <= 255:
        raise ValueError("tree builder: missing_bin must be in 1..255")
    if n == 0 or n > 2**31 - 1:
        raise ValueError(f"tree builder: need 1 .. 2**31-1 rows, got {n}")
    if d and int(B.max()) > missing_bin:  # a bin past missing_bin would index past a histogram
        raise ValueError("tree builder: B holds bins above missing_bin")
    if d and (nb.min() < 1 or nb.max() > missing_bin):
        raise ValueError("tree builder: nb must be in 1..missing_bin")
    _check_cdf(cdf, n)
    if crit == 2:
        _need(y, np.float64, (n,), "y")
        K = 1
    else:
        _need(y, np.int32, (n,), "y")
        if K < 1:
            raise ValueError("tree builder: K must be >= 1")
        if n and (int(y.min()) < 0 or int(y.max()) >= K):
            raise ValueError("tree builder: class indices must lie in [0, K)")
        if balanced_subsample and K > 256:
            raise ValueError("class_weight='balanced_subsample' supports at most 256 classes")
    if base_w is not None:
        _need(base_w, np.float64, (n,), "base_w")
    _need(seeds, np.uint64, (len(seeds),), "seeds")
    cdef Py_ssize_t T = len(seeds)
    if T < 1:
        raise ValueError("tree builder: need at least one seed (tree)")
    if bootstrap and n_boot < 1:
        raise ValueError("tree builder: n_boot must be >= 1 with bootstrap")
    if max_features < 1 or max_features > d:
        max_features = d
    if min_samples_leaf < 1 or min_samples_split < 2:
        raise ValueError("tree builder: min_samples_leaf >= 1 and min_samples_split >= 2")
    inbag = np.zeros((T, (n + 7) // 8), dtype=np.uint8) if want_inbag else None

    cdef parml_tb_ctx c
    c.B = <const uint8_t *>_ptr(B)
    c.n, c.d = n, d
    c.nb = <const int32_t *>_ptr(nb)
    c.missing_bin, c.nbins = missing_bin, missing_bin + 1
    c.y_cls = <const int32_t *>_ptr(y) if crit != 2 else NULL
    c.y_reg = <const double *>_ptr(y) if crit == 2 else NULL
    c.K, c.crit = K, crit
    c.base_w = <const double *>_ptr(base_w) if base_w is not None else NULL
    c.cdf = <const double *>_ptr(cdf) if cdf is not None and bootstrap else NULL
    c.bootstrap, c.balanced_subsample, c.n_boot = bootstrap, balanced_subsample, n_boot
    c.max_depth = -1 if max_depth is None else int(max_depth)
    c.min_split, c.min_leaf = min_samples_split, min_samples_leaf
    c.max_leaf_nodes = 0 if max_leaf_nodes is None else int(max_leaf_nodes)
    c.min_wleaf_frac, c.min_impurity_decrease = min_weight_fraction_leaf, min_impurity_decrease
    c.mtry = max_features
    c.seeds = <const uint64_t *>_ptr(seeds)
    c.n_trees = T
    c.inbag = <uint8_t *>_ptr(inbag) if inbag is not None else NULL
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


def oob_sums(B, int missing_bin, flat, inbag, Py_ssize_t W, int n_threads=1):
    """Out-of-bag sums: for each row of B (d, n), the sum of the leaf values (W per leaf) of the
    trees that did not draw it, and how many such trees. flat: dict with feature, bin, left,
    right, missing_left, value (nodes x W), roots (int64). Returns (sum (n, W), count (n,))."""
    cdef Py_ssize_t d = B.shape[0], n = B.shape[1], T = len(flat["roots"])
    _need(B, np.uint8, (d, n), "B")
    _need(inbag, np.uint8, (T, (n + 7) // 8), "inbag")
    m = len(flat["left"])
    for k, dt in (("feature", np.int32), ("bin", np.int32), ("left", np.int32),
                  ("right", np.int32), ("missing_left", np.uint8)):
        _need(flat[k], dt, (m,), k)
    _need(flat["value"], np.float64, (m, W), "value")
    _need(flat["roots"], np.int64, (T,), "roots")
    total = np.zeros((n, W))
    count = np.zeros(n, dtype=np.int32)
    cdef parml_tb_oob_ctx c
    c.B = <const uint8_t *>_ptr(B)
    c.n = n
    c.missing_bin = missing_bin
    c.feature = <const int32_t *>_ptr(flat["feature"])
    c.bin = <const int32_t *>_ptr(flat["bin"])
    c.left = <const int32_t *>_ptr(flat["left"])
    c.right = <const int32_t *>_ptr(flat["right"])
    c.missing_left = <const uint8_t *>_ptr(flat["missing_left"])
    c.value = <const double *>_ptr(flat["value"])
    c.roots = <const int64_t *>_ptr(flat["roots"])
    c.n_trees, c.W = T, W
    c.inbag = <const uint8_t *>_ptr(inbag)
    c.sum = <double *>_ptr(total)
    c.count = <int32_t *>_ptr(count)
    c.block = OOB_BLOCK
    cdef ptrdiff_t ntask = (n + OOB_BLOCK - 1) // OOB_BLOCK, t
    with nogil:
        if n_threads > 1 and ntask > 1:
            parallel_for(ntask, n_threads, parml_tb_oob_task, &c)
        else:
            for t in range(ntask):
                parml_tb_oob_task(&c, t, 0)
    return total, count


def inbag_bits(seeds, Py_ssize_t n, Py_ssize_t n_boot, cdf=None, int n_threads=1):
    """(n_trees, ceil(n/8)) uint8: the rows each tree's bootstrap drew, regenerated from its
    seed exactly as build_trees drew them (so out-of-bag code needs no stored bits)."""
    _need(seeds, np.uint64, (len(seeds),), "seeds")
    if n < 1 or n_boot < 1:
        raise ValueError("inbag_bits: n and n_boot must be >= 1")
    _check_cdf(cdf, n)
    cdef Py_ssize_t T = len(seeds)
    bits = np.zeros((T, (n + 7) // 8), dtype=np.uint8)
    cdef parml_tb_ctx c
    c.n = n
    c.n_boot = n_boot
    c.cdf = <const double *>_ptr(cdf) if cdf is not None else NULL
    c.seeds = <const uint64_t *>_ptr(seeds)
    cdef int failed = 0
    cdef parml_tb_inbag_ctx x
    x.c = &c
    x.bits = <uint8_t *>_ptr(bits)
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
