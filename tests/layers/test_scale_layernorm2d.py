"""layernorm2d (torchvision's LayerNorm2d) and scale (ConvNeXt's layer scale) rules, worked by hand; and the
weight-name rule for a layer whose one weight is a bare parameter named as the layer."""
import numpy as np
import pytest
from pydantic import ValidationError

from cnncalc.analyze import analyze
from cnncalc.engine import execute, expected_weights, init_weights
from cnncalc.errors import CnnCalcError, ShapeError
from cnncalc.spec import parse
from conftest import make


# ---- layernorm2d -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, in_shape, params, flops", [
    ({}, (8, 4, 4), 16, 7 * 128),                            # weight [8] + bias [8]; 5 + 2 per element
    (dict(elementwise_affine=False), (8, 4, 4), 0, 5 * 128),
    (dict(bias=False), (8, 4, 4), 8, 7 * 128),               # as layernorm: affine counts 2 with or without bias
    (dict(normalized_shape=96, eps=1e-6), (96, 56, 56), 192, 2_107_392),  # ConvNeXt-T stage 1: 7 * 301,056
    ({}, (6, 10), 12, 7 * 60),                               # [N, C, L]
    ({}, (3, 2, 4, 5), 6, 7 * 120),                          # [N, C, D, H, W]
])
def test_layernorm2d_params_and_flops(fields, in_shape, params, flops):
    layer = make("layernorm2d", **fields)
    assert layer.output_shape(in_shape) == in_shape
    assert layer.params(in_shape) == (params, 0)
    assert layer.flops(in_shape) == flops and layer.macs(in_shape) == 0
    assert layer.receptive_field((None,), in_shape) is None  # element-wise: its input's field, here unknown


def test_layernorm2d_weights_are_per_channel_ones_and_zeros():
    weights = make("layernorm2d").weight_shapes((8, 4, 4))
    assert {k: (w.shape, w.init) for k, w in weights.items()} == {"weight": ((8,), "ones"), "bias": ((8,), "zeros")}
    assert make("layernorm2d").eps == 1e-5  # nn.LayerNorm's default, which torchvision's LayerNorm2d inherits
    assert make("layernorm2d", eps=1e-6).hyper() == "eps=1e-06" and make("layernorm2d").hyper() == ""


def test_layernorm2d_normalises_each_position_over_its_channels():
    x = np.arange(24, dtype=np.float64).reshape(1, 3, 2, 4)
    y = make("layernorm2d").forward({}, x)
    # one position's three channel values: 6, 14, 22 (a stride of 8 between channels) -> mean 14, var 128/3
    np.testing.assert_allclose(y[0, :, 1, 2], np.array([-8, 0, 8]) / np.sqrt(128 / 3 + 1e-5))


@pytest.mark.parametrize("fields, in_shape, words", [
    ({}, (8,), "expects an input [N, C, *spatial] with 1 to 3 spatial axes; got [1, 8]"),
    ({}, (2, 3, 4, 5, 6), "expects an input [N, C, *spatial] with 1 to 3 spatial axes; got [1, 2, 3, 4, 5, 6]"),
    (dict(normalized_shape=4), (8, 4, 4), "says normalized_shape=4 but its input has 8"),
])
def test_layernorm2d_errors(fields, in_shape, words):
    with pytest.raises(ShapeError) as err:
        make("layernorm2d", **fields).output_shape(in_shape)
    assert words in str(err.value) and err.value.fix


# ---- scale -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, in_shape, out_shape, params", [
    (dict(shape=[96, 1, 1], init=1e-6), (96, 56, 56), (96, 56, 56), 96),  # ConvNeXt-T's layer scale
    (dict(shape=[5]), (8, 6, 5), (8, 6, 5), 5),                          # the trailing axis only
    (dict(shape=[6, 5]), (8, 6, 5), (8, 6, 5), 30),
    (dict(shape=[4, 1, 1]), (1, 3, 3), (4, 3, 3), 4),                   # broadcast as PyTorch: 1 against 4
    (dict(shape=[1]), (7,), (7,), 1),                                   # one shared factor
])
def test_scale_broadcasts_its_parameter(fields, in_shape, out_shape, params):
    layer = make("scale", **fields)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.params(in_shape) == (params, 0)
    out = 1
    for d in out_shape:
        out *= d
    assert layer.flops(in_shape) == out and layer.macs(in_shape) == 0  # 1 multiply per output element
    (key, weight), = layer.weight_shapes(in_shape).items()
    assert key == "" and weight.shape == tuple(fields["shape"])       # "": stored under the layer's own name
    assert (weight.init, weight.value) == ("constant", fields.get("init", 1.0))
    assert make("scale", trainable=False, **fields).params(in_shape) == (0, params)


def test_scale_values_and_hyper():
    layer = make("scale", shape=[2, 1], init=0.5)
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    w = np.array([[2.0], [-1.0]], dtype=np.float32)
    np.testing.assert_array_equal(layer.forward({"": w}, x), x * w)
    assert layer.hyper() == "[2, 1] init=0.5"


@pytest.mark.parametrize("shape, in_shape, words", [
    ([8, 1, 1], (6, 5, 5), "cannot broadcast its parameter [8, 1, 1] against its input [1, 6, 5, 5]: "
                           "input axis 1 has 6, the parameter 8"),
    ([3], (8, 6, 5), "input axis 3 has 5, the parameter 3"),
    ([1, 8, 1, 1], (8, 1, 1), "has a parameter of shape [1, 8, 1, 1] (4 axes), more axes than a sample"),
])
def test_scale_errors(shape, in_shape, words):
    layer = make("scale", shape=shape)
    for rule in (layer.output_shape, layer.weight_shapes, layer.extra_flops):
        with pytest.raises(ShapeError) as err:
            rule(in_shape)
        assert words in str(err.value) and err.value.fix


@pytest.mark.parametrize("fields, words", [
    (dict(shape=[]), "at least 1 item"),
    (dict(shape=[4, 0, 1]), "greater than 0"),
    (dict(shape=[1, 1, 1, 1, 1]), "at most 4 items"),
    (dict(shape=4), "valid tuple"),
    (dict(shape=[4], init="big"), "valid number"),
    ({}, "shape"),  # no default: the parameter's shape must be given
])
def test_scale_fields_are_validated(fields, words):
    with pytest.raises(ValidationError) as err:
        make("scale", **fields)
    assert words in str(err.value)


# ---- the weight name: the layer's own --------------------------------------------------------------------------
CONVNEXT_BLOCK = """name: block
input: [4, 5, 5]
layers:
  - {type: conv2d, name: features.1.0.block.0, out_channels: 4, kernel_size: 7, padding: 3, groups: 4}
  - {type: layernorm2d, name: features.1.0.block.1, eps: 1.0e-6}
  - {type: scale, name: features.1.0.layer_scale, shape: [4, 1, 1], init: 0.5}
  - {type: scale, name: gain, shape: [5], init: 2.0}
"""


def test_a_scale_weight_takes_the_layer_name_as_its_state_dict_key():
    summary = analyze(parse(CONVNEXT_BLOCK, "block.yaml"))
    assert sorted(expected_weights(summary)) == [
        "features.1.0.block.0.bias", "features.1.0.block.0.weight", "features.1.0.block.1.bias",
        "features.1.0.block.1.weight", "features.1.0.layer_scale", "gain"]


def test_the_engine_hands_a_scale_its_own_named_weight():
    network = parse(CONVNEXT_BLOCK, "block.yaml")
    weights = init_weights(network, seed=0, dtype="float64")
    assert np.all(weights["features.1.0.layer_scale"] == 0.5) and np.all(weights["gain"] == 2.0)
    weights["gain"] = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    seen = {}
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5))
    execute(network, weights, x, lambda layer, y, s: seen.__setitem__(layer.name, y))
    np.testing.assert_allclose(seen["features.1.0.layer_scale"], seen["features.1.0.block.1"] * 0.5)
    np.testing.assert_allclose(seen["gain"], seen["features.1.0.layer_scale"] * [1.0, 2.0, 3.0, 4.0, 5.0])


def test_two_layers_may_not_share_a_state_dict_key():
    spec = """name: clash
input: [4, 5, 5]
layers:
  - {type: conv2d, name: a, out_channels: 4, kernel_size: 1}
  - {type: scale, name: a.weight, shape: [4, 1, 1]}
"""
    with pytest.raises(CnnCalcError, match="layers 'a' and 'a.weight' both hold a weight named 'a.weight'"):
        expected_weights(analyze(parse(spec, "clash.yaml")))
