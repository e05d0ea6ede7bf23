"""MLP kernels (include/parml/mlp.h): training epochs and inference on parml's GEMM, plus the
element-wise pieces exposed for tests. Callers (parml.neural_network) validate inputs; the
wrappers here re-check only what would make C read or write out of bounds.

Array arguments are typed memoryviews marked IN / OUT / INOUT (Cython checks dtype, dimensions,
C-contiguity and writability on the way in; None only where documented). The per-layer lists
(coefs, intercepts, moments) are viewed once per call, when the C table of their data pointers is
filled (_PtrArray), never per batch."""

import numpy as np

from cython cimport floating
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parallel_for, parml_parallel_for_fn
from parml._kernels._checks cimport within
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
        int hidden_act, out_act, kernel_id, ew_id, share_packs
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
    ctypedef struct parml_mlp_ew_s:
        void (*bias_act)(float *z, ptrdiff_t rows, ptrdiff_t n, const float *b,
                         int act) noexcept nogil
        void (*act_grad)(float *d, const float *a, ptrdiff_t count, int act) noexcept nogil
    ctypedef struct parml_mlp_ew_d:
        void (*bias_act)(double *z, ptrdiff_t rows, ptrdiff_t n, const double *b,
                         int act) noexcept nogil
        void (*act_grad)(double *d, const double *a, ptrdiff_t count, int act) noexcept nogil
    const parml_mlp_ew_s parml_mlp_ew_sets_s[]
    const parml_mlp_ew_d parml_mlp_ew_sets_d[]
    double parml_mlp_loss_delta_s(float *p, const float *y, ptrdiff_t n, float w, int out_act)
    double parml_mlp_loss_delta_d(double *p, const double *y, ptrdiff_t n, double w, int out_act)


ACTIVATIONS = {"identity": PARML_ACT_IDENTITY, "relu": PARML_ACT_RELU, "tanh": PARML_ACT_TANH,
               "logistic": PARML_ACT_LOGISTIC, "softmax": PARML_ACT_SOFTMAX, "exp": PARML_ACT_EXP}
OPTIMIZERS = {"none": PARML_OPT_NONE, "sgd": PARML_OPT_SGD, "adam": PARML_OPT_ADAM}
STATUS_NONFINITE = PARML_MLP_NONFINITE
# rows per inference task: large enough to amortise packing W, small enough to stay in L2
FORWARD_CHUNK = 256


cdef void *_address(a, bint single, int ndim, bint writable, list views) except? NULL:
    """The data of a as a C-contiguous float32 (single) or float64 array of ndim dimensions,
    writable if asked, taken as a typed memoryview (which checks all that) and kept in views."""
    cdef float[::1] fw1
    cdef const float[::1] fr1
    cdef float[:, ::1] fw2
    cdef const float[:, ::1] fr2
    cdef double[::1] dw1
    cdef const double[::1] dr1
    cdef double[:, ::1] dw2
    cdef const double[:, ::1] dr2
    if single and ndim == 1 and writable:
        fw1 = a
        views.append(fw1)
        return &fw1[0] if fw1.shape[0] else NULL
    if single and ndim == 1:
        fr1 = a
        views.append(fr1)
        return <void *>&fr1[0] if fr1.shape[0] else NULL
    if single and writable:
        fw2 = a
        views.append(fw2)
        return &fw2[0, 0] if fw2.shape[0] and fw2.shape[1] else NULL
    if single:
        fr2 = a
        views.append(fr2)
        return <void *>&fr2[0, 0] if fr2.shape[0] and fr2.shape[1] else NULL
    if ndim == 1 and writable:
        dw1 = a
        views.append(dw1)
        return &dw1[0] if dw1.shape[0] else NULL
    if ndim == 1:
        dr1 = a
        views.append(dr1)
        return <void *>&dr1[0] if dr1.shape[0] else NULL
    if writable:
        dw2 = a
        views.append(dw2)
        return &dw2[0, 0] if dw2.shape[0] and dw2.shape[1] else NULL
    dr2 = a
    views.append(dr2)
    return <void *>&dr2[0, 0] if dr2.shape[0] and dr2.shape[1] else NULL


cdef class _PtrArray:
    """A C array of the data pointers of a list of arrays (None: NULL), filled once: each array
    is taken as a typed memoryview (float32 with single, else float64; C-contiguous; writable if
    asked) of the shape given for it, and the views keep the buffers alive while this lives."""
    cdef void **p
    cdef list keep    # the arrays
    cdef list views   # their memoryviews

    def __cinit__(self, list arrays, list shapes, bint single, bint writable, str what):
        self.keep = arrays
        self.views = []
        self.p = <void **>calloc(max(len(arrays), 1), sizeof(void *))
        if self.p == NULL:
            raise MemoryError("parml mlp: could not allocate a pointer table")
        kind = f"C-contiguous{' writable' if writable else ''} {'float32' if single else 'float64'}"
        for i, a in enumerate(arrays):
            if a is None:
                continue
            try:
                self.p[i] = _address(a, single, len(shapes[i]), writable, self.views)
            except (ValueError, TypeError) as e:
                raise type(e)(f"parml mlp kernel: {what}[{i}] must be a {kind} array of shape "
                              f"{shapes[i]}: {e}") from None
            shape = self.views[len(self.views) - 1].shape  # (no wraparound: not [-1])
            if shape != shapes[i]:
                raise ValueError(f"parml mlp kernel: {what}[{i}] must be a {kind} array of shape "
                                 f"{shapes[i]}, got shape {shape}")

    def __dealloc__(self):
        free(self.p)


HIDDEN = ("identity", "relu", "tanh", "logistic")
OUTPUTS = ("identity", "logistic", "softmax", "exp")


def _act(name, allowed, what):
    if name not in allowed:
        raise ValueError(f"parml mlp kernel: {what + ' ' if what else ''}activation must be one of "
                         f"{allowed}, got {name!r}")
    return ACTIVATIONS[name]


cdef list _units(Py_ssize_t d, list coefs, list intercepts):
    """The layer widths: d inputs, then each coef's columns (-1 where a coef is not 2-D)."""
    cdef Py_ssize_t L = len(coefs)
    if L < 1 or len(intercepts) != L:
        raise ValueError("parml mlp kernel: need one coef and one intercept array per layer")
    return [d] + [c.shape[1] if getattr(c, "ndim", 0) == 2 else -1 for c in coefs]


cdef int _check_set(int kernel_id, str what) except -1:
    if not 0 <= kernel_id < PARML_N_KERNELS or not parml_set_supported(kernel_id):
        raise ValueError(f"parml mlp kernel: {what} {kernel_id} is not a kernel set this CPU "
                         f"supports")
    return 0


cdef class _Net:
    """The C view of one network plus the scratch buffers one batch of `rows` needs. Takes the
    parameters (writable for training) as views once, checking dtype, shape and layout."""
    cdef parml_mlp_net_any net
    cdef ptrdiff_t *units
    cdef _PtrArray W, b, A, D, GW, Gb, RQ

    def __cinit__(self, list coefs, list intercepts, list units, bint single, bint writable,
                  int hidden_act, int out_act, int kernel_id, Py_ssize_t rows,
                  int elementwise_id=-1):
        L = len(coefs)
        wshape = [(units[l], units[l + 1]) for l in range(L)]
        bshape = [(units[l + 1],) for l in range(L)]
        self.W = _PtrArray(coefs, wshape, single, writable, "coefs")
        self.b = _PtrArray(intercepts, bshape, single, writable, "intercepts")
        if min(units) < 1:
            raise ValueError(f"parml mlp kernel: every layer needs at least one unit, got {units}")
        _check_set(kernel_id, "kernel id")
        if elementwise_id < 0:
            elementwise_id = kernel_id
        _check_set(elementwise_id, "elementwise_id")
        self.units = <ptrdiff_t *>calloc(L + 1, sizeof(ptrdiff_t))
        if self.units == NULL:
            raise MemoryError("parml mlp: could not allocate the network description")
        for l in range(L + 1):
            self.units[l] = units[l]
        dtype = np.float32 if single else np.float64
        ashape = [(rows, u) for u in units]
        if rows > 0:  # training scratch: activations, deltas, gradients, row norms
            A = [np.empty(s, dtype=dtype) for s in ashape]
            D = [None] + [np.empty(s, dtype=dtype) for s in ashape[1:L]] + [A[L]]
            GW = [np.empty(s, dtype=dtype) for s in wshape]
            Gb = [np.empty(s, dtype=dtype) for s in bshape]
            rq = [np.empty(units[l]) for l in range(L)]
        else:  # inference only: the forward pass brings its own buffers
            A, D, GW, Gb = [None] * (L + 1), [None] * (L + 1), [None] * L, [None] * L
            rq = [None] * L
        self.A = _PtrArray(A, ashape, single, True, "A")
        self.D = _PtrArray(D, ashape, single, True, "D")
        self.GW = _PtrArray(GW, wshape, single, True, "GW")
        self.Gb = _PtrArray(Gb, bshape, single, True, "Gb")
        self.RQ = _PtrArray(rq, [(units[l],) for l in range(L)], False, True, "rowsq")
        self.net.single = single
        self.net.n_layers = L
        self.net.units = self.units
        self.net.hidden_act = hidden_act
        self.net.out_act = out_act
        self.net.kernel_id = kernel_id
        self.net.ew_id = elementwise_id
        self.net.share_packs = 1
        self.net.W = self.W.p
        self.net.b = self.b.p
        self.net.A = self.A.p
        self.net.D = self.D.p
        self.net.GW = self.GW.p
        self.net.Gb = self.Gb.p
        self.net.rowsq = <double **>self.RQ.p

    def __dealloc__(self):
        free(self.units)

    def grads(self):
        """Copies of the gradient buffers (valid after an epoch with optimizer "none")."""
        return [a.copy() for a in self.GW.keep], [a.copy() for a in self.Gb.keep]


cdef int _check_rows(const floating[:, :] X) except -1:
    """X's rows are contiguous and a whole number of elements apart."""
    if X.strides[1] != sizeof(floating) or X.strides[0] % sizeof(floating):
        raise ValueError("parml mlp kernel: X must be 2-D with contiguous rows")
    return 0


def train_epoch(list coefs,                         # INOUT L float arrays units[l] x units[l+1]
                list intercepts,                    # INOUT L float arrays units[l+1]
                const floating[:, :] X not None,    # IN    n x units[0], rows contiguous
                const floating[:, ::1] Y not None,  # IN    n x units[L] targets
                const floating[::1] sample_weight,  # IN    n, or None
                const int64_t[::1] order,           # IN    m rows to train on, or None (all)
                Py_ssize_t batch_size, *,
                str hidden="relu", str output="softmax", str optimizer="adam", double lr=1e-3,
                double momentum=0.9, bint nesterov=True, double beta1=0.9, double beta2=0.999,
                double epsilon=1e-8, double alpha=0.0, long long t=0,
                list moments=None,                  # INOUT [MW, Mb, VW, Vb], or None ("none")
                Tuner tuner=None, int kernel_id=0, bint return_grads=False,
                int elementwise_id=-1, bint share_packs=True):
    """One pass of mini-batch training over the rows of X, updating coefs and intercepts in place.

    coefs[l] (units[l] x units[l+1]) and intercepts[l] are C-contiguous float32 or float64 like
    X (n x units[0], rows may be strided) and Y (n x units[L]); sample_weight (n,) or None; order
    (m,) int64 rows of X to train on, in this order, or None (all rows in order); moments: [MW, Mb, VW, Vb] lists shaped as
    the parameters (Adam uses all four, SGD the first two as velocities, "none" nothing); tuner:
    the thread choice (None: one thread); elementwise_id: the kernel set whose variant of the
    element-wise pieces runs (-1: kernel_id's; every variant gives bitwise the same results);
    share_packs: False makes every product pack its own operands, as when memory for the copies
    that steps share is short (the same results).

    Returns (status, loss_sum, rows_done, t[, (coef_grads, intercept_grads)]). status is 0, or
    STATUS_NONFINITE when a batch's loss was not finite (that batch made no update).
    """
    cdef Py_ssize_t n = X.shape[0], L = len(coefs)
    cdef bint single = floating is float
    _check_rows(X)
    units = _units(X.shape[1], coefs, intercepts)
    if Y.shape[0] != n or Y.shape[1] != units[L]:
        raise ValueError(f"parml mlp kernel: Y must have shape ({n}, {units[L]}) (X's rows x "
                         f"outputs), got ({Y.shape[0]}, {Y.shape[1]})")
    if sample_weight is not None and sample_weight.shape[0] != n:
        raise ValueError(f"parml mlp kernel: sample_weight needs one entry per row of X ({n}), "
                         f"got {sample_weight.shape[0]}")
    cdef Py_ssize_t rows = n if order is None else order.shape[0]
    if order is not None and not within(order, 0, n):
        raise ValueError("parml mlp kernel: order holds rows out of range")
    if batch_size < 1:
        raise ValueError(f"parml mlp kernel: batch_size must be >= 1, got {batch_size}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"parml mlp kernel: unknown optimizer {optimizer!r}")
    cdef int kind = OPTIMIZERS[optimizer]
    cdef int used = 0 if kind == PARML_OPT_NONE else 2 if kind == PARML_OPT_SGD else 4
    if used and (moments is None or len(moments) != 4):
        raise ValueError("parml mlp kernel: moments must be [MW, Mb, VW, Vb]")
    for j in range(used):
        if len(moments[j]) != L:
            raise ValueError("parml mlp kernel: one moment array per layer")
    batch_size = max(1, min(batch_size, rows))
    cdef _Net net = _Net(coefs, intercepts, units, single, True, _act(hidden, HIDDEN, "hidden"),
                         _act(output, OUTPUTS, "output"), kernel_id, batch_size, elementwise_id)
    net.net.share_packs = share_packs
    wshape = [(units[l], units[l + 1]) for l in range(L)]
    bshape = [(units[l + 1],) for l in range(L)]
    empty = [None] * L
    cdef _PtrArray MW = _PtrArray(moments[0] if used else empty, wshape, single, True,
                                  "moments[0]")
    cdef _PtrArray Mb = _PtrArray(moments[1] if used else empty, bshape, single, True,
                                  "moments[1]")
    cdef _PtrArray VW = _PtrArray(moments[2] if used == 4 else empty, wshape, single, True,
                                  "moments[2]")
    cdef _PtrArray Vb = _PtrArray(moments[3] if used == 4 else empty, bshape, single, True,
                                  "moments[3]")
    cdef parml_mlp_opt_any opt
    opt.kind = kind
    opt.lr, opt.momentum, opt.nesterov = lr, momentum, nesterov
    opt.beta1, opt.beta2, opt.eps, opt.alpha = beta1, beta2, epsilon, alpha
    opt.t = t
    opt.MW, opt.Mb = (MW.p if used else NULL), (Mb.p if used else NULL)
    opt.VW, opt.Vb = (VW.p if used == 4 else NULL), (Vb.p if used == 4 else NULL)
    cdef parml_mlp_batch_any data
    data.X = &X[0, 0] if n else NULL
    data.ldx = X.strides[0] // sizeof(floating)
    data.Y = &Y[0, 0] if n else NULL
    data.ldy = units[L]
    data.sw = &sample_weight[0] if sample_weight is not None and n else NULL
    data.idx = &order[0] if order is not None and rows else NULL
    data.start = 0
    data.bn = 0
    cdef double[::1] row_loss = np.empty(batch_size)
    cdef double loss_sum = 0
    cdef ptrdiff_t done = 0
    cdef int rc
    if tuner is None:
        tuner = Tuner(1, "batches")
    with nogil:
        rc = parml_mlp_epoch_any(&net.net, &opt, &data, rows, batch_size, &row_loss[0],
                                 &loss_sum, &done, &tuner.t, parallel_for)
    if rc == PARML_MLP_NOMEM:
        raise MemoryError("parml mlp: could not allocate GEMM packing buffers")
    if return_grads:
        return rc, loss_sum, done, opt.t, net.grads()
    return rc, loss_sum, done, opt.t


def forward(list coefs,                       # IN   L float arrays units[l] x units[l+1]
            list intercepts,                  # IN   L float arrays units[l+1]
            const floating[:, :] X not None,  # IN   n x units[0], rows contiguous
            str hidden="relu", str output="identity", *,
            int n_threads=1, int kernel_id=0,
            floating[:, ::1] out=None):       # OUT  n x units[L], or None (allocated)
    """The network's output activations for the rows of X (n x units[0]): (n x units[L])."""
    cdef Py_ssize_t n = X.shape[0]
    cdef bint single = floating is float
    _check_rows(X)
    units = _units(X.shape[1], coefs, intercepts)
    L = len(coefs)
    result = None
    if out is None:
        out = result = np.empty((n, units[L]), dtype=np.float32 if single else np.float64)
    elif out.shape[0] != n or out.shape[1] != units[L]:
        raise ValueError(f"parml mlp kernel: out must have shape ({n}, {units[L]}) (X's rows x "
                         f"outputs), got ({out.shape[0]}, {out.shape[1]})")
    else:
        result = out.base
    cdef _Net net = _Net(coefs, intercepts, units, single, False, _act(hidden, HIDDEN, "hidden"),
                         _act(output, OUTPUTS, "output"), kernel_id, 0)
    cdef ptrdiff_t ldx = X.strides[0] // sizeof(floating)
    cdef ptrdiff_t chunk = FORWARD_CHUNK
    cdef int rc = PARML_MLP_OK
    if n:
        with nogil:
            rc = parml_mlp_forward_any(&net.net, &X[0, 0], ldx, n, &out[0, 0], chunk, n_threads,
                                       parallel_for)
    if rc == PARML_MLP_NOMEM:
        raise MemoryError("parml mlp: could not allocate inference buffers")
    return result


# ---- element-wise pieces, exposed for tests -----------------------------------------------------

def bias_act(floating[:, ::1] Z,             # INOUT rows x n
             const floating[::1] b,          # IN    n
             str act, int kernel_id=0):
    """Z <- act(Z + b) row by row (softmax normalises each row), with kernel set kernel_id's
    variant."""
    if b.shape[0] != Z.shape[1]:
        raise ValueError("bias_act: b must have Z.shape[1] entries")
    cdef int a = _act(act, tuple(ACTIVATIONS), "")
    _check_set(kernel_id, "kernel id")
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            parml_mlp_ew_sets_s[kernel_id].bias_act(&Z[0, 0], Z.shape[0], Z.shape[1], &b[0], a)
        else:
            parml_mlp_ew_sets_d[kernel_id].bias_act(&Z[0, 0], Z.shape[0], Z.shape[1], &b[0], a)


def act_grad(floating[:, ::1] D,             # INOUT rows x n
             const floating[:, ::1] A,       # IN    rows x n, the activation's output
             str act, int kernel_id=0):
    """D <- D * act'(.) with the derivative written in terms of the activation's output A, with
    kernel set kernel_id's variant."""
    if D.shape[0] != A.shape[0] or D.shape[1] != A.shape[1]:
        raise ValueError("act_grad: D and A must have the same shape")
    cdef int a = _act(act, tuple(ACTIVATIONS), "")
    _check_set(kernel_id, "kernel id")
    if D.shape[0] == 0 or D.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            parml_mlp_ew_sets_s[kernel_id].act_grad(&D[0, 0], &A[0, 0], D.shape[0] * D.shape[1], a)
        else:
            parml_mlp_ew_sets_d[kernel_id].act_grad(&D[0, 0], &A[0, 0], D.shape[0] * D.shape[1], a)


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
