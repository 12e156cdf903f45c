"""Layers that rearrange values without weights or arithmetic, as PyTorch defines them: permute, transpose,
channel_shuffle, slice, pixel_shuffle and pixel_unshuffle.

All of them only move (or select) values: no parameters, no MACs and no FLOPs. Dims are PyTorch's, counting
the batch axis as 0 (negatives from the end); no layer may move, swap or slice the batch axis.

Receptive fields. The field of a layer's output describes its spatial axes, shape[1:] of a [C, *spatial]
sample, so:
- channel_shuffle, and a slice of the channels, keep their input's field;
- a slice of a spatial axis keeps every `step`-th position from `start` on: the jump grows `step` times and
  the first output looks `start` positions further;
- permute and transpose carry the field along when they only reorder spatial axes; once the channel axis
  moves (ConvNeXt's channels-last [N, H, W, C]) there is no [C, *spatial] layout left, and the field is
  unknown (None) from there on, as after a flatten;
- pixel_unshuffle moves exactly the pixels of a stride-r, kernel-r convolution into one position, and
  pixel_shuffle those of a stride-r, kernel-r transposed convolution: their fields are those windows'.
"""
from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import field_validator

from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers import window as W
from cnncalc.layers.base import Fields, Int, LayerBase, Pos, Shape, sample_axis
from cnncalc.layers.receptive_field import ReceptiveField, transposed_receptive_field, window_receptive_field
from cnncalc.units import shape_text

MOVES_ONLY = "0: data movement only"


def _moved_field(rf: ReceptiveField | None, order: Sequence[int], x: Shape) -> ReceptiveField | None:
    """The field after the sample axes are reordered: output axis i is input axis order[i] (0 = channels).
    Spatial axes reordered among themselves take their fields along; a moved channel axis leaves none."""
    if rf is None or order[0] != 0 or len(rf.size) != len(x) - 1:
        return None
    spatial = [axis - 1 for axis in order[1:]]
    return ReceptiveField(tuple(rf.size[a] for a in spatial), tuple(rf.jump[a] for a in spatial),
                          tuple(rf.start[a] for a in spatial))


def _moved_steps(order: Sequence[int]) -> list[str] | None:
    """Why `cnncalc explain` shows no field past a layer that moved the channel axis (None: the usual lines)."""
    if order[0] == 0:
        return None
    return ["receptive field: no longer defined past this layer (the channel axis moved: no [C, *spatial] "
            "layout is left to describe)"]


def _axis_name(axis: int, x: Shape) -> str:
    """'C', 'H', 'W', ... for a sample axis of a [C, *spatial] input (`axis` 0 = channels), else 'dim i'."""
    names = ("C", *W.SPATIAL_AXES[len(x) - 1]) if len(x) - 1 in W.SPATIAL_AXES else ()
    return names[axis] if names else f"dim {axis + 1}"


class Permute(LayerBase):
    """torch.permute / torchvision's Permute: dims names every axis, the batch axis (0) first."""

    type: Literal["permute"]
    dims: tuple[Int, ...]  # one entry per axis, batch included; negatives count from the end

    category = "other"
    shape_rule = "the input's axes in the order dims gives (every axis, the batch axis 0 first)"
    flops_rule = MOVES_ONLY

    @field_validator("dims")
    @classmethod
    def _permutation(cls, dims: tuple[int, ...]) -> tuple[int, ...]:
        ndim = len(dims)
        if ndim < 2:
            raise ValueError(f"needs one entry per axis, the batch axis included (at least 2); got {list(dims)}")
        if sorted(dims) == list(range(1, ndim + 1)):
            raise ValueError(f"names every axis, the batch axis 0 first, as torch.permute; got {list(dims)}, "
                             f"which looks like Keras's Permute (no batch axis, counted from 1): write "
                             f"{[0, *dims]}")
        if any(not -ndim <= d < ndim for d in dims) or len({d % ndim for d in dims}) != ndim:
            raise ValueError(f"must be a permutation of 0..{ndim - 1} (each axis once; negatives count from the "
                             f"end); got {list(dims)}")
        if dims[0] % ndim != 0:
            raise ValueError(f"must keep the batch axis first (dims[0] = 0, as torch.permute counts it; cnncalc "
                             f"layers never mix samples); got {list(dims)}")
        return dims

    def order(self, x: Shape) -> list[int]:
        """The sample axis (0 = channels) each output sample axis comes from."""
        ndim = len(x) + 1
        if len(self.dims) != ndim:
            raise ShapeError(f"dims {list(self.dims)} has {len(self.dims)} entries but its input "
                             f"{shape_text((1, *x))} has {ndim} dims", field="dims",
                             fix=f"Give one entry per axis, the batch axis first: {list(range(ndim))} keeps the order.")
        return [d % ndim - 1 for d in self.dims[1:]]

    def output_shape(self, x: Shape) -> Shape:
        return tuple(x[a] for a in self.order(x))

    def explain(self, x: Shape) -> list[str]:
        out = self.output_shape(x)
        return [f"output = input axes {list(self.dims)} of {shape_text((1, *x))} = {shape_text((1, *out))}"]

    def hyper(self) -> str:
        return "dims=" + ",".join(map(str, self.dims))

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return _moved_field(fields[0], self.order(x), x)

    def receptive_field_steps(self, before: ReceptiveField, x: Shape) -> list[str] | None:
        return _moved_steps(self.order(x))

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.rearrange.permute(x, self.dims)


class Transpose(LayerBase):
    """torch.transpose: two axes swap; neither may be the batch axis."""

    type: Literal["transpose"]
    dim0: Int
    dim1: Int

    type_aliases = {"swapaxes": "transpose", "swapdims": "transpose"}
    category = "other"
    shape_rule = "axes dim0 and dim1 swap (PyTorch dims, batch = 0, which stays)"
    flops_rule = MOVES_ONLY

    def order(self, x: Shape) -> list[int]:
        a, b = sample_axis(self.dim0, x, "dim0"), sample_axis(self.dim1, x, "dim1")
        order = list(range(len(x)))
        order[a], order[b] = b, a
        return order

    def output_shape(self, x: Shape) -> Shape:
        return tuple(x[a] for a in self.order(x))

    def explain(self, x: Shape) -> list[str]:
        a, b = sample_axis(self.dim0, x, "dim0"), sample_axis(self.dim1, x, "dim1")
        return [f"dims {self.dim0} and {self.dim1} ({_axis_name(a, x)} and {_axis_name(b, x)}) swap: "
                f"{shape_text((1, *x))} -> {shape_text((1, *self.output_shape(x)))}"]

    def hyper(self) -> str:
        return f"dims={self.dim0},{self.dim1}"

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return _moved_field(fields[0], self.order(x), x)

    def receptive_field_steps(self, before: ReceptiveField, x: Shape) -> list[str] | None:
        return _moved_steps(self.order(x))

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.rearrange.transpose(x, self.dim0, self.dim1)


class ChannelShuffle(LayerBase):
    """nn.ChannelShuffle (ShuffleNet): the channels, as `groups` blocks of C/groups, are interleaved."""

    type: Literal["channel_shuffle"]
    groups: Pos

    category = "other"
    temporaries = 1  # a channels-last input is gathered into channels-first order first
    shape_rule = "output = input; channels viewed as (groups, C/groups), transposed to (C/groups, groups)"
    flops_rule = MOVES_ONLY

    def output_shape(self, x: Shape) -> Shape:
        if len(x) < 2:
            raise ShapeError(f"expects an input [N, C, *spatial] with at least one spatial axis; got "
                             f"{shape_text((1, *x))}", fix="Shuffle the channels before the flatten or pooling "
                             "that removed the spatial axes (PyTorch refuses a [N, C] input too).")
        if x[0] % self.groups:
            raise ShapeError(f"{x[0]} channels are not divisible by groups={self.groups}", field="groups",
                             fix="Use a groups that divides the channels (ShuffleNet uses the groups of the "
                                 "grouped convolution before it, ShuffleNetV2 uses 2).")
        return x

    def explain(self, x: Shape) -> list[str]:
        self.output_shape(x)
        g, per = self.groups, x[0] // self.groups
        return [f"channels [{g}, {x[0]} / {g}] = [{g}, {per}] -> [{per}, {g}]: output channel i * {g} + j is "
                f"input channel j * {per} + i; shape {shape_text((1, *x))}"]

    def hyper(self) -> str:
        return f"g={self.groups}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.rearrange.channel_shuffle(x, self.groups)


class Slice(LayerBase):
    """Slicing along one dim as Python and PyTorch slice a tensor: from start to end (exclusive) by step,
    negatives from the end, clamped to the axis. Two slices of one input make x.chunk(2, dim=1) (ShuffleNetV2's
    channel split)."""

    type: Literal["slice"]
    dim: Int = 1
    start: Int = 0
    end: Int | None = None  # exclusive; None: to the end
    step: Pos = 1

    category = "other"
    shape_rule = ("along dim: the positions from start to end (exclusive) by step, as Python slices "
                  "(negatives from the end, clamped to the axis)")
    flops_rule = MOVES_ONLY

    def text(self) -> str:
        end = "" if self.end is None else str(self.end)
        return f"{self.start}:{end}" + ("" if self.step == 1 else f":{self.step}")

    def kept(self, x: Shape) -> tuple[int, range]:
        """The sample axis sliced, and the positions along it that are kept (a range: no size is enumerated)."""
        axis = sample_axis(self.dim, x)
        kept = range(x[axis])[self.start:self.end:self.step]
        if not kept:
            raise ShapeError(f"slice [{self.text()}] of dim {self.dim} (size {x[axis]}) of {shape_text((1, *x))} "
                             "is empty", field="end" if self.end is not None else "start",
                             fix="PyTorch would return an empty tensor, which no later layer can use: choose a "
                                 f"start before the end, within 0..{x[axis] - 1} (negatives count from the end).")
        return axis, kept

    def output_shape(self, x: Shape) -> Shape:
        axis, kept = self.kept(x)
        return (*x[:axis], len(kept), *x[axis + 1:])

    def explain(self, x: Shape) -> list[str]:
        axis, kept = self.kept(x)
        where = f"position {kept[0]}" if len(kept) == 1 else \
            f"positions {kept[0]} to {kept[-1]}" + ("" if kept.step == 1 else f", step {kept.step}")
        return [f"{_axis_name(axis, x)} = len(range({x[axis]})[{self.text()}]) = {len(kept)} ({where}): "
                f"{shape_text((1, *self.output_shape(x)))}"]

    def hyper(self) -> str:
        return f"dim={self.dim} [{self.text()}]"

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        axis, kept = self.kept(x)
        rf = fields[0]
        if rf is None or axis == 0:
            return rf  # the channels: every position keeps its own field
        if len(rf.size) != len(x) - 1:
            return None
        a = axis - 1
        jump, start = list(rf.jump), list(rf.start)
        start[a] += kept.start * jump[a]
        jump[a] *= kept.step
        return ReceptiveField(rf.size, tuple(jump), tuple(start))

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.rearrange.slice_axis(x, self.dim, self.start, self.end, self.step)


class PixelShuffle(LayerBase):
    """nn.PixelShuffle (ESPCN's sub-pixel convolution): r^2 channels become an r x r block of pixels."""

    type: Literal["pixel_shuffle"]
    upscale_factor: Pos

    category = "other"
    temporaries = 1  # a channels-last input is gathered into channels-first order first
    shape_rule = "[C * r^2, H, W] -> [C, H * r, W * r] (r = upscale_factor)"
    flops_rule = MOVES_ONLY

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (3,), "[N, C, H, W]")
        r = self.upscale_factor
        if x[0] % (r * r):
            raise ShapeError(f"{x[0]} channels are not divisible by upscale_factor^2 = {r}^2 = {r * r}",
                             field="upscale_factor",
                             fix=f"Give it a multiple of {r * r} channels (the convolution before it has "
                                 f"out_channels = C_out * {r * r} in ESPCN).")
        return (x[0] // (r * r), x[1] * r, x[2] * r)

    def explain(self, x: Shape) -> list[str]:
        r, out = self.upscale_factor, self.output_shape(x)
        return [f"C = {x[0]} / {r}^2 = {out[0]}, H = {x[1]} * {r} = {out[1]}, W = {x[2]} * {r} = {out[2]}"]

    def hyper(self) -> str:
        return f"r={self.upscale_factor}"

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        r = self.upscale_factor
        return transposed_receptive_field(fields[0], (r, r), (r, r), (0, 0), (1, 1))

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.rearrange.pixel_shuffle(x, self.upscale_factor)


class PixelUnshuffle(LayerBase):
    """nn.PixelUnshuffle (space-to-depth): each r x r block of pixels becomes r^2 channels."""

    type: Literal["pixel_unshuffle"]
    downscale_factor: Pos

    category = "other"
    temporaries = 1  # a channels-last input is gathered into channels-first order first
    shape_rule = "[C, H * r, W * r] -> [C * r^2, H, W] (r = downscale_factor; H and W divisible by r)"
    flops_rule = MOVES_ONLY

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (3,), "[N, C, H, W]")
        r = self.downscale_factor
        if x[1] % r or x[2] % r:
            raise ShapeError(f"its input's H={x[1]} and W={x[2]} must both be divisible by downscale_factor={r}",
                             field="downscale_factor",
                             fix=f"Crop or pad the input to a multiple of {r}, or use a factor that divides both.")
        return (x[0] * r * r, x[1] // r, x[2] // r)

    def explain(self, x: Shape) -> list[str]:
        r, out = self.downscale_factor, self.output_shape(x)
        return [f"C = {x[0]} * {r}^2 = {out[0]}, H = {x[1]} / {r} = {out[1]}, W = {x[2]} / {r} = {out[2]}"]

    def hyper(self) -> str:
        return f"r={self.downscale_factor}"

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        r = self.downscale_factor
        return window_receptive_field(fields[0], (r, r), (r, r), ((0, 0), (0, 0)), (1, 1))

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.rearrange.pixel_unshuffle(x, self.downscale_factor)
