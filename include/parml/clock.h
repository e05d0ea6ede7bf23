/* parml_now(): seconds on a monotonic clock, for the thread tuner (tuner.h) and the probes and
 * C benchmarks (probe.h). */
#ifndef PARML_CLOCK_H
#define PARML_CLOCK_H

#include <time.h>

static inline double parml_now(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    timespec_get(&ts, TIME_UTC);
#endif
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
