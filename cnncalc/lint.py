"""Design warnings: each layer kind's own advice, plus network-wide checks, located in the spec."""
from __future__ import annotations

import re
from dataclasses import dataclass

from cnncalc.analyze import Summary
from cnncalc.errors import BlockUse, Where
from cnncalc.layers.advice import Advice
from cnncalc.units import human
from cnncalc.network import Network

DOMINANT_SHARE = 0.5  # a single layer holding more than this share of all parameters is worth a look
DOMINANT_MIN_LAYERS = 4  # ...among at least this many weighted layers (in a toy net one always dominates)


@dataclass(frozen=True)
class Warning_:
    advice: Advice
    where: Where

    @property
    def layer(self) -> str:
        return self.where.layer or ""

    def __str__(self) -> str:
        return f"{self.where.prefix()}warning [{self.advice.code}]: {self.advice.message}. {self.advice.fix}"


def lint(network: Network, summary: Summary) -> list[Warning_]:
    found = []
    total = summary.totals.params
    weighted = sum(1 for row in summary.rows if row.params.total)
    for row in summary.rows:
        per_sample = tuple(s[1:] for s in row.input_shapes)
        advice = list(row.layer.advice(*per_sample))
        if weighted >= DOMINANT_MIN_LAYERS and row.params.total > DOMINANT_SHARE * total:
            advice.append(Advice("dominant-layer", f"holds {row.params.total / total:.0%} of all parameters "
                                 f"({human(row.params.total)} of {human(total)})",
                                 "A global pooling or smaller feature map before it cuts this sharply."))
        found += [Warning_(a, network.where(row.layer, a.field)) for a in advice]
    return found


_NUMBER_PART = re.compile(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)")


@dataclass(frozen=True)
class WarningGroup:
    """Warnings of one code on layers made from one entry of the spec (the same line of a block's definition
    used several times, or one `repeat`ed entry), in spec order."""

    warnings: tuple[Warning_, ...]

    @property
    def first(self) -> Warning_:
        return self.warnings[0]

    @property
    def code(self) -> str:
        return self.first.advice.code

    @property
    def layers(self) -> list[str]:
        return [w.layer for w in self.warnings]

    @property
    def block(self) -> str | None:
        """The block all of them come from, when they come from one."""
        names = {w.where.via.block if isinstance(w.where.via, BlockUse) else None for w in self.warnings}
        return names.pop() if len(names) == 1 else None

    @property
    def same_text(self) -> bool:
        """Whether every warning of the group says the same thing (lost pixels quote each layer's sizes)."""
        return len({(w.advice.message, w.advice.fix) for w in self.warnings}) == 1


def group_key(warning: Warning_) -> tuple[object, ...]:
    """Warnings with the same key come from one definition: the same code, kind and place in the spec. A
    warning with no place (a network built in Python) is keyed by its layer name with the numeric parts
    generalised (layer2.0.downsample.0 -> layer2.*.downsample.*)."""
    where = warning.where
    if where.line is not None:
        return warning.advice.code, where.kind, where.file, where.line, where.col
    return warning.advice.code, where.kind, where.file, _NUMBER_PART.sub("*", warning.layer)


def group_warnings(warnings: list[Warning_]) -> list[WarningGroup]:
    """Repeated warnings as groups, in the order of each group's first warning (one pass, one dict)."""
    groups: dict[tuple[object, ...], list[Warning_]] = {}
    for w in warnings:
        groups.setdefault(group_key(w), []).append(w)
    return [WarningGroup(tuple(ws)) for ws in groups.values()]
