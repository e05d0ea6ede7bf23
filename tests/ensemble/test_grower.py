"""The histogram tree grower and the forest predictor, against brute force and each other."""

import numpy as np
import pytest

from parml._kernels import _tree_predict as TP
from parml._core.grower import grow_tree, make_bins


def _predict(tree, X):
    a = tree.arrays()
    return TP.predict_forest(X, a["feature"], a["threshold"], a["missing_left"], a["left"],
                             a["right"], a["value"], np.array([0], np.int64),
                             np.array([0], np.int32), 1)[:, 0]


def _data(rng, n=3000, d=6, nan_frac=0.05):
    X = rng.standard_normal((n, d))
    X[:, 1] = np.round(X[:, 1] * 2)            # few distinct values
    y = X[:, 0] * 3 + np.where(X[:, 1] > 0, 2.0, -1.0) + 0.1 * rng.standard_normal(n)
    X[rng.random((n, d)) < nan_frac] = np.nan
    return X, y


def _best_gain_brute(data, g, rows, min_leaf, l2):
    """Max over features and thresholds (missing left or right) of the split gain on rows."""
    G, H, N = g[rows].sum(dtype=np.float64), float(len(rows)), len(rows)
    parent = G * G / (H + l2)
    best = -np.inf
    for f in range(data.B.shape[0]):
        b = data.B[f, rows].astype(np.int64)
        miss = b == data.missing_bin
        for t in range(-1, data.nb[f]):
            for ml in (False, True):
                left = (b <= t) & ~miss | (miss & ml)
                nl = int(left.sum())
                if nl < min_leaf or N - nl < min_leaf:
                    continue
                gl = g[rows][left].sum(dtype=np.float64)
                gain = gl * gl / (nl + l2) + (G - gl) ** 2 / (N - nl + l2) - parent
                best = max(best, gain)
    return best


@pytest.mark.parametrize("n_threads", [1, 2, 4])
@pytest.mark.parametrize("strategy", ["features", "samples"])
def test_leaves_partition_rows_and_predict_consistently(rng, n_threads, strategy):
    X, y = _data(rng)
    data = make_bins(X, max_bins=63)
    g = (-y).astype(np.float32)
    tree, leaves = grow_tree(data, g, None, hconst=1.0, max_leaf_nodes=15, min_samples_leaf=30,
                             n_threads=n_threads, strategy=strategy)
    assert len(leaves) <= 15
    allrows = np.sort(np.concatenate(list(leaves.values())))
    assert np.array_equal(allrows, np.arange(len(X)))            # every row in exactly one leaf
    pred = _predict(tree, X)
    for leaf, r in leaves.items():
        assert len(r) >= 30
        np.testing.assert_allclose(tree.value[leaf], y[r].mean(), rtol=1e-6)  # -G/H = mean
        assert np.all(pred[r] == tree.value[leaf])                # raw thresholds = bin splits


def test_identical_across_threads_and_strategies(rng):
    X, y = _data(rng, n=40_000)
    data = make_bins(X)
    g = (-y).astype(np.float32)
    h = rng.uniform(0.5, 1.5, len(y)).astype(np.float32)
    ref = None
    for nt in (1, 2, 4):
        for strat in ("features", "samples"):
            tree, _ = grow_tree(data, g, h, max_leaf_nodes=31, n_threads=nt, strategy=strat)
            a = tree.arrays()
            if ref is None:
                ref = a
            for k in ("feature", "missing_left", "left", "right"):
                assert np.array_equal(a[k], ref[k]), (nt, strat, k)
            np.testing.assert_allclose(a["value"], ref["value"], rtol=1e-9)


def test_every_split_is_the_best_available(rng):
    X, y = _data(rng, n=600, d=3)
    data = make_bins(X, max_bins=15)
    g = (-y).astype(np.float32)
    tree, _ = grow_tree(data, g, None, hconst=1.0, max_leaf_nodes=4, min_samples_leaf=10)
    # replay: the rows of each split node, found by walking the bins
    rows_of = {0: np.arange(len(X))}
    for node in range(len(tree.value)):
        if tree.left[node] < 0:
            continue
        r = rows_of[node]
        f, b = tree.feature[node], tree.bin[node]
        bins = data.B[f, r].astype(np.int64)
        miss = bins == data.missing_bin
        go = np.where(miss, bool(tree.missing_left[node]), bins <= b)
        rows_of[tree.left[node]], rows_of[tree.right[node]] = r[go], r[~go]
        want = _best_gain_brute(data, g, r, 10, 0.0)
        np.testing.assert_allclose(tree.gain[node], want, rtol=1e-6)


def test_max_depth_and_min_leaf(rng):
    X, y = _data(rng)
    data = make_bins(X)
    g = (-y).astype(np.float32)
    tree, leaves = grow_tree(data, g, None, hconst=1.0, max_leaf_nodes=64, max_depth=2,
                             min_samples_leaf=5)
    assert max(tree.depth) <= 2 and len(leaves) <= 4
    assert min(len(r) for r in leaves.values()) >= 5


def test_forest_structure_is_checked():
    ok = dict(feature=np.array([0, 0, 0], np.int32), threshold=np.zeros(3),
              missing_left=np.zeros(3, np.uint8), left=np.array([1, -1, -1], np.int32),
              right=np.array([2, -1, -1], np.int32), value=np.zeros(3))
    X = np.zeros((2, 1))
    roots, outs = np.array([0], np.int64), np.array([0], np.int32)
    TP.predict_forest(X, *ok.values(), roots, outs, 1)
    for key, bad in (("left", np.array([0, -1, -1], np.int32)),      # a cycle
                     ("right", np.array([5, -1, -1], np.int32)),     # outside the tree
                     ("feature", np.array([3, 0, 0], np.int32)),     # no such feature
                     ("threshold", np.array([np.nan, 0, 0]))):
        arrays = dict(ok, **{key: bad})
        with pytest.raises(ValueError, match="forest"):
            TP.predict_forest(X, *arrays.values(), roots, outs, 1)
    with pytest.raises(ValueError, match="roots"):
        TP.predict_forest(X, *ok.values(), np.array([1], np.int64), outs, 1)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_forest_sum_of_trees(rng, n_threads):
    X, y = _data(rng)
    data = make_bins(X)
    trees = []
    for k in range(3):
        tree, _ = grow_tree(data, (-(y * (k + 1))).astype(np.float32), None, hconst=1.0,
                            max_leaf_nodes=8)
        trees.append(tree.arrays())
    cat = {k: np.concatenate([t[k] for t in trees]) for k in trees[0]}
    roots = np.cumsum([0] + [len(t["value"]) for t in trees[:-1]]).astype(np.int64)
    out = TP.predict_forest(X, cat["feature"], cat["threshold"], cat["missing_left"], cat["left"],
                            cat["right"], cat["value"], roots, np.zeros(3, np.int32), 1,
                            n_threads=n_threads)[:, 0]
    want = sum(TP.predict_forest(X, *t.values(), np.array([0], np.int64),
                                 np.array([0], np.int32), 1)[:, 0] for t in trees)
    np.testing.assert_allclose(out, want, rtol=1e-12)
