"""The benchmark probes: the read probe times a read on any thread count (an empty array in 0 s) and rejects bad input; read_scaling gives a positive ratio."""
import numpy as np
import pytest

from parml._kernels import _probe
from parml.benchmarks import harness as H


@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_read_probe_times_a_read(n_threads):
    words = np.arange(1 << 16, dtype=np.uint64)
    t = _probe.read_probe(words, n_threads)
    assert 0.0 < t < 10.0
    assert _probe.read_probe(words[:0], n_threads) == 0.0


def test_read_probe_rejects_bad_input():
    with pytest.raises(ValueError, match="n_threads"):
        _probe.read_probe(np.zeros(8, dtype=np.uint64), 0)
    with pytest.raises((ValueError, TypeError)):
        _probe.read_probe(np.zeros(8, dtype=np.float64), 1)
    with pytest.raises(ValueError):
        _probe.read_probe(np.zeros(16, dtype=np.uint64)[::2], 1)   # not contiguous


def test_read_scaling_is_a_positive_ratio():
    r = H.read_scaling(repeats=1, mbytes=8)
    assert 0.0 < r < 10.0
