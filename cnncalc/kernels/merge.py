"""Joining branches: element-wise sum and product, and concatenation."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from cnncalc.kernels.layout import FloatArray, channels_first, channels_last, is_channels_last


def add(xs: Sequence[FloatArray]) -> FloatArray:
    return _fold(np.add, xs)


def multiply(xs: Sequence[FloatArray]) -> FloatArray:
    return _fold(np.multiply, xs)


def _fold(combine: np.ufunc, xs: Sequence[FloatArray]) -> FloatArray:
    """((x0 . x1) . x2) ..., in PyTorch's order, broadcasting as PyTorch does (shapes aligned from the last axis;
    a size-1 axis repeats). The output is allocated once, at the broadcast shape of all the inputs."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    if all(x.shape == shape for x in xs):
        out: FloatArray = combine(xs[0], xs[1])  # a new array in the inputs' memory order (kernels work channels-last)
    else:
        # a broadcast input has no memory order to follow: lay the output out channels-last, as the kernels work
        dtype = np.result_type(*xs)
        out = channels_first(np.empty((shape[0], *shape[2:], shape[1]), dtype)) if len(shape) > 2 else \
            np.empty(shape, dtype)
        combine(xs[0], xs[1], out=out)
    for x in xs[2:]:
        combine(out, x, out=out)
    return out


def concat(xs: Sequence[FloatArray], dim: int) -> FloatArray:
    """Concatenate along PyTorch dim `dim` (negative counts from the end)."""
    axis = dim % xs[0].ndim
    if axis == 1 and xs[0].ndim > 2 and all(is_channels_last(channels_last(x)) for x in xs):
        # keep the channels-last memory the kernels produced: join along the innermost axis
        return channels_first(np.concatenate([channels_last(x) for x in xs], axis=-1))
    return np.concatenate(xs, axis=axis)
