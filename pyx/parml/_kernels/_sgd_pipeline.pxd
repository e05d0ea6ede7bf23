# The shuffled per-sample SGD epoch pipelined on 2 threads (_sgd_pipeline.pyx), for _sgd.pyx:
# the calling thread steps, a second thread gathers upcoming rows into a ring. It knows nothing
# of SGD's update rule: the caller hands it the step over a range of rows.
from parml._kernels._linear_api cimport LinCtx

# Steps rows [lo, hi) of the visiting order of the LinCtx that sgd_pipelined was given (its X,
# ldx, y, sw and idx say where the rows are), prefetching rows of the order up to pf_hi (past
# hi: the next rows to be stepped); returns acc + the rows' losses, added one by one.
ctypedef double (*pipe_step_fn)(void *stepper, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t pf_hi,
                                double acc) noexcept nogil

cdef enum:
    PIPE_MAX_ROW_BYTES = 16384  # wider rows are not pipelined
    # Data under 12 MiB is not pipelined: its rows' random reads mostly hit L3 (32 MiB here); 2
    # threads / 1 measured 1.0-1.07 at 8-10 MB, 0.83-0.88 at 12-16 MB, 0.56-0.75 from 24 MB.
    PIPE_MIN_BYTES = 12582912

    # Test modes (sgd_epoch's _pipe_test_mode), which make each way of reading a block
    # deterministic; production runs PIPE_RACE.
    PIPE_RACE = 0               # the gatherer and the stepper claim blocks as they get to them
    PIPE_ALL_FROM_X = 1         # the gatherer does nothing: every block straight from X
    PIPE_ALL_FROM_RING = 2      # as 1, and the stepper copies each free block into the ring and
                                # steps it from there (the ring path, deterministically)
    PIPE_STEP_AFTER_JOB = 3     # as 1, and the caller steps only after the pool job (as when a
                                # helper took both tasks)
    PIPE_FILL_THEN_STEP = 4     # the caller steps only after the job, and the gatherer fills the
                                # ring first (stopping, not waiting, once it is a ring ahead):
                                # blocks from PIPE_AHEAD to the ring's end come from the ring,
                                # the others from X
    PIPE_N_MODES = 5

# The shuffled epoch over the n rows of `order` that c points at, stepped by step(stepper, ...)
# on the calling thread with a gatherer on a second one; adds the losses to sumloss[0] in
# visiting order. Returns 0, or -1 (thread pool). c's row pointers are restored before it returns.
cdef int sgd_pipelined(LinCtx *c, const Py_ssize_t *order, Py_ssize_t n, pipe_step_fn step,
                       void *stepper, int test_mode, double *sumloss) noexcept nogil
