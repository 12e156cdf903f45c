"""Fully connected layer, acting on the last axis as in PyTorch."""
from __future__ import annotations

from math import prod
from typing import Any, Literal

from cnncalc import kernels
from cnncalc.layers.advice import Advice
from cnncalc.layers.receptive_field import ReceptiveField
from cnncalc.layers.base import Fields, Flag, LayerBase, Pos, Shape, Weight


class Linear(LayerBase):
    type: Literal["linear"]
    out_features: Pos
    bias: Flag = True
    in_features: Pos | None = None

    type_aliases = {"dense": "linear", "fullyconnected": "linear", "fc": "linear"}
    category = "linear"
    shape_rule = "[N, ..., in_features] -> [N, ..., out_features] (acts on the last axis)"
    flops_rule = "2 x MACs + 1 per output element for the bias"

    def _in_features(self, x: Shape) -> int:
        self.check_given("in_features", self.in_features, x[-1])
        return x[-1]

    def output_shape(self, x: Shape) -> Shape:
        self._in_features(x)
        return (*x[:-1], self.out_features)

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        fan_in = self._in_features(x)
        weights = {"weight": self.param((self.out_features, fan_in), "uniform", fan_in)}
        if self.bias:
            weights["bias"] = self.param((self.out_features,), "uniform", fan_in)
        return weights

    def macs(self, x: Shape) -> int:
        """output elements x in_features."""
        return prod(self.output_shape(x)) * self._in_features(x)

    def extra_flops(self, x: Shape) -> int:
        return self.bias_flops(x)

    def bias_flops(self, x: Shape) -> int:
        return prod(self.output_shape(x)) if self.bias else 0

    def explain(self, x: Shape) -> list[str]:
        out = self.output_shape(x)
        return [f"output = [N, {', '.join(map(str, out))}]: the last axis {x[-1]} -> {self.out_features}",
                f"MACs = {' * '.join(map(str, out))} * {x[-1]} = {self.macs(x):,}  (output elements x in_features)"]

    def advice(self, x: Shape) -> list[Advice]:
        if len(x) < 2:
            return []
        return [Advice("linear-on-spatial", f"acts on the last axis of a {len(x) + 1}-D input "
                       f"[1, {', '.join(map(str, x))}], mixing only that axis (probably a missing flatten)",
                       "Add a flatten (or global pooling) layer before it, unless this is intended.")]

    def receptive_field(self, fields: Fields, x: Shape) -> ReceptiveField | None:
        return None  # mixes the whole last axis: no longer a local field

    def hyper(self) -> str:
        return f"out={self.out_features}" + ("" if self.bias else " no bias")

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.linear.linear(x, weights["weight"], weights.get("bias"))
