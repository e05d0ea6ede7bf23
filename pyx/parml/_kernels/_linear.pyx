"""Linear-model kernels on parml's task pool: the fused single-pass loss + gradient, prediction,
weighted Gram matrices, column sums and the finiteness check (the SGD epochs are _sgd.pyx).

X is row-major (C-contiguous rows), float64 or float32, read as given; weights, gradients and
every accumulation are float64. Callers (parml.linear_model) validate shapes, dtypes, finiteness
and labels; nothing here checks.

Determinism: work is cut into tasks by the shape alone (never by the thread count) and per-task
partial sums are reduced in task order, so every result is bit-identical for any n_threads.
"""

from libc.stdlib cimport calloc, free
from libc.string cimport memset
from libc.math cimport sqrt
from cython cimport floating

from parml._kernels._gemm_api cimport parml_gemm_args_d, parml_kernels_d, parml_gemm_d
from parml._kernels._kernel_sets cimport active_set
from parml._kernels._linear_api cimport (
    LINE_DOUBLES, LinCtx, MIN_TASK_WORK, PARALLEL_MIN_WORK, PARML_L_EPSINS, PARML_L_HINGE,
    PARML_L_HUBER, PARML_L_LOG, PARML_L_MODHUBER, PARML_L_MULTINOMIAL, PARML_L_PERCEPTRON,
    PARML_L_SQEPSINS, PARML_L_SQHINGE, PARML_L_SQUARED, PARML_N_LOSSES, S_HOGWILD, S_SAMPLES,
    S_WEIGHTS, _ahead_rows, _alloc, _axpy, _clamp, _dot, _free, _lines, _loss_grad, _plan,
    _stream_ahead, lin_fill, parallel_for, parml_logit_fn, parml_logit_for, parml_prefetch_init,
    parml_rowops, parml_rowops_for, set_cw)


cdef enum:
    GRAM_ROWS = 256             # rows per Gram sub-block (one GEMM k-block)
    GRAM_SPLIT_MAX_DIM = 384    # Gram of up to this many columns: split rows over tasks
    # narrow Gram: a task per 64 * MIN_TASK_WORK multiply-adds (its rows' n D^2), at most
    # GRAM_MAX_TASKS: each task also sums a D x D partial (and holds one), so tasks are far
    # larger than the gradient's
    GRAM_TASK_WORK = 64 * MIN_TASK_WORK
    GRAM_MAX_TASKS = 16
    # wide Gram: each GEMM is cut into this many tasks per thread, so that a thread slowed by
    # another process claims fewer of them (the GEMM's k loop is never split: the result does
    # not depend on the cut)
    GRAM_GEMM_TASKS_PER_THREAD = 4

# The same ids for the Python drivers. Every loss id is the header's (include/parml/losses.h):
# tests/kernels/test_linear.py reads its enum and checks that this mapping covers it exactly.
STRATEGIES = {"samples": S_SAMPLES, "weights": S_WEIGHTS, "hogwild": S_HOGWILD}
LOSS_IDS = {"squared_error": PARML_L_SQUARED, "log_loss": PARML_L_LOG, "hinge": PARML_L_HINGE,
            "squared_hinge": PARML_L_SQHINGE, "modified_huber": PARML_L_MODHUBER,
            "perceptron": PARML_L_PERCEPTRON, "huber": PARML_L_HUBER,
            "epsilon_insensitive": PARML_L_EPSINS,
            "squared_epsilon_insensitive": PARML_L_SQEPSINS, "multinomial": PARML_L_MULTINOMIAL}
N_LOSSES = PARML_N_LOSSES

parml_prefetch_init()


def logit_block(const double[::1] p,   # IN   margins y * z
                double[::1] g,         # OUT  d loss / d p
                double[::1] l):        # OUT  loss
    """Test access to the block logistic loss (logit_block.h) of the active kernel set."""
    if g.shape[0] != p.shape[0] or l.shape[0] != p.shape[0]:
        raise ValueError("logit_block: p, g and l must have the same length")
    if p.shape[0] == 0:
        return
    cdef parml_logit_fn logit = parml_logit_for(active_set())
    with nogil:
        logit(&p[0], &g[0], &l[0], p.shape[0], 1)


def row_axpby(double a, const floating[::1] x, double c, double[::1] g):
    """Test access to the row kernel g = c g + a x (Hogwild's decayed step) of the active
    kernel set."""
    if x.shape[0] != g.shape[0]:
        raise ValueError("row_axpby: x and g must have the same length")
    if g.shape[0] == 0:
        return
    cdef const parml_rowops *ops = parml_rowops_for(active_set())
    with nogil:
        if floating is float:
            ops.axpby_s(a, &x[0], c, &g[0], g.shape[0])
        else:
            ops.axpby_d(a, &x[0], c, &g[0], g.shape[0])


def rowops_name():
    """Name of the row kernels in use (the active kernel set's)."""
    return parml_rowops_for(active_set()).name.decode()


# --------------------------------------------------------------------------------------------
# Fused loss + gradient

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
    cdef LinCtx c
    cdef int rc
    lin_fill(&c, <const char *>&X[0, 0] if X.shape[0] > 0 else NULL, X.strides[0], X.shape[1],
          floating is float, &y[0] if y.shape[0] > 0 else NULL,
          &sw[0] if sw is not None and sw.shape[0] > 0 else NULL,
          &W[0, 0], &b[0], W.shape[0], wscale, loss, ovr, eps)
    c.out = &out[0]
    set_cw(&c, cw)
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
    cdef PredCtx p
    cdef LinCtx *c = &p.lc
    if X.shape[0] == 0:
        return
    lin_fill(c, <const char *>&X[0, 0], X.strides[0], X.shape[1], floating is float, NULL, NULL,
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
    cdef LinCtx c
    cdef Py_ssize_t s, j
    cdef int nt
    if out.shape[0] > 0:
        memset(&out[0], 0, out.shape[0] * sizeof(double))
    if X.shape[0] == 0 or X.shape[1] == 0:
        return
    lin_fill(&c, <const char *>&X[0, 0], X.strides[0], X.shape[1], floating is float, NULL,
          &sw[0] if sw is not None else NULL, NULL, NULL, 1, 1.0, 0, False, 0.0)
    c.nrows = X.shape[0]
    with nogil:
        _plan(&c, S_SAMPLES)
        c.pstride = (c.d + LINE_DOUBLES - 1) & ~(LINE_DOUBLES - 1)
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
    c.part[t * LINE_DOUBLES] = acc


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
    lin_fill(&c, <const char *>&X[0, 0], X.strides[0], X.shape[1], floating is float, NULL, NULL,
          zeros, NULL, 1, 1.0, 0, False, 0.0)
    c.nrows = X.shape[0]
    with nogil:
        _plan(&c, S_SAMPLES)
        c.part = _lines(c.ntasks * LINE_DOUBLES)
        if c.part != NULL:
            parallel_for(c.ntasks, n_threads if c.nrows * c.d >= PARALLEL_MIN_WORK else 1,
                         _t_finite, &c)
            for s in range(c.ntasks):
                acc += c.part[s * LINE_DOUBLES]
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
                           GRAM_GEMM_TASKS_PER_THREAD * g.inner_threads, 0, parallel_for)
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
    g.xsize = sizeof(float) if g.f32 else sizeof(double)
    g.T = Y.shape[1] if Y is not None else 0
    g.Y = &Y[0, 0] if Y is not None and g.T > 0 else NULL
    g.sw = &sw[0] if sw is not None else NULL
    g.mu = &mu[0]
    g.D = g.d + g.T
    g.kernel_set = active_set()
    if g.D <= GRAM_SPLIT_MAX_DIM:
        g.ntasks = _clamp((g.n * g.D * g.D) // GRAM_TASK_WORK, 1, GRAM_MAX_TASKS)
        g.ntasks = min(g.ntasks, (g.n + GRAM_ROWS - 1) // GRAM_ROWS)
        g.inner_threads = 1
    else:
        g.ntasks = 1
        g.inner_threads = n_threads
    g.rpt = (g.n + g.ntasks - 1) // g.ntasks
    g.bstride = (GRAM_ROWS * g.D + g.D * g.D + LINE_DOUBLES - 1) & ~(LINE_DOUBLES - 1)
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
