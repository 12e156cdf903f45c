"""A learned tensor multiplying its input: ConvNeXt's layer scale (`x * self.layer_scale`).

Its one parameter is a bare nn.Parameter of the enclosing module, so its state_dict key is the layer's own
name (`features.1.0.layer_scale`), which the weight key OWN_NAME says.
"""
from __future__ import annotations

from math import prod
from typing import Annotated, Any, Literal

from pydantic import Field

from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers.base import OWN_NAME, LayerBase, Pos, Real, Shape, Weight
from cnncalc.units import shape_text

# the parameter's axes (no batch axis): as many as the input's sample axes or fewer (at most 4, as any input)
ScaleShape = Annotated[tuple[Pos, ...], Field(min_length=1, max_length=4)]


class Scale(LayerBase):
    type: Literal["scale"]
    shape: ScaleShape  # e.g. [C, 1, 1] against [N, C, H, W] (ConvNeXt), or [C] against [N, L, C]
    init: Real = 1.0   # every element starts as this (ConvNeXt: layer_scale = 1e-6)

    type_aliases = {"layerscale": "scale"}
    category = "other"
    shape_rule = ("output = broadcast(input, shape): shape lines up with the input's trailing axes, as PyTorch "
                  "broadcasting; each of its sizes equals the input's or one of the two is 1")
    flops_rule = "1 per output element (the multiply)"

    def output_shape(self, x: Shape) -> Shape:
        shape = self.shape
        if len(shape) > len(x):
            raise ShapeError(f"has a parameter of shape {list(shape)} ({len(shape)} axes), more axes than a "
                             f"sample of its input {shape_text((1, *x))} has ({len(x)}); its first axis would meet "
                             "the batch", field="shape",
                             fix=f"Give at most {len(x)} sizes, without the batch axis (drop leading 1s).")
        lead = len(x) - len(shape)
        out = list(x)
        for i, (a, b) in enumerate(zip(x[lead:], shape), start=lead):
            if a != b and 1 not in (a, b):
                raise ShapeError(f"cannot broadcast its parameter {list(shape)} against its input "
                                 f"{shape_text((1, *x))}: input axis {i + 1} has {a}, the parameter {b}",
                                 field="shape",
                                 fix=f"Make the parameter's size there {a} or 1 (e.g. [C, 1, 1] for [N, C, H, W]).")
            out[i] = max(a, b)
        return tuple(out)

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        self.output_shape(x)
        return {OWN_NAME: self.param(self.shape, "constant", value=self.init)}

    def extra_flops(self, x: Shape) -> int:
        return prod(self.output_shape(x))

    def hyper(self) -> str:
        return f"{shape_text(self.shape)} init={self.init:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.scale.scale(x, weights[OWN_NAME])
