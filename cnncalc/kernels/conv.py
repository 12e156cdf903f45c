"""Convolution and transposed convolution, 1-D to 3-D, as big matrix products (BLAS does the work).

Public layout is PyTorch's: x [N, C, *spatial], conv weight [out, in/groups, *kernel], transposed-conv weight
[in, out/groups, *kernel]. Internally everything runs channels-last ([N, *spatial, C]): the im2col rows are then
(kernel offset, channel) runs that copy fast, and the result is handed back as a channels-first *view* of the
channels-last buffer, so a following layer that goes channels-last again gets contiguous memory for free.

- dense (groups == 1): im2col through an `as_strided` window view, copied chunk by chunk (about CHUNK_ROWS
  GEMM rows, never above CHUNK_BYTES: buffers past glibc's 32 MiB mmap threshold come back zero-filled from
  the kernel on every call) into one reused buffer, one GEMM per chunk; short rows carry the bias into the
  GEMM. A 1x1 stride-1 convolution needs no im2col (and of channels-first input, no transposition either).
- depthwise (groups == C_in): one fused multiply-accumulate (`np.einsum`) over the kernel offsets (few
  channels at stride 1: a multiply and an add per offset over cache-sized blocks).
- other groups: the same im2col with a group axis and one batched `np.matmul` over it.
- transposed: one GEMM ([rows, C_in] x [C_in, kernel*C_out]), then col2im: accumulate each kernel offset into
  the output through strided slices, and crop the padding.

Arithmetic stays in the input's dtype (float32 in, float32 out).
"""
from __future__ import annotations

from math import prod
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnncalc.layers._window import effective_kernel, window_count

CHUNK_BYTES = 12 << 20  # largest im2col / col2im buffer (stay well under glibc's 32 MiB mmap threshold)
CHUNK_ROWS = 512  # GEMM rows per im2col chunk: the buffer is then refilled while still in L2
MIN_CHUNK_BYTES = 1 << 20
EINSUM_MIN_CHANNELS = 64  # depthwise: below this many channels (at stride 1) per-offset passes win
FOLD_BIAS_MAX = 1024  # fold the bias into the GEMM for rows up to this many values
CACHE_BYTES = 384 << 10  # one output block of the multiply-accumulate kernels (stays in L2)

Pads = Sequence[tuple[int, int]]


# ---- helpers shared with pool.py and resample.py ----------------------------------------------------------
def channels_last(x: np.ndarray) -> np.ndarray:
    """[N, C, *spatial] -> [N, *spatial, C] (a view)."""
    return np.moveaxis(x, 1, -1)


def channels_first(y: np.ndarray) -> np.ndarray:
    """[N, *spatial, C] -> [N, C, *spatial] (a view)."""
    return np.moveaxis(y, -1, 1)


def is_channels_last(xl: np.ndarray) -> bool:
    """Whether a logical [N, *spatial, C] array has its channels innermost in memory (ties count as yes)."""
    spatial = [abs(s) for s, n in zip(xl.strides[1:-1], xl.shape[1:-1]) if n > 1]
    return xl.shape[-1] == 1 or not spatial or abs(xl.strides[-1]) <= min(spatial)


def pad_spatial(xl: np.ndarray, pads: Pads, fill: float, contiguous: bool = True) -> np.ndarray:
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


def copy_into(dst: np.ndarray, src: np.ndarray) -> None:
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


Block = tuple[slice, ...]


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


def gemm_budget(row_bytes: int) -> int:
    """Bytes per im2col chunk: about CHUNK_ROWS GEMM rows, within [MIN_CHUNK_BYTES, CHUNK_BYTES]."""
    return max(min(CHUNK_ROWS * row_bytes, CHUNK_BYTES), min(MIN_CHUNK_BYTES, CHUNK_BYTES))


def trim_pads(sizes: Sequence[int], out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
              pads: Pads, dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) padding actually read by `out` windows: the after side shrinks (never below 0) when
    the last window ends early, and grows when a ceil_mode window runs past the padded end."""
    trimmed = []
    for n, o, k, s, (b, a), d in zip(sizes, out, kernel, stride, pads, dilation):
        need = (o - 1) * s + effective_kernel(k, d)
        trimmed.append((b, max(need - n - b, 0)))
    return trimmed


def windows(xp: np.ndarray, out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
            dilation: Sequence[int], groups: int = 0) -> np.ndarray:
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


def view(a: np.ndarray, *shape: int) -> np.ndarray:
    """`a` reshaped *without copying*: the kernels write through these views, so a silent copy would lose
    results (numpy >= 2.1 has a reshape keyword for this; this works from 1.26 on)."""
    result = a.reshape(shape)
    if result.size and not np.may_share_memory(result, a):
        raise AssertionError(f"reshape of a {a.shape} array with strides {a.strides} to {shape} would copy")
    return result


# ---- convolution ----------------------------------------------------------------------------------------------
def conv(x, weight, bias, stride, pads, dilation, groups):
    """PyTorch's convNd with (before, after) padding per spatial axis (may be asymmetric)."""
    x = np.asarray(x)
    dtype = x.dtype
    weight = np.asarray(weight, dtype=dtype)
    bias = None if bias is None else np.asarray(bias, dtype=dtype)
    sizes = x.shape[2:]
    kernel = weight.shape[2:]
    stride, dilation = tuple(stride), tuple(dilation)
    channels = x.shape[1]
    if channels != weight.shape[1] * groups:
        raise ValueError(f"x has {channels} channels; weight {weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups}")
    out = tuple(window_count(n, k, s, p, d) for n, k, s, p, d in zip(sizes, kernel, stride, pads, dilation))
    if min(out, default=1) < 1:
        raise ValueError(f"output would be {out}")
    if groups == 1 and _pointwise_channels_first(x, kernel, stride, pads):
        y = np.matmul(weight.reshape(weight.shape[0], channels), x.reshape(x.shape[0], channels, -1))
        y = y.reshape(x.shape[0], weight.shape[0], *sizes)
        if bias is not None:
            y += bias.reshape(-1, *(1,) * len(sizes))
        return y
    xp = pad_spatial(channels_last(x), trim_pads(sizes, out, kernel, stride, pads, dilation), 0)
    if groups == 1:
        y = _dense(xp, weight, bias, out, stride, dilation)
    elif groups == channels:
        y = _depthwise(xp, weight, bias, out, stride, dilation)
    else:
        y = _grouped(xp, weight, bias, out, stride, dilation, groups)
    return channels_first(y)


def _pointwise_channels_first(x, kernel, stride, pads) -> bool:
    """A 1x1, stride-1, unpadded convolution of channels-first memory: W @ x per image, no transposition."""
    return (set(kernel) == {1} and set(stride) == {1} and not any(b or a for b, a in pads)
            and x.flags.c_contiguous and not is_channels_last(channels_last(x)))


def _dense(xp, weight, bias, out, stride, dilation):
    batch, c = xp.shape[0], xp.shape[-1]
    out_ch, kernel = weight.shape[0], weight.shape[2:]
    wm = np.ascontiguousarray(np.moveaxis(weight, 1, -1)).reshape(out_ch, -1).T  # [kernel*C, out] (a view)
    k = wm.shape[0]
    y = np.empty((batch, *out, out_ch), xp.dtype)
    if set(kernel) == {1} and set(stride) == {1} and xp.shape[1:-1] == out:  # 1x1: no im2col at all
        np.matmul(xp.reshape(-1, c), wm, out=y.reshape(-1, out_ch))
        if bias is not None:
            y += bias
        return y
    win = windows(xp, out, kernel, stride, dilation)
    dims = (batch, *out)
    plan = blocks(dims, k * xp.itemsize, gemm_budget(k * xp.itemsize))
    most = largest_block(plan, dims)
    # For short rows the bias rides along in the GEMM (a column of ones times a row of biases), saving a
    # pass over the output; for long rows (K > FOLD_BIAS_MAX) the odd width slows the GEMM more than that.
    fold = bias is not None and k <= FOLD_BIAS_MAX
    buf = np.empty((most, k + fold), xp.dtype)
    if fold:
        buf[:, k] = 1
        wm = np.concatenate([wm, bias[None, :]])
    for block in plan:
        part = win[block]
        col = buf[:part.size // k]
        np.copyto(view(col[:, :k], *part.shape), part)
        target = view(y[block], -1, out_ch)
        np.matmul(col, wm, out=target)
        if bias is not None and not fold:
            target += bias
    return y


def _depthwise(xp, weight, bias, out, stride, dilation):
    """groups == C_in: out[..., c*m + j] = sum over offsets of x[..., c] * w[c*m + j, 0, offset].

    Usually one `np.einsum` over the window view: a single fused multiply-accumulate pass with the channels
    as the contiguous inner loop (about 1.5-2x faster than a multiply and an add per kernel offset). With few
    channels that inner loop is too short, and at stride 1 multiply-adds over whole (width x channel) rows win.
    """
    batch, c = xp.shape[0], xp.shape[-1]
    kernel = weight.shape[2:]
    r = len(kernel)
    mult = weight.shape[0] // c
    if mult == 1 and stride[-1] == 1 and c < EINSUM_MIN_CHANNELS:
        y = _depthwise_rows(xp, weight, out, stride, dilation)
    else:
        wk = np.ascontiguousarray(np.moveaxis(weight.reshape(c, mult, *kernel), (0, 1), (-2, -1)))  # [*k, C, m]
        win = windows(xp, out, kernel, stride, dilation)  # [N, *out, *kernel, C]
        outer, taps = "ABC"[:r], "ijk"[:r]
        subscripts = f"n{outer}{taps}c,{taps}c->n{outer}c"
        y = np.empty((batch, *out, c, mult), xp.dtype)
        for j in range(mult):
            np.einsum(subscripts, win, wk[..., j], out=y[..., j])
        y = y.reshape(batch, *out, c * mult)
    if bias is not None:
        y += bias
    return y


def _depthwise_rows(xp, weight, out, stride, dilation):
    """Depthwise at unit stride along the last axis, multiplier 1: per kernel offset a multiply and an add over
    cache-sized blocks, with the weights tiled along the last axis so each runs over whole (width x C) rows."""
    batch, c = xp.shape[0], xp.shape[-1]
    kernel = weight.shape[2:]
    wk = np.moveaxis(weight.reshape(c, -1), -1, 0)  # [offsets, C]
    wk = np.ascontiguousarray(np.broadcast_to(wk[:, None, :], (wk.shape[0], out[-1], c)))  # [offsets, width, C]
    y = np.empty((batch, *out, c), xp.dtype)
    win = windows(xp, out, kernel, stride, dilation)
    dims = (batch, *out)
    plan = blocks(dims, c * xp.itemsize, CACHE_BYTES)
    tmp = np.empty(largest_block(plan, dims) * c, xp.dtype)
    offsets = list(np.ndindex(*kernel))
    for block in plan:
        acc = y[block]
        part = win[block]
        t = tmp[:acc.size].reshape(acc.shape)
        wb = wk[:, block[-1]] if len(block) == 1 + len(out) else wk  # the block splits the width itself
        for i, offset in enumerate(offsets):
            src = part[(Ellipsis, *offset, slice(None))]
            if i == 0:
                np.multiply(src, wb[i], out=acc)
            else:
                np.multiply(src, wb[i], out=t)
                acc += t
    return y


def units(a: np.ndarray, width: int) -> np.ndarray:
    """View runs of `width` elements along a contiguous last axis as single opaque items (the last axis shrinks
    by `width`): numpy then copies whole runs per element instead of looping over a few floats at a time."""
    return a.view(np.dtype((np.void, width * a.itemsize)))


def _grouped(xp, weight, bias, out, stride, dilation, groups):
    """Any other groups: im2col with a group axis and one batched matmul over the groups.

    The im2col copy and the copy back move each group's channel run as one item (`units`), which is what
    makes small groups (ResNeXt's 4 channels) fast.
    """
    batch, c = xp.shape[0], xp.shape[-1]
    out_ch, kernel = weight.shape[0], weight.shape[2:]
    cg, og = c // groups, out_ch // groups
    wg = np.ascontiguousarray(np.moveaxis(weight.reshape(groups, og, cg, -1), 2, -1))
    wg = wg.reshape(groups, og, -1).transpose(0, 2, 1)  # [G, kernel*cg, og] (a view)
    k = wg.shape[1]
    y = np.empty((batch, *out, groups, og), xp.dtype)
    b = None if bias is None else bias.reshape(groups, og)
    win = windows(units(xp, cg), out, kernel, stride, dilation)  # [N, *out, *kernel, G] of cg-channel runs
    dims = (batch, *out)
    plan = blocks(dims, k * groups * xp.itemsize, gemm_budget(k * groups * xp.itemsize))
    most = largest_block(plan, dims)
    buf = np.empty(most * k * groups, xp.dtype)
    res = np.empty(most * og * groups, xp.dtype)
    for block in plan:
        part = np.moveaxis(win[block], -1, 0)  # [G, n, *out, *kernel]
        rows = part.size // (groups * prod(kernel))
        col = buf[:rows * k * groups]
        np.copyto(units(col, cg).reshape(part.shape), part)
        product = res[:groups * rows * og].reshape(groups, rows, og)
        np.matmul(col.reshape(groups, rows, k), wg, out=product)
        target = view(y[block], rows, groups, og)
        np.copyto(units(target, og)[..., 0], units(product, og)[..., 0].T)
        if b is not None:
            target += b
    return y.reshape(batch, *out, out_ch)


# ---- transposed convolution -----------------------------------------------------------------------------------
def conv_transpose(x, weight, bias, stride, padding, dilation, groups, output_padding):
    """PyTorch's conv_transposeNd: out = (N-1)S - 2P + D(F-1) + output_padding + 1 per axis."""
    x = np.asarray(x)
    dtype = x.dtype
    weight = np.asarray(weight, dtype=dtype)
    bias = None if bias is None else np.asarray(bias, dtype=dtype)
    batch, cin, *sizes = x.shape
    og, kernel = weight.shape[1], weight.shape[2:]
    if cin != weight.shape[0]:
        raise ValueError(f"x has {cin} channels; transposed-conv weight {weight.shape} expects {weight.shape[0]}")
    cg, cout = cin // groups, og * groups
    r = len(sizes)
    full = tuple((n - 1) * s + d * (k - 1) + 1 for n, s, d, k in zip(sizes, stride, dilation, kernel))
    out = tuple(f - 2 * p + op for f, p, op in zip(full, padding, output_padding))
    if min(out, default=1) < 1:
        raise ValueError(f"output would be {out}")
    alloc = tuple(max(f, p + o) for f, p, o in zip(full, padding, out))
    y = np.zeros((batch, *alloc, groups, og), dtype)
    taps = prod(kernel)
    wm = np.moveaxis(weight.reshape(groups, cg, og, *kernel), 2, -1).reshape(groups, cg, taps * og)
    wm = np.ascontiguousarray(wm)  # [G, cg, kernel*og]
    xl = channels_last(x)
    dims = (batch, *sizes)
    plan = blocks(dims, taps * cout * x.itemsize, CHUNK_BYTES)
    buf = np.empty(largest_block(plan, dims) * taps * cout, dtype)
    offsets = list(np.ndindex(*kernel))
    for block in plan:
        part = np.ascontiguousarray(xl[block])
        lead = part.shape[:-1]
        rows = part.size // cin
        if groups == 1:
            col = buf[:rows * taps * cout].reshape(rows, taps * cout)
            np.matmul(part.reshape(rows, cin), wm[0], out=col)
            colv = col.reshape(*lead, *kernel, 1, og)
        else:
            col = buf[:rows * taps * cout].reshape(groups, rows, taps * og)
            np.matmul(part.reshape(rows, groups, cg).transpose(1, 0, 2), wm, out=col)
            colv = np.moveaxis(col.reshape(groups, *lead, *kernel, og), 0, -2)  # [*lead, *kernel, G, og]
        spans = block_starts(block, sizes)
        for offset in offsets:
            index = [block[0]]
            for (first, count), i, s, d in zip(spans, offset, stride, dilation):
                start = first * s + i * d
                index.append(slice(start, start + (count - 1) * s + 1, s))
            y[tuple(index)] += colv[(slice(None),) * (1 + r) + offset]
    y = y.reshape(batch, *alloc, cout)
    y = y[(slice(None), *(slice(p, p + o) for p, o in zip(padding, out)))]
    if bias is not None:
        y += bias
    return channels_first(y)
