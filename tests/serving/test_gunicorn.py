"""`parml serve` end to end: real gunicorn masters and workers started by the project's own command
(``python -m parml serve ...``), spoken to over loopback with the standard library's HTTP client.

Every server runs in its own process group (killed in teardown), on 127.0.0.1 and a free port,
with TMPDIR (where the master makes PROMETHEUS_MULTIPROC_DIR) and XDG_RUNTIME_DIR (gunicorn's
control socket) inside the test's temporary directory, so servers never share files. Every wait
is bounded.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("flask")
pytest.importorskip("gunicorn")
pytest.importorskip("prometheus_client")

import parml  # noqa: E402
from parml.linear_model import LogisticRegression  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="uses /proc and process groups")

N_FEATURES = 4
START_TIMEOUT = 30.0  # s until /v2/health/ready answers 200
HTTP_TIMEOUT = 10.0  # s for any one request


# ---- helpers ---------------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def req(port, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT, chunked=False):
    """(status, headers dict, body bytes) of one request; a fresh connection each time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def post_json(port, path, obj, **kw):
    return req(port, "POST", path, json.dumps(obj).encode(),
                {"Content-Type": "application/json"}, **kw)


def v2_body(X):
    X = np.asarray(X, dtype=np.float64)
    return {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": list(X.shape),
                        "data": X.ravel().tolist()}]}


def v2_predict(port, name, X, **kw):
    status, _, data = post_json(port, f"/v2/models/{name}/infer", v2_body(X), **kw)
    assert status == 200, (status, data)
    out = json.loads(data)["outputs"][0]
    return np.asarray(out["data"]).reshape(out["shape"])


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def children(pid):
    """Pids of the direct children of pid (gunicorn's workers, for the master)."""
    pids = set()
    for f in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(f) as fh:
                pids.update(int(p) for p in fh.read().split())
        except OSError:
            pass
    return pids


def wait_for(pred, timeout, interval=0.05, what="condition", server=None):
    """pred()'s first truthy value, polled until timeout; fails at once if `server` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        if server is not None and server.proc.poll() is not None:
            raise AssertionError(f"parml serve exited with {server.proc.returncode} while "
                                 f"waiting for {what}:\n{server.log()[-3000:]}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def metric_sum(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` in a Prometheus exposition."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
            found = True
    return total if found else 0.0


def metrics_text(port):
    status, headers, data = req(port, "GET", "/metrics")
    assert status == 200, (status, data[:500])
    assert headers["content-type"].startswith("text/plain")
    return data.decode()


def serve_cmd():
    return [sys.executable, "-m", "parml", "serve"]


def serve_env(root):
    env = dict(os.environ)
    for k in ("TMPDIR", "XDG_RUNTIME_DIR"):
        d = os.path.join(root, k.lower())
        os.makedirs(d, exist_ok=True)
        env[k] = d
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """One `parml serve` master in its own process group; logs go to files (never a full pipe)."""

    def __init__(self, root, model_path, *args):
        os.makedirs(root, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.env = serve_env(root)
        self.out_path = os.path.join(root, "serve.out")
        self.err_path = os.path.join(root, "serve.err")
        self.args = [*serve_cmd(), str(model_path), "--host", "127.0.0.1",
                     "--port", str(self.port), *map(str, args)]
        a = self.args
        self.n_workers = int(a[a.index("--workers") + 1]) if "--workers" in a else 1
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=self.env, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.err_path, "rb") as f:
            err = f.read().decode(errors="replace")
        with open(self.out_path, "rb") as f:
            out = f.read().decode(errors="replace")
        return out + err

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"parml serve exited with {self.proc.returncode}:\n"
                                     f"{self.log()[-4000:]}")
            try:
                if (len(self.workers()) == self.n_workers
                        and req(self.port, "GET", "/v2/health/ready", timeout=2.0)[0] == 200):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"parml serve not ready after {timeout} s:\n{self.log()[-4000:]}")

    def workers(self):
        return children(self.pid)

    def prom_dirs(self):
        return glob.glob(os.path.join(self.env["TMPDIR"], "parml-prometheus-*"))

    def terminate(self, timeout=20.0):
        """SIGTERM to the master (graceful shutdown); its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)  # master and every worker (same session)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for f in (self._out, self._err):
            f.close()


class Load:
    """Client threads sending one inference request after another until stopped; they check every
    answer against `expected` (a list of acceptable prediction arrays) and count failures."""

    def __init__(self, port, name, X, expected, n_threads=4):
        self.port, self.name, self.X = port, name, np.asarray(X)
        self.body = json.dumps(v2_body(self.X)).encode()
        self.expected = [np.asarray(e) for e in expected]
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []  # (kind, detail)
        self.seen = []  # index into expected of each correct answer, in order of arrival
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n_threads)]

    def _one(self):
        try:
            status, _, data = req(self.port, "POST", f"/v2/models/{self.name}/infer", self.body,
                                   {"Content-Type": "application/json"})
        except (OSError, http.client.HTTPException) as e:
            return "error", repr(e)
        if status != 200:
            return "status", (status, data[:200])
        out = json.loads(data)["outputs"][0]
        pred = np.asarray(out["data"]).reshape(out["shape"])
        for i, e in enumerate(self.expected):
            if pred.shape == e.shape and np.array_equal(pred, e):
                return "ok", i
        return "wrong", pred.tolist()

    def _run(self):
        while not self.stop_ev.is_set():
            kind, detail = self._one()
            with self.lock:
                if kind == "ok":
                    self.ok += 1
                    self.seen.append(detail)
                else:
                    self.failures.append((kind, detail))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(HTTP_TIMEOUT + 5)
        assert not any(t.is_alive() for t in self.threads), "a client thread hung"

    def count(self):
        with self.lock:
            return self.ok, len(self.failures)


# ---- fixtures ----------------------------------------------------------------------------------

def _data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_FEATURES))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(np.int64)
    return X, y


def fit_model(flip=False):
    X, y = _data()
    return LogisticRegression().fit(X, 1 - y if flip else y)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(path, estimator): a LogisticRegression saved in a directory named 'mymodel'."""
    est = fit_model()
    path = tmp_path_factory.mktemp("models") / "mymodel"
    parml.save(est, path)
    return path, est


@pytest.fixture(scope="module")
def Xq():
    rng = np.random.default_rng(7)
    return rng.standard_normal((5, N_FEATURES))


@pytest.fixture(scope="module")
def server2(model, tmp_path_factory):
    """Two workers, a 0.01 MB body limit, default name (the directory's)."""
    s = Server(str(tmp_path_factory.mktemp("srv2")), model[0], "--workers", 2,
               "--max-body-mb", 0.01)
    try:
        yield s.wait_ready()
    finally:
        s.kill()


@pytest.fixture(scope="module")
def server1(model, tmp_path_factory):
    """One worker, one kernel thread, an explicit --name."""
    s = Server(str(tmp_path_factory.mktemp("srv1")), model[0], "--workers", 1,
               "--threads-per-worker", 1, "--name", "churn")
    try:
        yield s.wait_ready()
    finally:
        s.kill()


@pytest.fixture
def fresh_server(tmp_path):
    """A factory for servers owned by one test (killed at its end)."""
    made = []

    def make(model_path, *args):
        s = Server(str(tmp_path / f"srv{len(made)}"), model_path, *args)
        made.append(s)
        return s.wait_ready()

    yield make
    for s in made:
        s.kill()


def test_python_m_parml_serve_is_the_command():
    r = subprocess.run([*serve_cmd(), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for opt in ("--workers", "--threads-per-worker", "--max-body-mb", "--timeout", "--name"):
        assert opt in r.stdout


# ---- 1. two workers: ready, correct answers, default name, metrics across workers --------------

def test_two_workers_ready_and_predict(server2, model, Xq):
    path, est = model
    assert len(server2.workers()) == 2
    status, headers, data = req(server2.port, "GET", "/v2/health/ready")
    assert status == 200 and json.loads(data) == {"ready": True}
    assert headers["content-type"].startswith("application/json")
    assert req(server2.port, "GET", "/v2/health/live")[0] == 200
    assert req(server2.port, "GET", "/ping")[0] == 200
    assert req(server2.port, "GET", "/health")[0] == 200
    # the name defaults to the model directory's name
    status, _, data = req(server2.port, "GET", "/v2/models/mymodel")
    assert status == 200
    meta = json.loads(data)
    assert meta["name"] == "mymodel"
    assert meta["inputs"][0]["shape"] == [-1, N_FEATURES]
    assert req(server2.port, "GET", "/v2/models/mymodel/ready")[0] == 200
    # every route answers what the estimator predicts
    want = est.predict(Xq)
    for _ in range(4):  # several requests, so both workers are likely asked
        np.testing.assert_array_equal(v2_predict(server2.port, "mymodel", Xq), want)
    status, _, data = post_json(server2.port, "/v2/models/mymodel/infer",
                                {**v2_body(Xq), "outputs": [{"name": "predict_proba"}]})
    assert status == 200
    out = json.loads(data)["outputs"][0]
    np.testing.assert_allclose(np.reshape(out["data"], out["shape"]), est.predict_proba(Xq),
                               rtol=1e-12, atol=1e-14)
    status, _, data = post_json(server2.port, "/v1/models/mymodel:predict",
                                {"instances": Xq.tolist()})
    assert status == 200 and json.loads(data)["predictions"] == want.tolist()
    status, _, data = post_json(server2.port, "/invocations",
                                {"dataframe_split": {"data": Xq.tolist()}})
    assert status == 200 and json.loads(data)["predictions"] == want.tolist()
    csv = "\n".join(",".join(repr(float(v)) for v in row) for row in Xq).encode()
    status, _, data = req(server2.port, "POST", "/invocations", csv,
                           {"Content-Type": "text/csv"})
    assert status == 200 and json.loads(data)["predictions"] == want.tolist()


def test_metrics_aggregate_both_workers(server2, Xq):
    """/metrics counts the requests of both workers. A sync worker serves one connection at a
    time, so a request whose body is held back keeps one worker busy while the other serves the
    rest: both workers then answer at least one request, whichever of them /metrics runs on."""
    route = "/v2/models/<mname>/infer"
    before = metrics_text(server2.port)
    n0 = metric_sum(before, "parml_requests_total", route=route, status="200")
    rows0 = metric_sum(before, "parml_rows_predicted_total")
    body = json.dumps(v2_body(Xq)).encode()
    held = socket.create_connection(("127.0.0.1", server2.port), timeout=HTTP_TIMEOUT)
    try:
        held.sendall(b"POST /v2/models/mymodel/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        n_threads, per_thread = 3, 10
        errors = []

        def client():
            try:
                for _ in range(per_thread):
                    v2_predict(server2.port, "mymodel", Xq)
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads) and not errors, errors
        held.sendall(body)
        resp = b""
        while True:
            chunk = held.recv(65536)
            if not chunk:
                break
            resp += chunk
    finally:
        held.close()
    assert resp.startswith(b"HTTP/1.1 200"), resp[:300]
    n = n_threads * per_thread + 1
    after = metrics_text(server2.port)
    assert metric_sum(after, "parml_requests_total", route=route, status="200") - n0 == n
    assert metric_sum(after, "parml_rows_predicted_total") - rows0 == n * len(Xq)
    assert metric_sum(after, "parml_request_latency_seconds_count", route=route) >= n
    # the master made one multiprocess directory (in our TMPDIR) and both workers write to it
    (prom,) = server2.prom_dirs()
    files = os.listdir(prom)
    for pid in server2.workers():
        assert f"counter_{pid}.db" in files, (pid, files)


# ---- 2. every malformed request class gets its 4xx through the real server ---------------------

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("method,path,body,headers,status", [
    # not JSON
    ("POST", "/v2/models/mymodel/infer", b"{not json", JSON, 400),
    ("POST", "/v1/models/mymodel:predict", b"[1, 2", JSON, 400),
    ("POST", "/invocations", b"\xff\xfe", JSON, 400),
    ("POST", "/v2/models/mymodel/infer", b"[1, 2, 3]", JSON, 400),
    # wrong feature count
    ("POST", "/v2/models/mymodel/infer", json.dumps(v2_body(np.ones((2, 3)))).encode(), JSON, 400),
    ("POST", "/v1/models/mymodel:predict", b'{"instances": [[1, 2, 3, 4, 5]]}', JSON, 400),
    ("POST", "/invocations", b'{"dataframe_split": {"data": [[1, 2]]}}', JSON, 400),
    ("POST", "/invocations", b"1,2,3\n", {"Content-Type": "text/csv"}, 400),
    # unknown route, model or version
    ("GET", "/nope", None, {}, 404),
    ("POST", "/v2/models/other/infer", json.dumps(v2_body(np.ones((1, 4)))).encode(), JSON, 404),
    ("POST", "/v2/models/mymodel/versions/9/infer",
     json.dumps(v2_body(np.ones((1, 4)))).encode(), JSON, 404),
    ("POST", "/v1/models/other:predict", b'{"instances": [[1, 2, 3, 4]]}', JSON, 404),
    ("GET", "/v2/models/other", None, {}, 404),
    ("GET", "/v2/models/other/ready", None, {}, 404),
    # wrong method
    ("GET", "/v2/models/mymodel/infer", None, {}, 405),
    ("PUT", "/invocations", b"{}", JSON, 405),
    ("POST", "/v2/health/ready", b"{}", JSON, 405),
    ("DELETE", "/metrics", None, {}, 405),
    # wrong content type
    ("POST", "/v2/models/mymodel/infer", json.dumps(v2_body(np.ones((1, 4)))).encode(),
     {"Content-Type": "text/plain"}, 415),
    ("POST", "/v1/models/mymodel:predict", b'{"instances": [[1, 2, 3, 4]]}', {}, 415),
    ("POST", "/invocations", b"<x/>", {"Content-Type": "application/xml"}, 415),
])
def test_malformed_requests_get_their_4xx(server2, method, path, body, headers, status):
    got, h, data = req(server2.port, method, path, body, headers)
    assert got == status, (got, data[:300])
    assert h["content-type"].startswith("application/json")
    err = json.loads(data)["error"]
    assert isinstance(err, str) and err and "Traceback" not in err


def _oversize_body():
    """A v2 request of ~20 kB (over the 0.01 MB = 10485 byte limit of server2)."""
    X = np.full((600, N_FEATURES), 0.123456789)
    body = json.dumps(v2_body(X)).encode()
    assert len(body) > 2 * 10485
    return body


def _chunks(body, size=4096):
    for i in range(0, len(body), size):
        yield body[i:i + size]


def test_413_with_content_length_over_the_limit(server2):
    body = _oversize_body()
    for path in ("/v2/models/mymodel/infer", "/v1/models/mymodel:predict", "/invocations"):
        t0 = time.monotonic()
        status, h, data = req(server2.port, "POST", path, body, dict(JSON))
        assert status == 413, (path, status, data[:300])
        assert "error" in json.loads(data)
        assert time.monotonic() - t0 < HTTP_TIMEOUT


def test_chunked_body_within_the_limit_is_served(server2, model, Xq):
    body = json.dumps(v2_body(Xq)).encode()
    status, _, data = req(server2.port, "POST", "/v2/models/mymodel/infer", _chunks(body, 50),
                           dict(JSON), chunked=True)
    assert status == 200, data[:300]
    out = json.loads(data)["outputs"][0]
    assert out["data"] == model[1].predict(Xq).tolist()


@pytest.mark.parametrize("kind", ["invalid-prefix", "valid-prefix"])
def test_chunked_body_over_the_limit_gets_413(server2, kind):
    """No Content-Length: the limit is enforced while reading, with 413, never a cut body (a
    valid JSON prefix padded past the limit must not be served), no hang, no 500."""
    if kind == "invalid-prefix":
        body = _oversize_body()
    else:  # a small valid request padded with JSON whitespace past the limit
        body = json.dumps(v2_body(np.ones((1, N_FEATURES)))).encode() + b" " * 20000
    for path in ("/v2/models/mymodel/infer", "/v1/models/mymodel:predict", "/invocations"):
        t0 = time.monotonic()
        status, _, data = req(server2.port, "POST", path, _chunks(body), dict(JSON),
                              chunked=True)
        assert status == 413, (path, status, data[:300])
        assert "error" in json.loads(data)
        assert time.monotonic() - t0 < HTTP_TIMEOUT
    # and the workers are fine afterwards
    assert req(server2.port, "GET", "/v2/health/ready")[0] == 200


def test_no_5xx_after_the_malformed_requests(server2):
    text = metrics_text(server2.port)
    five = [ln for ln in text.splitlines()
            if ln.startswith("parml_requests_total") and re.search(r'status="5\d\d"', ln)]
    assert not five, five
    assert req(server2.port, "GET", "/v2/health/ready")[0] == 200


# ---- 3. many client threads against one worker -------------------------------------------------

def test_many_client_threads_one_worker(server1, model):
    est = model[1]
    assert len(server1.workers()) == 1
    # --name is used in the routes; the directory's name is not
    assert req(server1.port, "GET", "/v2/models/churn")[0] == 200
    assert req(server1.port, "GET", "/v2/models/mymodel")[0] == 404
    n_threads, per_thread = 16, 30
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((1 + i % 4, N_FEATURES)) for i in range(n_threads)]
    wants = [est.predict(X) for X in inputs]
    bad, errors = [], []
    lock = threading.Lock()

    def client(i):
        for j in range(per_thread):
            try:
                if j % 2:
                    got = v2_predict(server1.port, "churn", inputs[i])
                else:
                    status, _, data = post_json(server1.port, "/v1/models/churn:predict",
                                                {"instances": inputs[i].tolist()})
                    assert status == 200, (status, data)
                    got = np.asarray(json.loads(data)["predictions"])
            except Exception as e:
                with lock:
                    errors.append(repr(e))
                continue
            if not np.array_equal(got, wants[i]):
                with lock:
                    bad.append((i, j, got.tolist()))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    assert not errors, errors[:5]
    assert not bad, bad[:5]
    route_v2, route_v1 = "/v2/models/<mname>/infer", "/v1/models/<spec>"
    text = metrics_text(server1.port)
    served = (metric_sum(text, "parml_requests_total", route=route_v2, status="200")
              + metric_sum(text, "parml_requests_total", route=route_v1, status="200"))
    assert served == n_threads * per_thread


# ---- 4. kill -9 of a worker under load ----------------------------------------------------------

def test_kill_9_worker_under_load(fresh_server, model, Xq):
    path, est = model
    srv = fresh_server(path, "--workers", 2)
    old = wait_for(lambda: srv.workers() if len(srv.workers()) == 2 else None, 10,
                   what="two workers", server=srv)
    with Load(srv.port, "mymodel", Xq, [est.predict(Xq)], n_threads=4) as load:
        wait_for(lambda: load.count()[0] >= 20, 15, what="load to start", server=srv)
        victim = min(old)
        os.kill(victim, signal.SIGKILL)
        new = wait_for(lambda: (srv.workers() - old) if len(srv.workers() - old) == 1
                       and len(srv.workers()) == 2 else None, 15, what="a replacement worker",
                       server=srv)
        assert victim not in srv.workers()
        (newpid,) = new
        (prom,) = srv.prom_dirs()
        # the replacement has booted: it loaded the model and opened its metrics file
        wait_for(lambda: f"counter_{newpid}.db" in os.listdir(prom), 20,
                 what="the replacement to boot", server=srv)
        n_at_replace = load.count()[0]
        # the service keeps answering, the replacement included
        wait_for(lambda: load.count()[0] >= n_at_replace + 40, 15, what="answers after the kill",
                 server=srv)
    ok, failed = load.count()
    assert ok > 60
    # only what was in flight on the killed (sync, one request at a time) worker may fail
    assert failed <= 3, load.failures
    assert all(kind in ("error", "status") for kind, _ in load.failures), load.failures
    assert all(d[0] >= 500 for kind, d in load.failures if kind == "status"), load.failures
    assert srv.proc.poll() is None
    assert len(new) == 1 and srv.workers() == (old - {victim}) | new
    assert req(srv.port, "GET", "/v2/health/ready")[0] == 200
    text = metrics_text(srv.port)  # the dead worker's counts still count
    assert metric_sum(text, "parml_requests_total", route="/v2/models/<mname>/infer",
                      status="200") >= ok
    # a graceful shutdown: exit code 0, the metrics directory removed, nothing left running.
    # (Every worker has booted here: a worker still booting during the shutdown fails on the
    # metrics directory another worker deleted, and the master then exits 1 - see the xfail
    # tests below.)
    rc = srv.terminate()
    assert rc == 0, srv.log()[-3000:]
    assert not srv.prom_dirs()
    assert not can_connect(srv.port)


def test_sigterm_to_one_worker_is_survived(fresh_server, model, Xq):
    path, est = model
    srv = fresh_server(path, "--workers", 2)
    old = wait_for(lambda: srv.workers() if len(srv.workers()) == 2 else None, 10,
                   what="two workers", server=srv)
    victim = min(old)
    os.kill(victim, signal.SIGTERM)
    wait_for(lambda: len(srv.workers() - old) == 1 and len(srv.workers()) == 2, 15,
             what="a replacement worker", server=srv)
    # the service keeps answering (a replacement that failed to boot takes the master down)
    for _ in range(6):
        np.testing.assert_array_equal(v2_predict(srv.port, "mymodel", Xq), est.predict(Xq))
    assert srv.proc.poll() is None, srv.log()[-3000:]
    assert len(srv.workers()) == 2
    assert srv.prom_dirs()  # the metrics directory outlives any one worker
    metrics_text(srv.port)


# ---- 5. SIGHUP reloads the model file without failing a request ---------------------------------

def test_sighup_reloads_the_model(fresh_server, tmp_path, Xq):
    path = tmp_path / "models" / "swap"
    os.makedirs(path.parent)
    a, b = fit_model(), fit_model(flip=True)
    X = np.vstack([Xq, _data(1, 20)[0]])
    pa, pb = a.predict(X), b.predict(X)
    assert (pa != pb).all()
    parml.save(a, path)
    srv = fresh_server(path, "--workers", 2)
    with Load(srv.port, "swap", X, [pa, pb], n_threads=4) as load:
        wait_for(lambda: load.count()[0] >= 20, 15, what="load to start", server=srv)
        parml.save(b, path, overwrite=True)
        os.kill(srv.pid, signal.SIGHUP)
        # the new model answers; then only it (the old workers are retired)
        wait_for(lambda: 1 in load.seen, 20, what="answers of the new model", server=srv)
        wait_for(lambda: load.seen[-30:] == [1] * 30 if len(load.seen) >= 30 else None, 20,
                 what="only the new model answering", server=srv)
        n_after = load.count()[0]
        wait_for(lambda: load.count()[0] >= n_after + 20, 10, what="more answers", server=srv)
    ok, failed = load.count()
    assert failed == 0, load.failures[:5]
    assert load.seen[-1] == 1
    assert srv.proc.poll() is None, srv.log()[-3000:]
    # the retired workers finish the request in hand, then exit
    wait_for(lambda: len(srv.workers()) == 2, 15, what="the old workers to exit", server=srv)
    np.testing.assert_array_equal(v2_predict(srv.port, "swap", X), pb)
    text = metrics_text(srv.port)
    assert metric_sum(text, "parml_requests_total", route="/v2/models/<mname>/infer",
                      status="200") >= 1


# ---- 6. a bad model: exit 2 at once with a clear message, never listening -----------------------

def _copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def _arrays(path):
    return sorted(glob.glob(os.path.join(path, "arrays", "*.npy")))


def _truncate(path):
    f = _arrays(path)[0]
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
        fh.truncate(size - 8)
    return os.path.basename(f), "truncated"


def _cut_header(path):
    f = _arrays(path)[-1]
    with open(f, "r+b") as fh:
        fh.truncate(20)  # not even a whole .npy header
    return os.path.basename(f), "truncated"


def _flip_byte(path):
    f = _arrays(path)[0]
    with open(f, "r+b") as fh:
        fh.seek(-1, os.SEEK_END)
        b = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([b[0] ^ 0x01]))
    return os.path.basename(f), "sha256"


def _delete_array(path):
    f = _arrays(path)[0]
    os.remove(f)
    return os.path.basename(f), "missing"


def _tamper_meta(path):
    mpath = os.path.join(path, "model.json")
    with open(mpath) as fh:
        meta = json.load(fh)
    meta["params"]["C"] = 123.0
    with open(mpath, "w") as fh:
        json.dump(meta, fh)
    return "model.json", "modified"


def _cut_meta(path):
    mpath = os.path.join(path, "model.json")
    size = os.path.getsize(mpath)
    with open(mpath, "r+b") as fh:
        fh.truncate(size // 2)
    return "model.json", "JSON"


def _missing(path):
    shutil.rmtree(path)
    return os.path.basename(path), "not a parml model"


def _empty_dir(path):
    shutil.rmtree(path)
    os.mkdir(path)
    return os.path.basename(path), "not a parml model"


@pytest.mark.parametrize("damage", [_truncate, _cut_header, _flip_byte, _delete_array,
                                    _tamper_meta, _cut_meta, _missing, _empty_dir])
def test_bad_model_exits_2_with_a_clear_message(model, tmp_path, damage):
    path = _copy_model(model[0], str(tmp_path / "broken"))
    what, words = damage(path)
    port = free_port()
    env = serve_env(str(tmp_path))
    t0 = time.monotonic()
    r = subprocess.run([*serve_cmd(), path, "--workers", "2", "--host", "127.0.0.1",
                        "--port", str(port)], capture_output=True, text=True, env=env,
                       timeout=60, start_new_session=True, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert elapsed < 20  # it verifies and exits; it never waits for workers
    err = r.stderr
    assert err.startswith("parml serve: "), err
    assert what in err and words in err, err
    assert "Traceback" not in err
    assert "Listening at" not in r.stdout + err and "Booting worker" not in r.stdout + err
    assert not can_connect(port)
    # the master made no metrics directory for a model it refused
    assert not glob.glob(os.path.join(env["TMPDIR"], "parml-prometheus-*"))


# ---- 7. option checks -----------------------------------------------------------------------

@pytest.mark.parametrize("args,words", [
    (["--workers", "0"], "--workers"),
    (["--workers", "-2"], "--workers"),
    (["--threads-per-worker", "0"], "--threads-per-worker"),
    (["--threads-per-worker", "-1"], "--threads-per-worker"),
    (["--max-body-mb", "0"], "--max-body-mb"),
    (["--workers", "two"], "--workers"),  # argparse's own refusal, also exit code 2
])
def test_bad_options_are_refused_with_exit_2(model, tmp_path, args, words):
    port = free_port()
    r = subprocess.run([*serve_cmd(), str(model[0]), "--port", str(port), *args],
                       capture_output=True, text=True, env=serve_env(str(tmp_path)), timeout=60,
                       start_new_session=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert words in r.stderr and "Traceback" not in r.stderr
    assert "Listening at" not in r.stderr
    assert not can_connect(port)


def test_threads_per_worker_default_is_documented():
    r = subprocess.run([*serve_cmd(), "--help"], capture_output=True, text=True, timeout=60)
    assert "max(1, cores // workers)" in " ".join(r.stdout.split())


def _os_threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.fixture(scope="module")
def mlp_model(tmp_path_factory):
    """An MLP: its predict runs the parallel GEMM, whose kernel threads are visible in /proc."""
    import warnings

    from parml.neural_network import MLPClassifier
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(64,), max_iter=3, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("mlp") / "mlp"
    parml.save(est, path)
    return path, est


def _kernel_threads_after_big_predicts(srv, name, est, n_requests):
    """Send large requests, then the OS thread count of each worker (a sync worker has one
    Python thread; the kernel's thread pool adds the rest)."""
    Xb = np.random.default_rng(0).standard_normal((20000, N_FEATURES))
    want = est.predict(Xb)
    for _ in range(n_requests):
        np.testing.assert_array_equal(v2_predict(srv.port, name, Xb, timeout=60), want)
    return {pid: _os_threads(pid) for pid in srv.workers()}


def test_threads_per_worker_reaches_the_workers(fresh_server, mlp_model):
    """--threads-per-worker is not reported by any route or log line; what is observable is the
    number of OS threads a worker has after running the parallel kernels."""
    path, est = mlp_model
    cores = len(os.sched_getaffinity(0))
    srv = fresh_server(path, "--workers", 1, "--threads-per-worker", 1)
    assert set(_kernel_threads_after_big_predicts(srv, "mlp", est, 2).values()) == {1}
    srv.kill()
    if cores >= 2:  # the measurement sees kernel threads when there are some
        srv = fresh_server(path, "--workers", 1, "--threads-per-worker", 2)
        assert set(_kernel_threads_after_big_predicts(srv, "mlp", est, 2).values()) == {2}
        srv.kill()
    if 2 <= cores <= 8:  # the default: max(1, cores // workers) = 1 with one worker per core
        srv = fresh_server(path, "--workers", cores)
        threads = _kernel_threads_after_big_predicts(srv, "mlp", est, 2 * cores)
        assert len(threads) == cores and set(threads.values()) == {1}, threads
