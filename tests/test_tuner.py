"""The measuring 1-vs-n thread tuner (parml._tuner) as a state machine, with scripted timings."""
from parml._tuner import ThreadTuner


def drive(tuner, cost, units):
    """Run `units` units where a unit on t threads takes cost(t) seconds; the thread counts."""
    seen = []
    for _ in range(units):
        nt = tuner.threads()
        seen.append(nt)
        tuner.record(cost(nt))
    return seen


def test_keeps_n_threads_when_they_are_faster():
    t = ThreadTuner(4)
    seen = drive(t, lambda nt: 1.0 / nt, 200)
    assert t.best == 4 and t.switches == 0
    # after the first probes, one thread runs only during probes, whose period doubles
    assert seen.count(1) < 200 * 0.1
    assert t.exploit == ThreadTuner.EXPLOIT_MAX


def test_switches_to_one_thread_when_it_is_faster():
    t = ThreadTuner(2)
    seen = drive(t, lambda nt: 1.0 if nt == 1 else 1.3, 200)
    assert t.best == 1 and t.switches == 1
    assert seen[-50:].count(2) <= 2 * ThreadTuner.PROBE


def test_follows_a_change_of_machine():
    t = ThreadTuner(2)
    drive(t, lambda nt: 1.0 / nt, 100)
    assert t.best == 2
    drive(t, lambda nt: 1.0 if nt == 1 else 2.0, 200)   # now a core is busy
    assert t.best == 1
    drive(t, lambda nt: 1.0 / nt, 300)
    assert t.best == 2 and t.switches == 2


def test_one_thread_or_off_never_probes():
    for t in (ThreadTuner(1), ThreadTuner(4, adapt=False)):
        seen = drive(t, lambda nt: 1.0, 50)
        assert set(seen) == {t.n_max}
        assert t.switches == 0


def test_the_first_unit_is_not_timed():
    """The first unit wakes the pool and first-touches buffers: it must not decide."""
    t = ThreadTuner(2)
    calls = []

    def cost(nt):
        calls.append(nt)
        return 100.0 if len(calls) == 1 else 1.0 / nt
    drive(t, cost, 40)
    assert calls[0] == 2 and t.best == 2 and t.switches == 0
