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
    """Element-wise sum or product, broadcasting as PyTorch does: on each axis the sizes are equal or 1, and a
    size-1 axis is repeated to the others' size (a [N, C, 1, 1] gate scales every position of a [N, C, H, W]
    map: squeeze-excitation). Every tensor of a network has the same batch N, so the batch axis always matches.

    Inputs of different ranks are refused: PyTorch aligns shapes from the last axis, so a lower-rank input's
    batch axis would meet a sample axis of the other ([N, C] * [N, C, H, W] lines N up with H) and the result
    would depend on the batch size."""

    type: Literal["add", "multiply"]

    category = "merge"
    shape_rule = ("inputs of one rank broadcast as in PyTorch (per axis equal sizes, or 1 to repeat); "
                  "output = the broadcast shape")
    flops_rule = "(inputs - 1) per output element"

    def output_shape(self, *xs: Shape) -> Shape:
        shapes = ", ".join(shape_text((1, *s)) for s in xs)
        sources = ", ".join(self.inputs)
        rank = max(len(x) for x in xs)
        if any(len(x) != rank for x in xs):
            low = next(x for x in xs if len(x) != rank)
            high = next(x for x in xs if len(x) == rank)
            padded = (*low, *(1,) * (rank - len(low)))
            raise ShapeError(
                f"needs inputs of one rank to broadcast; got {shapes} from {sources} (PyTorch would line the "
                f"batch axis of {shape_text((1, *low))} up with dim {rank - len(low)} of "
                f"{shape_text((1, *high))}, a result that depends on the batch size)",
                fix=f"Give {shape_text((1, *low))} trailing axes of size 1: a reshape to {shape_text(padded)} "
                    f"(or keepdims: true, if it is a global pooling's output) makes it "
                    f"{shape_text((1, *padded))}, which broadcasts.")
        out = []
        for axis, sizes in enumerate(zip(*xs), start=1):
            big = list(dict.fromkeys(n for n in sizes if n != 1))  # in input order
            if len(big) > 1:
                fix = ("Match them with a 1x1 convolution (channels) or a strided one/pooling (spatial size) on "
                       "one branch, as a residual shortcut does (an axis of size 1 would be repeated)."
                       if self.type == "add" else
                       "Give both the same size on that axis, or size 1 to repeat one over the other (global "
                       "pooling with keepdims: true gives a per-channel [N, C, 1, 1] gate).")
                raise ShapeError(
                    f"needs inputs that broadcast (on each axis equal sizes, or 1); got {shapes} from {sources}: "
                    f"dim {axis} has sizes {' and '.join(map(str, big))}", fix=fix)
            out.append(big[0] if big else 1)
        return tuple(out)

    def extra_flops(self, *xs: Shape) -> int:
        return (len(xs) - 1) * prod(self.output_shape(*xs))

    def explain(self, *xs: Shape) -> list[str]:
        out = shape_text((1, *self.output_shape(*xs)))
        if all(x == xs[0] for x in xs):
            return [f"{self.shape_rule}: {out}"]
        return [f"output = {' and '.join(shape_text((1, *x)) for x in xs)} broadcast (per axis equal sizes, or 1 "
                f"repeated) = {out}"]

    def receptive_field(self, fields: Fields, *xs: Shape) -> ReceptiveField | None:
        """Equal spatial sizes (channels may broadcast): the widest path, as for every merge. Along an axis where
        an input has size 1 and the output more, that input's one field is seen by every output position: it
        counts towards the size, but the positions are spaced (jump, start) as in the inputs that span the axis."""
        out = self.output_shape(*xs)
        if all(x[1:] == out[1:] for x in xs):
            return super().receptive_field(fields, *xs)
        if any(f is None or len(f.size) != len(out) - 1 for f in fields):
            return None
        known = [f for f in fields if f is not None]
        size, jump, start = [], [], []
        for axis, n in enumerate(out[1:]):
            spanning = [f for f, x in zip(known, xs) if x[axis + 1] == n]
            base = max(spanning, key=lambda f: f.size[axis])
            size.append(max(f.size[axis] for f in known))
            jump.append(base.jump[axis])
            start.append(base.start[axis])
        return ReceptiveField(tuple(size), tuple(jump), tuple(start))

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
