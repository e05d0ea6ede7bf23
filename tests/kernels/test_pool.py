"""parml's task pool: every task runs exactly once, worker ids are in range, concurrent callers
and forked children work."""
import os
import select
import signal
import threading
import time

import numpy as np
import pytest

import parml
from parml import ops
from parml._kernels import _pool


def in_threads(fn, n):
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run(ntasks, n_threads, spin=0):
    worker = np.full(ntasks, -1, dtype=np.int64)
    count = np.zeros(ntasks, dtype=np.int64)
    assert _pool.run_probe_tasks(worker, count, n_threads, spin) == 0
    return worker, count


@pytest.mark.parametrize("n_threads", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("ntasks", [0, 1, 2, 7, 1000])
def test_every_task_once(n_threads, ntasks):
    for _ in range(20):
        worker, count = run(ntasks, n_threads, spin=200)
        assert np.all(count == 1)
        assert np.all((worker >= 0) & (worker < max(1, min(n_threads, ntasks))))


def test_helpers_really_help():
    # long tasks: with 2 threads on a 2-CPU machine the helper should take some of them
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU")
    seen = set()
    for _ in range(50):
        worker, _ = run(64, 2, spin=20000)
        seen.update(worker.tolist())
        if seen == {0, 1}:
            break
    assert seen == {0, 1}


@pytest.mark.parametrize("gap_us", [0, 10, 24, 25, 26, 100, 999, 1000, 1001, 2000, 5000, 10**9])
def test_helpers_spin_through_the_gaps_between_jobs(gap_us):
    """After a job, helpers spin twice the gap before it (within [SPIN_MIN_NS, SPIN_MAX_NS]),
    so they are awake for the next job of a loop; after a gap longer than SPIN_MAX_NS only
    SPIN_MIN_NS: a process that calls parml now and then does not hold a core."""
    lo, hi = _pool.SPIN_MIN_NS, _pool.SPIN_MAX_NS
    assert 0 < lo < hi <= 10_000_000
    gap = gap_us * 1000
    want = lo if gap > hi else min(hi, max(lo, 2 * gap))
    assert _pool.spin_for(gap) == want


def test_a_job_gives_its_helpers_the_spin_of_the_gap_before_it():
    """The pool itself applies the rule: jobs ~300 us apart (busy-waiting, as Python work
    between calls would) give the helpers at least 600 us; a job after a 10 ms sleep gives them
    SPIN_MIN_NS."""
    def busy_wait(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    spins = []
    for _ in range(5):
        run(4, 2)
        busy_wait(300e-6)
        run(4, 2)
        spins.append(_pool._spin_ns())
    # a gap is at least the 300 us; only a caller preempted past 2 ms (SPIN_MAX_NS) falls back
    assert max(spins) >= 600_000
    time.sleep(0.01)
    run(4, 2)
    assert _pool._spin_ns() == _pool.SPIN_MIN_NS


def test_jobs_after_gaps_of_every_length_run_every_task_once():
    for gap in [0, 1e-4, 5e-4, 3e-3, 0, 2e-5, 1e-2, 1e-4]:
        time.sleep(gap)
        worker, count = run(64, 2, spin=2000)
        assert np.all(count == 1) and worker.max() < 2


def test_concurrent_callers():
    errors = []

    def caller():
        try:
            for _ in range(200):
                worker, count = run(37, 3, spin=50)
                assert np.all(count == 1) and worker.max() < 3
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    in_threads(caller, 4)
    assert not errors


def test_concurrent_matmuls_are_correct(rng, always_n_threads):   # small products on 2 threads too
    A = rng.standard_normal((200, 300))
    B = rng.standard_normal((300, 150))
    expect = parml.matmul(A, B, n_threads=1)
    bad = []

    def caller():
        for _ in range(20):
            if not np.array_equal(parml.matmul(A, B, n_threads=2), expect):
                bad.append(1)

    in_threads(caller, 3)
    assert not bad


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
@pytest.mark.skipif(os.environ.get("PARML_QEMU_USER") == "1",
                    reason="under qemu-user a fork() of a threaded process can deadlock in qemu")
def test_pool_works_after_fork(rng, always_n_threads):
    A = rng.standard_normal((300, 300))
    B = rng.standard_normal((300, 300))
    expect = parml.matmul(A, B, n_threads=2)   # the parent's helpers exist now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: helpers did not survive the fork; the pool must make new ones
        ok = 0
        try:
            worker, count = run(100, 2, spin=1000)
            C = parml.matmul(A, B, n_threads=2)
            ok = int(np.all(count == 1) and np.array_equal(C, expect))
        finally:
            os.write(w, bytes([ok]))
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 300)
    if not ready:  # a hang in the child becomes a failure, not a stuck test run
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child gave no answer in 300 s")
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    assert got == b"\x01"


def test_bad_arguments():
    with pytest.raises(ValueError):
        _pool.run_probe_tasks(np.zeros(3, np.int64), np.zeros(2, np.int64), 2)
    with pytest.raises(ValueError):
        _pool.run_probe_tasks(np.zeros(3, np.int64), np.zeros(3, np.int64), 0)
