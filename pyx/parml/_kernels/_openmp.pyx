"""What OpenMP this build has: compiled in or not, and the runtime's current thread limit."""

cdef extern from "parml/omp_shim.h" nogil:
    int omp_get_max_threads()
    int parml_openmp_enabled()
    int parml_team_size(int n_threads)


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (False: a serial build)."""
    return bool(parml_openmp_enabled())


def get_max_threads():
    """omp_get_max_threads(): OMP_NUM_THREADS or the runtime default, as limited by threadpoolctl."""
    return omp_get_max_threads()


def team_size(int n_threads):
    """Number of threads a kernel's parallel region actually gets when asked for ``n_threads``."""
    cdef int size = 0
    with nogil:
        size = parml_team_size(n_threads)
    return size
