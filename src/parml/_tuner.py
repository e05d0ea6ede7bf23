"""Choosing between n threads and one by measuring, for loops that repeat the same work.

A boosting fit runs the same kind of iteration hundreds of times. On an idle machine a second
thread pays; when another process keeps one core busy, every one of the many short parallel
regions of an iteration waits for the preempted helper, and n threads become slower than one.
Instead of guessing, the loop measures (the MLP kernel's tuner, include/parml/mlp.h, does the
same in C):

    probe n threads (PROBE units) -> probe 1 thread (PROBE units) -> run the faster for EXPLOIT
    units -> probe again ...

Each probe that confirms the choice doubles the exploit period (up to EXPLOIT_MAX); a change of
choice resets it. parml's results never depend on the thread count, so switching is free of
side effects."""

from __future__ import annotations


class ThreadTuner:
    # a unit (a boosting iteration) is long enough to time alone; each probe of the losing side
    # costs a unit at its speed, so probes are one unit each and grow rare while the choice holds
    PROBE = 1
    EXPLOIT = 16
    EXPLOIT_MAX = 128

    def __init__(self, n_max, adapt=True):
        self.n_max = max(1, int(n_max))
        self.adapt = adapt and self.n_max > 1
        # the first unit runs on n threads untimed (it wakes the pool, first-touches buffers),
        # then the first probe
        self.phase = 0   # 0 exploit, 1 probe n, 2 probe 1
        self.count = 0
        self.best = self.n_max
        self.exploit = 1
        self.t_many = self.t_one = 0.0
        self.switches = 0
        self.units_many = self.units_one = 0

    def threads(self):
        """Threads for the next unit of work."""
        if not self.adapt:
            nt = self.n_max
        elif self.phase == 1:
            nt = self.n_max
        elif self.phase == 2:
            nt = 1
        else:
            nt = self.best
        if nt > 1:
            self.units_many += 1
        else:
            self.units_one += 1
        return nt

    def record(self, seconds):
        """Seconds the unit just run took (with the thread count threads() gave)."""
        if not self.adapt:
            return
        self.count += 1
        if self.phase == 0:
            if self.count >= self.exploit:
                self.phase, self.count, self.t_many = 1, 0, 0.0
            return
        if self.phase == 1:
            self.t_many += seconds
        else:
            self.t_one += seconds
        if self.count < self.PROBE:
            return
        if self.phase == 1:
            self.phase, self.t_one = 2, 0.0
        else:
            best = self.n_max if self.t_many < self.t_one else 1
            if best != self.best:
                self.switches += 1
                self.exploit = self.EXPLOIT
            elif self.exploit < self.EXPLOIT:
                self.exploit = self.EXPLOIT  # after the warm-up unit
            elif self.exploit < self.EXPLOIT_MAX:
                self.exploit *= 2
            self.best, self.phase = best, 0
        self.count = 0

    def stats(self):
        return {"units_many": self.units_many, "units_one": self.units_one,
                "switches": self.switches, "best": self.best}
