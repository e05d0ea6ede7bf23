"""Two header trees of parml, the same GEMM products, in one process: did a kernel change pay?

    python3 bench/ab_gemm_c.py OLD_TREE NEW_TREE [--rounds 150] [--dtype float32]
                               [--threads 1] [--shapes 512x512x512,100x256x256:ta]

OLD_TREE and NEW_TREE are repository roots; their include/ folders are used, nothing needs to be
built in them. A small C file that calls the C API's parml_gemm_f32 / parml_gemm_f64 is compiled
against each tree with the compiler and flags this package was built with, into two shared
libraries loaded in this one process. They take turns of about 4 ms of products, alternating
which goes first, so both see the same machine state, and the report per product is the median
(and quartiles) of old time / new time per round, with the best GFLOP/s of each side.

Run it with the same tree on both sides first: the spread of that control is the noise floor.
On a 2-vCPU VM whose vCPUs shared a core at times, this control stayed within 0.2% where one
process per build (ab_builds.py) was off by up to 10%. Shapes are MxKxN, with ":ta" for A given
as a transposed view and ":tb" for B. With --threads above 1 each library keeps its own thread
pool, whose idle helpers may take turns with the other side's: check that case with a control."""

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

HARNESS = r"""
#include <time.h>
#include <parml/parml.h>

static T *A, *B, *C;
static int cm = -1, cn = -1, ck = -1;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* seconds per call of reps calls of C = A.B (m x k times k x n; ta / tb: transposed views) */
double ab_gemm(int m, int n, int k, int ta, int tb, int reps, int n_threads)
{
    if (m != cm || n != cn || k != ck) {
        free(A); free(B); free(C);
        A = malloc(sizeof(T) * (size_t)m * k);
        B = malloc(sizeof(T) * (size_t)k * n);
        C = malloc(sizeof(T) * (size_t)m * n);
        if (A == NULL || B == NULL || C == NULL) return -1.0;
        for (long i = 0; i < (long)m * k; ++i) A[i] = (T)((i * 7919) % 1000) / (T)1000 - (T)0.5;
        for (long i = 0; i < (long)k * n; ++i) B[i] = (T)((i * 104729) % 1000) / (T)1000 - (T)0.5;
        cm = m; cn = n; ck = k;
    }
    const ptrdiff_t rs_a = ta ? 1 : k, cs_a = ta ? m : 1, rs_b = tb ? 1 : n, cs_b = tb ? k : 1;
    const double t0 = now();
    for (int r = 0; r < reps; ++r)
        if (GEMM(m, n, k, A, rs_a, cs_a, B, rs_b, cs_b, C, n, n_threads) != PARML_OK) return -1.0;
    return (now() - t0) / reps;
}
"""

SHAPES = ("128x128x128,256x256x256,512x512x512,1024x1024x1024,256x100x256,256x256x128,"
          "100x256x256:ta,256x256x128:ta,256x128x256:tb")


def parse_shape(text):
    """'MxKxN[:ta][:tb]' -> (m, k, n, ta, tb)."""
    dims, *flags = text.split(":")
    try:
        m, k, n = (int(v) for v in dims.split("x"))
    except ValueError:
        raise ValueError(f"shape {text!r}: expected MxKxN with positive integers") from None
    if min(m, k, n) < 1 or any(f not in ("ta", "tb") for f in flags):
        raise ValueError(f"shape {text!r}: dimensions must be >= 1 and flags :ta or :tb")
    return m, k, n, "ta" in flags, "tb" in flags


def build_flags():
    """The compiler command and flags of the installed parml's kernels (`parml bench c` finds
    them the same way); raises SystemExit without a compiler."""
    from parml.benchmarks import c as bench_c

    info = bench_c.build_info()
    cc = bench_c.find_compiler(info)
    if cc is None:
        raise SystemExit("no C compiler found ($CC, cc, gcc, clang)")
    return cc, list(info["cflags"]) if info else bench_c.DEFAULT_CFLAGS + ["-fopenmp"]


def compile_side(tree, dtype, out_dir, name):
    include = os.path.join(os.path.abspath(tree), "include")
    if not os.path.isfile(os.path.join(include, "parml", "parml.h")):
        raise SystemExit(f"{tree}: no include/parml/parml.h (give a parml repository root)")
    cc, cflags = build_flags()
    src = os.path.join(out_dir, "ab_gemm.c")
    with open(src, "w") as f:
        f.write(HARNESS)
    T, gemm = ("float", "parml_gemm_f32") if dtype == "float32" else ("double", "parml_gemm_f64")
    lib = os.path.join(out_dir, f"{name}.so")
    cmd = [*cc, *cflags, "-fPIC", "-shared", "-Wno-unused-function", f"-DT={T}", f"-DGEMM={gemm}",
           "-I", include, src, "-o", lib, "-lm", "-lpthread"]
    subprocess.run(cmd, check=True)
    handle = ctypes.CDLL(lib)
    handle.ab_gemm.restype = ctypes.c_double
    handle.ab_gemm.argtypes = [ctypes.c_int] * 7
    return handle


def compare(libs, shape, rounds, threads):
    m, k, n, ta, tb = shape
    call = {side: (lambda reps, lib=lib: lib.ab_gemm(m, n, k, ta, tb, reps, threads))
            for side, lib in libs.items()}
    first = call["old"](3)
    call["new"](3)
    if first <= 0:
        raise SystemExit("the C harness failed (out of memory, or the GEMM refused its arguments)")
    reps = max(1, int(0.004 / first))
    ratios, best = [], {"old": float("inf"), "new": float("inf")}
    for r in range(rounds):
        t = {}
        for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
            t[side] = call[side](reps)
            best[side] = min(best[side], t[side])
        ratios.append(t["old"] / t["new"])
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    gflop = 2.0 * m * n * k / 1e9
    return {"shape": f"{m}x{k}x{n}" + (":ta" if ta else "") + (":tb" if tb else ""),
            "median": statistics.median(ratios), "q1": q1, "q3": q3,
            "best_old": gflop / best["old"], "best_new": gflop / best["new"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=150)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shapes", default=SHAPES)
    a = ap.parse_args(argv)
    if a.rounds < 4:
        ap.error("--rounds must be at least 4 (quartiles)")
    if a.threads < 1:
        ap.error("--threads must be at least 1")
    try:
        shapes = [parse_shape(s) for s in a.shapes.split(",")]
    except ValueError as exc:
        ap.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="parml-ab-gemm-") as tmp:
        libs = {side: compile_side(tree, a.dtype, tmp, side)
                for side, tree in (("old", a.old), ("new", a.new))}
        print(f"# new speed / old per round, {a.dtype}, {a.threads} thread(s), {a.rounds} rounds"
              f" ({time.strftime('%Y-%m-%d %H:%M')})")
        print("| product | median | quartiles | best GFLOP/s old / new |")
        print("|---|---|---|---|")
        for shape in shapes:
            r = compare(libs, shape, a.rounds, a.threads)
            print(f"| {r['shape']} | {r['median']:.3f} | {r['q1']:.3f}-{r['q3']:.3f} | "
                  f"{r['best_old']:.1f} / {r['best_new']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
