"""Normalisation: batch, layer (and layernorm2d, over the channels), group and instance norm, and local
response normalisation.

Kernels compute inference-mode (eval) outputs: batch norm uses the running statistics.
"""
from __future__ import annotations

from math import prod
from typing import Any, ClassVar, Literal


from cnncalc import kernels
from cnncalc.errors import ShapeError
from cnncalc.layers.base import Flag, LayerBase, Pos, PosReal, Real, Shape, Weight
from cnncalc.units import shape_text

STATISTICS_FLOPS = 5  # mean add, subtract, square, variance add, scale by 1/std, per element
AFFINE_FLOPS = 2      # multiply by weight, add bias, per element

class _PerChannelNorm(LayerBase):
    """Batch and instance norm: optional per-channel affine weights and running statistics."""

    num_features: Pos | None = None
    eps: PosReal = 1e-5
    momentum: Real | None = 0.1  # training only; accepted for PyTorch compatibility
    affine: Flag = True
    track_running_stats: Flag = True

    # type -> (accepted per-sample ranks, the batched layout named in errors)
    ranks: ClassVar[dict[str, tuple[tuple[int, ...], str]]] = {}
    category = "norm"

    def _channels(self, x: Shape) -> int:
        accepted, layout = self.ranks[self.type]
        self.expect_rank(x, accepted, layout)
        self.check_given("num_features", self.num_features, x[0])
        return x[0]

    def output_shape(self, x: Shape) -> Shape:
        self._channels(x)
        return x

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        c = self._channels(x)
        weights: dict[str, Weight] = {}
        if self.affine:
            weights.update(weight=self.param((c,), "ones"), bias=self.param((c,)))
        if self.track_running_stats:
            weights.update(running_mean=self.buffer((c,)), running_var=self.buffer((c,), "ones"))
        return weights


class BatchNorm(_PerChannelNorm):
    type: Literal["batchnorm1d", "batchnorm2d", "batchnorm3d", "batchnorm"]

    ranks = {"batchnorm1d": ((1, 2), "[N, C] or [N, C, L]"), "batchnorm2d": ((3,), "[N, C, H, W]"),
             "batchnorm3d": ((4,), "[N, C, D, H, W]"), "batchnorm": ((1, 2, 3, 4), "[N, C, ...]")}

    type_aliases = {"batchnormalization": "batchnorm"}
    shape_rule = "output = input; channels on axis 1 ('batchnorm' takes any rank)"
    flops_rule = "2 per element (inference: scale and shift folded from the running statistics)"

    def extra_flops(self, x: Shape) -> int:
        return 2 * prod(x)

    def hyper(self) -> str:
        return "" if self.eps == 1e-5 else f"eps={self.eps:g}"

    def workspace_bytes(self, itemsize: int, output: Shape, x: Shape) -> int:
        return 0 if self.track_running_stats else prod(x) * itemsize  # the batch variance's temporary

    def check_batch(self, batch: int, x: Shape) -> None:
        if not self.track_running_stats and batch * prod(x[1:]) == 1:
            raise ShapeError(f"normalises by the batch's own statistics (it keeps no running ones), and a batch "
                             f"of {batch} of {shape_text((batch, *x))} has one value per channel; PyTorch "
                             "refuses that", field="track_running_stats",
                             fix="Use --batch 2 or more, or track_running_stats: true.")

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.norm.batch_norm(x, weights.get("weight"), weights.get("bias"), weights.get("running_mean"),
                                       weights.get("running_var"), self.eps)


class LayerNorm(LayerBase):
    type: Literal["layernorm"]
    normalized_shape: Pos | tuple[Pos, ...] | None = None  # default: every non-batch axis
    eps: PosReal = 1e-5
    elementwise_affine: Flag = True
    bias: Flag = True

    type_aliases = {"layernormalization": "layernorm"}
    category = "norm"
    temporaries = 3  # the centred input, its squares, the standardised result
    shape_rule = "output = input; normalises over the last len(normalized_shape) axes"
    flops_rule = f"{STATISTICS_FLOPS} per element, + {AFFINE_FLOPS} with elementwise_affine"

    def normalized(self, x: Shape) -> Shape:
        if self.normalized_shape is None:
            return x
        shape = (self.normalized_shape,) if isinstance(self.normalized_shape, int) else self.normalized_shape
        if len(shape) > len(x) or tuple(x[len(x) - len(shape):]) != tuple(shape):
            raise ShapeError(f"normalized_shape {list(shape)} does not match the trailing axes of its input "
                             f"{shape_text((1, *x))}", field="normalized_shape",
                             fix="Make it equal the input's last axes, or leave it out to use all of them.")
        return tuple(shape)

    def output_shape(self, x: Shape) -> Shape:
        self.normalized(x)
        return x

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        shape = self.normalized(x)
        if not self.elementwise_affine:
            return {}
        weights = {"weight": self.param(shape, "ones")}
        if self.bias:
            weights["bias"] = self.param(shape)
        return weights

    def extra_flops(self, x: Shape) -> int:
        return (STATISTICS_FLOPS + AFFINE_FLOPS * self.elementwise_affine) * prod(x)

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        shape = self.normalized_shape
        axes = x.ndim - 1 if shape is None else 1 if isinstance(shape, int) else len(shape)
        return kernels.norm.layer_norm(x, axes, weights.get("weight"), weights.get("bias"), self.eps)


class LayerNorm2d(LayerBase):
    """torchvision's LayerNorm2d (ConvNeXt): an nn.LayerNorm over the channel axis of [N, C, *spatial], each
    position's C values normalised (permuted to channels last, F.layer_norm over C, permuted back).

    eps defaults to nn.LayerNorm's 1e-5, which torchvision's LayerNorm2d inherits (timm's LayerNorm2d uses
    1e-6, and torchvision's ConvNeXt builds its own with eps=1e-6: write it when you mean that).
    torchvision's takes only [N, C, H, W]; this one any [N, C, *spatial] with 1 to 3 spatial axes."""

    type: Literal["layernorm2d"]
    normalized_shape: Pos | None = None  # the channel count C; checked when given, inferred otherwise
    eps: PosReal = 1e-5
    elementwise_affine: Flag = True
    bias: Flag = True

    category = "norm"
    temporaries = 3  # the centred input, its squares, the standardised result
    shape_rule = "output = input [N, C, *spatial]; each position's C channel values normalised"
    flops_rule = f"{STATISTICS_FLOPS} per element, + {AFFINE_FLOPS} with elementwise_affine (as layernorm)"

    def _channels(self, x: Shape) -> int:
        self.expect_rank(x, (2, 3, 4), "[N, C, *spatial] with 1 to 3 spatial axes")
        self.check_given("normalized_shape", self.normalized_shape, x[0])
        return x[0]

    def output_shape(self, x: Shape) -> Shape:
        self._channels(x)
        return x

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        c = self._channels(x)
        if not self.elementwise_affine:
            return {}
        weights = {"weight": self.param((c,), "ones")}
        if self.bias:
            weights["bias"] = self.param((c,))
        return weights

    def extra_flops(self, x: Shape) -> int:
        return (STATISTICS_FLOPS + AFFINE_FLOPS * self.elementwise_affine) * prod(x)

    def hyper(self) -> str:
        return "" if self.eps == 1e-5 else f"eps={self.eps:g}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.norm.channel_layer_norm(x, weights.get("weight"), weights.get("bias"), self.eps)


class GroupNorm(LayerBase):
    type: Literal["groupnorm"]
    num_groups: Pos
    num_channels: Pos | None = None
    eps: PosReal = 1e-5
    affine: Flag = True

    type_aliases = {"groupnormalization": "groupnorm"}
    category = "norm"
    temporaries = 3  # the centred input, its squares, the standardised result
    shape_rule = "output = input; channels split into num_groups groups, each normalised"
    flops_rule = f"{STATISTICS_FLOPS} per element, + {AFFINE_FLOPS} with affine"

    def _channels(self, x: Shape) -> int:
        self.expect_rank(x, (1, 2, 3, 4), "[N, C, ...]")
        self.check_given("num_channels", self.num_channels, x[0])
        if x[0] % self.num_groups:
            raise ShapeError(f"{x[0]} channels are not divisible by num_groups={self.num_groups}",
                             field="num_groups", fix="Choose num_groups that divides the channel count.")
        return x[0]

    def output_shape(self, x: Shape) -> Shape:
        self._channels(x)
        return x

    def check_batch(self, batch: int, x: Shape) -> None:
        if batch * x[0] // self.num_groups * prod(x[1:]) == 1:
            raise ShapeError(f"has one value per group ({shape_text((batch, *x))} in {self.num_groups} groups); "
                             "PyTorch refuses to normalise that", field="num_groups",
                             fix="Use fewer groups, a larger input, or --batch 2 or more.")

    def weight_shapes(self, x: Shape) -> dict[str, Weight]:
        c = self._channels(x)
        return {"weight": self.param((c,), "ones"), "bias": self.param((c,))} if self.affine else {}

    def extra_flops(self, x: Shape) -> int:
        return (STATISTICS_FLOPS + AFFINE_FLOPS * self.affine) * prod(x)

    def hyper(self) -> str:
        return f"groups={self.num_groups}"

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.norm.group_norm(x, self.num_groups, weights.get("weight"), weights.get("bias"), self.eps)


class InstanceNorm(_PerChannelNorm):
    type: Literal["instancenorm1d", "instancenorm2d", "instancenorm3d"]
    affine: Flag = False               # PyTorch's defaults differ from batch norm's
    track_running_stats: Flag = False

    temporaries = 3  # the centred input, its squares, the standardised result
    ranks = {"instancenorm1d": ((2,), "[N, C, L]"), "instancenorm2d": ((3,), "[N, C, H, W]"),
             "instancenorm3d": ((4,), "[N, C, D, H, W]")}
    shape_rule = "output = input; each sample's channel normalised over its spatial axes"
    flops_rule = f"{STATISTICS_FLOPS} per element, + {AFFINE_FLOPS} with affine"

    def output_shape(self, x: Shape) -> Shape:
        self._channels(x)
        if not self.track_running_stats and prod(x[1:]) == 1:
            raise ShapeError(f"normalises each channel over its spatial elements, and {shape_text((1, *x))} has "
                             "only one; PyTorch refuses that", field="track_running_stats",
                             fix="Apply it before the map shrinks to one element, or use track_running_stats: true.")
        return x

    def extra_flops(self, x: Shape) -> int:
        return (STATISTICS_FLOPS + AFFINE_FLOPS * self.affine) * prod(x)

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.norm.instance_norm(x, weights.get("weight"), weights.get("bias"),
                                          weights.get("running_mean"), weights.get("running_var"), self.eps)


class LocalResponseNorm(LayerBase):
    type: Literal["lrn"]
    size: Pos
    alpha: Real = 1e-4
    beta: Real = 0.75
    k: Real = 1.0

    type_aliases = {"localresponsenorm": "lrn"}
    category = "norm"
    shape_rule = "output = input; b = a / (k + alpha/size * sum of a^2 over `size` neighbouring channels)^beta"
    flops_rule = "2*size + 4 per element"

    def output_shape(self, x: Shape) -> Shape:
        self.expect_rank(x, (2, 3, 4), "[N, C, *spatial]")
        return x

    def extra_flops(self, x: Shape) -> int:
        return (2 * self.size + 4) * prod(x)

    def hyper(self) -> str:
        return f"size={self.size}"

    def workspace_bytes(self, itemsize: int, output: Shape, x: Shape) -> int:
        padded = x[0] * (x[1] + self.size - 1) * prod(x[2:])  # the squares padded by size - 1 channels
        return (3 * prod(x) + padded) * itemsize  # + the squares, the window means and the denominator

    def forward(self, weights: dict[str, Any], x: Any) -> Any:
        return kernels.norm.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
