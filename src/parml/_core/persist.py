"""The persistence protocol: how an estimator hands its fitted state to parml.save and takes it
back from parml.load.

parml.persistence owns the file format, the hashes and the safety checks, and stores every
public fitted attribute (``name_``: arrays, lists of arrays, JSON-able values) by itself. An
estimator adds what else it predicts with (private attributes: node arrays, optimiser state,
encoders) by overriding the two hooks below, and its own consistency rules in
``_check_restored``. Keys are the attribute names, so model files stay readable across versions.
"""

import numpy as np


class Persistent:
    """Mixin of every estimator parml.save can store."""

    def _save_state(self, put):
        """Store private fitted state: ``put(key, array)`` for each array (key
        ``"<attribute>"`` or ``"<attribute>.<field>"``); return ``{attribute: JSON-able}`` for
        what is not an array."""
        return {}

    def _restore_state(self, extra, take):
        """Rebuild the private state ``_save_state`` stored. ``extra`` is its returned dict:
        pop every entry used (what is left is an error). ``take(key)`` returns a stored array
        and consumes it (parml.load reports one that is absent). Raise ValueError for
        inconsistent state."""

    def _check_restored(self):
        """ValueError unless the loaded attributes fit together (outputs, shapes)."""


def check_class_count(n_classes, n_outputs, *, one_for_two=True):
    """ValueError unless a model with n_outputs outputs can predict n_classes classes (one
    output serves two classes when one_for_two)."""
    ok = n_outputs == n_classes or (one_for_two and n_outputs == 1 and n_classes == 2)
    if not ok or n_classes < 2:
        raise ValueError(f"{n_classes} classes do not match the model's {n_outputs} outputs")


# ---- values: JSON with type tags for what JSON cannot say --------------------------------

def encode_value(v):
    """v as JSON, with type tags for what JSON cannot say (tuples, dicts with non-string keys,
    dtypes, non-finite floats). TypeError for what a model file cannot store."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if np.isfinite(f) else {"__float__": repr(f)}
    if isinstance(v, tuple):
        return {"__tuple__": [encode_value(x) for x in v]}
    if isinstance(v, list):
        return [encode_value(x) for x in v]
    if isinstance(v, dict):
        return {"__dict__": [[encode_value(k), encode_value(x)] for k, x in v.items()]}
    if isinstance(v, type) and issubclass(v, np.generic) or isinstance(v, np.dtype):
        return {"__dtype__": np.dtype(v).name}
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" and v.ndim <= 1:
        return [encode_value(x) for x in v.tolist()]
    raise TypeError(f"cannot store a value of type {type(v).__name__} in a parml model file")


def decode_value(v):
    """The inverse of encode_value; ValueError for a tag it does not know."""
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    if isinstance(v, dict):
        if set(v) == {"__tuple__"}:
            return tuple(decode_value(x) for x in v["__tuple__"])
        if set(v) == {"__dict__"}:
            return {decode_value(k): decode_value(x) for k, x in v["__dict__"]}
        if set(v) == {"__dtype__"} and v["__dtype__"] in ("float32", "float64"):
            return np.dtype(v["__dtype__"]).type
        if set(v) == {"__float__"} and v["__float__"] in ("nan", "inf", "-inf"):
            return float(v["__float__"])
        raise ValueError(f"model file holds an unknown value {v!r}")
    return v
