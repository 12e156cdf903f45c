"""Design warnings: each layer kind's own advice, plus network-wide checks, located in the spec."""
from __future__ import annotations

from dataclasses import dataclass

from cnncalc.analyze import Summary
from cnncalc.errors import Where
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
