"""Element-wise activations, softmax and dropout (identity at inference)."""
from __future__ import annotations

from math import prod
from typing import Any, ClassVar, Literal

from pydantic import ValidationInfo, field_validator

from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers.receptive_field import ReceptiveField
from cnncalc.layers.base import Fields, Int, LayerBase, Pos, Probability, Real, Shape, Weight, sample_axis
from cnncalc.units import shape_text


class _Elementwise(LayerBase):
    category = "activation"
    flops_per_element: ClassVar[int] = 1
    shape_rule = "output = input"
    flops_rule = "1 per element"

    def output_shape(self, x: Shape) -> Shape:
        return x

    def extra_flops(self, x: Shape) -> int:
        return self.flops_per_element * prod(x)


class Activation(_Elementwise):
    type: Literal["relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid"]

    temporaries = 3  # sigmoid splits by sign: a mask, a gathered half and its exponential

    type_aliases = {"swish": "silu"}

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.ELEMENTWISE[self.type](x)


class LeakyReLU(_Elementwise):
    type: Literal["leaky_relu"]
    negative_slope: Real = 0.01

    temporaries = 2

    def hyper(self) -> str:
        return f"slope={self.negative_slope:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.leaky_relu(x, self.negative_slope)


class ELU(_Elementwise):
    type: Literal["elu"]
    alpha: Real = 1.0

    temporaries = 3

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.elu(x, self.alpha)


class GELU(_Elementwise):
    type: Literal["gelu"]
    approximate: Literal["none", "tanh"] = "none"

    temporaries = 5  # erf's polynomial terms

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.gelu(x, self.approximate)


class Softmax(_Elementwise):
    type: Literal["softmax", "log_softmax"]
    dim: Int = 1

    flops_per_element = 3
    temporaries = 2  # the shifted input and its exponential
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


class IdentityAtInference(LayerBase):
    """A layer that acts only while training (dropout, stochastic depth): at inference its output is its input."""

    category = "other"
    shape_rule = "output = input (identity at inference)"
    flops_rule = "0"

    def output_shape(self, x: Shape) -> Shape:
        return x

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return x


class Dropout(IdentityAtInference):
    type: Literal["dropout", "dropout1d", "dropout2d", "dropout3d"]
    p: Probability = 0.5

    type_aliases = {"spatialdropout1d": "dropout1d", "spatialdropout2d": "dropout2d", "spatialdropout3d": "dropout3d"}

    def hyper(self) -> str:
        return f"p={self.p:g}"


class PReLU(_Elementwise):
    """nn.PReLU: a learned slope for the negative side, shared (num_parameters=1) or one per channel (dim 1)."""

    type: Literal["prelu"]
    num_parameters: Pos = 1
    init: Real = 0.25

    temporaries = 2  # the sloped copy and the sign mask

    shape_rule = "output = input; num_parameters is 1 or the input's channels (dim 1)"
    flops_rule = "1 per element, as every activation: the slope's multiply on the negative side"

    def _slopes(self, x: Shape) -> int:
        channels = x[0]
        if self.num_parameters not in (1, channels):
            raise ShapeError(f"has num_parameters={self.num_parameters} slopes, but its input "
                             f"{shape_text((1, *x))} has {channels} channels (dim 1)", field="num_parameters",
                             fix=f"Use num_parameters: 1 (one shared slope) or {channels} (one per channel).")
        return self.num_parameters

    def output_shape(self, x: Shape) -> Shape:
        self._slopes(x)
        return x

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        return {"weight": self.param((self._slopes(x),), "constant", value=self.init)}

    def hyper(self) -> str:
        return f"n={self.num_parameters}" + ("" if self.init == 0.25 else f" init={self.init:g}")

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.prelu(x, weights["weight"])


class Mish(_Elementwise):
    """nn.Mish: x * tanh(softplus(x)) (softplus without a threshold, as PyTorch's mish)."""

    type: Literal["mish"]

    temporaries = 0  # computed in its output

    flops_rule = "1 per element, as every activation: x * tanh(softplus(x)) counted as one"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.mish(x)


class Softplus(_Elementwise):
    """nn.Softplus: log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""

    type: Literal["softplus"]
    beta: Real = 1.0
    threshold: Real = 20.0

    temporaries = 0.25  # the linear region's mask, a byte per element (the rest is computed in its output)

    flops_rule = "1 per element, as every activation, the linear region above threshold too"

    @field_validator("beta")
    @classmethod
    def _nonzero(cls, beta: float) -> float:
        if beta == 0:
            raise ValueError("beta must not be 0 (softplus divides by it)")
        return beta

    def hyper(self) -> str:
        return f"beta={self.beta:g} threshold={self.threshold:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.softplus(x, self.beta, self.threshold)


class Hardtanh(_Elementwise):
    """nn.Hardtanh: x clamped to [min_val, max_val]."""

    type: Literal["hardtanh"]
    min_val: Real = -1.0
    max_val: Real = 1.0

    temporaries = 0

    flops_rule = "1 per element, as every activation: one clamp"

    @field_validator("max_val")
    @classmethod
    def _above_min(cls, max_val: float, info: ValidationInfo) -> float:
        min_val = info.data.get("min_val")
        # nn.Hardtanh refuses max_val <= min_val (F.hardtanh only max_val < min_val); the layer is the module
        if min_val is not None and max_val <= min_val:
            raise ValueError(f"max_val must be greater than min_val (as nn.Hardtanh); got min_val={min_val:g}, "
                             f"max_val={max_val:g}")
        return max_val

    def hyper(self) -> str:
        return f"[{self.min_val:g}, {self.max_val:g}]"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.activation.hardtanh(x, self.min_val, self.max_val)


class StochasticDepth(IdentityAtInference):
    """torchvision.ops.StochasticDepth: drops a residual branch per sample ('row') or per batch ('batch') while
    training, rescaled by 1/(1 - p); at inference it returns its input unchanged."""

    type: Literal["stochastic_depth"]
    p: Probability
    mode: Literal["row", "batch"]

    def hyper(self) -> str:
        return f"p={self.p:g} {self.mode}"
