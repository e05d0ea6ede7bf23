"""Linear-model kernels on parml's task pool: fused single-pass loss + gradient, mini-batch and
Hogwild SGD epochs, prediction, weighted Gram matrices and column sums.

X is row-major (C-contiguous rows), float64 or float32, read as given; weights, gradients and
every accumulation are float64. Callers (parml.linear_model) validate shapes, dtypes, finiteness
and labels; nothing here checks.

Determinism: work is cut into tasks by the shape alone (never by the thread count) and per-task
partial sums are reduced in task order, so every mode except Hogwild gives bit-identical results
for any n_threads.
"""

from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memcpy
from libc.math cimport sqrt, INFINITY
from cython cimport floating

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn

cdef extern from "parml/linear_rows.h" nogil:
    ctypedef double (*parml_dot_d_fn)(const double *x, const double *w, ptrdiff_t d)
    ctypedef double (*parml_dot_s_fn)(const float *x, const double *w, ptrdiff_t d)
    ctypedef void (*parml_axpy_d_fn)(double a, const double *x, double *g, ptrdiff_t d)
    ctypedef void (*parml_axpy_s_fn)(double a, const float *x, double *g, ptrdiff_t d)
    ctypedef void (*parml_dot4_fn)(const void *const *x, const double *w, ptrdiff_t d,
                                   double *out)
    ctypedef void (*parml_axpy4_fn)(const double *a, const void *const *x, double *g, ptrdiff_t d)
    ctypedef void (*parml_axpby_d_fn)(double a, const double *x, double c, double *g, ptrdiff_t d)
    ctypedef void (*parml_axpby_s_fn)(double a, const float *x, double c, double *g, ptrdiff_t d)
    ctypedef struct parml_rowops:
        parml_dot_d_fn dot_d
        parml_dot_s_fn dot_s
        parml_axpy_d_fn axpy_d
        parml_axpy_s_fn axpy_s
        parml_dot4_fn dot4_d
        parml_dot4_fn dot4_s
        parml_axpy4_fn axpy4_d
        parml_axpy4_fn axpy4_s
        parml_axpby_d_fn axpby_d
        parml_axpby_s_fn axpby_s
        const char *name
    const parml_rowops *parml_rowops_for(int kernel_set)
    void parml_prefetch_row(const void *p, ptrdiff_t nbytes)
    void parml_prefetch_row_nta(const void *p, ptrdiff_t nbytes)
    void parml_prefetch_one(const void *p)
    void parml_prefetch_init()

cdef extern from "parml/logit_block.h" nogil:
    ctypedef void (*parml_logit_fn)(const double *p, double *g, double *l, ptrdiff_t n,
                                    int need_loss)
    parml_logit_fn parml_logit_for(int kernel_set)

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

cdef extern from "parml/losses.h" nogil:
    double parml_clip_dl(double dl, double m)
    enum:
        PARML_L_SQUARED
        PARML_L_LOG
        PARML_L_HINGE
        PARML_L_SQHINGE
        PARML_L_MODHUBER
        PARML_L_PERCEPTRON
        PARML_L_HUBER
        PARML_L_EPSINS
        PARML_L_SQEPSINS
        PARML_L_MULTINOMIAL
        PARML_N_LOSSES
    double parml_loss(int loss, double z, double y, double eps, double *dl, int need_loss)
    double parml_softmax_loss(double *z, ptrdiff_t K, ptrdiff_t cls)

# The driver lives in C (include/parml/linear_grad.h), shared with the C API (parml.h); the
# names below are its functions under this module's short names.
cdef extern from "parml/linear_grad.h" nogil:
    enum:
        MIN_TASK_WORK "PARML_LIN_MIN_TASK_WORK"
        MAX_TASKS "PARML_LIN_MAX_TASKS"
        PARALLEL_MIN_WORK "PARML_LIN_PARALLEL_MIN_WORK"
        LOGIT_BLOCK "PARML_LIN_LOGIT_BLOCK"
        PREFETCH_ROWS "PARML_LIN_PREFETCH_ROWS"
        S_SAMPLES "PARML_LIN_SAMPLES"
        S_WEIGHTS "PARML_LIN_WEIGHTS"
        S_HOGWILD "PARML_LIN_HOGWILD"
    double MAX_DLOSS "PARML_LIN_MAX_DLOSS"
    ctypedef struct LinCtx "parml_lin":
        const char *X
        Py_ssize_t ldx, d, K, xsize
        bint f32
        const Py_ssize_t *idx
        Py_ssize_t row0, nrows
        const double *y
        const double *sw
        const double *W
        const double *b
        double wscale
        int loss
        bint ovr
        double eps
        bint need_loss
        Py_ssize_t rpt, ntasks, cpt, ctasks
        double *part
        Py_ssize_t pstride
        double *scratch
        Py_ssize_t sstride
        double *R
        double *out
        Py_ssize_t pf_extra
        const double *cw
        bint sgd
    double *_lines "parml_lin_lines"(Py_ssize_t n)
    Py_ssize_t _row_of "parml_lin_row_of"(const LinCtx *c, Py_ssize_t i)
    void _prefetch "parml_lin_prefetch"(const LinCtx *c, Py_ssize_t row)
    Py_ssize_t _ahead_rows "parml_lin_ahead_rows"(const LinCtx *c)
    void _stream_ahead "parml_lin_stream_ahead"(const LinCtx *c, Py_ssize_t i, Py_ssize_t hi,
                                                Py_ssize_t ahead)
    double _dot "parml_lin_dot"(const LinCtx *c, const char *xr, const double *w, Py_ssize_t n)
    void _axpy "parml_lin_axpy"(const LinCtx *c, double a, const char *xr, double *g,
                                Py_ssize_t n)
    void _axpby "parml_lin_axpby"(const LinCtx *c, double a, const char *xr, double f,
                                  double *g, Py_ssize_t n)
    double _row "parml_lin_row"(const LinCtx *c, Py_ssize_t row, const char *xr, double *z)
    Py_ssize_t _clamp "parml_lin_clamp"(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi)
    void _plan "parml_lin_plan"(LinCtx *c, int strategy)
    int _loss_grad "parml_lin_loss_grad"(LinCtx *c, int strategy, int n_threads)
    int _alloc "parml_lin_alloc"(LinCtx *c, int strategy, bint need_R)
    void _free "parml_lin_free"(LinCtx *c)
    void parml_lin_fill(LinCtx *c, const char *X, Py_ssize_t ldx, Py_ssize_t d, bint f32,
                        const double *y, const double *sw, const double *W, const double *b,
                        Py_ssize_t K, double wscale, int loss, bint ovr, double eps, int kernel_set,
                        parml_parallel_for_fn pf)


from parml._kernels._gemm_api cimport parml_gemm_args_d, parml_kernels_d, parml_gemm_d
from parml._kernels._kernel_sets cimport active_set


cdef enum:
    GRAM_ROWS = 256             # rows per Gram sub-block (one GEMM k-block)
    GRAM_SPLIT_MAX_DIM = 384    # Gram of up to this many columns: split rows over tasks

# The same ids for the Python drivers.
STRATEGIES = {"samples": S_SAMPLES, "weights": S_WEIGHTS, "hogwild": S_HOGWILD}
SCHEDULES = {"constant": PARML_SCH_CONSTANT, "optimal": PARML_SCH_OPTIMAL,
             "invscaling": PARML_SCH_INVSCALING, "adaptive": PARML_SCH_CONSTANT}
LOSS_IDS = {"squared_error": PARML_L_SQUARED, "log_loss": PARML_L_LOG, "hinge": PARML_L_HINGE,
            "squared_hinge": PARML_L_SQHINGE, "modified_huber": PARML_L_MODHUBER,
            "perceptron": PARML_L_PERCEPTRON, "huber": PARML_L_HUBER,
            "epsilon_insensitive": PARML_L_EPSINS,
            "squared_epsilon_insensitive": PARML_L_SQEPSINS, "multinomial": PARML_L_MULTINOMIAL}

# The kernel set's row kernels, logistic block and per-sample SGD loop, looked up again by
# _use_active_set() at every entry point when the active set (parml._isa) has changed.
cdef int SET = -1
cdef const parml_rowops *OPS = NULL
cdef parml_logit_fn LOGIT = NULL
cdef parml_sgd1_fn SGD1_D = NULL
cdef parml_sgd1_fn SGD1_S = NULL

cdef void _use_active_set() noexcept nogil:
    global SET, OPS, LOGIT, SGD1_D, SGD1_S
    cdef int s = active_set()
    if s != SET:
        OPS = parml_rowops_for(s)
        LOGIT = parml_logit_for(s)
        SGD1_D = parml_sgd1_for(s, 0)
        SGD1_S = parml_sgd1_for(s, 1)
        SET = s


parml_prefetch_init()
_use_active_set()


def logit_block(const double[::1] p,   # IN   margins y * z
                double[::1] g,         # OUT  d loss / d p
                double[::1] l):        # OUT  loss
    """Test access to the block logistic loss (logit_block.h) of the active kernel set."""
    if g.shape[0] != p.shape[0] or l.shape[0] != p.shape[0]:
        raise ValueError("logit_block: p, g and l must have the same length")
    if p.shape[0] == 0:
        return
    _use_active_set()
    with nogil:
        LOGIT(&p[0], &g[0], &l[0], p.shape[0], 1)


def row_axpby(double a, const floating[::1] x, double c, double[::1] g):
    """Test access to the row kernel g = c g + a x (Hogwild's decayed step) of the active
    kernel set."""
    if x.shape[0] != g.shape[0]:
        raise ValueError("row_axpby: x and g must have the same length")
    if g.shape[0] == 0:
        return
    _use_active_set()
    with nogil:
        if floating is float:
            OPS.axpby_s(a, &x[0], c, &g[0], g.shape[0])
        else:
            OPS.axpby_d(a, &x[0], c, &g[0], g.shape[0])


def rowops_name():
    """Name of the row kernels in use (the active kernel set's)."""
    _use_active_set()
    return OPS.name.decode()


# --------------------------------------------------------------------------------------------
# Fused loss + gradient

cdef inline void _fill(LinCtx *c, const char *X, Py_ssize_t ldx, Py_ssize_t d, bint f32,
                       const double *y, const double *sw, const double *W, const double *b,
                       Py_ssize_t K, double wscale, int loss, bint ovr, double eps) noexcept nogil:
    """A context with the active set's row kernels (_use_active_set() ran at the entry point)
    and parml's task pool."""
    parml_lin_fill(c, X, ldx, d, f32, y, sw, W, b, K, wscale, loss, ovr, eps, SET, parallel_for)


cdef int _set_cw(LinCtx *c, const double[::1] cw) except -1:
    """c.cw from the one-vs-rest class weights (None: none), checked against c.ovr and c.K."""
    if cw is None:
        return 0
    if not c.ovr or cw.shape[0] != c.K:
        raise ValueError(f"cw (one-vs-rest class weights) needs ovr and {c.K} values, got "
                         f"ovr={bool(c.ovr)} and {cw.shape[0]}")
    c.cw = &cw[0]
    return 0


def loss_grad(const floating[:, ::1] X,    # IN   n x d
              const double[::1] y,         # IN   n
              const double[::1] sw,        # IN   n sample weights, or None
              const double[:, ::1] W,      # IN   K x d
              const double[::1] b,         # IN   K
              double wscale, int loss, bint ovr, double eps,
              const Py_ssize_t[::1] idx,   # IN   rows to use, or None for all
              int strategy,
              double[::1] out,             # OUT  K*d + K + 1: grad W (row-major), grad b, loss
              int n_threads,
              const double[::1] cw=None):  # IN   K one-vs-rest positive-class weights, or None
    """Sums over the rows of sw_i * loss(x_i . w_k * wscale + b_k, y_i) and its gradient, in one
    pass over X (samples strategy) or two (weights strategy); in one-vs-rest, problem k's
    positive rows are weighted by cw[k] too. Returns the loss sum."""
    _use_active_set()
    cdef LinCtx c
    cdef int rc
    _fill(&c, <const char *>&X[0, 0] if X.shape[0] > 0 else NULL, X.strides[0], X.shape[1],
          floating is float, &y[0] if y.shape[0] > 0 else NULL,
          &sw[0] if sw is not None and sw.shape[0] > 0 else NULL,
          &W[0, 0], &b[0], W.shape[0], wscale, loss, ovr, eps)
    c.out = &out[0]
    _set_cw(&c, cw)
    if idx is not None:
        c.idx = &idx[0] if idx.shape[0] > 0 else NULL
        c.nrows = idx.shape[0]
    else:
        c.nrows = X.shape[0]
    if c.nrows == 0:
        memset(c.out, 0, (c.K * c.d + c.K + 1) * sizeof(double))
        return 0.0
    with nogil:
        _plan(&c, strategy)
        rc = _alloc(&c, strategy, True)
        if rc == 0:
            rc = _loss_grad(&c, strategy, n_threads)
            _free(&c)
    if rc != 0:
        raise MemoryError("parml: could not allocate the gradient buffers or start the thread pool")
    return out[c.K * c.d + c.K]


# --------------------------------------------------------------------------------------------
# SGD epochs

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
    bint one                   # one output, no L1, no averaging: per-sample steps in C
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
    acc = (SGD1_S if c.f32 else SGD1_D)(&q, lo, hi, pf_hi, acc)
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


# Shuffled per-sample SGD on 2 threads, pipelined: each visited row is a random read (~100 ns
# here even when prefetched, against ~25-45 ns for its update), and the updates are a serial
# chain. So one thread (the stepper, always the calling thread) runs the steps, and the other
# (the gatherer) copies rows that the stepper will reach soon, in blocks of consecutive visiting
# positions, into a ring of buffers that the stepper then reads sequentially from cache.
#
# Neither thread ever waits for the other's progress. A block is claimed by exactly one of them
# (an atomic state per block): the gatherer claims blocks a little ahead of the stepper; the
# stepper, reaching a block, claims it if it is still free and steps it straight from X (the
# 1-thread way), steps it from the ring if it is gathered, and steps it straight from X too if
# the gatherer is still copying it. So a gatherer that is preempted, slow or never scheduled
# costs nothing but its own block, and the epoch is never slower than the stepper alone; the
# gatherer only waits (spinning, yielding) when it is a whole ring ahead. The steps are the same,
# on the same values in the same order, whichever way a block is read: bit-identical to the
# 1-thread epoch, loss sum included.
cdef enum:
    PIPE_BLOCK_BYTES = 32768   # rows per block: this many bytes of rows, 4 to 32 rows
    PIPE_RING_BYTES = 524288   # ring of blocks (the stepper reads it from L2/L3)
    PIPE_MAX_ROW_BYTES = 16384 # wider rows are not pipelined
    PIPE_AHEAD = 4             # the gatherer starts at least this many blocks past the stepper
    BLK_FREE = 0
    BLK_GATHERING = 1
    BLK_GATHERED = 2
    BLK_TAKEN = 3              # by the stepper, straight from X


ctypedef struct PipeCtx:
    SGDCtx *s
    const char *X              # IN   the data (s.lc is pointed at X or at a ring slot)
    Py_ssize_t ldx, rowbytes
    const double *y
    const double *sw
    const Py_ssize_t *order    # IN   visiting order
    Py_ssize_t n, B, nblk, R   # rows, rows per block, blocks, ring slots
    char *ring                 # R slots of B rows, rowbytes apart
    double *yring
    double *swring
    unsigned char *state       # per block: BLK_*
    Py_ssize_t consumed        # blocks the stepper is done with (atomic; slots below are free)
    int stepped                # the stepper role has run (read by the caller only)
    double loss
    Py_ssize_t nring, nx       # blocks stepped from the ring / from X


cdef extern from "parml/atomics.h" nogil:
    unsigned char parml_load_acq_u8(const unsigned char *p)
    void parml_store_rel_u8(unsigned char *p, unsigned char v)
    int parml_cas_u8(unsigned char *p, unsigned char expect, unsigned char v)
    Py_ssize_t parml_load_acq_z(const Py_ssize_t *p)
    void parml_store_rel_z(Py_ssize_t *p, Py_ssize_t v)
    void parml_add_z(Py_ssize_t *p, Py_ssize_t v)
    void parml_spin_step(long *spins)


cdef int _pipe_mode = 0          # tests only: see _pipe_set_mode
# Data under 12 MiB is not pipelined: its rows' random reads mostly hit L3 (32 MiB here); 2
# threads / 1 measured 1.0-1.07 at 8-10 MB, 0.83-0.88 at 12-16 MB, 0.56-0.75 from 24 MB.
cdef Py_ssize_t _pipe_min_bytes = 12582912
cdef Py_ssize_t _pipe_blocks[2]  # blocks stepped from the ring / from X, since import


cdef void _pipe_gather(PipeCtx *p, Py_ssize_t k) noexcept nogil:
    """Block k's rows (features, target, weight) into its ring slot."""
    cdef Py_ssize_t lo = k * p.B, hi = min(lo + p.B, p.n), i, r, q, slot = (k % p.R) * p.B
    cdef char *dst = p.ring + slot * p.rowbytes
    for i in range(lo, hi):
        r = p.order[i]
        # past the block too: the gatherer usually goes on with the next block, whose first
        # rows would otherwise be misses without any lead
        if i + PREFETCH_ROWS < p.n:
            q = p.order[i + PREFETCH_ROWS]
            parml_prefetch_row_nta(p.X + q * p.ldx, p.rowbytes)
            parml_prefetch_one(p.y + q)
            if p.sw != NULL:
                parml_prefetch_one(p.sw + q)
        memcpy(dst + (i - lo) * p.rowbytes, p.X + r * p.ldx, p.rowbytes)
        p.yring[slot + i - lo] = p.y[r]
        if p.sw != NULL:
            p.swring[slot + i - lo] = p.sw[r]


cdef void _pipe_stepper(PipeCtx *p) noexcept nogil:
    cdef LinCtx *c = &p.s.lc
    cdef Py_ssize_t j, lo, hi, slot, i, r
    cdef unsigned char st
    for j in range(p.nblk):
        lo, hi = j * p.B, min(j * p.B + p.B, p.n)
        st = parml_load_acq_u8(&p.state[j])
        if st == BLK_FREE:
            if parml_cas_u8(&p.state[j], BLK_FREE, BLK_TAKEN):
                st = BLK_TAKEN                         # ours: straight from X
                if _pipe_mode == 2:                    # (tests: the stepper gathers, then reads)
                    _pipe_gather(p, j)
                    st = BLK_GATHERED
            else:
                st = parml_load_acq_u8(&p.state[j])    # the gatherer claimed it just now
        if st == BLK_GATHERED:
            # the next block, if no one is copying it, is read from X: its first rows now
            if j + 1 < p.nblk and parml_load_acq_u8(&p.state[j + 1]) == BLK_FREE:
                for i in range(hi, min(hi + PREFETCH_ROWS, p.n)):
                    r = p.order[i]
                    parml_prefetch_row_nta(p.X + r * p.ldx, p.rowbytes)
                    parml_prefetch_one(p.y + r)
                    if p.sw != NULL:
                        parml_prefetch_one(p.sw + r)
            slot = (j % p.R) * p.B
            c.X, c.ldx, c.y = p.ring + slot * p.rowbytes, p.rowbytes, p.yring + slot
            c.sw = p.swring + slot if p.sw != NULL else NULL
            c.idx = NULL
            p.loss = _sgd_samples(p.s, 0, hi - lo, 0, p.loss)
            p.nring += 1
        else:     # taken by the stepper, or still being copied: straight from X
            c.X, c.ldx, c.y, c.sw, c.idx = p.X, p.ldx, p.y, p.sw, p.order
            # prefetch past this block only into a next block that is still free (the gatherer
            # normally does not claim it now: it works PIPE_AHEAD blocks ahead): rows the
            # gatherer copies would be read from memory twice, and two threads may get no more
            # bandwidth than one
            p.loss = _sgd_samples(p.s, lo, hi,
                                  min(hi + p.B, p.n) if j + 1 < p.nblk and
                                  parml_load_acq_u8(&p.state[j + 1]) == BLK_FREE else hi, p.loss)
            p.nx += 1
        parml_store_rel_z(&p.consumed, j + 1)


cdef void _pipe_gatherer(PipeCtx *p) noexcept nogil:
    cdef Py_ssize_t k = 0, cons
    cdef long spins = 0
    if _pipe_mode in (1, 2, 3):      # (tests: the gatherer does nothing)
        return
    while True:
        cons = parml_load_acq_z(&p.consumed)
        k = max(k, cons + PIPE_AHEAD)
        if k >= p.nblk:
            return
        if k >= cons + p.R:   # a whole ring ahead: slot k % R still holds block k - R
            if _pipe_mode == 4:   # (tests: the steps come after the job; stop, do not wait)
                return
            parml_spin_step(&spins)
            continue
        if parml_load_acq_u8(&p.state[k]) == BLK_FREE \
                and parml_cas_u8(&p.state[k], BLK_FREE, BLK_GATHERING):
            _pipe_gather(p, k)
            parml_store_rel_u8(&p.state[k], BLK_GATHERED)
        k += 1


cdef void _t_pipe(void *vp, ptrdiff_t t, int worker) noexcept nogil:
    """The calling thread steps (once); any other thread, or the caller's second task once the
    steps are done, gathers (returning at once when no block is left). A helper can claim both
    tasks before the caller claims either: its gatherer returns without the steps' progress when
    it reaches the last block (a ring that holds every block from PIPE_AHEAD on, or fewer blocks
    than PIPE_AHEAD), or at once in test modes 1-3; then the caller steps after the job
    (_sgd_pipelined). Otherwise the caller, which claims tasks right after publishing the job,
    gets the remaining task and steps."""
    cdef PipeCtx *p = <PipeCtx *>vp
    if worker == 0 and not p.stepped and _pipe_mode < 3:
        p.stepped = 1
        _pipe_stepper(p)
    else:
        _pipe_gatherer(p)


def _pipe_set_mode(int mode):
    """Tests only: 0 normal; 1 the gatherer does nothing (every block straight from X); 2 as 1,
    and the stepper copies each free block into the ring and steps it from there (the ring path,
    deterministically); 3 as 1, and the caller steps only after the job (as when a helper took
    both tasks); 4 the caller steps only after the job, and the gatherer fills the ring first
    (stopping, not waiting, once it is a ring ahead): blocks from PIPE_AHEAD to the ring's end
    come from the ring, the others from X."""
    global _pipe_mode
    if mode not in (0, 1, 2, 3, 4):
        raise ValueError(f"pipeline mode must be 0 to 4, got {mode}")
    _pipe_mode = mode


def _pipe_set_min_bytes(Py_ssize_t nbytes):
    """Tests only: the data size from which shuffled epochs are pipelined (12 MiB by default);
    returns the previous value."""
    global _pipe_min_bytes
    if nbytes < 0:
        raise ValueError(f"pipeline threshold must be >= 0 bytes, got {nbytes}")
    old, _pipe_min_bytes = _pipe_min_bytes, nbytes
    return old


def _pipe_block_counts():
    """(blocks stepped from the ring, blocks stepped from X) by the pipeline since import."""
    return int(parml_load_acq_z(&_pipe_blocks[0])), int(parml_load_acq_z(&_pipe_blocks[1]))


cdef inline Py_ssize_t _pipe_block_rows(Py_ssize_t rowbytes) noexcept nogil:
    return min(max(<Py_ssize_t>PIPE_BLOCK_BYTES // max(rowbytes, 1), 4), 32)


cdef int _sgd_pipelined(SGDCtx *s, Py_ssize_t n, double *sumloss) noexcept nogil:
    """The shuffled epoch (s.order) pipelined on 2 threads; 0, or -1 (thread pool). Falls back
    to the 1-thread epoch when the buffers cannot be allocated."""
    cdef LinCtx *c = &s.lc
    cdef PipeCtx p
    cdef int rc = 0
    memset(&p, 0, sizeof(PipeCtx))
    p.s, p.X, p.ldx, p.y, p.sw, p.order, p.n = s, c.X, c.ldx, c.y, c.sw, s.order, n
    p.rowbytes = c.d * c.xsize
    p.B = _pipe_block_rows(p.rowbytes)
    p.nblk = (n + p.B - 1) // p.B
    p.R = max(<Py_ssize_t>PIPE_RING_BYTES // (p.B * max(p.rowbytes, 1)), PIPE_AHEAD + 2)
    p.ring = <char *>malloc(max(p.R * p.B * p.rowbytes, 1))
    p.yring = <double *>malloc(p.R * p.B * sizeof(double))
    p.swring = <double *>malloc(p.R * p.B * sizeof(double)) if p.sw != NULL else NULL
    p.state = <unsigned char *>calloc(p.nblk, 1)
    if p.ring == NULL or p.yring == NULL or (p.sw != NULL and p.swring == NULL) \
            or p.state == NULL:
        sumloss[0] = _sgd_samples(s, 0, n, n, sumloss[0])
    else:
        rc = parallel_for(2, 2, _t_pipe, &p)
        if not p.stepped:   # (a helper took both tasks: see _t_pipe)
            _pipe_stepper(&p)
        sumloss[0] += p.loss
        parml_add_z(&_pipe_blocks[0], p.nring)
        parml_add_z(&_pipe_blocks[1], p.nx)
    c.X, c.ldx, c.y, c.sw, c.idx, c.row0 = p.X, p.ldx, p.y, p.sw, s.order, 0
    free(p.ring)
    free(p.yring)
    free(p.swring)
    free(p.state)
    return rc


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
    s.utasks = _clamp(KD // 4096, 1, MAX_TASKS)
    s.upt = max(8, (((KD + s.utasks - 1) // s.utasks) + 7) & ~7)   # >= 8 even for K*d == 0
    s.utasks = (KD + s.upt - 1) // s.upt
    nt_upd = n_threads if KD >= 65536 else 1
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


def sgd_epoch(const floating[:, ::1] X,     # IN   n x d
              const double[::1] y,          # IN   n
              const double[::1] sw,         # IN   n or None
              const Py_ssize_t[::1] order,  # IN   visiting order (a permutation), or None
              double[:, ::1] V,             # IN/OUT K x d, true weights = state[0] * V
              double[::1] b,                # IN/OUT K
              double[::1] state,            # IN/OUT [scale, t, u, avg_count]
              double[:, ::1] Q,             # IN/OUT K x d cumulative L1, or None (no L1)
              double[:, ::1] A,             # IN/OUT K x d averaged weights, or None
              double[::1] Ab,               # IN/OUT K averaged intercepts, or None
              int loss, bint ovr, double eps,
              int schedule, double eta0, double power_t, double alpha, double opt_init,
              double l1frac, double l2frac, double avg_start, bint fit_intercept,
              Py_ssize_t batch, int strategy, int n_threads, bint need_loss=True,
              const double[::1] cw=None,    # IN   K one-vs-rest positive-class weights, or None
              bint sgd_conventions=True):
    """One epoch of SGD over the rows of X in `order`. batch == 1: classic per-sample SGD on one
    thread; batch > 1: mini-batches whose gradient is the fused kernel (samples or weights
    strategy, parallel) and whose update is parallel over weights; strategy HOGWILD: n_threads
    shards of per-sample SGD writing shared weights without locks. Returns the summed loss."""
    _use_active_set()
    cdef SGDCtx s
    cdef LinCtx *c = &s.lc
    cdef Py_ssize_t n = order.shape[0] if order is not None else X.shape[0]
    cdef Py_ssize_t K = V.shape[0], d = V.shape[1], i
    cdef double sumloss = 0.0
    cdef int rc = 0
    memset(&s, 0, sizeof(SGDCtx))
    _fill(c, <const char *>&X[0, 0] if X.shape[0] > 0 else NULL, X.strides[0], d,
          floating is float, &y[0] if y.shape[0] > 0 else NULL,
          &sw[0] if sw is not None and sw.shape[0] > 0 else NULL,
          &V[0, 0], &b[0], K, state[0], loss, ovr, eps)
    c.need_loss = need_loss
    # scikit-learn's SGD conventions: d loss / d z clipped to +-MAX_DLOSS, the returned loss
    # unweighted (LogisticRegression's solver='sgd' minimises a weighted objective: off there)
    c.sgd = sgd_conventions
    _set_cw(c, cw)
    s.V, s.b = &V[0, 0], &b[0]
    s.scale, s.t, s.u, s.avg_count = state[0], state[1], state[2], state[3]
    s.Q = &Q[0, 0] if Q is not None else NULL
    s.A = &A[0, 0] if A is not None else NULL
    s.Ab = &Ab[0] if Ab is not None else NULL
    s.schedule, s.eta0, s.power_t, s.alpha, s.opt_init = schedule, eta0, power_t, alpha, opt_init
    s.l1frac, s.l2frac, s.avg_start, s.fit_intercept = l1frac, l2frac, avg_start, fit_intercept
    s.order = &order[0] if order is not None and n > 0 else NULL
    s.one = K == 1 and not ovr and loss != PARML_L_MULTINOMIAL and s.Q == NULL and s.A == NULL
    if n == 0:
        return 0.0
    with nogil:
        if strategy == S_HOGWILD and n_threads > 1 and n >= 2 * n_threads:
            s.nshards = n_threads
            s.shard_rows = (n + n_threads - 1) // n_threads
            s.n = n
            c.sstride = (K + 7) & ~7
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
            c.sstride = (K + 7) & ~7
            c.scratch = <double *>malloc(c.sstride * sizeof(double))
            if c.scratch == NULL:
                rc = -1
            elif s.order != NULL and n_threads > 1 and strategy != S_HOGWILD \
                    and d * c.xsize <= PIPE_MAX_ROW_BYTES and n * d * c.xsize >= _pipe_min_bytes:
                rc = _sgd_pipelined(&s, n, &sumloss)
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


# --------------------------------------------------------------------------------------------
# Prediction, column sums, finiteness, Gram matrices

ctypedef struct PredCtx:
    LinCtx lc
    double *Z                  # OUT n x K scores


cdef void _t_decision(void *vc, ptrdiff_t t, int worker) noexcept nogil:
    cdef PredCtx *p = <PredCtx *>vc
    cdef LinCtx *c = &p.lc
    cdef Py_ssize_t lo = t * c.rpt, hi = min(lo + c.rpt, c.nrows), i, k, ahead = _ahead_rows(c)
    cdef const char *xr
    for i in range(lo, hi):
        xr = c.X + i * c.ldx
        _stream_ahead(c, i, hi, ahead)
        for k in range(c.K):
            p.Z[i * c.K + k] = _dot(c, xr, c.W + k * c.d, c.d) + c.b[k]


def decision(const floating[:, ::1] X,     # IN   n x d
             const double[:, ::1] W,       # IN   K x d
             const double[::1] b,          # IN   K
             double[:, ::1] Z,             # OUT  n x K
             int n_threads):
    """Z = X W^T + b, parallel over row blocks."""
    _use_active_set()
    cdef PredCtx p
    cdef LinCtx *c = &p.lc
    if X.shape[0] == 0:
        return
    _fill(c, <const char *>&X[0, 0], X.strides[0], X.shape[1], floating is float, NULL, NULL,
          &W[0, 0] if W.shape[1] > 0 else NULL, &b[0], W.shape[0], 1.0, 0, False, 0.0)
    c.nrows = X.shape[0]
    p.Z = &Z[0, 0]
    with nogil:
        _plan(c, S_SAMPLES)
        parallel_for(c.ntasks, n_threads if c.nrows * c.K * c.d >= PARALLEL_MIN_WORK else 1,
                     _t_decision, &p)


cdef void _t_colsums(void *vc, ptrdiff_t t, int worker) noexcept nogil:
    cdef LinCtx *c = <LinCtx *>vc
    cdef Py_ssize_t lo = t * c.rpt, hi = min(lo + c.rpt, c.nrows), i, ahead = _ahead_rows(c)
    cdef double *part = c.part + t * c.pstride
    memset(part, 0, c.d * sizeof(double))
    for i in range(lo, hi):
        _stream_ahead(c, i, hi, ahead)
        _axpy(c, c.sw[i] if c.sw != NULL else 1.0, c.X + i * c.ldx, part, c.d)


def col_sums(const floating[:, ::1] X,    # IN   n x d
             const double[::1] sw,        # IN   n or None
             double[::1] out,             # OUT  d: sum_i sw_i x_i
             int n_threads):
    """Weighted column sums, per-task partials reduced in task order."""
    _use_active_set()
    cdef LinCtx c
    cdef Py_ssize_t s, j
    cdef int nt
    if out.shape[0] > 0:
        memset(&out[0], 0, out.shape[0] * sizeof(double))
    if X.shape[0] == 0 or X.shape[1] == 0:
        return
    _fill(&c, <const char *>&X[0, 0], X.strides[0], X.shape[1], floating is float, NULL,
          &sw[0] if sw is not None else NULL, NULL, NULL, 1, 1.0, 0, False, 0.0)
    c.nrows = X.shape[0]
    with nogil:
        _plan(&c, S_SAMPLES)
        c.pstride = (c.d + 7) & ~7
        c.part = _lines(c.ntasks * c.pstride)
    if c.part == NULL:
        raise MemoryError()
    nt = n_threads if c.nrows * c.d >= PARALLEL_MIN_WORK else 1
    with nogil:
        parallel_for(c.ntasks, nt, _t_colsums, &c)
        for s in range(c.ntasks):
            for j in range(c.d):
                out[j] += c.part[s * c.pstride + j]
        free(c.part)


cdef void _t_finite(void *vc, ptrdiff_t t, int worker) noexcept nogil:
    cdef LinCtx *c = <LinCtx *>vc
    cdef Py_ssize_t lo = t * c.rpt, hi = min(lo + c.rpt, c.nrows), i
    cdef Py_ssize_t ahead = _ahead_rows(c)
    cdef double acc = 0.0
    # x * 0 is 0 for finite x and NaN for inf or NaN: a dot product with zeros finds them all
    for i in range(lo, hi):
        _stream_ahead(c, i, hi, ahead)
        acc += _dot(c, c.X + i * c.ldx, c.W, c.d)
    c.part[t * 8] = acc


def all_finite(const floating[:, ::1] X, int n_threads):
    """True when every element of X is finite (one parallel pass)."""
    cdef LinCtx c
    cdef double *zeros
    cdef double acc = 0.0
    cdef Py_ssize_t s
    if X.shape[0] == 0 or X.shape[1] == 0:
        return True
    zeros = <double *>calloc(X.shape[1], sizeof(double))
    if zeros == NULL:
        raise MemoryError()
    _fill(&c, <const char *>&X[0, 0], X.strides[0], X.shape[1], floating is float, NULL, NULL,
          zeros, NULL, 1, 1.0, 0, False, 0.0)
    c.nrows = X.shape[0]
    with nogil:
        _plan(&c, S_SAMPLES)
        c.part = _lines(c.ntasks * 8)
        if c.part != NULL:
            parallel_for(c.ntasks, n_threads if c.nrows * c.d >= PARALLEL_MIN_WORK else 1,
                         _t_finite, &c)
            for s in range(c.ntasks):
                acc += c.part[s * 8]
        free(c.part)
    free(zeros)
    if c.part == NULL:
        raise MemoryError()
    return acc == 0.0


ctypedef struct GramCtx:
    const char *X
    Py_ssize_t ldx, d, n, xsize
    bint f32
    const double *Y            # IN   n x T extra columns (targets), or NULL
    Py_ssize_t T
    const double *sw           # IN   n or NULL
    const double *mu           # IN   d + T centres
    Py_ssize_t D               # d + T
    Py_ssize_t rpt, ntasks
    double *part               # OUT  per-task D x D partial Gram
    double *buf                # per-task GRAM_ROWS x D block + D x D product, bstride apart
    Py_ssize_t bstride
    int inner_threads          # threads of each GEMM call (1 when rows are split over tasks)
    int kernel_set             # GEMM micro-kernel set (kernel_sets.h)


cdef int _gram_rows(GramCtx *g, Py_ssize_t lo, Py_ssize_t hi, double *acc, double *buf) noexcept nogil:
    """acc += Z^T Z over rows [lo, hi), Z = sqrt(sw) * ([X | Y] - mu), GRAM_ROWS rows per GEMM."""
    cdef Py_ssize_t D = g.D, r0, r1, i, j, m
    cdef double s
    cdef double *blk = buf
    cdef double *prod = buf + GRAM_ROWS * D
    cdef parml_gemm_args_d a
    cdef int rc = 0
    r0 = lo
    while r0 < hi:
        r1 = min(r0 + GRAM_ROWS, hi)
        m = r1 - r0
        for i in range(m):
            s = sqrt(g.sw[r0 + i]) if g.sw != NULL else 1.0
            if g.f32:
                for j in range(g.d):
                    blk[i * D + j] = s * ((<const float *>(g.X + (r0 + i) * g.ldx))[j] - g.mu[j])
            else:
                for j in range(g.d):
                    blk[i * D + j] = s * ((<const double *>(g.X + (r0 + i) * g.ldx))[j] - g.mu[j])
            for j in range(g.T):
                blk[i * D + g.d + j] = s * (g.Y[(r0 + i) * g.T + j] - g.mu[g.d + j])
        a.m, a.n, a.k = D, D, m
        a.a, a.rs_a, a.cs_a = blk, 1, D          # A = blk^T
        a.b, a.rs_b, a.cs_b = blk, D, 1
        a.c, a.rs_c = prod, D
        rc |= parml_gemm_d(&parml_kernels_d[g.kernel_set], &a, g.inner_threads,
                           4 * g.inner_threads, 0, parallel_for)
        for i in range(D * D):
            acc[i] += prod[i]
        r0 = r1
    return rc


cdef void _t_gram(void *vg, ptrdiff_t t, int worker) noexcept nogil:
    cdef GramCtx *g = <GramCtx *>vg
    cdef double *acc = g.part + t * g.D * g.D
    memset(acc, 0, g.D * g.D * sizeof(double))
    _gram_rows(g, t * g.rpt, min(t * g.rpt + g.rpt, g.n), acc, g.buf + t * g.bstride)


def gram(const floating[:, ::1] X,      # IN   n x d
         const double[:, ::1] Y,        # IN   n x T, or None
         const double[::1] sw,          # IN   n, or None
         const double[::1] mu,          # IN   d + T centres
         double[:, ::1] G,              # OUT  (d+T) x (d+T), accumulated into (+=)
         int n_threads):
    """G += Z^T Z, Z = sqrt(sw) * ([X | Y] - mu): the centred, weighted Gram matrix of X with the
    targets appended (so X^T X, X^T y and y^T y come out of one pass). Narrow data splits rows
    over tasks (each a single-threaded GEMM into its own partial); wide data runs each GEMM on
    all threads. Either way the split depends on the shape only."""
    cdef GramCtx g
    cdef Py_ssize_t t, i
    cdef int rc = 0
    memset(&g, 0, sizeof(GramCtx))
    g.n, g.d = X.shape[0], X.shape[1]
    if g.n == 0:
        return
    g.X, g.ldx, g.f32 = <const char *>&X[0, 0], X.strides[0], floating is float
    g.xsize = 4 if g.f32 else 8
    g.T = Y.shape[1] if Y is not None else 0
    g.Y = &Y[0, 0] if Y is not None and g.T > 0 else NULL
    g.sw = &sw[0] if sw is not None else NULL
    g.mu = &mu[0]
    g.D = g.d + g.T
    g.kernel_set = active_set()
    if g.D <= GRAM_SPLIT_MAX_DIM:
        g.ntasks = _clamp((g.n * g.D * g.D) // (64 * MIN_TASK_WORK), 1, 16)
        g.ntasks = min(g.ntasks, (g.n + GRAM_ROWS - 1) // GRAM_ROWS)
        g.inner_threads = 1
    else:
        g.ntasks = 1
        g.inner_threads = n_threads
    g.rpt = (g.n + g.ntasks - 1) // g.ntasks
    g.bstride = (GRAM_ROWS * g.D + g.D * g.D + 7) & ~7
    g.part = _lines(g.ntasks * g.D * g.D)
    g.buf = _lines(g.ntasks * g.bstride)
    if g.part == NULL or g.buf == NULL:
        free(g.part)
        free(g.buf)
        raise MemoryError("parml: could not allocate Gram buffers")
    with nogil:
        if g.ntasks == 1:
            memset(g.part, 0, g.D * g.D * sizeof(double))
            rc = _gram_rows(&g, 0, g.n, g.part, g.buf)
        else:
            rc = parallel_for(g.ntasks, n_threads, _t_gram, &g)
        for t in range(g.ntasks):
            for i in range(g.D * g.D):
                (&G[0, 0])[i] += g.part[t * g.D * g.D + i]
    free(g.part)
    free(g.buf)
    if rc != 0:
        raise MemoryError("parml: could not allocate GEMM buffers or start the thread pool")
