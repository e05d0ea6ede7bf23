"""The parml command: --version, --help, info, demo and a tiny benchmark run, as a user runs them."""
import json
import os
import subprocess
import sys

import pytest

import parml


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "parml", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and parml.__version__ in r.stdout
    r = run("--help")
    assert r.returncode == 0
    for word in ("info", "demo", "bench"):
        assert word in r.stdout


def test_info_reports_kernels_and_threads():
    r = run("info")
    assert r.returncode == 0, r.stderr
    for needle in ("CPU features", "float32:", "float64:", "OpenMP compiled in", "threadpoolctl sees"):
        assert needle in r.stdout


def test_demo_runs_and_checks_itself():
    r = run("demo")
    assert r.returncode == 0, r.stderr
    assert "matmul 1024x1024" in r.stdout and "add 2048x2048" in r.stdout
    # it ends with the command serving its saved model, and that model loads and predicts
    serve = [ln.split() for ln in r.stdout.splitlines() if ln.strip().startswith("parml serve ")]
    assert serve, r.stdout[-500:]
    import numpy as np
    import parml
    model = parml.load(serve[-1][2])
    assert model.predict(np.zeros((1, model.n_features_in_))).shape == (1,)
    # the demo's own error column: every product agrees with the float64 oracle
    for line in r.stdout.splitlines():
        if line.startswith("| matmul"):
            assert float(line.rstrip(" |").split("|")[-1]) < 1e-4, line


def test_bench_unknown_area_is_an_error():
    r = run("bench", "nonsense")
    assert r.returncode != 0 and "invalid choice" in r.stderr


@pytest.mark.slow
def test_bench_gemm_quick_writes_results(tmp_path):
    r = run("bench", "gemm", "--quick", "--repeats", "1", "--no-busy", "--out", str(tmp_path),
            timeout=900)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "gemm.json").read_text())
    assert data["rows"] and all(row["parml_gflops"] > 0 and row["paired_ratio"] > 0
                                for row in data["rows"])


def test_info_into_a_closed_pipe_is_quiet():
    """`parml info | head -1`: the reader leaves before parml writes; no BrokenPipeError
    traceback and exit status 0."""
    r, w = os.pipe()
    os.close(r)                        # every write to w now fails with EPIPE
    try:
        res = subprocess.run([sys.executable, "-m", "parml", "info"], stdout=w,
                             stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(w)
    err = res.stderr.decode()
    assert res.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_bench_gemm_reports_the_tuners_one_thread_share(monkeypatch):
    """`parml bench gemm`'s last column: the share of a case's tuned products that ran on one
    thread, from the size-class tuners' counts before and after the case."""
    import numpy as np

    import parml
    from parml import ops
    from parml.benchmarks.gemm import _tuned_calls, tuner_one_share
    assert tuner_one_share({}, {}) is None
    assert tuner_one_share({("d", 20, 2): (5, 1)}, {("d", 20, 2): (8, 2), ("f", 21, 2): (3, 2)}) \
        == 3 / 9
    monkeypatch.setattr(ops, "GEMM_PARALLEL_MIN_SECONDS", 0.0)   # tuned on a core of any speed
    monkeypatch.setattr(ops, "GEMM_SPLIT_MIN_SECONDS", float("inf"))
    monkeypatch.setattr(ops, "_small_tuners", {})
    A = np.ones((120, 100))
    before = _tuned_calls()
    for _ in range(5):
        parml.matmul(A, A.T, n_threads=1)          # one thread asked: never tuned
    assert tuner_one_share(before, _tuned_calls()) is None
    for _ in range(40):
        parml.matmul(A, A.T, n_threads=2)
    (tuner,) = ops._small_tuners.values()
    st = tuner.stats()
    assert st["units_many"] + st["units_one"] == 40
    assert tuner_one_share(before, _tuned_calls()) == st["units_one"] / 40
    # longer products: the layout tuners' share of split calls
    monkeypatch.setattr(ops, "GEMM_SPLIT_MIN_SECONDS", 0.0)
    monkeypatch.setattr(ops, "_layout_tuners", {})
    before = _tuned_calls(long=True)
    for _ in range(10):
        parml.matmul(A, A.T, n_threads=2)
    (layouts,) = ops._layout_tuners.values()
    assert tuner_one_share(before, _tuned_calls(long=True)) == layouts.stats()["units_one"] / 10 > 0
