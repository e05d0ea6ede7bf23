"""parml.add against numpy: dtypes, layouts, broadcasting, in-place, threads, bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import parml
from parml import ops

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", [1, 2, 4])
@pytest.mark.parametrize("shape", [(1,), (7,), (1000, 37), (300_001,), (600, 700), (3, 4, 5)])
def test_add_matches_numpy(dtype, n_threads, shape, rng, monkeypatch):
    monkeypatch.setattr(ops, "ADD_PARALLEL_MIN_SIZE", 0)    # exercise the parallel path
    A = rng.standard_normal(shape).astype(dtype)
    B = rng.standard_normal(shape).astype(dtype)
    C = parml.add(A, B, n_threads=n_threads)
    assert C.dtype == dtype and C.shape == shape
    np.testing.assert_array_equal(C, A + B)   # one rounding, same as numpy: exact


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_layouts_and_broadcast(dtype, rng):
    A = rng.standard_normal((50, 40)).astype(dtype)
    B = rng.standard_normal((50, 40)).astype(dtype)
    cases = [
        (np.asfortranarray(A), np.asfortranarray(B)),
        (A, np.asfortranarray(B)),
        (A[::2, ::3], B[::2, ::3]),
        (A[::-1], B),
        (A.T, B.T),
        (A, B[0]),            # row vector broadcast (bias add)
        (A, B[:, :1]),        # column broadcast
        (A, dtype(2.5)),      # scalar
        (A[0], B[:, 0][:, None]),
    ]
    for a, b in cases:
        np.testing.assert_array_equal(parml.add(a, b, n_threads=2), np.add(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_in_place_and_out(dtype, rng):
    A = rng.standard_normal((300, 200)).astype(dtype)
    B = rng.standard_normal((300, 200)).astype(dtype)
    expect = A + B
    A2 = A.copy()
    assert parml.add(A2, B, out=A2) is A2
    np.testing.assert_array_equal(A2, expect)
    out = np.full((300, 200), np.nan, dtype=dtype)
    parml.add(A, B, out=out)
    np.testing.assert_array_equal(out, expect)
    # partial overlap: out is a shifted view of A
    buf = np.concatenate([A.ravel(), np.zeros(1, dtype)])
    a_view = buf[:-1].reshape(300, 200)
    o_view = buf[1:].reshape(300, 200)
    parml.add(a_view, B, out=o_view)
    np.testing.assert_array_equal(o_view, expect)
    # strided out
    big = np.zeros((600, 200), dtype)
    parml.add(A, B, out=big[::2])
    np.testing.assert_array_equal(big[::2], expect)


@given(m=st.integers(0, 70), n=st.integers(0, 70), dtype=st.sampled_from(DTYPES),
       t=st.booleans(), bcast=st.sampled_from(["none", "row", "col"]), seed=st.integers(0, 999))
def test_add_hypothesis(m, n, dtype, t, bcast, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, m) if t else (m, n)).astype(dtype)
    A = A.T if t else A
    B = {"none": rng.standard_normal((m, n)), "row": rng.standard_normal(n),
         "col": rng.standard_normal((m, 1))}[bcast].astype(dtype)
    np.testing.assert_array_equal(parml.add(A, B, n_threads=2), A + B)


def test_add_threads_identical(rng, monkeypatch):
    monkeypatch.setattr(ops, "ADD_PARALLEL_MIN_SIZE", 0)
    A = rng.standard_normal((513, 257))
    B = rng.standard_normal((513, 257))
    r = [parml.add(A, B, n_threads=t) for t in (1, 2, 3, 4)]
    for x in r[1:]:
        assert np.array_equal(x, r[0])


def test_add_promotion():
    assert parml.add(np.ones(3, np.float32), np.ones(3)).dtype == np.float64
    assert parml.add(np.ones(3, np.float32), np.ones(3, np.int8)).dtype == np.float32


@pytest.mark.parametrize("a,b,exc,msg", [
    (np.ones((2, 3)), np.ones((3, 2)), ValueError, "do not broadcast"),
    (np.ones(3, complex), np.ones(3), TypeError, "complex"),
    (np.ones(3, object), np.ones(3), TypeError, "object"),
    (np.ones(3, np.int32), np.ones(3, np.int32), TypeError, "float32 or float64"),
    (np.ones((2, 3, 4))[:, ::2], np.ones((2, 2, 4)), ValueError, "at most 2-D"),
])
def test_add_bad_input(a, b, exc, msg):
    with pytest.raises(exc, match=msg):
        parml.add(a, b)


def test_add_bad_out():
    A = np.ones((4, 3))
    with pytest.raises(ValueError, match="out has shape"):
        parml.add(A, A, out=np.empty((3, 4)))
    with pytest.raises(TypeError, match="out has dtype"):
        parml.add(A, A, out=np.empty((4, 3), np.float32))
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        parml.add(A, A, out=ro)
    with pytest.raises(ValueError, match="n_threads=0"):
        parml.add(A, A, n_threads=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scalar", [1.5, 3, -2.25])
def test_python_scalar_promotes_like_numpy(dtype, scalar):
    """A Python int/float is weak in numpy's promotion (NEP 50): float32 + 1.5 stays float32."""
    a = np.arange(7, dtype=dtype)
    for got, want in ((parml.add(a, scalar), a + scalar), (parml.add(scalar, a), scalar + a)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert parml.add(a, np.float64(1.5)).dtype == (a + np.float64(1.5)).dtype
