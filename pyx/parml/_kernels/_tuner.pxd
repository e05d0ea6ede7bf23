from libc.stdint cimport int64_t


cdef extern from "parml/tuner.h" nogil:
    ctypedef struct parml_tuner_plan:
        int probe
        int skip_first
        int64_t warmup, exploit, exploit_max
        int watch
        int fastest
        int64_t exploit_one
        double wake_s
        double one_max_s
        int64_t one_min
    ctypedef struct parml_tuner:
        parml_tuner_plan plan
        int n_max, adapt, phase
        int64_t count, exploit
        int best
        double t_many, t_one, hint_one
        int64_t switches, units_many, units_one
    parml_tuner_plan PARML_TUNER_ITERATIONS
    parml_tuner_plan PARML_TUNER_BATCHES
    parml_tuner_plan PARML_TUNER_CALLS
    parml_tuner_plan PARML_TUNER_LAYOUTS
    double parml_now()
    void parml_tuner_init(parml_tuner *t, int n_max, int adapt, parml_tuner_plan plan)
    int parml_tuner_threads(parml_tuner *t)
    void parml_tuner_record(parml_tuner *t, double seconds)
    void parml_tuner_record_as(parml_tuner *t, double value, double elapsed)
    void parml_tuner_hint_one(parml_tuner *t, double seconds)
    double PARML_TUNER_HINT_MARGIN
    double PARML_TUNER_WAKE_SHARE


cdef class Tuner:
    cdef parml_tuner t
    cdef readonly str plan
