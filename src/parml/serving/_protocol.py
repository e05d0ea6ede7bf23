"""Request parsing and response shaping for the serving app: Open Inference Protocol (KServe v2),
TensorFlow-Serving-style v1, and MLflow's /invocations. Everything a client can get wrong is a
ClientError with its HTTP status; nothing here touches the model."""

from __future__ import annotations

import io
import json

import numpy as np

try:  # 8x faster than the json module on bodies of numbers (1.6 ms -> 0.2 ms for 100 x 100)
    import orjson as _orjson
except ImportError:  # optional: parml[serve] brings it
    _orjson = None

# v2 datatypes a client may send for the input tensor
V2_INPUT_TYPES = {"FP32": np.float32, "FP64": np.float64, "INT8": np.int8, "INT16": np.int16,
                  "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16,
                  "UINT32": np.uint32, "UINT64": np.uint64}
OUTPUT_NAMES = ("predict", "predict_proba")


class ClientError(Exception):
    """A request the client got wrong: status (4xx) and a message for {"error": ...}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def loads(body):
    return _orjson.loads(body) if _orjson is not None else json.loads(body)


def dumps(obj):
    """Compact JSON bytes (outputs are checked finite before they get here)."""
    if _orjson is not None:
        return _orjson.dumps(obj)
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def parse_json(body):
    try:
        obj = loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        hint = ""
        if b"NaN" in body or b"Infinity" in body:
            hint = " (NaN and Infinity are not JSON numbers, and the model refuses non-finite values)"
        raise ClientError(400, f"request body is not valid JSON: {e}{hint}") from None
    except RecursionError:
        raise ClientError(400, "request body is nested too deeply") from None
    if not isinstance(obj, dict):
        raise ClientError(400, "request body must be a JSON object")
    return obj


def as_matrix(data, n_features, what="inputs", dtype=np.float64):
    """A rows x n_features float64 matrix from nested lists (or one flat row), checked."""
    try:
        X = np.asarray(data)
    except (ValueError, TypeError):
        raise ClientError(400, f"{what} must be a rectangular array of numbers") from None
    if X.dtype.kind not in "iuf":  # strings, booleans, ragged rows (object), nulls
        raise ClientError(400, f"{what} must be a rectangular array of numbers")
    X = X.astype(dtype, copy=False)
    if X.ndim == 1 and X.size == n_features:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        raise ClientError(400, f"{what} must be 2-D (rows x {n_features} features), got shape "
                               f"{list(X.shape)}")
    if X.shape[1] != n_features:
        raise ClientError(400, f"{what} has {X.shape[1]} features per row; the model expects "
                               f"{n_features}")
    if X.shape[0] == 0:
        raise ClientError(400, f"{what} has no rows")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if not np.isfinite(X).all():
        raise ClientError(400, f"{what} contains NaN or infinite values, which the model refuses")
    return X


def v2_request(obj, n_features):
    """(X, request id, [output names]) from a v2 inference request."""
    inputs = obj.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ClientError(400, "'inputs' must be a list holding one input tensor")
    t = inputs[0]
    dt = t.get("datatype")
    if not isinstance(dt, str) or dt not in V2_INPUT_TYPES:
        raise ClientError(400, f"input datatype {dt!r} is not supported; use FP32 or FP64 (or an "
                               "integer type)")
    shape = t.get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ClientError(400, f"input shape must be [rows, {n_features}], got {shape!r}")
    if shape[1] != n_features:
        raise ClientError(400, f"input shape {shape} has {shape[1]} features; the model expects "
                               f"{n_features}")
    data = t.get("data")
    if not isinstance(data, list):
        raise ClientError(400, "input 'data' must be a list")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        raise ClientError(400, f"input 'data' must hold {dt} numbers") from None
    if arr.dtype.kind not in "iuf":
        raise ClientError(400, f"input 'data' must hold {dt} numbers")
    want = np.dtype(V2_INPUT_TYPES[dt])
    if want.kind in "iu":  # integers must be integral and in range, never silently truncated
        info = np.iinfo(want)
        a64 = arr.astype(np.float64)
        if not (np.isfinite(a64).all() and (np.floor(a64) == a64).all()
                and (a64 >= info.min).all() and (a64 <= info.max).all()):
            raise ClientError(400, f"input 'data' must hold {dt} numbers (integers in range)")
    elif want == np.float32:
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float32)  # values beyond float32 become inf: refused below
    if arr.size != shape[0] * shape[1]:
        raise ClientError(400, f"input 'data' has {arr.size} values; shape {shape} needs "
                               f"{shape[0] * shape[1]}")
    X = as_matrix(arr.reshape(shape), n_features, "input")
    rid = obj.get("id")
    if rid is not None and not isinstance(rid, str):
        raise ClientError(400, "'id' must be a string")
    outs = obj.get("outputs")
    if outs is None:
        names = ["predict"]
    else:
        if not isinstance(outs, list) or not outs or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) for o in outs):
            raise ClientError(400, "'outputs' must be a list of {\"name\": ...} objects")
        names = [o["name"] for o in outs]
    return X, rid, names


def v1_request(obj, n_features):
    for key in ("instances", "inputs"):
        if key in obj:
            return as_matrix(obj[key], n_features, key)
    raise ClientError(400, "expected a JSON object with 'instances' or 'inputs'")


def mlflow_json(obj, n_features, feature_names=None):
    if "dataframe_split" in obj:
        split = obj["dataframe_split"]
        if not isinstance(split, dict) or "data" not in split:
            raise ClientError(400, "'dataframe_split' must be an object with 'data'")
        X = as_matrix(split["data"], n_features, "dataframe_split.data")
        cols = split.get("columns")
        if cols is not None:
            if not isinstance(cols, list) or len(cols) != n_features:
                raise ClientError(400, f"'dataframe_split.columns' must list the {n_features} "
                                       "feature columns")
            if feature_names is not None:  # put the columns in the model's order
                names = [str(c) for c in cols]
                if sorted(names) != sorted(feature_names):
                    raise ClientError(400, f"columns {names} are not the model's features "
                                           f"{list(feature_names)}")
                X = np.ascontiguousarray(X[:, [names.index(f) for f in feature_names]])
        return X
    if "dataframe_records" in obj:
        recs = obj["dataframe_records"]
        if not isinstance(recs, list) or not all(isinstance(r, dict) for r in recs) or not recs:
            raise ClientError(400, "'dataframe_records' must be a non-empty list of objects")
        cols = list(recs[0])
        if any(list(r) != cols for r in recs):
            raise ClientError(400, "every record in 'dataframe_records' needs the same columns")
        return as_matrix([[r[c] for c in cols] for r in recs], n_features, "dataframe_records")
    for key in ("instances", "inputs"):
        if key in obj:
            return as_matrix(obj[key], n_features, key)
    raise ClientError(400, "expected 'dataframe_split', 'dataframe_records', 'instances' or "
                           "'inputs'")


def mlflow_csv(body, n_features):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(400, "CSV body is not UTF-8") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and _no_numbers(lines[0]):
        lines = lines[1:]  # a header row: names only
    if not lines:
        raise ClientError(400, "CSV body has no data rows")
    try:
        X = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", dtype=np.float64, ndmin=2,
                       comments=None)
    except ValueError as e:
        raise ClientError(400, f"CSV body is not a table of numbers: {e}") from None
    return as_matrix(X, n_features, "CSV rows")


def _no_numbers(line):
    for c in line.split(","):
        try:
            float(c)
            return False
        except ValueError:
            pass
    return True


def v2_datatype(a):
    k = a.dtype.kind
    if k == "f":
        return "FP32" if a.dtype == np.float32 else "FP64"
    if k in "iu":
        return "INT64"
    if k == "b":
        return "BOOL"
    return "BYTES"


def jsonable(a):
    """A flat (row-major) list of plain Python values for a JSON response."""
    if a.dtype.kind in "US":
        return [str(x) for x in a.ravel()]
    return a.ravel().tolist()
