"""Verification -> Rich table and JSON. Builds output; never prints."""
from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cnncalc.formats import SCHEMA_VERSION, warning_dicts
from cnncalc.report import warnings_text
from cnncalc.units import human_bytes, shape_text
from cnncalc.verification import LayerCheck, Verification

if TYPE_CHECKING:
    from cnncalc.lint import Warning_


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4g}"


def _flags(check: LayerCheck) -> Text:
    text = Text()
    if check.stats.nan:
        text.append(f"NaN x{check.stats.nan} ", style="bold red")
    if check.stats.inf:
        text.append(f"Inf x{check.stats.inf}", style="bold red")
    return text


def _executed(check: LayerCheck) -> str:
    return "not run" if check.executed is None else shape_text(check.executed)


def verification_table(result: Verification) -> Table:
    """One row per layer; cells are Text, shown as written (see report.SummaryTable)."""
    table = Table(title=f"{result.name}: executed with NumPy, input {shape_text(result.input_shape)}, "
                        f"{result.dtype}", title_justify="left", header_style="bold")
    for header, right in (("#", True), ("Name", False), ("Type", False), ("Calculated", False),
                          ("Executed", False), ("", False), ("ms", True), ("mean", True), ("std", True),
                          ("min", True), ("max", True), ("flags", False)):
        table.add_column(header, justify="right" if right else "left", overflow="fold")
    for c in result.checks:
        mark = Text("ok", style="green") if c.match else \
            Text("MISMATCH" if c.failure is None else "FAILED", style="bold red")
        s = c.stats
        plain = map(Text, (str(c.index), c.name, c.kind, shape_text(c.calculated), _executed(c)))
        numbers = map(Text, (f"{c.seconds * 1000:.2f}", _number(s.mean), _number(s.std), _number(s.min),
                             _number(s.max)))
        table.add_row(*plain, mark, *numbers, _flags(c))
    return table


def verification_summary(result: Verification) -> Text:
    text = Text()
    bad = result.mismatches
    if bad:
        first = bad[0]
        what = f"executed with shape {shape_text(first.executed)}" \
            if first.failure is None and first.executed is not None else f"could not be executed ({first.failure})"
        text.append(f"Layer {first.name} ({first.kind}) {what}, but the calculation says "
                    f"{shape_text(first.calculated)}; the {result.not_run} layer(s) after it were not run. "
                    "This is a bug in cnncalc; please report it with the spec.\n", style="bold red")
    else:
        text.append(f"All {len(result.checks)} layers executed with the calculated shapes.\n", style="bold green")
    flagged = [c.name for c in result.checks if c.stats.nan or c.stats.inf]
    if flagged:
        text.append(f"NaN or Inf values in: {', '.join(flagged)}.\n", style="red")
    m = result.memory
    text.append(f"Forward pass {result.seconds * 1000:.1f} ms; estimated peak memory {human_bytes(m.total)} "
                f"(weights {human_bytes(m.weights)}, activations {human_bytes(m.peak_activations)} at "
                f"'{m.peak_layer}', workspace {human_bytes(m.workspace)}).")
    return text


def verification_renderable(result: Verification, warnings: list[Warning_] | None = None) -> Group:
    return Group(verification_table(result), verification_summary(result), warnings_text(warnings or []))


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def verification_json(result: Verification, warnings: list[Warning_] | None = None) -> str:
    m = result.memory
    data = {
        "schema_version": SCHEMA_VERSION,
        "name": result.name,
        "input_shape": list(result.input_shape),
        "dtype": result.dtype,
        "passed": result.passed,
        "not_run": result.not_run,
        "seconds": result.seconds,
        "memory_estimate": {"weights": m.weights, "peak_activations": m.peak_activations,
                            "workspace": m.workspace, "loading": m.loading, "total": m.total,
                            "peak_layer": m.peak_layer},
        "layers": [{
            "index": c.index, "name": c.name, "type": c.kind, "calculated_shape": list(c.calculated),
            "executed_shape": None if c.executed is None else list(c.executed), "match": c.match,
            "failure": c.failure, "seconds": c.seconds,
            "mean": _finite_or_none(c.stats.mean), "std": _finite_or_none(c.stats.std),
            "min": _finite_or_none(c.stats.min), "max": _finite_or_none(c.stats.max), "nan": c.stats.nan,
            "inf": c.stats.inf,
        } for c in result.checks],
        "warnings": warning_dicts(warnings or []),
    }
    return json.dumps(data, indent=2) + "\n"
