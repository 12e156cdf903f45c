"""Solutions and chains -> Rich tables, JSON and Markdown. Builds output; never prints."""
from __future__ import annotations

import json
from typing import Any, Sequence

from rich.table import Table

from cnncalc.errors import CnnCalcError
from cnncalc.formats import SCHEMA_VERSION, markdown_table
from cnncalc.solve import KIND_LABELS, Chain, Solution

MAX_SHOWN = 1_000  # answers one table, JSON or Markdown document holds (a table of more takes many seconds)


# ---- renderers -------------------------------------------------------------------------------------------

def _columns(kind: str) -> list[str]:
    return list(Solution(kind, 1, 1, 0).fields())


def _check_shown(answers: Sequence[Any], what: str) -> None:
    """Refuse to render more answers than anyone reads (`--limit` may ask for up to MAX_INT)."""
    if len(answers) > MAX_SHOWN:
        raise CnnCalcError(f"{len(answers):,} {what}s are more than cnncalc shows at once ({MAX_SHOWN:,})",
                           fix=f"Give --limit {MAX_SHOWN:,} or less, or narrow the search: --kernel, --stride, "
                               "--dilation.")


def _title(size_in: int, size_out: int, kind: str, count: int, what: str, layers: int | None = None) -> str:
    counted = f"{count} {what}{'' if count == 1 else 's'}"
    if layers is not None:
        counted += f" of {layers} layer{'' if layers == 1 else 's'}"
    return f"{KIND_LABELS[kind].capitalize()} {size_in} -> {size_out}: {counted}, simplest first"


def solutions_table(size_in: int, size_out: int, kind: str, solutions: Sequence[Solution]) -> Table:
    """#, the catalogue fields, and the output-size formula with the numbers filled in."""
    _check_shown(solutions, "solution")
    columns = _columns(kind)
    table = Table(title=_title(size_in, size_out, kind, len(solutions), "solution"), title_justify="left",
                  header_style="bold")
    table.add_column("#", justify="right")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_column("output size", overflow="fold")
    for i, s in enumerate(solutions, 1):
        fields = s.fields()
        table.add_row(str(i), *(str(fields[c]) for c in columns), s.formula(size_in))
    return table


def _chain_layers_text(chain: Chain) -> str:
    if chain.distinct == 1:
        return f"{chain.layers[0].short()} x{len(chain)}"
    return ", ".join(s.short() for s in chain.layers)


def _sizes_text(chain: Chain) -> str:
    return " -> ".join(str(n) for n in chain.sizes)


def chains_table(size_in: int, size_out: int, kind: str, chains: Sequence[Chain]) -> Table:
    """#, the sizes on the way and the layers ('k=3 s=2 p=1 x5' when one layer is repeated)."""
    _check_shown(chains, "chain")
    layers = len(chains[0]) if chains else 0
    table = Table(title=_title(size_in, size_out, kind, len(chains), "chain", layers),
                  title_justify="left", header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("sizes", overflow="fold")
    table.add_column("layers", overflow="fold")
    for i, chain in enumerate(chains, 1):
        table.add_row(str(i), _sizes_text(chain), _chain_layers_text(chain))
    return table


def _header(size_in: int, size_out: int, kind: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "input": size_in, "output": size_out, "kind": kind}


def solutions_json(size_in: int, size_out: int, kind: str, solutions: Sequence[Solution]) -> str:
    """{"schema_version": 1, "input", "output", "kind", "solutions": [{catalogue fields}, ...]}"""
    _check_shown(solutions, "solution")
    data = {**_header(size_in, size_out, kind), "solutions": [s.fields() for s in solutions]}
    return json.dumps(data, indent=2) + "\n"


def chains_json(size_in: int, size_out: int, kind: str, chains: Sequence[Chain]) -> str:
    """{"schema_version": 1, "input", "output", "kind", "layers": L,
        "chains": [{"layers": [{catalogue fields}, ...], "sizes": [224, 112, ...]}, ...]}"""
    _check_shown(chains, "chain")
    data = {**_header(size_in, size_out, kind), "layers": len(chains[0]) if chains else 0,
            "chains": [{"layers": [s.fields() for s in c.layers], "sizes": list(c.sizes)} for c in chains]}
    return json.dumps(data, indent=2) + "\n"


def solutions_markdown(size_in: int, size_out: int, kind: str, solutions: Sequence[Solution]) -> str:
    _check_shown(solutions, "solution")
    columns = _columns(kind)
    rows = [[str(i), *(str(s.fields()[c]) for c in columns), f"`{s.formula(size_in)}`"]
            for i, s in enumerate(solutions, 1)]
    table = markdown_table(["#", *columns, "output size"], rows, [True] * (len(columns) + 1) + [False])
    return f"## {_title(size_in, size_out, kind, len(solutions), 'solution')}\n\n{table}\n"


def chains_markdown(size_in: int, size_out: int, kind: str, chains: Sequence[Chain]) -> str:
    _check_shown(chains, "chain")
    layers = len(chains[0]) if chains else 0
    rows = [[str(i), _sizes_text(c), _chain_layers_text(c)] for i, c in enumerate(chains, 1)]
    table = markdown_table(["#", "sizes", "layers"], rows, [True, False, False])
    return f"## {_title(size_in, size_out, kind, len(chains), 'chain', layers)}\n\n{table}\n"


