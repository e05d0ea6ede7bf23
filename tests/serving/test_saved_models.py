"""Model files saved by an earlier parml (tests/data/models, written by tests/saved_models.py)
still load, verify and predict what they predicted when saved."""
import os

import numpy as np
import pytest

import parml

MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                      "models")
NAMES = sorted(n for n in os.listdir(MODELS) if os.path.isdir(os.path.join(MODELS, n)))


def test_every_estimator_has_a_saved_model():
    from parml.persistence import _registry
    kinds = {parml.persistence.read_metadata(os.path.join(MODELS, n))["estimator"]
             for n in NAMES}
    assert kinds == set(_registry())


def _close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    if want.dtype.kind in "fc":
        # another kernel set may sum in another order: rounding, not a different model
        tol = 1e-5 if want.dtype == np.float32 else 1e-9
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_saved_model_loads_and_predicts_as_saved(name, mmap):
    est = parml.load(os.path.join(MODELS, name), mmap=mmap)
    probe = np.load(os.path.join(MODELS, name + ".probe.npz"), allow_pickle=False)
    if "X" in probe:
        X = probe["X"]
    else:
        import pandas as pd
        X = pd.DataFrame({"c": pd.Categorical(probe["frame_c"]), "u": probe["frame_u"],
                          "v": probe["frame_v"]})
    _close(est.predict(X), probe["predict"])
    if "proba" in probe:
        _close(est.predict_proba(X), probe["proba"])
