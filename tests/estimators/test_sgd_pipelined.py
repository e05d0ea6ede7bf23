"""Shuffled per-sample SGD on 2+ threads runs pipelined (one thread gathers the next chunk of
shuffled rows while the other steps through the current one, _linear.pyx _sgd_pipelined): the
same steps on the same values in the same order, so the model must be bit-identical to the
1-thread epoch, for every loss, penalty, dtype, weighting and averaging. The data are big
enough for several chunks (the pipeline starts at 4 chunks of 256 KiB of rows), with a last
chunk that is not full."""
import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

from parml._kernels import _linear
from parml.linear_model import SGDClassifier, SGDRegressor

N = 4 * 1638 * 2 + 777   # d = 20 float64 rows: 1638 per chunk (float32: twice as many)


def _clf_data(dtype, n_classes=2):
    X, y = make_classification(N, 20, n_informative=10, n_classes=n_classes, random_state=0)
    return ((X - X.mean(0)) / X.std(0)).astype(dtype), y


def _same(a, b):
    for k in ("coef_", "intercept_"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert a.n_iter_ == b.n_iter_


@pytest.fixture(autouse=True)
def pipeline_ran(request):
    """Every test here must have run pipelined epochs (so a changed threshold cannot turn them
    into 1-thread comparisons with themselves)."""
    before = _linear._pipe_epochs_run()
    yield
    assert _linear._pipe_epochs_run() > before, "no epoch ran pipelined"


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_epoch_loss_is_the_one_thread_sum(dtype):
    """The epoch's summed loss (what tol-based stopping reads) is added row by row in visiting
    order on both paths: equal bits, so n_iter_ cannot differ."""
    X, y = _clf_data(dtype)
    ypm = np.where(y == 1, 1.0, -1.0)
    order = np.random.default_rng(5).permutation(len(y)).astype(np.intp)
    losses = []
    for nt in (1, 2, 1, 2):
        V, b = np.zeros((1, X.shape[1])), np.zeros(1)
        state = np.array([1.0, 1.0, 0.0, 0.0])
        tot = [_linear.sgd_epoch(X, ypm, None, order, V, b, state, None, None, None,
                                 _linear.LOSS_IDS["log_loss"], False, 0.0,
                                 _linear.SCHEDULES["invscaling"], 0.01, 0.25, 1e-4, 0.0, 0.0,
                                 1.0, 0.0, True, 1, _linear.STRATEGIES["samples"], nt)
               for _ in range(2)]
        losses.append((tot, V.copy(), b.copy()))
    for tot, V, b in losses[1:]:
        assert tot == losses[0][0]
        assert np.array_equal(V, losses[0][1]) and np.array_equal(b, losses[0][2])


def test_tol_stopping_identical():
    X, y = _clf_data(np.float64)
    kw = dict(loss="log_loss", max_iter=60, tol=1e-4, random_state=4)
    one = SGDClassifier(n_threads=1, **kw).fit(X, y)
    two = SGDClassifier(n_threads=2, **kw).fit(X, y)
    assert 1 < one.n_iter_ < 60
    _same(one, two)
