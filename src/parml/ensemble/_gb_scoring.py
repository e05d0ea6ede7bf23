"""Watching a HistGradientBoosting fit: the scores behind early stopping (train_score_,
validation_score_) and the verbose progress display."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.utils import resample
from sklearn.utils._param_validation import StrOptions

# a scorer (unlike the loss) predicts from X, so training scores use at most this many rows
SMALL_TRAINSET = 10_000


def scoring_constraint():
    """The ``scoring`` parameter's constraints: "loss", any scikit-learn scorer name, a callable
    scorer(estimator, X, y), or None (the estimator's score method). Names are checked against
    scikit-learn's list at fit, so a typo fails even when early stopping is off."""
    return [StrOptions(set(get_scorer_names()) | {"loss"}), callable, None]


@contextmanager
def _raw_is(est, raw):
    """While inside, est._raw(X) returns raw whatever X is: a scorer's predict / predict_proba
    then reuses the raw scores the fit keeps up to date instead of walking every tree again
    (which made scoring cost grow with the number of trees). Only for scorers known to predict
    on the X they are given: scikit-learn's named scorers and the estimator's own score."""
    est._raw = lambda X: raw
    try:
        yield
    finally:
        del est._raw  # the class's method again


class ScoreKeeper:
    """Appends one training (and validation) score per call to est.train_score_ /
    est.validation_score_ (higher is better; the negated loss for scoring="loss") and says
    whether scikit-learn's early-stopping rule fires on them: on the validation scores when there
    is a validation set, else on the training scores.

    train = (X, y, Y, sw) of the training rows, val the same or None; y are the targets as the
    user gave them (class labels), Y the encoded ones the loss takes. seed draws the training
    subsample that scorers are evaluated on when there are more than SMALL_TRAINSET rows."""

    def __init__(self, est, train, val, seed):
        self.est = est
        self.by_loss = est.scoring == "loss"
        self.val = val
        X, y, Y, sw = train
        self.idx = None
        if self.by_loss:
            self.train = train          # the loss is cheap on raw scores: all training rows
        else:
            self.scorer = check_scoring(est, est.scoring)
            self.reuse_raw = est.scoring is None or isinstance(est.scoring, str)
            if len(y) > SMALL_TRAINSET:
                self.idx = resample(np.arange(len(y)), n_samples=SMALL_TRAINSET, replace=False,
                                    random_state=seed,
                                    stratify=y if is_classifier(est) else None)
                X, y, Y = X[self.idx], y[self.idx], Y[self.idx]
                sw = None if sw is None else sw[self.idx]
            self.train = (X, y, Y, sw)

    def _one(self, data, raw):
        X, y, Y, sw = data
        if self.by_loss:
            return -self.est._loss(raw, Y, sw)
        kw = {} if sw is None else {"sample_weight": sw}
        if self.reuse_raw:
            with _raw_is(self.est, raw):
                return float(self.scorer(self.est, X, y, **kw))
        return float(self.scorer(self.est, X, y, **kw))

    def record(self, raw, raw_val):
        """Score the model whose raw training (validation) scores are raw (raw_val)."""
        est = self.est
        est.train_score_.append(self._one(self.train, raw if self.idx is None else raw[self.idx]))
        if self.val is None:
            return est._should_stop(est.train_score_)
        est.validation_score_.append(self._one(self.val, raw_val))
        return est._should_stop(est.validation_score_)

    def describe(self):
        """The latest scores as text for the progress display."""
        est = self.est
        name, sign = ("loss", -1) if self.by_loss else ("score", 1)
        text = f"train {name} {sign * est.train_score_[-1]:.5g}"
        if est.validation_score_:
            text += f", val {name} {sign * est.validation_score_[-1]:.5g}"
        return text


def _clock(seconds):
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    """What ``verbose`` prints, on stderr. verbose >= 1: one line rewritten in place (carriage
    return) with iteration i/max_iter, time elapsed, estimated time left and the latest scores,
    redrawn at most every min_interval seconds so a fast fit does not spend its time printing;
    at the end a newline and a one-line summary. verbose >= 2: one line per iteration instead.
    The estimate is for max_iter iterations, so an early stop ends sooner than it says."""

    def __init__(self, verbose, max_iter, stream=None, min_interval=0.1):
        self.level = int(verbose)
        self.max_iter = max_iter
        self.stream = stream if stream is not None else sys.stderr
        # a log file gets every redraw as text: redraw it ten times less often than a terminal
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.min_interval = min_interval if tty else 10 * min_interval
        self.t0 = self.t_iter = time.perf_counter()
        self.last_draw = -np.inf
        self.width = 0
        self.line = ""

    def begin(self):
        """The boosting loop starts: the first iteration's time excludes validation and binning."""
        self.t_iter = time.perf_counter()

    def update(self, it, scores="", trees=()):
        """After iteration it (1-based); scores: text of the latest scores (or ""); trees: the
        iteration's Tree objects (for the per-iteration line)."""
        if self.level <= 0:
            return
        now = time.perf_counter()
        if self.level >= 2:
            leaves = sum(sum(1 for c in t.left if c < 0) for t in trees)
            depth = max((max(t.depth) for t in trees), default=0)
            parts = [f"{leaves} leaves, max depth {depth}"] + ([scores] if scores else [])
            print(f"[{it}/{self.max_iter}] " + ", ".join(parts)
                  + f", in {now - self.t_iter:.3f} s", file=self.stream, flush=True)
            self.t_iter = now
            return
        elapsed = now - self.t0
        left = elapsed / it * (self.max_iter - it)
        w = len(str(self.max_iter))
        self.line = (f"[{it:>{w}}/{self.max_iter}] {_clock(elapsed)} elapsed, ~{_clock(left)} "
                     f"left" + (f", {scores}" if scores else ""))
        if now - self.last_draw >= self.min_interval:
            self._draw()
            self.last_draw = now

    def _draw(self):
        pad = max(self.width - len(self.line), 0)  # blank what a longer previous line left
        self.stream.write("\r" + self.line + " " * pad)
        self.stream.flush()
        self.width = len(self.line)

    def close(self, n_trees, n_iter, n_leaves, stopped_early):
        if self.level <= 0:
            return
        if self.level == 1:
            if self.line:
                self._draw()  # the final state, whatever the throttle skipped
            self.stream.write("\n")
        why = f", early stop after {n_iter} iterations" if stopped_early else ""
        print(f"fit {n_trees} trees in {time.perf_counter() - self.t0:.3f} s "
              f"({n_leaves} leaves{why})", file=self.stream, flush=True)
