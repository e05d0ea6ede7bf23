# The linear-model kernels' C API (include/parml/linear_rows.h, prefetch.h, logit_block.h,
# losses.h and the fused loss + gradient driver linear_grad.h), shared by the kernel modules
# _linear.pyx, _sgd.pyx and _sgd_pipeline.pyx: declarations, one constant, and two small inline
# helpers of the entry points.
#
# Each module that includes these headers gets its own copy of their static state
# (parml_prefetch_nta, which parml_prefetch_init() sets from the CPU): every such module calls
# parml_prefetch_init() once at import.
from libc.stddef cimport ptrdiff_t

from parml._kernels._kernel_sets cimport active_set
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

cdef extern from "parml/prefetch.h" nogil:
    void parml_prefetch_row(const void *p, ptrdiff_t nbytes)
    void parml_prefetch_row_nta(const void *p, ptrdiff_t nbytes)
    void parml_prefetch_one(const void *p)
    void parml_prefetch_init()

cdef extern from "parml/logit_block.h" nogil:
    ctypedef void (*parml_logit_fn)(const double *p, double *g, double *l, ptrdiff_t n,
                                    int need_loss)
    parml_logit_fn parml_logit_for(int kernel_set)


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
# names below are its functions under the kernel modules' short names.
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



cdef enum:
    # doubles per 64-byte cache line: per-task partials and scratch rows start on a line of
    # their own, so tasks on different threads never write to one line (false sharing)
    LINE_DOUBLES = 8


cdef inline void lin_fill(LinCtx *c, const char *X, Py_ssize_t ldx, Py_ssize_t d, bint f32,
                          const double *y, const double *sw, const double *W, const double *b,
                          Py_ssize_t K, double wscale, int loss, bint ovr,
                          double eps) noexcept nogil:
    """A context with the active kernel set's row kernels and logistic block, and parml's task
    pool."""
    parml_lin_fill(c, X, ldx, d, f32, y, sw, W, b, K, wscale, loss, ovr, eps, active_set(),
                   parallel_for)


cdef inline int set_cw(LinCtx *c, const double[::1] cw) except -1:
    """c.cw from the one-vs-rest class weights (None: none), checked against c.ovr and c.K."""
    if cw is None:
        return 0
    if not c.ovr or cw.shape[0] != c.K:
        raise ValueError(f"cw (one-vs-rest class weights) needs ovr and {c.K} values, got "
                         f"ovr={bool(c.ovr)} and {cw.shape[0]}")
    c.cw = &cw[0]
    return 0
