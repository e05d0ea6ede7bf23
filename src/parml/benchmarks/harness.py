"""Shared benchmark machinery: contention probes, alternating A/B timing, tables, JSON, plots.

The machines we measure on are shared and noisy: the two vCPUs sometimes share one physical core
for minutes. So every comparison runs both sides in the same repeat, alternating which goes first,
and a busy-loop probe on both threads before and after each repeat marks it clean or contended.
Statistics use the clean repeats when there are any; the table says how many were clean.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from .._kernels import _probe

PROBE_ITERS = 1_500_000        # ~2 ms per probe: long enough to see a shared time slice
CONTENDED_RATIO = 1.3          # a thread this much slower than an idle core's best is contended


class ContentionProbe:
    """Times the same busy loop on every thread; compares with the best single-thread time seen."""

    def __init__(self, n_threads=2):
        self.n_threads = n_threads
        self.best = min(_probe.busy_probe(1, PROBE_ITERS)[0] for _ in range(5))

    def ratio(self):
        times = _probe.busy_probe(self.n_threads, PROBE_ITERS)
        single = _probe.busy_probe(1, PROBE_ITERS)[0]
        self.best = min(self.best, single, *times)
        return max(times) / self.best

    def clean(self):
        return self.ratio() < CONTENDED_RATIO


_READ_BUF = []


def read_scaling(repeats=5, mbytes=256):
    """How much faster 2 threads read memory than 1 right now: best 1-thread time over best
    2-thread time of a plain read of `mbytes` MB (_probe.read_probe, 64-byte loads): 1.7-2.0 in
    this VM's fast stretches, 1.1-1.3 in its slow ones, when its second vCPU adds little
    bandwidth (memory-bound 2-thread results from a slow stretch are not comparable with the
    others)."""
    import numpy as np
    if not _READ_BUF or _READ_BUF[0].nbytes != mbytes << 20:
        _READ_BUF[:] = [np.ones((mbytes << 20) // 8, dtype=np.uint64)]
    words = _READ_BUF[0]
    best = {1: float("inf"), 2: float("inf")}
    for _ in range(repeats):
        for nt in (1, 2):
            best[nt] = min(best[nt], _probe.read_probe(words, nt))
    time.sleep(SETTLE_S)   # (the OpenMP runtime's threads spin a while after the last read)
    return best[1] / best[2]


def time_call(fn, min_time=0.05, max_calls=10_000, warm=None):
    """Seconds per call of fn(): warm-up calls for at least ``warm`` seconds (WARM_S; at least
    one call), then as many calls as fill min_time.

    Warming by time, not by one call: after the pause between sides this VM's cores run slow for
    several ms (256^3 float64 on one thread: 1.7-2.5 ms per call for the first ~7 ms, then 0.97).
    A library whose first call blocks for that long (OpenBLAS waiting for its sleeping threads)
    was then timed warm and one whose first call does not was timed cold."""
    warm = WARM_S if warm is None else warm
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        if t0 + first - t_start >= warm:
            break
    calls = max(1, min(max_calls, int(min_time / max(first, 1e-7))))
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


WARM_S = 0.02    # warm-up time before a side is timed (time_call)
SETTLE_S = 0.15  # pause between sides: OpenBLAS 0.3.30's idle workers spin ~106 ms after a call (measured)


def _alternating(names, repeats, probe, settle, run):
    """The loop under compare and alternate_calls: each repeat runs every name once (run(name)
    gives its seconds), in alternating order, with a pause before each and a contention probe
    before and after the repeat. Returns ({name: times}, {name: clean times}, clean repeats)."""
    times = {n: [] for n in names}
    clean = {n: [] for n in names}
    n_clean = 0
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        ok = probe.clean()
        got = {}
        for n in order:
            time.sleep(settle)
            got[n] = run(n)
        ok = ok and probe.clean()
        n_clean += ok
        for n in names:
            times[n].append(got[n])
            if ok:
                clean[n].append(got[n])
    return times, clean, n_clean


def compare(sides, repeats, probe, min_time=0.05, settle=SETTLE_S):
    """Time each of ``sides`` (name -> zero-arg callable) ``repeats`` times, alternating the order
    every repeat, with a contention probe before and after each repeat.

    Between sides it pauses ``settle`` seconds so that one library's still-spinning threads
    (OpenBLAS spins for tens of ms after each call) do not steal the core from the other's.

    Returns {name: {"median", "min", "max", "times", "clean_times"}, "_clean": n, "_repeats": n}.
    """
    names = list(sides)
    times, clean_times, n_clean = _alternating(
        names, repeats, probe, settle, lambda n: time_call(sides[n], min_time))
    out = {"_clean": n_clean, "_repeats": repeats}
    for n in names:
        use = clean_times[n] or times[n]
        out[n] = {"median": statistics.median(use), "min": min(use), "max": max(use),
                  "times": times[n], "clean_times": clean_times[n]}
    return out


def paired_ratio(res, a, b):
    """Side a's speed relative to side b's from a compare() result: the median over the repeats
    (the clean ones when there are any) of b's time over a's time in the same repeat. A repeat
    runs its two sides back to back, so a slow stretch of the machine that spans the repeat slows
    both and cancels in its ratio; the ratio of the two sides' medians can instead set one side's
    fast repeat against the other's slow one."""
    use = "clean_times" if res["_clean"] else "times"
    return statistics.median(tb / ta for ta, tb in zip(res[a][use], res[b][use]))


def alternate_calls(fns, repeats, probe, settle=SETTLE_S):
    """Single timed calls of long-running callables (whole fits), alternating the order every
    repeat, probed for contention before and after each repeat.

    Returns ({name: {"median", "times", "result"}}, clean repeats): the median is over the clean
    repeats when there are any, else over all; "result" is what the last call returned."""
    names = list(fns)
    last = {}

    def run(n):
        t0 = time.perf_counter()
        last[n] = fns[n]()
        return time.perf_counter() - t0
    times, clean, n_clean = _alternating(names, repeats, probe, settle, run)
    out = {n: {"median": statistics.median(clean[n] or times[n]), "times": times[n],
               "result": last[n]} for n in names}
    return out, n_clean


def machine_info():
    """What was measured on: CPU, kernels, thread counts, library versions, measured peak."""
    import numpy as np
    from threadpoolctl import threadpool_info

    import parml
    from .. import _isa, ops
    from .._kernels import _kernel_sets, _openmp

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    peak = _probe.fma_peak()                # with the active kernel set's vectors
    feats = _kernel_sets.cpu_features()
    kset = _isa.kernel_set()
    dp_per_cycle = {"avx512": 32, "avx2": 16, "neon": 8}.get(kset, 4)
    return {
        "cpu": model, "machine": platform.machine(), "python": sys.version.split()[0],
        "parml": parml.__version__, "numpy": np.__version__,
        "cpu_features": feats, "kernel_set": kset, "gemm_kernel": ops.gemm_kernel_name(),
        "openmp": _openmp.openmp_enabled(), "max_threads": parml.effective_n_threads(),
        "fma_peak_dp_gflops_per_core": peak / 1e9,
        "peak_assumption": {"dp_flop_per_cycle": dp_per_cycle,
                            "ghz_implied": peak / 1e9 / dp_per_cycle},
        "threadpools": [{k: d.get(k) for k in ("internal_api", "version", "num_threads",
                                                "architecture", "filepath")}
                        for d in threadpool_info()],
    }


def peak_line(info):
    pa = info["peak_assumption"]
    return (f"peak assumption: {pa['ghz_implied']:.2f} GHz x {pa['dp_flop_per_cycle']} DP "
            f"({2 * pa['dp_flop_per_cycle']} SP) FLOP/cycle x cores = "
            f"{info['fma_peak_dp_gflops_per_core']:.1f} DP GFLOP/s per core, measured with an "
            "FMA loop")


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out_dir, name, payload, table):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(payload, f, indent=1)
    with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
        f.write(table + "\n")


class BusyCore:
    """Context manager: another process spinning on one CPU (the last one this process may use),
    to measure how a multi-threaded run behaves when it does not have every core to itself."""

    def __init__(self, cpu=None):
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        self.cpu = cpus[-1] if cpu is None else cpu
        self.proc = None

    def __enter__(self):
        code = ("import os, time\n"
                f"os.sched_setaffinity(0, {{{self.cpu}}})\n" if hasattr(os, "sched_setaffinity")
                else "import time\n")
        code += "end = time.time() + 3600\nwhile time.time() < end:\n    pass\n"
        self.proc = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
