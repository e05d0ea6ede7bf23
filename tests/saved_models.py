"""Model files written by an earlier parml, kept under tests/data/models/, so that every later
version is tested against what users have on disk (tests/serving/test_saved_models.py).

    python3 tests/saved_models.py   # write them (only when adding a model; never rewrite old ones)

Each model directory has a sibling <name>.probe.npz holding rows X and what the saving parml
predicted for them ("predict", and "proba" for classifiers)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "data", "models")


def _fits():
    import numpy as np
    import pandas as pd
    from parml import ensemble as E, linear_model as L, neural_network as N, tree as T
    rng = np.random.RandomState(3)
    X = rng.normal(size=(300, 5))
    z = X[:, 0] * 2 + np.sin(3 * X[:, 1]) + X[:, 2] * X[:, 3] + rng.normal(size=300) * 0.3
    yb = (z > 0.2).astype(int)
    ym = np.array(["a", "b", "c", "d"])[np.digitize(z, [-1.0, 0.5, 2.0])]
    Xnan = X.copy()
    Xnan[rng.rand(*X.shape) < 0.05] = np.nan
    frame = pd.DataFrame({"c": pd.Categorical(rng.choice(["x", "y", "z"], 300)),
                          "u": X[:, 0], "v": X[:, 1]})
    yf = z + (frame["c"] == "y") * 2.0
    yield "LinearRegression", L.LinearRegression(), X, z
    yield "Ridge", L.Ridge(alpha=2.0), X, z
    yield "LogisticRegression", L.LogisticRegression(), X, ym
    yield "LinearSVC", L.LinearSVC(), X, yb
    yield "SGDClassifier", L.SGDClassifier(average=True, penalty="l1", max_iter=5, tol=None,
                                           random_state=0), X, ym
    yield "SGDRegressor", L.SGDRegressor(max_iter=5, tol=None, random_state=0), X, z
    yield "MLPClassifier", N.MLPClassifier(hidden_layer_sizes=(8,), max_iter=30,
                                           random_state=0), X, ym
    yield "MLPRegressor", N.MLPRegressor(hidden_layer_sizes=(6, 4), max_iter=30, random_state=0,
                                         dtype=np.float64), X, z
    yield "HistGradientBoostingRegressor", E.HistGradientBoostingRegressor(
        max_iter=6, max_leaf_nodes=7, random_state=0), Xnan, z
    yield "HistGradientBoostingClassifier", E.HistGradientBoostingClassifier(
        max_iter=4, max_leaf_nodes=5, random_state=0), X, ym
    yield "HistGradientBoostingRegressor-frame", E.HistGradientBoostingRegressor(
        max_iter=5, max_leaf_nodes=5, random_state=0), frame, yf
    yield "HistGradientBoostingClassifier-categorical", E.HistGradientBoostingClassifier(
        max_iter=4, max_leaf_nodes=5, categorical_features=[0], random_state=0), \
        np.column_stack([rng.randint(0, 6, 300), X[:, 1:3]]), yb
    yield "RandomForestClassifier", E.RandomForestClassifier(4, max_depth=4, random_state=0), \
        X, ym
    yield "RandomForestRegressor", E.RandomForestRegressor(4, max_depth=4, random_state=0), X, z
    yield "DecisionTreeClassifier", T.DecisionTreeClassifier(max_depth=4, random_state=0), X, yb
    yield "DecisionTreeRegressor", T.DecisionTreeRegressor(max_leaf_nodes=9, random_state=0), \
        X, z


def main():
    import warnings
    import numpy as np
    import parml
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est, X, y in _fits():
            path = os.path.join(MODELS, name)
            if os.path.exists(path):
                print(f"kept {name}")
                continue
            est.fit(X, y)
            parml.save(est, path)
            probe = X[:20]
            out = {"predict": np.asarray(est.predict(probe))}
            if hasattr(est, "predict_proba"):
                out["proba"] = est.predict_proba(probe)
            if hasattr(probe, "to_dict"):    # a dataframe: keep its columns
                np.savez(path + ".probe.npz", **out, frame_c=probe["c"].to_numpy().astype("U"),
                         frame_u=probe["u"].to_numpy(), frame_v=probe["v"].to_numpy())
            else:
                np.savez(path + ".probe.npz", **out, X=probe)
            print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
