"""The thread policy: effective_n_threads semantics, and threadpoolctl seeing and limiting it."""
import os

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

import parml
from parml import _threads
from parml._kernels import _openmp


def test_none_is_min_of_openmp_and_cpus():
    n = parml.effective_n_threads(None)
    assert n >= 1
    if not os.environ.get("OMP_NUM_THREADS"):
        assert n == min(_openmp.get_max_threads(), _threads.available_cpus())


def test_negative_counts_back():
    top = parml.effective_n_threads(None)
    assert parml.effective_n_threads(-1) == top
    assert parml.effective_n_threads(-2) == max(1, top - 1)
    assert parml.effective_n_threads(-1000) == 1


def test_positive_and_bad_values():
    assert parml.effective_n_threads(3) == 3
    assert parml.effective_n_threads(np.int64(2)) == 2
    with pytest.raises(ValueError, match="n_threads=0"):
        parml.effective_n_threads(0)
    with pytest.raises(ValueError, match="more than parml accepts"):
        parml.effective_n_threads(10 ** 6)
    for bad in (1.0, "2", True, [1]):
        with pytest.raises(TypeError, match="n_threads"):
            parml.effective_n_threads(bad)


def test_available_cpus_honours_affinity():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity API")
    assert _threads.available_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(not _openmp.openmp_enabled(), reason="serial build")
def test_threadpoolctl_sees_and_limits_our_openmp():
    controller = ThreadpoolController()
    omp = controller.select(internal_api="openmp")
    assert len(omp) >= 1, controller.info()
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _openmp.get_max_threads() == 1
        assert parml.effective_n_threads(None) == 1
        # and a kernel given the resolved count really runs one thread
        assert _openmp.team_size(parml.effective_n_threads(None)) == 1
    assert _openmp.team_size(2) == 2


def test_openmp_compiled_in_when_required():
    if os.environ.get("PARML_REQUIRE_OPENMP") == "1":
        assert _openmp.openmp_enabled()
