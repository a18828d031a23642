"""Batch normalisation folded into the convolution before it computes what the two did."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from skconvnet.backbones.graph import fold_batch_norm

pytestmark = pytest.mark.no_backend

RNG = np.random.default_rng(0)


def _convolve(x, kernel, bias, depthwise):
    """A 'valid' 2-D convolution of ``x`` (height, width, channels), written out in NumPy."""
    patches = sliding_window_view(x, kernel.shape[:2], axis=(0, 1))  # (h, w, c, kh, kw)
    if depthwise:  # kernel (kh, kw, c, m): output channel c * m + j
        out = np.einsum("hwcij,ijcm->hwcm", patches, kernel)
        out = out.reshape(*out.shape[:2], -1)
    else:  # kernel (kh, kw, c, out)
        out = np.einsum("hwcij,ijco->hwo", patches, kernel)
    return out + bias


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("scaled", [False, True], ids=["no-gamma-beta", "gamma-beta"])
def test_folded_convolution_equals_convolution_then_batch_norm(depthwise, with_bias, scaled):
    x = RNG.normal(size=(6, 5, 3))
    kernel = RNG.normal(size=(3, 3, 3, 2 if depthwise else 4))
    n_out = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[3]
    bias = RNG.normal(size=n_out) if with_bias else None
    gamma, beta = (RNG.uniform(0.5, 2, n_out), RNG.normal(size=n_out)) if scaled else (None,
                                                                                          None)
    mean, variance, epsilon = RNG.normal(size=n_out), RNG.uniform(0.1, 3, n_out), 1e-3

    conv = _convolve(x, kernel, 0.0 if bias is None else bias, depthwise)
    normalised = (conv - mean) / np.sqrt(variance + epsilon)
    if scaled:
        normalised = gamma * normalised + beta
    folded_kernel, folded_bias = fold_batch_norm(
        kernel, bias, gamma=gamma, beta=beta, mean=mean, variance=variance, epsilon=epsilon,
        depthwise=depthwise)
    assert folded_kernel.dtype == folded_bias.dtype == np.float32
    assert folded_kernel.shape == kernel.shape and folded_bias.shape == (n_out,)
    np.testing.assert_allclose(_convolve(x, folded_kernel, folded_bias, depthwise), normalised,
                               rtol=1e-5, atol=1e-5)
