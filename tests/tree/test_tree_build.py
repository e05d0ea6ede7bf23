"""parml._kernels._tree_build (include/parml/tree_build.h) against the naive reference in
tree_naive.py: every node's statistics and decision for gini, entropy and squared error, with
sample weights, missing values, max_depth, min_samples_leaf / split, min_weight_fraction_leaf,
min_impurity_decrease and best-first growth (max_leaf_nodes); whole trees grown independently
where the data has no ties; bitwise identity over n_threads (a single tree's parallel subtrees
and a forest's parallel trees); bootstrap (in-bag bits, bootstrap weights, balanced_subsample
against scikit-learn's compute_sample_weight); out-of-bag sums against a naive walk; hypothesis
over shapes; bad input.

The only comparisons of the kernel with itself are the thread-identity and seed tests."""
import os
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tree_naive import (  # noqa: E402
    Params, apply_binned, grow_naive, naive_leaf_values, oob_sums_naive, verify_tree)

from parml._kernels import _tree_build as TB  # noqa: E402
from parml._core.grower import make_bins  # noqa: E402

CRITS = ["gini", "entropy", "squared_error"]
THREADS = [1, 2, 4]
NODE_KEYS = ("feature", "bin", "left", "right", "missing_left", "value", "impurity", "wsum",
             "gain", "count", "depth")


def binned(X, max_bins=255):
    return make_bins(np.ascontiguousarray(X, dtype=np.float64), max_bins, random_state=0,
                     n_threads=1)


def build(data, y, K, crit, w=None, seeds=(1,), **kw):
    seeds = np.asarray(seeds, dtype=np.uint64)
    return TB.build_trees(data.B, data.nb, data.missing_bin, y, K, crit, w, seeds, **kw)


def kernel_kwargs(p: Params):
    return dict(max_depth=p.max_depth, min_samples_split=p.min_samples_split,
                min_samples_leaf=p.min_samples_leaf,
                min_weight_fraction_leaf=p.min_weight_fraction_leaf,
                min_impurity_decrease=p.min_impurity_decrease, max_leaf_nodes=p.max_leaf_nodes)


def make_problem(rng, n, d, crit, K=3, nan_frac=0.0, levels=None):
    """X continuous (or `levels` distinct values per feature), a target that depends on the
    first two features, NaN at random."""
    X = rng.normal(size=(n, d)) if levels is None else rng.integers(0, levels, (n, d)) * 1.0
    z = X[:, 0] + 0.7 * X[:, min(1, d - 1)] + 0.5 * rng.normal(size=n)
    if nan_frac:
        X[rng.random((n, d)) < nan_frac] = np.nan
    if crit == "squared_error":
        y = np.ascontiguousarray(z + 0.2 * rng.normal(size=n))
    else:
        q = np.quantile(z, np.linspace(0, 1, K + 1)[1:-1]) if K > 1 else np.zeros(0)
        y = np.searchsorted(q, z).astype(np.int32)
    return X, y


def weights(rng, n, kind):
    if kind is None:
        return None
    if kind == "int":  # zeros included: those rows are not in the tree
        return rng.integers(0, 4, n).astype(np.float64)
    return rng.uniform(0.1, 3.0, n)


MID = {"gini": 0.004, "entropy": 0.01, "squared_error": 0.01}
PARAMS = {
    "default": lambda c: Params(),
    "max_depth": lambda c: Params(max_depth=3),
    "min_samples_leaf": lambda c: Params(min_samples_leaf=7),
    "min_samples_split": lambda c: Params(min_samples_split=25),
    "min_weight_fraction_leaf": lambda c: Params(min_weight_fraction_leaf=0.03),
    "min_impurity_decrease": lambda c: Params(min_impurity_decrease=MID[c]),
    "max_leaf_nodes": lambda c: Params(max_leaf_nodes=12),
    "best_first_limits": lambda c: Params(max_leaf_nodes=30, max_depth=4, min_samples_leaf=3),
}


# ---- the reference itself can fail ---------------------------------------------------------
def test_reference_rejects_a_wrong_tree(rng):
    """verify_tree is not vacuous: a tampered split, a tampered value, a leaf that should have
    split and a node array with a wrong count all fail."""
    X, y = make_problem(rng, 200, 3, "gini")
    data = binned(X)
    trees, _ = build(data, y, 3, "gini")
    t = trees[0]
    verify_tree(t, data.B, y, np.ones(200), 3, "gini", data.missing_bin, Params())
    for key, tamper in (("bin", lambda a: a + (a >= 0)), ("value", lambda a: a * 0.999),
                        ("count", lambda a: a + 1)):
        bad = {k: v.copy() for k, v in t.items()}
        bad[key][0] = tamper(bad[key][0])
        with pytest.raises(AssertionError):
            verify_tree(bad, data.B, y, np.ones(200), 3, "gini", data.missing_bin, Params())
    # the depth-3 tree is not a valid unlimited tree (its depth-3 nodes may still split)
    t3 = build(data, y, 3, "gini", max_depth=3)[0][0]
    with pytest.raises(AssertionError, match="leaf but may split"):
        verify_tree(t3, data.B, y, np.ones(200), 3, "gini", data.missing_bin, Params())


# ---- node by node against the rules ----------------------------------------------------------
@pytest.mark.parametrize("crit", CRITS)
@pytest.mark.parametrize("params", list(PARAMS))
@pytest.mark.parametrize("wkind", [None, "int", "float"])
@pytest.mark.parametrize("nan_frac", [0.0, 0.15])
def test_tree_follows_the_rules(crit, params, wkind, nan_frac):
    rng = np.random.default_rng(zlib.crc32(f"{crit}{params}{wkind}{nan_frac}".encode()))
    n = 240
    X, y = make_problem(rng, n, 4, crit, nan_frac=nan_frac)
    w = weights(rng, n, wkind)
    p = PARAMS[params](crit)
    data = binned(X)
    trees, inbag = build(data, y, 3, crit, w, **kernel_kwargs(p))
    assert inbag is None
    ww = np.ones(n) if w is None else w
    n_leaves = verify_tree(trees[0], data.B, y, ww, 3, crit, data.missing_bin, p)
    assert n_leaves >= 2
    if p.max_leaf_nodes is not None:
        assert n_leaves <= p.max_leaf_nodes


@pytest.mark.parametrize("crit", ["gini", "entropy"])
def test_few_levels_with_ties(crit, rng):
    """Features with 3 levels: many splits tie, constant features appear deep in the tree; any
    tied split is accepted, every other rule is exact."""
    X, y = make_problem(rng, 300, 5, crit, levels=3, nan_frac=0.1)
    data = binned(X)
    for p in (Params(), Params(max_leaf_nodes=9), Params(min_samples_leaf=4)):
        t = build(data, y, 3, crit, seeds=(5,), **kernel_kwargs(p))[0][0]
        verify_tree(t, data.B, y, np.ones(300), 3, crit, data.missing_bin, p)


# ---- whole trees grown independently (data without ties) -----------------------------------
@pytest.mark.parametrize("crit", CRITS)
@pytest.mark.parametrize("p", [Params(), Params(max_depth=5, min_samples_leaf=3),
                               Params(max_leaf_nodes=20), Params(min_impurity_decrease=0.002)],
                         ids=["full", "depth5_leaf3", "best_first20", "mid"])
def test_tree_equals_naive_growth(crit, p, rng):
    """Continuous features and random float weights: no two different partitions of a node
    have the same gain, so the naive tree is the tree; compared through every training row's
    leaf value, the number of leaves and the depth (node order and the feature chosen among
    identical partitions of tiny nodes may differ)."""
    n = 180
    X, y = make_problem(rng, n, 3, crit, nan_frac=0.1)
    w = rng.uniform(0.5, 2.0, n)
    data = binned(X)
    t = build(data, y, 3, crit, w, seeds=(11,), **kernel_kwargs(p))[0][0]
    ref = grow_naive(data.B, y, w, 3, crit, data.missing_bin, p)
    W = t["value"].shape[1]
    got = t["value"][apply_binned(t, data.B, data.missing_bin)]
    np.testing.assert_allclose(got, naive_leaf_values(ref, n, W), rtol=1e-10, atol=1e-12)
    assert int((t["left"] < 0).sum()) == sum(nd["left"] < 0 for nd in ref)
    assert int(t["depth"].max()) == max(nd["depth"] for nd in ref)


def test_pure_node_rule_and_min_impurity_decrease_boundaries():
    """A two-class node whose best split gains exactly G: a leaf when min_impurity_decrease
    exceeds G / W + 1e-7, split otherwise; a pure node is a leaf."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1], dtype=np.int32)
    data = binned(X)
    # root gini 0.5, children pure: gain / W = 0.5
    t = build(data, y, 2, "gini", min_impurity_decrease=0.5)[0][0]
    assert len(t["left"]) == 3
    t = build(data, y, 2, "gini", min_impurity_decrease=0.5 + 2e-7)[0][0]
    assert len(t["left"]) == 1
    t = build(data, np.zeros(4, np.int32), 2, "gini")[0][0]
    assert len(t["left"]) == 1 and t["impurity"][0] == 0


# ---- threads ----------------------------------------------------------------------------------
@pytest.mark.parametrize("crit", CRITS)
def test_single_tree_identical_for_any_thread_count(crit):
    """A deep single tree (its subtrees built in parallel), with max_features < d so every
    subtree draws from its own random stream: bitwise the same for 1, 2 and 4 threads."""
    rng = np.random.default_rng(3)
    X, y = make_problem(rng, 4000, 6, crit, nan_frac=0.05)
    data = binned(X)
    w = rng.uniform(0.5, 2, 4000)
    outs = [build(data, y, 3, crit, w, seeds=(123,), max_features=3, n_threads=k)[0][0]
            for k in THREADS]
    assert len(outs[0]["left"]) > 200  # deep enough that stage 2 (16 subtrees) ran
    for o in outs[1:]:
        for k in NODE_KEYS:
            np.testing.assert_array_equal(o[k], outs[0][k], err_msg=k)


@pytest.mark.parametrize("crit", ["gini", "squared_error"])
def test_forest_identical_for_any_thread_count_and_tree_depends_on_its_seed(crit):
    rng = np.random.default_rng(4)
    X, y = make_problem(rng, 600, 5, crit, nan_frac=0.05)
    data = binned(X)
    seeds = np.array([9, 8, 7, 6, 5, 4], dtype=np.uint64)
    runs = [build(data, y, 3, crit, None, seeds=seeds, bootstrap=True, n_boot=600,
                  max_features=2, want_inbag=True, n_threads=k) for k in THREADS]
    for trees, inbag in runs[1:]:
        np.testing.assert_array_equal(inbag, runs[0][1])
        for a, b in zip(trees, runs[0][0], strict=True):
            for k in NODE_KEYS:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # tree i depends on seeds[i] only: alone (subtrees in parallel) or within a forest
    trees, inbag = runs[0]
    assert not all(np.array_equal(trees[0]["feature"], t["feature"]) for t in trees[1:])
    alone, inbag1 = build(data, y, 3, crit, None, seeds=seeds[3:4], bootstrap=True, n_boot=600,
                          max_features=2, want_inbag=True, n_threads=2)
    np.testing.assert_array_equal(inbag1[0], inbag[3])
    for k in NODE_KEYS:
        np.testing.assert_array_equal(alone[0][k], trees[3][k], err_msg=k)


# ---- bootstrap ------------------------------------------------------------------------------
def flat_of(trees):
    """The trees as one set of node arrays with roots (what oob_sums walks)."""
    flat = {k: np.ascontiguousarray(np.concatenate([t[k] for t in trees]))
            for k in ("feature", "bin", "left", "right", "missing_left", "value")}
    flat["roots"] = np.cumsum([0] + [len(t["left"]) for t in trees[:-1]]).astype(np.int64)
    return flat


def _bits(inbag, n):
    return np.unpackbits(inbag, axis=1, bitorder="little")[:, :n].astype(bool)


@pytest.mark.parametrize("n_boot", [1, 37, 300, 900])
@pytest.mark.parametrize("wkind", [None, "int"])
def test_inbag_bits_agree_with_the_trees(n_boot, wkind, rng):
    n = 300
    X, y = make_problem(rng, n, 3, "gini", nan_frac=0.1)
    w = weights(rng, n, wkind)
    data = binned(X)
    trees, inbag = build(data, y, 3, "gini", w, seeds=np.arange(1, 6), bootstrap=True,
                         n_boot=n_boot, want_inbag=True)
    assert inbag.shape == (5, (n + 7) // 8) and inbag.dtype == np.uint8
    bits = _bits(inbag, n)
    assert not np.unpackbits(inbag, axis=1, bitorder="little")[:, n:].any()  # padding clear
    pos = np.ones(n, bool) if w is None else w > 0
    for t, b in zip(trees, bits, strict=True):
        assert 1 <= b.sum() <= min(n, n_boot)
        assert t["count"][0] == (b & pos).sum()
        if w is None:  # each draw adds weight 1
            assert t["wsum"][0] == n_boot
        # children partition their parent
        s = t["left"] >= 0
        np.testing.assert_array_equal(t["count"][t["left"][s]] + t["count"][t["right"][s]],
                                      t["count"][s])
        np.testing.assert_allclose(t["wsum"][t["left"][s]] + t["wsum"][t["right"][s]],
                                   t["wsum"][s], rtol=1e-12)
        # each leaf holds exactly the in-bag rows (positive weight) that reach it
        rows = np.flatnonzero(b & pos)
        leaves = apply_binned(t, data.B, data.missing_bin, rows)
        ids, cnt = np.unique(leaves, return_counts=True)
        np.testing.assert_array_equal(t["count"][ids], cnt)
        assert t["count"][t["left"] < 0].sum() == len(rows)
    # not every tree drew the same rows
    assert n_boot < 10 or len({b.tobytes() for b in bits}) == 5


def test_no_bootstrap_inbag_marks_every_row(rng):
    X, y = make_problem(rng, 50, 2, "gini")
    data = binned(X)
    trees, inbag = build(data, y, 3, "gini", seeds=(1, 2), want_inbag=True)
    assert _bits(inbag, 50).all()
    assert trees[0]["count"][0] == 50 and trees[0]["wsum"][0] == 50


def _bootstrap_counts(seed, n, n_boot, base_w=None):
    """How many times each row is drawn by the tree seeded `seed`, read off a tree that isolates
    every in-bag row in its own leaf (one feature, n <= 255 distinct values, distinct targets):
    the leaf's weight is count x base weight. Relies only on the draws coming from the seed."""
    X = np.arange(n, dtype=np.float64)[:, None]
    yv = np.random.default_rng(0).permutation(n).astype(np.float64)
    data = binned(X)
    t = build(data, yv, 1, "squared_error", base_w, seeds=(seed,), bootstrap=True,
              n_boot=n_boot)[0][0]
    leaves = np.flatnonzero(t["left"] < 0)
    assert (t["count"][leaves] == 1).all()
    cnt = np.zeros(n)
    target = np.round(t["value"][leaves, 0]).astype(int)  # the leaf's only row's target
    rows = np.argsort(yv)[target]  # yv is a permutation of 0..n-1
    bw = np.ones(n) if base_w is None else base_w
    cnt[rows] = t["wsum"][leaves] / bw[rows]
    np.testing.assert_allclose(cnt, np.round(cnt), atol=1e-9)
    return np.round(cnt)


@pytest.mark.parametrize("crit", CRITS)
def test_bootstrap_tree_is_the_tree_of_count_weights(crit, rng):
    """A bootstrapped tree is the tree grown with weights base_w x (times drawn)."""
    n, n_boot, seed = 200, 150, 77
    base_w = rng.integers(1, 4, n).astype(np.float64)
    cnt = _bootstrap_counts(seed, n, n_boot, base_w)
    assert cnt.sum() == n_boot
    X, y = make_problem(rng, n, 3, crit, nan_frac=0.1)
    data = binned(X)
    p = Params(max_depth=6, min_weight_fraction_leaf=0.01)
    trees, inbag = build(data, y, 3, crit, base_w, seeds=(seed,), bootstrap=True,
                         n_boot=n_boot, want_inbag=True, **kernel_kwargs(p))
    np.testing.assert_array_equal(_bits(inbag, n)[0], cnt > 0)
    verify_tree(trees[0], data.B, y, base_w * cnt, 3, crit, data.missing_bin, p)


@pytest.mark.parametrize("with_sw", [False, True])
def test_balanced_subsample_weights(with_sw, rng):
    """balanced_subsample: class weights from the bootstrap sample's class counts
    (scikit-learn's compute_sample_weight("balanced", y, indices=drawn rows)), times the
    sample weights and the draw counts."""
    from sklearn.utils.class_weight import compute_sample_weight
    n, seed = 240, 5
    X, y = make_problem(rng, n, 3, "gini", K=3, nan_frac=0.05)
    y[:150] = 0  # unbalanced
    base_w = rng.integers(1, 3, n).astype(np.float64) if with_sw else None
    cnt = _bootstrap_counts(seed, n, n, base_w)
    idx = np.repeat(np.arange(n), cnt.astype(int))
    cw = compute_sample_weight("balanced", y, indices=idx)
    data = binned(X)
    p = Params(max_depth=4)
    t = build(data, y, 3, "gini", base_w, seeds=(seed,), bootstrap=True, n_boot=n,
              balanced_subsample=True, **kernel_kwargs(p))[0][0]
    bw = np.ones(n) if base_w is None else base_w
    verify_tree(t, data.B, y, bw * cnt * cw, 3, "gini", data.missing_bin, p)
    if not with_sw:  # every class weighs the same at the root
        np.testing.assert_allclose(t["value"][0], np.full(3, 1 / 3), rtol=1e-12)
    # without bootstrap: scikit-learn's "balanced" on all rows
    t = build(data, y, 3, "gini", None, seeds=(seed,), balanced_subsample=True, max_depth=3)[0][0]
    verify_tree(t, data.B, y, compute_sample_weight("balanced", y), 3, "gini",
                data.missing_bin, Params(max_depth=3))


# ---- out-of-bag sums --------------------------------------------------------------------------
@pytest.mark.parametrize("crit,n", [("gini", 300), ("squared_error", 300), ("entropy", 2500)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_oob_sums_against_a_naive_walk(crit, n, n_threads, rng):
    X, y = make_problem(rng, n, 4, crit, nan_frac=0.1)
    data = binned(X)
    trees, inbag = build(data, y, 3, crit, None, seeds=np.arange(3, 11), bootstrap=True,
                         n_boot=n, max_features=2, max_depth=8, want_inbag=True,
                         n_threads=n_threads)
    W = trees[0]["value"].shape[1]
    total, count = TB.oob_sums(data.B, data.missing_bin, flat_of(trees), inbag, W, n_threads)
    ref_total, ref_count = oob_sums_naive(trees, inbag, data.B, data.missing_bin)
    np.testing.assert_array_equal(count, ref_count)
    np.testing.assert_allclose(total, ref_total, rtol=1e-13, atol=1e-13)
    assert total.shape == (n, W) and (count > 0).mean() > 0.9


# ---- hypothesis over shapes ----------------------------------------------------------------
# PARML_TREE_EXAMPLES=2000 for a longer search
@settings(max_examples=int(os.environ.get("PARML_TREE_EXAMPLES", "120")))
@given(n=st.one_of(st.integers(1, 40), st.integers(41, 300)), d=st.integers(1, 6),
       K=st.integers(1, 4),
       nan_frac=st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]), levels=st.sampled_from([None, 2, 5]),
       crit=st.sampled_from(CRITS), wkind=st.sampled_from([None, "int", "float"]),
       max_depth=st.sampled_from([None, None, 1, 3, 8]), min_samples_leaf=st.integers(1, 4),
       max_leaf_nodes=st.sampled_from([None, None, 2, 7, 40]), max_bins=st.sampled_from([255, 4]),
       seed=st.integers(0, 2**32 - 1))
def test_hypothesis_shapes(n, d, K, nan_frac, levels, crit, wkind, max_depth, min_samples_leaf,
                           max_leaf_nodes, max_bins, seed):
    rng = np.random.default_rng(seed)
    X, y = make_problem(rng, n, d, crit, K=K, nan_frac=nan_frac, levels=levels)
    if crit == "squared_error":
        K = 1
    w = weights(rng, n, wkind)
    if w is not None and not (w > 0).any():
        w[0] = 1.0
    data = binned(X, max_bins)
    p = Params(max_depth=max_depth, min_samples_leaf=min_samples_leaf,
               max_leaf_nodes=max_leaf_nodes)
    trees, _ = build(data, y, K, crit, w, seeds=(seed,), n_threads=2, **kernel_kwargs(p))
    t = trees[0]
    assert t["value"].shape == (len(t["left"]), K)
    verify_tree(t, data.B, y, np.ones(n) if w is None else w, K, crit, data.missing_bin, p)


# ---- bad input -------------------------------------------------------------------------------
def _good():
    rng = np.random.default_rng(0)
    X, y = make_problem(rng, 40, 2, "gini")
    data = binned(X)
    return dict(B=data.B, nb=data.nb, missing_bin=data.missing_bin, y=y, K=3, criterion="gini",
                base_w=None, seeds=np.array([1], np.uint64))


def _call(args, **kw):
    a = dict(args)
    pos = [a.pop(k) for k in ("B", "nb", "missing_bin", "y", "K", "criterion", "base_w", "seeds")]
    return TB.build_trees(*pos, **kw)


BAD = {
    "B float": dict(B=lambda g: g["B"].astype(np.float64)),
    "B 1-D": dict(B=lambda g: g["B"][0].copy()),
    "B not C-contiguous": dict(B=lambda g: np.asfortranarray(g["B"])),
    "B no rows": dict(B=lambda g: g["B"][:, :0].copy(), y=lambda g: g["y"][:0].copy()),
    "nb wrong length": dict(nb=lambda g: g["nb"][:1].copy()),
    "nb int64": dict(nb=lambda g: g["nb"].astype(np.int64)),
    "missing_bin 0": dict(missing_bin=lambda g: 0),
    "missing_bin 256": dict(missing_bin=lambda g: 256),
    "y float for gini": dict(y=lambda g: g["y"].astype(np.float64)),
    "y int64": dict(y=lambda g: g["y"].astype(np.int64)),
    "y short": dict(y=lambda g: g["y"][:-1].copy()),
    "y >= K": dict(y=lambda g: np.where(g["y"] == 2, 3, g["y"]).astype(np.int32)),
    "y negative": dict(y=lambda g: np.where(g["y"] == 2, -1, g["y"]).astype(np.int32)),
    "K 0": dict(K=lambda g: 0),
    "y int for squared_error": dict(criterion=lambda g: "squared_error"),
    "criterion": dict(criterion=lambda g: "mae"),
    "base_w short": dict(base_w=lambda g: np.ones(39)),
    "base_w float32": dict(base_w=lambda g: np.ones(40, np.float32)),
    "seeds empty": dict(seeds=lambda g: np.zeros(0, np.uint64)),
    "seeds int64": dict(seeds=lambda g: np.array([1], np.int64)),
    "seeds 2-D": dict(seeds=lambda g: np.ones((1, 1), np.uint64)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_value_error(case):
    g = _good()
    args = {k: (BAD[case][k](g) if k in BAD[case] else v) for k, v in g.items()}
    with pytest.raises(ValueError):
        _call(args)


def test_non_array_input_is_a_type_error():
    """B is taken as a typed memoryview: something without the buffer protocol is a TypeError."""
    g = _good()
    with pytest.raises(TypeError):
        _call(dict(g, B=g["B"].tolist()))


@pytest.mark.parametrize("kw", [dict(bootstrap=True, n_boot=0), dict(bootstrap=True, n_boot=-3),
                                dict(min_samples_leaf=0), dict(min_samples_split=1),
                                dict(balanced_subsample=True)])
def test_bad_options_are_value_errors(kw):
    g = _good()
    if kw.get("balanced_subsample"):
        g["K"], g["y"] = 300, g["y"].copy()  # balanced_subsample supports <= 256 classes
    with pytest.raises(ValueError):
        _call(g, **kw)


def test_options_that_are_not_errors():
    """Extreme but valid options: max_features beyond d means all; max_depth 0 and
    max_leaf_nodes 1 give a single leaf; n_threads 0 runs serially."""
    g = _good()
    assert len(_call(g, max_features=99)[0][0]["left"]) > 1
    assert len(_call(g, max_depth=0)[0][0]["left"]) == 1
    assert len(_call(g, max_leaf_nodes=1)[0][0]["left"]) == 1
    a, b = _call(g, n_threads=0)[0][0], _call(g, n_threads=1)[0][0]
    np.testing.assert_array_equal(a["feature"], b["feature"])
    # read-only inputs are fine (memory-mapped data)
    ro = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in g.items()}
    for v in ro.values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    c = _call(ro)[0][0]
    np.testing.assert_array_equal(c["feature"], b["feature"])


_OUT_OF_RANGE_BINS = textwrap.dedent("""
    import numpy as np
    import parml.ensemble
    from parml._kernels import _tree_build as TB
    n = 2000
    B = np.full((1, n), 250, dtype=np.uint8)
    B[0, ::2] = 0
    y = (np.arange(n) % 2).astype(np.int32)
    try:
        TB.build_trees(B, np.array([2], np.int32), 2, y, 2, "gini", None,
                       np.array([1], np.uint64))
        print("NO ERROR")
    except ValueError as e:
        print("VALUE ERROR", e)
""")


def test_bins_above_missing_bin_are_refused():
    """Run in a child process: the unchecked case corrupts the heap."""
    r = subprocess.run([sys.executable, "-c", _OUT_OF_RANGE_BINS], capture_output=True,
                       text=True, timeout=120, cwd="/tmp")
    assert r.returncode == 0 and "VALUE ERROR" in r.stdout, (r.returncode, r.stdout,
                                                             r.stderr[-500:])


def test_oob_sums_bad_input():
    g = _good()
    trees, inbag = _call(g, bootstrap=True, n_boot=40, want_inbag=True)
    flat = flat_of(trees)
    with pytest.raises(ValueError):
        TB.oob_sums(g["B"], g["missing_bin"], flat, inbag[:, :-1].copy(), 3)
    with pytest.raises(ValueError):
        TB.oob_sums(g["B"].astype(np.int32), g["missing_bin"], flat, inbag, 3)
    with pytest.raises(ValueError):
        TB.oob_sums(g["B"], g["missing_bin"], flat, inbag, 2)  # value is (nodes, 3)
