"""The C API (include/parml/parml.h) from C and C++ programs compiled against the installed
headers (parml.get_include()), and `parml bench c`, the C-level benchmark (tiny sizes; no timing
is asserted)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parml
from parml.benchmarks import c as bench_c

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_SRC = os.path.join(HERE, "c", "test_c_api.c")


def _compiler_or_skip():
    cc = bench_c.find_compiler(bench_c.build_info())
    if cc is None:
        pytest.skip("no C compiler on this machine")
    return cc


def _flags():
    info = bench_c.build_info()
    return (list(info["cflags"]) if info else ["-O2", "-fopenmp"],
            list(info["ldflags"]) if info else ["-fopenmp"])


@pytest.fixture(scope="module")
def c_test_program(tmp_path_factory):
    cc = _compiler_or_skip()
    cflags, ldflags = _flags()
    exe = str(tmp_path_factory.mktemp("capi") / "test_c_api")
    cmd = cc + cflags + ["-Wall", "-Wextra", "-Werror", "-I", parml.get_include(), TEST_SRC,
                         "-o", exe] + ldflags + ["-lm", "-lpthread"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, " ".join(cmd) + "\n" + res.stderr
    return exe


def test_get_include_holds_every_header_parml_h_needs():
    inc = parml.get_include()
    assert os.path.isfile(os.path.join(inc, "parml", "parml.h"))
    with open(os.path.join(inc, "parml", "parml.h")) as f:
        included = [line.split('"')[1] for line in f if line.startswith('#include "')]
    assert "gemm.h" in included and "pool.h" in included
    for h in included:
        assert os.path.isfile(os.path.join(inc, "parml", h)), h


def test_c_program_edge_shapes_every_kernel_set(c_test_program):
    res = subprocess.run([c_test_program], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:]
    assert res.stdout.strip().startswith("ok")


@pytest.mark.parametrize("isa", parml.supported_kernel_sets())
def test_c_program_honours_parml_isa(c_test_program, isa):
    """The first call picks PARML_ISA's set (every supported set is then tested explicitly)."""
    src = os.path.join(os.path.dirname(c_test_program), "which_set.c")
    exe = src[:-2]
    with open(src, "w") as f:
        f.write('#include <parml/parml.h>\n#include <stdio.h>\n'
                'int main(void) { puts(parml_kernel_set_name(parml_kernel_set())); return 0; }\n')
    cflags, ldflags = _flags()
    subprocess.run(_compiler_or_skip() + cflags + ["-I", parml.get_include(), src, "-o", exe]
                   + ldflags + ["-lpthread"], check=True)
    env = dict(os.environ, PARML_ISA=isa.upper())
    out = subprocess.run([exe], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == isa


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 70), st.integers(0, 70), st.integers(0, 300),
                          st.booleans(), st.booleans()), min_size=1, max_size=4))
def test_c_program_random_shapes(c_test_program, shapes):
    args = [f"{m},{n},{k},{int(ta)},{int(tb)}" for m, n, k, ta, tb in shapes]
    res = subprocess.run([c_test_program] + args, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:]


def test_cplusplus_program_compiles_and_runs(tmp_path):
    cxx = next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    if cxx is None:
        pytest.skip("no C++ compiler on this machine")
    cflags, ldflags = _flags()
    exe = str(tmp_path / "test_c_api_cxx")
    res = subprocess.run([cxx, "-x", "c++"] + cflags + ["-I", parml.get_include(), TEST_SRC,
                                                        "-x", "none", "-o", exe] + ldflags
                         + ["-lm", "-lpthread"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    out = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:]


def _bench(args, tmp_path, **env):
    e = dict(os.environ)
    e.pop("PARML_ISA", None)
    e.update(env)
    return subprocess.run([sys.executable, "-m", "parml", "bench", "c", "--out", str(tmp_path)]
                          + args, capture_output=True, text=True, env=e, timeout=600)


def test_bench_c_tiny_checks_every_kernel_and_set(tmp_path):
    _compiler_or_skip()
    res = _bench(["--tiny"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    with open(tmp_path / "c.json") as f:
        result = json.load(f)
    assert (tmp_path / "c.md").is_file()
    assert result["failures"] == 0
    seen = {(r["kernel"], r["set"]) for r in result["rows"]}
    for s in parml.supported_kernel_sets():
        for k in bench_c.KERNELS:
            assert (k, s) in seen, (k, s)
    for r in result["rows"]:
        assert r["check"] == "ok" and r["t_min"] > 0 and r["t_median"] >= r["t_min"]
    assert {r["threads"] for r in result["rows"]} == set(result["threads"])


def test_bench_c_reports_a_wrong_result(tmp_path):
    """A result that differs from the naive loop is marked FAIL and the run exits 1."""
    cc = _compiler_or_skip()
    cflags, ldflags = _flags()
    exe = str(tmp_path / "parml_bench_fault")
    subprocess.run(cc + cflags + ["-DPARML_BENCH_FAULT", "-I", parml.get_include(),
                                  bench_c.SOURCE, "-o", exe] + ldflags + ["-lm", "-lpthread"],
                   check=True)
    res = subprocess.run([exe, "--tiny", "--kernel", "gemm", "--isa", "generic"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    result = json.loads(res.stdout)
    assert result["failures"] > 0
    assert all(r["check"].startswith("FAIL") for r in result["rows"])


def test_bench_c_unsupported_or_unknown_isa(tmp_path):
    _compiler_or_skip()
    from parml._kernels import _kernel_sets
    # what the CPU and build lack, not what PARML_ISA caps: the C program may run any set it has
    missing = [name for sid, name in enumerate(_kernel_sets.NAMES)
               if not _kernel_sets.supported(sid)]
    for isa in missing + ["bogus"]:
        res = _bench(["--tiny", "--isa", isa], tmp_path)
        assert res.returncode == 2
        assert "Traceback" not in res.stderr
        assert isa in res.stderr


@pytest.mark.parametrize("cc", ["", "/bin/false"])
def test_bench_c_without_a_compiler_says_so(tmp_path, cc):
    env = {"PATH": str(tmp_path), "CC": cc}
    res = _bench(["--tiny"], tmp_path, **env)
    assert res.returncode == 2
    assert "no C compiler found" in res.stderr
    assert "Traceback" not in res.stderr


def test_docs_example_compiles_and_agrees(tmp_path):
    """docs/c-api.md's example program, compiled with its own compile line's flags."""
    doc = os.path.join(HERE, os.pardir, "docs", "c-api.md")
    if not os.path.isfile(doc):
        pytest.skip("docs/ not in this tree")
    with open(doc) as f:
        text = f.read()
    src = text.split("```c\n", 1)[1].split("```", 1)[0]
    (tmp_path / "gemm.c").write_text(src)
    exe = str(tmp_path / "gemm")
    subprocess.run(_compiler_or_skip() + ["-O3", "-fopenmp", "-I", parml.get_include(),
                                          str(tmp_path / "gemm.c"), "-o", exe, "-lm",
                                          "-lpthread"], check=True)
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    got, naive = out.split("c[7][9] = ")[1].split(" (naive ")
    assert float(got) == float(naive.rstrip(")\n"))
