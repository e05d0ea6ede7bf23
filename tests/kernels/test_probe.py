"""The benchmark probes: the read probe times a read on any thread count (an empty array in 0 s) and rejects bad input; read_scaling gives a positive ratio; paired_ratio pairs the sides of each repeat."""
import statistics

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


def test_paired_ratio_pairs_each_repeats_sides():
    """A slow stretch (2x) that began during repeat 1's second side: the medians of the sides set
    repeat 0's fast numpy against the slow parml (0.55), each repeat's own ratio says 1.1."""
    res = {"_clean": 0, "_repeats": 3,
           "parml": {"times": [1.0, 2.0, 2.0], "clean_times": []},
           "numpy": {"times": [1.1, 1.1, 2.2], "clean_times": []}}
    assert H.paired_ratio(res, "parml", "numpy") == pytest.approx(1.1)
    assert 1.1 / 2.0 == pytest.approx(statistics.median(res["numpy"]["times"])
                                      / statistics.median(res["parml"]["times"]))
    # with clean repeats, only those
    res.update({"_clean": 2})
    res["parml"]["clean_times"], res["numpy"]["clean_times"] = [1.0, 2.0], [0.5, 1.0]
    assert H.paired_ratio(res, "parml", "numpy") == pytest.approx(0.5)


def test_compare_keeps_the_sides_clean_times_aligned():
    """paired_ratio pairs the i-th clean time of one side with the i-th of the other: compare()
    must keep a repeat's two times at the same place in both lists, the contended repeat
    (here the second: its first probe says so) left out of both."""
    res = H.compare({"a": lambda: None, "b": lambda: None}, 3,
                    _Scripted([True, True, False, True, True]), min_time=0.0, settle=0.0)
    assert res["_clean"] == 2
    for side in "ab":
        times = res[side]["times"]
        assert len(times) == 3 and res[side]["clean_times"] == [times[0], times[2]]
    expected = statistics.median([res["b"]["times"][r] / res["a"]["times"][r] for r in (0, 2)])
    assert H.paired_ratio(res, "a", "b") == pytest.approx(expected)


class _Scripted:
    """A contention probe that answers from a script."""

    def __init__(self, answers):
        self.answers = iter(answers)

    def clean(self):
        return next(self.answers)
