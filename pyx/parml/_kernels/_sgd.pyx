"""SGD epochs of the linear models on parml's task pool: classic per-sample SGD (pipelined on 2
threads for large shuffled data, _sgd_pipeline.pyx), parallel mini-batches whose gradient is the
fused kernel of linear_grad.h, and Hogwild. The settings come as one SGDParams, checked once;
the arrays an epoch reads and updates stay explicit arguments.

X is row-major (C-contiguous rows), float64 or float32, read as given; weights and every
accumulation are float64. Callers (parml.linear_model) validate dtypes, finiteness and labels;
sgd_epoch checks the arrays' shapes against each other.

Determinism: every mode except Hogwild gives bit-identical results for any n_threads.
"""

import math
import numbers

import numpy as np

from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset
from libc.math cimport INFINITY
from cython cimport floating

from parml._kernels._kernel_sets cimport active_set
from parml._kernels._linear_api cimport (
    LINE_DOUBLES, LOGIT_BLOCK, LinCtx, MAX_DLOSS, MAX_TASKS, PARML_L_MULTINOMIAL, PARML_N_LOSSES,
    PREFETCH_ROWS, S_HOGWILD, S_SAMPLES, S_WEIGHTS, _alloc, _axpby, _axpy, _clamp, _free, _lines,
    _loss_grad, _plan, _prefetch, _row, _row_of, lin_fill, parallel_for, parml_prefetch_init,
    set_cw)
from parml._kernels._sgd_pipeline cimport (
    PIPE_ALL_FROM_RING, PIPE_ALL_FROM_X, PIPE_FILL_THEN_STEP, PIPE_MAX_ROW_BYTES, PIPE_MIN_BYTES,
    PIPE_N_MODES, PIPE_RACE, PIPE_STEP_AFTER_JOB, sgd_pipelined)

cdef extern from "parml/sgd_step.h" nogil:
    enum:
        PARML_SCH_CONSTANT
        PARML_SCH_OPTIMAL
        PARML_SCH_INVSCALING
    ctypedef struct parml_sgd1:
        const char *X
        ptrdiff_t ldx, d
        const Py_ssize_t *idx       # (ptrdiff_t in C: the same type here)
        ptrdiff_t row0
        const double *y
        const double *sw
        double *V
        double b, scale, t
        int loss, need_loss, schedule, fit_intercept, weight_loss
        double eps, eta0, power_t, alpha, opt_init, l2frac, max_dloss
        ptrdiff_t prefetch_rows
    ctypedef double (*parml_sgd1_fn)(parml_sgd1 *s, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t pf_hi,
                                     double acc)
    parml_sgd1_fn parml_sgd1_for(int kernel_set, int f32)
    double parml_sgd_eta(int schedule, double eta0, double power_t, double alpha,
                         double opt_init, double t)
    double parml_sgd_decay(double scale, double *V, ptrdiff_t n, double l2frac, double eta,
                           double alpha)


cdef enum:
    # The mini-batch update (V -= step * G, then L1 and averaging) runs in tasks over blocks of
    # weights: UPDATE_TASK_WEIGHTS weights per task (32 KiB of V), at most MAX_TASKS, each task
    # a whole number of cache lines of V. Below UPDATE_PARALLEL_MIN_WEIGHTS weights it runs on
    # one thread: by linear_grad.h's rule (a pool round trip costs what one core needs for ~1e5
    # multiply-adds streamed from memory) a smaller update gains nothing from more threads.
    UPDATE_TASK_WEIGHTS = 4096
    UPDATE_PARALLEL_MIN_WEIGHTS = 65536
    # Hogwild cuts the epoch into n_threads shards of at least this many rows; with fewer rows
    # it runs the serial per-sample epoch (exact)
    HOGWILD_MIN_SHARD_ROWS = 2

# The same ids for the Python drivers ("adaptive" is the constant rate, divided by the driver).
SCHEDULES = {"constant": PARML_SCH_CONSTANT, "optimal": PARML_SCH_OPTIMAL,
             "invscaling": PARML_SCH_INVSCALING, "adaptive": PARML_SCH_CONSTANT}

parml_prefetch_init()


def _real(name, v, lo=-math.inf, hi=math.inf):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"SGDParams: {name} must be a real number, got {type(v).__name__}")
    x = float(v)
    if not (math.isfinite(x) and lo <= x <= hi):
        rng = "" if lo == -math.inf else (f" >= {lo:g}" if hi == math.inf else
                                          f" in [{lo:g}, {hi:g}]")
        raise ValueError(f"SGDParams: {name} must be a finite number{rng}, got {v!r}")
    return x


def _choice(name, v, allowed):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"SGDParams: {name} must be an integer id, got {type(v).__name__}")
    if int(v) not in allowed:
        raise ValueError(f"SGDParams: {name} must be one of {sorted(allowed)}, got {v!r}")
    return int(v)


def _flag(name, v):
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, numbers.Integral) and v in (0, 1)):
        return bool(v)
    raise TypeError(f"SGDParams: {name} must be a bool, got {v!r}")


cdef class SGDParams:
    """The settings of SGD epochs, checked once here; sgd_epoch copies them into its C context
    at each call (once per call, never per step). Read-only: make a new one to change them.

    Parameters (keyword-only)
    -------------------------
    loss : int            loss id (parml._kernels._linear.LOSS_IDS, include/parml/losses.h)
    ovr : bool            the K outputs are one-vs-rest problems (y holds class indices)
    epsilon : float >= 0  the Huber and epsilon-insensitive losses' epsilon
    schedule : int        learning-rate schedule id (SCHEDULES)
    eta0 : float >= 0     the constant or initial learning rate
    power_t : float       invscaling: eta = eta0 / t^power_t
    alpha : float >= 0    the penalty's strength (and the optimal schedule's)
    opt_init : float      optimal: eta = 1 / (alpha (opt_init + t - 1))
    l1frac, l2frac : float in [0, 1]   the L1 and L2 shares of alpha
    avg_start : float >= 0   averaged weights (A, Ab of sgd_epoch) are updated from step
                          avg_start on
    fit_intercept : bool
    batch : int >= 1      rows per step: 1 is per-sample SGD, more are mini-batches
    strategy : int        STRATEGIES id (parml._kernels._linear): a mini-batch gradient by
                          samples or by weights, or Hogwild
    sgd_conventions : bool   scikit-learn SGD's: d loss / d z clipped to +-1e12 and the epoch's
                          loss unweighted (off: LogisticRegression(solver='sgd')'s weighted
                          objective)
    """
    cdef readonly int loss, schedule, strategy
    cdef readonly bint ovr, fit_intercept, sgd_conventions
    cdef readonly double epsilon, eta0, power_t, alpha, opt_init, l1frac, l2frac, avg_start
    cdef readonly Py_ssize_t batch

    def __init__(self, *, loss, ovr=False, epsilon=0.0, schedule=PARML_SCH_CONSTANT, eta0=0.01,
                 power_t=0.5, alpha=0.0, opt_init=1.0, l1frac=0.0, l2frac=0.0, avg_start=0.0,
                 fit_intercept=True, batch=1, strategy=S_SAMPLES, sgd_conventions=True):
        self.loss = _choice("loss", loss, range(PARML_N_LOSSES))
        self.ovr = _flag("ovr", ovr)
        self.epsilon = _real("epsilon", epsilon, 0.0)
        self.schedule = _choice("schedule", schedule, set(SCHEDULES.values()))
        self.eta0 = _real("eta0", eta0, 0.0)
        self.power_t = _real("power_t", power_t)
        self.alpha = _real("alpha", alpha, 0.0)
        self.opt_init = _real("opt_init", opt_init)
        self.l1frac = _real("l1frac", l1frac, 0.0, 1.0)
        self.l2frac = _real("l2frac", l2frac, 0.0, 1.0)
        self.avg_start = _real("avg_start", avg_start, 0.0)
        self.fit_intercept = _flag("fit_intercept", fit_intercept)
        if isinstance(batch, bool) or not isinstance(batch, numbers.Integral):
            raise TypeError(f"SGDParams: batch must be an integer, got {type(batch).__name__}")
        if batch < 1:
            raise ValueError(f"SGDParams: batch must be >= 1, got {batch!r}")
        self.batch = batch
        self.strategy = _choice("strategy", strategy, {S_SAMPLES, S_WEIGHTS, S_HOGWILD})
        self.sgd_conventions = _flag("sgd_conventions", sgd_conventions)

    def _asdict(self):
        return {k: getattr(self, k) for k in _PARAM_NAMES}

    def __repr__(self):
        return "SGDParams(" + ", ".join(f"{k}={v!r}" for k, v in self._asdict().items()) + ")"

    def __reduce__(self):
        return _params_from_dict, (self._asdict(),)


_PARAM_NAMES = ("loss", "ovr", "epsilon", "schedule", "eta0", "power_t", "alpha", "opt_init",
                "l1frac", "l2frac", "avg_start", "fit_intercept", "batch", "strategy",
                "sgd_conventions")


def _params_from_dict(kw):
    return SGDParams(**kw)


# --------------------------------------------------------------------------------------------
# The epoch's context and its steps

ctypedef struct SGDCtx:
    LinCtx lc                  # W = V (K x d, true weights = scale * V), b
    double *V                  # IN/OUT
    double *b                  # IN/OUT
    double scale, t, u, avg_count   # IN/OUT state
    double *Q                  # IN/OUT cumulative L1 penalty applied per weight (K x d) or NULL
    double *A                  # IN/OUT averaged weights (K x d) or NULL
    double *Ab                 # IN/OUT averaged intercepts (K)
    int schedule
    double eta0, power_t, alpha, opt_init, l1frac, l2frac, avg_start
    bint fit_intercept
    bint one                   # one output, no L1, no averaging: per-sample steps in C ...
    parml_sgd1_fn sgd1         # ... the kernel set's loop for X's dtype (sgd_step.h)
    # mini-batch update step
    double eta, step
    Py_ssize_t nb
    Py_ssize_t upt, utasks     # weights per update task, update tasks
    # Hogwild
    const Py_ssize_t *order
    Py_ssize_t n, shard_rows, nshards
    double *shard_loss


cdef inline double _eta(const SGDCtx *s, double t) noexcept nogil:
    return parml_sgd_eta(s.schedule, s.eta0, s.power_t, s.alpha, s.opt_init, t)


cdef inline void _l1_avg_range(SGDCtx *s, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Cumulative L1 penalty (Tsuruoka et al. 2009) and weight averaging on weights [lo, hi)."""
    cdef Py_ssize_t j
    cdef double w, w0, mu
    if s.Q != NULL:
        for j in range(lo, hi):
            w0 = s.scale * s.V[j]
            w = w0
            if w > 0.0:
                w = w - (s.u + s.Q[j])
                if w < 0.0:
                    w = 0.0
            elif w < 0.0:
                w = w + (s.u - s.Q[j])
                if w > 0.0:
                    w = 0.0
            s.Q[j] += w - w0
            s.V[j] = w / s.scale
    if s.A != NULL and s.t >= s.avg_start:
        mu = 1.0 / (s.avg_count + 1.0)
        for j in range(lo, hi):
            s.A[j] += mu * (s.scale * s.V[j] - s.A[j])


cdef inline void _after_step(SGDCtx *s, double eta) noexcept nogil:
    """Bookkeeping shared by the per-sample and mini-batch steps, after V and b moved."""
    cdef Py_ssize_t k
    if s.Q != NULL:
        s.u += s.l1frac * eta * s.alpha
    if s.Q != NULL or (s.A != NULL and s.t >= s.avg_start):
        _l1_avg_range(s, 0, s.lc.K * s.lc.d)
    if s.A != NULL and s.t >= s.avg_start:
        for k in range(s.lc.K):
            s.Ab[k] += (s.b[k] - s.Ab[k]) / (s.avg_count + 1.0)
        s.avg_count += 1.0
    s.t += 1.0


cdef inline void _decay(SGDCtx *s, double eta) noexcept nogil:
    s.scale = parml_sgd_decay(s.scale, s.V, s.lc.K * s.lc.d, s.l2frac, eta, s.alpha)
    s.lc.wscale = s.scale


cdef double _sgd_samples1(SGDCtx *s, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t pf_hi,
                          double acc) noexcept nogil:
    """_sgd_samples for one output without L1 or averaging: the C step loop (sgd_step.h)."""
    cdef LinCtx *c = &s.lc
    cdef parml_sgd1 q
    q.X, q.ldx, q.d, q.idx, q.row0 = c.X, c.ldx, c.d, c.idx, c.row0
    q.y, q.sw, q.V, q.b, q.scale, q.t = c.y, c.sw, s.V, s.b[0], s.scale, s.t
    q.loss, q.need_loss, q.schedule, q.fit_intercept = c.loss, c.need_loss, s.schedule, \
        s.fit_intercept
    q.eps, q.eta0, q.power_t, q.alpha, q.opt_init, q.l2frac = c.eps, s.eta0, s.power_t, \
        s.alpha, s.opt_init, s.l2frac
    q.prefetch_rows = PREFETCH_ROWS
    q.max_dloss = MAX_DLOSS if c.sgd else INFINITY
    q.weight_loss = not c.sgd
    acc = s.sgd1(&q, lo, hi, pf_hi, acc)
    s.b[0], s.scale, s.t = q.b, q.scale, q.t
    c.wscale = q.scale
    return acc


cdef double _sgd_samples(SGDCtx *s, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t pf_hi,
                         double acc) noexcept nogil:
    """Classic SGD, one update per row, rows [lo, hi) of the order; lazy L2 scale (O(1) decay).
    Rows of the order up to pf_hi are prefetched (past hi: the next rows the caller steps).
    Returns acc + the rows' losses, added one by one (a pipelined epoch passes its running sum
    through, so the epoch's loss, which the stopping rule reads, is the 1-thread sum)."""
    cdef LinCtx *c = &s.lc
    cdef Py_ssize_t i, k, row, K = c.K, d = c.d
    cdef double sumloss = acc, eta
    cdef double *z = c.scratch
    cdef const char *xr
    if s.one:
        return _sgd_samples1(s, lo, hi, pf_hi, acc)
    for i in range(lo, hi):
        row = _row_of(c, i)
        xr = c.X + row * c.ldx
        if c.idx != NULL and i + PREFETCH_ROWS < pf_hi:
            _prefetch(c, c.idx[i + PREFETCH_ROWS])
        eta = _eta(s, s.t)
        sumloss += _row(c, row, xr, z)
        _decay(s, eta)
        for k in range(K):
            if z[k] != 0.0:
                _axpy(c, (-eta / s.scale) * z[k], xr, s.V + k * d, d)
                if s.fit_intercept:
                    s.b[k] -= eta * z[k]
        _after_step(s, eta)
    return sumloss


cdef double _step_rows(void *s, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t pf_hi,
                       double acc) noexcept nogil:
    """_sgd_samples as the pipelined epoch's step (_sgd_pipeline.pxd)."""
    return _sgd_samples(<SGDCtx *>s, lo, hi, pf_hi, acc)


cdef void _t_update(void *vs, ptrdiff_t t, int worker) noexcept nogil:
    """Mini-batch update of one block of weights: V -= step * G, then L1 and averaging."""
    cdef SGDCtx *s = <SGDCtx *>vs
    cdef Py_ssize_t lo = t * s.upt, hi = min(lo + s.upt, s.lc.K * s.lc.d), j
    cdef const double *G = s.lc.out
    for j in range(lo, hi):
        s.V[j] -= s.step * G[j]
    _l1_avg_range(s, lo, hi)


cdef int _sgd_minibatches(SGDCtx *s, Py_ssize_t n, Py_ssize_t batch, int strategy, int n_threads,
                          const Py_ssize_t *order, double *sumloss) noexcept nogil:
    cdef LinCtx *c = &s.lc
    cdef Py_ssize_t p, k, KD = c.K * c.d
    cdef double eta
    cdef int rc = 0, nt_upd
    s.utasks = _clamp(KD // UPDATE_TASK_WEIGHTS, 1, MAX_TASKS)
    # whole cache lines per task, at least one even for K*d == 0
    s.upt = max(LINE_DOUBLES, (((KD + s.utasks - 1) // s.utasks) + LINE_DOUBLES - 1)
                & ~(LINE_DOUBLES - 1))
    s.utasks = (KD + s.upt - 1) // s.upt
    nt_upd = n_threads if KD >= UPDATE_PARALLEL_MIN_WEIGHTS else 1
    sumloss[0] = 0.0
    p = 0
    while p < n:
        s.nb = min(batch, n - p)
        if order != NULL:
            c.idx = order + p
            c.pf_extra = min(2 * <Py_ssize_t>LOGIT_BLOCK, n - p - s.nb)
        else:
            c.idx = NULL
            c.row0 = p
        c.nrows = s.nb
        _plan(c, strategy)     # same or fewer tasks than the buffers were sized for
        eta = _eta(s, s.t)
        rc |= _loss_grad(c, strategy, n_threads)
        sumloss[0] += c.out[KD + c.K]
        _decay(s, eta)
        s.eta = eta
        s.step = eta / (<double>s.nb * s.scale)
        if s.Q != NULL:
            s.u += s.l1frac * eta * s.alpha
        rc |= parallel_for(s.utasks, nt_upd, _t_update, s)
        if s.fit_intercept:
            for k in range(c.K):
                s.b[k] -= eta * c.out[KD + k] / <double>s.nb
        if s.A != NULL and s.t >= s.avg_start:
            for k in range(c.K):
                s.Ab[k] += (s.b[k] - s.Ab[k]) / (s.avg_count + 1.0)
            s.avg_count += 1.0
        s.t += 1.0
        p += s.nb
    return rc


cdef void _t_hogwild(void *vs, ptrdiff_t t, int worker) noexcept nogil:
    """Hogwild shard: per-sample SGD on this shard's rows, writing the shared V and b without
    locks. Racy by design (Niu et al. 2011): results depend on thread timing."""
    cdef SGDCtx *s = <SGDCtx *>vs
    cdef LinCtx c = s.lc                 # private copy: own scratch row, same shared weights
    cdef Py_ssize_t lo = t * s.shard_rows, hi = min(lo + s.shard_rows, s.n), i, j, k, row
    cdef double eta, f, loss = 0.0, tt
    cdef double *z = s.lc.scratch + t * s.lc.sstride
    cdef const char *xr
    for i in range(lo, hi):
        row = s.order[i] if s.order != NULL else i
        xr = c.X + row * c.ldx
        if s.order != NULL and i + PREFETCH_ROWS < hi:
            _prefetch(&c, s.order[i + PREFETCH_ROWS])
        # the step count this row would have had in a serial epoch over interleaved shards
        tt = s.t + <double>((i - lo) * s.nshards + t)
        eta = _eta(s, tt)
        loss += _row(&c, row, xr, z)
        f = 1.0
        if s.l2frac > 0.0:
            f = 1.0 - s.l2frac * eta * s.alpha
            f = f if f > 0.0 else 0.0
        # decay and step in one pass over each output's weights: both threads write every
        # weight's cache line each step, and a line moving between cores is the cost here
        for k in range(c.K):
            if z[k] != 0.0:
                if f != 1.0:
                    _axpby(&c, -eta * z[k], xr, f, s.V + k * c.d, c.d)
                else:
                    _axpy(&c, -eta * z[k], xr, s.V + k * c.d, c.d)
                if s.fit_intercept:
                    s.b[k] -= eta * z[k]
            elif f != 1.0:
                for j in range(k * c.d, (k + 1) * c.d):
                    s.V[j] *= f
    s.shard_loss[t] = loss


# The pipelined epoch's test modes by the names tests/estimators/test_sgd_pipelined.py uses, and
# its data-size threshold
PIPE_TEST_MODES = {"real": PIPE_RACE, "all_from_x": PIPE_ALL_FROM_X,
                   "all_from_ring": PIPE_ALL_FROM_RING, "stepped_after_job": PIPE_STEP_AFTER_JOB,
                   "ring_filled_then_stepped_after_job": PIPE_FILL_THEN_STEP}
PIPELINE_MIN_BYTES = PIPE_MIN_BYTES


cdef int _check_arrays(Py_ssize_t n_rows, Py_ssize_t d, const double[::1] y,
                       const double[::1] sw, double[:, ::1] V, double[::1] b,
                       double[::1] state, double[:, ::1] Q, double[:, ::1] A, double[::1] Ab,
                       int n_threads) except -1:
    """sgd_epoch's arrays against each other: a ValueError naming the first that does not fit."""
    cdef Py_ssize_t K = V.shape[0]
    if V.shape[1] != d:
        raise ValueError(f"sgd_epoch: V has {V.shape[1]} columns for the {d} features of X")
    if K < 1:
        raise ValueError("sgd_epoch: V must have at least one row (output)")
    if y.shape[0] != n_rows:
        raise ValueError(f"sgd_epoch: y has {y.shape[0]} values for the {n_rows} rows of X")
    if sw is not None and sw.shape[0] != n_rows:
        raise ValueError(f"sgd_epoch: sw has {sw.shape[0]} values for the {n_rows} rows of X")
    if b.shape[0] != K:
        raise ValueError(f"sgd_epoch: b has {b.shape[0]} values for the {K} rows of V")
    if state.shape[0] != 4:
        raise ValueError(f"sgd_epoch: state must hold 4 values (scale, t, u, avg_count), got "
                         f"{state.shape[0]}")
    if Q is not None and (Q.shape[0] != K or Q.shape[1] != d):
        raise ValueError(f"sgd_epoch: Q must be {K} x {d} like V, got {Q.shape[0]} x {Q.shape[1]}")
    if A is not None and (A.shape[0] != K or A.shape[1] != d):
        raise ValueError(f"sgd_epoch: A must be {K} x {d} like V, got {A.shape[0]} x {A.shape[1]}")
    if (A is None) != (Ab is None):
        raise ValueError("sgd_epoch: A and Ab (averaged weights and intercepts) come together")
    if Ab is not None and Ab.shape[0] != K:
        raise ValueError(f"sgd_epoch: Ab has {Ab.shape[0]} values for the {K} rows of V")
    if n_threads < 1:
        raise ValueError(f"sgd_epoch: n_threads must be >= 1, got {n_threads}")
    return 0


def sgd_epoch(const floating[:, ::1] X not None,   # IN   n x d
              const double[::1] y not None,        # IN   n
              const double[::1] sw,                # IN   n, or None
              const Py_ssize_t[::1] order,         # IN   rows to visit, in order, or None: all
              double[:, ::1] V not None,           # IN/OUT K x d, true weights = state[0] * V
              double[::1] b not None,              # IN/OUT K
              double[::1] state not None,          # IN/OUT [scale, t, u, avg_count]
              double[:, ::1] Q,                    # IN/OUT K x d cumulative L1, or None (no L1)
              double[:, ::1] A,                    # IN/OUT K x d averaged weights, or None
              double[::1] Ab,                      # IN/OUT K averaged intercepts (with A), or None
              SGDParams params not None,
              int n_threads, bint need_loss=True,
              const double[::1] cw=None,           # IN   K one-vs-rest positive-class weights
              *, int _pipe_test_mode=PIPE_RACE, Py_ssize_t _pipe_min_bytes=PIPE_MIN_BYTES):
    """One epoch of SGD over the rows of X in `order`, with the settings `params`. batch == 1:
    classic per-sample SGD on one thread (shuffled data of 12 MiB and more: pipelined on 2
    threads, bit-identical); batch > 1: mini-batches whose gradient is the fused kernel
    (samples or weights strategy, parallel) and whose update is parallel over weights;
    strategy HOGWILD: n_threads shards of per-sample SGD writing shared weights without locks.
    need_loss=False skips the log loss's value (the rest of the sum stays). Returns the summed
    loss.

    For tests only: _pipe_test_mode makes the pipelined epoch read its blocks in one way
    (PIPE_TEST_MODES), and _pipe_min_bytes lowers the data size from which shuffled epochs are
    pipelined (PIPELINE_MIN_BYTES)."""
    cdef SGDCtx s
    cdef LinCtx *c = &s.lc
    cdef Py_ssize_t n = order.shape[0] if order is not None else X.shape[0]
    cdef Py_ssize_t K = V.shape[0], d = V.shape[1], i
    cdef Py_ssize_t batch = params.batch
    cdef int strategy = params.strategy
    cdef double sumloss = 0.0
    cdef int rc = 0
    if not 0 <= _pipe_test_mode < PIPE_N_MODES:
        raise ValueError(f"sgd_epoch: _pipe_test_mode must be 0 to {PIPE_N_MODES - 1}, got "
                         f"{_pipe_test_mode}")
    if _pipe_min_bytes < 0:
        raise ValueError(f"sgd_epoch: _pipe_min_bytes must be >= 0, got {_pipe_min_bytes}")
    _check_arrays(X.shape[0], X.shape[1], y, sw, V, b, state, Q, A, Ab, n_threads)
    memset(&s, 0, sizeof(SGDCtx))
    lin_fill(c, <const char *>&X[0, 0] if X.shape[0] > 0 else NULL, X.strides[0], d,
             floating is float, &y[0] if y.shape[0] > 0 else NULL,
             &sw[0] if sw is not None and sw.shape[0] > 0 else NULL,
             &V[0, 0], &b[0], K, state[0], params.loss, params.ovr, params.epsilon)
    c.need_loss = need_loss
    # scikit-learn's SGD conventions: d loss / d z clipped to +-MAX_DLOSS, the returned loss
    # unweighted (LogisticRegression's solver='sgd' minimises a weighted objective: off there)
    c.sgd = params.sgd_conventions
    set_cw(c, cw)
    s.V, s.b = &V[0, 0], &b[0]
    s.scale, s.t, s.u, s.avg_count = state[0], state[1], state[2], state[3]
    s.Q = &Q[0, 0] if Q is not None else NULL
    s.A = &A[0, 0] if A is not None else NULL
    s.Ab = &Ab[0] if Ab is not None else NULL
    s.schedule, s.eta0, s.power_t = params.schedule, params.eta0, params.power_t
    s.alpha, s.opt_init = params.alpha, params.opt_init
    s.l1frac, s.l2frac, s.avg_start = params.l1frac, params.l2frac, params.avg_start
    s.fit_intercept = params.fit_intercept
    s.order = &order[0] if order is not None and n > 0 else NULL
    s.one = K == 1 and not params.ovr and params.loss != PARML_L_MULTINOMIAL and s.Q == NULL \
        and s.A == NULL
    s.sgd1 = parml_sgd1_for(active_set(), floating is float)
    if n == 0:
        return 0.0
    with nogil:
        if strategy == S_HOGWILD and n_threads > 1 and n >= HOGWILD_MIN_SHARD_ROWS * n_threads:
            s.nshards = n_threads
            s.shard_rows = (n + n_threads - 1) // n_threads
            s.n = n
            c.sstride = (K + LINE_DOUBLES - 1) & ~(LINE_DOUBLES - 1)
            c.scratch = _lines(n_threads * c.sstride)
            s.shard_loss = <double *>calloc(n_threads, sizeof(double))
            if c.scratch == NULL or s.shard_loss == NULL:
                rc = -1
            else:
                # the shards share no lazy scale: fold it into V first
                if s.scale != 1.0:
                    for i in range(K * d):
                        s.V[i] *= s.scale
                    s.scale = 1.0
                c.wscale = 1.0
                rc = parallel_for(s.nshards, n_threads, _t_hogwild, &s)
                for i in range(s.nshards):
                    sumloss += s.shard_loss[i]
                s.t += <double>n
            free(c.scratch)
            free(s.shard_loss)
            c.scratch = NULL
        elif batch <= 1 or strategy == S_HOGWILD:
            c.idx = s.order
            c.sstride = (K + LINE_DOUBLES - 1) & ~(LINE_DOUBLES - 1)
            c.scratch = <double *>malloc(c.sstride * sizeof(double))
            if c.scratch == NULL:
                rc = -1
            elif s.order != NULL and n_threads > 1 and strategy != S_HOGWILD \
                    and d * c.xsize <= PIPE_MAX_ROW_BYTES and n * d * c.xsize >= _pipe_min_bytes:
                rc = sgd_pipelined(c, s.order, n, _step_rows, &s, _pipe_test_mode, &sumloss)
            else:
                sumloss = _sgd_samples(&s, 0, n, n, 0.0)
            free(c.scratch)
            c.scratch = NULL
        else:
            c.nrows = min(batch, n)
            _plan(c, strategy)
            rc = _alloc(c, strategy, True)
            if rc == 0:
                c.out = <double *>malloc((K * d + K + 1) * sizeof(double))
                if c.out == NULL:
                    rc = -1
                else:
                    rc = _sgd_minibatches(&s, n, batch, strategy, n_threads, s.order, &sumloss)
                free(c.out)
                _free(c)
    if rc != 0:
        raise MemoryError("parml: could not allocate SGD buffers or start the thread pool")
    state[0], state[1], state[2], state[3] = s.scale, s.t, s.u, s.avg_count
    return sumloss
