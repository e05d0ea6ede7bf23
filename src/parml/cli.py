"""The ``parml`` command: info, demo, bench, serve."""
import argparse
import os
import sys
import time

BENCH_AREAS = {
    "gemm": "parml.benchmarks.gemm",
    "add": "parml.benchmarks.elementwise",
    "c": "parml.benchmarks.c",
    "linear": "parml.benchmarks.linear",
    "mlp": "parml.benchmarks.mlp",
    "serving": "parml.benchmarks.serving",
    "dask": "parml.benchmarks.dask",
    "trees": "parml.benchmarks.trees",
}


def cmd_info(args):
    from threadpoolctl import threadpool_info

    import parml
    from . import _isa, _threads, ops
    from ._kernels import _gemm, _histogram, _kernel_sets, _linear, _openmp

    feats = _kernel_sets.cpu_features()
    print(f"parml {parml.__version__}")
    print("CPU features: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in feats.items()))
    print(f"kernel set: {_isa.kernel_set()} -- {_isa.kernel_set_reason()}")
    print("kernel sets available: " + ", ".join(_isa.supported_kernel_sets())
          + " (cap with PARML_ISA=" + "|".join(_isa.NAMES) + ")")
    sid = _isa.kernel_set_id()
    print("per kernel family:")
    for name, single in (("float32", True), ("float64", False)):
        mr, nr, kc, mc, nc, sw = _gemm.kernel_blocking(sid, single)
        skinny = f", skinny n<={sw}" if sw else ""
        print(f"  GEMM {name}: {ops.gemm_kernel_name(name)} micro-kernel "
              f"(MR={mr} NR={nr} KC={kc} MC={mc} NC={nc}{skinny})")
    print(f"  linear row kernels, logistic block, SGD step: {_linear.rowops_name()}")
    print(f"  histograms: {_histogram.hist_loop()} loop"
          + (" (the generic set's scalar loop)" if _histogram.hist_loop() == "scalar" else
             f" ({_isa.kernel_set()})"))
    wide = sid in (_isa.NAMES.index("avx2"), _isa.NAMES.index("avx512"))
    print("  MLP activations and optimiser update: "
          + ("AVX2 vectors (no FMA: bitwise the same as generic)" if wide
             else "C at the baseline ISA"))
    print("  element-wise add, binning, tree prediction: portable C "
          "(compiler-vectorised at the baseline ISA; bandwidth-bound)")
    print(f"OpenMP compiled in: {'yes' if _openmp.openmp_enabled() else 'NO (serial build)'}")
    print(f"OpenMP max threads: {_openmp.get_max_threads()}; CPUs available: "
          f"{_threads.available_cpus()}; n_threads=None -> {parml.effective_n_threads()}")
    print("threadpoolctl sees:")
    for d in threadpool_info():
        print(f"  {d['user_api']:7s} {d['internal_api']:9s} threads={d['num_threads']:<3d} "
              f"version={d.get('version')} {d.get('architecture') or ''} {d['filepath']}")
    return 0


def cmd_demo(args):
    """A small side-by-side on this machine: parml's kernels against numpy, its estimators
    against scikit-learn's."""
    import numpy as np

    import parml
    from . import ops
    from .benchmarks import harness as H

    rng = np.random.default_rng(0)
    nt = parml.effective_n_threads()
    print(f"parml {parml.__version__} demo: kernels against numpy on this machine "
          f"({nt} thread(s), GEMM kernel {ops.gemm_kernel_name()})\n")
    rows = []
    cases = [("matmul 1024x1024 @ 1024x1024", 1024, 1024, 1024),
             ("matmul 256x100 @ 100x256 (MLP layer)", 256, 100, 256),
             ("matmul 256x256 @ 256x128 (MLP layer)", 256, 256, 128)]
    for dtype in (np.float32, np.float64):
        for name, m, k, n in cases:
            A = rng.standard_normal((m, k)).astype(dtype)
            B = rng.standard_normal((k, n)).astype(dtype)
            C = parml.matmul(A, B)
            ref = A.astype(np.float64) @ B.astype(np.float64)
            err = float(np.abs(C - ref).max() / np.abs(ref).max())
            tp = min(H.time_call(lambda: parml.matmul(A, B), 0.05) for _ in range(3))
            tn = min(H.time_call(lambda: A @ B, 0.05) for _ in range(3))
            g = 2.0 * m * n * k / 1e9
            rows.append([name, np.dtype(dtype).name, f"{g / tp:.1f} GFLOP/s", f"{g / tn:.1f} GFLOP/s",
                         f"{tn / tp:.2f}x", f"{err:.1e}"])
    A = rng.standard_normal((2048, 2048))
    B = rng.standard_normal((2048, 2048))
    out, out2 = np.empty_like(A), np.empty_like(A)
    tp = min(H.time_call(lambda: parml.add(A, B, out=out), 0.05) for _ in range(3))
    tn = min(H.time_call(lambda: np.add(A, B, out=out2), 0.05) for _ in range(3))
    gb = 3 * A.nbytes / 1e9
    rows.append(["add 2048x2048", "float64", f"{gb / tp:.1f} GB/s", f"{gb / tn:.1f} GB/s",
                 f"{tn / tp:.2f}x", f"{float(np.abs(out - out2).max()):.1e}"])
    print(H.markdown_table(["kernel", "dtype", "parml", "numpy", "speed-up", "max rel. error"], rows))
    print("\n(best of 3; for careful, alternating, contention-checked numbers run `parml bench gemm`)")
    print()
    _demo_linear(rng)
    print()
    _demo_trees()
    print()
    model = _demo_mlp()
    _demo_save(model)
    return 0


def _demo_save(model):
    """Save the demo's best model (the MLP) safely and print the command that serves it."""
    import tempfile

    from .persistence import save
    path = os.path.join(tempfile.gettempdir(), "parml-demo", "mlp-classifier")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save(model, path, overwrite=True)
    print(f"\nsaved the MLP (JSON + memory-mappable .npy, no pickle) to {path}; serve it with:\n")
    print(f"    parml serve {path} --workers 2      # needs pip install 'parml[serve]'")


def _demo_linear(rng):
    """Linear models on embedded synthetic data: parml against scikit-learn, same data."""
    import warnings

    import sklearn.linear_model as skl
    from sklearn.datasets import make_classification
    from sklearn.metrics import accuracy_score, log_loss

    import parml.linear_model as pl
    from .benchmarks import harness as H

    X, y = make_classification(200_000, 50, n_informative=25, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    Xtr, ytr, Xte, yte = X[:160_000], y[:160_000], X[160_000:], y[160_000:]
    cases = [("LogisticRegression", skl.LogisticRegression(), pl.LogisticRegression(), "log-loss"),
             ("SGDClassifier hinge, 5 epochs", skl.SGDClassifier(max_iter=5, tol=None, random_state=0),
              pl.SGDClassifier(max_iter=5, tol=None, random_state=0), "accuracy")]
    rows = []
    for name, a, b, metric in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ta = min(H.time_call(lambda: a.fit(Xtr, ytr), 0.0) for _ in range(2))
            tb = min(H.time_call(lambda: b.fit(Xtr, ytr), 0.0) for _ in range(2))
        if metric == "log-loss":
            qa, qb = log_loss(yte, a.predict_proba(Xte)), log_loss(yte, b.predict_proba(Xte))
        else:
            qa, qb = accuracy_score(yte, a.predict(Xte)), accuracy_score(yte, b.predict(Xte))
        rows.append([name, f"{tb:.3f} s", f"{ta:.3f} s", f"{ta / tb:.2f}x",
                     f"{metric} {qb:.4f} / {qa:.4f}"])
    print("linear models, 160k x 50 training rows (parml.linear_model vs sklearn.linear_model):\n")
    print(H.markdown_table(["estimator", "parml", "scikit-learn", "speed-up",
                            "test quality (parml / sklearn)"], rows))
    print("\n(best of 2; `parml bench linear` for the full, alternating comparison)")


def _demo_trees():
    """Tree models on embedded synthetic data: parml against scikit-learn, same data."""
    import sklearn.ensemble as ske
    from sklearn.metrics import roc_auc_score

    import parml.ensemble as pe
    from .benchmarks import harness as H
    from .benchmarks import trees as T

    Xtr, ytr, Xte, yte = T._data(100_000)
    cases = [("HistGradientBoostingClassifier, 100 x 31 leaves",
              lambda: T._fit("sklearn", 2, Xtr, ytr), lambda: T._fit("parml", None, Xtr, ytr)),
             ("RandomForestClassifier, 30 full trees",
              lambda: ske.RandomForestClassifier(30, random_state=0, n_jobs=2).fit(Xtr, ytr),
              lambda: pe.RandomForestClassifier(30, random_state=0).fit(Xtr, ytr))]
    rows = []
    for name, a, b in cases:
        ta = min(H.time_call(a, 0.0) for _ in range(2))
        tb = min(H.time_call(b, 0.0) for _ in range(2))
        qa = roc_auc_score(yte, a().predict_proba(Xte)[:, 1])
        qb = roc_auc_score(yte, b().predict_proba(Xte)[:, 1])
        rows.append([name, f"{tb:.3f} s", f"{ta:.3f} s", f"{ta / tb:.2f}x",
                     f"AUC {qb:.4f} / {qa:.4f}"])
    print(f"trees, {len(Xtr) // 1000}k x 28 training rows (parml.ensemble vs sklearn.ensemble):\n")
    print(H.markdown_table(["estimator", "parml", "scikit-learn", "speed-up",
                            "test quality (parml / sklearn)"], rows))
    print("\n(best of 2; `parml bench trees` adds LightGBM and XGBoost, memory and busy cores)")


def _demo_mlp():
    """The MLP on embedded synthetic data: parml against scikit-learn, same network and epochs."""
    from .benchmarks import harness as H
    from .benchmarks import mlp as M

    Xtr, ytr, Xte, yte = M._data(50_000)
    epochs = 2
    ta = min(H.time_call(lambda: M.fit_sklearn(Xtr, ytr, epochs, 2), 0.0) for _ in range(2))
    tb = min(H.time_call(lambda: M.fit_parml(Xtr, ytr, epochs, None), 0.0) for _ in range(2))
    qa = M.fit_sklearn(Xtr, ytr, epochs, 2).score(Xte, yte)
    best = M.fit_parml(Xtr, ytr, epochs, None)
    qb = best.score(Xte, yte)
    rows = [["MLPClassifier 100-256-128-10, Adam, batch 256, float32",
             f"{tb / epochs:.3f} s", f"{ta / epochs:.3f} s", f"{ta / tb:.2f}x",
             f"accuracy {qb:.4f} / {qa:.4f}"]]
    print(f"neural network, {len(Xtr) // 1000}k x 100 training rows, 10 classes, {epochs} epochs "
          "(parml.neural_network vs sklearn.neural_network):\n")
    print(H.markdown_table(["estimator", "parml per epoch", "scikit-learn per epoch", "speed-up",
                            "test quality (parml / sklearn)"], rows))
    print("\n(best of 2; `parml bench mlp` for the full comparison, PyTorch included)")
    return best


def cmd_bench(args):
    import importlib

    areas = list(BENCH_AREAS) if args.area == "all" else [args.area]
    rc = 0
    for area in areas:
        mod = importlib.import_module(BENCH_AREAS[area])
        rc |= mod.main(args.rest)
    return rc


def build_parser():
    from . import __version__

    ap = argparse.ArgumentParser(prog="parml", description="parml: multicore ML on native OpenMP kernels")
    ap.add_argument("--version", action="version", version=f"parml {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="version, CPU features, kernels, OpenMP and thread pools")
    sub.add_parser("demo", help="a small side-by-side of parml against numpy and scikit-learn "
                                "on this machine")
    b = sub.add_parser("bench", help="benchmarks against the anchors (parml bench AREA --help)")
    b.add_argument("area", choices=sorted(BENCH_AREAS) + ["all"])
    b.add_argument("rest", nargs=argparse.REMAINDER, help="options for that benchmark")
    s = sub.add_parser("serve", help="serve a saved model on a gunicorn worker pool "
                                     "(pip install parml[serve])")
    s.add_argument("model_path", help="a model directory written by parml.save")
    s.add_argument("--name", default=None, help="model name in the routes (default: the last "
                                                "path component without extension)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument("--threads-per-worker", type=int, default=None,
                   help="kernel threads per worker (default: max(1, cores // workers))")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--max-body-mb", type=float, default=16.0)
    s.add_argument("--timeout", type=int, default=30, help="seconds before a stuck worker is "
                                                           "replaced")
    return ap


def cmd_serve(args):
    from .persistence import ModelFormatError
    try:
        from .serving._gunicorn import serve
    except ImportError as e:
        print(f"parml serve needs the serving extra: pip install 'parml[serve]' ({e})",
              file=sys.stderr)
        return 2
    try:
        serve(args.model_path, name=args.name, workers=args.workers,
              threads_per_worker=args.threads_per_worker, host=args.host, port=args.port,
              max_body_mb=args.max_body_mb, timeout=args.timeout)
    except (ModelFormatError, ValueError) as e:
        print(f"parml serve: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 0
    t0 = time.perf_counter()
    try:
        rc = {"info": cmd_info, "demo": cmd_demo, "bench": cmd_bench,
              "serve": cmd_serve}[args.command](args)
        if args.command not in ("info", "serve"):
            print(f"\n[{time.perf_counter() - t0:.1f} s]")
        sys.stdout.flush()   # here, not at exit, so that a closed pipe is caught below
    except BrokenPipeError:
        # the reader went away (`parml info | head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
