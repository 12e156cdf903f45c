"""The witness: run a network's NumPy kernels, with weights, inside a memory budget.

Layers run in list order. An activation is freed as soon as the last layer that reads it has run, so skip
connections stay alive exactly as long as needed. Kernels never consult the shape rules.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from math import prod, sqrt
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from cnncalc.analyze import Summary, analyze, last_uses, live_bytes
from cnncalc.errors import CnnCalcError, WeightsError
from cnncalc.fileio import write_atomic
from cnncalc.kernels.conv import CHUNK_BYTES
from cnncalc.layers import LayerBase, Weight
from cnncalc.layers.conv import Conv, ConvTranspose
from cnncalc.layers.linear import Linear
from cnncalc.report import human_bytes
from cnncalc.network import NETWORK_INPUT, Network

ENGINE_DTYPES = ("float32", "float64")
IGNORED_KEYS = ("num_batches_tracked",)

Weights = dict[str, np.ndarray]


def check_dtype(dtype: str) -> np.dtype:
    if dtype not in ENGINE_DTYPES:
        raise CnnCalcError(f"the engine runs float32 or float64, not {dtype}",
                           fix="Use --dtype float32 (the default) or float64.")
    return np.dtype(dtype)


# ---- weights -----------------------------------------------------------------------------------------------

def expected_weights(summary: Summary) -> dict[str, Weight]:
    """Every tensor the network holds, by its PyTorch state_dict key."""
    out = {}
    for row in summary.rows:
        per_sample = tuple(s[1:] for s in row.input_shapes)
        for key, weight in row.layer.weight_shapes(*per_sample).items():
            out[f"{row.name}.{key}"] = weight
    return out


def _fan_in(shape: tuple[int, ...]) -> int:
    """PyTorch's fan-in: dim 1 times the kernel (for transposed conv that is C_out/groups, as PyTorch)."""
    return shape[1] * prod(shape[2:])


def init_weights(network: Network, seed: int = 0, dtype: str = "float32",
                 summary: Summary | None = None) -> Weights:
    """PyTorch's default initialisation, drawn from a seeded NumPy generator.

    conv/linear weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5));
    norm weight = 1, bias = 0; running_mean = 0, running_var = 1.
    """
    np_dtype = check_dtype(dtype)
    summary = summary or analyze(network)
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for row in summary.rows:
        layer = row.layer
        per_sample = tuple(s[1:] for s in row.input_shapes)
        shapes = layer.weight_shapes(*per_sample)
        fan_in = _fan_in(shapes["weight"].shape) if isinstance(layer, (Conv, ConvTranspose, Linear)) else 0
        for key, weight in shapes.items():
            name = f"{row.name}.{key}"
            if isinstance(layer, (Conv, ConvTranspose, Linear)):
                bound = 1 / sqrt(fan_in) if fan_in else 0
                weights[name] = (rng.random(weight.shape, dtype=np.float32) * (2 * bound) - bound).astype(np_dtype)
            elif key in ("weight", "running_var"):
                weights[name] = np.ones(weight.shape, dtype=np_dtype)
            else:
                weights[name] = np.zeros(weight.shape, dtype=np_dtype)
    return weights


def load_weights(path: str | Path, summary: Summary, dtype: str = "float32") -> Weights:
    """A PyTorch-style state_dict saved with numpy.savez; every problem reported at once, by name."""
    np_dtype = check_dtype(dtype)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise WeightsError(f"{path} holds a single array, not named weights",
                                   fix="Save a dict of arrays with numpy.savez(path, **state_dict).")
            found = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise WeightsError(f"no such weights file '{path}'", fix="Check the path given to --weights.") from None
    except (OSError, ValueError) as err:
        raise WeightsError(f"cannot read weights from '{path}': {err}",
                           fix="Give a .npz written by numpy.savez (or by cnncalc --save-weights).") from None
    expected = expected_weights(summary)
    problems = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected and k.rsplit(".", 1)[-1] not in IGNORED_KEYS]
    if missing:
        problems.append("missing: " + ", ".join(f"{k} {list(expected[k].shape)}" for k in missing))
    if unexpected:
        problems.append("unexpected: " + ", ".join(unexpected))
    wrong = [f"{k} expected {list(w.shape)} found {list(found[k].shape)}"
             for k, w in expected.items() if k in found and tuple(found[k].shape) != w.shape]
    if wrong:
        problems.append("mis-shaped: " + "; ".join(wrong))
    if problems:
        raise WeightsError(f"the weights in '{path}' do not fit the network: " + " | ".join(problems),
                           fix="Keys are '<layer name>.weight', '.bias', '.running_mean', '.running_var' in "
                               "PyTorch layouts; `cnncalc verify --save-weights` writes a template.")
    not_float = [k for k in expected if not np.issubdtype(found[k].dtype, np.floating)]
    if not_float:
        raise WeightsError(f"weights {', '.join(not_float)} in '{path}' are not floating point",
                           fix="Save float32 arrays.")
    return {k: np.ascontiguousarray(found[k], dtype=np_dtype) for k in expected}


def save_weights(path: str | Path, weights: Weights, protected: Iterable[str | Path | None] = ()) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **weights)
    return write_atomic(path, write, inputs=protected, option="--save-weights")


def save_outputs(path: str | Path, outputs: dict[str, np.ndarray],
                 protected: Iterable[str | Path | None] = ()) -> Path:
    """One output as .npy; several as .npz keyed by layer name."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            if len(outputs) == 1:
                np.save(handle, next(iter(outputs.values())))
            else:
                np.savez(handle, **outputs)
    return write_atomic(path, write, inputs=protected, option="--save-output")


def load_input(path: str | Path, network: Network, dtype: str = "float32") -> np.ndarray:
    """An input batch from .npy: batch axis first, the rest equal to the spec's input."""
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WeightsError(f"no such input file '{path}'", fix="Check the path given to --input.") from None
    except (OSError, ValueError) as err:
        raise WeightsError(f"cannot read input '{path}': {err}", fix="Give a .npy written by numpy.save.") from None
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.number):
        raise WeightsError(f"input '{path}' is not a numeric array", fix="Save one array with numpy.save.")
    if x.ndim != len(network.input_shape) + 1 or tuple(x.shape[1:]) != network.input_shape or x.shape[0] < 1:
        raise WeightsError(
            f"input '{path}' has shape {list(x.shape)}, but the spec takes [N, {', '.join(map(str, network.input_shape))}]",
            fix="Put the batch axis first and match the spec's input (or change the spec's `input`).")
    return np.ascontiguousarray(x, dtype=check_dtype(dtype))


def random_input(network: Network, batch: int, seed: int, dtype: str = "float32") -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return rng.standard_normal((batch, *network.input_shape), dtype=np.float32).astype(check_dtype(dtype))


# ---- memory ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    peak_activations: int  # the most activation bytes alive at once (a layer's inputs, its output, skips)
    peak_layer: str
    workspace: int         # the largest temporary buffer one kernel makes
    total: int             # weights + the most (live activations + that layer's workspace) at any layer


def _workspace(row: Any, itemsize: int) -> int:
    """Temporary bytes of a conv or pooling kernel: a padded copy of its input plus one chunk of windows
    (the kernels chunk their im2col/window buffers to at most CHUNK_BYTES)."""
    layer = row.layer
    if not (isinstance(layer, (Conv, ConvTranspose)) or layer.category == "pool"):
        return 0
    x = row.input_shapes[0]
    if isinstance(layer, ConvTranspose):  # the un-cropped accumulator and the columns of one chunk
        return 2 * prod(row.output_shape) * itemsize + CHUNK_BYTES
    if not hasattr(layer, "window"):  # adaptive and global pooling: the input, and one output-sized buffer
        return prod(x) * itemsize + min(prod(row.output_shape) * itemsize, CHUNK_BYTES)
    window = layer.window(x[2:])
    padded = x[0] * x[1] * prod(n + b + a for n, (b, a) in zip(x[2:], window.pads))
    groups = getattr(layer, "groups", 1)  # pools have none
    columns = prod(row.output_shape[2:]) * x[0] * (x[1] // groups) * prod(window.kernel) * itemsize
    return padded * itemsize + min(columns, CHUNK_BYTES)


def estimate_memory(network: Network, summary: Summary, dtype: str = "float32") -> MemoryEstimate:
    """Peak memory of `execute`: weights, the activations alive together, and the largest kernel buffer."""
    itemsize = check_dtype(dtype).itemsize
    outputs = [prod(row.output_shape) * itemsize for row in summary.rows]
    peak, peak_layer, workspace, worst = 0, NETWORK_INPUT, 0, 0
    for index, live in live_bytes(network, prod(summary.input_shape) * itemsize, outputs):
        row = summary.rows[index]
        temp = _workspace(row, itemsize)
        workspace = max(workspace, temp)
        worst = max(worst, live + temp)
        if live > peak:
            peak, peak_layer = live, row.name
    weights = summary.totals.params * itemsize
    return MemoryEstimate(weights, peak, peak_layer, workspace, weights + worst)


def available_memory() -> int:
    try:
        text = Path("/proc/meminfo").read_text()
        return int(re.search(r"MemAvailable:\s+(\d+) kB", text).group(1)) * 1024  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return 8 * 2**30


def default_memory_limit() -> int:
    return int(available_memory() * 0.8)


def parse_bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)\s*", text, re.I)
    if not match:
        raise CnnCalcError(f"--max-memory '{text}' is not a size", fix="Write e.g. 4GiB, 512MiB or 2G.")
    number, prefix = float(match.group(1)), match.group(2).upper()
    return int(number * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[prefix])


def check_memory(estimate: MemoryEstimate, limit: int) -> None:
    if estimate.total > limit:
        raise CnnCalcError(
            f"this forward pass needs about {human_bytes(estimate.total)} (weights {human_bytes(estimate.weights)}, "
            f"activations {human_bytes(estimate.peak_activations)} at its peak in '{estimate.peak_layer}', "
            f"workspace {human_bytes(estimate.workspace)}), more than the limit of {human_bytes(limit)}",
            fix="Lower --batch or the input size (--input), or raise --max-memory if the machine has the RAM.")


# ---- running -----------------------------------------------------------------------------------------------

Observer = Callable[[LayerBase, np.ndarray, float], None]


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
        start = time.perf_counter()
        y = layer.forward(own, *(live[name] for name in layer.inputs))
        seconds = time.perf_counter() - start
        live[layer.name] = y
        if observe is not None:
            observe(layer, y, seconds)
        for name in set(layer.inputs) | {layer.name}:
            if last.get(name, -1) <= index:
                del live[name]
    return {name: live[name] for name in network.outputs}


def run(network: Network, x: np.ndarray, weights: Weights | None = None, seed: int = 0) -> np.ndarray | dict:
    """The network's output for a batch `x` ([N, *input]); a dict by name when it has several outputs."""
    dtype = str(x.dtype) if x.dtype in (np.float32, np.float64) else "float32"
    net = network.with_input(tuple(x.shape[1:]))
    if weights is None:
        weights = init_weights(net, seed=seed, dtype=dtype)
    outputs = execute(net, weights, np.ascontiguousarray(x, dtype=dtype))
    return next(iter(outputs.values())) if len(outputs) == 1 else outputs
