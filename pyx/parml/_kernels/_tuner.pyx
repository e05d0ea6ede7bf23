"""The thread tuner (include/parml/tuner.h) for Python loops: which of n threads and one to run
the next unit of repeated work on, by timing the units. The MLP epoch uses the same struct from
C (it cimports Tuner and passes its state)."""

cdef parml_tuner_plan _plan(str name) except *:
    if name == "iterations":
        return PARML_TUNER_ITERATIONS
    if name == "batches":
        return PARML_TUNER_BATCHES
    if name == "calls":
        return PARML_TUNER_CALLS
    if name == "layouts":
        return PARML_TUNER_LAYOUTS
    raise ValueError(f"Tuner: plan must be one of {PLANS}, got {name!r}")


PLANS = ("iterations", "batches", "calls", "layouts")
HINT_MARGIN = PARML_TUNER_HINT_MARGIN
WAKE_SHARE = PARML_TUNER_WAKE_SHARE


def _plan_fields(str name):
    """A plan's constants, as tuner.h defines them (for tests and reports)."""
    cdef parml_tuner_plan p = _plan(name)
    return {"probe": p.probe, "skip_first": bool(p.skip_first), "warmup": p.warmup,
            "exploit": p.exploit, "exploit_max": p.exploit_max, "watch": bool(p.watch),
            "fastest": bool(p.fastest), "exploit_one": p.exploit_one, "wake_s": p.wake_s,
            "one_max_s": p.one_max_s, "one_min": p.one_min}


def _restore(n_threads, plan, adapt, hint_one):
    t = Tuner(n_threads, plan, adapt)
    t.hint_one(hint_one)
    return t


cdef class Tuner:
    """Tuner(n_threads, plan, adapt=True): plan is "iterations" (boosting iterations),
    "batches" (MLP batches), "calls" (L-BFGS passes, small products) or "layouts" (long
    products: threads() == n_threads means one task per thread, 1 the split into more tasks);
    adapt=False, or one thread, always gives n_threads.

        nt = tuner.threads(); ...run the unit on nt threads...; tuner.record(seconds)
    """

    def __init__(self, int n_threads, str plan="iterations", bint adapt=True):
        parml_tuner_init(&self.t, n_threads, adapt, _plan(plan))
        self.plan = plan

    def __reduce__(self):   # a pickled estimator's tuner starts afresh, keeping its hint
        return (_restore, (self.t.n_max, self.plan, bool(self.t.adapt), self.t.hint_one))

    @property
    def n_threads(self):
        return self.t.n_max

    @property
    def best(self):
        return self.t.best

    @property
    def switches(self):
        return self.t.switches

    @property
    def exploit(self):
        return self.t.exploit

    def threads(self):
        """Threads for the next unit."""
        return parml_tuner_threads(&self.t)

    def record(self, double seconds, elapsed=None):
        """Seconds the unit just run took, on the count threads() gave. For work of varying
        size, ``seconds`` may be a normalised time (seconds per FLOP) and ``elapsed`` the unit's
        wall seconds, which the plan's wake_s counts (default: ``seconds``)."""
        parml_tuner_record_as(&self.t, seconds, seconds if elapsed is None else <double>elapsed)

    def hint_one(self, double seconds):
        """A unit's predicted one-thread time, in record()'s units (0 clears it). The first probe
        skips timing one thread when n threads ran in under HINT_MARGIN of it."""
        if not seconds >= 0.0:
            raise ValueError(f"Tuner.hint_one: seconds must be >= 0, got {seconds!r}")
        parml_tuner_hint_one(&self.t, seconds)

    def stats(self):
        """{'units_many', 'units_one', 'switches', 'best'}: what the tuner did so far."""
        return {"units_many": self.t.units_many, "units_one": self.t.units_one,
                "switches": self.t.switches, "best": self.t.best}
