"""A comparison -> headline, Rich tables, JSON and Markdown. Builds output; never prints."""
from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any, Callable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cnncalc.analyze import Row
from cnncalc.diff import Change, Comparison, Difference, FieldChange, TOTALS, TotalChange
from cnncalc.formats import SCHEMA_VERSION, markdown_table, rf_dict, rf_text
from cnncalc.network import NETWORK_INPUT
from cnncalc.units import human, human_bytes, number, shape_text


# ---- text --------------------------------------------------------------------------------------------------

def value_text(value: Any) -> str:
    """A config value compactly: equal per-axis values collapse ([2, 2] -> 2, [[1, 1], [1, 1]] -> 1)."""
    if isinstance(value, (list, tuple)):
        if value and all(v == value[0] for v in value):
            return value_text(value[0])
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def field_change_text(change: FieldChange) -> str:
    return f"{change.field} {value_text(change.before)} -> {value_text(change.after)}"


def inputs_text(d: Difference) -> str:
    return f"inputs {value_text(list(d.inputs.before or ()))} -> {value_text(list(d.inputs.after or ()))}"


def summary_text(d: Difference) -> str:
    """A short 'what changed' text for tables."""
    if d.a is None:
        return f"added ({d.b.kind})"  # type: ignore[union-attr]
    if d.b is None:
        return f"removed ({d.a.kind})"
    parts = []
    if d.name.changed:
        parts.append(f"renamed {d.name.before} -> {d.name.after}")
    if d.type.changed:
        parts.append(f"type {d.type.before} -> {d.type.after}")
    parts += [field_change_text(c) for c in d.config]
    if d.rewired:
        parts.append(inputs_text(d))
    rest = [label for aspect, label in (("output_shape", "shape"), ("params", "params"), ("macs", "MACs"),
                                        ("receptive_field", "RF"), ("output_bytes", "memory"))
            if getattr(d, aspect).changed]
    if rest and not parts:
        parts.append("follows upstream: " + ", ".join(rest))  # its own config is unchanged
    return "; ".join(parts)


def percent_text(percent: Fraction | None) -> str:
    """Signed, with enough digits that a non-zero change never reads as 0: -38 %, +1.5 %, +0.0021 %."""
    if percent is None:
        return "new"
    if percent == 0:
        return "+0 %"
    value = float(percent)
    size = abs(value)
    # two significant digits below 1 %, written out (never 1e-05)
    decimals = 0 if size >= 9.5 else 1 if size >= 0.95 else 1 - math.floor(math.log10(size))
    return f"{value:+.{decimals}f} %"


def signed(n: int, as_bytes: bool = False) -> str:
    """+1.23 M, -440 M, +12 KiB, 0."""
    if n == 0:
        return "0"
    fmt = human_bytes if as_bytes else human
    return ("+" if n > 0 else "-") + fmt(abs(n))


def _layer_ref(row: Row) -> str:
    return f"{row.name} ({row.kind})"


def _listing(items: list[str], limit: int = 3) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


def _total_phrase(total: TotalChange, what: str) -> str:
    if total.delta == 0:
        return f"+0 {what}"
    if total.percent is None:
        return f"{signed(total.delta)} {what} (from 0)"
    return f"{percent_text(total.percent)} {what}"


def headline(comparison: Comparison) -> str:
    """One sentence: what differs in B relative to A (inputs, settings, per-layer configuration, renames,
    removed and added layers), then the total deltas as signed percentages of A."""
    c = comparison
    subject = f"{c.label_b} vs {c.label_a}"
    if c.identical:
        return (f"{subject}: no differences (same layers, shapes, parameters, MACs, receptive fields and "
                "memory).")
    parts = []
    if c.input_shape.changed:
        parts.append(f"input {shape_text(c.input_shape.before)} -> {shape_text(c.input_shape.after)}")
    parts += [f"{key} {v.before} -> {v.after}" for key, v in c.settings.items()]
    edits = []
    existing_a = {NETWORK_INPUT} | {d.a.name for d in c.differences if d.a is not None and d.b is not None}
    existing_b = {NETWORK_INPUT} | {d.b.name for d in c.differences if d.a is not None and d.b is not None}
    for d in c.differences:
        if d.status != "changed":
            continue
        texts = ([f"type {d.type.before} -> {d.type.after}"] if d.type.changed else []) + \
            [field_change_text(f) for f in d.config]
        # rewiring from a removed or onto an added layer is part of that change; between kept layers it is news
        if d.rewired and d.a is not None and d.b is not None and all(n in existing_a for n in d.a.layer.inputs) \
                and all(n in existing_b for n in d.b.layer.inputs):
            texts.append(inputs_text(d))
        if texts:
            edits.append(f"{d.name.before} {', '.join(texts)}")
        if d.name.changed:
            edits.append(f"{d.name.before} renamed to {d.name.after}")
    parts += edits[:4]
    if len(edits) > 4:
        parts.append(f"{len(edits) - 4} more layer changes")
    removed = [_layer_ref(d.a) for d in c.removed if d.a is not None]
    added = [_layer_ref(d.b) for d in c.added if d.b is not None]
    if removed:
        parts.append(f"{_listing(removed)} removed" if len(removed) == 1 else
                     f"{len(removed)} layers removed ({_listing(removed)})")
    if added:
        parts.append(f"{_listing(added)} added" if len(added) == 1 else
                     f"{len(added)} layers added ({_listing(added)})")
    if not parts:  # only derived numbers moved (cannot happen with the same input and configs; kept honest)
        parts.append("the same configuration gives different numbers")
    t = c.totals
    effects = [_total_phrase(t["macs"], "MACs"), _total_phrase(t["params"], "params"),
               _total_phrase(t["peak_inference_bytes"], "peak inference memory")]
    if c.output_shapes.changed:
        effects.append("output " + ", ".join(shape_text(s) for s in c.output_shapes.before) + " -> " +
                       ", ".join(shape_text(s) for s in c.output_shapes.after))
    return f"{subject}: {'; '.join(parts)}: {', '.join(effects)}."


# ---- tables ------------------------------------------------------------------------------------------------

def _from_to(change: Change[Any], text: Callable[[Any], str]) -> str:
    before = "-" if change.before is None else text(change.before)
    after = "-" if change.after is None else text(change.after)
    return before if before == after else f"{before} -> {after}"


def _rows(comparison: Comparison, all_rows: bool) -> list[Difference]:
    return list(comparison.differences) if all_rows else comparison.changed


# column header, right-aligned, cell text
LAYER_COLUMNS: tuple[tuple[str, bool, Callable[[Difference], str]], ...] = (
    ("A", False, lambda d: _layer_ref(d.a) if d.a else "-"),
    ("B", False, lambda d: _layer_ref(d.b) if d.b else "-"),
    ("Output shape", False, lambda d: _from_to(d.output_shape, shape_text)),
    ("Params delta", True, lambda d: signed(d.params.delta)),
    ("MACs delta", True, lambda d: signed(d.macs.delta)),
    ("Receptive field", False, lambda d: _from_to(d.receptive_field, rf_text)),
    ("What changed", False, lambda d: summary_text(d) or "-"),
)
TOTAL_HEADERS = ("Total", "A", "B", "Delta", "%")
_STYLES = {"removed": "red", "added": "green", "changed": "yellow", "same": ""}


def total_cells(comparison: Comparison) -> list[list[str]]:
    rows = []
    for key, (label, as_bytes, _) in TOTALS.items():
        t = comparison.totals[key]
        fmt = human_bytes if as_bytes else human
        rows.append([label, fmt(t.a), fmt(t.b), signed(t.delta, as_bytes), percent_text(t.percent)])
    names, fields = comparison.receptive_field
    name_a, name_b, rf_a, rf_b = names.before, names.after, fields.before, fields.after
    rows.append(["Receptive field", f"{rf_text(rf_a)} ({name_a or '-'})", f"{rf_text(rf_b)} ({name_b or '-'})",
                 "same" if rf_a == rf_b else "changed", ""])
    shapes = comparison.output_shapes
    rows.append(["Output", ", ".join(map(shape_text, shapes.before)), ", ".join(map(shape_text, shapes.after)),
                 "changed" if shapes.changed else "same", ""])
    return rows


def diff_renderable(comparison: Comparison, all_rows: bool = False) -> Group:
    """The headline, a table of aligned layers (only those that differ unless `all_rows`), and the totals."""
    c = comparison
    labels = "" if (c.label_a, c.label_b) == ("A", "B") else f"A = {c.label_a}, B = {c.label_b}: "
    shown = _rows(c, all_rows)
    if shown:
        title = labels + (f"{len(c.differences)} aligned layers" if all_rows else
                          f"{len(c.changed)} of {len(c.differences)} aligned layers differ")
        table: Any = Table(title=title, title_justify="left", header_style="bold")
        for header, right, _ in LAYER_COLUMNS:
            table.add_column(header, justify="right" if right else "left", overflow="fold")
        for d in shown:
            table.add_row(*(cell(d) for _, _, cell in LAYER_COLUMNS), style=_STYLES[d.status])
    else:
        table = Text(f"{labels}no differences in any of the {len(c.differences)} aligned layers.")
    totals = Table(title="Totals", title_justify="left", header_style="bold")
    for i, header in enumerate(TOTAL_HEADERS):
        totals.add_column(header, justify="left" if i == 0 else "right", overflow="fold")
    for row in total_cells(c):
        totals.add_row(*row)
    return Group(Text(headline(c)), table, totals)


# ---- machine formats ---------------------------------------------------------------------------------------

def _side(row: Row | None) -> dict[str, Any] | None:
    return None if row is None else {"index": row.index, "name": row.name, "type": row.kind}


def _counts(change: Change[int]) -> dict[str, Any]:
    return {"a": change.before, "b": change.after, "delta": change.delta}


def _difference_dict(d: Difference) -> dict[str, Any]:
    shape = d.output_shape
    return {
        "status": d.status,
        "a": _side(d.a),
        "b": _side(d.b),
        "changed": list(d.changed),
        "config": [{"field": f.field, "a": f.before, "b": f.after} for f in d.config],
        "inputs": {"a": list(d.inputs.before) if d.inputs.before is not None else None,
                   "b": list(d.inputs.after) if d.inputs.after is not None else None, "rewired": d.rewired},
        "output_shape": {"a": list(shape.before) if shape.before is not None else None,
                         "b": list(shape.after) if shape.after is not None else None},
        "params": _counts(d.params),
        "trainable_params": _counts(d.trainable_params),
        "macs": _counts(d.macs),
        "flops": _counts(d.flops),
        "output_bytes": _counts(d.output_bytes),
        "receptive_field": {"a": rf_dict(d.receptive_field.before), "b": rf_dict(d.receptive_field.after)},
    }


def to_dict(comparison: Comparison, all_rows: bool = True) -> dict[str, Any]:
    c = comparison
    names, fields = c.receptive_field
    name_a, name_b, rf_a, rf_b = names.before, names.after, fields.before, fields.after
    totals: dict[str, Any] = {
        key: {"a": t.a, "b": t.b, "delta": t.delta, "percent": None if t.percent is None else number(t.percent)}
        for key, t in c.totals.items()}
    totals["receptive_field"] = {"a": rf_dict(rf_a), "b": rf_dict(rf_b), "layer_a": name_a, "layer_b": name_b,
                                 "changed": rf_a != rf_b}
    totals["output_shapes"] = {"a": [list(s) for s in c.output_shapes.before],
                               "b": [list(s) for s in c.output_shapes.after], "changed": c.output_shapes.changed}
    return {
        "schema_version": SCHEMA_VERSION,
        "a": c.label_a,
        "b": c.label_b,
        "files": {"a": c.a.file, "b": c.b.file},
        "input_shapes": {"a": list(c.a.input_shape), "b": list(c.b.input_shape)},
        "batch": {"a": c.a.batch, "b": c.b.batch},
        "dtype": {"a": c.a.dtype, "b": c.b.dtype},
        "identical": c.identical,
        "headline": headline(c),
        "counts": {"aligned": len(c.differences), "changed": len([d for d in c.differences
                                                                  if d.status == "changed"]),
                   "removed": len(c.removed), "added": len(c.added)},
        "layers": [_difference_dict(d) for d in _rows(c, all_rows)],
        "totals": totals,
    }


def diff_json(comparison: Comparison, all_rows: bool = True) -> str:
    """schema_version 1; `layers` lists every aligned pair (with its `status`) unless all_rows=False."""
    return json.dumps(to_dict(comparison, all_rows), indent=2) + "\n"


def diff_markdown(comparison: Comparison, all_rows: bool = False) -> str:
    c = comparison
    shown = _rows(c, all_rows)
    layers = markdown_table([h for h, _, _ in LAYER_COLUMNS], [[cell(d) for _, _, cell in LAYER_COLUMNS]
                                                                for d in shown],
                             [r for _, r, _ in LAYER_COLUMNS]) if shown else "No layer differs."
    totals = markdown_table(list(TOTAL_HEADERS), total_cells(c), [False, True, True, True, True])
    return f"## {c.label_a} -> {c.label_b}\n\n{headline(c)}\n\n{layers}\n\n{totals}\n"
