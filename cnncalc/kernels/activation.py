"""Element-wise activations and (log-)softmax, as PyTorch computes them, in the input's dtype."""
from __future__ import annotations

import math

import numpy as np

from cnncalc.kernels.layout import FloatArray


def relu(x: FloatArray) -> FloatArray:
    return np.maximum(x, 0)


def relu6(x: FloatArray) -> FloatArray:
    return np.clip(x, 0, 6)


def sigmoid(x: FloatArray) -> FloatArray:
    # split by sign so exp never overflows
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def tanh(x: FloatArray) -> FloatArray:
    return np.tanh(x)


def silu(x: FloatArray) -> FloatArray:
    return x * sigmoid(x)


def hardsigmoid(x: FloatArray) -> FloatArray:
    return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)


def hardswish(x: FloatArray) -> FloatArray:
    return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)


def leaky_relu(x: FloatArray, negative_slope: float) -> FloatArray:
    return np.where(x >= 0, x, x * x.dtype.type(negative_slope))


def elu(x: FloatArray, alpha: float) -> FloatArray:
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


_erf_by_value = np.vectorize(math.erf, otypes=[np.float64])


def erf(x: FloatArray) -> FloatArray:
    """erf in the input's precision; NumPy has none and SciPy is not a dependency. float32: Abramowitz & Stegun
    7.1.26 (|error| < 1.5e-7, below float32's resolution near 1); otherwise the C library's erf value by value
    (slower, but that approximation's error would show next to PyTorch's float64)."""
    if x.dtype != np.float32:
        exact: FloatArray = _erf_by_value(x).astype(x.dtype, copy=False)
        return exact
    a = np.abs(x)
    t = 1 / (1 + x.dtype.type(0.3275911) * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    y: FloatArray = np.sign(x) * (1 - poly * np.exp(-a * a))
    return y


def gelu(x: FloatArray, approximate: str = "none") -> FloatArray:
    if approximate == "tanh":
        tanh_form: FloatArray = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return tanh_form
    # Python floats, not NumPy scalars, so that float32 stays float32
    erf_form: FloatArray = 0.5 * x * (1 + erf(x * math.sqrt(0.5)))
    return erf_form


ELEMENTWISE = {"relu": relu, "relu6": relu6, "sigmoid": sigmoid, "tanh": tanh, "silu": silu,
               "hardswish": hardswish, "hardsigmoid": hardsigmoid}


def softmax(x: FloatArray, dim: int, log: bool = False) -> FloatArray:
    """Softmax (or log-softmax) along PyTorch dim `dim` (negative counts from the end)."""
    axis = dim % x.ndim
    shifted = x - x.max(axis=axis, keepdims=True)
    if log:
        logged: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return logged
    e = np.exp(shifted)
    probabilities: FloatArray = e / e.sum(axis=axis, keepdims=True)
    return probabilities


# ---- activations with fields or weights: constants in the input's dtype (x.dtype.type), so float32 stays
# float32 and rounds them as PyTorch does (it casts a Python scalar to the tensor's dtype) ------------------

def prelu(x: FloatArray, weight: FloatArray) -> FloatArray:
    """x where x >= 0, else slope * x: one slope for every element, or one per channel (axis 1). The slopes
    broadcast along axis 1 as given; a count that fits neither is NumPy's error, not a guess."""
    slope = weight.astype(x.dtype, copy=False).reshape(1, -1, *(1,) * (x.ndim - 2))
    return np.where(x >= 0, x, x * slope)


def softplus(x: FloatArray, beta: float, threshold: float) -> FloatArray:
    """PyTorch's: x where beta * x > threshold (the linear region), else log1p(exp(beta * x)) / beta."""
    b, t = x.dtype.type(beta), x.dtype.type(threshold)
    scaled: FloatArray = x * b
    linear = scaled > t
    np.copyto(scaled, 0, where=linear)  # the linear region never reaches exp (no overflow there)
    np.exp(scaled, out=scaled)
    np.log1p(scaled, out=scaled)
    scaled /= b
    np.copyto(scaled, x, where=linear)
    return scaled


def mish(x: FloatArray) -> FloatArray:
    """x * tanh(softplus(x)), softplus as log(1 + exp(x)) with no threshold (PyTorch's mish has none);
    logaddexp(x, 0) is that value without overflowing exp."""
    y: FloatArray = np.logaddexp(x, x.dtype.type(0))
    np.tanh(y, out=y)
    y *= x
    return y


def hardtanh(x: FloatArray, min_val: float, max_val: float) -> FloatArray:
    """x clamped to [min_val, max_val] (NaN stays NaN, as in torch.clamp)."""
    clamped: FloatArray = np.clip(x, x.dtype.type(min_val), x.dtype.type(max_val))
    return clamped
