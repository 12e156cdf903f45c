"""Three-way agreement for every layer kind: calculated shape == NumPy-engine shape == PyTorch shape, engine
values == PyTorch values (float32: rtol 1e-4, atol 1e-5), and parameter counts == PyTorch's."""
from __future__ import annotations

import numpy as np
import pytest

from cnncalc.analyze import analyze
from cnncalc.engine import execute, init_weights, random_input
from cnncalc.layers import KINDS
from cnncalc.spec import parse

torch = pytest.importorskip("torch")
from torch_oracle import load_numpy_weights, twin  # noqa: E402

pytestmark = pytest.mark.oracle
TOLERANCE = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-10)}


def perturb_norms(weights: dict[str, np.ndarray], seed: int) -> None:
    """Norm layers start as the identity, PReLU with one slope repeated; give them real statistics and slopes
    that differ per channel so the comparison means something."""
    rng = np.random.default_rng(seed + 7)
    for key, value in weights.items():
        leaf = key.rsplit(".", 1)[-1]  # a bare parameter's key is its layer's name (scale), perhaps undotted
        if leaf == "running_var" or (leaf == "weight" and value.ndim <= 1 and value.size
                                     and np.all(value == value.flat[0])):
            value[...] = rng.uniform(0.5, 1.5, value.shape)
        elif leaf in ("running_mean", "bias") and np.all(value == 0):
            value[...] = rng.uniform(-0.5, 0.5, value.shape)


def three_way(network, batch: int = 2, seed: int = 0, dtype: str = "float32", per_layer_values: bool = True):
    summary = analyze(network, batch=batch, dtype=dtype)
    weights = init_weights(network, seed=seed, dtype=dtype, summary=summary)
    perturb_norms(weights, seed)
    x = random_input(network, batch, seed, dtype)
    ours: dict[str, np.ndarray | tuple] = {}
    outputs = execute(network, weights, x, lambda layer, y, s: ours.__setitem__(
        layer.name, y.copy() if per_layer_values else y.shape))
    model = twin(network, summary).to(getattr(torch, dtype))
    load_numpy_weights(model, weights)
    theirs: dict[str, object] = {}
    with torch.no_grad():
        model(torch.from_numpy(x), observe=lambda layer, y: theirs.__setitem__(
            layer.name, y.numpy() if per_layer_values else tuple(y.shape)))
    for row in summary.rows:
        mine = ours[row.name]
        mine_shape = mine.shape if per_layer_values else mine
        theirs_shape = theirs[row.name].shape if per_layer_values else theirs[row.name]
        assert row.output_shape == tuple(mine_shape) == tuple(theirs_shape), row.name
        if per_layer_values:
            np.testing.assert_allclose(mine, theirs[row.name], **TOLERANCE[dtype], err_msg=row.name)
    for name, value in outputs.items():
        expected = theirs[name] if per_layer_values else None
        if expected is not None:
            np.testing.assert_allclose(value, expected, **TOLERANCE[dtype])
    trainable = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    assert (summary.totals.trainable_params, summary.totals.non_trainable_params) == (trainable, buffers)
    return summary, outputs, model, x


# one small network per family; together they use every kind of the catalogue
CASES = {
    "conv2d": ("[3, 13, 11]", """
  - {type: conv2d, out_channels: 8, kernel_size: 3, padding: same}
  - {type: conv2d, out_channels: 8, kernel_size: 4, padding: same}
  - {type: conv2d, out_channels: 6, kernel_size: 3, stride: 2, padding: same}
  - {type: conv2d, out_channels: 6, kernel_size: [3, 2], stride: [2, 1], padding: [[0, 1], [2, 1]], dilation: [1, 2]}
  - {type: conv2d, out_channels: 6, kernel_size: 3, padding: 1, groups: 6, bias: false}
  - {type: conv2d, out_channels: 4, kernel_size: 1, groups: 2, padding: valid}"""),
    "conv1d": ("[4, 50]", """
  - {type: conv1d, out_channels: 8, kernel_size: 5, stride: 3, padding: 2, dilation: 2}
  - {type: conv1d, out_channels: 8, kernel_size: 4, stride: 2, padding: same, groups: 8}"""),
    "conv3d": ("[2, 6, 9, 8]", """
  - {type: conv3d, out_channels: 4, kernel_size: [3, 3, 1], stride: [1, 2, 2], padding: [1, 1, 0]}
  - {type: conv3d, out_channels: 4, kernel_size: 2, padding: same, groups: 2}"""),
    # nn.ConvNd's padding_mode (symmetric: PyTorch pads; asymmetric or 'same' at stride 2: F.pad in that mode first)
    # and F.pad in every mode, 1-D to 3-D (negative constant amounts crop)
    "padding_modes": ("[3, 7, 6]", """
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 2, padding_mode: reflect}
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: [[0, 2], [1, 3]], padding_mode: circular, groups: 2}
  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: same, padding_mode: replicate}
  - {type: conv2d, out_channels: 4, kernel_size: 4, padding: same, padding_mode: reflect, groups: 4}
  - {type: pad, padding: [[1, 2], 3], mode: reflect}
  - {type: pad, padding: [[0, 5], [6, 1]], mode: circular}
  - {type: pad, padding: 4, mode: replicate}
  - {type: pad, padding: [[-2, 1], [3, -4]], value: 0.5}
  - {type: flatten, start_dim: 2, name: line}
  - {type: conv1d, out_channels: 3, kernel_size: 5, padding: 3, padding_mode: circular}
  - {type: pad, padding: [[5, 3]], mode: reflect}
  - {type: reshape, shape: [3, 5, 6, -1]}
  - {type: conv3d, out_channels: 2, kernel_size: 2, padding: [1, 0, 1], padding_mode: replicate}
  - {type: pad, padding: [1, [0, 2], [2, 0]], mode: reflect}"""),
    "conv_transpose": ("[6, 5, 7]", """
  - {type: conv_transpose2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1, output_padding: 1}
  - {type: conv_transpose2d, out_channels: 4, kernel_size: 2, stride: 3, dilation: 2, groups: 2, output_padding: 1}
  - {type: conv_transpose2d, out_channels: 3, kernel_size: [4, 1], stride: [2, 1], padding: [1, 0], bias: false}"""),
    "conv_transpose1d_3d": ("[4, 3, 5, 6]", """
  - {type: conv_transpose3d, out_channels: 2, kernel_size: 2, stride: 2}
  - {type: flatten, start_dim: 2}
  - {type: conv_transpose1d, out_channels: 3, kernel_size: 3, stride: 2, padding: 1, output_padding: 1}"""),
    "maxpool": ("[3, 15, 14]", """
  - {type: maxpool2d, kernel_size: 3, stride: 2, padding: 1, ceil_mode: true}
  - {type: maxpool2d, kernel_size: 2, stride: 1, dilation: 2}
  - {type: minpool2d, kernel_size: 2, ceil_mode: true}
  - {type: maxpool2d, kernel_size: 2, padding: same}"""),
    "maxpool_ceil_drop": ("[2, 5, 5]", """
  - {type: maxpool2d, kernel_size: 2, stride: 2, padding: 1, ceil_mode: true}"""),
    "avgpool": ("[3, 15, 14]", """
  - {type: avgpool2d, kernel_size: 3, stride: 2, padding: 1, ceil_mode: true}
  - {type: avgpool2d, kernel_size: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}
  - {type: avgpool2d, kernel_size: 2}
  - {type: avgpool2d, kernel_size: 2, stride: 1, padding: same}
  - {type: avgpool2d, kernel_size: 3, stride: 2, padding: same, count_include_pad: true}"""),
    "pool1d_3d": ("[2, 7, 9, 10]", """
  - {type: maxpool3d, kernel_size: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1]}
  - {type: avgpool3d, kernel_size: 2, ceil_mode: true}
  - {type: flatten, start_dim: 2}
  - {type: maxpool1d, kernel_size: 3, stride: 2, ceil_mode: true}
  - {type: avgpool1d, kernel_size: 2, count_include_pad: false, padding: 1}"""),
    "adaptive": ("[3, 13, 10]", """
  - {type: adaptive_avgpool2d, output_size: [5, 4], name: a}
  - {type: adaptive_maxpool2d, output_size: [3, null]}
  - {type: flatten, start_dim: 2}
  - {type: adaptive_avgpool1d, output_size: 4}
  - {type: adaptive_maxpool1d, output_size: 3}
  - {type: reshape, shape: [3, 1, 1, 3]}
  - {type: adaptive_avgpool3d, output_size: [1, 1, 2]}
  - {type: adaptive_maxpool3d, output_size: 1}"""),
    "global": ("[4, 6, 5]", """
  - {type: global_avgpool, keepdims: true, name: g1}
  - {type: global_maxpool, inputs: [input], name: g2}
  - {type: global_avgpool, inputs: [input]}
  - {type: global_maxpool, inputs: [g1], keepdims: true}"""),
    "linear": ("[3, 5, 7]", """
  - {type: linear, out_features: 4}
  - {type: flatten}
  - {type: linear, out_features: 6, bias: false}"""),
    "layernorm2d_scale": ("[8, 6, 5]", """
  # a ConvNeXt block (depthwise 7x7, layernorm2d, 1x1 up, gelu, 1x1 down, layer scale, residual), its layer
  # scale a bare parameter of `features` (state_dict key features.layer_scale); then scales of fewer axes and
  # layernorm2d of other ranks and fields
  - {type: conv2d, name: features.0, out_channels: 8, kernel_size: 7, padding: 3, groups: 8}
  - {type: layernorm2d, name: features.1, eps: 1.0e-6}
  - {type: conv2d, name: features.2, out_channels: 32, kernel_size: 1}
  - {type: gelu}
  - {type: conv2d, name: features.3, out_channels: 8, kernel_size: 1}
  - {type: scale, name: features.layer_scale, shape: [8, 1, 1], init: 0.5}
  - {type: add, inputs: [features.layer_scale, input]}
  - {type: scale, shape: [5], init: -2.0}
  - {type: layernorm2d, elementwise_affine: false}
  - {type: layernorm2d, normalized_shape: 8, bias: false}
  - {type: flatten, start_dim: 2}
  - {type: layernorm2d}
  - {type: scale, shape: [8, 30], init: 1.5}"""),
    "norms": ("[8, 6, 5]", """
  - {type: batchnorm2d}
  - {type: batchnorm, affine: false}
  - {type: groupnorm, num_groups: 4}
  - {type: instancenorm2d, affine: true}
  - {type: instancenorm2d, affine: true, track_running_stats: true}
  - {type: layernorm}
  - {type: layernorm, normalized_shape: [5], elementwise_affine: true, bias: false}
  - {type: lrn, size: 3, alpha: 0.01, beta: 0.75, k: 2.0}"""),
    "norms1d_3d": ("[4, 3, 5, 6]", """
  - {type: batchnorm3d}
  - {type: instancenorm3d}
  - {type: flatten, start_dim: 2}
  - {type: batchnorm1d}
  - {type: instancenorm1d, affine: true}
  - {type: flatten}
  - {type: batchnorm1d, eps: 0.001}"""),
    "activations": ("[6, 4, 5]", """
  - relu
  - {type: conv2d, out_channels: 6, kernel_size: 1}
  - relu6
  - {type: leaky_relu, negative_slope: 0.2, inputs: [conv2d_1]}
  - {type: elu, alpha: 0.5, inputs: [conv2d_1]}
  - {type: gelu, inputs: [conv2d_1]}
  - {type: gelu, approximate: tanh, inputs: [conv2d_1]}
  - {type: silu, inputs: [conv2d_1]}
  - {type: sigmoid, inputs: [conv2d_1]}
  - {type: tanh, inputs: [conv2d_1]}
  - {type: hardswish, inputs: [conv2d_1]}
  - {type: hardsigmoid, inputs: [conv2d_1]}
  - {type: softmax, inputs: [conv2d_1]}
  - {type: log_softmax, dim: -1, inputs: [conv2d_1]}
  - {type: prelu, inputs: [conv2d_1]}
  - {type: prelu, num_parameters: 6, init: 0.1, inputs: [conv2d_1]}
  - {type: mish, inputs: [conv2d_1]}
  - {type: softplus, inputs: [conv2d_1]}
  - {type: softplus, beta: 10, threshold: 2, inputs: [conv2d_1]}
  - {type: softplus, beta: -2, threshold: 0.5, inputs: [conv2d_1]}
  - {type: hardtanh, inputs: [conv2d_1]}
  - {type: hardtanh, min_val: -0.25, max_val: 0.5, inputs: [conv2d_1]}
  - {type: stochastic_depth, p: 0.2, mode: row, inputs: [conv2d_1]}
  - {type: stochastic_depth, p: 0.5, mode: batch}
  - {type: dropout, p: 0.3}
  - {type: dropout1d}
  - {type: dropout2d}
  - {type: dropout3d}"""),
    "reshaping": ("[3, 6, 7]", """
  - {type: zeropad2d, padding: [1, 2, 0, 3]}
  - {type: crop, cropping: [[1, 0], [2, 1]]}
  - {type: identity}
  - {type: upsample, scale_factor: 2, name: up}
  - {type: crop, inputs: [up, input]}
  - {type: upsample, scale_factor: 1.5, mode: bilinear}
  - {type: upsample, size: [5, 9], mode: bilinear, align_corners: true}
  - {type: upsample, scale_factor: 1.7}
  - {type: reshape, shape: [-1, 3]}
  - {type: flatten, start_dim: 1, end_dim: 2}"""),
    "resample1d_3d": ("[2, 3, 4, 5]", """
  - {type: upsample, scale_factor: 2, mode: trilinear}
  - {type: flatten, start_dim: 2}
  - {type: upsample, size: 7, mode: linear}
  - {type: upsample, scale_factor: 2}"""),
    "merges": ("[4, 6, 6]", """
  - {type: conv2d, name: a, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: conv2d, name: b, inputs: [input], out_channels: 4, kernel_size: 1}
  - {type: add, inputs: [a, b, input]}
  - {type: multiply, inputs: [add_1, a]}
  - {type: concat, inputs: [multiply_1, b, input]}
  - {type: concat, dim: -1, inputs: [concat_1, concat_1]}"""),
    # EfficientNet / MobileNetV3 / RegNetY: a [N, C, 1, 1] gate broadcast over the [N, C, H, W] map; then a
    # bias per channel ([C, 1, 1] by a 1x1 conv of a pooled map) added to it, and a [1, H, W] map added as well
    "squeeze_excitation": ("[8, 7, 6]", """
  - {type: conv2d, name: map, out_channels: 8, kernel_size: 3, padding: 1}
  - {type: global_avgpool, name: squeeze, keepdims: true}
  - {type: conv2d, name: fc1, out_channels: 2, kernel_size: 1}
  - relu
  - {type: conv2d, name: fc2, out_channels: 8, kernel_size: 1}
  - {type: sigmoid, name: gate}
  - {type: multiply, name: excite, inputs: [gate, map]}
  - {type: conv2d, name: plane, inputs: [input], out_channels: 1, kernel_size: 1}
  - {type: add, name: shifted, inputs: [excite, fc2, plane]}
  - {type: multiply, name: rescaled, inputs: [gate, gate, shifted]}"""),
    # ShuffleNetV2's basic unit (torchvision's InvertedResidual, stride 1): x.chunk(2, dim=1) as two slices, a
    # 1x1 / 3x3 depthwise / 1x1 branch on the second half, concatenated with the first, channel_shuffle(2);
    # then the halves again, counted from the end, and a shuffle of 4 groups
    "shufflenet_v2_unit": ("[8, 7, 6]", """
  - {type: slice, name: x1, dim: 1, start: 0, end: 4}
  - {type: slice, name: x2, inputs: [input], dim: 1, start: 4}
  - {type: conv2d, name: pw1, out_channels: 4, kernel_size: 1, bias: false}
  - {type: batchnorm2d, name: bn1}
  - {type: relu, name: relu1}
  - {type: conv2d, name: dw, out_channels: 4, kernel_size: 3, padding: 1, groups: 4, bias: false}
  - {type: batchnorm2d, name: bn2}
  - {type: conv2d, name: pw2, out_channels: 4, kernel_size: 1, bias: false}
  - {type: batchnorm2d, name: bn3}
  - {type: relu, name: relu2}
  - {type: concat, name: cat, inputs: [x1, relu2]}
  - {type: channel_shuffle, name: shuffle, groups: 2}
  - {type: slice, name: y1, start: -8, end: -4}
  - {type: slice, name: y2, inputs: [shuffle], start: -4}
  - {type: concat, name: cat2, inputs: [y2, y1]}
  - {type: channel_shuffle, name: shuffle4, groups: 4}"""),
    # ConvNeXt's block (torchvision's CNBlock, without layer scale): a depthwise 7x7, channels last for the
    # layernorm and the MLP, and back; then every other rearrangement: transpose, strided and negative slices,
    # pixel (un)shuffle, a spatial permute, a channel shuffle of a sequence
    "convnext_block_and_rearranging": ("[8, 9, 10]", """
  - {type: conv2d, name: dw, out_channels: 8, kernel_size: 7, padding: 3, groups: 8}
  - {type: permute, name: to_last, dims: [0, 2, 3, 1]}
  - {type: layernorm, name: norm, normalized_shape: 8, eps: 1.0e-6}
  - {type: linear, name: fc1, out_features: 32}
  - {type: gelu, name: act}
  - {type: linear, name: fc2, out_features: 8}
  - {type: permute, name: to_first, dims: [0, 3, 1, 2]}
  - {type: add, name: block, inputs: [to_first, input]}
  - {type: transpose, name: swap_hw, dim0: -1, dim1: 2}
  - {type: slice, name: odd_columns, dim: 3, start: 1, step: 2}
  - {type: slice, name: inner_rows, dim: -2, start: 1, end: -1}
  - {type: pixel_unshuffle, name: to_depth, downscale_factor: 2}
  - {type: conv2d, name: expand, out_channels: 12, kernel_size: 1}
  - {type: pixel_shuffle, name: to_space, upscale_factor: 2}
  - {type: permute, name: swap_again, dims: [0, 1, -1, -2]}
  - {type: flatten, name: sequence, start_dim: 2}
  - {type: channel_shuffle, name: shuffle3, groups: 3}
  - {type: transpose, name: channels_last, dim0: 1, dim1: 2}"""),
}


def case_network(case: str):
    shape, layers = CASES[case]
    return parse(f"name: {case}\ninput: {shape}\nlayers:{layers}\n", f"{case}.yaml")


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_family_matches_pytorch(case):
    three_way(case_network(case))


@pytest.mark.parametrize("case", ["conv2d", "conv_transpose", "avgpool", "norms", "reshaping", "activations",
                                  "layernorm2d_scale"])
def test_float64_matches_pytorch_tightly(case):
    three_way(case_network(case), dtype="float64", batch=1)


def test_every_kind_of_the_catalogue_is_compared_with_pytorch():
    used = {layer.kind for case in CASES for layer in case_network(case).layers}
    assert used == set(KINDS)


# ---- whole bundled networks --------------------------------------------------------------------------------
from cnncalc.spec import bundled_names, load  # noqa: E402



@pytest.mark.parametrize("name", bundled_names())
def test_bundled_network_matches_pytorch_value_for_value(name):
    network = load(name)
    batch = 1 if name in ("unet", "video3d", "vgg16") else 2
    summary, outputs, model, x = three_way(network, batch=batch, per_layer_values=False)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    (ours,) = outputs.values()
    np.testing.assert_allclose(ours, expected, **TOLERANCE["float32"])
    assert np.isfinite(ours).all() and np.abs(ours).max() > 0  # a real signal, not an all-zero output
