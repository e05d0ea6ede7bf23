"""Bad input at the estimator level for parml.tree.DecisionTree* and
parml.ensemble.RandomForest*: NaN / infinity in y, infinity in X, wrong shapes and lengths,
string features, multi-output y, negative / all-zero / NaN sample weights, unsupported
parameters (ccp_alpha, monotonic_cst, splitter="random") and invalid ones: a ValueError (or
NotFittedError before fit), never a crash; a single class fits as in scikit-learn."""
import numpy as np
import pytest
from sklearn import ensemble as SE
from sklearn import tree as ST
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

# parml.ensemble before parml.tree: see test_tree_models.py::test_import_parml_tree_first
from parml.ensemble import RandomForestClassifier, RandomForestRegressor
from parml.tree import DecisionTreeClassifier, DecisionTreeRegressor

ALL = [DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier,
       RandomForestRegressor]
SMALL = {RandomForestClassifier: dict(n_estimators=5), RandomForestRegressor: dict(n_estimators=5)}


def small(cls, **kw):
    return cls(**{**SMALL.get(cls, {}), **kw})


def is_clf(cls):
    return cls in (DecisionTreeClassifier, RandomForestClassifier)


# ---- bad input --------------------------------------------------------------------------------
def _xy(cls, n=40, d=3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] > 0).astype(int) if is_clf(cls) else X[:, 0] * 2.0
    return X, y


@pytest.mark.parametrize("cls", ALL)
def test_bad_input(cls):
    X, y = _xy(cls)
    est = small(cls)
    yn = y.astype(float).copy()
    yn[3] = np.nan
    with pytest.raises(ValueError):
        clone(est).fit(X, yn)
    yi = y.astype(float).copy()
    yi[3] = np.inf
    with pytest.raises(ValueError):
        clone(est).fit(X, yi)
    Xi = X.copy()
    Xi[2, 1] = np.inf
    with pytest.raises(ValueError, match="[Ii]nfinity"):
        clone(est).fit(Xi, y)
    with pytest.raises(ValueError, match="[Ii]nfinity"):
        clone(est).fit(X, y).predict(Xi)
    with pytest.raises(ValueError):
        clone(est).fit(X[:, 0], y)
    with pytest.raises(ValueError):
        clone(est).fit(X[:, :, None], y)
    with pytest.raises(ValueError):
        clone(est).fit(X, y[:-1])
    with pytest.raises(ValueError):
        clone(est).fit(X[:0], y[:0])
    with pytest.raises(ValueError):
        clone(est).fit(np.array([["a", "b", "c"]] * 40), y)
    with pytest.raises(ValueError):  # more than one output: not implemented, refused
        clone(est).fit(X, np.c_[y, y])
    with pytest.raises(ValueError):
        clone(est).fit(X, y, sample_weight=-np.ones(40))
    with pytest.raises(ValueError):
        clone(est).fit(X, y, sample_weight=np.zeros(40))
    with pytest.raises(ValueError):
        clone(est).fit(X, y, sample_weight=np.ones(39))
    sw = np.ones(40)
    sw[0] = np.nan
    with pytest.raises(ValueError):
        clone(est).fit(X, y, sample_weight=sw)
    fitted = clone(est).fit(X, y)
    with pytest.raises(ValueError):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError):
        fitted.predict(X[0])


@pytest.mark.parametrize("cls", ALL)
def test_unsupported_parameters_are_refused(cls):
    X, y = _xy(cls)
    with pytest.raises(ValueError, match="ccp_alpha"):
        small(cls, ccp_alpha=0.01).fit(X, y)
    with pytest.raises(ValueError, match="monotonic_cst"):
        small(cls, monotonic_cst=[1, 0, 0]).fit(X, y)


BAD_PARAMS = [dict(max_depth=0), dict(min_samples_leaf=0), dict(min_samples_split=1),
              dict(min_samples_split=1.5), dict(min_weight_fraction_leaf=0.6),
              dict(max_features=1.5), dict(max_features=0), dict(max_features="all"),
              dict(max_features=4), dict(max_leaf_nodes=1), dict(min_impurity_decrease=-1.0),
              dict(criterion="absolute_error_xyz"), dict(max_bins=256), dict(max_bins=1),
              dict(n_threads=0), dict(n_threads=1.5)]


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("params", BAD_PARAMS, ids=lambda p: str(p))
def test_invalid_parameters(cls, params):
    X, y = _xy(cls)
    with pytest.raises(ValueError):
        small(cls, **params).fit(X, y)


def test_invalid_forest_and_tree_only_parameters():
    X, y = _xy(DecisionTreeClassifier)
    for est in (RandomForestClassifier(n_estimators=0), RandomForestClassifier(bootstrap="yes"),
                RandomForestClassifier(max_samples=0.0), RandomForestClassifier(max_samples=0),
                RandomForestClassifier(class_weight="nope"),
                DecisionTreeClassifier(splitter="random"),  # not implemented: refused
                DecisionTreeClassifier(class_weight={0: -1.0, 1: 1.0}),
                DecisionTreeRegressor(criterion="gini")):
        with pytest.raises(ValueError):
            est.fit(X, y)


@pytest.mark.parametrize("cls", ALL)
def test_single_class_or_constant_target_fits_like_sklearn(cls):
    X, _ = _xy(cls)
    if is_clf(cls):
        y = np.full(40, 7)
        est = small(cls, random_state=0).fit(X, y)
        sk = (ST.DecisionTreeClassifier() if cls is DecisionTreeClassifier else
              SE.RandomForestClassifier(5, random_state=0)).fit(X, y)
        assert list(est.classes_) == list(sk.classes_) == [7]
        np.testing.assert_array_equal(est.predict_proba(X), sk.predict_proba(X))
        np.testing.assert_array_equal(est.predict(X), sk.predict(X))
    else:
        est = small(cls, random_state=0).fit(X, np.full(40, 2.5))
        np.testing.assert_array_equal(est.predict(X), 2.5)
    assert est.feature_importances_.shape == (3,) and not est.feature_importances_.any()


@pytest.mark.parametrize("cls", ALL)
def test_unfitted(cls):
    X, _ = _xy(cls)
    methods = ["predict"] + (["predict_proba", "predict_log_proba"] if is_clf(cls) else [])
    for m in methods:
        if m == "predict" and is_clf(cls):
            continue  # see test_unfitted_classifier_predict
        with pytest.raises(NotFittedError):
            getattr(cls(), m)(X)
    with pytest.raises(NotFittedError):
        _ = cls().feature_importances_
    with pytest.raises(NotFittedError):
        _ = cls().estimators_ if cls in SMALL else cls().get_depth()


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, RandomForestClassifier])
def test_unfitted_classifier_predict(cls):
    X, _ = _xy(cls)
    with pytest.raises(NotFittedError):
        cls().predict(X)
