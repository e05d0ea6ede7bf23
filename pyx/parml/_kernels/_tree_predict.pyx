"""Tree-ensemble prediction (include/parml/tree_predict.h): raw per-output sums of leaf values,
parallel over row blocks. The wrapper checks the forest's structure (children inside their tree
and after their parent, so a walk always ends) before any native code runs."""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uintptr_t
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parallel_for, parml_task_fn


cdef extern from "parml/tree_predict.h" nogil:
    enum: PARML_PACKED_MIN_ROWS, PARML_FOREST_ROW_BLOCK
    ctypedef struct parml_qnode:
        double thr
        uint32_t fm
        int32_t left

    ctypedef struct parml_forest_ctx:
        const char *X
        ptrdiff_t n, row_bytes
        int is_float
        const int32_t *feature
        const double *threshold
        const uint8_t *missing_left
        const int32_t *left
        const int32_t *right
        const double *value
        const int64_t *roots
        const int32_t *tree_output
        ptrdiff_t n_trees, n_outputs, value_width
        double *out
        const uint8_t *node_cat
        const uint32_t *cats
        const uint32_t *known
        ptrdiff_t block
        const parml_qnode *q
        const int32_t *steps
    void parml_forest_task(void *ctx, ptrdiff_t t, int worker)
    void parml_forest_packed_task(void *ctx, ptrdiff_t t, int worker)
    int parml_pack_forest(const int32_t *feature, const double *threshold,
                          const uint8_t *missing_left, const int32_t *left, const int32_t *right,
                          const int64_t *roots, ptrdiff_t n_trees, ptrdiff_t n_nodes,
                          parml_qnode *q, int32_t *steps, int32_t *depth)
    int parml_forest_check_arrays(const int32_t *feature, const double *threshold,
                                  const int32_t *left, const int32_t *right, const double *value,
                                  ptrdiff_t W, const int64_t *roots, const int32_t *tree_output,
                                  ptrdiff_t n_trees, ptrdiff_t n_nodes, ptrdiff_t n_features,
                                  ptrdiff_t n_outputs)


# rows per task (tree_predict.h): a request of up to this many rows never opens a parallel
# region; within a block each tree is walked by all its rows (measured: 1024 beat 64-512 on
# 200k x 100 trees)
ROW_BLOCK = PARML_FOREST_ROW_BLOCK


QNODE = np.dtype([("thr", "<f8"), ("fm", "<u4"), ("left", "<i4")])


cdef class PackedForest:
    """A forest's nodes packed for the lockstep walk (tree_predict.h): made only by
    pack_forest, from arrays check_forest accepted. predict_forest takes it only with those
    very arrays (identity, not equality: a copy might have been changed since) and X with at
    least n_features columns."""
    cdef readonly object nodes   # QNODE (n_nodes,)
    cdef readonly object steps   # int32 (n_trees,)
    cdef readonly object source  # (feature, threshold, missing_left, left, right, roots)
    cdef readonly Py_ssize_t n_features


cdef inline void *_ptr(a):
    return <void *><uintptr_t>a.ctypes.data


def check_forest(feature, threshold, missing_left, left, right, value, roots, tree_output,
                 Py_ssize_t n_features, Py_ssize_t n_outputs):
    """ValueError unless the arrays describe a forest the kernel can walk safely: every child
    inside its tree and after its parent (so every walk ends), features and outputs in range,
    no NaN threshold, finite leaves. One pass in native code, no temporaries (a forest may be
    hundreds of MB, memory-mapped and shared between server workers). value is (nodes,) or,
    one value per output, (nodes, n_outputs)."""
    m = len(feature)
    spec = ((feature, np.int32), (threshold, np.float64), (missing_left, np.uint8),
            (left, np.int32), (right, np.int32))
    for a, dt in spec:
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape != (m,) \
                or not a.flags.c_contiguous:
            raise ValueError(f"forest: node arrays must be C-contiguous 1-D of length {m}")
    if not isinstance(value, np.ndarray) or value.dtype != np.float64 \
            or value.shape not in ((m,), (m, n_outputs)) or not value.flags.c_contiguous:
        raise ValueError(f"forest: value must be C-contiguous float64 of shape ({m},) or "
                         f"({m}, {n_outputs})")
    cdef Py_ssize_t W = 1 if value.ndim == 1 else n_outputs
    k = len(roots)
    for a, dt in ((roots, np.int64), (tree_output, np.int32)):
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape != (k,) \
                or not a.flags.c_contiguous:
            raise ValueError("forest: roots (int64) and tree_output (int32) need one entry per tree")
    if k == 0:
        return
    cdef const int32_t *fe = <const int32_t *>_ptr(feature)
    cdef const double *th = <const double *>_ptr(threshold)
    cdef const int32_t *le = <const int32_t *>_ptr(left)
    cdef const int32_t *ri = <const int32_t *>_ptr(right)
    cdef const double *va = <const double *>_ptr(value)
    cdef const int64_t *ro = <const int64_t *>_ptr(roots)
    cdef const int32_t *to = <const int32_t *>_ptr(tree_output)
    cdef Py_ssize_t mm = m, kk = k
    cdef int err
    with nogil:
        err = parml_forest_check_arrays(fe, th, le, ri, va, W, ro, to, kk, mm, n_features,
                                        n_outputs)
    if err:
        raise ValueError({1: "forest: roots must start at 0 and increase within the node arrays",
                          2: "forest: tree_output out of range",
                          3: "forest: children must lie in their tree, after their parent",
                          4: "forest: split feature out of range",
                          5: "forest: NaN threshold",
                          6: "forest: non-finite leaf value"}[err])


def pack_forest(feature, threshold, missing_left, left, right, roots, Py_ssize_t n_features,
                Py_ssize_t n_outputs):
    """The forest packed for the lockstep walk (a PackedForest for predict_forest's `packed`),
    or None when some split's children are not adjacent (right != left + 1): such forests are
    walked unpacked. Checks the structure first (check_forest)."""
    m, k = len(feature), len(roots)
    check_forest(feature, threshold, missing_left, left, right, np.zeros(m), roots,
                 np.zeros(k, np.int32), n_features, n_outputs)
    nodes = np.empty(m, dtype=QNODE)
    steps = np.zeros(k, dtype=np.int32)
    sizes = np.diff(np.append(roots, m)) if k else np.zeros(0, np.int64)
    depth = np.zeros(max(1, int(sizes.max()) if k else 1), dtype=np.int32)
    cdef int rc = 0
    cdef const int32_t *fe = <const int32_t *>_ptr(feature)
    cdef const double *th = <const double *>_ptr(threshold)
    cdef const uint8_t *ml = <const uint8_t *>_ptr(missing_left)
    cdef const int32_t *le = <const int32_t *>_ptr(left)
    cdef const int32_t *ri = <const int32_t *>_ptr(right)
    cdef const int64_t *ro = <const int64_t *>_ptr(roots)
    cdef parml_qnode *qn = <parml_qnode *>_ptr(nodes)
    cdef int32_t *st = <int32_t *>_ptr(steps)
    cdef int32_t *dp = <int32_t *>_ptr(depth)
    cdef Py_ssize_t kk = k, mm = m
    if k:
        with nogil:
            rc = parml_pack_forest(fe, th, ml, le, ri, ro, kk, mm, qn, st, dp)
    if rc != 0:
        return None
    cdef PackedForest p = PackedForest.__new__(PackedForest)
    p.nodes, p.steps = nodes, steps
    p.source = (feature, threshold, missing_left, left, right, roots)
    p.n_features = n_features
    return p


def check_categorical(categorical, Py_ssize_t m, Py_ssize_t n_features):
    """ValueError unless categorical = (node_cat uint8 (m,), cats uint32 (m, 8), known uint32
    (n_features, 8)): the categorical splits of a forest of m nodes."""
    if not (isinstance(categorical, tuple) and len(categorical) == 3):
        raise ValueError("forest: categorical must be (node_cat, cats, known)")
    for a, dt, shape, what in zip(categorical, (np.uint8, np.uint32, np.uint32),
                                  ((m,), (m, 8), (n_features, 8)),
                                  ("node_cat", "cats", "known")):
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape != shape \
                or not a.flags.c_contiguous:
            raise ValueError(f"forest: {what} must be C-contiguous {np.dtype(dt)} of shape {shape}")


def predict_forest(X, feature, threshold, missing_left, left, right, value, roots, tree_output,
                   Py_ssize_t n_outputs, int n_threads=1, out=None, bint checked=False,
                   categorical=None, PackedForest packed=None):
    """(n, n_outputs) float64: for each row, per output, the sum of its leaves' values (added
    to `out` when given). checked=True skips check_forest (the caller validated already).
    categorical: (node_cat, cats, known) when some splits are categorical (check_categorical).
    packed: pack_forest of these same arrays (the lockstep walk; ignored with categorical and
    for fewer than 4 rows, where the plain walk is faster)."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype not in (np.float32, np.float64) \
            or (X.shape[0] > 0 and X.shape[1] > 1 and X.strides[1] != X.itemsize):
        raise ValueError("predict_forest: X must be a 2-D float32/float64 array with contiguous rows")
    cdef Py_ssize_t n = X.shape[0]
    if not checked:
        check_forest(feature, threshold, missing_left, left, right, value, roots, tree_output,
                     X.shape[1], n_outputs)
        if categorical is not None:
            check_categorical(categorical, len(feature), X.shape[1])
    if packed is not None and (
            any(a is not b for a, b in zip(packed.source, (feature, threshold, missing_left,
                                                           left, right, roots)))
            or packed.n_features > X.shape[1]):
        raise ValueError("predict_forest: packed is of another forest (or X is too narrow)")
    if out is None:
        out = np.zeros((n, n_outputs))
    if not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != (n, n_outputs) \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"predict_forest: out must be a writable C-contiguous float64 ({n}, "
                         f"{n_outputs}) array")
    if n == 0 or len(roots) == 0:
        return out
    cdef parml_forest_ctx c
    c.X = <const char *>_ptr(X)
    c.n, c.row_bytes = n, X.strides[0]
    c.is_float = X.dtype == np.float32
    c.feature = <const int32_t *>_ptr(feature)
    c.threshold = <const double *>_ptr(threshold)
    c.missing_left = <const uint8_t *>_ptr(missing_left)
    c.left = <const int32_t *>_ptr(left)
    c.right = <const int32_t *>_ptr(right)
    c.value = <const double *>_ptr(value)
    c.roots = <const int64_t *>_ptr(roots)
    c.tree_output = <const int32_t *>_ptr(tree_output)
    c.n_trees, c.n_outputs = len(roots), n_outputs
    c.value_width = 1 if value.ndim == 1 else n_outputs
    c.out = <double *>_ptr(out)
    c.block = ROW_BLOCK
    c.node_cat, c.cats, c.known = NULL, NULL, NULL
    if categorical is not None:
        c.node_cat = <const uint8_t *>_ptr(categorical[0])
        c.cats = <const uint32_t *>_ptr(categorical[1])
        c.known = <const uint32_t *>_ptr(categorical[2])
    c.q, c.steps = NULL, NULL
    cdef parml_task_fn task = parml_forest_task
    if packed is not None and categorical is None and n >= PARML_PACKED_MIN_ROWS:
        c.q = <const parml_qnode *>_ptr(packed.nodes)
        c.steps = <const int32_t *>_ptr(packed.steps)
        task = parml_forest_packed_task
    cdef ptrdiff_t ntask = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef ptrdiff_t t
    with nogil:
        if n_threads > 1 and ntask > 1:
            parallel_for(ntask, n_threads, task, &c)
        else:
            for t in range(ntask):
                task(&c, t, 0)
    return out
