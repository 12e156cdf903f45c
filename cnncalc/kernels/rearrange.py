"""Rearranging values, as PyTorch defines it: permute, transpose, channel shuffle, slicing, pixel (un)shuffle.

Arrays are [N, *sample]; dims are PyTorch's (the batch axis is 0, negatives count from the end). Every size
is read off the array: the axes are split and merged by reshapes and the kept positions chosen by NumPy's own
slicing. Permute, transpose and slice return views; the others copy once (twice for a channels-last input).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from cnncalc.kernels.layout import FloatArray


def permute(x: FloatArray, dims: Sequence[int]) -> FloatArray:
    """torch.permute: output axis i is input axis dims[i] (a view)."""
    if len(dims) != x.ndim:
        raise ValueError(f"dims {list(dims)} do not name each of the {x.ndim} axes of {x.shape}")
    return np.transpose(x, tuple(dims))


def transpose(x: FloatArray, dim0: int, dim1: int) -> FloatArray:
    """torch.transpose: axes dim0 and dim1 swap (a view)."""
    return np.swapaxes(x, dim0, dim1)


def channel_shuffle(x: FloatArray, groups: int) -> FloatArray:
    """nn.ChannelShuffle: channels viewed as [groups, C/groups] and transposed, so output channel i * groups + j
    is input channel j * (C/groups) + i."""
    n, c = x.shape[:2]
    if c % groups:
        raise ValueError(f"{c} channels cannot be split into {groups} groups")
    blocks = x.reshape(n, groups, c // groups, *x.shape[2:])
    return np.swapaxes(blocks, 1, 2).reshape(x.shape)


def slice_axis(x: FloatArray, dim: int, start: int, end: int | None, step: int) -> FloatArray:
    """x[..., start:end:step, ...] along PyTorch dim `dim` (a view); an empty result is refused."""
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim {dim} is out of range for an array of {x.ndim} axes")
    index: list[slice] = [slice(None)] * x.ndim
    index[dim] = slice(start, end, step)
    y = x[tuple(index)]
    if y.size == 0:
        raise ValueError(f"slicing {start}:{end}:{step} of axis {dim} leaves nothing of {x.shape}")
    return y


def pixel_shuffle(x: FloatArray, r: int) -> FloatArray:
    """nn.PixelShuffle: out[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]."""
    n, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"{c} channels are not a multiple of {r}^2")
    split = x.reshape(n, c // (r * r), r, r, h, w)        # [N, C', i, j, H, W]
    moved = split.transpose(0, 1, 4, 2, 5, 3)              # [N, C', H, i, W, j]
    return moved.reshape(n, c // (r * r), h * r, w * r)    # (H, i) -> H*r + i, (W, j) -> W*r + j


def pixel_unshuffle(x: FloatArray, r: int) -> FloatArray:
    """nn.PixelUnshuffle: out[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j]."""
    n, c, h, w = x.shape
    if h % r or w % r:
        raise ValueError(f"{h} x {w} pixels do not split into {r} x {r} blocks")
    split = x.reshape(n, c, h // r, r, w // r, r)          # [N, C, H', i, W', j]
    moved = split.transpose(0, 1, 3, 5, 2, 4)              # [N, C, i, j, H', W']
    return moved.reshape(n, c * r * r, h // r, w // r)     # (C, i, j) -> C*r*r + i*r + j
