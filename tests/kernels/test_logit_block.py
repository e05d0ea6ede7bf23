"""The block logistic loss (logit_block.h): every kernel set's version (vector polynomials in the
avx2, avx512 and neon sets) against libm's formula (the generic set's) in ulps, and all against an
independent numpy oracle: g = d/dp log(1 + exp(-p)) = -expit(-p), l = logaddexp(0, -p)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import expit

from parml import _isa, supported_kernel_sets
from parml._kernels import _linear

SETS = list(supported_kernel_sets())

EDGES = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-17, -1e-17, 1e-8, -1e-8,
                  np.log(2), -np.log(2), 0.8813735870195430, 0.34657359027997264, 1.0, -1.0,
                  36.7, -36.7, 709.0, -709.0, 709.8, -709.8, 745.0, -745.0, 745.2, -745.2,
                  746.0, -746.0, 800.0, -800.0, 1e10, -1e10, 1e300, -1e300])


def _run(p, kernel_set):
    p = np.ascontiguousarray(p, dtype=np.float64)
    g, l = np.full_like(p, np.nan), np.full_like(p, np.nan)
    with _isa.use(kernel_set):
        _linear.logit_block(p, g, l)
    return g, l


def _ulps(a, b):
    return np.abs(a - b) / np.spacing(np.maximum(np.abs(b), np.finfo(float).tiny))


def _grid():
    rng = np.random.default_rng(0)
    return np.concatenate([EDGES, np.linspace(-760, 760, 30_001), rng.standard_normal(30_000) * 4,
                           np.logspace(-320, 2.9, 4000), -np.logspace(-320, 2.9, 4000)])


@pytest.mark.parametrize("kernel_set", SETS)
def test_within_4_ulp_of_libm(kernel_set):
    p = _grid()
    g, l = _run(p, kernel_set)
    g0, l0 = _run(p, "generic")
    assert np.isfinite(g).all() and np.isfinite(l).all()
    assert _ulps(g, g0).max() <= 4
    assert _ulps(l, l0).max() <= 4


@pytest.mark.parametrize("kernel_set", SETS)
def test_against_numpy_oracle(kernel_set):
    p = _grid()
    p = p[np.abs(p) < 700]            # (beyond: both sides underflow or are linear, checked below)
    g, l = _run(p, kernel_set)
    np.testing.assert_allclose(g, -expit(-p), rtol=2e-15, atol=1e-300)
    np.testing.assert_allclose(l, np.logaddexp(0.0, -p), rtol=2e-15, atol=1e-300)
    assert ((g >= -1.0) & (g <= 0.0)).all() and (l >= 0.0).all()


@pytest.mark.parametrize("kernel_set", SETS)
def test_saturated_margins(kernel_set):
    g, l = _run(np.array([-1e300, -1e10, -800.0, 800.0, 1e10, 1e300]), kernel_set)
    np.testing.assert_array_equal(g, [-1.0, -1.0, -1.0, 0.0, 0.0, 0.0])   # -expit(-p), rounded
    np.testing.assert_array_equal(l, [1e300, 1e10, 800.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("kernel_set", SETS)
@settings(max_examples=60, deadline=None)
@given(vals=st.lists(st.floats(-750, 750, allow_nan=False), min_size=1, max_size=40),
       shift=st.integers(0, 17))
def test_lanes_do_not_depend_on_position(kernel_set, vals, shift):
    """Each margin gets the same bits wherever it sits in a block (tails are masked lanes of the
    same vector code), so row-block boundaries, hence thread counts, cannot change results."""
    p = np.array(vals)
    g, l = _run(p, kernel_set)
    padded = np.concatenate([np.zeros(shift), p])
    g2, l2 = _run(padded, kernel_set)
    np.testing.assert_array_equal(g2[shift:], g)
    np.testing.assert_array_equal(l2[shift:], l)
    for i in range(len(p)):                      # one at a time: a 1-lane tail
        gi, li = _run(p[i:i + 1], kernel_set)
        assert gi[0] == g[i] and li[0] == l[i]


def test_bad_lengths():
    with pytest.raises(ValueError, match="same length"):
        _linear.logit_block(np.zeros(3), np.zeros(2), np.zeros(3))


@pytest.mark.parametrize("kernel_set", SETS)
def test_nan_margin_gives_nan(kernel_set):
    """A NaN margin (diverged weights) must not turn into a finite gradient."""
    p = np.array([np.nan, -np.nan, 1.0, np.nan] + [0.5] * 5 + [np.nan])
    g, l = _run(p, kernel_set)
    nan = np.isnan(p)
    assert np.isnan(g[nan]).all() and np.isnan(l[nan]).all()
    assert np.isfinite(g[~nan]).all() and np.isfinite(l[~nan]).all()
