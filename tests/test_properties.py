"""Property tests: random layer configurations, three-way agreement, and the same rejections as PyTorch.

For each drawn configuration of every kind in the registry either both cnncalc and PyTorch refuse it
(cnncalc with a clear, located error), or the calculated shape, the NumPy engine's shape and values, and
PyTorch's all agree, the parameter and buffer counts are PyTorch's, and our weights load into the twin
under their exact state_dict keys.

The strategies draw valid configurations most of the time and, on purpose, some that must be refused:
wrong input ranks, sizes that do not divide or multiply out, mismatched branches, crops larger than
the input, out-of-range dims. Multi-input kinds get a small network whose extra inputs come from branch
layers (1x1 convolutions, adaptive pooling, linear, flatten) that are always valid, so any refusal is
the layer under test's.

Configurations where cnncalc and PyTorch were found to disagree are kept out of their strategy with a
`# KNOWN:` comment (kind, input, fields, what each side does); `by design` marks a deliberate difference
that PyTorch cannot decide.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnncalc.analyze import analyze
from cnncalc.engine import execute, init_weights, random_input
from cnncalc.errors import CnnCalcError
from cnncalc.layers import KINDS
from cnncalc.network import Network

torch = pytest.importorskip("torch")
from torch_oracle import build_module, load_numpy_weights, twin  # noqa: E402

pytestmark = pytest.mark.oracle
# CNNCALC_EXAMPLES=1500 for a deeper search than CI's
SETTINGS = settings(max_examples=int(os.environ.get("CNNCALC_EXAMPLES", "120")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
BATCH = 2


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The tensors are tiny: PyTorch's thread pool only costs time here, a lot on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- cases ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """The layer under test (named 'layer') of `kind` with `fields`, fed by `inputs`; `branches` are layers
    (name, kind, fields, inputs) placed before it to make its extra inputs, always valid themselves."""

    kind: str
    input_shape: tuple[int, ...]
    fields: dict
    inputs: tuple[str, ...] = ("input",)
    branches: tuple[tuple[str, str, dict, tuple[str, ...]], ...] = ()


def layer_model(kind: str, name: str, inputs: tuple[str, ...], fields: dict):
    return KINDS[kind].model_validate({"type": kind, "name": name, "inputs": inputs, **fields})


def case_network(case: Case) -> Network:
    layers = [layer_model(kind, name, inputs, fields) for name, kind, fields, inputs in case.branches]
    layers.append(layer_model(case.kind, "layer", case.inputs, case.fields))
    return Network(name=case.kind, input_shape=case.input_shape, layers=tuple(layers), outputs=("layer",),
                   file="drawn.yaml")


# ---- drawing shapes and fields ------------------------------------------------------------------------------

SPATIAL_TOP = {1: 12, 2: 9, 3: 5}


@st.composite
def spatial(draw, rank):
    top = SPATIAL_TOP[rank]
    return tuple(draw(st.integers(1, top)) for _ in range(rank))


@st.composite
def sample_shape(draw, rank):
    """One sample's shape with `rank` axes: [F], or [C, *spatial] with 1 to 3 spatial axes."""
    if rank == 1:
        return (draw(st.integers(1, 12)),)
    return (draw(st.integers(1, 6)), *draw(spatial(rank - 1)))


def draw_rank(draw, good: tuple[int, ...]) -> int:
    """A per-sample rank the kind accepts, and now and then (1 in 6) one it must refuse."""
    wrong = [r for r in range(1, 5) if r not in good]
    if wrong and draw(st.integers(0, 5)) == 5:
        return draw(st.sampled_from(wrong))
    return draw(st.sampled_from(good))


def per_axis(draw, rank, low, high):
    if draw(st.booleans()):
        return draw(st.integers(low, high))
    return [draw(st.integers(low, high)) for _ in range(rank)]


def maybe_declared(draw, actual: int) -> int | None:
    """A size the spec may declare (in_channels, num_features, ...): absent, right, or now and then wrong."""
    choice = draw(st.integers(0, 3))
    if choice <= 1:
        return None
    if choice == 2:
        return actual
    return draw(st.integers(1, 7).filter(lambda n: n != actual))


def put(fields: dict, name: str, value) -> dict:
    if value is not None:
        fields[name] = value
    return fields


EPS = st.sampled_from([1e-5, 1e-3, 0.1, 1.0])
MOMENTUM = st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.9]))


def rank_of_kind(kind: str) -> int:
    return int(kind[-2])


# ---- one strategy per kind (grouped by family) ----------------------------------------------------------------

@st.composite
def conv_case(draw, kind):
    rank = rank_of_kind(kind)
    shape = draw(sample_shape(draw_rank(draw, (rank + 1,))))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    padding = draw(st.one_of(
        st.integers(0, 2), st.sampled_from(["same", "valid"]),
        st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=rank, max_size=rank)))
    fields = dict(out_channels=draw(st.integers(1, 6)), kernel_size=per_axis(draw, rank, 1, 4),
                  stride=per_axis(draw, rank, 1, 3), dilation=per_axis(draw, rank, 1, 2), groups=groups,
                  padding=padding, bias=draw(st.booleans()))
    if draw(st.booleans()):  # nn.ConvNd's padding_mode: reflect refuses padding >= the size, circular > the size
        fields["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    return Case(kind, shape, put(fields, "in_channels", maybe_declared(draw, shape[0])))


@st.composite
def conv_transpose_case(draw, kind):
    rank = rank_of_kind(kind)
    shape = draw(sample_shape(draw_rank(draw, (rank + 1,))))
    fields = dict(out_channels=draw(st.integers(1, 6)), kernel_size=per_axis(draw, rank, 1, 4),
                  stride=per_axis(draw, rank, 1, 3), dilation=per_axis(draw, rank, 1, 2),
                  padding=per_axis(draw, rank, 0, 2), output_padding=per_axis(draw, rank, 0, 2),
                  groups=draw(st.sampled_from([1, 1, 2])), bias=draw(st.booleans()))
    return Case(kind, shape, put(fields, "in_channels", maybe_declared(draw, shape[0])))


@st.composite
def pool_case(draw, kind):
    rank = rank_of_kind(kind)
    shape = draw(sample_shape(draw_rank(draw, (rank + 1,))))
    kernel = per_axis(draw, rank, 1, 4)
    kernels = kernel if isinstance(kernel, list) else [kernel] * rank
    fields = dict(kernel_size=kernel, ceil_mode=draw(st.booleans()))
    how = draw(st.integers(0, 3))
    if how <= 1:
        fields["padding"] = per_axis(draw, rank, 0, 2)  # symmetric: PyTorch's own padding, refused past k/2
    elif how == 2:
        fields["padding"] = draw(st.sampled_from(["same", "valid"]))
    else:
        # [before, after] pairs: when they differ on some axis PyTorch cannot express them, so they are
        # applied first (F.pad) and the padded array pooled; PyTorch's "at most half the kernel" still holds
        # (a window could otherwise lie wholly in the padding)
        fields["padding"] = [[draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))] for k in kernels]
    if draw(st.booleans()):
        fields["stride"] = per_axis(draw, rank, 1, 3)
    if kind.startswith(("max", "min")):
        fields["dilation"] = per_axis(draw, rank, 1, 2)
    elif draw(st.booleans()):
        fields["count_include_pad"] = draw(st.booleans())
    return Case(kind, shape, fields)


@st.composite
def adaptive_pool_case(draw, kind):
    rank = rank_of_kind(kind)
    shape = draw(sample_shape(draw_rank(draw, (rank + 1,))))
    if draw(st.booleans()):
        output_size = draw(st.integers(1, 6))
    else:  # None keeps that axis
        # None only in 2-D and 3-D: in 1-D PyTorch and cnncalc's field validation both refuse it
        # (tests/layers/test_pool.py)
        keep = st.none() if rank > 1 else st.nothing()
        output_size = [draw(st.one_of(keep, st.integers(1, 6))) for _ in range(rank)]
    return Case(kind, shape, dict(output_size=output_size))


@st.composite
def global_pool_case(draw, kind):
    shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
    return Case(kind, shape, dict(keepdims=draw(st.booleans())))


@st.composite
def linear_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    fields = dict(out_features=draw(st.integers(1, 8)), bias=draw(st.booleans()))
    return Case(kind, shape, put(fields, "in_features", maybe_declared(draw, shape[-1])))


NORM_RANKS = {"batchnorm1d": (1, 2), "batchnorm2d": (3,), "batchnorm3d": (4,), "batchnorm": (1, 2, 3, 4),
              "instancenorm1d": (2,), "instancenorm2d": (3,), "instancenorm3d": (4,)}


@st.composite
def per_channel_norm_case(draw, kind):
    """Batch and instance norm: running statistics or the batch's/sample's own, affine or not."""
    shape = draw(sample_shape(draw_rank(draw, NORM_RANKS[kind])))
    fields = dict(eps=draw(EPS), momentum=draw(MOMENTUM), affine=draw(st.booleans()),
                  track_running_stats=draw(st.booleans()))
    num_features = maybe_declared(draw, shape[0])
    if kind.startswith("batchnorm") and not (fields["affine"] or fields["track_running_stats"]):
        # by design, not a finding: cnncalc checks a declared num_features; PyTorch's batch norm without
        # weights or running statistics never reads it, so it cannot tell right from wrong here
        num_features = None if num_features != shape[0] else num_features
    return Case(kind, shape, put(fields, "num_features", num_features))


@st.composite
def layernorm_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    how = draw(st.integers(0, 4))
    fields = dict(eps=draw(EPS), elementwise_affine=draw(st.booleans()), bias=draw(st.booleans()))
    if how == 1:
        fields["normalized_shape"] = shape[-1]
    elif how in (2, 3):  # the trailing axes
        fields["normalized_shape"] = list(shape[len(shape) - draw(st.integers(1, len(shape))):])
    elif how == 4:  # anything: mostly not the trailing axes, or longer than the input
        fields["normalized_shape"] = draw(st.lists(st.integers(1, 6), min_size=1, max_size=5))
    return Case(kind, shape, fields)


@st.composite
def groupnorm_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    fields = dict(num_groups=draw(st.integers(1, 6)), eps=draw(EPS), affine=draw(st.booleans()))
    num_channels = maybe_declared(draw, shape[0])
    if not fields["affine"] and num_channels != shape[0]:
        # by design, not a finding: cnncalc checks a declared num_channels; PyTorch's group norm without
        # affine weights never reads it, so it cannot tell right from wrong here
        num_channels = None
    return Case(kind, shape, put(fields, "num_channels", num_channels))


@st.composite
def layernorm2d_case(draw, kind):
    """[N, C, *spatial] (1 to 3 spatial axes), now and then [N, C] or [N, F] (refused by both); the channel count
    absent, right or wrong (F.layer_norm refuses a wrong one, with or without affine weights)."""
    shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
    fields = dict(eps=draw(EPS), elementwise_affine=draw(st.booleans()), bias=draw(st.booleans()))
    return Case(kind, shape, put(fields, "normalized_shape", maybe_declared(draw, shape[0])))


@st.composite
def scale_case(draw, kind):
    """A parameter of the input's trailing axes or fewer: each size the input's, 1, or now and then another
    (which PyTorch broadcasts where the input's is 1, and refuses elsewhere, as cnncalc)."""
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    # by design, not a finding: a parameter with more axes than a sample (its first meets the batch axis) is
    # refused by cnncalc; PyTorch accepts a leading 1 there ([1, C, H, W] against [N, C, H, W]), so none drawn
    axes = draw(st.integers(1, len(shape)))
    sizes = []
    for size in shape[len(shape) - axes:]:
        choice = draw(st.integers(0, 5))
        sizes.append(size if choice <= 2 else 1 if choice <= 4 else draw(st.integers(1, 6)))
    fields: dict = {"shape": sizes}
    if draw(st.booleans()):
        fields["init"] = draw(FLOATS)
    return Case(kind, shape, fields)


@st.composite
def lrn_case(draw, kind):
    shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
    return Case(kind, shape, dict(size=draw(st.integers(1, 7)), alpha=draw(st.sampled_from([1e-4, 1e-2, 0.5])),
                                  beta=draw(st.sampled_from([0.5, 0.75, 1.0])),
                                  k=draw(st.sampled_from([0.5, 1.0, 2.0]))))


FLOATS = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def activation_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    fields: dict = {}
    if kind == "leaky_relu" and draw(st.booleans()):
        fields["negative_slope"] = draw(FLOATS)
    elif kind == "elu" and draw(st.booleans()):
        fields["alpha"] = draw(st.floats(0.0, 2.0, width=32))
    elif kind == "gelu" and draw(st.booleans()):
        fields["approximate"] = draw(st.sampled_from(["none", "tanh"]))
    elif kind == "softplus":
        # by design, not a finding: beta 0 is refused by cnncalc's field validation (softplus divides by it;
        # PyTorch returns inf), tests/layers/test_others.py; any other beta, negative too, is PyTorch's formula.
        # Thresholds inside the input's range reach the linear region.
        if draw(st.booleans()):
            fields["beta"] = draw(st.floats(0.125, 4.0, width=32)) * draw(st.sampled_from([1, -1]))
        if draw(st.booleans()):
            fields["threshold"] = draw(st.floats(-4.0, 25.0, width=32))
    elif kind == "hardtanh" and draw(st.booleans()):
        # max_val <= min_val is refused by both at construction (nn.Hardtanh, and cnncalc's field
        # validation, tests/layers/test_others.py), so only ordered pairs are drawn
        low, high = sorted((draw(FLOATS), draw(FLOATS)))
        fields.update(min_val=low, max_val=high if high > low else low + 1.0)
    return Case(kind, shape, fields)


@st.composite
def prelu_case(draw, kind):
    """num_parameters: 1, the input's channels (dim 1), or now and then another count (refused by both)."""
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    fields: dict = {"num_parameters": draw(st.sampled_from([1, shape[0]]))}
    if draw(st.integers(0, 4)) == 4:
        fields["num_parameters"] = draw(st.integers(2, 7).filter(lambda n: n != shape[0]))
    if draw(st.booleans()):
        fields["init"] = draw(FLOATS)
    return Case(kind, shape, fields)


@st.composite
def softmax_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    ndim = len(shape) + 1
    # PyTorch dims count the batch axis: 0 (the batch) and the out-of-range ends must be refused
    return Case(kind, shape, dict(dim=draw(st.integers(-ndim - 1, ndim))))


@st.composite
def dropout_case(draw, kind):
    # PyTorch's eval mode makes every dropout the identity at any rank (the twin uses nn.Dropout); so is
    # torchvision's StochasticDepth (not installed: its twin is nn.Identity, what its eval forward returns)
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    fields = dict(p=draw(st.floats(0.0, 1.0)))
    if kind == "stochastic_depth":
        fields["mode"] = draw(st.sampled_from(["row", "batch"]))
    return Case(kind, shape, fields)


@st.composite
def identity_case(draw, kind):
    return Case(kind, draw(sample_shape(draw(st.integers(1, 4)))), {})


@st.composite
def flatten_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    ndim = len(shape) + 1
    fields: dict = {}
    if draw(st.integers(0, 3)):
        fields["start_dim"] = draw(st.integers(-ndim - 1, ndim))
    if draw(st.integers(0, 3)):
        fields["end_dim"] = draw(st.integers(-ndim - 1, ndim))
    # by design, not a finding: flattening the batch axis with sample axes of size 1 only (start_dim 0,
    # end_dim 0, or 0..1 on [1, 1]) keeps the batch axis as it was in PyTorch; cnncalc refuses every layer
    # that names the batch axis. Kept out; any other use of dim 0 changes the batch axis, and PyTorch is
    # then refused by the batch checks in torch_outcome.
    start, end = fields.get("start_dim", 1), fields.get("end_dim", -1)
    if -ndim <= start < ndim and -ndim <= end < ndim and start % ndim == 0:
        assume(math.prod(shape[:end % ndim]) != 1)
    return Case(kind, shape, fields)


def factorizations(total: int, parts: int) -> list[list[int]]:
    if parts == 1:
        return [[total]]
    return [[d, *rest] for d in range(1, total + 1) if total % d == 0 for rest in factorizations(total // d, parts - 1)]


@st.composite
def reshape_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    if draw(st.integers(0, 3)):  # sizes that multiply out, maybe one of them -1
        target = list(draw(st.sampled_from(factorizations(math.prod(shape), draw(st.integers(1, 4))))))
        if draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = -1
    else:  # anything (validation allows positive sizes and at most one -1)
        target = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
        if draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = -1
    return Case(kind, shape, dict(shape=target))


@st.composite
def zeropad_case(draw, kind):
    shape = draw(sample_shape(draw_rank(draw, (3,))))
    how = draw(st.integers(0, 3))
    if how == 0:
        padding = draw(st.integers(0, 3))
    elif how == 1:  # PyTorch's (left, right, top, bottom)
        padding = [draw(st.integers(0, 3)) for _ in range(4)]
    elif how == 2:  # one per axis
        padding = [draw(st.integers(0, 3)) for _ in range(2)]
    else:  # [[top, bottom], [left, right]]
        padding = [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in range(2)]
    return Case(kind, shape, dict(padding=padding))


@st.composite
def pad_case(draw, kind):
    """F.pad over the spatial axes: an int for all, or one entry (int or [before, after]) per spatial axis, in any
    mode; constant mode may crop (negative amounts, now and then down to nothing), reflect and circular are
    drawn past their limits (size - 1, size) now and then."""
    shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
    axes = max(len(shape) - 1, 1)
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    # by design, not a finding: F.pad accepts negative amounts in the other modes too, but crops first and then
    # checks the limits against the uncropped size (reflect [-1, 3] of 4 values reads the value it cropped);
    # cnncalc refuses them (tests/layers/test_others.py), so they are not drawn
    amount = st.integers(-3, 4) if mode == "constant" else st.integers(0, 5)
    # by design, not a finding: more or fewer entries than spatial axes is refused by cnncalc; F.pad would pad
    # the channels too, or only the last axes, so no reference decides it (the twin refuses it too)
    if draw(st.integers(0, 3)) == 0:
        padding = draw(amount)
    else:
        padding = [draw(st.one_of(amount, st.lists(amount, min_size=2, max_size=2))) for _ in range(axes)]
    fields: dict = dict(padding=padding, mode=mode)
    if mode == "constant" and draw(st.booleans()):
        fields["value"] = draw(FLOATS)
    return Case(kind, shape, fields)


@st.composite
def upsample_case(draw, kind):
    shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
    axes = max(len(shape) - 1, 1)
    # mostly the mode that fits the rank, sometimes any: linear/bilinear/trilinear need 1/2/3 spatial axes
    fitting = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(len(shape) - 1, "nearest")
    mode = draw(st.sampled_from(["nearest", fitting, fitting, "linear", "bilinear", "trilinear"]))
    length = axes if draw(st.integers(0, 5)) else draw(st.integers(1, 3))
    fields: dict = {"mode": mode}
    if draw(st.booleans()):
        scale = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 0.25, 0.75, 2.5, 1.25])
        fields["scale_factor"] = draw(scale) if draw(st.booleans()) else [draw(scale) for _ in range(length)]
    else:
        size = st.integers(1, 10)
        fields["size"] = draw(size) if draw(st.booleans()) else [draw(size) for _ in range(length)]
    if mode != "nearest" and draw(st.booleans()):
        fields["align_corners"] = draw(st.booleans())
    return Case(kind, shape, fields)


# -- multi-input kinds: branches that make an input of a chosen shape from the network input

def branch(name: str, source: tuple[int, ...], target: tuple[int, ...]) -> list[tuple]:
    """Layers from the network input (shape `source`) to `target`, same rank, always valid; the last is `name`."""
    if len(target) == 1:
        return [(name, "linear", {"out_features": target[0]}, ("input",))]
    rank = len(target) - 1
    conv = (f"{name}_conv", f"conv{rank}d", {"out_channels": target[0], "kernel_size": 1}, ("input",))
    if target[1:] == source[1:]:
        return [(name, *conv[1:])]
    return [conv, (name, f"adaptive_avgpool{rank}d", {"output_size": list(target[1:])}, (conv[0],))]


@st.composite
def operands(draw, shape, how_many, vary_axis=None):
    """Inputs for a merge: the network input itself or branches of its shape (along `vary_axis` any size).
    Now and then one branch differs somewhere else, or is flattened (another rank): a mismatch."""
    inputs, branches = [], []
    for i in range(how_many):
        target = list(shape)
        if vary_axis is not None:
            target[vary_axis] = draw(st.integers(1, 5))
        mismatch = draw(st.integers(0, 7))
        if mismatch == 7:
            axis = draw(st.integers(0, len(shape) - 1))
            target[axis] = draw(st.integers(1, 5))
        inputs.append(_operand(draw, f"b{i}", shape, target, "flatten" if mismatch == 6 else None, branches))
    return tuple(inputs), tuple(branches)


def _operand(draw, name, shape, target, other_rank, branches):
    """One merge input: a layer of kind `other_rank` (another rank) when given, else the network input itself
    (now and then, when `target` is its shape) or a branch reaching `target`. Appends what it builds."""
    if other_rank is not None and len(shape) > 1:
        branches.append((name, other_rank, {}, ("input",)))
        return name
    if tuple(target) == shape and draw(st.booleans()):
        return "input"
    branches.extend(branch(name, shape, tuple(target)))
    return name


@st.composite
def broadcast_operands(draw, shape, how_many):
    """Inputs for add or multiply: the network input itself or branches of its shape with some axes brought to
    size 1 (broadcast over the others' size). Now and then one branch cannot broadcast: another size on some
    axis (which may still be 1 or the same), or another rank: flattened, or globally pooled without keepdims
    (the classic squeeze-excitation slip, [N, C] against [N, C, H, W])."""
    inputs, branches = [], []
    for i in range(how_many):
        target = [1 if draw(st.integers(0, 2)) == 0 else n for n in shape]
        mismatch = draw(st.integers(0, 9))
        if mismatch == 9:
            target[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(1, 6))
        other_rank = {7: "flatten", 8: "global_avgpool"}.get(mismatch)
        inputs.append(_operand(draw, f"b{i}", shape, target, other_rank, branches))
    return tuple(inputs), tuple(branches)


@st.composite
def elementwise_merge_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    inputs, branches = draw(broadcast_operands(shape, draw(st.integers(2, 3))))
    return Case(kind, shape, {}, inputs, branches)


@st.composite
def concat_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    ndim = len(shape) + 1
    dim = draw(st.one_of(st.just(1), st.integers(-ndim - 1, ndim)))
    axis = dim % ndim - 1 if -ndim <= dim < ndim and dim % ndim else None
    inputs, branches = draw(operands(shape, draw(st.integers(2, 3)), axis))
    return Case(kind, shape, {"dim": dim}, inputs, branches)


@st.composite
def crop_case(draw, kind):
    if draw(st.booleans()):
        # centre crop to the second input's spatial size: mostly smaller, sometimes larger or of another rank
        shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
        if len(shape) == 1:  # no spatial axes at all: refused with either input form; use the fixed form
            return Case(kind, shape, {"cropping": [[draw(st.integers(0, 2)), 0]]})
        target = (draw(st.integers(1, 6)), *(draw(st.integers(1, n + (draw(st.integers(0, 5)) == 5)))
                                             for n in shape[1:]))
        if draw(st.integers(0, 7)) == 7:
            branches = [("small", "flatten", {}, ("input",))]
        else:
            branches = branch("small", shape, target)
        big = "input"
        if draw(st.booleans()):
            big = "big"
            branches = [*branch("big", shape, (draw(st.integers(1, 6)), *shape[1:])), *branches]
        return Case(kind, shape, {}, (big, "small"), tuple(branches))
    # fixed amounts: an int for every spatial axis, or one entry (int or [before, after]) per axis
    shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
    axes = len(shape) - 1
    amount = st.integers(0, 4)
    if axes and draw(st.integers(0, 3)) == 0:
        cropping = draw(amount)
    else:
        # by design, not a finding: fewer entries than spatial axes is a spec mistake cnncalc refuses; a crop written
        # with narrow() would crop only the first axes, so no reference decides it: draw at least `axes`
        # (more entries than axes are refused by both).
        length = axes + (draw(st.integers(0, 5)) == 5) if axes else draw(st.integers(1, 2))
        cropping = [draw(st.one_of(amount, st.lists(amount, min_size=2, max_size=2))) for _ in range(length)]
    return Case(kind, shape, {"cropping": cropping})


# -- rearranging kinds: permute, transpose, channel_shuffle, slice, pixel_shuffle and pixel_unshuffle

def draw_dim(draw, ndim: int) -> int:
    """A PyTorch dim of a tensor with `ndim` dims: mostly a sample axis (either sign), now and then (1 in 6)
    the batch axis or one out of range, which must be refused."""
    if draw(st.integers(0, 5)) == 5:
        return draw(st.sampled_from([0, -ndim, ndim, -ndim - 1]))
    axis = draw(st.integers(1, ndim - 1))
    return axis - ndim if draw(st.booleans()) else axis


@st.composite
def permute_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    # dims for a tensor of this many dims, now and then (1 in 6) of another number of dims: refused by both.
    # Every drawn dims is a permutation with the batch axis first (0, or -ndim): cnncalc refuses anything else
    # when the spec is read (field validation, tests/layers/test_rearrange.py), so a case would not load.
    ndim = len(shape) + 1 if draw(st.integers(0, 5)) else draw(st.integers(2, 5))
    rest = draw(st.permutations(list(range(1, ndim))))
    dims = [draw(st.sampled_from([0, -ndim]))] + [d - ndim if draw(st.booleans()) else d for d in rest]
    return Case(kind, shape, dict(dims=dims))


@st.composite
def transpose_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    ndim = len(shape) + 1
    dim0, dim1 = draw_dim(draw, ndim), draw_dim(draw, ndim)
    # by design, not a finding: transpose(0, 0) leaves the batch axis where it was in PyTorch; cnncalc refuses
    # every layer that names the batch axis (as flatten above). Swapping it with another axis changes the
    # batch axis, and PyTorch is then refused by the batch checks in torch_outcome.
    assume(not all(-ndim <= d < ndim and d % ndim == 0 for d in (dim0, dim1)))
    return Case(kind, shape, dict(dim0=dim0, dim1=dim1))


@st.composite
def channel_shuffle_case(draw, kind):
    shape = draw(sample_shape(draw_rank(draw, (2, 3, 4))))
    divisors = [g for g in range(1, shape[0] + 1) if shape[0] % g == 0]
    groups = draw(st.sampled_from(divisors)) if draw(st.integers(0, 3)) else draw(st.integers(1, 7))
    return Case(kind, shape, dict(groups=groups))


@st.composite
def slice_case(draw, kind):
    shape = draw(sample_shape(draw(st.integers(1, 4))))
    ndim = len(shape) + 1
    dim = 1 if draw(st.booleans()) else draw_dim(draw, ndim)
    size = shape[dim % ndim - 1] if -ndim <= dim < ndim and dim % ndim else 6
    # around the axis: negative, past either end, empty (start at or after end), with a step
    fields: dict = dict(dim=dim, step=draw(st.sampled_from([1, 1, 1, 2, 3])))
    if draw(st.integers(0, 3)):
        fields["start"] = draw(st.integers(-size - 2, size + 2))
    if draw(st.booleans()):
        fields["end"] = draw(st.integers(-size - 2, size + 2))
    if -ndim <= dim < ndim and dim % ndim == 0:
        # by design, not a finding: a slice of the batch axis that keeps every sample (x[0:], x[-9:]) leaves it
        # as it was in PyTorch; cnncalc refuses every layer that names the batch axis. Any other slice of it
        # changes the batch, and PyTorch is then refused by the batch checks in torch_outcome.
        kept = slice(fields.get("start", 0), fields.get("end"), fields["step"])
        assume(not all(len(range(n)[kept]) == n for n in (BATCH, BATCH + 1)))
    return Case(kind, shape, fields)


@st.composite
def pixel_shuffle_case(draw, kind):
    factor = "upscale_factor" if kind == "pixel_shuffle" else "downscale_factor"
    r = draw(st.integers(1, 3))
    if draw(st.integers(0, 7)) == 7:
        # by design, not a finding: PyTorch takes any leading axes as batch axes ([N, D, C, H, W] is shuffled
        # per [C, H, W]) and a 3-D tensor as one unbatched [C, H, W]; cnncalc's input is [N, C, H, W]. Of the
        # other ranks only [N, F] is drawn, which PyTorch refuses too.
        return Case(kind, (draw(st.integers(1, 12)),), {factor: r})
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if not draw(st.integers(0, 3)):  # any sizes: the channels (shuffle) or H and W (unshuffle) may not divide
        shape = draw(sample_shape(3))
    elif kind == "pixel_shuffle":
        shape = (c * r * r, h, w)
    else:
        shape = (c, h * r, w * r)
    return Case(kind, shape, {factor: r})


FAMILIES: dict[str, tuple[tuple[str, ...], object]] = {
    # family: (type names, strategy factory: type name -> strategy)
    "convolution": (("conv1d", "conv2d", "conv3d"), conv_case),
    "transposed_convolution": (("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"), conv_transpose_case),
    "pooling": (("maxpool1d", "maxpool2d", "maxpool3d", "minpool2d", "avgpool1d", "avgpool2d", "avgpool3d"),
                pool_case),
    "adaptive_pooling": (tuple(f"adaptive_{how}pool{r}d" for how in ("avg", "max") for r in (1, 2, 3)),
                         adaptive_pool_case),
    "global_pooling": (("global_avgpool", "global_maxpool"), global_pool_case),
    "linear": (("linear",), linear_case),
    "batch_and_instance_norm": (tuple(NORM_RANKS), per_channel_norm_case),
    "layernorm": (("layernorm",), layernorm_case),
    "groupnorm": (("groupnorm",), groupnorm_case),
    "lrn": (("lrn",), lrn_case),
    "layernorm2d": (("layernorm2d",), layernorm2d_case),
    "scale": (("scale",), scale_case),
    "activation": (("relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "leaky_relu", "elu",
                    "gelu", "mish", "softplus", "hardtanh"), activation_case),
    "prelu": (("prelu",), prelu_case),
    "softmax": (("softmax", "log_softmax"), softmax_case),
    "dropout": (("dropout", "dropout1d", "dropout2d", "dropout3d", "stochastic_depth"), dropout_case),
    "identity": (("identity",), identity_case),
    "flatten": (("flatten",), flatten_case),
    "reshape": (("reshape",), reshape_case),
    "zeropad2d": (("zeropad2d",), zeropad_case),
    "pad": (("pad",), pad_case),
    "crop": (("crop",), crop_case),
    "upsample": (("upsample",), upsample_case),
    "elementwise_merge": (("add", "multiply"), elementwise_merge_case),
    "concat": (("concat",), concat_case),
    "permute": (("permute",), permute_case),
    "transpose": (("transpose",), transpose_case),
    "channel_shuffle": (("channel_shuffle",), channel_shuffle_case),
    "slice": (("slice",), slice_case),
    "pixel_shuffle": (("pixel_shuffle", "pixel_unshuffle"), pixel_shuffle_case),
}

# type name -> the strategy drawing cases of that kind
STRATEGIES = {kind: factory(kind) for kinds, factory in FAMILIES.values() for kind in kinds}


def family(name: str):
    """Cases of every kind of a family (shrinking towards the first kind)."""
    return st.one_of(*(STRATEGIES[kind] for kind in FAMILIES[name][0]))


# ---- PyTorch's verdict ---------------------------------------------------------------------------------------

class Refused(Exception):
    """PyTorch accepted the call but not as the spec means it (see torch_outcome)."""


# what PyTorch raises when it refuses (NotImplementedError is a RuntimeError); UserWarning: escalated below
TORCH_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, UserWarning, Refused)

# PyTorch documents these modules' input as (N, C, *spatial), or one sample (C, *spatial), with the spatial
# rank their name gives. A batch with one axis too few is read as one unbatched sample, and some accept
# other ranks outside that contract (ZeroPad2d pads the last two axes of any tensor; adaptive average
# pooling to an all-ones size short-circuits to a mean without checking the rank), so any other rank is
# not the spec's layer.
DOCUMENTED_RANK = ("conv", "maxpool", "minpool", "avgpool", "adaptive_", "instancenorm", "zeropad2d")


# PyTorch's notice that 'same' with an even kernel pads a copy of the input: no verdict, just noise
QUIET = "Using padding='same'"


def declared(layer, shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The input shapes PyTorch's module is built for: the size the spec declares, where it declares one."""
    x = shapes[0]
    for field in ("in_channels", "num_features", "num_channels"):
        if getattr(layer, field, None) is not None:
            x = (getattr(layer, field), *x[1:])
    if getattr(layer, "in_features", None) is not None:
        x = (*x[:-1], layer.in_features)
    return [x, *shapes[1:]]


def crop_reference(layer, x, target=None):
    """PyTorch has no crop layer: `narrow` every spatial axis, which refuses a start or length outside it."""
    if target is not None:  # centre crop; every spatial axis of either input must exist in both
        for d in range(2, max(x.ndim, target.ndim)):
            n, t = x.size(d), target.size(d)
            x = x.narrow(d, (n - t) // 2, t)
        return x
    cropping = layer.cropping
    pairs = [cropping] * (x.ndim - 2) if isinstance(cropping, int) else list(cropping)
    for d, pair in enumerate(pairs, start=2):
        before, after = (pair, pair) if isinstance(pair, int) else pair
        x = x.narrow(d, before, x.size(d) - before - after)
    return x


def uses_batch_statistics(layer) -> bool:
    # PyTorch's batch norm without running statistics normalises by the batch's own even in eval mode; cnncalc
    # follows it, so only there may a sample's output depend on the rest of the batch
    return layer.type.startswith("batchnorm") and not layer.track_running_stats


def torch_outcome(network: Network, x: np.ndarray):
    """PyTorch's output for the network, modules built from the shapes PyTorch itself produces, or why it
    refuses. Besides raising, PyTorch refuses a configuration when
    - it returns an empty tensor (a transposed convolution with output size 0 does, instead of raising;
      no network can use it, and cnncalc refuses it as 'smaller than 1');
    - it warns that the input does not match a declared size (instance norm without affine weights);
    - the batch has another rank than PyTorch documents for the module (DOCUMENTED_RANK);
    - the batch axis or every sample axis is lost, or a sample's result depends on the other samples of
      the batch (softmax, concat or flatten over dim 0): cnncalc layers never mix samples, and every
      shape is [N, *sample] with 1 to 4 sample axes (add or multiply of inputs of different ranks: PyTorch lines
      the lower-rank input's batch axis up with a sample axis of the other, so the result changes with the
      batch size, and cnncalc refuses it).
    """
    modules: dict = {}

    def run(batch):
        live = {"input": batch}
        for layer in network.layers:
            ins = [live[name] for name in layer.inputs]
            if layer.type == "crop":
                y = crop_reference(layer, *ins)
            else:
                if layer.name not in modules:
                    shapes = declared(layer, [tuple(t.shape[1:]) for t in ins])
                    modules[layer.name] = build_module(layer, shapes).eval()
                module = modules[layer.name]
                if layer.type.startswith(DOCUMENTED_RANK) and ins[0].ndim != int(layer.type[-2]) + 2:
                    raise Refused(f"PyTorch documents {layer.type}'s batch as {int(layer.type[-2]) + 2}-D; "
                                  f"got {list(ins[0].shape)}")
                y = module(*ins)
            live[layer.name] = y
        return live["layer"]

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=QUIET)
            warnings.filterwarnings("error", message="input's size at dim=")
            whole = torch.from_numpy(x)
            y = run(whole)
            if y.numel() == 0:
                raise Refused("PyTorch returned an empty tensor")

            if y.ndim < 2 or y.shape[0] != len(x):
                raise Refused(f"the result {list(y.shape)} has lost the batch axis or every sample axis")
            if not uses_batch_statistics(network.layers[-1]):
                # the same samples and one more: a layer that keeps samples apart gives the same first results
                more = run(torch.cat([whole, whole[:1]]))
                if more.shape != (len(x) + 1, *y.shape[1:]) or \
                        not torch.allclose(more[:len(x)], y, rtol=1e-4, atol=1e-5, equal_nan=True):
                    raise Refused("the result mixes the samples of a batch")
    except TORCH_ERRORS as err:
        return err
    return y.numpy()


# ---- the property ---------------------------------------------------------------------------------------------

def single_value_noise(case: Case) -> float:
    """Normalising a single value gives exactly 0 (cnncalc does); PyTorch's fused mean is off by a rounding
    error, which 1/sqrt(eps) then amplifies: groupnorm [2], num_groups 2, eps 1e-5 gives 1.5e-05 for 0.
    So where every group is one value, allow that rounding error of a value of a few units, amplified."""
    shape, fields = case.input_shape, case.fields
    if case.kind == "groupnorm":
        single = shape[0] % fields["num_groups"] == 0 and shape[0] // fields["num_groups"] * math.prod(shape[1:]) == 1
    elif case.kind == "layernorm":
        normalized = fields.get("normalized_shape", shape)
        single = math.prod([normalized] if isinstance(normalized, int) else normalized) == 1
    elif case.kind == "layernorm2d":  # each position's C values: one value when C is 1
        single = shape[0] == 1
    else:
        return 0.0
    return 1e-6 / math.sqrt(fields.get("eps", 1e-5)) if single else 0.0


def check_three_way(case: Case):
    network = case_network(case)
    x = random_input(network, BATCH, 0)
    reference = torch_outcome(network, x)
    try:
        summary = analyze(network, batch=BATCH)
    except CnnCalcError as err:
        message = str(err)
        assert "drawn.yaml" in message and "layer 'layer'" in message, message
        assert isinstance(reference, Exception), f"cnncalc refused what PyTorch accepts: {message}"
        return
    assert not isinstance(reference, Exception), f"PyTorch refused what cnncalc accepts: {reference!r}"
    weights = init_weights(network, seed=1, summary=summary)
    ours = execute(network, weights, x)["layer"]
    model = twin(network, summary)
    load_numpy_weights(model, weights)  # strict: every key and shape exactly PyTorch's
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert {k: tuple(v.shape) for k, v in weights.items()} == state
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=QUIET)
        theirs = model(torch.from_numpy(x)).numpy()
    assert summary.rows[-1].output_shape == ours.shape == theirs.shape == reference.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 + single_value_noise(case))
    assert summary.totals.trainable_params == sum(p.numel() for p in model.parameters())
    assert summary.totals.non_trainable_params == sum(b.numel() for name, b in model.named_buffers()
                                                      if not name.endswith("num_batches_tracked"))


def test_every_kind_has_a_strategy():
    assert set(KINDS) <= set(STRATEGIES), f"no property strategy for {sorted(set(KINDS) - set(STRATEGIES))}"
    assert set(STRATEGIES) <= set(KINDS), f"strategies for unknown kinds {sorted(set(STRATEGIES) - set(KINDS))}"
    untested = [name for name in FAMILIES if f"test_{name}_agrees_with_pytorch" not in globals()]
    assert not untested, f"families without a property test: {untested}"


# ---- one property test per family ------------------------------------------------------------------

@SETTINGS
@given(family("convolution"))
def test_convolution_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("transposed_convolution"))
def test_transposed_convolution_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("pooling"))
def test_pooling_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("adaptive_pooling"))
def test_adaptive_pooling_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("global_pooling"))
def test_global_pooling_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("linear"))
def test_linear_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("batch_and_instance_norm"))
def test_batch_and_instance_norm_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("layernorm"))
def test_layernorm_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("groupnorm"))
def test_groupnorm_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("lrn"))
def test_lrn_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("layernorm2d"))
def test_layernorm2d_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("scale"))
def test_scale_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("activation"))
def test_activation_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("softmax"))
def test_softmax_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("dropout"))
def test_dropout_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("prelu"))
def test_prelu_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("identity"))
def test_identity_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("flatten"))
def test_flatten_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("reshape"))
def test_reshape_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("zeropad2d"))
def test_zeropad2d_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("pad"))
def test_pad_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("crop"))
def test_crop_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("upsample"))
def test_upsample_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("elementwise_merge"))
def test_elementwise_merge_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("concat"))
def test_concat_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("permute"))
def test_permute_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("transpose"))
def test_transpose_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("channel_shuffle"))
def test_channel_shuffle_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("slice"))
def test_slice_agrees_with_pytorch(case):
    check_three_way(case)


@SETTINGS
@given(family("pixel_shuffle"))
def test_pixel_shuffle_agrees_with_pytorch(case):
    check_three_way(case)
