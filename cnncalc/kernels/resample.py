"""Upsampling as torch.nn.functional.interpolate does it: nearest, and (bi/tri)linear with align_corners.

Both modes are separable, so each spatial axis is resampled in turn with a gather (and, for the linear modes, a
two-tap blend). Source indices and weights are computed exactly as PyTorch's CPU kernels do, in the same
precision (float32 for float32 tensors), so nearest picks the very same pixels.
"""
from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from cnncalc.kernels.layout import FloatArray, IndexArray, channels_first, channels_last, is_channels_last

MODES = ("nearest", "linear", "bilinear", "trilinear")

Number = TypeVar("Number", int, float)


def _ratio(n: int, o: int, scale: float | None, ftype: type[np.floating[Any]]) -> np.floating[Any]:
    """PyTorch's compute_scales_value: 1/scale_factor when one was given, else in/out (in `ftype`)."""
    if scale is not None and scale > 0:
        return ftype(1.0 / scale)
    return ftype(n) / ftype(o)


def nearest_index(n: int, o: int, scale: float | None, shortcuts: bool = True) -> IndexArray:
    """Source index of each output position: min(floor(dst * ratio), n - 1), in float32 as PyTorch. PyTorch's
    2-D kernel takes two shortcuts (an axis that keeps its size is copied, one that doubles repeats each
    element); its 1-D and 3-D kernels always compute from the scale."""
    if shortcuts and o == n:
        return np.arange(o)
    if shortcuts and o == 2 * n:
        return np.arange(o) >> 1
    ratio = _ratio(n, o, scale, np.float32)
    src = np.floor(np.arange(o, dtype=np.float32) * ratio).astype(np.int64)
    return np.minimum(src, n - 1)


def linear_taps(n: int, o: int, scale: float | None, align_corners: bool, ftype: type[np.floating[Any]]
                ) -> tuple[IndexArray, IndexArray, FloatArray, FloatArray]:
    """(index0, index1, lambda0, lambda1) per output position, as PyTorch's compute_source_index_and_lambda."""
    if o == n:
        index = np.arange(o)
        return index, index, np.ones(o, ftype), np.zeros(o, ftype)
    if align_corners:
        ratio = ftype(n - 1) / ftype(o - 1) if o > 1 else ftype(0)
        real = ratio * np.arange(o, dtype=ftype)
    else:
        ratio = _ratio(n, o, scale, ftype)
        real = ratio * (np.arange(o, dtype=ftype) + ftype(0.5)) - ftype(0.5)
        real = np.maximum(real, ftype(0))
    index0 = np.minimum(np.floor(real).astype(np.int64), n - 1)
    lambda1 = np.clip(real - index0.astype(ftype), ftype(0), ftype(1)).astype(ftype)
    index1 = index0 + (index0 < n - 1)
    lambda0 = (ftype(1) - lambda1).astype(ftype)
    return index0, index1, lambda0, lambda1


def upsample(x: FloatArray, size: int | tuple[int, ...] | list[int] | None,
             scale_factor: float | tuple[float, ...] | list[float] | None, mode: str, align_corners: bool
             ) -> FloatArray:
    """interpolate(x, size=..., or scale_factor=..., mode, align_corners) for [N, C, *spatial] arrays.

    size and scale_factor: one value for every spatial axis, or one per axis; exactly one of them is given.
    With scale_factor the output size is floor(N * scale) in double precision, as PyTorch computes it.
    """
    x = np.asarray(x)
    spatial = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if size is not None:
        sizes = _per_axis(size, len(spatial))
        scales: tuple[float | None, ...] = (None,) * len(spatial)
    else:
        assert scale_factor is not None  # exactly one of the two is given (checked above)
        factors = tuple(float(f) for f in _per_axis(scale_factor, len(spatial)))
        scales = factors
        sizes = tuple(int(np.floor(np.float64(n) * f)) for n, f in zip(spatial, factors))
    if min(sizes, default=1) < 1:
        raise ValueError(f"the output would have sizes {sizes}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    ftype = x.dtype.type if np.issubdtype(x.dtype, np.floating) else np.float32
    last = is_channels_last(channels_last(x))  # work in the memory order the input has
    y = channels_last(x) if last else x
    for axis, (n, o, scale) in enumerate(zip(spatial, sizes, scales), start=1 if last else 2):
        before = (slice(None),) * axis
        if mode == "nearest":
            index = nearest_index(n, o, scale, shortcuts=len(spatial) == 2)
            if not np.array_equal(index, np.arange(n)):
                y = y[before + (index,)]
            continue
        if o == n:
            continue
        index0, index1, lambda0, lambda1 = linear_taps(n, o, scale, bool(align_corners), ftype)
        shape = (o,) + (1,) * (y.ndim - axis - 1)
        low = y[before + (index0,)]
        high = y[before + (index1,)]
        low *= lambda0.reshape(shape)
        high *= lambda1.reshape(shape)
        low += high
        y = low
    if np.shares_memory(y, x):  # nothing was resized
        y = y.copy()
    return channels_first(y) if last else y


def _per_axis(value: Number | tuple[Number, ...] | list[Number], rank: int) -> tuple[Number, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank
    if len(values) != rank:
        raise ValueError(f"needs one value or {rank} (one per spatial axis); got {values}")
    return values
