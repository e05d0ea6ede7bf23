"""Small products beside a busy core, and after it goes: what parml.matmul's thread tuner costs
and how soon it comes back.

    python3 bench/busy_core.py [--rounds 3]

1. With another process spinning for the whole section, each shape runs in 0.25 s stretches
   asked for two threads and for one, alternately; printed: time per call on two / on one (the
   tuner's probes of two threads included; at most ~1.1 is the aim).
2. 256x256x128 float32 products run for 1 s on an idle machine, 1.5 s beside a spinning process
   and 2 s after it ended; printed: the share of calls on one thread in windows after the end.

Needs two CPUs. Run nothing else meanwhile."""
import argparse
import os
import time

import numpy as np

import parml
from parml import ops
from parml.benchmarks.harness import BusyCore

SHAPES = [(256, 256, 128, np.float32), (128, 128, 128, np.float64), (256, 256, 256, np.float64)]
WINDOWS = [(0.0, 0.05), (0.05, 0.1), (0.1, 0.2), (0.2, 0.5), (0.5, 2.0)]


def _operands(m, k, n, dt):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt),
            np.empty((m, n), dt))


def cost_beside_a_busy_core(rounds):
    with BusyCore():
        for m, k, n, dt in SHAPES:
            A, B, out = _operands(m, k, n, dt)
            spent = {1: [0.0, 0], 2: [0.0, 0]}
            for _ in range(2 * rounds):
                for nt in (2, 1):
                    t0 = time.perf_counter()
                    while time.perf_counter() - t0 < 0.25:
                        parml.matmul(A, B, out=out, n_threads=nt)
                        spent[nt][1] += 1
                    spent[nt][0] += time.perf_counter() - t0
            per = {nt: s / c for nt, (s, c) in spent.items()}
            print(f"{m}x{k}x{n} {np.dtype(dt).name}: 2 threads / 1 thread = {per[2] / per[1]:.3f}"
                  f" ({1e6 * per[1]:.0f} us per call on one)")


def _one_thread_calls():
    return sum(t.stats()["units_one"] for t in ops._small_tuners.values())


def back_after_a_busy_core(rounds):
    A, B, out = _operands(256, 256, 128, np.float32)

    def run(seconds, log, start):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            before = _one_thread_calls()
            t = time.perf_counter()
            parml.matmul(A, B, out=out, n_threads=2)
            log.append((t - start, _one_thread_calls() - before))
    for _ in range(rounds):
        log, start = [], time.perf_counter()
        run(1.0, log, start)
        with BusyCore():
            busy_from = time.perf_counter() - start + 0.2   # the tuner's first reaction
            run(1.5, log, start)
        freed = time.perf_counter() - start
        run(2.0, log, start)
        busy = [o for t, o in log if busy_from <= t < freed]
        shares = []
        for lo, hi in WINDOWS:
            w = [o for t, o in log if lo <= t - freed < hi]
            shares.append(f"{1e3 * lo:.0f}-{1e3 * hi:.0f} ms: {sum(w) / max(1, len(w)):.2f}")
        print(f"on one thread while busy: {sum(busy) / len(busy):.2f}; after: " + ", ".join(shares))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("busy_core.py: needs two CPUs")
    print("# beside a busy core: time per call asked for 2 threads / for 1")
    cost_beside_a_busy_core(args.rounds)
    print("# share of 256x256x128 float32 calls on one thread after a busy process ends")
    back_after_a_busy_core(args.rounds)


if __name__ == "__main__":
    main()
