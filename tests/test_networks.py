"""Golden tests for the bundled network specs (specs/*.yaml).

Sources of truth, none of them cnncalc itself:
- published parameter counts and GFLOPS (= multiply-accumulates) of torchvision's model documentation;
- hand counts from the papers (LeNet-5, the original AlexNet);
- PyTorch as an oracle: each spec is rebuilt here as a plain torch.nn model (torchvision's module layout
  where the network is a torchvision one); its parameter count, state_dict keys and shapes, per-module output
  shapes (forward hooks), final output shape (a real forward pass on zeros) and multiply-accumulates
  (torch.utils.flop_counter, which counts conv/linear multiplies and no bias adds, x2) must match cnncalc.

Every exact number in GOLDEN below is asserted against PyTorch by `test_matches_pytorch` when torch is
installed; the other tests run without torch.
"""
from __future__ import annotations

from collections import OrderedDict
from math import prod
from pathlib import Path

import pytest

from cnncalc.analyze import analyze
from cnncalc.spec import bundled_names, load

SPECS = Path(__file__).resolve().parent.parent / "specs"

# name: (trainable parameters, non-trainable (BatchNorm running mean/var), MACs at batch 1, output shape)
GOLDEN = {
    "lenet5": (61_706, 0, 416_520, (1, 10)),
    "alexnet": (61_100_840, 0, 714_188_480, (1, 1000)),
    "alexnet_original": (62_378_344, 0, 1_135_256_096, (1, 1000)),
    "vgg16": (138_357_544, 0, 15_470_264_320, (1, 1000)),
    "resnet18": (11_689_512, 9_600, 1_814_073_344, (1, 1000)),
    "resnet50": (25_557_032, 53_120, 4_089_184_256, (1, 1000)),
    "mobilenet_v2": (3_504_872, 34_112, 300_774_272, (1, 1000)),
    "unet": (31_030_658, 0, 150_428_424_448, (1, 2, 388, 388)),
    "audio1d": (559_114, 2_048, 69_538_816, (1, 10)),
    "video3d": (79_991_015, 0, 38_548_959_232, (1, 487)),
}

# torchvision's documented totals: parameters (exact) and GFLOPS (really GMACs, rounded to 2 decimals)
PUBLISHED = {
    "alexnet": (61_100_840, 0.71),
    "vgg16": (138_357_544, 15.47),
    "resnet18": (11_689_512, 1.81),
    "resnet50": (25_557_032, 4.09),
    "mobilenet_v2": (3_504_872, 0.30),
}

_CACHE: dict = {}


def summary(name: str, batch: int = 1):
    key = (name, batch)
    if key not in _CACHE:
        _CACHE[key] = analyze(load(SPECS / f"{name}.yaml"), batch=batch)
    return _CACHE[key]


# ---- without torch ---------------------------------------------------------------------------------------

def test_bundled_set():
    assert sorted(p.stem for p in SPECS.glob("*.yaml")) == sorted(GOLDEN)
    assert set(GOLDEN) <= set(bundled_names())  # what `load("<name>")` and the CLI find


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_spec_loads_and_is_documented(name):
    text = (SPECS / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith("#"), "each bundled spec opens with a comment giving its source and totals"
    net = load(name)  # by bundled name, as the CLI does
    assert net.name and net.layers
    assert len({layer.name for layer in net.layers}) == len(net.layers)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_totals(name):
    trainable, non_trainable, macs, output = GOLDEN[name]
    t = summary(name).totals
    assert (t.trainable_params, t.non_trainable_params, t.macs) == (trainable, non_trainable, macs)
    assert t.params == trainable + non_trainable
    assert summary(name).rows[-1].output_shape == output
    assert summary(name).output_shapes() == [output]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_torchvision_totals(name):
    params, gmacs = PUBLISHED[name]
    t = summary(name).totals
    assert t.trainable_params == params
    assert abs(t.macs / 1e9 - gmacs) <= 0.005, f"{t.macs / 1e9:.4f} G MACs vs published {gmacs}"


def test_original_alexnet_by_hand():
    conv = [(96, 3, 11, 55), (256, 96, 5, 27), (384, 256, 3, 13), (384, 384, 3, 13), (256, 384, 3, 13)]
    fc = [(4096, 9216), (4096, 4096), (1000, 4096)]
    params = sum(o * i * k * k + o for o, i, k, _ in conv) + sum(o * i + o for o, i in fc)
    macs = sum(o * i * k * k * n * n for o, i, k, n in conv) + sum(o * i for o, i in fc)
    s = summary("alexnet_original")
    assert (s.totals.params, s.totals.macs) == (params, macs) == (62_378_344, 1_135_256_096)
    assert s.row("conv1").output_shape == (1, 96, 55, 55)
    assert s.row("pool1").output_shape == (1, 96, 27, 27)
    assert s.row("pool5").output_shape == (1, 256, 6, 6)


def test_lenet5_by_hand():
    s = summary("lenet5")
    # c1 156, c3 2,416, c5 48,120, f6 10,164, output 850
    assert [s.row(n).params.total for n in ("c1", "c3", "c5", "f6", "output")] == [156, 2416, 48120, 10164, 850]
    assert s.row("s4").output_shape == (1, 16, 5, 5)


def test_unet_output():
    s = summary("unet")
    assert s.rows[-1].output_shape == (1, 2, 388, 388)
    assert s.input_shape == (1, 1, 572, 572)
    assert s.row("bottom.relu2").output_shape == (1, 1024, 28, 28)
    # the skips are centre-cropped to the up-convolution's size before concatenation
    assert s.row("crop1").input_shapes == ((1, 64, 568, 568), (1, 64, 392, 392))
    assert s.row("cat1").output_shape == (1, 128, 392, 392)


def test_m5_lengths_as_in_the_paper():
    # Dai et al. 2017, Table 1 (M5) on 4 s at 8 kHz: 2000x128, 500x128, 125x256, 31x512 after the pools
    s = analyze(load(SPECS / "audio1d.yaml").with_input((1, 32000)))
    assert [s.row(f"block{i}.pool").output_shape[1:] for i in range(1, 5)] == \
        [(128, 2000), (128, 500), (256, 125), (512, 31)]
    assert s.totals.trainable_params == 559_114  # "0.5M"
    assert s.rows[-1].output_shape == (1, 10)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_flop_is_in_one_category_and_every_parameter_in_a_weight(name):
    """The totals themselves are pinned above to published figures and below to PyTorch's; here the two
    other ways of counting must agree with them: FLOPs by kind (each layer's category and bias adds, counted
    apart from its FLOPs) and parameters as the sizes of the weights each layer declares."""
    s = summary(name)
    t = s.totals
    assert sum(t.flops_by_category.values()) == t.flops >= 2 * t.macs
    assert t.flops_by_category["conv"] + t.flops_by_category["linear"] >= 2 * t.macs  # MACs are conv or linear
    assert sum(prod(w.shape) for r in s.rows for w in r.layer.weight_shapes(*(x[1:] for x in r.input_shapes))
               .values()) == t.params == GOLDEN[name][0] + GOLDEN[name][1]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_batch_scales(name):
    one, four = summary(name).totals, summary(name, batch=4).totals
    assert four.params == one.params
    assert (four.macs, four.flops) == (4 * one.macs, 4 * one.flops)
    assert summary(name, batch=4).rows[-1].output_shape == (4, *GOLDEN[name][3][1:])


# ---- PyTorch as the oracle -----------------------------------------------------------------------------

def _torch_models(torch):
    """Builders of plain torch.nn equivalents, module paths as torchvision's where the network is one."""
    nn, F = torch.nn, torch.nn.functional

    class Flattened(nn.Module):
        """features -> avgpool -> flatten -> classifier, as torchvision's AlexNet and VGG."""

        def __init__(self, features, avgpool, classifier):
            super().__init__()
            self.features, self.avgpool, self.classifier = features, avgpool, classifier

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def alexnet():
        features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 1000))
        return Flattened(features, nn.AdaptiveAvgPool2d((6, 6)), classifier)

    def vgg16():
        layers, channels = [], 3
        for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000))
        return Flattened(nn.Sequential(*layers), nn.AdaptiveAvgPool2d((7, 7)), classifier)

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class Bottleneck(nn.Module):  # v1.5: stride on the 3x3
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet(nn.Module):
        def __init__(self, block, counts):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(block, 64, counts[0])
            self.layer2 = self._make_layer(block, 128, counts[1], 2)
            self.layer3 = self._make_layer(block, 256, counts[2], 2)
            self.layer4 = self._make_layer(block, 512, counts[3], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, 1000)

        def _make_layer(self, block, planes, count, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                out = planes * block.expansion
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            layers = [block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * block.expansion
            layers += [block(self.inplanes, planes) for _ in range(1, count)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def conv_bn_relu6(inp, out, k=3, stride=1, groups=1):  # torchvision's Conv2dNormActivation
        return nn.Sequential(nn.Conv2d(inp, out, k, stride, (k - 1) // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(out), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = inp * t
            self.use_res_connect = stride == 1 and inp == oup
            layers = [conv_bn_relu6(inp, hidden, k=1)] if t != 1 else []
            layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                       nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            features, channels = [conv_bn_relu6(3, 32, stride=2)], 32
            for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                               (6, 160, 3, 2), (6, 320, 1, 1)]:
                for i in range(n):
                    features.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                    channels = c
            features.append(conv_bn_relu6(channels, 1280, k=1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    def lenet5():
        return nn.Sequential(OrderedDict(
            c1=nn.Conv2d(1, 6, 5), t1=nn.Tanh(), s2=nn.AvgPool2d(2),
            c3=nn.Conv2d(6, 16, 5), t3=nn.Tanh(), s4=nn.AvgPool2d(2),
            c5=nn.Conv2d(16, 120, 5), t5=nn.Tanh(), flatten=nn.Flatten(),
            f6=nn.Linear(120, 84), t6=nn.Tanh(), output=nn.Linear(84, 10)))

    def alexnet_original():
        return nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 96, 11, 4), relu1=nn.ReLU(),
            norm1=nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0), pool1=nn.MaxPool2d(3, 2),
            conv2=nn.Conv2d(96, 256, 5, padding=2), relu2=nn.ReLU(),
            norm2=nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0), pool2=nn.MaxPool2d(3, 2),
            conv3=nn.Conv2d(256, 384, 3, padding=1), relu3=nn.ReLU(),
            conv4=nn.Conv2d(384, 384, 3, padding=1), relu4=nn.ReLU(),
            conv5=nn.Conv2d(384, 256, 3, padding=1), relu5=nn.ReLU(), pool5=nn.MaxPool2d(3, 2),
            flatten=nn.Flatten(),
            fc6=nn.Linear(9216, 4096), relu6=nn.ReLU(), drop6=nn.Dropout(),
            fc7=nn.Linear(4096, 4096), relu7=nn.ReLU(), drop7=nn.Dropout(),
            fc8=nn.Linear(4096, 1000)))

    def double_conv(inp, out):
        return nn.Sequential(OrderedDict(conv1=nn.Conv2d(inp, out, 3), relu1=nn.ReLU(),
                                         conv2=nn.Conv2d(out, out, 3), relu2=nn.ReLU()))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [64, 128, 256, 512]
            inp = 1
            for i, w in enumerate(widths, 1):
                setattr(self, f"enc{i}", double_conv(inp, w))
                setattr(self, f"pool{i}", nn.MaxPool2d(2, 2))
                inp = w
            self.bottom = double_conv(512, 1024)
            self.dropout = nn.Dropout(0.5)
            for i, w in reversed(list(enumerate(widths, 1))):
                setattr(self, f"up{i}", nn.ConvTranspose2d(2 * w, w, 2, 2))
                setattr(self, f"dec{i}", double_conv(2 * w, w))
            self.head = nn.Conv2d(64, 2, 1)

        @staticmethod
        def crop(skip, like):
            dh, dw = skip.shape[2] - like.shape[2], skip.shape[3] - like.shape[3]
            return skip[:, :, dh // 2: dh // 2 + like.shape[2], dw // 2: dw // 2 + like.shape[3]]

        def forward(self, x):
            skips = []
            for i in range(1, 5):
                x = getattr(self, f"enc{i}")(x)
                skips.append(x)
                x = getattr(self, f"pool{i}")(x)
            x = self.dropout(self.bottom(x))
            for i in range(4, 0, -1):
                up = getattr(self, f"up{i}")(x)
                x = getattr(self, f"dec{i}")(torch.cat([self.crop(skips[i - 1], up), up], dim=1))
            return self.head(x)

    def audio1d():  # M5
        def block(inp, out, k=3, stride=1, pad=1):
            return nn.Sequential(OrderedDict(conv=nn.Conv1d(inp, out, k, stride, pad), bn=nn.BatchNorm1d(out),
                                             relu=nn.ReLU(), pool=nn.MaxPool1d(4)))
        return nn.Sequential(OrderedDict(
            block1=block(1, 128, 80, 4, 38), block2=block(128, 128), block3=block(128, 256),
            block4=block(256, 512),
            gap=nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten()), fc=nn.Linear(512, 10)))

    def video3d():  # C3D
        layers, inp = OrderedDict(), 3
        for name, out, pool in [("1a", 64, "pool1"), ("2a", 128, "pool2"), ("3a", 256, None),
                                ("3b", 256, "pool3"), ("4a", 512, None), ("4b", 512, "pool4"),
                                ("5a", 512, None), ("5b", 512, "pool5")]:
            layers[f"conv{name}"] = nn.Conv3d(inp, out, 3, padding=1)
            layers[f"relu{name}"] = nn.ReLU()
            if pool == "pool1":
                layers[pool] = nn.MaxPool3d((1, 2, 2), (1, 2, 2))
            elif pool:
                layers[pool] = nn.MaxPool3d(2, 2, ceil_mode=pool == "pool5")
            inp = out
        layers.update(flatten=nn.Flatten(), fc6=nn.Linear(8192, 4096), relu6=nn.ReLU(), drop6=nn.Dropout(),
                      fc7=nn.Linear(4096, 4096), relu7=nn.ReLU(), drop7=nn.Dropout(), fc8=nn.Linear(4096, 487))
        return nn.Sequential(layers)

    return {
        "lenet5": lenet5, "alexnet": alexnet, "alexnet_original": alexnet_original, "vgg16": vgg16,
        "resnet18": lambda: ResNet(BasicBlock, [2, 2, 2, 2]),
        "resnet50": lambda: ResNet(Bottleneck, [3, 4, 6, 3]),
        "mobilenet_v2": MobileNetV2, "unet": UNet, "audio1d": audio1d, "video3d": video3d,
    }


def _build(torch, name):
    """The model with parameters allocated but not randomly initialised (fast), then zeroed."""
    with torch.device("meta"):
        model = _torch_models(torch)[name]()
    model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.zero_()
    return model


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    s = summary(name)
    model = _build(torch, name)

    # parameters and buffers
    assert sum(p.numel() for p in model.parameters()) == s.totals.trainable_params == GOLDEN[name][0]
    buffers = {k for k, _ in model.named_buffers() if not k.endswith("num_batches_tracked")}
    assert sum(model.get_buffer(k).numel() for k in buffers) == s.totals.non_trainable_params == GOLDEN[name][1]

    # state_dict keys and shapes, from the per-layer weight rules
    ours = {}
    for r in s.rows:
        for key, w in r.layer.weight_shapes(*(x[1:] for x in r.input_shapes)).items():
            ours[f"{r.name}.{key}"] = (tuple(w.shape), w.buffer)
    theirs = {k: (tuple(v.shape), k in buffers) for k, v in model.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    assert ours == theirs

    # a forward pass on zeros: final shape, each same-named module's output shape, multiply-accumulates
    rows = {r.name: r for r in s.rows}
    seen: dict[str, tuple] = {}

    def record(name):
        def hook(module, inputs, output):  # first call only (torchvision reuses its ReLU modules)
            seen.setdefault(name, tuple(output.shape))
        return hook

    hooks = [module.register_forward_hook(record(n)) for n, module in model.named_modules() if n in rows]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(s.input_shape))
    for h in hooks:
        h.remove()
    assert tuple(out.shape) == s.rows[-1].output_shape == GOLDEN[name][3]
    weighted = {r.name for r in s.rows if r.params.total}
    assert weighted <= set(seen), f"no torch module for {sorted(weighted - set(seen))}"
    assert {n: rows[n].output_shape for n in seen} == seen
    assert counter.get_total_flops() == 2 * s.totals.macs == 2 * GOLDEN[name][2]
