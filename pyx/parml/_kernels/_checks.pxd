# Scans the kernel wrappers run over their typed memoryview arguments before entering native code:
# the values that would make C index out of bounds (row numbers, bins, class indices). Branch-free
# min/max loops, so the compiler vectorises them.

from libc.stdint cimport int32_t, int64_t, uint8_t


ctypedef fused index_t:
    int32_t
    int64_t


cdef inline bint within(const index_t[::1] a, int64_t lo, int64_t hi) noexcept nogil:
    """Every entry of a (int32 or int64) in [lo, hi)."""
    cdef Py_ssize_t i, n = a.shape[0]
    if n == 0:
        return True
    cdef index_t mn = a[0], mx = a[0], v
    for i in range(1, n):
        v = a[i]
        mn = v if v < mn else mn
        mx = v if v > mx else mx
    return lo <= mn and mx < hi


cdef inline int u8_max(const uint8_t[:, ::1] a) noexcept nogil:
    """The largest entry of a (-1 when a is empty)."""
    cdef Py_ssize_t i, j
    cdef uint8_t mx = 0
    if a.shape[0] == 0 or a.shape[1] == 0:
        return -1
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            mx = a[i, j] if a[i, j] > mx else mx
    return mx


cdef inline int uint8_flags(flags, str what) except -1:
    """Flag arguments are uint8 0/1: a bool array converts to the same memoryview, and is refused
    like any other dtype (flags is the memoryview; its base, the caller's array)."""
    if getattr(getattr(flags.base, "dtype", None), "kind", "u") == "b":
        raise ValueError(f"{what} must be a uint8 array of 0/1 flags, not bool")
    return 0
