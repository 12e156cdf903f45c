"""A fully connected layer on the last axis: x @ W.T + b, as torch.nn.functional.linear."""
from __future__ import annotations

import numpy as np


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y
