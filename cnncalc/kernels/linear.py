"""A fully connected layer on the last axis: x @ W.T + b, as torch.nn.functional.linear."""
from __future__ import annotations

from cnncalc.kernels.layout import FloatArray


def linear(x: FloatArray, weight: FloatArray, bias: FloatArray | None) -> FloatArray:
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y
