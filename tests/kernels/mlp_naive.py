"""A plain numpy MLP (scikit-learn's formulas) used only as the tests' reference for _mlp."""
import numpy as np

ACT = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "logistic": lambda z: 1 / (1 + np.exp(-z)),
    "exp": np.exp,
}


def act_naive(z, name):
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return ACT[name](z)


def act_grad_naive(a, name):
    """Derivative of the activation written in terms of its output a."""
    return {"identity": np.ones_like(a), "relu": (a > 0).astype(a.dtype), "tanh": 1 - a * a,
            "logistic": a * (1 - a)}[name]


def loss_rows_naive(p, y, output, eps=None):
    """Per-row losses (unweighted), scikit-learn's definitions; float64. Probabilities are clipped
    to [eps, 1 - eps], eps that of p's dtype (float32 or float64) unless given."""
    if eps is None:
        eps = np.finfo(np.float32 if p.dtype == np.float32 else np.float64).eps
    p = p.astype(np.float64)
    y = y.astype(np.float64)
    if output in ("softmax", "logistic"):
        q = np.clip(p, eps, 1 - eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = np.where(y != 0, y * np.log(q), 0.0)
            if output == "softmax":
                return -t1.sum(axis=1)
            t2 = np.where(y != 1, (1 - y) * np.log(1 - q), 0.0)
        return -(t1 + t2).sum(axis=1)
    if output == "exp":
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(y != 0, y * np.log(y / p), 0.0)
        return (t - y + p).sum(axis=1)
    return ((p - y) ** 2).sum(axis=1) / (2 * y.shape[1])


def forward_naive(coefs, intercepts, X, hidden, output):
    acts = [X]
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        z = acts[-1] @ W + b
        acts.append(act_naive(z, output if l == len(coefs) - 1 else hidden))
    return acts


def loss_grad_naive(coefs, intercepts, X, Y, sw, hidden, output, alpha):
    """scikit-learn's _backprop in float64: (loss, coef_grads, intercept_grads). The loss clips
    probabilities with the eps of X's dtype, as scikit-learn does when it trains in float32."""
    eps = np.finfo(np.float32 if X.dtype == np.float32 else np.float64).eps
    coefs = [c.astype(np.float64) for c in coefs]
    intercepts = [b.astype(np.float64) for b in intercepts]
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    sw = np.ones(len(X)) if sw is None else sw.astype(np.float64)
    acts = forward_naive(coefs, intercepts, X, hidden, output)
    sw_sum = sw.sum()
    loss = (loss_rows_naive(acts[-1], Y, output, eps) * sw).sum() / sw_sum
    loss += 0.5 * alpha * sum((c * c).sum() for c in coefs) / sw_sum
    delta = (acts[-1] - Y) * sw[:, None]
    gW = [None] * len(coefs)
    gb = [None] * len(coefs)
    for l in range(len(coefs) - 1, -1, -1):
        gW[l] = (acts[l].T @ delta + alpha * coefs[l]) / sw_sum
        gb[l] = delta.sum(axis=0) / sw_sum
        if l > 0:
            delta = (delta @ coefs[l].T) * act_grad_naive(acts[l], hidden)
    return loss, gW, gb


class AdamNaive:
    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        lr_t = self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= lr_t * m / (np.sqrt(v) + self.eps)


class SGDNaive:
    def __init__(self, params, lr, momentum=0.9, nesterov=True):
        self.lr, self.mu, self.nesterov = lr, momentum, nesterov
        self.vel = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        for p, g, v in zip(params, grads, self.vel):
            v *= self.mu
            v -= self.lr * g
            p += self.mu * v - self.lr * g if self.nesterov else v


def epoch_naive(coefs, intercepts, X, Y, sw, order, batch, hidden, output, alpha, opt):
    """One epoch of scikit-learn's _fit_stochastic loop in float64; returns the loss sum."""
    n = len(X)
    order = np.arange(n) if order is None else order
    total = 0.0
    for s in range(0, n, batch):
        rows = order[s:s + batch]
        loss, gW, gb = loss_grad_naive(coefs, intercepts, X[rows], Y[rows],
                                       None if sw is None else sw[rows], hidden, output, alpha)
        opt.step(coefs + intercepts, gW + gb)
        total += loss * len(rows)
    return total
