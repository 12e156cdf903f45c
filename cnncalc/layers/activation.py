"""Element-wise activations, softmax and dropout (identity at inference)."""
from __future__ import annotations

from math import prod
from typing import Any, ClassVar, Literal

from pydantic import Field
from typing_extensions import Annotated

from cnncalc.layers.base import LayerBase, Real, Shape, sample_axis


class _Elementwise(LayerBase):
    category = "activation"
    flops_per_element: ClassVar[int] = 1
    flops_rule = "1 per element"

    def output_shape(self, x: Shape) -> Shape:
        return x

    def extra_flops(self, x: Shape) -> int:
        return self.flops_per_element * prod(x)


def _sigmoid(x: Any) -> Any:
    import numpy as np
    # split by sign so exp never overflows
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _erf(x: Any) -> Any:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); NumPy has no erf and SciPy is not a dependency."""
    import numpy as np
    a = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


class Activation(_Elementwise):
    type: Literal["relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid"]

    type_aliases = {"swish": "silu"}
    shape_rule = "output = input"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        import numpy as np
        if self.type == "relu":
            return np.maximum(x, 0)
        if self.type == "relu6":
            return np.clip(x, 0, 6)
        if self.type == "sigmoid":
            return _sigmoid(x)
        if self.type == "tanh":
            return np.tanh(x)
        if self.type == "silu":
            return x * _sigmoid(x)
        if self.type == "hardsigmoid":
            return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)
        return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)  # hardswish


class LeakyReLU(_Elementwise):
    type: Literal["leaky_relu"]
    negative_slope: Real = 0.01

    shape_rule = "output = input"

    def hyper(self) -> str:
        return f"slope={self.negative_slope:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        import numpy as np
        return np.where(x >= 0, x, x * x.dtype.type(self.negative_slope))


class ELU(_Elementwise):
    type: Literal["elu"]
    alpha: Real = 1.0

    shape_rule = "output = input"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        import numpy as np
        return np.where(x > 0, x, x.dtype.type(self.alpha) * np.expm1(np.minimum(x, 0)))


class GELU(_Elementwise):
    type: Literal["gelu"]
    approximate: Literal["none", "tanh"] = "none"

    shape_rule = "output = input"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        import numpy as np
        if self.approximate == "tanh":
            return (0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))).astype(x.dtype)
        return (0.5 * x * (1 + _erf(x / np.sqrt(2)))).astype(x.dtype, copy=False)


class Softmax(_Elementwise):
    type: Literal["softmax", "log_softmax"]
    dim: int = 1

    flops_per_element = 3
    shape_rule = "output = input"
    flops_rule = "3 per element (exp, sum, divide)"

    def output_shape(self, x: Shape) -> Shape:
        sample_axis(self.dim, x)
        return x

    def hyper(self) -> str:
        return f"dim={self.dim}"

    def receptive_field(self, fields: tuple, x: Shape) -> Any:
        return fields[0] if sample_axis(self.dim, x) == 0 else None  # over channels it stays local

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        import numpy as np
        axis = sample_axis(self.dim, x.shape[1:]) + 1
        shifted = x - x.max(axis=axis, keepdims=True)
        if self.type == "log_softmax":
            return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        e = np.exp(shifted)
        return e / e.sum(axis=axis, keepdims=True)


class Dropout(LayerBase):
    type: Literal["dropout", "dropout1d", "dropout2d", "dropout3d"]
    p: Annotated[float, Field(ge=0, le=1)] = 0.5

    type_aliases = {"spatialdropout1d": "dropout1d", "spatialdropout2d": "dropout2d", "spatialdropout3d": "dropout3d"}
    category = "other"
    shape_rule = "output = input (identity at inference)"

    def output_shape(self, x: Shape) -> Shape:
        return x

    def hyper(self) -> str:
        return f"p={self.p:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return x
