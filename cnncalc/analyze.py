"""Network -> Summary: one pass in list order applying each layer's rules, batch included."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from math import prod
from typing import Iterator

from cnncalc.errors import CnnCalcError, ShapeError, shown, shown_text
from cnncalc.limits import MAX_DIM, MAX_INT, MAX_NAME
from cnncalc.layers import LayerBase, ParamCount, Shape
from cnncalc.layers.base import FLOP_CATEGORIES
from cnncalc.layers.receptive_field import ReceptiveField, tracked
from cnncalc.units import shape_text
from cnncalc.network import NETWORK_INPUT, Network

DTYPE_BYTES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int8": 1}
# optimizer state per trainable parameter, in parameter-sized copies
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass(frozen=True)
class Row:
    index: int
    layer: LayerBase
    input_shapes: tuple[Shape, ...]  # batched
    output_shape: Shape              # batched
    params: ParamCount
    macs: int                        # whole batch
    flops: int                       # whole batch
    flops_by_category: dict[str, int]  # whole batch: its FLOPs under its category, its bias adds under 'bias'
    output_bytes: int
    receptive_field: ReceptiveField | None  # None where it stops being defined (after flatten, linear, ...)
    #                                         or its numbers leave any input's scale (`tracked`)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def kind(self) -> str:
        return self.layer.kind

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.layer.inputs

    def hyper(self) -> str:
        return self.layer.hyper()


@dataclass(frozen=True)
class ModuleRow:
    """The layers under one module path at a --depth (`layer1` for `layer1.0.conv1` ... `layer1.1.relu2`): their
    counts summed; shapes, output bytes and receptive field are the module's own (first layer's input, last
    layer's output)."""

    index: int                       # of its first layer
    last_index: int                  # of its last layer
    name: str                        # the module path
    first: str                       # its first and last layers' names
    last: str
    layers: int                      # how many layers it holds
    inputs: tuple[str, ...]          # layers outside it that it reads, in order of first use
    input_shapes: tuple[Shape, ...]  # its first layer's, batched
    output_shape: Shape              # its last layer's, batched
    params: ParamCount
    macs: int
    flops: int
    flops_by_category: dict[str, int]
    output_bytes: int                # its last layer's output
    receptive_field: ReceptiveField | None  # its last layer's

    kind = "module"

    def hyper(self) -> str:
        return f"{self.layers} layers"


def module_path(name: str, depth: int) -> str | None:
    """The first `depth` dotted parts of a layer's name, or None when the name has no more parts than that."""
    parts = name.split(".", depth)  # bounded by the name's length, whatever the depth
    return ".".join(parts[:depth]) if len(parts) > depth else None


def collapse(rows: tuple[Row, ...], depth: int) -> tuple[Row | ModuleRow, ...]:
    """`rows` with every run of consecutive layers under one module path deeper than `depth` folded into one
    ModuleRow (torchinfo's `depth`, Keras' `expand_nested=False`). Layers whose names have at most `depth` parts
    stay as they are. A module whose layers are not consecutive in the spec gives one row per run."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1; got {depth}")
    depth = min(depth, MAX_NAME)  # a name has fewer parts than characters
    view: list[Row | ModuleRow] = []
    i = 0
    while i < len(rows):
        path = module_path(rows[i].name, depth)
        if path is None:
            view.append(rows[i])
            i += 1
            continue
        j = i + 1
        while j < len(rows) and module_path(rows[j].name, depth) == path:
            j += 1
        view.append(_module_row(path, rows[i:j]))
        i = j
    return tuple(view)


def _module_row(path: str, rows: tuple[Row, ...]) -> ModuleRow:
    inside = {r.name for r in rows}
    inputs = tuple(dict.fromkeys(name for r in rows for name in r.inputs if name not in inside))
    categories: dict[str, int] = {}
    for r in rows:
        for category, n in r.flops_by_category.items():
            categories[category] = categories.get(category, 0) + n
    first, last = rows[0], rows[-1]
    return ModuleRow(
        index=first.index, last_index=last.index, name=path, first=first.name, last=last.name, layers=len(rows),
        inputs=inputs, input_shapes=first.input_shapes, output_shape=last.output_shape,
        params=ParamCount(sum(r.params.trainable for r in rows), sum(r.params.non_trainable for r in rows)),
        macs=sum(r.macs for r in rows), flops=sum(r.flops for r in rows), flops_by_category=categories,
        output_bytes=last.output_bytes, receptive_field=last.receptive_field)


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    non_trainable_params: int
    macs: int
    flops: int
    param_bytes: int
    activation_bytes: int  # all layer outputs of one forward pass (what torchinfo calls forward pass size)
    input_bytes: int
    peak_activation_bytes: int  # inference: the most activations alive at once (freed after last use)
    peak_layer: str             # where that peak is first reached
    training: "TrainingMemory"
    flops_by_category: dict[str, int] = field(default_factory=dict)

    @property
    def peak_inference_bytes(self) -> int:
        """Inference: the weights and the most activations alive at once."""
        return self.param_bytes + self.peak_activation_bytes


@dataclass(frozen=True)
class TrainingMemory:
    """A training step's memory: weights, their gradients, the optimizer's state, and every activation kept
    for the backward pass (the input and all layer outputs). Framework overheads are not included."""

    optimizer: str
    params: int
    gradients: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        return self.params + self.gradients + self.optimizer_state + self.activations


@dataclass(frozen=True)
class Summary:
    name: str
    file: str
    input_shape: Shape  # batched
    batch: int
    dtype: str
    rows: tuple[Row, ...]
    outputs: tuple[str, ...]
    totals: Totals
    depth: int | None = None  # set by `at_depth`: reports then show the modules down to it

    @cached_property
    def shown_rows(self) -> tuple[Row | ModuleRow, ...]:
        """The rows a report shows: every layer, or the modules at `depth`. `rows` always holds every layer."""
        return self.rows if self.depth is None else collapse(self.rows, self.depth)

    def at_depth(self, depth: int | None) -> "Summary":
        """This summary showing module paths down to `depth` (None: every layer); totals are unchanged."""
        return replace(self, depth=depth)

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no layer named '{name}' in {self.name}")

    def output_shapes(self) -> list[Shape]:
        by_name = {r.name: r.output_shape for r in self.rows}
        return [by_name.get(n, self.input_shape) for n in self.outputs]


def check_options(batch: int, dtype: str, optimizer: str = "adam") -> None:
    if type(batch) is not int or not 1 <= batch <= MAX_INT:
        raise CnnCalcError(f"--batch must be a whole number from 1 to {MAX_INT:,}; got {shown(batch)}",
                           fix="Use e.g. --batch 8.")
    if dtype not in DTYPE_BYTES:
        raise CnnCalcError(f"unknown --dtype '{shown_text(str(dtype))}'", fix=f"Use one of {', '.join(DTYPE_BYTES)}.")
    if optimizer not in OPTIMIZER_STATE:
        raise CnnCalcError(f"unknown --optimizer '{shown_text(str(optimizer))}'",
                           fix=f"Use one of {', '.join(OPTIMIZER_STATE)}.")


def last_uses(network: Network) -> dict[str, int]:
    """For each tensor, the index of the last layer reading it; network outputs live to the end."""
    last = {NETWORK_INPUT: -1}
    for index, layer in enumerate(network.layers):
        last.setdefault(layer.name, index)
        for name in layer.inputs:
            last[name] = index
    for name in network.outputs:
        last[name] = len(network.layers)
    return last


def live_bytes(network: Network, input_bytes: int, output_bytes: list[int]) -> Iterator[tuple[int, int]]:
    """(layer index, activation bytes alive while it runs: its inputs, its output and kept skips)."""
    last = last_uses(network)
    sizes = {NETWORK_INPUT: input_bytes}
    live = input_bytes
    for index, layer in enumerate(network.layers):
        sizes[layer.name] = output_bytes[index]
        live += output_bytes[index]
        yield index, live
        for name in set(layer.inputs) | {layer.name}:
            if last.get(name, -1) <= index:
                live -= sizes[name]


def analyze(network: Network, batch: int = 1, dtype: str = "float32", optimizer: str = "adam") -> Summary:
    check_options(batch, dtype, optimizer)
    size = DTYPE_BYTES[dtype]
    shapes: dict[str, Shape] = {NETWORK_INPUT: network.input_shape}
    fields: dict[str, ReceptiveField | None] = {
        NETWORK_INPUT: ReceptiveField.of_input(len(network.input_shape) - 1)}
    rows = []
    for index, layer in enumerate(network.layers):
        ins = tuple(shapes[name] for name in layer.inputs)
        try:
            out = layer.output_shape(*ins)
            if max(out, default=1) > MAX_DIM:
                raise ShapeError(f"its output {shape_text((batch, *out))} has an axis larger than {MAX_DIM:,}, "
                                 "more than cnncalc follows", fix="Check the sizes and scale factors before it.")
            layer.check_batch(batch, *ins)
            params = layer.params(*ins)
            macs = layer.macs(*ins)
            flops = layer.flops_by_category(*ins)
            field_ = tracked(layer.receptive_field(tuple(fields[name] for name in layer.inputs), *ins))
        except ShapeError as err:
            raise err.at(network.where(layer, err.field)) from None
        shapes[layer.name] = out
        fields[layer.name] = field_
        elements = prod(out)
        rows.append(Row(
            index=index, layer=layer, input_shapes=tuple((batch, *s) for s in ins), output_shape=(batch, *out),
            params=params, macs=batch * macs, flops=batch * layer.flops(*ins),
            flops_by_category={category: batch * n for category, n in flops.items()},
            output_bytes=batch * elements * size, receptive_field=field_))
    input_bytes = batch * prod(network.input_shape) * size
    peak_index, peak = max(live_bytes(network, input_bytes, [r.output_bytes for r in rows]),
                           key=lambda item: item[1], default=(-1, input_bytes))
    return Summary(name=network.name, file=network.file, input_shape=(batch, *network.input_shape), batch=batch,
                   dtype=dtype, rows=tuple(rows), outputs=network.outputs,
                   totals=_totals(rows, input_bytes, size, peak, rows[peak_index].name if rows else NETWORK_INPUT,
                                  optimizer))


def _totals(rows: list[Row], input_bytes: int, size: int, peak: int, peak_layer: str, optimizer: str) -> Totals:
    trainable = sum(r.params.trainable for r in rows)
    non_trainable = sum(r.params.non_trainable for r in rows)
    categories = dict.fromkeys(FLOP_CATEGORIES, 0)
    for r in rows:
        for category, n in r.flops_by_category.items():
            categories[category] += n
    activation_bytes = sum(r.output_bytes for r in rows)
    training = TrainingMemory(optimizer, params=(trainable + non_trainable) * size, gradients=trainable * size,
                              optimizer_state=OPTIMIZER_STATE[optimizer] * trainable * size,
                              activations=input_bytes + activation_bytes)
    return Totals(
        params=trainable + non_trainable, trainable_params=trainable, non_trainable_params=non_trainable,
        macs=sum(r.macs for r in rows), flops=sum(r.flops for r in rows),
        param_bytes=(trainable + non_trainable) * size,
        activation_bytes=activation_bytes, input_bytes=input_bytes, peak_activation_bytes=peak,
        peak_layer=peak_layer, training=training, flops_by_category=categories)
