"""The witness: run a network's NumPy kernels, with weights, inside a memory budget.

Layers run in list order. An activation is freed as soon as the last layer that reads it has run, so skip
connections stay alive exactly as long as needed. Kernels never consult the shape rules.
"""
from __future__ import annotations

import math
import re
import resource
import time
from dataclasses import dataclass
from math import prod, sqrt
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, cast

import numpy as np

from cnncalc import arrayfiles
from cnncalc.analyze import Summary, analyze, last_uses, live_bytes
from cnncalc.errors import CnnCalcError, WeightsError, shown_text
from cnncalc.fileio import write_output
from cnncalc.layers import LayerBase, Weight
from cnncalc.layers.base import OWN_NAME, state_dict_key
from cnncalc.units import human_bytes
from cnncalc.network import NETWORK_INPUT, Network

ENGINE_DTYPES = ("float32", "float64")

Weights = dict[str, np.ndarray]


def check_dtype(dtype: str) -> np.dtype:
    if dtype not in ENGINE_DTYPES:
        raise CnnCalcError(f"the engine runs float32 or float64, not {dtype}",
                           fix="Use --dtype float32 (the default) or float64.")
    return np.dtype(dtype)


# ---- weights -----------------------------------------------------------------------------------------------

def expected_weights(summary: Summary) -> dict[str, Weight]:
    """Every tensor the network holds, by its PyTorch state_dict key."""
    out: dict[str, Weight] = {}
    owners: dict[str, str] = {}
    for row in summary.rows:
        per_sample = tuple(s[1:] for s in row.input_shapes)
        for key, weight in row.layer.weight_shapes(*per_sample).items():
            name = state_dict_key(row.name, key)
            if name in out:  # a layer's own-name weight (scale) named as another layer's tensor
                raise CnnCalcError(f"layers '{owners[name]}' and '{row.name}' both hold a weight named '{name}'",
                                   fix="Rename one of the layers: PyTorch's state_dict keys must be unique.")
            out[name], owners[name] = weight, row.name
    return out


def init_weights(network: Network, seed: int = 0, dtype: str = "float32",
                 summary: Summary | None = None) -> Weights:
    """PyTorch's default initialisation, each tensor as its layer declares it (`Weight.init`), drawn from a
    seeded NumPy generator: conv/linear weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); norm weight = 1,
    bias = 0; running_mean = 0, running_var = 1; a constant where declared (PReLU's slopes: its `init`). Uniform
    draws are float32 whatever the dtype, so float32 and float64 runs of one seed start from the same weights."""
    np_dtype = check_dtype(dtype)
    summary = summary or analyze(network)
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for name, weight in expected_weights(summary).items():
        if weight.init == "uniform":
            bound = 1 / sqrt(weight.fan_in) if weight.fan_in else 0.0
            values = rng.random(weight.shape, dtype=np.float32)
            values *= np.float32(2 * bound)
            values -= np.float32(bound)
            weights[name] = values.astype(np_dtype, copy=False)
        else:
            fill = {"ones": 1.0, "zeros": 0.0}.get(weight.init, weight.value)  # else "constant"
            weights[name] = np.full(weight.shape, fill, dtype=np_dtype)
    return weights


def load_weights(path: str | Path, summary: Summary, dtype: str = "float32", *,
                 max_bytes: int = 2**62) -> Weights:
    """A PyTorch-style state_dict saved with numpy.savez, checked name by name and shape by shape against the
    network from the file's array headers before any data is read; every problem is reported at once."""
    expected = {name: weight.shape for name, weight in expected_weights(summary).items()}
    return arrayfiles.load_npz(path, expected, check_dtype(dtype), max_bytes=max_bytes, option="--weights")


def save_weights(path: str | Path, weights: Weights, protected: Iterable[str | Path | None] = ()) -> Path:
    def write(handle: BinaryIO) -> None:
        np.savez(handle, **weights)  # type: ignore[arg-type]  # numpy's stubs take **kwds for allow_pickle
    write_output(path, write, inputs=protected, option="--save-weights")
    return Path(path)


def save_outputs(path: str | Path, outputs: dict[str, np.ndarray],
                 protected: Iterable[str | Path | None] = ()) -> Path:
    """One output as .npy; several as .npz keyed by layer name."""
    def write(handle: BinaryIO) -> None:
        if len(outputs) == 1:
            np.save(handle, next(iter(outputs.values())))
        else:
            np.savez(handle, **outputs)  # type: ignore[arg-type]  # as in save_weights
    write_output(path, write, inputs=protected, option="--save-output")
    return Path(path)


def input_header(path: str | Path, network: Network) -> arrayfiles.ArrayHeader:
    """The header of an input batch (.npy), checked against the spec's input before anything is read."""
    header = arrayfiles.read_npy_header(path, option="--input")
    if len(header.shape) != len(network.input_shape) + 1 or header.shape[1:] != network.input_shape or \
            header.shape[0] < 1:
        raise WeightsError(
            f"input '{path}' has shape {list(header.shape)}, but the spec takes "
            f"[N, {', '.join(map(str, network.input_shape))}]",
            fix="Put the batch axis first and match the spec's input (or change the spec's `input`).")
    return header


def load_input(path: str | Path, network: Network, dtype: str = "float32", *, max_bytes: int = 2**62) -> np.ndarray:
    """An input batch from .npy: batch axis first, the rest equal to the spec's input; real numbers only."""
    input_header(path, network)
    return arrayfiles.load_npy(path, check_dtype(dtype), max_bytes=max_bytes, option="--input")


def random_input(network: Network, batch: int, seed: int, dtype: str = "float32") -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return rng.standard_normal((batch, *network.input_shape), dtype=np.float32).astype(check_dtype(dtype))


# ---- memory ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    peak_activations: int  # the most activation bytes alive at once (a layer's inputs, its output, skips)
    peak_layer: str
    workspace: int         # the most one layer's kernel (and the statistics of its output) allocate at once
    loading: int           # while weights (or the input) are drawn or read: one tensor's temporary copy
    total: int             # weights + the most (live activations + that layer's workspace) at any layer


def estimate_memory(network: Network, summary: Summary, dtype: str = "float32", *, weights_given: bool = False,
                    input_given: bool = False) -> MemoryEstimate:
    """Peak memory of verify's run: weights, then the activations alive together plus the largest kernel
    buffer and the per-layer statistics at any layer; and, before the first layer runs, the weights plus one
    tensor's temporary while they are drawn or read."""
    itemsize = check_dtype(dtype).itemsize
    outputs = [prod(row.output_shape) * itemsize for row in summary.rows]
    peak, peak_layer, workspace, worst = 0, NETWORK_INPUT, 0, 0
    for index, live in live_bytes(network, prod(summary.input_shape) * itemsize, outputs):
        row = summary.rows[index]
        temp = row.layer.workspace_bytes(itemsize, row.output_shape, *row.input_shapes) + STATISTICS_BYTES
        workspace = max(workspace, temp)
        worst = max(worst, live + temp)
        if live > peak:
            peak, peak_layer = live, row.name
    weights = summary.totals.params * itemsize
    largest = max((prod(w.shape) for w in expected_weights(summary).values()), default=0)
    # a file's array is read in its own dtype (8 bytes covers any) before it is converted; drawn weights are
    # float32, converted (a second copy) only for float64, and a drawn input is always converted
    drawn = 4 if itemsize != 4 else 0
    loading = max((8 if weights_given else drawn) * largest, (8 if input_given else 4) * prod(summary.input_shape))
    total = weights + max(worst, loading)
    return MemoryEstimate(weights, peak, peak_layer, workspace, loading, total)


def available_memory() -> tuple[int, str]:
    """What this process may still allocate, and which limit says so: the smallest of the kernel's
    MemAvailable, the address-space limit (RLIMIT_AS) less what is mapped, and the cgroup's memory limit
    less its usage."""
    limits = []
    meminfo = _read("/proc/meminfo")
    found = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.M)
    if found:
        limits.append((int(found.group(1)) * 1024, "available RAM"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        mapped = re.search(r"^VmSize:\s+(\d+) kB", _read("/proc/self/status"), re.M)
        limits.append((max(0, soft - (int(mapped.group(1)) * 1024 if mapped else 0)), "the address-space limit "
                       "(ulimit -v)"))
    cgroup = _cgroup_room()
    if cgroup is not None:
        limits.append((cgroup, "the cgroup's memory limit"))
    return min(limits) if limits else (8 * 2**30, "an assumed 8 GiB")


def _cgroup_room() -> int | None:
    """The cgroup (v2, else v1) memory limit of this process less its current usage, if there is a limit."""
    for relative in _cgroup_paths():
        for limit_file, usage_file in (("memory.max", "memory.current"),
                                       ("memory.limit_in_bytes", "memory.usage_in_bytes")):
            limit = _read(f"/sys/fs/cgroup{relative}/{limit_file}").strip()
            if limit.isdigit() and int(limit) < 2**60:
                usage = _read(f"/sys/fs/cgroup{relative}/{usage_file}").strip()
                return max(0, int(limit) - (int(usage) if usage.isdigit() else 0))
    return None


def _cgroup_paths() -> list[str]:
    paths = []
    for line in _read("/proc/self/cgroup").splitlines():  # "0::/user.slice/..." (v2) or "4:memory:/..." (v1)
        _, controllers, relative = (line.split(":", 2) + ["", ""])[:3]
        if controllers in ("", "memory") or "memory" in controllers.split(","):
            paths += [relative, f"/memory{relative}"]
    return paths + ["", "/memory"]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return ""


DEFAULT_MEMORY_SHARE = 0.8  # of what is available: the estimate leaves out the interpreter and NumPy's own


def default_memory_limit() -> tuple[int, str]:
    room, source = available_memory()
    return int(room * DEFAULT_MEMORY_SHARE), f"{DEFAULT_MEMORY_SHARE:.0%} of {source}"


MAX_MEMORY_LIMIT = 2**60


def parse_bytes(text: str) -> int:
    """'4GiB', '512MiB', '2G', '1.5 GB', '1000000': binary prefixes either way, as memory sizes usually are."""
    match = re.fullmatch(r"\s*([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*([KMGT]?)(i?B?)\s*", text, re.I)
    if not match:
        raise CnnCalcError(f"--max-memory '{shown_text(text)}' is not a size", fix="Write e.g. 4GiB, 512MiB or 2G.")
    number, prefix = float(match.group(1)), match.group(2).upper()
    value = number * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[prefix]
    if value > MAX_MEMORY_LIMIT:
        raise CnnCalcError(f"--max-memory '{shown_text(text)}' is more than any machine has", fix="Write e.g. 64GiB.")
    return int(value)


def check_memory(estimate: MemoryEstimate, limit: int, source: str = "--max-memory") -> None:
    if estimate.total > limit:
        raise CnnCalcError(
            f"this forward pass needs about {human_bytes(estimate.total)} (weights {human_bytes(estimate.weights)}, "
            f"activations {human_bytes(estimate.peak_activations)} at its peak in '{estimate.peak_layer}', "
            f"workspace {human_bytes(estimate.workspace)}), more than the limit of {human_bytes(limit)} "
            f"({source})",
            fix="Lower --batch or the input size (--input), or raise --max-memory if the machine has the RAM.")


# ---- observing outputs -----------------------------------------------------------------------------------

STATISTICS_BLOCK = 1 << 18  # elements per block of the per-layer statistics (float64 temporaries stay at 2 MiB)
STATISTICS_BYTES = 2 * 8 * STATISTICS_BLOCK + STATISTICS_BLOCK  # a float64 block, its ones, its finite mask
CANCELLATION = 1e-6  # centre a block whose sum of squared deviations is below this share of its sum of squares


@dataclass(frozen=True)
class Statistics:
    """Over the finite values of one output; NaN where there are none."""

    mean: float
    std: float
    min: float
    max: float
    nan: int
    inf: int


def statistics(y: np.ndarray) -> Statistics:
    """mean, std, min and max over the finite values, and the NaN and Inf counts, in one pass over blocks in
    memory order, combined with Chan et al.'s update; the memory it needs does not grow with the output.
    A block is copied to float64 once and reduced by two dot products (its sum and its sum of squares), which
    is exact enough unless its values are far from their mean, when it is centred first; only a block whose
    sum is not finite (it holds NaN or Inf) is masked."""
    count, mean, m2 = 0, 0.0, 0.0
    low, high = math.inf, -math.inf
    nan = inf = 0
    size = min(y.size, STATISTICS_BLOCK)
    wide, ones = np.empty(size, dtype=np.float64), np.ones(size, dtype=np.float64)
    for block in _blocks(y):
        values = wide[:block.size]
        np.copyto(values, block)
        total = float(np.dot(values, ones[:values.size]))
        if math.isfinite(total):
            low, high = min(low, float(block.min())), max(high, float(block.max()))
        else:
            finite = np.isfinite(values)
            n = int(np.count_nonzero(finite))
            nans = int(np.count_nonzero(np.isnan(values)))
            nan, inf = nan + nans, inf + values.size - n - nans
            if n == 0:
                continue
            values = values[finite]
            total = float(values.sum())
            low, high = min(low, float(values.min())), max(high, float(values.max()))
        n = values.size
        block_mean = total / n
        block_m2 = float(np.dot(values, values)) - total * block_mean
        if block_m2 <= CANCELLATION * total * block_mean:  # the difference of two near-equal numbers
            values -= block_mean
            block_m2 = float(np.dot(values, values))
        merged = count + n
        delta = block_mean - mean
        mean += delta * n / merged
        m2 += block_m2 + delta * delta * count * n / merged
        count = merged
    if count == 0:
        return Statistics(math.nan, math.nan, math.nan, math.nan, nan, inf)
    return Statistics(mean, math.sqrt(m2 / count), low, high, nan, inf)


def _blocks(y: np.ndarray) -> Iterator[np.ndarray]:
    """1-D pieces of at most STATISTICS_BLOCK elements covering `y`, without copying it (views of its memory
    when it is contiguous in some order, NumPy's buffered iteration otherwise)."""
    if y.size == 0:
        return
    iterator = np.nditer(y, flags=["external_loop", "buffered", "zerosize_ok"], buffersize=STATISTICS_BLOCK,
                         order="K")
    for chunk in cast(Iterator[np.ndarray], iterator):  # one operand: arrays, not the stubs' tuples
        for start in range(0, chunk.size, STATISTICS_BLOCK):
            yield chunk[start:start + STATISTICS_BLOCK]


# ---- running -----------------------------------------------------------------------------------------------

Observer = Callable[[LayerBase, np.ndarray, float], None]


class KernelFailure(Exception):
    """A kernel refused its inputs (raised ValueError): the calculation let through something the witness
    cannot run. verify reports it as a failed check."""

    def __init__(self, layer: LayerBase, reason: str):
        super().__init__(f"{layer.name}: {reason}")
        self.layer, self.reason = layer, reason


def execute(network: Network, weights: Weights, x: np.ndarray, observe: Observer | None = None) -> dict[str, np.ndarray]:
    """Run every layer in order; return the network outputs by name. `observe(layer, output, seconds)`."""
    last = last_uses(network)
    by_layer: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        layer_name, _, tensor = key.rpartition(".")
        by_layer.setdefault(layer_name, {})[tensor] = value
    live: dict[str, np.ndarray] = {NETWORK_INPUT: x}
    for index, layer in enumerate(network.layers):
        own = by_layer.get(layer.name, {})
        if layer.name in weights:  # a weight kept under the layer's own name (OWN_NAME)
            own = {**own, OWN_NAME: weights[layer.name]}
        start = time.perf_counter()
        try:
            # overflow and invalid values are results here (verify counts the NaN and Inf), not warnings
            with np.errstate(all="ignore"):
                y = layer.forward(own, *(live[name] for name in layer.inputs))
        except ValueError as err:
            raise KernelFailure(layer, str(err)) from None
        seconds = time.perf_counter() - start
        live[layer.name] = y
        if observe is not None:
            observe(layer, y, seconds)
        for name in set(layer.inputs) | {layer.name}:
            if last.get(name, -1) <= index:
                del live[name]
    return {name: live[name] for name in network.outputs}


def run(network: Network, x: np.ndarray, weights: Weights | None = None,
        seed: int = 0) -> np.ndarray | dict[str, np.ndarray]:
    """The network's output for a batch `x` ([N, *input]); a dict by name when it has several outputs."""
    dtype = str(x.dtype) if x.dtype in (np.float32, np.float64) else "float32"
    net = network.with_input(tuple(x.shape[1:]))
    if weights is None:
        weights = init_weights(net, seed=seed, dtype=dtype)
    outputs = execute(net, weights, np.ascontiguousarray(x, dtype=dtype))
    return next(iter(outputs.values())) if len(outputs) == 1 else outputs
