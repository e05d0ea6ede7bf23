"""Two OpenMP runtimes in one process.

scikit-learn's wheels (and torch's) carry their own libgomp, and parml's carries another (its wheel
vendors one under parml.libs/; a source build links the system's). Each library then runs its
parallel loops on its own runtime. Here each order of import runs a parallel fit of both in one
fresh process (the first library's, parml's or the other's, then the second's, then the first's
again, so each runtime works after the other has started its threads) and checks the results.
A child per case, with a timeout: a deadlock fails the test instead of blocking the suite.

PARML_RUNTIMES_TIMEOUT: seconds allowed per child (default 120; .ci/wheels raises it under qemu).
"""
import os
import subprocess
import sys

import pytest

TIMEOUT = float(os.environ.get("PARML_RUNTIMES_TIMEOUT", "120"))

CHILD = r"""
import importlib, os, sys
order = sys.argv[1].split(",")
for name in order:                       # the import order under test, before anything else
    importlib.import_module(name)
import numpy as np
import parml
from parml._kernels import _openmp
from parml.ensemble import HistGradientBoostingClassifier as ParmlHGB

rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 8))
y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
Xtr, Xte, ytr, yte = X[:2000], X[2000:], y[:2000], y[2000:]
A = rng.standard_normal((300, 200))
B = rng.standard_normal((200, 250))


def fit_parml():
    m = ParmlHGB(max_iter=30, early_stopping=False, random_state=0, n_threads=2).fit(Xtr, ytr)
    C = parml.matmul(A, B, n_threads=2)
    assert np.allclose(C, A @ B, rtol=1e-10, atol=1e-10), "parml.matmul differs from numpy"
    return m.score(Xte, yte)


def fit_sklearn():
    from sklearn.ensemble import HistGradientBoostingClassifier
    m = HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0).fit(Xtr, ytr)
    return m.score(Xte, yte)


def fit_torch():
    import torch
    torch.set_num_threads(2)
    C = (torch.from_numpy(A) @ torch.from_numpy(B)).numpy()
    assert np.allclose(C, A @ B, rtol=1e-10, atol=1e-10), "torch matmul differs from numpy"
    w = torch.zeros(Xtr.shape[1], requires_grad=True)
    Xt, yt = torch.from_numpy(Xtr).float(), torch.from_numpy(ytr).float()
    opt = torch.optim.SGD([w], lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(Xt @ w, yt).backward()
        opt.step()
    pred = (torch.from_numpy(Xte).float() @ w > 0).numpy()
    return float((pred == yte).mean())


fits = {"parml": fit_parml, "sklearn": fit_sklearn, "torch": fit_torch}
bounds = {"parml": 0.85, "sklearn": 0.85, "torch": 0.6}   # torch: a linear model on an XOR-ish target
first, second = order
scores = [(name, fits[name]()) for name in (first, second, first)]
for name, score in scores:
    assert score >= bounds[name], f"{name} scored {score:.3f} (< {bounds[name]})"
if "sklearn" in order:
    sk = [s for n, s in scores if n == "sklearn"][0]
    pm = [s for n, s in scores if n == "parml"][0]
    assert abs(sk - pm) < 0.05, f"parml {pm:.3f} against scikit-learn {sk:.3f}"
if _openmp.openmp_enabled() and "OMP_THREAD_LIMIT" not in os.environ:
    assert _openmp.team_size(2) == 2, "parml's OpenMP runtime gave no second thread"
from threadpoolctl import threadpool_info
libs = sorted({os.path.basename(i["filepath"]) for i in threadpool_info() if i["user_api"] == "openmp"})
print("OK", " ".join(f"{n}={s:.3f}" for n, s in scores), "OpenMP runtimes:", ", ".join(libs))
"""


def _run(order, tmp_path):
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, ",".join(order)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"import order {order}: no result after {TIMEOUT:.0f} s (a hang?)\n{out}")
    assert r.returncode == 0, f"import order {order}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert r.stdout.startswith("OK"), r.stdout
    print(r.stdout.strip())


@pytest.mark.parametrize("order", [("sklearn", "parml"), ("parml", "sklearn")],
                         ids=["sklearn-first", "parml-first"])
def test_sklearn_and_parml(order, tmp_path):
    pytest.importorskip("sklearn.ensemble")
    _run(order, tmp_path)


@pytest.mark.parametrize("order", [("torch", "parml"), ("parml", "torch")],
                         ids=["torch-first", "parml-first"])
def test_torch_and_parml(order, tmp_path):
    pytest.importorskip("torch")
    _run(order, tmp_path)
