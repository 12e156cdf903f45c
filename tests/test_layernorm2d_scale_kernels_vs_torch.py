"""The layernorm2d and scale kernels against PyTorch (torchvision's LayerNorm2d forward: permute to channels
last, F.layer_norm over C, permute back; and x * parameter), in both memory orders the engine hands them."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from cnncalc.kernels.layout import channels_first, channels_last  # noqa: E402
from cnncalc.kernels.norm import channel_layer_norm  # noqa: E402
from cnncalc.kernels.scale import scale  # noqa: E402

pytestmark = pytest.mark.oracle
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def laid_out(a: np.ndarray, last: bool) -> np.ndarray:
    return channels_first(np.ascontiguousarray(channels_last(a))) if last and a.ndim > 2 else a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("shape", [(2, 6, 5, 4), (2, 3, 7), (1, 4, 2, 3, 3), (2, 1, 3, 3)])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_channel_layer_norm_matches_torchvision_layernorm2d(shape, affine, last, dtype):
    rng = np.random.default_rng(len(shape) * 7 + shape[1])
    x = laid_out((rng.standard_normal(shape) * 3 + 1).astype(dtype), last)
    c = shape[1]
    weight = rng.uniform(0.5, 1.5, c).astype(dtype) if affine != "none" else None
    bias = rng.uniform(-0.5, 0.5, c).astype(dtype) if affine == "both" else None
    got = channel_layer_norm(x, weight, bias, 1e-6)
    t = torch.movedim(torch.from_numpy(np.ascontiguousarray(x)), 1, -1)
    want = torch.movedim(F.layer_norm(t, (c,), None if weight is None else torch.from_numpy(weight),
                                      None if bias is None else torch.from_numpy(bias), 1e-6), -1, 1).numpy()
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("x_shape, p_shape", [
    ((2, 6, 5, 4), (6, 1, 1)),   # ConvNeXt's layer scale
    ((2, 6, 5, 4), (4,)),
    ((2, 6, 5, 4), (5, 4)),
    ((2, 1, 5, 4), (6, 1, 1)),   # the parameter widens the input's 1
    ((2, 7), (7,)),
    ((2, 3, 2, 3, 4), (3, 1, 1, 1)),
])
def test_scale_matches_torch(x_shape, p_shape, last, dtype):
    rng = np.random.default_rng(sum(x_shape) + len(p_shape))
    x = laid_out(rng.standard_normal(x_shape).astype(dtype), last)
    p = rng.standard_normal(p_shape).astype(dtype)
    got = scale(x, p)
    want = (torch.from_numpy(np.ascontiguousarray(x)) * torch.nn.Parameter(torch.from_numpy(p))).detach().numpy()
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL[dtype])
