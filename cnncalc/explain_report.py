"""Explanations -> Rich text, JSON and Markdown. Builds output; never prints."""
from __future__ import annotations

import json

from rich.console import Group
from rich.text import Text

from cnncalc.analyze import Summary
from cnncalc.explain import Explanation
from cnncalc.formats import SCHEMA_VERSION, rf_dict


def explain_renderable(explanations: list[Explanation]) -> Group:
    text = Text()
    for e in explanations:
        text.append(e.title + "\n", style="bold")
        for line in e.lines:
            text.append(f"  {line}\n", style="yellow" if line.startswith("warning") else None)
        text.append("\n")
    return Group(text)


def explain_json(summary: Summary, explanations: list[Explanation]) -> str:
    return json.dumps({
        "schema_version": SCHEMA_VERSION, "name": summary.name, "batch": summary.batch,
        "layers": [{"name": e.row.name, "type": e.row.kind, "title": e.title, "lines": list(e.lines),
                    "output_shape": list(e.row.output_shape), "params": e.row.params.total, "macs": e.row.macs,
                    "flops": e.row.flops, "receptive_field": rf_dict(e.row.receptive_field)}
                   for e in explanations]}, indent=2) + "\n"


def explain_markdown(summary: Summary, explanations: list[Explanation]) -> str:
    parts = [f"## {summary.name}: explained\n"]
    for e in explanations:
        parts.append(f"### `{e.row.name}`\n\n{e.title}\n\n```text\n" + "\n".join(e.lines) + "\n```\n")
    return "\n".join(parts)
