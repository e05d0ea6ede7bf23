"""parml's kernels timed at C level: no interpreter, allocator or argument checks in the loop.

Compiles the C benchmark (parml/benchmarks/c/parml_bench.c) against the installed headers
(parml.get_include()) with the compiler and flags the kernels were built with, runs it, and
reports each kernel family per kernel set: min and median time, GFLOP/s or GB/s, cycles per inner
iteration, % of the measured FMA peak or read bandwidth, and (where the kernel allows
perf_event_open) instructions per inner iteration. Every result is checked against a naive C loop
before it is timed; a mismatch exits non-zero.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from . import harness as H

KERNELS = ("ukr", "gemm", "add", "linear", "hist", "predict")
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c", "parml_bench.c")
DEFAULT_CFLAGS = ["-O3", "-fno-math-errno"]


def build_info():
    """The compiler and flags of this installation's kernels (written by setup.py), or None."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "_build_info.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def find_compiler(info):
    """The C compiler command (a list), or None: the first of $CC, the one the kernels were built
    with, Python's, cc, gcc and clang that is on PATH and answers ``--version``."""
    cands = []
    if os.environ.get("CC"):
        cands.append(os.environ["CC"].split())
    if info and info.get("cc"):
        cands.append(list(info["cc"]))
    if sysconfig.get_config_var("CC"):
        cands.append(sysconfig.get_config_var("CC").split())
    cands += [["cc"], ["gcc"], ["clang"]]
    for cmd in cands:
        if cmd and shutil.which(cmd[0]) is not None and _answers(cmd):
            return cmd
    return None


def _answers(cmd):
    """Whether cmd runs as a compiler driver (``--version`` succeeds): CC=/bin/false is none."""
    try:
        return subprocess.run(cmd + ["--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def compile_bench(out_dir):
    """Build the benchmark program into out_dir; returns (path, command). Raises RuntimeError
    with a clear message when there is no compiler or the build fails."""
    import parml

    info = build_info()
    cc = find_compiler(info)
    if cc is None:
        raise RuntimeError("no C compiler found ($CC, cc, gcc, clang): install one (e.g. "
                           "apt-get install gcc) or set CC to run the C-level benchmark")
    cflags = list(info["cflags"]) if info else DEFAULT_CFLAGS + ["-fopenmp"]
    ldflags = list(info["ldflags"]) if info else ["-fopenmp"]
    exe = os.path.join(out_dir, "parml_bench")
    cmd = cc + cflags + ["-I", parml.get_include(), SOURCE, "-o", exe] + ldflags + ["-lm", "-lpthread"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    omp = {"-fopenmp", "-Xpreprocessor", "-lomp"}
    if res.returncode != 0 and omp & set(cmd):
        # this compiler has no OpenMP: the program still runs every kernel on parml's pool, and
        # n_threads defaults to 1 (say --threads N for the multi-threaded rows)
        serial = [c for c in cmd if c not in omp]
        res2 = subprocess.run(serial, capture_output=True, text=True)
        if res2.returncode == 0:
            print("parml bench c: compiled without OpenMP (the compiler refused "
                  f"{' '.join(sorted(omp & set(cmd)))})", file=sys.stderr)
            cmd, res = serial, res2
    if res.returncode != 0:
        raise RuntimeError("compiling the C benchmark failed:\n  " + " ".join(cmd) + "\n"
                           + res.stderr.strip()[-3000:])
    return exe, cmd


def _fmt(v, nd=3):
    return "-" if v is None else f"{v:.{nd}g}"


def table(result):
    rows = []
    for r in result["rows"]:
        pct = "-" if r["pct"] is None else f"{r['pct']:.1f}% of {r['pct_of']}"
        rows.append([r["kernel"], r["set"], r["dtype"], r["threads"], r["shape"],
                     f"{r['t_min'] * 1e6:.1f} / {r['t_median'] * 1e6:.1f}",
                     f"{r['rate']:.3g} {r['unit']}", pct,
                     f"{_fmt(r['cycles_per_iter'])} / {r['iter']}",
                     _fmt(r["instr_per_iter"]), r["check"]])
    return H.markdown_table(["kernel", "set", "dtype", "threads", "shape", "us min / median",
                             "rate", "of peak", "cycles per iteration", "instr. per iteration",
                             "check"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="parml bench c", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 60 s)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, one repeat (a smoke test)")
    ap.add_argument("--isa", default=None, help="one kernel set (generic, avx2, avx512, neon); "
                                                "default: every set this CPU supports")
    ap.add_argument("--kernel", choices=KERNELS, default=None, help="one kernel family")
    ap.add_argument("--threads", type=int, default=None,
                    help="the multi-threaded rows' thread count (default: OpenMP's)")
    ap.add_argument("--out", default=os.path.join("bench", "results"), help="output folder")
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be at least 1")
    from .. import _isa
    if args.isa is not None:
        args.isa = args.isa.lower()
        if args.isa not in _isa.NAMES:
            print(f"parml bench c: unknown --isa {args.isa!r}: one of {', '.join(_isa.NAMES)}",
                  file=sys.stderr)
            return 2
        if args.isa not in _isa.supported_kernel_sets():
            print(f"parml bench c: this CPU or build has no {args.isa} kernel set (it has "
                  f"{', '.join(_isa.supported_kernel_sets())})", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="parml-bench-c-") as tmp:
        try:
            exe, cmd = compile_bench(tmp)
        except RuntimeError as e:
            print(f"parml bench c: {e}", file=sys.stderr)
            return 2
        run = [exe] + (["--quick"] if args.quick else []) + (["--tiny"] if args.tiny else [])
        if args.isa:
            run += ["--isa", args.isa]
        if args.kernel:
            run += ["--kernel", args.kernel]
        if args.threads:
            run += ["--threads", str(args.threads)]
        # PARML_ISA caps the sets the program runs, as it caps the Python package
        env = dict(os.environ)
        env.pop("PARML_ISA", None)
        if os.environ.get("PARML_ISA") and not args.isa:
            run += ["--isa", _isa.kernel_set()]
        print(f"# parml C-level kernels; compiled with: {' '.join(cmd)}", flush=True)
        res = subprocess.run(run, stdout=subprocess.PIPE, text=True, env=env)
    if res.returncode not in (0, 1):
        print(f"parml bench c: the benchmark program exited with status {res.returncode}",
              file=sys.stderr)
        return res.returncode or 2
    try:
        result = json.loads(res.stdout)
    except ValueError:
        print("parml bench c: the benchmark program's output is not JSON:\n" + res.stdout[-2000:],
              file=sys.stderr)
        return 2
    info = H.machine_info()
    result["cpu"], result["compile"] = info["cpu"], cmd
    peaks = ", ".join(f"{k} {v:.1f}" for k, v in result["peak_gflops_f64"].items())
    head = (f"CPU: {info['cpu']}; clock (add chain) {result['clock_ghz']:.2f} GHz; FMA peak per "
            f"core, float64 GFLOP/s: {peaks} (float32: twice); read bandwidth "
            f"{result['read_gbs'][0]:.1f} GB/s (1 thread), {result['read_gbs'][1]:.1f} GB/s "
            f"({result['threads'][-1]} threads); perf counters: {result['perf']}")
    tab = table(result)
    print(head + "\n\n" + tab)
    H.write_results(args.out, "c", result, head + "\n\n" + tab)
    if result["failures"]:
        print(f"\nparml bench c: {result['failures']} result(s) differ from the naive loops "
              "(rows marked FAIL)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
