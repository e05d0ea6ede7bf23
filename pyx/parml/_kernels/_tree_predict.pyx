"""Tree-ensemble prediction (include/parml/tree_predict.h): raw per-output sums of leaf values,
parallel over row blocks. The wrapper checks the forest's structure (children inside their tree
and after their parent, so a walk always ends) before any native code runs."""

import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uintptr_t
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parallel_for


cdef extern from "parml/tree_predict.h" nogil:
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
        ptrdiff_t n_trees, n_outputs
        double *out
        ptrdiff_t block
    void parml_forest_task(void *ctx, ptrdiff_t t, int worker)


# rows per task: a one-row (or small) request never opens a parallel region
ROW_BLOCK = 256


cdef inline void *_ptr(a):
    return <void *><uintptr_t>a.ctypes.data


def check_forest(feature, threshold, missing_left, left, right, value, roots, tree_output,
                 Py_ssize_t n_features, Py_ssize_t n_outputs):
    """ValueError unless the arrays describe a forest the kernel can walk safely."""
    m = len(feature)
    spec = ((feature, np.int32), (threshold, np.float64), (missing_left, np.uint8),
            (left, np.int32), (right, np.int32), (value, np.float64))
    for a, dt in spec:
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape != (m,) \
                or not a.flags.c_contiguous:
            raise ValueError(f"forest: node arrays must be C-contiguous 1-D of length {m}")
    k = len(roots)
    for a, dt in ((roots, np.int64), (tree_output, np.int32)):
        if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape != (k,) \
                or not a.flags.c_contiguous:
            raise ValueError("forest: roots (int64) and tree_output (int32) need one entry per tree")
    if k == 0:
        return
    if roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= m:
        raise ValueError("forest: roots must start at 0 and increase within the node arrays")
    if tree_output.min() < 0 or tree_output.max() >= n_outputs:
        raise ValueError("forest: tree_output out of range")
    size = np.diff(np.append(roots, m))
    tree = np.repeat(np.arange(k), size)
    local = np.arange(m) - roots[tree]
    split = left >= 0
    if split.any():
        ls, rs, lo = left[split], right[split], local[split]
        if (ls <= lo).any() or (rs <= lo).any() or (ls >= size[tree[split]]).any() \
                or (rs >= size[tree[split]]).any():
            raise ValueError("forest: children must lie in their tree, after their parent")
        f = feature[split]
        if f.min() < 0 or f.max() >= n_features:
            raise ValueError("forest: split feature out of range")
        if np.isnan(threshold[split]).any():
            raise ValueError("forest: NaN threshold")
    if not np.isfinite(value[~split]).all():
        raise ValueError("forest: non-finite leaf value")


def predict_forest(X, feature, threshold, missing_left, left, right, value, roots, tree_output,
                   Py_ssize_t n_outputs, int n_threads=1, out=None, bint checked=False):
    """(n, n_outputs) float64: for each row, per output, the sum of its leaves' values (added
    to `out` when given). checked=True skips check_forest (the caller validated already)."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype not in (np.float32, np.float64) \
            or (X.shape[0] > 0 and X.shape[1] > 1 and X.strides[1] != X.itemsize):
        raise ValueError("predict_forest: X must be a 2-D float32/float64 array with contiguous rows")
    cdef Py_ssize_t n = X.shape[0]
    if not checked:
        check_forest(feature, threshold, missing_left, left, right, value, roots, tree_output,
                     X.shape[1], n_outputs)
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
    c.out = <double *>_ptr(out)
    c.block = ROW_BLOCK
    cdef ptrdiff_t ntask = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef ptrdiff_t t
    with nogil:
        if n_threads > 1 and ntask > 1:
            parallel_for(ntask, n_threads, parml_forest_task, &c)
        else:
            for t in range(ntask):
                parml_forest_task(&c, t, 0)
    return out
