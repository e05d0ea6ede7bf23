"""MLP kernels (include/parml/mlp.h): training epochs and inference on parml's GEMM, plus the
element-wise pieces exposed for tests. Callers (parml.neural_network) validate inputs; the
wrappers here re-check only what would make C read or write out of bounds."""

import numpy as np

from cython cimport floating
from libc.stdint cimport int64_t, uintptr_t
from libc.stdlib cimport calloc, free
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn
from parml._kernels._tuner cimport Tuner, parml_tuner


cdef extern from "parml/mlp.h" nogil:
    int PARML_ACT_IDENTITY, PARML_ACT_RELU, PARML_ACT_TANH, PARML_ACT_LOGISTIC
    int PARML_ACT_SOFTMAX, PARML_ACT_EXP
    int PARML_OPT_NONE, PARML_OPT_SGD, PARML_OPT_ADAM
    int PARML_MLP_OK, PARML_MLP_NOMEM, PARML_MLP_NONFINITE
    int PARML_N_KERNELS
    int parml_set_supported(int kernel_set)

    ctypedef struct parml_mlp_net_any:
        int single
        int n_layers
        const ptrdiff_t *units
        int hidden_act, out_act, kernel_id
        void **W
        void **b
        void **A
        void **D
        void **GW
        void **Gb
        double **rowsq

    ctypedef struct parml_mlp_opt_any:
        int kind
        double lr, momentum, beta1, beta2, eps, alpha
        int nesterov
        int64_t t
        void **MW
        void **Mb
        void **VW
        void **Vb

    ctypedef struct parml_mlp_batch_any:
        const void *X
        ptrdiff_t ldx
        const void *Y
        ptrdiff_t ldy
        const void *sw
        const int64_t *idx
        ptrdiff_t start, bn

    int parml_mlp_epoch_any(const parml_mlp_net_any *net, parml_mlp_opt_any *opt,
                            const parml_mlp_batch_any *data, ptrdiff_t n, ptrdiff_t batch,
                            double *row_loss, double *loss_sum, ptrdiff_t *rows_done,
                            parml_tuner *tuner, parml_parallel_for_fn parallel_for)
    int parml_mlp_forward_any(const parml_mlp_net_any *net, const void *X, ptrdiff_t ldx,
                              ptrdiff_t n, void *out, ptrdiff_t chunk, int n_threads,
                              parml_parallel_for_fn parallel_for)
    void parml_mlp_bias_act_s(float *z, ptrdiff_t rows, ptrdiff_t n, const float *b, int act)
    void parml_mlp_bias_act_d(double *z, ptrdiff_t rows, ptrdiff_t n, const double *b, int act)
    void parml_mlp_act_grad_s(float *d, const float *a, ptrdiff_t count, int act)
    void parml_mlp_act_grad_d(double *d, const double *a, ptrdiff_t count, int act)
    double parml_mlp_loss_delta_s(float *p, const float *y, ptrdiff_t n, float w, int out_act)
    double parml_mlp_loss_delta_d(double *p, const double *y, ptrdiff_t n, double w, int out_act)


ACTIVATIONS = {"identity": PARML_ACT_IDENTITY, "relu": PARML_ACT_RELU, "tanh": PARML_ACT_TANH,
               "logistic": PARML_ACT_LOGISTIC, "softmax": PARML_ACT_SOFTMAX, "exp": PARML_ACT_EXP}
OPTIMIZERS = {"none": PARML_OPT_NONE, "sgd": PARML_OPT_SGD, "adam": PARML_OPT_ADAM}
STATUS_NONFINITE = PARML_MLP_NONFINITE
# rows per inference task: large enough to amortise packing W, small enough to stay in L2
FORWARD_CHUNK = 256


cdef inline void *_ptr(a):
    return <void *><uintptr_t>a.ctypes.data


cdef class _PtrArray:
    """A C array of data pointers to a list of numpy arrays (kept alive while it lives)."""
    cdef void **p
    cdef list keep

    def __cinit__(self, list arrays):
        self.keep = arrays
        self.p = <void **>calloc(max(len(arrays), 1), sizeof(void *))
        if self.p == NULL:
            raise MemoryError("parml mlp: could not allocate a pointer table")
        for i, a in enumerate(arrays):
            self.p[i] = _ptr(a) if a is not None else NULL

    def __dealloc__(self):
        free(self.p)


HIDDEN = ("identity", "relu", "tanh", "logistic")
OUTPUTS = ("identity", "logistic", "softmax", "exp")


def _act(name, allowed, what):
    if name not in allowed:
        raise ValueError(f"parml mlp kernel: {what + ' ' if what else ''}activation must be one of "
                         f"{allowed}, got {name!r}")
    return ACTIVATIONS[name]


def _check_writable(arrays, what):
    for a in arrays:
        if a is not None and not a.flags.writeable:
            raise ValueError(f"parml mlp kernel: {what} is read-only")


def _check(a, shape, dtype, what):
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape \
            or not a.flags.c_contiguous:
        got = (type(a).__name__ if not isinstance(a, np.ndarray)
               else f"{a.dtype} {a.shape} contiguous={a.flags.c_contiguous}")
        raise ValueError(f"parml mlp kernel: {what} must be a C-contiguous {np.dtype(dtype)} array "
                         f"of shape {shape}, got {got}")


def _check_params(list coefs, list intercepts, units, dtype, writable):
    cdef Py_ssize_t L = len(units) - 1
    if L < 1 or len(coefs) != L or len(intercepts) != L:
        raise ValueError("parml mlp kernel: need one coef and one intercept array per layer")
    for l in range(L):
        _check(coefs[l], (units[l], units[l + 1]), dtype, f"coefs[{l}]")
        _check(intercepts[l], (units[l + 1],), dtype, f"intercepts[{l}]")
        if writable and not (coefs[l].flags.writeable and intercepts[l].flags.writeable):
            raise ValueError(f"parml mlp kernel: layer {l}'s parameters are read-only")


cdef class _Net:
    """The C view of one network plus the scratch buffers one batch of `rows` needs."""
    cdef parml_mlp_net_any net
    cdef ptrdiff_t *units
    cdef _PtrArray W, b, A, D, GW, Gb
    cdef double **rowsq
    cdef list keep

    def __cinit__(self, list coefs, list intercepts, int hidden_act, int out_act, int kernel_id,
                  Py_ssize_t rows):
        L = len(coefs)
        dtype = coefs[0].dtype
        self.units = <ptrdiff_t *>calloc(L + 1, sizeof(ptrdiff_t))
        self.rowsq = <double **>calloc(L, sizeof(double *))
        if self.units == NULL or self.rowsq == NULL:
            raise MemoryError("parml mlp: could not allocate the network description")
        units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        if min(units) < 1:
            raise ValueError(f"parml mlp kernel: every layer needs at least one unit, got {units}")
        for l in range(L + 1):
            self.units[l] = units[l]
        if not 0 <= kernel_id < PARML_N_KERNELS or not parml_set_supported(kernel_id):
            raise ValueError(f"parml mlp kernel: kernel id {kernel_id} is not supported here")
        self.W = _PtrArray(coefs)
        self.b = _PtrArray(intercepts)
        if rows > 0:  # training scratch: activations, deltas, gradients, row norms
            A = [np.empty((rows, u), dtype=dtype) for u in units]
            D = [None] + [np.empty((rows, u), dtype=dtype) for u in units[1:L]] + [A[L]]
            GW = [np.empty_like(c) for c in coefs]
            Gb = [np.empty_like(i) for i in intercepts]
            rq = [np.empty(units[l]) for l in range(L)]
        else:  # inference only: the forward pass brings its own buffers
            A, D, GW, Gb = [None] * (L + 1), [None] * (L + 1), [None] * L, [None] * L
            rq = []
        self.A = _PtrArray(A)
        self.D = _PtrArray(D)
        self.GW = _PtrArray(GW)
        self.Gb = _PtrArray(Gb)
        for l in range(len(rq)):
            self.rowsq[l] = <double *>_ptr(rq[l])
        self.keep = rq
        self.net.single = dtype == np.float32
        self.net.n_layers = L
        self.net.units = self.units
        self.net.hidden_act = hidden_act
        self.net.out_act = out_act
        self.net.kernel_id = kernel_id
        self.net.W = self.W.p
        self.net.b = self.b.p
        self.net.A = self.A.p
        self.net.D = self.D.p
        self.net.GW = self.GW.p
        self.net.Gb = self.Gb.p
        self.net.rowsq = self.rowsq

    def __dealloc__(self):
        free(self.units)
        free(self.rowsq)

    def grads(self):
        """Copies of the gradient buffers (valid after an epoch with optimizer "none")."""
        return [a.copy() for a in self.GW.keep], [a.copy() for a in self.Gb.keep]


def train_epoch(list coefs, list intercepts, X, Y, sample_weight, order, Py_ssize_t batch_size, *,
                str hidden="relu", str output="softmax", str optimizer="adam", double lr=1e-3,
                double momentum=0.9, bint nesterov=True, double beta1=0.9, double beta2=0.999,
                double epsilon=1e-8, double alpha=0.0, long long t=0, list moments=None,
                Tuner tuner=None, int kernel_id=0, bint return_grads=False):
    """One pass of mini-batch training over the rows of X, updating coefs and intercepts in place.

    coefs[l] (units[l] x units[l+1]) and intercepts[l] are C-contiguous float32 or float64 like
    X (n x units[0], rows may be strided) and Y (n x units[L]); sample_weight (n,) or None; order
    (m,) int64 rows of X to train on, in this order, or None (all rows in order); moments: [MW, Mb, VW, Vb] lists shaped as
    the parameters (Adam uses all four, SGD the first two as velocities, "none" nothing); tuner:
    the thread choice (None: one thread).

    Returns (status, loss_sum, rows_done, t[, (coef_grads, intercept_grads)]). status is 0, or
    STATUS_NONFINITE when a batch's loss was not finite (that batch made no update).
    """
    if not isinstance(X, np.ndarray):
        raise TypeError(f"parml mlp kernel: X must be a numpy array, got {type(X).__name__}")
    cdef Py_ssize_t n = X.shape[0], L = len(coefs)
    dtype = X.dtype
    if dtype != np.float32 and dtype != np.float64:
        raise TypeError(f"parml mlp kernel: X must be float32 or float64, got {dtype}")
    if X.ndim != 2 or X.strides[1] != X.itemsize or X.strides[0] % X.itemsize:
        raise ValueError("parml mlp kernel: X must be 2-D with contiguous rows")
    if L < 1:
        raise ValueError("parml mlp kernel: need at least one layer")
    units = [X.shape[1]] + [c.shape[1] if isinstance(c, np.ndarray) and c.ndim == 2 else -1
                            for c in coefs]
    _check_params(coefs, intercepts, units, dtype, True)
    _check(Y, (n, units[L]), dtype, "Y")
    if sample_weight is not None:
        _check(sample_weight, (n,), dtype, "sample_weight")
    cdef Py_ssize_t rows = n
    if order is not None:
        if not isinstance(order, np.ndarray) or order.ndim != 1:
            raise ValueError("parml mlp kernel: order must be a 1-D int64 array")
        _check(order, (order.shape[0],), np.int64, "order")
        rows = order.shape[0]
        if rows and (order.min() < 0 or order.max() >= n):
            raise ValueError("parml mlp kernel: order holds rows out of range")
    if batch_size < 1:
        raise ValueError(f"parml mlp kernel: batch_size must be >= 1, got {batch_size}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"parml mlp kernel: unknown optimizer {optimizer!r}")
    cdef int kind = OPTIMIZERS[optimizer]
    if kind != PARML_OPT_NONE:
        if moments is None or len(moments) != 4:
            raise ValueError("parml mlp kernel: moments must be [MW, Mb, VW, Vb]")
        for j in range(2 if kind == PARML_OPT_SGD else 4):
            ref = coefs if j % 2 == 0 else intercepts
            if len(moments[j]) != L:
                raise ValueError("parml mlp kernel: one moment array per layer")
            for l in range(L):
                _check(moments[j][l], ref[l].shape, dtype, f"moments[{j}][{l}]")
            _check_writable(moments[j], f"moments[{j}]")
    batch_size = max(1, min(batch_size, rows))
    cdef _Net net = _Net(coefs, intercepts, _act(hidden, HIDDEN, "hidden"),
                         _act(output, OUTPUTS, "output"), kernel_id, batch_size)
    empty = [None] * L
    cdef _PtrArray MW = _PtrArray(moments[0] if kind != PARML_OPT_NONE else empty)
    cdef _PtrArray Mb = _PtrArray(moments[1] if kind != PARML_OPT_NONE else empty)
    cdef _PtrArray VW = _PtrArray(moments[2] if kind == PARML_OPT_ADAM else empty)
    cdef _PtrArray Vb = _PtrArray(moments[3] if kind == PARML_OPT_ADAM else empty)
    cdef parml_mlp_opt_any opt
    opt.kind = kind
    opt.lr, opt.momentum, opt.nesterov = lr, momentum, nesterov
    opt.beta1, opt.beta2, opt.eps, opt.alpha = beta1, beta2, epsilon, alpha
    opt.t = t
    opt.MW, opt.Mb = (MW.p if kind != PARML_OPT_NONE else NULL), (Mb.p if kind != PARML_OPT_NONE else NULL)
    opt.VW, opt.Vb = (VW.p if kind == PARML_OPT_ADAM else NULL), (Vb.p if kind == PARML_OPT_ADAM else NULL)
    cdef parml_mlp_batch_any data
    data.X = _ptr(X)
    data.ldx = X.strides[0] // X.itemsize
    data.Y = _ptr(Y)
    data.ldy = units[L]
    data.sw = _ptr(sample_weight) if sample_weight is not None else NULL
    data.idx = <const int64_t *>_ptr(order) if order is not None else NULL
    data.start = 0
    data.bn = 0
    row_loss = np.empty(batch_size)
    cdef double *rl = <double *>_ptr(row_loss)
    cdef double loss_sum = 0
    cdef ptrdiff_t done = 0
    cdef int rc
    if tuner is None:
        tuner = Tuner(1, "batches")
    with nogil:
        rc = parml_mlp_epoch_any(&net.net, &opt, &data, rows, batch_size, rl, &loss_sum, &done,
                                 &tuner.t, parallel_for)
    if rc == PARML_MLP_NOMEM:
        raise MemoryError("parml mlp: could not allocate GEMM packing buffers")
    if return_grads:
        return rc, loss_sum, done, opt.t, net.grads()
    return rc, loss_sum, done, opt.t


def forward(list coefs, list intercepts, X, str hidden="relu", str output="identity", *,
            int n_threads=1, int kernel_id=0, out=None):
    """The network's output activations for the rows of X (n x units[0]): (n x units[L])."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"parml mlp kernel: X must be a numpy array, got {type(X).__name__}")
    cdef Py_ssize_t n = X.shape[0]
    dtype = X.dtype
    if dtype != np.float32 and dtype != np.float64:
        raise TypeError(f"parml mlp kernel: X must be float32 or float64, got {dtype}")
    if X.ndim != 2 or X.strides[1] != X.itemsize or X.strides[0] % X.itemsize:
        raise ValueError("parml mlp kernel: X must be 2-D with contiguous rows")
    units = [X.shape[1]] + [c.shape[1] if isinstance(c, np.ndarray) and c.ndim == 2 else -1
                            for c in coefs]
    _check_params(coefs, intercepts, units, dtype, False)
    L = len(coefs)
    if out is None:
        out = np.empty((n, units[L]), dtype=dtype)
    _check(out, (n, units[L]), dtype, "out")
    _check_writable([out], "out")
    cdef _Net net = _Net(coefs, intercepts, _act(hidden, HIDDEN, "hidden"),
                         _act(output, OUTPUTS, "output"), kernel_id, 0)
    cdef const void *xp = _ptr(X)
    cdef void *op = _ptr(out)
    cdef ptrdiff_t ldx = X.strides[0] // X.itemsize
    cdef ptrdiff_t chunk = FORWARD_CHUNK
    cdef int rc
    with nogil:
        rc = parml_mlp_forward_any(&net.net, xp, ldx, n, op, chunk, n_threads, parallel_for)
    if rc == PARML_MLP_NOMEM:
        raise MemoryError("parml mlp: could not allocate inference buffers")
    return out


# ---- element-wise pieces, exposed for tests -----------------------------------------------------

def bias_act(floating[:, ::1] Z,             # INOUT rows x n
             const floating[::1] b,          # IN    n
             str act):
    """Z <- act(Z + b) row by row (softmax normalises each row)."""
    if b.shape[0] != Z.shape[1]:
        raise ValueError("bias_act: b must have Z.shape[1] entries")
    cdef int a = _act(act, tuple(ACTIVATIONS), "")
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            parml_mlp_bias_act_s(&Z[0, 0], Z.shape[0], Z.shape[1], &b[0], a)
        else:
            parml_mlp_bias_act_d(&Z[0, 0], Z.shape[0], Z.shape[1], &b[0], a)


def act_grad(floating[:, ::1] D,             # INOUT rows x n
             const floating[:, ::1] A,       # IN    rows x n, the activation's output
             str act):
    """D <- D * act'(.) with the derivative written in terms of the activation's output A."""
    if D.shape[0] != A.shape[0] or D.shape[1] != A.shape[1]:
        raise ValueError("act_grad: D and A must have the same shape")
    cdef int a = _act(act, tuple(ACTIVATIONS), "")
    if D.shape[0] == 0 or D.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            parml_mlp_act_grad_s(&D[0, 0], &A[0, 0], D.shape[0] * D.shape[1], a)
        else:
            parml_mlp_act_grad_d(&D[0, 0], &A[0, 0], D.shape[0] * D.shape[1], a)


def loss_delta(floating[:, ::1] P,           # INOUT rows x n: output activations -> deltas
               const floating[:, ::1] Y,     # IN    rows x n
               const floating[::1] w,        # IN    rows
               str output):
    """Per-row weighted losses (float64, rows); P becomes (P - Y) * w."""
    if Y.shape[0] != P.shape[0] or Y.shape[1] != P.shape[1] or w.shape[0] != P.shape[0]:
        raise ValueError("loss_delta: P, Y and w must agree in shape")
    cdef int a = _act(output, tuple(ACTIVATIONS), "")
    out = np.zeros(P.shape[0])
    cdef double[::1] o = out
    cdef Py_ssize_t i
    if P.shape[1] == 0:
        return out
    with nogil:
        for i in range(P.shape[0]):
            if floating is float:
                o[i] = parml_mlp_loss_delta_s(&P[i, 0], &Y[i, 0], P.shape[1], w[i], a)
            else:
                o[i] = parml_mlp_loss_delta_d(&P[i, 0], &Y[i, 0], P.shape[1], w[i], a)
    return out
