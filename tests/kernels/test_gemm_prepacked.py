"""A B packed once and shared by several products (gemm_impl.h: parml_prepack_b and friends), the
layout the MLP's training steps share between row chunks and weight blocks. The product that reads
it must give bitwise the result of the product that packs B itself, for every kernel set, dtype,
ragged panel, depth block and chunk boundary."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import parml
from parml._kernels import _gemm

KERNEL_IDS = list(parml.supported_kernel_sets())
KERNELS = [_gemm.KERNEL_NAMES.index(name) for name in KERNEL_IDS]
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _reference(A, B, kid):
    """The same product through the driver that packs B itself."""
    C = np.empty((A.shape[0], B.shape[1]), A.dtype)
    assert _gemm.gemm(A, B, C, 1, kid, 1, False) == 0
    return C


def _check(A, B, kid, how, chunk, stale=None):
    C = np.full((A.shape[0], B.shape[1]), np.nan, A.dtype)
    rc, used = _gemm.prepacked_product(A, B, C, kid, how, chunk, stale)
    assert rc == 0
    want = _reference(A, B, kid)
    assert np.array_equal(C, want), (how, chunk, np.abs(C - want).max())
    exact = A.astype(np.float64) @ B.astype(np.float64)
    scale = max(1.0, np.abs(exact).max())
    assert np.abs(C - exact).max() <= TOL[A.dtype.type] * scale * A.shape[1] ** 0.5
    return used


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 600), n=st.integers(1, 90),
       chunk=st.integers(1, 300), kid=st.sampled_from(KERNELS),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
@example(m=13, k=300, n=136, chunk=64, kid=KERNELS[-1], dtype=np.float32, seed=1)  # 2 depth blocks
@example(m=7, k=513, n=40, chunk=257, kid=KERNELS[-1], dtype=np.float64, seed=2)   # 3 of them
def test_prepacked_b_gives_the_same_bits(m, k, n, chunk, kid, dtype, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    W = rng.standard_normal((n, k)).astype(dtype)           # B = W.T: the delta product's B
    stale = rng.standard_normal((n, k)).astype(dtype).T
    _check(A, B, kid, "whole", chunk)
    _check(A, B, kid, "rows", chunk)
    _check(A, W.T, kid, "whole", chunk)
    _check(A, W.T, kid, "bt_cols", chunk, stale)


@pytest.mark.parametrize("kid", KERNELS, ids=KERNEL_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_mlp_shapes_read_the_packed_b(kid, dtype):
    """At an MLP's layer shapes the products do read the shared copy (else the tests above
    would pass without it), and stay bitwise the same."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((64, 256)).astype(dtype)
    B = rng.standard_normal((256, 200)).astype(dtype)
    W = rng.standard_normal((200, 256)).astype(dtype)
    assert _check(A, B, kid, "rows", 64)
    assert _check(A, W.T, kid, "bt_cols", 6, rng.standard_normal((200, 256)).astype(dtype).T)


def test_prepacked_product_bad_arguments():
    A = np.ones((4, 5), np.float64)
    B = np.ones((5, 3), np.float64)
    C = np.empty((4, 3), np.float64)
    kid = KERNELS[0]
    with pytest.raises(ValueError, match="how"):
        _gemm.prepacked_product(A, B, C, kid, "sideways", 2)
    with pytest.raises(ValueError, match="strides"):
        _gemm.prepacked_product(A, B, C, kid, "bt_cols", 2, B)
    with pytest.raises(ValueError, match="shapes"):
        _gemm.prepacked_product(A, np.ones((6, 3)), C, kid, "whole", 2)
    with pytest.raises(ValueError, match="not supported"):
        _gemm.prepacked_product(A, B, C, 99, "whole", 2)
