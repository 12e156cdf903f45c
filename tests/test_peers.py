"""Why ResNet-50 is '3.86 G', '4.09 G', '4.11 G', '4.12 G' or '8.2 G': each peer's published figure rebuilt
from cnncalc's own per-category counts, following the counting rules in that peer's source code."""
from math import prod

from cnncalc.analyze import analyze
from cnncalc.spec import apply_overrides, load


def giga(n: int) -> str:
    return f"{n / 1e9:.2f}"


def resnet50():
    return analyze(load("resnet50"))


def test_torchvision_and_torchinfo_count_multiply_accumulates():
    # torchvision documents 4.09 GFLOPS for resnet50; torchinfo prints "Total mult-adds (G): 4.09"
    assert giga(resnet50().totals.macs) == "4.09"


def test_fvcore_adds_batchnorm_and_adaptive_pooling():
    # fvcore: 1 per MAC for conv/linear (no bias), eval batch_norm 2 per element with affine,
    # adaptive_avg_pool2d 1 per input element; relu, add and max_pool are not counted -> 4.11 G
    s = resnet50()
    avgpool = s.row("avgpool")
    fvcore = s.totals.macs + s.totals.flops_by_category["norm"] + prod(avgpool.input_shapes[0])
    assert giga(fvcore) == "4.11"


def test_ptflops_adds_bias_norm_relu_and_pooling_inputs():
    # ptflops: MACs + bias, BN 2 per element, ReLU 1 per output element, pooling 1 per INPUT element -> 4.12 G
    s = resnet50()
    pools = sum(prod(r.input_shapes[0]) for r in s.rows if r.layer.category == "pool")
    ptflops = (s.totals.macs + s.totals.flops_by_category["bias"] + s.totals.flops_by_category["norm"]
               + s.totals.flops_by_category["activation"] + pools)
    assert giga(ptflops) == "4.12"


def test_keras_resnet50_is_v1_with_the_stride_on_the_first_1x1():
    v1 = []
    for stage in (2, 3, 4):
        v1 += [f"layer{stage}.0.conv1.stride=2", f"layer{stage}.0.conv2.stride=1"]
    assert giga(analyze(apply_overrides(load("resnet50"), v1)).totals.macs) == "3.86"


def test_flops_are_about_twice_the_macs():
    s = resnet50()
    assert f"{s.totals.flops / 1e9:.1f}" == "8.2"
    assert sum(s.totals.flops_by_category.values()) == s.totals.flops
