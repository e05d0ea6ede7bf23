"""The Flask app serving one parml model: Open Inference Protocol (v2), v1 and MLflow-style
routes, health, Prometheus metrics, JSON errors with the right status and never a stack trace."""

from __future__ import annotations

import copy
import logging
import os
import threading
import time

import numpy as np

from . import _protocol as P
from ._metrics import metrics, render_metrics

log = logging.getLogger("parml.serving")
DEFAULT_MAX_BODY = 16 << 20


def _model_name(path):
    base = os.path.basename(os.path.normpath(os.fspath(path)))
    return os.path.splitext(base)[0] or "model"


class _Model:
    """The served model and what the routes need to know about it (computed once)."""

    def __init__(self, name, version):
        self.name, self.version = name, version
        self.est = None
        self.error = None

    def set(self, est, n_threads):
        if n_threads is not None and "n_threads" in est.get_params(deep=False):
            est = copy.copy(est)  # the caller's estimator keeps its own setting
            est.set_params(n_threads=n_threads)
        self.n_features = int(est.n_features_in_)
        self.has_proba = hasattr(est, "predict_proba")
        dt = getattr(est, "coefs_", None)
        self.input_type = "FP32" if dt is not None and dt[0].dtype == np.float32 else "FP64"
        # output datatypes and shapes as infer will report them: from one real prediction
        zero = np.zeros((1, self.n_features))
        self.outputs = []
        for nm in P.OUTPUT_NAMES:
            if nm == "predict_proba" and not self.has_proba:
                continue
            out = np.asarray(getattr(est, nm)(zero))
            self.outputs.append({"name": nm, "datatype": P.v2_datatype(out),
                                 "shape": [-1] + list(out.shape[1:])})
        self.est = est

    @property
    def ready(self):
        return self.est is not None

    def need(self, mname, ver=None):
        if mname != self.name:
            raise P.ClientError(404, f"unknown model {mname!r}; this server serves {self.name!r}")
        if ver is not None and ver != self.version:
            raise P.ClientError(404, f"model {mname!r} has no version {ver!r}; it has "
                                     f"{self.version!r}")
        if not self.ready:
            raise P.ClientError(503, f"model {mname!r} is not ready" +
                                (f": {self.error}" if self.error else ""))

    def predict(self, X, what):
        try:
            out = self.est.predict_proba(X) if what == "predict_proba" else self.est.predict(X)
        except ValueError as e:  # input the model refuses (e.g. beyond float32's range)
            raise P.ClientError(400, f"the model cannot predict these rows: {e}") from None
        out = np.asarray(out)
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            raise P.ClientError(400, "the model's output for these rows is not finite: their "
                                     "values lie far outside the range it was trained on")
        metrics().rows.inc(X.shape[0])
        return out

    # The request handlers: (route arguments, body bytes) -> response dict. Shared by the Flask
    # routes and by the WSGI fast path, so both answer identically.
    def infer_v2(self, mname, ver, body):
        self.need(mname, ver)
        X, rid, names = P.v2_request(P.parse_json(body), self.n_features)
        outputs = []
        for nm in names:
            if nm not in P.OUTPUT_NAMES or (nm == "predict_proba" and not self.has_proba):
                avail = [o for o in P.OUTPUT_NAMES if o != "predict_proba" or self.has_proba]
                raise P.ClientError(400, f"unknown output {nm!r}; this model has {avail}")
            out = self.predict(X, nm)
            outputs.append({"name": nm, "datatype": P.v2_datatype(out), "shape": list(out.shape),
                            "data": P.jsonable(out)})
        resp = {"model_name": self.name, "model_version": self.version, "outputs": outputs}
        if rid is not None:
            resp["id"] = rid
        return resp

    def predict_v1(self, spec, body):
        mname, sep, verb = spec.rpartition(":")
        if not sep or verb != "predict":
            raise P.ClientError(404, "v1 routes are /v1/models/<name>:predict")
        self.need(mname)
        X = P.v1_request(P.parse_json(body), self.n_features)
        return {"predictions": self.predict(X, "predict").tolist()}

    def metadata(self):
        return {"name": self.name, "versions": [self.version], "platform": "parml",
                "inputs": [{"name": "input-0", "datatype": self.input_type,
                            "shape": [-1, self.n_features]}],
                "outputs": self.outputs}


def create_app(model_or_path, name=None, *, version="1", max_body_bytes=DEFAULT_MAX_BODY,
               n_threads=None, lazy=False):
    """A Flask app serving one parml model.

    Parameters
    ----------
    model_or_path : fitted parml estimator, or path of a model saved with :func:`parml.save`
        A path is loaded with ``parml.load(path, mmap=True)``: arrays memory-mapped read-only,
        shared by every worker process through the page cache.
    name : str, optional
        Model name in the routes; default: the last component of the path without extension
        ("model" for an estimator object).
    version : str
        The one version served.
    max_body_bytes : int
        Larger request bodies get 413, chunked ones included.
    n_threads : int, optional
        Kernel threads per request (set once on the estimator; never changed per request).
    lazy : bool
        Load the model in a background thread; model routes answer 503 until it is ready.
    """
    from flask import Flask, Response, g, jsonify, request
    from werkzeug.exceptions import HTTPException

    is_path = isinstance(model_or_path, (str, os.PathLike))
    model = _Model(name or (_model_name(model_or_path) if is_path else "model"), str(version))
    app = Flask("parml.serving")
    app.config["MAX_CONTENT_LENGTH"] = int(max_body_bytes)
    app.json.sort_keys = False
    app.extensions["parml_model"] = model
    m = metrics()

    def load():
        try:
            from parml.persistence import load as load_model
            model.set(load_model(model_or_path, mmap=True), n_threads)
        except Exception as e:  # reported by the ready routes and logged
            model.error = str(e)
            log.error("parml serving: could not load %s: %s", model_or_path, e)
            raise

    if is_path:
        if lazy:
            threading.Thread(target=lambda: _quiet(load), daemon=True).start()
        else:
            load()
    else:
        model.set(model_or_path, n_threads)

    # ---- plumbing ---------------------------------------------------------------------------
    def fail(status, message):
        raise P.ClientError(status, message)

    limit = int(max_body_bytes)

    def body():
        """The request body; 413 past the limit, also for a chunked body (no Content-Length),
        which Werkzeug would silently cut at the limit."""
        env = request.environ
        if env.get("CONTENT_LENGTH") and env.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked":
            return request.get_data(cache=False)  # Werkzeug answers 413 past the limit
        raw, parts, got = env["wsgi.input"], [], 0
        while True:
            chunk = raw.read(min(65536, limit + 1 - got))
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            got += len(chunk)
            if got > limit:
                fail(413, f"request body is larger than {limit} bytes")

    def json_body():
        ct = request.mimetype
        if ct != "application/json":
            fail(415, f"Content-Type must be application/json, got {ct or 'none'!r}")
        return body()

    app.wsgi_app = _FastPath(app.wsgi_app, model, int(max_body_bytes))

    @app.before_request
    def _start():
        g.t0 = time.perf_counter()

    @app.after_request
    def _observe(resp):
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        m.requests.labels(route=route, status=str(resp.status_code)).inc()
        m.latency.labels(route=route).observe(time.perf_counter() - g.get("t0", time.perf_counter()))
        return resp

    @app.errorhandler(P.ClientError)
    def _client_error(e):
        return jsonify(error=e.message), e.status

    @app.errorhandler(HTTPException)
    def _http_error(e):
        msg = {404: "no such route", 405: f"method {request.method} is not allowed here",
               413: f"request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"}
        return jsonify(error=msg.get(e.code, e.description)), e.code

    @app.errorhandler(Exception)
    def _internal(e):
        log.exception("parml serving: internal error")
        return jsonify(error="internal server error"), 500

    # ---- Open Inference Protocol (v2) ---------------------------------------------------------
    @app.get("/v2")
    def v2_server():
        from parml import __version__
        return jsonify(name="parml", version=__version__, extensions=[])

    @app.get("/v2/health/live")
    def v2_live():
        return jsonify(live=True)

    @app.get("/v2/health/ready")
    def v2_ready():
        return jsonify(ready=model.ready), (200 if model.ready else 503)

    @app.get("/v2/models/<mname>/ready")
    @app.get("/v2/models/<mname>/versions/<ver>/ready")
    def v2_model_ready(mname, ver=None):
        model.need(mname, ver)
        return jsonify(name=model.name, ready=True)

    @app.get("/v2/models/<mname>")
    @app.get("/v2/models/<mname>/versions/<ver>")
    def v2_metadata(mname, ver=None):
        model.need(mname, ver)
        return jsonify(model.metadata())

    @app.post("/v2/models/<mname>/infer")
    @app.post("/v2/models/<mname>/versions/<ver>/infer")
    def v2_infer(mname, ver=None):
        return jsonify(model.infer_v2(mname, ver, json_body()))

    # ---- compatibility routes -------------------------------------------------------------------
    @app.post("/v1/models/<spec>")
    def v1_predict(spec):
        return jsonify(model.predict_v1(spec, json_body()))

    @app.post("/invocations")
    def invocations():
        if not model.ready:
            fail(503, "model is not ready")
        ct = request.mimetype
        if ct == "application/json":
            X = P.mlflow_json(P.parse_json(body()), model.n_features,
                              getattr(model.est, "feature_names_in_", None))
        elif ct == "text/csv":
            X = P.mlflow_csv(body(), model.n_features)
        else:
            fail(415, f"Content-Type must be application/json or text/csv, got {ct or 'none'!r}")
        return jsonify(predictions=model.predict(X, "predict").tolist())

    @app.get("/ping")
    def ping():
        return ("", 200) if model.ready else ("", 503)

    @app.get("/health")
    def health():
        if model.ready:
            return jsonify(status="ok")
        if model.error:
            return jsonify(status="error", error=model.error), 503
        return jsonify(status="loading"), 503

    @app.get("/metrics")
    def prometheus():
        body, ctype = render_metrics()
        return Response(body, mimetype=ctype)

    return app


def _quiet(fn):
    try:
        fn()
    except Exception:
        pass  # already logged; the ready routes report it


class _FastPath:
    """WSGI middleware answering the two inference routes without Flask's request machinery
    (routing, request and response objects: ~100 us of a ~150 us request). It runs the same
    handlers as the Flask routes and records the same metrics; anything unusual (another route
    or method, no Content-Length, a body over the limit, another content type) goes to Flask."""

    V2 = "/v2/models/"

    def __init__(self, wsgi_app, model, max_body):
        self.wsgi_app, self.model, self.max_body = wsgi_app, model, max_body

    def _route(self, path):
        if path.startswith(self.V2) and path.endswith("/infer"):
            parts = path[len(self.V2):-len("/infer")].split("/")
            if len(parts) == 1 and parts[0]:
                return "/v2/models/<mname>/infer", lambda b: self.model.infer_v2(parts[0], None, b)
            if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
                return ("/v2/models/<mname>/versions/<ver>/infer",
                        lambda b: self.model.infer_v2(parts[0], parts[2], b))
        elif path.startswith("/v1/models/") and "/" not in path[len("/v1/models/"):]:
            spec = path[len("/v1/models/"):]
            if spec:
                return "/v1/models/<spec>", lambda b: self.model.predict_v1(spec, b)
        return None, None

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        route, handler = self._route(environ.get("PATH_INFO", ""))
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if route is None or ctype != "application/json" or not 0 <= length <= self.max_body:
            return self.wsgi_app(environ, start_response)
        t0 = time.perf_counter()
        body = environ["wsgi.input"].read(length)
        try:
            status, payload = 200, handler(body)
        except P.ClientError as e:
            status, payload = e.status, {"error": e.message}
        except Exception:
            log.exception("parml serving: internal error")
            status, payload = 500, {"error": "internal server error"}
        data = P.dumps(payload)
        start_response(_STATUS[status], [("Content-Type", "application/json"),
                                         ("Content-Length", str(len(data)))])
        m = metrics()
        m.requests.labels(route=route, status=str(status)).inc()
        m.latency.labels(route=route).observe(time.perf_counter() - t0)
        return [data]


_STATUS = {200: "200 OK", 400: "400 BAD REQUEST", 404: "404 NOT FOUND", 413:
           "413 REQUEST ENTITY TOO LARGE", 415: "415 UNSUPPORTED MEDIA TYPE",
           500: "500 INTERNAL SERVER ERROR", 503: "503 SERVICE UNAVAILABLE"}
