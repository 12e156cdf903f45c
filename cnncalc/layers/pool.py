"""Pooling: max/min/average windows, adaptive and global pooling."""
from __future__ import annotations

from fractions import Fraction
from math import gcd, prod
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers import window as W
from cnncalc.layers.advice import Advice, window_advice
from cnncalc.layers.receptive_field import ReceptiveField, explain_receptive_field, window_receptive_field
from cnncalc.layers.base import Fields, Flag, LayerBase, PadPairs, PerAxis, Pos, Shape, rank_of
from cnncalc.layers.conv import LAYOUTS


class _WindowPool(LayerBase):
    kernel_size: PerAxis
    stride: PerAxis = Field(None, validate_default=True)  # default: kernel_size, as PyTorch
    # the validator makes (before, after) pairs
    padding: Literal["same", "valid"] | PadPairs = Field(0, validate_default=True)
    ceil_mode: Flag = False

    category = "pool"
    flops_rule = "1 per window element per output element"

    @field_validator("kernel_size", mode="before")
    @classmethod
    def _kernel(cls, value: Any, info: ValidationInfo) -> tuple[Any, ...]:
        return W.per_axis(value, rank_of(info))

    @field_validator("stride", mode="before")
    @classmethod
    def _stride(cls, value: Any, info: ValidationInfo) -> tuple[Any, ...]:
        if value is None:
            return info.data.get("kernel_size") or W.per_axis(1, rank_of(info))
        return W.per_axis(value, rank_of(info))

    @field_validator("padding", mode="before")
    @classmethod
    def _padding(cls, value: Any, info: ValidationInfo) -> Any:
        return W.normalize_padding(value, rank_of(info))

    @property
    def rank(self) -> int:
        return int(self.type[-2])

    @property
    def window_dilation(self) -> tuple[int, ...]:
        return (1,) * self.rank

    @property
    def explicit_padding(self) -> bool:
        """Padding PyTorch's pooling cannot express ('same', or different before and after) is applied first,
        then the padded array is pooled (ceil_mode still keeps no window that starts in the end padding)."""
        return self.padding == "same" or (not isinstance(self.padding, str) and
                                          any(b != a for b, a in self.padding))

    def pads(self, spatial: Shape) -> W.PadPairs:
        pads = W.resolve_padding(self.padding, spatial, self.kernel_size, self.stride, self.window_dilation)
        if not isinstance(self.padding, str):  # PyTorch's limit, kept for pairs it cannot express too
            for (before, after), k in zip(pads, self.kernel_size):
                if max(before, after) > k // 2:
                    raise ShapeError(f"padding {max(before, after)} is more than half the kernel size {k}",
                                     field="padding",
                                     fix=f"Use padding <= {k // 2} (PyTorch refuses more), or 'same'.")
        return pads

    def window(self, spatial: Shape) -> W.Window:
        return W.Window(self.kernel_size, self.stride, self.pads(spatial), self.window_dilation)

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (self.rank + 1,), LAYOUTS[self.rank])
        return (x[0], *W.sliding_output(x[1:], *self.window(x[1:]), self.ceil_mode))

    def extra_flops(self, x: Shape) -> int:
        return prod(self.output_shape(x)) * prod(self.kernel_size)

    def hyper(self) -> str:
        pads = self.padding if isinstance(self.padding, str) else W.pad_text(self.padding)
        text = f"k={W.axes_text(self.kernel_size)} s={W.axes_text(self.stride)} {pads}"
        if set(self.window_dilation) != {1}:
            text += f" d={W.axes_text(self.window_dilation)}"
        return text + (" ceil" if self.ceil_mode else "")

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return window_receptive_field(fields[0], *self.window(x[1:]))

    def receptive_field_steps(self, before: ReceptiveField, x: Shape) -> list[str] | None:
        return explain_receptive_field(before, *self.window(x[1:]))

    def workspace_bytes(self, itemsize: int, output: Shape, x: Shape) -> int:
        """A padded copy of the input (extended by stride - 1 for ceil_mode) and, for averages, a divisor."""
        extra = tuple(s - 1 for s in self.stride) if self.ceil_mode else (0,) * self.rank
        padded = x[0] * x[1] * prod(n + b + a + e for n, (b, a), e in zip(x[2:], self.pads(x[2:]), extra))
        return (padded + prod(output)) * itemsize

    def explain(self, x: Shape) -> list[str]:
        return W.explain_window(x[1:], *self.window(x[1:]), self.ceil_mode, self.padding)

    def advice(self, x: Shape) -> list[Advice]:
        return window_advice(x[1:], *self.window(x[1:]), self.ceil_mode, same=self.padding == "same")


class MaxPool(_WindowPool):
    type: Literal["maxpool1d", "maxpool2d", "maxpool3d", "minpool2d"]
    dilation: PerAxis = Field(1, validate_default=True)

    type_aliases = {"maxpooling1d": "maxpool1d", "maxpooling2d": "maxpool2d", "maxpooling3d": "maxpool3d"}
    shape_rule = "as conv: floor (or ceil_mode) ((N + 2P - D*(K-1) - 1) / S) + 1; stride defaults to kernel"

    @field_validator("dilation", mode="before")
    @classmethod
    def _dilation(cls, value: Any, info: ValidationInfo) -> tuple[Any, ...]:
        return W.per_axis(value, rank_of(info))

    @property
    def window_dilation(self) -> tuple[int, ...]:
        return self.dilation

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        sign = -1 if self.type == "minpool2d" else 1
        pooled = kernels.pool.max_pool(sign * x if sign < 0 else x, self.kernel_size, self.stride, self.padding,
                                       self.dilation, self.ceil_mode)
        return -pooled if sign < 0 else pooled


class AvgPool(_WindowPool):
    type: Literal["avgpool1d", "avgpool2d", "avgpool3d"]
    # PyTorch's default is true; with padding 'same' (a Keras/TensorFlow spelling) the default follows
    # TensorFlow, which divides by the pixels inside the input only
    count_include_pad: Flag | None = None

    @property
    def includes_padding(self) -> bool:
        return self.padding != "same" if self.count_include_pad is None else self.count_include_pad

    type_aliases = {"averagepooling1d": "avgpool1d", "averagepooling2d": "avgpool2d", "averagepooling3d": "avgpool3d"}
    shape_rule = "floor (or ceil_mode) ((N + 2P - K) / S) + 1; stride defaults to kernel"

    def output_shape(self, x: Shape) -> Shape:
        if self.rank == 3:
            # PyTorch's avg_pool3d compares the kernel with the input before its own padding; padding it
            # cannot express is applied first, so then the padded input counts
            pads = self.pads(x[1:]) if self.explicit_padding else ((0, 0),) * 3
            for axis, n, k, (b, a) in zip(W.SPATIAL_AXES[3], x[1:], self.kernel_size, pads):
                if n + b + a < k:
                    raise ShapeError(f"input {axis}={n + b + a} is smaller than kernel_size {k}; PyTorch's "
                                     "avg_pool3d refuses that even when its padding would make room",
                                     field="kernel_size", fix="Use a kernel no larger than the input on every axis.")
        return super().output_shape(x)

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.pool.avg_pool(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                     self.includes_padding)


def window_total(n: int, out: int) -> int:
    """The summed lengths of the `out` adaptive windows over `n`: window i spans floor(i*n/out) ..
    ceil((i+1)*n/out), so they add up to n, plus one for each window boundary falling inside an element:
    n + out - gcd(n, out)."""
    return n + out - gcd(n, out)


def widest_window(n: int, out: int) -> int:
    """The longest adaptive window. With n = q*out + r, window i spans q + ceil((t_i + r) / out) elements,
    t_i = i*r mod out, which takes every multiple of g = gcd(r, out) below out; so q + 2 when r > g (some
    t_i + r exceeds out), q + 1 when 0 < r <= g, and q when out divides n."""
    q, r = divmod(n, out)
    return q if r == 0 else q + 1 if r <= gcd(r, out) else q + 2


class AdaptivePool(LayerBase):
    type: Literal["adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_avgpool3d",
                  "adaptive_maxpool1d", "adaptive_maxpool2d", "adaptive_maxpool3d"]
    output_size: tuple[Pos | None, ...]  # None keeps that axis

    category = "pool"
    temporaries = 2  # a gather of the widest windows per axis, and the reduction of the previous axis
    shape_rule = "out = output_size (None keeps that axis); window i spans floor(i*N/out) .. ceil((i+1)*N/out)"
    flops_rule = "1 per window element per output element"

    @field_validator("output_size", mode="before")
    @classmethod
    def _output_size(cls, value: Any, info: ValidationInfo) -> tuple[Any, ...]:
        sizes = W.per_axis(value, rank_of(info))
        if rank_of(info) == 1 and None in sizes:  # PyTorch takes None ("keep this axis") in 2-D and 3-D only
            raise ValueError("a 1-D adaptive pool needs a size (null keeps an axis only in 2-D and 3-D)")
        return sizes

    @property
    def rank(self) -> int:
        return int(self.type[-2])

    def sizes(self, spatial: Shape) -> tuple[int, ...]:
        return tuple(n if out is None else out for n, out in zip(spatial, self.output_size))

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (self.rank + 1,), LAYOUTS[self.rank])
        return (x[0], *self.sizes(x[1:]))

    def extra_flops(self, x: Shape) -> int:
        total = x[0]
        for n, out in zip(x[1:], self.sizes(x[1:])):
            total *= window_total(n, out)
        return total

    def hyper(self) -> str:
        return "out=" + "x".join("-" if s is None else str(s) for s in self.output_size)

    def explain(self, x: Shape) -> list[str]:
        lines = []
        for axis, n, out in zip(W.SPATIAL_AXES[self.rank], x[1:], self.sizes(x[1:])):
            windows = [f"[{i * n // out}, {-(-(i + 1) * n // out)})" for i in range(min(out, 4))]
            more = ", ..." if out > 4 else ""
            lines.append(f"{axis}_out = {out}; window i spans floor(i*{n}/{out}) .. ceil((i+1)*{n}/{out}): "
                         f"{', '.join(windows)}{more}")
        return lines

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        """Windows vary in size: the field is the widest window's, the jump N/out on average."""
        rf = fields[0]
        if rf is None:
            return None
        size, jump, start = [], [], []
        for r, j, s0, n, out in zip(rf.size, rf.jump, rf.start, x[1:], self.sizes(x[1:])):
            size.append(r + (widest_window(n, out) - 1) * j)
            jump.append(j * Fraction(n, out))
            start.append(s0 + Fraction(-(-n // out) - 1, 2) * j)  # window 0 spans 0 .. ceil(n / out)
        return ReceptiveField(tuple(size), tuple(jump), tuple(start))

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.pool.adaptive_pool(x, self.output_size, "max" if "max" in self.type else "avg")


class GlobalPool(LayerBase):
    type: Literal["global_avgpool", "global_maxpool"]
    keepdims: Flag = False

    type_aliases = {f"global{keras}pooling{r}d": f"global_{ours}pool" for r in (1, 2, 3)
                    for keras, ours in (("average", "avg"), ("max", "max"))}
    category = "pool"
    temporaries = 2
    shape_rule = "[N, C, *spatial] -> [N, C] (keepdims: [N, C, 1, ...])"
    flops_rule = "1 per input element"

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (2, 3, 4), "[N, C, *spatial] with 1 to 3 spatial axes")
        return (x[0], *(1,) * (len(x) - 1)) if self.keepdims else (x[0],)

    def extra_flops(self, x: Shape) -> int:
        return prod(x)

    def hyper(self) -> str:
        return "keepdims" if self.keepdims else ""

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        """With keepdims the one output position sees the whole input; without, no spatial axis is left."""
        rf = fields[0]
        if rf is None or not self.keepdims:
            return None
        return ReceptiveField(tuple(r + (n - 1) * j for r, j, n in zip(rf.size, rf.jump, x[1:])),
                              tuple(j * n for j, n in zip(rf.jump, x[1:])),
                              tuple(s + Fraction(n - 1, 2) * j for s, j, n in zip(rf.start, rf.jump, x[1:])))

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.pool.global_pool(x, "max" if self.type == "global_maxpool" else "avg", self.keepdims)
