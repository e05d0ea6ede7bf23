"""parml.matmul against a float64 numpy oracle, for every kernel set's micro-kernel, layout and
thread count."""
import platform

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import parml
from parml import _isa, ops
from parml._kernels import _gemm

KERNELS = parml.supported_kernel_sets()
DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _always_parallel(always_n_threads):
    """Every product here runs on the requested threads, however small (production code keeps
    small products on one thread), so thread-count tests exercise the pool."""


def assert_product(C, A, B):
    """|C - A@B| <= c * k * eps * (|A| @ |B|): the standard forward error bound of a dot product,
    checked element by element against a float64 oracle."""
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    ref = A64 @ B64
    bound = np.abs(A64) @ np.abs(B64)
    eps = np.finfo(C.dtype).eps
    k = A.shape[1]
    tol = 2 * (k + 2) * eps * bound + np.finfo(C.dtype).tiny
    err = np.abs(C.astype(np.float64) - ref)
    assert C.shape == ref.shape
    assert np.all(err <= tol), f"max err {err.max():.3g}, tol there {tol.flat[err.argmax()]:.3g}"


def layouts(M, rng):
    """The same matrix values in several memory layouts: C, Fortran, transposed view, strided
    view of a bigger array, negative strides."""
    m, n = M.shape
    big = rng.standard_normal((2 * m + 1, 3 * n + 2)).astype(M.dtype)
    big[1::2, 2::3][:m, :n] = M
    rev = np.ascontiguousarray(M[::-1, ::-1])[::-1, ::-1]
    return {
        "C": np.ascontiguousarray(M),
        "F": np.asfortranarray(M),
        "T": np.ascontiguousarray(M.T).T,
        "strided": big[1::2, 2::3][:m, :n],
        "reversed": rev,
    }


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2, 4])
@pytest.mark.parametrize("shape", [(1, 1, 1), (13, 17, 11), (12, 256, 16), (97, 300, 65),
                                   (150, 513, 131), (257, 129, 34), (64, 1000, 3)])
def test_matmul_matches_oracle(kernel, dtype, n_threads, shape, rng):
    m, k, n = shape
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    with _isa.use(kernel):
        C = parml.matmul(A, B, n_threads=n_threads)
    assert C.dtype == dtype and C.flags.c_contiguous
    assert_product(C, A, B)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_layout(kernel, dtype, rng):
    m, k, n = 45, 70, 38
    A0 = rng.standard_normal((m, k)).astype(dtype)
    B0 = rng.standard_normal((k, n)).astype(dtype)
    with _isa.use(kernel):
        for la, A in layouts(A0, rng).items():
            for lb, B in layouts(B0, rng).items():
                for direct in (0, 10 ** 9):   # packed path, then direct path
                    old = ops.GEMM_DIRECT_MAX_MNK
                    ops.GEMM_DIRECT_MAX_MNK = direct
                    try:
                        C = parml.matmul(A, B)
                    finally:
                        ops.GEMM_DIRECT_MAX_MNK = old
                    assert_product(C, A0, B0)


@given(m=st.integers(0, 300), k=st.integers(0, 300), n=st.integers(0, 300),
       dtype=st.sampled_from(DTYPES), kernel=st.sampled_from(KERNELS),
       ta=st.booleans(), tb=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_shapes_hypothesis(m, k, n, dtype, kernel, ta, tb, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    A = A.T if ta else A
    B = B.T if tb else B
    with _isa.use(kernel):
        C = parml.matmul(A, B, n_threads=2)
    assert C.shape == (m, n)
    if k == 0:
        assert np.all(C == 0)
    else:
        assert_product(C, A, B)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_packing_edges_every_layout(kernel, dtype, rng, monkeypatch):
    """The packers at every edge: m and n through each remainder of the register tiles and of the
    4x4 / 2x2 transposing copies, k through each remainder of the copies' k-step blocks, A and B
    transposed or not, and a transposed A on both sides of the size under which it is read in
    place (64x64 float, 32x64 double). Packing only moves values, so each layout must give the
    contiguous operands' product bit for bit, and that product must meet the float64 oracle's
    bound."""
    monkeypatch.setattr(ops, "GEMM_DIRECT_MAX_MNK", 0)   # every product packed, however small
    cases = [(m, k, n) for m in range(1, 14) for k in (3, 37)
             for n in (1, 2, 3, 5, 7, 9, 13, 17, 18, 19, 21, 25, 31, 33, 35, 37)]
    rows = 64 if dtype == np.float32 else 32
    cases += [(rows, 64, 40), (rows, 65, 40), (rows + 3, 64, 40)]
    # n past the width under which a row-major A is read in place (so its panels are packed by
    # the transposing copy, k through each remainder of its 4-step blocks), and k x n past the
    # size under which a row-major B is read in place (so it is packed in blocks of 16 k steps)
    cases += [(m, k, 145) for m in (6, 7, 13) for k in (3, 37, 130)]
    with _isa.use(kernel):
        for m, k, n in cases:
            A = rng.standard_normal((m, k)).astype(dtype)
            B = rng.standard_normal((k, n)).astype(dtype)
            C = parml.matmul(A, B, n_threads=1)
            assert_product(C, A, B)
            for At, Bt in ((True, False), (False, True), (True, True)):
                Av = np.ascontiguousarray(A.T).T if At else A
                Bv = np.ascontiguousarray(B.T).T if Bt else B
                assert np.array_equal(parml.matmul(Av, Bv, n_threads=1), C), (m, k, n, At, Bt)


def blocked_sequential_product(A, B, kc):
    """C = A.B summed as the generic set's kernels promise, each operation rounded in A's dtype:
    k cut into equal blocks of at most kc, each block summed over p in increasing order from
    zero (a multiply, then an add), the blocks' sums added to C in order."""
    m, k = A.shape
    nblk = -(-k // kc)
    blk = -(-k // nblk)
    C = None
    for p0 in range(0, k, blk):
        acc = np.zeros((m, B.shape[1]), A.dtype)
        for p in range(p0, min(p0 + blk, k)):
            acc = acc + A[:, p:p + 1] * B[p:p + 1, :]
        C = acc if C is None else C + acc
    return C


X86_64 = platform.machine().lower() in ("x86_64", "amd64")


@pytest.mark.skipif(not X86_64, reason="elsewhere the compiler may contract the portable "
                                        "kernel's multiply and add into an FMA")
@given(m=st.integers(1, 110), k=st.integers(1, 700), n=st.integers(1, 40),
       dtype=st.sampled_from(DTYPES), ta=st.booleans(), tb=st.booleans(),
       n_threads=st.sampled_from([1, 2]), seed=st.integers(0, 2 ** 32 - 1))
def test_generic_set_sums_in_order_bit_for_bit(m, k, n, dtype, ta, tb, n_threads, seed):
    """On x86-64 the generic set (SSE2 kernel, A panels of broadcast vectors) rounds exactly as
    a sequential sum does: its product equals the emulated one bit for bit, through every
    packing path (edge tiles, transposed operands and products, B read in place, several k
    blocks, several 48-row A blocks)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    Av = np.ascontiguousarray(A.T).T if ta else A
    Bv = np.ascontiguousarray(B.T).T if tb else B
    kc = _gemm.kernel_blocking(_gemm.KERNEL_NAMES.index("generic"), dtype == np.float32)[2]
    saved = ops.GEMM_DIRECT_MAX_MNK
    ops.GEMM_DIRECT_MAX_MNK = 0   # every product packed (the direct loop does not block k)
    try:
        with _isa.use("generic"):
            C = parml.matmul(Av, Bv, n_threads=n_threads)
    finally:
        ops.GEMM_DIRECT_MAX_MNK = saved
    assert np.array_equal(C, blocked_sequential_product(A, B, kc))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", [False, True])
def test_bitwise_identical_across_threads(kernel, dtype, split, rng):
    # big enough to run in parallel; `split`: 3 tasks per thread (one of long products' layouts)
    A = rng.standard_normal((301, 700)).astype(dtype)
    B = rng.standard_normal((700, 253)).astype(dtype)
    gemm = _gemm.gemm_f32 if dtype == np.float32 else _gemm.gemm_f64
    with _isa.use(kernel):
        if split:
            results = [np.empty((301, 253), dtype) for _ in range(4)]
            for t, C in zip((1, 2, 3, 4), results):
                assert gemm(A, B, C, t, _isa.kernel_set_id(), 3 * t, False) == 0
        else:
            results = [parml.matmul(A, B, n_threads=t) for t in (1, 2, 3, 4)]
    for C in results[1:]:
        assert np.array_equal(C, results[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_products_time_both_layouts(dtype, rng, monkeypatch):
    # products past GEMM_SPLIT_MIN_SECONDS run as one task per thread or 3 per thread, as their
    # size class's tuner finds faster: its first probe runs both, and both give the same bits
    monkeypatch.setattr(ops, "GEMM_SPLIT_MIN_SECONDS", 0.0)
    monkeypatch.setattr(ops, "_layout_tuners", {})
    A = rng.standard_normal((301, 700)).astype(dtype)
    B = rng.standard_normal((700, 253)).astype(dtype)
    ref = parml.matmul(A, B, n_threads=1)
    assert ops._layout_tuners == {}                   # one thread asked: no layout to choose
    name = "gemm_f32" if dtype == np.float32 else "gemm_f64"
    kernel, tasks = getattr(_gemm, name), []

    def recording(A, B, C, n_threads, kernel_id, n_tasks, direct):
        tasks.append((n_threads, n_tasks))
        return kernel(A, B, C, n_threads, kernel_id, n_tasks, direct)
    monkeypatch.setattr(_gemm, name, recording)
    results = [parml.matmul(A, B, n_threads=2) for _ in range(8)]
    (tuner,) = ops._layout_tuners.values()
    st = tuner.stats()
    assert st["units_many"] >= 3 and st["units_one"] >= 3
    assert st["units_many"] + st["units_one"] == 8
    # the tuner's n side is one task per thread, its one side the split; both on 2 threads
    assert tasks.count((2, 2)) == st["units_many"] and tasks.count((2, 6)) == st["units_one"]
    for C in results:
        assert np.array_equal(C, ref)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 4), (100, 300, 90), (25, 0, 30)])
def test_nan_in_out_never_leaks(kernel, dtype, shape, rng):
    m, k, n = shape
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    out = np.full((m, n), np.nan, dtype=dtype)
    with _isa.use(kernel):
        res = parml.matmul(A, B, out=out, n_threads=2)
    assert res is out
    assert not np.isnan(out).any()
    if k == 0:
        assert np.all(out == 0)
    else:
        assert_product(out, A, B)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_inputs_propagate_like_numpy(dtype, rng):
    A = rng.standard_normal((40, 50)).astype(dtype)
    B = rng.standard_normal((50, 30)).astype(dtype)
    A[3, 7] = np.inf
    A[10, 2] = np.nan
    B[4, 5] = -np.inf
    C = parml.matmul(A, B)
    with np.errstate(invalid="ignore"):
        ref = A.astype(np.float64) @ B.astype(np.float64)
    assert np.array_equal(np.isnan(C), np.isnan(ref))
    assert np.array_equal(np.isinf(C), np.isinf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(C[finite], ref[finite], rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-3 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_aliasing_an_input(dtype, rng):
    A = rng.standard_normal((64, 64)).astype(dtype)
    B = rng.standard_normal((64, 64)).astype(dtype)
    expect = parml.matmul(A, B)
    A2 = A.copy()
    res = parml.matmul(A2, B, out=A2)
    assert res is A2
    np.testing.assert_array_equal(A2, expect)
    B2 = B.copy()
    parml.matmul(A, B2, out=B2)
    np.testing.assert_array_equal(B2, expect)
    A3 = A.copy()
    parml.matmul(A3, A3, out=A3)
    np.testing.assert_array_equal(A3, parml.matmul(A, A))


def _view(buf, start, shape, steps, flip):
    """A strided view of the flat buffer from `start`: every steps[0]-th row and steps[1]-th
    column of a block, reversed along the axes in flip (negative strides)."""
    r, c = shape[0] * steps[0], shape[1] * steps[1]
    v = buf[start:start + r * c].reshape(r, c)[::steps[0], ::steps[1]]
    if flip & 1:
        v = v[::-1]
    if flip & 2:
        v = v[:, ::-1]
    return v


@pytest.mark.parametrize("dtype", DTYPES)
@given(m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 40),
       starts=st.tuples(*[st.integers(0, 400)] * 3),
       steps=st.tuples(*[st.tuples(st.integers(1, 2), st.integers(1, 2))] * 2),
       flips=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_out_overlapping_inputs_in_one_buffer(dtype, m, k, n, starts, steps, flips):
    """A, B and out cut from one buffer (out contiguous, the inputs strided, reversed, overlapping
    it anywhere or nowhere): the result is the product of the inputs as they were, whichever path
    matmul takes (the kernel refuses an overlapping out and a temporary takes the product)."""
    buf = np.arange(7000, dtype=dtype) % 7 - 3
    A = _view(buf, starts[0], (m, k), steps[0], flips[0])
    B = _view(buf, starts[1], (k, n), steps[1], flips[1])
    out = buf[starts[2]:starts[2] + m * n].reshape(m, n)
    expect = A.astype(np.float64) @ B.astype(np.float64)
    # the kernel refuses exactly the outs whose bounds meet an input's (numpy's bounds test);
    # one it accepts does not touch the inputs, so the product below is unchanged
    bounds_meet = np.may_share_memory(out, A) or np.may_share_memory(out, B)
    gemm = _gemm.gemm_f64 if dtype == np.float64 else _gemm.gemm_f32
    assert gemm(A, B, out, 1, _isa.kernel_set_id(), 1, False) == int(bounds_meet)
    res = parml.matmul(A, B, out=out)
    assert res is out
    np.testing.assert_array_equal(out, expect.astype(dtype))


def test_empty_and_k0():
    for dt in DTYPES:
        assert parml.matmul(np.ones((0, 5), dt), np.ones((5, 4), dt)).shape == (0, 4)
        assert parml.matmul(np.ones((3, 5), dt), np.ones((5, 0), dt)).shape == (3, 0)
        C = parml.matmul(np.ones((3, 0), dt), np.ones((0, 4), dt))
        assert C.shape == (3, 4) and np.all(C == 0) and C.dtype == dt


def test_dtype_promotion_follows_numpy(rng):
    f32 = rng.standard_normal((5, 6)).astype(np.float32)
    f64 = rng.standard_normal((6, 4))
    i8 = rng.integers(-5, 5, (6, 4)).astype(np.int8)
    i64 = rng.integers(-5, 5, (6, 4))
    assert parml.matmul(f32, f64).dtype == np.float64
    assert parml.matmul(f32, i8).dtype == np.float32
    assert parml.matmul(f32, i64).dtype == np.float64
    assert parml.matmul(f32.tolist(), f64.tolist()).dtype == np.float64   # lists are arrays
    assert_product(parml.matmul(f32, i8), f32, i8.astype(np.float32))
    assert_product(parml.matmul(f32, i64), f32.astype(np.float64), i64.astype(np.float64))


@pytest.mark.parametrize("a,b,exc,msg", [
    (np.ones(3), np.ones((3, 2)), ValueError, "A must be 2-D"),
    (np.ones((2, 3)), np.ones((3, 2, 1)), ValueError, "B must be 2-D"),
    (np.ones((2, 3)), np.ones((4, 2)), ValueError, "inner dimensions differ"),
    (np.ones((2, 3), complex), np.ones((3, 2)), TypeError, "complex"),
    (np.ones((2, 3), object), np.ones((3, 2)), TypeError, "object"),
    (np.array([["a", "b"]]), np.ones((2, 2)), TypeError, "not a real numeric"),
    (np.ones((2, 3), np.int64), np.ones((3, 2), np.int64), TypeError, "int64"),
    (np.ones((2, 3), bool), np.ones((3, 2), bool), TypeError, "float32 or float64"),
    (np.ones((2, 3), np.float16), np.ones((3, 2), np.float16), TypeError, "float16"),
    (None, np.ones((3, 2)), TypeError, "None"),
])
def test_bad_input(a, b, exc, msg):
    with pytest.raises(exc, match=msg):
        parml.matmul(a, b)


def test_bad_out_and_threads():
    A, B = np.ones((4, 3)), np.ones((3, 5))
    with pytest.raises(ValueError, match="out has shape"):
        parml.matmul(A, B, out=np.empty((5, 4)))
    with pytest.raises(TypeError, match="out has dtype"):
        parml.matmul(A, B, out=np.empty((4, 5), np.float32))
    ro = np.empty((4, 5))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        parml.matmul(A, B, out=ro)
    with pytest.raises(ValueError, match="C-contiguous"):
        parml.matmul(A, B, out=np.empty((4, 5), order="F"))
    with pytest.raises(TypeError, match="numpy array"):
        parml.matmul(A, B, out=[[0.0] * 5] * 4)
    with pytest.raises(ValueError, match="n_threads=0"):
        parml.matmul(A, B, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        parml.matmul(A, B, n_threads=1.5)


def _unaligned(M):
    """A copy of M whose data starts one byte past an aligned address."""
    raw = np.zeros(M.nbytes + 1, dtype=np.uint8)
    U = np.frombuffer(raw.data, dtype=M.dtype, count=M.size, offset=1).reshape(M.shape)
    U[...] = M
    assert not U.flags.aligned
    return U


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7, 3), (64, 64, 64), (70, 90, 40)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_operands_outside_the_fast_path(dtype, shape, n_threads, rng):
    """matmul runs a one-thread product of plain ndarrays in Cython and hands everything else
    to its general path: byte-swapped, unaligned, subclassed or strided operands and outs that
    are not C-contiguous, of another dtype or aliasing an input. Each gives numpy's product
    (or the error an out of the wrong kind gets)."""
    m, k, n = shape
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    want = parml.matmul(A, B, n_threads=n_threads)
    assert type(want) is np.ndarray and want.dtype == dtype
    assert_product(want, A, B)
    other = ">" if np.little_endian else "<"
    cases = [(A.astype(A.dtype.newbyteorder(other)), B), (A, B.astype(B.dtype.newbyteorder(other))),
             (_unaligned(A), B), (A, _unaligned(B)), (A.view(_Sub), B), (A, B.view(_Sub)),
             (np.repeat(A, 2, axis=1)[:, ::2], B), (np.asfortranarray(A), np.asfortranarray(B))]
    for a, b in cases:
        got = parml.matmul(a, b, n_threads=n_threads)
        assert np.array_equal(got, want), (a.dtype, a.flags.aligned, type(a), a.strides)
    out = np.empty((m, n), dtype)
    assert parml.matmul(A, B, out=out, n_threads=n_threads) is out
    assert np.array_equal(out, want)
    with pytest.raises(ValueError, match="C-contiguous"):
        parml.matmul(A, B, out=np.empty((n, m), dtype).T, n_threads=n_threads)
    with pytest.raises((TypeError, ValueError), match="out"):
        wrong = np.float64 if dtype == np.float32 else np.float32
        parml.matmul(A, B, out=np.empty((m, n), wrong), n_threads=n_threads)
    if m == k == n:   # out aliasing A: the product goes through a temporary
        Ac = A.copy()
        assert parml.matmul(Ac, B, out=Ac, n_threads=n_threads) is Ac
        assert np.array_equal(Ac, want)


def test_read_only_inputs_are_fine(rng):
    A = rng.standard_normal((30, 20))
    B = rng.standard_normal((20, 10))
    A.flags.writeable = False
    B.flags.writeable = False
    assert_product(parml.matmul(A, B), A, B)


def test_unknown_or_unavailable_kernel_set():
    for name in ("sse9", "AVX2", "") + tuple(n for n in _isa.NAMES if n not in KERNELS):
        with pytest.raises(ValueError, match="not available here"):
            with _isa.use(name):
                pass
