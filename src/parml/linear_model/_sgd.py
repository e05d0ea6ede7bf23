"""SGDClassifier and SGDRegressor on parml's epoch kernel: classic per-sample SGD (batch_size=1,
scikit-learn's algorithm), parallel mini-batches (batch_size > 1) or Hogwild."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.special import expit
from sklearn.base import RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._available_if import available_if

from parml._kernels import _linear, _shuffle
from parml._kernels._sgd import SCHEDULES as SCHEDULE_IDS, SGDParams, sgd_epoch

from parml._core.linear import LOSS, resolve_strategy
from parml._core.rows import Rows, check_sample_weight, check_X_fit

from ._base import (LinearClassifierBase, LinearModelBase, check_n_threads, encode_classes,
                    ovr_class_weight)

CLASSIFIER_LOSSES = ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron",
                     "squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive")
REGRESSOR_LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive")
PENALTIES = ("l2", "l1", "elasticnet", None)
SCHEDULES = ("constant", "optimal", "invscaling", "adaptive")
SGD_STRATEGIES = ("auto", "samples", "weights", "hogwild")


class _State:
    """What SGD carries between epochs and partial_fit calls: true weights = scale * V."""

    FIELDS = ("V", "b", "state", "Q", "A", "Ab")

    def __init__(self, K, d, l1, average):
        self.V = np.zeros((K, d))
        self.b = np.zeros(K)
        self.state = np.array([1.0, 1.0, 0.0, 0.0])   # scale, t, cumulative L1, averaged steps
        self.Q = np.zeros((K, d)) if l1 else None
        self.A = np.zeros((K, d)) if average else None
        self.Ab = np.zeros(K) if average else None

    def ensure(self, l1, average):
        """A state reused by warm_start / partial_fit gets the buffers the current settings need."""
        K, d = self.V.shape
        if l1 and self.Q is None:
            self.Q = np.zeros((K, d))
        if average and self.A is None:
            self.A, self.Ab = self.V * self.state[0], self.b.copy()

    def coef(self, averaged):
        if averaged and self.A is not None and self.state[3] > 0:
            return self.A.copy(), self.Ab.copy()
        return self.V * self.state[0], self.b.copy()


def _real(name, v, lo=None, lo_open=False, hi=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {v!r}")


def _int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


class _SGDParams:
    """The hyper-parameters as the epoch kernel wants them."""

    def __init__(self, est, losses):
        if est.loss not in losses:
            raise ValueError(f"loss must be one of {losses}, got {est.loss!r}")
        if est.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {est.penalty!r}")
        if est.learning_rate not in SCHEDULES:
            raise ValueError(f"learning_rate must be one of {SCHEDULES}, got {est.learning_rate!r}")
        if est.strategy not in SGD_STRATEGIES:
            raise ValueError(f"strategy must be one of {SGD_STRATEGIES}, got {est.strategy!r}")
        _real("alpha", est.alpha, 0.0)
        _real("l1_ratio", est.l1_ratio, 0.0, hi=1.0)
        _real("epsilon", est.epsilon, 0.0)
        _real("power_t", est.power_t)
        _real("eta0", est.eta0, 0.0, lo_open=True)   # (> 0 even where unused, as scikit-learn)
        _int("max_iter", est.max_iter, 1)
        _int("batch_size", est.batch_size, 1)
        _int("n_iter_no_change", est.n_iter_no_change, 1)
        _real("validation_fraction", est.validation_fraction, 0.0, lo_open=True, hi=1.0)
        if est.tol is not None:
            _real("tol", est.tol, 0.0)
        if not isinstance(est.average, (bool, np.bool_)):
            _int("average", est.average, 1)
        if est.learning_rate == "optimal" and est.alpha == 0:
            raise ValueError("alpha must be > 0 since learning_rate is 'optimal'.")
        if est.learning_rate != "optimal" and est.eta0 <= 0:
            raise ValueError(f"eta0 must be > 0 with learning_rate={est.learning_rate!r}")
        if not (isinstance(est.shuffle, (bool, np.bool_)) or est.shuffle == "blocks"):
            raise ValueError(f"shuffle must be True, False or 'blocks', got {est.shuffle!r}")
        if est.strategy == "hogwild" and (est.penalty in ("l1", "elasticnet") or est.average):
            raise ValueError("strategy='hogwild' supports penalty 'l2' or None and "
                             "average=False only")
        self.loss = LOSS[est.loss]
        self.eps = float(est.epsilon)
        # alpha also sets the 'optimal' learning rate, whatever the penalty (as in
        # scikit-learn); without a penalty l1frac = l2frac = 0 leave the weights undecayed
        self.alpha = float(est.alpha)
        self.l1frac = {"l1": 1.0, "elasticnet": float(est.l1_ratio)}.get(est.penalty, 0.0)
        self.l2frac = {"l2": 1.0, "elasticnet": 1.0 - float(est.l1_ratio)}.get(est.penalty, 0.0)
        self.schedule = SCHEDULE_IDS[est.learning_rate]
        self.adaptive = est.learning_rate == "adaptive"
        self.eta0 = float(est.eta0)
        self.power_t = float(est.power_t)
        # 'optimal' (Bottou): eta = 1 / (alpha (t0 + t - 1)), t0 chosen so the first step is
        # about typw = alpha^(-1/4), the typical weight size (every loss's derivative at
        # y = 1, z = -typw is negative, so its max with 1 is 1)
        a = max(float(est.alpha), 1e-300)
        self.opt_init = 1.0 / (np.sqrt(1.0 / np.sqrt(a)) * a)
        self.avg_start = float(0 if not est.average else (1 if est.average is True else est.average))
        self.batch = int(est.batch_size)
        self.l1 = self.l1frac > 0 and self.alpha > 0
        self.fit_intercept = bool(est.fit_intercept)
        self.cw = None       # one-vs-rest class weights (set by _prepare)
        self.sw_val = None   # sample weights without class weights: early stopping's score
        self.sgd_conventions = True   # clipped d loss / d z, unweighted epoch loss


SHUFFLE_BLOCK = 64  # rows per block of shuffle="blocks"


def _block_order(n, rng, idx=None):
    """Rows in a random order of blocks of SHUFFLE_BLOCK consecutive rows, in order within a
    block: a shuffled row costs a cache miss (~80 ns here, more than its arithmetic), rows in
    order within a block stream through the hardware prefetcher."""
    base = np.arange(n, dtype=np.intp) if idx is None else idx
    nb = -(-len(base) // SHUFFLE_BLOCK)
    blocks = rng.permutation(nb)
    starts = blocks * SHUFFLE_BLOCK
    lens = np.minimum(SHUFFLE_BLOCK, len(base) - starts)
    pos = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + \
        np.arange(int(lens.sum()))
    return base[pos]


def _epoch(rows, yk, sw, st, p, K, ovr, strategy, nt, rng, shuffle, train_mask, eta0,
           need_loss=True, epoch=1):
    """One pass over the data, chunk by chunk (rows shuffled within each chunk: every row, or
    blocks of rows with shuffle="blocks"). Raises ValueError when the weights overflow (as
    scikit-learn does) rather than going on with NaN or inf weights."""
    kp = _kernel_params(p, ovr, strategy, eta0)
    sumloss = 0.0
    for s, e, c in rows.chunks():
        idx = None
        if train_mask is not None:
            idx = np.flatnonzero(train_mask[s:e]).astype(np.intp)
        if shuffle == "blocks":
            idx = _block_order(e - s, rng, idx)
        elif shuffle:
            # our Fisher-Yates (2 ms for 800k rows, numpy's RandomState 11-15 ms), seeded from
            # the estimator's random state
            idx = _shuffle.permutation(e - s if idx is None else idx,
                                       int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64)))
        sumloss += sgd_epoch(c, yk[s:e], None if sw is None else sw[s:e], idx, st.V, st.b,
                             st.state, st.Q, st.A, st.Ab, kp, nt, need_loss, cw=p.cw)
    if not (np.isfinite(st.state[0]) and np.all(np.isfinite(st.V)) and np.all(np.isfinite(st.b))):
        raise ValueError(f"Floating-point under-/overflow occurred at epoch #{epoch}. Scaling "
                         "input data with StandardScaler or MinMaxScaler might help.")
    return sumloss


def _kernel_params(p, ovr, strategy, eta0):
    """The epoch kernel's settings (checked there) from the hyper-parameters p."""
    return SGDParams(loss=p.loss, ovr=bool(ovr), epsilon=p.eps, schedule=p.schedule, eta0=eta0,
                     power_t=p.power_t, alpha=p.alpha, opt_init=p.opt_init,
                     l1frac=p.l1frac if p.l1 else 0.0, l2frac=p.l2frac, avg_start=p.avg_start,
                     fit_intercept=bool(p.fit_intercept), batch=p.batch, strategy=strategy,
                     sgd_conventions=p.sgd_conventions)


def _strategy_id(strategy, K, d):
    if strategy == "hogwild":
        return _linear.STRATEGIES["hogwild"]
    return resolve_strategy(strategy, K, d)


def sgd_solve(rows, yk, sw, *, loss, K, ovr, alpha, fit_intercept, strategy, n_threads, tol,
              max_iter, random_state, W0, b0, batch_size=256):
    """Mini-batch SGD for LogisticRegression(solver='sgd'): eta_t = eta0 / sqrt(t) with eta0 from
    the data's scale (1 for standardized features); stops when the epoch loss has not improved by
    tol * n for 5 epochs. Returns (W, b, epochs)."""
    class _P:
        pass
    p = _P()
    p.loss, p.eps, p.alpha, p.l1frac, p.l2frac, p.l1 = loss, 0.0, alpha, 0.0, 1.0, False
    p.schedule, p.power_t, p.avg_start, p.batch = SCHEDULE_IDS["invscaling"], 0.5, 0.0, batch_size
    p.opt_init, p.fit_intercept = 0.0, fit_intercept
    # a weighted objective: its tol rule compares the weighted loss, unclipped
    p.sgd_conventions, p.cw = False, None
    # mean squared row norm per feature, from (up to) 10k rows of the first chunk
    _, _, first = next(rows.chunks())
    ms = float(np.mean(np.square(first[:10_000], dtype=np.float64))) if first.size else 1.0
    eta0 = 1.0 / max(1.0, ms)
    st = _State(K, rows.d, False, False)
    st.V[:] = W0
    st.b[:] = b0
    rng = check_random_state(random_state)
    sid = _strategy_id(strategy, K, rows.d)
    best, bad, ep = np.inf, 0, 0
    for ep in range(1, max_iter + 1):
        loss_sum = _epoch(rows, yk, sw, st, p, K, ovr, sid, n_threads, rng, True, None, eta0,
                          epoch=ep)
        bad = bad + 1 if loss_sum > best - tol * rows.n else 0
        best = min(best, loss_sum)
        if bad >= 5:
            break
    W, b = st.coef(False)
    return np.ascontiguousarray(W), b, ep


class _SGDBase(LinearModelBase):
    _losses = REGRESSOR_LOSSES

    def _save_state(self, put):
        st = getattr(self, "_sgd_state", None)
        if st is None:
            return {}
        fields = [f for f in _State.FIELDS if getattr(st, f) is not None]
        for f in fields:
            put(f"_sgd_state.{f}", getattr(st, f))
        return {"_sgd_state": {"fields": fields}}

    def _restore_state(self, extra, take):
        e = extra.pop("_sgd_state", None)
        if e is None:
            return
        st = _State.__new__(_State)
        for f in _State.FIELDS:
            # a copy: partial_fit trains the state in place, never a shared memory map
            st_f = np.array(take(f"_sgd_state.{f}")) if f in e["fields"] else None
            setattr(st, f, st_f)
        if st.V is None or st.b is None or st.state is None:
            raise ValueError("the SGD state lacks its weights")
        self._sgd_state = st

    def _fit(self, X, y, sample_weight, *, coef_init=None, intercept_init=None, partial=False,
             classes=None):
        p = _SGDParams(self, self._losses)
        if partial:
            if self.early_stopping:
                raise ValueError("early_stopping should be False with partial_fit")
            if getattr(self, "class_weight", None) == "balanced":
                raise ValueError(
                    "class_weight 'balanced' is not supported for partial_fit. In order to use "
                    "'balanced' weights, use compute_class_weight('balanced', classes=classes, "
                    "y=y) on a large enough sample of the training targets, and pass the "
                    "resulting weights as the class_weight parameter.")
        nt = check_n_threads(self.n_threads)
        first = not (partial and hasattr(self, "_sgd_state"))
        if not first:
            self._check_features(X)
        rows, yk, K, ovr, sw, p.cw, p.sw_val = self._prepare(X, y, sample_weight, nt, classes,
                                                             first)
        if first or not partial:
            # fit starts a new run (step count, lazy scale, L1 and average state), as in
            # scikit-learn; warm_start only seeds the weights with coef_ and intercept_
            st = _State(K, rows.d, p.l1, p.avg_start > 0)
            if self.warm_start and not partial and hasattr(self, "coef_"):
                # (scikit-learn: coef_ and intercept_ stand in for coef_init / intercept_init)
                if coef_init is None:
                    coef_init = self.coef_   # (checked below like any coef_init)
                if intercept_init is None:
                    intercept_init = self.intercept_
            if coef_init is not None:
                ci = np.asarray(coef_init, dtype=np.float64)
                if ci.size != K * rows.d:
                    raise ValueError(f"Provided coef_init does not match dataset: shape "
                                     f"{ci.shape}, expected {K} x {rows.d} weights.")
                st.V[:] = ci.reshape(K, rows.d)
            if intercept_init is not None:
                ii = np.asarray(intercept_init, dtype=np.float64)
                if ii.size != K:
                    raise ValueError(f"Provided intercept_init does not match dataset: shape "
                                     f"{ii.shape}, expected {K} intercepts.")
                st.b[:] = ii.reshape(K)
        else:
            st = self._sgd_state
        st.ensure(p.l1, p.avg_start > 0)
        sid = _strategy_id(self.strategy, K, rows.d)
        rng = check_random_state(self.random_state)
        try:
            if partial:
                _epoch(rows, yk, sw, st, p, K, ovr, sid, nt, rng, self.shuffle, None, p.eta0,
                       need_loss=False)
                self.n_iter_ = 1   # (scikit-learn: one epoch per partial_fit call)
            else:
                self.n_iter_ = self._epochs(rows, yk, sw, st, p, K, ovr, sid, nt, rng)
        except ValueError:
            # (an overflow: no state to continue from; a later partial_fit starts afresh)
            if getattr(self, "_sgd_state", None) is st:
                del self._sgd_state
            raise
        self._sgd_state = st
        self.t_ = float(st.state[1])
        coef, b = st.coef(p.avg_start > 0)
        self._set_coef(coef, b)
        return self

    def _epochs(self, rows, yk, sw, st, p, K, ovr, sid, nt, rng):
        train_mask, val = None, None
        if self.early_stopping:
            # scored with the sample weights only, as scikit-learn does
            train_mask, val = self._validation_split(rows, yk, p.sw_val, rng)
        tol = -np.inf if self.tol is None else float(self.tol)
        n_train = rows.n if train_mask is None else int(train_mask.sum())
        best_loss, best_score, bad = np.inf, -np.inf, 0
        # the epoch loss feeds only the stopping rule and verbose output; without them, the log
        # loss's log1p per sample is skipped
        need_loss = (self.tol is not None and val is None) or bool(self.verbose)
        eta0 = p.eta0
        ep = 0
        for ep in range(1, self.max_iter + 1):
            sumloss = _epoch(rows, yk, sw, st, p, K, ovr, sid, nt, rng, self.shuffle,
                             train_mask, eta0, need_loss=need_loss, epoch=ep)
            if self.verbose:
                print(f"-- Epoch {ep}: avg. loss {sumloss / max(n_train, 1):.6f}")
            if val is not None:
                coef, b = st.coef(p.avg_start > 0)
                self._set_coef(coef, b)
                score = self.score(val[0], val[1], val[2])
                bad = bad + 1 if score < best_score + tol else 0
                best_score = max(best_score, score)
            else:
                bad = bad + 1 if sumloss > best_loss - tol * n_train else 0
                best_loss = min(best_loss, sumloss)
            if bad >= self.n_iter_no_change:
                if p.adaptive and eta0 > 1e-6:
                    eta0 /= 5.0
                    bad = 0
                else:
                    break
        else:
            if self.tol is not None and self.max_iter > 1:
                warnings.warn(f"Maximum number of iterations ({self.max_iter}) reached before "
                              "convergence; consider increasing max_iter.", ConvergenceWarning,
                              stacklevel=3)
        return ep

    def _validation_split(self, rows, yk, sw, rng):
        from sklearn.model_selection import train_test_split
        n = rows.n
        strat = yk if isinstance(self, SGDClassifier) else None
        tr, va = train_test_split(np.arange(n), test_size=self.validation_fraction,
                                  random_state=rng, stratify=strat)
        if len(va) == 0 or len(tr) == 0:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves an empty "
                             f"training or validation set for {n} samples.")
        mask = np.zeros(n, dtype=bool)
        mask[tr] = True
        va = np.sort(va)
        Xv = np.asarray(rows.X[va], dtype=rows.dtype)
        yv = self._decode_targets(yk[va])
        return mask, (Xv, yv, None if sw is None else sw[va])

    def _check_features(self, X):
        d = np.shape(X)[1] if np.ndim(X) == 2 else None
        if d is not None and d != self.n_features_in_:
            raise ValueError(f"X has {d} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")


class SGDClassifier(LinearClassifierBase, _SGDBase):
    """Linear classifiers (SVM, logistic regression, ...) trained by SGD, drop-in for
    scikit-learn's. `batch_size=1` is scikit-learn's per-sample algorithm (one thread); larger
    batches average the gradient over the batch, computed by the fused kernel in parallel
    (`strategy` "samples" or "weights", "auto" picks) and applied in parallel over weights.
    `strategy="hogwild"` runs `n_threads` lock-free per-sample workers: fast but not
    reproducible. More than two classes: one-vs-rest, all classes updated in the same pass.
    `shuffle="blocks"` visits blocks of 64 consecutive rows in random order (rows in order
    within a block): on data in random row order it trains as well as shuffle=True and runs
    about 3x faster, because a shuffled row is a cache miss; on sorted data prefer True."""

    _losses = CLASSIFIER_LOSSES

    def __init__(self, loss="hinge", *, penalty="l2", alpha=0.0001, l1_ratio=0.15,
                 fit_intercept=True, max_iter=1000, tol=1e-3, shuffle=True, verbose=0,
                 epsilon=0.1, random_state=None, learning_rate="optimal", eta0=0.01,
                 power_t=0.5, early_stopping=False, validation_fraction=0.1, n_iter_no_change=5,
                 class_weight=None, warm_start=False, average=False, batch_size=1,
                 strategy="auto", n_threads=None):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.average = average
        self.batch_size = batch_size
        self.strategy = strategy
        self.n_threads = n_threads

    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        return self._fit(X, y, sample_weight, coef_init=coef_init, intercept_init=intercept_init)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        if not hasattr(self, "classes_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    def _prepare(self, X, y, sample_weight, nt, classes, first):
        rows, y = check_X_fit(self, X, y, nt) if first else _refit_rows(self, X, y, nt)
        if classes is None and not first:
            classes = self.classes_
        cls, yi = encode_classes(self, y, None if classes is None else np.unique(classes))
        if not first and not np.array_equal(cls, self.classes_):
            raise ValueError(f"classes {list(cls)} differ from the classes of the first call "
                             f"{list(self.classes_)}")
        self.classes_ = cls
        sw0 = check_sample_weight(sample_weight, rows.n)
        K = 1 if len(cls) == 2 else len(cls)
        yk = np.where(yi == 1, 1.0, -1.0) if K == 1 else yi.astype(np.float64)
        sw, cw = ovr_class_weight(self.class_weight, cls, yi, sw0, K, weighted_balance=False)
        return rows, yk, K, K > 1, sw, cw, sw0

    def _decode_targets(self, yk):
        if len(self.classes_) == 2:
            return self.classes_[(yk > 0).astype(np.intp)]
        return self.classes_[yk.astype(np.intp)]

    def _set_coef(self, coef, b):
        self.coef_ = np.ascontiguousarray(coef)
        self.intercept_ = b

    def _has_proba(self):
        return self.loss in ("log_loss", "modified_huber")

    @available_if(_has_proba)
    def predict_proba(self, X):
        s = self.decision_function(X)
        if self.loss == "log_loss":
            p = expit(s)
        else:
            p = (np.clip(s, -1.0, 1.0) + 1.0) / 2.0
        if s.ndim == 1:
            return np.column_stack([1.0 - p, p])
        tot = p.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(tot > 0, p / np.where(tot > 0, tot, 1.0), 1.0 / p.shape[1])
        return p

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))


def _refit_rows(est, X, y, nt):
    """partial_fit after the first call: same validation, features must match (reset=False)."""
    from sklearn.utils.validation import validate_data
    from parml._core.rows import _require_finite
    if isinstance(X, np.memmap):
        return check_X_fit(est, X, y, nt)
    X, y = validate_data(est, X, y, dtype=[np.float64, np.float32], order="C", reset=False,
                         ensure_all_finite=False, y_numeric=isinstance(est, RegressorMixin))
    _require_finite(X, nt)
    if isinstance(est, RegressorMixin) and not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or infinity.")
    return Rows(X, nt), y


class SGDRegressor(RegressorMixin, _SGDBase):
    """Linear regression trained by SGD, drop-in for scikit-learn's (see SGDClassifier for
    `batch_size` and `strategy`)."""

    _losses = REGRESSOR_LOSSES

    def __init__(self, loss="squared_error", *, penalty="l2", alpha=0.0001, l1_ratio=0.15,
                 fit_intercept=True, max_iter=1000, tol=1e-3, shuffle=True, verbose=0,
                 epsilon=0.1, random_state=None, learning_rate="invscaling", eta0=0.01,
                 power_t=0.25, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, warm_start=False, average=False, batch_size=1,
                 strategy="auto", n_threads=None):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.batch_size = batch_size
        self.strategy = strategy
        self.n_threads = n_threads

    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        return self._fit(X, y, sample_weight, coef_init=coef_init, intercept_init=intercept_init)

    def partial_fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, partial=True)

    def _prepare(self, X, y, sample_weight, nt, classes, first):
        if first:
            rows, y = check_X_fit(self, X, y, nt, y_numeric=True)
        else:
            rows, y = _refit_rows(self, X, y, nt)
        y = np.ascontiguousarray(y, dtype=np.float64)
        sw = check_sample_weight(sample_weight, rows.n)
        return rows, y, 1, False, sw, None, sw

    def _decode_targets(self, yk):
        return yk

    def _set_coef(self, coef, b):
        self.coef_ = np.ascontiguousarray(coef[0])
        self.intercept_ = b

    def predict(self, X):
        return self._scores(X)[:, 0]
