"""The native grower driven from outside (_grower.Grower, what parml.dask uses) against the
local one-call grower (grow_tree_native): fed with histograms of the same rows, it must make
the same tree, node for node and bit for bit, whether or not the source prepares histograms it
turns out not to need. And bad calls get clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parml._core.grower import make_bins
from parml._kernels import _grower as KG
from parml._kernels import _histogram as K

NODE_FIELDS = ("feature", "bin", "left", "right", "depth", "missing_left", "value", "gain",
               "count", "lo", "hi", "node_cat", "cats")


def case(seed, n, d, nan=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, 0] = np.round(X[:, 0])  # few distinct values: ties and small bins
    X[rng.random((n, d)) < nan] = np.nan
    data = make_bins(X, 255)
    g = rng.standard_normal(n).astype(np.float32)
    h = rng.uniform(0.01, 1, n).astype(np.float32)
    return data, g, h


def goes_left(data, rows, s):
    """Which of rows go left under split record s (written here from the split's meaning)."""
    b = data.B[s["feature"], rows]
    miss = b == data.missing_bin
    return np.where(miss, s["missing_left"], b <= s["bin"])


def grow_from_outside(data, g, h, hconst, eager, **kw):
    """A source of histograms in Python: each node's rows kept here, the smaller child's
    histogram built with the kernel. eager: also build histograms the grower does not need."""
    def hist(rows):
        return K.build_histogram(data.B, rows, g, h, data.nbins, "features", 1, checked=True,
                                 gather=True)
    n = data.B.shape[1]
    rows_of = {0: np.arange(n, dtype=np.int32)}
    t = KG.Grower(hist(rows_of[0]), data.nb, data.missing_bin, hconst=hconst, **kw)
    while (node := t.next()) >= 0:
        ahead = t.best(3)
        assert ahead[0] == node
        s = t.split_of(node)
        rows = rows_of.pop(node)
        left = goes_left(data, rows, s)
        lr, rr = rows[left], rows[~left]
        assert (len(lr), len(rr)) == (s["nl"], s["nr"])
        small = lr if s["small_left"] else rr
        want = t.wants_hist(node)
        li, ri = t.split(node, hist(small) if want or eager else None)
        rows_of[li], rows_of[ri] = lr, rr
    return t.nodes()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 3000), d=st.integers(1, 6),
       max_leaves=st.integers(2, 64), max_depth=st.one_of(st.none(), st.integers(1, 6)),
       min_leaf=st.integers(1, 40), const_h=st.booleans(), eager=st.booleans(),
       n_threads=st.sampled_from([1, 2]))
def test_driven_from_outside_equals_local(seed, n, d, max_leaves, max_depth, min_leaf, const_h,
                                          eager, n_threads):
    data, g, h = case(seed, n, d)
    hh, hc = (None, 1.0) if const_h else (h, 0.0)
    kw = dict(max_leaves=max_leaves, max_depth=max_depth, min_leaf=min_leaf, l2=0.5,
              min_hessian=1e-3, n_threads=n_threads)
    got = grow_from_outside(data, g, hh, hc, eager, **kw)
    want, _ = KG.grow_tree_native(data.B, data.nb, data.missing_bin, data.nbins, g, hh, hc, None,
                                 max_leaves, max_depth, min_leaf, 0.5, 1e-3, "features",
                                 n_threads, None)
    for f in NODE_FIELDS:
        np.testing.assert_array_equal(got[f], want[f], err_msg=f)


def test_best_lists_candidates_in_gain_order():
    data, g, h = case(1, 4000, 5)
    t = KG.Grower(K.build_histogram(data.B, None, g, h, data.nbins), data.nb, data.missing_bin,
                 max_leaves=64, max_depth=None, min_leaf=5, l2=0.0, min_hessian=1e-3)
    rows_of = {0: np.arange(4000, dtype=np.int32)}
    for _ in range(6):  # a few splits, so that several candidates wait
        node = t.next()
        s = t.split_of(node)
        rows = rows_of.pop(node)
        left = goes_left(data, rows, s)
        small = rows[left] if s["small_left"] else rows[~left]
        li, ri = t.split(node, K.build_histogram(data.B, small, g, h, data.nbins, gather=True,
                                                 checked=True))
        rows_of[li], rows_of[ri] = rows[left], rows[~left]
    ahead = t.best(100)
    assert len(ahead) >= 3 and ahead[0] == t.next()
    keys = [(-t.split_of(int(j))["gain"], int(j)) for j in ahead]
    assert keys == sorted(keys)
    assert list(t.best(2)) == list(ahead[:2])


def grower(**kw):
    data, g, h = case(2, 500, 3)
    root = K.build_histogram(data.B, None, g, h, data.nbins)
    args = dict(max_leaves=8, max_depth=None, min_leaf=5, l2=0.0, min_hessian=1e-3)
    args.update(kw)
    return data, g, h, root, KG.Grower(root, data.nb, data.missing_bin, **args)


def test_bad_calls_are_refused():
    data, g, h, root, t = grower()
    node = t.next()
    assert node == 0
    with pytest.raises(ValueError, match="needs its smaller child's histogram"):
        t.split(0, None)
    with pytest.raises(ValueError, match="dtype mismatch"):
        t.split(0, root.astype([("g", "<f4"), ("h", "<f8"), ("count", "<u4"), ("pad", "<u4")]))
    with pytest.raises(ValueError, match="small must have shape"):
        t.split(0, root[:, :5].copy())
    with pytest.raises(ValueError, match="not a candidate"):
        t.split(7, root)
    with pytest.raises(ValueError, match="not a candidate"):
        t.split_of(-1)
    with pytest.raises(ValueError, match="already growing"):
        t.__init__(root, data.nb, data.missing_bin, max_leaves=8, max_depth=None, min_leaf=5,
                   l2=0.0, min_hessian=1e-3)
    nodes = t.nodes()  # ends the growth: the root stays a leaf
    assert len(nodes["value"]) == 1 and t.next() == -1 and len(t.best(5)) == 0
    with pytest.raises(ValueError, match="final"):
        t.wants_hist(0)


def test_split_must_follow_best_first():
    data, g, h, root, t = grower()
    rows = np.arange(500, dtype=np.int32)
    s = t.split_of(0)
    left = goes_left(data, rows, s)
    small = rows[left] if s["small_left"] else rows[~left]
    t.split(0, K.build_histogram(data.B, small, g, h, data.nbins, gather=True, checked=True))
    ahead = t.best(2)
    assert len(ahead) == 2   # both children of the root are candidates
    with pytest.raises(ValueError, match="not the one best-first splits next"):
        t.split(int(ahead[1]), root)


@pytest.mark.parametrize("kw,match", [
    (dict(max_leaves=1), "max_leaves"), (dict(min_leaf=0), "min_leaf"),
    (dict(hconst=-1.0), "hconst")])
def test_bad_parameters_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        grower(**kw)


def test_bad_arrays_are_refused():
    data, g, h, root, _ = grower()
    kw = dict(max_leaves=8, max_depth=None, min_leaf=5, l2=0.0, min_hessian=1e-3)
    with pytest.raises(ValueError, match="dtype mismatch"):
        KG.Grower(root["g"].copy(), data.nb, data.missing_bin, **kw)
    with pytest.raises(ValueError, match="dtype mismatch"):
        KG.Grower(root, data.nb.astype(np.int64), data.missing_bin, **kw)
    with pytest.raises(ValueError, match="nb needs one entry per feature"):
        KG.Grower(root, data.nb[:1].copy(), data.missing_bin, **kw)
    with pytest.raises(ValueError, match="missing_bin"):
        KG.Grower(root, data.nb, 300, **kw)
    with pytest.raises(ValueError, match="is_cat"):
        KG.Grower(root, data.nb, data.missing_bin, is_cat=np.ones(2, np.uint8), **kw)
    with pytest.raises(ValueError, match="not bool"):
        KG.Grower(root, data.nb, data.missing_bin, is_cat=np.ones(3, bool), **kw)
