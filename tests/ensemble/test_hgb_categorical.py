"""HistGradientBoosting with categorical features (issue 4).

scikit-learn 1.9 is the oracle where the two split rules are the same rule. Both order the
categories of a node that have enough support by G / (H + 10) and scan prefixes of that order
from both ends; the left set's gain is the usual one. They differ in details (see
splitting.pyx, _find_best_bin_to_split_category, against hist.h, parml_split_categorical):

  support    scikit-learn: hessian-weighted rows, h_cat * n_node / H_node >= 10; parml: rows,
             count >= 10. The same for a constant hessian (squared error).
  scan       scikit-learn stops each direction at the middle ((u + 1) // 2 and (u + 1) // 2 - 1
             of the u supported categories); parml scans every prefix both ways. Without
             low-support categories both give the same partitions (mirrored left/right), with
             them parml offers more (a low-support category may end up with the smaller side).
  u == 1     scikit-learn never splits with a single supported category; parml splits it
             against the low-support rest.
  unseen NaN scikit-learn: a feature that had no NaN in training sends NaN to the larger child
             (ties right); one that had NaN somewhere sends it right at nodes whose set lacks
             the missing bin. parml decides per node: the missing bin's side when the node had
             missing rows, else the larger child (ties left).
  codes      scikit-learn ordinal-encodes any values (negative, 2.5 are categories); parml wants
             integer codes < max_bins (negative = missing, non-integers refused).

So the oracle data keep every category of every node above the support: the rows sit in
cells (one per combination of the categorical codes and the numeric feature's values), each of
20+ rows, and every node of a tree over these features is a union of cells. Regression (constant
hessian) then follows the same rule in both, and so does log loss while no category's hessian
falls below half the node's mean (moderate probabilities, few iterations). Numeric features have
fewer than 255 distinct values, so the bins are identical. Where the rules differ the test
asserts quality within a tolerance instead."""

import itertools
import os
import warnings

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier as SkC
from sklearn.ensemble import HistGradientBoostingRegressor as SkR
from sklearn.metrics import log_loss, mean_squared_error

import parml
from parml.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

Reg, Clf = HistGradientBoostingRegressor, HistGradientBoostingClassifier


# ---- data ---------------------------------------------------------------------------------------

def cell_data(seed, levels=(5, 7, 12), lo=20, hi=45, nan_level=True):
    """Features: two categorical (codes 0..k-1; feature 0's last level is NaN when nan_level)
    and one numeric with levels[2] values; every combination (cell) holds lo..hi-1 rows."""
    r = np.random.default_rng(seed)
    grid = np.array(list(itertools.product(*[range(k) for k in levels])), float)
    X = np.repeat(grid, r.integers(lo, hi, len(grid)), axis=0)
    X = X[r.permutation(len(X))]
    i0, i1 = X[:, 0].astype(int), X[:, 1].astype(int)
    e0, e1 = r.normal(size=levels[0]) * 2, r.normal(size=levels[1]) * 2
    y = e0[i0] + e1[i1] + 0.7 * X[:, 2] + e0[i0] * X[:, 2] + r.normal(size=len(X)) * 0.5
    if nan_level:
        X[X[:, 0] == levels[0] - 1, 0] = np.nan
    X[:, 2] = X[:, 2] * 1.3 - 0.2
    return X, y, r


def binary_target(y, r):
    p = 1 / (1 + np.exp(-(y - y.mean()) / (3 * y.std())))     # 0.3 .. 0.7
    return (r.random(len(y)) < p).astype(int)


def three_classes(y, r):
    return np.digitize(y + r.normal(size=len(y)) * 2, np.quantile(y, [0.33, 0.66]))


def skewed_data(seed, n=4000, k=40):
    """A 40-category feature with Zipf frequencies (many categories below 10 rows; 5% NaN),
    an 8-category one and a numeric one with 200 values: low-support categories everywhere,
    where scikit-learn's and parml's rules part ways."""
    r = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, k + 1) ** 1.3
    c0 = r.choice(k, n, p=w / w.sum())
    c1 = r.integers(0, 8, n)
    x = r.integers(0, 200, n) / 20.0
    e0, e1 = r.normal(size=k) * 2, r.normal(size=8)
    y = e0[c0] + e1[c1] + np.sin(x) + r.normal(size=n) * 0.5
    c0f = c0.astype(float)
    nan = r.random(n) < 0.05
    c0f[nan] = np.nan
    y[nan] += 1.5
    return np.c_[c0f, c1, x], y, r


NO_ES = dict(early_stopping=False)


# ---- 1. scikit-learn as the oracle --------------------------------------------------------------

def close_to_sklearn(a, b, scale):
    """Both sum float32 gradients into float64 histograms, perhaps in another order; one split
    chosen differently moves predictions by a leaf value (>= 1e-3 here), so 1e-9 separates
    'same trees' from 'other trees' with room on both sides."""
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("seed,params", [
    (0, dict(max_leaf_nodes=15)),
    (1, dict(max_leaf_nodes=31, l2_regularization=0.5)),
    (2, dict(max_leaf_nodes=None, max_depth=4, min_samples_leaf=40)),
])
def test_regressor_matches_sklearn_where_the_rules_coincide(seed, params):
    X, y, _ = cell_data(seed)
    kw = dict(max_iter=30, categorical_features=[0, 1], **NO_ES, **params)
    ours, theirs = Reg(**kw).fit(X, y), SkR(**kw).fit(X, y)
    np.testing.assert_array_equal(ours.is_categorical_, theirs.is_categorical_)
    close_to_sklearn(ours.predict(X), theirs.predict(X), y.std())
    # categorical splits were used (feature 0 has a NaN level: missing as a category)
    parts = ours._forest.parts
    assert sum(int(a["node_cat"].sum()) for a, _ in parts) > 30
    # the same number of leaves per tree
    ours_leaves = [int((a["left"] < 0).sum()) for a, _ in parts]
    theirs_leaves = [int(p[0].nodes["is_leaf"].sum()) for p in theirs._predictors]
    assert ours_leaves == theirs_leaves


def test_regressor_matches_sklearn_with_sparse_codes():
    """Codes 0, 3, 7, 20 (scikit-learn re-encodes them 0..3, parml bins them as they are): the
    same partitions, the same predictions."""
    X, y, _ = cell_data(3, levels=(4, 6, 5), nan_level=False)
    X[:, 0] = np.array([0, 3, 7, 20])[X[:, 0].astype(int)]
    kw = dict(max_iter=25, categorical_features=[True, True, False], **NO_ES)
    close_to_sklearn(Reg(**kw).fit(X, y).predict(X), SkR(**kw).fit(X, y).predict(X), y.std())


def test_255_categories_and_missing_use_the_whole_bitset():
    """Codes 0..254 and NaN (bin 255): every word of the 256-bit sets, the missing bit too."""
    r = np.random.default_rng(8)
    cells = np.array(list(itertools.product(np.r_[np.arange(255.0), np.nan], [0.0, 1.0])))
    codes, x = np.repeat(cells, r.integers(12, 25, len(cells)), axis=0).T   # 12+ rows a cell
    eff = r.normal(size=256) * 3
    y = eff[np.nan_to_num(codes, nan=255).astype(int)] * (1 + x) + r.normal(size=len(codes))
    X = np.c_[codes, x]
    kw = dict(max_iter=10, categorical_features=[0], **NO_ES)
    ours = Reg(**kw).fit(X, y)
    close_to_sklearn(ours.predict(X), SkR(**kw).fit(X, y).predict(X), y.std())
    cats = np.concatenate([a["cats"][a["node_cat"] == 1] for a, _ in ours._forest.parts])
    assert (cats != 0).any(axis=0).all()                      # all eight words in use
    assert ((cats[:, 7] >> 31) & 1).any()                    # the missing bin sent left
    # any thread count: the same model
    one = Reg(n_threads=1, **kw).fit(X, y)
    np.testing.assert_array_equal(one.predict(X), ours.predict(X))


def test_classifiers_match_sklearn_where_the_rules_coincide():
    X, y, r = cell_data(1, levels=(4, 6, 3), lo=40, hi=80)
    kw = dict(max_iter=15, max_leaf_nodes=15, categorical_features=[0, 1], **NO_ES)
    yb, yk = binary_target(y, r), three_classes(y, r)
    for target in (yb, yk):
        ours, theirs = Clf(**kw).fit(X, target), SkC(**kw).fit(X, target)
        close_to_sklearn(ours.predict_proba(X), theirs.predict_proba(X), 1.0)
        if target is yb:   # (multiclass raw scores differ from scikit-learn's by a constant)
            close_to_sklearn(ours.decision_function(X), theirs.decision_function(X), 1.0)
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("seed", [1, 3])
def test_quality_like_sklearn_where_the_rules_differ(seed):
    """Low-support categories everywhere: the rules differ (support, scan, u == 1), so the trees
    do (predictions up to ~1 apart). Held-out quality must stay close: MSE within 10%, log loss
    within 5% (measured over six seeds: at most 3.2% and 2.7% worse)."""
    X, y, r = skewed_data(seed)
    tr, te = np.arange(len(y)) < 3000, np.arange(len(y)) >= 3000
    kw = dict(max_iter=60, categorical_features=[0, 1], **NO_ES)
    mse = lambda m: mean_squared_error(y[te], m.fit(X[tr], y[tr]).predict(X[te]))  # noqa: E731
    assert mse(Reg(**kw)) <= 1.10 * mse(SkR(**kw))
    for target in (binary_target(y, r), three_classes(y, r)):
        ll = lambda m: log_loss(target[te], m.fit(X[tr], target[tr]).predict_proba(X[te]))  # noqa
        assert ll(Clf(**kw)) <= 1.05 * ll(SkC(**kw))


# ---- 2. spec forms, dataframes, is_categorical_ -------------------------------------------------

def small_data(seed=0, n=800):
    r = np.random.default_rng(seed)
    c = r.integers(0, 5, n)
    x = r.normal(size=n)
    y = np.array([0.0, 5.0, -3.0, 2.0, 8.0])[c] + x + r.normal(size=n) * 0.2
    return np.c_[c, x].astype(float), y


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_spec_forms_agree_and_set_is_categorical():
    pd = pytest.importorskip("pandas")
    X, y = small_data()
    kw = dict(max_iter=15, **NO_ES)
    ref = Reg(categorical_features=[0], **kw).fit(X, y)
    np.testing.assert_array_equal(ref.is_categorical_, [True, False])
    p = ref.predict(X)
    df = pd.DataFrame(X, columns=["c", "x"])
    cat = pd.DataFrame({"c": pd.Categorical(X[:, 0].astype(int), categories=range(5)),
                        "x": X[:, 1]})
    for spec, data in [([True, False], X), (np.array([True, False]), X), ((0,), X),
                       (np.array([0], np.int64), X), (["c"], df), (np.array(["c"]), df),
                       ("from_dtype", cat)]:
        m = Reg(categorical_features=spec, **kw).fit(data, y)
        np.testing.assert_array_equal(m.is_categorical_, [True, False])
        np.testing.assert_array_equal(m.predict(data), p)
    # nothing categorical: None, like scikit-learn, and exactly the numeric model
    num = Reg(categorical_features=None, **kw).fit(X, y)
    assert num.is_categorical_ is None
    assert not any(a.get("node_cat") is not None and a["node_cat"].any()
                   for a, _ in num._forest.parts)
    for spec, data in [("from_dtype", X), ("from_dtype", df), ([], X), ([False, False], X),
                       (np.zeros(2, bool), X)]:
        m = Reg(categorical_features=spec, **kw).fit(data, y)
        assert m.is_categorical_ is None
        np.testing.assert_array_equal(m.predict(X), num.predict(X))
    # the spec is honoured: the categorical model's splits on feature 0 are sets
    cat_nodes = [a["feature"][a["node_cat"] == 1] for a, _ in ref._forest.parts]
    assert sum(len(c) for c in cat_nodes) > 0 and all((c == 0).all() for c in cat_nodes)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_from_dtype_frames_are_encoded_by_their_categories():
    pd = pytest.importorskip("pandas")
    X, y = small_data()
    labels = np.array(["red", "green", "blue", "cyan", "mauve"])
    col = labels[X[:, 0].astype(int)].astype(object)
    col[:40] = None                                          # missing values in a category column
    X[:40, 0] = np.nan
    df = pd.DataFrame({"colour": pd.Categorical(col, categories=list(labels)), "x": X[:, 1]})
    kw = dict(max_iter=15, **NO_ES)
    m = Reg(**kw).fit(df, y)                                  # "from_dtype" is the default
    np.testing.assert_array_equal(m.is_categorical_, [True, False])
    assert list(m.feature_names_in_) == ["colour", "x"]
    # code = position in the frame's categories: the same model as the codes with a mask
    p = m.predict(df)
    np.testing.assert_array_equal(p, Reg(categorical_features=[0], **kw).fit(X, y).predict(X))
    np.testing.assert_array_equal(m.predict(X), p)           # arrays hold codes
    # another order of the same categories at predict: same predictions
    df2 = df.copy()
    df2["colour"] = df2["colour"].cat.reorder_categories(labels[::-1].tolist())
    np.testing.assert_array_equal(m.predict(df2), p)
    df3 = df.copy()
    df3["colour"] = df3["colour"].cat.set_categories(["mauve", "blue", "red", "cyan", "green",
                                                      "taupe"])
    np.testing.assert_array_equal(m.predict(df3), p)
    # an unseen category follows the missing direction, exactly like NaN
    new = pd.DataFrame({"colour": pd.Categorical(["taupe", None, "red", "taupe"],
                                                 categories=["red", "taupe"]),
                        "x": [0.5, 0.5, 0.5, -1.0]})
    got = m.predict(new)
    assert got[0] == got[1]
    codes = np.array([[np.nan, 0.5], [np.nan, 0.5], [0, 0.5], [np.nan, -1.0]])
    np.testing.assert_array_equal(got, m.predict(codes))
    assert got[2] != got[1]                                   # "red" is not missing


def test_unseen_categories_need_no_deprecated_pandas_path():
    pd = pytest.importorskip("pandas")
    if not hasattr(pd.errors, "Pandas4Warning"):
        pytest.skip("this pandas does not deprecate it")
    X, y = small_data()
    labels = np.array(list("abcde"))
    df = pd.DataFrame({"c": pd.Categorical(labels[X[:, 0].astype(int)]), "x": X[:, 1]})
    m = Reg(max_iter=3).fit(df, y)
    new = pd.DataFrame({"c": pd.Categorical(["a", "zz"]), "x": [0.0, 0.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.Pandas4Warning)
        m.predict(new)


def test_explicit_specs_on_category_columns():
    pd = pytest.importorskip("pandas")
    X, y = small_data()
    labels = np.array(list("abcde"))
    df = pd.DataFrame({"c": pd.Categorical(labels[X[:, 0].astype(int)]), "x": X[:, 1]})
    kw = dict(max_iter=10, **NO_ES)
    p = Reg(**kw).fit(df, y).predict(df)
    for spec in (["c"], [0], [True, False]):
        m = Reg(categorical_features=spec, **kw).fit(df, y)
        np.testing.assert_array_equal(m.predict(df), p)


# ---- 4. prediction semantics --------------------------------------------------------------------

def test_odd_values_follow_the_missing_direction():
    X, y = small_data(1)
    X[:, 0] = np.where(X[:, 0] == 4, 5, X[:, 0])             # codes 0..3 and 5: 4 never seen
    for with_nan in (False, True):
        Xf = X.copy()
        if with_nan:                                          # NaN learned as a category
            Xf[:60, 0] = np.nan
            y2 = y.copy()
            y2[:60] = 20.0
        else:
            y2 = y
        m = Reg(categorical_features=[0], max_iter=20, **NO_ES).fit(Xf, y2)
        x = np.linspace(-2, 2, 7)
        nan = m.predict(np.c_[np.full(7, np.nan), x])
        for v in (-1.0, -0.5, 2.5, 0.999, 4.0, 6.0, 254.0, 255.0, 256.0, 300.0, 1e9, -1e9):
            np.testing.assert_array_equal(m.predict(np.c_[np.full(7, v), x]), nan, err_msg=str(v))
        if with_nan:   # the NaN rows had their own target (20): odd values get it too, known
            assert nan.min() > 15                             # categories do not
            for v in (0.0, 1.0, 2.0, 3.0, 5.0):
                assert m.predict(np.c_[np.full(7, v), x]).max() < 15
        # float32 rows: the same walk
        Z = np.c_[np.r_[np.arange(7.0), np.nan, -1, 2.5, 300], np.linspace(-2, 2, 11)]
        np.testing.assert_array_equal(m.predict(Z.astype(np.float32)),
                                      m.predict(Z.astype(np.float32).astype(np.float64)))
    # float32 at fit too (x in 1/8 steps: exact in float32, so the same bins and trees)
    X[:, 1] = np.round(X[:, 1] * 8) / 8
    m64 = Reg(categorical_features=[0], max_iter=10, **NO_ES).fit(X, y)
    m32 = Reg(categorical_features=[0], max_iter=10, **NO_ES).fit(X.astype(np.float32), y)
    np.testing.assert_array_equal(m32.predict(X), m64.predict(X))


def test_a_stump_sends_the_learned_set_left():
    """One split, learning_rate 1: the prediction of each category is its group's mean."""
    r = np.random.default_rng(5)
    c = r.integers(0, 8, 2000)
    high = np.isin(c, [1, 3, 4, 6])
    y = np.where(high, 10.0, 0.0) + r.normal(size=2000) * 0.01
    m = Reg(categorical_features=[0], max_iter=1, max_leaf_nodes=2, learning_rate=1.0,
            **NO_ES).fit(c[:, None].astype(float), y)
    a = m._forest.parts[0][0]
    assert a["node_cat"][0] == 1
    p = m.predict(np.arange(8.0)[:, None])
    np.testing.assert_allclose(p[[1, 3, 4, 6]], y[high].mean(), rtol=1e-6)
    np.testing.assert_allclose(p[[0, 2, 5, 7]], y[~high].mean(), atol=1e-6)


# ---- 5. bad input -------------------------------------------------------------------------------

def test_bad_input_is_a_clear_value_error():
    X, y = small_data()
    fit = lambda spec, data=X, **kw: Reg(categorical_features=spec, max_iter=2,  # noqa: E731
                                         **kw).fit(data, y)
    bad = X.copy()
    bad[5, 0] = 2.5
    with pytest.raises(ValueError, match="non-integer"):
        fit([0], bad)
    with pytest.raises(ValueError, match="max_bins=4"):
        fit([0], X, max_bins=4)                               # codes up to 4
    fit([0], X, max_bins=5)                                   # codes < max_bins: fine
    big = X.copy()
    big[0, 0] = 255
    with pytest.raises(ValueError, match="max_bins=255"):
        fit([0], big)
    with pytest.raises(ValueError, match="one entry per feature"):
        fit([True, False, False])
    with pytest.raises(ValueError, match="one entry per feature"):
        fit([True])
    for spec in ([2], [-1], [0, 5]):
        with pytest.raises(ValueError, match=r"indices must be in \[0, 1\]"):
            fit(spec)
    with pytest.raises(ValueError, match="feature names"):
        fit(["c"])
    with pytest.raises(ValueError, match="'from_dtype'"):
        fit("categorical")                                    # parameter validation
    with pytest.raises(ValueError, match="categorical_features must be"):
        fit([0.5])
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["c", "x"])
    with pytest.raises(ValueError, match=r"nope'\)? is not a column"):
        fit(["c", "nope"], df)                              # (the message says np.str_('nope'))
    # a frame with more categories than max_bins allows codes for
    many = pd.DataFrame({"c": pd.Categorical(np.arange(800) % 300), "x": X[:, 1]})
    with pytest.raises(ValueError, match="max_bins"):
        Reg(max_iter=2).fit(many, y)
    # a column categorical at predict that was not at fit
    m = Reg(max_iter=2).fit(pd.DataFrame({"c": pd.Categorical(X[:, 0].astype(int)),
                                          "x": X[:, 1]}), y)
    wrong = pd.DataFrame({"c": pd.Categorical(X[:, 0].astype(int)),
                          "x": pd.Categorical(np.round(X[:, 1]))})
    with pytest.raises(ValueError, match="categorical but was not at fit"):
        m.predict(wrong)


# ---- 6. persistence, staged_predict, warm_start -------------------------------------------------

def test_save_load_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y, r = cell_data(4, levels=(4, 6, 5))
    Z = np.r_[X[:200], [[np.nan, 0, 1.1], [-1, 2, 1.1], [2.5, 300, 1.1], [9, 5, 1.1]]]
    models = [Reg(categorical_features=[0, 1], max_iter=10, **NO_ES).fit(X, y),
              Clf(categorical_features=[0, 1], max_iter=10, **NO_ES).fit(X, three_classes(y, r))]
    for i, m in enumerate(models):
        path = os.path.join(tmp_path, f"m{i}")
        parml.save(m, path)
        for mmap in (True, False):
            back = parml.load(path, mmap=mmap)
            np.testing.assert_array_equal(back.is_categorical_, m.is_categorical_)
            np.testing.assert_array_equal(back.predict(Z), m.predict(Z))
            if hasattr(m, "predict_proba"):
                np.testing.assert_array_equal(back.predict_proba(Z), m.predict_proba(Z))
            for a, b in zip(back.staged_predict(Z), m.staged_predict(Z)):
                np.testing.assert_array_equal(a, b)
    # fitted on a frame with string categories: categories come back, reordered frames work
    labels = np.array(["w", "x", "y", "z"])
    col = labels[np.nan_to_num(X[:, 0], nan=0).astype(int)].astype(object)
    col[np.isnan(X[:, 0])] = None
    df = pd.DataFrame({"a": pd.Categorical(col, categories=list(labels)), "b": X[:, 1],
                       "c": X[:, 2]})
    m = Reg(max_iter=10, **NO_ES).fit(df, y)
    path = os.path.join(tmp_path, "frame")
    parml.save(m, path)
    back = parml.load(path)
    assert back._frame_categories == {0: ["w", "x", "y", "z"]}
    np.testing.assert_array_equal(back.is_categorical_, [True, False, False])
    assert list(back.feature_names_in_) == ["a", "b", "c"]
    df2 = df.copy()
    df2["a"] = df2["a"].cat.reorder_categories(["z", "y", "x", "w"])
    np.testing.assert_array_equal(back.predict(df2), m.predict(df))
    # a model without categorical features keeps is_categorical_ None
    plain = Reg(categorical_features=None, max_iter=3, **NO_ES).fit(X, y)
    parml.save(plain, os.path.join(tmp_path, "plain"))
    assert parml.load(os.path.join(tmp_path, "plain")).is_categorical_ is None


def test_loading_a_frame_fitted_model_is_silent(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = small_data()
    df = pd.DataFrame({"c": pd.Categorical(X[:, 0].astype(int)), "x": X[:, 1]})
    parml.save(Reg(max_iter=3).fit(df, y), os.path.join(tmp_path, "m"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parml.load(os.path.join(tmp_path, "m"))


def test_staged_predict_equals_shorter_fits():
    X, y, r = cell_data(6, levels=(4, 6, 5))
    yk = three_classes(y, r)
    m = Clf(categorical_features=[0, 1], max_iter=6, **NO_ES).fit(X, yk)
    stages = list(m.staged_predict_proba(X))
    assert len(stages) == 6
    np.testing.assert_array_equal(stages[-1], m.predict_proba(X))
    for k in (1, 4):
        short = Clf(categorical_features=[0, 1], max_iter=k, **NO_ES).fit(X, yk)
        np.testing.assert_array_equal(stages[k - 1], short.predict_proba(X))
    reg = Reg(categorical_features=[0, 1], max_iter=5, **NO_ES).fit(X, y)
    np.testing.assert_array_equal(list(reg.staged_predict(X))[-1], reg.predict(X))


def test_warm_start_same_and_different_spec():
    X, y, _ = cell_data(7, levels=(4, 6, 5))
    kw = dict(categorical_features=[0, 1], random_state=0, **NO_ES)
    full = Reg(max_iter=20, **kw).fit(X, y)
    m = Reg(max_iter=8, warm_start=True, **kw).fit(X, y)
    m.set_params(max_iter=20).fit(X, y)
    assert m.n_iter_ == 20
    np.testing.assert_array_equal(m.predict(X), full.predict(X))
    # the same spec in another form is the same spec
    m.set_params(max_iter=22, categorical_features=[True, True, False]).fit(X, y)
    assert m.n_iter_ == 22
    for spec in ([0], None, [1]):
        with pytest.raises(ValueError, match="categorical features differ"):
            m.set_params(max_iter=30, categorical_features=spec).fit(X, y)
    # a numeric model cannot continue as a categorical one either
    n = Reg(max_iter=3, warm_start=True, categorical_features=None, **NO_ES).fit(X, y)
    with pytest.raises(ValueError, match="categorical features differ"):
        n.set_params(max_iter=5, categorical_features=[0]).fit(X, y)


def test_warm_start_keeps_the_frame_categories():
    pd = pytest.importorskip("pandas")
    X, y = small_data()
    labels = np.array(list("abcde"))
    df = pd.DataFrame({"c": pd.Categorical(labels[X[:, 0].astype(int)],
                                           categories=list(labels)), "x": X[:, 1]})
    m = Reg(max_iter=10, warm_start=True, **NO_ES).fit(df, y)
    p = m.predict(df)
    df2 = df.copy()
    df2["c"] = df2["c"].cat.reorder_categories(list(labels[::-1]))
    m.fit(df2, y)                     # max_iter reached: no tree is added
    assert m.n_iter_ == 10
    np.testing.assert_array_equal(m.predict(df), p)


def test_warm_start_with_new_categories_predicts_what_it_trained():
    X, y = small_data(2, n=1500)
    first = X[:, 0] < 2                       # the first fit sees categories 0 and 1 only
    m = Reg(categorical_features=[0], max_iter=10, warm_start=True, **NO_ES)
    m.fit(X[first], y[first]).set_params(max_iter=60).fit(X, y)
    # 50 trees fitted on all five categories: each category is fitted (noise sd 0.2, x's
    # effect learned by the numeric splits)
    p = m.predict(X)
    for k in range(5):
        sel = X[:, 0] == k
        assert np.sqrt(np.mean((p[sel] - y[sel]) ** 2)) < 1.0, k


def test_a_refused_warm_start_leaves_the_model_as_it_was():
    pd = pytest.importorskip("pandas")
    X, y = small_data()
    labels = np.array(list("abcde"))
    df = pd.DataFrame({"c": pd.Categorical(labels[X[:, 0].astype(int)],
                                           categories=list(labels)), "x": X[:, 1]})
    m = Reg(max_iter=5, warm_start=True, **NO_ES).fit(df, y)
    p = m.predict(df)
    df2 = df.copy()
    df2["c"] = df2["c"].cat.reorder_categories(list(labels[::-1]))
    with pytest.raises(ValueError, match="max_iter"):
        m.set_params(max_iter=3).fit(df2, y)                  # refused: fewer iterations
    np.testing.assert_array_equal(m.predict(df), p)
    a = Reg(max_iter=5, warm_start=True, categorical_features=[0], **NO_ES).fit(X, y)
    pa = a.predict(X)
    with pytest.raises(ValueError, match="categorical features differ"):
        a.set_params(max_iter=8).fit(np.c_[X, X[:, 1]], y)   # refused: another feature set
    np.testing.assert_array_equal(a.predict(X), pa)
