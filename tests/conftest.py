import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "parml", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("PARML_HYPOTHESIS_PROFILE", "parml"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
