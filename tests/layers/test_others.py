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
                                         ("dropout", 0), ("dropout2d", 0), ("mish", 1), ("softplus", 1),
                                         ("hardtanh", 1)])
def test_activation_keeps_shape(kind, flops):
    layer = make(kind)
    assert layer.output_shape((8, 4, 4)) == (8, 4, 4)
    assert layer.flops((8, 4, 4)) == flops * 128
    assert layer.params((8, 4, 4)).total == 0


def test_softmax_dim_cannot_be_the_batch_axis():
    with pytest.raises(ShapeError, match="batch axis"):
        make("softmax", dim=0).output_shape((10,))


@pytest.mark.parametrize("fields, in_shape, slopes, flops", [
    ({}, (64, 8, 8), 1, 4096),                         # one shared slope, whatever the channels
    (dict(num_parameters=64), (64, 8, 8), 64, 4096),   # one per channel (dim 1); 1 FLOP per element
    (dict(num_parameters=10), (10,), 10, 10),          # [N, F]: the features are dim 1
    (dict(num_parameters=3, init=0.1), (3, 5, 7, 2), 3, 210),
])
def test_prelu_holds_one_slope_or_one_per_channel(fields, in_shape, slopes, flops):
    layer = make("prelu", **fields)
    assert layer.output_shape(in_shape) == in_shape
    assert layer.params(in_shape) == (slopes, 0)
    weight = layer.weight_shapes(in_shape)["weight"]  # nn.PReLU's state_dict: weight [num_parameters]
    assert (weight.shape, weight.init, weight.value) == ((slopes,), "constant", fields.get("init", 0.25))
    assert layer.flops(in_shape) == flops
    assert make("prelu", trainable=False, **fields).params(in_shape) == (0, slopes)


@pytest.mark.parametrize("num_parameters, in_shape, words", [
    (3, (4, 5, 5), "has num_parameters=3 slopes, but its input [1, 4, 5, 5] has 4 channels (dim 1)"),
    (8, (5,), "has num_parameters=8 slopes, but its input [1, 5] has 5 channels (dim 1)"),
])
def test_prelu_refuses_other_slope_counts(num_parameters, in_shape, words):
    layer = make("prelu", num_parameters=num_parameters)
    for rule in (layer.output_shape, layer.weight_shapes):
        with pytest.raises(ShapeError) as err:
            rule(in_shape)
        assert words in str(err.value) and f"or {in_shape[0]} (one per channel)" in err.value.fix


def test_stochastic_depth_is_the_identity_at_inference():
    layer = make("stochastic_depth", p=0.2, mode="row")
    assert layer.output_shape((64, 8, 8)) == (64, 8, 8)
    assert (layer.params((64, 8, 8)).total, layer.flops((64, 8, 8))) == (0, 0)
    assert make("stochastic_depth", p=1.0, mode="batch").hyper() == "p=1 batch"


@pytest.mark.parametrize("kind, fields, words", [
    ("hardtanh", dict(min_val=1.0, max_val=-1.0), "max_val must be greater than min_val"),
    ("hardtanh", dict(min_val=0.5, max_val=0.5), "max_val must be greater than min_val"),  # nn.Hardtanh too
    ("softplus", dict(beta=0), "beta must not be 0"),
    ("prelu", dict(num_parameters=0), "greater than 0"),
    ("stochastic_depth", dict(p=1.5, mode="row"), "less than or equal to 1"),
    ("stochastic_depth", dict(p=0.5, mode="both"), "'row' or 'batch'"),
    ("stochastic_depth", dict(p=0.5), "mode"),  # torchvision's p and mode have no defaults
])
def test_activation_fields_are_validated(kind, fields, words):
    from pydantic import ValidationError
    with pytest.raises(ValidationError) as err:
        make(kind, **fields)
    assert words in str(err.value)


# ---- merges ------------------------------------------------------------------------------------------------
def test_add_needs_equal_shapes_and_prints_both():
    layer = make("add", inputs=("a", "b"))
    assert layer.output_shape((64, 8, 8), (64, 8, 8)) == (64, 8, 8)
    assert layer.flops((64, 8, 8), (64, 8, 8)) == 64 * 64
    with pytest.raises(ShapeError) as err:
        layer.output_shape((64, 8, 8), (128, 4, 4))
    assert "[1, 64, 8, 8], [1, 128, 4, 4] from a, b" in str(err.value)


@pytest.mark.parametrize("kind, in_shapes, out_shape, flops", [
    ("multiply", [(64, 1, 1), (64, 56, 56)], (64, 56, 56), 64 * 56 * 56),     # squeeze-excitation gate
    ("multiply", [(64, 56, 56), (64, 1, 1)], (64, 56, 56), 64 * 56 * 56),     # either order
    ("add", [(1, 56, 56), (64, 1, 1)], (64, 56, 56), 64 * 56 * 56),           # both broadcast
    ("add", [(64, 1, 56), (64, 56, 1)], (64, 56, 56), 64 * 56 * 56),          # one axis each
    ("add", [(64, 1, 1), (64, 1, 1), (64, 7, 7)], (64, 7, 7), 2 * 64 * 7 * 7),  # (inputs - 1) x output
    ("multiply", [(1, 1, 1), (8, 4, 4)], (8, 4, 4), 8 * 4 * 4),               # one scalar per sample
    ("multiply", [(10,), (1,)], (10,), 10),
    ("add", [(16, 1), (1, 5)], (16, 5), 16 * 5),                               # grows both: [16, 5]
    ("add", [(4, 1, 1, 1), (4, 3, 5, 5)], (4, 3, 5, 5), 4 * 3 * 5 * 5),       # 3-D
])
def test_add_and_multiply_broadcast(kind, in_shapes, out_shape, flops):
    layer = make(kind, inputs=tuple("abc"[:len(in_shapes)]))
    assert layer.output_shape(*in_shapes) == out_shape
    assert layer.flops(*in_shapes) == flops
    assert layer.macs(*in_shapes) == 0 and layer.params(*in_shapes).total == 0


@pytest.mark.parametrize("kind, in_shapes, words", [
    ("multiply", [(64, 2, 2), (64, 56, 56)],
     "needs inputs that broadcast (on each axis equal sizes, or 1); got [1, 64, 2, 2], [1, 64, 56, 56] from a, b: "
     "dim 2 has sizes 2 and 56"),
    ("add", [(64, 1, 1), (32, 8, 8)], "dim 1 has sizes 64 and 32"),
    ("add", [(64, 8, 8), (64, 8, 8), (64, 4, 8)], "dim 2 has sizes 8 and 4"),
    ("multiply", [(64,), (64, 56, 56)],
     "needs inputs of one rank to broadcast; got [1, 64], [1, 64, 56, 56] from a, b (PyTorch would line the "
     "batch axis of [1, 64] up with dim 2 of [1, 64, 56, 56], a result that depends on the batch size)"),
    ("add", [(64, 56, 56), (56,)], "batch axis of [1, 56] up with dim 2 of [1, 64, 56, 56]"),
])
def test_add_and_multiply_refuse_what_does_not_broadcast(kind, in_shapes, words):
    with pytest.raises(ShapeError) as err:
        make(kind, inputs=tuple("abc"[:len(in_shapes)])).output_shape(*in_shapes)
    message = str(err.value)
    assert words in message
    assert "does not broadcast" not in message and "upsample" not in message.lower()


def test_broadcast_errors_suggest_a_fix():
    with pytest.raises(ShapeError) as err:
        make("multiply", inputs=("a", "b")).output_shape((64,), (64, 56, 56))
    assert err.value.fix == ("Give [1, 64] trailing axes of size 1: a reshape to [64, 1, 1] (or keepdims: true, if "
                             "it is a global pooling's output) makes it [1, 64, 1, 1], which broadcasts.")
    with pytest.raises(ShapeError) as err:
        make("multiply", inputs=("a", "b")).output_shape((64, 2, 2), (64, 56, 56))
    assert "size 1 to repeat one over the other" in err.value.fix
    assert "keepdims: true gives a per-channel [N, C, 1, 1] gate" in err.value.fix
    with pytest.raises(ShapeError) as err:
        make("add", inputs=("a", "b")).output_shape((64, 8, 8), (128, 4, 4))
    assert err.value.fix.startswith("Match them with a 1x1 convolution")


def test_a_broadcast_gate_widens_the_field_but_keeps_the_maps_spacing():
    from fractions import Fraction as Fr

    from cnncalc.layers.receptive_field import ReceptiveField as RF
    layer = make("multiply", inputs=("gate", "map"))
    local = RF((Fr(7), Fr(7)), (Fr(2), Fr(2)), (Fr(3, 2), Fr(3, 2)))    # a [C, 28, 28] map: 7 pixels, 2 apart
    gate = RF((Fr(61), Fr(61)), (Fr(56), Fr(56)), (Fr(57, 2), Fr(57, 2)))  # its global pool: one position
    # every output position sees the gate's 61 pixels; neighbouring outputs stay 2 apart, the first at 1.5
    assert layer.receptive_field((gate, local), (16, 1, 1), (16, 28, 28)) == \
        RF((Fr(61), Fr(61)), (Fr(2), Fr(2)), (Fr(3, 2), Fr(3, 2)))
    # [C, 1, W] x [C, H, 1]: each axis is spaced by the input that spans it
    rows = RF((Fr(3), Fr(9)), (Fr(1), Fr(4)), (Fr(1), Fr(5)))
    cols = RF((Fr(5), Fr(2)), (Fr(2), Fr(1)), (Fr(2), Fr(3)))
    assert layer.receptive_field((rows, cols), (4, 6, 1), (4, 1, 6)) == \
        RF((Fr(5), Fr(9)), (Fr(1), Fr(1)), (Fr(1), Fr(3)))
    # equal shapes, or only the channels broadcast: the widest path, as for every merge; a lost field stays lost
    assert layer.receptive_field((local, gate), (16, 28, 28), (16, 28, 28)) == gate
    assert layer.receptive_field((local, gate), (1, 28, 28), (16, 28, 28)) == gate
    assert layer.receptive_field((None, local), (16, 1, 1), (16, 28, 28)) is None


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


# ---- pad (F.pad over the spatial axes, any mode) -------------------------------------------------------------
@pytest.mark.parametrize("kind, fields, in_shape, out_shape", [
    ("pad", dict(padding=2), (3, 4, 5), (3, 8, 9)),                                    # 4+2+2, 5+2+2
    ("pad", dict(padding=[[1, 2], 3]), (3, 4, 5), (3, 7, 11)),                         # 4+1+2, 5+3+3
    ("pad", dict(padding=[[0, 3]], mode="reflect"), (2, 4), (2, 7)),                   # 3 < 4
    ("pad", dict(padding=[[1, 1], [2, 0], [0, 4]], mode="circular"), (1, 2, 3, 4), (1, 4, 5, 8)),  # 4 <= 4
    ("pad", dict(padding=10, mode="replicate"), (2, 1, 1), (2, 21, 21)),               # no limit
    ("pad", dict(padding=[[-1, 2], [-3, -1]], value=1.5), (3, 4, 5), (3, 5, 1)),       # 4-1+2, 5-3-1
    ("pad", dict(padding=[[1, -1]]), (2, 1), (2, 1)),                                  # crop to 0, pad 1
])
def test_pad(kind, fields, in_shape, out_shape):
    layer = make(kind, **fields)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.params(in_shape).total == 0 and layer.flops(in_shape) == 0


def test_pad_receptive_field_shifts_as_zero_padding():
    from cnncalc.layers.receptive_field import ReceptiveField
    before = ReceptiveField((3, 3), (2, 2), (0.5, 0.5))
    for mode in ("constant", "reflect"):
        rf = make("pad", padding=[[1, 0], 2], mode=mode).receptive_field((before,), (3, 8, 8))
        assert rf == before.shifted([-1, -2]) == make("zeropad2d", padding=[[1, 0], [2, 2]]).receptive_field(
            (before,), (3, 8, 8))
    assert make("pad", padding=1).receptive_field((None,), (3, 8, 8)) is None


def test_pad_explain_shows_the_sums():
    assert make("pad", padding=[[1, 2], -1]).explain((3, 4, 5)) == ["H_out = 4 + 1 + 2 = 7  (constant)",
                                                                    "W_out = 5 + -1 + -1 = 3  (constant)"]


def test_pad_hyper():
    assert make("pad", padding=[[1, 2], 3], mode="reflect").hyper() == "p=[[1, 2], 3] reflect"
    assert make("pad", padding=1, value=-1.0).hyper() == "p=1 value=-1"
    assert make("pad", padding=1).hyper() == "p=1"


@pytest.mark.parametrize("fields, in_shape, words", [
    (dict(padding=4, mode="reflect"), (3, 4, 9), "reflect padding on H is [4, 4] but the input is only 4 long"),
    (dict(padding=[[0, 0], [0, 5]], mode="circular"), (3, 4, 4), "would wrap around more than once"),
    (dict(padding=[[-1, 1]], mode="replicate"), (3, 4), "only constant padding may be negative"),
    (dict(padding=[[-2, -2]]), (3, 4), "leaves nothing of L=4 (4 + -2 + -2 = 0)"),
    (dict(padding=[[2, -2]]), (3, 1), "crops 2 from L=1, more than it has"),           # PyTorch's narrow() refuses
    (dict(padding=[1, 1]), (3, 4), "needs 1 or 1 entries"),                            # one entry per axis
    (dict(padding=1), (12,), "expects an input [N, C, *spatial]"),
])
def test_pad_errors(fields, in_shape, words):
    with pytest.raises(ShapeError) as err:
        make("pad", **fields).output_shape(in_shape)
    assert words in str(err.value)


@pytest.mark.parametrize("fields, words", [
    (dict(padding=1, mode="reflect", value=2.0), "value=2.0 only applies to mode 'constant'"),
    (dict(padding=1, mode="mirror"), "mode"),
    (dict(padding=1.5), "padding"),
    (dict(padding=True), "padding"),
    (dict(mode="reflect"), "padding"),
])
def test_pad_rejects_bad_fields(fields, words):
    from pydantic import ValidationError
    with pytest.raises(ValidationError) as err:
        make("pad", **fields)
    assert words in str(err.value)
