"""parml's one thread tuner (include/parml/tuner.h, _kernels._tuner.Tuner) as a state machine,
with scripted timings: against a reference written from its description, and by behaviour, for
each plan (boosting iterations, MLP batches, L-BFGS calls and small products)."""
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parml._kernels._tuner import HINT_MARGIN, PLANS, WAKE_SHARE, Tuner, _plan_fields


def drive(tuner, cost, units):
    """Run `units` units where a unit on t threads takes cost(t) seconds; the thread counts."""
    seen = []
    for _ in range(units):
        nt = tuner.threads()
        seen.append(nt)
        tuner.record(cost(nt))
    return seen


class Reference:
    """The documented algorithm, written plainly: [warm-up on n] -> probe n -> probe 1 -> run
    the faster for `exploit` units -> probe again; confirmations double the period up to
    exploit_max, a change resets it (to exploit_one when one thread won); with skip_first the
    first unit of a probe's side or of a run after one is not timed, and neither is a unit on n
    threads that starts less than wake_s (summed unit time; after a run on one thread, at most
    WAKE_SHARE of that run) after the last unit on one thread; a side ends after `probe` units
    once it timed probe - skip_first. With watch, a window of run units (a probe's timed count) slower than
    the losing side's last probe starts a probe at once; the period goes on growing if the
    probe confirms the choice. With a hint (a predicted one-thread time), the first probe ends after
    n threads when they ran under HINT_MARGIN of the hint, which stands for the one-thread
    time. A run on one thread also ends once it lasted one_max_s (summed unit time) after at
    least one_min units."""

    def __init__(self, n, plan, adapt=True, hint=0.0):
        self.p = p = _plan_fields(plan)
        self.hint = hint
        self.n, self.adapt, self.best = n, adapt and n > 1, n
        self.timed = p["probe"] - p["skip_first"]
        self.exploit = p["exploit"]
        self.other = None            # the loser's probe time, once there was a probe
        self.warm = 0.0              # time on n threads since the last unit on one thread
        self.wake = 0.0              # the wait for the helpers in this probe and the run after
        self.run_time = 0.0
        self.lates = 0               # runs on one thread ended by one_max_s
        if p["warmup"]:
            self.exploit = p["warmup"]
            self._run()
        else:
            self._probe()
            self.wake = 0.0          # the first probe times from its second unit

    def _run(self):
        self.mode, self.k, self.window, self.run_time = "run", 0, [], 0.0

    def _probe(self):
        self.mode, self.side = "probe", self.n
        self.wake = self.p["wake_s"]
        if self.best == 1:
            self.wake = min(self.wake, WAKE_SHARE * self.run_time)
        self._side()

    def _side(self):
        self.k, self.units = 0, []

    def _stat(self, units):
        """A side's time: the fastest of its timed units, or their sum."""
        return min(units) if self.p["fastest"] else sum(units)

    def threads(self):
        if not self.adapt:
            return self.n
        return self.best if self.mode == "run" else self.side

    def record(self, value, elapsed=None):
        if not self.adapt:
            return
        elapsed = value if elapsed is None else elapsed
        skip = self.p["skip_first"]
        self.k += 1
        on = self.threads()
        awake = on == 1 or self.warm >= self.wake
        self.warm = 0.0 if on == 1 else self.warm + elapsed
        if self.mode == "run":
            self.run_time += elapsed
            early = False
            if (self.p["watch"] and self.other is not None and awake
                    and not (skip and self.k == 1)):
                self.window.append(value)
                if len(self.window) == self.timed:
                    early = self._stat(self.window) > self.other
                    self.window = []
            p = self.p
            late = (self.best == 1 and p["one_max_s"] > 0 and self.k >= p["one_min"]
                    and self.run_time >= p["one_max_s"])
            self.lates += late and not early and self.k < self.exploit
            if early or late or self.k >= self.exploit:
                self._probe()
            return
        if not (skip and self.k == 1) and awake:
            self.units.append(value)
        if self.k < self.p["probe"] or len(self.units) < self.timed:
            return
        hint = self._stat([self.hint] * self.timed)      # as a probe would have timed it
        if self.side == self.n:
            self.many = self._stat(self.units)
            if not (hint > 0 and self.other is None and self.many < HINT_MARGIN * hint):
                self.side = 1
                self._side()
                return
            one = hint
        else:
            one = self._stat(self.units)
        many = self.many
        best = self.n if many < one else 1
        first = self.p["exploit_one"] if best == 1 else self.p["exploit"]
        if best != self.best:
            self.exploit = first
        elif self.exploit < first:
            self.exploit = first
        else:
            self.exploit = min(2 * self.exploit, self.p["exploit_max"])
        self.best = best
        self.other = one if best == self.n else many
        self._run()


@pytest.mark.parametrize("plan", PLANS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 8), costs=st.lists(st.floats(0.1, 10.0), min_size=1, max_size=600),
       adapt=st.booleans(), hint=st.one_of(st.just(0.0), st.floats(0.1, 20.0)))
def test_matches_the_reference(plan, n, costs, adapt, hint):
    t, r = Tuner(n, plan, adapt), Reference(n, plan, adapt, hint)
    t.hint_one(hint)
    for c in costs:
        a, b = t.threads(), r.threads()
        assert a == b
        t.record(c * (1 if a == 1 else 1.3))
        r.record(c * (1 if b == 1 else 1.3))
    assert t.best == (r.best if r.adapt else n)


@pytest.mark.parametrize("plan", PLANS)
@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 4), costs=st.lists(st.floats(1e-5, 3e-3), min_size=1, max_size=800),
       slow_many=st.floats(0.5, 2.0), per_flop=st.floats(1e-3, 1.0),
       hint=st.one_of(st.just(0.0), st.floats(1e-6, 1e-2)))
def test_matches_the_reference_at_the_scale_of_its_clock(plan, n, costs, slow_many, per_flop,
                                                          hint):
    """Units of 10 us - 3 ms, where wake_s decides what is timed; the compared
    value (a time per FLOP, say) differs from the elapsed time."""
    t, r = Tuner(n, plan), Reference(n, plan, True, hint)
    t.hint_one(hint)
    for c in costs:
        a, b = t.threads(), r.threads()
        assert a == b
        elapsed = c * (1 if a == 1 else slow_many)
        t.record(elapsed * per_flop, elapsed)
        r.record(elapsed * per_flop, elapsed)
    assert (t.best, t.exploit) == (r.best, r.exploit)


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("seed", range(4))
def test_matches_the_reference_over_long_runs(plan, seed):
    """Thousands of 0.2-3 ms units (8-40 ms for "layouts", the plan of long products), the
    machine changing every few hundred: long enough for runs on one thread to reach one_min
    units and one_max_s, which the short traces above never do."""
    rng = random.Random(seed)
    n = rng.choice([2, 3, 4])
    t, r = Tuner(n, plan), Reference(n, plan)
    many = 1.0
    lo, hi = (8e-3, 40e-3) if plan == "layouts" else (0.2e-3, 3e-3)
    for i in range(6000):
        if i % 400 == 0:
            many = rng.choice([0.55, 0.8, 1.3, 1.6])     # n threads' time over one thread's
        unit = rng.uniform(lo, hi)
        a, b = t.threads(), r.threads()
        assert a == b, i
        c = unit * (1.0 if a == 1 else many) * rng.uniform(0.9, 1.1)
        t.record(c * 1e-6, c)        # a time per FLOP, and the wall time that wake_s counts
        r.record(c * 1e-6, c)
    assert (t.best, t.exploit) == (r.best, r.exploit)
    if _plan_fields(plan)["one_max_s"] > 0:
        assert r.lates > 0


@pytest.mark.parametrize("plan", PLANS)
def test_keeps_n_threads_when_they_are_faster(plan):
    p = _plan_fields(plan)
    units = 40 * p["exploit_max"]
    t = Tuner(4, plan)
    seen = drive(t, lambda nt: 1.0 / nt, units)
    assert t.best == 4 and t.switches == 0
    # after the first probes, one thread runs only during probes, whose period doubles
    assert seen.count(1) < units * 0.1
    assert t.exploit == p["exploit_max"]


@pytest.mark.parametrize("plan", PLANS)
def test_switches_to_one_thread_when_it_is_faster(plan):
    p = _plan_fields(plan)
    t = Tuner(2, plan)
    seen = drive(t, lambda nt: 1.0 if nt == 1 else 1.3, 10 * p["exploit_max"])
    assert t.best == 1 and t.switches == 1
    # n threads run only in probes: units this long end a run on one thread at one_min units
    probes = max(2, -(-50 // p["one_min"])) if p["one_max_s"] > 0 else 2
    assert seen[-50:].count(2) <= probes * p["probe"]


@pytest.mark.parametrize("plan", PLANS)
def test_follows_a_change_of_machine(plan):
    m = _plan_fields(plan)["exploit_max"]
    t = Tuner(2, plan)
    drive(t, lambda nt: 1.0 / nt, 4 * m)
    assert t.best == 2
    drive(t, lambda nt: 1.0 if nt == 1 else 2.0, 4 * m)   # now a core is busy
    assert t.best == 1
    drive(t, lambda nt: 1.0 / nt, 4 * m)
    assert t.best == 2 and t.switches == 2


@pytest.mark.parametrize("plan", PLANS)
def test_one_thread_or_off_never_probes(plan):
    for t in (Tuner(1, plan), Tuner(4, plan, adapt=False)):
        seen = drive(t, lambda nt: 1.0, 50)
        assert set(seen) == {t.n_threads}
        assert t.switches == 0


def test_the_first_iteration_is_not_timed():
    """A boosting fit's first iteration wakes the pool and first-touches buffers: it must not
    decide."""
    t = Tuner(2, "iterations")
    calls = []

    def cost(nt):
        calls.append(nt)
        return 100.0 if len(calls) == 1 else 1.0 / nt
    drive(t, cost, 40)
    assert calls[0] == 2 and t.best == 2 and t.switches == 0


def test_calls_notice_a_busy_core_at_once():
    """The "calls" plan watches: once the chosen count turns slower than the other was, it
    probes after the next pair of timed calls instead of after its period (8, 16, ... calls)."""
    t = Tuner(2, "calls")
    drive(t, lambda nt: 1.0 / nt, 200)     # period now long
    assert t.best == 2 and t.exploit >= 64
    seen = drive(t, lambda nt: 1.0 if nt == 1 else 2.0, 12)   # now a core is busy
    assert t.best == 1 and 1 in seen[:9]


@pytest.mark.parametrize("plan", ["calls", "batches"])
def test_units_wait_for_the_helpers_to_wake_before_timing_n_threads(plan):
    """After calls on one thread the pool's helpers are asleep, and on a VM that halts idle vCPUs
    two threads run at one-thread speed for ~1.5 ms after the switch. Here a busy core first
    moves 100 us products to one thread; then it is gone, and two threads run them in 50 us
    once awake. Calls on n threads are timed only wake_s after the last one on one thread, so
    the products go back to two threads; probes timed inside the stretch would lose every
    time (with wake_s = 0 they stay on one thread)."""
    p = _plan_fields(plan)
    assert p["wake_s"] >= 1.5e-3
    state = {"i": 0, "prev": 2, "since": 0.0}

    def cost(nt):
        state["i"] += 1
        if state["i"] <= 200:                      # a busy core
            return 100e-6 if nt == 1 else 150e-6
        if nt == 1:
            state["prev"] = 1
            return 100e-6
        if state["prev"] == 1:
            state["since"] = 0.0
        c = 100e-6 if state["since"] < 1.5e-3 else 50e-6
        state["prev"], state["since"] = 2, state["since"] + c
        return c
    t = Tuner(2, plan)
    seen = drive(t, cost, 8000)
    assert seen[150:200].count(1) > 40               # the busy core moved them to one thread
    # the wait grows with the periods of one thread (WAKE_SHARE of the run before a probe): from
    # a run of 1.5 ms / WAKE_SHARE (480 products here) it outlasts the helpers' slow stretch
    assert t.best == 2 and seen[-2000:].count(2) > 1950


def test_calls_keep_their_period_after_a_false_alarm():
    """The machine slows down as a whole (both counts 2.4x slower): the chosen count's window is
    now slower than one thread was, so the watch starts a probe, which confirms n threads. The
    period then grows on from where it was instead of restarting at 8."""
    t = Tuner(2, "calls")
    drive(t, lambda nt: 1e-3 / nt, 300)
    before = t.exploit
    assert t.best == 2 and 64 <= before < _plan_fields("calls")["exploit_max"]
    seen = drive(t, lambda nt: 2.4e-3 / nt, 20)
    assert seen.count(1) == _plan_fields("calls")["probe"]      # one probe, at once
    assert t.best == 2 and t.exploit == 2 * before


def test_batches_recheck_a_one_thread_choice_soon():
    """MLP batches: n threads that lose the first probe to passing contention (here the first 12
    batches) are back after exploit_one batches and one more probe, not after a whole period;
    under lasting contention the re-probes of n threads grow apart by doubling."""
    p = _plan_fields("batches")
    assert p["exploit_one"] < p["exploit"]
    t = Tuner(2, "batches")
    seen = []
    for i in range(p["exploit"]):
        nt = t.threads()
        seen.append(nt)
        t.record((2.0 if nt == 2 else 1.0) if i < 12 else 1.0 / nt)
    back = 2 * p["probe"] + p["exploit_one"] + 2 * p["probe"]
    assert seen[2 * p["probe"]:2 * p["probe"] + p["exploit_one"]] == [1] * p["exploit_one"]
    assert set(seen[back:]) == {2} and t.best == 2
    t = Tuner(2, "batches")
    seen = drive(t, lambda nt: 1.0 if nt == 1 else 1.3, 2000)
    assert t.best == 1 and t.switches == 1
    ones, twos = runs(seen, 1), runs(seen, 2)
    # units of 1 s: 100 ms (one_max_s) holds none, so the periods double up to one_min
    assert ones[:3] == [p["probe"] + p["exploit_one"] * 2 ** i for i in range(3)]
    assert min(ones[3:-1]) >= p["one_min"] and set(twos[1:]) == {p["probe"]}


def runs(seen, nt):
    """Lengths of the stretches of consecutive units on nt threads."""
    out, k = [], 0
    for x in seen + [None]:
        if x == nt:
            k += 1
        elif k:
            out.append(k)
            k = 0
    return out


@pytest.mark.parametrize("plan", ["calls", "batches"])
def test_a_one_thread_choice_ends_soon_after_the_core_comes_free(plan):
    """100 us units: a busy core for 20000 of them (2 s) moves them to one thread; then the core
    is free and two threads take 50 us. Periods that doubled to thousands of units would keep
    them on one thread for up to a whole period after that; a run on one thread ends once it
    lasted one_max_s (1000 units here), so they go back within one_max_s. Beside the busy core
    the probes of two threads (the units while the helpers wake, and the probe) stay under 4%
    of the units."""
    p = _plan_fields(plan)
    assert 0 < p["one_max_s"] <= 0.1 and p["one_min"] <= 100
    longest = p["one_max_s"] / 100e-6 + p["probe"]
    state = {"i": 0}

    def cost(nt):
        state["i"] += 1
        if nt == 1:
            return 100e-6
        return 150e-6 if state["i"] <= 20000 else 50e-6
    t = Tuner(2, plan)
    seen = drive(t, cost, 20000)
    assert t.best == 1 and seen[-10000:].count(2) < 400
    assert max(runs(seen[1000:], 1)) <= longest
    after = drive(t, cost, 4000)
    # what is left of the run on one thread, then one-thread units only in probes
    assert after[0] == 1 and runs(after, 1)[0] <= longest
    assert set(runs(after, 1)[1:]) == {p["probe"]} and t.best == 2


def test_batches_and_iterations_do_not_watch():
    for plan in ("batches", "iterations"):
        assert not _plan_fields(plan)["watch"]
        t = Tuner(2, plan)
        drive(t, lambda nt: 1.0 / nt, 2000)
        period = t.exploit
        seen = drive(t, lambda nt: 1.0 if nt == 1 else 2.0, period // 2)
        assert set(seen) == {2}      # no probe before the period ends


def test_calls_are_not_fooled_by_one_spike_per_probe():
    """Small products and L-BFGS passes: a spike (a preempted helper, a BLAS still spinning)
    hits one call of a probe now and then; the side's fastest call counts, so one spike per
    probe never makes the faster count lose."""
    t = Tuner(2, "calls")
    state = {"k": 0}

    def cost(nt):
        state["k"] += 1
        spike = state["k"] % 5 == 2          # about one call in five is slow, whatever runs it
        return (1.0 / nt) * (4.0 if spike else 1.0)
    seen = drive(t, cost, 400)
    assert t.best == 2 and t.switches == 0
    assert seen.count(1) < 400 * 0.1


@pytest.mark.parametrize("plan", ["batches", "calls"])
def test_a_probes_first_unit_is_not_timed(plan):
    """The first unit on n threads after a run on one pays for waking the helpers."""
    t = Tuner(2, plan)
    prev = [None]

    def cost(nt):
        cold = nt == 2 and prev[0] != 2
        prev[0] = nt
        return 50.0 if cold else 1.0 / nt
    drive(t, cost, 2000)
    assert t.best == 2 and t.switches == 0


def test_a_hint_skips_only_the_first_one_thread_probe():
    """matmul hints a size class with its predicted one-thread time: when n threads beat it
    clearly, the first probe does not time one thread; the next probe does."""
    t = Tuner(2, "calls")
    t.hint_one(1.0)
    seen = drive(t, lambda nt: 1.0 / nt, 40)
    first_one = seen.index(1)
    assert first_one > 10 and t.best == 2          # no one-thread call among the first 10
    assert seen[first_one:first_one + 3] == [1, 1, 1]   # then a real probe of one thread


def test_a_hint_that_n_threads_do_not_beat_clearly_is_probed():
    t = Tuner(2, "calls")
    t.hint_one(1.0)
    seen = drive(t, lambda nt: 0.9 if nt == 2 else 1.0, 6)
    assert seen == [2, 2, 2, 1, 1, 1]


def test_a_wrong_hint_misleads_for_one_period_at_most():
    """A hint measured on a busy core (far too slow): the real probe that follows corrects it."""
    t = Tuner(2, "calls")
    t.hint_one(10.0)
    seen = drive(t, lambda nt: 0.5 if nt == 1 else 1.0, 40)
    period = 2 * _plan_fields("calls")["exploit"]      # the first probe confirmed n: doubled
    probe = _plan_fields("calls")["probe"]
    assert seen.index(1) == probe + period + probe     # the next probe times one thread
    assert t.best == 1 and seen[-4:] == [1] * 4


def test_a_hint_must_not_be_negative():
    t = Tuner(2, "calls")
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        t.hint_one(-1.0)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        t.hint_one(float("nan"))


def test_stats_and_pickling():
    t = Tuner(3, "batches")
    drive(t, lambda nt: 1.0, 10)
    s = t.stats()
    assert s["units_many"] + s["units_one"] == 10 and set(s) >= {"switches", "best"}
    u = pickle.loads(pickle.dumps(t))   # starts afresh, with the same settings
    assert (u.n_threads, u.plan, u.stats()["units_many"]) == (3, "batches", 0)
    t = Tuner(2, "calls")
    t.hint_one(1.0)
    u = pickle.loads(pickle.dumps(t))   # the hint is a setting: it stays
    assert drive(u, lambda nt: 1.0 / nt, 10) == [2] * 10


def test_unknown_plan_is_refused():
    with pytest.raises(ValueError, match="plan must be one of"):
        Tuner(2, "epochs")
