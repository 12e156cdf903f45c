"""Receptive fields by the standard recurrence r += (k_eff - 1) * j, j *= s, worked by hand."""
from fractions import Fraction

import pytest

from cnncalc.analyze import analyze
from cnncalc.spec import load, parse


def fields(layers: str, input_shape: str = "[3, 64, 64]"):
    summary = analyze(parse(f"input: {input_shape}\nlayers:\n{layers}", "rf.yaml"))
    return {row.name: row.receptive_field for row in summary.rows}


def test_three_3x3_convs_see_as_much_as_one_7x7():
    three = fields("  - {type: conv2d, out_channels: 8, kernel_size: 3, repeat: 3, name: c}\n")
    one = fields("  - {type: conv2d, out_channels: 8, kernel_size: 7, name: big}\n")
    assert three["c.2"].size == one["big"].size == (7, 7)
    assert three["c.2"].jump == (1, 1)
    # weights per channel pair: 3 * 3*3 = 27 against 7*7 = 49
    summary = analyze(parse("input: [1, 16, 16]\nlayers:\n  - {type: conv2d, out_channels: 1, kernel_size: 3, "
                            "bias: false, repeat: 3, name: c}\n", "rf.yaml"))
    assert summary.totals.params == 27


def test_alexnet_conv1_and_pool1():
    rf = fields("  - {type: conv2d, name: conv1, out_channels: 96, kernel_size: 11, stride: 4}\n"
                "  - {type: maxpool2d, name: pool1, kernel_size: 3, stride: 2}\n", "[3, 227, 227]")
    assert (rf["conv1"].size, rf["conv1"].jump, rf["conv1"].start) == ((11, 11), (4, 4), (Fraction(11, 2),) * 2)
    # pool: 11 + (3-1)*4 = 19, jump 8, start 5.5 + 1*4 = 9.5
    assert (rf["pool1"].size, rf["pool1"].jump, rf["pool1"].start) == ((19, 19), (8, 8), (Fraction(19, 2),) * 2)


def test_padding_moves_the_start_and_dilation_widens():
    rf = fields("  - {type: conv2d, name: stem, out_channels: 8, kernel_size: 7, stride: 2, padding: 3}\n"
                "  - {type: maxpool2d, name: pool, kernel_size: 3, stride: 2, padding: 1}\n"
                "  - {type: conv2d, name: dil, out_channels: 8, kernel_size: 3, dilation: 2}\n")
    assert (rf["stem"].size, rf["stem"].start) == ((7, 7), (Fraction(1, 2),) * 2)  # 0.5 + (3 - 3) * 1
    assert (rf["pool"].size, rf["pool"].jump) == ((11, 11), (4, 4))                   # 7 + 2 * 2
    assert rf["dil"].size == (11 + 4 * 4,) * 2                                         # effective kernel 5


def test_transposed_convolution_halves_the_jump():
    rf = fields("  - {type: conv_transpose2d, name: up, out_channels: 4, kernel_size: 4, stride: 2, padding: 1}\n")
    # each output sums ceil(4/2) = 2 inputs; outputs are 1/2 input apart; start 0.5 + (1 - 1.5)/2 = 0.25
    assert (rf["up"].size, rf["up"].jump, rf["up"].start) == ((2, 2), (Fraction(1, 2),) * 2, (Fraction(1, 4),) * 2)


def test_branches_take_the_widest_path_and_flatten_ends_it():
    rf = fields("  - {type: conv2d, name: a, out_channels: 3, kernel_size: 5, padding: 2}\n"
                "  - {type: add, name: s, inputs: [a, input]}\n"
                "  - {type: global_avgpool, name: g, keepdims: true}\n"
                "  - {type: flatten, name: f}\n")
    assert rf["s"].size == (5, 5)
    assert rf["g"].size == (5 + 63, 5 + 63)  # one position sees the whole 64x64 input
    assert rf["f"] is None


def test_vgg16_published_receptive_fields():
    summary = analyze(load("vgg16"))
    by_name = {row.name: row.receptive_field for row in summary.rows}
    # conv5_3 (features.28) 196 and pool5 (features.30) 212, as computed by Araujo et al. (Distill, 2019)
    assert by_name["features.28"].size == (196, 196)
    assert by_name["features.30"].size == (212, 212)
    assert by_name["features.30"].jump == (32, 32)


@pytest.mark.parametrize("kind_line, size", [
    ("{type: upsample, scale_factor: 2}", (1, 1)),
    ("{type: upsample, scale_factor: 2, mode: bilinear}", (2, 2)),
    ("{type: zeropad2d, padding: 2}", (1, 1)),
])
def test_resampling_and_padding(kind_line, size):
    rf = fields(f"  - {kind_line}\n")
    (only,) = rf.values()
    assert only.size == size


def test_resnet18_last_stage_sees_435_pixels():
    summary = analyze(load("resnet18"))
    assert summary.row("layer4.1.relu2").receptive_field.size == (435, 435)
