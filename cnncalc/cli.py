"""The command line: parse options, call the library, render, choose the exit code."""
from __future__ import annotations

import functools
import os
import sys
from enum import Enum
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from cnncalc import __version__
from cnncalc.errors import CnnCalcError, ExitCode

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Shapes, parameters and MACs/FLOPs of convolutional networks written as YAML specs, "
                       "proved by a NumPy forward pass.")
_state = {"debug": False}


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """User errors become one clear paragraph on stderr and exit code 2 (tracebacks only with --debug)."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CnnCalcError as err:
            if _state["debug"]:
                raise
            text = str(err)
            if not err.where.file:
                text = "cnncalc: " + text
            typer.echo(text, err=True)
            raise typer.Exit(ExitCode.USER_ERROR) from None
    return wrapper


def show(renderable: RenderableType) -> None:
    """Print to stdout; when not a terminal, wide enough that no cell is cut (unless COLUMNS is set)."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        width = Console(width=10_000).measure(renderable).maximum
        console = Console(width=max(80, width))
    console.print(renderable)


def note(message: str) -> None:
    Console(stderr=True).print(message, style="dim", highlight=False, markup=False)


def parse_shape(text: str, option: str = "--input") -> tuple[int, ...]:
    parts = text.replace("x", ",").split(",")
    shape = tuple(int(p) for p in parts) if all(p.strip().isdigit() for p in parts) else ()
    if not 1 <= len(shape) <= 4 or min(shape) < 1:
        raise CnnCalcError(f"{option} '{text}' is not a shape", fix=f"Write one sample's shape, channels first, "
                           f"e.g. {option} 3,224,224 (no batch axis: use --batch).")
    return shape


def load_network(spec: str, input_shape: str | None) -> Any:
    from cnncalc.spec import load, locate
    path, bundled = locate(spec)
    if bundled:
        note(f"using the bundled spec '{spec}' ({path})")
    network = load(path)
    if input_shape:
        network = network.with_input(parse_shape(input_shape))
    return network


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for user errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    _state["debug"] = debug
    if version:
        typer.echo(f"cnncalc {__version__}")
        raise typer.Exit()


SpecArg = Annotated[str, typer.Argument(help="A YAML spec file, or the name of a bundled spec (see `cnncalc zoo`).")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", help="Batch size (shapes and counts include it).")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="Element type for memory: float32, float64, float16, "
                                                       "bfloat16, int8.")]
InputOpt = Annotated[Optional[str], typer.Option("--input", "-i", help="Override the spec's input shape, e.g. "
                                                                       "3,224,224 (one sample, channels first).")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="Write to this file (atomically) "
                                                                         "instead of stdout.")]


@app.command()
@user_errors
def summarize(
    spec: SpecArg,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = "float32",
    input_shape: InputOpt = None,
    format: FormatOpt = Format.table,
    columns: Annotated[Optional[str], typer.Option(
        "--columns", help="More table columns, comma-separated: inputs, input, trainable, flops, memory, or "
                          "'all'.")] = None,
    output: OutputOpt = None,
) -> None:
    """Every layer's output shape, parameters and MACs, with totals."""
    from cnncalc import report
    from cnncalc.analyze import analyze
    chosen = report.choose_columns(columns)
    summary = analyze(load_network(spec, input_shape), batch=batch, dtype=dtype)
    if format is Format.table:
        if output:
            raise CnnCalcError("--output needs a machine format", fix="Add --format json, markdown or csv.")
        show(report.summary_renderable(summary, chosen))
        return
    text = {Format.json: lambda: report.to_json(summary), Format.markdown: lambda: report.to_markdown(summary, chosen),
            Format.csv: lambda: report.to_csv(summary)}[format]()
    emit(text, output, inputs=[summary.file])


def emit(text: str, output: str | None, inputs: list[str]) -> None:
    if output:
        from cnncalc.fileio import write_text_atomic
        write_text_atomic(output, text, inputs=inputs)
        note(f"wrote {output}")
    else:
        sys.stdout.write(text)


@app.command()
@user_errors
def zoo(format: FormatOpt = Format.table) -> None:
    """The bundled specs, with their totals (use a name anywhere a spec is expected)."""
    import json

    from cnncalc.analyze import analyze
    from cnncalc.report import human, shape_text
    from cnncalc.spec import bundled_dir, bundled_names, load
    rows = []
    for name in bundled_names():
        summary = analyze(load(bundled_dir() / f"{name}.yaml"))
        rows.append({"spec": name, "name": summary.name, "input_shape": list(summary.input_shape),
                     "output_shapes": [list(s) for s in summary.output_shapes()], "layers": len(summary.rows),
                     "params": summary.totals.params, "macs": summary.totals.macs, "flops": summary.totals.flops})
    if format is Format.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if format is not Format.table:
        raise CnnCalcError(f"zoo has no {format.value} format", fix="Use --format table or json.")
    table = Table(title="Bundled specs (batch 1)", title_justify="left", header_style="bold")
    for header, right in (("Spec", False), ("Network", False), ("Input", False), ("Output", False),
                          ("Layers", True), ("Params", True), ("MACs", True), ("FLOPs", True)):
        table.add_column(header, justify="right" if right else "left")
    for r in rows:
        table.add_row(r["spec"], r["name"], shape_text(r["input_shape"]),
                      ", ".join(shape_text(s) for s in r["output_shapes"]), str(r["layers"]),
                      human(r["params"]), human(r["macs"]), human(r["flops"]))
    show(table)


@app.command()
@user_errors
def layers(kind: Annotated[Optional[str], typer.Argument(help="One layer type to describe.")] = None) -> None:
    """The layer catalogue: types, fields and defaults, accepted aliases, and how each is counted."""
    from cnncalc.catalogue import catalogue_table, kind_detail
    show(kind_detail(kind) if kind else catalogue_table())


def run() -> None:
    app()
