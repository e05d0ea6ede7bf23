/* OpenMP shim: the real runtime when compiled with OpenMP, serial stand-ins otherwise, so every
 * kernel compiles either way (setup.py warns loudly when it has to build serial). */
#ifndef PARML_OMP_SHIM_H
#define PARML_OMP_SHIM_H

#ifdef _OPENMP
#include <omp.h>
#define PARML_HAVE_OPENMP 1
#else
#define PARML_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

static inline int parml_openmp_enabled(void) { return PARML_HAVE_OPENMP; }

/* Size of the team a parallel region asking for n_threads gets (what kernels will run on). */
static inline int parml_team_size(int n_threads)
{
    int size = 1;
    #pragma omp parallel num_threads(n_threads)
    {
        #pragma omp single
        size = omp_get_num_threads();
    }
    return size;
}

#endif
