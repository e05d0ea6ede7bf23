"""PARML_ISA and the kernel-set registry, in fresh interpreters (the set is chosen at import)."""
import os
import subprocess
import sys

import pytest

import parml
from parml import _isa
from parml._kernels import _kernel_sets

PROBE = ("import warnings, parml; warnings.simplefilter('error', RuntimeWarning) "
         "if {strict} else None; print(parml.kernel_set(), ','.join(parml.supported_kernel_sets()))")


def run(value, strict=False):
    env = dict(os.environ)
    env.pop("PARML_ISA", None)
    if value is not None:
        env["PARML_ISA"] = value
    return subprocess.run([sys.executable, "-W", "always", "-c", PROBE.format(strict=strict)],
                          env=env, capture_output=True, text=True, timeout=120)


def best_on_this_cpu():
    return _isa.NAMES[_kernel_sets.best()]


def test_unset_gives_the_best_set():
    r = run(None)
    assert r.returncode == 0, r.stderr
    name, sets = r.stdout.split()
    assert name == best_on_this_cpu()
    assert sets.split(",")[0] == "generic" and sets.split(",")[-1] == name


@pytest.mark.parametrize("value", ["sse4", "avx", "AVX-512", "x86-64-v3", "arm"])
def test_unknown_name_is_a_clear_error(value):
    r = run(value)
    assert r.returncode != 0
    assert "ValueError" in r.stderr and f"PARML_ISA={value!r}" in r.stderr
    assert "valid names: generic, avx2, avx512, neon" in r.stderr


@pytest.mark.parametrize("value", ["generic", " Generic ", "GENERIC"])
def test_generic_cap_any_case(value):
    r = run(value, strict=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["generic", "generic"]


@pytest.mark.parametrize("name", [n for n in _isa.NAMES if n != "generic"])
def test_each_named_set(name):
    """A set the CPU runs is used as asked (and caps the available ones); a set it lacks warns
    and falls back to the best set under it, never to an instruction the CPU lacks."""
    sid = _isa.NAMES.index(name)
    r = run(name)
    assert r.returncode == 0, r.stderr
    got, sets = r.stdout.split()
    if _kernel_sets.supported(sid):
        assert got == name and "RuntimeWarning" not in r.stderr
        assert sets.split(",")[-1] == name
    else:
        assert "RuntimeWarning" in r.stderr and f"cannot run the {name} kernels" in r.stderr
        assert _kernel_sets.supported(_isa.NAMES.index(got))
        if name == "avx512" and _kernel_sets.supported(_isa.NAMES.index("avx2")):
            assert got == "avx2"
        if name == "neon" or (name in ("avx2", "avx512") and best_on_this_cpu() == "neon"):
            assert got == best_on_this_cpu()      # another architecture's cap: no cap here


def test_use_refuses_sets_outside_the_cap():
    with pytest.raises(ValueError, match="not available here"):
        with _isa.use("mmx"):
            pass
    before = parml.kernel_set()
    for name in parml.supported_kernel_sets():
        with _isa.use(name):
            assert parml.kernel_set() == name
    assert parml.kernel_set() == before


def test_info_names_the_set_per_family():
    env = dict(os.environ, PARML_ISA="generic")
    r = subprocess.run([sys.executable, "-m", "parml", "info"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "kernel set: generic -- capped by PARML_ISA=generic" in r.stdout
    assert "GEMM float64: generic micro-kernel" in r.stdout
    assert "linear row kernels, logistic block, SGD step: generic" in r.stdout
    assert "histograms: scalar loop" in r.stdout
