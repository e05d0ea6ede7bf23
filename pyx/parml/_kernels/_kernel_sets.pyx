"""The process-wide kernel set (include/parml/kernel_sets.h): one id that every kernel family's
table is indexed by. parml._isa sets it once at import from PARML_ISA and the CPU's features."""

cdef extern from "parml/kernel_sets.h" nogil:
    int PARML_N_SETS
    int PARML_CHOOSE_OK, PARML_CHOOSE_UNKNOWN, PARML_CHOOSE_UNSUPPORTED
    const char *parml_set_names[]
    int parml_set_supported(int s)
    int parml_set_best()
    int parml_set_choose(const char *value, int *status)
    int parml_cpu_features()
    int PARML_CPU_AVX2_FMA, PARML_CPU_AVX512, PARML_CPU_NEON

cdef int ACTIVE = parml_set_best()


cdef int active_set() noexcept nogil:
    return ACTIVE


NAMES = tuple(parml_set_names[i].decode() for i in range(PARML_N_SETS))
CHOOSE_STATUS = {PARML_CHOOSE_OK: "ok", PARML_CHOOSE_UNKNOWN: "unknown",
                 PARML_CHOOSE_UNSUPPORTED: "unsupported"}


def supported(int set_id):
    """Whether this build, on this CPU, can run kernel set ``set_id``."""
    return bool(0 <= set_id < PARML_N_SETS and parml_set_supported(set_id))


def best():
    """Id of the best set this CPU supports."""
    return parml_set_best()


def choose(str value):
    """(set id, status) for a PARML_ISA value: status "ok", "unknown" (a name no set has) or
    "unsupported" (a set this CPU or build lacks); the id is always a supported set."""
    cdef int status = 0
    cdef bytes raw = value.encode()
    cdef int sid = parml_set_choose(raw, &status)
    return sid, CHOOSE_STATUS[status]


def active():
    """Id of the set in use."""
    return ACTIVE


def set_active(int set_id):
    """Use set ``set_id`` from the next kernel call on (a supported set; parml._isa checks)."""
    global ACTIVE
    if not (0 <= set_id < PARML_N_SETS and parml_set_supported(set_id)):
        raise ValueError(f"kernel set id {set_id} is not supported on this CPU")
    ACTIVE = set_id


def cpu_features():
    """The CPU features the kernel sets depend on, as detected at run time."""
    cdef int f = parml_cpu_features()
    return {"avx2_fma": bool(f & PARML_CPU_AVX2_FMA), "avx512": bool(f & PARML_CPU_AVX512),
            "neon": bool(f & PARML_CPU_NEON)}
