"""A loaded network: one flat list of validated layers in list order, and where each came from in the YAML.

`inputs` may only name earlier layers, so list order is a topological order.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from cnncalc.errors import SpecError, Via, Where, shown
from cnncalc.layers import LayerBase, Shape
from cnncalc.limits import MAX_DIM
from cnncalc.yamlmarks import Key, Mark

NETWORK_INPUT = "input"


def is_sample_shape(shape: Any) -> bool:
    """One sample's shape, channels first: [F], [C, L], [C, H, W] or [C, D, H, W], all positive (and at most
    MAX_DIM)."""
    return isinstance(shape, (list, tuple)) and 1 <= len(shape) <= 4 and all(type(d) is int and 0 < d <= MAX_DIM
                                                                            for d in shape)


@dataclass(frozen=True)
class Origin:
    """Where a layer came from in the YAML: its mapping, its fields, and the block use that made it."""

    mark: Mark
    field_marks: dict[Key, Mark]
    via: Via | None = None


@dataclass(frozen=True)
class Network:
    name: str
    input_shape: Shape  # one sample, no batch axis
    layers: tuple[LayerBase, ...]
    outputs: tuple[str, ...]
    file: str  # as shown in messages: the path given, or 'alexnet (bundled)' for a bundled spec
    origins: dict[str, Origin] = field(default_factory=dict, repr=False, compare=False)
    path: str | None = None  # the spec file itself, which cnncalc never writes over

    def where(self, layer: LayerBase, field_name: str | None = None) -> Where:
        origin = self.origins.get(layer.name)
        if origin is None:
            return Where(self.file, layer=layer.name, kind=layer.kind)
        line, col = origin.field_marks.get(field_name, origin.mark) if field_name else origin.mark
        return Where(self.file, line, col, layer.name, layer.kind, origin.via)

    def with_input(self, shape: Shape) -> "Network":
        if not is_sample_shape(shape):
            raise SpecError(f"input {shown(shape)} is not a shape: one sample's, channels first, 1 to 4 positive "
                            f"integers up to {MAX_DIM:,}", fix="Write e.g. 3,224,224 (no batch axis: use --batch).")
        return replace(self, input_shape=tuple(shape))


