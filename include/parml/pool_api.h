/* The parallel-for interface kernels are written against (implemented once, in pool.h, by the
 * parml._kernels._pool module; other modules receive it as a function pointer). */
#ifndef PARML_POOL_API_H
#define PARML_POOL_API_H

#include <stddef.h>

/* One task: ctx is the kernel's argument block, task in [0, ntasks), worker in [0, n_threads)
 * unique among the threads running this job at the same time (index of per-worker scratch). */
typedef void (*parml_task_fn)(void *ctx, ptrdiff_t task, int worker);

typedef int (*parml_parallel_for_fn)(ptrdiff_t ntasks, int n_threads, parml_task_fn fn, void *ctx);

#endif
