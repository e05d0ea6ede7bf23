"""LinearSVC: the primal SVM problem solved by L-BFGS on the fused loss + gradient kernel."""

from __future__ import annotations

import numpy as np

from parml._core.linear import LOSS, check_regularised_fit_params, lbfgs, resolve_strategy
from parml._core.rows import check_sample_weight, check_X_fit

from ._base import LinearClassifierBase, check_n_threads, encode_classes, ovr_class_weight


class LinearSVC(LinearClassifierBase):
    """Linear support vector classifier, drop-in for scikit-learn's.

    Minimises ||w||^2 / 2 + C sum_i s_i loss(y_i, x_i . w + b) in the primal with L-BFGS, one
    fused pass over X per evaluation; more than two classes are one-vs-rest, all classes in the
    same pass. "squared_hinge" (default) is smooth and solved to `tol`; "hinge" is not, and
    L-BFGS stops near its optimum. Unlike liblinear, the intercept is not regularised, so
    `intercept_scaling` is accepted for compatibility and ignored.
    """

    def __init__(self, penalty="l2", loss="squared_hinge", *, dual="auto", tol=1e-4, C=1.0,
                 multi_class="ovr", fit_intercept=True, intercept_scaling=1, class_weight=None,
                 verbose=0, random_state=None, max_iter=1000, strategy="auto", n_threads=None):
        self.penalty = penalty
        self.loss = loss
        self.dual = dual
        self.tol = tol
        self.C = C
        self.multi_class = multi_class
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.verbose = verbose
        self.random_state = random_state
        self.max_iter = max_iter
        self.strategy = strategy
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        check_regularised_fit_params(self)
        if self.penalty != "l2":
            raise ValueError(f"penalty must be 'l2', got {self.penalty!r}")
        if self.loss not in ("hinge", "squared_hinge"):
            raise ValueError(f"loss must be 'hinge' or 'squared_hinge', got {self.loss!r}")
        if self.multi_class != "ovr":
            raise ValueError(f"multi_class must be 'ovr', got {self.multi_class!r}")
        if self.dual not in ("auto", True, False):
            raise ValueError(f"dual must be 'auto', True or False, got {self.dual!r}")
        if self.loss == "hinge" and self.dual is False:
            # (scikit-learn's liblinear has no primal hinge solver and raises too; ours would
            # run, but a drop-in replacement should refuse what the original refuses)
            raise ValueError("Unsupported set of arguments: the combination of penalty='l2' and "
                             "loss='hinge' is not supported when dual=False (use dual=True or "
                             "'auto').")
        nt = check_n_threads(self.n_threads)
        rows, y = check_X_fit(self, X, y, nt)
        classes, yi = encode_classes(self, y)
        sw = check_sample_weight(sample_weight, rows.n)
        K = 1 if len(classes) == 2 else len(classes)
        yk = np.where(yi == 1, 1.0, -1.0) if K == 1 else yi.astype(np.float64)
        sw, cw = ovr_class_weight(self.class_weight, classes, yi, sw, K)
        W, b, nit = lbfgs(rows, yk, sw, loss=LOSS[self.loss], K=K, ovr=K > 1, eps=0.0,
                          C=float(self.C), fit_intercept=self.fit_intercept,
                          strategy=resolve_strategy(self.strategy, K, rows.d), n_threads=nt,
                          tol=self.tol, max_iter=self.max_iter, x0=np.zeros(K * rows.d + K),
                          verbose=self.verbose, cw=cw)
        self.classes_ = classes
        self.coef_ = W
        self.intercept_ = b if self.fit_intercept else 0.0   # (scikit-learn's value)
        self.n_iter_ = nit
        return self
