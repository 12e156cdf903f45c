"""The witness: NumPy kernels for every layer kind, one module per family (conv, pool, linear, norm,
activation, merge, reshape, rearrange, resample, scale; layout holds the shared memory-layout helpers).

Kernels depend on NumPy alone and never on a layer's shape rule: each output size is read off the arrays.

Submodules load on first use (`kernels.conv.conv(...)` imports `cnncalc.kernels.conv` then), so the layer
classes can name their kernels at the top of their files while `cnncalc summarize` never imports NumPy.
"""
from __future__ import annotations

import importlib
from types import ModuleType

FAMILIES = ("activation", "conv", "layout", "linear", "merge", "norm", "pool", "rearrange", "reshape", "resample",
            "scale")


def __getattr__(name: str) -> ModuleType:
    if name in FAMILIES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
