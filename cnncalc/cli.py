"""The command line: parse options, call the library, render, choose the exit code."""
from __future__ import annotations

import functools
import re
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterable, Optional, Sequence

import typer

from cnncalc import __version__
from cnncalc.errors import CnnCalcError, ExitCode, ManyErrors, printable, shown, shown_text
from cnncalc.limits import MAX_INT, MAX_OPTION

if TYPE_CHECKING:
    from rich.table import Table

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
            if not err.where.file and not isinstance(err, ManyErrors):
                text = "cnncalc: " + text
            typer.echo(text, err=True)
            raise typer.Exit(ExitCode.USER_ERROR) from None
    return wrapper


def require_format(format: Format, command: str, *offered: str) -> None:
    if format.value not in offered:
        raise CnnCalcError(f"{command} has no {format.value} format", fix=f"Use --format {', '.join(offered)}.")


def render(format: Format, command: str, output: str | None = None, protect: Iterable[str | None] = (),
           **renderers: Callable[[], Any]) -> None:
    """`command`'s output in the chosen format, on stdout or in the --output file ('-' is stdout); a renderer
    returns text or a Rich renderable (a file gets it as plain text). Never writes over `protect`."""
    require_format(format, command, *renderers)
    made = renderers[format.value]()
    if isinstance(made, str):
        emit(made, output, protect)
    else:
        from cnncalc import terminal
        if output is None or output == "-":
            terminal.show(made)
        else:
            emit(terminal.plain_text(made), output, protect)


def note(message: str) -> None:
    """A remark on stderr: dim on a terminal; elsewhere the plain line, unwrapped (and without loading Rich)."""
    if not sys.stderr.isatty():
        sys.stderr.write(printable(message) + "\n")
        return
    from rich.console import Console
    Console(stderr=True).print(printable(message), style="dim", highlight=False, markup=False)


_WHOLE_NUMBER = re.compile(r"\s*([0-9]{1,13})\s*")  # ASCII digits only: int() also reads '²' and '1_0'


def parse_ints(text: str, option: str, separators: str = ",") -> list[int] | None:
    """Comma-separated whole numbers ('3,224,224'; '3x224x224' with separators=',x'), or None if not that."""
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    if len(text) > MAX_OPTION:
        return None
    matches = [_WHOLE_NUMBER.fullmatch(part) for part in text.split(separators[0])]
    numbers = [int(match.group(1)) for match in matches if match is not None]
    return numbers if len(numbers) == len(matches) else None


def parse_shape(text: str, option: str = "--input") -> tuple[int, ...]:
    from cnncalc.network import is_sample_shape
    values = parse_ints(text, option, ",x")
    shape = tuple(values) if values else ()
    if not is_sample_shape(shape):
        raise CnnCalcError(f"{option} '{shown_text(text)}' is not a shape", fix=f"Write one sample's shape, channels "
                           f"first, 1 to 4 positive integers up to {MAX_INT:,}, e.g. {option} 3,224,224 (no batch "
                           "axis: use --batch).")
    return shape


def load_network(spec: str, input_shape: str | None, overrides: list[str] | None = None) -> Any:
    from cnncalc.spec import apply_overrides, load, locate
    path, bundled = locate(spec)
    if bundled:
        note(f"using the bundled spec '{spec}' (`cnncalc zoo` lists them)")
    network = apply_overrides(load(path), overrides or [])
    if input_shape is not None:
        network = network.with_input(parse_shape(input_shape))
    return network


def print_version(value: bool) -> None:
    if value:
        typer.echo(f"cnncalc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for user errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=print_version)] = False,
) -> None:
    _state["debug"] = debug


SpecArg = Annotated[str, typer.Argument(help="A YAML spec file, or the name of a bundled spec (see `cnncalc zoo`).")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", help="Batch size (shapes and counts include it).")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="Element type for memory: float32, float64, float16, "
                                                       "bfloat16, int8.")]
InputOpt = Annotated[Optional[str], typer.Option("--input", "-i", help="Override the spec's input shape, e.g. "
                                                                       "3,224,224 (one sample, channels first).")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", help="For the training-memory estimate: sgd, "
                                                                 "momentum or adam.")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a layer's field without editing the file: --set conv1.stride=2 (repeatable).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit with code 1 if there is any design warning "
                                                           "(for CI pipelines).")]
OutputOpt = Annotated[Optional[str], typer.Option("--output", "-o", help="Write to this file instead of stdout "
                                                                         "('-' is stdout). A regular file is "
                                                                         "replaced atomically, keeping its mode; "
                                                                         "/dev/null and FIFOs are written in place.")]


class WarningsMode(str, Enum):
    all = "all"
    grouped = "grouped"
    none = "none"


@app.command()
@user_errors
def summarize(
    spec: SpecArg,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = "float32",
    input_shape: InputOpt = None,
    format: FormatOpt = Format.table,
    columns: Annotated[Optional[str], typer.Option(
        "--columns", help="More table columns, comma-separated: inputs, input, trainable, flops, memory, rf "
                          "(receptive field), or 'all'. A named column is kept however narrow the terminal "
                          "(by default type, config and # make room first).")] = None,
    depth: Annotated[Optional[int], typer.Option(
        "--depth", help="Show module paths down to this depth (layer1.0.conv1 is depth 3; --depth 1 "
                              "shows layer1): each row sums its layers' params, MACs and FLOPs. Totals are "
                              "unchanged.")] = None,
    warnings_mode: Annotated[WarningsMode, typer.Option(
        "--warnings", help="Design warnings: all (one line each), grouped (repeats of one spec line, e.g. every "
                           "stage's shortcut, on one line) or none. --strict counts them all.")] = WarningsMode.grouped,
    optimizer: OptimizerOpt = "adam",
    overrides: SetOpt = None,
    strict: StrictOpt = False,
    output: OutputOpt = None,
) -> None:
    """Every layer's output shape, parameters and MACs, with totals and design warnings."""
    from cnncalc import formats
    from cnncalc.analyze import analyze
    chosen, named = formats.parse_columns(columns)
    check_depth(depth)
    from cnncalc.lint import lint
    network = load_network(spec, input_shape, overrides)
    summary = analyze(network, batch=batch, dtype=dtype, optimizer=optimizer)
    warnings = lint(network, summary)
    summary = summary.at_depth(depth)
    mode = warnings_mode.value
    if format is Format.csv:  # CSV has no place for them
        for line in formats.warning_lines(warnings, mode):
            typer.echo(line, err=True)

    def table() -> Any:
        from cnncalc.report import summary_renderable
        return summary_renderable(summary, chosen, warnings, keep=named, warnings_mode=mode)
    render(format, "summarize", output, [network.path], table=table,
           json=lambda: formats.to_json(summary, [] if mode == "none" else warnings),
           markdown=lambda: formats.to_markdown(summary, chosen, warnings, mode), csv=lambda: formats.to_csv(summary))
    fail_if_strict(strict, warnings)


def check_depth(depth: int | None) -> None:
    """--depth is a whole number from 1 (a name's parts are bounded by MAX_NAME, so any larger depth shows
    every layer and costs nothing more)."""
    if depth is not None and not 1 <= depth <= MAX_INT:
        raise CnnCalcError(f"--depth must be a whole number from 1 to {MAX_INT:,}; got {shown(depth)}",
                           fix="Use e.g. --depth 1 for the top-level modules (layer1, layer2, ...), --depth 2 for "
                               "their blocks; leave it out for every layer.")


MAX_SEED = 2**64 - 1


def refuse_empty(options: dict[str, str | None]) -> None:
    """An option given as '' is a mistake (an unset shell variable, say), not a request for the default."""
    for option, value in options.items():
        if value is not None and not value.strip():
            raise CnnCalcError(f"{option} is empty", fix=f"Give {option} a value, or leave it out.")


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise CnnCalcError(f"--seed must be an integer from 0 to 2^64 - 1; got {seed}", fix="Use e.g. --seed 0.")


def fail_if_strict(strict: bool, warnings: Sequence[object]) -> None:
    if strict and warnings:
        note(f"--strict: {len(warnings)} warning(s)")
        raise typer.Exit(ExitCode.CHECK_FAILED)


def emit(text: str, output: str | None, protect: Iterable[str | None]) -> None:
    """Text to stdout, or to the file --output names ('-' is stdout), written safely (cnncalc.fileio)."""
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    from cnncalc.fileio import write_text_output
    note(f"wrote {write_text_output(output, text, inputs=protect)}")


@app.command()
@user_errors
def verify(
    spec: SpecArg,
    batch: BatchOpt = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed for random weights and input.")] = 0,
    input_shape: InputOpt = None,
    input_file: Annotated[Optional[str], typer.Option(
        "--input-file", help="An input batch X.npy (batch axis first; it sets the batch size) instead of a random "
                             "one.")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", "-w", help="Weights .npz in PyTorch state_dict form (default: PyTorch's random init "
                                "from --seed).")] = None,
    save_weights: Annotated[Optional[str], typer.Option("--save-weights", help="Write the weights used (.npz, "
                                                                              "PyTorch state_dict keys).")] = None,
    save_output: Annotated[Optional[str], typer.Option("--save-output", help="Write the network output "
                                                                            "(.npy; .npz for several).")] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or float64.")] = "float32",
    max_memory: Annotated[Optional[str], typer.Option(
        "--max-memory", help="Refuse to run if the estimated peak exceeds this (e.g. 4GiB; default 80% of what "
                             "the machine lets this process have).")] = None,
    format: FormatOpt = Format.table,
    overrides: SetOpt = None,
    strict: StrictOpt = False,
    output: OutputOpt = None,
) -> None:
    """Run a NumPy forward pass and check every layer's executed shape against the calculated one.

    Exit code 0 when all match, 1 on any mismatch, 2 on bad input."""
    from rich.console import Console
    from rich.progress import Progress

    from cnncalc import engine, verification
    from cnncalc.fileio import check_distinct
    from cnncalc.lint import lint
    from cnncalc.verify_report import verification_json, verification_renderable
    require_format(format, "verify", "table", "json")
    refuse_empty({"--input": input_shape, "--input-file": input_file, "--weights": weights,
                  "--save-weights": save_weights, "--save-output": save_output, "--max-memory": max_memory,
                  "--output": output})
    if input_shape is not None and input_shape.endswith(".npy"):
        raise CnnCalcError(f"--input takes a shape; '{shown_text(input_shape)}' looks like an array file",
                           fix=f"Give the array as --input-file {shown_text(input_shape)}.")
    check_seed(seed)
    check_distinct({"--save-weights": save_weights, "--save-output": save_output, "--output": output})
    limit = engine.parse_bytes(max_memory) if max_memory is not None else None
    network = load_network(spec, input_shape, overrides)
    progress_console = Console(stderr=True)
    with Progress(console=progress_console, transient=True, disable=not progress_console.is_terminal) as bar:
        task = bar.add_task("running", total=len(network.layers))
        run = verification.verify_files(
            network, batch=batch, seed=seed, dtype=dtype, weights_file=weights, input_file=input_file,
            max_memory=limit, on_layer=lambda layer: bar.update(task, advance=1, description=layer.name))
    result, protected = run.verification, [network.path, weights, input_file]
    if save_weights:
        engine.save_weights(save_weights, run.weights, protected)
        note(f"wrote the weights to {save_weights}")
    if save_output and result.outputs:
        engine.save_outputs(save_output, result.outputs, protected)
        note(f"wrote the output to {save_output}")
    elif save_output:
        note(f"did not write {save_output}: the run stopped before the output layer")
    warnings = lint(network, run.summary)
    render(format, "verify", output, protected, table=lambda: verification_renderable(result, warnings),
           json=lambda: verification_json(result, warnings))
    if not result.passed:
        raise typer.Exit(ExitCode.CHECK_FAILED)
    fail_if_strict(strict, warnings)


@app.command()
@user_errors
def explain(
    spec: SpecArg,
    layer_names: Annotated[Optional[list[str]], typer.Argument(
        metavar="[LAYER]...", help="Layers to explain: names or patterns like 'layer1.*' (default: all).")] = None,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = "float32",
    input_shape: InputOpt = None,
    overrides: SetOpt = None,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Each layer's formulas with its numbers filled in: output size, params, MACs, FLOPs, receptive field."""
    from cnncalc.analyze import analyze
    from cnncalc.explain import explain as explain_layers
    from cnncalc.explain_report import (
        explain_json,
        explain_markdown,
        explain_renderable,
    )
    from cnncalc.lint import lint
    network = load_network(spec, input_shape, overrides)
    summary = analyze(network, batch=batch, dtype=dtype)
    explanations = explain_layers(network, summary, layer_names or [], lint(network, summary))
    render(format, "explain", output, [network.path], table=lambda: explain_renderable(explanations),
           json=lambda: explain_json(summary, explanations), markdown=lambda: explain_markdown(summary, explanations))


@app.command()
@user_errors
def diff(
    spec_a: Annotated[str, typer.Argument(metavar="A", help="The first spec (file or bundled name).")],
    spec_b: Annotated[Optional[str], typer.Argument(
        metavar="[B]", help="The second spec (default: A again, so --set alone shows a what-if).")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a field of B: --set conv1.stride=2 (repeatable).")] = None,
    overrides_a: Annotated[Optional[list[str]], typer.Option(
        "--set-a", help="Override a field of A (repeatable).")] = None,
    batch: BatchOpt = 1,
    dtype: DtypeOpt = "float32",
    input_shape: InputOpt = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Show every aligned layer, not only changed ones.")] = False,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Align two specs layer by layer: where shapes, params, MACs, receptive field and memory differ."""
    from cnncalc.analyze import analyze
    from cnncalc.diff import compare
    from cnncalc.diff_report import diff_json, diff_markdown, diff_renderable
    refuse_empty({"B": spec_b, "--input": input_shape})
    second = spec_b or spec_a
    if spec_b is None and not overrides:
        raise CnnCalcError("diff needs a second spec or some --set overrides",
                           fix="Write `cnncalc diff A.yaml B.yaml`, or `cnncalc diff A.yaml --set conv1.stride=2`.")
    network_a, network_b = load_network(spec_a, input_shape, overrides_a), load_network(second, input_shape, overrides)
    a, b = analyze(network_a, batch=batch, dtype=dtype), analyze(network_b, batch=batch, dtype=dtype)
    label_a = spec_a + "".join(f" --set {o}" for o in overrides_a or [])
    label_b = second + "".join(f" --set {o}" for o in overrides or [])
    comparison = compare(a, b, label_a, label_b)
    render(format, "diff", output, [network_a.path, network_b.path], table=lambda: diff_renderable(comparison, all_rows),
           json=lambda: diff_json(comparison, all_rows=True), markdown=lambda: diff_markdown(comparison, all_rows))


@app.command()
@user_errors
def sweep(
    spec: SpecArg,
    inputs: Annotated[Optional[list[str]], typer.Option(
        "--input", "-i", help="An input shape to try, e.g. 3,320,320 (repeatable; default the spec's).")] = None,
    batches: Annotated[str, typer.Option("--batches", help="Batch sizes, comma-separated: 1,8,32.")] = "1",
    dtype: DtypeOpt = "float32",
    optimizer: OptimizerOpt = "adam",
    overrides: SetOpt = None,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Params, MACs, activation and peak memory per input size or batch size, with bars."""
    from cnncalc.sweep import sweep as sweep_points
    from cnncalc.sweep_report import sweep_json, sweep_markdown, sweep_renderable
    batch_sizes = parse_ints(batches, "--batches")
    if not batch_sizes:
        raise CnnCalcError(f"--batches '{shown_text(batches)}' is not a list of whole numbers up to {MAX_INT:,}",
                           fix="Write e.g. --batches 1,8,32.")
    network = load_network(spec, None, overrides)
    points = sweep_points(network, [parse_shape(s) for s in inputs or []], batch_sizes, dtype, optimizer)
    render(format, "sweep", output, [network.path], table=lambda: sweep_renderable(points),
           json=lambda: sweep_json(points),
           markdown=lambda: sweep_markdown(points))


@app.command()
@user_errors
def solve(
    size_in: Annotated[int, typer.Option("--in", help="Input size along one spatial axis.")],
    size_out: Annotated[int, typer.Option("--out", help="Wanted output size.")],
    kind: Annotated[str, typer.Option("--kind", help="conv, conv_transpose or pool.")] = "conv",
    kernels: Annotated[Optional[list[str]], typer.Option(
        "--kernel", "-k", help="Allowed kernel sizes: 3, 3,5,7 or 1..7 (repeatable).")] = None,
    strides: Annotated[Optional[list[str]], typer.Option("--stride", "-s", help="Allowed strides.")] = None,
    dilations: Annotated[Optional[list[str]], typer.Option("--dilation", "-d", help="Allowed dilations.")] = None,
    max_padding: Annotated[Optional[int], typer.Option("--max-padding", help="Largest padding to try.")] = None,
    layers: Annotated[int, typer.Option("--layers", help="Spread the change over this many layers.")] = 1,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many answers.")] = 10,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Every (kernel, stride, padding, dilation) that turns --in into exactly --out with no lost pixels."""
    from cnncalc import solve as solver
    from cnncalc import solve_report
    allowed = dict(kernels=solver.parse_values(kernels, "--kernel"), strides=solver.parse_values(strides, "--stride"),
                   dilations=solver.parse_values(dilations, "--dilation"))
    if not 1 <= limit <= MAX_INT:
        raise CnnCalcError(f"--limit must be a whole number from 1 to {MAX_INT:,}; got {shown(limit)}",
                           fix="Use e.g. --limit 10.")
    views: tuple[Callable[[], Table], Callable[[], str], Callable[[], str]]
    if layers == 1:
        every = solver.solve_layer(size_in, size_out, kind, **allowed, max_padding=max_padding)
        solutions = every[:limit]
        if len(every) > limit:
            note(f"showing the {limit} simplest of {len(every)} solutions; --limit {len(every)} shows all")
        views = (lambda: solve_report.solutions_table(size_in, size_out, kind, solutions),
                 lambda: solve_report.solutions_json(size_in, size_out, kind, solutions),
                 lambda: solve_report.solutions_markdown(size_in, size_out, kind, solutions))
    else:
        chains = solver.solve_chain(size_in, size_out, layers, kind, limit=limit, **allowed, max_padding=max_padding)
        views = (lambda: solve_report.chains_table(size_in, size_out, kind, chains),
                 lambda: solve_report.chains_json(size_in, size_out, kind, chains),
                 lambda: solve_report.chains_markdown(size_in, size_out, kind, chains))
    table, as_json, markdown = views
    render(format, "solve", output, table=table, json=as_json, markdown=markdown)


@app.command()
@user_errors
def zoo(format: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """The bundled specs, with their totals (use a name anywhere a spec is expected)."""

    from cnncalc.analyze import analyze
    from cnncalc.formats import zoo_json
    from cnncalc.report import zoo_table
    from cnncalc.spec import bundled_dir, bundled_names, load
    summaries = {name: analyze(load(bundled_dir() / f"{name}.yaml")) for name in bundled_names()}
    render(format, "zoo", output, table=lambda: zoo_table(summaries), json=lambda: zoo_json(summaries))


@app.command()
@user_errors
def layers(kind: Annotated[Optional[str], typer.Argument(help="One layer type to describe.")] = None,
           output: OutputOpt = None) -> None:
    """The layer catalogue: types, fields and defaults, accepted aliases, and how each is counted."""
    from cnncalc.catalogue import catalogue_table, kind_detail
    render(Format.table, "layers", output, table=lambda: kind_detail(kind) if kind else catalogue_table())


def run() -> None:
    app()
