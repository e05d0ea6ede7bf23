"""Machine probes used by the benchmarks: per-thread busy-loop times and the FMA peak."""

from libc.stdlib cimport malloc, free

from libc.stdint cimport uint64_t

from parml._kernels._kernel_sets cimport active_set

cdef extern from "parml/probe.h" nogil:
    void parml_busy_probe(int n_threads, long iters, double *times)
    double parml_fma_peak(int set, long iters)
    double parml_read_probe(const uint64_t *words, Py_ssize_t n, int n_threads, uint64_t *sink)


def busy_probe(int n_threads, long iters):
    """Seconds each of ``n_threads`` threads took for the same fixed busy loop (list of floats)."""
    if n_threads < 1 or iters < 1:
        raise ValueError("busy_probe needs n_threads >= 1 and iters >= 1")
    cdef double *times = <double *>malloc(n_threads * sizeof(double))
    if times == NULL:
        raise MemoryError()
    cdef int i
    try:
        for i in range(n_threads):
            times[i] = -1.0
        with nogil:
            parml_busy_probe(n_threads, iters, times)
        return [times[i] for i in range(n_threads)]
    finally:
        free(times)


def fma_peak(long iters=20_000_000):
    """Measured double-precision FLOP/s of one core with the active kernel set's widest vectors."""
    cdef double r
    cdef int s = active_set()
    with nogil:
        r = parml_fma_peak(s, iters)
    return r


def read_probe(const uint64_t[::1] words,   # IN   the buffer to read (much larger than L3)
               int n_threads):
    """Seconds for n_threads threads to read `words` once (contiguous shares): memory bandwidth."""
    if n_threads < 1:
        raise ValueError("read_probe needs n_threads >= 1")
    cdef uint64_t sink = 0
    cdef double t
    if words.shape[0] == 0:
        return 0.0
    with nogil:
        t = parml_read_probe(&words[0], words.shape[0], n_threads, &sink)
    return t
