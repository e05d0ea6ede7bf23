"""A worker lost in the middle of a fit: the fit completes with the right model (Dask recomputes
the lost partitions and reruns the tasks on a surviving worker) or fails with a clear error;
never a silently wrong model. Uses its own small cluster so the session cluster is untouched."""
import os
import signal
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import parml.dask as PD
import parml.linear_model as L
from parml.dask import _linear


def data(n=20_000, d=12, k=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) + 1.0
    y = (X @ rng.normal(size=(d, k)) + rng.gumbel(size=(n, k)) * 2).argmax(axis=1)
    return X, y


@pytest.mark.parametrize("when", ["between", "during"])
def test_worker_killed_mid_fit(monkeypatch, when):
    X, y = data()
    local = L.LogisticRegression(tol=1e-6, max_iter=200).fit(X, y)
    # ":0": the session cluster may hold the default HTTP port already
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
        victim = min(pids)
        killed = []
        orig = _linear._Objective.__call__

        def kill():
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

        def call(self, theta):
            if self.evaluations == 3 and not killed:
                if when == "between":      # the worker dies holding half of the partitions
                    kill()
                else:                      # ... or while this round's tasks are running
                    threading.Timer(0.001, kill).start()
            return orig(self, theta)

        monkeypatch.setattr(_linear._Objective, "__call__", call)
        est = PD.LogisticRegression(tol=1e-6, max_iter=200, client=client)
        Xd = da.from_array(X, chunks=(2500, X.shape[1]))
        yd = da.from_array(y, chunks=2500)
        try:
            est.fit(Xd, yd)
        except RuntimeError as e:           # allowed: a clear error and no model
            assert "no model was fitted" in str(e)
            assert not hasattr(est, "coef_")
        else:                               # or the right model
            np.testing.assert_allclose(est.coef_, local.coef_, rtol=0, atol=1e-4)
            np.testing.assert_allclose(est.intercept_, local.intercept_, rtol=0, atol=1e-4)
        assert killed == [victim]
        assert victim not in client.run(os.getpid)       # the worker really went away


def test_cluster_failures_become_one_clear_error():
    from concurrent.futures import CancelledError
    from types import SimpleNamespace

    from distributed.scheduler import KilledWorker
    lost = KilledWorker("k", SimpleNamespace(address="tcp://127.0.0.1:1"), 3)
    for exc in (lost, CancelledError(), ConnectionResetError("gone")):
        with pytest.raises(RuntimeError, match="no model was fitted"), \
                _linear._clear_task_errors("LogisticRegression"):
            raise exc
    # our own checks pass unchanged
    with pytest.raises(ValueError, match="partition 3"), \
            _linear._clear_task_errors("LogisticRegression"):
        raise ValueError("parml.dask: partition 3 of X contains NaN or infinity")
