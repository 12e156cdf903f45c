"""Memory layout helpers shared by the kernels: channels-last views, padding, cache-sized blocks, window views,
and the kernels' own padding arithmetic.

NumPy only. Nothing here (or anywhere in `cnncalc.kernels`) consults a layer's shape rule: every output size
a kernel produces is read off the arrays it was given (a padded length, a dilated kernel's span, a stride),
so a wrong rule shows up as a mismatch in `cnncalc verify` instead of being copied into the witness.
"""
from __future__ import annotations

from math import prod
from typing import Any, Sequence, TypeAlias, TypeVar

import numpy as np
from numpy.lib.stride_tricks import as_strided

# The kernels' array types: numpy.typing.NDArray spelled out (the kernels import numpy and
# numpy.lib.stride_tricks only). The engine runs float32 or float64; index arrays are integers; the layout
# helpers below also move `units` (np.void runs), so they keep whatever scalar type they are given.
ScalarT = TypeVar("ScalarT", bound=np.generic)
Array = np.ndarray[tuple[Any, ...], np.dtype[ScalarT]]
FloatArray = Array[np.floating[Any]]
IndexArray = Array[np.integer[Any]]

CHUNK_BYTES = 12 << 20  # largest im2col / col2im buffer (stay well under glibc's 32 MiB mmap threshold)
CACHE_BYTES = 384 << 10  # one output block of the multiply-accumulate kernels (stays in L2)

Pads = Sequence[tuple[int, int]]
Padding = str | Pads  # 'same', 'valid', or (before, after) per spatial axis


def span(kernel: int, dilation: int) -> int:
    """Input elements one dilated kernel covers: its first and last taps are (kernel - 1) * dilation apart."""
    return (kernel - 1) * dilation + 1


def explicit_pads(padding: Padding, sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) per spatial axis. 'same' is TensorFlow's: ceil(N / S) windows, and just enough padding
    for the last of them to fit, the odd element at the end."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * len(sizes)
        if padding != "same":
            raise ValueError(f"padding must be 'same', 'valid' or (before, after) pairs; got {padding!r}")
        pads = []
        for n, k, s, d in zip(sizes, kernel, stride, dilation):
            windows = -(-n // s)
            total = max(0, (windows - 1) * s + span(k, d) - n)
            pads.append((total // 2, total - total // 2))
        return pads
    return [(int(before), int(after)) for before, after in padding]


def window_counts(lengths: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int]) -> tuple[int, ...]:
    """How many windows, `stride` apart, fit wholly inside arrays of these (padded) lengths."""
    counts = tuple((n - span(k, d)) // s + 1 for n, k, s, d in zip(lengths, kernel, stride, dilation))
    if min(counts, default=1) < 1:
        raise ValueError(f"the (dilated) kernel {tuple(kernel)} does not fit the padded input {tuple(lengths)}")
    return counts


def channels_last(x: Array[ScalarT]) -> Array[ScalarT]:
    """[N, C, *spatial] -> [N, *spatial, C] (a view)."""
    return np.moveaxis(x, 1, -1)


def channels_first(y: Array[ScalarT]) -> Array[ScalarT]:
    """[N, *spatial, C] -> [N, C, *spatial] (a view)."""
    return np.moveaxis(y, -1, 1)


def is_channels_last(xl: Array[Any]) -> bool:
    """Whether a logical [N, *spatial, C] array has its channels innermost in memory (ties count as yes)."""
    spatial = [abs(s) for s, n in zip(xl.strides[1:-1], xl.shape[1:-1]) if n > 1]
    return xl.shape[-1] == 1 or not spatial or abs(xl.strides[-1]) <= min(spatial)


def pad_spatial(xl: Array[ScalarT], pads: Pads, fill: float, contiguous: bool = True) -> Array[ScalarT]:
    """Pad the spatial axes of a channels-last [N, *spatial, C] array with `fill`; a negative pad crops.

    contiguous: return a C-contiguous channels-last array (a copy unless `xl` already is one and nothing is
    padded); otherwise keep `xl`'s memory order (channels-last or channels-first) and avoid copies.
    """
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(xl.shape[1:-1], pads))
    xl = xl[(slice(None), *crop)]
    pads = [(max(b, 0), max(a, 0)) for b, a in pads]
    if not any(b or a for b, a in pads):
        return np.ascontiguousarray(xl) if contiguous else xl
    n, *spatial, c = xl.shape
    padded = tuple(s + b + a for s, (b, a) in zip(spatial, pads))
    if contiguous or is_channels_last(xl):
        out = np.empty((n, *padded, c), xl.dtype)
    else:
        out = channels_last(np.empty((n, c, *padded), xl.dtype))
    every = [slice(None)] * out.ndim
    for axis, (size, (b, a)) in enumerate(zip(spatial, pads), start=1):
        for edge in (slice(0, b), slice(b + size, b + size + a)):
            if edge.stop > edge.start:
                index = list(every)
                index[axis] = edge
                out[tuple(index)] = fill
    copy_into(out[(slice(None), *(slice(b, b + s) for s, (b, _) in zip(spatial, pads)))], xl)
    return out


def copy_into(dst: Array[Any], src: Array[Any]) -> None:
    """dst[...] = src for logical channels-last arrays; a channels-first `src` going into channels-last memory is
    transposed in blocks of 32 channels x ~4096 positions (1.3-1.7x faster than one strided copy)."""
    if src.size < (1 << 20) or src.ndim < 3 or is_channels_last(src) or not is_channels_last(dst):
        dst[...] = src
        return
    batch, rows, *_, c = src.shape
    per = max(1, 4096 // max(1, prod(src.shape[2:-1])))
    for c0 in range(0, c, 32):
        for i in range(batch):
            for h0 in range(0, rows, per):
                dst[i, h0:h0 + per, ..., c0:c0 + 32] = src[i, h0:h0 + per, ..., c0:c0 + 32]


Block: TypeAlias = "tuple[slice[int, int, None], ...]"


def blocks(dims: Sequence[int], unit_bytes: int, budget: int) -> list[Block]:
    """Index tuples that cut an array whose leading axes are `dims` (batch, then spatial) into blocks of about
    `budget` bytes, `unit_bytes` per position.

    Each block is a run along one axis with single indices before it and whole axes after it, so it selects
    a C-contiguous part of a C-contiguous array: whole images when one fits, else rows of one image, else
    (3-D, or very wide rows) parts of one row.
    """
    dims = list(dims)
    if 0 in dims:
        return []
    steps = [prod(dims[i + 1:]) * unit_bytes for i in range(len(dims))]  # bytes per step along each axis
    axis = next((i for i, step in enumerate(steps) if step <= budget), len(dims) - 1)
    size = dims[axis]
    per = max(1, min(size, budget // max(steps[axis], 1)))
    per = -(-size // -(-size // per))  # even out the blocks
    return [tuple(slice(i, i + 1) for i in prefix) + (slice(a, min(size, a + per)),)
            for prefix in np.ndindex(*dims[:axis]) for a in range(0, size, per)]


def block_size(block: Block, dims: Sequence[int]) -> int:
    """Positions in one block (see `blocks`)."""
    return prod(b.stop - b.start for b in block) * prod(dims[len(block):])


def largest_block(plan: list[Block], dims: Sequence[int]) -> int:
    return max((block_size(block, dims) for block in plan), default=0)


def block_starts(block: Block, sizes: Sequence[int]) -> list[tuple[int, int]]:
    """(first index, count) along each spatial axis (`sizes`) for a block over (batch, *sizes)."""
    spans = []
    for axis, size in enumerate(sizes, start=1):
        spans.append((block[axis].start, block[axis].stop - block[axis].start) if axis < len(block) else (0, size))
    return spans


def windows(xp: Array[ScalarT], out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
            dilation: Sequence[int], groups: int = 0) -> Array[ScalarT]:
    """Read-only window view of a padded channels-last array: [N, *out, *kernel, C]
    (with groups: [N, *out, groups, *kernel, C/groups])."""
    sn, *ss, sc = xp.strides
    c = xp.shape[-1]
    shape = (xp.shape[0], *out, *kernel, c)
    strides = (sn, *(a * s for a, s in zip(ss, stride)), *(a * d for a, d in zip(ss, dilation)), sc)
    if groups:
        r = len(out)
        shape = (*shape[:1 + r], groups, *kernel, c // groups)
        strides = (*strides[:1 + r], sc * (c // groups), *strides[1 + r:])
    return as_strided(xp, shape, strides, writeable=False)


def view(a: Array[ScalarT], *shape: int) -> Array[ScalarT]:
    """`a` reshaped *without copying*: the kernels write through these views, so a silent copy would lose
    results (numpy >= 2.1 has a reshape keyword for this; this works from 1.26 on)."""
    result = a.reshape(shape)
    if result.size and not np.may_share_memory(result, a):
        raise AssertionError(f"reshape of a {a.shape} array with strides {a.strides} to {shape} would copy")
    return result


def units(a: Array[Any], width: int) -> Array[np.void]:
    """View runs of `width` elements along a contiguous last axis as single opaque items (the last axis shrinks
    by `width`): numpy then copies whole runs per element instead of looping over a few floats at a time."""
    return a.view(np.dtype((np.void, width * a.itemsize)))
