"""MLPClassifier and MLPRegressor: drop-ins for scikit-learn's, trained on parml's kernels."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted

from parml._core.persist import check_class_count

from ._base import BaseMLP

_DOC_COMMON = """
    Parameters are scikit-learn's (``hidden_layer_sizes``, ``activation``, ``solver`` "adam" /
    "sgd" / "lbfgs", ``alpha``, ``batch_size``, ``learning_rate``, ``learning_rate_init``,
    ``power_t``, ``max_iter``, ``shuffle``, ``random_state``, ``tol``, ``verbose``,
    ``warm_start``, ``momentum``, ``nesterovs_momentum``, ``early_stopping``,
    ``validation_fraction``, ``beta_1``, ``beta_2``, ``epsilon``, ``n_iter_no_change``,
    ``max_fun``) with the same defaults and meaning, plus:

    n_threads : int or None
        Threads for the kernels (None: every CPU this process may use). A batch smaller than
        about 8 MFLOP runs on one thread; larger ones time n threads against one as they train
        and keep the faster, so a busy machine never makes training slower. Results are
        bitwise identical for every n_threads.
    dtype : {np.float32, np.float64}, default np.float32
        Precision of the weights and of the arithmetic (float32 is twice as fast; X is
        converted once, and a memory-mapped X chunk by chunk).

    Each mini-batch is one call into native code: forward pass and backpropagation on parml's
    GEMM, parallel over rows, then the weight gradients and the optimiser's update fused and
    parallel over blocks of weights. ``fit`` accepts an ``np.memmap`` X and streams it in chunks
    (with ``shuffle=True`` the chunk order and the rows within each chunk are shuffled).
    The initial weights, shuffles and validation split use ``random_state`` exactly as
    scikit-learn does.
"""


def _indicator(lb, y, dtype):
    """lb.transform(y) as a C-contiguous array of dtype. Binary and multiclass labels in a 1-D
    array are compared with lb.classes_ directly: label_binarize's sparse detour took 5x as long
    (a few percent of a one-epoch fit)."""
    n_classes = len(lb.classes_)
    if (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "biufU"
            and lb.neg_label == 0 and lb.pos_label == 1 and not lb.sparse_output
            and ((lb.y_type_ == "binary" and n_classes == 2)
                 or (lb.y_type_ == "multiclass" and n_classes > 2))):
        if n_classes == 2:
            return np.ascontiguousarray((y == lb.classes_[1])[:, None], dtype=dtype)
        return np.ascontiguousarray(y[:, None] == lb.classes_[None, :], dtype=dtype)
    return np.ascontiguousarray(lb.transform(y), dtype=dtype)


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = ("Multi-layer perceptron classifier (log loss; softmax output for several classes,"
               " logistic for two or for multilabel indicator targets).\n" + _DOC_COMMON)

    def _is_classifier(self):
        return True

    def _save_state(self, put):
        lb = self._label_binarizer
        put("_label_binarizer.classes_", lb.classes_)
        return {"_label_binarizer": {"y_type_": lb.y_type_,
                                     "sparse_input_": bool(lb.sparse_input_),
                                     "neg_label": int(lb.neg_label),
                                     "pos_label": int(lb.pos_label)}}

    def _restore_state(self, extra, take):
        e = extra.pop("_label_binarizer")
        lb = LabelBinarizer(neg_label=e["neg_label"], pos_label=e["pos_label"])
        lb.classes_ = np.asarray(take("_label_binarizer.classes_"))
        lb.y_type_ = e["y_type_"]
        lb.sparse_input_ = e["sparse_input_"]
        self._label_binarizer = lb

    def _check_restored(self):
        super()._check_restored()
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        check_class_count(len(self.classes_), self.n_outputs_, one_for_two=not multilabel)

    def _targets(self, y, incremental, first_pass):
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes "
                                     f"as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        if len(self.classes_) < 2 and self._label_binarizer.y_type_ != "multilabel-indicator":
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes in the data, but "
                             f"the data contain only one class: {self.classes_[0]!r}")
        out = {"multiclass": "softmax"}.get(self._label_binarizer.y_type_, "logistic")
        return _indicator(self._label_binarizer, y, np.dtype(self.dtype)), out

    def _val_score(self, X, y, sample_weight):
        return accuracy_score(y, self._predict_converted(X), sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Fit the network to X (n_samples, n_features), y (n_samples,) labels or a (n_samples,
        n_labels) indicator matrix; sample_weight (n_samples,) optional. Returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y). ``classes`` (every label of the whole data) is required on the
        first call. Returns self."""
        self._check_params()  # before the first call records classes
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _predict_converted(self, X):
        y = self._forward(X)
        kind = self._label_binarizer.y_type_
        # LabelBinarizer.inverse_transform's rules, without its ~15 us of checks per call
        if kind == "binary" and self.n_outputs_ == 1:
            return self.classes_[(y.ravel() > 0.5).astype(np.intp)]
        if kind == "multiclass":
            return self.classes_.take(y.argmax(axis=1))
        if self.n_outputs_ == 1:
            y = y.ravel()
        return self._label_binarizer.inverse_transform(y)

    def predict(self, X):
        """Predicted labels, shape (n_samples,) (or (n_samples, n_labels) for multilabel)."""
        check_is_fitted(self, "coefs_")
        return self._predict_converted(X)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the model's dtype."""
        check_is_fitted(self, "coefs_")
        p = self._forward(X)
        if self.out_activation_ == "logistic":
            # in float32 the logistic rounds to exactly 0 or 1 past |z| ~ 17; keep probabilities
            # strictly inside (0, 1), as the loss does, so log-probabilities stay finite
            eps = np.finfo(p.dtype).eps
            np.clip(p, eps, 1 - eps, out=p)
        if self.n_outputs_ == 1:
            p = p.ravel()
            return np.vstack([1 - p, p]).T
        return p

    def predict_log_proba(self, X):
        """Logarithm of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = ("Multi-layer perceptron regressor (squared error with an identity output, or "
               "Poisson deviance with an exponential output).\n\n    loss : {'squared_error', "
               "'poisson'}, default 'squared_error'\n" + _DOC_COMMON)

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 n_threads=None, dtype=np.float32):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, n_threads=n_threads, dtype=dtype)
        self.loss = loss

    def _targets(self, y, incremental, first_pass):
        y = np.asarray(y, dtype=np.float64)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("loss='poisson' requires non-negative y values.")
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return (np.ascontiguousarray(Y, dtype=np.dtype(self.dtype)),
                "exp" if self.loss == "poisson" else "identity")

    def _val_score(self, X, y, sample_weight):
        return r2_score(y, self._predict_converted(X), sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Fit the network to X (n_samples, n_features), y (n_samples,) or (n_samples, n_outputs);
        sample_weight (n_samples,) optional. Returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y). Returns self."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _predict_converted(self, X):
        y = self._forward(X)
        return y.ravel() if self.n_outputs_ == 1 else y

    def predict(self, X):
        """Predictions, shape (n_samples,) or (n_samples, n_outputs), in the model's dtype."""
        check_is_fitted(self, "coefs_")
        return self._predict_converted(X)
