"""Design warnings, worked by hand; every suggested fix is fed back to check that it removes the warning."""
import re

import pytest
from typer.testing import CliRunner

from cnncalc.analyze import analyze
from cnncalc.cli import app
from cnncalc.lint import lint
from cnncalc.spec import apply_overrides, parse


def warnings_of(layers: str, input_shape: str = "[3, 7, 7]", overrides=()):
    net = apply_overrides(parse(f"input: {input_shape}\nlayers:\n{layers}", "net.yaml"), list(overrides))
    return lint(net, analyze(net))


def codes(warnings):
    return [(w.layer, w.advice.code) for w in warnings]


def test_lost_pixels_the_issue_example():
    # 7x7 input, 3x3 kernel, stride 3: (7 - 3) mod 3 = 1 row and 1 column never covered
    (w,) = warnings_of("  - {type: conv2d, name: c, out_channels: 4, kernel_size: 3, stride: 3}\n")
    assert w.advice.code == "lost-pixels"
    assert "drops the last 1 input pixel on H and W: (7 + 0 + 0 - 3) mod 3 = 1" in w.advice.message
    assert "net.yaml:3:" in str(w)
    for fix in re.findall(r"(padding|stride): (\d+)", w.advice.fix):
        assert warnings_of("  - {type: conv2d, name: c, out_channels: 4, kernel_size: 3, stride: 3}\n",
                           overrides=[f"c.{fix[0]}={fix[1]}"]) == []


def test_pooling_that_does_not_tile_the_input():
    (w,) = warnings_of("  - {type: maxpool2d, name: p, kernel_size: 2}\n", "[1, 5, 5]")
    assert codes([w]) == [("p", "lost-pixels")] and "(5 + 0 + 0 - 2) mod 2 = 1" in w.advice.message


def test_padding_can_absorb_the_remainder():
    # (7 + 1 + 1 - 3) mod 3 = 0: nothing lost
    assert warnings_of("  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 3, padding: 1}\n") == []


def test_asymmetric_same_padding():
    found = warnings_of("  - {type: conv2d, name: even, out_channels: 4, kernel_size: 2, padding: same}\n"
                        "  - {type: conv2d, name: strided, out_channels: 4, kernel_size: 3, stride: 2, padding: same}\n",
                        "[3, 8, 8]")
    assert codes(found) == [("even", "asymmetric-padding"), ("strided", "asymmetric-padding")]
    assert "pads 0 at the start and 1 at the end" in found[0].advice.message  # total 1: the odd one at the end
    assert "pads 0 at the start and 1 at the end" in found[1].advice.message  # ceil(8/2)=4: (4-1)*2+3-8 = 1


def test_kernel_larger_than_input_and_collapsed_maps():
    found = warnings_of("  - {type: conv2d, name: big, out_channels: 4, kernel_size: 5, padding: 2}\n"
                        "  - {type: global_avgpool, keepdims: true}\n"
                        "  - {type: conv2d, name: late, out_channels: 4, kernel_size: 3, padding: 1}\n", "[3, 4, 4]")
    assert codes(found) == [("big", "kernel-larger-than-input"), ("late", "collapsed-input")]
    assert "spans 5 but its input is only 4" in found[0].advice.message


def test_ceil_mode_window_starting_in_the_padding():
    # N=5, k=2, s=2, p=1: ceil((5 + 2 - 2)/2) + 1 = 4, but window 4 would start at 6 >= 5 + 1
    (w,) = warnings_of("  - {type: maxpool2d, name: p, kernel_size: 2, stride: 2, padding: 1, ceil_mode: true}\n",
                       "[1, 5, 5]")
    assert w.advice.code == "ceil-mode-dropped-window" and "(6 >= 5 + 1)" in w.advice.message


def test_strided_gaps_the_resnet_shortcut():
    (gaps, lost) = warnings_of("  - {type: conv2d, name: down, out_channels: 4, kernel_size: 1, stride: 2}\n",
                               "[3, 56, 56]")
    assert gaps.advice.code == "strided-gaps" and "1 of every 2 input pixels" in gaps.advice.message
    assert lost.advice.code == "lost-pixels"  # (56 - 1) mod 2 = 1: the last row too


def test_linear_on_a_spatial_tensor():
    found = warnings_of("  - {type: conv2d, out_channels: 2, kernel_size: 1}\n"
                        "  - {type: linear, name: fc, out_features: 100}\n", "[3, 7, 7]")
    assert codes(found) == [("fc", "linear-on-spatial")]


def test_a_layer_holding_most_parameters():
    found = warnings_of("  - {type: conv2d, out_channels: 2, kernel_size: 1, repeat: 3, name: c}\n"
                        "  - flatten\n  - {type: linear, name: fc, out_features: 10}\n", "[3, 7, 7]")
    # convs: 2*3+2 + 2*(2*2+2) = 20 params; fc: 10*98+10 = 990 -> 990/1010 = 98 %
    assert codes(found) == [("fc", "dominant-layer")]
    assert "holds 98% of all parameters (990 of 1.01 k)" in found[0].advice.message


def test_a_clean_network_has_no_warnings():
    assert warnings_of("  - {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1}\n"
                       "  - {type: maxpool2d, kernel_size: 2}\n  - relu\n"
                       "  - {type: conv2d, out_channels: 8, kernel_size: 3, padding: 1}\n"
                       "  - {type: global_avgpool}\n  - {type: linear, out_features: 10}\n", "[3, 8, 8]") == []


@pytest.mark.parametrize("command", ["summarize", "verify"])
def test_strict_turns_warnings_into_exit_1(spec_file, command):
    runner = CliRunner()
    lossy = str(spec_file("input: [3, 7, 7]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel_size: 3, "
                          "stride: 3}\n", "lossy.yaml"))
    plain = runner.invoke(app, [command, lossy])
    assert plain.exit_code == 0 and "lost-pixels" in plain.stdout
    strict = runner.invoke(app, [command, lossy, "--strict"])
    assert strict.exit_code == 1 and "--strict: 1 warning(s)" in strict.stderr
    fixed = runner.invoke(app, [command, lossy, "--strict", "--set", "conv2d_1.padding=1"])
    assert fixed.exit_code == 0


def test_dilated_taps_that_skip_pixels():
    # k=3, dilation 2, stride 2 on 8 pixels, padding 2: windows start at 0, 2, 4, 6 (padded) and taps land
    # on even padded positions only, so the input's odd padded positions 3, 5, 7, 9 (pixels 1, 3, 5, 7) are
    # never read, although the span 5 is larger than the stride
    found = warnings_of("  - {type: conv2d, name: d, out_channels: 4, kernel_size: 3, dilation: 2, stride: 2, "
                        "padding: 2}\n", "[3, 8, 8]")
    assert codes(found) == [("d", "strided-gaps")]
    assert "the taps skip 4 of the 8 input pixels on H and W" in found[0].advice.message
    assert warnings_of("  - {type: conv2d, out_channels: 4, kernel_size: 3, dilation: 2, stride: 1, "
                       "padding: 2}\n", "[3, 8, 8]") == []
