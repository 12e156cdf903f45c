"""Moving data without arithmetic: flatten, reshape, zero padding and cropping."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def flatten(x: np.ndarray, start_dim: int, end_dim: int) -> np.ndarray:
    """Merge PyTorch dims start_dim..end_dim (negative count from the end) into one."""
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1:])


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Keep the batch axis, reshape the rest (one -1 is inferred)."""
    return x.reshape(x.shape[0], *shape)


def zero_pad(x: np.ndarray, pads: Sequence[tuple[int, int]]) -> np.ndarray:
    """Pad the spatial axes with zeros, (before, after) per axis."""
    return np.pad(x, ((0, 0), (0, 0), *pads))


def crop(x: np.ndarray, crops: Sequence[tuple[int, int]]) -> np.ndarray:
    """Remove (before, after) elements from each spatial axis."""
    index = tuple(slice(b, n - a) for n, (b, a) in zip(x.shape[2:], crops))
    if any(s.stop - s.start < 1 for s in index):
        raise ValueError(f"cropping {tuple(crops)} leaves nothing of {x.shape}")
    return x[(slice(None), slice(None), *index)]


def centre_crop(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Crop the spatial axes of `x` to those of `like`, centred (the extra element, if odd, at the end)."""
    if any(t > n for n, t in zip(x.shape[2:], like.shape[2:])):
        raise ValueError(f"cannot centre-crop {x.shape} to the larger {like.shape}")
    return crop(x, [((n - t) // 2, n - t - (n - t) // 2) for n, t in zip(x.shape[2:], like.shape[2:])])
