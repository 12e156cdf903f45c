"""A summary as plain text and data: the table's columns and cell texts, the totals' lines, warnings as
lines, and the machine formats (JSON, Markdown, CSV). No Rich here, so `-f json|csv|markdown` never imports it;
`report` lays the same texts out with Rich."""
from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from typing import Any, Callable

from cnncalc.analyze import ModuleRow, Row, Summary
from cnncalc.errors import CnnCalcError, Where, shown_text
from cnncalc.layers.receptive_field import ReceptiveField
from cnncalc.lint import Warning_, WarningGroup, group_warnings
from cnncalc.units import human, human_bytes, number, shape_text

SCHEMA_VERSION = 1

def _axes(values: tuple[Fraction, ...]) -> str:
    texts = [f"{number(v):g}" for v in values]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


def rf_text(rf: ReceptiveField | None) -> str:
    """'7x7 j2 @3.5': size per axis, jump (effective stride), centre of the first field."""
    if rf is None:
        return "-"
    size = "x".join(f"{number(v):g}" for v in rf.size)
    return f"{size} j{_axes(rf.jump)} @{_axes(rf.start)}"


def rf_dict(rf: ReceptiveField | None) -> dict[str, list[int | float]] | None:
    if rf is None:
        return None
    return {"size": [number(v) for v in rf.size], "jump": [number(v) for v in rf.jump],
            "start": [number(v) for v in rf.start]}


# column key -> (header, cell text, right-aligned)
COLUMNS: dict[str, tuple[str, Callable[[Row | ModuleRow], str], bool]] = {  # a layer's or a module's
    "index": ("#", lambda r: f"{r.index}-{r.last_index}" if isinstance(r, ModuleRow) else str(r.index), True),
    "name": ("Name", lambda r: r.name, False),
    "type": ("Type", lambda r: r.kind, False),
    "inputs": ("Inputs", lambda r: _listed(list(r.inputs), ", "), False),
    "input": ("Input shape", lambda r: _listed([shape_text(s) for s in r.input_shapes], " "), False),
    "output": ("Output shape", lambda r: shape_text(r.output_shape), False),
    "config": ("Config", lambda r: r.hyper(), False),
    "params": ("Params", lambda r: _count(r.params.total), True),
    "trainable": ("Trainable", lambda r: _count(r.params.trainable), True),
    "macs": ("MACs", lambda r: _count(r.macs), True),
    "flops": ("FLOPs", lambda r: _count(r.flops), True),
    "memory": ("Output memory", lambda r: human_bytes(r.output_bytes), True),
    "rf": ("Receptive field", lambda r: rf_text(r.receptive_field), False),
}
DEFAULT_COLUMNS = ("index", "name", "type", "output", "config", "params", "macs")
MAX_LISTED = 8  # items of a list in one table cell (every row of a table is as wide as its widest cell)


def _listed(items: list[str], separator: str) -> str:
    """A cell's list, the first MAX_LISTED items and how many more (JSON and CSV list them all)."""
    if len(items) <= MAX_LISTED:
        return separator.join(items)
    return separator.join(items[:MAX_LISTED]) + f"{separator}... (+{len(items) - MAX_LISTED} more)"


def _count(n: int) -> str:
    return human(n) if n else "-"


def choose_columns(extra: str | None) -> list[str]:
    """The default columns plus any named in `--columns a,b` ('all' for every column)."""
    return parse_columns(extra)[0]


def parse_columns(extra: str | None) -> tuple[list[str], frozenset[str]]:
    """The columns to show, and those `--columns` named (kept at any width; 'all' names every column)."""
    columns = list(DEFAULT_COLUMNS)
    if extra is None:
        return columns, frozenset()
    wanted = [c.strip() for c in extra.split(",") if c.strip()]
    if not wanted:
        raise CnnCalcError(f"--columns '{shown_text(extra)}' names no column", fix=f"Choose from: {', '.join(COLUMNS)}, or 'all'.")
    if wanted == ["all"]:
        return list(COLUMNS), frozenset(COLUMNS)
    for column in wanted:
        if column not in COLUMNS:
            raise CnnCalcError(f"unknown column '{shown_text(column)}' in --columns",
                               fix=f"Choose from: {', '.join(COLUMNS)}, or 'all'.")
        if column not in columns:
            columns.append(column)
    return columns, frozenset(wanted)


def summary_title(summary: Summary) -> str:
    return f"{summary.name}: input {shape_text(summary.input_shape)}, {summary.dtype}"


def totals_lines(summary: Summary) -> list[tuple[str, str]]:
    t = summary.totals
    outputs = ", ".join(shape_text(s) for s in summary.output_shapes())
    return [
        ("Input", shape_text(summary.input_shape)),
        ("Output", outputs),
        ("Layers", f"{len(summary.rows):,}"),
        ("Params", f"{t.trainable_params:,} trainable ({human(t.trainable_params)}, PyTorch's parameters())"
                   + (f" + {t.non_trainable_params:,} non-trainable (running statistics, frozen layers) = "
                      f"{t.params:,} total" if t.non_trainable_params else "")),
        ("MACs", f"{t.macs:,} ({human(t.macs)}) multiply-accumulates, batch {summary.batch}"),
        ("FLOPs", f"{t.flops:,} ({human(t.flops)}) = 2 x MACs + bias, norm, activation, pool, merge ops"),
        ("FLOPs by kind", ", ".join(f"{kind} {human(n)}" for kind, n in t.flops_by_category.items() if n)),
        ("Param memory", f"{human_bytes(t.param_bytes)} ({summary.dtype})"),
        ("Activations", f"{human_bytes(t.activation_bytes)} (all layer outputs, batch {summary.batch})"),
        ("Input memory", human_bytes(t.input_bytes)),
        ("Peak inference", f"{human_bytes(t.peak_inference_bytes)} = weights + "
                           f"{human_bytes(t.peak_activation_bytes)} of activations alive at once (at "
                           f"'{t.peak_layer}')"),
        (f"Training ({t.training.optimizer})",
         f"{human_bytes(t.training.total)} = weights {human_bytes(t.training.params)} + gradients "
         f"{human_bytes(t.training.gradients)} + optimizer state {human_bytes(t.training.optimizer_state)} + "
         f"stored activations {human_bytes(t.training.activations)}"),
    ]


WARNING_MODES = ("all", "grouped", "none")
MAX_GROUP_NAMES = 3  # layers named in a grouped warning; the rest are counted


def group_text(group: WarningGroup) -> str:
    """One line for a WarningGroup (cnncalc.lint): where it is defined, the layers (the first few and how
    many more), the code and the first warning's words; a group of one is that warning as it is."""
    first = group.first
    if len(group.warnings) == 1:
        return str(first)
    names = group.layers
    listed = _group_names(names, "{}")  # a layer's name has no spaces or commas
    where = first.where
    place = Where(where.file, where.line, where.col).prefix()
    kind = f" ({where.kind})" if where.kind else ""
    block = f" [in block '{shown_text(group.block)}']" if group.block else ""
    text = f"{place}{len(names)} layers{kind}{block}: {listed}: warning [{group.code}]: {first.advice.message}. " \
           f"{first.advice.fix}"
    if not group.same_text:
        text = text.rstrip(".") + f". (Numbers as on {names[0]}; --warnings all shows each.)"
    return text


def _group_names(names: list[str], quoted: str) -> str:
    """The first MAX_GROUP_NAMES names, each as `quoted` formats it, and how many more."""
    listed = ", ".join(quoted.format(name) for name in names[:MAX_GROUP_NAMES])
    return listed + (f" +{len(names) - MAX_GROUP_NAMES} more" if len(names) > MAX_GROUP_NAMES else "")


def _check_mode(mode: str) -> None:
    if mode not in WARNING_MODES:
        raise CnnCalcError(f"unknown --warnings '{shown_text(str(mode))}'", fix=f"Use one of {', '.join(WARNING_MODES)}.")


def warning_lines(warnings: list[Warning_] | None, mode: str = "all") -> list[str]:
    """The warnings as lines of text: each one (all), repeats grouped (grouped), or none."""
    _check_mode(mode)
    if not warnings or mode == "none":
        return []
    if mode == "all":
        return [str(w) for w in warnings]
    return [group_text(g) for g in group_warnings(warnings)]


def warning_dicts(warnings: list[Warning_]) -> list[dict[str, Any]]:
    return [{"layer": w.where.layer, "type": w.where.kind, "code": w.advice.code, "message": w.advice.message,
             "fix": w.advice.fix, "field": w.advice.field, "line": w.where.line, "column": w.where.col}
            for w in warnings]


def row_dict(r: Row | ModuleRow) -> dict[str, Any]:
    """A row for JSON and CSV. A module (--depth) has type 'module' and its span as config."""
    if isinstance(r, ModuleRow):
        config: dict[str, Any] = {"layers": r.layers, "first": r.first, "last": r.last, "last_index": r.last_index}
    else:
        config = r.layer.model_dump(mode="json", exclude={"type", "name", "inputs"})
    return {
        "index": r.index,
        "name": r.name,
        "type": r.kind,
        "inputs": list(r.inputs),
        "input_shapes": [list(s) for s in r.input_shapes],
        "output_shape": list(r.output_shape),
        "config": config,
        "params": r.params.total,
        "trainable_params": r.params.trainable,
        "non_trainable_params": r.params.non_trainable,
        "macs": r.macs,
        "flops": r.flops,
        "output_bytes": r.output_bytes,
        "receptive_field": rf_dict(r.receptive_field),
    }


def to_dict(summary: Summary, warnings: list[Warning_] | None = None) -> dict[str, Any]:
    t = summary.totals
    depth = {} if summary.depth is None else {"depth": summary.depth}  # only with --depth: the rows are modules
    return {
        "schema_version": SCHEMA_VERSION,
        "name": summary.name,
        "file": summary.file,
        "batch": summary.batch,
        "dtype": summary.dtype,
        "input_shape": list(summary.input_shape),
        "outputs": list(summary.outputs),
        "output_shapes": [list(s) for s in summary.output_shapes()],
        **depth,
        "layers": [row_dict(r) for r in summary.shown_rows],
        "totals": {
            "params": t.params,
            "trainable_params": t.trainable_params,
            "non_trainable_params": t.non_trainable_params,
            "macs": t.macs,
            "flops": t.flops,
            "flops_by_category": t.flops_by_category,
            "param_bytes": t.param_bytes,
            "activation_bytes": t.activation_bytes,
            "input_bytes": t.input_bytes,
            "peak_activation_bytes": t.peak_activation_bytes,
            "peak_layer": t.peak_layer,
            "peak_inference_bytes": t.peak_inference_bytes,
            "training": {"optimizer": t.training.optimizer, "params": t.training.params,
                         "gradients": t.training.gradients, "optimizer_state": t.training.optimizer_state,
                         "activations": t.training.activations, "total": t.training.total},
        },
        "warnings": warning_dicts(warnings or []),
    }


def to_json(summary: Summary, warnings: list[Warning_] | None = None) -> str:
    return json.dumps(to_dict(summary, warnings), indent=2) + "\n"


def markdown_table(headers: list[str], rows: list[list[str]], right: list[bool]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_warnings(warnings: list[Warning_] | None, mode: str = "all") -> list[str]:
    """Warnings as Markdown list items: '`conv1` (lost-pixels): ...'; grouped, '`a`, `b`, `c` +2 more
    (strided-gaps, 5 layers): ...' with the first one's words."""
    _check_mode(mode)
    if not warnings or mode == "none":
        return []
    if mode == "all":
        return [f"`{w.layer}` ({w.advice.code}): {w.advice.message}. {w.advice.fix}" for w in warnings]
    items = []
    for group in group_warnings(warnings):
        names, first = group.layers, group.first
        block = f" of block '{shown_text(group.block)}'" if group.block else ""
        count = f", {len(names)} layers{block}" if len(names) > 1 else ""
        differ = "" if group.same_text else f" (Numbers as on `{names[0]}`.)"
        items.append(f"{_group_names(names, '`{}`')} ({group.code}{count}): {first.advice.message}. "
                     f"{first.advice.fix}{differ}")
    return items


def to_markdown(summary: Summary, columns: list[str], warnings: list[Warning_] | None = None, warnings_mode: str = "all") -> str:
    table = markdown_table([COLUMNS[c][0] for c in columns],
                            [[COLUMNS[c][1](r) for c in columns] for r in summary.shown_rows],
                            [COLUMNS[c][2] for c in columns])
    totals = "\n".join(f"- **{key}**: {value}" for key, value in totals_lines(summary))
    notes = "".join(f"- {line}\n" for line in markdown_warnings(warnings, warnings_mode))
    return f"## {summary.name}\n\n{table}\n\n{totals}\n" + (f"\n### Warnings\n\n{notes}" if notes else "")


CSV_FIELDS = ("index", "name", "type", "inputs", "input_shapes", "output_shape", "params", "trainable_params",
              "non_trainable_params", "macs", "flops", "output_bytes")


def to_csv(summary: Summary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for layer in to_dict(summary)["layers"]:
        writer.writerow([
            json.dumps(layer[f]) if isinstance(layer[f], list) and f != "inputs" else
            " ".join(layer[f]) if f == "inputs" else layer[f]
            for f in CSV_FIELDS])
    return out.getvalue()


def zoo_json(summaries: dict[str, Summary]) -> str:
    return json.dumps([{"spec": spec, "name": s.name, "input_shape": list(s.input_shape),
                        "output_shapes": [list(o) for o in s.output_shapes()], "layers": len(s.rows),
                        "trainable_params": s.totals.trainable_params, "params": s.totals.params,
                        "macs": s.totals.macs, "flops": s.totals.flops} for spec, s in summaries.items()],
                      indent=2) + "\n"
