"""Normalisation in inference (eval) mode, as PyTorch computes it: batch, layer, group and instance norm,
and local response normalisation. Arrays are [N, C, *spatial]; per-channel vectors are [C]."""
from __future__ import annotations

import numpy as np

from cnncalc.kernels.layout import FloatArray


def _standardize(x: FloatArray, axes: tuple[int, ...], eps: float) -> FloatArray:
    """(x - mean) / sqrt(var + eps), with each slice's own statistics over `axes`."""
    mean = x.mean(axis=axes, keepdims=True)
    y: FloatArray = (x - mean) / (x.var(axis=axes, keepdims=True) + eps) ** 0.5
    return y


def _per_channel(v: FloatArray, ndim: int) -> FloatArray:
    """A per-channel vector shaped to broadcast over [N, C, *spatial]."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm(x: FloatArray, weight: FloatArray | None, bias: FloatArray | None, running_mean: FloatArray | None,
               running_var: FloatArray | None, eps: float) -> FloatArray:
    """Scale and shift folded from the running statistics (or, without them, the batch's own: PyTorch then
    normalises by the batch statistics even in eval mode). weight/bias None without affine parameters."""
    if running_mean is None:
        axes = (0, *range(2, x.ndim))
        running_mean, running_var = x.mean(axis=axes), x.var(axis=axes)
    assert running_var is not None, "running_mean and running_var come as a pair"
    scale = 1.0 / np.sqrt(running_var + eps)
    shift = -running_mean * scale
    if weight is not None:
        assert bias is not None, "weight and bias come as a pair"
        scale, shift = scale * weight, shift * weight + bias
    out = np.multiply(x, _per_channel(scale.astype(x.dtype), x.ndim))  # one new array, in x's memory order
    out += _per_channel(shift.astype(x.dtype), x.ndim)
    return out


def layer_norm(x: FloatArray, normalized_ndim: int, weight: FloatArray | None, bias: FloatArray | None,
               eps: float) -> FloatArray:
    """Normalise over the last `normalized_ndim` axes; weight and bias have those axes' shape (or are None)."""
    y = _standardize(x, tuple(range(x.ndim - normalized_ndim, x.ndim)), eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def channel_layer_norm(x: FloatArray, weight: FloatArray | None, bias: FloatArray | None, eps: float) -> FloatArray:
    """Layer norm over the channel axis (1) of [N, C, *spatial]: each position's C values with their own
    statistics (torchvision's LayerNorm2d); weight and bias are [C] (or None)."""
    y = _standardize(x, (1,), eps)
    if weight is not None:
        y = y * _per_channel(weight, x.ndim)
    if bias is not None:
        y = y + _per_channel(bias, x.ndim)
    return y.astype(x.dtype, copy=False)


def group_norm(x: FloatArray, groups: int, weight: FloatArray | None, bias: FloatArray | None,
               eps: float) -> FloatArray:
    y = _standardize(x.reshape(x.shape[0], groups, -1), (2,), eps).reshape(x.shape)
    if weight is not None:
        assert bias is not None, "weight and bias come as a pair"
        y = y * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim)
    return y


def instance_norm(x: FloatArray, weight: FloatArray | None, bias: FloatArray | None,
                  running_mean: FloatArray | None, running_var: FloatArray | None, eps: float) -> FloatArray:
    """Each sample's channels over their spatial axes (or by running statistics, when tracked)."""
    if running_mean is not None:
        assert running_var is not None, "running_mean and running_var come as a pair"
        y: FloatArray = (x - _per_channel(running_mean, x.ndim)) / (_per_channel(running_var, x.ndim) + eps) ** 0.5
    else:
        y = _standardize(x, tuple(range(2, x.ndim)), eps)
    if weight is not None:
        assert bias is not None, "weight and bias come as a pair"
        y = y * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim)
    return y.astype(x.dtype, copy=False)


def local_response_norm(x: FloatArray, size: int, alpha: float, beta: float, k: float) -> FloatArray:
    """b = a / (k + alpha/size * sum of a^2 over `size` neighbouring channels)^beta, zero-padded channels."""
    squares = x * x
    pad = [(0, 0)] * x.ndim
    pad[1] = (size // 2, (size - 1) // 2)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(squares, pad), size, axis=1)
    denominator: FloatArray = (k + alpha * windows.mean(axis=-1)) ** beta
    return (x / denominator).astype(x.dtype, copy=False)
