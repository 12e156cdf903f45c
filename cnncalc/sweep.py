"""One network at several input sizes and/or batch sizes -> one row of totals each. Builds output; never prints.

An input the network cannot take (a layer's output would be smaller than 1, a rank the layers do not
accept, ...) stops the sweep with a `ShapeError` (a `CnnCalcError`, so the CLI reports it as a user error
with exit code 2) whose message names that input, keeps the failing layer's location and fix, and says
which inputs did fit. No partial table is produced: a sweep is a comparison, and a missing row would be
easy to overlook.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


from cnncalc.analyze import analyze
from cnncalc.errors import CnnCalcError, ShapeError
from cnncalc.layers import Shape
from cnncalc.units import shape_text
from cnncalc.network import Network

MAX_POINTS = 1000
MAX_LAYER_ANALYSES = 100_000  # points x layers: each point analyses every layer again (about 60 us each)


@dataclass(frozen=True)
class SweepPoint:
    """The totals of one analysis. Shapes are batched; every count and byte size is exact and covers the
    whole batch (params, which do not depend on the batch, excepted)."""

    name: str
    file: str
    dtype: str
    optimizer: str
    batch: int
    input_shape: Shape                 # batched: (batch, *one sample)
    output_shapes: tuple[Shape, ...]   # batched
    params: int                        # trainable + non-trainable
    trainable_params: int
    macs: int
    flops: int
    param_bytes: int
    activation_bytes: int              # all layer outputs of one forward pass
    peak_activation_bytes: int         # activations alive at once (inference)
    peak_inference_bytes: int          # param_bytes + peak_activation_bytes
    training_bytes: int                # weights + gradients + optimizer state + stored activations


def sweep(network: Network, inputs: Sequence[Sequence[int]] | None = None, batches: Sequence[int] = (1,),
          dtype: str = "float32", optimizer: str = "adam") -> list[SweepPoint]:
    """One point per (input, batch), inputs in the outer loop, both in the order given.

    `inputs` are per-sample shapes (no batch axis); None or empty means the spec's own input."""
    shapes = [tuple(s) for s in inputs] if inputs else [network.input_shape]
    batches = list(batches)
    if not batches:
        raise CnnCalcError("no batch sizes to sweep", fix="Give at least one, e.g. --batch 1,8,32.")
    if len(shapes) * len(batches) > MAX_POINTS:
        raise CnnCalcError(f"{len(shapes)} inputs x {len(batches)} batch sizes is more than {MAX_POINTS} points",
                           fix="Sweep fewer sizes at a time.")
    if len(shapes) * len(batches) * len(network.layers) > MAX_LAYER_ANALYSES:
        most = max(MAX_LAYER_ANALYSES // len(network.layers), 1)
        raise CnnCalcError(f"{len(shapes) * len(batches)} points of a {len(network.layers):,}-layer network are too "
                           f"many to sweep in a few seconds (more than {MAX_LAYER_ANALYSES:,} layer analyses)",
                           fix=f"Sweep at most {most:,} points of this network at a time.")
    points = []
    fitted: list[Shape] = []
    for shape in shapes:
        net = network.with_input(shape)
        for batch in batches:
            try:
                summary = analyze(net, batch=batch, dtype=dtype, optimizer=optimizer)
            except ShapeError as err:
                ok = f" (these fit: {', '.join(shape_text(s) for s in fitted)})" if fitted else ""
                raise ShapeError(f"input {shape_text(shape)} does not fit this network{ok}: {err.message}",
                                 fix=err.fix, where=err.where, field=err.field) from None
            t = summary.totals
            points.append(SweepPoint(
                name=summary.name, file=summary.file, dtype=dtype, optimizer=optimizer, batch=batch,
                input_shape=summary.input_shape, output_shapes=tuple(summary.output_shapes()),
                params=t.params, trainable_params=t.trainable_params, macs=t.macs, flops=t.flops,
                param_bytes=t.param_bytes, activation_bytes=t.activation_bytes,
                peak_activation_bytes=t.peak_activation_bytes,
                peak_inference_bytes=t.peak_inference_bytes, training_bytes=t.training.total))
        fitted.append(shape)
    return points
