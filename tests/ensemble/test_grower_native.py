"""The native best-first grower (hist_grow.h) against the Python driver over the same kernels
(grower_reference.py): bitwise the same tree and leaves, for every thread count."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grower_reference import grow_tree_reference
from parml._kernels import _grower as KG
from parml._core.grower import grow_tree, make_bins

FIELDS = ("feature", "bin", "threshold", "missing_left", "left", "right", "value", "count",
          "gain", "depth")


def assert_same(a, la, b, lb):
    for k in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)),
                                      err_msg=k)
    assert la.keys() == lb.keys()
    for j in la:
        np.testing.assert_array_equal(la[j], lb[j])


def case(rng, n, d, nan, max_bins=255):
    X = rng.standard_normal((n, d))
    X[:, 0] = np.round(X[:, 0])  # a few distinct values: ties and small bins
    X[rng.random((n, d)) < nan] = np.nan
    data = make_bins(X, max_bins)
    g = rng.standard_normal(n).astype(np.float32)
    h = rng.uniform(0.01, 1, n).astype(np.float32)
    return data, g, h


@pytest.mark.parametrize("n,d,nan", [(3000, 4, 0.2), (70_000, 9, 0.05)])
@pytest.mark.parametrize("const_h", [False, True])
@pytest.mark.parametrize("kw", [{}, {"max_depth": 3}, {"max_leaf_nodes": 200, "min_samples_leaf": 3},
                                {"l2": 1.5, "min_hessian": 0.5}, {"strategy": "samples"}])
@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_native_equals_reference(n, d, nan, const_h, kw, n_threads, rng):
    data, g, h = case(rng, n, d, nan)
    hh, hc = (None, 1.0) if const_h else (h, 0.0)
    a, la = grow_tree(data, g, hh, hconst=hc, n_threads=n_threads, **kw)
    b, lb = grow_tree_reference(data, g, hh, hconst=hc, n_threads=1, **kw)
    assert_same(a, la, b, lb)
    # leaf spans partition the row buffer, which is a permutation of the rows
    spans = sorted(a.leaf_spans.values())
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(p[1] == q[0] for p, q in zip(spans, spans[1:]))
    assert np.array_equal(np.sort(a.rows_buffer), np.arange(n))


def test_native_subset_rows_leave_callers_array_alone(rng):
    data, g, h = case(rng, 5000, 5, 0.1)
    rows = np.sort(rng.choice(5000, 3000, replace=False)).astype(np.int32)
    keep = rows.copy()
    a, la = grow_tree(data, g, h, rows=rows)
    b, lb = grow_tree_reference(data, g, h, rows=rows.copy())
    assert_same(a, la, b, lb)
    assert np.array_equal(rows, keep)
    assert np.array_equal(np.sort(np.concatenate(list(la.values()))), keep)


@settings(max_examples=40)
@given(n=st.integers(1, 200), d=st.integers(1, 5), leaves=st.integers(2, 40),
       min_leaf=st.integers(1, 30), depth=st.one_of(st.none(), st.integers(1, 6)),
       nan=st.sampled_from([0.0, 0.3]), max_bins=st.sampled_from([2, 7, 255]),
       const_h=st.booleans(), seed=st.integers(0, 2**31))
def test_native_equals_reference_hypothesis(n, d, leaves, min_leaf, depth, nan, max_bins,
                                            const_h, seed):
    rng = np.random.default_rng(seed)
    data, g, h = case(rng, n, d, nan, max_bins)
    hh, hc = (None, 1.0) if const_h else (h, 0.0)
    kw = dict(max_leaf_nodes=leaves, min_samples_leaf=min_leaf, max_depth=depth, hconst=hc)
    a, la = grow_tree(data, g, hh, **kw)
    b, lb = grow_tree_reference(data, g, hh, **kw)
    assert_same(a, la, b, lb)


def test_native_bad_input(rng):
    data, g, h = case(rng, 100, 3, 0.0)
    args = (data.B, data.nb, data.missing_bin, data.nbins)
    with pytest.raises(ValueError, match="g"):
        KG.grow_tree_native(*args, g[:-1], h, 0.0, None, 31, None, 20, 0.0, 1e-3)
    with pytest.raises(ValueError, match="hconst"):
        KG.grow_tree_native(*args, g, None, 0.0, None, 31, None, 20, 0.0, 1e-3)
    with pytest.raises(ValueError, match="rows out of range"):
        KG.grow_tree_native(*args, g, h, 0.0, np.array([0, 100], np.int32), 31, None, 20, 0.0, 1e-3)
    with pytest.raises(ValueError, match="max_leaves"):
        KG.grow_tree_native(*args, g, h, 0.0, None, 1, None, 20, 0.0, 1e-3)
    with pytest.raises(ValueError, match="strategy"):
        KG.grow_tree_native(*args, g, h, 0.0, None, 31, None, 20, 0.0, 1e-3, "rows")
    ro = np.arange(100, dtype=np.int32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="rows"):
        KG.grow_tree_native(*args, g, h, 0.0, ro, 31, None, 20, 0.0, 1e-3)
