"""A boosted forest: the trees of every iteration as flat node arrays, what the prediction kernel
walks. Local and Dask HistGradientBoosting both build one; parml.load rebuilds one from a file."""

from __future__ import annotations

import numpy as np

from parml._kernels import _tree_predict as TP


class Forest:
    """Trees of all iterations as flat node arrays (what the prediction kernel walks)."""

    def __init__(self, n_outputs):
        self.n_outputs = n_outputs
        self.parts = []          # (tree arrays, output)
        self._flat = None

    KEYS = ("feature", "threshold", "missing_left", "left", "right", "value")
    CAT_KEYS = ("node_cat", "cats")   # present when the model has categorical features
    known = None                      # (d, 8) uint32: categories seen in training, or None

    @classmethod
    def from_flat(cls, flat, n_outputs, n_features, known=None):
        """The forest of flat arrays (as saved by parml.save), structure checked."""
        TP.check_forest(*(flat[k] for k in cls.KEYS), flat["roots"], flat["tree_output"],
                        n_features, n_outputs)
        keys = cls.KEYS
        if known is not None:
            TP.check_categorical((flat["node_cat"], flat["cats"], known), len(flat["feature"]),
                                 n_features)
            keys = cls.KEYS + cls.CAT_KEYS
        f = cls(n_outputs)
        f.known = known
        bounds = list(flat["roots"]) + [len(flat["value"])]
        for t, out in enumerate(flat["tree_output"]):
            lo, hi = int(bounds[t]), int(bounds[t + 1])
            f.parts.append(({k: flat[k][lo:hi] for k in keys}, int(out)))
        f._flat = flat  # predict walks the loaded (memory-mapped, shared) arrays directly
        return f

    def add(self, arrays, output):
        self.parts.append((arrays, output))
        self._flat = None

    def keys(self):
        return self.KEYS + (self.CAT_KEYS if self.known is not None else ())

    def flat(self):
        """All trees as one set of node arrays (cached; None without trees)."""
        if self._flat is None and self.parts:
            flat = {k: np.ascontiguousarray(np.concatenate([a[k] for a, _ in self.parts]))
                    for k in self.keys()}
            sizes = [len(a["value"]) for a, _ in self.parts]
            flat["roots"] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            flat["tree_output"] = np.array([o for _, o in self.parts], dtype=np.int32)
            self._flat = flat
        return self._flat

    def packed(self):
        """The flat forest packed for the lockstep walk (tree_predict.h), cached with the flat
        arrays it was made from; None for categorical forests. Kept out of pickles and model
        files: 16 bytes per node, rebuilt on first use (a 100-tree, 31-leaf model: 100 KB)."""
        f = self.flat()
        if f is None or self.known is not None:
            return None
        cached = getattr(self, "_packed", None)
        if cached is None or cached[0] is not f:
            p = TP.pack_forest(*(f[k] for k in self.KEYS[:5]), f["roots"],
                               int(f["feature"].max()) + 1 if len(f["feature"]) else 1,
                               self.n_outputs)
            self._packed = cached = (f, p)
        return cached[1]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_packed", None)
        return state

    def predict(self, X, out, n_threads, checked=True):
        """out += the trees' leaf values for the rows of X (out: n x n_outputs float64)."""
        f = self.flat()
        if f is None:
            return out
        cat = None if self.known is None else (f["node_cat"], f["cats"], self.known)
        return TP.predict_forest(X, *(f[k] for k in self.KEYS), f["roots"], f["tree_output"],
                                 self.n_outputs, n_threads=n_threads, out=out, checked=checked,
                                 categorical=cat, packed=self.packed())
