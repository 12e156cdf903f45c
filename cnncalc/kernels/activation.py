"""Element-wise activations and (log-)softmax, as PyTorch computes them, in the input's dtype."""
from __future__ import annotations

import numpy as np


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 6)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # split by sign so exp never overflows
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def hardsigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)


def hardswish(x: np.ndarray) -> np.ndarray:
    return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)


def leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    return np.where(x >= 0, x, x * x.dtype.type(negative_slope))


def elu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); NumPy has no erf and SciPy is not a dependency."""
    a = np.abs(x)
    t = 1 / (1 + x.dtype.type(0.3275911) * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1 - poly * np.exp(-a * a))


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return (0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))).astype(x.dtype)
    return (0.5 * x * (1 + erf(x / np.sqrt(2)))).astype(x.dtype, copy=False)


ELEMENTWISE = {"relu": relu, "relu6": relu6, "sigmoid": sigmoid, "tanh": tanh, "silu": silu,
               "hardswish": hardswish, "hardsigmoid": hardsigmoid}


def softmax(x: np.ndarray, dim: int, log: bool = False) -> np.ndarray:
    """Softmax (or log-softmax) along PyTorch dim `dim` (negative counts from the end)."""
    axis = dim % x.ndim
    shifted = x - x.max(axis=axis, keepdims=True)
    if log:
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)
