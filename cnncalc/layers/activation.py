"""Element-wise activations, softmax and dropout (identity at inference)."""
from __future__ import annotations

from math import prod
from typing import Any, ClassVar, Literal

from cnncalc import kernels
from cnncalc.layers.receptive_field import ReceptiveField
from cnncalc.layers.base import Fields, Int, LayerBase, Probability, Real, Shape, sample_axis


class _Elementwise(LayerBase):
    category = "activation"
    flops_per_element: ClassVar[int] = 1
    flops_rule = "1 per element"

    def output_shape(self, x: Shape) -> Shape:
        return x

    def extra_flops(self, x: Shape) -> int:
        return self.flops_per_element * prod(x)


class Activation(_Elementwise):
    type: Literal["relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid"]

    temporaries = 3  # sigmoid splits by sign: a mask, a gathered half and its exponential

    type_aliases = {"swish": "silu"}
    shape_rule = "output = input"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.ELEMENTWISE[self.type](x)


class LeakyReLU(_Elementwise):
    type: Literal["leaky_relu"]
    negative_slope: Real = 0.01

    temporaries = 2

    shape_rule = "output = input"

    def hyper(self) -> str:
        return f"slope={self.negative_slope:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.leaky_relu(x, self.negative_slope)


class ELU(_Elementwise):
    type: Literal["elu"]
    alpha: Real = 1.0

    temporaries = 3

    shape_rule = "output = input"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.elu(x, self.alpha)


class GELU(_Elementwise):
    type: Literal["gelu"]
    approximate: Literal["none", "tanh"] = "none"

    temporaries = 5  # erf's polynomial terms

    shape_rule = "output = input"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.gelu(x, self.approximate)


class Softmax(_Elementwise):
    type: Literal["softmax", "log_softmax"]
    dim: Int = 1

    flops_per_element = 3
    temporaries = 2  # the shifted input and its exponential
    shape_rule = "output = input"
    flops_rule = "3 per element (exp, sum, divide)"

    def output_shape(self, x: Shape) -> Shape:
        sample_axis(self.dim, x)
        return x

    def hyper(self) -> str:
        return f"dim={self.dim}"

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return fields[0] if sample_axis(self.dim, x) == 0 else None  # over channels it stays local

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.softmax(x, self.dim, log=self.type == "log_softmax")


class Dropout(LayerBase):
    type: Literal["dropout", "dropout1d", "dropout2d", "dropout3d"]
    p: Probability = 0.5

    type_aliases = {"spatialdropout1d": "dropout1d", "spatialdropout2d": "dropout2d", "spatialdropout3d": "dropout3d"}
    category = "other"
    shape_rule = "output = input (identity at inference)"
    flops_rule = "0"

    def output_shape(self, x: Shape) -> Shape:
        return x

    def hyper(self) -> str:
        return f"p={self.p:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return x
