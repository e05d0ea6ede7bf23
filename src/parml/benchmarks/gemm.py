"""parml.matmul against numpy's BLAS (same run, alternating): GFLOP/s, ratio, % of peak,
1 and 2 threads, square sizes and the MLP's shapes; plus 2 threads against 1 with a busy core.

Two ratios per case: "parml/numpy" compares the two sides' median speeds; "per repeat" is the
median of each repeat's own ratio (its two sides ran back to back), which a slow stretch of a
shared machine moves less (harness.paired_ratio)."""
import argparse
import os

import numpy as np
from threadpoolctl import threadpool_limits

import parml
from . import harness as H

SQUARE = [64, 128, 256, 512, 1024, 2048, 4096]
SQUARE_QUICK = [64, 128, 256, 512, 1024]
# (name, m, k, n, A transposed, B transposed): the MLP 100-256-128-10 at batch 256
MLP = [
    ("fwd 256x100@100x256", 256, 100, 256, False, False),
    ("fwd 256x256@256x128", 256, 256, 128, False, False),
    ("fwd 256x128@128x10", 256, 128, 10, False, False),
    ("dW X.T@d 100x256@256x256", 100, 256, 256, True, False),
    ("dW H.T@d 256x256@256x128", 256, 256, 128, True, False),
    ("dW H.T@d 128x256@256x10", 128, 256, 10, True, False),
    ("dX d@W.T 256x10@10x128", 256, 10, 128, False, True),
    ("dX d@W.T 256x128@128x256", 256, 128, 256, False, True),
]


def _operands(m, k, n, ta, tb, dtype, rng):
    A = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return (A.T if ta else A), (B.T if tb else B)


def _case(name, m, k, n, ta, tb, dtype, nt, repeats, probe, info, rng):
    A, B = _operands(m, k, n, ta, tb, dtype, rng)
    out_p = np.empty((m, n), dtype)
    out_n = np.empty((m, n), dtype)

    def run_parml():
        parml.matmul(A, B, out=out_p, n_threads=nt)

    def run_numpy():
        np.matmul(A, B, out=out_n)

    # at least 20 ms of calls per repeat: one 512^3 call on two threads (~1.5 ms) is as short as
    # the VM's hiccups and the tuner's probes, which then set a repeat's time alone
    min_time = 0.02
    before, before_long = _tuned_calls(), _tuned_calls(long=True)
    with threadpool_limits(limits=nt, user_api="blas"):
        res = H.compare({"parml": run_parml, "numpy": run_numpy}, repeats, probe, min_time)
    one_share = tuner_one_share(before, _tuned_calls())
    split_share = tuner_one_share(before_long, _tuned_calls(long=True))
    flops = 2.0 * m * n * k
    peak = info["fma_peak_dp_gflops_per_core"] * (2 if dtype == np.float32 else 1) * nt
    gp, gn = flops / res["parml"]["median"] / 1e9, flops / res["numpy"]["median"] / 1e9
    return {"case": name, "m": m, "k": k, "n": n, "dtype": np.dtype(dtype).name, "threads": nt,
            "parml_gflops": gp, "numpy_gflops": gn, "ratio": gp / gn,
            "paired_ratio": H.paired_ratio(res, "parml", "numpy"), "pct_peak": 100 * gp / peak,
            "parml_gflops_range": [flops / res["parml"]["max"] / 1e9, flops / res["parml"]["min"] / 1e9],
            "numpy_gflops_range": [flops / res["numpy"]["max"] / 1e9, flops / res["numpy"]["min"] / 1e9],
            "clean": res["_clean"], "repeats": res["_repeats"], "tuner_one_share": one_share,
            "split_share": split_share}


def _tuned_calls(long=False):
    """{size class: (calls on n threads, calls on one)} of parml.matmul's small-product tuners
    (products predicted under GEMM_SPLIT_MIN_SECONDS on one thread that may use more); with
    long=True, of its layout tuners (longer products: (one task per thread, split) calls)."""
    from parml import ops
    return {key: (t.stats()["units_many"], t.stats()["units_one"])
            for key, t in (ops._layout_tuners if long else ops._small_tuners).items()}


def tuner_one_share(before, after):
    """The share of the tuned calls between two _tuned_calls() snapshots that ran on one
    thread, or None when no call was tuned (one thread asked, or a product too small or too
    large for the tuner). It says whether a low 2-thread figure is the tuner's choice."""
    many = one = 0
    for key, (m, o) in after.items():
        m0, o0 = before.get(key, (0, 0))
        many += m - m0
        one += o - o0
    return one / (many + one) if many + one else None


def _tuned_cell(r):
    if r["tuner_one_share"] is not None:
        return f"{100 * r['tuner_one_share']:.0f}%"
    if r.get("split_share") is not None:
        return f"split {100 * r['split_share']:.0f}%"
    return "-"


def _busy_rows(sizes, repeats, rng):
    """2 threads vs 1 while another process spins on one core (parml and numpy)."""
    from threadpoolctl import ThreadpoolController
    blas = ThreadpoolController().select(user_api="blas")
    rows = []
    with H.BusyCore():
        for n in sizes:
            for dtype in (np.float64, np.float32):
                A, B = _operands(n, n, n, False, False, dtype, rng)
                sides = {}
                for nt in (1, 2):
                    sides[f"parml{nt}"] = (lambda nt=nt: parml.matmul(A, B, n_threads=nt))

                    def np_run(nt=nt):
                        with blas.limit(limits=nt):
                            np.matmul(A, B)
                    sides[f"numpy{nt}"] = np_run
                # the probe would always say "contended" here: every repeat counts
                res = H.compare(sides, repeats, _NoProbe(), 0.02)
                rows.append({"n": n, "dtype": np.dtype(dtype).name,
                             "parml_t2_over_t1": res["parml2"]["median"] / res["parml1"]["median"],
                             "numpy_t2_over_t1": res["numpy2"]["median"] / res["numpy1"]["median"],
                             "parml_over_numpy_2t": res["parml2"]["median"] / res["numpy2"]["median"]})
    return rows


class _NoProbe:
    def clean(self):
        return True


def fmt_range(lo_hi):
    return f"{lo_hi[0]:.0f}–{lo_hi[1]:.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="parml bench gemm", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="sizes up to 1024, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-busy", action="store_true", help="skip the busy-core section")
    ap.add_argument("--out", default=os.path.join("bench", "results"), help="output folder")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    sizes = SQUARE_QUICK if args.quick else SQUARE
    rng = np.random.default_rng(0)
    info = H.machine_info()
    print(f"# parml.matmul vs numpy ({', '.join(d['internal_api'] + ' ' + str(d['version']) + ' ' + str(d['architecture']) for d in info['threadpools'] if d['internal_api'] == 'openblas') or 'numpy BLAS'})")
    print(f"CPU: {info['cpu']}; parml kernel: {info['gemm_kernel']}; {H.peak_line(info)}")
    probe = H.ContentionProbe(2)
    rows = []
    for dtype in (np.float64, np.float32):
        for nt in args.threads:
            for n in sizes:
                reps = repeats if n < 2048 else max(2, repeats - 2)
                rows.append(_case(f"square {n}", n, n, n, False, False, dtype, nt, reps, probe, info, rng))
                print(".", end="", flush=True)
            for case in MLP:
                rows.append(_case(*case, dtype, nt, repeats, probe, info, rng))
                print(".", end="", flush=True)
    print()
    header = ["case", "dtype", "threads", "parml GFLOP/s", "(min–max)", "numpy GFLOP/s",
              "(min–max)", "parml/numpy", "per repeat", "% peak", "clean",
              "tuned calls on 1 thread (long products: split)"]
    table = H.markdown_table(header, [
        [r["case"], r["dtype"], r["threads"], f"{r['parml_gflops']:.1f}", fmt_range(r["parml_gflops_range"]),
         f"{r['numpy_gflops']:.1f}", fmt_range(r["numpy_gflops_range"]), f"{r['ratio']:.2f}",
         f"{r['paired_ratio']:.2f}", f"{r['pct_peak']:.0f}", f"{r['clean']}/{r['repeats']}",
         _tuned_cell(r)]
        for r in rows])
    print(table)
    scaling = []
    for dtype in ("float64", "float32"):
        for n in sizes:
            one = [r for r in rows if r["case"] == f"square {n}" and r["dtype"] == dtype and r["threads"] == 1]
            two = [r for r in rows if r["case"] == f"square {n}" and r["dtype"] == dtype and r["threads"] == 2]
            if one and two:
                scaling.append([n, dtype, f"{two[0]['parml_gflops'] / one[0]['parml_gflops']:.2f}",
                                f"{two[0]['numpy_gflops'] / one[0]['numpy_gflops']:.2f}"])
    if scaling:
        print("\n2 threads / 1 thread speed-up (clean repeats):")
        print(H.markdown_table(["n", "dtype", "parml", "numpy"], scaling))
    busy = []
    if not args.no_busy and len(os.sched_getaffinity(0)) >= 2:
        busy = _busy_rows([256, 1024] if args.quick else [256, 1024, 2048], 3, rng)
        print("\nWith another process spinning on one core: time(2 threads) / time(1 thread)")
        print(H.markdown_table(["n", "dtype", "parml t2/t1", "numpy t2/t1", "parml/numpy time at 2 threads"],
                               [[b["n"], b["dtype"], f"{b['parml_t2_over_t1']:.2f}",
                                 f"{b['numpy_t2_over_t1']:.2f}", f"{b['parml_over_numpy_2t']:.2f}"] for b in busy]))
    H.write_results(args.out, "gemm", {"machine": info, "rows": rows, "busy": busy}, table)
    _plot(rows, sizes, os.path.join(args.out, "gemm.png"))
    print(f"\nresults: {args.out}/gemm.json, gemm.md, gemm.png")
    return 0


def _plot(rows, sizes, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install parml[bench])")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, dtype in zip(axes, ("float64", "float32")):
        for nt, style in ((1, "-"), (2, "--")):
            for lib, color in (("parml", "tab:red"), ("numpy", "tab:blue")):
                pts = [(r["n"], r[f"{lib}_gflops"]) for r in rows
                       if r["case"].startswith("square") and r["dtype"] == dtype and r["threads"] == nt]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, style, color=color, marker="o", label=f"{lib}, {nt} thread(s)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("n (square matrices)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"matmul {dtype}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
