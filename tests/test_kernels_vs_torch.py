"""The NumPy kernels against torch.nn.functional, value for value (float32: rtol 1e-4, atol 1e-5)."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from hypothesis import assume, given, settings, strategies as st  # noqa: E402

from cnncalc.kernels import conv as conv_mod  # noqa: E402
from cnncalc.kernels import pool as pool_mod  # noqa: E402
from cnncalc.kernels.conv import conv, conv_transpose  # noqa: E402
from cnncalc.kernels.pool import adaptive_pool, avg_pool, max_pool  # noqa: E402
from cnncalc.kernels.resample import upsample  # noqa: E402

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
ADAPTIVE = {("avg", 1): F.adaptive_avg_pool1d, ("avg", 2): F.adaptive_avg_pool2d,
            ("avg", 3): F.adaptive_avg_pool3d, ("max", 1): F.adaptive_max_pool1d,
            ("max", 2): F.adaptive_max_pool2d, ("max", 3): F.adaptive_max_pool3d}

pytestmark = pytest.mark.oracle
torch.set_num_threads(1)


def seed_of(case) -> int:
    return zlib.crc32(repr(case).encode())


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def check(got, want, dtype=np.float32):
    want = want.detach().numpy()
    assert got.dtype == dtype
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL[dtype])


def torch_pad(pads):
    """(before, after) per spatial axis -> F.pad's flat list (last axis first)."""
    return [p for pair in reversed(pads) for p in pair]


def tup(value, rank):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def pairs(value, rank):
    """int, per-axis ints or per-axis (before, after) pairs -> pairs."""
    if isinstance(value, int):
        return ((value, value),) * rank
    return tuple((v, v) if isinstance(v, int) else tuple(v) for v in value)


# ---- convolution ----------------------------------------------------------------------------------------------
# (batch, in, out, spatial, kernel, stride, padding, dilation, groups, bias)
CONV_CASES = [
    (1, 3, 4, (9,), 3, 1, 0, 1, 1, True),
    (3, 4, 6, (11,), 5, 2, ((2, 1),), 1, 2, False),
    (2, 6, 6, (10,), 3, 1, 2, 2, 6, True),             # depthwise 1-D
    (1, 1, 1, (1,), 1, 1, 0, 1, 1, True),               # smallest legal input
    (1, 1, 2, (1,), 3, 1, 1, 1, 1, True),               # 1 sample, kernel 3, padding 1
    (1, 3, 8, (8, 8), 3, 1, 1, 1, 1, True),
    (3, 4, 5, (9, 7), (2, 3), (2, 1), ((1, 0), (0, 2)), 1, 1, True),    # non-square, asymmetric pads
    (2, 4, 6, (10, 9), 3, 2, 1, 2, 2, True),           # groups=2 with dilation
    (1, 6, 6, (7, 8), 3, 1, 1, 1, 6, True),             # depthwise
    (2, 6, 12, (7, 7), 3, 2, ((0, 1), (1, 0)), 1, 6, True),  # depthwise, multiplier 2, stride 2
    (1, 8, 8, (9, 9), 5, 2, 2, 1, 8, False),            # depthwise 5x5 stride 2
    (3, 6, 9, (6, 5), (1, 3), 1, ((0, 0), (1, 1)), (1, 2), 3, True),    # groups=3
    (1, 8, 4, (6, 6), 1, 1, 0, 1, 1, True),             # 1x1 (no im2col)
    (2, 8, 4, (7, 7), 1, 2, 0, 1, 1, True),             # 1x1 stride 2
    (2, 8, 4, (5, 5), 1, 1, 1, 1, 1, False),            # 1x1 with padding
    (1, 2, 3, (1, 1), 1, 1, 0, 1, 1, True),             # smallest 2-D
    (1, 3, 2, (3, 3), 3, 1, 0, 1, 1, True),             # kernel == input
    (1, 2, 3, (2, 2), 3, 3, 1, 1, 1, True),             # one window, mostly padding
    (2, 2, 3, (5, 6, 4), 3, 1, 1, 1, 1, True),
    (1, 4, 4, (6, 5, 7), (1, 2, 3), (2, 1, 2), ((1, 0), (0, 1), (2, 1)), (1, 2, 1), 2, True),
    (3, 4, 4, (4, 4, 4), 3, 1, 1, 1, 4, False),         # depthwise 3-D
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv(case, dtype):
    batch, cin, cout, spatial, kernel, stride, padding, dilation, groups, bias = case
    rank = len(spatial)
    rng = np.random.default_rng(seed_of(case))
    kernel, stride, dilation = tup(kernel, rank), tup(stride, rank), tup(dilation, rank)
    pads = pairs(padding, rank)
    x = rand(rng, (batch, cin, *spatial), dtype)
    w = rand(rng, (cout, cin // groups, *kernel), dtype)
    b = rand(rng, (cout,), dtype) if bias else None
    got = conv(x, w, b, stride, pads, dilation, groups)
    want = CONV[rank](F.pad(t(x), torch_pad(pads)), t(w), None if b is None else t(b), stride, 0, dilation, groups)
    check(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("spatial, kernel, stride, padding, groups", [
    ((9,), 3, 2, [(2, 2)], 1),
    ((5, 6), 3, 1, [(4, 4), (1, 5)], 2),        # reflect up to size - 1; circular up to the size
    ((5, 6), (2, 3), 2, "same", 4),             # TensorFlow's 'same' at stride 2, depthwise
    ((3, 4, 5), 2, 1, [(1, 0), (0, 2), (2, 2)], 1),
])
def test_conv_padding_modes(dtype, mode, spatial, kernel, stride, padding, groups):
    """nn.ConvNd(padding_mode=...) pads with F.pad in that mode, then convolves unpadded."""
    from cnncalc.kernels.layout import explicit_pads
    rank = len(spatial)
    kernel, stride = tup(kernel, rank), tup(stride, rank)
    pads = explicit_pads(padding, spatial, kernel, stride, (1,) * rank)
    if mode == "reflect":
        pads = [(min(b, n - 1), min(a, n - 1)) for n, (b, a) in zip(spatial, pads)]
        padding = pads
    rng = np.random.default_rng(seed_of((mode, spatial, padding)))
    x = rand(rng, (2, 4, *spatial), dtype)
    w = rand(rng, (4, 4 // groups, *kernel), dtype)
    b = rand(rng, (4,), dtype)
    got = conv(x, w, b, stride, padding, (1,) * rank, groups, mode)
    want = CONV[rank](F.pad(t(x), torch_pad(pads), mode=mode), t(w), t(b), stride, 0, 1, groups)
    check(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pads, mode, value", [
    ([(3, 0)], "reflect", 0.0), ([(0, 4)], "circular", 0.0), ([(7, 2)], "replicate", 0.0),
    ([(1, 2), (3, 0)], "reflect", 0.0), ([(4, 4), (5, 1)], "circular", 0.0), ([(2, 1), (0, 3)], "replicate", 0.0),
    ([(1, 1), (2, 0), (0, 3)], "reflect", 0.0), ([(1, 2), (2, 1), (4, 0)], "circular", 0.0),
    ([(-1, 2), (3, -4)], "constant", 1.5), ([(2, -4)], "constant", -2.0), ([(1, 1), (0, 0), (-2, 3)], "constant", 0.0),
])
def test_pad_kernel(dtype, pads, mode, value):
    from cnncalc.kernels.reshape import pad
    x = rand(np.random.default_rng(seed_of(pads)), (2, 3, *(4, 5, 6)[:len(pads)]), dtype)
    want = F.pad(t(x), torch_pad(pads), mode=mode, value=value) if mode == "constant" else \
        F.pad(t(x), torch_pad(pads), mode=mode)
    check(pad(x, pads, mode, value), want, dtype)


@pytest.mark.parametrize("pads, mode, words", [
    ([(4, 0)], "reflect", "smaller than the axis's size 4"), ([(0, 5)], "circular", "more than once"),
    ([(-1, 1)], "replicate", "cannot be negative"), ([(2, -7)], "constant", "crops more than there is"),
])
def test_pad_kernel_refuses_what_f_pad_refuses(pads, mode, words):
    from cnncalc.kernels.reshape import pad
    with pytest.raises(ValueError, match=words):
        pad(np.zeros((1, 1, 4), np.float32), pads, mode)


def test_conv_chunked(monkeypatch):
    """Tiny chunk budgets force many im2col blocks: whole images, then rows within an image."""
    rng = np.random.default_rng(1)
    x = rand(rng, (3, 5, 12, 10))
    w = rand(rng, (7, 5, 3, 3))
    b = rand(rng, (7,))
    wg = rand(rng, (6, 2, 3, 3))
    wd = rand(rng, (10, 1, 3, 3))
    want = F.conv2d(t(x), t(w), t(b), 1, 1)
    want_g = F.conv2d(t(x[:, :4]), t(wg), None, 2, 1, 1, 2)
    want_dw = F.conv2d(t(x), t(wd), None, 1, 1, 1, 5)
    for budget in (1, 2000, 20000, 1 << 20):
        monkeypatch.setattr(conv_mod, "CHUNK_BYTES", budget)
        monkeypatch.setattr(conv_mod, "CACHE_BYTES", budget)
        check(conv(x, w, b, (1, 1), ((1, 1), (1, 1)), (1, 1), 1), want)
        check(conv(x[:, :4], wg, None, (2, 2), ((1, 1), (1, 1)), (1, 1), 2), want_g)
        check(conv(x, wd, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 5), want_dw)


@pytest.mark.parametrize("einsum_from", [0, 10**9])
@pytest.mark.parametrize("case", [
    ((2, 5, 9), (3,), (1,), ((1, 1),), (1,), 1),
    ((1, 6, 7, 8), (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 4, 9, 9), (3, 2), (2, 1), ((0, 1), (1, 0)), (1, 2), 1),
    ((1, 3, 6, 7), (3, 3), (1, 1), ((1, 1), (1, 1)), (2, 1), 3),       # multiplier 3
    ((1, 3, 4, 5, 6), (2, 3, 3), (1, 1, 1), ((1, 0), (1, 1), (0, 2)), (1, 1, 1), 1),
])
def test_depthwise_paths(monkeypatch, case, einsum_from):
    """Both depthwise kernels (einsum, and per-offset passes for few channels at stride 1)."""
    shape, kernel, stride, pads, dilation, mult = case
    monkeypatch.setattr(conv_mod, "EINSUM_MIN_CHANNELS", einsum_from)
    rng = np.random.default_rng(11)
    x = rand(rng, shape)
    c = shape[1]
    w = rand(rng, (c * mult, 1, *kernel))
    b = rand(rng, (c * mult,))
    got = conv(x, w, b, stride, pads, dilation, c)
    want = CONV[len(kernel)](F.pad(t(x), torch_pad(pads)), t(w), t(b), stride, 0, dilation, c)
    check(got, want)


@pytest.mark.parametrize("case", [
    ((2, 5, 11), (3,), (2,), ((1, 1),), (1,), 1),
    ((1, 3, 9, 12), (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 2),      # multiplier 2
    ((2, 4, 10, 13), (3, 5), (1, 3), ((0, 1), (2, 2)), (1, 2), 1),     # stride 3, dilation 2 on the width
    ((1, 2, 5, 6, 9), (2, 2, 3), (1, 2, 2), ((0, 1), (1, 1), (1, 0)), (1, 1, 1), 1),
])
def test_depthwise_phases(monkeypatch, case):
    """Strided depthwise through the phase split of the width (few channels), against the per-pixel einsum."""
    shape, kernel, stride, pads, dilation, mult = case
    monkeypatch.setattr(conv_mod, "EINSUM_MIN_CHANNELS", 10**9)
    rng = np.random.default_rng(13)
    x = rand(rng, shape)
    c = shape[1]
    w = rand(rng, (c * mult, 1, *kernel))
    b = rand(rng, (c * mult,))
    want = CONV[len(kernel)](F.pad(t(x), torch_pad(pads)), t(w), t(b), stride, 0, dilation, c)
    check(conv(x, w, b, stride, pads, dilation, c), want)
    monkeypatch.setattr(conv_mod, "CHUNK_BYTES", 1)  # too large to copy: the per-pixel einsum
    check(conv(x, w, b, stride, pads, dilation, c), want)


@pytest.mark.parametrize("budget", [1, 300, 5000, 1 << 20])
def test_blocks_3d(monkeypatch, budget):
    """3-D blocks split along whichever axis fits the budget: images, depth rows, rows or parts of rows."""
    for name in ("CHUNK_BYTES", "MIN_CHUNK_BYTES", "CACHE_BYTES"):
        monkeypatch.setattr(conv_mod, name, budget)
    monkeypatch.setattr(pool_mod, "CACHE_BYTES", budget)
    rng = np.random.default_rng(12)
    x = rand(rng, (2, 4, 5, 6, 7))
    w, wt, wd = rand(rng, (3, 4, 3, 2, 3)), rand(rng, (4, 3, 2, 3, 2)), rand(rng, (4, 1, 3, 3, 3))
    b = rand(rng, (3,))
    pads = ((1, 1), (0, 1), (1, 0))
    check(conv(x, w, b, (1, 2, 1), pads, (1, 1, 2), 1),
          F.conv3d(F.pad(t(x), torch_pad(pads)), t(w), t(b), (1, 2, 1), 0, (1, 1, 2)))
    check(conv(x, wd, None, (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 4), F.conv3d(t(x), t(wd), None, 1, 1, 1, 4))
    check(conv_transpose(x, wt, None, (2, 1, 2), (1, 0, 1), (1, 1, 1), 1, (1, 0, 0)),
          F.conv_transpose3d(t(x), t(wt), None, (2, 1, 2), (1, 0, 1), (1, 0, 0)))
    check(max_pool(x, (2, 3, 2), (2, 2, 1), ((1, 1), (1, 1), (0, 0)), (1, 1, 2), True),
          F.max_pool3d(t(x), (2, 3, 2), (2, 2, 1), (1, 1, 0), (1, 1, 2), True))


def test_conv_accepts_channels_last_input():
    """Kernels hand back channels-first views of channels-last memory; feeding one back in must work."""
    rng = np.random.default_rng(2)
    x = rand(rng, (2, 4, 9, 9))
    w1, w2 = rand(rng, (6, 4, 3, 3)), rand(rng, (5, 6, 3, 3))
    y = conv(x, w1, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert y.shape == (2, 6, 9, 9)
    got = conv(y, w2, None, (2, 2), ((0, 0), (0, 0)), (1, 1), 1)
    check(got, F.conv2d(F.conv2d(t(x), t(w1), None, 1, 1), t(w2), None, 2))


# (batch, in, out, spatial, kernel, stride, padding, dilation, groups, output_padding, bias)
CONV_T_CASES = [
    (1, 3, 2, (5,), 3, 1, 0, 1, 1, 0, True),
    (2, 4, 6, (7,), 4, 2, 1, 1, 2, 1, False),
    (3, 2, 3, (1,), 1, 1, 0, 1, 1, 0, True),           # smallest
    (1, 4, 3, (5, 6), 3, 2, 1, 1, 1, 1, True),
    (2, 4, 6, (4, 5), (2, 3), (2, 1), (0, 1), (1, 2), 2, (1, 0), True),
    (1, 3, 3, (6, 6), 4, 2, 1, 1, 3, 0, True),          # depthwise transposed (DCGAN-style k4 s2 p1)
    (2, 5, 4, (3, 3), 2, 2, 0, 1, 1, 0, False),         # k == s: no overlap
    (1, 2, 2, (3, 4), 3, 3, 2, 2, 1, 2, True),          # output_padding 2 < stride 3
    (1, 2, 4, (1, 1), 3, 2, 0, 1, 1, 1, True),
    (2, 2, 3, (3, 4, 2), 3, 2, 1, 1, 1, 1, True),
    (1, 4, 2, (2, 3, 3), (2, 1, 3), (1, 2, 2), (0, 0, 1), (2, 1, 1), 2, (0, 1, 0), False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_T_CASES)
def test_conv_transpose(case, dtype):
    batch, cin, cout, spatial, kernel, stride, padding, dilation, groups, out_pad, bias = case
    rank = len(spatial)
    rng = np.random.default_rng(seed_of(case))
    kernel, stride, padding = tup(kernel, rank), tup(stride, rank), tup(padding, rank)
    dilation, out_pad = tup(dilation, rank), tup(out_pad, rank)
    x = rand(rng, (batch, cin, *spatial), dtype)
    w = rand(rng, (cin, cout // groups, *kernel), dtype)
    b = rand(rng, (cout,), dtype) if bias else None
    got = conv_transpose(x, w, b, stride, padding, dilation, groups, out_pad)
    want = CONV_T[rank](t(x), t(w), None if b is None else t(b), stride, padding, out_pad, groups, dilation)
    check(got, want, dtype)


def test_conv_transpose_chunked(monkeypatch):
    rng = np.random.default_rng(3)
    x = rand(rng, (3, 4, 7, 6))
    w = rand(rng, (4, 3, 3, 3))
    want = F.conv_transpose2d(t(x), t(w), None, 2, 1, 1, 2)
    for budget in (1, 3000, 1 << 20):
        monkeypatch.setattr(conv_mod, "CHUNK_BYTES", budget)
        check(conv_transpose(x, w, None, (2, 2), (1, 1), (1, 1), 2, (1, 1)), want)


# ---- window pooling -------------------------------------------------------------------------------------------
# (batch, channels, spatial, kernel, stride, symmetric padding, dilation, ceil_mode)
MAX_CASES = [
    (1, 2, (6,), 3, 2, 1, 1, True),              # last ceil window would start in the padding: dropped
    (2, 3, (6,), 3, 2, 1, 1, False),
    (1, 1, (1,), 1, 1, 0, 1, False),             # smallest
    (1, 2, (2,), 2, 2, 1, 1, True),
    (3, 2, (9,), 2, 3, 1, 3, True),              # dilation
    (1, 2, (6, 6), 3, 2, 1, 1, True),
    (2, 3, (7, 8), 3, 2, 1, 1, True),
    (1, 2, (5, 5), 2, 2, 0, 1, True),            # ceil keeps a partial window
    (1, 2, (5, 5), 2, 2, 0, 1, False),
    (2, 2, (7, 9), (3, 2), (2, 1), (1, 0), 1, False),
    (1, 3, (112, 112), 3, 2, 1, 1, False),       # ResNet stem pool size
    (1, 2, (9, 10), 3, 2, 1, 2, True),           # dilation 2 and ceil
    (1, 1, (1, 1), 1, 1, 0, 1, True),
    (1, 1, (2, 3), 3, 3, 1, 1, True),
    (2, 2, (5, 4, 6), 2, 2, 1, 1, True),
    (1, 2, (4, 5, 5), (1, 2, 3), (1, 2, 2), (0, 1, 1), (1, 1, 2), False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool(case, dtype):
    batch, channels, spatial, kernel, stride, padding, dilation, ceil_mode = case
    rank = len(spatial)
    rng = np.random.default_rng(seed_of(case))
    x = rand(rng, (batch, channels, *spatial), dtype)
    kernel, stride, padding, dilation = (tup(v, rank) for v in (kernel, stride, padding, dilation))
    got = max_pool(x, kernel, stride, pairs(padding, rank), dilation, ceil_mode)
    want = MAX[rank](t(x), kernel, stride, padding, dilation, ceil_mode)
    check(got, want, dtype)


@pytest.mark.parametrize("case", [
    ((7, 7), (2, 2), (2, 2), ((0, 1), (0, 1))),   # TensorFlow 'same' on odd input
    ((8, 6), (3, 3), (1, 2), ((1, 0), (0, 1))),
    ((10,), (4,), (3,), ((2, 1),)),
    ((4, 5, 6), (2, 3, 2), (2, 1, 2), ((0, 1), (1, 1), (1, 0))),
])
def test_max_pool_asymmetric(case):
    spatial, kernel, stride, pads = case
    rng = np.random.default_rng(4)
    x = rand(rng, (2, 3, *spatial))
    got = max_pool(x, kernel, stride, pads, (1,) * len(spatial), False)
    padded = F.pad(t(x), torch_pad(pads), value=-np.inf)
    check(got, MAX[len(spatial)](padded, kernel, stride, 0))


def test_min_pool_via_max_pool():
    rng = np.random.default_rng(5)
    x = rand(rng, (1, 2, 6, 6))
    got = -max_pool(-x, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), False)
    check(got, -F.max_pool2d(-t(x), 2))


def test_max_pool_propagates_nan():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    got = max_pool(x, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), False)
    want = F.max_pool2d(t(x), 2).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


# (batch, channels, spatial, kernel, stride, symmetric padding, ceil_mode, count_include_pad)
AVG_CASES = [
    (1, 2, (6,), 3, 2, 1, True, True),           # the divisor of the ceil window that runs past the end
    (1, 2, (6,), 3, 2, 1, True, False),
    (2, 1, (7,), 2, 2, 1, True, True),
    (1, 1, (1,), 1, 1, 0, False, True),          # smallest
    (1, 2, (6, 6), 3, 2, 1, True, True),
    (1, 2, (6, 6), 3, 2, 1, True, False),
    (3, 2, (7, 5), 3, 2, 1, False, True),
    (3, 2, (7, 5), 3, 2, 1, False, False),
    (1, 3, (5, 5), 2, 2, 0, True, True),
    (2, 2, (8, 9), (3, 2), (2, 3), (1, 1), True, True),
    (2, 2, (8, 9), (3, 2), (2, 3), (1, 0), True, False),
    (1, 2, (1, 1), 1, 1, 0, True, False),
    (1, 4, (14, 14), 2, 2, 0, False, True),      # DenseNet transition
    (2, 2, (5, 6, 4), 3, 2, 1, True, True),
    (1, 2, (5, 6, 4), (2, 3, 2), (1, 2, 2), (1, 1, 0), True, False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool(case, dtype):
    batch, channels, spatial, kernel, stride, padding, ceil_mode, include = case
    rank = len(spatial)
    rng = np.random.default_rng(seed_of(case))
    x = rand(rng, (batch, channels, *spatial), dtype)
    kernel, stride, padding = (tup(v, rank) for v in (kernel, stride, padding))
    got = avg_pool(x, kernel, stride, pairs(padding, rank), ceil_mode, include)
    want = AVG[rank](t(x), kernel, stride, padding, ceil_mode, include)
    check(got, want, dtype)


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("case", [
    ((7, 7), (3, 3), (2, 2), ((1, 2), (0, 1))),
    ((9,), (3,), (1,), ((0, 1),)),
    ((4, 5, 3), (2, 3, 2), (1, 2, 1), ((1, 0), (1, 1), (0, 1))),
])
def test_avg_pool_asymmetric(case, include):
    """Asymmetric padding generalises PyTorch: with count_include_pad the padding counts, else only the input."""
    spatial, kernel, stride, pads = case
    rank = len(spatial)
    rng = np.random.default_rng(6)
    x = rand(rng, (2, 3, *spatial))
    got = avg_pool(x, kernel, stride, pads, False, include)
    padded = F.pad(t(x), torch_pad(pads))
    sums = AVG[rank](padded, kernel, stride, 0, divisor_override=1) if rank > 1 else \
        AVG[rank](padded, kernel, stride, 0) * kernel[0]
    if include:
        want = sums / float(np.prod(kernel))
    else:
        ones = F.pad(torch.ones(1, 1, *spatial), torch_pad(pads))
        counts = AVG[rank](ones, kernel, stride, 0) * float(np.prod(kernel))
        want = sums / counts
    check(got, want)


def test_pool_blocks(monkeypatch):
    """Small cache budgets split pooling into many blocks; channels-last and channels-first inputs."""
    rng = np.random.default_rng(7)
    x = rand(rng, (3, 4, 11, 9))
    x_cl = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)  # same values, NHWC memory
    want_max = F.max_pool2d(t(x), 3, 2, 1, ceil_mode=True)
    want_avg = F.avg_pool2d(t(x), 3, 2, 1, ceil_mode=True)
    for budget in (1, 500, 5000, 1 << 20):
        monkeypatch.setattr(pool_mod, "CACHE_BYTES", budget)
        for data in (x, x_cl):
            check(max_pool(data, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), True), want_max)
            check(avg_pool(data, (3, 3), (2, 2), ((1, 1), (1, 1)), True, True), want_avg)


# ---- adaptive pooling -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("spatial, out", [
    ((10,), (3,)), ((7,), (7,)), ((5,), (8,)), ((12,), (4,)),
    ((7, 7), (1, 1)), ((13, 11), (7, 7)), ((6, 9), (4, 9)), ((8, 8), (3, 5)), ((1, 1), (2, 3)),
    ((5, 7, 6), (2, 3, 4)), ((4, 4, 4), (1, 1, 1)),
])
def test_adaptive_pool(spatial, out, mode, dtype):
    rng = np.random.default_rng(8)
    x = rand(rng, (2, 3, *spatial), dtype)
    got = adaptive_pool(x, out, mode)
    check(got, ADAPTIVE[mode, len(spatial)](t(x), out), dtype)


@pytest.mark.parametrize("channels_last_memory", [False, True])
def test_global_average_stays_accurate(channels_last_memory):
    """A large global average of positive values in float32: summed axis by axis, the error stays ~1e-6."""
    rng = np.random.default_rng(10)
    x = (np.abs(rng.standard_normal((1, 16, 160, 160))) + 3).astype(np.float32)
    if channels_last_memory:
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    exact = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    got = adaptive_pool(x, (1, 1), "avg")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=2e-6)


def test_adaptive_identity_is_a_copy():
    x = np.ones((1, 2, 3, 3), np.float32)
    y = adaptive_pool(x, (3, 3), "max")
    assert not np.shares_memory(x, y)
    np.testing.assert_array_equal(x, y)


# ---- upsampling -----------------------------------------------------------------------------------------------
UP_CASES = [
    # (spatial, size, scale_factor, mode, align_corners)
    ((5,), None, 2.0, "nearest", None),
    ((5,), (7,), None, "nearest", None),
    ((7,), (3,), None, "nearest", None),
    ((5, 6), None, 2.0, "nearest", None),
    ((5, 6), None, 1.5, "nearest", None),
    ((5, 6), None, (3.0, 0.5), "nearest", None),
    ((7, 5), None, 1.7, "nearest", None),
    ((4, 6), (9, 13), None, "nearest", None),
    ((3, 4, 5), None, 2.0, "nearest", None),
    ((3, 4, 5), (5, 4, 3), None, "nearest", None),
    ((6,), None, 2.0, "linear", False),
    ((6,), (11,), None, "linear", True),
    ((6,), (4,), None, "linear", False),
    ((1,), (3,), None, "linear", True),
    ((5, 6), None, 2.0, "bilinear", False),
    ((5, 6), None, 2.0, "bilinear", True),
    ((5, 6), None, 1.5, "bilinear", False),
    ((5, 6), None, (0.6, 2.5), "bilinear", False),
    ((5, 6), (9, 4), None, "bilinear", False),
    ((5, 6), (9, 4), None, "bilinear", True),
    ((5, 6), (1, 1), None, "bilinear", True),
    ((1, 1), (4, 5), None, "bilinear", False),
    ((3, 4, 5), None, 2.0, "trilinear", False),
    ((3, 4, 5), (4, 7, 2), None, "trilinear", True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", UP_CASES)
def test_upsample(case, dtype):
    spatial, size, scale, mode, align = case
    rank = len(spatial)
    rng = np.random.default_rng(9)
    x = rand(rng, (2, 3, *spatial), dtype)
    got = upsample(x, size, scale, mode, bool(align))
    want = F.interpolate(t(x), size=size, scale_factor=scale, mode=mode, align_corners=align)
    check(got, want, dtype)


# ---- properties -----------------------------------------------------------------------------------------------
PROPERTY = settings(max_examples=60, deadline=None)


@st.composite
def conv2d_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    depthwise = groups > 1 and draw(st.booleans())
    if depthwise:
        groups = cin
    cout = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    spatial = tuple(max(1, (k - 1) * d + 1 - b - a) + draw(st.integers(0, 7))
                    for k, d, (b, a) in zip(kernel, dilation, pads))
    return draw(st.integers(1, 3)), cin, cout, spatial, kernel, stride, pads, dilation, groups, draw(st.booleans())


@PROPERTY
@given(conv2d_configs(), st.integers(0, 2**32 - 1))
def test_property_conv2d(config, seed):
    batch, cin, cout, spatial, kernel, stride, pads, dilation, groups, bias = config
    rng = np.random.default_rng(seed)
    x = rand(rng, (batch, cin, *spatial))
    w = rand(rng, (cout, cin // groups, *kernel))
    b = rand(rng, (cout,)) if bias else None
    got = conv(x, w, b, stride, pads, dilation, groups)
    want = F.conv2d(F.pad(t(x), torch_pad(pads)), t(w), None if b is None else t(b), stride, 0, dilation, groups)
    check(got, want)


@st.composite
def conv_transpose2d_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 6)) for _ in range(2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
    for n, k, s, d, p, op in zip(spatial, kernel, stride, dilation, padding, out_pad):
        assume((n - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1)
    return draw(st.integers(1, 3)), cin, cout, spatial, kernel, stride, padding, dilation, groups, out_pad


@PROPERTY
@given(conv_transpose2d_configs(), st.integers(0, 2**32 - 1))
def test_property_conv_transpose2d(config, seed):
    batch, cin, cout, spatial, kernel, stride, padding, dilation, groups, out_pad = config
    rng = np.random.default_rng(seed)
    x = rand(rng, (batch, cin, *spatial))
    w = rand(rng, (cin, cout // groups, *kernel))
    b = rand(rng, (cout,))
    got = conv_transpose(x, w, b, stride, padding, dilation, groups, out_pad)
    check(got, F.conv_transpose2d(t(x), t(w), t(b), stride, padding, out_pad, groups, dilation))


@st.composite
def maxpool2d_configs(draw):
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    spatial = tuple(max(1, (k - 1) * d + 1 - 2 * p) + draw(st.integers(0, 7))
                    for k, d, p in zip(kernel, dilation, padding))
    return draw(st.integers(1, 2)), spatial, kernel, stride, padding, dilation, draw(st.booleans())


@PROPERTY
@given(maxpool2d_configs(), st.integers(0, 2**32 - 1))
def test_property_max_pool2d(config, seed):
    batch, spatial, kernel, stride, padding, dilation, ceil_mode = config
    x = rand(np.random.default_rng(seed), (batch, 3, *spatial))
    got = max_pool(x, kernel, stride, pairs(padding, 2), dilation, ceil_mode)
    check(got, F.max_pool2d(t(x), kernel, stride, padding, dilation, ceil_mode))


@PROPERTY
@given(maxpool2d_configs(), st.booleans(), st.integers(0, 2**32 - 1))
def test_property_avg_pool2d(config, include, seed):
    batch, spatial, kernel, stride, padding, _, ceil_mode = config
    x = rand(np.random.default_rng(seed), (batch, 3, *spatial))
    got = avg_pool(x, kernel, stride, pairs(padding, 2), ceil_mode, include)
    check(got, F.avg_pool2d(t(x), kernel, stride, padding, ceil_mode, include))


# ---- activations with fields: far from zero, and on the edges of softplus's linear region ---------------------

def activation_input(dtype):
    x = rand(np.random.default_rng(11), (2, 4, 5, 6), dtype) * 30
    x.flat[:10] = [0.0, -0.0, 20.0, 20.5, 2.5, -100.0, 100.0, 1e-3, -1e-3, 5.0]  # thresholds hit exactly
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (2.0, 5.0), (0.5, 1.0), (-1.0, 20.0), (8.0, 20.0),
                                             (1.0, -3.0), (10.0, 100.0)])
def test_softplus_kernel(dtype, beta, threshold):
    from cnncalc.kernels.activation import softplus
    x = activation_input(dtype)
    with np.errstate(over="ignore"):  # beta 10, threshold 100: exp overflows to inf, as in PyTorch
        got = softplus(x, beta, threshold)
    check(got, F.softplus(t(x), beta, threshold), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mish_hardtanh_prelu_kernels(dtype):
    from cnncalc.kernels.activation import hardtanh, mish, prelu
    x = activation_input(dtype)
    with np.errstate(over="raise", invalid="raise"):  # no overflow on the way to x * tanh(x) far out
        check(mish(x), F.mish(t(x)), dtype)
    check(hardtanh(x, -0.3, 2.7), F.hardtanh(t(x), -0.3, 2.7), dtype)
    for slopes in (np.array([0.25]), np.array([-0.5, 0.1, 1.5, 3.0])):  # shared, and one per channel
        w = slopes.astype(dtype)
        check(prelu(x, w), F.prelu(t(x), t(w)), dtype)
        check(prelu(x[:, :, 0, 0], w), F.prelu(t(x[:, :, 0, 0]), t(w)), dtype)  # [N, C]
