"""Rearranging rules (permute, transpose, channel_shuffle, slice, pixel_shuffle, pixel_unshuffle), worked by
hand, their receptive fields, field validation, hostile values, and the NumPy kernels on values small enough
to check by eye."""
import json
from fractions import Fraction

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cnncalc.cli import app
from cnncalc.errors import ShapeError
from cnncalc.kernels import rearrange as K
from cnncalc.layers import canonical_type, rearrange
from cnncalc.layers.receptive_field import ReceptiveField
from conftest import make


# ---- shapes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, fields, in_shape, out_shape", [
    # torchvision's Permute([0, 2, 3, 1]) in ConvNeXt: [N, C, H, W] -> [N, H, W, C], and back
    ("permute", dict(dims=[0, 2, 3, 1]), (96, 56, 56), (56, 56, 96)),
    ("permute", dict(dims=[0, 3, 1, 2]), (56, 56, 96), (96, 56, 56)),
    ("permute", dict(dims=[0, 2, 3, 1]), (3, 4, 5), (4, 5, 3)),
    ("permute", dict(dims=[0, -1, -3, -2]), (3, 4, 5), (5, 3, 4)),       # -1 -> 3, -3 -> 1, -2 -> 2
    ("permute", dict(dims=[0, 1]), (7,), (7,)),
    ("permute", dict(dims=[0, 1, 4, 2, 3]), (2, 3, 4, 5), (2, 5, 3, 4)),
    ("transpose", dict(dim0=2, dim1=3), (3, 4, 5), (3, 5, 4)),
    ("transpose", dict(dim0=-1, dim1=1), (3, 4, 5), (5, 4, 3)),            # -1 is dim 3
    ("transpose", dict(dim0=2, dim1=2), (3, 4, 5), (3, 4, 5)),
    ("transpose", dict(dim0=1, dim1=2), (10, 20), (20, 10)),               # a sequence [N, C, L] -> [N, L, C]
    ("channel_shuffle", dict(groups=2), (116, 28, 28), (116, 28, 28)),     # ShuffleNetV2 stage 2
    ("channel_shuffle", dict(groups=3), (240, 28, 28), (240, 28, 28)),     # ShuffleNet v1, g=3
    ("channel_shuffle", dict(groups=4), (8, 5), (8, 5)),
    ("channel_shuffle", dict(groups=1), (6, 2, 2, 2), (6, 2, 2, 2)),
    # ShuffleNetV2's x.chunk(2, dim=1) as two slices: [0:58] and [58:]
    ("slice", dict(start=0, end=58), (116, 28, 28), (58, 28, 28)),
    ("slice", dict(start=58), (116, 28, 28), (58, 28, 28)),
    ("slice", dict(dim=1, start=-3), (8, 4, 4), (3, 4, 4)),                # the last 3 channels
    ("slice", dict(dim=-1, start=-5, step=2), (3, 4, 10), (3, 4, 3)),      # W: 5, 7, 9
    ("slice", dict(dim=2, start=1, end=-1), (3, 4, 10), (3, 2, 10)),       # H: 1, 2
    ("slice", dict(dim=3, start=-100, end=100), (3, 4, 10), (3, 4, 10)),   # clamped, as Python
    ("slice", dict(dim=2, step=3), (3, 7, 7), (3, 3, 7)),                  # 0, 3, 6: ceil(7 / 3)
    ("slice", dict(dim=1, start=2, end=3), (5,), (1,)),
    # ESPCN: 9 channels, r = 3 -> one channel at 3x the resolution
    ("pixel_shuffle", dict(upscale_factor=3), (9, 8, 8), (1, 24, 24)),
    ("pixel_shuffle", dict(upscale_factor=2), (16, 5, 7), (4, 10, 14)),
    ("pixel_shuffle", dict(upscale_factor=1), (3, 5, 7), (3, 5, 7)),
    ("pixel_unshuffle", dict(downscale_factor=2), (3, 8, 6), (12, 4, 3)),
    ("pixel_unshuffle", dict(downscale_factor=4), (1, 8, 4), (16, 2, 1)),
])
def test_rearrange_shapes(kind, fields, in_shape, out_shape):
    layer = make(kind, **fields)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.params(in_shape) == (0, 0)
    assert layer.weight_shapes(in_shape) == {}
    assert layer.macs(in_shape) == 0
    assert layer.flops(in_shape) == 0
    assert layer.category == "other"


@pytest.mark.parametrize("kind, fields, in_shape, words", [
    ("permute", dict(dims=[0, 2, 1]), (3, 4, 5), "dims [0, 2, 1] has 3 entries but its input [1, 3, 4, 5] has 4 dims"),
    ("permute", dict(dims=[0, 2, 3, 1]), (3, 4), "has 4 entries but its input [1, 3, 4] has 3 dims"),
    ("transpose", dict(dim0=0, dim1=1), (3, 4), "dim0=0 is the batch axis"),
    ("transpose", dict(dim0=1, dim1=-3), (3, 4), "dim1=-3 is the batch axis"),
    ("transpose", dict(dim0=1, dim1=3), (3, 4), "dim1=3 is out of range for an input with 3 dims"),
    ("channel_shuffle", dict(groups=3), (116, 28, 28), "116 channels are not divisible by groups=3"),
    ("channel_shuffle", dict(groups=2), (10,), "at least one spatial axis; got [1, 10]"),
    ("slice", dict(start=5, end=3), (8, 4, 4), "slice [5:3] of dim 1 (size 8) of [1, 8, 4, 4] is empty"),
    ("slice", dict(start=8), (8, 4, 4), "slice [8:] of dim 1 (size 8)"),
    ("slice", dict(start=-2, end=-2), (8, 4, 4), "slice [-2:-2] of dim 1 (size 8)"),
    ("slice", dict(dim=0, end=1), (8, 4, 4), "dim=0 is the batch axis"),
    ("slice", dict(dim=4), (8, 4, 4), "dim=4 is out of range for an input with 4 dims"),
    ("pixel_shuffle", dict(upscale_factor=2), (6, 3, 3), "6 channels are not divisible by upscale_factor^2 = 2^2 = 4"),
    ("pixel_shuffle", dict(upscale_factor=2), (8, 3), "expects an input [N, C, H, W]; got [1, 8, 3]"),
    ("pixel_shuffle", dict(upscale_factor=2), (8, 3, 3, 3), "expects an input [N, C, H, W]; got [1, 8, 3, 3, 3]"),
    ("pixel_unshuffle", dict(downscale_factor=2), (3, 5, 6), "H=5 and W=6 must both be divisible by"),
    ("pixel_unshuffle", dict(downscale_factor=3), (3, 6, 4), "H=6 and W=4 must both be divisible by"),
])
def test_rearrange_errors(kind, fields, in_shape, words):
    with pytest.raises(ShapeError) as err:
        make(kind, **fields).output_shape(in_shape)
    assert words in str(err.value)
    assert err.value.fix


@pytest.mark.parametrize("kind, fields, words", [
    ("permute", dict(dims=[0, 1, 1]), "must be a permutation of 0..2"),
    ("permute", dict(dims=[0, 1, 3]), "must be a permutation of 0..2"),
    ("permute", dict(dims=[0, -4, 1]), "must be a permutation of 0..2"),
    ("permute", dict(dims=[0]), "at least 2"),
    ("permute", dict(dims=[]), "at least 2"),
    ("permute", dict(dims=[1, 0, 2, 3]), "must keep the batch axis first"),
    ("permute", dict(dims=[2, 3, 1]), "looks like Keras's Permute (no batch axis, counted from 1): write [0, 2, 3, 1]"),
    ("channel_shuffle", dict(groups=0), "greater than 0"),
    ("slice", dict(step=0), "greater than 0"),
    ("slice", dict(step=-1), "greater than 0"),
    ("pixel_shuffle", dict(upscale_factor=0), "greater than 0"),
    ("pixel_unshuffle", dict(downscale_factor=10**20), "less than or equal to 1000000000000"),
    ("slice", dict(start=1.5), "integer"),
    ("transpose", dict(dim0=1), "dim1"),
])
def test_rearrange_field_validation(kind, fields, words):
    with pytest.raises(ValidationError) as err:
        make(kind, **fields)
    assert words in str(err.value)


@pytest.mark.parametrize("spelling, kind", [
    ("swapaxes", "transpose"), ("swapdims", "transpose"), ("ChannelShuffle", "channel_shuffle"),
    ("PixelShuffle", "pixel_shuffle"), ("PixelUnshuffle", "pixel_unshuffle"), ("Permute", "permute"),
])
def test_pytorch_spellings(spelling, kind):
    assert canonical_type(spelling) == kind


def test_permute_dims_are_kept_as_written_for_the_table():
    layer = make("permute", dims=[0, -1, 1, 2])
    assert layer.dims == (0, -1, 1, 2)
    assert layer.hyper() == "dims=0,-1,1,2"


@pytest.mark.parametrize("kind, fields, text", [
    ("transpose", dict(dim0=1, dim1=-1), "dims=1,-1"),
    ("channel_shuffle", dict(groups=2), "g=2"),
    ("slice", dict(start=58), "dim=1 [58:]"),
    ("slice", dict(dim=-1, start=-5, end=-1, step=2), "dim=-1 [-5:-1:2]"),
    ("pixel_shuffle", dict(upscale_factor=3), "r=3"),
    ("pixel_unshuffle", dict(downscale_factor=2), "r=2"),
])
def test_rearrange_hyper(kind, fields, text):
    assert make(kind, **fields).hyper() == text


def test_explain_lines_fill_in_the_numbers():
    assert make("slice", dim=-1, start=-5, step=2).explain((3, 4, 10)) == [
        "W = len(range(10)[-5::2]) = 3 (positions 5 to 9, step 2): [1, 3, 4, 3]"]
    assert make("slice", start=58).explain((116, 28, 28))[0].startswith("C = len(range(116)[58:]) = 58")
    assert make("pixel_shuffle", upscale_factor=3).explain((9, 8, 8)) == [
        "C = 9 / 3^2 = 1, H = 8 * 3 = 24, W = 8 * 3 = 24"]
    assert make("pixel_unshuffle", downscale_factor=2).explain((3, 8, 6)) == [
        "C = 3 * 2^2 = 12, H = 8 / 2 = 4, W = 6 / 2 = 3"]
    assert "output channel i * 2 + j is input channel j * 58 + i" in make("channel_shuffle", groups=2).explain(
        (116, 28, 28))[0]
    assert make("transpose", dim0=1, dim1=-1).explain((3, 4, 5)) == [
        "dims 1 and -1 (C and W) swap: [1, 3, 4, 5] -> [1, 5, 4, 3]"]
    assert make("transpose", dim0=1, dim1=2).explain((10, 20)) == [
        "dims 1 and 2 (C and L) swap: [1, 10, 20] -> [1, 20, 10]"]
    assert make("permute", dims=[0, 2, 3, 1]).explain((3, 4, 5)) == [
        "output = input axes [0, 2, 3, 1] of [1, 3, 4, 5] = [1, 4, 5, 3]"]


# ---- receptive fields ----------------------------------------------------------------------------------------
def field(size, jump, start) -> ReceptiveField:
    return ReceptiveField(tuple(map(Fraction, size)), tuple(map(Fraction, jump)), tuple(map(Fraction, start)))


PIXEL = ReceptiveField.of_input(2)                       # the network input: 1x1, jump 1, centre 0.5
CONV_3X5 = field((3, 5), (1, 1), ("3/2", "5/2"))         # after a valid 3x5 convolution


@pytest.mark.parametrize("kind, fields, in_shape, before, after", [
    # channel-only: every position keeps its field
    ("channel_shuffle", dict(groups=2), (4, 6, 6), CONV_3X5, CONV_3X5),
    ("slice", dict(start=1, end=3), (4, 6, 6), CONV_3X5, CONV_3X5),
    # every 2nd column from column 2: the jump doubles, the first output looks 2 columns further
    ("slice", dict(dim=3, start=2, step=2), (4, 6, 6), CONV_3X5, field((3, 5), (1, 2), ("3/2", "9/2"))),
    # -4 on 6 rows is row 2
    ("slice", dict(dim=2, start=-4), (4, 6, 6), CONV_3X5, field((3, 5), (1, 1), ("7/2", "5/2"))),
    # spatial axes swapped: their fields swap with them
    ("transpose", dict(dim0=2, dim1=3), (4, 6, 6), CONV_3X5, field((5, 3), (1, 1), ("5/2", "3/2"))),
    ("permute", dict(dims=[0, 1, 3, 2]), (4, 6, 6), CONV_3X5, field((5, 3), (1, 1), ("5/2", "3/2"))),
    ("permute", dict(dims=[0, 1, 2, 3]), (4, 6, 6), CONV_3X5, CONV_3X5),
    # the channel axis moved (ConvNeXt's channels-last): no [C, *spatial] layout left, unknown
    ("permute", dict(dims=[0, 2, 3, 1]), (4, 6, 6), CONV_3X5, None),
    ("transpose", dict(dim0=1, dim1=-1), (4, 6, 6), CONV_3X5, None),
    # space-to-depth is a kernel-2 stride-2 window: 1 + (2 - 1) * 1 = 2, jump 2, centre 0.5 + 1/2 = 1
    ("pixel_unshuffle", dict(downscale_factor=2), (1, 4, 4), PIXEL, field((2, 2), (2, 2), (1, 1))),
    # depth-to-space is a kernel-2 stride-2 transposed window: one input pixel, outputs 1/2 apart,
    # output 0 at 0.5 + (0 - 1/2) / 2 = 1/4 (outputs 0 and 1 centre on input pixel 0)
    ("pixel_shuffle", dict(upscale_factor=2), (4, 4, 4), PIXEL,
     field((1, 1), ("1/2", "1/2"), ("1/4", "1/4"))),
    ("pixel_shuffle", dict(upscale_factor=2), (4, 4, 4), None, None),
])
def test_rearrange_receptive_fields(kind, fields, in_shape, before, after):
    assert make(kind, **fields).receptive_field((before,), in_shape) == after


def test_pixel_unshuffle_then_shuffle_lands_on_the_same_centres():
    down = make("pixel_unshuffle", downscale_factor=2).receptive_field((PIXEL,), (1, 4, 4))
    up = make("pixel_shuffle", upscale_factor=2).receptive_field((down,), (4, 2, 2))
    assert up.jump == PIXEL.jump and up.start == PIXEL.start and up.size == (2, 2)  # each sees its 2x2 block


# ---- hostile values: refused quickly, with the location --------------------------------------------------------
@pytest.mark.parametrize("layer, words", [
    ("{type: pixel_shuffle, upscale_factor: 1e400}", "upscale_factor"),
    ("{type: pixel_shuffle, upscale_factor: 1.0e+400}", "got inf"),
    ("{type: pixel_shuffle, upscale_factor: 100000000000000000000}", "less than or equal to 1000000000000"),
    ("{type: pixel_shuffle, upscale_factor: 1000000000000}", "not divisible by upscale_factor^2"),
    ("{type: pixel_unshuffle, downscale_factor: 1000000000000}", "must both be divisible by downscale_factor"),
    ("{type: channel_shuffle, groups: 1000000000000}", "3 channels are not divisible by groups=1000000000000"),
    ("{type: slice, start: 1000000000000}", "is empty"),
    ("{type: slice, start: -100000000000000000000}", "greater than or equal to -1000000000000"),
    ("{type: slice, step: 1e400}", "step"),
    ("{type: transpose, dim0: 1, dim1: 1000000000000}", "out of range"),
    ("{type: permute, dims: [0, 1000000000000, 1, 2]}", "must be a permutation"),
])
def test_hostile_values_are_refused_with_exit_2(spec_file, layer, words):
    spec = spec_file(f"input: [3, 8, 8]\nlayers:\n  - {layer}\n")
    result = CliRunner().invoke(app, ["summarize", str(spec)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith(f"{spec}:3:") and words in result.stderr, result.stderr


def test_a_huge_pixel_shuffle_output_is_refused_by_the_axis_limit(spec_file):
    # 10^12 channels with r = 10^6: one channel, but H = 2 * 10^6 rows become 2 * 10^12, over MAX_DIM
    spec = spec_file("input: [1000000000000, 2000000, 1]\nlayers:\n"
                     "  - {type: pixel_shuffle, upscale_factor: 1000000}\n")
    result = CliRunner().invoke(app, ["summarize", str(spec)])
    assert result.exit_code == 2 and "larger than 1,000,000,000,000" in result.stderr, result.output


def test_a_huge_but_legal_slice_and_shuffle_summarize_instantly(spec_file):
    spec = spec_file("input: [1000000000000, 1, 1]\nlayers:\n"
                     "  - {type: slice, start: -500000000000, end: 1000000000000, step: 250000000000}\n"
                     "  - {type: pixel_unshuffle, downscale_factor: 1}\n  - {type: channel_shuffle, groups: 2}\n")
    result = CliRunner().invoke(app, ["summarize", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [row["output_shape"] for row in json.loads(result.stdout)["layers"]] == [[1, 2, 1, 1]] * 3  # 5e11, 7.5e11


# ---- the kernels, by eye --------------------------------------------------------------------------------------
def test_channel_shuffle_kernel_interleaves_the_groups():
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1)
    assert K.channel_shuffle(x, 2).ravel().tolist() == [0, 3, 1, 4, 2, 5]
    assert K.channel_shuffle(x, 3).ravel().tolist() == [0, 2, 4, 1, 3, 5]
    with pytest.raises(ValueError):
        K.channel_shuffle(x, 4)


def test_pixel_shuffle_kernel_puts_channels_into_blocks():
    x = np.arange(4, dtype=np.float32).reshape(1, 4, 1, 1)      # r = 2: channel i * 2 + j -> pixel (i, j)
    assert K.pixel_shuffle(x, 2).tolist() == [[[[0, 1], [2, 3]]]]
    y = np.arange(2 * 8 * 3 * 5, dtype=np.float64).reshape(2, 8, 3, 5)
    assert np.array_equal(K.pixel_unshuffle(K.pixel_shuffle(y, 2), 2), y)
    with pytest.raises(ValueError):
        K.pixel_unshuffle(y, 2)                                   # 3 x 5 does not split into 2 x 2 blocks


def test_slice_permute_and_transpose_kernels():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    assert K.slice_axis(x, -1, -3, None, 2).shape == (2, 3, 2)
    assert np.array_equal(K.slice_axis(x, 1, 1, 2, 1), x[:, 1:2])
    with pytest.raises(ValueError):
        K.slice_axis(x, 1, 3, None, 1)                            # empty
    assert np.array_equal(K.permute(x, (0, 2, 1)), K.transpose(x, 1, -1))
    assert K.permute(x, (0, -1, 1)).shape == (2, 4, 3)


# ---- the witness stands alone: a wrong rule is caught by verify ---------------------------------------------------
@pytest.mark.parametrize("cls, wrong, layer, calculated, executed", [
    # r instead of r^2 for the channels
    (rearrange.PixelShuffle, lambda self, x: (x[0] // self.upscale_factor, x[1] * 2, x[2] * 2),
     "{type: pixel_shuffle, name: ps, upscale_factor: 2}", (1, 4, 6, 6), (1, 2, 6, 6)),
    # an inclusive end
    (rearrange.Slice, lambda self, x: (self.end - self.start + 1, *x[1:]),
     "{type: slice, name: ps, start: 1, end: 3}", (1, 3, 3, 3), (1, 2, 3, 3)),
    # the permutation read the inverse way round
    (rearrange.Permute, lambda self, x: tuple(x[self.order(x).index(i)] for i in range(len(x))),
     "{type: permute, name: ps, dims: [0, 2, 3, 1]}", (1, 8, 3, 5), (1, 5, 8, 3)),
])
def test_a_wrong_rule_is_caught_by_verify(spec_file, monkeypatch, cls, wrong, layer, calculated, executed):
    monkeypatch.setattr(cls, "output_shape", wrong)
    shape = "[8, 3, 3]" if cls is not rearrange.Permute else "[3, 5, 8]"
    spec = spec_file(f"input: {shape}\nlayers:\n  - {layer}\n", "mutant.yaml")
    result = CliRunner().invoke(app, ["verify", str(spec)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    kind = layer.split(",")[0].split()[-1]
    assert (f"Layer ps ({kind}) executed with shape {list(executed)}, but the calculation says "
            f"{list(calculated)}") in result.stdout, result.stdout
