"""Convolution and transposed convolution, 1-D to 3-D: shape rule, weights, MACs, kernel."""
from __future__ import annotations

from math import prod
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers import window as W
from cnncalc.layers.advice import Advice, window_advice
from cnncalc.layers.receptive_field import (ReceptiveField, explain_receptive_field, transposed_receptive_field,
                                            window_receptive_field)
from cnncalc.layers.base import Fields, Flag, LayerBase, PadPairs, PerAxis, PerAxisPad, Pos, Shape, Weight, rank_of

LAYOUTS = {1: "[N, C, L]", 2: "[N, C, H, W]", 3: "[N, C, D, H, W]"}


class _ConvBase(LayerBase):
    out_channels: Pos
    kernel_size: PerAxis
    stride: PerAxis = Field(1, validate_default=True)  # the validator repeats a single number for every axis
    dilation: PerAxis = Field(1, validate_default=True)
    groups: Pos = 1
    bias: Flag = True
    in_channels: Pos | None = None
    # what the padding holds (nn.ConvNd's padding_mode): zeros, or the input reflected, replicated or wrapped
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"

    category = "conv"

    @field_validator("kernel_size", "stride", "dilation", mode="before")
    @classmethod
    def _per_axis(cls, value: Any, info: ValidationInfo) -> tuple[Any, ...]:
        return W.per_axis(value, rank_of(info))

    @property
    def rank(self) -> int:
        return int(self.type[-2])

    def _channels(self, shape: Shape) -> int:
        self.expect_rank(shape, (self.rank + 1,), LAYOUTS[self.rank])
        channels = shape[0]
        self.check_given("in_channels", self.in_channels, channels)
        for field, value in (("in_channels", channels), ("out_channels", self.out_channels)):
            if value % self.groups:
                raise ShapeError(f"{field}={value} is not divisible by groups={self.groups}", field="groups",
                                 fix="Choose groups that divides both the input and output channels.")
        return channels

    def _hyper(self, pads: str) -> str:
        text = f"k={W.axes_text(self.kernel_size)} s={W.axes_text(self.stride)} {pads}"
        if self.padding_mode != "zeros":
            text += f" {self.padding_mode}"
        if set(self.dilation) != {1}:
            text += f" d={W.axes_text(self.dilation)}"
        if self.groups != 1:
            text += f" g={self.groups}"
        return text


class Conv(_ConvBase):
    type: Literal["conv1d", "conv2d", "conv3d"]
    # the validator makes (before, after) pairs
    padding: Literal["same", "valid"] | PadPairs = Field(0, validate_default=True)

    type_aliases = {"convolution1d": "conv1d", "convolution2d": "conv2d", "convolution3d": "conv3d"}
    shape_rule = ("out = floor((N + P_before + P_after - D*(F-1) - 1) / S) + 1 per axis; "
                  "'same' = TensorFlow's: ceil(N/S), odd padding at the end")
    flops_rule = "2 x MACs + 1 per output element for the bias"

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, value: Any, info: ValidationInfo) -> Any:
        return W.normalize_padding(value, rank_of(info))

    def pads(self, spatial: Shape) -> W.PadPairs:
        return W.resolve_padding(self.padding, spatial, self.kernel_size, self.stride, self.dilation)

    def window(self, spatial: Shape) -> W.Window:
        return W.Window(self.kernel_size, self.stride, self.pads(spatial), self.dilation)

    def output_shape(self, x: Shape) -> Shape:
        self._channels(x)
        spatial = x[1:]
        self._check_padding_mode(spatial)
        return (self.out_channels, *W.sliding_output(spatial, *self.window(spatial)))

    def _check_padding_mode(self, spatial: Shape) -> None:
        """reflect needs each side's padding below the axis's size, circular at most the size (as F.pad)."""
        if self.padding_mode not in ("reflect", "circular"):
            return
        for axis, n, (before, after) in zip(W.SPATIAL_AXES[self.rank], spatial, self.pads(spatial)):
            if self.padding_mode == "reflect" and max(before, after) >= n:
                raise ShapeError(f"padding_mode 'reflect' pads {axis} by [{before}, {after}] but the input is only "
                                 f"{n} long there; each side must be smaller than the size", field="padding",
                                 fix=f"Pad at most {n - 1} per side on {axis}, or use padding_mode replicate.")
            if self.padding_mode == "circular" and max(before, after) > n:
                raise ShapeError(f"padding_mode 'circular' pads {axis} by [{before}, {after}] but the input is only "
                                 f"{n} long there: it would wrap around more than once", field="padding",
                                 fix=f"Pad at most {n} per side on {axis}.")

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        channels = self._channels(x)
        fan_in = channels // self.groups * prod(self.kernel_size)
        weights = {"weight": self.param((self.out_channels, channels // self.groups, *self.kernel_size), "uniform",
                                        fan_in)}
        if self.bias:
            weights["bias"] = self.param((self.out_channels,), "uniform", fan_in)
        return weights

    def macs(self, x: Shape) -> int:
        """output elements x (C_in / groups) x kernel elements."""
        out = self.output_shape(x)
        return prod(out) * (x[0] // self.groups) * prod(self.kernel_size)

    def extra_flops(self, x: Shape) -> int:
        return self.bias_flops(x)

    def bias_flops(self, x: Shape) -> int:
        return prod(self.output_shape(x)) if self.bias else 0

    def hyper(self) -> str:
        pads = self.padding if isinstance(self.padding, str) else W.pad_text(self.padding)
        return self._hyper(pads)

    def explain(self, x: Shape) -> list[str]:
        spatial, out = x[1:], self.output_shape(x)
        per_group = f"{x[0] // self.groups} * {' * '.join(map(str, self.kernel_size))}"
        return [*W.explain_window(spatial, *self.window(spatial), padding=self.padding),
                f"MACs = {' * '.join(map(str, out))} * ({per_group}) = {self.macs(x):,}"
                + ("  (output elements x C_in/groups x kernel)" if self.groups == 1 else
                   f"  (output elements x C_in/groups x kernel, groups={self.groups})")]

    def advice(self, x: Shape) -> list[Advice]:
        spatial = x[1:]
        out = window_advice(spatial, *self.window(spatial), same=self.padding == "same")
        if set(spatial) == {1} and max(self.kernel_size) > 1:
            out = [a for a in out if a.code != "kernel-larger-than-input"]
            out.append(Advice("collapsed-input", f"its input is already 1x1 spatially, so its "
                              f"{W.axes_text(self.kernel_size)} kernel sees only padding around one pixel",
                              "Use a 1x1 kernel (or a linear layer) here, or downsample less earlier.",
                              "kernel_size"))
        return out

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return window_receptive_field(fields[0], *self.window(x[1:]))

    def receptive_field_steps(self, before: ReceptiveField, x: Shape) -> list[str] | None:
        return explain_receptive_field(before, *self.window(x[1:]))

    def workspace_bytes(self, itemsize: int, output: Shape, x: Shape) -> int:
        """A padded channels-last copy of the input, two im2col chunks and a re-laid-out copy of the weight."""
        padded = x[0] * x[1] * prod(n + b + a for n, (b, a) in zip(x[2:], self.pads(x[2:])))
        weight = self.out_channels * (x[1] // self.groups) * prod(self.kernel_size) + self.out_channels
        chunk: int = kernels.layout.CHUNK_BYTES
        copies = 1 if self.padding_mode == "zeros" else 2  # another mode: the input padded first, then as zeros
        return (copies * padded + weight) * itemsize + 2 * chunk

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.conv.conv(x, weights["weight"], weights.get("bias"), self.stride, self.padding,
                                 self.dilation, self.groups, self.padding_mode)


class ConvTranspose(_ConvBase):
    type: Literal["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    padding: PerAxisPad = Field(0, validate_default=True)
    output_padding: PerAxisPad = Field(0, validate_default=True)

    type_aliases = {**{f"{spelling}{r}d{suffix}": f"conv_transpose{r}d" for r in (1, 2, 3)
                       for spelling, suffix in (("convtranspose", ""), ("conv", "transpose"))},
                    "deconv2d": "conv_transpose2d", "deconvolution2d": "conv_transpose2d"}
    shape_rule = "out = (N-1)*S - 2*P + D*(F-1) + output_padding + 1 per axis"
    flops_rule = "2 x MACs + 1 per output element for the bias"

    @field_validator("padding_mode")
    @classmethod
    def _zeros_only(cls, value: str) -> str:
        if value != "zeros":
            raise ValueError(f"transposed convolutions only pad with zeros (PyTorch's ConvTransposeNd supports "
                             f"padding_mode 'zeros' only); got '{value}'")
        return value

    @field_validator("padding", "output_padding", mode="before")
    @classmethod
    def _pads_per_axis(cls, value: Any, info: ValidationInfo) -> tuple[Any, ...]:
        return W.per_axis(value, rank_of(info))

    def output_shape(self, x: Shape) -> Shape:
        self._channels(x)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ShapeError(f"output_padding={op} must be smaller than stride ({s}) or dilation ({d})",
                                 field="output_padding", fix="Lower output_padding (as PyTorch requires).")
        return (self.out_channels, *W.transposed_output(x[1:], self.kernel_size, self.stride, self.padding,
                                                        self.dilation, self.output_padding))

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        channels = self._channels(x)
        fan_in = self.out_channels // self.groups * prod(self.kernel_size)  # PyTorch reads it off dim 1
        weights = {"weight": self.param((channels, self.out_channels // self.groups, *self.kernel_size), "uniform",
                                        fan_in)}
        if self.bias:
            weights["bias"] = self.param((self.out_channels,), "uniform", fan_in)
        return weights

    def macs(self, x: Shape) -> int:
        """*input* elements x (C_out / groups) x kernel elements: each input value is scattered once per tap."""
        return prod(x) * (self.out_channels // self.groups) * prod(self.kernel_size)

    def extra_flops(self, x: Shape) -> int:
        return self.bias_flops(x)

    def bias_flops(self, x: Shape) -> int:
        return prod(self.output_shape(x)) if self.bias else 0

    def hyper(self) -> str:
        text = self._hyper(f"p={W.axes_text(self.padding)}")
        if set(self.output_padding) != {0}:
            text += f" op={W.axes_text(self.output_padding)}"
        return text

    def explain(self, x: Shape) -> list[str]:
        lines = [f"{axis}_out = ({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {o}"
                 for axis, n, k, s, p, d, op, o in zip(W.SPATIAL_AXES[self.rank], x[1:], self.kernel_size, self.stride,
                                                       self.padding, self.dilation, self.output_padding,
                                                       self.output_shape(x)[1:])]
        per_group = f"{self.out_channels // self.groups} * {' * '.join(map(str, self.kernel_size))}"
        lines.append(f"MACs = {' * '.join(map(str, x))} * ({per_group}) = {self.macs(x):,}  (INPUT elements x "
                     "C_out/groups x kernel: each input value is scattered once per kernel tap)")
        return lines

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return transposed_receptive_field(fields[0], self.kernel_size, self.stride, self.padding, self.dilation)

    def workspace_bytes(self, itemsize: int, output: Shape, x: Shape) -> int:
        """The uncropped scatter buffer (the output is a view into it), chunk buffers and the weight's copy."""
        extent = prod((n - 1) * s + (k - 1) * d + 1 + op for n, k, s, d, op in
                      zip(x[2:], self.kernel_size, self.stride, self.dilation, self.output_padding))
        weight = x[1] * (self.out_channels // self.groups) * prod(self.kernel_size)
        chunk: int = kernels.layout.CHUNK_BYTES
        return (x[0] * self.out_channels * extent + weight) * itemsize + 2 * chunk

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.conv.conv_transpose(x, weights["weight"], weights.get("bias"), self.stride, self.padding,
                                           self.dilation, self.groups, self.output_padding)
