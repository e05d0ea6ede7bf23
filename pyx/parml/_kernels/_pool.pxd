# The parallel-for every parml kernel runs on (include/parml/pool.h): kernels cimport it.
cdef extern from "parml/pool_api.h" nogil:
    ctypedef void (*parml_task_fn)(void *ctx, ptrdiff_t task, int worker) noexcept nogil
    ctypedef int (*parml_parallel_for_fn)(ptrdiff_t ntasks, int n_threads, parml_task_fn fn,
                                          void *ctx) noexcept nogil

cdef int parallel_for(ptrdiff_t ntasks, int n_threads, parml_task_fn fn, void *ctx) noexcept nogil
