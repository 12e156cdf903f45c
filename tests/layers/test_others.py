"""Linear, normalisation, activation, merge and reshape rules, worked by hand."""
import pytest

from cnncalc.errors import ShapeError
from conftest import make


# ---- linear ------------------------------------------------------------------------------------------------
def test_linear_alexnet_classifier():
    layer = make("linear", out_features=1000)
    assert layer.output_shape((4096,)) == (1000,)
    assert layer.params((4096,)) == (4_097_000, 0)
    assert layer.macs((4096,)) == 4_096_000
    assert layer.flops((4096,)) == 2 * 4_096_000 + 1000


def test_linear_acts_on_the_last_axis():
    layer = make("linear", out_features=5, bias=False)
    assert layer.output_shape((10, 20)) == (10, 5)
    assert layer.macs((10, 20)) == 10 * 5 * 20
    assert layer.weight_shapes((10, 20))["weight"].shape == (5, 20)


def test_linear_checks_given_in_features():
    with pytest.raises(ShapeError, match="says in_features=100 but its input has 9216"):
        make("linear", out_features=10, in_features=100).output_shape((9216,))


# ---- normalisation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, fields, in_shape, trainable, non_trainable, flops_per_element", [
    ("batchnorm2d", {}, (64, 56, 56), 128, 128, 2),             # weight, bias; running mean, var
    ("batchnorm2d", dict(affine=False), (64, 56, 56), 0, 128, 2),
    ("batchnorm1d", {}, (100,), 200, 200, 2),
    ("batchnorm1d", {}, (16, 50), 32, 32, 2),
    ("layernorm", {}, (8, 4, 4), 256, 0, 7),                    # all non-batch axes
    ("layernorm", dict(normalized_shape=4), (8, 4, 4), 8, 0, 7),
    ("layernorm", dict(elementwise_affine=False), (8, 4, 4), 0, 0, 5),
    ("groupnorm", dict(num_groups=32), (64, 8, 8), 128, 0, 7),
    ("instancenorm2d", {}, (64, 8, 8), 0, 0, 5),                # affine=False by default, as PyTorch
    ("instancenorm2d", dict(affine=True, track_running_stats=True), (64, 8, 8), 128, 128, 7),
    ("lrn", dict(size=5), (96, 55, 55), 0, 0, 14),              # 2*size + 4
])
def test_norm_params_and_flops(kind, fields, in_shape, trainable, non_trainable, flops_per_element):
    layer = make(kind, **fields)
    assert layer.output_shape(in_shape) == in_shape
    assert layer.params(in_shape) == (trainable, non_trainable)
    elements = 1
    for d in in_shape:
        elements *= d
    assert layer.flops(in_shape) == flops_per_element * elements


def test_trainable_false_moves_weights_to_non_trainable():
    layer = make("batchnorm2d", trainable=False)
    assert layer.params((64, 8, 8)) == (0, 256)


@pytest.mark.parametrize("kind, fields, in_shape, words", [
    ("groupnorm", dict(num_groups=5), (64, 8, 8), "64 channels are not divisible by num_groups=5"),
    ("batchnorm2d", dict(num_features=32), (64, 8, 8), "says num_features=32 but its input has 64"),
    ("batchnorm2d", {}, (64,), "expects an input [N, C, H, W]; got [1, 64]"),
    ("layernorm", dict(normalized_shape=[5]), (8, 4), "normalized_shape [5] does not match"),
])
def test_norm_errors(kind, fields, in_shape, words):
    with pytest.raises(ShapeError) as err:
        make(kind, **fields).output_shape(in_shape)
    assert words in str(err.value)


# ---- activations and dropout ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, flops", [("relu", 1), ("relu6", 1), ("sigmoid", 1), ("gelu", 1), ("silu", 1),
                                         ("leaky_relu", 1), ("elu", 1), ("softmax", 3), ("log_softmax", 3),
                                         ("dropout", 0), ("dropout2d", 0)])
def test_activation_keeps_shape(kind, flops):
    layer = make(kind)
    assert layer.output_shape((8, 4, 4)) == (8, 4, 4)
    assert layer.flops((8, 4, 4)) == flops * 128
    assert layer.params((8, 4, 4)).total == 0


def test_softmax_dim_cannot_be_the_batch_axis():
    with pytest.raises(ShapeError, match="batch axis"):
        make("softmax", dim=0).output_shape((10,))


# ---- merges ------------------------------------------------------------------------------------------------
def test_add_needs_equal_shapes_and_prints_both():
    layer = make("add", inputs=("a", "b"))
    assert layer.output_shape((64, 8, 8), (64, 8, 8)) == (64, 8, 8)
    assert layer.flops((64, 8, 8), (64, 8, 8)) == 64 * 64
    with pytest.raises(ShapeError) as err:
        layer.output_shape((64, 8, 8), (128, 4, 4))
    assert "[1, 64, 8, 8], [1, 128, 4, 4] from a, b" in str(err.value)


def test_concat_sums_the_chosen_axis():
    layer = make("concat", inputs=("a", "b", "c"))
    assert layer.output_shape((64, 28, 28), (32, 28, 28), (1, 28, 28)) == (97, 28, 28)
    assert make("concat", dim=-1, inputs=("a", "b")).output_shape((2, 3), (2, 5)) == (2, 8)
    with pytest.raises(ShapeError, match="differ only along dim 1"):
        layer.output_shape((64, 28, 28), (32, 27, 28), (1, 28, 28))


# ---- reshaping ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, fields, in_shape, out_shape", [
    ("flatten", {}, (256, 6, 6), (9216,)),
    ("flatten", dict(start_dim=2), (8, 4, 4), (8, 16)),
    ("flatten", dict(start_dim=1, end_dim=2), (8, 4, 5), (32, 5)),
    ("reshape", dict(shape=[-1, 4]), (16,), (4, 4)),
    ("reshape", dict(shape=[2, 8]), (4, 4), (2, 8)),
    ("identity", {}, (3, 2), (3, 2)),
    ("zeropad2d", dict(padding=1), (3, 4, 4), (3, 6, 6)),
    ("zeropad2d", dict(padding=[1, 2, 3, 4]), (3, 4, 4), (3, 11, 7)),   # PyTorch (left, right, top, bottom)
    ("zeropad2d", dict(padding=[[3, 4], [1, 2]]), (3, 4, 4), (3, 11, 7)),  # per axis [[top, bottom], [l, r]]
    ("crop", dict(cropping=[[1, 2], [0, 3]]), (3, 10, 10), (3, 7, 7)),
    ("crop", dict(cropping=2), (3, 10, 10), (3, 6, 6)),
    ("upsample", dict(scale_factor=2), (3, 5, 5), (3, 10, 10)),
    ("upsample", dict(scale_factor=1.5), (3, 5, 5), (3, 7, 7)),             # floor(7.5)
    ("upsample", dict(size=[8, 6], mode="bilinear"), (3, 5, 5), (3, 8, 6)),
])
def test_reshape_family(kind, fields, in_shape, out_shape):
    assert make(kind, **fields).output_shape(in_shape) == out_shape


def test_two_input_crop_centres_on_the_second_inputs_size():
    layer = make("crop", inputs=("skip", "up"))
    assert layer.output_shape((512, 64, 64), (512, 56, 56)) == (512, 56, 56)
    assert layer.crops((512, 64, 64), (512, 56, 56)) == ((4, 4), (4, 4))
    assert layer.crops((1, 9, 9), (1, 6, 6)) == ((1, 2), (1, 2))


def test_bilinear_upsample_counts_interpolation_flops():
    assert make("upsample", scale_factor=2, mode="bilinear").flops((1, 2, 2)) == 7 * 16


@pytest.mark.parametrize("kind, fields, in_shape, words", [
    ("reshape", dict(shape=[5, -1]), (16,), "cannot reshape [1, 16] (16 values per sample) to [1, 5, -1]"),
    ("flatten", dict(start_dim=0), (3, 4), "batch axis"),
    ("crop", dict(cropping=5), (3, 10, 10), "leaves nothing"),
    ("upsample", dict(scale_factor=2, mode="bilinear"), (3, 5), "mode 'bilinear' needs 2 spatial axes"),
])
def test_reshape_errors(kind, fields, in_shape, words):
    with pytest.raises(ShapeError) as err:
        make(kind, **fields).output_shape(in_shape)
    assert words in str(err.value)
