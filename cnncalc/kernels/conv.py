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

Output sizes come from the arrays: windows that fit the padded input (convolution), or the extent the scatter
writes plus output_padding, less the padding (transposed convolution).

Arithmetic stays in the input's dtype (float32 in, float32 out).
"""
from __future__ import annotations

from math import gcd, prod
from typing import Sequence, cast

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnncalc.kernels.reshape import PadMode, pad
from cnncalc.kernels.layout import (CACHE_BYTES, CHUNK_BYTES, FloatArray, Padding, block_starts, blocks,
                                    channels_first, channels_last, explicit_pads, is_channels_last, largest_block,
                                    pad_spatial, units, view, window_counts, windows)

CHUNK_ROWS = 512  # GEMM rows per im2col chunk: the buffer is then refilled while still in L2
MIN_CHUNK_BYTES = 1 << 20
EINSUM_MIN_CHANNELS = 64  # strided depthwise: from this many channels the per-pixel einsum wins
FOLD_BIAS_MAX = 1024  # fold the bias into the GEMM for rows up to this many values


def gemm_budget(row_bytes: int) -> int:
    """Bytes per im2col chunk: about CHUNK_ROWS GEMM rows, within [MIN_CHUNK_BYTES, CHUNK_BYTES]."""
    return max(min(CHUNK_ROWS * row_bytes, CHUNK_BYTES), min(MIN_CHUNK_BYTES, CHUNK_BYTES))


# ---- convolution ----------------------------------------------------------------------------------------------
def conv(x: FloatArray, weight: FloatArray, bias: FloatArray | None, stride: Sequence[int], padding: Padding,
         dilation: Sequence[int], groups: int, padding_mode: str = "zeros") -> FloatArray:
    """PyTorch's convNd; padding is 'same' (TensorFlow's rule), 'valid' or (before, after) per spatial axis.

    padding_mode (nn.ConvNd's): zeros, or reflect / replicate / circular, which pad the input that way first
    (F.pad) and then convolve it unpadded, as PyTorch does.
    """
    x = np.asarray(x)
    dtype = x.dtype
    weight = np.asarray(weight, dtype=dtype)
    bias = None if bias is None else np.asarray(bias, dtype=dtype)
    kernel = weight.shape[2:]
    stride, dilation = tuple(stride), tuple(dilation)
    if padding_mode != "zeros":
        if padding_mode not in ("reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be zeros, reflect, replicate or circular; got {padding_mode!r}")
        pads = explicit_pads(padding, x.shape[2:], kernel, stride, dilation)
        x = pad(x, pads, cast(PadMode, padding_mode))
        padding = "valid"
    sizes = x.shape[2:]
    channels = x.shape[1]
    if channels != weight.shape[1] * groups:
        raise ValueError(f"x has {channels} channels; weight {weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups}")
    pads = explicit_pads(padding, sizes, kernel, stride, dilation)
    if groups == 1 and _pointwise_channels_first(x, kernel, stride, pads):
        y: FloatArray = np.matmul(weight.reshape(weight.shape[0], channels), x.reshape(x.shape[0], channels, -1))
        y = y.reshape(x.shape[0], weight.shape[0], *sizes)
        if bias is not None:
            y += bias.reshape(-1, *(1,) * len(sizes))
        return y
    xp = pad_spatial(channels_last(x), pads, 0)
    out = window_counts(xp.shape[1:-1], kernel, stride, dilation)
    if groups == 1:
        y = _dense(xp, weight, bias, out, stride, dilation)
    elif groups == channels:
        y = _depthwise(xp, weight, bias, out, stride, dilation)
    else:
        y = _grouped(xp, weight, bias, out, stride, dilation, groups)
    return channels_first(y)


def _pointwise_channels_first(x: FloatArray, kernel: Sequence[int], stride: Sequence[int],
                              pads: Sequence[tuple[int, int]]) -> bool:
    """A 1x1, stride-1, unpadded convolution of channels-first memory: W @ x per image, no transposition."""
    return (set(kernel) == {1} and set(stride) == {1} and not any(b or a for b, a in pads)
            and x.flags.c_contiguous and not is_channels_last(channels_last(x)))


def _dense(xp: FloatArray, weight: FloatArray, bias: FloatArray | None, out: tuple[int, ...], stride: Sequence[int],
           dilation: Sequence[int]) -> FloatArray:
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
        assert bias is not None  # fold implies a bias
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


def _depthwise(xp: FloatArray, weight: FloatArray, bias: FloatArray | None, out: tuple[int, ...],
               stride: Sequence[int], dilation: Sequence[int]) -> FloatArray:
    """groups == C_in: out[..., c*m + j] = sum over offsets of x[..., c] * w[c*m + j, 0, offset].

    One fused multiply-accumulate (`np.einsum`) whose inner loop runs along whole output rows of (width x
    channel) values, against weight rows tiled along the width: at unit stride along the last axis, tap j of
    every output pixel starts j * dilation pixels further along the same input row, so each tap is one
    contiguous run. At a larger stride the row is first split into phases (`_phases`) to make it so again;
    with many channels the per-pixel einsum (inner loop over the channels) needs no such copy and wins, and
    it also takes inputs too large to copy (the phase copy stays within the workspace's CHUNK_BYTES).
    """
    c = xp.shape[-1]
    kernel = weight.shape[2:]
    mult = weight.shape[0] // c
    wk = np.ascontiguousarray(np.moveaxis(weight.reshape(c, mult, *kernel), (0, 1), (-2, -1)))  # [*kernel, C, m]
    if stride[-1] > 1 and (c >= EINSUM_MIN_CHANNELS or xp.nbytes > CHUNK_BYTES):  # no phase copy
        r = len(kernel)
        win = windows(xp, out, kernel, stride, dilation)  # [N, *out, *kernel, C]
        outer, taps = "ABC"[:r], "ijk"[:r]
        y = np.empty((xp.shape[0], *out, c, mult), xp.dtype)
        for j in range(mult):
            np.einsum(f"n{outer}{taps}c,{taps}c->n{outer}c", win, wk[..., j], out=y[..., j])
    else:
        y = _depthwise_rows(xp, wk, out, stride, dilation)
    y = y.reshape(*y.shape[:-2], c * mult)
    if bias is not None:
        y += bias
    return y


def _depthwise_rows(xp: FloatArray, wk: FloatArray, out: tuple[int, ...], stride: Sequence[int],
                    dilation: Sequence[int]) -> FloatArray:
    """The depthwise sum as one einsum per multiplier over whole rows: [N, *out, C, m]."""
    batch, c = xp.shape[0], xp.shape[-1]
    kernel, mult, r = wk.shape[:-2], wk.shape[-1], len(out)
    ph, slots, step = _phases(xp, out[-1], kernel[-1], stride[-1], dilation[-1])
    sn, *rows, sp, su, sc = ph.strides
    width = out[-1]
    taps = (*kernel[:-1], ph.shape[-3], max(slots[1]) + 1)  # row offsets, phases, slots
    cols = max(1, min(width, CACHE_BYTES // (prod(taps) * c * xp.itemsize)))  # tiled weights stay in cache
    win = as_strided(ph, (batch, *out[:-1], *taps, width * c),
                     (sn, *(a * s for a, s in zip(rows, stride)), *(a * d for a, d in zip(rows, dilation)),
                      sp, step * su, sc), writeable=False)
    outer, offsets = "ABC"[:r - 1], "ijk"[:r - 1]
    subscripts = f"n{outer}{offsets}poq,{offsets}poq->n{outer}q"
    y = np.empty((batch, *out, c, mult), xp.dtype)
    tiled = np.zeros((*taps, cols, c), xp.dtype)
    for j in range(mult):
        for tap, (phase, slot) in enumerate(zip(*slots)):
            tiled[..., phase, slot, :, :] = wk[..., tap, None, :, j]
        wt = tiled.reshape(*taps, cols * c)
        yj = view(y[..., j], batch, *out[:-1], width * c)
        for w0 in range(0, width, cols):
            q = slice(w0 * c, min(width, w0 + cols) * c)
            np.einsum(subscripts, win[..., q], wt[..., :q.stop - q.start], out=yj[..., q])
    return y


def _phases(xp: FloatArray, width: int, k: int, s: int, d: int
            ) -> tuple[FloatArray, tuple[list[int], list[int]], int]:
    """The padded input with its last spatial axis split by stride `s`: [N, *rows, phases, slots, C], where
    phase p, slot u holds pixel s*u + p, so output pixel w's tap j (pixel s*w + j*d) is slot w + j*d // s of
    phase j*d % s and the taps of all output pixels of a row are one contiguous run per (phase, slot).

    Returns it (a view when s == 1), each tap's (phase index, slot index) and the slot step between indices.
    """
    offsets = [j * d for j in range(k)]
    used = sorted({e % s for e in offsets})
    step = gcd(*(e // s for e in offsets)) or 1
    slots = ([used.index(e % s) for e in offsets], [e // s // step for e in offsets])
    if s == 1:
        return xp[..., None, :, :], slots, step
    n = width + offsets[-1] // s  # slots any output pixel reads
    ph = np.empty((*xp.shape[:-2], len(used), n, xp.shape[-1]), xp.dtype)
    for i, p in enumerate(used):
        src = xp[..., p::s, :][..., :n, :]
        ph[..., i, :src.shape[-2], :] = src
        ph[..., i, src.shape[-2]:, :] = 0  # read only under zero weights, but must not be NaN
    return ph, slots, step


def _grouped(xp: FloatArray, weight: FloatArray, bias: FloatArray | None, out: tuple[int, ...],
             stride: Sequence[int], dilation: Sequence[int], groups: int) -> FloatArray:
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
def conv_transpose(x: FloatArray, weight: FloatArray, bias: FloatArray | None, stride: Sequence[int],
                   padding: Sequence[int], dilation: Sequence[int], groups: int,
                   output_padding: Sequence[int]) -> FloatArray:
    """PyTorch's conv_transposeNd: scatter every input element through the kernel, then crop `padding` from
    both ends of each spatial axis."""
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
    # the last input element's last tap lands at (n-1)*S + (k-1)*D; output_padding adds elements past that
    extent = tuple((n - 1) * s + (k - 1) * d + 1 + op
                   for n, s, d, k, op in zip(sizes, stride, dilation, kernel, output_padding))
    if any(e - 2 * p < 1 for e, p in zip(extent, padding)):
        raise ValueError(f"padding {tuple(padding)} crops away the whole output of extent {extent}")
    y = np.zeros((batch, *extent, groups, og), dtype)
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
            col: FloatArray = buf[:rows * taps * cout].reshape(rows, taps * cout)
            np.matmul(part.reshape(rows, cin), wm[0], out=col)
            colv = col.reshape(*lead, *kernel, 1, og)
        else:
            col = buf[:rows * taps * cout].reshape(groups, rows, taps * og)
            np.matmul(part.reshape(rows, groups, cg).transpose(1, 0, 2), wm, out=col)
            colv = np.moveaxis(col.reshape(groups, *lead, *kernel, og), 0, -2)  # [*lead, *kernel, G, og]
        spans = block_starts(block, sizes)
        for offset in offsets:
            index: list[slice[int, int, int | None]] = [block[0]]
            for (first, count), i, s, d in zip(spans, offset, stride, dilation):
                start = first * s + i * d
                index.append(slice(start, start + (count - 1) * s + 1, s))
            y[tuple(index)] += colv[(slice(None),) * (1 + r) + offset]
    y = y.reshape(batch, *extent, cout)
    y = y[(slice(None), *(slice(p, e - p) for p, e in zip(padding, extent)))]
    if bias is not None:
        y += bias
    return channels_first(y)
