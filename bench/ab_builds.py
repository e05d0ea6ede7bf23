"""Two builds of parml, same workloads, alternately: is a change free of cost?

    python3 bench/ab_builds.py OLD_SRC NEW_SRC [--rounds 3] [--only hgb,gemm]

OLD_SRC and NEW_SRC are the `src` folders of two built trees (python3 setup.py build_ext
--inplace in each). Each round runs every workload once under each build, in a fresh process
(alternating which goes first), and each process times its workload a few times after a warm-up.
Reported per workload: the best and the median time of each build over all rounds, and new/old.
On a shared machine compare the best times (a contended repeat only adds time); a ratio within
a few percent of 1.0 is noise."""

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKLOADS = {
    # name: (setup, timed statement, repeats)
    "hgb fit 200k x 28": (
        "from sklearn.datasets import make_classification\n"
        "from parml.ensemble import HistGradientBoostingClassifier as M\n"
        "X, y = make_classification(200_000, 28, random_state=0)\n",
        "M(max_iter=50, early_stopping=False, n_threads=NT).fit(X, y)", 3),
    "hgb predict 200k": (
        "from sklearn.datasets import make_classification\n"
        "from parml.ensemble import HistGradientBoostingClassifier as M\n"
        "X, y = make_classification(200_000, 28, random_state=0)\n"
        "m = M(max_iter=50, early_stopping=False, n_threads=NT).fit(X, y)\n",
        "m.predict_proba(X)", 5),
    "rf fit 50k x 20 (max_leaf_nodes)": (
        "from sklearn.datasets import make_classification\n"
        "from parml.ensemble import RandomForestClassifier as M\n"
        "X, y = make_classification(50_000, 20, random_state=0)\n",
        "M(n_estimators=20, max_leaf_nodes=512, random_state=0, n_threads=NT).fit(X, y)", 3),
    "logistic fit 100k x 100": (
        "from sklearn.datasets import make_classification\n"
        "from parml.linear_model import LogisticRegression as M\n"
        "X, y = make_classification(100_000, 100, random_state=0)\n",
        "M(max_iter=100, n_threads=NT).fit(X, y)", 3),
    "sgd fit 100k x 100": (
        "from sklearn.datasets import make_classification\n"
        "from parml.linear_model import SGDClassifier as M\n"
        "X, y = make_classification(100_000, 100, random_state=0)\n",
        "M(max_iter=5, tol=None, random_state=0, n_threads=NT).fit(X, y)", 3),
    "mlp fit 20k x 100, 3 epochs": (
        "import warnings\n"
        "from sklearn.datasets import make_classification\n"
        "from parml.neural_network import MLPClassifier as M\n"
        "X, y = make_classification(20_000, 100, n_classes=4, n_informative=10, random_state=0)\n"
        "warnings.simplefilter('ignore')\n",
        "M(hidden_layer_sizes=(256, 128), max_iter=3, random_state=0, n_threads=NT).fit(X, y)", 3),
    "gemm f32 64/128/256 x100": (
        "import numpy as np, parml\n"
        "r = np.random.default_rng(0)\n"
        "P = [(r.standard_normal((n, n)).astype(np.float32),) * 2 for n in (64, 128, 256)]\n",
        "for a, b in P:\n    for _ in range(100): parml.matmul(a, b, n_threads=NT)", 5),
    # a product of one size repeated only a few times: what its size class's thread tuner costs
    # before it has settled (each timed run starts with no tuner state)
    "gemm 512 first 6 calls, f64 and f32": (
        "import numpy as np, parml, parml.ops\n"
        "r = np.random.default_rng(0)\n"
        "P = [(r.standard_normal((512, 512)).astype(d),) * 2 for d in (np.float64, np.float32)]\n"
        "C = [np.empty((512, 512), a.dtype) for a, _ in P]\n",
        "parml.ops._small_tuners.clear()\n"
        "for (a, b), c in zip(P, C):\n"
        "    for _ in range(6): parml.matmul(a, b, out=c, n_threads=NT)", 7),
    "gemm 64 f32 and f64, out given, x1000": (
        "import numpy as np, parml\n"
        "r = np.random.default_rng(0)\n"
        "P = [r.standard_normal((64, 64)).astype(d) for d in (np.float32, np.float64)]\n"
        "C = [np.empty((64, 64), a.dtype) for a in P]\n",
        "for a, c in zip(P, C):\n"
        "    for _ in range(1000): parml.matmul(a, a, out=c, n_threads=NT)", 5),
    "gemm f32 512 x20": (
        "import numpy as np, parml\n"
        "r = np.random.default_rng(0)\n"
        "a = r.standard_normal((512, 512)).astype(np.float32)\n",
        "for _ in range(20): parml.matmul(a, a, n_threads=NT)", 5),
    # the MLP benchmark's products (100-256-128-10, batch 256): forward, the deltas' d . W^T and
    # the weight gradients' A^T . d
    "gemm f32 MLP layer shapes x50": (
        "import numpy as np, parml\n"
        "r = np.random.default_rng(0)\n"
        "m = lambda *s: r.standard_normal(s).astype(np.float32)\n"
        "P = [(m(256, 100), m(100, 256)), (m(256, 256), m(256, 128)), (m(256, 128), m(128, 10)),\n"
        "     (m(256, 10), m(128, 10).T), (m(256, 128), m(256, 128).T), (m(256, 128).T, m(256, 10)),\n"
        "     (m(256, 256).T, m(256, 128)), (m(256, 100).T, m(256, 256))]\n",
        "for a, b in P:\n    for _ in range(50): parml.matmul(a, b, n_threads=NT)", 5),
    "gemm f64 1024": (
        "import numpy as np, parml\n"
        "r = np.random.default_rng(0)\n"
        "a = r.standard_normal((1024, 1024))\n",
        "parml.matmul(a, a, n_threads=NT)", 5),
}

RUNNER = r"""
import json, sys, time
NT = {nt}
{setup}
def work():
{body}
work()
ts = []
for _ in range({repeats}):
    t0 = time.perf_counter(); work(); ts.append(time.perf_counter() - t0)
print(json.dumps(ts))
"""


def run(src, name, nt):
    setup, stmt, repeats = WORKLOADS[name]
    body = "\n".join("    " + line for line in stmt.splitlines())
    code = RUNNER.format(nt=nt, setup=setup, body=body, repeats=repeats)
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default=None, help="comma-separated substrings of workload names")
    args = ap.parse_args(argv)
    names = [w for w in WORKLOADS
             if args.only is None or any(s in w for s in args.only.split(","))]
    print(f"| workload | threads | old best | new best | new/old best | old median | "
          f"new median | new/old median |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        for nt in map(int, args.threads.split(",")):
            times = {"old": [], "new": []}
            for r in range(args.rounds):
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                for side in order:
                    times[side] += run(getattr(args, side), name, nt)
            bo, bn = min(times["old"]), min(times["new"])
            mo, mn = statistics.median(times["old"]), statistics.median(times["new"])
            print(f"| {name} | {nt} | {bo:.4f} | {bn:.4f} | {bn / bo:.3f} | {mo:.4f} | "
                  f"{mn:.4f} | {mn / mo:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
