"""Moving data without arithmetic: flatten, reshape, padding (constant, reflect, replicate, circular) and
cropping."""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from cnncalc.kernels.layout import FloatArray

PadMode = Literal["constant", "reflect", "replicate", "circular"]
NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


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


def pad(x: FloatArray, pads: Sequence[tuple[int, int]], mode: PadMode = "constant", value: float = 0.0) -> FloatArray:
    """F.pad over the spatial axes of [N, C, *spatial], (before, after) per axis, first axis first.

    constant: fill with `value`; a negative amount crops (as F.pad). reflect mirrors about the edge element (each
    amount below the axis's size), replicate repeats it, circular wraps around (each amount at most the size).
    """
    x = np.asarray(x)
    sizes = x.shape[2:]
    if len(pads) != len(sizes):
        raise ValueError(f"{len(pads)} (before, after) pairs for the {len(sizes)} spatial axes of {x.shape}")
    if mode == "constant":
        index = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(sizes, pads))
        if any(s.stop < s.start for s in index):
            raise ValueError(f"padding {tuple(pads)} crops more than there is of {x.shape}")
        x = x[(slice(None), slice(None), *index)]
        grow = [(max(b, 0), max(a, 0)) for b, a in pads]
        padded: FloatArray = np.pad(x, ((0, 0), (0, 0), *grow), constant_values=value)
        return padded
    if mode not in NUMPY_MODES:
        raise ValueError(f"mode must be constant, reflect, replicate or circular; got {mode!r}")
    for n, (b, a) in zip(sizes, pads):
        if min(b, a) < 0:
            raise ValueError(f"{mode} padding cannot be negative; got {tuple(pads)}")
        if mode == "reflect" and max(b, a) >= n:
            raise ValueError(f"reflect padding {(b, a)} must be smaller than the axis's size {n}")
        if mode == "circular" and max(b, a) > n:
            raise ValueError(f"circular padding {(b, a)} wraps around an axis of size {n} more than once")
    result: FloatArray = np.pad(x, ((0, 0), (0, 0), *pads), mode=NUMPY_MODES[mode])  # type: ignore[call-overload]
    return result


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
