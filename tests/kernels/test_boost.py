"""The boosting loop's native per-row kernels against numpy: gradients/hessians of each loss,
and the raw-score update from leaf spans; identical results for every thread count."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parml._kernels import _boost as B

THREADS = [1, 2, 4]
SMALL = 65536  # documented: from this many rows the kernels run in parallel


def ref_gradients(loss, raw, y, sw):
    w = np.ones(len(y)) if sw is None else sw
    if loss == "squared_error":
        return ((raw[:, 0] - y) * w)[None], w[None]
    if loss == "logistic":
        p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
        return ((p - y) * w)[None], (p * (1 - p) * w)[None]
    z = raw - raw.max(axis=1, keepdims=True)
    P = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    Y = np.eye(raw.shape[1])[y.astype(int)]
    return ((P - Y) * w[:, None]).T, (P * (1 - P) * w[:, None]).T


def inputs(rng, loss, n, K, weighted):
    raw = rng.standard_normal((n, K)) * 3
    if loss == "squared_error":
        y = rng.standard_normal(n)
    elif loss == "logistic":
        y = (rng.random(n) < 0.4).astype(np.float64)
    else:
        y = rng.integers(0, K, n).astype(np.float64)
    return raw, y, (rng.random(n) * 2 if weighted else None)


@pytest.mark.parametrize("loss,K", [("squared_error", 1), ("logistic", 1), ("softmax", 3),
                                    ("softmax", 2)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [1, 777, SMALL + 4321])
@pytest.mark.parametrize("n_threads", THREADS)
def test_gradients_match_numpy(loss, K, weighted, n, n_threads, rng):
    raw, y, sw = inputs(rng, loss, n, K, weighted)
    g = np.full((K, n), np.nan, np.float32)
    h = np.full((K, n), np.nan, np.float32)
    B.gradients(loss, raw, y, sw, g, h, n_threads)
    rg, rh = ref_gradients(loss, raw, y, sw)
    np.testing.assert_allclose(g, rg, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, rh, rtol=1e-6, atol=1e-7)
    g1 = np.empty_like(g)
    h1 = np.empty_like(h)
    B.gradients(loss, raw, y, sw, g1, h1, 1)
    assert np.array_equal(g, g1) and np.array_equal(h, h1)  # bitwise across threads


def test_squared_error_constant_hessian_needs_no_h(rng):
    raw, y, _ = inputs(rng, "squared_error", 100, 1, False)
    g = np.empty((1, 100), np.float32)
    B.gradients("squared_error", raw, y, None, g, None)
    np.testing.assert_allclose(g[0], raw[:, 0] - y, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="h is needed"):
        B.gradients("logistic", raw, (y > 0).astype(float), None, g, None)
    with pytest.raises(ValueError, match="h is needed"):
        B.gradients("squared_error", raw, y, np.ones(100), g, None)


def test_softmax_extreme_scores_stay_finite():
    raw = np.array([[1000.0, -1000.0, 0.0], [-800.0, -800.0, -800.0]])
    y = np.array([1.0, 2.0])
    g = np.empty((3, 2), np.float32)
    h = np.empty((3, 2), np.float32)
    B.gradients("softmax", raw, y, None, g, h)
    assert np.isfinite(g).all() and np.isfinite(h).all()
    np.testing.assert_allclose(g[:, 0], [1, -1, 0], atol=1e-6)
    np.testing.assert_allclose(g[:, 1], [1 / 3, 1 / 3, -2 / 3], atol=1e-6)


@pytest.mark.parametrize("bad", ["loss", "raw1d", "ydtype", "gshape", "K2logistic", "readonly"])
def test_gradients_bad_input(bad, rng):
    n = 10
    raw, y, g, h, loss = np.zeros((n, 1)), np.zeros(n), np.empty((1, n), np.float32), \
        np.empty((1, n), np.float32), "logistic"
    if bad == "loss":
        loss = "hinge"
    elif bad == "raw1d":
        raw = np.zeros(n)
    elif bad == "ydtype":
        y = np.zeros(n, np.float32)
    elif bad == "gshape":
        g = np.empty((2, n), np.float32)
    elif bad == "K2logistic":
        raw, g, h = np.zeros((n, 2)), np.empty((2, n), np.float32), np.empty((2, n), np.float32)
    else:
        g.flags.writeable = False
    with pytest.raises(ValueError):
        B.gradients(loss, raw, y, None, g, h)


def spans_case(rng, n, m, L):
    rows = rng.permutation(n)[:m].astype(np.int32)
    cuts = np.sort(rng.choice(np.arange(1, m), size=min(L - 1, max(m - 1, 0)), replace=False)) \
        if m > 1 else np.zeros(0, int)
    bounds = np.concatenate([[0], cuts, [m]]).astype(np.int64)
    lo, hi = bounds[:-1].copy(), bounds[1:].copy()
    perm = rng.permutation(len(lo))  # leaves in any order
    return rows, lo[perm], hi[perm], rng.standard_normal(len(lo))


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("n,m,L,K", [(50, 50, 5, 1), (1000, 600, 31, 3),
                                     (SMALL + 100, SMALL + 50, 31, 2)])
def test_add_leaf_values_matches_numpy(n_threads, n, m, L, K, rng):
    rows, lo, hi, val = spans_case(rng, n, m, L)
    raw = rng.standard_normal((n, K))
    want = raw.copy()
    k = K - 1
    for a, b, v in zip(lo, hi, val):
        want[rows[a:b], k] += v
    got = raw.copy()
    B.add_leaf_values(got, k, rows, lo, hi, val, n_threads)
    assert np.array_equal(got, want)


@given(n=st.integers(1, 80), L=st.integers(1, 10), seed=st.integers(0, 2**31))
def test_add_leaf_values_hypothesis(n, L, seed):
    rng = np.random.default_rng(seed)
    rows, lo, hi, val = spans_case(rng, n, int(rng.integers(0, n + 1)), L)
    raw = np.zeros((n, 1))
    B.add_leaf_values(raw, 0, rows, lo, hi, val)
    want = np.zeros(n)
    for a, b, v in zip(lo, hi, val):
        want[rows[a:b]] += v
    assert np.array_equal(raw[:, 0], want)


def test_add_leaf_values_refuses_overlap_and_duplicates():
    raw = np.zeros((10, 1))
    rows = np.arange(10, dtype=np.int32)
    one = np.ones(2)
    with pytest.raises(ValueError, match="disjoint"):
        B.add_leaf_values(raw, 0, rows, np.array([0, 3], np.int64), np.array([5, 8], np.int64), one)
    with pytest.raises(ValueError, match="disjoint"):
        B.add_leaf_values(raw, 0, rows, np.array([0, 3], np.int64), np.array([3, 11], np.int64), one)
    dup = np.array([1, 2, 3, 1, 5, 6], np.int32)
    with pytest.raises(ValueError, match="more than one"):
        B.add_leaf_values(raw, 0, dup, np.array([0, 3], np.int64), np.array([3, 6], np.int64), one)
    with pytest.raises(ValueError, match="rows out of range"):
        B.add_leaf_values(raw, 0, np.array([10], np.int32), np.array([0], np.int64),
                          np.array([1], np.int64), np.ones(1))
    with pytest.raises(ValueError, match="k out of range"):
        B.add_leaf_values(raw, 1, rows, np.array([0], np.int64), np.array([1], np.int64), np.ones(1))
