# The C records that kernels exchange with numpy as structured arrays, declared once from their
# headers. Each has one numpy mirror (HBIN, SPLIT, QNODE in _types.pyx, the only place those
# dtypes are written) with the same fields at the same offsets and no padding, so a structured
# array of the mirror converts to a typed memoryview of the struct (`parml_hbin[:, ::1]`).
# tests/kernels/test_types.py compares each mirror with the layout C reports (_types.layout).

from libc.stdint cimport int32_t, int64_t, uint32_t

cdef extern from "parml/hist.h" nogil:
    # HBIN: one histogram bin
    ctypedef struct parml_hbin:
        double g             # sum of gradients
        double h             # sum of hessians
        uint32_t count       # rows
        uint32_t pad

    # SPLIT: the best split of one feature
    ctypedef struct parml_split:
        double gain
        int32_t bin          # left = bins <= bin
        int32_t missing_left
        double gl, hl, gr, hr
        int64_t nl, nr
        int32_t is_cat       # categorical split: rows whose bin is in cats go left
        int32_t pad
        uint32_t cats[8]     # 256-bit set of bins going left

cdef extern from "parml/tree_predict.h" nogil:
    # QNODE: one node packed for the lockstep walk
    ctypedef struct parml_qnode:
        double thr           # split: x <= thr goes left; leaf: NaN
        uint32_t fm          # feature | (NaN goes right) << 31; leaf: 1 << 31
        int32_t left         # split: left child (right = left + 1), tree-relative
