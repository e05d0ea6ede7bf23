"""Safe model files: JSON metadata plus raw .npy arrays in a directory, memory-mappable.

Layout of ``path`` (a directory)::

    model.json      format, format_version, parml_version, estimator (an allow-listed class name),
                    params, scalar attributes, and for every array its file, dtype, shape, bytes
                    and sha256; plus a sha256 of the metadata itself
    arrays/*.npy    one plain .npy file per array (never object dtype)

Loading never unpickles (``allow_pickle=False``) and never imports a name from the file: the
estimator class is looked up in a fixed table of parml classes; symbolic links are refused. Every
array is checked against its recorded dtype, shape, size and hash (which catch corruption and
inconsistent edits; they are not a signature); the fitted model is then checked for consistency
(feature counts, layer chains) and must predict one finite row. With ``mmap=True`` arrays are
memory-mapped read-only, so every process serving the model shares one copy in the page cache.

This module knows the format, not the estimators: it stores public fitted attributes itself and
asks each estimator for the rest through the protocol of parml._core.persist (``_save_state``,
``_restore_state``, ``_check_restored``). Adding an estimator means adding its class to
``_registry``, the allow-list of what a file may name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings

import numpy as np

from parml._core.persist import Persistent, decode_value as _dec, encode_value as _enc

FORMAT = "parml-model"
FORMAT_VERSION = 1
META = "model.json"
ARRAYS = "arrays"
MAX_META_BYTES = 64 << 20
SMALL_ARRAY_BYTES = 64 << 10


class ModelFormatError(ValueError):
    """A model file that is missing, truncated, corrupted, edited inconsistently, not parml's, or
    of another format version. (The hashes catch corruption and inconsistent edits, not a
    deliberate forgery: what keeps loading safe is that nothing is ever unpickled or imported.)"""


def _registry():
    from parml import ensemble as en
    from parml import linear_model as lm
    from parml import neural_network as nn
    from parml import tree as tr
    classes = [lm.LinearRegression, lm.Ridge, lm.LogisticRegression, lm.SGDClassifier,
               lm.SGDRegressor, lm.LinearSVC, nn.MLPClassifier, nn.MLPRegressor,
               en.HistGradientBoostingClassifier, en.HistGradientBoostingRegressor,
               en.RandomForestClassifier, en.RandomForestRegressor,
               tr.DecisionTreeClassifier, tr.DecisionTreeRegressor]
    return {_public_module(c): c for c in classes}


def _public_module(cls):
    mod = cls.__module__
    parts = mod.split(".")
    while parts and parts[-1].startswith("_"):
        parts.pop()
    return ".".join(parts) + "." + cls.__name__


# ---- save ------------------------------------------------------------------------------------

def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _storable_array(a, what):
    a = np.asarray(a)
    if a.dtype.kind == "O":
        try:
            a = a.astype(str)
        except Exception:
            raise TypeError(f"{what} holds Python objects; parml model files store only "
                            "numbers and strings") from None
    if a.dtype.kind not in "biufU":
        raise TypeError(f"{what} has dtype {a.dtype}, which a parml model file cannot store")
    return np.ascontiguousarray(a)


def save(estimator, path, *, overwrite=False):
    """Write a fitted parml estimator to the directory ``path`` (see the module docstring).

    The directory is written next to its final place and renamed into it, so a reader never sees
    a half-written model. ``overwrite=True`` replaces an existing model directory."""
    reg = _registry()
    name = _public_module(type(estimator))
    if reg.get(name) is not type(estimator) or not isinstance(estimator, Persistent):
        raise TypeError(f"parml.save stores parml estimators only, not {type(estimator).__name__}")
    if not any(k.endswith("_") and not k.startswith("_") for k in vars(estimator)):
        raise ValueError(f"{type(estimator).__name__} is not fitted; fit it before saving")
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if os.path.exists(path) and not os.path.isfile(os.path.join(path, META)):
        raise FileExistsError(f"{path} exists and is not a parml model; overwrite=True replaces "
                              "only a model directory")
    parent = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.mkdtemp(prefix=".parml-save-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the model from a service user
    try:
        os.mkdir(os.path.join(tmp, ARRAYS))
        arrays, attrs = {}, {}

        def put(key, a):
            a = _storable_array(a, key)
            fname = f"{len(arrays):04d}.npy"
            fpath = os.path.join(tmp, ARRAYS, fname)
            np.save(fpath, a, allow_pickle=False)
            arrays[key] = {"file": fname, "dtype": a.dtype.str, "shape": list(a.shape),
                           "bytes": os.path.getsize(fpath), "sha256": _sha256(fpath)}

        for k, v in vars(estimator).items():
            if k.startswith("_") or not k.endswith("_"):
                continue  # private state goes through _save_state; the rest is training scratch
            if isinstance(v, np.ndarray):
                put(k, v)
            elif isinstance(v, list) and v and all(isinstance(x, np.ndarray) for x in v):
                for i, x in enumerate(v):
                    put(f"{k}.{i}", x)
                attrs[k] = {"__arrays__": len(v)}
            else:
                attrs[k] = _enc(v)
        extra = estimator._save_state(put)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "parml_version": _version(), "estimator": name,
                "params": {k: _enc(v) for k, v in estimator.get_params(deep=False).items()
                           if _encodable(v)},
                "attributes": attrs, "extra": extra, "arrays": arrays}
        meta["meta_sha256"] = _meta_hash(meta)
        with open(os.path.join(tmp, META), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        if os.path.exists(path):
            old = path + ".old-" + os.path.basename(tmp)
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _encodable(v):
    try:
        _enc(v)
        return True
    except TypeError:
        return False  # e.g. a RandomState instance: not needed to predict


def _meta_hash(meta):
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _version():
    from parml import __version__
    return __version__


# ---- load ------------------------------------------------------------------------------------

def read_metadata(path):
    """The validated metadata of the model at ``path`` (no arrays read)."""
    path = os.fspath(path)
    mpath = os.path.join(path, META)
    if not os.path.isdir(path) or not os.path.isfile(mpath):
        raise ModelFormatError(f"{path} is not a parml model directory (no {META})")
    if os.path.getsize(mpath) > MAX_META_BYTES:
        raise ModelFormatError(f"{mpath} is larger than {MAX_META_BYTES >> 20} MiB")
    if os.path.islink(mpath):
        raise ModelFormatError(f"{mpath} is a symbolic link; model files must be plain files")
    try:
        with open(mpath, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except RecursionError:
        raise ModelFormatError(f"{mpath} is nested too deeply to be parml metadata") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{mpath} is not valid JSON (truncated or corrupted?): {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFormatError(f"{mpath} is not a parml model file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{mpath} has format version {meta.get('format_version')!r}; "
                               f"this parml ({_version()}) reads version {FORMAT_VERSION}")
    if meta.get("meta_sha256") != _meta_hash(meta):
        raise ModelFormatError(f"{mpath} was modified after it was written (metadata hash "
                               "mismatch)")
    if not isinstance(meta.get("estimator"), str) or meta["estimator"] not in _registry():
        raise ModelFormatError(f"{mpath} names estimator {meta.get('estimator')!r}, which is not "
                               "a parml estimator this version can load")
    for key in ("params", "attributes", "extra", "arrays"):
        if not isinstance(meta.get(key), dict):
            raise ModelFormatError(f"{mpath}: '{key}' is missing or malformed")
    return meta


def _load_array(path, key, info, mmap, verify):
    if not isinstance(info, dict) or not isinstance(info.get("file"), str) \
            or os.path.basename(info["file"]) != info["file"] or not info["file"].endswith(".npy"):
        raise ModelFormatError(f"array {key!r}: bad file entry")
    fpath = os.path.join(path, ARRAYS, info["file"])
    if not os.path.isfile(fpath):
        raise ModelFormatError(f"array {key!r}: {fpath} is missing")
    if os.path.islink(fpath) or os.path.islink(os.path.join(path, ARRAYS)):
        raise ModelFormatError(f"array {key!r}: {fpath} is a symbolic link; model files must "
                               "be plain files inside the model directory")
    size = os.path.getsize(fpath)
    if size != info.get("bytes"):
        raise ModelFormatError(f"array {key!r}: {fpath} has {size} bytes, expected "
                               f"{info.get('bytes')} (truncated or replaced)")
    if verify and _sha256(fpath) != info.get("sha256"):
        raise ModelFormatError(f"array {key!r}: {fpath} does not match its recorded sha256 "
                               "(tampered with or corrupted)")
    # small arrays (classes, intercepts) are read: sharing them saves nothing, and results
    # computed from them (predicted labels) should be plain arrays, not memory maps
    mmap = mmap and size > SMALL_ARRAY_BYTES
    try:
        a = np.load(fpath, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ModelFormatError(f"array {key!r}: {fpath} is not a readable .npy file: {e}") from None
    if not isinstance(a, np.ndarray):  # an .npz archive under an .npy name
        if hasattr(a, "close"):
            a.close()
        raise ModelFormatError(f"array {key!r}: {fpath} is not a .npy array file")
    if a.dtype.str != info.get("dtype") or list(a.shape) != info.get("shape"):
        raise ModelFormatError(f"array {key!r}: {fpath} holds {a.dtype.str} {list(a.shape)}, "
                               f"the metadata says {info.get('dtype')} {info.get('shape')}")
    if a.dtype.kind not in "biufU":
        raise ModelFormatError(f"array {key!r}: dtype {a.dtype} is not allowed")
    return a


def verify(path):
    """Check the model at ``path`` (metadata, every array's size, dtype, shape and sha256)
    without building the estimator or running any kernel. Raises ModelFormatError."""
    path = os.fspath(path)
    meta = read_metadata(path)
    for k, v in meta["arrays"].items():
        _load_array(path, k, v, True, True)
    return meta


def load(path, mmap=True, *, verify=True, check=True):
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str or PathLike
        The model directory.
    mmap : bool
        Memory-map the arrays read-only (shared between processes) instead of reading them.
        Continuing training (partial_fit, warm_start) on a memory-mapped MLP copies its weights.
    verify : bool
        Check every array's sha256 (reads each file once).
    check : bool
        Check that every float array is finite and that the model predicts one row of zeros
        to a finite value. (Whether the loaded parts fit together, classes against outputs
        and layer shapes, is always checked: it costs nothing.)
    """
    path = os.fspath(path)
    meta = read_metadata(path)
    try:
        est = _build(path, meta, mmap, verify)
    except ModelFormatError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
        # metadata that is well-formed JSON with a matching hash, but not what save() writes
        raise ModelFormatError(f"{path}: malformed model metadata ({type(e).__name__}: {e})") \
            from None
    if check:
        _check_model(est, path)
    return est


def _build(path, meta, mmap, verify):
    cls = _registry()[meta["estimator"]]
    params = {k: _dec(v) for k, v in meta["params"].items()}
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelFormatError(f"{path}: parameters {unknown} are not {cls.__name__}'s")
    est = cls(**params)
    arrays = {k: _load_array(path, k, v, mmap, verify) for k, v in meta["arrays"].items()}
    for k, v in meta["attributes"].items():
        if isinstance(v, dict) and set(v) == {"__arrays__"}:
            n = v["__arrays__"]
            try:
                setattr(est, k, [arrays.pop(f"{k}.{i}") for i in range(n)])
            except KeyError:
                raise ModelFormatError(f"{path}: attribute {k} lacks some of its arrays") from None
        else:
            setattr(est, k, _dec(v))
    for k in [k for k in arrays if "." not in k and k.endswith("_") and not k.startswith("_")]:
        setattr(est, k, arrays.pop(k))
    extra = dict(meta["extra"])

    def take(key):
        try:
            return arrays.pop(key)
        except KeyError:
            raise ModelFormatError(f"{path}: array {key!r} of the model's state is "
                                   "missing") from None

    try:
        est._restore_state(extra, take)
        if extra:
            raise ModelFormatError(f"{path}: state {sorted(extra)} is not {cls.__name__}'s")
        if arrays:
            raise ModelFormatError(f"{path}: stray arrays {sorted(arrays)}")
        est._check_restored()
    except ModelFormatError:
        raise
    except ValueError as e:   # children outside their tree, cycles, bad features, shapes
        raise ModelFormatError(f"{path}: {e}") from None
    return est


def _check_model(est, path):
    d = getattr(est, "n_features_in_", None)
    if not isinstance(d, int) or d < 1:
        raise ModelFormatError(f"{path}: n_features_in_ is missing or invalid")
    for k, v in vars(est).items():
        for a in (v if isinstance(v, list) else [v]):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ModelFormatError(f"{path}: {k} holds NaN or infinite values")
    try:
        with warnings.catch_warnings():  # a probe row has no feature names: not the user's
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            out = np.asarray(est.predict(np.zeros((1, d))))
    except Exception as e:  # any failure here means the file does not describe a usable model
        raise ModelFormatError(f"{path}: the loaded model cannot predict: {e}") from None
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise ModelFormatError(f"{path}: the loaded model predicts non-finite values")
