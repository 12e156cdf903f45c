"""Layers that join branches: element-wise add and multiply, and concatenation."""
from __future__ import annotations

from math import prod
from typing import Any, Literal

from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers.receptive_field import ReceptiveField, widest
from cnncalc.layers.base import Fields, Int, MultiInput, Shape, sample_axis
from cnncalc.units import shape_text


class ElementwiseMerge(MultiInput):
    type: Literal["add", "multiply"]

    category = "merge"
    shape_rule = "all inputs must have the same shape; output = that shape"
    flops_rule = "(inputs - 1) per output element"

    def output_shape(self, *xs: Shape) -> Shape:
        for x in xs[1:]:
            if x != xs[0]:
                shapes = ", ".join(shape_text((1, *s)) for s in xs)
                fix = ("Match them with a 1x1 convolution (channels) or a strided one/pooling (spatial size) on "
                       "one branch, as a residual shortcut does." if self.type == "add" else
                       "multiply does not broadcast: give both the same shape (to scale a map by per-channel "
                       "weights, upsample the [N, C, 1, 1] branch to the map's size first).")
                raise ShapeError(f"needs inputs of the same shape; got {shapes} from {', '.join(self.inputs)}",
                                 fix=fix)
        return xs[0]

    def extra_flops(self, *xs: Shape) -> int:
        return (len(xs) - 1) * prod(xs[0])

    def forward(self, weights: dict[str, Any], *xs: Any) -> Any:
        return (kernels.merge.add if self.type == "add" else kernels.merge.multiply)(xs)


class Concat(MultiInput):
    type: Literal["concat"]
    dim: Int = 1

    type_aliases = {"concatenate": "concat", "cat": "concat"}
    category = "merge"
    shape_rule = "inputs equal except along `dim` (default 1, channels); output sums that axis"
    flops_rule = "0"

    def output_shape(self, *xs: Shape) -> Shape:
        ranks = {len(x) for x in xs}
        axis = sample_axis(self.dim, xs[0])
        if len(ranks) == 1:
            others = {x[:axis] + x[axis + 1:] for x in xs}
            if len(others) == 1:
                return (*xs[0][:axis], sum(x[axis] for x in xs), *xs[0][axis + 1:])
        shapes = ", ".join(shape_text((1, *s)) for s in xs)
        raise ShapeError(f"needs inputs that differ only along dim {self.dim}; got {shapes} from "
                         f"{', '.join(self.inputs)}",
                         fix="Crop, pad or resample one branch so the other axes match.")

    def hyper(self) -> str:
        return f"dim={self.dim}"

    def receptive_field(self, fields: Fields, *xs: Shape) -> ReceptiveField | None:
        return widest(fields) if sample_axis(self.dim, xs[0]) == 0 else None

    def forward(self, weights: dict[str, Any], *xs: Any) -> Any:
        return kernels.merge.concat(xs, self.dim)
