"""Multiplying by a learned tensor (layer scale): NumPy broadcasting lines the parameter up with the input's
trailing axes, as PyTorch does; the batch axis is never the parameter's."""
from __future__ import annotations

import numpy as np

from cnncalc.kernels.layout import FloatArray


def scale(x: FloatArray, parameter: FloatArray) -> FloatArray:
    """x * parameter; `parameter` has at most x.ndim - 1 axes (it holds no batch axis)."""
    assert parameter.ndim < x.ndim, "the parameter has no batch axis"
    y: FloatArray = np.multiply(x, parameter.astype(x.dtype, copy=False))
    return y
