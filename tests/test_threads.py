"""The thread policy: effective_n_threads semantics, and threadpoolctl seeing and limiting it."""
import os

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

import parml
from parml import _threads
from parml._kernels import _openmp


def test_none_is_min_of_openmp_and_cpus():
    n = parml.effective_n_threads(None)
    assert n >= 1
    if not os.environ.get("OMP_NUM_THREADS"):
        assert n == min(_openmp.get_max_threads(), _threads.available_cpus())


def test_negative_counts_back():
    top = parml.effective_n_threads(None)
    assert parml.effective_n_threads(-1) == top
    assert parml.effective_n_threads(-2) == max(1, top - 1)
    assert parml.effective_n_threads(-1000) == 1


def test_positive_and_bad_values():
    assert parml.effective_n_threads(3) == 3
    assert parml.effective_n_threads(np.int64(2)) == 2
    with pytest.raises(ValueError, match="n_threads=0"):
        parml.effective_n_threads(0)
    with pytest.raises(ValueError, match="more than parml accepts"):
        parml.effective_n_threads(10 ** 6)
    for bad in (1.0, "2", True, [1]):
        with pytest.raises(TypeError, match="n_threads"):
            parml.effective_n_threads(bad)


def test_available_cpus_honours_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity API")
    assert _threads.available_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(not _openmp.openmp_enabled(), reason="serial build")
def test_threadpoolctl_sees_and_limits_our_openmp():
    controller = ThreadpoolController()
    omp = controller.select(internal_api="openmp")
    assert len(omp) >= 1, controller.info()
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _openmp.get_max_threads() == 1
        assert parml.effective_n_threads(None) == 1
        # and a kernel given the resolved count really runs one thread
        assert _openmp.team_size(parml.effective_n_threads(None)) == 1
    assert _openmp.team_size(2) == 2


def test_openmp_compiled_in_when_required():
    if os.environ.get("PARML_REQUIRE_OPENMP") == "1":
        assert _openmp.openmp_enabled()


def _blas_threads():
    return {c.filepath: c.num_threads for c in ThreadpoolController().lib_controllers
            if c.user_api == "blas"}


def test_single_threaded_blas_limits_every_blas_and_restores():
    import scipy.optimize  # noqa: F401  (scipy's own OpenBLAS: loaded before `before` is taken)
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library seen by threadpoolctl")
    with threadpool_limits(2, user_api="blas"):
        outer = _blas_threads()
        with _threads.single_threaded_blas():
            assert set(_blas_threads().values()) == {1}
        assert _blas_threads() == outer
    assert _blas_threads() == before


def test_single_threaded_blas_left_out_of_order_restores_the_original():
    """Two fits in two Python threads: the first to leave must not restore the other's 1."""
    import scipy.optimize  # noqa: F401
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library seen by threadpoolctl")
    a, b = _threads.single_threaded_blas(), _threads.single_threaded_blas()
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert set(_blas_threads().values()) == {1}     # b is still inside
    b.__exit__(None, None, None)
    assert _blas_threads() == before


@pytest.mark.parametrize("which", ["logistic", "mlp"])
def test_lbfgs_runs_with_single_threaded_blas(which, monkeypatch):
    """scipy's L-BFGS-B wakes OpenBLAS's workers, which then spin on the cores our passes use:
    the L-BFGS drivers hold BLAS at one thread (parml._threads.single_threaded_blas)."""
    if not _blas_threads():
        pytest.skip("no BLAS library seen by threadpoolctl")
    from sklearn.datasets import make_classification
    X, y = make_classification(300, 5, random_state=0)
    if which == "logistic":
        from parml._core import linear as mod
        from parml.linear_model import LogisticRegression as Est
        kw = {}
    else:
        from parml.neural_network import _base as mod
        from parml.neural_network import MLPClassifier as Est
        kw = {"solver": "lbfgs", "max_iter": 5, "hidden_layer_sizes": (4,)}
    import scipy.optimize
    seen = []   # the BLAS thread counts inside each objective call
    real = scipy.optimize.minimize

    def spy(fun, x0, *a, **k):
        def f(x):
            seen.append(set(_blas_threads().values()))
            return fun(x)
        return real(f, x0, *a, **k)
    monkeypatch.setattr(scipy.optimize, "minimize", spy)
    if hasattr(mod, "minimize"):
        monkeypatch.setattr(mod, "minimize", spy)
    with threadpool_limits(2, user_api="blas"):
        Est(n_threads=2, **kw).fit(X, y)
        assert set(_blas_threads().values()) == {2}   # restored after the fit
    assert seen and all(s == {1} for s in seen)



def test_matmul_tunes_small_parallel_products_per_size(monkeypatch):
    """Small parallel products go through one thread tuner per (dtype, size class, threads): each
    product is timed and the answer never depends on the choice."""
    import numpy as np

    import parml
    from parml import ops
    # every product in the tuner's range, on a core of any speed (an emulated one included)
    monkeypatch.setattr(ops, "GEMM_PARALLEL_MIN_SECONDS", 0.0)
    monkeypatch.setattr(ops, "GEMM_SPLIT_MIN_SECONDS", float("inf"))
    monkeypatch.setattr(ops, "_small_tuners", {})
    python_path = []
    into = ops._gemm_into
    monkeypatch.setattr(ops, "_gemm_into", lambda *a: python_path.append(1) or into(*a))
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((200, 150)), rng.standard_normal((150, 120))
    want = parml.matmul(A, B, n_threads=1)
    # When two threads beat the calibrated one-thread prediction clearly, the first probe skips
    # one thread (the hint) and the next probe comes after a period of 8 calls: how many calls
    # it takes to see both counts depends on this machine's speed at the time.
    buf = np.empty_like(want)
    for calls in range(1, 201):   # (with and without out: both take matmul's Cython fast path)
        got = parml.matmul(A, B, out=buf if calls % 2 else None, n_threads=2)
        assert np.array_equal(got, want) and (got is buf) == bool(calls % 2)
        (key, tuner), = ops._small_tuners.items()
        st = tuner.stats()
        if st["units_many"] >= 2 and st["units_one"] >= 2:
            break
    assert key == ("d", int(2 * 200 * 150 * 120).bit_length(), 2)
    assert st["units_many"] + st["units_one"] == calls and st["units_many"] >= 2 \
        and st["units_one"] >= 2
    # only the first product took the Python path (it made the size class's tuner); the others
    # found that tuner from the Cython fast path
    assert len(python_path) == 1
    # an out that overlaps an input leaves the fast path before the tuner counts the product:
    # the Python path then runs it once, through a temporary
    S = rng.standard_normal((120, 120))
    parml.matmul(S, S, n_threads=2)                    # (this size class's tuner)
    (tuner,) = [t for k, t in ops._small_tuners.items() if k != key]
    n0 = sum(tuner.stats()[u] for u in ("units_many", "units_one"))
    want = S @ S
    parml.matmul(S, S, out=S, n_threads=2)
    assert np.allclose(S, want, rtol=1e-12, atol=1e-12)
    assert sum(tuner.stats()[u] for u in ("units_many", "units_one")) == n0 + 1
