"""Machine probes used by the benchmarks: per-thread busy-loop times and the FMA peak."""

from libc.stdlib cimport malloc, free

cdef extern from "parml/probe.h" nogil:
    void parml_busy_probe(int n_threads, long iters, double *times)
    double parml_fma_peak(long iters)


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
    """Measured double-precision FLOP/s of one core (widest FMA available), 0.0 when unknown."""
    cdef double r
    with nogil:
        r = parml_fma_peak(iters)
    return r
