"""Pooling rules, worked by hand; ceil_mode follows PyTorch (the last window may not start in the padding)."""
import math

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


# ---- padding PyTorch's pooling cannot express is applied first ---------------------------------------------

@pytest.mark.parametrize("padding, out_w", [
    # PyTorch's own padding 1: ceil((2 + 2 - 2)/2) + 1 = 2; window 1 starts at 2 < 2 + 1: kept
    ([[0, 0], [1, 1]], 2),
    # [0, 1] differs, so it is applied first: ceil((3 - 2)/2) + 1 = 2, but window 1 starts at 2, where the
    # input ends (2 + 0): it would see only padding, and ceil_mode keeps no window that starts in the padding
    ([[0, 0], [0, 1]], 1),
    ([[0, 0], [1, 0]], 2),  # ceil((3 - 2)/2) + 1 = 2; window 1 starts at 2 < 2 + 1: kept
])
def test_ceil_mode_keeps_no_window_that_starts_in_the_end_padding(padding, out_w):
    layer = make("maxpool2d", kernel_size=2, stride=2, padding=padding, ceil_mode=True)
    assert layer.output_shape((1, 1, 2))[2] == out_w


def test_ceil_mode_drops_a_window_in_pytorchs_own_padding():
    # PyTorch's padding 1 on W = 1: ceil((1 + 2 - 2)/2) + 1 = 2, window 1 starts at 2 >= 1 + 1: dropped
    assert make("maxpool1d", kernel_size=2, stride=2, padding=1, ceil_mode=True).output_shape((1, 1)) == (1, 1)


def test_avgpool3d_smaller_than_its_kernel_is_refused_unless_padding_comes_first():
    with pytest.raises(ShapeError, match="smaller than kernel_size 2"):
        make("avgpool3d", kernel_size=[1, 1, 2], padding=[0, 0, 1]).output_shape((1, 1, 1, 1))
    same = make("avgpool3d", kernel_size=[1, 1, 2], padding="same")
    assert same.output_shape((1, 1, 1, 1)) == (1, 1, 1, 1)  # padded to 2 first, as F.pad then avg_pool3d


def test_a_one_d_adaptive_pool_needs_a_size():
    with pytest.raises(ValueError, match="null keeps an axis only in 2-D and 3-D"):
        make("adaptive_avgpool1d", output_size=[None])


@pytest.mark.parametrize("n, out", [(7, 3), (5, 7), (6, 3), (10**12, 999_999_999_989), (1, 10**12)])
def test_adaptive_window_sums_and_widths_in_closed_form(n, out):
    from cnncalc.layers.pool import widest_window, window_total
    if out <= 10**4:  # worked out window by window
        lengths = [-(-(i + 1) * n // out) - (i * n // out) for i in range(out)]
        assert (window_total(n, out), widest_window(n, out)) == (sum(lengths), max(lengths))
    layer = make("adaptive_avgpool1d", output_size=out)
    assert layer.flops((1, n)) == window_total(n, out) == n + out - math.gcd(n, out)
