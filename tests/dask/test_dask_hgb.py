"""parml.dask HistGradientBoosting against the local estimators on the same rows, on the
session's 2-worker LocalCluster: with the same bins (data small enough for the bin sample to be
every row) the trees are the local ones and predictions agree to rounding; partition layouts,
dataframes, prediction on dask collections, bad input, and a worker killed mid-fit."""
import os
import pickle
import signal
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import parml
import parml.dask as PD
import parml.ensemble as E
from parml.dask import _hgb

ATOL = 1e-9   # rounding: the shards' histogram and weight sums add up in another order


def data(n=1500, d=5, kind="reg", seed=0, nan=0.05):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    X[:, 1] = np.round(X[:, 1] * 3)            # a feature with few distinct values
    z = X[:, 0] * 2 + np.sin(3 * X[:, 1]) + X[:, 2] * X[:, 3] + rng.normal(size=n) * 0.3
    if nan:
        X[rng.rand(n, d) < nan] = np.nan
    if kind == "reg":
        return X, z
    if kind == "binary":
        return X, (z > 0.2).astype(int)
    return X, np.digitize(z, [-1.0, 0.5, 2.0])   # 4 classes


def dask_xy(X, y, chunks, sw=None):
    chunks = tuple(chunks)
    Xd = da.from_array(X, chunks=(chunks, (X.shape[1],)))
    yd = da.from_array(y, chunks=(chunks,))
    return Xd, yd, None if sw is None else da.from_array(sw, chunks=(chunks,))


def assert_same_model(dist, local, X):
    """The forest of the dask fit is the local one node for node; predictions to rounding."""
    m = dist.to_local()
    assert type(m) is type(local)
    assert m.n_iter_ == local.n_iter_
    fd, fl = m._forest.flat(), local._forest.flat()
    for key in ("feature", "left", "right", "missing_left", "roots", "tree_output"):
        np.testing.assert_array_equal(fd[key], fl[key], err_msg=key)
    np.testing.assert_allclose(fd["threshold"], fl["threshold"], rtol=0, atol=0)
    np.testing.assert_allclose(fd["value"], fl["value"], rtol=1e-9, atol=ATOL)
    np.testing.assert_allclose(m._baseline, local._baseline, rtol=1e-12, atol=ATOL)
    method = "predict_proba" if hasattr(local, "classes_") else "predict"
    np.testing.assert_allclose(getattr(m, method)(X), getattr(local, method)(X), rtol=1e-9,
                               atol=ATOL)


PARAMS = {"max_iter": 8, "max_leaf_nodes": 15, "min_samples_leaf": 10,
          "early_stopping": False, "random_state": 0}


@pytest.mark.parametrize("weighted", [False, True])
def test_regressor_equals_local(client, weighted):
    X, y = data()
    sw = np.random.RandomState(1).uniform(0, 3, len(y)) if weighted else None
    local = E.HistGradientBoostingRegressor(**PARAMS).fit(X, y, sample_weight=sw)
    Xd, yd, swd = dask_xy(X, y, (700, 300, 500), sw)
    dist = PD.HistGradientBoostingRegressor(client=client, **PARAMS).fit(Xd, yd, swd)
    assert_same_model(dist, local, X)
    st = dist.fit_stats_
    assert st["partitions"] == 3 and len(st["iteration_seconds"]) == 8
    assert all(r >= 2 for r in st["round_trips"])


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_classifier_equals_local(client, kind):
    X, y = data(kind=kind)
    labels = np.array(["a", "b", "c", "d"])[y]          # string labels kept as given
    local = E.HistGradientBoostingClassifier(**PARAMS).fit(X, labels)
    Xd, yd, _ = dask_xy(X, labels, (500, 500, 500))
    dist = PD.HistGradientBoostingClassifier(client=client, **PARAMS).fit(Xd, yd)
    assert_same_model(dist, local, X)
    np.testing.assert_array_equal(dist.classes_, local.classes_)
    assert dist.n_trees_per_iteration_ == local.n_trees_per_iteration_
    # predictions on dask input: lazy dask arrays equal to the local model's
    proba = dist.predict_proba(Xd)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), local.predict_proba(X), rtol=1e-9, atol=ATOL)
    np.testing.assert_allclose(dist.decision_function(Xd).compute(),
                               local.decision_function(X), rtol=1e-9, atol=ATOL)
    np.testing.assert_array_equal(dist.predict(Xd).compute(), local.predict(X))


def test_max_depth_unlimited_leaves_and_class_weight(client):
    X, y = data(kind="multiclass", seed=3)
    p = dict(PARAMS, max_leaf_nodes=None, max_depth=3, class_weight="balanced")
    local = E.HistGradientBoostingClassifier(**p).fit(X, y)
    Xd, yd, _ = dask_xy(X, y, (1000, 500))
    dist = PD.HistGradientBoostingClassifier(client=client, **p).fit(Xd, yd)
    assert_same_model(dist, local, X)


def test_poisson_regressor_equals_local(client):
    X, z = data(seed=4)
    y = np.random.RandomState(0).poisson(np.exp(np.nan_to_num(z) / 3))
    local = E.HistGradientBoostingRegressor(loss="poisson", **PARAMS).fit(X, y)
    Xd, yd, _ = dask_xy(X, y.astype(float), (750, 750))
    dist = PD.HistGradientBoostingRegressor(loss="poisson", client=client, **PARAMS).fit(Xd, yd)
    assert_same_model(dist, local, X)


@pytest.mark.parametrize("kind", ["reg", "binary"])
def test_early_stopping_equals_local(client, kind):
    """The same validation split and stopping iteration as the local fit, the same scores."""
    X, y = data(n=3000, kind=kind, seed=2)
    p = dict(PARAMS, max_iter=200, early_stopping=True, n_iter_no_change=3, tol=1e-3)
    Local = E.HistGradientBoostingRegressor if kind == "reg" else \
        E.HistGradientBoostingClassifier
    Dist = PD.HistGradientBoostingRegressor if kind == "reg" else \
        PD.HistGradientBoostingClassifier
    local = Local(**p).fit(X, y)
    assert local.n_iter_ < 200                       # it did stop early
    Xd, yd, _ = dask_xy(X, y, (1000, 1200, 800))
    dist = Dist(client=client, **p).fit(Xd, yd)
    assert_same_model(dist, local, X)
    for name in ("train_score_", "validation_score_"):
        np.testing.assert_allclose(getattr(dist, name), getattr(local, name), rtol=1e-12)


def test_warm_start_continues_like_local(client):
    X, y = data(kind="binary", seed=5)
    p = dict(PARAMS, max_iter=4, warm_start=True)
    local = E.HistGradientBoostingClassifier(**p).fit(X, y)
    local.set_params(max_iter=7).fit(X, y)
    Xd, yd, _ = dask_xy(X, y, (900, 600))
    dist = PD.HistGradientBoostingClassifier(client=client, **p).fit(Xd, yd)
    dist.set_params(max_iter=7).fit(Xd, yd)
    assert_same_model(dist, local, X)


def test_partitions_unequal_empty_and_single_class(client):
    """A partition of 0 rows and partitions holding one class only change nothing."""
    X, y = data(n=1200, kind="binary", seed=6)
    order = np.argsort(y, kind="stable")                # first partitions: class 0 only
    X, y = X[order], y[order]
    local = E.HistGradientBoostingClassifier(**PARAMS).fit(X, y)
    Xd, yd, _ = dask_xy(X, y, (300, 0, 50, 850))
    dist = PD.HistGradientBoostingClassifier(client=client, **PARAMS).fit(Xd, yd)
    assert_same_model(dist, local, X)
    assert dist.fit_stats_["partitions"] == 4
    # all rows in one partition, and more partitions than workers
    for chunks in ((1200,), (100,) * 12):
        Xd, yd, _ = dask_xy(X, y, chunks)
        dist = PD.HistGradientBoostingClassifier(client=client, **PARAMS).fit(Xd, yd)
        assert_same_model(dist, local, X)


def test_dataframe_input(client):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, y = data(seed=7)
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    local = E.HistGradientBoostingRegressor(**PARAMS).fit(df, y)
    ddf = dd.from_pandas(df.assign(target=y), npartitions=3)
    dist = PD.HistGradientBoostingRegressor(client=client, **PARAMS).fit(ddf[cols],
                                                                         ddf["target"])
    np.testing.assert_array_equal(dist.feature_names_in_, cols)
    assert_same_model(dist, local, df)
    pred = dist.predict(ddf[cols])
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), local.predict(df), rtol=1e-9, atol=ATOL)
    # categorical features: the local estimator splits on them, parml.dask says it cannot
    cat = dd.from_pandas(df.assign(c=pd.Categorical(np.arange(len(df)) % 3)), npartitions=2)
    with pytest.raises(NotImplementedError, match="categorical"):
        PD.HistGradientBoostingRegressor(client=client).fit(cat, ddf["target"])
    with pytest.raises(NotImplementedError, match="categorical"):
        PD.HistGradientBoostingRegressor(client=client, categorical_features=[0]).fit(
            ddf[cols], ddf["target"])


def test_larger_problem_auc(client):
    """Target: test AUC within 0.002 of the local model's (here: the same)."""
    from sklearn.datasets import make_classification
    from sklearn.metrics import roc_auc_score
    X, y = make_classification(30_000, 12, n_informative=6, random_state=0)
    Xtr, ytr, Xte, yte = X[:24_000], y[:24_000], X[24_000:], y[24_000:]
    p = {"max_iter": 25, "early_stopping": False, "random_state": 0}
    local = E.HistGradientBoostingClassifier(**p).fit(Xtr, ytr)
    Xd, yd, _ = dask_xy(Xtr, ytr, (12_000, 12_000))
    dist = PD.HistGradientBoostingClassifier(client=client, **p).fit(Xd, yd)
    assert dist.fit_stats_["shards"] == 2
    auc_l = roc_auc_score(yte, local.predict_proba(Xte)[:, 1])
    auc_d = roc_auc_score(yte, dist.predict_proba(Xte)[:, 1])    # numpy in: answered locally
    assert abs(auc_d - auc_l) < 0.002
    assert auc_l > 0.9


def test_numpy_input_is_spread_over_the_workers(client):
    X, y = data(kind="binary", seed=10)
    local = E.HistGradientBoostingClassifier(**PARAMS).fit(X, y)
    dist = PD.HistGradientBoostingClassifier(client=client, **PARAMS).fit(X, y)
    assert dist.fit_stats_["partitions"] == 2 and dist.fit_stats_["shards"] == 2
    assert_same_model(dist, local, X)
    np.testing.assert_allclose(dist.predict_proba(X), local.predict_proba(X), atol=ATOL)


def test_to_local_pickle_and_save(client, tmp_path):
    X, y = data(kind="binary", seed=8)
    Xd, yd, _ = dask_xy(X, y, (750, 750))
    with pytest.raises(Exception, match="not fitted"):
        PD.HistGradientBoostingClassifier(client=client).to_local()
    dist = PD.HistGradientBoostingClassifier(client=client, **PARAMS).fit(Xd, yd)
    m = dist.to_local()
    assert isinstance(m, E.HistGradientBoostingClassifier)
    want = m.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(m)).predict_proba(X), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(dist)).to_local().predict_proba(X),
                                  want)
    parml.save(m, tmp_path / "model")
    np.testing.assert_array_equal(parml.load(tmp_path / "model").predict_proba(X), want)


def test_parameters_mirror_the_local_estimators():
    import inspect
    for dist, local in ((PD.HistGradientBoostingRegressor, E.HistGradientBoostingRegressor),
                        (PD.HistGradientBoostingClassifier, E.HistGradientBoostingClassifier)):
        d = dict(inspect.signature(dist).parameters)
        assert d.pop("client").default is None
        loc = inspect.signature(local).parameters
        assert {k: p.default for k, p in d.items()} == {k: p.default for k, p in loc.items()}


def test_bad_input_clear_errors(client):
    X, y = data(n=400, kind="binary")
    Xd, yd, _ = dask_xy(X, y, (200, 200))
    clf = PD.HistGradientBoostingClassifier(client=client, max_iter=2)
    reg = PD.HistGradientBoostingRegressor(client=client, max_iter=2)
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(Xd, da.from_array(np.where(np.arange(400) == 3, np.nan, 1.0), chunks=200))
    Xinf = X.copy()
    Xinf[5, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.fit(da.from_array(Xinf, chunks=(200, 5)), yd)
    with pytest.raises(ValueError, match="rows"):
        clf.fit(Xd, da.from_array(y[:300], chunks=150))
    with pytest.raises(ValueError, match="2-D"):
        clf.fit(da.from_array(X[:, 0], chunks=200), yd)
    with pytest.raises(ValueError, match="one class"):
        clf.fit(Xd, da.zeros(400, chunks=200, dtype=int))
    with pytest.raises(ValueError, match="Negative"):
        reg.fit(Xd, yd, da.from_array(-np.ones(400), chunks=200))
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(Xd, da.from_array(np.linspace(0, 1, 400), chunks=200))
    with pytest.raises(NotImplementedError, match="quantile"):
        PD.HistGradientBoostingRegressor(client=client, loss="absolute_error").fit(Xd, yd)
    with pytest.raises(ValueError, match="max_iter"):
        PD.HistGradientBoostingRegressor(client=client, max_iter=0).fit(Xd, yd)
    assert not hasattr(clf, "local_model_")          # no model left behind by failed fits


@pytest.mark.parametrize("when", ["between", "during"])
def test_worker_killed_mid_fit(monkeypatch, when):
    """A worker SIGKILLed in the middle of a fit (between two rounds, or while a round's calls
    run): its shard is rebuilt on a live worker from its partitions and the trees so far, and
    the fit ends with the model of a fit without failure (or a clear error, never a silently
    different model)."""
    X, y = data(n=4000, kind="binary", seed=9)
    p = dict(PARAMS, max_iter=6, early_stopping=True, n_iter_no_change=50)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        Xd, yd, _ = dask_xy(X, y, (1000,) * 4)
        ref = PD.HistGradientBoostingClassifier(client=client, **p).fit(Xd, yd)
        pids = client.run(os.getpid)
        victim = min(pids)
        orig = _hgb._Run.call
        calls, killed = [], []

        def kill():
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

        def call(self, method, args):   # kill after a few rounds: mid-iteration, mid-fit
            calls.append(method)
            if len(calls) == 7 and not killed:
                if when == "between":
                    kill()
                else:
                    threading.Timer(0.001, kill).start()
            return orig(self, method, args)

        monkeypatch.setattr(_hgb._Run, "call", call)
        est = PD.HistGradientBoostingClassifier(client=client, **p)
        try:
            est.fit(Xd, yd)
        except RuntimeError as e:        # allowed: a clear error and no model
            assert "no model was fitted" in str(e)
            assert not hasattr(est, "local_model_")
        else:
            assert est.fit_stats_["recoveries"] >= 1
            assert_same_model(est, ref.to_local(), X)
            np.testing.assert_array_equal(est.validation_score_, ref.validation_score_)
        assert killed == [victim]

        if when == "during":
            return
        # a fit that cannot recover says so and leaves no model
        monkeypatch.setattr(_hgb, "MAX_RECOVERIES", 0)
        pids = client.run(os.getpid)
        calls.clear()
        killed.clear()
        victim = min(pids)
        est = PD.HistGradientBoostingClassifier(client=client, **p)
        with pytest.raises(RuntimeError, match="no model was fitted"):
            est.fit(Xd, yd)
        assert not hasattr(est, "local_model_")
