"""cnncalc.sweep against hand-worked totals.

The network: conv1 (4, k3, p1) -> relu -> maxpool2d k2 -> conv2 (8, k3, s2, p1) -> global_avgpool -> fc (10).

MACs at [3, 32, 32]: conv1 4*32*32 x 3*9 = 110,592; pool -> 16x16; conv2 -> 8x8: 8*8*8 x 4*9 = 18,432;
                     fc 10 x 8 = 80.  Total 129,104.
MACs at [3, 64, 64]: conv1 4*64*64 x 27 = 442,368; conv2 -> 16x16: 8*16*16 x 36 = 73,728; fc 80.
                     Total 516,176 (the convolutions x4 with the output area, the linear layer unchanged).
Params: conv1 4*27 + 4 = 112, conv2 8*36 + 8 = 296, fc 8*10 + 10 = 90: 498 at every size; 1,992 bytes.
Memory at [3, 32, 32], batch 1, float32: outputs conv1 16,384, relu 16,384, pool 4,096, conv2 2,048, gap 32,
fc 40 = 38,984 bytes; peak alive = conv1 + relu outputs = 32,768; peak inference 1,992 + 32,768 = 34,760;
training (adam) = 4 x 1,992 (weights, gradients, two moments) + input 12,288 + 38,984 = 59,240.
"""
from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from cnncalc.errors import CnnCalcError
from cnncalc.spec import parse
from cnncalc.sweep import sweep
from cnncalc.sweep_report import points_from_json, sweep_json, sweep_markdown, sweep_renderable

SPEC = """name: tiny
input: [3, 32, 32]
layers:
  - {type: conv2d, name: conv1, out_channels: 4, kernel_size: 3, padding: 1}
  - relu
  - {type: maxpool2d, kernel_size: 2}
  - {type: conv2d, name: conv2, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  - global_avgpool
  - {type: linear, name: fc, out_features: 10}
"""


@pytest.fixture(scope="module")
def net():
    return parse(SPEC, "tiny.yaml")


def test_macs_scale_with_output_area_params_constant(net):
    small, large = sweep(net, [(3, 32, 32), (3, 64, 64)])
    assert small.input_shape == (1, 3, 32, 32) and large.input_shape == (1, 3, 64, 64)
    assert small.macs == 110_592 + 18_432 + 80 == 129_104
    assert large.macs == 442_368 + 73_728 + 80 == 516_176
    assert large.macs - 80 == 4 * (small.macs - 80)
    assert small.params == large.params == 498 and small.trainable_params == 498
    assert small.output_shapes == large.output_shapes == ((1, 10),)


def test_memory_hand_worked(net):
    (p,) = sweep(net)  # no inputs: the spec's own
    assert p.input_shape == (1, 3, 32, 32) and p.batch == 1
    assert p.param_bytes == 1_992
    assert p.activation_bytes == 16_384 + 16_384 + 4_096 + 2_048 + 32 + 40 == 38_984
    assert p.peak_activation_bytes == 32_768
    assert p.peak_inference_bytes == 34_760
    assert p.training_bytes == 4 * 1_992 + 12_288 + 38_984 == 59_240


def test_batch_scaling_and_point_order(net):
    points = sweep(net, [(3, 32, 32), (3, 64, 64)], [1, 8])
    assert [(p.input_shape, p.batch) for p in points] == [
        ((1, 3, 32, 32), 1), ((8, 3, 32, 32), 8), ((1, 3, 64, 64), 1), ((8, 3, 64, 64), 8)]
    one, eight = points[0], points[1]
    assert eight.macs == 8 * 129_104 and eight.flops == 8 * one.flops
    assert eight.params == one.params == 498 and eight.param_bytes == one.param_bytes
    assert eight.activation_bytes == 8 * 38_984
    assert eight.peak_inference_bytes == 1_992 + 8 * 32_768
    assert eight.training_bytes == 4 * 1_992 + 8 * (12_288 + 38_984)
    assert eight.output_shapes == ((8, 10),)


def test_json_round_trip_exact_integers(net):
    points = sweep(net, [(3, 32, 32), (3, 64, 64)], [1, 8])
    text = sweep_json(points)
    data = json.loads(text)
    assert data["schema_version"] == 1 and data["name"] == "tiny" and data["dtype"] == "float32"
    assert [p["macs"] for p in data["points"]] == [129_104, 8 * 129_104, 516_176, 8 * 516_176]
    assert data["points"][0]["input_shape"] == [1, 3, 32, 32]
    assert data["points"][1]["output_shapes"] == [[8, 10]]
    assert points_from_json(text) == points


def test_an_input_that_does_not_fit_is_a_user_error_naming_it(net):
    # [3, 1, 1]: conv1 keeps 1x1, then the 2x2 pool would output floor((1 - 2)/2) + 1 = 0
    with pytest.raises(CnnCalcError) as info:
        sweep(net, [(3, 32, 32), (3, 1, 1)])
    text = str(info.value)
    assert "input [3, 1, 1] does not fit" in text
    assert "these fit: [3, 32, 32]" in text
    assert "maxpool2d_1" in text and "tiny.yaml" in text  # the failing layer, located
    assert "Traceback" not in text
    with pytest.raises(CnnCalcError, match=r"input \[3, 32\] does not fit"):
        sweep(net, [(3, 32)])  # rank: conv2d needs [N, C, H, W]
    with pytest.raises(CnnCalcError, match="is not a shape"):
        sweep(net, [(3, 0, 32)])
    with pytest.raises(CnnCalcError, match="--batch must be a whole number from 1"):
        sweep(net, None, [0])


def test_table_and_markdown(net):
    points = sweep(net, [(3, 32, 32), (3, 64, 64)], [1, 8])
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(sweep_renderable(points))
    text = out.getvalue()
    assert "[8, 3, 64, 64]" in text and "129 k" in text and "4.13 M" in text  # 8 * 516,176 MACs
    assert "MACs bar" in text and "Peak bar" in text
    biggest = next(line for line in text.splitlines() if "[8, 3, 64, 64]" in line)
    assert "█" * 16 in biggest  # the largest point fills its bars
    md = sweep_markdown(points)
    assert md.count("\n| [") == 4 and "| [1, 3, 32, 32] | [1, 10] | 498 | 129 k |" in md
