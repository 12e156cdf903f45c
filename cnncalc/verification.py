"""Run the engine and hold every executed shape against the calculated one. A mismatch is a result."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cnncalc.analyze import Summary, analyze
from cnncalc.engine import (KernelFailure, MemoryEstimate, Statistics, Weights, check_dtype, check_memory,
                            default_memory_limit, estimate_memory, execute, init_weights, input_header, load_input,
                            load_weights, random_input, statistics)
from cnncalc.layers import LayerBase, Shape
from cnncalc.network import Network

@dataclass(frozen=True)
class LayerCheck:
    index: int
    name: str
    kind: str
    calculated: Shape
    executed: Shape | None  # None when the kernel refused to run (see `failure`)
    seconds: float
    stats: Statistics
    failure: str | None = None

    @property
    def match(self) -> bool:
        return self.failure is None and self.calculated == self.executed


@dataclass(frozen=True)
class Verification:
    name: str
    input_shape: Shape
    dtype: str
    checks: tuple[LayerCheck, ...]
    seconds: float
    memory: MemoryEstimate
    outputs: dict[str, np.ndarray] = field(repr=False)
    not_run: int = 0  # layers after the first mismatch, which are not executed

    @property
    def mismatches(self) -> list[LayerCheck]:
        return [c for c in self.checks if not c.match]

    @property
    def passed(self) -> bool:
        return not self.mismatches and len(self.checks) > 0


def verify(network: Network, *, batch: int = 1, seed: int = 0, x: np.ndarray | None = None,
           weights: Weights | None = None, dtype: str = "float32", max_memory: int | None = None,
           summary: Summary | None = None,
           on_layer: Callable[[LayerBase], None] | None = None) -> Verification:
    """Execute the network and compare each layer's output shape with the calculation. The memory limit is
    checked before any weight, input or activation is made."""
    if x is not None:
        batch = x.shape[0]
    summary = summary or analyze(network, batch=batch, dtype=dtype)
    memory = estimate_memory(network, summary, dtype, weights_given=weights is not None, input_given=x is not None)
    if max_memory is not None:
        check_memory(memory, max_memory)
    if weights is None:
        weights = init_weights(network, seed=seed, dtype=dtype, summary=summary)
    if x is None:
        x = random_input(network, batch, seed, dtype)
    calculated = {row.name: row.output_shape for row in summary.rows}
    checks: list[LayerCheck] = []

    def observe(layer: LayerBase, y: np.ndarray, seconds: float) -> None:
        check = LayerCheck(len(checks), layer.name, layer.kind, calculated[layer.name], tuple(y.shape), seconds,
                           statistics(y))
        checks.append(check)
        if on_layer is not None:
            on_layer(layer)
        if not check.match:  # later kernels would be fed a wrong shape: stop here
            raise _Mismatch

    start = time.perf_counter()
    try:
        outputs = execute(network, weights, x, observe)
    except _Mismatch:
        outputs = {}
    except KernelFailure as failure:
        nothing = Statistics(math.nan, math.nan, math.nan, math.nan, 0, 0)
        checks.append(LayerCheck(len(checks), failure.layer.name, failure.layer.kind,
                                 calculated[failure.layer.name], None, 0.0, nothing, failure.reason))
        outputs = {}
    return Verification(network.name, tuple(x.shape), dtype, tuple(checks), time.perf_counter() - start, memory,
                        outputs, not_run=len(network.layers) - len(checks))


@dataclass(frozen=True)
class Run:
    """A verification with what it used: the summary it checked against and the weights."""

    verification: Verification
    summary: Summary
    weights: Weights


def verify_files(network: Network, *, batch: int = 1, seed: int = 0, dtype: str = "float32",
                 weights_file: str | None = None, input_file: str | None = None, max_memory: int | None = None,
                 on_layer: Callable[[LayerBase], None] | None = None) -> Run:
    """`verify` with weights and an input batch read from files (or drawn from `seed`). The memory limit
    (default: `default_memory_limit`) is checked against the estimate, from the files' array headers, before
    any weight or input is made or read; an input file sets the batch size."""
    check_dtype(dtype)
    limit, source = (max_memory, "--max-memory") if max_memory is not None else default_memory_limit()
    header = input_header(input_file, network) if input_file is not None else None
    summary = analyze(network, batch=header.shape[0] if header else batch, dtype=dtype)
    memory = estimate_memory(network, summary, dtype, weights_given=weights_file is not None,
                             input_given=input_file is not None)
    check_memory(memory, limit, source)
    weights = load_weights(weights_file, summary, dtype, max_bytes=limit) if weights_file is not None else \
        init_weights(network, seed=seed, dtype=dtype, summary=summary)
    x = load_input(input_file, network, dtype, max_bytes=limit) if input_file is not None else None
    result = verify(network, batch=summary.batch, seed=seed, x=x, weights=weights, dtype=dtype, max_memory=limit,
                    summary=summary, on_layer=on_layer)
    return Run(result, summary, weights)


class _Mismatch(Exception):
    """Raised from the observer to stop execution at the first mismatching layer."""
