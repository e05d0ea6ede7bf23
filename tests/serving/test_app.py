"""The serving app (parml.serving.create_app) through Flask's test client and raw WSGI calls:
every route's answers against the estimator's own predictions, every client mistake as a JSON
4xx (never a 500, never a traceback), the WSGI fast path and the Flask path answering alike,
lazy loading, Prometheus metrics and many threads at once."""
import json
import os
import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("flask")
pytest.importorskip("prometheus_client")

import parml
from parml import linear_model as lm
from parml import neural_network as nn
from parml import persistence
from parml.serving import create_app

D = 5
RNG = np.random.default_rng(7)
X = RNG.normal(size=(200, D))
XQ = RNG.normal(size=(12, D))                     # query rows
Y3 = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.6, 0.6])          # 0, 1, 2
Y3S = np.array(["setosa", "versicolor", "virginica"])[Y3]
YR = X @ np.array([1.5, -2.0, 0.0, 0.5, 1.0]) + 3.0
JSON = "application/json"
CHUNKED = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}   # no Content-Length: Flask path


# ---- models --------------------------------------------------------------------------------------

def _fit(est, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    ests = {
        "logreg": _fit(lm.LogisticRegression(), Y3),
        "mlp": _fit(nn.MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0),
                    Y3S),
        "ridge": _fit(lm.Ridge(alpha=0.3), YR),
        "svc": _fit(lm.LinearSVC(), Y3),
        "mlpr": _fit(nn.MLPRegressor(hidden_layer_sizes=(6,), max_iter=60, random_state=0,
                                     dtype=np.float64), YR),
    }
    paths = {"mlp": d / "my-model.parml"}
    out = {}
    for k, est in ests.items():
        p = parml.save(est, paths.get(k, d / k))
        out[k] = (est, p)
    return out


@pytest.fixture(scope="module")
def apps(models):
    return {k: create_app(p) for k, (est, p) in models.items()}


def _name(app):
    return app.extensions["parml_model"].name


class Counter:
    """Counts the requests that reach Flask (i.e. that the fast path handed on)."""

    def __init__(self, app):
        self.n = 0
        fast = app.wsgi_app
        inner = fast.wsgi_app

        def counted(environ, start_response):
            self.n += 1
            return inner(environ, start_response)

        fast.wsgi_app = counted
        self._restore = lambda: setattr(fast, "wsgi_app", inner)


@pytest.fixture
def via(apps):
    """via(app) -> Counter of requests that went through Flask (restored afterwards)."""
    made = []

    def make(app):
        c = Counter(app)
        made.append(c)
        return c

    yield make
    for c in reversed(made):
        c._restore()


# ---- request helpers ---------------------------------------------------------------------------

def v2(rows, datatype="FP64", nested=False, **extra):
    rows = np.asarray(rows)
    data = rows.tolist() if nested else rows.ravel().tolist()
    body = {"inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": datatype,
                        "data": data}]}
    body.update(extra)
    return body


def _checked(resp):
    assert b"Traceback" not in resp.data and b'File "' not in resp.data
    assert resp.status_code != 500, resp.data
    if resp.status_code >= 400 and resp.data or resp.mimetype == JSON:
        assert resp.mimetype == JSON, (resp.status_code, resp.data)
        body = resp.get_json()
        if resp.status_code >= 400 and body not in ({"ready": False}, {"status": "loading"}) \
                and body.get("status") != "error":  # /health after a failed load
            assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return resp


def post(app, url, body, *, ctype=JSON, chunked=False, raw=False):
    data = body if raw or isinstance(body, (bytes, str)) else json.dumps(body)
    if isinstance(data, str):
        data = data.encode()
    # (the test client leaves Content-Length out for an empty body: say it explicitly)
    kw = {"environ_overrides": CHUNKED if chunked else {"CONTENT_LENGTH": str(len(data))}}
    return _checked(app.test_client().post(url, data=data, content_type=ctype, **kw))


def get(app, url):
    return _checked(app.test_client().get(url))


def both(app, via, url, body, ctype=JSON, fast_route=True):
    """POSTs the same body through the fast path (Content-Length, JSON) and through Flask
    (chunked: no Content-Length); checks which path ran and that both answered alike.
    fast_route=False: a URL the fast path does not serve (both requests reach Flask)."""
    c = via(app)
    fast = post(app, url, body, ctype=ctype)
    assert c.n == (0 if fast_route else 1), "fast path taken or not taken unexpectedly"
    c.n = 0
    slow = post(app, url, body, ctype=ctype, chunked=True)
    assert c.n == 1, "a chunked request did not go through Flask"
    assert fast.status_code == slow.status_code, (fast.data, slow.data)
    assert fast.mimetype == slow.mimetype == JSON
    assert fast.get_json() == slow.get_json()
    return fast


def infer_url(app, version=None):
    n = _name(app)
    return f"/v2/models/{n}/infer" if version is None else f"/v2/models/{n}/versions/{version}/infer"


def same(values, expected):
    expected = np.asarray(expected)
    got = np.asarray(values, dtype=expected.dtype if expected.dtype.kind != "U" else None)
    assert got.shape == expected.shape or got.size == expected.size
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


# ---- server-level routes -------------------------------------------------------------------------

def test_server_metadata_and_health(apps):
    app = apps["mlp"]
    r = get(app, "/v2")
    assert r.status_code == 200
    assert r.get_json() == {"name": "parml", "version": parml.__version__, "extensions": []}
    assert get(app, "/v2/health/live").get_json() == {"live": True}
    r = get(app, "/v2/health/ready")
    assert r.status_code == 200 and r.get_json() == {"ready": True}
    r = get(app, "/ping")
    assert r.status_code == 200
    r = get(app, "/health")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_model_ready_and_version_routes(apps):
    app = apps["mlp"]
    assert _name(app) == "my-model"
    for url in ("/v2/models/my-model/ready", "/v2/models/my-model/versions/1/ready"):
        r = get(app, url)
        assert r.status_code == 200 and r.get_json() == {"name": "my-model", "ready": True}
    for url in ("/v2/models/other/ready", "/v2/models/my-model/versions/2/ready",
                "/v2/models/other/versions/1/ready", "/v2/models/my-model.parml/ready"):
        r = get(app, url)
        assert r.status_code == 404, url


def test_model_name_defaults(models, tmp_path):
    est, p = models["ridge"]
    assert _name(create_app(models["mlp"][1])) == "my-model"
    assert _name(create_app(str(models["mlp"][1]) + "/")) == "my-model"
    assert _name(create_app(models["mlp"][1], name="iris")) == "iris"
    assert _name(create_app(est)) == "model"
    p2 = parml.save(est, tmp_path / "house_prices")
    assert _name(create_app(p2)) == "house_prices"
    app = create_app(p, name="prices", version=7)
    r = get(app, "/v2/models/prices/versions/7")
    assert r.status_code == 200 and r.get_json()["versions"] == ["7"]
    assert get(app, "/v2/models/prices/versions/1").status_code == 404
    assert get(app, "/v2/models/ridge").status_code == 404


def test_metadata_content(apps):
    m = get(apps["mlp"], "/v2/models/my-model").get_json()
    assert m == {
        "name": "my-model", "versions": ["1"], "platform": "parml",
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, D]}],
        "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                    {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 3]}]}
    assert get(apps["mlp"], "/v2/models/my-model/versions/1").get_json() == m
    m = get(apps["logreg"], "/v2/models/logreg").get_json()
    assert m["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, D]}]
    assert m["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}]
    for k in ("ridge", "svc"):
        m = get(apps[k], f"/v2/models/{k}").get_json()
        assert [o["name"] for o in m["outputs"]] == ["predict"]
    assert get(apps["ridge"], "/v2/models/ridge").get_json()["outputs"][0]["datatype"] == "FP64"
    assert get(apps["svc"], "/v2/models/svc").get_json()["outputs"][0]["datatype"] == "INT64"


def test_n_threads_is_set_once_on_the_estimator(models):
    app = create_app(models["mlp"][1], n_threads=1)
    assert app.extensions["parml_model"].est.n_threads == 1
    app = create_app(models["logreg"][1], n_threads=2)
    assert app.extensions["parml_model"].est.n_threads == 2


# ---- v2 inference ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["logreg", "mlp", "ridge", "svc", "mlpr"])
def test_v2_infer_matches_estimator(apps, models, via, kind):
    app = apps[kind]
    est = models[kind][0]
    outs = [{"name": "predict"}] + ([{"name": "predict_proba"}]
                                   if hasattr(est, "predict_proba") else [])
    r = both(app, via, infer_url(app), v2(XQ, outputs=outs))
    assert r.status_code == 200
    body = r.get_json()
    assert body["model_name"] == _name(app) and body["model_version"] == "1"
    assert "id" not in body
    assert [o["name"] for o in body["outputs"]] == [o["name"] for o in outs]
    pred = est.predict(XQ)
    o = body["outputs"][0]
    assert o["shape"] == list(pred.shape)
    assert o["datatype"] == {"U": "BYTES", "i": "INT64", "f": "FP64" if pred.dtype == np.float64
                             else "FP32"}[pred.dtype.kind]
    same(o["data"], pred)
    if len(outs) == 2:
        proba = est.predict_proba(XQ)
        o = body["outputs"][1]
        assert o["shape"] == list(proba.shape)
        same(o["data"], proba)
        np.testing.assert_allclose(np.reshape(o["data"], proba.shape).sum(axis=1), 1,
                                   rtol=1e-5)
    # the default output is predict alone; the version route answers the same
    r = both(app, via, infer_url(app, version="1"), v2(XQ))
    assert r.status_code == 200
    assert [o["name"] for o in r.get_json()["outputs"]] == ["predict"]
    same(r.get_json()["outputs"][0]["data"], pred)


def test_v2_output_order_and_repeats(apps, models, via):
    app, est = apps["logreg"], models["logreg"][0]
    r = both(app, via, infer_url(app), v2(XQ[:3], outputs=[{"name": "predict_proba"},
                                                           {"name": "predict"}]))
    outs = r.get_json()["outputs"]
    assert [o["name"] for o in outs] == ["predict_proba", "predict"]
    same(outs[0]["data"], est.predict_proba(XQ[:3]))
    same(outs[1]["data"], est.predict(XQ[:3]))


def test_v2_id_is_echoed(apps, via):
    app = apps["mlp"]
    for rid in ("req-42", "", "ünïcode ✓", "x" * 300):
        r = both(app, via, infer_url(app), v2(XQ[:2], id=rid))
        assert r.status_code == 200 and r.get_json()["id"] == rid
    r = both(app, via, infer_url(app), v2(XQ[:2], id=None))
    assert r.status_code == 200 and "id" not in r.get_json()


def test_v2_nested_and_flat_data_agree(apps, via):
    app = apps["logreg"]
    flat = both(app, via, infer_url(app), v2(XQ, nested=False)).get_json()
    nested = both(app, via, infer_url(app), v2(XQ, nested=True)).get_json()
    assert flat == nested
    one = both(app, via, infer_url(app), v2(XQ[:1], nested=True)).get_json()
    assert one["outputs"][0]["data"] == flat["outputs"][0]["data"][:1]


def test_v2_fp32_and_integer_inputs(apps, models, via):
    app, est = apps["mlp"], models["mlp"][0]
    x32 = XQ.astype(np.float32)
    r = both(app, via, infer_url(app), v2(x32, "FP32", outputs=[{"name": "predict_proba"}]))
    assert r.status_code == 200
    same(r.get_json()["outputs"][0]["data"], est.predict_proba(x32.astype(np.float64)))
    ints = np.round(XQ * 3).astype(np.int64)
    for dt in ("INT64", "INT32", "INT16", "INT8"):
        r = both(app, via, infer_url(app), v2(ints, dt))
        assert r.status_code == 200, dt
        same(r.get_json()["outputs"][0]["data"], est.predict(ints.astype(np.float64)))
    u = np.abs(ints)
    for dt in ("UINT8", "UINT16", "UINT32", "UINT64"):
        r = both(app, via, infer_url(app), v2(u, dt))
        assert r.status_code == 200, dt
        same(r.get_json()["outputs"][0]["data"], est.predict(u.astype(np.float64)))


def test_v2_many_rows(apps, models, via):
    app, est = apps["ridge"], models["ridge"][0]
    Xb = RNG.normal(size=(3000, D))
    r = both(app, via, infer_url(app), v2(Xb))
    same(r.get_json()["outputs"][0]["data"], est.predict(Xb))


# ---- v1 and MLflow routes ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["logreg", "mlp", "ridge"])
def test_v1_predict(apps, models, via, kind):
    app, est = apps[kind], models[kind][0]
    url = f"/v1/models/{_name(app)}:predict"
    pred = est.predict(XQ)
    for key in ("instances", "inputs"):
        r = both(app, via, url, {key: XQ.tolist()})
        assert r.status_code == 200
        assert set(r.get_json()) == {"predictions"}
        same(r.get_json()["predictions"], pred)
    r = both(app, via, url, {"instances": XQ[0].tolist()})          # one flat row
    same(r.get_json()["predictions"], pred[:1])


@pytest.mark.parametrize("kind", ["logreg", "mlp", "ridge"])
def test_invocations_json_formats(apps, models, kind):
    app, est = apps[kind], models[kind][0]
    pred = est.predict(XQ)
    cols = [f"f{i}" for i in range(D)]
    bodies = [
        {"dataframe_split": {"columns": cols, "data": XQ.tolist()}},
        {"dataframe_split": {"data": XQ.tolist()}},
        {"dataframe_records": [dict(zip(cols, row)) for row in XQ.tolist()]},
        {"instances": XQ.tolist()},
        {"inputs": XQ.tolist()},
    ]
    for body in bodies:
        for chunked in (False, True):
            r = post(app, "/invocations", body, chunked=chunked)
            assert r.status_code == 200, (body.keys(), r.data)
            same(r.get_json()["predictions"], pred)


@pytest.mark.parametrize("header", [None, "a,b,c,d,e", "sepal_len,x2,x3,x4,x5"])
@pytest.mark.parametrize("ctype", ["text/csv", "text/csv; charset=utf-8"])
def test_invocations_csv(apps, models, header, ctype):
    app, est = apps["mlp"], models["mlp"][0]
    lines = [",".join(repr(v) for v in row) for row in XQ.tolist()]
    text = "\n".join(([header] if header else []) + lines) + "\n"
    for chunked in (False, True):
        r = post(app, "/invocations", text, ctype=ctype, chunked=chunked)
        assert r.status_code == 200, r.data
        same(r.get_json()["predictions"], est.predict(XQ))
    # CRLF line ends, blank lines and a single row
    r = post(app, "/invocations", "\r\n".join(lines[:2]) + "\r\n\r\n", ctype=ctype)
    same(r.get_json()["predictions"], est.predict(XQ[:2]))
    r = post(app, "/invocations", lines[0], ctype=ctype)
    same(r.get_json()["predictions"], est.predict(XQ[:1]))


# ---- client mistakes: 400 --------------------------------------------------------------------------

GOOD = XQ[:2]


def _v2_with(**tensor):
    body = v2(GOOD)
    body["inputs"][0].update(tensor)
    return body


BAD_V2 = {
    "invalid json": b"{",
    "truncated json": json.dumps(v2(GOOD))[:-5],
    "not utf-8": b"\xff\xfe{}",
    "empty body": b"",
    "list": [1, 2],
    "null": None,
    "string": "inputs",
    "no inputs": {"outputs": [{"name": "predict"}]},
    "inputs not list": {"inputs": {"name": "x"}},
    "two inputs": {"inputs": v2(GOOD)["inputs"] * 2},
    "inputs empty": {"inputs": []},
    "input not object": {"inputs": [[1, 2, 3]]},
    "shape 1-d": _v2_with(shape=[10]),
    "shape 3-d": _v2_with(shape=[2, 5, 1]),
    "wrong features": _v2_with(shape=[5, 2]),
    "four features": _v2_with(shape=[2, 4], data=XQ[:2, :4].ravel().tolist()),
    "shape strings": _v2_with(shape=["2", "5"]),
    "shape negative": _v2_with(shape=[-1, 5]),
    "shape bool": _v2_with(shape=[True, 5]),
    "shape missing": _v2_with(shape=None),
    "data too short": _v2_with(data=GOOD.ravel().tolist()[:-1]),
    "data too long": _v2_with(data=GOOD.ravel().tolist() + [1.0]),
    "data not list": _v2_with(data="1,2,3"),
    "data missing": _v2_with(data=None),
    "data ragged": _v2_with(data=[[1, 2, 3, 4, 5], [1, 2, 3, 4]]),
    "data words": _v2_with(data=["a"] * 10),
    "data objects": _v2_with(data=[{"x": 1}] * 10),
    "data null": _v2_with(data=[None] + [1.0] * 9),
    "BYTES": _v2_with(datatype="BYTES"),
    "FP16": _v2_with(datatype="FP16"),
    "BOOL": _v2_with(datatype="BOOL"),
    "lowercase fp64": _v2_with(datatype="fp64"),
    "datatype missing": _v2_with(datatype=None),
    "int8 overflow": _v2_with(datatype="INT8", data=[300] * 10),
    "uint negative": _v2_with(datatype="UINT16", data=[-1] * 10),
    "int64 overflow": _v2_with(datatype="INT64", data=[2 ** 70] * 10),
    "fp32 overflow": _v2_with(datatype="FP32", data=[1e300] * 10),
    "NaN literal": json.dumps(v2(GOOD)).replace(json.dumps(GOOD[0, 0]), "NaN", 1),
    "Infinity literal": json.dumps(v2(GOOD)).replace(json.dumps(GOOD[0, 0]), "Infinity", 1),
    "-Infinity literal": json.dumps(v2(GOOD)).replace(json.dumps(GOOD[0, 0]), "-Infinity", 1),
    "1e400": json.dumps(v2(GOOD)).replace(json.dumps(GOOD[0, 0]), "1e400", 1),
    "empty rows": _v2_with(shape=[0, 5], data=[]),
    "unknown output": v2(GOOD, outputs=[{"name": "explain"}]),
    "outputs not list": v2(GOOD, outputs={"name": "predict"}),
    "outputs empty": v2(GOOD, outputs=[]),
    "output without name": v2(GOOD, outputs=[{"nam": "predict"}]),
    "output name not str": v2(GOOD, outputs=[{"name": 1}]),
    "id int": v2(GOOD, id=42),
    "id object": v2(GOOD, id={"a": 1}),
    "id list": v2(GOOD, id=["a"]),
}


@pytest.mark.parametrize("case", list(BAD_V2))
def test_v2_bad_requests_are_400_on_both_paths(apps, via, case):
    app = apps["logreg"]
    body = BAD_V2[case]
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    r = both(app, via, infer_url(app), body)
    assert r.status_code == 400, (case, r.data)


def test_v2_nan_message_mentions_nan(apps, via):
    app = apps["mlp"]
    r = both(app, via, infer_url(app), BAD_V2["NaN literal"])
    assert "NaN" in r.get_json()["error"]


@pytest.mark.parametrize("kind", ["svc", "ridge", "mlpr"])
def test_predict_proba_on_a_model_without_it(apps, via, kind):
    app = apps[kind]
    r = both(app, via, infer_url(app), v2(GOOD, outputs=[{"name": "predict_proba"}]))
    assert r.status_code == 400
    assert "predict_proba" in r.get_json()["error"]
    r = both(app, via, infer_url(app), v2(GOOD, outputs=[{"name": "predict"},
                                                        {"name": "predict_proba"}]))
    assert r.status_code == 400


def test_hinge_sgd_has_no_predict_proba(tmp_path, via):
    est = _fit(lm.SGDClassifier(random_state=0, max_iter=5, tol=None), Y3)
    app = create_app(parml.save(est, tmp_path / "sgd"))
    m = get(app, "/v2/models/sgd").get_json()
    assert [o["name"] for o in m["outputs"]] == ["predict"]
    r = both(app, via, infer_url(app), v2(GOOD, outputs=[{"name": "predict_proba"}]))
    assert r.status_code == 400


BAD_V1 = {
    "invalid json": b"[",
    "list": [[1, 2, 3, 4, 5]],
    "no key": {"rows": GOOD.tolist()},
    "empty": {"instances": []},
    "empty row": {"instances": [[]]},
    "wrong features": {"instances": [[1, 2, 3]]},
    "ragged": {"instances": [[1, 2, 3, 4, 5], [1, 2]]},
    "words": {"instances": [["a", "b", "c", "d", "e"]]},
    "3-d": {"instances": [GOOD.tolist()]},
    "NaN": json.dumps({"instances": GOOD.tolist()}).replace(json.dumps(GOOD[1, 2]), "NaN", 1),
    "null": {"inputs": [[None, 1, 2, 3, 4]]},
    "columnar": {"inputs": {"x": [1, 2, 3, 4, 5]}},
}


@pytest.mark.parametrize("case", list(BAD_V1))
def test_v1_bad_requests_are_400_on_both_paths(apps, via, case):
    app = apps["mlp"]
    body = BAD_V1[case]
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    r = both(app, via, "/v1/models/my-model:predict", body)
    assert r.status_code == 400, (case, r.data)


BAD_INVOCATIONS_JSON = {
    "invalid": b"{]",
    "list": [[1, 2, 3, 4, 5]],
    "no key": {"data": GOOD.tolist()},
    "split not object": {"dataframe_split": GOOD.tolist()},
    "split without data": {"dataframe_split": {"columns": ["a"]}},
    "split wrong features": {"dataframe_split": {"data": GOOD[:, :3].tolist()}},
    "records empty": {"dataframe_records": []},
    "records not list": {"dataframe_records": {"a": 1}},
    "records not objects": {"dataframe_records": [[1, 2, 3, 4, 5]]},
    "records columns differ": {"dataframe_records": [{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5},
                                                     {"a": 1, "b": 2, "c": 3, "d": 4, "x": 5}]},
    "records wrong features": {"dataframe_records": [{"a": 1}]},
    "records NaN": json.dumps({"dataframe_records": [{"a": 1, "b": 2, "c": 3, "d": 4,
                                                      "e": 5}]}).replace("5}", "NaN}"),
    "instances empty": {"instances": []},
}


@pytest.mark.parametrize("case", list(BAD_INVOCATIONS_JSON))
def test_invocations_bad_json_is_400(apps, case):
    body = BAD_INVOCATIONS_JSON[case]
    for chunked in (False, True):
        r = post(apps["logreg"], "/invocations", body, chunked=chunked)
        assert r.status_code == 400, (case, r.data)


BAD_CSV = {
    "empty": "",
    "blank lines": "\n\n  \n",
    "header only": "a,b,c,d,e\n",
    "wrong features": "1,2,3\n4,5,6\n",
    "ragged": "1,2,3,4,5\n1,2,3\n",
    "words": "1,2,3,4,5\n1,2,x,4,5\n",
    "semicolons": "1;2;3;4;5\n",
    "nan": "1,2,3,4,5\nnan,1,2,3,4\n",
    "inf": "1,2,3,4,5\n1,inf,2,3,4\n",
    "not utf-8": b"1,2,3,4,\xff\n",
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_invocations_bad_csv_is_400(apps, case):
    for chunked in (False, True):
        r = post(apps["logreg"], "/invocations", BAD_CSV[case], ctype="text/csv", chunked=chunked)
        assert r.status_code == 400, (case, r.data)


# ---- 404, 405, 413, 415 -------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/v2/models/other/infer", "/v2/models/my-model/versions/2/infer",
    "/v2/models/other/versions/1/infer", "/v2/models/my-model.parml/infer",
    "/v1/models/other:predict", "/v1/models/my-model:explain", "/v1/models/my-model",
    "/v1/models/:predict",
])
def test_unknown_model_or_version_is_404(apps, via, url):
    r = both(apps["mlp"], via, url, v2(GOOD))
    assert r.status_code == 404, (url, r.data)


@pytest.mark.parametrize("url", [
    "/v2/models/my-model/x/1/infer", "/v2/models/my-model/infer/",
    "/v1/models/my-model:predict/x", "/nope",
    "/v2/models/my-model/versions/1/2/infer",
])
def test_unknown_route_is_404(apps, via, url):
    r = both(apps["mlp"], via, url, v2(GOOD), fast_route=False)
    assert r.status_code == 404, (url, r.data)


@pytest.mark.parametrize("url", ["/nope", "/v2/models/other", "/v2/models/my-model/versions/9",
                                 "/v2/models/other/versions/1", "/v3", "/v2/models",
                                 "/v2/models/other/ready"])
def test_get_unknown_is_404(apps, url):
    assert get(apps["mlp"], url).status_code == 404


def test_unknown_model_wins_over_a_bad_body(apps, via):
    r = both(apps["mlp"], via, "/v2/models/other/infer", b"{")
    assert r.status_code == 404


@pytest.mark.parametrize("method,url", [
    ("GET", "/v2/models/my-model/infer"), ("GET", "/v2/models/my-model/versions/1/infer"),
    ("PUT", "/v2/models/my-model/infer"), ("DELETE", "/v2"), ("POST", "/v2"),
    ("POST", "/v2/health/live"), ("POST", "/v2/models/my-model"), ("GET", "/invocations"),
    ("GET", "/v1/models/my-model:predict"), ("POST", "/metrics"), ("DELETE", "/ping"),
    ("PATCH", "/v1/models/my-model:predict"),
])
def test_wrong_method_is_405(apps, method, url):
    r = _checked(apps["mlp"].test_client().open(url, method=method, data=json.dumps(v2(GOOD)),
                                                content_type=JSON))
    assert r.status_code == 405, (method, url, r.data)
    assert method in r.get_json()["error"]


def test_body_over_max_is_413_with_content_length(models, via):
    p = models["logreg"][1]
    body = json.dumps(v2(XQ)).encode()
    app = create_app(p, max_body_bytes=len(body))
    c = via(app)
    assert post(app, infer_url(app), body).status_code == 200          # exactly the limit
    assert c.n == 0
    r = post(app, infer_url(app), body + b" ")                         # one byte over
    assert r.status_code == 413 and str(len(body)) in r.get_json()["error"]
    for url in ("/v1/models/logreg:predict", "/invocations"):
        r = post(app, url, json.dumps({"instances": XQ.tolist()}) + " " * len(body))
        assert r.status_code == 413, url
    r = post(app, "/invocations", "1,2,3,4,5\n" * (len(body) // 10 + 1), ctype="text/csv")
    assert r.status_code == 413
    # a chunked body within the limit is fine
    assert post(app, infer_url(app), body, chunked=True).status_code == 200


def test_chunked_body_within_the_limit_is_read_whole(models):
    est, p = models["ridge"]
    app = create_app(p, max_body_bytes=4096)
    text = "\n".join(",".join(repr(v) for v in row) for row in XQ.tolist())
    assert len(text) < 4096
    r = post(app, "/invocations", text, ctype="text/csv", chunked=True)
    same(r.get_json()["predictions"], est.predict(XQ))


@pytest.mark.parametrize("route", ["v2", "v1", "csv"])
def test_chunked_body_over_max_is_413(models, route):
    p = models["ridge"][1]
    if route == "csv":
        url, ctype = "/invocations", "text/csv"
        body = b"1,1,1,1,1\n2,2,2,2,2\n3,3,3,3,777777\n"
        limit = len(body) - 4                  # cut inside the last number: 777777 -> 777
    else:
        url = "/v2/models/ridge/infer" if route == "v2" else "/v1/models/ridge:predict"
        ctype = JSON
        body = json.dumps(v2(XQ) if route == "v2" else {"instances": XQ.tolist()}).encode()
        limit = len(body) // 2
    app = create_app(p, max_body_bytes=limit)
    r = post(app, url, body, ctype=ctype, chunked=True)
    assert r.status_code == 413, r.data


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "text/csv", "application/jsonl", None])
def test_wrong_content_type_is_415(apps, via, ctype):
    app = apps["mlp"]
    body = json.dumps(v2(GOOD))
    for url in (infer_url(app), "/v1/models/my-model:predict"):
        c = via(app)
        for chunked in (False, True):
            r = _checked(app.test_client().post(url, data=body, content_type=ctype,
                                                environ_overrides=CHUNKED if chunked else {}))
            assert r.status_code == 415, (url, ctype, r.data)
        assert c.n == 2                        # a non-JSON request always goes to Flask
    if ctype != "text/csv":
        r = post(app, "/invocations", json.dumps({"instances": GOOD.tolist()}), ctype=ctype)
        assert r.status_code == 415


def test_json_content_type_parameters_and_case(apps, models, via):
    app, est = apps["mlp"], models["mlp"][0]
    for ctype in ("application/json; charset=utf-8", "Application/JSON"):
        r = both(app, via, infer_url(app), v2(GOOD), ctype=ctype)
        assert r.status_code == 200
        same(r.get_json()["outputs"][0]["data"], est.predict(GOOD))


# ---- lazy loading: 503 until ready ---------------------------------------------------------------

MODEL_ROUTES_GET = ["/v2/models/{n}/ready", "/v2/models/{n}/versions/1/ready", "/v2/models/{n}",
                    "/v2/models/{n}/versions/1"]


def _assert_not_ready(app, via, name):
    r = get(app, "/v2/health/ready")
    assert r.status_code == 503 and r.get_json() == {"ready": False}
    assert get(app, "/v2/health/live").status_code == 200
    assert get(app, "/ping").status_code == 503
    r = get(app, "/health")
    assert r.status_code == 503 and r.get_json()["status"] != "ok"
    for u in MODEL_ROUTES_GET:
        assert get(app, u.format(n=name)).status_code == 503, u
    for u in (f"/v2/models/{name}/infer", f"/v2/models/{name}/versions/1/infer",
              f"/v1/models/{name}:predict"):
        r = both(app, via, u, v2(GOOD) if "v2" in u else {"instances": GOOD.tolist()})
        assert r.status_code == 503, (u, r.data)
    for body, ctype in ((json.dumps({"instances": GOOD.tolist()}), JSON),
                        ("1,2,3,4,5\n", "text/csv")):
        assert post(app, "/invocations", body, ctype=ctype).status_code == 503
    # /v2 and /metrics still answer
    assert get(app, "/v2").status_code == 200
    assert get(app, "/metrics").status_code == 200


def _wait(cond, timeout=10.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_lazy_load_is_503_until_ready(models, via, monkeypatch):
    est, p = models["mlp"]
    gate, started = threading.Event(), threading.Event()
    real = persistence.load

    def slow_load(*a, **kw):
        started.set()
        assert gate.wait(10)
        return real(*a, **kw)

    monkeypatch.setattr(persistence, "load", slow_load)
    try:
        app = create_app(p, lazy=True)
        assert started.wait(10)
        _assert_not_ready(app, via, "my-model")
    finally:
        gate.set()
    _wait(lambda: app.extensions["parml_model"].ready)
    assert get(app, "/v2/health/ready").status_code == 200
    assert get(app, "/v2/models/my-model/ready").status_code == 200
    r = both(app, via, "/v2/models/my-model/infer", v2(XQ))
    assert r.status_code == 200
    same(r.get_json()["outputs"][0]["data"], est.predict(XQ))


@pytest.mark.parametrize("breakage", ["missing", "flipped byte", "bad json"])
def test_lazy_load_of_a_broken_model_stays_503(models, tmp_path, via, breakage):
    import shutil
    p = models["logreg"][1]
    bad = tmp_path / "broken"
    if breakage != "missing":
        shutil.copytree(p, bad)
        if breakage == "flipped byte":
            meta = persistence.read_metadata(bad)
            f = bad / "arrays" / meta["arrays"]["coef_"]["file"]
            data = bytearray(f.read_bytes())
            data[-1] ^= 1
            f.write_bytes(bytes(data))
        else:
            (bad / "model.json").write_text('{"format": ')
    with pytest.raises(persistence.ModelFormatError):
        create_app(bad)                                      # eager: refuses at once
    app = create_app(bad, lazy=True)
    _wait(lambda: app.extensions["parml_model"].error is not None)
    _assert_not_ready(app, via, "broken")
    r = get(app, "/v2/models/broken/ready")
    assert "not ready" in r.get_json()["error"]
    assert not app.extensions["parml_model"].ready


def test_lazy_with_an_estimator_object_is_ready_at_once(models):
    app = create_app(models["ridge"][0], lazy=True)
    assert get(app, "/v2/health/ready").status_code == 200


# ---- metrics ------------------------------------------------------------------------------------

def _samples(app):
    from prometheus_client.parser import text_string_to_metric_families
    r = app.test_client().get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    out = {}
    for fam in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _req(samples, route, status):
    return samples.get(("parml_requests_total", (("route", route), ("status", str(status)))), 0.0)


def _rows(samples):
    return samples.get(("parml_rows_predicted_total", ()), 0.0)


def _lat_count(samples, route):
    return samples.get(("parml_request_latency_seconds_count", (("route", route),)), 0.0)


def test_metrics_count_requests_and_rows(apps, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    app = apps["logreg"]
    V2R, V2V, V1R = ("/v2/models/<mname>/infer", "/v2/models/<mname>/versions/<ver>/infer",
                     "/v1/models/<spec>")
    before = _samples(app)
    post(app, infer_url(app), v2(XQ[:3]))                              # fast path, 3 rows
    post(app, infer_url(app), v2(XQ[:4]), chunked=True)                # Flask path, 4 rows
    post(app, infer_url(app), v2(XQ[:2], outputs=[{"name": "predict"},
                                                   {"name": "predict_proba"}]))   # 2 rows x 2
    post(app, infer_url(app, "1"), v2(XQ[:1]))                          # 1 row
    post(app, infer_url(app), b"{")                                     # 400
    post(app, infer_url(app), b"{", chunked=True)                       # 400
    post(app, "/v2/models/nope/infer", v2(GOOD))                        # 404
    post(app, "/v1/models/logreg:predict", {"instances": XQ[:5].tolist()})          # 5 rows
    post(app, "/invocations", "1,2,3,4,5\n6,7,8,9,10\n", ctype="text/csv")          # 2 rows
    post(app, infer_url(app), v2(GOOD), ctype="text/plain")             # 415
    app.test_client().get("/no/such/route")                             # 404 unmatched
    app.test_client().delete("/v2")                                     # 405 unmatched
    app.test_client().get("/v2/health/live")
    after = _samples(app)

    def delta(route, status):
        return _req(after, route, status) - _req(before, route, status)

    assert delta(V2R, 200) == 3
    assert delta(V2V, 200) == 1
    assert delta(V2R, 400) == 2
    assert delta(V2R, 404) == 1
    assert delta(V2R, 415) == 1
    assert delta(V1R, 200) == 1
    assert delta("/invocations", 200) == 1
    assert delta("unmatched", 404) == 1
    assert delta("unmatched", 405) == 1
    assert delta("/v2/health/live", 200) == 1
    assert _rows(after) - _rows(before) == 3 + 4 + 2 * 2 + 1 + 5 + 2
    assert _lat_count(after, V2R) - _lat_count(before, V2R) == 7
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "# TYPE parml_requests_total counter" in text
    assert "# TYPE parml_rows_predicted_total counter" in text
    assert "parml_request_latency_seconds_bucket" in text


def test_metrics_are_shared_by_apps_in_one_process(apps, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = _rows(_samples(apps["ridge"]))
    post(apps["mlp"], infer_url(apps["mlp"]), v2(XQ[:6]))
    assert _rows(_samples(apps["ridge"])) - before == 6


def test_metrics_scrape_while_a_worker_creates_its_file(apps, monkeypatch, tmp_path):
    """Workers write samples to files in PROMETHEUS_MULTIPROC_DIR. A replacement worker creates
    its file empty and sizes it a moment later: a scrape in between must still answer, with every
    other worker's counts."""
    import subprocess
    import sys
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c",
                    "from parml.serving._metrics import metrics; m = metrics(); "
                    "m.rows.inc(7); m.requests.labels(route='/invocations', status='200').inc(3)"],
                   env=env, check=True)
    assert any(p.stat().st_size > 8 for p in tmp_path.glob("counter_*.db"))
    (tmp_path / "counter_4194305.db").touch()       # a worker between creating and sizing it
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    got = _samples(apps["ridge"])
    assert _rows(got) == 7
    assert _req(got, "/invocations", 200) == 3


# ---- concurrency --------------------------------------------------------------------------------

def test_sixteen_threads_get_correct_answers(apps, models):
    kinds = ["logreg", "mlp", "ridge"]
    Xs = RNG.normal(size=(64, D))
    expected = {k: models[k][0].predict(Xs) for k in kinds}
    proba = {k: models[k][0].predict_proba(Xs) for k in ("logreg", "mlp")}
    errors = []
    barrier = threading.Barrier(16)

    def worker(t):
        try:
            rng = np.random.default_rng(t)
            client = {k: apps[k].test_client() for k in kinds}
            barrier.wait()
            for i in range(30):
                k = kinds[(t + i) % 3]
                app = apps[k]
                lo = int(rng.integers(0, 60))
                hi = lo + int(rng.integers(1, 5))
                route = (t + i) % 4
                if route == 0:
                    r = client[k].post(infer_url(app), json=v2(Xs[lo:hi]))
                    got = r.get_json()["outputs"][0]["data"]
                elif route == 1:
                    r = client[k].post(infer_url(app), data=json.dumps(v2(Xs[lo:hi])),
                                       content_type=JSON, environ_overrides=CHUNKED)
                    got = r.get_json()["outputs"][0]["data"]
                elif route == 2:
                    r = client[k].post(f"/v1/models/{_name(app)}:predict",
                                       json={"instances": Xs[lo:hi].tolist()})
                    got = r.get_json()["predictions"]
                else:
                    body = {"dataframe_split": {"data": Xs[lo:hi].tolist()}}
                    r = client[k].post("/invocations", json=body)
                    got = r.get_json()["predictions"]
                assert r.status_code == 200, r.data
                same(got, expected[k][lo:hi])
                if k in proba and i % 5 == 0:
                    r = client[k].post(infer_url(app), json=v2(Xs[lo:hi], outputs=[
                        {"name": "predict_proba"}]))
                    same(r.get_json()["outputs"][0]["data"], proba[k][lo:hi])
                if i % 7 == 0:
                    r = client[k].post(infer_url(app), data=b"{", content_type=JSON)
                    assert r.status_code == 400
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((t, repr(e)))

    _run_threads(worker, 16, errors)


def _run_threads(worker, n, errors):
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    assert errors == []


def test_threads_calling_wsgi_app_directly(apps, models):
    """The fast path called from many threads with hand-built environs (as a WSGI server does)."""
    import io
    app, est = apps["mlp"], models["mlp"][0]
    Xs = RNG.normal(size=(32, D))
    want = est.predict(Xs)
    errors = []

    def call(body):
        env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v2/models/my-model/infer",
               "CONTENT_TYPE": JSON, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "SERVER_NAME": "x", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1",
               "wsgi.errors": io.StringIO(), "QUERY_STRING": ""}
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, dict(headers)

        data = b"".join(app.wsgi_app(env, start_response))
        assert int(seen["headers"]["Content-Length"]) == len(data)
        return seen["status"], data

    def worker(t):
        try:
            for i in range(40):
                j = (t * 3 + i) % 32
                status, data = call(json.dumps(v2(Xs[j:j + 1], id=f"{t}-{i}")).encode())
                assert status == "200 OK" and b"Traceback" not in data
                body = json.loads(data)
                assert body["id"] == f"{t}-{i}"
                assert body["outputs"][0]["data"] == [want[j]]
        except BaseException as e:  # noqa: BLE001
            errors.append((t, repr(e)))

    _run_threads(worker, 16, errors)


# ---- bugs found ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/v2/models/logreg/infer", "/v1/models/logreg:predict",
                                 "/invocations"])
def test_deeply_nested_json_is_400(apps, via, url):
    body = "[" * 100000
    for chunked in (False, True):
        r = apps["logreg"].test_client().post(url, data=body, content_type=JSON,
                                               environ_overrides=CHUNKED if chunked else {})
        assert r.status_code == 400, (chunked, r.status_code, r.data)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "INF", "-Inf"])
def test_csv_first_row_with_nan_is_not_a_header(apps, token):
    text = f"{token},1,2,3,4\n1,2,3,4,5\n"
    r = post(apps["logreg"], "/invocations", text, ctype="text/csv")
    assert r.status_code == 400, r.data


@pytest.mark.parametrize("dt", ["INT64", "INT32", "UINT8"])
def test_integer_datatype_refuses_fractions(apps, via, dt):
    app = apps["logreg"]
    r = both(app, via, infer_url(app), _v2_with(datatype=dt, data=[1.7] * 10))
    assert r.status_code == 400, r.data


@pytest.mark.parametrize("value", [1e39, 1e300, -1e308])
def test_float32_model_out_of_range_input_is_400(apps, via, value):
    app = apps["mlp"]
    body = json.dumps(v2(np.full((1, D), value)))
    r = app.test_client().post(infer_url(app), data=body, content_type=JSON)
    assert b"Traceback" not in r.data
    assert r.status_code == 400, r.data


def _strict_json(data):
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")
    return json.loads(data, parse_constant=refuse)


@pytest.mark.parametrize("kind,row,output", [("ridge", [1.7e308, 0, 0, 0, 0], "predict"),
                                             ("logreg", [1e308] * D, "predict_proba")])
def test_responses_are_strict_json(apps, kind, row, output):
    app = apps[kind]
    r = app.test_client().post(infer_url(app), json=v2(np.array([row], dtype=float),
                                                       outputs=[{"name": output}]))
    assert r.status_code in (200, 400)
    _strict_json(r.data)


@pytest.mark.parametrize("which", ["mlp-f32-proba", "mlpr-f32", "ridge-2out"])
def test_metadata_matches_infer_outputs(tmp_path, which):
    if which == "mlp-f32-proba":
        est = _fit(nn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0), Y3S)
    elif which == "mlpr-f32":
        est = _fit(nn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0), YR)
    else:
        est = _fit(lm.Ridge(), np.column_stack([YR, -YR]))
    app = create_app(est)
    meta = get(app, "/v2/models/model").get_json()
    r = post(app, "/v2/models/model/infer",
             v2(XQ[:3], outputs=[{"name": o["name"]} for o in meta["outputs"]]))
    assert r.status_code == 200
    for declared, got in zip(meta["outputs"], r.get_json()["outputs"]):
        assert declared["name"] == got["name"]
        assert declared["datatype"] == got["datatype"], (declared, got)
        assert len(declared["shape"]) == len(got["shape"]), (declared, got)
        assert all(a in (-1, b) for a, b in zip(declared["shape"], got["shape"]))


def test_stdlib_json_fallback(models, monkeypatch):
    """Without orjson (an optional speed-up) the app parses and answers the same way."""
    from parml.serving import _protocol
    p = models["logreg"][1]
    app = create_app(p)
    ok = v2(GOOD)
    with_orjson = post(app, infer_url(app), ok).get_json()
    monkeypatch.setattr(_protocol, "_orjson", None)
    assert post(app, infer_url(app), ok).get_json() == with_orjson
    for bad, status in ((b"{", 400), (b"[" * 5000, 400), (b'{"inputs": NaN}', 400)):
        r = post(app, infer_url(app), bad, raw=True)
        assert r.status_code == status, r.data


# ---- found in review --------------------------------------------------------------------------

@pytest.mark.parametrize("dt", [["FP64"], {"a": 1}, 7, None])
def test_non_string_datatype_is_400(apps, dt):
    app = apps["logreg"]
    body = {"inputs": [{"name": "x", "shape": [1, D], "datatype": dt, "data": [0.0] * D}]}
    assert post(app, infer_url(app), body).status_code == 400


def test_csv_hash_rows_and_bad_first_row_are_not_dropped(apps):
    app = apps["ridge"]
    row = ",".join(["1"] * D)
    r = post(app, "/invocations", f"{row}\n#{row}\n", ctype="text/csv")
    assert r.status_code == 400                      # '#1' is not a number: never skipped
    r = post(app, "/invocations", f"{row},\n{row}\n", ctype="text/csv")
    assert r.status_code == 400                      # a malformed first row is not a header


def test_dataframe_split_columns_must_match(apps):
    app = apps["ridge"]
    data = [[1.0] * D]
    r = post(app, "/invocations", {"dataframe_split": {"columns": ["a"], "data": data}})
    assert r.status_code == 400
    r = post(app, "/invocations", {"dataframe_split": {"columns": [str(i) for i in range(D)],
                                                       "data": data}})
    assert r.status_code == 200


def test_hist_gradient_boosting_is_served(tmp_path):
    """The tree ensemble through the app: NaN means missing only where the model learned it;
    the inference routes refuse it like every model (non-finite input is a 400)."""
    from parml.ensemble import HistGradientBoostingClassifier
    Xh = RNG.normal(size=(2000, D))
    yh = (Xh[:, 0] + Xh[:, 1] > 0).astype(int)
    est = HistGradientBoostingClassifier(max_iter=20).fit(Xh, yh)
    app = create_app(parml.save(est, tmp_path / "hgb"))
    Xq = RNG.normal(size=(7, D))
    r = post(app, infer_url(app), v2(Xq, outputs=[{"name": "predict"}, {"name": "predict_proba"}]))
    out = r.get_json()["outputs"]
    assert out[0]["data"] == est.predict(Xq).tolist()
    np.testing.assert_allclose(np.reshape(out[1]["data"], (7, 2)), est.predict_proba(Xq))
