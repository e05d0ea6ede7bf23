"""How the kernel entry points of _histogram, _tree_build, _tree_predict, _boost and _mlp take
their arrays (typed memoryviews): a wrong dtype, dimension count or layout, a read-only output or
shapes that disagree are refused with ValueError or TypeError before any native code runs (never a
crash); optional arrays may be None; an output passed in is the array returned."""
import numpy as np
import pytest

from parml._kernels import _boost as BO
from parml._kernels import _grower as G
from parml._kernels import _histogram as H
from parml._kernels import _mlp as M
from parml._kernels import _tree_build as TB
from parml._kernels import _tree_predict as TP

BAD = (ValueError, TypeError)


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# ---- _tree_predict ------------------------------------------------------------------------------

def stump():
    """One 3-node tree on feature 0 (x <= 0.5 left), as the node arrays predict_forest takes."""
    return dict(feature=np.array([0, 0, 0], np.int32), threshold=np.array([0.5, 0.0, 0.0]),
                missing_left=np.zeros(3, np.uint8), left=np.array([1, -1, -1], np.int32),
                right=np.array([2, -1, -1], np.int32), value=np.array([0.0, 1.0, 2.0]),
                roots=np.array([0], np.int64), tree_output=np.array([0], np.int32))


def predict(X, f, **kw):
    return TP.predict_forest(X, f["feature"], f["threshold"], f["missing_left"], f["left"],
                             f["right"], f["value"], f["roots"], f["tree_output"], 1, **kw)


def test_predict_forest_arrays():
    f, X = stump(), np.array([[0.0], [1.0]])
    np.testing.assert_array_equal(predict(X, f), [[1.0], [2.0]])
    np.testing.assert_array_equal(predict(X.astype(np.float32), f), [[1.0], [2.0]])
    out = np.ones((2, 1))
    assert predict(X, f, out=out) is out                    # added to, and returned
    np.testing.assert_array_equal(out, [[2.0], [3.0]])
    wide = np.zeros((2, 3))
    wide[:, 0] = X[:, 0]
    np.testing.assert_array_equal(predict(wide[:, :1], f), [[1.0], [2.0]])  # strided rows
    assert predict(X, dict(f, value=f["value"][:, None].copy())).shape == (2, 1)  # (m, W)
    ro = {k: read_only(v) for k, v in f.items()}             # memory-mapped models are read-only
    np.testing.assert_array_equal(predict(read_only(X), ro), [[1.0], [2.0]])
    for key, bad in [("feature", f["feature"].astype(np.int64)),
                     ("threshold", f["threshold"].astype(np.float32)),
                     ("missing_left", f["missing_left"].astype(bool).astype(np.int8)),
                     ("left", f["left"][:2].copy()), ("right", np.zeros((3, 1), np.int32)),
                     ("value", f["value"][:2].copy()), ("value", np.zeros((3, 2))),
                     ("value", f["value"].astype(np.float32)),
                     ("roots", f["roots"].astype(np.int32)),
                     ("tree_output", np.zeros(2, np.int32)),
                     ("threshold", np.zeros(6)[::2])]:
        for checked in (False, True):
            with pytest.raises(BAD):
                predict(X, dict(f, **{key: bad}), checked=checked)
    for bad_X in (X.astype(np.int64), np.asfortranarray(np.zeros((2, 2))), X[:, 0], X.tolist()):
        with pytest.raises(BAD):
            predict(bad_X, f)
    for bad_out in (read_only(out), np.zeros((2, 2)), np.zeros((2, 1), np.float32),
                    np.zeros((2, 2))[:, :1]):
        with pytest.raises(BAD):
            predict(X, f, out=bad_out)
    with pytest.raises(ValueError, match="value"):
        predict(X, dict(f, value=np.zeros(4)))
    with pytest.raises(ValueError, match="tree_output"):
        predict(X, dict(f, tree_output=np.zeros(2, np.int32)), checked=True)


def test_categorical_arrays_are_named():
    f = stump()
    good = (np.zeros(3, np.uint8), np.zeros((3, 8), np.uint32), np.zeros((1, 8), np.uint32))
    TP.check_categorical(good, 3, 1)
    for i, bad in [(0, np.zeros(3, np.int32)), (1, np.zeros((3, 8), np.int32)),
                   (2, np.zeros((1, 8), np.float64))]:
        cat = list(good)
        cat[i] = bad
        with pytest.raises(ValueError, match=("node_cat", "cats", "known")[i]):
            TP.check_categorical(tuple(cat), 3, 1)
        with pytest.raises(ValueError, match=("node_cat", "cats", "known")[i]):
            predict(np.zeros((2, 1)), f, categorical=tuple(cat))
    with pytest.raises(ValueError, match="categorical"):
        TP.check_categorical((good[0], good[1], np.zeros((2, 8), np.uint32)), 3, 1)


def test_packed_forest_is_bound_to_the_memory_it_was_packed_from():
    f = stump()
    keys = ("feature", "threshold", "missing_left", "left", "right")
    p = TP.pack_forest(*(f[k] for k in keys), f["roots"], 1, 1)
    assert p.source[0] is f["feature"] and p.nodes.dtype == TP.QNODE
    X = np.array([[0.0], [1.0], [0.2], [0.9], [np.nan]])
    np.testing.assert_array_equal(predict(X, f, packed=p), predict(X, f))
    # a view of the same memory is the same forest; an equal copy is not
    same = dict(f, feature=f["feature"][:])
    np.testing.assert_array_equal(predict(X, same, packed=p), predict(X, f))
    with pytest.raises(ValueError, match="another forest"):
        predict(X, dict(f, left=f["left"].copy()), packed=p)


# ---- _boost -----------------------------------------------------------------------------------

def test_boost_arrays():
    n, K = 5, 2
    raw, y = np.zeros((n, K)), np.array([0, 1, 1, 0, 1], np.float64)
    g, h = np.empty((K, n), np.float32), np.empty((K, n), np.float32)
    BO.gradients("softmax", raw, y, None, g, h)
    BO.gradients("softmax", raw, y, np.ones(n), g, h)
    with pytest.raises(ValueError, match="g and h"):
        BO.gradients("softmax", raw, y, None, g[:, :4].copy(), h)
    with pytest.raises(ValueError, match="y and sw"):
        BO.gradients("softmax", raw, y, np.ones(n + 1), g, h)
    for bad in (dict(raw=raw.T), dict(g=read_only(g)), dict(h=read_only(h)),
                dict(g=np.empty((K, n))), dict(y=y.astype(np.int64)), dict(raw=raw.tolist())):
        args = {**dict(raw=raw, y=y, g=g, h=h), **bad}
        with pytest.raises(BAD):
            BO.gradients("softmax", args["raw"], args["y"], None, args["g"], args["h"])
    rows = np.arange(n, dtype=np.int32)
    lo, hi, val = np.array([0, 2], np.int64), np.array([2, 5], np.int64), np.array([1.0, 2.0])
    assert BO.add_leaf_values(raw, 1, rows, lo, hi, val) is raw
    np.testing.assert_array_equal(raw[:, 1], [1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="lo, hi and value"):
        BO.add_leaf_values(raw, 1, rows, lo, hi[:1].copy(), val)
    for bad in (dict(raw=read_only(raw)), dict(rows=rows.astype(np.int64)),
                dict(lo=lo.astype(np.int32)), dict(value=val.astype(np.float32)),
                dict(raw=np.asfortranarray(raw))):
        a = {**dict(raw=raw, rows=rows, lo=lo, hi=hi, value=val), **bad}
        with pytest.raises(BAD):
            BO.add_leaf_values(a["raw"], 1, a["rows"], a["lo"], a["hi"], a["value"])


# ---- _tree_build ------------------------------------------------------------------------------

def small_build():
    rng = np.random.default_rng(1)
    B = rng.integers(0, 4, (2, 60)).astype(np.uint8)
    y = (B[0] > 1).astype(np.int32)
    nb = np.array([4, 4], np.int32)
    return B, nb, y


def test_tree_build_arrays():
    B, nb, y = small_build()
    seeds = np.array([3, 4], np.uint64)
    trees, inbag = TB.build_trees(B, nb, 4, y, 2, "gini", None, seeds, bootstrap=True,
                                  n_boot=60, want_inbag=True)
    assert inbag.shape == (2, 8) and trees[0]["value"].shape[1] == 2
    reg, _ = TB.build_trees(B, nb, 4, y.astype(np.float64), 1, "squared_error", np.ones(60),
                            seeds, cdf=np.cumsum(np.ones(60)), bootstrap=True, n_boot=60)
    assert reg[0]["value"].shape[1] == 1
    np.testing.assert_array_equal(TB.inbag_bits(seeds, 60, 60), inbag)
    with pytest.raises(ValueError, match="y must be int32"):
        TB.build_trees(B, nb, 4, y.astype(np.int64), 2, "gini", None, seeds)
    with pytest.raises(ValueError, match="y must be float64"):
        TB.build_trees(B, nb, 4, y, 1, "squared_error", None, seeds)
    with pytest.raises(ValueError, match="cdf"):
        TB.build_trees(B, nb, 4, y, 2, "gini", None, seeds, cdf=np.ones(59))
    with pytest.raises(BAD):
        TB.build_trees(B, nb, 4, y, 2, "gini", None, seeds.astype(np.int64))
    with pytest.raises(BAD):
        TB.inbag_bits(seeds, 60, 60, cdf=np.ones(60, np.float32))
    flat = {k: np.concatenate([t[k] for t in trees])
            for k in ("feature", "bin", "left", "right", "missing_left", "value")}
    flat["roots"] = np.array([0, len(trees[0]["left"])], np.int64)
    total, count = TB.oob_sums(B, 4, flat, inbag, 2)
    assert total.shape == (60, 2) and count.shape == (60,)
    for key, bad in [("bin", flat["bin"].astype(np.int64)), ("roots", np.array([0, 3], np.int32)),
                     ("value", flat["value"][:, 0].copy()),
                     ("missing_left", flat["missing_left"].astype(np.int32))]:
        with pytest.raises(ValueError, match=key):
            TB.oob_sums(B, 4, dict(flat, **{key: bad}), inbag, 2)
    with pytest.raises(ValueError, match="node arrays"):
        TB.oob_sums(B, 4, dict(flat, bin=flat["bin"][:-1].copy()), inbag, 2)


# ---- _histogram -------------------------------------------------------------------------------

def test_histogram_outputs_are_returned_and_shapes_named():
    B = np.zeros((2, 6), np.uint8)
    g = np.ones(6, np.float32)
    out = np.empty((2, 4), H.HBIN)
    assert H.build_histogram(B, None, g, None, 4, out=out) is out
    assert out["count"][:, 0].tolist() == [6, 6]
    assert H.subtract(out, out, out=out) is out and not out["count"].any()
    with pytest.raises(ValueError, match="out"):
        H.build_histogram(B, None, g, None, 4, out=np.empty((2, 5), H.HBIN))
    with pytest.raises(ValueError, match="child"):
        H.subtract(out, np.zeros((2, 3), H.HBIN))
    with pytest.raises(ValueError, match="nb"):
        H.find_splits(out, np.array([2], np.int32), 3, 0.0, 1.0, 6)
    with pytest.raises(ValueError, match="is_cat"):
        H.find_splits(out, np.array([2, 2], np.int32), 3, 0.0, 1.0, 6, is_cat=np.ones(2, bool))
    rows = np.arange(6, dtype=np.int32)
    nodes, got = G.grow_tree_native(B, np.array([3, 3], np.int32), 3, 4, g, None, 1.0, rows, 4,
                                    None, 1, 0.0, 1e-3)
    assert got is rows
    with pytest.raises(ValueError, match="rows"):
        G.grow_tree_native(B, np.array([3, 3], np.int32), 3, 4, g, None, 1.0,
                           rows.astype(np.int64), 4, None, 1, 0.0, 1e-3)


# ---- _mlp -------------------------------------------------------------------------------------

def test_mlp_lists_are_checked_and_named():
    rng = np.random.default_rng(2)
    coefs = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    intercepts = [np.zeros(4), np.zeros(2)]
    X, Y = rng.standard_normal((8, 3)), np.eye(2)[rng.integers(0, 2, 8)]
    out = np.empty((8, 2))
    assert M.forward(coefs, intercepts, X, "relu", "softmax", out=out) is out
    with pytest.raises(ValueError, match=r"coefs\[1\]"):
        M.forward([coefs[0], coefs[1].astype(np.float32)], intercepts, X)
    with pytest.raises(ValueError, match=r"intercepts\[0\]"):
        M.forward(coefs, [np.zeros(5), intercepts[1]], X)
    moments = [[np.zeros_like(c) for c in coefs], [np.zeros_like(b) for b in intercepts],
               [np.zeros_like(c) for c in coefs], [np.zeros_like(b) for b in intercepts]]
    moments[2][1] = read_only(moments[2][1])
    with pytest.raises(ValueError, match=r"moments\[2\]\[1\]"):
        M.train_epoch([c.copy() for c in coefs], [b.copy() for b in intercepts], X, Y, None,
                      None, 4, optimizer="adam", moments=moments)
    with pytest.raises(ValueError, match="Y"):
        M.train_epoch([c.copy() for c in coefs], [b.copy() for b in intercepts], X, Y[:7].copy(),
                      None, None, 4, optimizer="none")
    # SGD reads only the first two moment lists: the others may be anything
    moments[2], moments[3] = None, None
    rc = M.train_epoch([c.copy() for c in coefs], [b.copy() for b in intercepts], X, Y, None,
                       np.arange(8, dtype=np.int64), 4, optimizer="sgd", moments=moments)
    assert rc[0] == 0 and rc[2] == 8
