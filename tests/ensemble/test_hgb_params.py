"""The scikit-learn parameters of HistGradientBoosting beyond the basics: the other regression
losses, scoring and early stopping, verbose progress, categorical specs, warm_start,
class_weight, a validation set passed to fit. scikit-learn's estimators are the oracle where the
two can be made to see identical bins: when a feature has at most max_bins distinct values, both
give every value its own bin, so the same gradients grow the same trees."""

import io
import re

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.ensemble import HistGradientBoostingClassifier as SkC
from sklearn.ensemble import HistGradientBoostingRegressor as SkR
from sklearn.metrics import (
    make_scorer,
    mean_absolute_error,
    mean_gamma_deviance,
    mean_pinball_loss,
    mean_poisson_deviance,
    r2_score,
)
from sklearn.utils.class_weight import compute_sample_weight

from parml.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from parml.ensemble._gb_losses import weighted_quantile
from parml.ensemble._gb_scoring import Progress


def discrete_data(n=2000, seed=0, noise="cauchy"):
    """Integer features (40 values each: identical bins in parml and scikit-learn) and a target
    with heavy-tailed noise, where the median and the mean part ways."""
    r = np.random.default_rng(seed)
    X = r.integers(0, 40, size=(n, 5)).astype(float)
    f = X[:, 0] * 2 - X[:, 1] + 0.1 * X[:, 2] * X[:, 3]
    e = r.standard_cauchy(n) * 3 if noise == "cauchy" else r.standard_normal(n) * 20
    return X, f + e


# ---- absolute_error -----------------------------------------------------------------------------

def test_absolute_error_leaf_values_are_medians_by_hand():
    """Two leaves (x = 0, x = 1), learning_rate 1: the baseline is median(y) = 15, residuals
    are -14 -13 -5 | 5 6 85, so the leaves hold their medians -13 and 6: predictions 2 and 21.
    (The squared-error step would give the residual means, -10.67 and 32.)"""
    X = np.array([[0.0], [0], [0], [1], [1], [1]])
    y = np.array([1.0, 2, 10, 20, 21, 100])
    kw = dict(loss="absolute_error", max_iter=1, min_samples_leaf=1, early_stopping=False)
    m = HistGradientBoostingRegressor(learning_rate=1.0, **kw).fit(X, y)
    np.testing.assert_array_equal(m._baseline, [15.0])
    np.testing.assert_array_equal(m.predict([[0.0], [1.0]]), [2.0, 21.0])
    # the learning rate scales the median step: 15 + 0.5 * (-13), 15 + 0.5 * 6
    m = HistGradientBoostingRegressor(learning_rate=0.5, **kw).fit(X, y)
    np.testing.assert_array_equal(m.predict([[0.0], [1.0]]), [8.5, 18.0])


def test_absolute_error_weighted_median_acts_like_repeated_rows():
    """Weight 3 on y = 10: the weighted median of y is 10 (cumulative weights 1 2 5 | 6 7 8 of
    8), the left leaf's residuals -9 -8 0 (weights 1 1 3) have median 0, the right 10 11 90
    have 11. Repeating the row three times gives the same model."""
    X = np.array([[0.0], [0], [0], [1], [1], [1]])
    y = np.array([1.0, 2, 10, 20, 21, 100])
    w = np.array([1.0, 1, 3, 1, 1, 1])
    kw = dict(loss="absolute_error", max_iter=1, learning_rate=1.0, min_samples_leaf=1,
              early_stopping=False)
    m = HistGradientBoostingRegressor(**kw).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(m._baseline, [10.0])
    np.testing.assert_array_equal(m.predict([[0.0], [1.0]]), [10.0, 21.0])
    rep = HistGradientBoostingRegressor(**kw).fit(np.repeat(X, w.astype(int), axis=0),
                                                  np.repeat(y, w.astype(int)))
    np.testing.assert_array_equal(rep.predict([[0.0], [1.0]]), [10.0, 21.0])


def test_absolute_error_matches_sklearn_on_identical_bins():
    """Same bins, same sign gradients, same medians: the same model, to the last bit, for the
    first 20 iterations. (Later, an exact tie between two split gains, which integer-valued
    sign gradients make possible, may be broken differently by the two split finders.)"""
    X, y = discrete_data()
    kw = dict(loss="absolute_error", max_iter=20, early_stopping=False)
    ours = HistGradientBoostingRegressor(**kw).fit(X, y)
    theirs = SkR(**kw).fit(X, y)
    np.testing.assert_array_equal(ours._baseline, theirs._baseline_prediction.ravel())
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_absolute_error_quality_close_to_sklearn(seed):
    """Continuous features: the bin edges differ (parml takes midpoints of quantiles), so the
    models differ; their test MAE was within 1.6% of each other over four seeds, while growing
    the same trees without the median leaf values, or fitting squared error, is 1.1 to 3 times
    worse on this heavy-tailed target. 3% separates the two cases."""
    X, y = make_regression(4000, 8, noise=10, random_state=seed)
    y = y + np.random.default_rng(seed).standard_cauchy(4000) * 5
    kw = dict(loss="absolute_error", max_iter=80, early_stopping=False)
    ours = HistGradientBoostingRegressor(**kw).fit(X[:3000], y[:3000])
    theirs = SkR(**kw).fit(X[:3000], y[:3000])
    a = mean_absolute_error(y[3000:], ours.predict(X[3000:]))
    b = mean_absolute_error(y[3000:], theirs.predict(X[3000:]))
    assert abs(a / b - 1) < 0.03, (a, b)
    sq = HistGradientBoostingRegressor(max_iter=80, early_stopping=False).fit(X[:3000], y[:3000])
    assert a < mean_absolute_error(y[3000:], sq.predict(X[3000:]))


def test_absolute_error_train_loss_is_mean_absolute_error():
    X, y = discrete_data()
    m = HistGradientBoostingRegressor(loss="absolute_error", max_iter=15, early_stopping=True,
                                      validation_fraction=None, n_iter_no_change=50).fit(X, y)
    assert len(m.train_score_) == 16
    np.testing.assert_allclose(-m.train_score_[0], np.mean(np.abs(y - np.median(y))))
    np.testing.assert_allclose(-m.train_score_[-1], mean_absolute_error(y, m.predict(X)),
                               rtol=1e-12)
    assert np.all(np.diff(m.train_score_) >= -1e-9)  # median steps never raise the train MAE


@pytest.mark.parametrize("loss", ["absolute_error", "quantile"])
def test_median_losses_identical_for_every_thread_count(loss):
    X, y = make_regression(3000, 6, noise=20, random_state=3)
    w = np.random.default_rng(3).uniform(0.5, 2.0, 3000)
    kw = dict(loss=loss, quantile=0.3 if loss == "quantile" else None, max_iter=15,
              early_stopping=False, random_state=0)
    one = HistGradientBoostingRegressor(n_threads=1, **kw).fit(X, y, sample_weight=w)
    two = HistGradientBoostingRegressor(n_threads=2, **kw).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(one.predict(X), two.predict(X))


# ---- quantile, poisson, gamma -------------------------------------------------------------------

def test_weighted_quantile_is_a_pinball_minimiser():
    r = np.random.default_rng(0)
    for _ in range(50):
        n = int(r.integers(1, 12))
        v = np.round(r.standard_normal(n), 1)  # ties too
        w = r.integers(0, 4, n).astype(float)
        w[r.integers(n)] += 1  # some weight
        q = float(r.choice([0.1, 0.25, 0.5, 0.8]))
        got = weighted_quantile(v, w, q)
        # integer weights = repeated rows
        assert got == weighted_quantile(np.repeat(v, w.astype(int)), None, q)

        def pinball(c, v=v, w=w, q=q):
            d = v - c
            return np.sum(w * np.where(d >= 0, q * d, (q - 1) * d))
        grid = np.concatenate([v, np.linspace(v.min() - 1, v.max() + 1, 201)])
        assert pinball(got) <= min(pinball(c) for c in grid) + 1e-12
    x = r.standard_normal(101)
    assert weighted_quantile(x, None, 0.5) == np.median(x)
    assert weighted_quantile(x[:100], None, 0.5) == np.median(x[:100])


@pytest.mark.parametrize("loss, metric", [("poisson", mean_poisson_deviance),
                                          ("gamma", mean_gamma_deviance)])
def test_log_link_losses_match_sklearn_on_identical_bins(loss, metric):
    """Poisson and gamma: log link, predictions exp(raw), scikit-learn's gradients, hessians and
    baseline; on identical bins the models agree to float rounding."""
    X, _ = discrete_data()
    r = np.random.default_rng(1)
    mu = np.exp((X[:, 0] - X[:, 1]) / 20)
    y = r.poisson(mu).astype(float) if loss == "poisson" else r.gamma(2.0, mu / 2)
    kw = dict(loss=loss, max_iter=20, early_stopping=False)
    ours = HistGradientBoostingRegressor(**kw).fit(X, y)
    theirs = SkR(**kw).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)
    assert np.all(ours.predict(X) > 0)
    staged = list(ours.staged_predict(X))
    np.testing.assert_allclose(staged[-1], ours.predict(X), rtol=1e-12)
    assert metric(y, staged[-1]) < metric(y, staged[0])


@pytest.mark.parametrize("loss, y, msg", [("poisson", [-1.0, 2.0], "non-negative"),
                                          ("poisson", [0.0, 0.0], "sum"),
                                          ("gamma", [0.0, 2.0], "positive")])
def test_log_link_losses_refuse_bad_targets(loss, y, msg):
    X = np.arange(2.0).reshape(-1, 1)
    with pytest.raises(ValueError, match=msg):
        HistGradientBoostingRegressor(loss=loss).fit(X, y)


def test_quantile_loss():
    """The 0.8-quantile: about 80% of held-out targets fall below the predictions, the
    pinball loss is close to scikit-learn's (their leaf quantiles interpolate, ours are exact
    minimisers, and continuous features bin differently), and quantile is required."""
    X, y = make_regression(5000, 6, noise=30, random_state=0)
    kw = dict(loss="quantile", quantile=0.8, max_iter=60, early_stopping=False)
    ours = HistGradientBoostingRegressor(**kw).fit(X[:4000], y[:4000])
    theirs = SkR(**kw).fit(X[:4000], y[:4000])
    below = np.mean(y[4000:] <= ours.predict(X[4000:]))
    assert 0.74 < below < 0.86, below
    a = mean_pinball_loss(y[4000:], ours.predict(X[4000:]), alpha=0.8)
    b = mean_pinball_loss(y[4000:], theirs.predict(X[4000:]), alpha=0.8)
    assert abs(a / b - 1) < 0.05, (a, b)
    np.testing.assert_allclose(ours._baseline, np.quantile(y[:4000], 0.8,
                                                           method="averaged_inverted_cdf"))
    with pytest.raises(ValueError, match="quantile"):
        HistGradientBoostingRegressor(loss="quantile").fit(X, y)
    with pytest.raises(ValueError):
        HistGradientBoostingRegressor(loss="quantile", quantile=1.0).fit(X, y)


# ---- scoring and early stopping -----------------------------------------------------------------

@pytest.mark.parametrize("scoring", ["loss", "neg_mean_absolute_error", None, "callable"])
@pytest.mark.parametrize("with_val", [True, False])
def test_scores_match_sklearn(scoring, with_val):
    """With the same validation set (or none: scores on training data) and identical bins,
    every train / validation score and the iteration early stopping ends at are scikit-learn's."""
    X, y = discrete_data(3000, noise="normal")
    Xv, yv = discrete_data(800, seed=5, noise="normal")
    if scoring == "callable":
        scoring = make_scorer(mean_absolute_error, greater_is_better=False)
    kw = dict(max_iter=200, early_stopping=True, scoring=scoring, n_iter_no_change=5,
              learning_rate=0.3)
    fit_kw = dict(X_val=Xv, y_val=yv) if with_val else {}
    if not with_val:
        kw.update(max_iter=40, validation_fraction=None)
    ours = HistGradientBoostingRegressor(**kw).fit(X, y, **fit_kw)
    theirs = SkR(**kw).fit(X, y, **fit_kw)
    assert ours.n_iter_ == theirs.n_iter_
    assert (ours.n_iter_ < kw["max_iter"]) == with_val  # training loss keeps falling
    np.testing.assert_allclose(ours.train_score_, theirs.train_score_, rtol=1e-12)
    np.testing.assert_allclose(ours.validation_score_, theirs.validation_score_, rtol=1e-12)
    assert len(ours.train_score_) == ours.n_iter_ + 1
    assert len(ours.validation_score_) == (ours.n_iter_ + 1 if with_val else 0)


@pytest.mark.parametrize("scoring", ["loss", "accuracy", "roc_auc", None])
def test_classifier_scores_match_sklearn(scoring):
    X, y = discrete_data(3000, noise="normal")
    Xv, yv = discrete_data(800, seed=5, noise="normal")
    cut = np.median(y)
    labels = np.array(["no", "yes"])
    yc, yvc = labels[(y > cut).astype(int)], labels[(yv > cut).astype(int)]
    kw = dict(max_iter=200, early_stopping=True, scoring=scoring, n_iter_no_change=5,
              learning_rate=0.3)
    ours = HistGradientBoostingClassifier(**kw).fit(X, yc, X_val=Xv, y_val=yvc)
    theirs = SkC(**kw).fit(X, yc, X_val=Xv, y_val=yvc)
    assert ours.n_iter_ == theirs.n_iter_ < 200
    np.testing.assert_allclose(ours.train_score_, theirs.train_score_, rtol=1e-9)
    np.testing.assert_allclose(ours.validation_score_, theirs.validation_score_, rtol=1e-9)


def test_default_scoring_none_is_the_estimators_score():
    """scoring=None is r2 for the regressor, computed on the model after each iteration."""
    X, y = discrete_data(1500, noise="normal")
    m = HistGradientBoostingRegressor(max_iter=10, early_stopping=True, scoring=None,
                                      validation_fraction=None).fit(X, y)
    expected = [r2_score(y, np.full_like(y, y.mean()))] + \
        [r2_score(y, p) for p in m.staged_predict(X)]
    np.testing.assert_allclose(m.train_score_, expected, rtol=1e-10, atol=1e-12)


class Recorder:
    """A scorer that records what it is given and returns scores from a script."""

    def __init__(self, script):
        self.script, self.calls = list(script), []

    def __call__(self, est, X, y, sample_weight=None):
        self.calls.append((len(X), np.asarray(y).copy(), sample_weight))
        return self.script[min(len(self.calls) - 1, len(self.script) - 1)]


def test_early_stopping_on_a_callable_score():
    """Training-data scores (validation_fraction=None): scores rise for 6 iterations then stay
    flat, so the rule fires n_iter_no_change iterations after the last improvement."""
    X, y = discrete_data(1000, noise="normal")
    rec = Recorder([0, 1, 2, 3, 4, 5, 6])  # score after iteration i is min(i, 6)
    m = HistGradientBoostingRegressor(max_iter=100, early_stopping=True, scoring=rec,
                                      validation_fraction=None, n_iter_no_change=4).fit(X, y)
    assert m.n_iter_ == 6 + 4
    np.testing.assert_array_equal(m.train_score_, [0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6])
    assert m.validation_score_.size == 0 and m.do_early_stopping_
    assert all(n == 1000 for n, _, _ in rec.calls)  # all training rows (fewer than 10,000)
    # tol: an improvement must exceed it
    rec = Recorder([0, 1, 1.5, 1.7])
    m = HistGradientBoostingRegressor(max_iter=100, early_stopping=True, scoring=rec, tol=0.3,
                                      validation_fraction=None, n_iter_no_change=2).fit(X, y)
    # scores 0 1 1.5 1.7 1.7: after iteration 3, 1.5 still beats 1 + 0.3; after iteration 4
    # neither 1.7 beats 1.5 + 0.3 (without tol, 1.7 > 1.5 would go on)
    assert m.n_iter_ == 4


def test_scorer_sees_a_10000_row_training_subsample_and_the_validation_set():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30_000, 4))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(30_000) > 0, "b", "a")
    w = rng.uniform(0.5, 2.0, 30_000)
    rec = Recorder([0.0])
    m = HistGradientBoostingClassifier(max_iter=3, scoring=rec, validation_fraction=0.1,
                                       n_iter_no_change=10, random_state=0)
    m.fit(X, y, sample_weight=w)
    assert m.do_early_stopping_  # "auto": more than 10,000 rows
    train_calls, val_calls = rec.calls[0::2], rec.calls[1::2]
    assert len(train_calls) == len(val_calls) == m.n_iter_ + 1 == 4
    assert all(n == 10_000 for n, _, _ in train_calls)
    assert all(n == 3000 for n, _, _ in val_calls)
    # the labels as given, the weights of the same rows, the same rows every iteration
    y_small, w_small = train_calls[0][1], train_calls[0][2]
    assert set(y_small) == {"a", "b"} and len(w_small) == 10_000
    assert all(np.array_equal(c[1], y_small) and np.array_equal(c[2], w_small)
               for c in train_calls)
    # stratified like scikit-learn's: the class balance of the (stratified) training rows, to a
    # row or two; a plain random draw would miss it by about 40 rows (one standard deviation)
    off = abs(np.sum(y_small == "b") - 10_000 * np.mean(y == "b"))
    assert off <= 2, off
    # drawn with the fit's random state: the same rows again, other rows for another state
    rec2 = Recorder([0.0])
    m.set_params(scoring=rec2).fit(X, y, sample_weight=w)
    assert np.array_equal(rec2.calls[0][2], w_small)
    rec3 = Recorder([0.0])
    m.set_params(scoring=rec3, random_state=1).fit(X, y, sample_weight=w)
    assert not np.array_equal(rec3.calls[0][2], w_small)


def test_named_scorer_reuses_raw_scores_not_predict(monkeypatch):
    """A named scorer is fed the raw scores the fit keeps (no tree walk per iteration); the
    values still equal the scorer applied to predictions afterwards."""
    X, y = discrete_data(1500, noise="normal")
    calls = []
    orig = HistGradientBoostingRegressor._raw

    def counting(self, X):
        calls.append(len(X))
        return orig(self, X)
    monkeypatch.setattr(HistGradientBoostingRegressor, "_raw", counting)
    m = HistGradientBoostingRegressor(max_iter=8, early_stopping=True, validation_fraction=None,
                                      scoring="neg_mean_absolute_error", n_iter_no_change=50)
    m.fit(X, y)
    assert calls == []
    assert "_raw" not in vars(m)  # the patch is gone after fit
    np.testing.assert_allclose(m.train_score_[-1], -mean_absolute_error(y, m.predict(X)))


def test_early_stopping_on_training_data_when_validation_fraction_is_none():
    X, y = discrete_data(1500, noise="normal")
    m = HistGradientBoostingRegressor(max_iter=300, early_stopping=True, validation_fraction=None,
                                      n_iter_no_change=3, tol=1e-2, learning_rate=0.5).fit(X, y)
    assert m.do_early_stopping_ and m.n_iter_ < 300
    assert len(m.train_score_) == m.n_iter_ + 1 and m.validation_score_.size == 0
    assert max(m.train_score_[-3:]) <= m.train_score_[-4] + 1e-2
    off = HistGradientBoostingRegressor(max_iter=5, early_stopping=False).fit(X, y)
    assert not off.do_early_stopping_ and off.train_score_.size == 0


def test_scoring_parameter_is_validated():
    X, y = discrete_data(200)
    for bad in ("neg_mean_absolut_error", 3, "r3"):
        with pytest.raises(ValueError, match="scoring"):  # even with early stopping off
            HistGradientBoostingRegressor(scoring=bad, early_stopping=False).fit(X, y)


# ---- verbose ------------------------------------------------------------------------------------

def test_verbose_1_draws_one_updating_line_and_a_summary(capfd):
    X, y = discrete_data(1500, noise="normal")
    Xv, yv = discrete_data(300, seed=3, noise="normal")
    HistGradientBoostingRegressor(max_iter=12, verbose=1, early_stopping=True,
                                  n_iter_no_change=50).fit(X, y, X_val=Xv, y_val=yv)
    out, err = capfd.readouterr()
    assert out == ""
    body, summary, tail = err.rsplit("\n", 2)
    assert tail == "" and "\n" not in body  # one line, redrawn with carriage returns
    final = body.split("\r")[-1].rstrip()
    assert re.fullmatch(r"\[12/12\] \d+\.\d s elapsed, ~0\.0 s left, train loss [\d.e+-]+, "
                        r"val loss [\d.e+-]+", final), final
    assert re.fullmatch(r"fit 12 trees in \d+\.\d+ s \(\d+ leaves\)", summary), summary


def test_verbose_shows_scores_and_early_stop(capfd):
    X, y = discrete_data(1500, noise="normal")
    m = HistGradientBoostingRegressor(max_iter=500, verbose=1, early_stopping=True,
                                      validation_fraction=None, scoring="r2",
                                      n_iter_no_change=2, tol=0.01).fit(X, y)
    err = capfd.readouterr().err
    assert m.n_iter_ < 500
    assert re.search(rf"\[ *{m.n_iter_}/500\] .*train score [\d.]+ *\n", err)
    assert f"early stop after {m.n_iter_} iterations" in err


def test_verbose_2_prints_a_line_per_iteration(capfd):
    X, y = discrete_data(600)
    HistGradientBoostingClassifier(max_iter=4, verbose=2, max_leaf_nodes=5).fit(
        X, (y > np.median(y)).astype(int) + (y > np.quantile(y, 0.8)))
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert out == "" and "\r" not in err
    assert len(lines) == 5
    for i, line in enumerate(lines[:4], 1):  # 3 classes: 3 trees of at most 5 leaves
        leaves = int(re.match(rf"\[{i}/4\] (\d+) leaves, max depth \d+, in [\d.]+ s$",
                              line).group(1))
        assert 3 <= leaves <= 15
    assert lines[4].startswith("fit 12 trees in ")


def test_verbose_0_prints_nothing(capfd):
    X, y = discrete_data(300)
    HistGradientBoostingRegressor(max_iter=3).fit(X, y)
    assert capfd.readouterr() == ("", "")


def test_progress_redraws_at_most_every_interval(monkeypatch):
    """A fake clock: 1000 iterations in 0.5 s of 'time' are drawn about 5 times (every 0.1 s on
    a terminal), and the final state is drawn at close whatever the throttle skipped."""
    now = [0.0]
    monkeypatch.setattr("parml.ensemble._gb_scoring.time.perf_counter", lambda: now[0])

    class Tty(io.StringIO):
        def isatty(self):
            return True
    for stream, expected in ((Tty(), 5), (io.StringIO(), 1)):  # a log file: every 1 s
        now[0] = 0.0
        p = Progress(1, 1000, stream=stream)
        for i in range(1, 1001):
            now[0] = i * 0.0005
            p.update(i)
        p.close(1000, 1000, 31000, False)
        text = stream.getvalue()
        draws = text.count("\r")
        assert expected <= draws - 1 <= expected + 1, draws  # + 1: the final redraw
        assert text.split("\n")[0].split("\r")[-1].startswith("[1000/1000] 0.5 s elapsed")
        assert text.endswith("fit 1000 trees in 0.500 s (31000 leaves)\n")
    # a shorter line blanks what the longer one before it left behind
    s = Tty()
    p = Progress(1, 10, stream=s)
    p.update(1, "train loss 123456789")
    now[0] += 1
    p.update(2)
    last = s.getvalue().split("\r")[-1]
    assert last.rstrip() == "[ 2/10] 1.0 s elapsed, ~4.0 s left" and len(last) >= 50


# ---- categorical specs (honoured, never ignored; the details: test_hgb_categorical.py) ----------

def test_categorical_specs_are_honoured_not_ignored():
    pd = pytest.importorskip("pandas")
    X, y = discrete_data(1500)         # integer features 0..39: codes, ~38 rows each (support 10)
    df = pd.DataFrame(X, columns=list("abcde"))
    # no categorical dtype: fine, and the feature names are kept
    m = HistGradientBoostingRegressor(max_iter=2).fit(df, y)
    assert list(m.feature_names_in_) == list("abcde") and m.n_features_in_ == 5
    assert m.is_categorical_ is None

    def split_kinds(m):
        """{feature: set of node_cat values} over the split nodes of all trees."""
        kinds = {}
        for a, _ in m._forest.parts:
            node_cat = a.get("node_cat", np.zeros(len(a["left"]), np.uint8))  # absent: numeric
            for f, c in zip(a["feature"][a["left"] >= 0], node_cat[a["left"] >= 0]):
                kinds.setdefault(int(f), set()).add(int(c))
        return kinds

    cat = df.copy()
    cat["b"] = cat["b"].astype("category")
    m = HistGradientBoostingRegressor(max_iter=3).fit(cat, y)        # "from_dtype" sees it
    np.testing.assert_array_equal(m.is_categorical_, [False, True, False, False, False])
    kinds = split_kinds(m)
    assert kinds.get(1) == {1} and all(v == {0} for f, v in kinds.items() if f != 1)
    for spec, data in (([True, False, False, False, False], X), ([0], X), (["a"], df)):
        m = HistGradientBoostingRegressor(max_iter=3, categorical_features=spec).fit(data, y)
        np.testing.assert_array_equal(m.is_categorical_, [True, False, False, False, False])
        kinds = split_kinds(m)
        assert kinds.get(0) == {1} and all(v == {0} for f, v in kinds.items() if f != 0)
    with pytest.raises(ValueError, match="one entry per feature"):
        HistGradientBoostingRegressor(categorical_features=[False, False]).fit(X, y)
    # specs that mark nothing categorical
    for spec in (None, [], [False] * 5, np.zeros(5, bool)):
        m = HistGradientBoostingRegressor(max_iter=2, categorical_features=spec).fit(X, y)
        assert m.is_categorical_ is None and set().union(*split_kinds(m).values()) == {0}


# ---- warm_start, class_weight, a validation set passed to fit -----------------------------------

def test_warm_start_continues_the_same_model():
    X, y = discrete_data(1500, noise="normal")
    full = HistGradientBoostingRegressor(max_iter=20, early_stopping=False,
                                         random_state=0).fit(X, y)
    m = HistGradientBoostingRegressor(max_iter=8, early_stopping=False, warm_start=True,
                                      random_state=0).fit(X, y)
    m.set_params(max_iter=20).fit(X, y)
    assert m.n_iter_ == 20 and len(m._forest.parts) == 20
    np.testing.assert_array_equal(m.predict(X), full.predict(X))
    with pytest.raises(ValueError, match="max_iter"):
        m.set_params(max_iter=10).fit(X, y)
    with pytest.raises(ValueError, match="warm_start"):
        m.set_params(max_iter=30).fit(X[:, :4], y)
    # without warm_start a fit starts over
    m.set_params(max_iter=5, warm_start=False).fit(X, y)
    assert m.n_iter_ == 5


def test_warm_start_keeps_the_split_and_the_scores():
    """random_state=None: the continued fit must not draw a new validation split (the global
    RNG, seeded here, would give it other rows), so its scores are a straight fit's."""
    X, y = discrete_data(1500, noise="normal")
    kw = dict(early_stopping=True, n_iter_no_change=50)
    np.random.seed(123)
    full = HistGradientBoostingRegressor(max_iter=15, **kw).fit(X, y)
    np.random.seed(123)
    m = HistGradientBoostingRegressor(max_iter=6, warm_start=True, **kw).fit(X, y)
    m.set_params(max_iter=15).fit(X, y)
    assert m.n_iter_ == 15 and len(m.validation_score_) == len(m.train_score_) == 16
    np.testing.assert_allclose(m.validation_score_, full.validation_score_, rtol=1e-12)
    np.testing.assert_allclose(m.train_score_, full.train_score_, rtol=1e-12)


def test_warm_start_refuses_other_classes():
    X, y = discrete_data(600)
    yc = (y > np.median(y)).astype(int)
    m = HistGradientBoostingClassifier(max_iter=3, warm_start=True).fit(X, yc)
    with pytest.raises(ValueError, match="warm_start"):
        m.set_params(max_iter=6).fit(X, yc + 1)


def test_class_weight_multiplies_sample_weights():
    X, y = discrete_data(1500)
    yc = (y > np.quantile(y, 0.7)).astype(int)
    kw = dict(max_iter=10, early_stopping=False)
    a = HistGradientBoostingClassifier(class_weight={0: 1.0, 1: 4.0}, **kw).fit(X, yc)
    b = HistGradientBoostingClassifier(**kw).fit(X, yc, sample_weight=np.where(yc, 4.0, 1.0))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    w = np.random.default_rng(0).uniform(0.5, 1.5, len(yc))
    c = HistGradientBoostingClassifier(class_weight="balanced", **kw).fit(X, yc, sample_weight=w)
    d = HistGradientBoostingClassifier(**kw).fit(
        X, yc, sample_weight=w * compute_sample_weight("balanced", yc))
    np.testing.assert_array_equal(c.predict_proba(X), d.predict_proba(X))
    assert c.predict_proba(X)[:, 1].mean() > b.predict_proba(X)[:, 1].mean() - 0.2


def test_validation_set_passed_to_fit():
    X, y = discrete_data(1200, noise="normal")
    Xv, yv = discrete_data(300, seed=9, noise="normal")
    sv = np.random.default_rng(0).uniform(0.5, 2, 300)
    m = HistGradientBoostingRegressor(max_iter=10, early_stopping=True, n_iter_no_change=50)
    m.fit(X, y, X_val=Xv, y_val=yv, sample_weight_val=sv)
    # all of X trains (no rows held out), and the last validation score is the loss on Xv
    full = HistGradientBoostingRegressor(max_iter=10, early_stopping=False).fit(X, y)
    np.testing.assert_array_equal(m.predict(X), full.predict(X))
    np.testing.assert_allclose(-m.validation_score_[-1],
                               0.5 * np.average((m.predict(Xv) - yv) ** 2, weights=sv))
    with pytest.raises(ValueError, match="early_stopping"):
        HistGradientBoostingRegressor(early_stopping=False).fit(X, y, X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="together"):
        HistGradientBoostingRegressor().fit(X, y, X_val=Xv)
    with pytest.raises(ValueError, match="features"):
        HistGradientBoostingRegressor(early_stopping=True).fit(X, y, X_val=Xv[:, :3], y_val=yv)
    yc = np.where(y > 0, "p", "n")
    with pytest.raises(ValueError, match="not seen"):
        HistGradientBoostingClassifier(early_stopping=True).fit(
            X, yc, X_val=Xv, y_val=np.where(yv > 0, "p", "other"))


def test_staged_decision_function():
    X, y = discrete_data(800)
    for yc in ((y > 0).astype(int), np.digitize(y, np.quantile(y, [0.3, 0.6]))):
        m = HistGradientBoostingClassifier(max_iter=5).fit(X, yc)
        stages = list(m.staged_decision_function(X))
        assert len(stages) == 5
        np.testing.assert_allclose(stages[-1], m.decision_function(X), rtol=1e-12)
        assert stages[0].shape == m.decision_function(X).shape


def test_new_parameters_survive_save_and_load(tmp_path):
    """A saved model predicts the same after loading: the loss (and with it the log link) and
    class_weight come back as parameters; a warm start can continue a loaded model."""
    from parml.persistence import load, save
    X, _ = discrete_data(600)
    r = np.random.default_rng(0)
    y = r.poisson(np.exp((X[:, 0] - 20) / 10)).astype(float)
    m = HistGradientBoostingRegressor(loss="poisson", max_iter=5).fit(X, y)
    save(m, tmp_path / "poisson")
    back = load(tmp_path / "poisson")
    assert back.loss == "poisson" and back.is_categorical_ is None
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    yc = (y > 1).astype(int)
    c = HistGradientBoostingClassifier(max_iter=3, class_weight={0: 1.0, 1: 3.0}).fit(X, yc)
    save(c, tmp_path / "clf")
    back = load(tmp_path / "clf")
    assert back.class_weight == {0: 1.0, 1: 3.0}
    np.testing.assert_array_equal(back.predict_proba(X), c.predict_proba(X))
    back.set_params(warm_start=True, max_iter=6).fit(X, yc)
    assert back.n_iter_ == 6
