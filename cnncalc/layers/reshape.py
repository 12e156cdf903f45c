"""Layers that move or resize data without weights: flatten, reshape, identity, padding (zero and any mode),
cropping, upsampling."""
from __future__ import annotations

from fractions import Fraction
from math import floor, prod
from typing import Annotated, Any, Literal, cast

from pydantic import Field, Strict, field_validator, model_validator

from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers import window as W
from cnncalc.layers.receptive_field import ReceptiveField
from cnncalc.layers.base import (Fields, Flag, Int, LayerBase, MultiInput, NonNeg, Pos, PosReal, Real, Shape,
                                 sample_axis)
from cnncalc.units import shape_text
from cnncalc.limits import MAX_INT


class Flatten(LayerBase):
    type: Literal["flatten"]
    start_dim: Int = 1
    end_dim: Int = -1

    category = "other"
    shape_rule = "axes start_dim..end_dim (PyTorch dims, batch = 0) become one"
    flops_rule = "0"

    def output_shape(self, x: Shape) -> Shape:
        start = sample_axis(self.start_dim, x, "start_dim")
        end = sample_axis(self.end_dim, x, "end_dim")
        if start > end:
            raise ShapeError(f"start_dim={self.start_dim} comes after end_dim={self.end_dim} for an input "
                             f"{shape_text((1, *x))}", field="start_dim", fix="Swap them.")
        return (*x[:start], prod(x[start:end + 1]), *x[end + 1:])

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return fields[0] if self.output_shape(x) == x else None

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.reshape.flatten(x, self.start_dim, self.end_dim)


class Reshape(LayerBase):
    type: Literal["reshape"]
    shape: tuple[Annotated[int, Strict(), Field(ge=-1, le=MAX_INT)], ...]  # no batch axis; one -1 is inferred

    category = "other"
    shape_rule = "output = shape (batch axis kept; one -1 inferred)"
    flops_rule = "0"

    @field_validator("shape")
    @classmethod
    def _one_unknown(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if shape.count(-1) > 1:
            raise ValueError(f"only one -1 is allowed; got {list(shape)}")
        if 0 in shape:
            raise ValueError(f"sizes must be positive (or one -1); got {list(shape)}")
        return shape

    def output_shape(self, x: Shape) -> Shape:
        total, known = prod(x), prod(d for d in self.shape if d != -1)
        if -1 in self.shape and total % known == 0:
            return tuple(total // known if d == -1 else d for d in self.shape)
        if total == known and -1 not in self.shape:
            return self.shape
        raise ShapeError(f"cannot reshape {shape_text((1, *x))} ({total} values per sample) to "
                         f"{shape_text((1, *self.shape))}", field="shape",
                         fix="Make the sizes multiply to the input's size, or use one -1.")

    def hyper(self) -> str:
        return shape_text(self.shape)

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return fields[0] if self.output_shape(x) == x else None

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.reshape.reshape(x, self.shape)


class Identity(LayerBase):
    type: Literal["identity"]

    category = "other"
    shape_rule = "output = input"
    flops_rule = "0"

    def output_shape(self, x: Shape) -> Shape:
        return x

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return x


class ZeroPad2d(LayerBase):
    type: Literal["zeropad2d"]
    # an int, PyTorch's (left, right, top, bottom), or [[top, bottom], [left, right]] per axis; the validator
    # makes ((top, bottom), (left, right)) of each (`pairs`)
    padding: NonNeg | tuple[NonNeg | tuple[NonNeg, ...], ...]

    type_aliases = {"zeropadding2d": "zeropad2d"}
    category = "other"
    shape_rule = "H + top + bottom, W + left + right"
    flops_rule = "0"

    @field_validator("padding")
    @classmethod
    def _pairs(cls, value: int | tuple[int | tuple[int, ...], ...]) -> W.PadPairs:
        if isinstance(value, tuple) and len(value) == 4:
            ints = [v for v in value if isinstance(v, int)]
            if len(ints) == 4:
                left, right, top, bottom = ints
                return ((top, bottom), (left, right))
        return W.pad_pairs(value, 2)

    @property
    def pairs(self) -> W.PadPairs:
        """`padding`, validated: ((top, bottom), (left, right)) whichever way it was written."""
        return cast(W.PadPairs, self.padding)

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (3,), "[N, C, H, W]")
        (top, bottom), (left, right) = self.pairs
        return (x[0], x[1] + top + bottom, x[2] + left + right)

    def hyper(self) -> str:
        return W.pad_text(self.pairs)

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        if fields[0] is None:
            return None
        return fields[0].shifted([-before for before, _ in self.pairs])

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.reshape.zero_pad(x, self.pairs)


class Pad(LayerBase):
    """F.pad over the spatial axes: constant (`value`; a negative amount crops, as F.pad), reflect, replicate or
    circular (nn.ReflectionPad*, ReplicationPad*, CircularPad*)."""

    type: Literal["pad"]
    # an int for every side of every spatial axis, or one entry (int or [before, after]) per axis, first first
    padding: Int | tuple[Int | tuple[Int, ...], ...]
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: Real = 0.0

    category = "other"
    shape_rule = ("N + before + after per spatial axis; reflect: each < N, circular: each <= N; "
                  "negative (cropping, at most N in all) only in constant mode")
    flops_rule = "0"

    @model_validator(mode="after")
    def _value_is_constant_only(self) -> "Pad":
        if self.value != 0 and self.mode != "constant":
            raise ValueError(f"value={self.value} only applies to mode 'constant' (as F.pad); got mode "
                             f"'{self.mode}'")
        return self

    def pairs(self, x: Shape) -> W.PadPairs:
        """(before, after) per spatial axis of an input of this shape."""
        try:
            return W.pad_pairs(self.padding, len(x) - 1)
        except ValueError as err:
            raise ShapeError(str(err), field="padding") from None

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (2, 3, 4), "[N, C, *spatial]")
        pairs = self.pairs(x)
        out = []
        for axis, n, (before, after) in zip(W.SPATIAL_AXES[len(x) - 1], x[1:], pairs):
            if self.mode != "constant" and min(before, after) < 0:
                raise ShapeError(f"{self.mode} padding on {axis} is [{before}, {after}]; only constant padding "
                                 "may be negative (crop)", field="padding",
                                 fix="Use non-negative amounts, or crop first with a `crop` layer.")
            if self.mode == "reflect" and max(before, after) >= n:
                raise ShapeError(f"reflect padding on {axis} is [{before}, {after}] but the input is only {n} "
                                 "long there; each side must be smaller than the size", field="padding",
                                 fix=f"Pad at most {n - 1} per side on {axis}, or use mode replicate.")
            if self.mode == "circular" and max(before, after) > n:
                raise ShapeError(f"circular padding on {axis} is [{before}, {after}] but the input is only {n} "
                                 "long there: it would wrap around more than once", field="padding",
                                 fix=f"Pad at most {n} per side on {axis}.")
            kept = n + min(before, 0) + min(after, 0)  # F.pad crops the negative amounts first, then pads
            if kept < 0:
                raise ShapeError(f"padding [{before}, {after}] crops {-min(before, 0) - min(after, 0)} from {axis}="
                                 f"{n}, more than it has (F.pad crops before it pads)", field="padding",
                                 fix="Crop at most the axis's size.")
            size = n + before + after
            if size < 1:
                raise ShapeError(f"padding [{before}, {after}] leaves nothing of {axis}={n} "
                                 f"({n} + {before} + {after} = {size})", field="padding", fix="Crop less.")
            out.append(size)
        return (x[0], *out)

    def hyper(self) -> str:
        entries = self.padding if isinstance(self.padding, int) else \
            [list(e) if isinstance(e, tuple) else e for e in self.padding]
        text = f"p={entries}"
        if self.mode != "constant":
            return f"{text} {self.mode}"
        return text + (f" value={self.value:g}" if self.value else "")

    def explain(self, x: Shape) -> list[str]:
        out = self.output_shape(x)
        return [f"{axis}_out = {n} + {before} + {after} = {o}  ({self.mode})"
                for axis, n, (before, after), o in zip(W.SPATIAL_AXES[len(x) - 1], x[1:], self.pairs(x), out[1:])]

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        """As zero padding (and cropping, for negative amounts): the grid shifts by `before`; reflected,
        replicated or wrapped border values are not followed back to the input positions they copy."""
        if fields[0] is None:
            return None
        return fields[0].shifted([-before for before, _ in self.pairs(x)])

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.reshape.pad(x, W.pad_pairs(self.padding, x.ndim - 2), self.mode, self.value)


class Crop(MultiInput):
    """Keras Cropping: remove [before, after] per spatial axis; or, with two inputs, centre-crop the
    first to the spatial size of the second (U-Net skip connections)."""

    type: Literal["crop"]
    cropping: NonNeg | tuple[NonNeg | tuple[NonNeg, ...], ...] | None = None

    type_aliases = {"cropping1d": "crop", "cropping2d": "crop", "cropping3d": "crop", "centercrop": "crop"}
    arity = (1, 2)
    category = "other"
    shape_rule = "N - before - after per spatial axis; with two inputs the second's spatial size"
    flops_rule = "0"

    def crops(self, *xs: Shape) -> W.PadPairs:
        x = xs[0]
        spatial = x[1:]
        if len(xs) == 2:
            if self.cropping is not None:
                raise ShapeError("has both `cropping` and a second input", field="cropping",
                                 fix="Use one: `cropping` for fixed amounts, two inputs for a centre crop.")
            target = xs[1][1:]
            if len(target) != len(spatial) or any(t > n for t, n in zip(target, spatial)):
                raise ShapeError(f"cannot centre-crop {shape_text((1, *x))} to the spatial size of "
                                 f"{shape_text((1, *xs[1]))}", fix="The second input must be spatially smaller "
                                 "and have as many spatial axes.")
            return tuple(((n - t) // 2, n - t - (n - t) // 2) for n, t in zip(spatial, target))
        if self.cropping is None:
            raise ShapeError("needs `cropping` or a second input", field="cropping",
                             fix="Give cropping: [[top, bottom], [left, right]], or inputs: [big, small].")
        try:
            return W.pad_pairs(self.cropping, len(spatial))
        except ValueError as err:
            raise ShapeError(str(err), field="cropping") from None

    def output_shape(self, *xs: Shape) -> Shape:
        self.expect_rank(xs[0], (2, 3, 4), "[N, C, *spatial]")
        crops = self.crops(*xs)
        out = tuple(n - b - a for n, (b, a) in zip(xs[0][1:], crops))
        if min(out) < 1:
            raise ShapeError(f"cropping {[list(c) for c in crops]} leaves nothing of {shape_text((1, *xs[0]))}",
                             field="cropping", fix="Crop less.")
        return (xs[0][0], *out)

    def hyper(self) -> str:
        return "" if self.cropping is None else f"crop={self.cropping}"

    def receptive_field(self, fields: Fields, *xs: Shape) -> ReceptiveField | None:
        if fields[0] is None:
            return None
        return fields[0].shifted([before for before, _ in self.crops(*xs)])

    def forward(self, weights: dict[str, Any], *xs: Any) -> Any:
        if len(xs) == 2:
            return kernels.reshape.centre_crop(xs[0], xs[1])
        return kernels.reshape.crop(xs[0], W.normalize_padding(self.cropping, xs[0].ndim - 2))


class Upsample(LayerBase):
    type: Literal["upsample"]
    scale_factor: PosReal | tuple[PosReal, ...] | None = None
    size: Pos | tuple[Pos, ...] | None = None
    mode: Literal["nearest", "linear", "bilinear", "trilinear"] = "nearest"
    align_corners: Flag | None = None

    category = "other"
    shape_rule = "out = size, or floor(N * scale_factor) per spatial axis"
    flops_rule = "nearest: 0; linear modes: 2^r multiplies + 2^r - 1 adds per output element (r axes)"

    @model_validator(mode="after")
    def _one_of(self) -> "Upsample":
        if (self.scale_factor is None) == (self.size is None):
            raise ValueError("give exactly one of scale_factor and size")
        if self.align_corners is not None and self.mode == "nearest":
            raise ValueError("align_corners only applies to the linear modes (as in PyTorch)")
        return self

    def sizes(self, spatial: Shape) -> tuple[int, ...]:
        rank = len(spatial)
        try:
            if self.size is not None:
                return W.per_axis(self.size, rank)
            scales = self._scale_factors(rank)
            if len(scales) != rank:
                raise ValueError(f"needs 1 or {rank} values (one per spatial axis); got {list(scales)}")
        except ValueError as err:
            raise ShapeError(str(err), field="size" if self.size is not None else "scale_factor") from None
        return tuple(floor(n * s) for n, s in zip(spatial, scales))

    def _scale_factors(self, rank: int) -> tuple[float, ...]:
        """`scale_factor` per axis: one number for all `rank` axes, or as given (none with `size`)."""
        if self.scale_factor is None:
            return ()
        return (self.scale_factor,) * rank if isinstance(self.scale_factor, float) else self.scale_factor

    def scales(self, rank: int) -> tuple[float | None, ...]:
        """The scale PyTorch uses to map output to input coordinates (None: derive from the sizes)."""
        if self.scale_factor is None:
            return (None,) * rank
        return self._scale_factors(rank)

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (2, 3, 4), "[N, C, *spatial]")
        needed = {"linear": 2, "bilinear": 3, "trilinear": 4}.get(self.mode)
        if needed is not None and len(x) != needed:
            raise ShapeError(f"mode '{self.mode}' needs {needed - 1} spatial axes; got {shape_text((1, *x))}",
                             field="mode", fix="Use linear (1-D), bilinear (2-D), trilinear (3-D) or nearest.")
        out = self.sizes(x[1:])
        if min(out) < 1:
            raise ShapeError(f"output would be {list(out)}", field="scale_factor", fix="Use a larger scale.")
        return (x[0], *out)

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        """Outputs are 1/scale input steps apart; nearest copies one input, linear modes blend two."""
        rf = fields[0]
        if rf is None:
            return None
        scales = [Fraction(s).limit_denominator(1000) if s is not None else Fraction(o, n)
                  for s, n, o in zip(self.scales(len(x) - 1), x[1:], self.sizes(x[1:]))]
        blend = 0 if self.mode == "nearest" else 1
        return ReceptiveField(tuple(r + blend * j for r, j in zip(rf.size, rf.jump)),
                              tuple(j / s for j, s in zip(rf.jump, scales)),
                              tuple(s0 + Fraction(blend, 2) * j for s0, j in zip(rf.start, rf.jump)))

    def extra_flops(self, x: Shape) -> int:
        if self.mode == "nearest":
            return 0
        corners: int = 2 ** (len(x) - 1)
        return (2 * corners - 1) * prod(self.output_shape(x))

    def hyper(self) -> str:
        how = f"x{self.scale_factor}" if self.scale_factor is not None else f"size={self.size}"
        return f"{how} {self.mode}" + (" align" if self.align_corners else "")

    def workspace_bytes(self, itemsize: int, output: Shape, x: Shape) -> int:
        """Axis by axis, the linear modes hold two gathered copies (and the previous axis's result)."""
        return 3 * prod(output) * itemsize

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.resample.upsample(x, self.size, self.scale_factor, self.mode, bool(self.align_corners))
