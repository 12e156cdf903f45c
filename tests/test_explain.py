"""`cnncalc explain`: the formulas with numbers, as a student would check a homework table."""
import json

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app

ALEXNET_227 = """\
input: [3, 227, 227]
layers:
  - {type: conv2d, name: conv1, out_channels: 96, kernel_size: 11, stride: 4}
  - {type: maxpool2d, name: pool1, kernel_size: 3, stride: 2, ceil_mode: true}
  - {type: conv2d, name: same, out_channels: 8, kernel_size: 3, stride: 2, padding: same}
  - {type: conv_transpose2d, name: up, out_channels: 4, kernel_size: 4, stride: 2, padding: 1}
  - {type: adaptive_avgpool2d, name: ada, output_size: 5}
  - {type: batchnorm2d, name: bn}
  - {type: flatten, name: flat}
"""


@pytest.fixture
def explained(spec_file):
    def run(*args):
        result = CliRunner().invoke(app, ["explain", str(spec_file(ALEXNET_227)), *args])
        assert result.exit_code == 0, result.output
        return result.stdout
    return run


def test_the_issue_example_for_alexnet_conv1(explained):
    text = explained("conv1")
    assert "H_out = floor((227 + 2*0 - 1*(11-1) - 1) / 4) + 1 = 55" in text
    assert "params = 96 * (3 * 11 * 11) [weight] + 96 [bias] = 34,944" in text
    assert "MACs = 96 * 55 * 55 * (3 * 11 * 11) = 105,415,200" in text
    assert "receptive field = 1 + (11 - 1) * 1 = 11, jump = 1 * 4 = 4" in text
    assert "pool1" not in text


def test_each_kind_explains_its_own_rule(explained):
    text = explained()
    assert "H_out = ceil((55 + 2*0 - 1*(3-1) - 1) / 2) + 1 = 27" in text                      # ceil mode
    assert "padding 'same' on H: total = max((ceil(27/2) - 1)*2 + 3 - 27, 0) = 2 -> 1 before, 1 after" in text
    assert "H_out = (14-1)*2 - 2*1 + 1*(4-1) + 0 + 1 = 28" in text                             # transposed
    assert "MACs = 8 * 14 * 14 * (4 * 4 * 4) = 100,352  (INPUT elements" in text              # 8*196*4*16
    assert "window i spans floor(i*28/5) .. ceil((i+1)*28/5): [0, 6), [5, 12), [11, 17), [16, 23)" in text
    assert "params = 4 [weight] + 4 [bias] + 4 [running_mean] + 4 [running_var] = 16  (8 trainable" in text
    assert "receptive field: no longer defined past this layer" in text                        # flatten


def test_batch_and_patterns(explained):
    text = explained("--batch", "8", "c*")
    assert "MACs for batch 8 = 8 * 105,415,200 = 843,321,600" in text
    assert "same (" not in text  # the pattern 'c*' picks conv1 only


def test_json_and_markdown(explained):
    data = json.loads(explained("up", "-f", "json"))
    (layer,) = data["layers"]
    assert layer["name"] == "up" and layer["macs"] == 100_352
    assert any(line.startswith("H_out = (14-1)*2") for line in layer["lines"])
    assert "### `up`" in explained("up", "-f", "markdown")


def test_unknown_layer_is_a_clear_error(spec_file):
    result = CliRunner().invoke(app, ["explain", str(spec_file(ALEXNET_227)), "conv7"])
    assert result.exit_code == 2 and "no layer matches 'conv7'. Did you mean 'conv1'?" in result.stderr
