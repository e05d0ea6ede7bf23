import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import parml
from parml import _isa

settings.register_profile(
    "parml", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("PARML_HYPOTHESIS_PROFILE", "parml"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# Every kernel set this CPU (and PARML_ISA's cap) allows, generic always: kernel tests run each.
KERNEL_SETS = parml.supported_kernel_sets()


@pytest.fixture(params=KERNEL_SETS)
def kernel_set(request):
    """Run the test with kernel set request.param active (parml._isa.use)."""
    with _isa.use(request.param):
        yield request.param


class _AlwaysN:
    """Stands in for parml.ops's per-size thread tuner: every product on the threads asked."""

    def __init__(self, dt, flops, nt):
        self.nt = nt

    def threads(self):
        return self.nt

    def record(self, seconds, elapsed=None):
        pass


@pytest.fixture
def always_n_threads(monkeypatch):
    """matmul runs every product on the threads asked for, however small, with no thread tuner
    (so thread-count tests exercise the pool on any machine, busy or not)."""
    from parml import ops
    monkeypatch.setattr(ops, "GEMM_PARALLEL_MIN_SECONDS", 0.0)
    monkeypatch.setattr(ops, "_small_tuner", _AlwaysN)
    monkeypatch.setattr(ops, "_small_tuners", {})   # (matmul's fast path reads the tuners here)
