"""parml.add against numpy.add (same run, alternating): GB/s moved (two reads + one write),
with a preallocated ``out`` and with a freshly allocated result, at 1 and 2 threads."""
import argparse
import os

import numpy as np

import parml
from . import harness as H

SIZES = [256, 1024, 4096]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="parml bench add", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="sizes up to 1024")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join("bench", "results"))
    args = ap.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
    info = H.machine_info()
    print(f"# parml.add vs numpy.add; CPU: {info['cpu']}")
    probe = H.ContentionProbe(2)
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float64, np.float32):
        for n in sizes:
            A = rng.standard_normal((n, n)).astype(dtype)
            B = rng.standard_normal((n, n)).astype(dtype)
            op, on = np.empty_like(A), np.empty_like(A)
            nbytes = 3 * A.nbytes
            for nt in (1, 2):
                for mode in ("out=", "alloc"):
                    if mode == "out=":
                        sides = {"parml": lambda: parml.add(A, B, out=op, n_threads=nt),
                                 "numpy": lambda: np.add(A, B, out=on)}
                    else:
                        sides = {"parml": lambda: parml.add(A, B, n_threads=nt),
                                 "numpy": lambda: np.add(A, B)}
                    res = H.compare(sides, args.repeats, probe, 0.05)
                    gp = nbytes / res["parml"]["median"] / 1e9
                    gn = nbytes / res["numpy"]["median"] / 1e9
                    rows.append({"n": n, "dtype": np.dtype(dtype).name, "threads": nt, "mode": mode,
                                 "parml_gbs": gp, "numpy_gbs": gn, "ratio": gp / gn,
                                 "clean": res["_clean"], "repeats": res["_repeats"]})
                    print(".", end="", flush=True)
    print()
    table = H.markdown_table(
        ["n x n", "dtype", "threads", "result", "parml GB/s", "numpy GB/s (1 thread)", "parml/numpy", "clean"],
        [[r["n"], r["dtype"], r["threads"], r["mode"], f"{r['parml_gbs']:.1f}", f"{r['numpy_gbs']:.1f}",
          f"{r['ratio']:.2f}", f"{r['clean']}/{r['repeats']}"] for r in rows])
    print(table)
    H.write_results(args.out, "add", {"machine": info, "rows": rows}, table)
    print(f"\nresults: {args.out}/add.json, add.md")
    return 0
