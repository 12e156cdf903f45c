"""A sweep -> Rich table, JSON and Markdown (and JSON back to points). Builds output; never prints."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Callable, Sequence

from rich.bar import Bar
from rich.table import Table

from cnncalc.formats import SCHEMA_VERSION, markdown_table
from cnncalc.sweep import SweepPoint
from cnncalc.units import human, human_bytes, shape_text

BAR_WIDTH = 16


# ---- renderers ---------------------------------------------------------------------------------------------

def _outputs(p: SweepPoint) -> str:
    return ", ".join(shape_text(s) for s in p.output_shapes)


# header, right-aligned, cell text
COLUMNS: tuple[tuple[str, bool, Callable[[SweepPoint], str]], ...] = (
    ("Input", False, lambda p: shape_text(p.input_shape)),
    ("Output", False, _outputs),
    ("Params", True, lambda p: human(p.params)),
    ("MACs", True, lambda p: human(p.macs)),
    ("FLOPs", True, lambda p: human(p.flops)),
    ("Activations", True, lambda p: human_bytes(p.activation_bytes)),
    ("Peak inference", True, lambda p: human_bytes(p.peak_inference_bytes)),
    ("Training", True, lambda p: human_bytes(p.training_bytes)),
)


def _title(points: Sequence[SweepPoint]) -> str:
    if not points:
        return "Sweep: no points"
    p = points[0]
    return f"{p.name}: sweep of {len(points)} point{'s' if len(points) != 1 else ''}, {p.dtype}, " \
           f"training with {p.optimizer}"


def sweep_renderable(points: Sequence[SweepPoint], bar_width: int = BAR_WIDTH) -> Table:
    """A table of the totals per point, with bars scaled to the largest MACs and peak inference memory."""
    table = Table(title=_title(points), title_justify="left", header_style="bold",
                  caption="bars: MACs and peak inference memory, relative to the largest in the sweep",
                  caption_justify="left")
    for header, right, _ in COLUMNS:
        table.add_column(header, justify="right" if right else "left", overflow="fold")
    table.add_column("MACs bar", width=bar_width, no_wrap=True)
    table.add_column("Peak bar", width=bar_width, no_wrap=True)
    most_macs = max((p.macs for p in points), default=0) or 1
    most_memory = max((p.peak_inference_bytes for p in points), default=0) or 1
    for p in points:
        table.add_row(*(cell(p) for _, _, cell in COLUMNS),
                      Bar(most_macs, 0, p.macs, width=bar_width, color="cyan"),
                      Bar(most_memory, 0, p.peak_inference_bytes, width=bar_width, color="magenta"))
    return table


def to_dict(points: Sequence[SweepPoint]) -> dict[str, Any]:
    first = points[0] if points else None
    return {
        "schema_version": SCHEMA_VERSION,
        "name": first.name if first else None,
        "file": first.file if first else None,
        "dtype": first.dtype if first else None,
        "optimizer": first.optimizer if first else None,
        "points": [{**{k: v for k, v in asdict(p).items() if k not in ("name", "file", "dtype", "optimizer")},
                    "input_shape": list(p.input_shape), "output_shapes": [list(s) for s in p.output_shapes]}
                   for p in points],
    }


def sweep_json(points: Sequence[SweepPoint]) -> str:
    """schema_version 1; `points` carry exact integers (bytes and counts for the whole batch)."""
    return json.dumps(to_dict(points), indent=2) + "\n"


def points_from_json(text: str) -> list[SweepPoint]:
    """The inverse of `sweep_json` (for tools that store sweeps)."""
    data = json.loads(text)
    common = {k: data[k] for k in ("name", "file", "dtype", "optimizer")}
    return [SweepPoint(**common, **{**p, "input_shape": tuple(p["input_shape"]),
                                    "output_shapes": tuple(tuple(s) for s in p["output_shapes"])})
            for p in data["points"]]


def sweep_markdown(points: Sequence[SweepPoint]) -> str:
    table = markdown_table([h for h, _, _ in COLUMNS], [[cell(p) for _, _, cell in COLUMNS] for p in points],
                           [right for _, right, _ in COLUMNS])
    return f"## {_title(points)}\n\n{table}\n"
