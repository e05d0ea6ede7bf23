"""GEMM entry points: C = A @ B on the packed, cache-blocked driver in include/parml/gemm.h,
multi-threaded on parml's task pool. Callers (parml.ops) validate shapes, dtypes and layouts;
the only test here is whether C's memory may overlap A's or B's (gemm returns 1)."""

from libc.stddef cimport ptrdiff_t
from cython cimport floating

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn

from parml._kernels._gemm_api cimport (
    parml_kernel_d, parml_kernel_s, parml_gemm_args_d, parml_gemm_args_s, PARML_N_KERNELS,
    parml_kernels_d, parml_kernels_s, parml_set_supported, parml_gemm_d, parml_gemm_s)


# Micro-kernel names, one per kernel set (the tables in gemm.h are indexed by kernel-set id).
KERNEL_NAMES = tuple(parml_kernels_d[i].name.decode() for i in range(PARML_N_KERNELS))


def kernel_blocking(int kernel_id, bint single):
    """Register tile, cache blocks and skinny width (mr, nr, kc, mc, nc, skinny_w) of kernel set
    ``kernel_id``'s micro-kernel for float32 (single) or float64."""
    if not (0 <= kernel_id < PARML_N_KERNELS and parml_set_supported(kernel_id)):
        raise ValueError(f"kernel_blocking: kernel set id {kernel_id} is not supported here")
    if single:
        ks = parml_kernels_s[kernel_id]
        return ks.mr, ks.nr, ks.kc, ks.mc, ks.nc, ks.skinny_w
    kd = parml_kernels_d[kernel_id]
    return kd.mr, kd.nr, kd.kc, kd.mc, kd.nc, kd.skinny_w


def gemm_f64(const double[:, :] A, const double[:, :] B, double[:, ::1] C, int n_threads,
             int kernel_id, int tasks, bint direct):
    """gemm for float64 without the fused-type dispatch (~1 us a call, which a 64^3 product
    notices)."""
    return gemm(A, B, C, n_threads, kernel_id, tasks, direct)


def gemm_f32(const float[:, :] A, const float[:, :] B, float[:, ::1] C, int n_threads,
             int kernel_id, int tasks, bint direct):
    """gemm for float32 without the fused-type dispatch."""
    return gemm(A, B, C, n_threads, kernel_id, tasks, direct)


cdef inline void _extent(const char *p, Py_ssize_t r, Py_ssize_t c, Py_ssize_t s0, Py_ssize_t s1,
                         Py_ssize_t size, const char **lo, const char **hi) noexcept nogil:
    """The bytes [lo, hi) that an r x c view at p with byte strides s0, s1 can touch."""
    cdef Py_ssize_t a = (r - 1) * s0, b = (c - 1) * s1
    lo[0] = p + (a if a < 0 else 0) + (b if b < 0 else 0)
    hi[0] = p + (a if a > 0 else 0) + (b if b > 0 else 0) + size


cdef inline bint _overlaps(const char *c_lo, const char *c_hi, const char *p, Py_ssize_t r,
                           Py_ssize_t c, Py_ssize_t s0, Py_ssize_t s1,
                           Py_ssize_t size) noexcept nogil:
    cdef const char *lo
    cdef const char *hi
    if r == 0 or c == 0:
        return False
    _extent(p, r, c, s0, s1, size, &lo, &hi)
    return lo < c_hi and c_lo < hi


cpdef int gemm(const floating[:, :] A,    # IN   m x k, any strides
               const floating[:, :] B,    # IN   k x n, any strides
               floating[:, ::1] C,        # OUT  m x n, C-contiguous; never read
               int n_threads, int kernel_id, int tasks, bint direct):
    """C = A @ B with kernel set ``kernel_id``'s micro-kernel (a supported set: parml.ops
    checks). Returns 0; 1, computing nothing, when C's memory may overlap A's or B's (the bounds
    test of numpy.may_share_memory, at no cost here: the caller goes through a temporary); or -1
    when a packing buffer could not be allocated."""
    cdef Py_ssize_t m = C.shape[0], n = C.shape[1], k = A.shape[1]
    cdef parml_gemm_args_d gd
    cdef parml_gemm_args_s gs
    cdef int rc = 0
    cdef const char *c_lo
    cdef const char *c_hi
    if m == 0 or n == 0:
        return 0
    _extent(<const char *>&C[0, 0], m, n, C.strides[0], C.strides[1], sizeof(floating),
            &c_lo, &c_hi)
    if k > 0 and (
            _overlaps(c_lo, c_hi, <const char *>&A[0, 0], m, k, A.strides[0], A.strides[1],
                      sizeof(floating))
            or _overlaps(c_lo, c_hi, <const char *>&B[0, 0], k, n, B.strides[0], B.strides[1],
                         sizeof(floating))):
        return 1
    if floating is double:
        gd.m, gd.n, gd.k = m, n, k
        gd.a = &A[0, 0] if k > 0 else NULL
        gd.rs_a = A.strides[0] // <Py_ssize_t>sizeof(double)
        gd.cs_a = A.strides[1] // <Py_ssize_t>sizeof(double)
        gd.b = &B[0, 0] if k > 0 else NULL
        gd.rs_b = B.strides[0] // <Py_ssize_t>sizeof(double)
        gd.cs_b = B.strides[1] // <Py_ssize_t>sizeof(double)
        gd.c = &C[0, 0]
        gd.rs_c = n
        with nogil:
            rc = parml_gemm_d(&parml_kernels_d[kernel_id], &gd, n_threads, tasks, direct,
                              parallel_for)
    else:
        gs.m, gs.n, gs.k = m, n, k
        gs.a = &A[0, 0] if k > 0 else NULL
        gs.rs_a = A.strides[0] // <Py_ssize_t>sizeof(float)
        gs.cs_a = A.strides[1] // <Py_ssize_t>sizeof(float)
        gs.b = &B[0, 0] if k > 0 else NULL
        gs.rs_b = B.strides[0] // <Py_ssize_t>sizeof(float)
        gs.cs_b = B.strides[1] // <Py_ssize_t>sizeof(float)
        gs.c = &C[0, 0]
        gs.rs_c = n
        with nogil:
            rc = parml_gemm_s(&parml_kernels_s[kernel_id], &gs, n_threads, tasks, direct,
                              parallel_for)
    return rc
