"""Printing Rich renderables: on a terminal as Rich lays them out; to a pipe or a file as wide as they need, so
that no cell is cut. Imported only by commands that print a renderable (`-f json` never loads Rich)."""
from __future__ import annotations

import io
import os
import sys

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text


def show(renderable: RenderableType) -> None:
    """Print to stdout; when not a terminal, wide enough that no cell is cut (unless COLUMNS is set)."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=_unwrapped_width(renderable))
    console.print(renderable)


def plain_text(renderable: RenderableType) -> str:
    """The renderable as plain text (no colours), as wide as it needs, for a file."""
    buffer = io.StringIO()
    Console(file=buffer, width=_unwrapped_width(renderable), color_system=None, force_terminal=False).print(renderable)
    return buffer.getvalue()


def _unwrapped_width(renderable: RenderableType) -> int:
    """The width at which nothing wraps. Tables get fixed column widths first (the longest cell of each, all
    cells being one line), so that Rich need not measure every cell, twice, to find what is known."""
    for table in _tables(renderable):
        for column in table.columns:
            widths = [_line_width(cell) for cell in (column.header, *column._cells)]
            if column.width is None and None not in widths:
                column.width = max(width for width in widths if width is not None)
    return max(80, Console(width=10_000).measure(renderable).maximum)


def _line_width(cell: RenderableType) -> int | None:
    """A one-line text cell's width; None for anything Rich has to measure."""
    if isinstance(cell, Text):
        return None if "\n" in cell.plain else cell.cell_len
    if isinstance(cell, str):
        return None if "\n" in cell else cell_len(cell)
    return None


def _tables(renderable: RenderableType) -> list[Table]:
    if isinstance(renderable, Table):
        return [renderable]
    if isinstance(renderable, Group):
        return [table for part in renderable.renderables for table in _tables(part)]
    return []

