"""Prediction on dask collections: lazy dask arrays equal to the local model's answers, the model
scattered once, to_local(), pickling, and local parml estimators inside dask_ml's ParallelPostFit."""
import pickle

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import parml.dask as PD
import parml.linear_model as L


def data(n=500, d=5, k=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    y = (X @ rng.normal(size=(d, k)) + rng.gumbel(size=(n, k))).argmax(axis=1)
    return X, y


@pytest.fixture(scope="module")
def fitted(client):
    X, y = data()
    Xd = da.from_array(X, chunks=(200, 5))
    models = {
        "binary": PD.LogisticRegression().fit(Xd, da.from_array(y == 1, chunks=200)),
        "multiclass": PD.LogisticRegression().fit(Xd, da.from_array(y, chunks=200)),
        "ridge": PD.Ridge().fit(Xd, da.from_array(X @ np.arange(5.0), chunks=200)),
        "ridge2": PD.Ridge().fit(Xd, da.from_array(X[:, :2] * 2, chunks=(200, 2))),
    }
    return models, X


CASES = [("binary", "predict"), ("binary", "predict_proba"), ("binary", "decision_function"),
         ("multiclass", "predict"), ("multiclass", "predict_proba"),
         ("multiclass", "decision_function"), ("multiclass", "predict_log_proba"),
         ("ridge", "predict"), ("ridge2", "predict")]


@pytest.mark.parametrize("name,method", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_dask_array_predictions_equal_local(fitted, name, method):
    models, X = fitted
    est = models[name]
    # uneven chunks with an empty one, and a float32 block type
    for Xin in (X, X.astype(np.float32)):
        Xd = da.from_array(Xin, chunks=((123, 0, 300, 77), (5,)))
        out = getattr(est, method)(Xd)
        assert isinstance(out, da.Array)
        got = out.compute()
        want = getattr(est.to_local(), method)(Xin)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12) if want.dtype.kind == "f" \
            else np.testing.assert_array_equal(got, want)
    # numpy in, numpy out (answered locally)
    np.testing.assert_array_equal(getattr(est, method)(X), getattr(est.to_local(), method)(X))


def test_predict_is_lazy_and_scatters_once(fitted, client):
    est = fitted[0]["multiclass"]
    Xd = da.from_array(fitted[1], chunks=(100, 5))
    a = est.predict_proba(Xd)
    fut = est._scatter_cache[1]
    b = est.decision_function(Xd)
    assert est._scatter_cache[1] is fut               # the model went to the workers once
    assert isinstance(a, da.Array) and isinstance(b, da.Array)
    assert a.chunks == ((100,) * 5, (3,))
    # blocks run nthreads at a time on a worker: the scattered copy uses one thread each
    assert client.submit(lambda m: m.n_threads, fut).result() == 1
    assert est.to_local().n_threads is None


def test_dataframe_predictions(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = data(n=300, d=3, k=2, seed=1)
    df = pd.DataFrame(X, columns=["u", "v", "w"])
    ddf = dd.from_pandas(df, npartitions=3)
    est = PD.LogisticRegression().fit(ddf, dd.from_pandas(pd.Series(y), npartitions=3))
    local = est.to_local()
    p = est.predict_proba(ddf)
    assert isinstance(p, da.Array)
    np.testing.assert_allclose(p.compute(), local.predict_proba(df), rtol=1e-12)
    np.testing.assert_array_equal(est.predict(ddf).compute(), local.predict(df))
    with pytest.raises(ValueError, match="columns"):
        est.predict(ddf[["w", "v", "u"]])


def test_predict_checks_features(fitted):
    est = fitted[0]["binary"]
    with pytest.raises(ValueError, match="features"):
        est.predict(da.ones((10, 4), chunks=5))
    with pytest.raises(ValueError, match="2-D"):
        est.predict(da.ones(10, chunks=5))


def test_to_local_and_not_fitted():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        PD.LogisticRegression().to_local()
    with pytest.raises(NotFittedError):
        PD.Ridge().predict(da.ones((4, 2), chunks=2))


def test_pickling(fitted, client):
    models, X = fitted
    for est in models.values():
        local = pickle.loads(pickle.dumps(est.to_local()))
        np.testing.assert_array_equal(local.predict(X), est.to_local().predict(X))
        # the dask estimator pickles too (without its client or scattered model)
        est.client = client
        try:
            back = pickle.loads(pickle.dumps(est))
        finally:
            est.client = None
        assert back.client is None
        np.testing.assert_array_equal(back.predict(da.from_array(X, chunks=(250, 5))).compute(),
                                      est.to_local().predict(X))


def test_local_estimator_inside_parallel_post_fit(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = data(n=400, d=4, k=3, seed=2)
    local = L.LogisticRegression().fit(X, y)
    wrapped = wrappers.ParallelPostFit(estimator=local)
    wrapped.fit(X, y)        # fits a clone locally, exactly like the plain estimator
    Xd = da.from_array(X, chunks=(150, 4))
    got = wrapped.predict_proba(Xd)
    assert isinstance(got, da.Array)
    np.testing.assert_allclose(got.compute(), local.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(wrapped.predict(Xd).compute(), local.predict(X))
    ridge = wrappers.ParallelPostFit(estimator=L.Ridge().fit(X, X[:, 0] + 1))
    np.testing.assert_allclose(ridge.predict(Xd).compute(), X[:, 0] + 1, atol=1e-2)


def test_clone_keeps_the_client(client):
    from sklearn.base import clone
    for est in (PD.LogisticRegression(C=2.0, client=client), PD.Ridge(alpha=[1.0, 2.0], client=client)):
        new = clone(est)
        assert new.client is client and new is not est
        assert new.get_params().keys() == est.get_params().keys()
        assert "coef_" not in vars(new)
