"""MLP training against scikit-learn and PyTorch (same run, alternating, contention-probed).

The reference problem: make_classification(200_000, 100, n_classes=10, n_informative=50),
standardized, 160k training rows, network 100-256-128-10 ReLU, Adam lr 1e-3, batch 256,
float32; time per epoch (a 3-epoch fit / 3) and test accuracy after those epochs, at 1 and 2
threads. PyTorch runs the same network, optimiser, batches and epochs when `import torch` works
(`pip install torch==2.13.0`, CPU build).

Sections: ``epochs`` (the table above), ``busy`` (2 threads vs 1 with another process busy on one
core), ``small`` (a small network and batch, where a second thread must earn its keep or idle)."""
import argparse
import contextlib
import os
import warnings

import numpy as np

from . import harness as H

HIDDEN = (256, 128)
BATCH = 256
LR = 1e-3


def _data(n=200_000, d=100, seed=0):
    from sklearn.datasets import make_classification
    X, y = make_classification(n, d, n_classes=10, n_informative=50, random_state=seed)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    k = int(0.8 * n)
    return np.ascontiguousarray(X[:k]), y[:k], np.ascontiguousarray(X[k:]), y[k:]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def fit_parml(X, y, epochs, nt, hidden=HIDDEN, batch=BATCH, dtype=np.float32):
    from parml.neural_network import MLPClassifier
    m = MLPClassifier(hidden, batch_size=batch, learning_rate_init=LR, max_iter=epochs,
                      random_state=0, n_threads=nt, dtype=dtype, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m.fit(X, y)


def fit_sklearn(X, y, epochs, nt, hidden=HIDDEN, batch=BATCH):
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits
    m = MLPClassifier(hidden, batch_size=batch, learning_rate_init=LR, max_iter=epochs,
                      random_state=0, tol=0.0)
    with threadpool_limits(nt), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m.fit(X, y)


class TorchMLP:
    """The same network trained the textbook PyTorch way: shuffled mini-batches, cross-entropy,
    Adam with scikit-learn's L2 term (alpha / batch as weight decay on the weights)."""

    def __init__(self, X, y, epochs, nt, hidden=HIDDEN, batch=BATCH, alpha=1e-4):
        torch = _torch()
        torch.set_num_threads(nt)
        torch.manual_seed(0)
        sizes = [X.shape[1], *hidden, int(y.max()) + 1]
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*layers)
        weights = [p for n, p in self.net.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.net.named_parameters() if n.endswith("bias")]
        opt = torch.optim.Adam([{"params": weights, "weight_decay": alpha / batch},
                                {"params": biases, "weight_decay": 0.0}], lr=LR)
        Xt = torch.from_numpy(X)
        yt = torch.from_numpy(y.astype(np.int64))
        g = torch.Generator().manual_seed(0)
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in range(epochs):
            perm = torch.randperm(len(Xt), generator=g)
            for s in range(0, len(Xt), batch):
                idx = perm[s:s + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(self.net(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()

    def score(self, X, y):
        torch = _torch()
        with torch.no_grad():
            return float((self.net(torch.from_numpy(X)).argmax(1).numpy() == y).mean())


def _alternate(sides, repeats, probe):
    """{name: (median seconds, last result, (min, max))}, clean repeats: H.alternate_calls."""
    res, n_clean = H.alternate_calls(sides, repeats, probe)
    return {n: (r["median"], r["result"], (min(r["times"]), max(r["times"])))
            for n, r in res.items()}, n_clean


def bench_epochs(data, epochs, repeats, probe, with_torch):
    Xtr, ytr, Xte, yte = data
    X64 = Xtr.astype(np.float64)
    rows = []
    for nt in (1, 2):
        sides = {"parml": lambda: fit_parml(Xtr, ytr, epochs, nt),
                 "sklearn": lambda: fit_sklearn(Xtr, ytr, epochs, nt)}
        if nt == 2:
            sides["sklearn f64"] = lambda: fit_sklearn(X64, ytr, epochs, nt)
        if with_torch:
            sides["torch"] = lambda: TorchMLP(Xtr, ytr, epochs, nt)
        res, n_clean = _alternate(sides, repeats, probe)
        p = res["parml"][0] / epochs
        for name in sides:
            sec, model, (lo, hi) = res[name]
            acc = model.score(Xte.astype(np.float64) if name == "sklearn f64" else Xte, yte)
            rows.append([name, nt, f"{sec / epochs:.3f} s", f"{lo / epochs:.3f}-{hi / epochs:.3f}",
                         f"{acc:.4f}", "1" if name == "parml" else f"{p / (sec / epochs):.2f}",
                         f"{n_clean}/{repeats}"])
    return rows


def bench_threads(data, epochs, repeats, probe, hidden, batch, label, with_torch):
    """parml at 2 threads vs 1 (and PyTorch's), idle and beside a busy core."""
    Xtr, ytr, _, _ = data
    rows = []
    for busy in (False, True):
        with (H.BusyCore() if busy else contextlib.nullcontext()):
            sides = {f"parml t{nt}": (lambda t=nt: fit_parml(Xtr, ytr, epochs, t, hidden, batch))
                     for nt in (1, 2)}
            if with_torch:
                sides.update({f"torch t{nt}": (lambda t=nt: TorchMLP(Xtr, ytr, epochs, t, hidden, batch))
                              for nt in (1, 2)})
            res, n_clean = _alternate(sides, repeats, probe)
            for lib in ("parml", "torch") if with_torch else ("parml",):
                t1, t2 = res[f"{lib} t1"][0] / epochs, res[f"{lib} t2"][0] / epochs
                extra = ""
                if lib == "parml":
                    st = res["parml t2"][1]._thread_tuner.stats()
                    extra = f"{st['units_many']}/{st['units_many'] + st['units_one']} batches on 2"
                rows.append([label, "busy core" if busy else "idle", lib, f"{t1:.3f} s",
                             f"{t2:.3f} s", f"{t2 / t1:.2f}", extra, f"{n_clean}/{repeats}"])
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog="parml bench mlp", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="40k rows, 1 epoch, 2 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--only", choices=["epochs", "busy", "small"], default=None)
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    ap.add_argument("--out", default=os.path.join("bench", "results"))
    args = ap.parse_args(argv)
    n = 50_000 if args.quick else 200_000
    epochs = args.epochs or (1 if args.quick else 3)
    repeats = args.repeats or (2 if args.quick else 3)
    with_torch = _torch() is not None and not args.no_torch
    info = H.machine_info()
    print(f"# MLP 100-256-128-10: parml vs scikit-learn{' and PyTorch' if with_torch else ''}; "
          f"CPU: {info['cpu']}")
    if not with_torch:
        print("(PyTorch not installed: `pip install torch==2.13.0` adds it to the comparison)")
    probe = H.ContentionProbe(2)
    data = _data(n)
    payload = {"machine": info, "epochs": epochs, "rows": len(data[0])}
    tables = []
    if args.only in (None, "epochs"):
        r = bench_epochs(data, epochs, repeats, probe, with_torch)
        tables.append(f"## Time per epoch ({len(data[0])} rows, batch {BATCH}, Adam, float32; "
                      f"accuracy after {epochs} epoch(s))\n\n" + H.markdown_table(
                          ["library", "threads", "per epoch", "min-max", "test accuracy",
                           "parml / this", "clean"], r))
        payload["epochs_table"] = r
    if args.only in (None, "busy"):
        r = bench_threads(data, epochs, max(2, repeats), probe, HIDDEN, BATCH, "100-256-128-10, batch 256",
                          with_torch)
        tables.append("## 2 threads vs 1, idle and with another process busy on one core\n\n" +
                      H.markdown_table(["network", "machine", "library", "1 thread", "2 threads",
                                        "t2 / t1", "parml's tuner", "clean"], r))
        payload["busy"] = r
    if args.only in (None, "small"):
        r = bench_threads(data, 1, max(2, repeats), probe, (32,), 32, "100-32-10, batch 32",
                          with_torch)
        tables.append("## Small batches: the second thread must earn its keep or stay idle\n\n" +
                      H.markdown_table(["network", "machine", "library", "1 thread", "2 threads",
                                        "t2 / t1", "parml's tuner", "clean"], r))
        payload["small"] = r
    print()
    table = "\n\n".join(tables)
    print(table)
    H.write_results(args.out, "mlp", payload, table)
    print(f"\nresults: {args.out}/mlp.json, mlp.md")
    return 0
