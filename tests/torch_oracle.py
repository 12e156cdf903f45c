"""An independent PyTorch twin of a cnncalc network, for tests and benchmarks.

Built from the layer models' fields with torch.nn modules, at the module paths the layer names give, so
`load_state_dict(strict=True)` also checks cnncalc's weight names and layouts. It shares no arithmetic with
cnncalc: padding for 'same' and centre crops are worked out here again from their definitions.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnncalc.network import NETWORK_INPUT, Network


def _tf_same(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    # TensorFlow's documented rule: out = ceil(in / stride); pad_total split with the extra at the end
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _f_pad(pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    # F.pad wants (last axis before, last axis after, previous axis ...)
    flat: list[int] = []
    for before, after in reversed(pairs):
        flat += [before, after]
    return tuple(flat)


def _axes(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def _conv(layer, in_shape) -> nn.Module:
    rank = int(layer.type[-2])
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
    padding = layer.padding
    stride, dilation, kernel = _axes(layer.stride, rank), _axes(layer.dilation, rank), _axes(layer.kernel_size, rank)
    symmetric = not isinstance(padding, str) and all(b == a for b, a in padding)
    if symmetric:
        torch_padding = tuple(b for b, _ in padding)
    elif padding == "valid" or (padding == "same" and set(stride) == {1}):
        torch_padding = padding  # PyTorch's own 'same' (stride 1) and 'valid'
    else:
        torch_padding = None
    module = cls(in_shape[0], layer.out_channels, kernel, stride=stride,
                 padding=0 if torch_padding is None else torch_padding, dilation=dilation, groups=layer.groups,
                 bias=layer.bias, padding_mode=layer.padding_mode)
    if torch_padding is None:  # asymmetric pairs, or TensorFlow 'same' at stride > 1: pad first, in the same mode
        mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
        module.forward = _padded_forward(module.forward, padding, kernel, stride, dilation, 0.0, mode)
    return module


def _padded_forward(forward, padding, kernel, stride, dilation, value, mode="constant"):
    def run(x):
        spatial = x.shape[2:]
        if padding == "same":
            pairs = [_tf_same(n, k, s, d) for n, k, s, d in zip(spatial, kernel, stride, dilation)]
        else:
            pairs = [tuple(p) for p in padding]
        return forward(F.pad(x, _f_pad(pairs), mode=mode, value=value))
    return run


def _pool(layer, in_shape) -> nn.Module:
    rank = int(layer.type[-2])
    kernel, stride = _axes(layer.kernel_size, rank), _axes(layer.stride, rank)
    is_max = layer.type.startswith(("max", "min"))
    dilation = _axes(layer.dilation, rank) if is_max else (1,) * rank
    padding = layer.padding
    symmetric = not isinstance(padding, str) and all(b == a for b, a in padding)
    torch_padding = tuple(b for b, _ in padding) if symmetric else 0 if padding == "valid" else None
    if is_max:
        cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[rank]
        module = cls(kernel, stride, torch_padding or 0, dilation, ceil_mode=layer.ceil_mode)
    else:
        # TensorFlow's 'same' averaging divides by the pixels inside the input; PyTorch's default counts padding
        include_pad = layer.count_include_pad if layer.count_include_pad is not None else padding != "same"
        cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[rank]
        module = cls(kernel, stride, torch_padding or 0, ceil_mode=layer.ceil_mode, count_include_pad=include_pad)
    if torch_padding is None:
        padded = _padded_forward(module.forward, padding, kernel, stride, dilation, -math.inf if is_max else 0.0)
        if is_max or include_pad:
            pooled = padded
        else:  # average of the zero-padded window sums over the zero-padded count of real pixels
            pooled = lambda x: padded(x) / padded(torch.ones_like(x[:, :1]))  # noqa: E731
        # padded first, PyTorch sees the end padding as input; cnncalc's ceil_mode still keeps no window that
        # starts there (PyTorch's own rule for its own padding)
        module.forward = _ceil_windows_in_input(pooled, padding, kernel, stride, dilation) if layer.ceil_mode \
            else pooled
    if layer.type == "minpool2d":
        inner = module.forward
        module.forward = lambda x: -inner(-x)
    return module


def _ceil_windows_in_input(pool, padding, kernel, stride, dilation):
    def run(x):
        y = pool(x)
        spatial = x.shape[2:]
        pairs = [_tf_same(n, k, s, d) for n, k, s, d in zip(spatial, kernel, stride, dilation)] \
            if padding == "same" else [tuple(p) for p in padding]
        # window i starts at i * S in padded coordinates: keep those that start before the input ends
        keep = [min(o, math.ceil((n + b) / s)) for o, n, (b, _), s in zip(y.shape[2:], spatial, pairs, stride)]
        return y[(slice(None), slice(None), *(slice(0, k) for k in keep))]
    return run


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def _centre_crop(x, target):
    index = [slice(None), slice(None)]
    for n, t in zip(x.shape[2:], target.shape[2:]):
        start = (n - t) // 2
        index.append(slice(start, start + t))
    return x[tuple(index)]


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d's forward (torchvision is not installed here): an nn.LayerNorm
    over the channels, so its state_dict keys are `<name>.weight`, `<name>.bias`. torchvision permutes
    (0, 2, 3, 1) and back, [N, C, H, W] only; this moves the channel axis last and back, the same permutation
    for 4-D and its like for [N, C, L] and [N, C, D, H, W]. Fewer than 3 axes: refused, as torchvision's
    permute does."""

    def forward(self, x):
        if x.dim() < 3:
            raise RuntimeError(f"LayerNorm2d takes [N, C, *spatial]; got {list(x.shape)}")
        x = torch.movedim(x, 1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return torch.movedim(x, -1, 1)


def scale_parameter(layer) -> nn.Parameter:
    """ConvNeXt's layer scale: nn.Parameter(torch.ones(shape) * init), a bare parameter of the block."""
    return nn.Parameter(torch.ones(tuple(layer.shape)) * layer.init)


# kinds whose one weight is a bare parameter named as the layer, multiplying its input (not a submodule)
BARE_PARAMETER = {"scale": scale_parameter}


def _pad(layer, t):
    """F.pad over the spatial axes of [N, C, *spatial], the per-axis entries (first axis first) reversed into F.pad's
    last-axis-first order. By design, not PyTorch's: F.pad also pads a batch without spatial axes (or with
    more entries than spatial axes, the channels), which a `pad` layer is not; those are refused here."""
    axes = t.dim() - 2
    entries = [layer.padding] * axes if isinstance(layer.padding, int) else list(layer.padding)
    if not 1 <= axes <= 3 or len(entries) != axes:
        raise ValueError(f"pad takes [N, C, *spatial] with one entry per spatial axis; got {list(t.shape)} "
                         f"and padding {layer.padding}")
    pairs = [(e, e) if isinstance(e, int) else tuple(e) for e in entries]
    if layer.mode == "constant":
        return F.pad(t, _f_pad(pairs), value=layer.value)
    return F.pad(t, _f_pad(pairs), mode=layer.mode)


def build_module(layer, in_shapes) -> nn.Module:
    kind, x = layer.type, in_shapes[0]
    rank = int(kind[-2]) if kind[-1] == "d" and kind[-2].isdigit() else None
    if kind.startswith("conv_transpose"):
        cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[rank]
        return cls(x[0], layer.out_channels, layer.kernel_size, layer.stride, layer.padding, layer.output_padding,
                   layer.groups, layer.bias, layer.dilation, padding_mode=layer.padding_mode)
    if kind.startswith("conv"):
        return _conv(layer, x)
    if kind[:7] in ("maxpool", "avgpool", "minpool"):
        return _pool(layer, x)
    if kind.startswith("adaptive"):
        size = tuple(layer.output_size)
        cls = {("avg", 1): nn.AdaptiveAvgPool1d, ("avg", 2): nn.AdaptiveAvgPool2d, ("avg", 3): nn.AdaptiveAvgPool3d,
               ("max", 1): nn.AdaptiveMaxPool1d, ("max", 2): nn.AdaptiveMaxPool2d, ("max", 3): nn.AdaptiveMaxPool3d}
        return cls[("max" if "max" in kind else "avg", rank)](size)
    if kind in ("global_avgpool", "global_maxpool"):
        dims = tuple(range(2, len(x) + 1))
        if kind == "global_avgpool":
            return _Fn(lambda t: t.mean(dim=dims, keepdim=layer.keepdims))
        return _Fn(lambda t: t.amax(dim=dims, keepdim=layer.keepdims))
    if kind == "linear":
        return nn.Linear(x[-1], layer.out_features, bias=layer.bias)
    if kind.startswith("batchnorm"):
        cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[rank or max(len(x) - 1, 1)]
        return cls(x[0], eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                   track_running_stats=layer.track_running_stats)
    if kind == "layernorm":
        shape = x if layer.normalized_shape is None else _axes(layer.normalized_shape, 1)
        return nn.LayerNorm(tuple(shape), eps=layer.eps, elementwise_affine=layer.elementwise_affine, bias=layer.bias)
    if kind == "layernorm2d":
        channels = x[0] if layer.normalized_shape is None else layer.normalized_shape
        return LayerNorm2d(channels, eps=layer.eps, elementwise_affine=layer.elementwise_affine, bias=layer.bias)
    if kind == "scale":  # the reference alone (torch_outcome); TorchTwin keeps the parameter on the parent
        parameter = scale_parameter(layer)
        return _Fn(lambda t: t * parameter)
    if kind == "groupnorm":
        return nn.GroupNorm(layer.num_groups, x[0], eps=layer.eps, affine=layer.affine)
    if kind.startswith("instancenorm"):
        cls = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[rank]
        return cls(x[0], eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                   track_running_stats=layer.track_running_stats)
    if kind == "lrn":
        return nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    simple = {"relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "silu": nn.SiLU,
              "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid, "identity": nn.Identity}
    if kind in simple:
        return simple[kind]()
    if kind == "leaky_relu":
        return nn.LeakyReLU(layer.negative_slope)
    if kind == "elu":
        return nn.ELU(layer.alpha)
    if kind == "gelu":
        return nn.GELU(approximate=layer.approximate)
    if kind == "prelu":
        return nn.PReLU(layer.num_parameters, init=layer.init)
    if kind == "mish":
        return nn.Mish()
    if kind == "softplus":
        return nn.Softplus(beta=layer.beta, threshold=layer.threshold)
    if kind == "hardtanh":
        return nn.Hardtanh(layer.min_val, layer.max_val)
    if kind in ("softmax", "log_softmax"):
        return (nn.Softmax if kind == "softmax" else nn.LogSoftmax)(dim=layer.dim)
    if kind.startswith("dropout"):
        return nn.Dropout(layer.p)
    if kind == "stochastic_depth":
        # torchvision.ops.StochasticDepth (not installed here) returns its input unchanged in eval mode
        # ("if not self.training or p == 0: return input"), whatever p and mode: the identity is its twin
        return nn.Identity()
    if kind == "flatten":
        return nn.Flatten(layer.start_dim, layer.end_dim)
    if kind == "reshape":
        return _Fn(lambda t: t.reshape(t.shape[0], *layer.shape))
    if kind == "zeropad2d":
        (top, bottom), (left, right) = layer.padding
        return nn.ZeroPad2d((left, right, top, bottom))
    if kind == "pad":
        return _Fn(lambda t: _pad(layer, t))
    if kind == "crop":
        if len(in_shapes) == 2:
            return _Fn(_centre_crop)
        pairs = layer.crops(*in_shapes)
        return _Fn(lambda t: t[(slice(None), slice(None), *(slice(b, n - a) for n, (b, a) in
                                                              zip(t.shape[2:], pairs)))])
    if kind == "upsample":
        size = layer.size if layer.size is None or isinstance(layer.size, int) else tuple(layer.size)
        scale = layer.scale_factor if layer.scale_factor is None or isinstance(layer.scale_factor, float) \
            else tuple(layer.scale_factor)
        return nn.Upsample(size=size, scale_factor=scale, mode=layer.mode, align_corners=layer.align_corners)
    if kind == "add":
        return _Fn(lambda *ts: sum(ts[1:], ts[0]))
    if kind == "multiply":
        return _Fn(lambda *ts: math.prod(ts[1:], start=ts[0]))
    if kind == "concat":
        return _Fn(lambda *ts: torch.cat(ts, dim=layer.dim))
    if kind == "permute":
        return _Fn(lambda t: torch.permute(t, tuple(layer.dims)))
    if kind == "transpose":
        return _Fn(lambda t: torch.transpose(t, layer.dim0, layer.dim1))
    if kind == "channel_shuffle":
        return nn.ChannelShuffle(layer.groups)
    if kind == "slice":
        # Python's own slice of the tensor; range() refuses a dim out of range (IndexError), as PyTorch would
        def sliced(t):
            return t[(slice(None),) * range(t.dim())[layer.dim] + (slice(layer.start, layer.end, layer.step),)]
        return _Fn(sliced)
    if kind == "pixel_shuffle":
        return nn.PixelShuffle(layer.upscale_factor)
    if kind == "pixel_unshuffle":
        return nn.PixelUnshuffle(layer.downscale_factor)
    raise NotImplementedError(kind)


class TorchTwin(nn.Module):
    """The network as nested torch modules at its layer names' paths, run in spec order."""

    def __init__(self, network: Network, per_sample_inputs: dict[str, list[tuple[int, ...]]]):
        super().__init__()
        self.network = network
        for layer in network.layers:
            parent: nn.Module = self
            *path, leaf = layer.name.split(".")
            for part in path:
                if not hasattr(parent, part):
                    parent.add_module(part, nn.Module())
                parent = getattr(parent, part)
            if layer.type in BARE_PARAMETER:
                parent.register_parameter(leaf, BARE_PARAMETER[layer.type](layer))
            else:
                parent.add_module(leaf, build_module(layer, per_sample_inputs[layer.name]))

    def forward(self, x, observe=None):
        live = {NETWORK_INPUT: x}
        for layer in self.network.layers:
            ins = [live[n] for n in layer.inputs]
            if layer.type in BARE_PARAMETER:  # x * self.layer_scale, as ConvNeXt's block
                y = ins[0] * self.get_parameter(layer.name)
            else:
                y = self.get_submodule(layer.name)(*ins)
            live[layer.name] = y
            if observe is not None:
                observe(layer, y)
        outputs = [live[n] for n in self.network.outputs]
        return outputs[0] if len(outputs) == 1 else outputs


def twin(network: Network, summary) -> TorchTwin:
    inputs = {row.name: [s[1:] for s in row.input_shapes] for row in summary.rows}
    return TorchTwin(network, inputs).eval()


def load_numpy_weights(model: nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Our weights into the twin, strictly: every key and shape must be exactly PyTorch's."""
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
    model.load_state_dict(state, strict=True)
