"""Tree-ensemble prediction (include/parml/tree_predict.h): raw per-output sums of leaf values,
parallel over row blocks. The wrapper checks the forest's structure (children inside their tree
and after their parent, so a walk always ends) before any native code runs.

Node arrays are typed memoryviews (IN: Cython checks dtype, dimensions and C-contiguity on the
way in); the wrappers check that their lengths agree. The leaf values are (nodes,) or
(nodes, n_outputs), so `value` is taken as given and viewed flat here."""

import numpy as np

from cython cimport floating
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.stddef cimport ptrdiff_t
from libc.string cimport memcmp

from parml._kernels._pool cimport parallel_for, parml_task_fn
from parml._kernels._types cimport parml_qnode
from parml._kernels._types import QNODE   # the record's numpy mirror, written once there


cdef extern from "parml/tree_predict.h" nogil:
    enum: PARML_PACKED_MIN_ROWS, PARML_FOREST_ROW_BLOCK
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


cdef class PackedForest:
    """A forest's nodes packed for the lockstep walk (tree_predict.h): made only by
    pack_forest, from arrays check_forest accepted. predict_forest takes it only with those
    very arrays (the same memory, not equal copies: a copy might have been changed since) and X
    with at least n_features columns."""
    cdef readonly object nodes   # QNODE (n_nodes,)
    cdef readonly object steps   # int32 (n_trees,)
    cdef readonly object source  # (feature, threshold, missing_left, left, right, roots)
    cdef readonly Py_ssize_t n_features
    cdef const parml_qnode[::1] q
    cdef const int32_t[::1] st
    cdef const void *src[6]      # the data of the source arrays
    cdef Py_ssize_t n_nodes, n_trees


cdef void _sources(const void **src, const int32_t[::1] feature, const double[::1] threshold,
                   const uint8_t[::1] missing_left, const int32_t[::1] left,
                   const int32_t[::1] right, const int64_t[::1] roots) noexcept:
    """The data addresses of a forest's arrays (NULL for empty ones): a PackedForest is used
    only with the very memory it was packed from."""
    cdef bint m = feature.shape[0] > 0
    src[0] = &feature[0] if m else NULL
    src[1] = &threshold[0] if m else NULL
    src[2] = &missing_left[0] if m else NULL
    src[3] = &left[0] if m else NULL
    src[4] = &right[0] if m else NULL
    src[5] = &roots[0] if roots.shape[0] else NULL


cdef class _Categorical:
    """The categorical splits of a forest of m nodes, checked and viewed once."""
    cdef const uint8_t[::1] node_cat   # IN  m: 1 = categorical split
    cdef const uint32_t[:, ::1] cats   # IN  m x 8: the categories going left
    cdef const uint32_t[:, ::1] known  # IN  n_features x 8: categories seen in training

    def __cinit__(self, categorical, Py_ssize_t m, Py_ssize_t n_features):
        if not (isinstance(categorical, tuple) and len(categorical) == 3):
            raise ValueError("forest: categorical must be (node_cat, cats, known)")
        node_cat, cats, known = categorical
        what = "node_cat (uint8)"
        try:  # viewed here, so that a refusal names the array
            self.node_cat = node_cat
            what = "cats (uint32)"
            self.cats = cats
            what = "known (uint32)"
            self.known = known
        except (ValueError, TypeError) as e:
            raise type(e)(f"forest: categorical {what}: {e}") from None
        if self.node_cat.shape[0] != m or self.cats.shape[0] != m or self.cats.shape[1] != 8 \
                or self.known.shape[0] != n_features or self.known.shape[1] != 8:
            raise ValueError(f"forest: categorical needs node_cat ({m},), cats ({m}, 8) and "
                             f"known ({n_features}, 8)")


cdef const double[::1] _leaf_values(value, Py_ssize_t m, Py_ssize_t n_outputs,
                                    Py_ssize_t *width):
    """value, float64 C-contiguous (m,) or (m, n_outputs), as one flat view; width: 1 or
    n_outputs values per node."""
    cdef const double[:, ::1] v2
    cdef const double[::1] v1
    if getattr(value, "ndim", 1) == 2:
        v2 = value
        if v2.shape[0] != m or v2.shape[1] != n_outputs:
            raise ValueError(f"forest: value must have shape ({m},) or ({m}, {n_outputs}), got "
                             f"({v2.shape[0]}, {v2.shape[1]})")
        width[0] = n_outputs
        return np.asarray(value).reshape(-1)
    v1 = value
    if v1.shape[0] != m:
        raise ValueError(f"forest: value must have shape ({m},) or ({m}, {n_outputs}), got "
                         f"({v1.shape[0]},)")
    width[0] = 1
    return v1


cdef int _check_lengths(const int32_t[::1] feature, const double[::1] threshold,
                        const uint8_t[::1] missing_left, const int32_t[::1] left,
                        const int32_t[::1] right, const int64_t[::1] roots,
                        const int32_t[::1] tree_output) except -1:
    """The node arrays have one entry per node, roots and tree_output one per tree."""
    cdef Py_ssize_t m = feature.shape[0], k = roots.shape[0]
    if threshold.shape[0] != m or missing_left.shape[0] != m or left.shape[0] != m \
            or right.shape[0] != m:
        raise ValueError(f"forest: feature, threshold, missing_left, left and right need one "
                         f"entry per node, got {m}, {threshold.shape[0]}, "
                         f"{missing_left.shape[0]}, {left.shape[0]} and {right.shape[0]}")
    if tree_output.shape[0] != k:
        raise ValueError(f"forest: roots and tree_output need one entry per tree, got {k} and "
                         f"{tree_output.shape[0]}")
    if k and not m:
        raise ValueError("forest: roots must start at 0 and increase within the node arrays")
    return 0


cdef int _check(const int32_t[::1] feature, const double[::1] threshold,
                const uint8_t[::1] missing_left, const int32_t[::1] left,
                const int32_t[::1] right, const double[::1] va, Py_ssize_t W,
                const int64_t[::1] roots, const int32_t[::1] tree_output,
                Py_ssize_t n_features, Py_ssize_t n_outputs) except -1:
    """check_forest on views whose lengths _check_lengths and _leaf_values accepted."""
    cdef Py_ssize_t m = feature.shape[0], k = roots.shape[0]
    if k == 0:
        return 0
    cdef int err
    with nogil:
        err = parml_forest_check_arrays(&feature[0], &threshold[0], &left[0], &right[0], &va[0],
                                        W, &roots[0], &tree_output[0], k, m, n_features,
                                        n_outputs)
    if err:
        raise ValueError({1: "forest: roots must start at 0 and increase within the node arrays",
                          2: "forest: tree_output out of range",
                          3: "forest: children must lie in their tree, after their parent",
                          4: "forest: split feature out of range",
                          5: "forest: NaN threshold",
                          6: "forest: non-finite leaf value"}[err])
    return 0


def check_forest(const int32_t[::1] feature not None,       # IN  m split features
                 const double[::1] threshold not None,      # IN  m thresholds
                 const uint8_t[::1] missing_left not None,  # IN  m NaN-goes-left flags
                 const int32_t[::1] left not None,          # IN  m left children (-1: leaf)
                 const int32_t[::1] right not None,         # IN  m right children
                 value,                                     # IN  m or m x n_outputs float64
                 const int64_t[::1] roots not None,         # IN  T first node of each tree
                 const int32_t[::1] tree_output not None,   # IN  T output of each tree
                 Py_ssize_t n_features, Py_ssize_t n_outputs):
    """ValueError unless the arrays describe a forest the kernel can walk safely: every child
    inside its tree and after its parent (so every walk ends), features and outputs in range,
    no NaN threshold, finite leaves. One pass in native code, no temporaries (a forest may be
    hundreds of MB, memory-mapped and shared between server workers). value is (nodes,) or,
    one value per output, (nodes, n_outputs)."""
    _check_lengths(feature, threshold, missing_left, left, right, roots, tree_output)
    cdef Py_ssize_t W
    cdef const double[::1] va = _leaf_values(value, feature.shape[0], n_outputs, &W)
    _check(feature, threshold, missing_left, left, right, va, W, roots, tree_output, n_features,
           n_outputs)


def pack_forest(const int32_t[::1] feature not None,       # IN  m
                const double[::1] threshold not None,      # IN  m
                const uint8_t[::1] missing_left not None,  # IN  m
                const int32_t[::1] left not None,          # IN  m
                const int32_t[::1] right not None,         # IN  m
                const int64_t[::1] roots not None,         # IN  T
                Py_ssize_t n_features, Py_ssize_t n_outputs):
    """The forest packed for the lockstep walk (a PackedForest for predict_forest's `packed`),
    or None when some split's children are not adjacent (right != left + 1): such forests are
    walked unpacked. Checks the structure first (check_forest)."""
    cdef Py_ssize_t m = feature.shape[0], k = roots.shape[0]
    cdef const int32_t[::1] outputs = np.zeros(k, np.int32)
    _check_lengths(feature, threshold, missing_left, left, right, roots, outputs)
    _check(feature, threshold, missing_left, left, right, np.zeros(m), 1, roots, outputs,
           n_features, n_outputs)
    nodes = np.empty(m, dtype=QNODE)
    steps = np.zeros(k, dtype=np.int32)
    sizes = np.diff(np.append(np.asarray(roots), m)) if k else np.zeros(0, np.int64)
    cdef int32_t[::1] depth = np.zeros(max(1, int(sizes.max()) if k else 1), dtype=np.int32)
    cdef parml_qnode[::1] qn = nodes
    cdef int32_t[::1] st = steps
    cdef int rc = 0
    if k:
        with nogil:
            rc = parml_pack_forest(&feature[0], &threshold[0], &missing_left[0], &left[0],
                                   &right[0], &roots[0], k, m, &qn[0], &st[0], &depth[0])
    if rc != 0:
        return None
    cdef PackedForest p = PackedForest.__new__(PackedForest)
    p.nodes, p.steps, p.q, p.st = nodes, steps, qn, st
    p.source = (feature.base, threshold.base, missing_left.base, left.base, right.base,
                roots.base)
    p.n_features = n_features
    p.n_nodes, p.n_trees = m, k
    _sources(p.src, feature, threshold, missing_left, left, right, roots)
    return p


def check_categorical(categorical, Py_ssize_t m, Py_ssize_t n_features):
    """ValueError unless categorical = (node_cat uint8 (m,), cats uint32 (m, 8), known uint32
    (n_features, 8)): the categorical splits of a forest of m nodes."""
    _Categorical(categorical, m, n_features)


def predict_forest(const floating[:, :] X not None,          # IN    n x d, rows contiguous
                   const int32_t[::1] feature not None,       # IN    m (see check_forest)
                   const double[::1] threshold not None,      # IN    m
                   const uint8_t[::1] missing_left not None,  # IN    m
                   const int32_t[::1] left not None,          # IN    m
                   const int32_t[::1] right not None,         # IN    m
                   value,                                     # IN    m or m x n_outputs
                   const int64_t[::1] roots not None,         # IN    T
                   const int32_t[::1] tree_output not None,   # IN    T
                   Py_ssize_t n_outputs, int n_threads=1,
                   double[:, ::1] out=None,                   # INOUT n x n_outputs, or None
                   bint checked=False, categorical=None, PackedForest packed=None):
    """(n, n_outputs) float64: for each row, per output, the sum of its leaves' values (added
    to `out` when given). checked=True skips check_forest (the caller validated already).
    categorical: (node_cat, cats, known) when some splits are categorical (check_categorical).
    packed: pack_forest of these same arrays (the lockstep walk; ignored with categorical and
    for fewer than 4 rows, where the plain walk is faster)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], m = feature.shape[0], k = roots.shape[0]
    if n > 0 and d > 1 and X.strides[1] != sizeof(floating):
        raise ValueError("predict_forest: X must have contiguous rows (a unit column step)")
    _check_lengths(feature, threshold, missing_left, left, right, roots, tree_output)
    cdef Py_ssize_t W
    cdef const double[::1] va = _leaf_values(value, m, n_outputs, &W)
    if not checked:
        _check(feature, threshold, missing_left, left, right, va, W, roots, tree_output, d,
               n_outputs)
    cdef _Categorical cat = None if categorical is None else _Categorical(categorical, m, d)
    cdef const void *src[6]
    if packed is not None:
        _sources(src, feature, threshold, missing_left, left, right, roots)
        if packed.n_nodes != m or packed.n_trees != k or packed.n_features > d \
                or memcmp(src, packed.src, sizeof(src)) != 0:
            raise ValueError("predict_forest: packed is of another forest (or X is too narrow)")
    result = None
    if out is None:
        out = result = np.zeros((n, n_outputs))
    elif out.shape[0] != n or out.shape[1] != n_outputs:
        raise ValueError(f"predict_forest: out must have shape ({n}, {n_outputs}) (X's rows x "
                         f"n_outputs), got ({out.shape[0]}, {out.shape[1]})")
    if result is None:
        result = out.base
    if n == 0 or k == 0:
        return result
    cdef parml_forest_ctx c
    c.X = <const char *>&X[0, 0] if d else NULL  # no column: only single-leaf trees
    c.n, c.row_bytes = n, X.strides[0]
    c.is_float = floating is float
    c.feature = &feature[0]
    c.threshold = &threshold[0]
    c.missing_left = &missing_left[0]
    c.left = &left[0]
    c.right = &right[0]
    c.value = &va[0]
    c.roots = &roots[0]
    c.tree_output = &tree_output[0]
    c.n_trees, c.n_outputs = k, n_outputs
    c.value_width = W
    c.out = &out[0, 0]
    c.block = ROW_BLOCK
    c.node_cat, c.cats, c.known = NULL, NULL, NULL
    if cat is not None:
        c.node_cat = &cat.node_cat[0]
        c.cats = &cat.cats[0, 0]
        c.known = &cat.known[0, 0] if d else NULL
    c.q, c.steps = NULL, NULL
    cdef parml_task_fn task = parml_forest_task
    if packed is not None and cat is None and n >= PARML_PACKED_MIN_ROWS:
        c.q = &packed.q[0]
        c.steps = &packed.st[0]
        task = parml_forest_packed_task
    cdef ptrdiff_t ntask = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef ptrdiff_t t
    with nogil:
        if n_threads > 1 and ntask > 1:
            parallel_for(ntask, n_threads, task, &c)
        else:
            for t in range(ntask):
                task(&c, t, 0)
    return result
