"""`cnncalc layers`: the catalogue, described from the layer classes themselves."""
from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cnncalc.errors import CnnCalcError
from cnncalc.layers import FIELD_ALIASES, KIND_CLASSES, KINDS, TYPE_SPELLINGS, canonical_type, type_names
from cnncalc.layers import base
from cnncalc.errors import did_you_mean

COMMON_FIELDS = ("type", "name", "inputs", "trainable")

CONVENTIONS = [
    ("Shapes", "per sample, channels first; tables and JSON add the batch axis first, as PyTorch"),
    ("Parameters", "trainable = PyTorch's parameters(); non-trainable = BatchNorm running mean/var and the "
                   "weights of layers marked `trainable: false`; total = both (Keras-style)"),
    ("MACs", "multiply-accumulates of conv, transposed conv and linear layers only, bias excluded, whole batch. "
             "Conv: output elements x C_in/groups x kernel elements. Transposed conv: INPUT elements x "
             "C_out/groups x kernel elements. Linear: output elements x in_features"),
    ("FLOPs", "2 x MACs plus each kind's own count below (bias adds, pooling, normalisation, activations, "
              "merges)"),
    ("Units", "counts use SI prefixes (M = 10^6, G = 10^9); bytes use binary ones (MiB = 2^20)"),
]


def fields_text(cls: type[base.LayerBase]) -> str:
    parts = []
    for name, info in cls.model_fields.items():
        if name in COMMON_FIELDS:
            continue
        parts.append(f"{name}" if info.is_required() else f"{name}={_default(info.default)}")
    return ", ".join(parts) or "-"


def _default(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def aliases_of(kind: str) -> list[str]:
    squashed = kind.replace("_", "")
    return sorted(s for s, k in TYPE_SPELLINGS.items() if k == kind and s != squashed)


def catalogue_table() -> Group:
    table = Table(title="Layer types (`cnncalc layers TYPE` for one)", title_justify="left", header_style="bold")
    for header in ("Types", "Fields (default)", "Output shape", "FLOPs"):
        table.add_column(header, overflow="fold")
    for cls in KIND_CLASSES:
        table.add_row(*map(Text, (", ".join(type_names(cls)), fields_text(cls), cls.shape_rule, cls.flops_rule)))
    notes = Text()
    notes.append("Every layer also takes: name, inputs (earlier layer names; default the previous layer), "
                 "trainable (default true).\n")
    notes.append("Keras field spellings accepted: " +
                 ", ".join(f"{a} -> {c}" for a, c in FIELD_ALIASES.items()) +
                 "; `activation: relu` on any layer adds the activation as its own row.\n")
    for key, value in CONVENTIONS:
        notes.append(f"{key}: ", style="bold")
        notes.append(value + "\n")
    return Group(table, notes)


def kind_detail(spelling: str) -> Table:
    kind = canonical_type(spelling)
    if kind is None:
        raise CnnCalcError(f"unknown layer type '{spelling}'",
                           fix=did_you_mean(spelling.lower(), list(KINDS)) + "`cnncalc layers` lists every type.")
    cls = KINDS[kind]
    table = Table(title=f"{kind} ({cls.__name__})", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [("Fields", fields_text(cls)),
            ("Inputs", {(1, 1): "one", (1, 2): "one, or two", (2, None): "two or more"}[cls.arity]),
            ("Output shape", cls.shape_rule), ("FLOPs", cls.flops_rule), ("Category", cls.category),
            ("Also spelled", ", ".join(aliases_of(kind)) or "-")]
    if cls.__doc__ and cls.__doc__ != base.LayerBase.__doc__:
        rows.append(("About", " ".join(cls.__doc__.split())))
    for key, value in rows:  # Text: a rule's `[groups, C/groups]` or `:end:` is shown as written, not as markup
        table.add_row(key, Text(value))
    return table
