"""The losses of parml's HistGradientBoosting estimators: per-row math only.

Each loss is a handful of small functions (baseline, gradients, loss value, inverse link and,
for losses without a usable hessian, the optimal leaf value), so the boosting loop's per-row work
can move to native code one function at a time. The boosting loop itself lives in _gb.py.

Conventions: Y is float64 (n, K); K = 1 for regression and binary classification (Y holds y, or
0/1), one one-hot column per class for multiclass. raw is float64 (n, K), the sum of the
baseline and the trees. gradients() returns one (g, h) pair per output; h None means a constant
hessian of 1 (the grower then counts rows instead of summing hessians)."""

from __future__ import annotations

import numpy as np


def expit(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable logistic


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def weighted_quantile(v, w, q):
    """The q-quantile of v under weights w (None: unit weights), by the 'averaged inverted CDF':
    the mean of the first sorted value whose cumulative weight reaches q * W and the first whose
    cumulative weight exceeds it. Why this definition:
    - both values minimise the weighted pinball loss, so their mean does too (the loss is
      convex): a leaf value is always an optimal constant for its rows. numpy's default linear
      interpolation, which scikit-learn uses for unweighted quantiles, is not (q = 0.8 of two
      rows interpolates between them; only the larger one is optimal);
    - at q = 0.5 with unit weights it is np.median, which is what scikit-learn uses for
      absolute_error, so those fits match scikit-learn's;
    - an integer weight k acts exactly like k copies of the row (scikit-learn's weighted
      'inverted_cdf' differs from its unweighted median, so there weights of 1 change a fit).
    All weights zero (any value is optimal then): the unweighted quantile."""
    v = np.asarray(v, dtype=np.float64)
    n = len(v)
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
        order = np.argsort(v, kind="stable")
        cw = np.cumsum(w[order])
        if cw[-1] > 0:
            t = q * cw[-1]
            lo = min(int(np.searchsorted(cw, t, side="left")), n - 1)   # first cw >= t
            hi = min(int(np.searchsorted(cw, t, side="right")), n - 1)  # first cw > t
            return 0.5 * (v[order[lo]] + v[order[hi]])
    # unit weights: cw = 1..n, so the same two order statistics, found by partition in O(n)
    t = q * float(n)
    lo = min(max(int(np.ceil(t)) - 1, 0), n - 1)
    hi = min(int(np.floor(t)), n - 1)
    part = np.partition(v, [lo, hi]) if lo != hi else np.partition(v, lo)
    return 0.5 * (part[lo] + part[hi])


def _log_mean(Y, sw):
    """log of the weighted mean of y (the log-link baseline), kept finite when the weights put
    no mass on positive targets."""
    return np.log(np.maximum([np.average(Y[:, 0], weights=sw)], 10 * np.finfo(np.float64).eps))


class SquaredError:
    """Half squared error, identity link. The Newton leaf value -G/(H + l2) is the mean."""
    differentiable = True

    def native(self, K):
        """The name of the native gradient kernel for this loss (parml._kernels._boost)."""
        return "squared_error"

    def check_y(self, y):
        pass

    def baseline(self, Y, sw):
        return np.array([np.average(Y[:, 0], weights=sw)])

    def gradients(self, raw, Y):
        return [(raw[:, 0] - Y[:, 0], None)]

    def value(self, raw, Y, sw):
        return 0.5 * float(np.average((raw[:, 0] - Y[:, 0]) ** 2, weights=sw))

    def inverse_link(self, raw):
        return raw


class Quantile:
    """Pinball loss for the q-quantile, identity link. Its hessian is zero almost everywhere, so
    trees are grown on the gradient with a constant hessian (plain gradient descent) and each
    leaf's value is then re-set to the q-quantile of its rows' residuals (see leaf_value)."""
    differentiable = False

    def __init__(self, q):
        self.q = float(q)

    def check_y(self, y):
        pass

    def baseline(self, Y, sw):
        return np.array([weighted_quantile(Y[:, 0], sw, self.q)])

    def gradients(self, raw, Y):
        # d/draw of the pinball loss: -q below the target, 1 - q above; 0 at a tie (a row
        # already at its target pulls neither way; 0 lies in the subgradient [-q, 1 - q])
        d = raw[:, 0] - Y[:, 0]
        return [(np.where(d > 0, 1.0 - self.q, np.where(d < 0, -self.q, 0.0)), None)]

    def value(self, raw, Y, sw):
        r = Y[:, 0] - raw[:, 0]
        return float(np.average(np.where(r >= 0, self.q * r, (self.q - 1.0) * r), weights=sw))

    def leaf_value(self, residual, sw):
        """The constant minimising this loss over a leaf's residuals y - raw."""
        return weighted_quantile(residual, sw, self.q)

    def inverse_link(self, raw):
        return raw


class AbsoluteError(Quantile):
    """Absolute error: the pinball loss at q = 0.5, times two (same trees, same leaf values).
    Gradient sign(raw - y), constant hessian, leaf value the weighted median of residuals."""

    def __init__(self):
        super().__init__(0.5)

    def gradients(self, raw, Y):
        return [(np.sign(raw[:, 0] - Y[:, 0]), None)]

    def value(self, raw, Y, sw):
        return float(np.average(np.abs(Y[:, 0] - raw[:, 0]), weights=sw))


class Poisson:
    """Half Poisson deviance with log link (up to a term that depends on y only, as in
    scikit-learn's train_score_): exp(raw) - y * raw."""
    differentiable = True

    def check_y(self, y):
        if not (np.all(y >= 0) and np.sum(y) > 0):
            raise ValueError("loss='poisson' requires non-negative y and sum(y) > 0.")

    def baseline(self, Y, sw):
        return _log_mean(Y, sw)

    def gradients(self, raw, Y):
        mu = np.exp(raw[:, 0])
        return [(mu - Y[:, 0], mu)]

    def value(self, raw, Y, sw):
        return float(np.average(np.exp(raw[:, 0]) - Y[:, 0] * raw[:, 0], weights=sw))

    def inverse_link(self, raw):
        return np.exp(raw)


class Gamma:
    """Half gamma deviance with log link (up to a term in y only): raw + y * exp(-raw)."""
    differentiable = True

    def check_y(self, y):
        if not np.all(y > 0):
            raise ValueError("loss='gamma' requires strictly positive y.")

    def baseline(self, Y, sw):
        return _log_mean(Y, sw)

    def gradients(self, raw, Y):
        t = Y[:, 0] * np.exp(-raw[:, 0])
        return [(1.0 - t, t)]

    def value(self, raw, Y, sw):
        return float(np.average(raw[:, 0] + Y[:, 0] * np.exp(-raw[:, 0]), weights=sw))

    def inverse_link(self, raw):
        return np.exp(raw)


class LogLoss:
    """Binary (one column, logit link) or multinomial (one column per class, softmax) log loss."""
    differentiable = True

    def native(self, K):
        return "logistic" if K == 1 else "softmax"

    def check_y(self, y):
        pass

    def baseline(self, Y, sw):
        eps = np.finfo(np.float64).eps
        p = np.clip(np.average(Y, axis=0, weights=sw), eps, 1 - eps)
        if Y.shape[1] == 1:
            return np.log(p / (1 - p))
        return np.log(p)

    def gradients(self, raw, Y):
        if Y.shape[1] == 1:
            p = expit(raw[:, 0])
            return [(p - Y[:, 0], p * (1 - p))]
        P = softmax(raw)
        return [(P[:, k] - Y[:, k], P[:, k] * (1 - P[:, k])) for k in range(Y.shape[1])]

    def value(self, raw, Y, sw):
        eps = 1e-15
        if Y.shape[1] == 1:
            p = np.clip(expit(raw[:, 0]), eps, 1 - eps)
            ll = -(Y[:, 0] * np.log(p) + (1 - Y[:, 0]) * np.log(1 - p))
        else:
            ll = -np.log(np.clip((softmax(raw) * Y).sum(axis=1), eps, None))
        return float(np.average(ll, weights=sw))

    def inverse_link(self, raw):
        """Class probabilities (n, n_classes)."""
        if raw.shape[1] == 1:
            p = expit(raw[:, 0])
            return np.column_stack([1 - p, p])
        return softmax(raw)


REGRESSION_LOSSES = ("squared_error", "absolute_error", "gamma", "poisson", "quantile")


def get_loss(name, quantile=None):
    """The loss object for a ``loss`` parameter value."""
    if name == "squared_error":
        return SquaredError()
    if name == "absolute_error":
        return AbsoluteError()
    if name == "poisson":
        return Poisson()
    if name == "gamma":
        return Gamma()
    if name == "quantile":
        if quantile is None or not 0 < quantile < 1:
            raise ValueError(f"loss='quantile' needs a quantile strictly between 0 and 1, got "
                             f"quantile={quantile!r}")
        return Quantile(quantile)
    if name == "log_loss":
        return LogLoss()
    raise ValueError(f"unknown loss {name!r}")


def refit_leaf_values(loss, values, leaves, y, raw, sw, learning_rate):
    """For a loss without a usable hessian (absolute error, quantile): set each leaf's value to
    learning_rate times the loss's optimal constant over its rows' residuals y - raw, in place.
    The tree's Newton value -G/(H + l2) with a made-up constant hessian would step by the mean
    gradient sign, not toward the median; l2_regularization therefore does not shrink these
    values (it still shapes the splits), as in scikit-learn. values: the tree's node values;
    leaves: leaf node -> int32 training rows (from grow_tree); y, raw: this output's columns."""
    for leaf, rows in leaves.items():
        values[leaf] = learning_rate * loss.leaf_value(
            y[rows] - raw[rows], None if sw is None else sw[rows])
