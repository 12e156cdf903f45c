"""The add and multiply kernels against torch's broadcasting sum and product, bit for bit (same order of
operations: ((x0 . x1) . x2)), in both memory orders the engine hands them."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cnncalc.kernels.layout import channels_first, channels_last, is_channels_last  # noqa: E402
from cnncalc.kernels.merge import add, multiply  # noqa: E402

pytestmark = pytest.mark.oracle

TORCH = {add: lambda ts: sum(ts[1:], ts[0]), multiply: lambda ts: math.prod(ts[1:], start=ts[0])}


def laid_out(a: np.ndarray, last: bool) -> np.ndarray:
    """`a` with its channels innermost in memory (as the kernels leave their outputs), or in C order."""
    return channels_first(np.ascontiguousarray(channels_last(a))) if last and a.ndim > 2 else a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("kernel", [add, multiply], ids=["add", "multiply"])
@pytest.mark.parametrize("shapes", [
    [(2, 4, 5, 6), (2, 4, 5, 6)],                  # the fast path: equal shapes
    [(2, 4, 5, 6), (2, 4, 5, 6), (2, 4, 5, 6)],
    [(2, 4, 1, 1), (2, 4, 5, 6)],                  # a squeeze-excitation gate
    [(2, 4, 5, 6), (2, 4, 1, 1)],
    [(2, 1, 5, 6), (2, 4, 1, 1)],                  # both broadcast
    [(2, 4, 1, 1), (2, 4, 1, 1), (2, 4, 5, 6)],    # the output grows only at the last input
    [(2, 4, 5, 6), (2, 1, 5, 1), (2, 4, 1, 6)],
    [(2, 3, 1), (2, 1, 7)],                        # 1-D maps
    [(2, 3, 1, 1, 1), (2, 3, 2, 3, 4)],            # 3-D maps
    [(2, 5), (2, 1)],                              # features
])
def test_broadcasting_merge_matches_torch(shapes, kernel, last, dtype):
    rng = np.random.default_rng(len(shapes) * 100 + sum(map(sum, shapes)))
    xs = [laid_out(rng.standard_normal(s).astype(dtype), last) for s in shapes]
    before = [x.copy() for x in xs]
    got = kernel(xs)
    want = TORCH[kernel]([torch.from_numpy(np.ascontiguousarray(x)) for x in xs]).numpy()
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert all(np.array_equal(x, b) for x, b in zip(xs, before))  # the inputs are never written
    assert not any(np.may_share_memory(got, x) for x in xs)
    if got.ndim > 2 and (last or any(s != shapes[0] for s in shapes)):
        assert is_channels_last(channels_last(got))  # the layout the next kernel expects
