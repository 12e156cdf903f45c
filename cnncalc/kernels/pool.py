"""Max, average, adaptive and global pooling, 1-D to 3-D, with PyTorch's semantics.

Window pooling pads once (-inf for max, 0 for average), then reduces over the kernel offsets: one vectorised
`np.maximum` / `+=` per offset over strided slices, done on cache-sized blocks of the output. Work happens in
the input's memory order (channels-last if the input came from a convolution kernel, channels-first otherwise)
and the result is returned as an [N, C, *spatial] view.

How many windows there are is read off the padded array: those that fit in it. ceil_mode lets the last window
run up to stride - 1 elements past the padded end (the padding is extended by that much, and what lies there
never counts), but keeps only windows that start inside the input or its left padding.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cnncalc.kernels.layout import (CACHE_BYTES, FloatArray, IndexArray, Padding, Pads, block_starts, blocks,
                                    channels_first, channels_last, explicit_pads, is_channels_last, pad_spatial,
                                    window_counts)


def _lowest(dtype: np.dtype[Any]) -> float:
    return -np.inf if np.issubdtype(dtype, np.inexact) else np.iinfo(dtype).min


def _reduce_windows(xp: FloatArray, out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int], combine: np.ufunc) -> FloatArray:
    """combine(acc, src) over the kernel offsets of a padded channels-last array; [N, *out, C] result in the
    padded array's memory order."""
    batch, c = xp.shape[0], xp.shape[-1]
    shape = (batch, *out, c)
    y = np.empty(shape, xp.dtype) if is_channels_last(xp) else channels_last(np.empty((batch, c, *out), xp.dtype))
    offsets = list(np.ndindex(*kernel))
    for block in blocks((batch, *out), c * xp.itemsize, CACHE_BYTES):
        acc = y[block]
        spans = block_starts(block, out)
        for i, offset in enumerate(offsets):
            index: list[slice[int, int, int | None]] = [block[0]]
            for (first, count), s, k, d in zip(spans, stride, offset, dilation):
                index.append(slice(first * s + k * d, (first + count - 1) * s + k * d + 1, s))
            src = xp[tuple(index)]
            if i == 0:
                np.copyto(acc, src)
            else:
                combine(acc, src, out=acc)
    return y


def _windows(x: FloatArray, kernel: Sequence[int], stride: Sequence[int], padding: Padding, dilation: Sequence[int],
             ceil_mode: bool, fill: float) -> tuple[FloatArray, tuple[int, ...], list[tuple[int, int]]]:
    """The padded channels-last input (extended for ceil_mode), the window count per axis, and the padding."""
    sizes = x.shape[2:]
    pads = explicit_pads(padding, sizes, kernel, stride, dilation)
    extended = [(b, a + (s - 1 if ceil_mode else 0)) for (b, a), s in zip(pads, stride)]
    xp = pad_spatial(channels_last(x), extended, fill, contiguous=False)
    out = window_counts(xp.shape[1:-1], kernel, stride, dilation)
    if ceil_mode:  # a window starting in the end padding would read no input: PyTorch drops it
        out = tuple(min(o, -(-(n + b) // s)) for o, n, (b, _), s in zip(out, sizes, pads, stride))
    return xp, out, pads


def max_pool(x: FloatArray, kernel: Sequence[int], stride: Sequence[int], padding: Padding, dilation: Sequence[int],
             ceil_mode: bool) -> FloatArray:
    """PyTorch's max_poolNd; padding 'same', 'valid' or (before, after) pairs; padding never wins (acts as -inf)."""
    x = np.asarray(x)
    xp, out, _ = _windows(x, kernel, stride, padding, dilation, ceil_mode, _lowest(x.dtype))
    return channels_first(_reduce_windows(xp, out, kernel, stride, dilation, np.maximum))


def _divisor(sizes: Sequence[int], out: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: Pads,
             count_include_pad: bool, dtype: np.dtype[np.floating[Any]]) -> FloatArray | float:
    """PyTorch's divisor per output position, as a [1, *out, 1] array (or one number when uniform).

    Per axis: start = i*S - P_before, end = min(start + K, N + P_after); with count_include_pad the window
    counts end - start (input + padding, but not what runs past the padded end in ceil_mode), without it only
    the part inside the input.
    """
    r = len(sizes)
    total: IndexArray = np.ones((1,) * r, np.int64)
    for axis, (n, o, k, s, (b, a)) in enumerate(zip(sizes, out, kernel, stride, pads)):
        start = np.arange(o, dtype=np.int64) * s - b
        end = np.minimum(start + k, n + a)
        count = end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0)
        shape = [1] * r
        shape[axis] = o
        total = total * count.reshape(shape)
    total = np.maximum(total, 1)
    if (total == total.flat[0]).all():
        return float(total.flat[0])
    return total.astype(dtype)[None, ..., None]


def avg_pool(x: FloatArray, kernel: Sequence[int], stride: Sequence[int], padding: Padding, ceil_mode: bool,
             count_include_pad: bool) -> FloatArray:
    """PyTorch's avg_poolNd; padding 'same', 'valid' or (before, after) pairs; PyTorch's ceil_mode divisor."""
    x = np.asarray(x)
    ones = (1,) * (x.ndim - 2)
    xp, out, pads = _windows(x, kernel, stride, padding, ones, ceil_mode, 0)
    y = _reduce_windows(xp, out, kernel, stride, ones, np.add)
    divisor = _divisor(x.shape[2:], out, kernel, stride, pads, count_include_pad, x.dtype)
    if isinstance(divisor, float):
        y /= np.asarray(divisor, x.dtype)
    else:
        y /= divisor
    return channels_first(y)


def adaptive_pool(x: FloatArray, output_sizes: Sequence[int | None], mode: str) -> FloatArray:
    """PyTorch's adaptive_{avg,max}_poolNd: window i spans floor(i*N/out) .. ceil((i+1)*N/out).

    When out divides N on every axis the windows are equal: small ones are plain pooling with kernel = stride,
    large ones (global pooling) one reshape and one reduction. Otherwise one axis at a time (both reductions
    are separable over a box): a gather of [out, widest window] indices, short windows padded with a repeat
    (max) or a zero (avg). Works in the input's memory order.
    """
    if mode not in ("avg", "max"):
        raise ValueError(f"mode must be 'avg' or 'max'; got {mode!r}")
    x = np.asarray(x)
    out_sizes = tuple(n if o is None else o for n, o in zip(x.shape[2:], output_sizes))  # None keeps an axis
    last = is_channels_last(channels_last(x))  # work in the memory order the input has
    y = channels_last(x) if last else x
    first = 1 if last else 2
    sizes = x.shape[2:]
    if all(n % o == 0 for n, o in zip(sizes, out_sizes)):  # equal windows
        window = tuple(n // o for n, o in zip(sizes, out_sizes))
        if np.prod(window) <= 16:  # small: plain pooling with kernel = stride, one pass per offset
            if mode == "max":
                return max_pool(x, window, window, "valid", (1,) * len(sizes), False)
            return avg_pool(x, window, window, "valid", False, True)
        # large (global pooling): one reshape, one reduction
        split = list(y.shape[:first])
        for n, o in zip(sizes, out_sizes):
            split += [o, n // o]
        split += y.shape[first + len(sizes):]
        axes = tuple(first + 2 * i + 1 for i in range(len(sizes)))
        y = y.reshape(split)
        if mode == "max":
            y = y.max(axis=axes)
        else:  # one axis at a time, last first: float32 error grows with each sum's length, not the window's
            for axis in reversed(axes):
                y = y.sum(axis=axis)
            y /= np.asarray(np.prod(window), y.dtype)
        return channels_first(y) if last else y
    count = None  # product of the per-axis window lengths, for the average
    for axis, (n, o) in enumerate(zip(sizes, out_sizes), start=first):
        if n == o:
            continue
        before = (slice(None),) * axis
        if n % o == 0:
            blocked = y.reshape(*y.shape[:axis], o, n // o, *y.shape[axis + 1:])
            y = blocked.max(axis=axis + 1) if mode == "max" else blocked.sum(axis=axis + 1)
            lengths = np.full(o, n // o, np.int64)
        else:
            i = np.arange(o, dtype=np.int64)
            start, end = i * n // o, -(-(i + 1) * n // o)
            lengths = end - start
            index = start[:, None] + np.arange(lengths.max(), dtype=np.int64)
            inside = index < end[:, None]
            if mode == "max":
                y = y[before + (np.where(inside, index, (end - 1)[:, None]),)].max(axis=axis + 1)
            else:
                widths = [(0, 0)] * y.ndim
                widths[axis] = (0, 1)
                y = np.pad(y, widths)[before + (np.where(inside, index, n),)].sum(axis=axis + 1)
        if mode == "avg":
            shape = [1] * y.ndim
            shape[axis] = o
            count = lengths.reshape(shape) if count is None else count * lengths.reshape(shape)
    if count is not None:
        y = y / count.astype(y.dtype)
    elif np.shares_memory(y, x):  # every axis kept its size
        y = y.copy()
    return channels_first(y) if last else y


def global_pool(x: FloatArray, mode: str, keepdims: bool) -> FloatArray:
    """Average or max over every spatial axis; [N, C] or, with keepdims, [N, C, 1, ...]."""
    # adaptive pooling sums one axis at a time: one float32 sum over all of H*W drifts on large maps
    pooled = adaptive_pool(x, (1,) * (np.ndim(x) - 2), mode)
    return pooled if keepdims else pooled.reshape(pooled.shape[:2])
