"""Shuffled per-sample SGD on 2+ threads runs pipelined (one thread gathers the next chunk of
shuffled rows while the other steps through the current one, _linear.pyx _sgd_pipelined): the
same steps on the same values in the same order, so the model must be bit-identical to the
1-thread epoch, for every loss, penalty, dtype, weighting and averaging. The data are big
enough for several chunks (the pipeline starts at 4 chunks of 256 KiB of rows), with a last
chunk that is not full."""
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

from parml.linear_model import SGDClassifier, SGDRegressor

N = 4 * 1638 * 2 + 777   # d = 20 float64 rows: 1638 per chunk (float32: twice as many)


def _clf_data(dtype, n_classes=2):
    X, y = make_classification(N, 20, n_informative=10, n_classes=n_classes, random_state=0)
    return ((X - X.mean(0)) / X.std(0)).astype(dtype), y


def _same(a, b):
    for k in ("coef_", "intercept_"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", [
    dict(loss="hinge"),
    dict(loss="log_loss", penalty="elasticnet", l1_ratio=0.3),
    dict(loss="modified_huber", penalty="l1", average=True),
    dict(loss="squared_hinge", learning_rate="invscaling", eta0=0.01),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_classifier_pipelined_epoch_identical_to_one_thread(dtype, kw, weighted):
    X, y = _clf_data(dtype)
    sw = np.random.default_rng(0).uniform(0.1, 2.0, len(y)) if weighted else None
    one = SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=1, **kw)
    two = SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=2, **kw)
    _same(one.fit(X, y, sample_weight=sw), two.fit(X, y, sample_weight=sw))
    # and it trains: scikit-learn's SGD (same settings) as the oracle for accuracy
    from sklearn.linear_model import SGDClassifier as SkSGD
    sk = SkSGD(max_iter=3, tol=None, random_state=0, **kw).fit(X, y, sample_weight=sw)
    assert two.score(X, y) > sk.score(X, y) - 0.05


@pytest.mark.parametrize("n_threads", [2, 4])
def test_multiclass_and_early_stopping_pipelined(n_threads):
    X, y = _clf_data(np.float64, n_classes=3)
    kw = dict(max_iter=20, tol=1e-3, random_state=1, early_stopping=True, n_iter_no_change=2)
    _same(SGDClassifier(n_threads=1, **kw).fit(X, y),
          SGDClassifier(n_threads=n_threads, **kw).fit(X, y))


def test_regressor_pipelined_identical():
    X, y = make_regression(N, 20, noise=1.0, random_state=0)
    y = (y - y.mean()) / y.std()
    kw = dict(max_iter=3, tol=None, random_state=0, loss="huber")
    _same(SGDRegressor(n_threads=1, **kw).fit(X, y), SGDRegressor(n_threads=2, **kw).fit(X, y))


@pytest.fixture
def slow_helper():
    """Every pipelined round looks slow: the fallback to the 1-thread way runs (stretches of
    PIPE_HOLD, 2*PIPE_HOLD, ... chunks straight from X, with probe rounds between)."""
    from parml._kernels import _linear
    _linear._pipe_treat_helper_as_slow(True)
    yield
    _linear._pipe_treat_helper_as_slow(False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_fallback_when_helper_is_slow_is_identical(slow_helper, dtype, weighted):
    rng = np.random.default_rng(1)
    X, y = make_classification(60_000, 20, n_informative=10, random_state=2)   # 36+ chunks
    X = ((X - X.mean(0)) / X.std(0)).astype(dtype)
    sw = rng.uniform(0.1, 2.0, len(y)) if weighted else None
    kw = dict(loss="log_loss", max_iter=2, tol=None, random_state=3, average=True)
    _same(SGDClassifier(n_threads=1, **kw).fit(X, y, sample_weight=sw),
          SGDClassifier(n_threads=2, **kw).fit(X, y, sample_weight=sw))
