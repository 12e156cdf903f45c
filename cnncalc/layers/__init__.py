"""The layer catalogue: every kind, written out. This union *is* the registry."""
from __future__ import annotations

from typing import Annotated, Union, get_args

from pydantic import Field

from cnncalc.layers.activation import (ELU, GELU, Activation, Dropout, Hardtanh, LeakyReLU, Mish, PReLU, Softmax,
                                      Softplus, StochasticDepth)
from cnncalc.layers.base import LayerBase, ParamCount, Shape, Weight
from cnncalc.layers.conv import Conv, ConvTranspose
from cnncalc.layers.linear import Linear
from cnncalc.layers.merge import Concat, ElementwiseMerge
from cnncalc.layers.norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, LayerNorm2d, LocalResponseNorm
from cnncalc.layers.pool import AdaptivePool, AvgPool, GlobalPool, MaxPool
from cnncalc.layers.scale import Scale
from cnncalc.layers.rearrange import ChannelShuffle, Permute, PixelShuffle, PixelUnshuffle, Slice, Transpose
from cnncalc.layers.reshape import Crop, Flatten, Identity, Pad, Reshape, Upsample, ZeroPad2d

KIND_CLASSES: tuple[type[LayerBase], ...] = (
    Conv, ConvTranspose, MaxPool, AvgPool, AdaptivePool, GlobalPool, Linear,
    BatchNorm, LayerNorm, LayerNorm2d, GroupNorm, InstanceNorm, LocalResponseNorm, Scale,
    Activation, LeakyReLU, ELU, GELU, Softmax, Dropout,
    PReLU, Mish, Softplus, Hardtanh, StochasticDepth,
    ElementwiseMerge, Concat, Flatten, Reshape, Identity, ZeroPad2d, Pad, Crop, Upsample,
    Permute, Transpose, ChannelShuffle, Slice, PixelShuffle, PixelUnshuffle,
)

Layer = Annotated[Union[KIND_CLASSES], Field(discriminator="type")]  # type: ignore[valid-type]


def type_names(cls: type[LayerBase]) -> tuple[str, ...]:
    return get_args(cls.model_fields["type"].annotation)


# canonical type name -> class
KINDS: dict[str, type[LayerBase]] = {name: cls for cls in KIND_CLASSES for name in type_names(cls)}


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


# any accepted spelling, lower-cased without '_' or '-' -> canonical type name
TYPE_SPELLINGS: dict[str, str] = {_squash(name): name for name in KINDS}
TYPE_SPELLINGS.update({_squash(alias): kind for cls in KIND_CLASSES for alias, kind in cls.type_aliases.items()})


def canonical_type(spelling: str) -> str | None:
    return TYPE_SPELLINGS.get(_squash(spelling))


# Keras (and other) field spellings accepted where the canonical field exists on the kind
FIELD_ALIASES: dict[str, str] = {
    "units": "out_features", "filters": "out_channels", "strides": "stride", "pool_size": "kernel_size",
    "use_bias": "bias", "dilation_rate": "dilation", "epsilon": "eps", "rate": "p",
    "target_shape": "shape", "alpha_leaky": "negative_slope",
}

__all__ = ["KINDS", "KIND_CLASSES", "Layer", "LayerBase", "ParamCount", "Shape", "Weight",
           "canonical_type", "FIELD_ALIASES", "TYPE_SPELLINGS"]
