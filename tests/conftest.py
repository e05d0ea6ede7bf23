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
