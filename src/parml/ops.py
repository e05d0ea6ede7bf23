"""Array operations on parml's parallel kernels: ``matmul`` (cache-blocked GEMM) and ``add``."""
import time

import numpy as np

from . import _isa
from ._kernels import _elementwise, _gemm
from ._kernels._tuner import Tuner
from ._threads import effective_n_threads

__all__ = ["matmul", "add"]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_FLOAT_DTYPES = (_F32, _F64)

# When a second thread pays: a product runs on n threads only when one thread would take at least
# GEMM_PARALLEL_MIN_SECONDS, predicted from this process's measured one-thread rate of the active
# micro-kernel (calibrated once per kernel set and dtype, ~1 ms), so the rule holds on a 17
# GFLOP/s core and on a 100+ GFLOP/s one alike. 30 us: a pool round trip costs ~5 us, and with
# the AVX2 set 2 threads ran 128^3 (57 us on one) in 29 us and 96^3 float64 (44 us) 1.6x faster;
# 64^3 (7-14 us) gained nothing. Below
# GEMM_SPLIT_MIN_SECONDS each size class also times n threads against one on its own products
# (_small_tuner, below); above it a product runs on n threads, as one task per thread or cut into
# 3 per thread, whichever its size class measures faster (_layout_tuner): cut, a thread that
# loses its core mid-product (another busy process) leaves a third of its share to the others.
GEMM_PARALLEL_MIN_SECONDS = 3.0e-5
GEMM_SPLIT_MIN_SECONDS = 8.0e-3
GEMM_DIRECT_MAX_MNK = 24 ** 3              # m*n*k at or below: direct loop, no packing
GEMM_TINY_FLOPS = 2 * 48 ** 3              # under 0.25 MFLOP: one thread on any core, no rate read
ADD_PARALLEL_MIN_SIZE = 1 << 17            # elements; below: one thread (bandwidth-bound)

_rates = {}                                # (kernel set id, dtype char) -> FLOP/s on one thread


def gemm_rate(dtype=np.float64):
    """Measured FLOP/s of one thread on the active kernel set's GEMM for ``dtype`` (float32 or
    float64): the best of a few 192 x 256 x 192 products, timed once per process and set."""
    dt = np.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"gemm_rate: dtype must be float32 or float64, got {dt}")
    key = (_isa.kernel_set_id(), dt.char)
    rate = _rates.get(key)
    if rate is None:
        m, k, n = 192, 256, 192
        a = np.full((m, k), 0.5, dtype=dt)
        b = np.full((k, n), 0.25, dtype=dt)
        c = np.empty((m, n), dtype=dt)
        best = float("inf")
        for _ in range(4):
            t0 = time.perf_counter()
            (_gemm.gemm_f64 if dt == _F64 else _gemm.gemm_f32)(a, b, c, 1, key[0], 1, False)
            best = min(best, time.perf_counter() - t0)
        rate = _rates[key] = 2.0 * m * n * k / max(best, 1e-9)
        _gemm.set_rate(key[0], dt == _F32, rate)
    return rate


def _gemm_seconds(flops, dt, ks):
    """Predicted one-thread time of a product of ``flops`` (no calibration for tiny ones) with
    kernel set ``ks``. The cached rate is read directly: gemm_rate's checks cost ~1 us, 10% of
    a 64^3 float product."""
    if flops < GEMM_TINY_FLOPS:
        return 0.0
    rate = _rates.get((ks, dt.char))
    return flops / (rate if rate is not None else gemm_rate(dt))


# Small parallel products (predicted under GEMM_SPLIT_MIN_SECONDS on one thread) keep their second
# thread only while it measurably pays. Beside another busy process a helper that claims half of
# a 0.4 ms product and then loses its core makes the caller wait for it (2 threads took 1.4-1.7x
# the 1-thread time there). So products are grouped by dtype and size (a power of two of FLOPs),
# and each group times n threads against one on its own products, in time per FLOP, and keeps
# the faster (the "calls" plan of parml's one thread tuner, include/parml/tuner.h: the loser is
# timed again after 8, 16, 32 ... products). The first probe of one thread is predicted from
# gemm_rate instead of timed when n threads already beat it clearly: three one-thread calls among
# the first six are what a user repeating a 512^3 product a few times would otherwise pay.
# The choice never changes a result: the GEMM is bitwise identical for every thread count.
_small_tuners = {}


def _class_tuner(tuners, plan, dt, flops, nt):
    """The tuner in ``tuners`` of a product's dtype, size class (FLOPs' power of two) and thread
    count; a new one for the "calls" plan is hinted with the measured one-thread rate."""
    key = (dt.char, int(flops).bit_length(), nt)
    tuner = tuners.get(key)
    if tuner is None:
        tuner = tuners[key] = Tuner(nt, plan)
        if plan == "calls":
            tuner.hint_one(1.0 / gemm_rate(dt))     # seconds per FLOP, as record() is given
    return tuner


def _small_tuner(dt, flops, nt):
    return _class_tuner(_small_tuners, "calls", dt, flops, nt)


# Long products (predicted at GEMM_SPLIT_MIN_SECONDS or more on one thread) always run on n
# threads; a tuner per dtype and size class picks their layout (the "layouts" plan): one task per
# thread, which packs the least and ran 1-4% faster on an idle machine, or 3 tasks per thread,
# which let a thread that keeps losing its core to another process claim fewer (beside a busy
# core: 0.79-0.86x the one-thread time, against 1.01-1.02x for one task each). Either gives the
# same bits.
_layout_tuners = {}


def _layout_tuner(dt, flops, nt):
    return _class_tuner(_layout_tuners, "layouts", dt, flops, nt)


def gemm_kernel_name(dtype=np.float64):
    """Name of the micro-kernel matmul uses for ``dtype``: that of the active kernel set."""
    np.dtype(dtype)  # validates
    return _gemm.KERNEL_NAMES[_isa.kernel_set_id()]


def _check_numeric(x, what, func):
    kind = x.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{func}: {what} has dtype {x.dtype}, which is not a real numeric type "
                        "(complex, object, string, datetime and structured arrays are refused)")


def _as_array(x, what, func):
    if isinstance(x, np.ndarray):
        return x
    if x is None:
        raise TypeError(f"{func}: {what} is None, expected an array")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{func}: {what} could not be converted to an array: {exc}") from None
    return arr


def _result_dtype(a, b, func):
    dt = a.dtype
    if dt is b.dtype and (dt is _F64 or dt is _F32):    # the common case, without result_type
        return dt
    _check_numeric(a, "A", func)
    _check_numeric(b, "B", func)
    dt = np.result_type(a.dtype, b.dtype)
    if dt not in _FLOAT_DTYPES:
        raise TypeError(
            f"{func}: inputs {a.dtype} and {b.dtype} give result dtype {dt} under numpy's rules; "
            "parml computes in float32 or float64 only: cast with .astype(np.float32) or "
            ".astype(np.float64)")
    return dt


def _element_strided(x, dt):
    """x as dtype dt, keeping its layout; copies only when the dtype differs or a stride is not a
    whole number of elements (views into structured arrays)."""
    if x.dtype != dt:
        x = x.astype(dt, order="K")
    elif x.flags.c_contiguous or x.flags.f_contiguous:   # the common case, without the loop
        return x
    size = dt.itemsize
    for s in x.strides:
        if s % size:
            return np.ascontiguousarray(x)
    return x


def _check_out(out, shape, dt, func):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{func}: out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{func}: out has shape {out.shape}, expected {shape}")
    if out.dtype != dt:
        raise TypeError(f"{func}: out has dtype {out.dtype}, expected {dt}")
    if not out.flags.writeable:
        raise ValueError(f"{func}: out is read-only")


def matmul(A, B, out=None, *, n_threads=None):
    """Matrix product ``A @ B`` on parml's cache-blocked, multi-threaded GEMM.

    Parameters
    ----------
    A : array_like, shape (m, k)
    B : array_like, shape (k, n)
        Real numeric 2-D arrays in any layout (C, Fortran, transposed or strided views); they are
        read in place and only packed block by block. The result dtype follows numpy's
        ``result_type`` and must be float32 or float64: float32 @ float32 is float32, anything
        with float64 is float64, small integers with float32 give float32 (int8/int16/uint8/
        uint16/bool), wider integers with float32 give float64. Integer-only, bool-only, float16,
        longdouble, complex, object and string inputs raise ``TypeError``.
    out : ndarray, shape (m, n), optional
        C-contiguous, writable, of the result dtype; overwritten (its previous contents, NaN
        included, never leak in). It may alias ``A`` or ``B``: the product then goes through a
        temporary and is copied in.
    n_threads : int or None
        See :func:`parml.effective_n_threads`. Small products run on one thread. The result is
        bitwise identical for every thread count.

    Returns
    -------
    ndarray, shape (m, n)
        ``out`` if given.
    """
    # The common cases first (a 64^3 float product takes 6-9 us; the general checks below cost
    # ~5): ndarrays of one float dtype, 2-D, C- or F-contiguous, and out None or a writable
    # C-contiguous array of the result's shape and dtype. A product that runs on one thread, or
    # on its size class's tuner's choice (once the class has a tuner), is checked and run in
    # Cython (0.2 us against 2-5 us for the Python checks, buffer views and tuner calls); a
    # longer one takes the attribute reads below. Everything else, errors included, takes the
    # general path.
    res = _gemm.matmul_fast(A, B, out, effective_n_threads(n_threads), _isa.kernel_set_id(),
                            GEMM_DIRECT_MAX_MNK, GEMM_PARALLEL_MIN_SECONDS, GEMM_SPLIT_MIN_SECONDS,
                            GEMM_TINY_FLOPS, _small_tuners)
    if res is not None:
        return res
    if type(A) is np.ndarray and type(B) is np.ndarray:
        dt = A.dtype
        if (dt is B.dtype and (dt is _F64 or dt is _F32) and A.ndim == 2 and B.ndim == 2
                and A.shape[1] == B.shape[0]):
            fa, fb = A.flags, B.flags
            if (fa.c_contiguous or fa.f_contiguous) and (fb.c_contiguous or fb.f_contiguous):
                m, n = A.shape[0], B.shape[1]
                if out is None:
                    return _gemm_into(A, B, np.empty((m, n), dt), dt, n_threads)
                if type(out) is np.ndarray and out.dtype is dt and out.shape == (m, n):
                    fo = out.flags
                    if fo.c_contiguous and fo.writeable:
                        return _gemm_into(A, B, out, dt, n_threads)
    func = "matmul"
    A = _as_array(A, "A", func)
    B = _as_array(B, "B", func)
    if A.ndim != 2:
        raise ValueError(f"{func}: A must be 2-D, got {A.ndim}-D with shape {A.shape}")
    if B.ndim != 2:
        raise ValueError(f"{func}: B must be 2-D, got {B.ndim}-D with shape {B.shape}")
    dt = _result_dtype(A, B, func)
    (m, k), (k2, n) = A.shape, B.shape
    if k != k2:
        raise ValueError(f"{func}: inner dimensions differ: A is {A.shape} and B is {B.shape} "
                         f"({k} != {k2})")
    effective_n_threads(n_threads)   # a bad n_threads is refused before any copy
    if out is not None:
        _check_out(out, (m, n), dt, func)
        if not out.flags.c_contiguous:
            raise ValueError(f"{func}: out must be C-contiguous")
    A = _element_strided(A, dt)
    B = _element_strided(B, dt)
    if out is None:
        out = np.empty((m, n), dtype=dt)
    return _gemm_into(A, B, out, dt, n_threads)


def _gemm_into(A, B, out, dt, n_threads):
    """out = A @ B for checked operands (dtype dt, element strides; out C-contiguous and
    writable). The kernel refuses an out whose memory may overlap A or B (it returns 1): the
    product then goes through a temporary and is copied in."""
    nt = effective_n_threads(n_threads)
    (m, k), n = A.shape, B.shape[1]
    if m == 0 or n == 0:
        return out
    direct = m * n * k <= GEMM_DIRECT_MAX_MNK
    ks = _isa.kernel_set_id()
    # _gemm.matmul_fast applies this rule up to the small tuner in Cython: keep them alike
    seconds = 0.0 if (nt == 1 or direct) else _gemm_seconds(2.0 * m * n * k, dt, ks)
    if seconds < GEMM_PARALLEL_MIN_SECONDS:
        nt = 1
    tuner = None
    tasks = nt
    if nt > 1 and 0.0 < seconds < GEMM_SPLIT_MIN_SECONDS:
        tuner = _small_tuner(dt, 2.0 * m * n * k, nt)
        nt = tasks = tuner.threads()
    elif nt > 1 and seconds >= GEMM_SPLIT_MIN_SECONDS:
        tuner = _layout_tuner(dt, 2.0 * m * n * k, nt)
        if tuner.threads() == 1:      # the tuner's "one" side: the split
            tasks = nt * 3
    gemm = _gemm.gemm_f64 if dt == _F64 else _gemm.gemm_f32
    t0 = time.perf_counter() if tuner is not None else 0.0
    rc = gemm(A, B, out, nt, ks, tasks, direct)
    if rc == 1:
        target = np.empty((m, n), dtype=dt)
        rc = gemm(A, B, target, nt, ks, tasks, direct)
        if rc == 0:
            out[...] = target
    if rc != 0:
        raise MemoryError("matmul: could not allocate GEMM packing buffers")
    if tuner is not None:
        elapsed = time.perf_counter() - t0
        tuner.record(elapsed / (2.0 * m * n * k), elapsed)
    return out


def add(A, B, out=None, *, n_threads=None):
    """Element-wise ``A + B``, parallel over blocks of rows, at memory bandwidth.

    Parameters
    ----------
    A, B : array_like
        Real numeric arrays whose shapes broadcast (numpy rules). Result dtype as ``matmul``
        (float32 or float64). Contiguous arrays of any ndim run on the flat kernel; other layouts
        must broadcast to at most 2-D.
    out : ndarray, optional
        Of the broadcast shape and result dtype, writable, any layout; may be ``A`` or ``B``
        itself (in-place add). Partial overlap with an input goes through a temporary.
    n_threads : int or None
        See :func:`parml.effective_n_threads`. Small arrays run on one thread.

    Returns
    -------
    ndarray
        ``out`` if given.
    """
    func = "add"
    a_weak, b_weak = type(A) in (int, float), type(B) in (int, float)
    A = _as_array(A, "A", func)
    B = _as_array(B, "B", func)
    dt = _result_dtype(A, B, func)
    if a_weak != b_weak:
        # a Python scalar is "weak" in numpy's promotion (NEP 50): float32 array + 1.5 is float32
        arr, scalar = (B, A.item()) if a_weak else (A, B.item())
        _check_numeric(arr, "A" if b_weak else "B", func)
        weak_dt = np.result_type(arr.dtype, scalar)
        if weak_dt in _FLOAT_DTYPES:
            dt = weak_dt
    try:
        shape = np.broadcast_shapes(A.shape, B.shape)
    except ValueError:
        raise ValueError(f"{func}: shapes {A.shape} and {B.shape} do not broadcast") from None
    nt = effective_n_threads(n_threads)
    if out is not None:
        _check_out(out, shape, dt, func)
    A = _element_strided(A, dt)
    B = _element_strided(B, dt)
    if out is None:
        order = "F" if (A.flags.f_contiguous and not A.flags.c_contiguous
                        and A.shape == shape) else "C"
        out = np.empty(shape, dtype=dt, order=order)
    size = out.size
    if size == 0:
        return out
    if size < ADD_PARALLEL_MIN_SIZE:
        nt = 1
    target = out
    for x in (A, B):
        # identical views are fine for an element-wise kernel; partial overlap is not
        if (np.may_share_memory(out, x)
                and not (x.shape == out.shape and x.strides == out.strides
                         and x.__array_interface__["data"][0] == out.__array_interface__["data"][0])):
            target = np.empty_like(out)
    flat = _flat_views(A, B, target)
    if flat is not None:
        _elementwise.add_flat(*flat, nt)
    else:
        if len(shape) > 2:
            raise ValueError(f"{func}: non-contiguous or broadcast operands must be at most 2-D, "
                             f"got shape {shape}")
        shape2 = (1,) * (2 - len(shape)) + shape
        a2 = np.broadcast_to(A, shape).reshape(shape2)
        b2 = np.broadcast_to(B, shape).reshape(shape2)
        _elementwise.add_rows(a2, b2, target.reshape(shape2), nt)
    if target is not out:
        out[...] = target
    return out


def _flat_views(A, B, out):
    """1-D views of three same-shape arrays sharing one contiguous layout, or None."""
    if not (A.shape == B.shape == out.shape):
        return None
    for order, flag in (("C", "c_contiguous"), ("F", "f_contiguous")):
        if getattr(A.flags, flag) and getattr(B.flags, flag) and getattr(out.flags, flag):
            return (A.reshape(-1, order=order), B.reshape(-1, order=order),
                    out.reshape(-1, order=order))
    return None
