"""Fitting tables and text into a terminal's width without splitting a name, a shape or a number: whole-token
wrapping, names shortened from the middle, and which columns make room. No Rich, no cnncalc model here."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from rich.cells import cell_len

ELLIPSIS = "…"
_UNIT = re.compile(r"(?:[kMGT]|[KMGT]iB|B)[,.;:)]*")  # '61.1 M', '44.6 MiB,' and '512 B)' stay one token


def atoms(text: str) -> list[str]:
    """`text`'s words, with a shape ('[1, 64, 56, 56]') and a number with its unit ('6.12 MiB') each one atom."""
    found: list[str] = []
    open_ = False  # inside '[...]'
    for word in text.split():
        if found and (open_ or (_UNIT.fullmatch(word) and found[-1][-1:].isdigit())):
            found[-1] += " " + word
        else:
            found.append(word)
        open_ = found[-1].count("[") > found[-1].count("]")
    return found


def wrap_atoms(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells, broken only between atoms (an atom wider than `width`, which
    only a single very long word can be, is cut into pieces of `width`)."""
    width = max(width, 1)
    lines: list[str] = []
    line = ""
    for atom in atoms(text):
        while cell_len(atom) > width:
            if line:
                lines.append(line)
                line = ""
            cut = _cut(atom, width)
            lines.append(atom[:cut])
            atom = atom[cut:]
        if line and cell_len(line) + 1 + cell_len(atom) <= width:
            line += " " + atom
        else:
            if line:
                lines.append(line)
            line = atom
    return [*lines, line] if line or not lines else lines


def _cut(text: str, width: int) -> int:
    """How many characters of `text` fill at most `width` cells (at least one)."""
    used = 0
    for i, char in enumerate(text):
        used += cell_len(char)
        if used > width:
            return max(i, 1)
    return len(text)


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells, its middle replaced by '…' ('layer4.1.downsample.0' in 15:
    'layer4.…ample.0'); the end, which tells siblings apart, keeps the odd character."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:_cut(text, head)] + ELLIPSIS + text[len(text) - _cut(text[::-1], tail):] if head else \
        ELLIPSIS + text[len(text) - _cut(text[::-1], tail):]


def table_width(widths: Iterable[int]) -> int:
    """A Rich table's width (heavy-head box, padding 1) from its columns' content widths."""
    widths = list(widths)
    return sum(w + 3 for w in widths) + 1


@dataclass(frozen=True)
class Fit:
    columns: list[str]         # the columns shown, in order
    widths: dict[str, int]     # their content widths
    dropped: list[str]         # columns left out, in the order they were dropped
    shortened: str | None      # the column whose cells were shortened to its width, if any
    fits: bool                 # False: even so the table is wider than the room (cells will wrap)


def fit_columns(columns: list[str], natural: dict[str, int], narrow: dict[str, int], room: int,
                drop_order: Iterable[str], keep: Iterable[str], shrink: str, floor: int) -> Fit:
    """Which columns, how wide, to fit `room` cells: as they are (`natural` widths); else with headers wrapped
    at their spaces (`narrow`: the widest cell or header word); else dropping the `drop_order` columns not in
    `keep`, one at a time; else shortening the `shrink` column's cells, down to `floor`."""
    shown, keep = list(columns), set(keep)
    dropped: list[str] = []

    def width_of(widths: dict[str, int]) -> int:
        return table_width(widths[c] for c in shown)

    if width_of(natural) <= room:
        return Fit(shown, {c: natural[c] for c in shown}, [], None, True)
    for column in [None, *drop_order]:
        if column is not None:
            if column not in shown or column in keep:
                continue
            shown.remove(column)
            dropped.append(column)
        for widths in (natural, narrow):
            if width_of(widths) <= room:
                return Fit(list(shown), {c: widths[c] for c in shown}, dropped, None, True)
    widths = {c: narrow[c] for c in shown}
    if shrink in shown:
        spare = room - width_of(widths)  # negative: how much too wide
        widths[shrink] = max(min(widths[shrink], floor), widths[shrink] + spare)
        return Fit(shown, widths, dropped, shrink, table_width(widths.values()) <= room)
    return Fit(shown, widths, dropped, None, False)
