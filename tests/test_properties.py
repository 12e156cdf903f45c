"""Property tests: random layer configurations, three-way agreement, and the same rejections as PyTorch.

For each drawn configuration either both cnncalc and PyTorch refuse it (cnncalc with a clear, located
error), or the calculated shape, the NumPy engine's shape and values, and PyTorch's all agree.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
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
SETTINGS = settings(max_examples=int(os.environ.get("CNNCALC_EXAMPLES", "120")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def spatial(draw, rank):
    top = {1: 12, 2: 9, 3: 5}[rank]
    return tuple(draw(st.integers(1, top)) for _ in range(rank))


def per_axis(draw, rank, low, high):
    if draw(st.booleans()):
        return draw(st.integers(low, high))
    return [draw(st.integers(low, high)) for _ in range(rank)]


@st.composite
def conv_case(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    in_channels = draw(st.integers(1, 6))
    padding = draw(st.one_of(
        st.integers(0, 2), st.sampled_from(["same", "valid"]),
        st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=rank, max_size=rank)))
    fields = dict(out_channels=draw(st.integers(1, 6)), kernel_size=per_axis(draw, rank, 1, 4),
                  stride=per_axis(draw, rank, 1, 3), dilation=per_axis(draw, rank, 1, 2), groups=groups,
                  padding=padding, bias=draw(st.booleans()))
    return f"conv{rank}d", (in_channels, *draw(spatial(rank))), fields


@st.composite
def conv_transpose_case(draw):
    rank = draw(st.integers(1, 3))
    fields = dict(out_channels=draw(st.integers(1, 6)), kernel_size=per_axis(draw, rank, 1, 4),
                  stride=per_axis(draw, rank, 1, 3), dilation=per_axis(draw, rank, 1, 2),
                  padding=per_axis(draw, rank, 0, 2), output_padding=per_axis(draw, rank, 0, 2),
                  groups=draw(st.sampled_from([1, 1, 2])), bias=draw(st.booleans()))
    return f"conv_transpose{rank}d", (draw(st.integers(1, 6)), *draw(spatial(rank))), fields


@st.composite
def pool_case(draw):
    rank = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["max", "avg"]))
    fields = dict(kernel_size=per_axis(draw, rank, 1, 4), padding=per_axis(draw, rank, 0, 2),
                  ceil_mode=draw(st.booleans()))
    if draw(st.booleans()):
        fields["stride"] = per_axis(draw, rank, 1, 3)
    if kind == "max":
        fields["dilation"] = per_axis(draw, rank, 1, 2)
    else:
        fields["count_include_pad"] = draw(st.booleans())
    return f"{kind}pool{rank}d", (draw(st.integers(1, 4)), *draw(spatial(rank))), fields


def one_layer_network(kind: str, in_shape: tuple[int, ...], fields: dict) -> Network:
    layer = KINDS[kind].model_validate({"type": kind, "name": "layer", "inputs": ("input",), **fields})
    return Network(name=kind, input_shape=in_shape, layers=(layer,), outputs=("layer",), file="drawn.yaml")


def torch_outcome(network: Network, x: np.ndarray):
    """PyTorch's output, or the exception it raises, for this single layer.

    A transposed convolution whose output would have size 0 returns an empty tensor in PyTorch instead of
    raising; no network can use it, and cnncalc refuses it as 'smaller than 1', so it counts as refused."""
    layer = network.layers[0]
    try:
        module = build_module(layer, [network.input_shape])
        with torch.no_grad():
            y = module(torch.from_numpy(x)).numpy()
    except (RuntimeError, ValueError) as err:
        return err
    return ValueError("PyTorch returned an empty tensor") if y.size == 0 else y


def check_three_way(kind, in_shape, fields):
    network = one_layer_network(kind, in_shape, fields)
    batch = 2
    x = random_input(network, batch, 0)
    theirs = torch_outcome(network, x)
    try:
        summary = analyze(network, batch=batch)
    except CnnCalcError as err:
        message = str(err)
        assert "drawn.yaml" in message and "layer 'layer'" in message
        assert isinstance(theirs, Exception), f"cnncalc refused what PyTorch accepts: {message}"
        return
    assert not isinstance(theirs, Exception), f"PyTorch refused what cnncalc accepts: {theirs}"
    weights = init_weights(network, seed=1, summary=summary)
    ours = execute(network, weights, x)["layer"]
    model = twin(network, summary)
    load_numpy_weights(model, weights)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    assert summary.rows[0].output_shape == ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert summary.totals.params == sum(p.numel() for p in model.parameters())


@SETTINGS
@given(conv_case())
def test_convolution_agrees_with_pytorch(case):
    check_three_way(*case)


@SETTINGS
@given(conv_transpose_case())
def test_transposed_convolution_agrees_with_pytorch(case):
    check_three_way(*case)


@SETTINGS
@given(pool_case())
def test_pooling_agrees_with_pytorch(case):
    check_three_way(*case)
