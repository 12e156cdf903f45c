"""Pooling rules, worked by hand; ceil_mode follows PyTorch (the last window may not start in the padding)."""
import pytest

from cnncalc.errors import ShapeError
from conftest import make


@pytest.mark.parametrize("kind, in_shape, fields, out_shape", [
    ("maxpool2d", (96, 55, 55), dict(kernel_size=3, stride=2), (96, 27, 27)),           # AlexNet: (55-3)/2+1
    ("maxpool2d", (64, 112, 112), dict(kernel_size=3, stride=2, padding=1), (64, 56, 56)),  # ResNet
    ("avgpool2d", (3, 7, 7), dict(kernel_size=2), (3, 3, 3)),                           # stride = kernel
    ("maxpool1d", (4, 10), dict(kernel_size=2, dilation=3), (4, 4)),                    # span 4: (10-4)/2+1
    ("maxpool3d", (2, 16, 8, 8), dict(kernel_size=[1, 2, 2]), (2, 16, 4, 4)),
    ("minpool2d", (1, 4, 4), dict(kernel_size=2), (1, 2, 2)),
    ("maxpool2d", (1, 7, 7), dict(kernel_size=2, padding="same"), (1, 4, 4)),           # ceil(7/2)
    # ceil_mode: ceil((6 + 2 - 3)/2) + 1 = 4; the last window starts at 6 < 6 + 1: kept
    ("maxpool2d", (1, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 4, 4)),
    # ceil_mode: ceil((5 + 2 - 2)/2) + 1 = 4, but window 4 would start at 6 >= 5 + 1 (in the padding): 3
    ("maxpool2d", (1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), (1, 3, 3)),
    # ceil_mode without padding: ceil((5-2)/2) + 1 = 3 (floor gives 2)
    ("avgpool2d", (1, 5, 5), dict(kernel_size=2, ceil_mode=True), (1, 3, 3)),
    ("avgpool2d", (1, 5, 5), dict(kernel_size=2), (1, 2, 2)),
])
def test_window_pool_shapes(kind, in_shape, fields, out_shape):
    layer = make(kind, **fields)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.params(in_shape).total == 0
    assert layer.macs(in_shape) == 0


def test_pool_flops_count_each_window_element():
    layer = make("maxpool2d", kernel_size=3, stride=2)
    assert layer.flops((96, 55, 55)) == 96 * 27 * 27 * 9


def test_pool_padding_over_half_the_kernel_is_refused_as_pytorch_does():
    with pytest.raises(ShapeError) as err:
        make("maxpool2d", kernel_size=3, padding=2).output_shape((1, 8, 8))
    assert "padding 2 is more than half the kernel size 3" in str(err.value)


@pytest.mark.parametrize("kind, in_shape, output_size, out_shape, flops", [
    # windows for 5 -> 3: [0,2) [1,4) [3,5): lengths 2 + 3 + 2 = 7 per axis
    ("adaptive_avgpool2d", (4, 5, 5), 3, (4, 3, 3), 4 * 7 * 7),
    ("adaptive_avgpool2d", (512, 7, 7), 1, (512, 1, 1), 512 * 49),
    ("adaptive_maxpool2d", (2, 6, 9), [2, None], (2, 2, 9), 2 * 6 * 9),  # None keeps the axis
    ("adaptive_avgpool1d", (3, 10), 4, (3, 4), 3 * (3 + 3 + 3 + 3)),     # [0,3) [2,5) [5,8) [7,10)
])
def test_adaptive_pool(kind, in_shape, output_size, out_shape, flops):
    layer = make(kind, output_size=output_size)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.flops(in_shape) == flops


@pytest.mark.parametrize("kind, keepdims, in_shape, out_shape, flops", [
    ("global_avgpool", False, (2048, 7, 7), (2048,), 100_352),   # one per input element
    ("global_avgpool", True, (2048, 7, 7), (2048, 1, 1), 100_352),
    ("global_maxpool", False, (64, 100), (64,), 6_400),
    ("global_maxpool", True, (8, 4, 4, 4), (8, 1, 1, 1), 512),
])
def test_global_pool(kind, keepdims, in_shape, out_shape, flops):
    layer = make(kind, keepdims=keepdims)
    assert layer.output_shape(in_shape) == out_shape
    assert layer.flops(in_shape) == flops
