"""Serving throughput and worker memory: `parml serve` against scikit-learn pickles behind a
minimal Flask app under gunicorn (the common tutorial setup), in the same run, on 127.0.0.1.

* Load: wrk (Debian's package) with 16 connections when it is installed, else a Python client
  with 16 threads; 10-second runs (--quick: 3 s); requests/s and p50/p99 latency for 1-row and
  100-row requests. Models: LogisticRegression, an MLP (100-256-128-10) and a 100-tree binary
  HistGradientBoosting, parml's served with W = 1 and 2 workers,
  scikit-learn's with gunicorn -w 2 (its OpenMP threads at their default).
* Memory: resident, proportional and anonymous memory of each worker serving a forest whose
  arrays take 210 MB, with W = 1, 2, 4, against workers serving a tiny forest.
"""
import argparse
import http.client
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

from . import harness as H

CONNECTIONS = 16


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process group on a free loopback port, stopped on exit."""

    def __init__(self, argv, env=None, ready_path="/ping", method="GET"):
        self.port = _free_port()
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc = subprocess.Popen(argv, env={**os.environ, **(env or {})},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.ready_path, self.method = ready_path, method

    def __enter__(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stderr.read().decode()[-2000:])
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request(self.method, self.ready_path)
                c.getresponse().read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 60 s")

    def __exit__(self, *exc):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def workers(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]


def _unit(v):
    num, unit = re.match(r"([\d.]+)(\w+)", v).groups()
    return float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def load_wrk(port, path, body, seconds):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                 f"wrk.body = {json.dumps(body)}\n")
    script.close()
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
                              "-s", script.name, f"http://127.0.0.1:{port}{path}"],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _unit(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))
    p99 = _unit(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)
    return rps, p50, p99, (int(bad.group(1)) if bad else 0) + (1 if errs and "timeout" in errs.group(0) else 0)


def load_python(port, path, body, seconds):
    lat, bad, lock = [], [0], threading.Lock()
    stop = time.time() + seconds
    data = body.encode()

    def client():
        mine = []
        while time.time() < stop:
            t0 = time.perf_counter()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", path, data, {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    bad[0] += 1
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=client) for _ in range(CONNECTIONS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return len(lat) / seconds, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), bad[0]


def _bodies(X, rows, protocol):
    x = X[:rows]
    if protocol == "v2":
        return json.dumps({"inputs": [{"name": "input-0", "shape": list(x.shape),
                                       "datatype": "FP64", "data": x.ravel().tolist()}]})
    return json.dumps({"instances": x.tolist()})


def _models(tmp):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier as SkHGB
    from sklearn.linear_model import LogisticRegression as SkLR
    from sklearn.neural_network import MLPClassifier as SkMLP

    import parml
    from parml.ensemble import HistGradientBoostingClassifier
    from parml.linear_model import LogisticRegression
    from parml.neural_network import MLPClassifier
    X, y = make_classification(20_000, 100, n_classes=10, n_informative=50, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, ours, theirs in (
                ("LogisticRegression", LogisticRegression(), SkLR(max_iter=200)),
                ("MLP 100-256-128-10", MLPClassifier((256, 128), max_iter=3, random_state=0),
                 SkMLP((256, 128), max_iter=3, random_state=0)),
                ("HistGradientBoosting 100 trees",
                 HistGradientBoostingClassifier(max_iter=100, early_stopping=False),
                 SkHGB(max_iter=100, early_stopping=False))):
            p = os.path.join(tmp, name.split()[0].lower())
            yy = (y >= 5).astype(int) if "HistGradient" in name else y  # binary: 100 trees
            parml.save(ours.fit(X, yy), p)
            pk = p + ".pkl"
            with open(pk, "wb") as f:
                pickle.dump(theirs.fit(X, yy), f)
            out[name] = (p, pk)
    return X, out


def bench_throughput(seconds, load):
    rows_out = []
    tmp = tempfile.mkdtemp(prefix="parml-bench-serving-")
    try:
        X, models = _models(tmp)
        for mname, (ppath, pkl) in models.items():
            for rows in (1, 100):
                res = {}
                configs = [("parml serve", 1), ("parml serve", 2), ("sklearn + Flask", 2)]
                for server, w in configs:
                    if server == "parml serve":
                        argv = [sys.executable, "-m", "parml", "serve", ppath, "--workers", str(w),
                                "--port", "{port}"]
                        path = f"/v2/models/{os.path.basename(ppath)}/infer"
                        body, env = _bodies(X, rows, "v2"), None
                    else:
                        argv = [sys.executable, "-m", "gunicorn", "-w", str(w), "-b",
                                "127.0.0.1:{port}", "parml.benchmarks._sklearn_flask_app:app"]
                        path, body, env = "/predict", _bodies(X, rows, "v1"), {"MODEL_PKL": pkl}
                    with Server(argv, env, ready_path=path if env else "/ping") as srv:
                        time.sleep(0.5)
                        res[(server, w)] = load(srv.port, path, body, seconds)
                anchor = res[("sklearn + Flask", 2)][0]
                for (server, w), (rps, p50, p99, bad) in res.items():
                    rows_out.append([mname, rows, server, w, f"{rps:,.0f}", f"{p50 * 1e3:.2f} ms",
                                     f"{p99 * 1e3:.2f} ms", bad, f"{rps / anchor:.2f}"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows_out


def _mem(pid):
    """(rss, pss, anonymous) MiB of one process from /proc/<pid>/smaps_rollup. Anonymous memory
    is what the process holds of its own (heap, stacks, copies); the model's pages are
    file-backed and counted once across workers in PSS."""
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                vals[parts[0][:-1]] = int(parts[1]) / 1024
    return vals.get("Rss", 0), vals.get("Pss", 0), vals.get("Anonymous", 0)


def _big_forest(X, y, target_bytes=210 << 20, depth=10, seed=0):
    """A HistGradientBoostingRegressor whose forest takes target_bytes: fitted on X, y, then
    given random complete trees of the given depth (what is measured is memory, not accuracy;
    growing 7 million real nodes would take the benchmark minutes)."""
    from parml.ensemble import HistGradientBoostingRegressor
    from parml._core.forest import Forest
    est = HistGradientBoostingRegressor(max_iter=2, early_stopping=False).fit(X, y)
    rng = np.random.default_rng(seed)
    n_nodes = 2 ** (depth + 1) - 1
    per_tree = n_nodes * (4 + 8 + 1 + 4 + 4 + 8)
    n_trees = max(1, target_bytes // per_tree)
    inner = np.arange(2 ** depth - 1)
    left = np.full(n_nodes, -1, np.int32)
    right = np.full(n_nodes, -1, np.int32)
    left[inner], right[inner] = 2 * inner + 1, 2 * inner + 2
    forest = Forest(1)
    for _ in range(n_trees):
        forest.add({"feature": rng.integers(0, X.shape[1], n_nodes).astype(np.int32),
                    "threshold": rng.standard_normal(n_nodes),
                    "missing_left": rng.integers(0, 2, n_nodes).astype(np.uint8),
                    "left": left, "right": right,
                    "value": rng.standard_normal(n_nodes) * 1e-3}, 0)
    est._forest = forest
    est.n_iter_ = n_trees
    return est


def bench_memory():
    import parml
    tmp = tempfile.mkdtemp(prefix="parml-bench-mem-")
    rows = []
    try:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((2000, 100))
        y = X[:, 0] + 0.1 * rng.standard_normal(2000)
        tiny = _big_forest(X, y, target_bytes=1 << 16)
        big = _big_forest(X, y)
        nbytes = sum(a.nbytes for a in big._forest.flat().values())
        parml.save(tiny, os.path.join(tmp, "tiny"))
        parml.save(big, os.path.join(tmp, "big"))
        body = _bodies(X, 1, "v2")
        for w in (1, 2, 4):
            per = {}
            for which in ("tiny", "big"):
                argv = [sys.executable, "-m", "parml", "serve", os.path.join(tmp, which),
                        "--workers", str(w), "--port", "{port}"]
                with Server(argv) as s:
                    deadline = time.time() + 60
                    while len(s.workers()) < w and time.time() < deadline:
                        time.sleep(0.2)
                    time.sleep(2.0)  # every worker has loaded (and checked) the model
                    for _ in range(8 * w):  # touch the model in every worker
                        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
                        c.request("POST", f"/v2/models/{which}/infer", body,
                                  {"Content-Type": "application/json"})
                        c.getresponse().read()
                    per[which] = [_mem(p) for p in s.workers()]
            empty = float(np.median([t[2] for t in per["tiny"]]))
            for i, b in enumerate(per["big"]):
                rows.append([f"{nbytes / 2**20:.0f} MiB", w, i, f"{b[0]:.0f}", f"{b[1]:.0f}",
                             f"{b[2]:.0f}", f"{empty:.0f}", f"{b[2] - empty:+.1f}"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog="parml bench serving", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3-second runs")
    ap.add_argument("--only", choices=["throughput", "memory"], default=None)
    ap.add_argument("--python-client", action="store_true", help="use the Python load generator "
                                                                 "even when wrk is installed")
    ap.add_argument("--out", default=os.path.join("bench", "results"))
    args = ap.parse_args(argv)
    seconds = 3 if args.quick else 10
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    load = load_wrk if use_wrk else load_python
    info = H.machine_info()
    print(f"# serving: parml serve vs scikit-learn + Flask under gunicorn; load: "
          f"{'wrk' if use_wrk else 'Python client'}, {CONNECTIONS} connections, {seconds} s; "
          f"CPU: {info['cpu']}")
    payload, tables = {"machine": info, "load": "wrk" if use_wrk else "python"}, []
    if args.only in (None, "throughput"):
        r = bench_throughput(seconds, load)
        tables.append("## Throughput (single requests over loopback; ratio against the "
                      "scikit-learn app with 2 workers, same model and rows)\n\n" +
                      H.markdown_table(["model", "rows", "server", "workers", "requests/s", "p50",
                                        "p99", "failed", "vs sklearn -w 2"], r))
        payload["throughput"] = r
    if args.only in (None, "memory"):
        r = bench_memory()
        tables.append("## Worker memory, model served from one memory-mapped copy (MiB; PSS "
                      "splits shared pages among the processes mapping them; anonymous = the "
                      "worker's own memory)\n\n" + H.markdown_table(
                          ["model arrays", "workers", "worker", "RSS", "PSS", "anonymous",
                           "anonymous, tiny model (median)", "added by the model"], r))
        payload["memory"] = r
    print()
    table = "\n\n".join(tables)
    print(table)
    H.write_results(args.out, "serving", payload, table)
    print(f"\nresults: {args.out}/serving.json, serving.md")
    return 0
