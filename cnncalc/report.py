"""A summary as Rich renderables: the per-layer table fitted to the width it is printed at, the totals panel
and the warnings (the texts come from `formats`). Builds output; never prints."""
from __future__ import annotations

from functools import cached_property
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, OverflowMethod, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cnncalc.analyze import Summary
from cnncalc.fit import fit_columns, shorten_middle, table_width, wrap_atoms
from cnncalc.formats import COLUMNS, summary_title, totals_lines, warning_lines
from cnncalc.lint import Warning_
from cnncalc.units import human, shape_text

# When a table is wider than the terminal, these default columns make room, first to go first (the type is
# mostly in the name: conv1, bn1, relu); a column named in --columns is never dropped.
DROP_ORDER = ("type", "config", "index")
NAME_FLOOR = 8  # names are shortened from the middle down to this many cells ("lay…nv1"), no further


def summary_table(summary: Summary, columns: list[str]) -> Table:
    """Every column at its natural width (as wide as its longest cell)."""
    return SummaryTable(summary, columns).natural_table()


class SummaryTable:
    """The per-layer table, fitted to the width it is printed at: as wide as its longest cells when there is
    room (Rich need not measure a cell); else the default columns not asked for make room (DROP_ORDER), then
    names are shortened from the middle, so no name, shape or number is split over two lines. Each cell's
    text is made once, and given to Rich as Text: shown as written (a string would be parsed for markup and
    emoji codes and recoloured by the repr highlighter, which is also half of Rich's time per cell)."""

    def __init__(self, summary: Summary, columns: list[str], keep: frozenset[str] = frozenset()):
        self.summary, self.columns, self.keep = summary, columns, keep
        rows = summary.shown_rows
        self.cells = {key: [COLUMNS[key][1](row) for row in rows] for key in columns}
        self.cell_widths = {key: max(map(cell_len, cells), default=0) for key, cells in self.cells.items()}
        self.natural = {key: max(self.cell_widths[key], cell_len(COLUMNS[key][0])) for key in columns}
        self.narrow = {key: max(self.cell_widths[key], *map(cell_len, COLUMNS[key][0].split())) for key in columns}

    @property
    def natural_width(self) -> int:
        return table_width(self.natural.values())

    def natural_table(self) -> Table:
        return self._build(self.columns, self.natural, None, summary_title(self.summary), overflow="fold")

    def fitted(self, room: int) -> tuple[Table, list[str], int]:
        """The table fitted into `room` cells, its footnote lines, and its width."""
        fit = fit_columns(self.columns, self.natural, self.narrow, room, DROP_ORDER, self.keep, "name", NAME_FLOOR)
        width = min(table_width(fit.widths.values()), room)
        table = self._build(fit.columns, fit.widths, fit.shortened, summary_title(self.summary),
                            overflow="ellipsis" if fit.fits else "fold", fixed=fit.fits, room=width)
        notes = []
        if fit.dropped:
            notes.append(f"Not shown at this width: {', '.join(COLUMNS[c][0] for c in fit.dropped)} "
                         f"(--columns {','.join(fit.dropped)} shows them).")
        if fit.shortened and fit.widths["name"] < self.cell_widths["name"]:
            longest = max(self.cells["name"], key=cell_len)
            notes.append(f"Long names are shortened in the middle ({longest} -> "
                         f"{shorten_middle(longest, fit.widths['name'])}); a wider terminal, -o FILE or -f json "
                         "shows them whole.")
        if not fit.fits:
            notes.append(f"The chosen columns need {table_width(fit.widths.values())} characters, more than the {room} "
                         "here, so some cells wrap: widen the terminal or choose fewer --columns.")
        return table, [line for note in notes for line in wrap_atoms(note, width)], width

    def _build(self, columns: list[str], widths: dict[str, int], shortened: str | None, title: str,
               overflow: OverflowMethod, fixed: bool = True, room: int | None = None) -> Table:
        width = table_width(widths[c] for c in columns) if room is None else room
        if cell_len(title) > width:  # Rich would wrap it at any space, inside a shape too
            title = "\n".join(wrap_atoms(title, width))
        table = Table(title=title, title_justify="left", header_style="bold", show_lines=False)
        for key in columns:
            header, _, right = COLUMNS[key]
            table.add_column(header, justify="right" if right else "left", overflow=overflow,
                             width=widths[key] if fixed or key == shortened else None)
        cells = [self.cells[key] if key != shortened or widths[key] >= self.cell_widths[key] else
                 [shorten_middle(c, widths[key]) for c in self.cells[key]] for key in columns]
        for row in zip(*cells):
            table.add_row(*map(Text, row))
        return table


def totals_panel(summary: Summary, width: int | None = None) -> Panel:
    """The totals, as wide as their longest line; with `width`, no wider than that (values wrap between whole
    numbers, shapes and words, under their own column)."""
    text = Text()
    lines = totals_lines(summary)
    key_width = max(len(k) for k, _ in lines)
    value_width = None if width is None else max(width - 4 - key_width - 2, 12)  # borders and padding: 4
    for i, (key, value) in enumerate(lines):
        text.append(f"{key:<{key_width}}  ", style="bold")
        if value_width is not None:
            value = ("\n" + " " * (key_width + 2)).join(wrap_atoms(value, value_width))
        text.append(value + ("\n" if i < len(lines) - 1 else ""))
    return Panel(text, title="Totals", title_align="left", expand=False, width=width)


def warnings_text(warnings: list[Warning_], lines: list[str] | None = None) -> Text:
    text = Text()
    for line in ([str(w) for w in warnings] if lines is None else lines):
        text.append(f"{line}\n", style="yellow")
    return text


UNBOUNDED = 10**6  # a width wider than any line


class SummaryView:
    """`summarize`'s table, totals and warnings, laid out for the width it is printed at. Where everything
    fits it is exactly the natural layout (the golden files); narrower, the table drops columns and shortens
    names (with a footnote saying so), the totals panel is no wider than the table, and totals and warnings
    wrap between whole words, shapes and numbers."""

    def __init__(self, summary: Summary, columns: list[str], warnings: list[str], keep: frozenset[str] = frozenset()):
        self.summary, self.warnings = summary, warnings
        self.table = SummaryTable(summary, columns, keep)

    @cached_property
    def natural(self) -> Group:
        return Group(*self._parts(self.natural_table, self.natural_panel, warnings_text([], self.warnings)))

    @cached_property
    def natural_table(self) -> Table:
        return self.table.natural_table()

    @cached_property
    def natural_panel(self) -> Panel:
        return totals_panel(self.summary)

    @staticmethod
    def _parts(table: Table, panel: Panel, warnings: Text, notes: list[str] | None = None) -> list[RenderableType]:
        parts: list[RenderableType] = [table]
        if notes:
            parts.append(Text("\n".join(notes), style="dim"))
        parts.append(panel)
        if warnings.plain:
            parts.append(warnings)
        return parts

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.natural)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = options.max_width
        unbounded = options.update_width(UNBOUNDED)  # Measurement.get caps what it finds at the width given

        def fits(renderable: Any) -> bool:
            return Measurement.get(console, unbounded, renderable).maximum <= room

        if self.table.natural_width <= room and fits(self.natural):
            yield self.natural
            return
        notes: list[str] = []
        if self.table.natural_width <= room:
            table, width = self.natural_table, self.table.natural_width
        else:
            table, notes, width = self.table.fitted(room)
        panel = self.natural_panel
        if not fits(panel):
            panel = totals_panel(self.summary, width)
        warnings = self.warnings
        if any(cell_len(line) > room for line in warnings):
            warnings = [part for line in warnings for part in wrap_atoms(line, room)]
        yield Group(*self._parts(table, panel, warnings_text([], warnings), notes))


def summary_renderable(summary: Summary, columns: list[str], warnings: list[Warning_] | None = None,
                       keep: frozenset[str] = frozenset(), warnings_mode: str = "all") -> SummaryView:
    """The table (summary.shown_rows: layers, or modules at a --depth), totals and warnings; `keep` are the
    columns never dropped to fit a narrow terminal (those named in --columns)."""
    return SummaryView(summary, columns, warning_lines(warnings, warnings_mode), keep)


def zoo_table(summaries: dict[str, Summary]) -> Table:
    table = Table(title="Bundled specs (batch 1)", title_justify="left", header_style="bold")
    for header, right in (("Spec", False), ("Network", False), ("Input", False), ("Output", False),
                          ("Layers", True), ("Trainable", True), ("Total params", True), ("MACs", True),
                          ("FLOPs", True)):
        table.add_column(header, justify="right" if right else "left")
    for spec, s in summaries.items():
        table.add_row(spec, s.name, shape_text(s.input_shape), ", ".join(shape_text(o) for o in s.output_shapes()),
                      str(len(s.rows)), human(s.totals.trainable_params), human(s.totals.params),
                      human(s.totals.macs), human(s.totals.flops))
    return table
