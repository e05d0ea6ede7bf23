"""GEMM entry points: C = A @ B on the packed, cache-blocked driver in include/parml/gemm.h,
multi-threaded on parml's task pool. Callers (parml.ops) validate shapes, dtypes and layouts;
the only test here is whether C's memory may overlap A's or B's (gemm returns 1)."""

from libc.stddef cimport ptrdiff_t
from cython cimport floating
cimport numpy as cnp

from libc.math cimport frexp
from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn
from parml._kernels._tuner cimport (Tuner, parml_now, parml_tuner_threads,
                                    parml_tuner_record_as)

from parml._kernels._gemm_api cimport (
    parml_kernel_d, parml_kernel_s, parml_gemm_args_d, parml_gemm_args_s, PARML_N_KERNELS,
    parml_kernels_d, parml_kernels_s, parml_set_supported, parml_gemm_d, parml_gemm_s,
    parml_prepacked_b_elems_d, parml_prepacked_b_elems_s, parml_prepack_b_d, parml_prepack_b_s,
    parml_prepack_b_rows_d, parml_prepack_b_rows_s, parml_prepack_bt_cols_d,
    parml_prepack_bt_cols_s, parml_gemm_packs_b_d, parml_gemm_packs_b_s, parml_gemm_prepacked_d,
    parml_gemm_prepacked_s)


cnp.import_array()
import numpy as np

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


cdef bint _c_overlaps(const char *pa, Py_ssize_t rs_a, Py_ssize_t cs_a, const char *pb,
                      Py_ssize_t rs_b, Py_ssize_t cs_b, char *pc, Py_ssize_t m, Py_ssize_t n,
                      Py_ssize_t k, Py_ssize_t isz) noexcept nogil:
    """C's memory (m x n, row-major) may overlap A's or B's (the bounds test of
    numpy.may_share_memory)."""
    cdef const char *c_lo
    cdef const char *c_hi
    if m == 0 or n == 0 or k == 0:
        return False
    _extent(pc, m, n, n * isz, isz, isz, &c_lo, &c_hi)
    return (_overlaps(c_lo, c_hi, pa, m, k, rs_a, cs_a, isz)
            or _overlaps(c_lo, c_hi, pb, k, n, rs_b, cs_b, isz))


cdef int _gemm_run(const char *pa, Py_ssize_t rs_a, Py_ssize_t cs_a, const char *pb,
                   Py_ssize_t rs_b, Py_ssize_t cs_b, char *pc, Py_ssize_t m, Py_ssize_t n,
                   Py_ssize_t k, Py_ssize_t isz, int n_threads, int kernel_id, int tasks,
                   bint direct) noexcept nogil:
    """The body of both entry points: byte strides, isz the element size (8: float64, 4:
    float32), C row-major with rows n elements apart. Returns as gemm."""
    cdef parml_gemm_args_d gd
    cdef parml_gemm_args_s gs
    if m == 0 or n == 0:
        return 0
    if _c_overlaps(pa, rs_a, cs_a, pb, rs_b, cs_b, pc, m, n, k, isz):
        return 1
    if isz == sizeof(double):
        gd.m, gd.n, gd.k = m, n, k
        gd.a = <const double *>pa if k > 0 else NULL
        gd.rs_a, gd.cs_a = rs_a // isz, cs_a // isz
        gd.b = <const double *>pb if k > 0 else NULL
        gd.rs_b, gd.cs_b = rs_b // isz, cs_b // isz
        gd.c = <double *>pc
        gd.rs_c = n
        return parml_gemm_d(&parml_kernels_d[kernel_id], &gd, n_threads, tasks, direct,
                            parallel_for)
    gs.m, gs.n, gs.k = m, n, k
    gs.a = <const float *>pa if k > 0 else NULL
    gs.rs_a, gs.cs_a = rs_a // isz, cs_a // isz
    gs.b = <const float *>pb if k > 0 else NULL
    gs.rs_b, gs.cs_b = rs_b // isz, cs_b // isz
    gs.c = <float *>pc
    gs.rs_c = n
    return parml_gemm_s(&parml_kernels_s[kernel_id], &gs, n_threads, tasks, direct, parallel_for)


cpdef int gemm(const floating[:, :] A,    # IN   m x k, any strides
               const floating[:, :] B,    # IN   k x n, any strides
               floating[:, ::1] C,        # OUT  m x n, C-contiguous; never read
               int n_threads, int kernel_id, int tasks, bint direct):
    """C = A @ B with kernel set ``kernel_id``'s micro-kernel (a supported set: parml.ops
    checks). Returns 0; 1, computing nothing, when C's memory may overlap A's or B's (the bounds
    test of numpy.may_share_memory, at no cost here: the caller goes through a temporary); or -1
    when a packing buffer could not be allocated."""
    cdef Py_ssize_t m = C.shape[0], n = C.shape[1], k = A.shape[1]
    cdef int rc
    if m == 0 or n == 0:
        return 0
    with nogil:
        rc = _gemm_run(<const char *>&A[0, 0] if k > 0 else NULL, A.strides[0], A.strides[1],
                       <const char *>&B[0, 0] if k > 0 else NULL, B.strides[0], B.strides[1],
                       <char *>&C[0, 0], m, n, k, sizeof(floating), n_threads, kernel_id, tasks,
                       direct)
    return rc


cdef void _prepack_whole(int kernel_id, Py_ssize_t k, Py_ssize_t n, const floating *b,
                         Py_ssize_t rs, Py_ssize_t cs, floating *dst) noexcept:
    if floating is float:
        parml_prepack_b_s(&parml_kernels_s[kernel_id], k, n, b, rs, cs, dst)
    else:
        parml_prepack_b_d(&parml_kernels_d[kernel_id], k, n, b, rs, cs, dst)


cdef void _prepack_part(int kernel_id, bint rows, Py_ssize_t k, Py_ssize_t n, Py_ssize_t i0,
                        Py_ssize_t i1, const floating *b, Py_ssize_t ld, floating *dst) noexcept:
    """Rows i0..i1 of a row-major B (rows), or columns i0..i1 of B = W.T from W's rows."""
    if floating is float:
        if rows:
            parml_prepack_b_rows_s(&parml_kernels_s[kernel_id], k, n, i0, i1, b, ld, dst)
        else:
            parml_prepack_bt_cols_s(&parml_kernels_s[kernel_id], k, n, i0, i1, b, ld, dst)
    else:
        if rows:
            parml_prepack_b_rows_d(&parml_kernels_d[kernel_id], k, n, i0, i1, b, ld, dst)
        else:
            parml_prepack_bt_cols_d(&parml_kernels_d[kernel_id], k, n, i0, i1, b, ld, dst)


def prepacked_product(const floating[:, ::1] A,   # IN   m x k
                      const floating[:, :] B,     # IN   k x n: row-major, or W.T of a row-major W
                      floating[:, ::1] C,         # OUT  m x n
                      int kernel_id, str how, Py_ssize_t chunk, stale=None):
    """Test entry for the shared packed B that the MLP's steps use: C = A @ B on one thread
    through parml_gemm_prepacked, with B packed beforehand ``how``:

    - "whole": parml_prepack_b in one call (any strides);
    - "rows": B row-major, packed ``chunk`` rows at a time, last chunk first
      (parml_prepack_b_rows, as region 1 packs the deltas);
    - "bt_cols": B = W.T of a row-major W; the buffer is first filled with NaN and packed whole
      from ``stale`` (another W of that shape), then its columns are repacked ``chunk`` at a time
      from W (parml_prepack_bt_cols, as region 2 repacks the rows of W it updated).

    Returns (rc, whether the product read the packed B)."""
    cdef Py_ssize_t m = C.shape[0], n = C.shape[1], k = A.shape[1]
    cdef parml_gemm_args_d gd
    cdef parml_gemm_args_s gs
    cdef Py_ssize_t rs_b = B.strides[0] // sizeof(floating), cs_b = B.strides[1] // sizeof(floating)
    if not (0 <= kernel_id < PARML_N_KERNELS and parml_set_supported(kernel_id)):
        raise ValueError(f"prepacked_product: kernel set id {kernel_id} is not supported here")
    if B.shape[0] != k or B.shape[1] != n or A.shape[0] != m or m == 0 or n == 0 or k == 0:
        raise ValueError("prepacked_product: shapes do not match or are empty")
    if k == 1:   # a stride along a dimension of one element is never used: any value will do
        rs_b = 1 if how == "bt_cols" else rs_b
    if n == 1:
        cs_b = 1 if how == "rows" else cs_b
    if how == "rows" and cs_b != 1 or how == "bt_cols" and rs_b != 1:
        raise ValueError(f"prepacked_product: B's strides do not fit how={how!r}")
    if how not in ("whole", "rows", "bt_cols") or chunk < 1:
        raise ValueError(f"prepacked_product: how={how!r}, chunk={chunk}")
    cdef size_t elems = (parml_prepacked_b_elems_s(&parml_kernels_s[kernel_id], k, n)
                         if floating is float else
                         parml_prepacked_b_elems_d(&parml_kernels_d[kernel_id], k, n))
    buf_np = np.full(elems, np.nan, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] buf = buf_np
    cdef const floating[:, :] old
    cdef Py_ssize_t i
    cdef bint by_rows
    if floating is float:
        gs.m, gs.n, gs.k = m, n, k
        gs.a, gs.rs_a, gs.cs_a = &A[0, 0], k, 1
        gs.b, gs.rs_b, gs.cs_b = &B[0, 0], rs_b, cs_b
        gs.c, gs.rs_c = &C[0, 0], n
    else:
        gd.m, gd.n, gd.k = m, n, k
        gd.a, gd.rs_a, gd.cs_a = &A[0, 0], k, 1
        gd.b, gd.rs_b, gd.cs_b = &B[0, 0], rs_b, cs_b
        gd.c, gd.rs_c = &C[0, 0], n
    if how == "whole":
        _prepack_whole(kernel_id, k, n, &B[0, 0], rs_b, cs_b, &buf[0])
    else:
        if how == "bt_cols":
            old = stale
            if (old.shape[0] != k or old.shape[1] != n
                    or (k > 1 and old.strides[0] != sizeof(floating))):
                raise ValueError("prepacked_product: stale must be a W.T view shaped as B")
            _prepack_whole(kernel_id, k, n, &old[0, 0], 1, old.strides[1] // sizeof(floating),
                           &buf[0])
        # rows: last chunk first; bt_cols: columns in order
        by_rows = how == "rows"
        starts = range(((k - 1) // chunk) * chunk, -1, -chunk) if by_rows else range(0, n, chunk)
        for i in starts:
            _prepack_part(kernel_id, by_rows, k, n, i, min(i + chunk, k if by_rows else n),
                          &B[0, 0], rs_b if by_rows else cs_b, &buf[0])
    if floating is float:
        used = parml_gemm_packs_b_s(&parml_kernels_s[kernel_id], &gs, 0)
        rc = parml_gemm_prepacked_s(&parml_kernels_s[kernel_id], &gs, 0, &buf[0])
    else:
        used = parml_gemm_packs_b_d(&parml_kernels_d[kernel_id], &gd, 0)
        rc = parml_gemm_prepacked_d(&parml_kernels_d[kernel_id], &gd, 0, &buf[0])
    return rc, bool(used)


# This process's measured one-thread rate of each kernel set's GEMM, FLOP/s, by [set][single]
# (0: not measured yet); parml.ops.gemm_rate fills it. matmul_fast reads it to predict a
# product's time without a Python dictionary lookup.
cdef double _rate[8][2]
assert PARML_N_KERNELS <= 8, "_gemm.pyx: _rate needs a row per kernel set"


def set_rate(int kernel_id, bint single, double rate):
    """Record kernel set ``kernel_id``'s measured one-thread GEMM rate (FLOP/s)."""
    if not 0 <= kernel_id < PARML_N_KERNELS:
        raise ValueError(f"set_rate: kernel set id {kernel_id} out of range")
    _rate[kernel_id][1 if single else 0] = rate


cdef inline bint _plain(cnp.ndarray x, int typenum) noexcept:
    """x holds typenum elements in native byte order, aligned (what the float32/float64 dtype
    singletons and a typed memoryview would accept)."""
    return (cnp.PyArray_TYPE(x) == typenum and not cnp.PyArray_ISBYTESWAPPED(x)
            and cnp.PyArray_ISALIGNED(x))


def matmul_fast(A, B, out, int n_threads, int kernel_id, double direct_max_mnk,
                double parallel_min_seconds, double split_min_seconds, double tiny_flops,
                dict tuners):
    """parml.matmul's fast path, with no Python in it: ndarrays (exact type) A (m x k) and B
    (k x n) of one dtype, float32 or float64, each C- or F-contiguous, and out None or a
    writable C-contiguous m x n array of that dtype. It applies parml.ops._gemm_into's thread
    rule: one thread when n_threads is 1, the product is direct (m*n*k <= direct_max_mnk) or
    its predicted one-thread time (0 under tiny_flops; else from this set's measured rate) is
    under parallel_min_seconds; under split_min_seconds, the thread count of the size class's
    tuner, ``tuners[(dtype char, FLOP count's bit length, n_threads)]``, timed for it.
    Returns the result, or None when any of that does not hold (a longer product, a size class
    with no tuner yet, out that may overlap A or B): parml.ops then takes its general path,
    which also gives every error its message."""
    if not (cnp.PyArray_CheckExact(A) and cnp.PyArray_CheckExact(B)):
        return None
    cdef cnp.ndarray a = <cnp.ndarray>A
    cdef cnp.ndarray b = <cnp.ndarray>B
    cdef cnp.ndarray c
    cdef int t = cnp.PyArray_TYPE(a)
    if t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64:
        return None
    if not (_plain(a, t) and _plain(b, t)) or cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_NDIM(b) != 2:
        return None
    if not ((cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_IS_F_CONTIGUOUS(a))
            and (cnp.PyArray_IS_C_CONTIGUOUS(b) or cnp.PyArray_IS_F_CONTIGUOUS(b))):
        return None
    cdef Py_ssize_t m = cnp.PyArray_DIM(a, 0), k = cnp.PyArray_DIM(a, 1), n = cnp.PyArray_DIM(b, 1)
    if cnp.PyArray_DIM(b, 0) != k:
        return None
    cdef double mnk = <double>m * <double>n * <double>k
    cdef double flops = 2.0 * mnk
    cdef bint direct = mnk <= direct_max_mnk
    cdef double rate, seconds = 0
    cdef int nt = 1, bits
    cdef Tuner tuner = None
    if n_threads > 1 and not direct:   # parml.ops._gemm_into's rule
        if flops >= tiny_flops:
            rate = _rate[kernel_id][1 if t == cnp.NPY_FLOAT32 else 0]
            if rate <= 0:
                return None
            seconds = flops / rate
        if seconds >= split_min_seconds:
            return None
        if seconds >= parallel_min_seconds:
            frexp(flops, &bits)        # int(flops).bit_length(): flops is a whole number
            tuner = tuners.get(("f" if t == cnp.NPY_FLOAT32 else "d", bits, n_threads))
            if tuner is None:
                return None
    cdef cnp.npy_intp dims[2]
    if out is None:
        dims[0], dims[1] = m, n
        c = cnp.PyArray_EMPTY(2, dims, t, 0)
    else:
        if not cnp.PyArray_CheckExact(out):
            return None
        c = <cnp.ndarray>out
        if (not _plain(c, t) or cnp.PyArray_NDIM(c) != 2 or cnp.PyArray_DIM(c, 0) != m
                or cnp.PyArray_DIM(c, 1) != n or not cnp.PyArray_IS_C_CONTIGUOUS(c)
                or not cnp.PyArray_ISWRITEABLE(c)):
            return None
    if m == 0 or n == 0:
        return c
    # the operands through numpy's C API: acquiring three typed memoryviews cost ~0.8 us, 12% of
    # a 64^3 float product; the tuned path in Python cost 2-5 us more than the kernel call
    cdef cnp.npy_intp *sa = cnp.PyArray_STRIDES(a)
    cdef cnp.npy_intp *sb = cnp.PyArray_STRIDES(b)
    cdef int rc
    cdef double t0 = 0, elapsed
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(c)
    if tuner is not None and _c_overlaps(<const char *>cnp.PyArray_DATA(a), sa[0], sa[1],
                                         <const char *>cnp.PyArray_DATA(b), sb[0], sb[1],
                                         <char *>cnp.PyArray_DATA(c), m, n, k, isz):
        return None    # (before the tuner hands out a count that no product would use)
    with nogil:
        if tuner is not None:
            nt = parml_tuner_threads(&tuner.t)
            t0 = parml_now()
        rc = _gemm_run(<const char *>cnp.PyArray_DATA(a), sa[0], sa[1],
                       <const char *>cnp.PyArray_DATA(b), sb[0], sb[1], <char *>cnp.PyArray_DATA(c),
                       m, n, k, isz, nt, kernel_id, nt, direct)
        if tuner is not None and rc == 0:
            elapsed = parml_now() - t0
            parml_tuner_record_as(&tuner.t, elapsed / flops, elapsed)
    if rc == 1:
        return None
    if rc != 0:
        raise MemoryError("matmul: could not allocate GEMM packing buffers")
    return c
