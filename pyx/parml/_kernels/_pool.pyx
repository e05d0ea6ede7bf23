"""parml's task pool (include/parml/pool.h): the one parallel-for of every kernel, in which the
caller never waits for a helper thread that has not started."""

from libc.stdint cimport int64_t, uint64_t

cdef extern from "parml/pool.h" nogil:
    int parml_parallel_for(ptrdiff_t ntasks, int n_threads, parml_task_fn fn, void *ctx)
    uint64_t parml_pool_spin_for(uint64_t gap_ns)
    uint64_t parml_pool_spin_ns()
    uint64_t PARML_POOL_SPIN_MIN_NS, PARML_POOL_SPIN_MAX_NS


SPIN_MIN_NS = PARML_POOL_SPIN_MIN_NS
SPIN_MAX_NS = PARML_POOL_SPIN_MAX_NS


def spin_for(uint64_t gap_ns):
    """How long helpers spin after a job that came gap_ns after the previous one ended."""
    return parml_pool_spin_for(gap_ns)


def _spin_ns():
    """The spin the last parallel job gave its helpers (for tests of the pool)."""
    return parml_pool_spin_ns()


cdef int parallel_for(ptrdiff_t ntasks, int n_threads, parml_task_fn fn, void *ctx) noexcept nogil:
    """Run fn(ctx, task, worker) for every task in [0, ntasks) on up to n_threads threads."""
    return parml_parallel_for(ntasks, n_threads, fn, ctx)


ctypedef struct _ProbeCtx:
    int64_t *task_worker
    int64_t *task_count
    long spin


cdef void _probe_task(void *ctx, ptrdiff_t task, int worker) noexcept nogil:
    cdef _ProbeCtx *c = <_ProbeCtx *>ctx
    cdef long i
    cdef volatile double x = 0
    for i in range(c.spin):
        x += 1.0
    c.task_worker[task] = worker
    c.task_count[task] += 1


def run_probe_tasks(int64_t[::1] task_worker,   # OUT  worker that ran each task
                    int64_t[::1] task_count,    # INOUT times each task ran (+1 each)
                    int n_threads, long spin=0):
    """Run len(task_worker) trivial tasks through the pool (for tests of the pool itself)."""
    cdef _ProbeCtx c
    cdef int rc
    if task_worker.shape[0] != task_count.shape[0] or n_threads < 1 or spin < 0:
        raise ValueError("run_probe_tasks: arrays of equal length, n_threads >= 1, spin >= 0")
    c.task_worker = &task_worker[0] if task_worker.shape[0] else NULL
    c.task_count = &task_count[0] if task_count.shape[0] else NULL
    c.spin = spin
    with nogil:
        rc = parallel_for(task_worker.shape[0], n_threads, _probe_task, &c)
    return rc
