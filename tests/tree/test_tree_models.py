"""parml.tree.DecisionTree* and parml.ensemble.RandomForest* against scikit-learn as the oracle,
and their own contracts.

What is compared with scikit-learn, and why it can be exact:
* "exact-bin" data: every feature has <= 255 distinct values, so every bin holds one value and
  the candidate splits are scikit-learn's. With random float sample weights no two different
  partitions of a node have the same gain, so the trees are the same trees: compared through
  the predictions on the training rows, n_leaves, depth, the sorted per-node impurities and
  sample counts, and feature importances (node order differs: parml grows breadth-first then
  subtrees; thresholds differ between distinct values absent from a node: parml's threshold
  is the midpoint to the next value in the whole column, scikit-learn's to the next value in
  the node, so unseen values between them may go either way -- never compared).
* continuous data (> 255 distinct values, quantile bins): accuracy / R^2 within a tolerance.
* forests: accuracy / R^2 / oob_score_ within a tolerance (different random streams).
Bad input at the estimator level is in test_tree_inputs.py.
"""
import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn import ensemble as SE
from sklearn import tree as ST
from sklearn.base import clone
from sklearn.datasets import make_classification, make_friedman1
from sklearn.utils.class_weight import compute_sample_weight

from parml.ensemble import RandomForestClassifier, RandomForestRegressor
from parml.tree import DecisionTreeClassifier, DecisionTreeRegressor

ALL = [DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier,
       RandomForestRegressor]
SMALL = {RandomForestClassifier: dict(n_estimators=5), RandomForestRegressor: dict(n_estimators=5)}


def small(cls, **kw):
    return cls(**{**SMALL.get(cls, {}), **kw})


def is_clf(cls):
    return cls in (DecisionTreeClassifier, RandomForestClassifier)


def exact_bin_data(seed, n=1500, d=5, levels=25, nan_frac=0.0, task="reg"):
    """Integer-valued features (<= 255 distinct per feature), a continuous target with scale
    ~1e4 (or 3 classes), and random float weights."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, levels, (n, d)).astype(np.float64)
    z = np.sin(X[:, 0] / 4) * 5 + 0.3 * X[:, 1] - 0.2 * X[:, 2] * (X[:, 3] > 10)
    z = z + rng.normal(scale=1.0, size=n)
    if nan_frac:
        X[rng.random((n, d)) < nan_frac] = np.nan
    # (the regression target's scale keeps clear of parml's absolute 1e-7 variance floor, see
    # test_regression_tree_is_scale_equivariant)
    y = z * 1000 if task == "reg" else np.digitize(z, np.quantile(z, [0.33, 0.66]))
    return X, y, rng.uniform(0.5, 2.0, n)


def sorted_nodes(tree_):
    return (np.sort(tree_.impurity), np.sort(tree_.n_node_samples),
            np.sort(tree_.weighted_n_node_samples))


def apply_tree_(t, X):
    """Leaf of each row, walking a scikit-learn-like tree_ (NaN: missing_go_to_left)."""
    node = np.zeros(len(X), dtype=np.int64)
    for _ in range(int(t.max_depth)):
        inner = t.children_left[node] >= 0
        x = X[np.arange(len(X)), np.maximum(t.feature[node], 0)]
        left = np.where(np.isnan(x), t.missing_go_to_left[node].astype(bool),
                        x <= t.threshold[node])
        node = np.where(inner, np.where(left, t.children_left[node], t.children_right[node]),
                        node)
    return node


def assert_same_tree(p, s, X, y):
    """parml's tree p is scikit-learn's tree s, node order aside: same leaves (as partitions of
    the training rows), depth and multiset of node statistics. One exception: with float
    weights scikit-learn's gini / entropy of a pure node can round to a few ulps above its
    epsilon, and it then splits the pure node (zero gain); there the check is that scikit-learn's
    leaves refine parml's, and only inside pure parml leaves."""
    spurious = (s.tree_.children_left >= 0) & (s.tree_.impurity < 1e-12)
    if not spurious.any():
        assert p.get_n_leaves() == s.get_n_leaves()
        assert p.get_depth() == s.get_depth()
        for a, b in zip(sorted_nodes(p.tree_), sorted_nodes(s.tree_), strict=True):
            # scikit-learn's pure-node impurities are rounding noise of its (large) sums
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * max(1.0, b.max()))
        return
    lp, ls = apply_tree_(p.tree_, X), s.apply(X)
    assert len(np.unique(lp)) == p.get_n_leaves()
    for leaf in np.unique(ls):  # each scikit-learn leaf lies inside one parml leaf
        assert len(np.unique(lp[ls == leaf])) == 1
    for leaf in np.unique(lp):
        rows = lp == leaf
        if len(np.unique(ls[rows])) > 1:
            assert p.tree_.impurity[leaf] == 0 and len(np.unique(y[rows])) == 1


# ---- the package imports ---------------------------------------------------------------------
def test_import_parml_tree_first():
    """`from parml.tree import DecisionTreeClassifier` in a fresh interpreter, before anything
    imports parml.ensemble."""
    r = subprocess.run([sys.executable, "-c", "from parml.tree import DecisionTreeClassifier"],
                       capture_output=True, text=True, timeout=120, cwd="/tmp")
    assert r.returncode == 0, r.stderr[-400:]


# ---- single trees vs scikit-learn on exact bins -----------------------------------------------
# (params, whether every node is large): tiny nodes (2-4 rows) are often split into the same
# two groups by several features, a tie that scikit-learn and parml break by their own random
# feature orders -- the same tree as a partition, but its gain is credited to another feature
TREE_PARAMS = [
    (dict(), False),
    (dict(max_depth=4), True),
    (dict(min_samples_leaf=12, min_samples_split=30), True),
    (dict(min_samples_leaf=0.015, min_samples_split=0.04), True),
    (dict(min_weight_fraction_leaf=0.015), True),
    (dict(max_leaf_nodes=25), True),
    (dict(max_leaf_nodes=40, max_depth=6), False),
    (dict(min_impurity_decrease=0.002), False),
]


@pytest.mark.parametrize("params,large_nodes", TREE_PARAMS,
                         ids=[",".join(p) or "default" for p, _ in TREE_PARAMS])
@pytest.mark.parametrize("crit", ["gini", "entropy", "squared_error"])
@pytest.mark.parametrize("nan_frac", [0.0, 0.1])
def test_tree_equals_sklearn_on_exact_bins(params, large_nodes, crit, nan_frac):
    reg = crit == "squared_error"
    X, y, sw = exact_bin_data(7, n=800, nan_frac=nan_frac, task="reg" if reg else "clf")
    P, S = ((DecisionTreeRegressor, ST.DecisionTreeRegressor) if reg else
            (DecisionTreeClassifier, ST.DecisionTreeClassifier))
    p = P(criterion=crit, random_state=0, **params).fit(X, y, sample_weight=sw)
    s = S(criterion=crit, random_state=0, **params).fit(X, y, sample_weight=sw)
    if reg:
        np.testing.assert_allclose(p.predict(X), s.predict(X), rtol=1e-9, atol=1e-9)
    else:
        np.testing.assert_allclose(p.predict_proba(X), s.predict_proba(X), rtol=1e-9, atol=1e-12)
    assert_same_tree(p, s, X, y)
    if large_nodes:
        np.testing.assert_allclose(p.feature_importances_, s.feature_importances_, rtol=1e-7,
                                   atol=1e-9)
    else:
        np.testing.assert_allclose(p.feature_importances_, s.feature_importances_, atol=0.03)


def test_unweighted_tree_close_to_sklearn_on_exact_bins():
    """Without weights ties happen (equal counts): trees may differ where they tie, so only
    held-out scores are compared, and the root split, which cannot tie here."""
    X, y, _ = exact_bin_data(8, n=3000, task="clf")
    p = DecisionTreeClassifier(max_depth=6, random_state=0).fit(X[:2000], y[:2000])
    s = ST.DecisionTreeClassifier(max_depth=6, random_state=0).fit(X[:2000], y[:2000])
    assert p.tree_.feature[0] == s.tree_.feature[0]
    assert p.tree_.threshold[0] == s.tree_.threshold[0]
    assert abs(p.score(X[2000:], y[2000:]) - s.score(X[2000:], y[2000:])) < 0.02


def test_regression_tree_is_scale_equivariant():
    """Distinct rows, a continuous target: every row ends in its own leaf (as in scikit-learn),
    and y -> scale * y gives the same tree with scaled predictions."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=300)
    p = DecisionTreeRegressor(random_state=0).fit(X, y)
    s = ST.DecisionTreeRegressor(random_state=0).fit(X, y)
    assert s.get_n_leaves() == 300
    assert p.get_n_leaves() == 300
    for scale in (1e-4, 1e3):
        ps = DecisionTreeRegressor(random_state=0).fit(X, y * scale)
        assert ps.get_n_leaves() == 300
        np.testing.assert_allclose(ps.predict(X), y * scale, rtol=1e-9)


@pytest.mark.parametrize("task", ["clf", "reg"])
def test_tree_close_to_sklearn_on_continuous_data(task):
    """> 255 distinct values per feature: quantile bins; held-out scores within 0.02."""
    if task == "clf":
        X, y = make_classification(6000, 12, n_informative=6, random_state=1)
        P, S = DecisionTreeClassifier, ST.DecisionTreeClassifier
    else:
        X, y = make_friedman1(6000, 8, noise=1.0, random_state=1)
        P, S = DecisionTreeRegressor, ST.DecisionTreeRegressor
    tr, te = slice(0, 3000), slice(3000, None)
    for kw in (dict(max_depth=8), dict(max_leaf_nodes=60), dict(min_samples_leaf=10)):
        a = P(random_state=0, **kw).fit(X[tr], y[tr]).score(X[te], y[te])
        b = S(random_state=0, **kw).fit(X[tr], y[tr]).score(X[te], y[te])
        assert abs(a - b) < 0.02, (kw, a, b)


# ---- tree_ and probabilities ------------------------------------------------------------------
@pytest.mark.parametrize("cls", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_tree_view_attributes(cls):
    X, y, sw = exact_bin_data(3, n=400, nan_frac=0.1, task="clf" if is_clf(cls) else "reg")
    est = cls(max_depth=5, random_state=0).fit(X, y, sample_weight=sw)
    t = est.tree_
    m = t.node_count
    K = 3 if is_clf(cls) else 1
    for name in ("children_left", "children_right", "feature", "threshold", "impurity",
                 "n_node_samples", "weighted_n_node_samples", "missing_go_to_left"):
        assert getattr(t, name).shape == (m,), name
    assert t.value.shape == (m, 1, K)
    leaf = t.children_left < 0
    assert (t.children_right[leaf] < 0).all()
    assert (t.feature[leaf] == -2).all() and (t.threshold[leaf] == -2).all()
    assert (t.feature[~leaf] >= 0).all() and (t.feature[~leaf] < X.shape[1]).all()
    assert t.n_leaves == leaf.sum() == est.get_n_leaves()
    assert t.max_depth == est.get_depth() <= 5
    assert t.n_node_samples[0] == 400 and t.n_node_samples[leaf].sum() == 400
    np.testing.assert_allclose(t.weighted_n_node_samples[0], sw.sum(), rtol=1e-12)
    assert t.n_outputs == 1 and list(t.n_classes) == [K]
    if K > 1:
        np.testing.assert_allclose(t.value.sum(axis=2), 1.0, rtol=1e-12)
    # walking tree_ as one walks scikit-learn's tree_ gives the estimator's predictions
    out = t.value[apply_tree_(t, X), 0]
    got = est.predict_proba(X) if K > 1 else est.predict(X)[:, None]
    np.testing.assert_allclose(got, out, rtol=1e-12)


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, RandomForestClassifier])
def test_predict_proba_rows_sum_to_one(cls):
    X, y = make_classification(500, 6, n_classes=4, n_informative=4, random_state=2)
    X[::7, 2] = np.nan
    est = small(cls, max_depth=4, random_state=0).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (500, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (proba >= 0).all()
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(axis=1)])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba))


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, RandomForestClassifier])
def test_string_labels(cls):
    X, y, _ = exact_bin_data(4, n=300, task="clf")
    names = np.array(["a", "b", "c"])
    est = small(cls, random_state=0).fit(X, names[y])
    ref = small(cls, random_state=0).fit(X, y)
    assert list(est.classes_) == ["a", "b", "c"]
    np.testing.assert_array_equal(est.predict(X), names[ref.predict(X)])
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(X))


# ---- forests vs scikit-learn ------------------------------------------------------------------
@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(6000, 20, n_informative=8, random_state=0)
    return X[3000:], y[3000:], X[:3000], y[:3000]


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_friedman1(6000, 10, noise=1.0, random_state=0)
    return X[3000:], y[3000:], X[:3000], y[:3000]


def test_forest_classifier_close_to_sklearn(clf_data):
    X, y, Xt, yt = clf_data
    a = RandomForestClassifier(100, oob_score=True, random_state=0).fit(X, y)
    b = SE.RandomForestClassifier(100, oob_score=True, random_state=0, n_jobs=2).fit(X, y)
    assert abs(a.score(Xt, yt) - b.score(Xt, yt)) <= 0.01
    assert abs(a.oob_score_ - b.oob_score_) <= 0.015
    assert a.oob_decision_function_.shape == (3000, 2)
    np.testing.assert_allclose(a.oob_decision_function_.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(a.feature_importances_.sum(), 1.0)
    # the same informative features (redundant ones share credit differently: atol 0.05)
    np.testing.assert_array_equal(a.feature_importances_ > 0.02, b.feature_importances_ > 0.02)
    np.testing.assert_allclose(a.feature_importances_, b.feature_importances_, atol=0.05)
    assert a.max_features_ == 4 and a.n_features_in_ == 20


def test_forest_regressor_close_to_sklearn(reg_data):
    X, y, Xt, yt = reg_data
    a = RandomForestRegressor(100, max_features=0.5, oob_score=True, random_state=0).fit(X, y)
    b = SE.RandomForestRegressor(100, max_features=0.5, oob_score=True, random_state=0,
                                 n_jobs=2).fit(X, y)
    assert abs(a.score(Xt, yt) - b.score(Xt, yt)) <= 0.006
    assert abs(a.oob_score_ - b.oob_score_) <= 0.01
    assert a.oob_prediction_.shape == (3000,)
    np.testing.assert_array_equal(a.feature_importances_ > 0.02, b.feature_importances_ > 0.02)
    np.testing.assert_allclose(a.feature_importances_, b.feature_importances_, atol=0.03)


def test_forest_without_bootstrap_on_exact_bins_equals_sklearn():
    """bootstrap=False, max_features=None, weighted exact-bin data: every tree is the one tree
    scikit-learn grows, so the forests predict the same on the training rows."""
    X, y, sw = exact_bin_data(5, n=500, nan_frac=0.05, task="reg")
    kw = dict(bootstrap=False, max_features=None, random_state=0, max_depth=7,
              min_samples_leaf=10)
    a = RandomForestRegressor(3, **kw).fit(X, y, sample_weight=sw)
    b = SE.RandomForestRegressor(3, **kw).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-9)
    np.testing.assert_allclose(a.feature_importances_, b.feature_importances_, rtol=1e-7)


# ---- forest contracts -------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
@pytest.mark.parametrize("cls", [RandomForestClassifier, RandomForestRegressor])
def test_warm_start_equals_one_fit(cls, clf_data):
    X, y = clf_data[0][:800], clf_data[1][:800]
    one = cls(12, oob_score=True, random_state=3, max_depth=6).fit(X, y)
    ws = cls(5, warm_start=True, random_state=3, max_depth=6).fit(X, y)
    assert len(ws) == 5
    ws.set_params(n_estimators=9).fit(X, y)
    assert len(ws) == 9
    ws.set_params(n_estimators=12, oob_score=True).fit(X, y)
    assert len(ws.estimators_) == 12
    m = "predict_proba" if cls is RandomForestClassifier else "predict"
    np.testing.assert_array_equal(getattr(ws, m)(X), getattr(one, m)(X))
    assert ws.oob_score_ == one.oob_score_
    with pytest.raises(ValueError, match="n_estimators"):
        ws.set_params(n_estimators=4).fit(X, y)


def test_warm_start_oob_after_plain_fit(clf_data):
    X, y = clf_data[0][:300], clf_data[1][:300]
    f = RandomForestClassifier(5, random_state=0).fit(X, y)
    f.set_params(warm_start=True, n_estimators=10).fit(X, y)
    try:
        f.set_params(n_estimators=15, oob_score=True).fit(X, y)
    except ValueError as e:  # a clear refusal is fine (as when warm starting a plain fit)
        assert "warm_start" in str(e), str(e)
    else:
        assert f.oob_decision_function_.shape == (300, 2)


@pytest.mark.parametrize("cls", [RandomForestClassifier, RandomForestRegressor])
def test_estimators_are_usable_trees(cls, clf_data):
    X, y = clf_data[0][:600], clf_data[1][:600]
    f = cls(7, random_state=1, max_depth=5).fit(X, y)
    ests = f.estimators_
    assert len(ests) == 7
    tree_cls = DecisionTreeClassifier if cls is RandomForestClassifier else DecisionTreeRegressor
    assert all(isinstance(e, tree_cls) for e in ests)
    if cls is RandomForestClassifier:
        mean = np.mean([e.predict_proba(X) for e in ests], axis=0)
        np.testing.assert_allclose(mean, f.predict_proba(X), rtol=1e-12, atol=1e-15)
        assert all((e.classes_ == f.classes_).all() for e in ests)
    else:
        mean = np.mean([e.predict(X) for e in ests], axis=0)
        np.testing.assert_allclose(mean, f.predict(X), rtol=1e-12)
    imp = np.mean([e.feature_importances_ for e in ests], axis=0)
    np.testing.assert_allclose(imp / imp.sum(), f.feature_importances_, rtol=1e-12)
    assert all(e.get_depth() <= 5 for e in ests)


def test_estimators_carry_the_forest_tree_parameters(clf_data):
    X, y = clf_data[0][:600], clf_data[1][:600]
    f = RandomForestClassifier(3, criterion="entropy", max_leaf_nodes=7,
                               min_impurity_decrease=1e-3, random_state=0).fit(X, y)
    e = f.estimators_[0]
    p = e.get_params()
    assert (p["criterion"], p["max_leaf_nodes"], p["min_impurity_decrease"]) == (
        "entropy", 7, 1e-3)
    assert clone(e).fit(X, y).get_n_leaves() <= 7


def test_n_jobs_is_honoured_when_n_threads_is_none(monkeypatch, clf_data):
    import parml._core.trees as B
    seen = []
    real = B.build

    def spy(*a, **kw):
        seen.append(kw["n_threads"])
        return real(*a, **kw)

    monkeypatch.setattr(B, "build", spy)
    X, y = clf_data[0][:300], clf_data[1][:300]
    RandomForestClassifier(4, n_jobs=1, random_state=0).fit(X, y)
    RandomForestClassifier(4, n_jobs=2, random_state=0).fit(X, y)
    RandomForestClassifier(4, n_jobs=2, n_threads=1, random_state=0).fit(X, y)
    RandomForestRegressor(4, n_jobs=3, random_state=0).fit(X, y)
    assert seen == [1, 2, 1, 3]


@pytest.mark.parametrize("cls", ALL)
def test_identical_for_any_thread_count(cls, clf_data):
    X, y = clf_data[0][:1500], clf_data[1][:1500]
    X = X.copy()
    X[::11, 3] = np.nan
    m = "predict_proba" if is_clf(cls) else "predict"
    outs = []
    for k in (1, 2, 4):
        est = small(cls, random_state=5, max_features=0.5, n_threads=k).fit(X, y)
        outs.append((getattr(est, m)(X), est.feature_importances_))
    for o in outs[1:]:
        np.testing.assert_array_equal(o[0], outs[0][0])
        np.testing.assert_array_equal(o[1], outs[0][1])


def test_max_samples(clf_data):
    X, y = clf_data[0][:400], clf_data[1][:400]
    for ms, n_boot in ((0.25, 100), (37, 37), (1.0, 400)):
        f = RandomForestClassifier(6, max_samples=ms, random_state=0).fit(X, y)
        for e in f.estimators_:  # each draw adds weight 1 to the root
            assert e.tree_.weighted_n_node_samples[0] == n_boot
            assert e.tree_.n_node_samples[0] <= n_boot
    with pytest.raises(ValueError):
        RandomForestClassifier(2, max_samples=401).fit(X, y)
    with pytest.raises(ValueError):
        RandomForestClassifier(2, max_samples=0.5, bootstrap=False).fit(X, y)
    with pytest.raises(ValueError):
        RandomForestClassifier(2, oob_score=True, bootstrap=False).fit(X, y)


def test_class_weight(clf_data):
    X, y = clf_data[0][:600], clf_data[1][:600].copy()
    y[:400] = 0  # unbalanced
    kw = dict(n_estimators=6, random_state=2, max_depth=6)
    for cls in (DecisionTreeClassifier, RandomForestClassifier):
        kwc = kw if cls is RandomForestClassifier else dict(random_state=2, max_depth=6)
        bal = cls(class_weight="balanced", **kwc).fit(X, y)
        sw = cls(**kwc).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
        np.testing.assert_array_equal(bal.predict_proba(X), sw.predict_proba(X))
        d = {0: 1.0, 1: 3.5}
        a = cls(class_weight=d, **kwc).fit(X, y, sample_weight=np.full(600, 2.0))
        b = cls(**kwc).fit(X, y, sample_weight=2.0 * np.where(y == 1, 3.5, 1.0))
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # balanced_subsample: each tree sees its bootstrap sample's classes with equal weight
    f = RandomForestClassifier(class_weight="balanced_subsample", **kw).fit(X, y)
    for e in f.estimators_:
        np.testing.assert_allclose(e.tree_.value[0, 0], [0.5, 0.5], rtol=1e-12)
    # ... and without bootstrap it is "balanced"
    a = RandomForestClassifier(class_weight="balanced_subsample", bootstrap=False, **kw).fit(X, y)
    b = RandomForestClassifier(class_weight="balanced", bootstrap=False, **kw).fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-12)
    with pytest.raises(ValueError):
        DecisionTreeClassifier(class_weight="balanced_subsample").fit(X, y)


# ---- sample weights ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [DecisionTreeRegressor, DecisionTreeClassifier,
                                 RandomForestRegressor])
def test_zero_weight_rows_are_dropped_rows_when_bins_do_not_change(cls):
    """Weight 0 on rows whose values all occur in other rows: the same tree as without them."""
    X, y, _ = exact_bin_data(11, n=600, levels=10, task="clf" if is_clf(cls) else "reg")
    sw = np.ones(600)
    sw[::5] = 0
    kw = dict(random_state=0)
    if cls is RandomForestRegressor:
        kw.update(n_estimators=3, bootstrap=False, max_features=None)
    a = cls(**kw).fit(X, y, sample_weight=sw)
    b = cls(**kw).fit(X[sw > 0], y[sw > 0])
    m = "predict_proba" if is_clf(cls) else "predict"
    np.testing.assert_allclose(getattr(a, m)(X), getattr(b, m)(X), rtol=1e-12)


@pytest.mark.parametrize("cls", [DecisionTreeRegressor, DecisionTreeClassifier])
def test_zero_weight_rows_are_dropped_rows(cls):
    """x = 0, 1, 2, 3 with y = 0, 0, 1, 1 and weight 0 on x = 2: the tree of the other three
    rows splits halfway between 1 and 3 (scikit-learn: threshold 2.0), so x = 2 is predicted as
    class / value 0."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    sw = np.array([1.0, 1.0, 0.0, 1.0])
    keep = sw > 0
    a = cls(random_state=0).fit(X, y, sample_weight=sw)
    b = cls(random_state=0).fit(X[keep], y[keep])
    sk = (ST.DecisionTreeClassifier() if is_clf(cls) else ST.DecisionTreeRegressor()).fit(
        X, y, sample_weight=sw)
    np.testing.assert_array_equal(b.predict(X), sk.predict(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("cls", [DecisionTreeRegressor, DecisionTreeClassifier])
def test_integer_weights_are_repeated_rows(cls):
    X, y, _ = exact_bin_data(12, n=300, levels=12, task="clf" if is_clf(cls) else "reg")
    sw = np.random.default_rng(0).integers(1, 4, 300)
    a = cls(random_state=0).fit(X, y, sample_weight=sw)
    b = cls(random_state=0).fit(np.repeat(X, sw, axis=0), np.repeat(y, sw))
    m = "predict_proba" if is_clf(cls) else "predict"
    np.testing.assert_allclose(getattr(a, m)(X), getattr(b, m)(X), rtol=1e-12)


def test_forest_with_few_weighted_rows_predicts_probabilities():
    rng = np.random.default_rng(0)
    X = rng.random((100, 2))
    y = (X[:, 0] > 0.5).astype(int)
    y[[0, 1]] = [0, 1]
    sw = np.zeros(100)
    sw[[0, 1]] = 1.0  # a bootstrap of 100 rows misses both with probability 0.98**100 = 0.13
    f = RandomForestClassifier(20, random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(f.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)


def test_forest_bootstrap_draws_follow_sample_weight():
    """Three rows with weight, 97 without: scikit-learn's trees see (almost surely) all three
    rows and predict them exactly; parml's often see one or two of them."""
    rng = np.random.default_rng(0)
    X = rng.random((100, 2))
    y = np.zeros(100)
    y[1] = 10.0
    sw = np.zeros(100)
    sw[:3] = 1.0
    sk = SE.RandomForestRegressor(20, random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(sk.predict(X[:3]), [0, 10, 0])
    p = RandomForestRegressor(20, random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(p.predict(X[:3]), [0, 10, 0], atol=1e-9)


def test_forest_balanced_class_weight_counts_sample_weights():
    X, y, sw = exact_bin_data(3, n=400, task="clf")
    y[:250] = 0
    kw = dict(n_estimators=2, bootstrap=False, max_features=None, random_state=0, max_depth=4,
              min_samples_leaf=10, class_weight="balanced")
    a = RandomForestClassifier(**kw).fit(X, y, sample_weight=sw)
    b = SE.RandomForestClassifier(**kw).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9)


def test_forest_fractional_max_samples_like_sklearn():
    rng = np.random.default_rng(0)
    X = rng.random((10, 2))
    y = np.arange(10) % 2
    f = RandomForestClassifier(4, max_samples=0.35, random_state=0).fit(X, y)
    assert all(e.tree_.weighted_n_node_samples[0] == 3 for e in f.estimators_)
    f = RandomForestClassifier(4, max_samples=0.5, random_state=0).fit(
        X, y, sample_weight=np.full(10, 2.0))
    assert all(e.tree_.weighted_n_node_samples[0] == 10 for e in f.estimators_)


# ---- missing values ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_informative_missing_values_are_used(cls):
    """Feature 0 is missing exactly when y is 1 (classes) / high (regression); the other
    features are noise. The model finds it, and NaN rows at predict time go the right way."""
    rng = np.random.default_rng(0)
    n = 600
    X = rng.normal(size=(n, 4))
    label = rng.random(n) < 0.4
    X[label, 0] = np.nan
    y = label.astype(int) if is_clf(cls) else label * 10.0 + rng.normal(scale=0.1, size=n)
    est = small(cls, random_state=0, max_depth=3).fit(X, y)
    Xt = rng.normal(size=(200, 4))
    Xt[:100, 0] = np.nan
    pred = est.predict(Xt)
    if is_clf(cls):
        assert (pred[:100] == 1).all() and (pred[100:] == 0).mean() > 0.95
    else:
        assert (pred[:100] > 9).all() and (pred[100:] < 1).mean() > 0.95
    assert est.feature_importances_[0] > 0.9


def test_nan_at_predict_time_follows_sklearn_rule_on_ties():
    X = np.arange(10.0)[:, None]
    y = np.r_[np.zeros(5), np.ones(5)]
    p = DecisionTreeClassifier().fit(X, y)
    s = ST.DecisionTreeClassifier().fit(X, y)
    np.testing.assert_array_equal(p.predict([[np.nan]]), s.predict([[np.nan]]))


def test_values_vs_missing_split_sends_every_present_value_left():
    """Left of the root (x0 = 0): x1 in 1..5 is class 0, x1 missing is class 1; right of it
    x1 runs up to 10. A row with x0 = 0 and x1 = 8 has x1 present: class 0 (scikit-learn)."""
    A = np.c_[np.zeros(10), np.tile(np.arange(1.0, 6.0), 2)]
    B = np.c_[np.zeros(10), np.full(10, np.nan)]
    C = np.c_[np.ones(20), np.tile(np.arange(1.0, 11.0), 2)]
    X = np.r_[A, B, C]
    y = np.r_[np.zeros(10), np.ones(10), np.full(20, 2.0)]
    p = DecisionTreeClassifier(random_state=0).fit(X, y)
    s = ST.DecisionTreeClassifier(random_state=0).fit(X, y)
    np.testing.assert_array_equal(p.predict(X), y)
    Xt = np.array([[0.0, 8.0], [0.0, 3.0], [0.0, np.nan], [1.0, np.nan]])
    np.testing.assert_array_equal(s.predict(Xt)[:3], [0, 0, 1])
    np.testing.assert_array_equal(p.predict(Xt), s.predict(Xt))


@pytest.mark.parametrize("cls", ALL)
def test_float32_input_and_nan_only_feature(cls):
    X, y, _ = exact_bin_data(2, n=300, task="clf" if is_clf(cls) else "reg")
    X[:, 4] = np.nan
    a = small(cls, random_state=0).fit(X, y)
    b = small(cls, random_state=0).fit(X.astype(np.float32), y)
    m = "predict_proba" if is_clf(cls) else "predict"
    np.testing.assert_array_equal(getattr(a, m)(X), getattr(b, m)(X.astype(np.float32)))
    assert a.feature_importances_[4] == 0


def test_huge_finite_values():
    X = np.array([[1.0e308], [1.2e308], [1.4e308], [1.6e308]])
    y = np.array([0, 0, 1, 1])
    try:
        est = DecisionTreeClassifier().fit(X, y)
    except ValueError:
        return  # refusing values this large is fine (scikit-learn does)
    np.testing.assert_array_equal(est.predict(X), y)


def test_huge_finite_targets():
    x = np.linspace(-1, 1, 100)[:, None]
    y = np.where(x[:, 0] > 0, 1e200, -1e200)
    try:
        est = DecisionTreeRegressor().fit(x, y)
    except ValueError:
        return  # refusing such targets would do too
    np.testing.assert_allclose(est.predict(x), y, rtol=1e-9)


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_tree_view_works_with_sklearn_export_graphviz(cls):
    X, y, _ = exact_bin_data(6, n=200, task="clf" if is_clf(cls) else "reg")
    est = cls(max_depth=2, random_state=0).fit(X, y)
    dot = ST.export_graphviz(est)
    assert dot.count("->") == est.tree_.node_count - 1


# ---- pickling -------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
@pytest.mark.parametrize("cls", ALL)
def test_pickle_round_trip(cls):
    X, y, _ = exact_bin_data(9, n=300, nan_frac=0.05, task="clf" if is_clf(cls) else "reg")
    kw = dict(oob_score=True, n_estimators=8) if cls in SMALL else {}
    est = cls(random_state=0, **kw).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    m = "predict_proba" if is_clf(cls) else "predict"
    np.testing.assert_array_equal(getattr(back, m)(X), getattr(est, m)(X))
    np.testing.assert_array_equal(back.feature_importances_, est.feature_importances_)
    if cls in SMALL:
        assert back.oob_score_ == est.oob_score_ and len(back.estimators_) == 8


@pytest.mark.parametrize("cls", ALL)
def test_safe_format_round_trip(cls, tmp_path):
    """parml.save / parml.load (arrays + JSON, memory-mapped): the same predictions."""
    import parml
    X, y, _ = exact_bin_data(10, n=300, nan_frac=0.05, task="clf" if is_clf(cls) else "reg")
    est = small(cls, random_state=0).fit(X, y)
    parml.save(est, tmp_path / "model")
    back = parml.load(tmp_path / "model")
    m = "predict_proba" if is_clf(cls) else "predict"
    np.testing.assert_array_equal(getattr(back, m)(X), getattr(est, m)(X))


@pytest.mark.parametrize("cls", ALL)
def test_feature_names(cls):
    pd = pytest.importorskip("pandas")
    X, y, _ = exact_bin_data(13, n=200, task="clf" if is_clf(cls) else "reg")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = small(cls, random_state=0).fit(df, y)
    assert list(est.feature_names_in_) == list(df.columns)
    m = "predict_proba" if is_clf(cls) else "predict"
    with pytest.warns(UserWarning, match="feature names"):  # as scikit-learn
        plain = getattr(est, m)(np.ascontiguousarray(X))
    np.testing.assert_array_equal(getattr(est, m)(df), plain)
    with pytest.raises(ValueError):
        getattr(est, m)(df[df.columns[::-1]])
