"""The checks .ci/wheels runs on parml's sdist and wheels (standard library only, except where
an installed parml and its dependencies are the point).

  python wheel_checks.py sdist PARML.tar.gz --repo REPO       what the sdist carries
  python wheel_checks.py contents WHEEL --repo REPO [--arch A] what a wheel carries, its tags, size
  python wheel_checks.py installed [--smoke] [--repo REPO]     the installed parml, as a user has it
  python wheel_checks.py missing-lib                           a vendored library gone: a clear error

`installed` and `missing-lib` run with the python that has the wheel installed, from a directory
outside the source tree. Each failure raises; the exit status is 0 only when every check passed.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

MAX_WHEEL_BYTES = 10 * 1024 * 1024
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}


def check(cond, msg):
    if not cond:
        raise SystemExit(f"FAILED: {msg}")


def ok(msg):
    print(f"  ok: {msg}", flush=True)


def repo_headers(repo):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(repo, "include", "parml", "*.h")))


def repo_extensions(repo):
    return sorted(os.path.splitext(os.path.basename(p))[0]
                  for p in glob.glob(os.path.join(repo, "pyx", "parml", "_kernels", "*.pyx")))


BENCH_C_SDIST = "src/parml/benchmarks/c/parml_bench.c"
BENCH_C_WHEEL = "parml/benchmarks/c/parml_bench.c"


# ---------------------------------------------------------------------------------------------
def cmd_sdist(args):
    with tarfile.open(args.sdist) as tf:
        names = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    s = set(names)
    for f in ("setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "PKG-INFO",
              "src/parml/__init__.py"):
        check(f in s, f"sdist lacks {f}")
    for h in repo_headers(args.repo):
        check(f"include/parml/{h}" in s, f"sdist lacks include/parml/{h}")
    for e in repo_extensions(args.repo):
        check(f"pyx/parml/_kernels/{e}.pyx" in s, f"sdist lacks pyx/parml/_kernels/{e}.pyx")
    pxd = [os.path.basename(p) for p in glob.glob(os.path.join(args.repo, "pyx", "**", "*.pxd"),
                                                  recursive=True)]
    for p in pxd:
        check(any(n.endswith("/" + p) for n in names), f"sdist lacks {p}")
    check(BENCH_C_SDIST in s, f"sdist lacks {BENCH_C_SDIST} (parml bench c)")
    bad = [n for n in names if n != BENCH_C_SDIST and re.search(
        r"(\.(so|o|c|pyc)$)|(^build/)|(^dist/)|(__pycache__)|_build_info\.json$", n)]
    check(not bad, f"sdist carries build products: {bad[:10]}")
    ok(f"sdist {os.path.basename(args.sdist)}: {len(names)} entries, setup.py, pyproject.toml, "
       f"README.md, LICENSE, {len(repo_headers(args.repo))} headers, "
       f"{len(repo_extensions(args.repo))} .pyx; no generated C or build products")


# ---------------------------------------------------------------------------------------------
def cmd_contents(args):
    whl = args.wheel
    size = os.path.getsize(whl)
    check(size < MAX_WHEEL_BYTES, f"{whl} is {size} bytes (limit {MAX_WHEEL_BYTES})")
    m = re.match(r"parml-[^-]+-(cp\d+)-(cp\d+)-(.+)\.whl$", os.path.basename(whl))
    check(m, f"unexpected wheel name {whl}")
    plats = m.group(3).split(".")
    arch = args.arch
    check(all(re.fullmatch(rf"(manylinux_2_\d+|manylinux\d+)_{arch}", p) for p in plats),
          f"platform tags {plats} are not all manylinux ..._{arch}")
    if args.plat:
        check(args.plat in plats, f"platform tags {plats} lack {args.plat}")
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        s = set(names)
        distinfo = sorted({n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")})
        check(len(distinfo) == 1, f"dist-info directories: {distinfo}")
        di = distinfo[0]
        wheel_meta = zf.read(f"{di}/WHEEL").decode()
        tags = re.findall(r"^Tag: (.+)$", wheel_meta, re.M)
        check(sorted(t.split("-")[2] for t in tags) == sorted(plats),
              f"WHEEL tags {tags} do not match the file name's {plats}")
        lic = [n for n in names if n.startswith(di + "/") and os.path.basename(n) == "LICENSE"]
        check(lic, f"no LICENSE in {di}")
        text = zf.read(lic[0]).decode()
        check("the parml developers" in text and "Redistribution and use" in text,
              f"{lic[0]} is not parml's BSD-3-Clause license")
        check("License-Expression: BSD-3-Clause" in zf.read(f"{di}/METADATA").decode()
              or "License: BSD-3-Clause" in zf.read(f"{di}/METADATA").decode(),
              "METADATA names no BSD-3-Clause license")
        for f in ("parml/__init__.py", "parml/_threads.py", "parml/cli.py", f"{di}/entry_points.txt"):
            check(f in s, f"wheel lacks {f}")
        check(any(n.startswith("parml/ensemble/") for n in names), "wheel lacks parml/ensemble")
        # Compiled modules: one per .pyx, each an ELF of this architecture.
        sos = {}
        for n in names:
            mm = re.fullmatch(r"parml/_kernels/(_\w+)\.cpython-\d+-(\w+)-linux-gnu\.so", n)
            if mm:
                check(mm.group(2) == arch, f"{n} is named for {mm.group(2)}, not {arch}")
                sos[mm.group(1)] = n
        want = repo_extensions(args.repo)
        check(sorted(sos) == want, f"compiled modules {sorted(sos)} != the .pyx files {want}")
        for n in list(sos.values()):
            head = zf.read(n)[:20]
            check(head[:4] == b"\x7fELF", f"{n} is not an ELF file")
            machine = int.from_bytes(head[18:20], "little")
            check(machine == ELF_MACHINE[arch], f"{n}: ELF machine {machine}, not {arch}")
        # Public C headers.
        for h in repo_headers(args.repo):
            check(f"parml/include/parml/{h}" in s, f"wheel lacks parml/include/parml/{h}")
        # The vendored OpenMP runtime, under a hashed name.
        libs = [n for n in names if n.startswith("parml.libs/")]
        gomp = [n for n in libs if re.fullmatch(r"parml\.libs/libgomp-[0-9a-f]{8,}\.so[.\d]*", n)]
        check(len(gomp) == 1, f"expected one hashed libgomp under parml.libs/, found {libs}")
        # Nothing that does not belong.
        # The C benchmark's source and the build flags ship: parml bench c compiles the one with
        # the other against the headers above.
        for f in (BENCH_C_WHEEL, "parml/_build_info.json"):
            check(f in s, f"wheel lacks {f} (parml bench c)")
        bad = [n for n in names if n != BENCH_C_WHEEL and re.search(
            r"(^|/)(tests?|build|__pycache__)/|\.(c|cpp|o|a|pyc|pyx|pxd)$|\.egg-info", n)]
        check(not bad, f"wheel carries tests, sources or build products: {bad[:10]}")
        top = sorted({n.split("/")[0] for n in names})
        check(top == sorted(["parml", "parml.libs", di]), f"unexpected top-level entries {top}")
    ok(f"{os.path.basename(whl)}: {size / 1e6:.2f} MB, tags {', '.join(plats)}; {len(sos)} compiled "
       f"{arch} modules, {len(repo_headers(args.repo))} headers, LICENSE in {di}, vendored "
       f"{', '.join(os.path.basename(g) for g in gomp)}; no tests or build products")


# ---------------------------------------------------------------------------------------------
def cmd_installed(args):
    import shutil
    import platform

    # As a user has it: no compiler, parml from site-packages, not from a source tree.
    for tool in ("gcc", "cc", "clang", "c++", "g++"):
        check(shutil.which(tool) is None, f"a compiler is reachable: {shutil.which(tool)}")
    ok(f"no C compiler on PATH (CC={os.environ.get('CC', '')!r})")
    import numpy as np
    import parml
    pkg = os.path.dirname(os.path.abspath(parml.__file__))
    if args.repo:
        check(not pkg.startswith(os.path.abspath(args.repo) + os.sep),
              f"parml imported from the source tree: {pkg}")
    check(not os.path.exists(os.path.join(os.getcwd(), "parml")), "a parml/ in the working directory")
    ok(f"parml {parml.__version__} from {pkg} on {platform.machine()} (kernel set {parml.kernel_set()})")

    # `parml info` (the console script where the installer made one, else python -m parml).
    exe = shutil.which("parml")
    cmd = [exe, "info"] if exe else [sys.executable, "-m", "parml", "info"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    check("kernel set" in r.stdout and "OpenMP" in r.stdout, f"parml info said:\n{r.stdout}")
    print("    " + "\n    ".join(r.stdout.strip().splitlines()[:6]) + "\n    ...")
    ok(f"`{'parml' if exe else 'python -m parml'} info`")

    # OpenMP: compiled in, parml's runtime is the vendored one, and threadpoolctl controls it.
    from threadpoolctl import threadpool_info, threadpool_limits
    from parml._kernels import _openmp
    check(_openmp.openmp_enabled(), "the kernels were built without OpenMP")
    libdir = os.path.join(os.path.dirname(pkg), "parml.libs")
    omp = [i for i in threadpool_info() if i["user_api"] == "openmp"]
    ours = [i for i in omp if os.path.dirname(os.path.realpath(i["filepath"])) == os.path.realpath(libdir)]
    check(len(ours) == 1 and re.fullmatch(r"libgomp-[0-9a-f]{8,}\.so[.\d]*",
                                          os.path.basename(ours[0]["filepath"])),
          f"threadpoolctl lists no vendored libgomp under {libdir}: {omp}")
    ok(f"threadpoolctl lists parml's runtime {os.path.basename(ours[0]['filepath'])} "
       f"({ours[0]['internal_api']}, {ours[0]['num_threads']} threads) among {len(omp)} OpenMP libraries")
    before = _openmp.get_max_threads()
    with threadpool_limits(3, user_api="openmp"):
        check(_openmp.get_max_threads() == 3, "threadpool_limits(3, 'openmp') did not reach parml")
    with threadpool_limits(1, user_api="openmp"):
        check(_openmp.get_max_threads() == 1 and parml.effective_n_threads() == 1,
              "threadpool_limits(1, 'openmp') did not limit parml")
        check(_openmp.team_size(4) >= 1, "team_size failed")
    check(_openmp.get_max_threads() == before, "threadpool_limits did not restore parml's limit")
    check(_openmp.team_size(2) == 2, "parml's OpenMP runtime gave no second thread")
    ok(f"threadpool_limits(1|3, 'openmp') sets parml's limit (effective_n_threads() == 1), "
       f"restored to {before}; a 2-thread team gets 2 threads")

    # C headers: parml.get_include() is the package's own include directory, with parml.h.
    inc = os.path.join(pkg, "include")
    d = parml.get_include()
    check(os.path.isfile(os.path.join(d, "parml", "parml.h")), f"get_include() = {d} lacks parml/parml.h")
    check(os.path.realpath(d) == os.path.realpath(inc), f"get_include() = {d}, not the package's {inc}")
    ok(f"parml.get_include() = {d} holds parml/parml.h")
    # The C benchmark needs a compiler: here, with none, it must say so and exit 2 (no traceback).
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        res = subprocess.run([sys.executable, "-m", "parml", "bench", "c", "--tiny", "--out",
                              tempfile.mkdtemp()], capture_output=True, text=True, timeout=120)
        check(res.returncode == 2 and "no C compiler found" in res.stderr
              and "Traceback" not in res.stderr,
              f"parml bench c without a compiler: rc {res.returncode}, {res.stderr[-300:]!r}")
        ok("parml bench c without a compiler: 'no C compiler found', exit status 2")

    # GEMM against numpy, both dtypes, odd shapes and layouts, 1 and 2 threads.
    rng = np.random.default_rng(0)
    shapes = [(7, 5, 3), (65, 33, 17), (128, 256, 96)] + ([] if args.smoke else [(513, 301, 257)])
    for dt, tol in ((np.float32, 2e-4), (np.float64, 1e-11)):
        for m, k, n in shapes:
            A = rng.standard_normal((m, k)).astype(dt)
            B = rng.standard_normal((k, n)).astype(dt)
            ref = A.astype(np.float64) @ B.astype(np.float64)
            for nt in (1, 2):
                for a, b in ((A, B), (np.asfortranarray(A), B.T.copy().T)):
                    C = parml.matmul(a, b, n_threads=nt)
                    check(C.dtype == dt and C.shape == (m, n), f"matmul {m}x{k}x{n} {C.dtype} {C.shape}")
                    err = np.max(np.abs(C - ref)) / max(1.0, np.max(np.abs(ref)))
                    check(err < tol * np.sqrt(k), f"matmul {dt.__name__} {m}x{k}x{n} nt={nt}: error {err:.2e}")
    ok(f"parml.matmul = numpy's product (float32/float64, {len(shapes)} shapes, C/Fortran, 1-2 threads)")

    # A fit of each estimator family against scikit-learn.
    from sklearn.datasets import make_classification, make_regression
    from sklearn import ensemble as sk_ens, linear_model as sk_lin, neural_network as sk_nn, tree as sk_tree
    from parml import ensemble as p_ens, linear_model as p_lin, neural_network as p_nn, tree as p_tree
    n = 1200 if args.smoke else 4000
    X, y = make_classification(n, 12, n_informative=6, random_state=0)
    Xtr, Xte, ytr, yte = X[: n * 3 // 4], X[n * 3 // 4:], y[: n * 3 // 4], y[n * 3 // 4:]

    def acc(est):
        return float((est.fit(Xtr, ytr).predict(Xte) == yte).mean())

    lr_p = p_lin.LogisticRegression(C=1.0).fit(Xtr, ytr)
    lr_s = sk_lin.LogisticRegression(C=1.0).fit(Xtr, ytr)
    check(np.allclose(lr_p.coef_, lr_s.coef_, rtol=1e-3, atol=1e-3),
          f"LogisticRegression coef_ differs from scikit-learn's by {np.max(np.abs(lr_p.coef_ - lr_s.coef_)):.2e}")
    Xr, yr = make_regression(n, 20, noise=1.0, random_state=0)
    rg_p = p_lin.Ridge(alpha=1.0).fit(Xr, yr)
    rg_s = sk_lin.Ridge(alpha=1.0).fit(Xr, yr)
    check(np.allclose(rg_p.coef_, rg_s.coef_, rtol=1e-8, atol=1e-8), "Ridge coef_ differs from scikit-learn's")
    ok(f"linear_model: LogisticRegression coef_ within 1e-3 of scikit-learn's "
       f"({np.max(np.abs(lr_p.coef_ - lr_s.coef_)):.1e}), Ridge within 1e-8")
    it = 30 if args.smoke else 100
    pairs = [
        ("ensemble.HistGradientBoostingClassifier",
         p_ens.HistGradientBoostingClassifier(max_iter=it, early_stopping=False, random_state=0),
         sk_ens.HistGradientBoostingClassifier(max_iter=it, early_stopping=False, random_state=0), 0.03),
        ("ensemble.RandomForestClassifier",
         p_ens.RandomForestClassifier(n_estimators=20, random_state=0),
         sk_ens.RandomForestClassifier(n_estimators=20, random_state=0), 0.04),
        ("tree.DecisionTreeClassifier", p_tree.DecisionTreeClassifier(max_depth=8, random_state=0),
         sk_tree.DecisionTreeClassifier(max_depth=8, random_state=0), 0.06),
        ("neural_network.MLPClassifier",
         p_nn.MLPClassifier((32,), max_iter=30 if args.smoke else 60, random_state=0),
         sk_nn.MLPClassifier((32,), max_iter=30 if args.smoke else 60, random_state=0), 0.04),
    ]
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    for name, p, s, slack in pairs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ap, as_ = acc(p), acc(s)
        check(ap >= 0.75 and ap >= as_ - slack,
              f"{name}: accuracy {ap:.3f} against scikit-learn's {as_:.3f}")
        ok(f"{name}: accuracy {ap:.3f} (scikit-learn {as_:.3f})")


# ---------------------------------------------------------------------------------------------
def cmd_missing_lib(args):
    import importlib.util
    spec = importlib.util.find_spec("parml")          # locates parml without importing it
    pkg = os.path.dirname(spec.origin)
    libdir = os.path.join(os.path.dirname(pkg), "parml.libs")
    libs = glob.glob(os.path.join(libdir, "libgomp-*.so*"))
    check(len(libs) == 1, f"no vendored libgomp in {libdir}")
    lib = libs[0]
    name = os.path.basename(lib)
    hidden = lib + ".moved-away"
    os.rename(lib, hidden)
    try:
        r = subprocess.run([sys.executable, "-c", "import parml"], capture_output=True, text=True,
                           timeout=600)
    finally:
        os.rename(hidden, lib)
    check(r.returncode == 1, f"import parml without {name}: exit {r.returncode} (a crash, not an "
                             f"ImportError?)\n{r.stderr}")
    last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    check(last.startswith("ImportError") and name in last,
          f"import parml without {name}: the error does not name the file:\n{r.stderr}")
    ok(f"with {name} removed, import parml fails with: {last}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sdist")
    p.add_argument("sdist")
    p.add_argument("--repo", required=True)
    p = sub.add_parser("contents")
    p.add_argument("wheel")
    p.add_argument("--repo", required=True)
    p.add_argument("--arch", default="x86_64", choices=sorted(ELF_MACHINE))
    p.add_argument("--plat", help="a platform tag the wheel must carry (e.g. manylinux_2_17_x86_64)")
    p = sub.add_parser("installed")
    p.add_argument("--smoke", action="store_true", help="smaller problems (for emulation)")
    p.add_argument("--repo", help="the source tree parml must not be imported from")
    sub.add_parser("missing-lib")
    args = ap.parse_args()
    {"sdist": cmd_sdist, "contents": cmd_contents, "installed": cmd_installed,
     "missing-lib": cmd_missing_lib}[args.cmd](args)


if __name__ == "__main__":
    main()
