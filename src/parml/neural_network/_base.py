"""The shared MLP estimator: parameters, initialisation, the epoch loop over parml's fused kernels
(adam / sgd), L-BFGS through scipy, early stopping, and prediction."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, shuffle as sk_shuffle
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from parml import _isa, ops
from parml._core.persist import Persistent
from parml._kernels import _linear, _mlp
from parml._kernels._tuner import Tuner
from parml._threads import effective_n_threads, single_threaded_blas

from ._data import check_predict_X, training_source

# A batch runs on more than one thread only when one thread would take at least this long (its
# forward + both backward products at this process's measured GEMM rate, parml.ops.gemm_rate):
# below it waking a helper costs as much as it saves. Above it the kernel's tuner times n threads
# against one and keeps the faster.
PARALLEL_MIN_BATCH_SECONDS = 1.0e-4
# Rows per chunk when L-BFGS sums the gradient over the data: bounds the activations held.
LBFGS_CHUNK_ROWS = 16384
_HIDDEN = ("identity", "logistic", "tanh", "relu")


def _check_dtype(dtype):
    dt = None
    if dtype is not None:  # np.dtype(None) would be float64
        try:
            dt = np.dtype(dtype)
        except TypeError:
            pass
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64 (np.float32, np.float64), got {dtype!r}")
    return dt


def _hidden_sizes(hidden_layer_sizes):
    sizes = hidden_layer_sizes
    if not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    sizes = list(sizes)
    if len(sizes) == 0:
        raise ValueError("hidden_layer_sizes is empty: give at least one hidden layer, e.g. (100,)")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (Integral, np.integer)) or s <= 0:
            raise ValueError(f"hidden_layer_sizes must hold positive integers, got {hidden_layer_sizes!r}")
    return [int(s) for s in sizes]


class BaseMLP(Persistent, BaseEstimator):
    """Base of MLPClassifier and MLPRegressor; not for direct use."""

    def _check_restored(self):
        units = [self.n_features_in_] + [c.shape[1] if c.ndim == 2 else -1 for c in self.coefs_]
        ok = all(c.ndim == 2 and c.shape[0] == units[i] for i, c in enumerate(self.coefs_))
        ok = ok and len(self.intercepts_) == len(self.coefs_) and all(
            b.shape == (units[i + 1],) for i, b in enumerate(self.intercepts_))
        if not ok or units[-1] != getattr(self, "n_outputs_", -1):
            raise ValueError("the network's layer shapes do not chain")

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_HIDDEN))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "n_threads": [None, Integral],
        "dtype": "no_validation",
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None, dtype=np.float32):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads
        self.dtype = dtype

    # ---- subclass hooks ------------------------------------------------------------------------
    def _targets(self, y, incremental, first_pass):
        """y -> (Y as a float 2-D array of outputs, output activation name)."""
        raise NotImplementedError

    def _val_score(self, X, y, sample_weight):
        raise NotImplementedError

    # ---- fitting ---------------------------------------------------------------------------------
    def _check_solver(self):
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _check_params(self):
        """Validates every parameter; returns (hidden sizes, dtype)."""
        self._validate_params()
        return _hidden_sizes(self.hidden_layer_sizes), _check_dtype(self.dtype)

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden, dtype = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if not first_pass and self.coefs_[0].dtype != dtype:
            raise ValueError(f"dtype changed from {self.coefs_[0].dtype} to {dtype} since the "
                             "model was fitted; refit from scratch (warm_start=False)")
        n_threads = effective_n_threads(self.n_threads)
        src, y = training_source(self, X, y, sample_weight, dtype, n_threads, reset=first_pass,
                                 y_numeric=not self._is_classifier())
        Y, out_act = self._targets(y, incremental, first_pass)
        if not np.isfinite(Y).all():
            raise ValueError(f"y has values too large for {dtype.name}; scale the targets or "
                             "use dtype=np.float64")
        units = [src.n_features] + hidden + [Y.shape[1]]
        if not first_pass:
            have = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
            if have != units:
                raise ValueError(f"the network's layers {have} do not match this data and "
                                 f"hidden_layer_sizes {units}; refit with warm_start=False")
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(units, out_act, dtype)
        else:
            self._ensure_training_state()
        if not first_pass and not all(p.flags.writeable for p in self.coefs_ + self.intercepts_):
            # a model memory-mapped by parml.load: train on a private copy of its weights
            self.coefs_ = [np.array(c) for c in self.coefs_]
            self.intercepts_ = [np.array(b) for b in self.intercepts_]
        kernel = _isa.kernel_set_id()
        # a divergence restores the model this call started from (or leaves none): never a
        # half-trained network that looks fitted
        saved = None if first_pass else self._snapshot()
        try:
            if self.solver == "lbfgs":
                self._fit_lbfgs(src, Y, units, n_threads, kernel)
            else:
                self._fit_stochastic(src, Y, units, n_threads, kernel, incremental, y)
            if not all(np.isfinite(p).all() for p in self.coefs_ + self.intercepts_):
                raise _Diverged("Solver produced non-finite parameter weights. The input data "
                                "may contain large values and need to be preprocessed.")
        except _Diverged as e:
            if saved is None:
                for a in _TRAINING_STATE:
                    self.__dict__.pop(a, None)
            else:
                self.__dict__.update(saved)
            raise ValueError(str(e) + ("" if saved is None else
                                       "; the model is left as it was before this call")) from None
        self._check_output_finite(src, first_pass, saved)
        return self

    def _check_output_finite(self, src, first_pass, saved):
        """Finite weights can still be large enough to overflow the activations (a last step
        that blew up): run the network on up to 1024 training rows and refuse such a model."""
        rows = src.chunk(0, min(src.n, 1024))
        out = _mlp.forward(self.coefs_, self.intercepts_, np.ascontiguousarray(rows),
                           self.activation, self.out_activation_, n_threads=1,
                           kernel_id=_isa.kernel_set_id())
        if np.isfinite(out).all():
            return
        if saved is None:
            for a in _TRAINING_STATE:
                self.__dict__.pop(a, None)
        else:
            self.__dict__.update(saved)
        raise ValueError("training diverged: the trained network's outputs overflow to NaN or "
                         "infinity on the training data (learning_rate_init may be too large, or "
                         "X needs scaling)" + ("" if saved is None else
                                              "; the model is left as it was before this call"))

    def _ensure_training_state(self):
        """A model from parml.load carries its fitted attributes but not the stopping
        bookkeeping: start that afresh, as a new optimiser would."""
        if self.solver in ("sgd", "adam"):
            if not isinstance(getattr(self, "loss_curve_", None), list):
                self.loss_curve_ = []
            self.__dict__.setdefault("_no_improvement_count", 0)
            if "_best_coefs" not in self.__dict__:
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
            if self.early_stopping:
                if not isinstance(getattr(self, "validation_scores_", None), list):
                    self.validation_scores_ = []
                if getattr(self, "best_validation_score_", None) is None:
                    self.best_validation_score_ = -np.inf
            elif getattr(self, "best_loss_", None) is None:
                self.best_loss_ = np.inf

    def _snapshot(self):
        keep = {}
        for k in ("coefs_", "intercepts_", "_moments"):
            if k in self.__dict__:
                v = self.__dict__[k]
                keep[k] = ([[a.copy() for a in part] for part in v] if k == "_moments"
                           else [a.copy() for a in v])
        for k in ("n_iter_", "t_", "_adam_t", "_lr", "loss_", "best_loss_", "_no_improvement_count"):
            if k in self.__dict__:
                keep[k] = self.__dict__[k]
        if "loss_curve_" in self.__dict__:
            keep["loss_curve_"] = list(self.loss_curve_)
        return keep

    def _initialize(self, units, out_act, dtype):
        """Glorot-uniform weights drawn exactly as scikit-learn draws them (same random_state,
        same initial network)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = units[-1]
        self.n_layers_ = len(units)
        self.out_activation_ = out_act
        self.coefs_, self.intercepts_ = [], []
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            inter = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(np.ascontiguousarray(coef, dtype=dtype))
            self.intercepts_.append(np.ascontiguousarray(inter, dtype=dtype))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        if self.solver in ("sgd", "adam"):
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _new_optimizer(self):
        zeros = lambda ps: [np.zeros_like(p) for p in ps]  # noqa: E731
        self._moments = [zeros(self.coefs_), zeros(self.intercepts_),
                         zeros(self.coefs_) if self.solver == "adam" else [],
                         zeros(self.intercepts_) if self.solver == "adam" else []]
        self._adam_t = 0
        self._lr = float(self.learning_rate_init)

    def _tuner(self, units, batch, n_threads, dtype):
        flops = 6.0 * batch * sum(a * b for a, b in zip(units[:-1], units[1:]))
        nt = 1
        if n_threads > 1 and flops / ops.gemm_rate(dtype) >= PARALLEL_MIN_BATCH_SECONDS:
            nt = n_threads
        tuner = getattr(self, "_thread_tuner", None)
        if tuner is None or tuner.n_threads != nt:
            tuner = self._thread_tuner = Tuner(nt, "batches")
        return tuner

    def _fit_stochastic(self, src, Y, units, n_threads, kernel, incremental, y_raw):
        if not incremental or not hasattr(self, "_moments"):
            self._new_optimizer()
        train_idx, val = None, None
        if self.early_stopping:
            train_idx, val = self._split_validation(src, y_raw)
        n_train = src.n if train_idx is None else len(train_idx)
        if self.batch_size == "auto":
            batch = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch = int(np.clip(self.batch_size, 1, n_train))
        tuner = self._tuner(units, batch, n_threads, self.coefs_[0].dtype)
        sample_idx = np.arange(n_train, dtype=np.int64)
        hidden = self.activation
        src.align_chunks(batch)
        self.n_iter_ = 0  # iterations of this call, as scikit-learn >= 1.3 counts them
        for _ in range(self.max_iter):
            if self.shuffle:
                sample_idx = sk_shuffle(sample_idx, random_state=self._random_state)
            if train_idx is not None:
                order = train_idx[sample_idx]
            else:
                order = sample_idx if self.shuffle else None
            loss_sum = 0.0
            for X, Yc, swc, o in src.epoch_parts(Y, order, sorted_rows=not self.shuffle):
                rc, part, done, self._adam_t = _mlp.train_epoch(
                    self.coefs_, self.intercepts_, X, Yc, swc, o, batch, hidden=hidden,
                    output=self.out_activation_, optimizer=self.solver, lr=self._lr,
                    momentum=self.momentum, nesterov=self.nesterovs_momentum, beta1=self.beta_1,
                    beta2=self.beta_2, epsilon=self.epsilon, alpha=self.alpha, t=self._adam_t,
                    moments=self._moments, tuner=tuner, kernel_id=kernel)
                if rc != 0:
                    raise _Diverged(
                        f"training diverged in epoch {self.n_iter_ + 1}: the loss became NaN or "
                        f"infinite (learning_rate_init={self.learning_rate_init} may be too "
                        "large, or X needs scaling)")
                loss_sum += part
            self.n_iter_ += 1
            self.loss_ = loss_sum / n_train
            self.t_ += n_train
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement_count(val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._trigger_stopping(msg):
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                              "reached and the optimization hasn't converged yet.",
                              ConvergenceWarning)
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _trigger_stopping(self, msg):
        """scikit-learn's rule: adam stops; sgd stops unless 'adaptive', which divides the step
        by 5 until it falls below 1e-6."""
        if self.solver == "sgd" and self.learning_rate == "adaptive":
            if self._lr <= 1e-6:
                if self.verbose:
                    print(msg + " Learning rate too small. Stopping.")
                return True
            self._lr /= 5.0
            if self.verbose:
                print(msg + " Setting learning rate to %f" % self._lr)
            return False
        if self.verbose:
            print(msg + " Stopping.")
        return True

    def _split_validation(self, src, y_raw):
        """scikit-learn's split (same random_state draws): training rows as indices into X (no
        copy of X), and the validation rows materialised."""
        # scikit-learn stratifies binary problems only (one output column)
        stratify = y_raw if (self._is_classifier() and self.n_outputs_ == 1) else None
        idx = np.arange(src.n)
        tr, va = train_test_split(idx, random_state=self._random_state,
                                  test_size=self.validation_fraction, stratify=stratify)
        if len(va) < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        va = np.sort(va)
        Xv = src.take(va)
        yv = y_raw[va]
        swv = None if src.sample_weight is None else src.sample_weight[va].astype(np.float64)
        return np.ascontiguousarray(tr, dtype=np.int64), (Xv, yv, swv)

    def _is_classifier(self):
        return False

    def _update_no_improvement_count(self, val):
        if val is not None:
            try:
                score = self._val_score(*val)
            except ValueError:  # the network's outputs overflow on the validation rows
                raise _Diverged(f"training diverged in epoch {self.n_iter_}: the network's "
                                "outputs overflow on the validation set (learning_rate_init "
                                "may be too large, or X needs scaling)") from None
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ---- L-BFGS ----------------------------------------------------------------------------------
    def _loss_grad(self, src, Y, n_threads, kernel):
        """(loss, [coef grads], [intercept grads]) over all rows, in float64, summed over row
        chunks in a fixed order; scikit-learn's objective."""
        sw = src.sample_weight
        S = float(src.n if sw is None else sw.astype(np.float64).sum())
        data, gW, gb = 0.0, None, None
        for X, Yc, swc, _ in src.epoch_parts(Y, None, sorted_rows=True,
                                             max_rows=LBFGS_CHUNK_ROWS):
            m = X.shape[0]
            Sc = float(m if swc is None else swc.astype(np.float64).sum())
            if Sc == 0:
                continue
            rc, part, _, _, (cw, cb) = _mlp.train_epoch(
                self.coefs_, self.intercepts_, X, Yc, swc, None, m, hidden=self.activation,
                output=self.out_activation_, optimizer="none", alpha=0.0,
                tuner=Tuner(n_threads, "batches"), kernel_id=kernel, return_grads=True)
            if rc != 0:
                raise _Diverged("L-BFGS diverged: the loss became NaN or infinite")
            data += part / m * Sc
            if gW is None:
                gW = [c.astype(np.float64) * Sc for c in cw]
                gb = [c.astype(np.float64) * Sc for c in cb]
            else:
                for a, c in zip(gW, cw):
                    a += c * Sc
                for a, c in zip(gb, cb):
                    a += c * Sc
        sq = sum(float(np.dot(c.ravel().astype(np.float64), c.ravel())) for c in self.coefs_)
        loss = data / S + 0.5 * self.alpha * sq / S
        gW = [(g + self.alpha * c) / S for g, c in zip(gW, self.coefs_)]
        gb = [g / S for g in gb]
        return loss, gW, gb

    def _fit_lbfgs(self, src, Y, units, n_threads, kernel):
        from scipy.optimize import minimize

        shapes = [c.shape for c in self.coefs_] + [b.shape for b in self.intercepts_]
        sizes = [int(np.prod(s)) for s in shapes]
        L = len(self.coefs_)

        def unpack(theta):
            out, s = [], 0
            for shp, k in zip(shapes, sizes):
                out.append(theta[s:s + k].reshape(shp))
                s += k
            for i in range(L):
                self.coefs_[i][...] = out[i]
                self.intercepts_[i][...] = out[L + i]

        def fun(theta):
            unpack(theta)
            loss, gW, gb = self._loss_grad(src, Y, n_threads, kernel)
            return loss, np.concatenate([g.ravel() for g in gW + gb])

        theta0 = np.concatenate([p.ravel().astype(np.float64) for p in self.coefs_ + self.intercepts_])
        with single_threaded_blas():   # (scipy's BLAS calls must not leave spinning workers)
            res = minimize(fun, theta0, method="L-BFGS-B", jac=True,
                           options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                    "gtol": self.tol})
        if res.status != 0:  # as scikit-learn: max_iter, max_fun or an abnormal line search
            warnings.warn(f"lbfgs failed to converge after {res.nit} iteration(s) "
                          f"(status={res.status}): {res.message}. Increase max_iter or max_fun, "
                          "or scale the data.", ConvergenceWarning)
        unpack(res.x)
        self.n_iter_ = min(int(res.nit), self.max_iter)
        self.loss_ = float(res.fun)

    # ---- prediction ------------------------------------------------------------------------------
    def _forward(self, X):
        """Output activations (n x n_outputs_) for X, parallel over row blocks."""
        check_is_fitted(self, "coefs_")
        n_threads = effective_n_threads(self.n_threads)
        dtype = self.coefs_[0].dtype
        parts = []
        for Xc in check_predict_X(self, X, dtype, n_threads):
            out = _mlp.forward(self.coefs_, self.intercepts_, Xc, self.activation,
                               self.out_activation_, n_threads=n_threads, kernel_id=_isa.kernel_set_id())
            if not _linear.all_finite(out, 1):
                raise ValueError("the network's output overflows to NaN or infinity for some rows "
                                 f"of X: they lie far outside the training data's scale, or "
                                 f"{dtype.name} is too narrow for them (use dtype=np.float64)")
            parts.append(out)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class _Diverged(Exception):
    pass


# what a first fit that diverged must not leave behind
_TRAINING_STATE = ("coefs_", "intercepts_", "_moments", "_adam_t", "_lr", "_best_coefs",
                   "_best_intercepts", "loss_", "loss_curve_", "best_loss_", "n_iter_", "t_",
                   "validation_scores_", "best_validation_score_", "_no_improvement_count",
                   "n_layers_", "n_outputs_", "out_activation_")


__all__ = ["BaseMLP"]
