"""parml.save / parml.load: round trips for every servable estimator, memory mapping, continued
training after a load, and refusal of every kind of damaged, tampered-with or hostile model
directory (always ModelFormatError, never an unpickle)."""
import copy
import json
import os
import pickle
import shutil
import warnings

import numpy as np
import pytest

import parml
from parml import linear_model as lm
from parml import neural_network as nn
from parml import persistence
from parml.persistence import ModelFormatError

# ---- data and fitted estimators (module scope: fitting is the slow part) ---------------------

RNG = np.random.default_rng(20240601)
X = RNG.normal(size=(150, 5))
XT = RNG.normal(size=(40, 5))                      # rows the models never saw
Y_BIN_INT = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64) * 7 - 2    # labels -2 and 5
Y_MULTI_INT = np.digitize(X[:, 0], [-0.5, 0.5])                       # 0, 1, 2
Y_BIN_STR = np.array(["no", "yes"])[(X[:, 1] > 0).astype(int)]
Y_MULTI_STR = np.array(["cat", "dog", "emu"])[Y_MULTI_INT]
Y_REG = X @ np.array([1.0, -2.0, 0.5, 3.0, 0.0]) + 0.25
Y_REG2 = np.column_stack([Y_REG, -0.5 * Y_REG + X[:, 2]])


def _fit(est, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ConvergenceWarning from the tiny max_iter
        return est.fit(X, y)


def _partial(est, y, rounds=3, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(rounds):
            est.partial_fit(X, y, **kw)
    return est


def _mlp(cls, **kw):
    return cls(hidden_layer_sizes=kw.pop("hidden_layer_sizes", (8,)), max_iter=40,
               random_state=0, **kw)


# id -> (builder, y used for further training)
CASES = {
    "LinearRegression-1out": (lambda: _fit(lm.LinearRegression(), Y_REG), Y_REG),
    "LinearRegression-2out": (lambda: _fit(lm.LinearRegression(), Y_REG2), Y_REG2),
    "Ridge-1out": (lambda: _fit(lm.Ridge(alpha=0.5), Y_REG), Y_REG),
    "Ridge-2out": (lambda: _fit(lm.Ridge(alpha=2.0), Y_REG2), Y_REG2),
    "LogisticRegression-bin-int": (lambda: _fit(lm.LogisticRegression(), Y_BIN_INT), Y_BIN_INT),
    "LogisticRegression-multi-str": (lambda: _fit(lm.LogisticRegression(C=0.5), Y_MULTI_STR),
                                     Y_MULTI_STR),
    "LogisticRegression-multi-int-cw": (
        lambda: _fit(lm.LogisticRegression(class_weight={0: 1.0, 1: 2.0, 2: 0.5}), Y_MULTI_INT),
        Y_MULTI_INT),
    "SGDClassifier-bin-int-hinge": (
        lambda: _fit(lm.SGDClassifier(random_state=0, max_iter=20, tol=None), Y_BIN_INT),
        Y_BIN_INT),
    "SGDClassifier-multi-str-log-partial": (
        lambda: _partial(lm.SGDClassifier(loss="log_loss", random_state=0), Y_MULTI_STR,
                         classes=np.unique(Y_MULTI_STR)), Y_MULTI_STR),
    "SGDClassifier-bin-str-elasticnet-avg-partial": (
        lambda: _partial(lm.SGDClassifier(loss="modified_huber", penalty="elasticnet",
                                          average=True, random_state=1), Y_BIN_STR,
                         classes=["no", "yes"]), Y_BIN_STR),
    "SGDRegressor-partial": (
        lambda: _partial(lm.SGDRegressor(random_state=0), Y_REG), Y_REG),
    "SGDRegressor-l1-avg": (
        lambda: _fit(lm.SGDRegressor(penalty="l1", average=5, random_state=0, max_iter=20,
                                     tol=None), Y_REG), Y_REG),
    "LinearSVC-bin-str": (lambda: _fit(lm.LinearSVC(), Y_BIN_STR), Y_BIN_STR),
    "LinearSVC-multi-int": (lambda: _fit(lm.LinearSVC(C=0.3), Y_MULTI_INT), Y_MULTI_INT),
    "MLPClassifier-f32-multi-str": (lambda: _fit(_mlp(nn.MLPClassifier), Y_MULTI_STR),
                                    Y_MULTI_STR),
    "MLPClassifier-f64-bin-int": (
        lambda: _fit(_mlp(nn.MLPClassifier, hidden_layer_sizes=(6, 4), dtype=np.float64),
                     Y_BIN_INT), Y_BIN_INT),
    "MLPClassifier-f32-multilabel": (
        lambda: _fit(_mlp(nn.MLPClassifier), np.column_stack([Y_MULTI_INT == 0, X[:, 3] > 0])
                     .astype(int)), np.column_stack([Y_MULTI_INT == 0, X[:, 3] > 0]).astype(int)),
    "MLPClassifier-sgd-partial": (
        lambda: _partial(nn.MLPClassifier(hidden_layer_sizes=(5,), solver="sgd",
                                          random_state=0), Y_MULTI_INT,
                         classes=[0, 1, 2]), Y_MULTI_INT),
    "MLPRegressor-f32-2out": (lambda: _fit(_mlp(nn.MLPRegressor), Y_REG2), Y_REG2),
    "MLPRegressor-f64-1out-lbfgs": (
        lambda: _fit(_mlp(nn.MLPRegressor, solver="lbfgs", dtype=np.float64), Y_REG), Y_REG),
}

_FITTED = {}


def fitted(case):
    if case not in _FITTED:
        _FITTED[case] = CASES[case][0]()
    return _FITTED[case]


def _outputs(est, Xq):
    out = {"predict": est.predict(Xq)}
    for m in ("predict_proba", "decision_function"):
        if hasattr(est, m):
            out[m] = getattr(est, m)(Xq)
    return out


def _all_arrays(est):
    for k, v in vars(est).items():
        if isinstance(v, np.ndarray):
            yield k, v
        elif isinstance(v, list) and v and all(isinstance(a, np.ndarray) for a in v):
            for i, a in enumerate(v):
                yield f"{k}[{i}]", a


# ---- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_predicts_identically(case, mmap, tmp_path):
    est = fitted(case)
    path = parml.save(est, tmp_path / "m")
    assert os.fspath(path) == os.fspath(tmp_path / "m")
    loaded = parml.load(path, mmap=mmap)
    assert type(loaded) is type(est)
    assert loaded.n_features_in_ == est.n_features_in_
    want, got = _outputs(est, XT), _outputs(loaded, XT)
    assert want.keys() == got.keys()
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        assert got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
        assert loaded.classes_.dtype == est.classes_.dtype
    # the learned state itself is bit-identical
    want_arrays = dict(_all_arrays(est))
    for k, a in _all_arrays(loaded):
        if k in want_arrays:
            np.testing.assert_array_equal(a, want_arrays[k], err_msg=k)


@pytest.mark.parametrize("case", ["LogisticRegression-multi-str", "SGDRegressor-partial",
                                  "MLPClassifier-f32-multi-str", "MLPRegressor-f32-2out",
                                  "Ridge-2out"])
def test_mmap_arrays_are_read_only_memmaps(case, tmp_path):
    est = fitted(case)
    path = parml.save(est, tmp_path / "m")
    loaded = parml.load(path, mmap=True)
    arrays = dict(_all_arrays(loaded))
    main = [k for k in arrays if k.startswith(("coef", "intercept", "classes_"))]
    assert main, arrays.keys()
    for k in main:
        a = arrays[k]
        if a.nbytes + 128 <= persistence.SMALL_ARRAY_BYTES:
            # small arrays are read, not mapped: labels predicted from them stay plain arrays
            assert type(a) is np.ndarray, (k, type(a))
            continue
        assert isinstance(a, np.memmap), (k, type(a))
        assert not a.flags.writeable, k
        with pytest.raises(ValueError):
            a[(0,) * a.ndim] = a[(0,) * a.ndim]
    # and mmap=False gives ordinary in-memory arrays
    loaded = parml.load(path, mmap=False)
    for k, a in _all_arrays(loaded):
        if k in main:
            assert not isinstance(a, np.memmap), k


def _continue(est, X1, y1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(X1[:60], y1[:60])
        est.partial_fit(X1[60:], y1[60:])
    return est


def _check_continued(case, est, loaded, path, before):
    pred = loaded.predict(XT)
    assert pred.shape == est.predict(XT).shape
    if pred.dtype.kind == "f":
        assert np.isfinite(pred).all()
    # training moved the weights ...
    after = dict(_all_arrays(loaded))
    key = "coef_" if "coef_" in after else "coefs_[0]"
    assert not np.array_equal(after[key], before[key])
    # ... but never wrote through to the model files
    persistence.verify(path)
    again = parml.load(path, mmap=False)
    for k, a in _all_arrays(again):
        np.testing.assert_array_equal(a, before[k], err_msg=k)


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("SGD")])
def test_sgd_partial_fit_continues_after_load_exactly(case, mmap, tmp_path):
    est = fitted(case)
    y = CASES[case][1]
    path = parml.save(est, tmp_path / "m")
    before = {k: np.array(a) for k, a in _all_arrays(parml.load(path, mmap=False))}
    loaded = _continue(parml.load(path, mmap=mmap), X, y)
    _check_continued(case, est, loaded, path, before)
    # SGD's whole optimiser state is saved: continuing the loaded model is exactly continuing
    # the original
    ref = _continue(copy.deepcopy(est), X, y)
    np.testing.assert_array_equal(loaded.coef_, ref.coef_)
    np.testing.assert_array_equal(loaded.intercept_, ref.intercept_)
    assert loaded.t_ == ref.t_ and loaded.n_iter_ == ref.n_iter_


def _worse_targets(y):
    """Targets on which the loaded network's loss gets worse (labels rotated, values negated)."""
    if y.dtype.kind == "f":
        return -3.0 * y
    if y.ndim == 2:
        return 1 - y
    classes = np.unique(y)
    return classes[(np.searchsorted(classes, y) + 1) % len(classes)]


MLP_PARTIAL = [c for c in CASES if c.startswith("MLP") and "lbfgs" not in c]


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("case", MLP_PARTIAL)
def test_mlp_partial_fit_continues_after_load_when_loss_improves(case, mmap, tmp_path):
    est = fitted(case)
    y = CASES[case][1]
    path = parml.save(est, tmp_path / "m")
    before = {k: np.array(a) for k, a in _all_arrays(parml.load(path, mmap=False))}
    loaded = parml.load(path, mmap=mmap)
    # bring the training-state bookkeeping the file does not carry back the way a first
    # improving epoch does, so this test checks the weights path alone (see the xfail below)
    loaded._no_improvement_count = 0
    _check_continued(case, est, _continue(loaded, X, y), path, before)


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
@pytest.mark.parametrize("case", [c for c in MLP_PARTIAL if "sgd" not in c])  # (barely trained:
# its loss still falls on any labels, so the counter happens to be created)
def test_mlp_partial_fit_after_load_on_data_that_raises_the_loss(case, mmap, tmp_path):
    est = fitted(case)
    path = parml.save(est, tmp_path / "m")
    y = _worse_targets(CASES[case][1])
    _continue(copy.deepcopy(est), X, y)            # the original estimator can do it
    loaded = parml.load(path, mmap=mmap)
    _continue(loaded, X, y)
    assert np.isfinite(loaded.coefs_[0]).all()


def test_mlp_warm_start_fit_after_load(tmp_path):
    est = fitted("MLPClassifier-f32-multi-str")
    loaded = parml.load(parml.save(est, tmp_path / "m"))
    loaded.set_params(warm_start=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.fit(X, _worse_targets(Y_MULTI_STR))
    assert loaded.n_iter_ == 3  # this call's epochs, as scikit-learn >= 1.3 counts them
    assert len(loaded.loss_curve_) == len(est.loss_curve_) + 3


@pytest.mark.parametrize("case", ["LogisticRegression-bin-int", "Ridge-2out", "LinearSVC-bin-str",
                                  "MLPClassifier-f32-multi-str"])
def test_refit_after_mmap_load_leaves_files_alone(case, tmp_path):
    est = fitted(case)
    path = parml.save(est, tmp_path / "m")
    loaded = parml.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.fit(X[::-1], CASES[case][1][::-1])
    persistence.verify(path)
    np.testing.assert_array_equal(parml.load(path).predict(XT), est.predict(XT))


def test_params_round_trip_with_type_tags(tmp_path):
    est = _fit(nn.MLPClassifier(hidden_layer_sizes=(6, 3), n_iter_no_change=np.inf,
                                dtype=np.float64, max_iter=30, random_state=3,
                                activation="tanh"), Y_MULTI_STR)
    loaded = parml.load(parml.save(est, tmp_path / "m"))
    assert loaded.get_params() == est.get_params()
    assert loaded.hidden_layer_sizes == (6, 3) and isinstance(loaded.hidden_layer_sizes, tuple)
    assert loaded.dtype is np.float64
    assert loaded.n_iter_no_change == np.inf
    est = fitted("LogisticRegression-multi-int-cw")
    loaded = parml.load(parml.save(est, tmp_path / "c"))
    assert loaded.class_weight == {0: 1.0, 1: 2.0, 2: 0.5}
    assert all(type(k) is int for k in loaded.class_weight)


def test_random_state_object_is_not_needed_to_predict(tmp_path):
    est = _fit(lm.SGDClassifier(random_state=np.random.RandomState(0), max_iter=5, tol=None),
               Y_BIN_INT)
    loaded = parml.load(parml.save(est, tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(XT), est.predict(XT))


def test_layout_and_metadata(tmp_path):
    est = fitted("MLPClassifier-f32-multi-str")
    path = parml.save(est, tmp_path / "m")
    meta = persistence.read_metadata(path)
    assert meta["format"] == "parml-model" and meta["format_version"] == 1
    assert meta["estimator"] == "parml.neural_network.MLPClassifier"
    assert meta["parml_version"] == parml.__version__
    assert meta["meta_sha256"] == persistence._meta_hash(meta)
    files = sorted(os.listdir(os.path.join(path, "arrays")))
    assert files == sorted(v["file"] for v in meta["arrays"].values())
    for info in meta["arrays"].values():
        assert set(info) >= {"file", "dtype", "shape", "bytes", "sha256"}
        f = os.path.join(path, "arrays", info["file"])
        assert len(info["file"]) == 8 and info["file"].endswith(".npy")
        assert os.path.getsize(f) == info["bytes"]
        assert persistence._sha256(f) == info["sha256"]
        a = np.load(f, allow_pickle=False)
        assert a.dtype.str == info["dtype"] and list(a.shape) == info["shape"]
        assert a.dtype.kind in "biufU"
    assert sorted(os.listdir(path)) == ["arrays", "model.json"]
    assert persistence.verify(path) == meta
    for e in ("LinearRegression-1out", "SGDClassifier-bin-int-hinge", "LinearSVC-bin-str",
              "MLPRegressor-f32-2out"):
        p = parml.save(fitted(e), tmp_path / e)
        assert persistence.read_metadata(p)["estimator"] == \
            "parml." + type(fitted(e)).__module__.split(".")[1] + "." + type(fitted(e)).__name__


def test_load_accepts_pathlike_and_str(tmp_path):
    est = fitted("Ridge-1out")
    parml.save(est, str(tmp_path / "s"))
    for p in (tmp_path / "s", str(tmp_path / "s")):
        np.testing.assert_array_equal(parml.load(p).predict(XT), est.predict(XT))


# ---- save refusals, overwrite ----------------------------------------------------------------------

def test_save_refuses_unfitted(tmp_path):
    for est in (lm.LogisticRegression(), lm.Ridge(), nn.MLPRegressor()):
        with pytest.raises(ValueError, match="not fitted"):
            parml.save(est, tmp_path / "m")
    assert os.listdir(tmp_path) == []


def test_save_refuses_foreign_estimators(tmp_path):
    from sklearn.linear_model import LogisticRegression as SkLR

    class MyRidge(lm.Ridge):
        pass

    for est in (SkLR().fit(X, Y_BIN_INT), _fit(MyRidge(), Y_REG), object()):
        with pytest.raises(TypeError, match="parml estimators only"):
            parml.save(est, tmp_path / "m")
    assert os.listdir(tmp_path) == []


def test_save_refuses_existing_path_without_overwrite(tmp_path):
    est = fitted("Ridge-1out")
    path = parml.save(est, tmp_path / "m")
    stamp = persistence.read_metadata(path)["meta_sha256"]
    with pytest.raises(FileExistsError):
        parml.save(fitted("Ridge-2out"), path)
    assert persistence.read_metadata(path)["meta_sha256"] == stamp
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        parml.save(est, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["file", "m"]


def test_overwrite_replaces_and_leaves_nothing_behind(tmp_path):
    a, b = fitted("Ridge-1out"), fitted("MLPRegressor-f32-2out")
    path = parml.save(a, tmp_path / "m")
    parml.save(b, path, overwrite=True)
    loaded = parml.load(path)
    assert type(loaded) is nn.MLPRegressor
    np.testing.assert_array_equal(loaded.predict(XT), b.predict(XT))
    assert os.listdir(tmp_path) == ["m"]          # no .parml-save-* / .old-* leftovers
    # the old model's array files are gone, not merged with the new ones
    meta = persistence.read_metadata(path)
    assert sorted(os.listdir(os.path.join(path, "arrays"))) == \
        sorted(v["file"] for v in meta["arrays"].values())


def test_failed_save_keeps_old_model_and_cleans_up(tmp_path):
    good = fitted("LogisticRegression-bin-int")
    path = parml.save(good, tmp_path / "m")
    bad = copy.deepcopy(fitted("LogisticRegression-multi-str"))
    bad.weird_ = object()                          # a fitted attribute no model file can hold
    with pytest.raises(TypeError):
        parml.save(bad, path, overwrite=True)
    assert os.listdir(tmp_path) == ["m"]
    np.testing.assert_array_equal(parml.load(path).predict(XT), good.predict(XT))
    with pytest.raises(TypeError):
        parml.save(bad, tmp_path / "new")
    assert os.listdir(tmp_path) == ["m"]


# ---- load refusals ---------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    """A fresh copy of a saved model per test: {kind: path}."""
    out = {}
    for kind, case in (("log", "LogisticRegression-multi-str"),
                       ("mlp", "MLPClassifier-f32-multi-str"),
                       ("ridge", "Ridge-2out")):
        out[kind] = parml.save(fitted(case), tmp_path / kind)
    return out


def _meta(path):
    with open(os.path.join(path, "model.json")) as f:
        return json.load(f)


def _write_meta(path, meta, rehash=True):
    if rehash:
        meta["meta_sha256"] = persistence._meta_hash(meta)
    with open(os.path.join(path, "model.json"), "w") as f:
        json.dump(meta, f)


def _read(f):
    with open(f, "rb") as fh:
        return fh.read()


def _write(f, data):
    with open(f, "wb") as fh:
        fh.write(data)


def _array_file(path, meta, key):
    return os.path.join(path, "arrays", meta["arrays"][key]["file"])


def _replace_array(path, meta, key, a, *, fix_meta=True):
    """Write ``a`` as array ``key`` and (fix_meta) record its dtype, shape, size and hash."""
    f = _array_file(path, meta, key)
    np.save(f, a, allow_pickle=True)
    if fix_meta:
        meta["arrays"][key].update(dtype=a.dtype.str, shape=list(a.shape),
                                   bytes=os.path.getsize(f), sha256=persistence._sha256(f))


def _refused(path, match=None, **kw):
    with pytest.raises(ModelFormatError, match=match):
        parml.load(path, **kw)


def test_model_format_error_is_a_value_error():
    assert issubclass(ModelFormatError, ValueError)


def test_refuses_missing_dir_and_missing_model_json(tmp_path, saved):
    _refused(tmp_path / "nope", "not a parml model directory")
    os.remove(os.path.join(saved["log"], "model.json"))
    _refused(saved["log"], "not a parml model directory")
    (tmp_path / "plainfile").write_text("{}")
    _refused(tmp_path / "plainfile", "not a parml model directory")
    with pytest.raises(ModelFormatError):
        persistence.verify(tmp_path / "nope")
    with pytest.raises(ModelFormatError):
        persistence.read_metadata(saved["log"])


@pytest.mark.parametrize("text", [b"", b"{", b'{"format": "parml-model"', b"\xff\xfe\x00",
                                  b"[1, 2]", b'"parml-model"', b'{"format": "other"}'],
                         ids=["empty", "brace", "truncated", "binary", "list", "string", "other"])
def test_refuses_invalid_json(saved, text):
    with open(os.path.join(saved["log"], "model.json"), "wb") as f:
        f.write(text)
    _refused(saved["log"])


def test_refuses_truncated_model_json(saved):
    p = os.path.join(saved["mlp"], "model.json")
    data = _read(p)
    _write(p, data[: len(data) // 2])
    _refused(saved["mlp"], "not valid JSON")


@pytest.mark.parametrize("verify", [True, False])
def test_refuses_truncated_npy(saved, verify):
    meta = _meta(saved["mlp"])
    f = _array_file(saved["mlp"], meta, "coefs_.0")
    data = _read(f)
    _write(f, data[:-7])
    _refused(saved["mlp"], "bytes", verify=verify)
    with pytest.raises(ModelFormatError, match="truncated"):
        persistence.verify(saved["mlp"])


def test_refuses_flipped_byte(saved):
    meta = _meta(saved["log"])
    f = _array_file(saved["log"], meta, "coef_")
    data = bytearray(_read(f))
    data[-3] ^= 0x40                                 # inside the float data, same size
    _write(f, bytes(data))
    _refused(saved["log"], "sha256")
    _refused(saved["log"], "sha256", mmap=False)
    with pytest.raises(ModelFormatError, match="sha256"):
        persistence.verify(saved["log"])


def test_refuses_array_of_another_shape_at_every_layer(saved):
    path = saved["log"]
    meta = _meta(path)
    coef = np.load(_array_file(path, meta, "coef_"))
    # 1. a valid .npy of another shape (and size): caught by the recorded size
    _replace_array(path, meta, "coef_", np.zeros((coef.shape[0], coef.shape[1] + 1)),
                   fix_meta=False)
    _refused(path, "bytes")
    # 2. same byte count, another shape: caught by the hash
    _replace_array(path, meta, "coef_", np.ascontiguousarray(coef.T), fix_meta=False)
    assert os.path.getsize(_array_file(path, meta, "coef_")) == meta["arrays"]["coef_"]["bytes"]
    _refused(path, "sha256")
    # ... and without hashing (verify=False), by the recorded shape
    _refused(path, "metadata says", verify=False)
    # 3. size and hash recorded for the new file but the metadata hash left stale
    info = meta["arrays"]["coef_"]
    f = _array_file(path, meta, "coef_")
    info.update(bytes=os.path.getsize(f), sha256=persistence._sha256(f))
    _write_meta(path, meta, rehash=False)
    _refused(path, "modified after it was written")
    # 4. the metadata hash recomputed too: the shape the file holds still disagrees
    _write_meta(path, meta)
    _refused(path, "metadata says")


def test_refuses_edited_model_json(saved):
    meta = _meta(saved["log"])
    meta["params"]["C"] = 123.0
    _write_meta(saved["log"], meta, rehash=False)
    _refused(saved["log"], "metadata hash mismatch")
    meta = _meta(saved["mlp"])
    meta["attributes"]["n_features_in_"] = 4
    _write_meta(saved["mlp"], meta, rehash=False)
    _refused(saved["mlp"], "modified")
    # whitespace-only re-serialisation is not an edit
    meta = _meta(saved["ridge"])
    _write_meta(saved["ridge"], meta, rehash=False)
    parml.load(saved["ridge"])


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5])
def test_refuses_other_format_version(saved, version):
    meta = _meta(saved["log"])
    meta["format_version"] = version
    _write_meta(saved["log"], meta)                  # even with a matching metadata hash
    _refused(saved["log"], "format version")


def test_refuses_other_format(saved):
    meta = _meta(saved["log"])
    meta["format"] = "joblib"
    _write_meta(saved["log"], meta)
    _refused(saved["log"], "not a parml model file")


@pytest.mark.parametrize("name", ["os.system", "sklearn.linear_model.LogisticRegression",
                                  "parml.linear_model._logistic.LogisticRegression",
                                  "builtins.eval", "parml.persistence.ModelFormatError",
                                  "", None, 3])
def test_refuses_estimator_outside_allow_list(saved, name):
    meta = _meta(saved["log"])
    meta["estimator"] = name
    _write_meta(saved["log"], meta)                  # hash recomputed: only the allow-list bites
    _refused(saved["log"], "not a parml estimator")
    with pytest.raises(ModelFormatError):
        persistence.verify(saved["log"])


@pytest.mark.parametrize("fname", ["../x.npy", "/etc/x.npy", "sub/0000.npy", "..", "0000.txt",
                                   "0000", 7, None])
def test_refuses_array_file_entry_with_a_path(saved, tmp_path, fname):
    path = saved["log"]
    meta = _meta(path)
    # make "../x.npy" (seen from arrays/) a perfectly valid copy of the real array
    src = _array_file(path, meta, "coef_")
    shutil.copy(src, os.path.join(path, "x.npy"))
    meta["arrays"]["coef_"]["file"] = fname
    _write_meta(path, meta)
    _refused(path, "bad file entry")
    with pytest.raises(ModelFormatError, match="bad file entry"):
        persistence.verify(path)


def test_refuses_missing_array_file(saved):
    meta = _meta(saved["mlp"])
    os.remove(_array_file(saved["mlp"], meta, "intercepts_.1"))
    _refused(saved["mlp"], "missing")


def _object_payload(marker):
    """An object array whose unpickling creates the directory ``marker``."""
    class Boom:
        def __reduce__(self):
            return (os.makedirs, (os.fspath(marker), 0o777, True))
    a = np.empty(2, dtype=object)
    a[0], a[1] = Boom(), Boom()
    return a


@pytest.mark.parametrize("mmap", [True, False])
def test_never_unpickles_object_arrays(saved, tmp_path, mmap):
    path = saved["log"]
    meta = _meta(path)
    marker = tmp_path / "PWNED"
    payload = _object_payload(marker)
    # every check but allow_pickle=False passes: size, sha256, recorded dtype and shape,
    # metadata hash
    _replace_array(path, meta, "classes_", payload)
    assert meta["arrays"]["classes_"]["dtype"] == "|O"
    _write_meta(path, meta)
    _refused(path, mmap=mmap)
    _refused(path, mmap=mmap, verify=False)
    with pytest.raises(ModelFormatError):
        persistence.verify(path)
    assert not marker.exists()
    # the payload is live: a pickle-allowing load would have run it
    np.load(_array_file(path, meta, "classes_"), allow_pickle=True)
    assert marker.is_dir()


def test_refuses_raw_pickle_disguised_as_npy(saved, tmp_path):
    path = saved["log"]
    meta = _meta(path)
    marker = tmp_path / "PWNED2"
    f = _array_file(path, meta, "coef_")
    with open(f, "wb") as fh:
        pickle.dump(_object_payload(marker), fh)
    meta["arrays"]["coef_"].update(bytes=os.path.getsize(f), sha256=persistence._sha256(f))
    _write_meta(path, meta)
    _refused(path, "not a readable .npy")
    _refused(path, mmap=False)
    assert not marker.exists()


@pytest.mark.parametrize("dtype", ["S3", "c16", "M8[s]", "V8"])
def test_refuses_disallowed_dtypes(saved, dtype):
    path = saved["log"]
    meta = _meta(path)
    classes = np.load(_array_file(path, meta, "classes_"))
    _replace_array(path, meta, "classes_", np.zeros(classes.shape, dtype=dtype))
    _write_meta(path, meta)
    _refused(path, "not allowed")


def test_refuses_mlp_whose_layers_do_not_chain(saved):
    path = saved["mlp"]
    base = _meta(path)
    W0 = np.load(_array_file(path, base, "coefs_.0"))
    b0 = np.load(_array_file(path, base, "intercepts_.0"))
    W1 = np.load(_array_file(path, base, "coefs_.1"))
    b1 = np.load(_array_file(path, base, "intercepts_.1"))
    d, h = W0.shape
    k = W1.shape[1]
    pristine = {f: _read(os.path.join(path, "arrays", f))
                for f in os.listdir(os.path.join(path, "arrays"))}

    def variant(new):
        for f, data in pristine.items():
            _write(os.path.join(path, "arrays", f), data)
        meta = copy.deepcopy(base)
        for key, a in new.items():
            _replace_array(path, meta, key, np.asarray(a, dtype=np.float32))
        _write_meta(path, meta)

    # hidden layer widened in the first layer only
    variant({"coefs_.0": np.zeros((d, h + 1)), "intercepts_.0": np.zeros(h + 1)})
    _refused(path, "do not chain")
    # a bias of the wrong length
    variant({"intercepts_.0": np.zeros(h + 2)})
    _refused(path, "do not chain")
    # an output layer wider than n_outputs_
    variant({"coefs_.1": np.zeros((h, k + 1)), "intercepts_.1": np.zeros(k + 1)})
    _refused(path, "do not chain")
    # a first layer that does not read n_features_in_ inputs
    variant({"coefs_.0": np.zeros((d + 1, h))})
    _refused(path, "do not chain")
    # a 1-D weight matrix
    variant({"coefs_.1": np.zeros(h * k)})
    _refused(path, "do not chain")
    # control: the same surgery done consistently is a valid network computing the same function
    # (the extra hidden unit feeds the output with zero weights)
    variant({"coefs_.0": np.hstack([W0, W0[:, :1]]), "intercepts_.0": np.append(b0, b0[0]),
             "coefs_.1": np.vstack([W1, np.zeros((1, k))]), "intercepts_.1": b1})
    loaded = parml.load(path)
    ref = fitted("MLPClassifier-f32-multi-str")
    assert loaded.coefs_[0].shape == (d, h + 1)
    np.testing.assert_allclose(loaded.predict_proba(XT), ref.predict_proba(XT), rtol=1e-5,
                               atol=1e-6)


def test_refuses_layer_count_mismatch(saved):
    path = saved["mlp"]
    meta = _meta(path)
    meta["attributes"]["coefs_"] = {"__arrays__": 1}
    _write_meta(path, meta)
    _refused(path)


def test_refuses_linear_model_with_wrong_feature_count(saved):
    for kind in ("log", "ridge"):
        path = saved[kind]
        meta = _meta(path)
        coef = np.load(_array_file(path, meta, "coef_"))
        _replace_array(path, meta, "coef_", np.zeros((coef.shape[0], coef.shape[1] + 1)))
        _write_meta(path, meta)
        _refused(path, "columns")
    meta = _meta(saved["log"])
    meta["attributes"]["n_features_in_"] = 0
    _write_meta(saved["log"], meta)
    _refused(saved["log"], "n_features_in_")


def test_refuses_model_that_cannot_predict(saved):
    path = saved["log"]
    meta = _meta(path)
    _replace_array(path, meta, "intercept_", np.zeros(7))   # does not broadcast to 3 classes
    _write_meta(path, meta)
    _refused(path, "cannot predict")


def test_refuses_unknown_parameter_and_value_tags(saved):
    meta = _meta(saved["log"])
    meta["params"]["evil"] = 1
    _write_meta(saved["log"], meta)
    _refused(saved["log"], "parameters")
    meta = _meta(saved["ridge"])
    meta["params"]["alpha"] = {"__class__": "os.system"}
    _write_meta(saved["ridge"], meta)
    _refused(saved["ridge"], "unknown value")
    meta = _meta(saved["mlp"])
    meta["params"]["dtype"] = {"__dtype__": "object"}
    _write_meta(saved["mlp"], meta)
    _refused(saved["mlp"], "unknown value")


def test_refuses_stray_arrays(saved):
    meta = _meta(saved["log"])
    meta["arrays"]["coef_.evil"] = dict(meta["arrays"]["coef_"])
    _write_meta(saved["log"], meta)
    _refused(saved["log"], "stray")


@pytest.mark.parametrize("field", ["params", "attributes", "extra", "arrays"])
def test_refuses_malformed_sections(saved, field):
    meta = _meta(saved["mlp"])
    meta[field] = [1, 2]
    _write_meta(saved["mlp"], meta)
    _refused(saved["mlp"], "malformed")


def _bad_lb(meta):
    meta["extra"]["_label_binarizer"] = {}


def _no_lb_classes(meta):
    del meta["arrays"]["_label_binarizer.classes_"]


def _arrays_count_str(meta):
    meta["attributes"]["coefs_"] = {"__arrays__": "2"}


def _estimator_list(meta):
    meta["estimator"] = ["parml.neural_network.MLPClassifier"]


@pytest.mark.parametrize("edit", [_bad_lb, _no_lb_classes, _arrays_count_str, _estimator_list])
def test_malformed_but_rehashed_metadata_is_a_model_format_error(saved, edit):
    meta = _meta(saved["mlp"])
    edit(meta)
    _write_meta(saved["mlp"], meta)
    _refused(saved["mlp"])


# ---- found in review --------------------------------------------------------------------------

def test_symlinked_array_is_refused(tmp_path):
    est = fitted("Ridge-2out")
    path = parml.save(est, tmp_path / "m")
    arr = sorted((tmp_path / "m" / "arrays").iterdir())[0]
    outside = tmp_path / "outside.npy"
    outside.write_bytes(arr.read_bytes())
    arr.unlink()
    arr.symlink_to(outside)                           # same bytes: only the link is wrong
    with pytest.raises(ModelFormatError, match="symbolic link"):
        parml.load(path)


def test_npz_under_npy_name_is_refused(tmp_path):
    est = fitted("Ridge-2out")
    path = parml.save(est, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    key, info = next(iter(meta["arrays"].items()))
    f = tmp_path / "m" / "arrays" / info["file"]
    with open(f, "wb") as fh:
        np.savez(fh, x=np.zeros(3))
    info["bytes"] = f.stat().st_size
    info["sha256"] = persistence._sha256(f)
    meta["meta_sha256"] = persistence._meta_hash(meta)
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="not a .npy"):
        persistence.verify(path)


def test_saved_directory_follows_the_umask(tmp_path):
    path = parml.save(fitted("Ridge-2out"), tmp_path / "m")
    old = os.umask(0o022)
    os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o777 & ~old


def test_warm_start_with_early_stopping_after_load(tmp_path):
    est = nn.MLPClassifier((16,), early_stopping=True, warm_start=True, max_iter=20,
                           random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y_MULTI_STR)
        loaded = parml.load(parml.save(est, tmp_path / "m"))
        loaded.set_params(max_iter=2)
        loaded.fit(X, Y_MULTI_STR)   # may not beat the stored best score: keeps a valid model
    assert np.isfinite(loaded.predict_proba(X)).all()


# ---- tree ensembles ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["binary", "multiclass-str", "regressor"])
def test_hgb_round_trip_and_shared_forest(kind, tmp_path):
    from parml.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    Xh = np.random.default_rng(0).normal(size=(3000, 6))
    Xh[::9, 1] = np.nan
    yh = (Xh[:, 0] > 0).astype(int) + (Xh[:, 2] > 1)
    # 300 iterations: the node arrays pass the 64 KiB under which arrays are read, not mapped
    kw = dict(max_iter=300, early_stopping=False, min_samples_leaf=5)
    if kind == "binary":
        est, yy = HistGradientBoostingClassifier(**kw), yh > 0
    elif kind == "multiclass-str":
        est, yy = HistGradientBoostingClassifier(**kw), np.array(["a", "b", "c"])[yh]
    else:
        est, yy = HistGradientBoostingRegressor(**kw), yh.astype(float)
    est.fit(Xh, yy)
    loaded = parml.load(parml.save(est, tmp_path / "m"))
    assert np.array_equal(loaded.predict(Xh), est.predict(Xh))
    if hasattr(est, "predict_proba"):
        assert np.array_equal(loaded.predict_proba(Xh), est.predict_proba(Xh))
    v = loaded._forest.flat()["value"]
    if v.nbytes + 128 > persistence.SMALL_ARRAY_BYTES:
        assert isinstance(v, np.memmap)                            # shared, not copied
    assert loaded._forest.flat() is loaded._forest.flat()          # no per-call concatenation


def test_hgb_cyclic_tree_is_refused(tmp_path):
    from parml.ensemble import HistGradientBoostingRegressor
    Xh = np.random.default_rng(1).normal(size=(500, 3))
    path = parml.save(HistGradientBoostingRegressor(max_iter=3).fit(Xh, Xh[:, 0]), tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    info = meta["arrays"]["_forest.left"]
    f = tmp_path / "m" / "arrays" / info["file"]
    left = np.load(f)
    left[0] = 0                                        # the root points at itself
    np.save(f, left)
    info["sha256"] = persistence._sha256(f)
    meta["meta_sha256"] = persistence._meta_hash(meta)
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="children"):
        parml.load(path)


def test_state_of_another_estimator_is_refused(saved):
    """Private state is read only by the estimator that owns it: a Ridge file given an MLP's
    label encoder, or a private array no hook takes, is not loaded."""
    path = saved["ridge"]
    meta = _meta(path)
    meta["extra"]["_label_binarizer"] = {"y_type_": "binary", "sparse_input_": False,
                                         "neg_label": 0, "pos_label": 1}
    _write_meta(path, meta)
    with pytest.raises(ModelFormatError, match="_label_binarizer.*not Ridge's"):
        parml.load(path)
    meta = _meta(path)
    del meta["extra"]["_label_binarizer"]
    meta["arrays"]["_secret"] = dict(meta["arrays"]["coef_"])
    _write_meta(path, meta)
    with pytest.raises(ModelFormatError, match="stray arrays.*_secret"):
        parml.load(path)


def test_missing_state_array_is_named(saved):
    path = saved["mlp"]
    meta = _meta(path)
    del meta["arrays"]["_label_binarizer.classes_"]
    _write_meta(path, meta)
    with pytest.raises(ModelFormatError, match="_label_binarizer.classes_.*missing"):
        parml.load(path)
