"""The thread-count policy: the one place that turns a user's ``n_threads`` into a count."""
import math
import operator
import os
import threading
from contextlib import contextmanager
from functools import lru_cache

from ._kernels import _openmp

#: Largest explicit thread count accepted; anything above is a mistake, not a request.
MAX_THREADS = 1024


@lru_cache(maxsize=1)
def _cgroup_cpu_limit():
    """CPU quota of this process's cgroup in CPUs (float), or None when unlimited/unknown."""
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max" and int(period) > 0:
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


@lru_cache(maxsize=1)
def available_cpus():
    """CPUs this process may run on: its affinity mask, capped by the cgroup CPU quota.

    Read once per process (kernels ask on every call; a syscall each time would cost more than
    a small product) and again in a forked child."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_limit()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=available_cpus.cache_clear)


def max_threads():
    """What ``n_threads=None`` resolves to.

    The OpenMP runtime's limit (``omp_get_max_threads``: ``OMP_NUM_THREADS``, or a limit set by
    ``threadpoolctl.threadpool_limits``) capped by the CPUs available to this process. An explicit
    ``OMP_NUM_THREADS`` is the user's word and is honoured even above the CPU count.
    """
    omp_max = max(1, _openmp.get_max_threads())
    if _omp_num_threads_set():
        return omp_max
    return min(omp_max, available_cpus())


@lru_cache(maxsize=1)
def _omp_num_threads_set():
    """Whether OMP_NUM_THREADS was set: the OpenMP runtime reads it once, at start-up, so one look
    per process matches it (and saves the ~1 us an environment lookup costs on every kernel
    call)."""
    return bool(os.environ.get("OMP_NUM_THREADS"))


@lru_cache(maxsize=1)
def _blas_controller():
    import scipy.optimize  # noqa: F401  (loads scipy's own OpenBLAS before the libraries are listed)
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


_BLAS_LOCK = threading.Lock()
_blas_users = 0          # fits inside single_threaded_blas right now (any thread)
_blas_limiter = None     # the limit they share; the last one out restores the user's counts


@contextmanager
def single_threaded_blas():
    """Context manager: every BLAS library loaded (numpy's and scipy's OpenBLAS) on one thread.

    Wraps scipy's L-BFGS-B around our fused passes. Its BLAS calls are tiny (a few vectors of the
    model's size), but each one wakes OpenBLAS's workers, which then spin for ~0.1 s on the cores
    our next pass needs: beside a busy core the spinner lands on our thread's core and took
    ~20 ms of every pass from the 4th on (a 1-thread LogisticRegression fit: 377 -> 285 ms with
    this; 2 threads idle: 252 -> 231 ms). The limit is process-wide while it holds, as
    threadpoolctl's always is. Fits in several Python threads share one limit, and the last to
    leave restores the counts from before the first came in (nested threadpoolctl limits left in
    another order would restore a 1). The controller is built once (threadpool_limits costs
    1.3 ms a call, most of it listing the loaded libraries; this costs 10 us)."""
    global _blas_users, _blas_limiter
    with _BLAS_LOCK:
        if _blas_users == 0:
            _blas_limiter = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def effective_n_threads(n_threads=None):
    """Resolve a user's ``n_threads`` to a positive thread count.

    Parameters
    ----------
    n_threads : int or None
        ``None``: all usable threads (see :func:`max_threads`). A positive int: exactly that many
        (at most ``MAX_THREADS``; more than the CPUs available is allowed but only oversubscribes).
        A negative int counts back from the maximum: -1 means all, -2 all but one, never below 1.
        ``0`` is an error.

    Returns
    -------
    int
        Thread count >= 1. Kernels may still run small problems on one thread.
    """
    if n_threads is None:   # max_threads(), inlined: kernels ask on every call
        omp_max = _openmp.get_max_threads()
        if omp_max < 1:
            return 1
        return omp_max if _omp_num_threads_set() else min(omp_max, available_cpus())
    if isinstance(n_threads, bool):
        raise TypeError("n_threads must be an int or None, got a bool")
    try:
        n = operator.index(n_threads)
    except TypeError:
        raise TypeError(
            f"n_threads must be an int or None, got {type(n_threads).__name__}") from None
    if n == 0:
        raise ValueError("n_threads=0 is invalid: use None for all threads, or a non-zero int")
    if n > MAX_THREADS:
        raise ValueError(f"n_threads={n} is more than parml accepts ({MAX_THREADS})")
    if n < 0:
        return max(1, max_threads() + 1 + n)
    return n
