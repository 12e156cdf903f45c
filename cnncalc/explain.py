"""`cnncalc explain`: every number of a layer with its formula and this layer's values filled in."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from math import prod


from cnncalc.analyze import Row, Summary
from cnncalc.errors import CnnCalcError, shown_text
from cnncalc.layers.receptive_field import ReceptiveField, widest
from cnncalc.lint import Warning_
from cnncalc.formats import rf_text
from cnncalc.units import shape_text
from cnncalc.errors import did_you_mean
from cnncalc.network import Network


@dataclass(frozen=True)
class Explanation:
    row: Row
    lines: tuple[str, ...]

    @property
    def title(self) -> str:
        r = self.row
        inputs = ", ".join(shape_text(s) for s in r.input_shapes)
        hyper = f" {r.layer.hyper()}" if r.layer.hyper() else ""
        return f"{r.name} ({r.kind}{hyper}): {inputs} -> {shape_text(r.output_shape)}"


MAX_GLOBS = 100  # patterns with wildcards in one call (each is matched against every layer's name)


def select(summary: Summary, patterns: list[str]) -> list[Row]:
    """Rows named by the patterns (exact names or shell-style globs like 'layer1.*'), in network order.
    Exact names are looked up, so any number of them is quick; wildcard patterns are matched one by one."""
    if not patterns:
        return list(summary.rows)
    names = [r.name for r in summary.rows]
    exact = set(names).intersection(patterns)
    globs = [p for p in dict.fromkeys(patterns) if p not in exact]
    if len(globs) > MAX_GLOBS:
        raise CnnCalcError(f"{len(globs):,} patterns that are not layer names are more than explain matches at once "
                           f"({MAX_GLOBS})", fix="Give fewer patterns (exact layer names are not limited), or none "
                                                 "to explain every layer.")
    for pattern in globs:
        if not fnmatch.filter(names, pattern):
            raise CnnCalcError(f"no layer matches '{shown_text(pattern)}'",
                               fix=did_you_mean(pattern, names) + "Use a layer name from `cnncalc summarize`, "
                                   "or a pattern such as 'layer1.*'.")
    return [r for r in summary.rows if r.name in exact or any(fnmatch.fnmatchcase(r.name, p) for p in globs)]


def params_line(row: Row) -> str | None:
    weights = row.layer.weight_shapes(*(s[1:] for s in row.input_shapes))
    if not weights:
        return None

    def term(shape: tuple[int, ...]) -> str:
        dims = [str(d) for d in shape]
        return f"{dims[0]} * ({' * '.join(dims[1:])})" if len(dims) > 2 else " * ".join(dims)

    text = "params = " + " + ".join(f"{term(w.shape)} [{key or row.name}]" for key, w in weights.items())
    text += f" = {row.params.total:,}"
    if row.params.non_trainable:
        text += f"  ({row.params.trainable:,} trainable, {row.params.non_trainable:,} non-trainable)"
    return text


def flops_line(row: Row, batch: int) -> str:
    extra = row.flops - 2 * row.macs
    rule = row.layer.flops_rule
    if row.macs:
        return f"FLOPs = 2 * {row.macs:,} + {extra:,} = {row.flops:,}  ({rule})"
    return f"FLOPs = {row.flops:,}  ({rule}{', batch ' + str(batch) if batch > 1 and row.flops else ''})"


def rf_lines(row: Row, before: ReceptiveField | None) -> list[str]:
    after = row.receptive_field
    steps = row.layer.receptive_field_steps(before, *(s[1:] for s in row.input_shapes)) if before else None
    if steps is not None:
        return steps
    if after is None:
        return ["receptive field: no longer defined past this layer (spatial positions are mixed)"] \
            if before is not None else []
    if after == before:
        return [f"receptive field unchanged: {rf_text(after)}"]
    return [f"receptive field {rf_text(before)} -> {rf_text(after)}"]


def explain(network: Network, summary: Summary, patterns: list[str], warnings: list[Warning_]) -> list[Explanation]:
    fields = {"input": ReceptiveField.of_input(len(network.input_shape) - 1)}
    fields.update({r.name: r.receptive_field for r in summary.rows})
    chosen = {r.name for r in select(summary, patterns)}
    out = []
    for row in summary.rows:
        if row.name not in chosen:
            continue
        per_sample = tuple(s[1:] for s in row.input_shapes)
        lines = list(row.layer.explain(*per_sample))
        if summary.batch > 1 and row.macs:
            lines.append(f"MACs for batch {summary.batch} = {summary.batch} * {row.macs // summary.batch:,} = "
                         f"{row.macs:,}")
        for line in (params_line(row), flops_line(row, summary.batch)):
            if line:
                lines.append(line)
        inputs = [fields[name] for name in row.layer.inputs]
        lines += rf_lines(row, inputs[0] if len(inputs) == 1 else widest(inputs))
        lines.append(f"output memory = {' * '.join(map(str, row.output_shape))} * "
                     f"{row.output_bytes // prod(row.output_shape)} bytes = {row.output_bytes:,} bytes")
        lines += [f"warning [{w.advice.code}]: {w.advice.message}. {w.advice.fix}" for w in warnings
                  if w.layer == row.name]
        out.append(Explanation(row, tuple(lines)))
    return out
