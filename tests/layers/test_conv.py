"""Convolution rules, worked by hand from out = floor((N + 2P - D(F-1) - 1)/S) + 1."""
import pytest

from cnncalc.errors import ShapeError
from conftest import make


@pytest.mark.parametrize("kind, in_shape, fields, out_shape, params, macs", [
    # AlexNet conv1 (the worked example): 96*(3*11*11)+96, 96*55*55*(3*11*11)
    ("conv2d", (3, 227, 227), dict(out_channels=96, kernel_size=11, stride=4), (96, 55, 55), 34_944, 105_415_200),
    # VGG 3x3 'same' conv: (224 + 2 - 2 - 1)/1 + 1 = 224; 64*(64*9)+64
    ("conv2d", (64, 224, 224), dict(out_channels=64, kernel_size=3, padding=1), (64, 224, 224), 36_928,
     64 * 224 * 224 * 64 * 9),
    # ResNet stem: floor((224 + 6 - 6 - 1)/2) + 1 = 112, no bias
    ("conv2d", (3, 224, 224), dict(out_channels=64, kernel_size=7, stride=2, padding=3, bias=False),
     (64, 112, 112), 9_408, 118_013_952),
    # dilation 2: effective kernel 5 -> 10 - 5 + 1 = 6
    ("conv2d", (1, 10, 10), dict(out_channels=1, kernel_size=3, dilation=2), (1, 6, 6), 10, 6 * 6 * 9),
    # depthwise: groups = channels, weight [32, 1, 3, 3]
    ("conv2d", (32, 56, 56), dict(out_channels=32, kernel_size=3, padding=1, groups=32), (32, 56, 56), 320,
     32 * 56 * 56 * 9),
    # grouped: 64 -> 128 in 4 groups: weight [128, 16, 3, 3]
    ("conv2d", (64, 8, 8), dict(out_channels=128, kernel_size=3, padding=1, groups=4, bias=False),
     (128, 8, 8), 128 * 16 * 9, 128 * 64 * 16 * 9),
    # conv1d: floor((100 + 4 - 4 - 1)/2) + 1 = 50
    ("conv1d", (16, 100), dict(out_channels=32, kernel_size=5, stride=2, padding=2), (32, 50), 2_592, 128_000),
    # conv3d (C3D's first layer)
    ("conv3d", (3, 16, 112, 112), dict(out_channels=64, kernel_size=3, padding=1), (64, 16, 112, 112), 5_248,
     1_040_449_536),
    # non-square kernel and per-axis stride: H = (20-5)/2+1 = 8, W = (20-1)/1+1 = 20
    ("conv2d", (2, 20, 20), dict(out_channels=4, kernel_size=[5, 1], stride=[2, 1]), (4, 8, 20), 44,
     4 * 8 * 20 * 2 * 5),
    # per-axis [before, after] pairs: H = 5+0+1-3+1 = 4, W = 5+2+3-3+1 = 8
    ("conv2d", (1, 5, 5), dict(out_channels=1, kernel_size=3, padding=[[0, 1], [2, 3]]), (1, 4, 8), 10, 4 * 8 * 9),
])
def test_conv_shape_params_macs(kind, in_shape, fields, out_shape, params, macs):
    layer = make(kind, **fields)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.params(in_shape).total == params
    assert layer.macs(in_shape) == macs


@pytest.mark.parametrize("size, kernel, stride, out, pads", [
    (7, 3, 1, 7, (1, 1)),   # stride 1: output = input
    (5, 4, 1, 5, (1, 2)),   # even kernel: total 3, the odd one at the end
    (7, 3, 2, 4, (1, 1)),   # ceil(7/2) = 4: total = 3*2 + 3 - 7 = 2
    (8, 3, 2, 4, (0, 1)),   # ceil(8/2) = 4: total = 3*2 + 3 - 8 = 1, at the end (TensorFlow)
    (8, 2, 2, 4, (0, 0)),
    (224, 7, 2, 112, (2, 3)),
])
def test_same_padding_follows_tensorflow(size, kernel, stride, out, pads):
    layer = make("conv2d", out_channels=1, kernel_size=kernel, stride=stride, padding="same")
    assert layer.output_shape((1, size, size)) == (1, out, out)
    assert layer.pads((size, size)) == (pads, pads)


def test_valid_padding_is_zero():
    layer = make("conv2d", out_channels=1, kernel_size=3, padding="valid")
    assert layer.output_shape((1, 572, 572)) == (1, 570, 570)


def test_conv_flops_are_twice_macs_plus_bias_adds():
    layer = make("conv2d", out_channels=96, kernel_size=11, stride=4)
    assert layer.flops((3, 227, 227)) == 2 * 105_415_200 + 96 * 55 * 55
    no_bias = make("conv2d", out_channels=96, kernel_size=11, stride=4, bias=False)
    assert no_bias.flops((3, 227, 227)) == 2 * 105_415_200


def test_weight_shapes_follow_pytorch_layout():
    layer = make("conv2d", out_channels=128, kernel_size=[3, 1], groups=4)
    weights = layer.weight_shapes((64, 8, 8))
    assert weights["weight"].shape == (128, 16, 3, 1)
    assert weights["bias"].shape == (128,)


@pytest.mark.parametrize("in_shape, fields, out_shape, params, macs", [
    # DCGAN-style up-sampling: (8-1)*2 - 2*1 + 1*(4-1) + 0 + 1 = 16; weight [16, 8, 4, 4]
    ((16, 8, 8), dict(out_channels=8, kernel_size=4, stride=2, padding=1), (8, 16, 16), 2_056,
     16 * 8 * 8 * 8 * 16),  # INPUT elements x C_out x kernel: 131,072 (not output elements)
    # output_padding: (7-1)*2 - 2 + 2 + 1 + 1 = 14
    ((4, 7, 7), dict(out_channels=2, kernel_size=3, stride=2, padding=1, output_padding=1), (2, 14, 14), 74,
     4 * 49 * 2 * 9),
    # U-Net up-convolution 2x2/2 halving channels
    ((1024, 28, 28), dict(out_channels=512, kernel_size=2, stride=2), (512, 56, 56), 2_097_664,
     1024 * 28 * 28 * 512 * 4),
])
def test_conv_transpose(in_shape, fields, out_shape, params, macs):
    layer = make("conv_transpose2d", **fields)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.params(in_shape).total == params
    assert layer.weight_shapes(in_shape)["weight"].shape == (in_shape[0], fields["out_channels"],
                                                             *(2 * (fields["kernel_size"],)))
    assert layer.macs(in_shape) == macs


def test_output_smaller_than_one_quotes_the_formula():
    layer = make("conv2d", out_channels=8, kernel_size=7)
    with pytest.raises(ShapeError) as err:
        layer.output_shape((3, 5, 5))
    assert "H_out = floor((5 + 2*0 - 1*(7-1) - 1) / 1) + 1 = -1" in str(err.value)


@pytest.mark.parametrize("kind, in_shape, fields, words", [
    ("conv2d", (6, 8, 8), dict(out_channels=8, kernel_size=3, groups=4), "in_channels=6 is not divisible by groups=4"),
    ("conv2d", (8, 8, 8), dict(out_channels=6, kernel_size=3, groups=4), "out_channels=6 is not divisible"),
    ("conv2d", (3, 8, 8), dict(out_channels=6, kernel_size=3, in_channels=4), "says in_channels=4 but its input has 3"),
    ("conv2d", (4096,), dict(out_channels=6, kernel_size=3), "expects an input [N, C, H, W]; got [1, 4096]"),
    ("conv_transpose2d", (4, 7, 7), dict(out_channels=2, kernel_size=3, stride=2, output_padding=2),
     "output_padding=2 must be smaller than stride (2) or dilation (1)"),
])
def test_conv_errors(kind, in_shape, fields, words):
    with pytest.raises(ShapeError) as err:
        make(kind, **fields).output_shape(in_shape)
    assert words in str(err.value)


@pytest.mark.parametrize("fields", [
    dict(out_channels=8, kernel_size=[3, 3, 3]),  # three values for a 2-D kernel
    dict(out_channels=8, kernel_size=0),
    dict(out_channels=8, kernel_size=True),       # YAML `true` is not a size
    dict(out_channels=-1, kernel_size=3),
    dict(out_channels=8, kernel_size=3, padding="full"),
    dict(out_channels=8, kernel_size=3, padding=[[1, 2, 3], 1]),
])
def test_conv_rejects_bad_fields(fields):
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        make("conv2d", **fields)


# ---- padding_mode (nn.ConvNd's): the same sizes, counts and rule; reflect and circular have limits ------------
@pytest.mark.parametrize("kind, in_shape, fields, out_shape", [
    # (5 + 2 + 2 - 3) // 1 + 1 = 7 on both axes, whatever the padding holds
    ("conv2d", (3, 5, 5), dict(out_channels=4, kernel_size=3, padding=2, padding_mode="reflect"), (4, 7, 7)),
    ("conv2d", (3, 5, 5), dict(out_channels=4, kernel_size=3, padding=5, padding_mode="circular"), (4, 13, 13)),
    ("conv1d", (2, 2), dict(out_channels=3, kernel_size=3, padding=7, padding_mode="replicate"), (3, 14)),
    # 'same' at stride 2 (TensorFlow's): ceil(5 / 2) = 3, pads (1, 1); reflect needs them below 5
    ("conv2d", (3, 5, 5), dict(out_channels=4, kernel_size=3, stride=2, padding="same", padding_mode="reflect"),
     (4, 3, 3)),
    ("conv3d", (1, 2, 3, 4), dict(out_channels=2, kernel_size=2, padding=[[1, 0], [0, 1], [1, 1]],
                                  padding_mode="circular"), (2, 2, 3, 5)),  # 2+1-1, 3+1-1, 4+2-1
])
def test_padding_mode_keeps_the_shape_rule(kind, in_shape, fields, out_shape):
    layer = make(kind, **fields)
    zeros = make(kind, **{**fields, "padding_mode": "zeros"})
    assert layer.output_shape(in_shape) == out_shape
    assert layer.params(in_shape) == zeros.params(in_shape) and layer.macs(in_shape) == zeros.macs(in_shape)
    assert layer.flops(in_shape) == zeros.flops(in_shape)


def test_padding_mode_shows_in_the_table():
    assert make("conv2d", out_channels=4, kernel_size=3, padding=1, padding_mode="reflect").hyper() == \
        "k=3 s=1 p=1 reflect"
    assert make("conv2d", out_channels=4, kernel_size=3, padding=1).hyper() == "k=3 s=1 p=1"


@pytest.mark.parametrize("in_shape, fields, words", [
    ((3, 4, 5), dict(padding=4, padding_mode="reflect"),
     "padding_mode 'reflect' pads H by [4, 4] but the input is only 4 long there"),
    ((3, 5, 5), dict(padding=[[0, 0], [1, 5]], padding_mode="reflect"), "pads W by [1, 5]"),
    ((3, 4, 5), dict(padding=5, padding_mode="circular"), "would wrap around more than once"),
    ((3, 1, 1), dict(padding="same", padding_mode="reflect"), "pads H by [1, 1] but the input is only 1 long"),
])
def test_padding_mode_limits(in_shape, fields, words):
    with pytest.raises(ShapeError) as err:
        make("conv2d", out_channels=4, kernel_size=3, **fields).output_shape(in_shape)
    assert words in str(err.value) and err.value.field == "padding"


def test_padding_mode_reflect_allows_padding_one_less_than_the_size():
    # PyTorch: "Padding size should be less than the corresponding input dimension"; circular: at most the size
    assert make("conv2d", out_channels=1, kernel_size=3, padding=3, padding_mode="reflect").output_shape(
        (1, 4, 4)) == (1, 8, 8)
    assert make("conv2d", out_channels=1, kernel_size=3, padding=4, padding_mode="circular").output_shape(
        (1, 4, 4)) == (1, 10, 10)


@pytest.mark.parametrize("kind, mode", [("conv_transpose2d", "reflect"), ("conv_transpose1d", "circular"),
                                        ("conv2d", "mirror")])
def test_padding_mode_refusals(kind, mode):
    from pydantic import ValidationError
    with pytest.raises(ValidationError) as err:
        make(kind, out_channels=4, kernel_size=3, padding_mode=mode)
    assert ("only pad with zeros" if kind.startswith("conv_transpose") else "zeros") in str(err.value)
